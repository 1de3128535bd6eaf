// SPDX-License-Identifier: Apache-2.0
// Reconciler: brings the BPF maps to a DesiredState, in a safe order, transactionally.
//
// Model of the maps (see bpf/include/xlb/abi.h):
//  - every VIP has a VIP index (vips map value, rings outer slot, vip_stats slot);
//  - every (VIP, backend) membership has a backend index (backends map, backend_stats): the
//    same address in two VIPs is two entries, so counters and drains are per VIP;
//  - every VIP has a Maglev ring over its memberships with a positive effective weight.
//
// apply() order: (1) new backend entries, (2) rings (patched slot by slot when the size is
// unchanged, else swapped whole: grow = ring then VIP meta, shrink = meta then ring), (3) new and
// changed VIP entries, (4) removed VIPs (entry, then ring), (5) unused backend entries cleared
// and their indices released, (6) the global config. If any write fails, the writes already
// made are undone in reverse order, so the maps hold the previous consistent state, and the
// error is returned.
//
// Index reuse never points a live ring slot at another backend: a backend index is released
// only after no ring refers to it, and a released index is reused last (FIFO), so connection
// table entries that still name it have the longest time to age out first.
//
// Ring sizes are sticky: a VIP keeps its ring size while it suffices; it grows (next prime of
// 100 x backends, maglev::choose_ring_size) when backends are added, and changes when the
// operator sets ring_size. Rings are a pure function of (backend addresses, weights, ring size,
// hash seed): every host fed the same state builds the same rings.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "xlb/abi.h"
#include "xlb/core/result.h"
#include "xlb/state/types.h"

namespace xlb::state {

// What the reconciler writes to: the daemon implements it over dataplane::Balancer; tests use a
// fake that records calls and fails on demand.
class MapWriter {
 public:
  virtual ~MapWriter() = default;
  virtual Status put_backend(uint32_t index, const xlb_backend& backend) = 0;
  virtual Status clear_backend(uint32_t index) = 0;
  virtual Status set_ring(uint32_t vip_index, std::span<const uint32_t> slots) = 0;
  virtual Status update_ring(uint32_t vip_index,
                             std::span<const std::pair<uint32_t, uint32_t>> slots) = 0;
  virtual Status clear_ring(uint32_t vip_index) = 0;
  virtual Status put_vip(const xlb_vip_key& key, const xlb_vip_meta& meta) = 0;
  virtual Status delete_vip(const xlb_vip_key& key) = 0;
  virtual Status set_config(const xlb_config& config) = 0;
};

// What the maps hold, read back after a restart (adoption).
struct DataplaneSnapshot {
  std::vector<std::pair<xlb_vip_key, xlb_vip_meta>> vips;
  std::map<uint32_t, std::vector<uint32_t>> rings;  // vip index -> slots
  std::map<uint32_t, xlb_backend> backends;         // index -> entry (family != 0 only)
};

// One membership as applied.
struct AppliedBackend {
  IpAddress address;
  uint32_t index = 0;   // backends map index
  uint32_t weight = 0;  // effective weight in the ring
};

// One VIP as applied.
struct AppliedVip {
  VipKey key;
  uint32_t index = 0;
  uint32_t flags = 0;
  uint32_t ring_size = 0;
  std::vector<uint32_t> ring;
  std::vector<AppliedBackend> backends;  // sorted by address; includes weight-0 members
};

struct ReconcileReport {
  uint32_t vips_added = 0, vips_removed = 0, vips_changed = 0;
  uint32_t backends_added = 0, backends_removed = 0;
  uint32_t slots_changed = 0;  // ring slots that now name another backend
  uint32_t rings_swapped = 0;  // whole-ring replacements
  bool config_changed = false;
  std::chrono::microseconds duration{0};
};

struct ReconcilerOptions {
  uint32_t max_vips = XLB_MAX_VIPS;
  uint32_t max_backends = XLB_MAX_BACKENDS;
  // Patch a ring slot by slot when at most this fraction of slots changed; swap it whole
  // otherwise (xlb-bench maglev: patching is ~100x cheaper per call, a swap is atomic).
  double patch_threshold = 0.5;
};

class Reconciler {
 public:
  Reconciler(MapWriter& writer, ReconcilerOptions opts = {});

  // Rebuilds the applied state from what the maps hold (restart): VIPs, their rings and the
  // backend entries those rings use. Backend addresses come from the backends map. Must be
  // called before the first apply() when maps were adopted.
  Status adopt(const DataplaneSnapshot& snapshot);

  // Brings the maps to `desired` with data-plane configuration `config` and Maglev seed
  // config.hash_seed. On error nothing changed (see the header comment).
  Result<ReconcileReport> apply(const DesiredState& desired, const xlb_config& config);

  // What is applied now.
  const std::map<VipKey, AppliedVip>& applied() const { return applied_; }
  const AppliedVip* applied_vip(const VipKey& key) const;
  std::optional<xlb_config> applied_config() const { return config_; }

 private:
  MapWriter& writer_;
  ReconcilerOptions opts_;
  std::map<VipKey, AppliedVip> applied_;
  std::optional<xlb_config> config_;
  // Index allocators: free lists in release order (FIFO), plus the next never-used index.
  std::deque<uint32_t> free_vip_indices_, free_backend_indices_;
  uint32_t next_vip_index_ = 0, next_backend_index_ = 0;
  // Backend entries adopt() found that no ring refers to (e.g. drained at the restart), by
  // index; family 0: a ring referred to the index but the backends map had no entry. The next
  // apply() gives each to a membership with its address or clears it (see reconciler.cpp).
  std::map<uint32_t, xlb_backend> orphans_;
};

}  // namespace xlb::state
