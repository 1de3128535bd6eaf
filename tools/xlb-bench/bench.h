// SPDX-License-Identifier: Apache-2.0
// Shared pieces of xlb-bench: options every suite takes and the one way results are printed.
//
// Output contract (design.md section 6): one JSON object per line,
//   {"suite":"xdp","case":"lru_hit_v4","metric":"delta_ns","value":87.1,"unit":"ns", ...}
// with extra fields welcome. Without --json a suite prints the same records as aligned text.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace xlb::bench {

struct Options {
  bool json = false;
  // Work multiplier: 1.0 for real runs; tests run every suite with a tiny value (smoke).
  double scale = 1.0;
  // Independent repetitions of each measurement; the median is reported.
  int runs = 3;
};

// Prints one result record. `target` (if non-negative) is the acceptance bound for the metric,
// recorded with the value; `extra` fields are merged into the record.
void emit(const Options& opts, const std::string& suite, const std::string& case_name,
          const std::string& metric, double value, const std::string& unit,
          nlohmann::json extra = nlohmann::json::object());

// Scaled iteration count, never below `min`.
long scaled(const Options& opts, long count, long min = 1);

// Median of a non-empty list.
double median(std::vector<double> values);

// Each suite: returns a process exit code (0 ok).
int run_xdp_suite(const Options& opts);
int run_maglev_suite(const Options& opts);
// The map-push half of suite "maglev" (needs root: a real BPF map).
int run_ring_push(const Options& opts);
int run_health_suite(const Options& opts);
int run_discovery_suite(const Options& opts);
// Forwarded Mpps on a veth against an XDP_TX reflector (needs root: namespaces, veth, XDP).
int run_lab_suite(const Options& opts);

}  // namespace xlb::bench
