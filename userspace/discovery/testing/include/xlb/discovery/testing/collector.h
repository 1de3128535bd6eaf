// SPDX-License-Identifier: Apache-2.0
// The daemon's side of Discovery for tests: an ApplyFn that keeps the last Snapshot it was given
// and counts updates, and waits (bounded) until the snapshot satisfies a predicate.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "xlb/discovery/engine.h"
#include "xlb/discovery/store.h"

namespace xlb::discovery::testing {

class Collector {
 public:
  ApplyFn fn() {
    return [this](const Update& u) -> Status {
      std::lock_guard lock(mu_);
      last_ = u.discovered;
      updates_++;
      cv_.notify_all();
      return ok_status();
    };
  }
  bool wait(const std::function<bool(const Snapshot&)>& pred,
            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(last_); });
  }
  Snapshot last() {
    std::lock_guard lock(mu_);
    return last_;
  }
  int updates() {
    std::lock_guard lock(mu_);
    return updates_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Snapshot last_;
  int updates_ = 0;
};

}  // namespace xlb::discovery::testing
