// SPDX-License-Identifier: Apache-2.0
#include "xlb/dataplane/balancer.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/in.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <numeric>

#include "xlb/dataplane/fd.h"
#include "xlb/flow_hash.h"
#include "xlb/skel/balancer.skel.h"

namespace xlb::dataplane {
namespace {

// Maps the loader sizes, pins and adopts (the skeleton's internal .rodata/.bss are not).
constexpr const char* kPinnedMaps[] = {
    "vips",           "vip_addrs",        "rings",     "backends",      "flows_v4",
    "flows_v6",       "flows_v4_per_cpu", "flows_v6_per_cpu", "vip_stats", "backend_stats",
    "counters",       "rate_guard",       "config"};

// The kernel gives a hash map roundup_pow_of_two(max_entries) buckets. Asking for one entry
// more than configured gives a power-of-two table twice as many buckets as entries (load <= 0.5
// when full): shorter chains, fewer cache misses per insert into a full table (measured in
// docs/performance.md).
// A shared table (BPF_F_NO_COMMON_LRU) is rounded up by the kernel to a multiple of the CPU
// count; asking for exactly that keeps a pinned table reusable on restart (libbpf compares the
// sizes).
uint32_t table_entries(uint64_t flows, uint32_t multiple_of = 1) {
  return static_cast<uint32_t>((flows + 1 + multiple_of - 1) / multiple_of * multiple_of);
}

struct FlowFamily {
  const char* outer;  // per-CPU outer map name
  uint32_t key_size;
};
constexpr FlowFamily kFlowFamilies[2] = {{"flows_v4_per_cpu", sizeof(xlb_flow_key_v4)},
                                         {"flows_v6_per_cpu", sizeof(xlb_flow_key)}};

Status make_dirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error{ec, "creating pin directory " + dir + " (is bpffs mounted there?)"};
  return {};
}

// An fd for the inner map at `index` of a map-in-map (a VIP's ring, a CPU's flow table), or an
// invalid fd when the slot is empty.
Result<UniqueFd> inner_map_fd(int outer_fd, uint32_t vip_index) {
  uint32_t id = 0;
  if (bpf_map_lookup_elem(outer_fd, &vip_index, &id) != 0) {
    if (errno == ENOENT) return UniqueFd();
    return Error::from_errno(errno, "reading a map-in-map");
  }
  int fd = bpf_map_get_fd_by_id(id);
  if (fd < 0) return Error::from_errno(errno, "opening the inner map at index " +
                                                  std::to_string(vip_index));
  return UniqueFd(fd);
}

}  // namespace

std::string pin_dir_for(const std::string& ifname) { return "/sys/fs/bpf/xlb/" + ifname; }

xlb_config Balancer::default_config() {
  xlb_config cfg{};
  cfg.gue_port = htons(XLB_DEFAULT_GUE_PORT);
  cfg.max_pkt_size = XLB_DEFAULT_MAX_PKT_SIZE;
  cfg.new_flows_per_sec = XLB_DEFAULT_NEW_FLOWS_PER_SEC;
  cfg.udp_idle_ns = XLB_DEFAULT_UDP_IDLE_NS;
  return cfg;
}

Result<std::unique_ptr<Balancer>> Balancer::load(const BalancerOptions& opts) {
  if (opts.max_vips == 0 || opts.max_backends == 0 || opts.flows_per_cpu == 0) {
    return Error::invalid("balancer limits must be positive (max_vips, max_backends, flows)");
  }
  std::unique_ptr<Balancer> b(new Balancer());
  b->opts_ = opts;
  b->skel_ = xlb_balancer__open();
  if (!b->skel_) return Error::from_errno(errno, "opening the balancer BPF object");
  auto* skel = b->skel_;

  // Read-only knobs and map sizes must be set between open and load.
  const bool per_cpu_maps = opts.flow_table == FlowTable::kPerCpuMaps;
  const uint32_t cpus = possible_cpus();
  skel->rodata->xlb_fake_clock = opts.fake_clock ? 1 : 0;
  skel->rodata->xlb_flow_maps_per_cpu = per_cpu_maps ? 1 : 0;
  uint64_t flows = uint64_t{opts.flows_per_cpu} * cpus;
  if (flows >= UINT32_MAX) return Error::invalid("flows_per_cpu x CPUs exceeds 2^32");
  // The layout not in use shrinks to its minimum.
  struct {
    bpf_map* map;
    uint32_t entries;
  } sizes[] = {
      {skel->maps.vips, opts.max_vips},
      {skel->maps.vip_addrs, opts.max_vips},
      {skel->maps.rings, opts.max_vips},
      {skel->maps.vip_stats, opts.max_vips},
      {skel->maps.backends, opts.max_backends},
      {skel->maps.backend_stats, opts.max_backends},
      {skel->maps.flows_v4, per_cpu_maps ? cpus : table_entries(flows, cpus)},
      {skel->maps.flows_v6, per_cpu_maps ? cpus : table_entries(flows, cpus)},
      {skel->maps.flows_v4_per_cpu, cpus},
      {skel->maps.flows_v6_per_cpu, cpus},
  };
  for (auto& s : sizes) {
    if (int err = bpf_map__set_max_entries(s.map, s.entries)) {
      return Error::from_errno(err, std::string("sizing BPF map ") + bpf_map__name(s.map));
    }
  }

  // Pinned maps: libbpf adopts a compatible map already pinned at the path and pins new ones.
  if (!opts.pin_dir.empty()) {
    XLB_TRY(make_dirs(opts.pin_dir));
    for (const char* name : kPinnedMaps) {
      bpf_map* map = bpf_object__find_map_by_name(skel->obj, name);
      std::string path = opts.pin_dir + "/" + name;
      if (!map || bpf_map__set_pin_path(map, path.c_str()) != 0) {
        return Error::from_errno(EINVAL, "setting pin path " + path);
      }
    }
  }

  // Inner-map templates of the per-CPU tables. A new layout uses CPU 0's real tables
  // (installed after load); when pinned outer maps will be adopted, 1-entry stand-ins do.
  UniqueFd templates[2];
  for (int fam = 0; fam < 2; fam++) {
    const FlowFamily& f = kFlowFamilies[fam];
    const bool adopting =
        !opts.pin_dir.empty() && std::filesystem::exists(opts.pin_dir + "/" + f.outer);
    templates[fam].reset(bpf_map_create(
        BPF_MAP_TYPE_LRU_HASH, "xlb_flows", f.key_size, sizeof(xlb_flow),
        per_cpu_maps && !adopting ? table_entries(opts.flows_per_cpu) : 1, nullptr));
    if (!templates[fam].valid()) return Error::from_errno(errno, "creating a flow table");
    bpf_map* outer = bpf_object__find_map_by_name(skel->obj, f.outer);
    if (int err = bpf_map__set_inner_map_fd(outer, templates[fam].get())) {
      return Error::from_errno(err, "setting the flow table template");
    }
    if (per_cpu_maps && !adopting) b->first_flow_tables_[fam] = std::move(templates[fam]);
  }

  if (int err = xlb_balancer__load(skel)) {
    return Error::from_errno(
        err, "loading the balancer program (the verifier log, if any, is above; "
             "`tools/check-kernel` lists kernel options xlb needs; a map pinned under " +
                 (opts.pin_dir.empty() ? std::string("<none>") : opts.pin_dir) +
                 " with another layout is refused)");
  }

  auto ref = [&](bpf_map* m) { return MapRef(bpf_map__fd(m), bpf_map__name(m)); };
  b->vips_ = decltype(b->vips_)(ref(skel->maps.vips));
  b->vip_addrs_ = decltype(b->vip_addrs_)(ref(skel->maps.vip_addrs));
  b->rings_ = decltype(b->rings_)(ref(skel->maps.rings));
  b->backends_ = decltype(b->backends_)(ref(skel->maps.backends));
  b->config_ = decltype(b->config_)(ref(skel->maps.config));
  b->vip_stats_ = decltype(b->vip_stats_)(ref(skel->maps.vip_stats));
  b->backend_stats_ = decltype(b->backend_stats_)(ref(skel->maps.backend_stats));
  b->counters_ = decltype(b->counters_)(ref(skel->maps.counters));

  if (per_cpu_maps) {
    XLB_TRY(b->create_per_cpu_flow_maps());
  } else {
    b->flow_tables_[0].push_back(ref(skel->maps.flows_v4));
    b->flow_tables_[1].push_back(ref(skel->maps.flows_v6));
  }

  // A fresh config map is all zeros (max_pkt_size 0 would drop every VIP packet): defaults.
  auto cfg = b->config();
  if (!cfg) return cfg.error();
  if (cfg->max_pkt_size == 0) XLB_TRY(b->set_config(default_config()));
  return b;
}

Balancer::~Balancer() {
  if (opts_.flow_table == FlowTable::kPerCpuMaps) {
    for (const auto& family : flow_tables_) {
      for (const auto& t : family) close(t.fd());
    }
  }
  xlb_balancer__destroy(skel_);
}

// One LRU hash per CPU and family, installed in the outer maps; maps already there (adopted)
// are kept if their size matches.
Status Balancer::create_per_cpu_flow_maps() {
  const uint32_t entries = table_entries(opts_.flows_per_cpu);
  for (int fam = 0; fam < 2; fam++) {
    const FlowFamily& f = kFlowFamilies[fam];
    const int outer = bpf_object__find_map_fd_by_name(skel_->obj, f.outer);
    for (uint32_t cpu = 0; cpu < static_cast<uint32_t>(possible_cpus()); cpu++) {
      const std::string name = std::string(f.outer) + "[" + std::to_string(cpu) + "]";
      auto existing = inner_map_fd(outer, cpu);
      if (!existing) return existing.error();
      UniqueFd fd = std::move(*existing);
      if (fd.valid()) {
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) {
          return Error::from_errno(errno, "reading the adopted flow table " + name);
        }
        if (info.max_entries != entries || info.key_size != f.key_size ||
            info.value_size != sizeof(xlb_flow)) {
          return Error::invalid("the pinned flow table " + name + " holds " +
                                std::to_string(info.max_entries - 1) + " flows, configured " +
                                std::to_string(opts_.flows_per_cpu) +
                                ": keep the old size, or remove the pins under " +
                                opts_.pin_dir + " (drops established flows)");
        }
      } else {
        if (cpu == 0 && first_flow_tables_[fam].valid()) {
          fd = std::move(first_flow_tables_[fam]);
        } else {
          fd.reset(bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "xlb_flows", f.key_size,
                                  sizeof(xlb_flow), entries, nullptr));
        }
        if (!fd.valid()) return Error::from_errno(errno, "creating the flow table " + name);
        int raw = fd.get();
        if (bpf_map_update_elem(outer, &cpu, &raw, 0) != 0) {
          return Error::from_errno(errno, "installing the flow table " + name);
        }
      }
      // The outer map holds its own reference; keep an fd for userspace access.
      flow_tables_[fam].emplace_back(fd.release(), name);
    }
  }
  return {};
}

int Balancer::prog_fd() const { return bpf_program__fd(skel_->progs.xlb_balancer); }

int Balancer::map_fd(const char* name) const {
  return bpf_object__find_map_fd_by_name(skel_->obj, name);
}

Status Balancer::set_config(const xlb_config& cfg) {
  auto current = config();
  if (!current) return current.error();
  xlb_config next = cfg;
  next.flags = (cfg.flags & ~XLB_CFG_PORTLESS_VIPS) | (current->flags & XLB_CFG_PORTLESS_VIPS);
  return config_.update(0, next);
}

Result<xlb_config> Balancer::config() const {
  auto cfg = config_.lookup(0);
  if (!cfg) return cfg.error();
  return cfg->value_or(xlb_config{});
}

// vip_addrs and the port-less flag follow from the VIP set; recomputed after every change so
// that they are right after adoption too.
Status Balancer::sync_derived_state() {
  auto all = vips();
  if (!all) return all.error();
  std::map<std::pair<std::vector<uint8_t>, uint32_t>, uint32_t> wanted;
  bool portless = false;
  for (const auto& [key, meta] : *all) {
    const auto* p = reinterpret_cast<const uint8_t*>(&key.addr);
    wanted[{std::vector<uint8_t>(p, p + sizeof(key.addr)), key.family}]++;
    portless |= key.port == 0;
  }
  for (const auto& [addr, count] : wanted) {
    xlb_vip_addr_key k{};
    std::copy(addr.first.begin(), addr.first.end(), reinterpret_cast<uint8_t*>(&k.addr));
    k.family = addr.second;
    XLB_TRY(vip_addrs_.update(k, count));
  }
  auto present = vip_addrs_.keys();
  if (!present) return present.error();
  for (const auto& k : *present) {
    const auto* p = reinterpret_cast<const uint8_t*>(&k.addr);
    if (!wanted.count({std::vector<uint8_t>(p, p + sizeof(k.addr)), k.family})) {
      auto erased = vip_addrs_.erase(k);
      if (!erased) return erased.error();
    }
  }
  auto cfg = config();
  if (!cfg) return cfg.error();
  uint32_t flags = portless ? (cfg->flags | XLB_CFG_PORTLESS_VIPS)
                            : (cfg->flags & ~XLB_CFG_PORTLESS_VIPS);
  if (flags == cfg->flags) return {};
  xlb_config next = *cfg;
  next.flags = flags;
  return config_.update(0, next);
}

Status Balancer::put_vip(const xlb_vip_key& key, const xlb_vip_meta& meta) {
  if (meta.vip_index >= opts_.max_vips) {
    return Error::invalid("VIP index " + std::to_string(meta.vip_index) + " >= max_vips " +
                          std::to_string(opts_.max_vips));
  }
  if (meta.flags & ~XLB_VIP_FLAGS_ALL) return Error::invalid("unknown VIP flags");
  if (key.family != XLB_FAMILY_V4 && key.family != XLB_FAMILY_V6) {
    return Error::invalid("VIP family must be 4 or 6");
  }
  if (key.proto != IPPROTO_TCP && key.proto != IPPROTO_UDP) {
    return Error::invalid("VIP protocol must be TCP or UDP");
  }
  XLB_TRY(vips_.update(key, meta));
  return sync_derived_state();
}

Result<bool> Balancer::delete_vip(const xlb_vip_key& key) {
  auto erased = vips_.erase(key);
  if (!erased) return erased.error();
  XLB_TRY(sync_derived_state());
  return *erased;
}

Result<std::optional<xlb_vip_meta>> Balancer::vip(const xlb_vip_key& key) const {
  return vips_.lookup(key);
}

Result<std::vector<std::pair<xlb_vip_key, xlb_vip_meta>>> Balancer::vips() const {
  auto keys = vips_.keys();
  if (!keys) return keys.error();
  std::vector<std::pair<xlb_vip_key, xlb_vip_meta>> out;
  for (const auto& k : *keys) {
    auto meta = vips_.lookup(k);
    if (!meta) return meta.error();
    if (*meta) out.emplace_back(k, **meta);
  }
  return out;
}

Status Balancer::put_backend(uint32_t index, const xlb_backend& backend) {
  if (index >= opts_.max_backends) {
    return Error::invalid("backend index " + std::to_string(index) + " >= max_backends " +
                          std::to_string(opts_.max_backends));
  }
  if (backend.family != XLB_FAMILY_V4 && backend.family != XLB_FAMILY_V6) {
    return Error::invalid("backend family must be 4 or 6");
  }
  return backends_.update(index, backend);
}

Status Balancer::clear_backend(uint32_t index) { return backends_.update(index, xlb_backend{}); }

Result<xlb_backend> Balancer::backend(uint32_t index) const {
  auto b = backends_.lookup(index);
  if (!b) return b.error();
  if (!*b) return Error::invalid("backend index " + std::to_string(index) + " out of range");
  return **b;
}

namespace {

// A ring map's slots, mapped into this process (rings are BPF_F_MMAPABLE arrays): reads and
// 32-bit stores go straight to the memory the program reads. The kernel spaces array elements
// 8 bytes apart (round_up(value_size, 8)), so slot i is the low half of 64-bit word i.
class MappedRing {
 public:
  static Result<MappedRing> map(int fd, bool writable) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
      return Error::from_errno(errno, "reading ring map info");
    }
    if (info.value_size != sizeof(uint32_t)) return Error::invalid("not a ring map");
    MappedRing r;
    r.size_ = info.max_entries;
    r.bytes_ = (size_t{info.max_entries} * kStride + 4095) & ~size_t{4095};
    void* p = mmap(nullptr, r.bytes_, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return Error::from_errno(errno, "mapping a ring map");
    r.base_ = static_cast<uint8_t*>(p);
    return r;
  }
  MappedRing(MappedRing&& o) noexcept
      : base_(std::exchange(o.base_, nullptr)), size_(o.size_), bytes_(o.bytes_) {}
  MappedRing& operator=(MappedRing&&) = delete;
  ~MappedRing() {
    if (base_) munmap(base_, bytes_);
  }

  uint32_t size() const { return size_; }
  uint32_t get(uint32_t slot) const {
    return __atomic_load_n(reinterpret_cast<const uint32_t*>(base_ + size_t{slot} * kStride),
                           __ATOMIC_RELAXED);
  }
  // One aligned 32-bit store: the program sees the old or the new value, never a mix.
  void set(uint32_t slot, uint32_t value) {
    __atomic_store_n(reinterpret_cast<uint32_t*>(base_ + size_t{slot} * kStride), value,
                     __ATOMIC_RELAXED);
  }

 private:
  static constexpr size_t kStride = 8;
  MappedRing() = default;
  uint8_t* base_ = nullptr;
  uint32_t size_ = 0;
  size_t bytes_ = 0;
};

}  // namespace

Status Balancer::set_ring(uint32_t vip_index, std::span<const uint32_t> slots) {
  if (vip_index >= opts_.max_vips) return Error::invalid("VIP index out of range");
  if (slots.empty() || slots.size() > XLB_MAX_RING_SIZE) {
    return Error::invalid("ring size must be 1.." + std::to_string(XLB_MAX_RING_SIZE));
  }
  LIBBPF_OPTS(bpf_map_create_opts, create_opts, .map_flags = BPF_F_INNER_MAP | BPF_F_MMAPABLE);
  UniqueFd inner(bpf_map_create(BPF_MAP_TYPE_ARRAY, "xlb_ring", sizeof(uint32_t),
                                sizeof(uint32_t), slots.size(), &create_opts));
  if (!inner.valid()) return Error::from_errno(errno, "creating a ring map");
  {
    auto mapped = MappedRing::map(inner.get(), /*writable=*/true);
    if (!mapped) return mapped.error();
    for (uint32_t i = 0; i < slots.size(); i++) mapped->set(i, slots[i]);
  }
  // The swap: one update of the outer map, atomic for the program.
  int fd = inner.get();
  if (bpf_map_update_elem(rings_.fd(), &vip_index, &fd, 0) != 0) {
    return Error::from_errno(errno, "installing the ring of VIP index " +
                                        std::to_string(vip_index));
  }
  return {};
}

Status Balancer::update_ring(uint32_t vip_index,
                             std::span<const std::pair<uint32_t, uint32_t>> slots) {
  auto inner = inner_map_fd(rings_.fd(), vip_index);
  if (!inner) return inner.error();
  if (!inner->valid()) return Error::invalid("VIP index " + std::to_string(vip_index) +
                                             " has no ring to update");
  auto mapped = MappedRing::map(inner->get(), /*writable=*/true);
  if (!mapped) return mapped.error();
  for (auto [slot, value] : slots) {
    if (slot >= mapped->size()) return Error::invalid("ring slot " + std::to_string(slot) +
                                                      " out of range");
  }
  for (auto [slot, value] : slots) mapped->set(slot, value);
  return {};
}

Result<std::vector<uint32_t>> Balancer::ring(uint32_t vip_index) const {
  auto inner = inner_map_fd(rings_.fd(), vip_index);
  if (!inner) return inner.error();
  if (!inner->valid()) return std::vector<uint32_t>();
  auto mapped = MappedRing::map(inner->get(), /*writable=*/false);
  if (!mapped) return mapped.error();
  std::vector<uint32_t> out(mapped->size());
  for (uint32_t i = 0; i < out.size(); i++) out[i] = mapped->get(i);
  return out;
}

Status Balancer::clear_ring(uint32_t vip_index) {
  auto erased = rings_.erase(vip_index);
  if (!erased) return erased.error();
  return {};
}

namespace {
xlb_flow_key_v4 v4_key(const xlb_flow_key& key) {
  xlb_flow_key_v4 k{};
  k.src = key.src.words[0];
  k.dst = key.dst.words[0];
  k.sport = key.sport;
  k.dport = key.dport;
  k.proto = key.proto;
  return k;
}
}  // namespace

Result<std::optional<xlb_flow>> Balancer::flow(const xlb_flow_key& key) const {
  const bool v4 = key.family == XLB_FAMILY_V4;
  const xlb_flow_key_v4 key4 = v4_key(key);
  const void* raw_key = v4 ? static_cast<const void*>(&key4) : &key;
  for (const auto& table : flow_tables_[v4 ? 0 : 1]) {
    xlb_flow value{};
    auto found = table.lookup_raw(raw_key, &value);
    if (!found) return found.error();
    if (*found) return std::optional<xlb_flow>(value);
  }
  return std::optional<xlb_flow>();
}

Status Balancer::put_flow(const xlb_flow_key& key, const xlb_flow& value) {
  const bool v4 = key.family == XLB_FAMILY_V4;
  const xlb_flow_key_v4 key4 = v4_key(key);
  const void* raw_key = v4 ? static_cast<const void*>(&key4) : &key;
  for (const auto& table : flow_tables_[v4 ? 0 : 1]) {
    XLB_TRY(table.update_raw(raw_key, &value, 0));
  }
  return {};
}

Status Balancer::put_flows(std::span<const xlb_flow_key> keys, std::span<const xlb_flow> values,
                           int cpu) {
  if (keys.size() != values.size()) return Error::invalid("put_flows: keys/values differ");
  // Grouped by family: IPv4 keys are converted to the compact table key.
  std::vector<xlb_flow_key_v4> keys4;
  std::vector<xlb_flow> values4;
  std::vector<xlb_flow_key> keys6;
  std::vector<xlb_flow> values6;
  for (size_t i = 0; i < keys.size(); i++) {
    if (keys[i].family == XLB_FAMILY_V4) {
      keys4.push_back(v4_key(keys[i]));
      values4.push_back(values[i]);
    } else {
      keys6.push_back(keys[i]);
      values6.push_back(values[i]);
    }
  }
  auto fill = [&](const std::vector<MapRef>& tables, const void* k, size_t key_size,
                  const xlb_flow* v, size_t n) -> Status {
    if (n == 0) return {};
    const MapRef& table = tables[static_cast<size_t>(cpu) < tables.size() ? cpu : 0];
    constexpr size_t kBatch = 4096;
    LIBBPF_OPTS(bpf_map_batch_opts, batch_opts);
    for (size_t i = 0; i < n; i += kBatch) {
      uint32_t count = std::min(kBatch, n - i);
      if (bpf_map_update_batch(table.fd(), static_cast<const uint8_t*>(k) + i * key_size,
                               v + i, &count, &batch_opts) != 0) {
        return Error::from_errno(errno, "filling the connection table " + table.name());
      }
    }
    return {};
  };
  if (cpu < 0) cpu = 0;
  XLB_TRY(fill(flow_tables_[0], keys4.data(), sizeof(xlb_flow_key_v4), values4.data(),
               keys4.size()));
  return fill(flow_tables_[1], keys6.data(), sizeof(xlb_flow_key), values6.data(), keys6.size());
}

Result<size_t> Balancer::delete_flows(std::span<const xlb_flow_key> keys) {
  size_t removed = 0;
  for (const auto& key : keys) {
    const bool v4 = key.family == XLB_FAMILY_V4;
    const xlb_flow_key_v4 key4 = v4_key(key);
    const void* raw_key = v4 ? static_cast<const void*>(&key4) : &key;
    for (const auto& table : flow_tables_[v4 ? 0 : 1]) {
      auto erased = table.erase_raw(raw_key);
      if (!erased) return erased.error();
      removed += *erased;
    }
  }
  return removed;
}

uint32_t Balancer::flow_table_capacity() const { return table_entries(opts_.flows_per_cpu); }

Result<FlowPlacement> Balancer::flow_to_backend(const xlb_flow_key& key,
                                                bool new_connection) const {
  xlb_vip_key vk{};
  vk.addr = key.dst;
  vk.port = key.dport;
  vk.proto = key.proto;
  vk.family = key.family;
  auto meta = vips_.lookup(vk);
  if (!meta) return meta.error();
  if (!*meta) {
    vk.port = 0;
    meta = vips_.lookup(vk);
    if (!meta) return meta.error();
    if (!*meta) return Error::invalid("no VIP matches the flow's destination");
  }
  auto cfg = config();
  if (!cfg) return cfg.error();
  const xlb_vip_meta& vip = **meta;

  if (!(vip.flags & XLB_VIP_NO_LRU) && !new_connection) {
    auto entry = flow(key);
    if (!entry) return entry.error();
    if (*entry) {
      bool expired = key.proto == IPPROTO_UDP && now_ns() - (*entry)->atime_ns > cfg->udp_idle_ns;
      if (!expired) return FlowPlacement{(*entry)->backend_index, true};
    }
  }
  auto inner = inner_map_fd(rings_.fd(), vip.vip_index);
  if (!inner) return inner.error();
  if (!inner->valid()) return Error::invalid("the VIP has no ring");
  uint32_t slot = xlb_ring_slot(xlb_flow_hash(&key, vip.flags, cfg->hash_seed), vip.ring_size);
  uint32_t backend = 0;
  if (bpf_map_lookup_elem(inner->get(), &slot, &backend) != 0) {
    return Error::from_errno(errno, "reading ring slot " + std::to_string(slot));
  }
  return FlowPlacement{backend, false};
}

Result<xlb_counters> Balancer::counters() const {
  auto per_cpu = counters_.lookup_all(0);
  if (!per_cpu) return per_cpu.error();
  xlb_counters sum{};
  for (const auto& c : *per_cpu) {
    for (int i = 0; i < XLB_CNT__MAX; i++) sum.c[i] += c.c[i];
  }
  return sum;
}

namespace {
Result<xlb_traffic> sum_traffic(const PerCpuArray<xlb_traffic>& map, uint32_t index) {
  auto per_cpu = map.lookup_all(index);
  if (!per_cpu) return per_cpu.error();
  xlb_traffic sum{};
  for (const auto& t : *per_cpu) {
    sum.packets += t.packets;
    sum.bytes += t.bytes;
  }
  return sum;
}
}  // namespace

Result<xlb_traffic> Balancer::vip_traffic(uint32_t vip_index) const {
  return sum_traffic(vip_stats_, vip_index);
}

Result<xlb_traffic> Balancer::backend_traffic(uint32_t backend_index) const {
  return sum_traffic(backend_stats_, backend_index);
}

void Balancer::set_fake_now(uint64_t ns) { skel_->bss->xlb_fake_now_ns = ns; }

uint64_t Balancer::now_ns() const {
  if (opts_.fake_clock) return skel_->bss->xlb_fake_now_ns;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ULL + ts.tv_nsec;
}

}  // namespace xlb::dataplane
