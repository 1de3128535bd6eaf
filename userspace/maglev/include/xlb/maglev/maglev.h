// SPDX-License-Identifier: Apache-2.0
// Weighted Maglev lookup tables ("rings"): pure functions, no libbpf, no I/O.
//
// A ring is an array of M slots (M prime); slot s holds the backend-map index that receives new
// flows whose hash is s modulo M. Every xlb host fed the same backends must build byte-identical
// rings, so a flow lands on the same backend whichever host ECMP picks. Hence:
//   * the ring is a pure function of (set of backend identities, their weights and indices,
//     M, seed): input order never matters, backends are processed sorted by id (bytewise);
//   * every hash is hash64() below, defined on bytes and fixed-width integers only (no
//     std::hash, no host byte order), so the result does not depend on host or compiler.
//
// Population (Maglev, Eisenbud et al., NSDI 2016, with proportional weights): a "quota race".
//   * Backend b has a permutation of the slots: offset + j * skip (mod M), j = 0, 1, ...,
//     offset = hash(id) mod M, skip = hash'(id) mod (M - 1) + 1. M prime makes every such
//     permutation visit all M slots.
//   * Quotas: b's quota is floor(M * weight(b) / total weight), exact integer arithmetic. The
//     quotas leave r < (backends with a weight) slots over: r spare seats.
//   * Probes in virtual time: b's k-th probe (k = 1, 2, ...) looks at the k-th slot of its
//     permutation at time k / weight(b); equal times go to the heavier backend, then to the lower
//     id (a strict total order). A probe takes its slot if the slot is free and b is below its
//     quota, or exactly at it while a spare seat is left (b then holds that seat; at most one).
//     Otherwise the probe is spent and b moves on: unlike Maglev's turns, which walk on to the
//     next free slot, a backend's probe times never depend on the other backends.
//   * The race ends when the ring is full (quotas plus seats add up to M, and a backend still
//     probing reaches every slot), so every backend owns its quota and exactly r of them one
//     slot more: the best balance whole slots allow, weights proportional within one slot. Only
//     weight ratios matter; weight 0: no probes, no slots; no backend with a weight: every slot
//     is kEmptySlot (the data plane drops those flows and counts drop_no_backend).
//   * Why: a change reaches another backend only through its slot count. A removed backend's
//     slot goes to the next backend to probe it, which meets its quota one slot early and so
//     gives up its last slot, and so on, until a seat or the end of the race absorbs the chain.
//     Maglev's turns instead shift every later turn of the backend that got the slot, and its
//     chains branch. Changing one weight acts like adding or removing that much share.
//
// Ring size: the larger M is relative to the backend count, the finer each backend's share:
// with the one-slot error above, M >= 100 * backends keeps equal backends within 1 % of each
// other. choose_ring_size() enforces that rule; M then stays with the VIP as backends come and go.
//
// Disruption (slots that change / slots of the backend removed or added, or gained by the one
// whose weight doubles; 1.0 is ideal), xlb-bench maglev, mean of 10 choices of that backend:
//                                  quota race   Maglev turns   loose caps (rejected)
//   remove one,   N=100,  M=65537     1.27          1.54           1.28
//   add one,      N=100,  M=65537     1.27          1.54           1.30
//   weight 1->2,  N=100,  M=65537     1.30          1.53           1.31
//   remove one,   N=1000, M=100003    4.46          6.68           2.02
//   add one,      N=1000, M=100003    3.06          6.51          11.9
//   weight 1->2,  N=1000, M=100003    3.15          6.70          11.8
// ("Maglev turns": the classic population, each turn walking to the next free slot.)
// The goal of 1.6 is not met with ~100 slots per backend (N=1000): a chain crosses many backends
// before a seat absorbs it. Rejected: "loose caps" (no quota, a cap of ceil(share) per backend)
// leave the counts spread (776 of 1000 backends at the cap of 101, others down to 83: 17 % short
// of their share), so whenever M / N crosses an integer, as right after sizing by the 100x rule
// (M / N = 100.003), adding a backend or raising a weight lowers every cap and moves ~12x its
// share. Racing the r leftover slots only after every quota is met: 3.6 for remove, 15 for add.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xlb/abi.h"
#include "xlb/core/result.h"

namespace xlb::maglev {

struct Backend {
  // Stable identity of the backend, e.g. "198.18.3.11" or "[2001:db8:3::11]:8080". Must be
  // unique and non-empty; it alone decides the backend's permutation.
  std::string id;
  // Relative share of the slots; 0 = no slots (draining or unhealthy, still known).
  uint32_t weight = 1;
  // The value stored in the backend's slots: its index in the `backends` map.
  uint32_t index = 0;
};

// Slot value when no backend has a positive weight (or there are no backends).
inline constexpr uint32_t kEmptySlot = UINT32_MAX;

// Smallest ring accepted: below it even a handful of backends cannot be given fair shares.
inline constexpr uint32_t kMinRingSize = 7;
inline constexpr uint32_t kDefaultRingSize = XLB_DEFAULT_RING_SIZE;
inline constexpr uint32_t kMaxRingSize = XLB_MAX_RING_SIZE;
// Slots wanted per backend before the ring is raised (see the header comment).
inline constexpr uint32_t kSlotsPerBackend = 100;

// ---- Ring size ---------------------------------------------------------------------------

bool is_prime(uint64_t n);
// Smallest prime >= n; 0 if there is none below 2^32.
uint32_t next_prime(uint32_t n);

struct RingSize {
  uint32_t size = 0;
  // The size differs from the requested one (or the default): 100 x backends did not fit.
  bool raised = false;
  // Even kMaxRingSize is below 100 x backends: shares are coarser than 1 %. Cannot happen
  // with the default map limits (100 x XLB_MAX_BACKENDS < kMaxRingSize), only when the loader
  // sizes the backend map beyond kMaxRingSize / 100 = 10485 entries.
  bool capped = false;
  // Why the size was raised or capped, for the caller to log; empty otherwise.
  std::string note;
};

// The ring size for a VIP with `n_backends` backends: `requested` (or kDefaultRingSize), raised
// to the next prime >= 100 x n_backends when smaller, capped at kMaxRingSize. A requested size
// must be prime and within [kMinRingSize, kMaxRingSize]; so must n_backends be <= kMaxRingSize.
Result<RingSize> choose_ring_size(size_t n_backends, std::optional<uint32_t> requested);

// ---- Hashing and permutations ------------------------------------------------------------

// The 64-bit hash behind every permutation: defined on the bytes alone, identical on every host.
// Changing it reshuffles every ring of every fleet; unit tests pin its values.
uint64_t hash64(std::string_view bytes, uint64_t seed);

// Backend `id`'s preference order of the slots: slot j is (offset + j * skip) mod ring_size.
// ring_size must be prime (>= 2); then skip is in [1, ring_size) and the order visits every slot.
struct Permutation {
  uint32_t offset = 0;
  uint32_t skip = 1;
};
Permutation permutation(std::string_view id, uint32_t ring_size, uint32_t seed);

// ---- Building ----------------------------------------------------------------------------

// The ring of `backends` (any order) with `ring_size` slots. Errors: ring_size not prime or
// out of [kMinRingSize, kMaxRingSize]; empty or duplicate id; duplicate index or an index equal
// to kEmptySlot; more backends with a positive weight than slots.
Result<std::vector<uint32_t>> build(std::span<const Backend> backends, uint32_t ring_size,
                                    uint32_t seed);

// ---- Updating a ring in place ------------------------------------------------------------

struct SlotChange {
  uint32_t slot;
  uint32_t old_value;
  uint32_t new_value;
};

struct RingDiff {
  // Sizes differ (or there is no old ring): the map writer must install the new ring whole
  // (a new inner map, swapped atomically); `changes` is empty then.
  bool replace_whole_ring = false;
  // Slots to rewrite, in ascending slot order.
  std::vector<SlotChange> changes;
};

RingDiff diff(std::span<const uint32_t> old_ring, std::span<const uint32_t> new_ring);

// ---- Planning a change (xlbctl plan) -----------------------------------------------------

struct BackendPlan {
  std::string id;
  uint32_t slots_before = 0;  // 0 if absent from the current set
  uint32_t slots_after = 0;   // 0 if absent from the proposed set
  uint32_t slots_gained = 0;  // slots it owns after and did not own before
  uint32_t slots_lost = 0;    // slots it owned before and does not own after
};

struct Plan {
  // Every id of either set, sorted by id.
  std::vector<BackendPlan> backends;
  uint32_t ring_size = 0;
  // Slots whose owner (by id) changes. Index renumbering alone does not count: flows stay put.
  uint32_t slots_changed = 0;
  // slots_changed / ring_size: the share of the hash space that moves, i.e. of new flows (and
  // flows without a connection-table entry) that would land on another backend.
  double moved_fraction = 0.0;
};

// What replacing `current` by `proposed` does to a ring of `ring_size` slots built with `seed`.
// Errors: those of build() for either set.
Result<Plan> plan(std::span<const Backend> current, std::span<const Backend> proposed,
                  uint32_t ring_size, uint32_t seed);

}  // namespace xlb::maglev
