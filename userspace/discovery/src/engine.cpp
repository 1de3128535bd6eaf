// SPDX-License-Identifier: Apache-2.0
#include "xlb/discovery/engine.h"

#include <algorithm>
#include <exception>
#include <string>

namespace xlb::discovery {

Engine::Engine(EngineOptions options, ApplyFn apply)
    : options_(options),
      apply_(std::move(apply)),
      applied_(std::make_shared<const Snapshot>()),
      retry_delay_(options.retry_initial) {}

Store::Applied Engine::submit(const Batch& batch, Clock::time_point now) {
  Store::Applied result = store_.apply(batch);
  stats_.batches++;
  stats_.events_accepted += result.accepted;
  stats_.events_rejected += result.rejected.size();
  if (!result.touched.empty()) {
    dirty_.insert(result.touched.begin(), result.touched.end());
    if (!dirty_since_) dirty_since_ = now;
  }
  return result;
}

std::optional<Engine::Clock::time_point> Engine::poll(Clock::time_point now) {
  if (dirty_.empty()) return std::nullopt;
  Clock::time_point due = *dirty_since_;
  if (last_update_) due = std::max(due, *last_update_ + options_.debounce);
  if (retry_at_) due = std::max(due, *retry_at_);
  if (now < due) return due;

  // The next snapshot shares nothing with the applied one, which readers may hold.
  auto next = std::make_shared<Snapshot>(*applied_);
  std::vector<state::VipKey> changed;
  for (const auto& key : dirty_) {
    auto view = store_.view(key);
    auto old = next->vips.find(key);
    if (view) {
      if (old == next->vips.end()) {
        next->vips.emplace(key, std::move(*view));
        changed.push_back(key);
      } else if (!(old->second == *view)) {
        old->second = std::move(*view);
        changed.push_back(key);
      }
    } else if (old != next->vips.end()) {
      next->vips.erase(old);
      changed.push_back(key);
    }
  }
  if (changed.empty()) {  // restated what is applied: nothing to do
    dirty_.clear();
    dirty_since_.reset();
    return std::nullopt;
  }
  Status st = ok_status();
  // The callback is the daemon's code; an exception from it must not end the worker thread.
  try {
    st = apply_(Update{*next, changed, generation_ + 1});
  } catch (const std::exception& e) {
    st = Error::invalid(std::string("the update callback threw: ") + e.what());
  } catch (...) {
    st = Error::invalid("the update callback threw");
  }
  if (!st) {
    stats_.update_errors++;
    stats_.last_error = st.error().to_string();
    retry_at_ = now + retry_delay_;
    retry_delay_ = std::min(retry_delay_ * 2, options_.retry_max);
    return retry_at_;
  }
  applied_ = std::move(next);
  generation_++;
  stats_.updates++;
  stats_.vips_updated += changed.size();
  stats_.last_error.clear();
  last_update_ = now;
  retry_at_.reset();
  retry_delay_ = options_.retry_initial;
  dirty_.clear();
  dirty_since_.reset();
  return std::nullopt;
}

}  // namespace xlb::discovery
