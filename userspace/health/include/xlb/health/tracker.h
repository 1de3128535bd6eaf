// SPDX-License-Identifier: Apache-2.0
// The health state machine of one (VIP, backend): what the check results so far mean for the
// backend's place in the ring, and when to check next. Pure: no I/O, time passed in.
//
// HAProxy's semantics (docs/health.md has the operator's view):
//   * pending  no result yet. Counts as up, so a daemon start or restart drains nothing; the
//              first result decides: a success makes it up, a failure down at once (nothing
//              says it ever worked, so waiting for `fall` failures would only feed it flows).
//   * up       `fall` failures in a row take it down; a success resets the count.
//   * down     `rise` successes in a row bring it back; a failure resets the count.
// Interval until the next check, from the start of the last one:
//   up with no failure pending: interval;  up with failures pending (going down): fastinter;
//   down with successes pending (coming up): fastinter;  down otherwise: downinter.
// A check that outlives that interval is followed by the next one at once, never overlapped.
//
// Slow start: when a backend comes back up (down -> up, not pending -> up), its weight factor
// ramps linearly over `slow_start` in `steps` steps: k/steps during the k-th step, i.e. 1/steps
// at recovery and 1 from slow_start * (steps - 1) / steps on. Steps rather than a continuous
// ramp, so the rings are rebuilt a bounded number of times.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "xlb/health/clock.h"
#include "xlb/state/types.h"

namespace xlb::health {

enum class Phase : uint8_t { kPending, kUp, kDown };
std::string_view to_string(Phase p);

// A HealthCheckSpec's timing, with the defaults resolved (fastinter / downinter 0 = interval).
struct Timing {
  Duration interval{};
  Duration timeout{};
  Duration fastinter{};
  Duration downinter{};
  Duration slow_start{};
  uint32_t rise = 1;
  uint32_t fall = 1;

  static Timing from(const state::HealthCheckSpec& spec);
  friend bool operator==(const Timing&, const Timing&) = default;
};

inline constexpr uint32_t kDefaultSlowStartSteps = 10;

class Tracker {
 public:
  // `first_check` carries the random start delay chosen by the caller.
  Tracker(const Timing& timing, SteadyTime first_check, WallTime wall_now,
          uint32_t slow_start_steps = kDefaultSlowStartSteps);

  struct Change {
    bool phase = false;   // pending/up/down changed
    bool factor = false;  // weight_factor() changed (a ring must be rebuilt)
  };

  // The outcome of the check that started at `started`, known at `now`.
  Change record(bool ok, SteadyTime started, SteadyTime now, WallTime wall_now);
  // Moves the slow-start ramp to `now`; factor is set when it stepped.
  Change advance(SteadyTime now);
  // New timing (the spec changed): the phase and slow start stay, the counts in progress
  // restart, and the next check is at `next_check`.
  void retime(const Timing& timing, SteadyTime next_check);

  SteadyTime next_check() const { return next_check_; }
  // Start of the next slow-start step, while ramping.
  std::optional<SteadyTime> next_step() const;
  Duration current_interval() const;

  Phase phase() const { return phase_; }
  bool up() const { return phase_ != Phase::kDown; }
  // 1 pending or up, 0 down, k/steps during slow start.
  double weight_factor() const;
  bool ramping() const { return step_ < steps_; }
  uint32_t rise_progress() const { return rise_progress_; }
  uint32_t fall_progress() const { return fall_progress_; }
  uint64_t checks() const { return checks_; }
  uint64_t failures() const { return failures_; }
  // Up/down changes the ring saw: pending -> down counts, pending -> up does not.
  uint64_t transitions() const { return transitions_; }
  WallTime since() const { return since_; }
  const Timing& timing() const { return timing_; }

 private:
  uint32_t step_at(SteadyTime now) const;

  Timing timing_;
  uint32_t steps_;
  Phase phase_ = Phase::kPending;
  uint32_t rise_progress_ = 0;
  uint32_t fall_progress_ = 0;
  SteadyTime next_check_;
  SteadyTime recovered_{};  // start of the slow-start ramp
  uint32_t step_;           // steps_ when not ramping
  uint64_t checks_ = 0;
  uint64_t failures_ = 0;
  uint64_t transitions_ = 0;
  WallTime since_;
};

}  // namespace xlb::health
