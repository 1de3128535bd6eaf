// SPDX-License-Identifier: Apache-2.0
// The scheduler of every check: which (VIP, backend) pairs are checked, how, when the next
// check is due, and what the results mean (a Tracker each). No I/O and no threads: the caller
// (Monitor) runs the checks it hands out and reports back, so tests drive it with a ManualClock
// and invented results.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "xlb/health/check.h"
#include "xlb/health/clock.h"
#include "xlb/health/tracker.h"
#include "xlb/state/types.h"

namespace xlb::health {

enum class Health : uint8_t {
  kUnchecked,  // no check: type none, backend disabled, or a spec that cannot run
  kPending,    // checked, no result yet: counts as up
  kUp,
  kDown,
};
std::string_view to_string(Health h);

// One (VIP, backend) as health sees it; what `xlbctl health` and the metrics show.
struct BackendHealth {
  state::VipKey vip;
  IpAddress backend;
  // The backend's check (the VIP's with the backend's override); unset when unchecked.
  state::CheckType type = state::CheckType::kNone;
  Endpoint target{};  // where checks go
  uint32_t interval_ms = 0;
  uint32_t timeout_ms = 0;
  Health health = Health::kUnchecked;
  bool up = true;              // unchecked and pending count as up
  double weight_factor = 1.0;  // 0 down, 1 up, in between during slow start
  bool slow_start = false;
  std::string last_result;     // the last check's outcome, or why there is no check
  WallTime since{};            // last change of `health` (first seen, for unchecked ones)
  uint32_t rise_progress = 0;  // successes in a row while down
  uint32_t fall_progress = 0;  // failures in a row while up
  uint32_t rise = 0;
  uint32_t fall = 0;
  uint64_t checks = 0;
  uint64_t failures = 0;
  uint64_t transitions = 0;  // up <-> down changes of this backend
  double last_check_ms = 0;  // duration of the last check
};

struct HealthSnapshot {
  std::vector<BackendHealth> backends;  // every backend of every VIP, sorted by (VIP, backend)
  // Since the start: they do not go down when backends are removed (Prometheus counters).
  uint64_t checks_total = 0;
  uint64_t failures_total = 0;
  uint64_t transitions_total = 0;
};

class Engine {
 public:
  struct Options {
    uint32_t slow_start_steps = kDefaultSlowStartSteps;
    std::optional<uint64_t> seed;  // of the start-delay jitter; random when absent
  };

  explicit Engine(const Clock& clock, Options options);
  explicit Engine(const Clock& clock) : Engine(clock, Options{}) {}

  // Makes the set of checks match the VIPs of `desired`; each backend is checked with
  // VipSpec::health_for (its override applied). A backend whose check is unchanged
  // keeps its state and schedule; a changed check keeps the up/down state, restarts the counts
  // and is next run after a random delay in [0, interval); a new one is pending, first run
  // after such a delay. Results of checks started before a change are ignored.
  void set_targets(const state::DesiredState& desired);

  struct Job {
    uint64_t id = 0;
    std::shared_ptr<const CheckRequest> request;
  };
  // The checks due now, marked as running. Each must be answered with finish(). With `ahead`,
  // also those due within that time, though never earlier than a tenth of the backend's
  // current interval: the Monitor starts checks in batches instead of waking for each one.
  std::vector<Job> take_due(Duration ahead = Duration::zero());
  // The result of a job; true when a weight factor changed (the rings must be rebuilt).
  bool finish(uint64_t job_id, const CheckResult& result);
  // Moves slow-start ramps to now; true when a weight factor stepped.
  bool advance();
  // When take_due() or advance() next have something to do.
  std::optional<SteadyTime> next_wakeup() const;

  // 1 for a backend without a check (or unknown).
  double weight_factor(const state::VipKey& vip, const IpAddress& backend) const;
  HealthSnapshot snapshot() const;
  size_t running() const { return jobs_.size(); }

 private:
  struct Key {
    state::VipKey vip;
    IpAddress backend;
    friend auto operator<=>(const Key&, const Key&) = default;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct Target {
    Key key;
    uint64_t serial = 0;
    std::shared_ptr<const CheckRequest> request;  // null: unchecked
    std::optional<Tracker> tracker;
    std::string last_result;
    Duration last_took{};
    WallTime first_seen{};
    uint64_t running_job = 0;  // 0: none
    SteadyTime running_since{};
    std::optional<SteadyTime> queued;       // its entry in queue_
    std::optional<SteadyTime> ramp_queued;  // its entry in ramps_
  };

  SteadyTime jittered(Duration interval);
  void queue_check(Target& t, SteadyTime when);
  void queue_ramp(Target& t);
  void unqueue(Target& t);
  void log_change(const Key& key, const Target& t, bool first_result) const;

  const Clock& clock_;
  Options options_;
  std::mt19937_64 rng_;
  std::map<Key, Target> targets_;
  std::unordered_map<uint64_t, Target*> by_serial_;  // map nodes do not move
  // (due, serial, target): next checks and slow-start steps, in time order (serials break
  // ties, so the order is the same on every run). Entries go before their targets do.
  using Queue = std::set<std::tuple<SteadyTime, uint64_t, Target*>>;
  Queue queue_;
  Queue ramps_;
  std::vector<Queue::node_type> spare_nodes_;  // of queue_, for reuse (queue_check)
  std::unordered_map<uint64_t, uint64_t> jobs_;  // running job -> serial
  uint64_t next_serial_ = 1;
  uint64_t next_job_ = 1;
  uint64_t checks_total_ = 0;
  uint64_t failures_total_ = 0;
  uint64_t transitions_total_ = 0;
};

}  // namespace xlb::health
