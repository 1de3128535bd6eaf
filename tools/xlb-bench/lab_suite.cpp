// SPDX-License-Identifier: Apache-2.0
// Suite "lab": forwarded packet rate of xlb on a veth, against an XDP_TX reflector on the same
// veth, same frames, same run (docs/bench-lab.md).
//
// Topology (lab_topology.h): the generator injects live frames on g0 (xlb-pktgen's library);
// they arrive at l0, where either the reflector (floor) or xlb_balancer runs; what l0 sends
// back (XDP_TX) reaches g0's sink, which counts and drops it. Forwarded Mpps = sink count /
// generator time. For pass_non_vip nothing comes back: xlb's own xdp_pass counter is the count
// (field "counted"). Every run is bounded in frames and time; floor and xlb runs alternate,
// each case reports the medians over --runs and the median of the per-run ratios.
//
// Cases: path x family x flows x cores, path one of
//   established  - TCP ACKs of flows already in the connection table (warmed first): LRU hit;
//   new_flow     - TCP SYNs, each from a source port its client did not use in the last 64512
//                  frames: xlb's new-connection path (no lookup, ring pick, table insert);
//   pass_non_vip - TCP ACKs to an address that is no VIP: XDP_PASS to the LB's stack;
// flows: clients (source addresses, one source port each; new_flow: advancing ports);
// cores: generator threads pinned to CPUs 0..cores-1; veth picks the receive queue by the
// sending CPU, so each core also runs the NAPI of one queue of l0 and g0.
#include <arpa/inet.h>
#include <gflags/gflags.h>
#include <netinet/in.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench.h"
#include "lab_topology.h"
#include "xlb/dataplane/balancer.h"
#include "xlb/dataplane/decap.h"
#include "xlb/dataplane/map.h"
#include "xlb/pktgen/generator.h"

DEFINE_string(lab_cases, "",
              "lab: run only the cases whose name contains this text (e.g. established_v4)");

namespace xlb::bench {
namespace {

using dataplane::Balancer;
using pktgen::FrameSpec;
using pktgen::Generator;

constexpr uint32_t kBackends = 16;
constexpr double kEstablishedTarget = 0.9;

enum class Path { kEstablished, kNewFlow, kPassNonVip };

const char* path_name(Path p) {
  switch (p) {
    case Path::kEstablished:
      return "established";
    case Path::kNewFlow:
      return "new_flow";
    case Path::kPassNonVip:
      return "pass_non_vip";
  }
  return "?";
}

int fail(const std::string& what) {
  std::fprintf(stderr, "xlb-bench lab: %s\n", what.c_str());
  return 1;
}

// VIPs 198.18.200.1:80 and [2001:db8:200::1]:80 (TCP), kBackends backends per family,
// encapsulated frames addressed to g0.
Status configure_balancer(Balancer& lb) {
  xlb_config cfg = Balancer::default_config();
  const auto& next_hop = LabTopology::g0_mac().octets;
  std::copy(next_hop.begin(), next_hop.end(), cfg.next_hop_mac);
  cfg.encap_src_v4 = htonl((198u << 24) | (19u << 16));
  cfg.encap_src_v4_host_mask = htonl(0x0000ffff);
  cfg.encap_src_v6 = IpAddress::parse("2001:db8:ff::")->abi();
  cfg.encap_src_v6_host_mask = htonl(0xffffffff);
  cfg.hash_seed = 0x1ab5eed;
  // The new-flow case measures table inserts, not the rate guard that would skip them.
  cfg.new_flows_per_sec = 0;
  XLB_TRY(lb.set_config(cfg));

  for (Family family : {Family::kV4, Family::kV6}) {
    const bool v4 = family == Family::kV4;
    const uint32_t first = v4 ? 0 : kBackends;
    for (uint32_t b = 0; b < kBackends; b++) {
      auto addr = IpAddress::parse((v4 ? "198.18.3." : "2001:db8:3::") + std::to_string(b + 1));
      xlb_backend be{};
      be.addr = addr->abi();
      be.family = addr->abi_family();
      XLB_TRY(lb.put_backend(first + b, be));
    }
    std::vector<uint32_t> ring(XLB_DEFAULT_RING_SIZE);
    for (uint32_t i = 0; i < ring.size(); i++) ring[i] = first + i % kBackends;
    const uint32_t vip_index = v4 ? 0 : 1;
    XLB_TRY(lb.set_ring(vip_index, ring));
    const FrameSpec spec = pktgen::default_spec(family);
    xlb_vip_key key{};
    key.addr = spec.dst.abi();
    key.port = htons(spec.dport);
    key.proto = IPPROTO_TCP;
    key.family = spec.dst.abi_family();
    XLB_TRY(lb.put_vip(key, {.vip_index = vip_index, .ring_size = XLB_DEFAULT_RING_SIZE}));
  }
  return {};
}

FrameSpec spec_for(Path path, Family family, uint32_t flows) {
  FrameSpec spec = pktgen::default_spec(family);
  spec.proto = path == Path::kNewFlow ? pktgen::Proto::kTcpSyn : pktgen::Proto::kTcpAck;
  spec.flows = flows;
  spec.new_connections = path == Path::kNewFlow;
  spec.size = pktgen::default_frame_size(family, spec.proto);
  spec.src_mac = LabTopology::g0_mac();
  spec.dst_mac = LabTopology::l0_mac();
  if (path == Path::kPassNonVip) {
    spec.dst = *IpAddress::parse(family == Family::kV4 ? "198.18.9.9" : "2001:db8:9::9");
  }
  return spec;
}

struct Lab {
  const Options& opts;
  Generator& gen;
  Balancer& lb;
  LabTopology& topo;
  int floor_fd;
  uint64_t frames_per_run;
  std::chrono::milliseconds run_limit;
};

struct Sample {
  uint64_t sent = 0;
  uint64_t counted = 0;
  double mpps = 0;
  bool timed_out = false;
};

uint64_t delta(const xlb_counters& a, const xlb_counters& b, xlb_counter c) {
  return b.c[c] - a.c[c];
}

// Checks that xlb took the path the case is named after, for every frame it saw.
Status check_path(Path path, const xlb_counters& before, const xlb_counters& after) {
  const uint64_t seen = delta(before, after, XLB_CNT_XDP_TX) +
                        delta(before, after, XLB_CNT_XDP_PASS) +
                        delta(before, after, XLB_CNT_XDP_DROP);
  uint64_t on_path = 0;
  switch (path) {
    case Path::kEstablished:
      on_path = delta(before, after, XLB_CNT_LRU_HIT);
      break;
    case Path::kNewFlow:
      on_path = delta(before, after, XLB_CNT_LRU_SKIPPED);
      break;
    case Path::kPassNonVip:
      on_path = delta(before, after, XLB_CNT_XDP_PASS);
      break;
  }
  if (seen == 0 || on_path != seen || delta(before, after, XLB_CNT_XDP_DROP) != 0) {
    return Error::invalid(std::string("xlb did not take the ") + path_name(path) +
                          " path for every frame: " + std::to_string(on_path) + " of " +
                          std::to_string(seen) + " (drops " +
                          std::to_string(delta(before, after, XLB_CNT_XDP_DROP)) + ")");
  }
  return {};
}

// One bounded run with xlb (or, for the floor, the reflector) on l0.
Result<Sample> run_once(Lab& lab, Path path, bool xlb, const std::vector<int>& cpus) {
  XLB_TRY(lab.topo.set_lb_program(xlb ? lab.lb.prog_fd() : lab.floor_fd));
  auto sink_before = lab.gen.sink();
  if (!sink_before) return sink_before.error();
  auto lb_before = lab.lb.counters();
  if (!lb_before) return lb_before.error();
  auto r = lab.gen.inject({.netns_fd = lab.topo.gen_netns(),
                           .ifindex = lab.topo.g0_ifindex(),
                           .count = lab.frames_per_run,
                           .max_duration = lab.run_limit,
                           .cpus = cpus});
  if (!r) return r.error();
  auto sink_after = lab.gen.settled_sink();
  if (!sink_after) return sink_after.error();
  auto lb_after = lab.lb.counters();
  if (!lb_after) return lb_after.error();

  Sample s{.sent = r->sent, .timed_out = r->timed_out};
  if (xlb) XLB_TRY(check_path(path, *lb_before, *lb_after));
  s.counted = xlb && path == Path::kPassNonVip ? delta(*lb_before, *lb_after, XLB_CNT_XDP_PASS)
                                               : *sink_after - *sink_before;
  s.mpps = r->seconds > 0 ? s.counted / r->seconds / 1e6 : 0;
  return s;
}

// Sends every flow of the current spec once through xlb: their table entries exist after.
Status warm_table(Lab& lab, uint32_t flows, int cpu) {
  XLB_TRY(lab.topo.set_lb_program(lab.lb.prog_fd()));
  auto r = lab.gen.inject({.netns_fd = lab.topo.gen_netns(),
                           .ifindex = lab.topo.g0_ifindex(),
                           .count = flows,
                           .max_duration = std::chrono::seconds(5),
                           .cpus = {cpu}});
  if (!r) return r.error();
  if (r->sent != flows) return Error::invalid("warming the connection table sent too few frames");
  auto settled = lab.gen.settled_sink();
  if (!settled) return settled.error();
  return {};
}

std::string case_name(Path path, Family family, uint32_t flows, size_t cores) {
  return std::string(path_name(path)) + "_" + (family == Family::kV4 ? "v4" : "v6") + "_" +
         std::to_string(flows) + "flows_" + std::to_string(cores) + "core";
}

Status run_case(Lab& lab, Path path, Family family, uint32_t flows, const std::vector<int>& cpus) {
  const FrameSpec spec = spec_for(path, family, flows);
  XLB_TRY(lab.gen.configure(spec));
  if (path == Path::kEstablished) XLB_TRY(warm_table(lab, flows, cpus[0]));

  std::vector<double> floor, xlb, ratio;
  std::vector<double> sent;
  bool timed_out = false;
  for (int run = 0; run < lab.opts.runs; run++) {
    auto f = run_once(lab, path, false, cpus);
    if (!f) return f.error();
    auto x = run_once(lab, path, true, cpus);
    if (!x) return x.error();
    floor.push_back(f->mpps);
    xlb.push_back(x->mpps);
    ratio.push_back(f->mpps > 0 ? x->mpps / f->mpps : 0);
    sent.push_back(double(f->sent));
    sent.push_back(double(x->sent));
    timed_out |= f->timed_out || x->timed_out;
  }
  const std::string fam = family == Family::kV4 ? "v4" : "v6";
  const int cores = static_cast<int>(cpus.size());
  const std::string name = case_name(path, family, flows, cpus.size());
  nlohmann::json extra = {
      {"path", path_name(path)}, {"family", fam},
      {"flows", flows},          {"cores", cores},
      {"frame_size", spec.size}, {"packets", static_cast<uint64_t>(median(sent))},
      {"runs", lab.opts.runs}};
  if (timed_out) extra["time_bound_hit"] = true;
  if (path == Path::kNewFlow) {
    // A tuple recurs after this many frames; the table holds flow_table_capacity() per CPU,
    // beyond which every insert evicts.
    extra["tuples_before_repeat"] = uint64_t{flows} * XLB_PKTGEN_SPORT_SPAN;
    extra["table_capacity_per_cpu"] = lab.lb.flow_table_capacity();
  }
  emit(lab.opts, "lab", name, "floor_mpps", median(floor), "Mpps", extra);
  nlohmann::json xlb_extra = extra;
  xlb_extra["counted"] = path == Path::kPassNonVip ? "xlb_xdp_pass" : "sink";
  emit(lab.opts, "lab", name, "xlb_mpps", median(xlb), "Mpps", xlb_extra);
  nlohmann::json ratio_extra = extra;
  if (path == Path::kEstablished) ratio_extra["target"] = kEstablishedTarget;
  // What xlb adds per packet on one core, to compare with the xdp suite's delta_ns: the
  // ratio is (floor ns) / (floor ns + this), whatever else the floor path costs.
  if (median(xlb) > 0 && median(floor) > 0) {
    ratio_extra["xlb_extra_ns_per_core"] = cores * (1e3 / median(xlb) - 1e3 / median(floor));
    ratio_extra["floor_ns_per_core"] = cores * 1e3 / median(floor);
  }
  emit(lab.opts, "lab", name, "ratio_to_floor", median(ratio), "ratio", ratio_extra);
  return {};
}

// CPUs this process may run on, in order.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE && c < dataplane::possible_cpus(); c++) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

}  // namespace

int run_lab_suite(const Options& opts) {
  auto gen = Generator::load();
  if (!gen) return fail(gen.error().to_string());
  auto helpers = dataplane::HelperPrograms::load();
  if (!helpers) return fail(helpers.error().to_string());
  auto lb = Balancer::load();
  if (!lb) return fail(lb.error().to_string());
  if (auto st = configure_balancer(**lb); !st) return fail(st.error().to_string());

  const std::vector<int> cpus = allowed_cpus();
  if (cpus.empty()) return fail("no CPU to run the generator on");
  // Two queues when two CPUs can feed them; one otherwise.
  const int queues = cpus.size() >= 2 ? 2 : 1;
  auto topo = LabTopology::create(queues, (*gen)->sink_fd(), (*helpers)->floor_tx_fd());
  if (!topo) return fail("building the lab topology: " + topo.error().to_string());

  Lab lab{.opts = opts,
          .gen = **gen,
          .lb = **lb,
          .topo = **topo,
          .floor_fd = (*helpers)->floor_tx_fd(),
          .frames_per_run = static_cast<uint64_t>(scaled(opts, 1'000'000, 2000)),
          .run_limit = std::chrono::milliseconds(scaled(opts, 3000, 200))};

  std::vector<std::vector<int>> core_sets = {{cpus[0]}};
  if (queues == 2) {
    core_sets.push_back({cpus[0], cpus[1]});
  } else {
    emit(opts, "lab", "cores_2", "skipped", 0, "",
         {{"reason", "fewer than two CPUs available to this process"}});
  }
  for (const auto& set : core_sets) {
    for (Family family : {Family::kV4, Family::kV6}) {
      for (Path path : {Path::kEstablished, Path::kNewFlow, Path::kPassNonVip}) {
        for (uint32_t flows : {1u, 100u, 10000u}) {
          if (case_name(path, family, flows, set.size()).find(FLAGS_lab_cases) ==
              std::string::npos) {
            continue;
          }
          if (auto st = run_case(lab, path, family, flows, set); !st) {
            return fail(std::string(path_name(path)) + " " + std::to_string(flows) + " flows, " +
                        std::to_string(set.size()) + " core(s): " + st.error().to_string());
          }
        }
      }
    }
  }
  return 0;
}

}  // namespace xlb::bench
