// SPDX-License-Identifier: Apache-2.0
// Health checking for the daemon: one thread running one event loop for every check of every
// VIP (docs/health.md). The daemon's side is small:
//
//   auto monitor = health::Monitor::start([&] { /* a factor changed: reconcile */ });
//   monitor->set_targets(desired);               // whenever the desired state changes
//   reconcile(monitor->apply(desired).state);    // the rings see health through apply()
//   monitor->snapshot();                         // API, xlbctl health, metrics
//
// Threads: every method may be called from any thread. `on_change` runs on the monitor's
// thread with none of the Monitor's locks held, so it may call apply(), snapshot() and
// set_targets(); it should return quickly (checks wait meanwhile), and whoever calls stop()
// must not hold a lock that on_change waits for.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "xlb/core/result.h"
#include "xlb/health/engine.h"
#include "xlb/health/event_loop.h"
#include "xlb/health/filter.h"
#include "xlb/state/types.h"

namespace xlb::health {

class Monitor {
 public:
  struct Options {
    uint32_t slow_start_steps = kDefaultSlowStartSteps;
    std::optional<uint64_t> seed;  // start-delay jitter; random when absent
  };

  // Starts the loop thread. `on_change` is called whenever a backend went up or down or a
  // slow-start step passed, i.e. whenever apply() would give other weights.
  static Result<std::unique_ptr<Monitor>> start(std::function<void()> on_change, Options options);
  static Result<std::unique_ptr<Monitor>> start(std::function<void()> on_change) {
    return start(std::move(on_change), Options{});
  }
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Checks the VIPs of `desired` from now on (see Engine::set_targets for what is kept).
  void set_targets(const state::DesiredState& desired);
  // `desired` with health applied: what the rings should be built from (filter.h).
  Filtered apply(const state::DesiredState& desired) const;
  // 1 when the backend has no check.
  double weight_factor(const state::VipKey& vip, const IpAddress& backend) const;
  HealthSnapshot snapshot() const;
  // Ends the checks (killing exec checks' process groups) and the thread. Idempotent.
  void stop();

 private:
  Monitor(std::function<void()> on_change, Options options);
  void run();

  std::function<void()> on_change_;
  Options options_;
  std::unique_ptr<EventLoop> loop_;
  mutable std::mutex mu_;
  Engine engine_;  // guarded by mu_
  bool stopping_ = false;
  std::thread thread_;
  std::once_flag joined_;
};

}  // namespace xlb::health
