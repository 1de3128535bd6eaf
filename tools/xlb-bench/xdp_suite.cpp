// SPDX-License-Identifier: Apache-2.0
// Suite "xdp": per-packet cost of each data-path case of xlb_balancer.
//
// Method (design.md section 6): BPF_PROG_TEST_RUN with repeat=1 per call (repeat>1 would feed
// the rewritten frame back in), many calls per case; time from the kernel's per-program
// run-time statistics (run_time_ns / run_cnt). Each run measures the XDP_TX floor program
// right before the case, and the case is reported as delta_ns = case - floor of that run;
// the median over runs is printed. The process is pinned to one CPU.
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <thread>

#include "bench.h"
#include "packet.h"
#include "xlb/core/address.h"
#include "xlb/dataplane/balancer.h"
#include "xlb/dataplane/decap.h"
#include "xlb/dataplane/test_run.h"

namespace xlb::bench {
namespace {

using dataplane::Balancer;
using test::Bytes;
using test::Packet;

constexpr uint32_t kBackends = 100;
constexpr uint32_t kRingSize = XLB_DEFAULT_RING_SIZE;
// Offsets in an Ethernet + IPv4 (no options) + TCP frame.
constexpr size_t kV4SrcOffset = 14 + 12;
constexpr size_t kV4SportOffset = 14 + 20;

struct CaseResult {
  double ns = 0;  // kernel run time per packet
  double call_ns = 0;  // wall time per BPF_PROG_TEST_RUN call
};

int fail(const std::string& what) {
  std::fprintf(stderr, "xlb-bench xdp: %s\n", what.c_str());
  return 1;
}

// Runs `prog_fd` `calls` times on `frame`; `mutate(i, frame)` may rewrite it between calls.
Result<CaseResult> measure(int prog_fd, Bytes frame, long calls, uint32_t expect_action,
                           const std::function<void(long, Bytes&)>& mutate = nullptr) {
  dataplane::TestRunResult out;
  auto before = dataplane::prog_stats(prog_fd);
  if (!before) return before.error();
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < calls; i++) {
    if (mutate) mutate(i, frame);
    XLB_TRY(dataplane::test_run_into(prog_fd, frame, {}, out));
    if (out.action != expect_action) {
      return Error::invalid("unexpected XDP action " + std::to_string(out.action) +
                            " (want " + std::to_string(expect_action) + ")");
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  auto after = dataplane::prog_stats(prog_fd);
  if (!after) return after.error();
  uint64_t cnt = after->run_cnt - before->run_cnt;
  if (cnt == 0) return Error::invalid("kernel run-time statistics did not count (bpf_stats?)");
  return CaseResult{
      double(after->run_time_ns - before->run_time_ns) / cnt,
      std::chrono::duration<double, std::nano>(t1 - t0).count() / calls};
}

test::Eth eth_in() {
  return {.src = test::mac("02:00:00:00:01:fe"), .dst = test::mac("02:00:00:00:02:01")};
}

Bytes tcp4(const char* dst, uint8_t flags) {
  return Packet()
      .eth(eth_in())
      .ipv4({.src = "198.18.1.2", .dst = dst, .df = true})
      .tcp({.sport = 40000, .dport = 80, .flags = flags, .seq = 1})
      .payload_pattern(64)
      .bytes();
}

Bytes tcp6(const char* dst, uint8_t flags) {
  return Packet()
      .eth(eth_in())
      .ipv6({.src = "2001:db8:1::2", .dst = dst})
      .tcp({.sport = 40000, .dport = 80, .flags = flags, .seq = 1})
      .payload_pattern(64)
      .bytes();
}

Status setup(Balancer& lb) {
  xlb_config cfg = Balancer::default_config();
  auto router = test::mac("02:00:00:00:02:fe");
  std::copy(router.octets.begin(), router.octets.end(), cfg.next_hop_mac);
  cfg.encap_src_v4 = test::Ipv4Addr("198.19.0.0").be();
  cfg.encap_src_v4_host_mask = htonl(0x0000ffff);
  cfg.encap_src_v6 = test::Ipv6Addr("2001:db8:ff::").to_abi();
  cfg.encap_src_v6_host_mask = htonl(0xffffffff);
  cfg.hash_seed = 0x5eed;
  cfg.new_flows_per_sec = 0;  // measure the table, not the guard
  XLB_TRY(lb.set_config(cfg));

  std::vector<uint32_t> ring4(kRingSize), ring6(kRingSize);
  for (uint32_t b = 0; b < kBackends; b++) {
    xlb_backend v4{}, v6{};
    v4.family = XLB_FAMILY_V4;
    v4.addr = test::Ipv4Addr("198.18.3." + std::to_string(b + 1)).to_abi();
    v6.family = XLB_FAMILY_V6;
    v6.addr = test::Ipv6Addr("2001:db8:3::" + std::to_string(b + 1)).to_abi();
    XLB_TRY(lb.put_backend(b, v4));
    XLB_TRY(lb.put_backend(kBackends + b, v6));
  }
  for (uint32_t i = 0; i < kRingSize; i++) {
    ring4[i] = i % kBackends;
    ring6[i] = kBackends + i % kBackends;
  }
  struct {
    const char* addr;
    uint32_t index;
    uint32_t flags;
    const std::vector<uint32_t>* ring;
  } vips[] = {{"198.18.200.1", 0, 0, &ring4},
              {"198.18.200.2", 1, XLB_VIP_NO_LRU, &ring4},
              {"2001:db8:200::1", 2, 0, &ring6}};
  for (const auto& v : vips) {
    auto ip = IpAddress::parse(v.addr);
    if (!ip) return ip.error();
    XLB_TRY(lb.set_ring(v.index, *v.ring));
    xlb_vip_key key{};
    key.addr = ip->abi();
    key.port = htons(80);
    key.proto = IPPROTO_TCP;
    key.family = ip->abi_family();
    XLB_TRY(lb.put_vip(key, {.vip_index = v.index, .flags = v.flags, .ring_size = kRingSize}));
  }
  return {};
}

// Key `i` of the unrelated flows that pre-fill the table: sources in 198.18.128.0/17.
xlb_flow_key filler_key(long i) {
  xlb_flow_key key{};
  key.src.words[0] = htonl((198u << 24) | (18u << 16) | 0x8000u | uint32_t((i >> 16) & 0x7fff));
  key.dst = test::Ipv4Addr("198.18.200.1").to_abi();
  key.sport = htons(uint16_t(i));
  key.dport = htons(80);
  key.proto = IPPROTO_TCP;
  key.family = XLB_FAMILY_V4;
  return key;
}

// Inserts fillers [first, first + n) into `cpu`'s share of the table, from a thread running on
// that CPU (the shared layout keeps an LRU list per CPU: the inserting CPU's list gets them).
Status prefill(Balancer& lb, long first, long n, int cpu) {
  std::vector<xlb_flow_key> keys(n);
  std::vector<xlb_flow> values(n);
  for (long i = 0; i < n; i++) {
    keys[i] = filler_key(first + i);
    values[i].backend_index = (first + i) % kBackends;
  }
  Status result;
  std::thread t([&] {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(cpu, &cpus);
    sched_setaffinity(0, sizeof(cpus), &cpus);
    result = lb.put_flows(keys, values, cpu);
  });
  t.join();
  return result;
}

// The flow of new-flow packet number n: source port, then source address (198.18.4.0/24).
void new_flow_tuple(uint32_t n, uint16_t& sport_be, uint32_t& src_be) {
  sport_be = htons(uint16_t(1024 + n % 64000));
  src_be = htonl((198u << 24) | (18u << 16) | (4u << 8) | ((n / 64000) & 0xff));
}

// Measures every case against one connection-table layout; `suffix` names the layout in the
// case names ("" for the default one).
int run_cases(const Options& opts, dataplane::FlowTable layout, const std::string& suffix,
              int floor_prog) {
  auto lb = Balancer::load({.flow_table = layout});
  if (!lb) return fail(lb.error().to_string());
  if (auto st = setup(**lb); !st) return fail(st.error().to_string());
  // The table holds 1M flows (scaled), spread over the CPUs as RSS spreads them.
  const int cpus = dataplane::possible_cpus();
  const long prefilled = scaled(opts, 1'000'000, 1000);
  for (int cpu = 0; cpu < cpus; cpu++) {
    if (auto st = prefill(**lb, cpu * (prefilled / cpus), prefilled / cpus, cpu); !st) {
      return fail(st.error().to_string());
    }
  }

  const long calls = scaled(opts, 200'000, 200);
  const int prog = (*lb)->prog_fd();

  // Prime the table for the hit cases.
  Bytes hit4 = tcp4("198.18.200.1", test::kAck);
  Bytes hit6 = tcp6("2001:db8:200::1", test::kAck);
  for (const Bytes* f : {&hit4, &hit6}) {
    auto r = dataplane::test_run(prog, *f);
    if (!r || r->action != XDP_TX) return fail("priming the connection table failed");
  }

  uint32_t new_flow_counter = 0;
  uint32_t run_first_flow = 0;
  auto new_source = [&](long, Bytes& f) {
    uint16_t sport;
    uint32_t src;
    new_flow_tuple(new_flow_counter++, sport, src);
    std::memcpy(&f[kV4SportOffset], &sport, 2);
    std::memcpy(&f[kV4SrcOffset], &src, 4);
  };
  // After a new-flow run: remove what it inserted, so every run starts from the same table.
  auto forget_new_flows = [&]() -> Status {
    std::vector<xlb_flow_key> keys;
    for (uint32_t n = run_first_flow; n < new_flow_counter; n++) {
      xlb_flow_key k = filler_key(0);
      new_flow_tuple(n, k.sport, k.src.words[0]);
      keys.push_back(k);
    }
    run_first_flow = new_flow_counter;
    auto removed = (*lb)->delete_flows(keys);
    if (!removed) return removed.error();
    return {};
  };

  struct Case {
    std::string name;
    Bytes frame;
    uint32_t action;
    std::function<void(long, Bytes&)> mutate;
    bool restore;  // remove the flows a run inserted
    double target;  // ns, delta over the floor
    double katran;  // Katran's program measured the same way on this machine kind
  };
  std::vector<Case> cases = {
      {"pass_non_vip", tcp4("198.18.9.9", test::kAck), XDP_PASS, nullptr, false, 52, 52},
      {"lru_hit_v4", hit4, XDP_TX, nullptr, false, 141, 141},
      {"lru_hit_v6", hit6, XDP_TX, nullptr, false, 200, 0},
      {"ring_v4", tcp4("198.18.200.2", test::kAck), XDP_TX, nullptr, false, 111, 111},
      // A new connection: its SYN skips the table lookup and inserts.
      {"new_flow_v4", tcp4("198.18.200.1", test::kSyn), XDP_TX, new_source, true, 540, 542},
      // Mid-stream packets of flows the table does not know (after a failover of the LB):
      // lookup miss, then insert. No target; reported for comparison.
      {"new_flow_v4_midstream", tcp4("198.18.200.1", test::kAck), XDP_TX, new_source, true, 0,
       0},
  };

  struct Samples {
    std::vector<double> delta, abs, call, floor;
  };
  auto run_case = [&](const Case& c, Samples& out) -> Status {
    auto floor = measure(floor_prog, c.frame, calls, XDP_TX);
    if (!floor) return floor.error();
    run_first_flow = new_flow_counter;
    auto r = measure(prog, c.frame, calls, c.action, c.mutate);
    if (!r) return r.error();
    if (c.restore) XLB_TRY(forget_new_flows());
    out.floor.push_back(floor->ns);
    out.delta.push_back(r->ns - floor->ns);
    out.abs.push_back(r->ns);
    out.call.push_back(r->call_ns);
    return {};
  };
  const char* layout_name =
      layout == dataplane::FlowTable::kPerCpuMaps ? "per_cpu_maps" : "shared_per_cpu_lru";
  auto report = [&](const Case& c, const Samples& s, nlohmann::json extra) {
    extra.update({{"abs_ns", median(s.abs)},
                  {"call_ns", median(s.call)},
                  {"floor_ns", median(s.floor)},
                  {"flow_table", layout_name},
                  {"calls", calls},
                  {"runs", opts.runs}});
    // Targets apply to the layout xlb uses by default.
    if (c.target > 0 && suffix.empty()) extra["target"] = c.target;
    if (c.katran > 0) extra["katran_ns"] = c.katran;
    emit(opts, "xdp", c.name + suffix, "delta_ns", median(s.delta), "ns", extra);
  };

  std::vector<Samples> samples(cases.size());
  for (int run = 0; run < opts.runs; run++) {
    for (size_t c = 0; c < cases.size(); c++) {
      if (auto st = run_case(cases[c], samples[c]); !st) {
        return fail(cases[c].name + ": " + st.error().to_string());
      }
    }
  }
  if (suffix.empty()) {
    std::vector<double> all;
    for (const auto& s : samples) all.insert(all.end(), s.floor.begin(), s.floor.end());
    emit(opts, "xdp", "floor", "floor_ns", median(all), "ns",
         {{"calls", calls}, {"runs", opts.runs}});
  }
  for (size_t c = 0; c < cases.size(); c++) {
    nlohmann::json extra = nlohmann::json::object();
    if (cases[c].mutate) {
      extra["table_flows"] = prefilled;
      extra["table_capacity"] = uint64_t{(*lb)->flow_table_capacity()} * cpus;
    }
    report(cases[c], samples[c], extra);
  }

  // The worst case: this CPU's share of the table is full, every insert evicts the oldest
  // entry. No target (the case has the table at its default size with 1M flows).
  const long top_up = scaled(opts, (*lb)->flow_table_capacity(), 1000);
  if (auto st = prefill(**lb, prefilled, top_up, 0); !st) return fail(st.error().to_string());
  Case full{"new_flow_v4_full", tcp4("198.18.200.1", test::kSyn), XDP_TX, new_source, false, 0,
            0};
  Samples full_samples;
  for (int run = 0; run < opts.runs; run++) {
    if (auto st = run_case(full, full_samples); !st) return fail(st.error().to_string());
  }
  report(full, full_samples, {{"table_cpu0_full", true}});

  auto counters = (*lb)->counters();
  if (counters && counters->c[XLB_CNT_XDP_DROP] != 0) {
    return fail("the balancer dropped packets during the benchmark");
  }
  return 0;
}

}  // namespace

int run_xdp_suite(const Options& opts) {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(0, &cpus);
  sched_setaffinity(0, sizeof(cpus), &cpus);  // best effort: one CPU, one LRU list

  auto stats = dataplane::RunTimeStats::enable();
  if (!stats) return fail(stats.error().to_string());
  auto helpers = dataplane::HelperPrograms::load();
  if (!helpers) return fail(helpers.error().to_string());
  int rc =
      run_cases(opts, dataplane::FlowTable::kSharedPerCpuLru, "", (*helpers)->floor_tx_fd());
  // The other layout, for comparison (docs/performance.md).
  rc |= run_cases(opts, dataplane::FlowTable::kPerCpuMaps, "_per_cpu_maps",
                  (*helpers)->floor_tx_fd());
  return rc;
}

}  // namespace xlb::bench
