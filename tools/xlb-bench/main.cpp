// SPDX-License-Identifier: Apache-2.0
// xlb-bench SUITE [--json] [--scale X] [--runs N]
// Suites: xdp (per-packet cost of each data-path case against the XDP_TX floor), maglev,
// lab (forwarded Mpps on a veth against an XDP_TX reflector).
#include <gflags/gflags.h>

#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include "bench.h"

DEFINE_bool(json, false, "one JSON object per result line");
DEFINE_double(scale, 1.0, "work multiplier (tests run a smoke pass with e.g. 0.01)");
DEFINE_int32(runs, 3, "repetitions per measurement; the median is reported");

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "xlb-bench SUITE [--json] [--scale X] [--runs N]\n"
      "suites: xdp, maglev, health, discovery, lab, all");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  const std::map<std::string, std::function<int(const xlb::bench::Options&)>> suites = {
      {"xdp", xlb::bench::run_xdp_suite},
      {"health", xlb::bench::run_health_suite},
      {"discovery", xlb::bench::run_discovery_suite},
      {"lab", xlb::bench::run_lab_suite},
      {"maglev",
       [](const xlb::bench::Options& o) {
         return xlb::bench::run_maglev_suite(o) | xlb::bench::run_ring_push(o);
       }},
  };
  if (argc != 2) {
    std::fprintf(stderr, "usage: xlb-bench SUITE [--json]; suites: xdp, maglev, health, discovery, lab, all\n");
    return 2;
  }
  if (FLAGS_runs < 1 || FLAGS_scale <= 0) {
    std::fprintf(stderr, "xlb-bench: --runs must be >= 1 and --scale > 0\n");
    return 2;
  }
  xlb::bench::Options opts{.json = FLAGS_json, .scale = FLAGS_scale, .runs = FLAGS_runs};
  std::string which = argv[1];
  if (which == "all") {
    int rc = 0;
    for (auto& [name, fn] : suites) rc |= fn(opts);
    return rc;
  }
  auto it = suites.find(which);
  if (it == suites.end()) {
    std::fprintf(stderr, "xlb-bench: unknown suite '%s' (xdp, maglev, health, discovery, lab, all)\n", which.c_str());
    return 2;
  }
  return it->second(opts);
}
