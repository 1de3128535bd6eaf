// SPDX-License-Identifier: Apache-2.0
#include "xlb/health/filter.h"

#include <algorithm>
#include <cmath>

namespace xlb::health {

Filtered apply_health(const state::DesiredState& desired, const WeightFactorFn& factor,
                      uint32_t scale) {
  Filtered out{desired, {}};
  scale = std::max<uint32_t>(scale, 1);
  for (auto& [key, vip] : out.state.vips) {
    std::vector<double> factors(vip.backends.size(), 1.0);
    size_t serving = 0;
    size_t down = 0;
    bool ramping = false;
    for (size_t i = 0; i < vip.backends.size(); i++) {
      if (state::effective_weight(vip.backends[i]) == 0) continue;
      const double f = std::clamp(factor(key, vip.backends[i].address), 0.0, 1.0);
      factors[i] = f;
      serving++;
      if (f == 0.0) down++;
      if (f > 0.0 && f < 1.0) ramping = true;
    }
    if (serving == 0 || (down == 0 && !ramping)) continue;
    if (down == serving) {
      out.all_down.push_back(key);
      if (vip.all_down == state::AllDownPolicy::kKeepLastSet) continue;
      for (auto& b : vip.backends) b.weight = 0;
      continue;
    }
    for (size_t i = 0; i < vip.backends.size(); i++) {
      auto& b = vip.backends[i];
      if (state::effective_weight(b) == 0) continue;
      if (factors[i] == 0.0) {
        b.weight = 0;
      } else if (ramping) {
        const double w = std::round(static_cast<double>(b.weight) * scale * factors[i]);
        b.weight = static_cast<uint32_t>(std::clamp(w, 1.0, static_cast<double>(UINT32_MAX)));
      }
    }
  }
  return out;
}

}  // namespace xlb::health
