// SPDX-License-Identifier: Apache-2.0
#include "xlb/health/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace xlb::health {
namespace {

constexpr uint64_t kWakeToken = 2;
constexpr int kMaxEvents = 256;

}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  std::unique_ptr<EventLoop> loop(new EventLoop());
  loop->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (loop->epoll_fd_ < 0) return Error::from_errno(errno, "epoll_create1");
  loop->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (loop->wake_fd_ < 0) return Error::from_errno(errno, "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeToken;
  if (::epoll_ctl(loop->epoll_fd_, EPOLL_CTL_ADD, loop->wake_fd_, &ev) != 0) {
    return Error::from_errno(errno, "epoll_ctl(eventfd)");
  }
  return loop;
}

EventLoop::~EventLoop() {
  for (int fd : {wake_fd_, epoll_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

Result<uint64_t> EventLoop::watch(int fd, uint32_t events, FdHandler handler) {
  const uint64_t id = next_id_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return Error::from_errno(errno, "epoll_ctl(ADD)");
  }
  watches_.emplace(id, Watch{fd, std::move(handler)});
  return id;
}

Status EventLoop::modify(uint64_t watch_id, uint32_t events) {
  auto it = watches_.find(watch_id);
  if (it == watches_.end()) return Error::invalid("no such watch");
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = watch_id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, it->second.fd, &ev) != 0) {
    return Error::from_errno(errno, "epoll_ctl(MOD)");
  }
  return ok_status();
}

void EventLoop::unwatch(uint64_t watch_id) {
  auto it = watches_.find(watch_id);
  if (it == watches_.end()) return;
  // Fails only when the fd is already closed, which removed it from the set anyway.
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  watches_.erase(it);
}

uint64_t EventLoop::add_timer(SteadyTime when, TimerHandler handler) {
  const uint64_t id = next_id_++;
  timers_.emplace(id, Timer{when, std::move(handler)});
  timer_queue_.emplace(when, id);
  return id;
}

void EventLoop::cancel_timer(uint64_t timer_id) {
  auto it = timers_.find(timer_id);
  if (it == timers_.end()) return;
  timer_queue_.erase({it->second.when, timer_id});
  timers_.erase(it);
}

void EventLoop::wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop wakes either way.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

void EventLoop::run_due_timers() {
  // One at a time: a handler may add or cancel timers, including the next one in line.
  for (;;) {
    if (timer_queue_.empty()) return;
    auto [when, id] = *timer_queue_.begin();
    if (when > std::chrono::steady_clock::now()) return;
    timer_queue_.erase(timer_queue_.begin());
    auto it = timers_.find(id);
    TimerHandler handler = std::move(it->second.handler);
    timers_.erase(it);
    handler();
  }
}

Status EventLoop::run_once(std::optional<SteadyTime> until) {
  run_due_timers();
  std::optional<SteadyTime> at = until;
  if (!timer_queue_.empty() && (!at || timer_queue_.begin()->first < *at)) {
    at = timer_queue_.begin()->first;
  }
  // epoll_pwait2 takes a nanosecond timeout: no timerfd to arm and read on every wakeup.
  timespec timeout{};
  timespec* timeout_ptr = nullptr;
  if (at) {
    const auto left = std::max<Duration::rep>((*at - std::chrono::steady_clock::now()).count(), 0);
    timeout.tv_sec = left / 1000000000;
    timeout.tv_nsec = left % 1000000000;
    timeout_ptr = &timeout;
  }
  epoll_event events[kMaxEvents];
  int n = ::epoll_pwait2(epoll_fd_, events, kMaxEvents, timeout_ptr, nullptr);
  if (n < 0) {
    if (errno == EINTR) return ok_status();
    return Error::from_errno(errno, "epoll_pwait2");
  }
  for (int i = 0; i < n; i++) {
    const uint64_t token = events[i].data.u64;
    if (token == kWakeToken) {
      uint64_t count;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof(count));
      continue;
    }
    auto it = watches_.find(token);
    if (it == watches_.end()) continue;  // removed earlier in this round
    // A copy: the handler may unwatch itself, which destroys the stored function.
    FdHandler handler = it->second.handler;
    handler(events[i].events);
  }
  run_due_timers();
  return ok_status();
}

}  // namespace xlb::health
