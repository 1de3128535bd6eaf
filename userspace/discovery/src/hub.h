// SPDX-License-Identifier: Apache-2.0
// Hub: what sources share with the worker: the batch queue (bounded: a source that produces
// faster than the engine applies waits, a push is refused) and the status board.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "xlb/discovery/status.h"
#include "xlb/discovery/store.h"

namespace xlb::discovery::detail {

class Hub {
 public:
  // Events waiting for the worker before sources wait and pushes are refused.
  static constexpr size_t kMaxQueuedEvents = 1000000;

  // Queues `batch`; waits while the queue is full. False when `cancel` became true or the hub
  // stops first (the batch is dropped: its source is going away).
  bool submit(Batch batch, const std::atomic<bool>& cancel);
  // Queues `batch` unless the queue is full.
  bool try_submit(Batch batch);
  // Wakes submitters waiting for room, so they can notice their cancel flag.
  void wake_submitters();

  // ---- The worker's side
  // Waits for batches (until `deadline` if set) and moves them to `out`. False once stopping.
  bool wait_for_work(std::optional<std::chrono::steady_clock::time_point> deadline,
                     std::deque<Batch>& out);
  // The worker went through `batches` batches; `pending`: the engine holds unapplied changes.
  void finished(size_t batches, bool pending);
  void stop();
  bool wait_idle(std::chrono::milliseconds timeout) const;
  size_t queued_events() const;

  // ---- Status board
  void add_source(const SourceConfig& config);
  void remove_source(const std::string& name);
  void update(const std::string& name, const std::function<void(SourceStatus&)>& change);
  // State transitions: leaving `connected` for stale/error counts in stale_total; entering
  // `connected` stamps last_good.
  void set_state(const std::string& name, SourceState state, const std::string& detail);
  void mark_good(const std::string& name);
  // Counts and logs (rate-limited per source) one rejected input.
  void reject(const std::string& name, const Error& error);
  std::vector<SourceStatus> statuses() const;

 private:
  struct LogBudget {
    std::chrono::steady_clock::time_point window_start;
    int logged = 0;
    uint64_t suppressed = 0;
  };

  mutable std::mutex mu_;
  std::condition_variable work_cv_;          // the worker waits for batches
  std::condition_variable room_cv_;          // submitters wait for room
  mutable std::condition_variable idle_cv_;  // wait_idle()
  std::deque<Batch> queue_;
  size_t queued_events_ = 0;
  uint64_t submitted_ = 0;  // batches ever queued
  uint64_t processed_ = 0;  // batches the worker took through the engine
  bool pending_ = false;    // the engine holds changes not yet applied
  bool stopping_ = false;

  mutable std::mutex board_mu_;
  std::map<std::string, SourceStatus> board_;
  std::map<std::string, LogBudget> log_budget_;
};

// A running source (files or etcd): stop() ends its thread; idempotent.
class Source {
 public:
  virtual ~Source() = default;
  virtual void stop() = 0;
};

std::unique_ptr<Source> start_files_source(const SourceConfig& config, Hub& hub);
std::unique_ptr<Source> start_etcd_source(const SourceConfig& config, Hub& hub);

}  // namespace xlb::discovery::detail
