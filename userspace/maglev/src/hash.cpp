// SPDX-License-Identifier: Apache-2.0
// hash64() and the per-backend permutations derived from it.
//
// Only portable operations on fixed-width unsigned integers: input bytes are assembled into
// words explicitly (little-endian), never read through a host-order pointer cast, so every
// host computes the same values.
#include "xlb/maglev/maglev.h"

namespace xlb::maglev {
namespace {

// A bijective 64-bit mixer (the splitmix64 finalizer constants): every input bit affects every
// output bit, so similar ids ("198.18.3.11" vs "198.18.3.12") get unrelated permutations.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Distinct seeds for the two hashes of a permutation, so offset and skip are independent.
constexpr uint64_t kOffsetDomain = 0x6f66667365740000ULL;  // "offset"
constexpr uint64_t kSkipDomain = 0x736b697000000000ULL;    // "skip"

}  // namespace

uint64_t hash64(std::string_view bytes, uint64_t seed) {
  // The golden-ratio constant keeps seed 0 from starting at the mixer's fixed point 0.
  uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
  size_t i = 0;
  while (i < bytes.size()) {
    uint64_t word = 0;
    for (size_t b = 0; b < 8 && i < bytes.size(); ++b, ++i) {
      word |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * b);
    }
    // mix64 is a bijection, so for a given state different words give different states.
    h = mix64(h ^ word);
  }
  // The length tells "a" from "a\0" (the last word is zero-padded).
  return mix64(h ^ static_cast<uint64_t>(bytes.size()));
}

Permutation permutation(std::string_view id, uint32_t ring_size, uint32_t seed) {
  if (ring_size < 2) return Permutation{};
  return Permutation{
      .offset = static_cast<uint32_t>(hash64(id, kOffsetDomain ^ seed) % ring_size),
      .skip = static_cast<uint32_t>(hash64(id, kSkipDomain ^ seed) % (ring_size - 1) + 1),
  };
}

}  // namespace xlb::maglev
