// SPDX-License-Identifier: Apache-2.0
// Runs checks on an EventLoop: tcp, http, https, udp-dns and exec (docs/health.md says what
// each one proves). Every check is non-blocking and bounded by its timeout; a check never
// outlives it, and an exec check's whole process group is killed at the timeout.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "xlb/health/check.h"
#include "xlb/health/event_loop.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace xlb::health {

class Probe;

class Prober {
 public:
  using Done = std::function<void(const CheckResult&)>;

  explicit Prober(EventLoop& loop);
  // Cancels what runs; exec children are killed and reaped before it returns.
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Starts `request`. `done` runs on the loop exactly once, at the latest at the request's
  // timeout; never from within start(), never after cancel() or the Prober's end.
  uint64_t start(std::shared_ptr<const CheckRequest> request, Done done);
  uint64_t start(const CheckRequest& request, Done done);  // a copy
  void cancel(uint64_t id);

  size_t running() const { return probes_.size(); }
  // exec children killed at a timeout that have not exited yet.
  size_t unreaped() const { return zombies_.size(); }

  // ---- For the probes (src/) ----
  EventLoop& loop() { return loop_; }
  // The client context of https checks, made on first use. Null (with the reason in `error`)
  // when OpenSSL cannot make one.
  SSL_CTX* tls_context(std::string& error);
  uint16_t random_u16();
  // Reports the outcome of probe `id` (once; later calls are ignored).
  void complete(uint64_t id, bool ok, std::string detail);
  // Takes over a killed child: reaps it when its pidfd says it has exited.
  void reap_later(pid_t pid, int pidfd);

  // A non-blocking TCP socket of `family` (AF_INET / AF_INET6) for one check, watched
  // edge-triggered for EPOLLIN | EPOLLOUT with its events going to `on_event` until released.
  // Sockets are reused across checks: a check costs a connect() and an abort instead of
  // socket(), setsockopt(), epoll_ctl() and close() (docs/health.md, "cost").
  Result<int> acquire_stream_socket(int family, std::function<void(uint32_t)> on_event);
  // Aborts the socket's connection (RST when established, so neither side keeps TIME_WAIT) and
  // keeps it for the next check; `broken` (or a failed abort, or a full pool) closes it.
  void release_stream_socket(int fd, bool broken);

 private:
  struct Running {
    std::unique_ptr<Probe> probe;
    Done done;
    SteadyTime started;
    uint32_t timeout_ms = 0;
    bool completed = false;
    CheckResult result;  // once completed, until delivered
  };
  struct Zombie {
    int pidfd;
    uint64_t watch;
  };
  struct PooledSocket {
    int family;
    uint64_t watch;
    std::function<void(uint32_t)> on_event;  // empty while idle
  };
  void close_stream_socket(int fd);
  // Arms the loop's timer for the earliest deadline of a probe still running.
  void arm_deadline_timer();
  void expire_deadlines();
  void deliver_results();

  EventLoop& loop_;
  std::map<uint64_t, Running> probes_;
  // Timeouts: one loop timer for the earliest deadline of a min-heap of (deadline, probe id)
  // rather than a timer per probe (two allocations and two tree updates per check). A probe
  // that finishes leaves its entry behind; it is dropped when it comes to the top.
  std::vector<std::pair<SteadyTime, uint64_t>> deadlines_;
  uint64_t deadline_timer_ = 0;
  SteadyTime deadline_timer_at_{};
  // Completed probes whose results wait for delivery, all by one timer due now.
  std::vector<uint64_t> completed_;
  std::vector<uint64_t> delivering_;
  uint64_t delivery_timer_ = 0;
  std::map<pid_t, Zombie> zombies_;
  std::map<int, PooledSocket> sockets_;  // fd -> socket, in use or idle
  std::vector<int> idle_v4_;
  std::vector<int> idle_v6_;
  uint64_t next_id_ = 1;
  SSL_CTX* tls_ = nullptr;
  std::mt19937 rng_;
};

}  // namespace xlb::health
