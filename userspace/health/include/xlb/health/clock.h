// SPDX-License-Identifier: Apache-2.0
// Time as the health module reads it. The state machine and the scheduler (Tracker, Engine)
// take time only from a Clock, so their tests drive a ManualClock and never sleep; the Monitor
// runs on the SystemClock.
#pragma once

#include <chrono>

namespace xlb::health {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time: every schedule and duration.
  virtual SteadyTime now() const = 0;
  // Calendar time: only what operators read ("down since 12:04:31").
  virtual WallTime wall_now() const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
  WallTime wall_now() const override { return std::chrono::system_clock::now(); }
  static const SystemClock& instance();
};

// A clock that moves only when told to (tests).
class ManualClock final : public Clock {
 public:
  ManualClock();
  SteadyTime now() const override { return now_; }
  WallTime wall_now() const override { return wall_start_ + (now_ - start_); }
  void advance(Duration d) { now_ += d; }
  void set(SteadyTime t) { now_ = t; }

 private:
  SteadyTime start_;
  SteadyTime now_;
  WallTime wall_start_;
};

}  // namespace xlb::health
