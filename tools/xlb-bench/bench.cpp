// SPDX-License-Identifier: Apache-2.0
#include "bench.h"

#include <algorithm>
#include <cstdio>

namespace xlb::bench {

void emit(const Options& opts, const std::string& suite, const std::string& case_name,
          const std::string& metric, double value, const std::string& unit,
          nlohmann::json extra) {
  nlohmann::json rec = {{"suite", suite}, {"case", case_name}, {"metric", metric},
                        {"value", value}, {"unit", unit}};
  for (auto& [k, v] : extra.items()) rec[k] = v;
  if (opts.json) {
    std::printf("%s\n", rec.dump().c_str());
  } else {
    std::string target;
    if (rec.contains("target")) target = "  (target " + rec["target"].dump() + ")";
    std::printf("%-8s %-24s %-22s %12.3f %-4s%s\n", suite.c_str(), case_name.c_str(),
                metric.c_str(), value, unit.c_str(), target.c_str());
  }
  std::fflush(stdout);
}

long scaled(const Options& opts, long count, long min) {
  return std::max(min, static_cast<long>(count * opts.scale));
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  if (n == 0) return 0;
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace xlb::bench
