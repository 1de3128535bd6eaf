// SPDX-License-Identifier: Apache-2.0
// Weighted Maglev population (algorithm described in maglev.h).
#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <vector>

#include "internal.h"
#include "xlb/maglev/maglev.h"

namespace xlb::maglev {
namespace internal {
namespace {

// One backend with a weight while the ring is being populated.
struct Racer {
  uint32_t next;   // slot of its next probe: offset + probes * skip (mod ring size)
  uint32_t skip;   // permutation step
  uint32_t count;  // slots owned so far
  uint32_t floor;  // its band (see band()): slots it may take without a seat...
  uint32_t cap;    // ...and slots it may own at most
  uint32_t rank;   // position in the id-sorted input
};

using u128 = unsigned __int128;

// floor(sqrt(x)), exactly: the double square root is only a first guess, corrected in integers.
uint64_t isqrt(u128 x) {
  auto r = static_cast<uint64_t>(std::sqrt(static_cast<double>(x)));
  while (r > 0 && u128{r} * r > x) --r;
  while (u128{r + 1} * (r + 1) <= x) ++r;
  return r;
}

// Seeds the dither of the band bounds, independent of the permutation hashes.
constexpr uint64_t kDitherDomain = 0x6469746865720000ULL;  // "dither"

struct Band {
  uint32_t floor;
  uint32_t cap;
};

// The band [floor, cap] of a backend of the given share: maglev.h explains the rule. Computed in
// 32.32 fixed point with integers only, so every host gets the same bounds: share
// q = ring_size * weight / total_weight, gain g = q / weighted (the slots one change of an average
// backend moves onto this one), slack h = sqrt(q) * (1 - sqrt(g) / 2) when g < 4, else 0, dither
// u in [0, 1) from the id; floor = min(floor(q), floor(q - 2h + u)), cap = max(floor(q) + 1,
// floor(q + h + u)).
Band band(uint64_t ring_size, uint64_t weight, uint64_t total_weight, uint64_t weighted,
          uint64_t dither) {
  constexpr int kFrac = 32;
  constexpr uint64_t kOne = uint64_t{1} << kFrac;
  // ring_size * weight < 2^52: the share (below 2^20 slots) is exact to 2^-32, rounded down, and
  // its whole part is exactly floor(q).
  const auto share = static_cast<uint64_t>((u128{ring_size} * weight << kFrac) / total_weight);
  const uint64_t root_share = isqrt(u128{share} << kFrac);              // sqrt(q) in 32.32
  const uint64_t root_gain = isqrt((u128{share} << kFrac) / weighted);  // sqrt(g) in 32.32
  // h = sqrt(q) * (2 - sqrt(g)) / 2: < 2^43 * 2^33 before the shift.
  const uint64_t slack =
      root_gain >= 2 * kOne
          ? 0
          : static_cast<uint64_t>((u128{root_share} * (2 * kOne - root_gain)) >> (kFrac + 1));
  const uint64_t u = dither >> kFrac;
  const uint64_t whole = share >> kFrac;
  const uint64_t low = share + u >= 2 * slack ? (share + u - 2 * slack) >> kFrac : 0;
  const uint64_t high = (share + slack + u) >> kFrac;
  return Band{.floor = static_cast<uint32_t>(std::min(whole, low)),
              .cap = static_cast<uint32_t>(std::max(whole + 1, high))};
}

// The backends of one weight probe in lockstep: step k (k = 1, 2, ...) of the group, in which
// each member probes once, in id order, happens at virtual time k / weight.
//
// To order the steps of many groups without a heap operation per step, time is mapped to integer
// ticks, tick(k) = ceil(k * kTicks / weight): steps in an earlier tick are earlier, and the few
// steps sharing a tick are ordered exactly (step_before). tick(k) is kept as a quotient and
// remainder, kTicks * k = tick_q * weight + tick_r, and advanced without dividing.
struct Group {
  uint64_t weight;
  uint64_t steps = 0;  // steps scheduled so far
  uint64_t tick_q = 0;
  uint64_t tick_r = 0;
  uint64_t per_q = 0;  // kTicks = per_q * weight + per_r
  uint64_t per_r = 0;
  uint32_t begin;  // members still probing: members[begin, end)
  uint32_t end;

  uint64_t next_tick() const { return tick_q + (tick_r != 0); }
  void advance() {
    ++steps;
    tick_r += per_r;
    const uint64_t carry = tick_r >= weight;  // branch-free: the carry is close to random
    tick_r -= carry * weight;
    tick_q += per_q + carry;
  }
};

// Ticks per unit of virtual time. Any positive constant gives the same order (ties within a tick
// are resolved exactly); 2^40 keeps ticks exact in 64 bits (steps <= kMaxRingSize + a batch,
// < 2^22) while making shared ticks rare for any realistic weights.
constexpr uint64_t kTicks = uint64_t{1} << 40;

struct Step {
  uint64_t tick;
  uint32_t group;
  uint32_t k;  // the group's step number, >= 1
};

// Is step a strictly before step b? Earlier tick; in the same tick, k_a / w_a < k_b / w_b by
// cross-multiplying (exact: k < 2^22, w < 2^32); equal times go to the heavier group. Groups have
// distinct weights, so this is a strict total order and no two hosts can disagree on it.
bool step_before(const Step& a, const Step& b, const std::vector<Group>& groups) {
  if (a.tick != b.tick) return a.tick < b.tick;
  const uint64_t wa = groups[a.group].weight;
  const uint64_t wb = groups[b.group].weight;
  const uint64_t ta = uint64_t{a.k} * wb;
  const uint64_t tb = uint64_t{b.k} * wa;
  return ta != tb ? ta < tb : wa > wb;
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
  uint64_t total_weight = 0;  // < 2^20 backends * 2^32
  for (const Backend* b : sorted) total_weight += b->weight;
  if (total_weight == 0) return owners;

  uint64_t weighted = 0;
  for (const Backend* b : sorted) weighted += b->weight > 0;

  std::vector<Racer> racers;
  racers.reserve(weighted);
  uint64_t floors = 0;
  for (size_t rank = 0; rank < sorted.size(); ++rank) {
    const Backend& b = *sorted[rank];
    if (b.weight == 0) continue;
    const Permutation p = permutation(b.id, ring_size, seed);
    const Band bounds =
        band(ring_size, b.weight, total_weight, weighted, hash64(b.id, kDitherDomain ^ seed));
    floors += bounds.floor;
    racers.push_back(Racer{.next = p.offset,
                           .skip = p.skip,
                           .count = 0,
                           .floor = bounds.floor,
                           .cap = bounds.cap,
                           .rank = static_cast<uint32_t>(rank)});
  }
  // Each floor is at most floor(share), so the floors leave seats over; each cap exceeds the
  // share, so the caps add up to more than the ring.
  uint64_t seats = ring_size - floors;
  const auto probing = [&seats](const Racer& r) {
    return r.count < r.floor || (r.count < r.cap && seats > 0);
  };

  // Groups of equal weight: racers ordered by weight, then id (a stable sort of the id order).
  std::vector<uint32_t> members(racers.size());
  for (uint32_t i = 0; i < members.size(); ++i) members[i] = i;
  const auto weight_of = [&](uint32_t racer) { return sorted[racers[racer].rank]->weight; };
  std::stable_sort(members.begin(), members.end(),
                   [&](uint32_t a, uint32_t b) { return weight_of(a) < weight_of(b); });
  std::vector<Group> groups;
  for (uint32_t i = 0; i < members.size(); ++i) {
    const uint64_t w = weight_of(members[i]);
    if (groups.empty() || groups.back().weight != w) {
      groups.push_back(
          Group{.weight = w, .per_q = kTicks / w, .per_r = kTicks % w, .begin = i, .end = i});
      groups.back().advance();  // tick of step 1
    }
    ++groups.back().end;
  }
  std::vector<uint32_t> live(groups.size());
  for (uint32_t g = 0; g < live.size(); ++g) live[g] = g;

  // A probe takes its slot if the slot is free and the backend is below its floor, or below its
  // cap while a seat is left. Every free slot is reachable by some backend still probing (the
  // floors and seats add up to ring_size, the caps to more, and each permutation visits every
  // slot), so the loop ends with the ring full, after at most ring_size probes per backend.
  //
  // Steps are taken in batches: all steps of the live groups in a window of ticks, sorted. The
  // window is sized for about as many steps as there are live groups (64 to 1024), so scanning
  // the groups costs O(1) per step; it starts at the earliest pending step, so it is never empty.
  constexpr uint64_t kBuckets = 1024;
  std::vector<uint32_t> bucket_end(kBuckets);
  std::vector<Step> batch;
  std::vector<Step> ordered;
  uint32_t filled = 0;
  while (filled < ring_size && !live.empty()) {
    uint64_t start = UINT64_MAX;
    uint64_t live_weight = 0;  // of the groups, one weight each: steps per unit of time
    for (uint32_t g : live) {
      start = std::min(start, groups[g].next_tick());
      live_weight += groups[g].weight;
    }
    const uint64_t wanted = std::clamp<uint64_t>(live.size(), 64, kBuckets);
    // Ticks for `wanted` steps: wanted * kTicks / live_weight, in 128 bits, at least one tick.
    const auto span = static_cast<uint64_t>(std::min<unsigned __int128>(
        static_cast<unsigned __int128>(wanted) * kTicks / live_weight + 1, uint64_t{1} << 62));
    const uint64_t stop = start + span;  // start < 2^63: no overflow
    batch.clear();
    for (uint32_t g : live) {
      Group& group = groups[g];
      while (group.next_tick() < stop) {
        batch.push_back(
            Step{.tick = group.next_tick(), .group = g, .k = static_cast<uint32_t>(group.steps)});
        group.advance();
      }
    }
    // Counting sort on the high bits of the tick offset (about one step per bucket), then an
    // insertion sort within each bucket: O(1) per step, where a comparison sort or a heap costs
    // O(log groups) mispredicted comparisons.
    const uint64_t buckets = std::bit_ceil(wanted);
    int shift = 0;
    while ((span >> shift) >= buckets) ++shift;
    std::fill_n(bucket_end.begin(), buckets, 0);
    for (const Step& s : batch) ++bucket_end[(s.tick - start) >> shift];
    uint32_t sum = 0;
    for (uint64_t b = 0; b < buckets; ++b) bucket_end[b] = (sum += bucket_end[b]);
    ordered.resize(batch.size());
    for (size_t i = batch.size(); i-- > 0;) {  // backwards: fills each bucket from its end
      ordered[--bucket_end[(batch[i].tick - start) >> shift]] = batch[i];
    }
    // bucket_end[b] is now the start of bucket b; steps of one bucket are adjacent.
    for (size_t i = 1; i < ordered.size(); ++i) {
      const Step s = ordered[i];
      size_t j = i;
      while (j > 0 && step_before(s, ordered[j - 1], groups)) {
        ordered[j] = ordered[j - 1];
        --j;
      }
      ordered[j] = s;
    }

    for (const Step& step : ordered) {
      if (filled == ring_size) break;
      Group& group = groups[step.group];
      uint32_t kept = group.begin;
      for (uint32_t i = group.begin; i < group.end; ++i) {
        Racer& r = racers[members[i]];
        if (filled < ring_size && probing(r)) {
          const uint32_t slot = r.next;
          if (owners[slot] == kNoOwner) {
            owners[slot] = r.rank;
            ++filled;
            if (r.count++ >= r.floor) --seats;
          }
          r.next = slot + r.skip >= ring_size ? slot + r.skip - ring_size : slot + r.skip;
        }
        if (probing(r)) members[kept++] = members[i];  // else done: dropped from the group
      }
      group.end = kept;
    }
    std::erase_if(live, [&](uint32_t g) { return groups[g].begin == groups[g].end; });
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
