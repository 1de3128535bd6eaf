// SPDX-License-Identifier: Apache-2.0
#include "xlb/health/clock.h"

namespace xlb::health {

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

// An arbitrary but fixed origin (2024-01-01T00:00:00Z), so test output does not depend on the
// day; steady time starts at an arbitrary large value, as on a real host.
ManualClock::ManualClock()
    : start_(SteadyTime(std::chrono::hours(1000))),
      now_(start_),
      wall_start_(WallTime(std::chrono::seconds(1704067200))) {}

}  // namespace xlb::health
