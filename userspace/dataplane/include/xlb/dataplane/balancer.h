// SPDX-License-Identifier: Apache-2.0
// Balancer: the loaded xlb_balancer program and its maps, behind typed calls.
//
// Owns the skeleton (RAII). Keeps the map invariants the program relies on: every VIP address
// is in vip_addrs, the port-less flag in the config matches the VIPs present, and a ring is
// swapped whole (new inner map) or patched slot by slot. Nothing here decides *what* to write;
// the control plane's reconciler does.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "xlb/abi.h"
#include "xlb/core/result.h"
#include "xlb/dataplane/fd.h"
#include "xlb/dataplane/map.h"

struct xlb_balancer;  // the generated skeleton

namespace xlb::dataplane {

// Layout of the connection table (see bpf/balancer.bpf.c): one hash with an LRU list per CPU
// (BPF_F_NO_COMMON_LRU), or one LRU hash per CPU. The shared hash is the default: every CPU
// finds every flow, so a flow whose packets move to another CPU (an RSS table change, veth,
// RPS) keeps its backend. Per-CPU maps measured equal except ~5 % faster inserts into a full
// table (docs/performance.md), not worth connections breaking when flows change CPU.
enum class FlowTable { kSharedPerCpuLru, kPerCpuMaps };

struct BalancerOptions {
  uint32_t max_vips = XLB_MAX_VIPS;
  uint32_t max_backends = XLB_MAX_BACKENDS;
  uint32_t flows_per_cpu = XLB_DEFAULT_FLOWS_PER_CPU;
  FlowTable flow_table = FlowTable::kSharedPerCpuLru;
  // Tests: the program reads its clock from set_fake_now() instead of the kernel.
  bool fake_clock = false;
  // When set, maps are pinned in this bpffs directory, and maps already pinned there are
  // adopted (connection table, rings, counters survive a restart).
  std::string pin_dir;
};

// Where xlbd pins the maps and the XDP link of an interface: /sys/fs/bpf/xlb/<ifname>.
std::string pin_dir_for(const std::string& ifname);

struct FlowPlacement {
  uint32_t backend_index = 0;
  bool from_table = false;  // true: connection-table entry; false: the ring
};

class Balancer {
 public:
  static Result<std::unique_ptr<Balancer>> load(const BalancerOptions& opts = {});
  ~Balancer();
  Balancer(const Balancer&) = delete;
  Balancer& operator=(const Balancer&) = delete;

  int prog_fd() const;
  const BalancerOptions& options() const { return opts_; }

  // Configuration. The XLB_CFG_PORTLESS_VIPS bit is managed here and ignored in `cfg`.
  Status set_config(const xlb_config& cfg);
  Result<xlb_config> config() const;
  // Defaults: GUE port, idle time, size limit, rate guard; addresses and MAC zero.
  static xlb_config default_config();

  // VIPs (also maintains vip_addrs and the port-less flag).
  Status put_vip(const xlb_vip_key& key, const xlb_vip_meta& meta);
  Result<bool> delete_vip(const xlb_vip_key& key);
  Result<std::optional<xlb_vip_meta>> vip(const xlb_vip_key& key) const;
  Result<std::vector<std::pair<xlb_vip_key, xlb_vip_meta>>> vips() const;

  // Backends by index.
  Status put_backend(uint32_t index, const xlb_backend& backend);
  Status clear_backend(uint32_t index);
  Result<xlb_backend> backend(uint32_t index) const;

  // Rings. set_ring builds a new inner map and swaps it in atomically (the VIP's ring_size
  // must match the new size before packets use slots beyond the old size: grow the ring
  // first, then the meta; shrink the meta first, then the ring).
  Status set_ring(uint32_t vip_index, std::span<const uint32_t> slots);
  // Patches slots of the current ring in place: (slot, backend index) pairs.
  Status update_ring(uint32_t vip_index, std::span<const std::pair<uint32_t, uint32_t>> slots);
  Result<std::vector<uint32_t>> ring(uint32_t vip_index) const;
  Status clear_ring(uint32_t vip_index);

  // Connection table.
  Result<std::optional<xlb_flow>> flow(const xlb_flow_key& key) const;
  // With per-CPU maps the entry goes into every CPU's map (any CPU may see the next packet).
  Status put_flow(const xlb_flow_key& key, const xlb_flow& value);
  // Bulk insert (benchmarks pre-fill the table); with per-CPU maps into `cpu`'s map only.
  Status put_flows(std::span<const xlb_flow_key> keys, std::span<const xlb_flow> values,
                   int cpu = 0);

  // Removes entries (absent ones are skipped); returns how many were removed.
  Result<size_t> delete_flows(std::span<const xlb_flow_key> keys);
  // Table capacity per CPU and family as created (flows_per_cpu plus the bucket-sizing entry).
  uint32_t flow_table_capacity() const;

  // Which backend the program would pick for this flow now (table entry, else the ring).
  // `new_connection`: a TCP SYN, which ignores the table.
  Result<FlowPlacement> flow_to_backend(const xlb_flow_key& key, bool new_connection = false) const;

  // Counters, summed over CPUs.
  Result<xlb_counters> counters() const;
  Result<xlb_traffic> vip_traffic(uint32_t vip_index) const;
  Result<xlb_traffic> backend_traffic(uint32_t backend_index) const;

  // Test seam (only with BalancerOptions::fake_clock).
  void set_fake_now(uint64_t ns);
  // The program's clock as it reads it (fake or CLOCK_MONOTONIC).
  uint64_t now_ns() const;

  // Map access for tools that need more (benchmarks, the daemon's adoption checks).
  int map_fd(const char* name) const;

 private:
  Balancer() = default;
  Status sync_derived_state();
  Status create_per_cpu_flow_maps();
  // The connection-table maps, [0] IPv4 and [1] IPv6: one each (shared) or one per CPU.
  std::vector<MapRef> flow_tables_[2];
  // CPU 0's tables, created before load as the inner templates of the per-CPU layout.
  UniqueFd first_flow_tables_[2];

  BalancerOptions opts_;
  xlb_balancer* skel_ = nullptr;
  Map<xlb_vip_key, xlb_vip_meta> vips_;
  Map<xlb_vip_addr_key, uint32_t> vip_addrs_;
  Map<uint32_t, uint32_t> rings_;  // outer: vip index -> inner map fd (id when read)
  Map<uint32_t, xlb_backend> backends_;
  Map<uint32_t, xlb_config> config_;
  PerCpuArray<xlb_traffic> vip_stats_;
  PerCpuArray<xlb_traffic> backend_stats_;
  PerCpuArray<xlb_counters> counters_;
};

}  // namespace xlb::dataplane
