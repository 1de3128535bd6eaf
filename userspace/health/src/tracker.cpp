// SPDX-License-Identifier: Apache-2.0
#include "xlb/health/tracker.h"

#include <algorithm>

namespace xlb::health {

std::string_view to_string(Phase p) {
  switch (p) {
    case Phase::kPending:
      return "pending";
    case Phase::kUp:
      return "up";
    case Phase::kDown:
      return "down";
  }
  return "?";
}

Timing Timing::from(const state::HealthCheckSpec& spec) {
  using std::chrono::milliseconds;
  Timing t;
  t.interval = milliseconds(spec.interval_ms);
  t.timeout = milliseconds(spec.timeout_ms);
  t.fastinter = milliseconds(spec.fastinter_ms ? spec.fastinter_ms : spec.interval_ms);
  t.downinter = milliseconds(spec.downinter_ms ? spec.downinter_ms : spec.interval_ms);
  t.slow_start = milliseconds(spec.slow_start_ms);
  // The config refuses 0; an API caller might not, and 0 would mean "never change state".
  t.rise = std::max<uint32_t>(spec.rise, 1);
  t.fall = std::max<uint32_t>(spec.fall, 1);
  return t;
}

Tracker::Tracker(const Timing& timing, SteadyTime first_check, WallTime wall_now,
                 uint32_t slow_start_steps)
    : timing_(timing),
      steps_(std::max<uint32_t>(slow_start_steps, 1)),
      next_check_(first_check),
      step_(steps_),
      since_(wall_now) {}

Duration Tracker::current_interval() const {
  switch (phase_) {
    case Phase::kPending:
      // Only before the first result, which is scheduled by the caller; a retry after a lost
      // result comes at the fast rate.
      return timing_.fastinter;
    case Phase::kUp:
      return fall_progress_ > 0 ? timing_.fastinter : timing_.interval;
    case Phase::kDown:
      return rise_progress_ > 0 ? timing_.fastinter : timing_.downinter;
  }
  return timing_.interval;
}

uint32_t Tracker::step_at(SteadyTime now) const {
  if (timing_.slow_start <= Duration::zero()) return steps_;
  if (now <= recovered_) return 1;
  const auto elapsed = now - recovered_;
  // k-th step (1-based) covers [(k-1) * S / steps, k * S / steps).
  const auto k = static_cast<uint64_t>(elapsed.count()) * steps_ /
                     static_cast<uint64_t>(timing_.slow_start.count()) +
                 1;
  return static_cast<uint32_t>(std::min<uint64_t>(k, steps_));
}

double Tracker::weight_factor() const {
  if (phase_ == Phase::kDown) return 0.0;
  return static_cast<double>(step_) / steps_;
}

std::optional<SteadyTime> Tracker::next_step() const {
  if (!ramping()) return std::nullopt;
  // Start of step step_ + 1: recovered + step_ * S / steps (rounded up to stay in that step).
  const auto s = static_cast<uint64_t>(timing_.slow_start.count());
  const uint64_t offset = (step_ * s + steps_ - 1) / steps_;
  return recovered_ + Duration(static_cast<Duration::rep>(offset));
}

Tracker::Change Tracker::record(bool ok, SteadyTime started, SteadyTime now, WallTime wall_now) {
  Change change;
  const double factor_before = weight_factor();
  checks_++;
  if (!ok) failures_++;
  switch (phase_) {
    case Phase::kPending:
      phase_ = ok ? Phase::kUp : Phase::kDown;
      change.phase = true;
      since_ = wall_now;
      if (!ok) transitions_++;
      break;
    case Phase::kUp:
      if (ok) {
        fall_progress_ = 0;
      } else if (++fall_progress_ >= timing_.fall) {
        phase_ = Phase::kDown;
        fall_progress_ = 0;
        rise_progress_ = 0;
        step_ = steps_;  // a later recovery starts the ramp afresh
        change.phase = true;
        transitions_++;
        since_ = wall_now;
      }
      break;
    case Phase::kDown:
      if (!ok) {
        rise_progress_ = 0;
      } else if (++rise_progress_ >= timing_.rise) {
        phase_ = Phase::kUp;
        rise_progress_ = 0;
        fall_progress_ = 0;
        change.phase = true;
        transitions_++;
        since_ = wall_now;
        if (timing_.slow_start > Duration::zero()) {
          recovered_ = now;
          step_ = step_at(now);
        }
      }
      break;
  }
  // From the start of this check, so a slow answer does not push the schedule back, but never
  // two checks of one backend at once.
  next_check_ = std::max(started + current_interval(), now);
  change.factor = weight_factor() != factor_before;
  return change;
}

Tracker::Change Tracker::advance(SteadyTime now) {
  Change change;
  if (!ramping() || phase_ == Phase::kDown) return change;
  const uint32_t step = step_at(now);
  if (step != step_) {
    step_ = step;
    change.factor = true;
  }
  return change;
}

void Tracker::retime(const Timing& timing, SteadyTime next_check) {
  const bool ramp_changed = timing.slow_start != timing_.slow_start;
  timing_ = timing;
  rise_progress_ = 0;
  fall_progress_ = 0;
  next_check_ = next_check;
  // A ramp in progress ends rather than jumping to wherever the new length puts it.
  if (ramp_changed) step_ = steps_;
}

}  // namespace xlb::health
