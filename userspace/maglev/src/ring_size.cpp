// SPDX-License-Identifier: Apache-2.0
// Primes and the choice of a VIP's ring size.
#include <string>

#include "internal.h"
#include "xlb/maglev/maglev.h"

namespace xlb::maglev {
namespace {

uint64_t mul_mod(uint64_t a, uint64_t b, uint64_t m) {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(a) * b % m);
}

uint64_t pow_mod(uint64_t base, uint64_t exp, uint64_t m) {
  uint64_t result = 1;
  base %= m;
  while (exp > 0) {
    if (exp & 1) result = mul_mod(result, base, m);
    base = mul_mod(base, base, m);
    exp >>= 1;
  }
  return result;
}

}  // namespace

bool is_prime(uint64_t n) {
  // Small factors first: cheap, and handles every n below the smallest witness squared.
  static constexpr uint64_t kSmall[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  if (n < 2) return false;
  for (uint64_t p : kSmall) {
    if (n % p == 0) return n == p;
  }
  // Miller-Rabin with the first twelve primes as witnesses is exact for every n < 2^64
  // (a known result), so the answer never depends on chance.
  uint64_t d = n - 1;
  int r = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    ++r;
  }
  for (uint64_t a : kSmall) {
    uint64_t x = pow_mod(a, d, n);
    if (x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int i = 1; i < r; ++i) {
      x = mul_mod(x, x, n);
      if (x == n - 1) {
        composite = false;
        break;
      }
    }
    if (composite) return false;
  }
  return true;
}

uint32_t next_prime(uint32_t n) {
  for (uint64_t candidate = n; candidate <= UINT32_MAX; ++candidate) {
    if (is_prime(candidate)) return static_cast<uint32_t>(candidate);
  }
  return 0;
}

Result<RingSize> choose_ring_size(size_t n_backends, std::optional<uint32_t> requested) {
  if (requested) XLB_TRY(internal::check_ring_size(*requested));
  if (n_backends > kMaxRingSize) {
    return Error::invalid(std::to_string(n_backends) +
                          " backends do not fit in the largest ring (" +
                          std::to_string(kMaxRingSize) + " slots); split them over several VIPs");
  }
  const uint32_t base = requested.value_or(kDefaultRingSize);
  const uint64_t wanted = static_cast<uint64_t>(n_backends) * kSlotsPerBackend;
  if (wanted <= base) return RingSize{.size = base};

  const std::string why = std::to_string(n_backends) + " backends want " +
                          std::to_string(kSlotsPerBackend) + " slots each, more than the " +
                          (requested ? "requested" : "default") + " ring size " +
                          std::to_string(base);
  if (wanted > kMaxRingSize) {
    return RingSize{.size = kMaxRingSize,
                    .raised = true,
                    .capped = true,
                    .note = why + "; capped at the largest ring size " +
                            std::to_string(kMaxRingSize) +
                            ", so backend shares are coarser than 1 %"};
  }
  // kMaxRingSize is prime and wanted <= kMaxRingSize, so the next prime is within the cap.
  const uint32_t size = next_prime(static_cast<uint32_t>(wanted));
  return RingSize{
      .size = size, .raised = true, .note = why + "; raised to the prime " + std::to_string(size)};
}

namespace internal {

Status check_ring_size(uint32_t ring_size) {
  if (ring_size < kMinRingSize || ring_size > kMaxRingSize) {
    return Error::invalid("ring size " + std::to_string(ring_size) + " is out of range [" +
                          std::to_string(kMinRingSize) + ", " + std::to_string(kMaxRingSize) + "]");
  }
  if (!is_prime(ring_size)) {
    return Error::invalid("ring size " + std::to_string(ring_size) +
                          " is not prime (Maglev permutations need a prime); the next prime is " +
                          std::to_string(next_prime(ring_size)));
  }
  return ok_status();
}

}  // namespace internal
}  // namespace xlb::maglev
