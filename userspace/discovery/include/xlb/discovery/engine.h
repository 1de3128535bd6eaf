// SPDX-License-Identifier: Apache-2.0
// Engine: the single-threaded heart of discovery. Batches go into the Store; the VIPs whose view
// changed are handed to the daemon's callback, coalesced.
//
// Coalescing is a throttle with a leading edge: after a quiet period the first change is applied
// at once (a lone registry update reaches the maps in milliseconds, not after a timer), and every
// change that arrives within `debounce` of an apply waits for the end of that window, where all
// of them go out in one callback. So each VIP (indeed the whole state) is applied at most once
// per window, whatever the event rate: 1,000 events in a burst cost one or two ring rebuilds per
// VIP, not 1,000. The callback sees only VIPs whose view really changed: an update that restates
// what is already applied costs nothing.
//
// Time is a parameter (`now`), so tests drive the engine with a fake clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "xlb/core/result.h"
#include "xlb/discovery/store.h"

namespace xlb::discovery {

// What the daemon's callback receives.
struct Update {
  const Snapshot& discovered;                 // everything discovery holds now
  const std::vector<state::VipKey>& changed;  // VIPs added, changed or removed since the last one
  uint64_t generation = 0;                    // 1, 2, ...: one per successful update
};

// The daemon's side: merge `discovered` with the configured state and reconcile, all or nothing.
// An error keeps the previous update as applied; the engine retries with back-off.
using ApplyFn = std::function<Status(const Update&)>;

struct EngineOptions {
  std::chrono::milliseconds debounce{50};
  // Retry of a failed callback: doubles from `retry_initial` up to `retry_max`.
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{5000};
};

struct EngineStats {
  uint64_t batches = 0;
  uint64_t events_accepted = 0;
  uint64_t events_rejected = 0;  // refused by the store (kTooManyBackends)
  uint64_t updates = 0;          // successful callbacks
  uint64_t update_errors = 0;    // failed callbacks
  uint64_t vips_updated = 0;     // sum of `changed` over successful callbacks
  std::string last_error;        // of the last failed callback, "" after a success
};

class Engine {
 public:
  using Clock = std::chrono::steady_clock;

  Engine(EngineOptions options, ApplyFn apply);

  Store::Applied submit(const Batch& batch, Clock::time_point now);

  // Runs the callback if an update is due at `now`. Returns when to call again, or nullopt when
  // nothing is pending.
  std::optional<Clock::time_point> poll(Clock::time_point now);

  // What the last successful callback received (empty before the first).
  std::shared_ptr<const Snapshot> applied() const { return applied_; }
  uint64_t generation() const { return generation_; }
  const EngineStats& stats() const { return stats_; }
  const Store& store() const { return store_; }
  bool pending() const { return !dirty_.empty(); }

 private:
  EngineOptions options_;
  ApplyFn apply_;
  Store store_;
  std::shared_ptr<const Snapshot> applied_;
  uint64_t generation_ = 0;
  std::set<state::VipKey> dirty_;
  std::optional<Clock::time_point> dirty_since_;
  std::optional<Clock::time_point> last_update_;
  std::optional<Clock::time_point> retry_at_;
  std::chrono::milliseconds retry_delay_;
  EngineStats stats_;
};

}  // namespace xlb::discovery
