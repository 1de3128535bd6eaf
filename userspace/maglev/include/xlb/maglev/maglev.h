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
// Population (Maglev, Eisenbud et al., NSDI 2016, with proportional weights): a "banded race".
//   * Backend b has a permutation of the slots: offset + j * skip (mod M), j = 0, 1, ...,
//     offset = hash(id) mod M, skip = hash'(id) mod (M - 1) + 1. M prime makes every such
//     permutation visit all M slots.
//   * Probes in virtual time: b's k-th probe (k = 1, 2, ...) looks at the k-th slot of its
//     permutation at time k / weight(b); equal times go to the heavier backend, then to the lower
//     id (a strict total order). Unlike Maglev's turns, which walk on to the next free slot, a
//     backend's probe times never depend on the other backends. Left alone (no bounds), the race
//     gives each slot to the backend that probes it first: rendezvous hashing on score
//     rank / weight, where a change moves exactly the changed backend's slots, but shares are
//     only binomial: +-sqrt(share).
//   * Bands: b, with share q = M * weight(b) / total weight, owns between a floor and a cap:
//         g     = q / n                     (n backends with a weight: the slots a change of one
//                                            average backend moves onto b)
//         h     = sqrt(q) * (1 - sqrt(g) / 2) while g < 4, else 0      (slack)
//         floor = min(floor(q), floor(q - 2h + u)),  cap = max(floor(q) + 1, floor(q + h + u))
//     u in [0, 1) is a hash of b's id (dither). All of it in 32.32 fixed point, integers only.
//     A probe takes its slot if the slot is free and b is below its floor, or below its cap
//     while a seat is left; seats = M - sum of the floors. The floors never exceed M and the
//     caps add up to more than M, so the race ends with the ring full and every backend within
//     its band. Only weight ratios matter; weight 0: no probes, no slots; no backend with a
//     weight: every slot is kEmptySlot (the data plane drops those flows, drop_no_backend).
//   * g >= 4 (h = 0): the band is [floor(q), floor(q) + 1] and seats are what the floors leave,
//     so every backend owns floor(q) slots and M - sum floor(q) of them one more: the best
//     balance whole slots allow, weights proportional within one slot ("quota race"). With equal
//     weights that is N <= sqrt(M) / 2: 128 backends at M = 65537.
//   * Why bands: a change reaches another backend only through its slot count. A one-backend
//     change lands about Poisson(g) of its slots on each other backend, while tight quotas move
//     by exactly g; a backend that got more than its quota moved gives up its last slot, the
//     next backend to probe that one likewise, and so on: a chain. For g >= 4 the mismatch is
//     small next to g (N = 100, M = 65537: g = 6.6, ratio 1.27), but it grows as g falls: 1.9 at
//     g = 1, 4.5 at g = 0.1 (N = 1000, M = 100003), whatever q is. Inside its band a backend
//     keeps what its permutation wins (the rendezvous behaviour above); only backends at a bound
//     pass slots on. sqrt(q) is the spread of those natural counts, so the cap opens from
//     floor(q) + 1 at g = 4 to one standard deviation above the share as g -> 0, and the floor
//     twice as far below (fewer backends reach it; an overloaded backend hurts more than an idle
//     one). The dither spreads the bound moves of a change of share over the backends, instead
//     of moving every bound at once when q crosses an integer (which costs ~10x the share).
//   * The price is balance where g < 4: max / mean <= (q + h + 1) / q, 1.09 at N = 1000,
//     M = 100003 (min / mean 0.83); with the ring size rule below, h stays under 10 % of q.
//
// Ring size: the larger M is relative to the backend count, the finer each backend's share:
// M >= 100 * backends keeps the slack above at most 1 / sqrt(100) of a share, and quotas tight
// while M >= 4 * backends^2. choose_ring_size() enforces the first; M then stays with the VIP as
// backends come and go.
//
// Measured (xlb-bench maglev; disruption = slots that change / slots of the backend removed or
// added, or gained by the one whose weight doubles, 1.0 is ideal; mean of 10 choices of that
// backend, worst in brackets; balance max / mean with min / mean in brackets, equal weights):
//                                      banded race     quota race      Maglev turns
//   balance       N=100,  M=65537     1.001 (0.999)   1.001 (0.999)
//   balance       N=1000, M=100003    1.090 (0.830)   1.010 (1.000)
//   remove one,   N=100,  M=65537     1.27 (1.30)     1.27 (1.30)         1.54
//   add one,      N=100,  M=65537     1.27 (1.31)     1.27 (1.31)         1.54
//   weight 1->2,  N=100,  M=65537     1.30 (1.35)     1.30 (1.35)         1.53
//   remove one,   N=1000, M=100003    1.26 (1.29)     4.46 (4.63)         6.68
//   add one,      N=1000, M=100003    1.33 (1.45)     3.06 (3.27)         6.51
//   weight 1->2,  N=1000, M=100003    1.30 (1.37)     3.15 (3.66)         6.70
//   build ms,     N=100 / N=1000      1.6 / 3.2       1.6 / 2.6
// ("quota race": the band closed for every g; "Maglev turns": the classic population, each turn
// walking to the next free slot.) Elsewhere: N = 200..655 at M = 65537 and N = 2000 at
// M = 200003 (g from 1.6 down to 0.05) give 1.21-1.34 (worst 1.42), N = 128 (g = 4, closed)
// 1.38-1.41; over five seeds N = 1000 stays within 1.21-1.32 (worst 1.45).
// Narrower bands cost stability: [q - 10, q + 4] gives 2.05 at N = 1000, [q - 2, q + 2] 3.3;
// a cap alone (q + 6, no floor) 1.48 with min / mean 0.76. Rejected, measured at N = 1000: one
// cap ceil(q) for all (remove 2.0, add 11.9: every cap drops when M / N crosses an integer);
// an unbounded race up to a fill level before the quotas (no change: no backend is near its
// quota that early); the leftover slots to the best-scoring backend without one (add 15);
// bounds around each backend's count in the unbounded race (as good as the band with a
// dither, add 3.9 without).
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
