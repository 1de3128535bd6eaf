// SPDX-License-Identifier: Apache-2.0
// Comparing rings: the slot diff the map writer applies, and the per-backend plan xlbctl shows.
#include <string>

#include "internal.h"
#include "xlb/maglev/maglev.h"

namespace xlb::maglev {

RingDiff diff(std::span<const uint32_t> old_ring, std::span<const uint32_t> new_ring) {
  RingDiff result;
  if (old_ring.size() != new_ring.size()) {
    result.replace_whole_ring = true;
    return result;
  }
  for (size_t slot = 0; slot < new_ring.size(); ++slot) {
    if (old_ring[slot] != new_ring[slot]) {
      result.changes.push_back(SlotChange{.slot = static_cast<uint32_t>(slot),
                                          .old_value = old_ring[slot],
                                          .new_value = new_ring[slot]});
    }
  }
  return result;
}

Result<Plan> plan(std::span<const Backend> current, std::span<const Backend> proposed,
                  uint32_t ring_size, uint32_t seed) {
  XLB_TRY(internal::check_ring_size(ring_size));
  auto before = internal::sort_and_check(current, ring_size);
  if (!before.ok()) return Error::invalid("current backends: " + before.error().message);
  auto after = internal::sort_and_check(proposed, ring_size);
  if (!after.ok()) return Error::invalid("proposed backends: " + after.error().message);

  // Merge the two id-sorted lists into one, remembering where each backend of either list went,
  // so slots are compared by identity: an id keeps its place even if its map index changes.
  Plan result{.ring_size = ring_size};
  std::vector<uint32_t> pos_before(before->size());
  std::vector<uint32_t> pos_after(after->size());
  size_t i = 0;
  size_t j = 0;
  while (i < before->size() || j < after->size()) {
    const auto pos = static_cast<uint32_t>(result.backends.size());
    const bool take_before =
        i < before->size() && (j == after->size() || (*before)[i]->id <= (*after)[j]->id);
    const bool take_after =
        j < after->size() && (i == before->size() || (*after)[j]->id <= (*before)[i]->id);
    result.backends.push_back(BackendPlan{.id = take_before ? (*before)[i]->id : (*after)[j]->id});
    if (take_before) pos_before[i++] = pos;
    if (take_after) pos_after[j++] = pos;
  }

  const std::vector<uint32_t> owners_before = internal::populate(*before, ring_size, seed);
  const std::vector<uint32_t> owners_after = internal::populate(*after, ring_size, seed);
  constexpr uint32_t kNone = internal::kNoOwner;
  for (uint32_t slot = 0; slot < ring_size; ++slot) {
    const uint32_t a = owners_before[slot] == kNone ? kNone : pos_before[owners_before[slot]];
    const uint32_t b = owners_after[slot] == kNone ? kNone : pos_after[owners_after[slot]];
    if (a != kNone) ++result.backends[a].slots_before;
    if (b != kNone) ++result.backends[b].slots_after;
    if (a == b) continue;
    ++result.slots_changed;
    if (a != kNone) ++result.backends[a].slots_lost;
    if (b != kNone) ++result.backends[b].slots_gained;
  }
  result.moved_fraction = static_cast<double>(result.slots_changed) / ring_size;
  return result;
}

}  // namespace xlb::maglev
