// SPDX-License-Identifier: Apache-2.0
#include "hub.h"

#include <spdlog/spdlog.h>

namespace xlb::discovery::detail {
namespace {

// Rejections are logged at most this often per source; the rest are counted and summarised, so
// a registry full of bad values cannot flood the log.
constexpr int kLogsPerWindow = 10;
constexpr std::chrono::seconds kLogWindow{10};

}  // namespace

bool Hub::submit(Batch batch, const std::atomic<bool>& cancel) {
  std::unique_lock lock(mu_);
  const size_t n = batch.events.size();
  // A batch larger than the whole queue still goes in once the queue is empty.
  room_cv_.wait(lock, [&] {
    return stopping_ || cancel || queued_events_ == 0 || queued_events_ + n <= kMaxQueuedEvents;
  });
  if (stopping_ || cancel) return false;
  queued_events_ += n;
  submitted_++;
  queue_.push_back(std::move(batch));
  work_cv_.notify_one();
  return true;
}

bool Hub::try_submit(Batch batch) {
  std::lock_guard lock(mu_);
  const size_t n = batch.events.size();
  if (stopping_ || (queued_events_ > 0 && queued_events_ + n > kMaxQueuedEvents)) return false;
  queued_events_ += n;
  submitted_++;
  queue_.push_back(std::move(batch));
  work_cv_.notify_one();
  return true;
}

void Hub::wake_submitters() {
  std::lock_guard lock(mu_);
  room_cv_.notify_all();
}

bool Hub::wait_for_work(std::optional<std::chrono::steady_clock::time_point> deadline,
                        std::deque<Batch>& out) {
  std::unique_lock lock(mu_);
  auto ready = [&] { return stopping_ || !queue_.empty(); };
  if (deadline) {
    work_cv_.wait_until(lock, *deadline, ready);
  } else {
    work_cv_.wait(lock, ready);
  }
  if (stopping_) return false;
  out.swap(queue_);
  queued_events_ = 0;
  room_cv_.notify_all();
  return true;
}

void Hub::finished(size_t batches, bool pending) {
  std::lock_guard lock(mu_);
  processed_ += batches;
  pending_ = pending;
  idle_cv_.notify_all();
}

void Hub::stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  work_cv_.notify_all();
  room_cv_.notify_all();
  idle_cv_.notify_all();
}

bool Hub::wait_idle(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  const uint64_t target = submitted_;
  return idle_cv_.wait_for(lock, timeout, [&] {
    return stopping_ || (processed_ >= target && queue_.empty() && !pending_);
  });
}

size_t Hub::queued_events() const {
  std::lock_guard lock(mu_);
  return queued_events_;
}

void Hub::add_source(const SourceConfig& config) {
  std::lock_guard lock(board_mu_);
  SourceStatus& s = board_[config.name];
  s = SourceStatus{};
  s.name = config.name;
  s.type = config.type;
  s.priority = config.priority;
}

void Hub::remove_source(const std::string& name) {
  std::lock_guard lock(board_mu_);
  board_.erase(name);
  log_budget_.erase(name);
}

void Hub::update(const std::string& name, const std::function<void(SourceStatus&)>& change) {
  std::lock_guard lock(board_mu_);
  auto it = board_.find(name);
  if (it != board_.end()) change(it->second);
}

void Hub::set_state(const std::string& name, SourceState state, const std::string& detail) {
  bool changed = false;
  {
    std::lock_guard lock(board_mu_);
    auto it = board_.find(name);
    if (it == board_.end()) return;
    SourceStatus& s = it->second;
    changed = s.state != state || s.detail != detail;
    if (s.state == SourceState::kConnected && state != SourceState::kConnected) s.stale_total++;
    s.state = state;
    s.detail = detail;
    if (state == SourceState::kConnected) s.last_good = std::chrono::system_clock::now();
  }
  if (!changed) return;
  if (state == SourceState::kConnected) {
    spdlog::info("discovery source {}: connected ({})", name, detail);
  } else if (state != SourceState::kStarting) {
    spdlog::warn("discovery source {}: {} ({}); its last good entries stay in service", name,
                 to_string(state), detail);
  }
}

void Hub::mark_good(const std::string& name) {
  std::lock_guard lock(board_mu_);
  auto it = board_.find(name);
  if (it != board_.end()) it->second.last_good = std::chrono::system_clock::now();
}

void Hub::reject(const std::string& name, const Error& error) {
  const Reject reason = reject_of(error).value_or(Reject::kSyntax);
  bool log = false;
  uint64_t suppressed = 0;
  {
    std::lock_guard lock(board_mu_);
    auto it = board_.find(name);
    if (it == board_.end()) return;
    SourceStatus& s = it->second;
    s.events_rejected++;
    s.rejected_by_reason[static_cast<size_t>(reason)]++;
    s.last_rejection = error.message;
    LogBudget& budget = log_budget_[name];
    const auto now = std::chrono::steady_clock::now();
    if (now - budget.window_start > kLogWindow) {
      suppressed = budget.suppressed;
      budget = LogBudget{now, 0, 0};
    }
    if (budget.logged < kLogsPerWindow) {
      budget.logged++;
      log = true;
    } else {
      budget.suppressed++;
    }
  }
  if (suppressed > 0) {
    spdlog::warn("discovery source {}: {} more rejections not logged", name, suppressed);
  }
  if (log) {
    spdlog::warn("discovery source {}: rejected ({}): {}", name, to_string(reason), error.message);
  }
}

std::vector<SourceStatus> Hub::statuses() const {
  std::lock_guard lock(board_mu_);
  std::vector<SourceStatus> out;
  for (const auto& [name, s] : board_) out.push_back(s);
  return out;
}

}  // namespace xlb::discovery::detail
