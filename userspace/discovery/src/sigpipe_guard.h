// SPDX-License-Identifier: Apache-2.0
// SigpipeGuard: no SIGPIPE from this thread while it lives. OpenSSL writes to sockets with
// plain send(), so a TLS peer that went away (etcd killed mid-request) raises SIGPIPE, whose
// default action ends the process. xlbd ignores SIGPIPE process-wide, but the module must not
// depend on every program that links it doing the same. SIGPIPE is sent to the thread that
// wrote: blocking it here and discarding one that became pending keeps the effect local.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <time.h>

namespace xlb::discovery::detail {

class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
  }
  ~SigpipeGuard() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

}  // namespace xlb::discovery::detail
