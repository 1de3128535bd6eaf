// SPDX-License-Identifier: Apache-2.0
// The checkers' common shape (private to the module). A Probe starts its I/O in start(),
// reports through Prober::complete() exactly once, and releases everything it holds (sockets,
// pipes, child processes) in its destructor, which the Prober runs after the outcome is known
// or at the timeout.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <string>

#include "xlb/health/check.h"
#include "xlb/health/prober.h"

namespace xlb::health {

class Probe {
 public:
  Probe(Prober& prober, uint64_t id, std::shared_ptr<const CheckRequest> request)
      : prober_(prober), id_(id), shared_request_(std::move(request)), request_(*shared_request_) {}
  virtual ~Probe() = default;
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  virtual void start() = 0;
  // What the probe was doing, for "timeout after 1000 ms (connecting)".
  virtual std::string stage() const = 0;

 protected:
  void succeed(std::string detail) {
    finished_ = true;
    prober_.complete(id_, true, std::move(detail));
  }
  void fail(std::string detail) {
    finished_ = true;
    prober_.complete(id_, false, std::move(detail));
  }

  Prober& prober_;
  const uint64_t id_;
  const std::shared_ptr<const CheckRequest> shared_request_;  // shared with the Engine
  const CheckRequest& request_;
  // The outcome is reported; events that arrive before the Prober destroys the probe are
  // ignored.
  bool finished_ = false;
};

using RequestPtr = std::shared_ptr<const CheckRequest>;
std::unique_ptr<Probe> make_stream_probe(Prober& prober, uint64_t id, RequestPtr request);
std::unique_ptr<Probe> make_dns_probe(Prober& prober, uint64_t id, RequestPtr request);
std::unique_ptr<Probe> make_exec_probe(Prober& prober, uint64_t id, RequestPtr request);

// The socket address of `ep`; returns its length.
socklen_t to_sockaddr(const Endpoint& ep, sockaddr_storage& ss);

// "connection refused": the errno's text, starting lower case to read inside a sentence.
std::string errno_text(int err);

}  // namespace xlb::health
