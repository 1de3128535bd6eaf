// SPDX-License-Identifier: Apache-2.0
// Weighted Maglev population (algorithm described in maglev.h).
#include <algorithm>
#include <string>

#include "internal.h"
#include "xlb/maglev/maglev.h"

namespace xlb::maglev {
namespace internal {
namespace {

// One backend with a weight, while the ring is being populated. Kept small and self-contained
// (no pointer back to the Backend) because it lives in the turn heap and moves on every turn.
struct Cursor {
  uint32_t next;    // next slot of its permutation to try
  uint32_t skip;    // permutation step
  uint32_t turns;   // turns taken so far
  uint32_t weight;  // > 0
  uint32_t rank;    // position in the id-sorted input: the tie-break every host agrees on
};

// Does a's next turn come before b's? Turn k+1 of a backend is at virtual time (k+1) / weight;
// compared by cross-multiplying, exact in 64 bits (turns + 1 <= kMaxRingSize < 2^21,
// weight < 2^32), so no floating point can make two hosts disagree.
bool turn_before(const Cursor& a, const Cursor& b) {
  const uint64_t ta = (static_cast<uint64_t>(a.turns) + 1) * b.weight;
  const uint64_t tb = (static_cast<uint64_t>(b.turns) + 1) * a.weight;
  if (ta != tb) return ta < tb;
  return a.rank < b.rank;
}

// Restores the min-heap order after heap[0]'s next turn moved later.
void sift_down(std::vector<Cursor>& heap) {
  const size_t n = heap.size();
  size_t i = 0;
  const Cursor moving = heap[0];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && turn_before(heap[child + 1], heap[child])) ++child;
    if (!turn_before(heap[child], moving)) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = moving;
}

}  // namespace

Result<std::vector<const Backend*>> sort_and_check(std::span<const Backend> backends,
                                                   uint32_t ring_size) {
  std::vector<const Backend*> sorted;
  sorted.reserve(backends.size());
  size_t weighted = 0;
  for (const Backend& b : backends) {
    if (b.id.empty()) return Error::invalid("backend with an empty id");
    if (b.index == kEmptySlot) {
      return Error::invalid("backend " + b.id + ": index " + std::to_string(b.index) +
                            " is reserved for empty slots");
    }
    if (b.weight > 0) ++weighted;
    sorted.push_back(&b);
  }
  if (weighted > ring_size) {
    return Error::invalid(std::to_string(weighted) + " backends with a weight do not fit in " +
                          std::to_string(ring_size) + " slots; use a larger ring");
  }
  // std::string's operator< compares bytes as unsigned char: the same order on every host.
  std::sort(sorted.begin(), sorted.end(),
            [](const Backend* a, const Backend* b) { return a->id < b->id; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->id == sorted[i - 1]->id) {
      return Error::invalid("duplicate backend id " + sorted[i]->id);
    }
  }
  // Two ids sharing a map index would share its slots and make the plan lie.
  std::vector<uint32_t> indices;
  indices.reserve(sorted.size());
  for (const Backend* b : sorted) indices.push_back(b->index);
  std::sort(indices.begin(), indices.end());
  const auto dup = std::adjacent_find(indices.begin(), indices.end());
  if (dup != indices.end()) {
    return Error::invalid("backend index " + std::to_string(*dup) +
                          " is used by more than one backend");
  }
  return sorted;
}

std::vector<uint32_t> populate(std::span<const Backend* const> sorted, uint32_t ring_size,
                               uint32_t seed) {
  std::vector<uint32_t> owners(ring_size, kNoOwner);
  std::vector<Cursor> heap;
  heap.reserve(sorted.size());
  for (size_t rank = 0; rank < sorted.size(); ++rank) {
    const Backend& b = *sorted[rank];
    if (b.weight == 0) continue;
    const Permutation p = permutation(b.id, ring_size, seed);
    heap.push_back(Cursor{.next = p.offset,
                          .skip = p.skip,
                          .turns = 0,
                          .weight = b.weight,
                          .rank = static_cast<uint32_t>(rank)});
  }
  if (heap.empty()) return owners;
  std::make_heap(heap.begin(), heap.end(),
                 [](const Cursor& a, const Cursor& b) { return turn_before(b, a); });

  // Each turn fills one slot, so exactly ring_size turns fill the ring. A turn walks its
  // permutation to the first free slot; the permutation is generated on the fly (one add and
  // one conditional subtract per step: next + skip < 2 * kMaxRingSize never overflows).
  for (uint32_t filled = 0; filled < ring_size; ++filled) {
    Cursor& c = heap[0];
    uint32_t slot = c.next;
    while (owners[slot] != kNoOwner) {
      slot += c.skip;
      if (slot >= ring_size) slot -= ring_size;
    }
    owners[slot] = c.rank;
    slot += c.skip;
    if (slot >= ring_size) slot -= ring_size;
    c.next = slot;
    ++c.turns;
    sift_down(heap);
  }
  return owners;
}

}  // namespace internal

Result<std::vector<uint32_t>> build(std::span<const Backend> backends, uint32_t ring_size,
                                    uint32_t seed) {
  XLB_TRY(internal::check_ring_size(ring_size));
  auto sorted = internal::sort_and_check(backends, ring_size);
  if (!sorted.ok()) return sorted.error();
  std::vector<uint32_t> ring = internal::populate(*sorted, ring_size, seed);
  // Owner positions become map indices in place: no second table.
  for (uint32_t& slot : ring) {
    slot = slot == internal::kNoOwner ? kEmptySlot : (*sorted)[slot]->index;
  }
  return ring;
}

}  // namespace xlb::maglev
