// SPDX-License-Identifier: Apache-2.0
// Discovery: the running service-discovery module of xlbd. It owns the sources (files watched
// with inotify, etcd watches, push), one worker thread that feeds their batches through the
// Engine, and calls the daemon back with coalesced updates.
//
// Wiring in the daemon (one transactional path for every change):
//
//   auto d = discovery::Discovery::start(config.discovery, [this](const discovery::Update& u) {
//     std::lock_guard lock(mu_);
//     auto merged = discovery::merge(configured_, u.discovered, limits);  // pure
//     XLB_TRY(state::validate(merged.state, ...));
//     XLB_TRY(reconcile_locked(merged.state));      // all or nothing
//     discovered_ = u.discovered;                   // kept for the next API mutate
//     return ok_status();
//   });
//   // API mutate: edit configured_, then reconcile merge(configured_, discovered_, limits).
//   // POST /v1/events: d->push(body) -> 202 when queued, 400 with the rejections.
//
// Threads: the callback runs on the worker thread, never concurrently with itself. push(),
// sources(), applied() and stats() are safe from any thread and never wait for the callback.
// stop() and reconfigure() must not be called while holding a lock the callback takes.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xlb/core/result.h"
#include "xlb/discovery/config.h"
#include "xlb/discovery/engine.h"
#include "xlb/discovery/event.h"
#include "xlb/discovery/status.h"
#include "xlb/discovery/store.h"

namespace xlb::discovery {

struct PushReply {
  std::string source;
  bool replace = false;
  size_t accepted = 0;                  // events queued (0 when any was rejected)
  std::vector<PushRejection> rejected;  // non-empty: nothing was queued
};

struct DiscoveryStats {
  EngineStats engine;
  uint64_t generation = 0;   // successful updates so far
  size_t queued_events = 0;  // waiting for the worker
  size_t store_entries = 0;  // settings + backends over all owners
};

class Discovery {
 public:
  // Starts every configured source. Sources connect in the background: a source that cannot
  // start (directory missing, etcd down) is reported in sources() and retried, it does not make
  // start() fail. The first update arrives once a source has content.
  static Result<std::unique_ptr<Discovery>> start(const DiscoveryConfig& config, ApplyFn apply);
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // Stops sources and the worker; the callback is not called after stop() returns.
  void stop();

  // Applies a new configuration (reload): unchanged sources keep running and keep their
  // entries; removed sources' entries go; new sources start; a changed source restarts and its
  // entries stay until its first full read replaces them.
  Status reconfigure(const DiscoveryConfig& config);

  // POST /v1/events. Validates the body and queues its events as one batch (all or nothing).
  // An Error is a body-level problem (reason via reject_of(): not JSON, unknown source, ...);
  // per-event problems are in the reply's `rejected`, and then nothing is queued. The events
  // reach the callback asynchronously (within the debounce window).
  Result<PushReply> push(std::string_view json_body);

  std::vector<SourceStatus> sources() const;
  // What the last successful callback received.
  std::shared_ptr<const Snapshot> applied() const;
  DiscoveryStats stats() const;
  // Waits until every batch queued so far has been through the engine and nothing is pending
  // (tests, tools); false on timeout.
  bool wait_idle(std::chrono::milliseconds timeout) const;

 private:
  class Impl;
  explicit Discovery(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The snapshot with each entry's owner (tools, debugging). xlbd's API shows sources and push
// replies through its own views (state::DiscoveryView, state::PushView).
nlohmann::json to_json(const Snapshot& s);

}  // namespace xlb::discovery
