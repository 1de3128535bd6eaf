// SPDX-License-Identifier: Apache-2.0
// The health filter (design.md, section 1): the desired state as the Maglev builder should see
// it once health is applied. Pure: the weight factors come from a function.
//
// Per VIP, over its serving backends (active, weight > 0):
//   * factor 0 (down): weight 0, no ring slots; established flows keep the backend through the
//     connection table (they are likely broken anyway, but that is the backend's business).
//   * factor 1 (up, pending, unchecked): the configured weight.
//   * during slow start (0 < factor < 1) every weight of the VIP is multiplied by `scale` (the
//     slow-start steps) and the ramping ones by their factor too: rings depend on weight ratios
//     only, so scaling leaves the other backends' shares exact and needs no fractions.
//   * every serving backend down: AllDownPolicy. keep-last-set fails open (the configured
//     weights, as if all were up: some may answer, and a health-check outage, e.g. a firewall
//     change, must not take the service down); drop empties the ring (packets dropped and
//     counted as drop_no_backend).
// Draining and disabled backends are left as they are (no slots either way).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "xlb/core/address.h"
#include "xlb/health/tracker.h"
#include "xlb/state/types.h"

namespace xlb::health {

using WeightFactorFn = std::function<double(const state::VipKey&, const IpAddress&)>;

struct Filtered {
  state::DesiredState state;
  // VIPs whose serving backends are all down, with their policy applied.
  std::vector<state::VipKey> all_down;
};

Filtered apply_health(const state::DesiredState& desired, const WeightFactorFn& factor,
                      uint32_t scale = kDefaultSlowStartSteps);

}  // namespace xlb::health
