// SPDX-License-Identifier: Apache-2.0
// The one event loop every check runs on: epoll for sockets, pipes and pidfds, a timer queue
// whose earliest deadline is epoll_pwait2's timeout, and an eventfd so other threads can wake
// it. Single-threaded: every
// method but wake() must be called from the thread that runs it.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "xlb/core/result.h"
#include "xlb/health/clock.h"

namespace xlb::health {

class EventLoop {
 public:
  using FdHandler = std::function<void(uint32_t events)>;
  using TimerHandler = std::function<void()>;

  static Result<std::unique_ptr<EventLoop>> create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Calls `handler` with the epoll events of `fd` (not owned; unwatch before closing it).
  // Returns a watch id; ids are never reused, so an event queued for a watch removed in the
  // same round is dropped rather than delivered to a new watch that got the same fd.
  Result<uint64_t> watch(int fd, uint32_t events, FdHandler handler);
  Status modify(uint64_t watch_id, uint32_t events);
  void unwatch(uint64_t watch_id);
  // For an fd about to be closed: closing removes it from the epoll set, so this only drops
  // the handler (one syscall less per check). Were the fd still open elsewhere (a forked
  // child before its exec), late events for it are dropped by the watch id.
  void forget(uint64_t watch_id) { watches_.erase(watch_id); }

  // Runs `handler` once the steady clock reaches `when` (from run_once, never from here).
  uint64_t add_timer(SteadyTime when, TimerHandler handler);
  void cancel_timer(uint64_t timer_id);

  // Thread-safe: makes a blocked run_once() return.
  void wake();

  // Waits until an fd is ready, a timer is due, wake() is called or `until` passes, then
  // dispatches what is ready and every timer due.
  Status run_once(std::optional<SteadyTime> until);

  size_t watches() const { return watches_.size(); }
  size_t timers() const { return timers_.size(); }

 private:
  EventLoop() = default;
  void run_due_timers();

  struct Watch {
    int fd;
    FdHandler handler;
  };
  struct Timer {
    SteadyTime when;
    TimerHandler handler;
  };

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  uint64_t next_id_ = 3;  // 1, 2: reserved (2: the eventfd)
  std::unordered_map<uint64_t, Watch> watches_;
  std::unordered_map<uint64_t, Timer> timers_;
  std::set<std::pair<SteadyTime, uint64_t>> timer_queue_;
};

}  // namespace xlb::health
