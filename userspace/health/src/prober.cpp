// SPDX-License-Identifier: Apache-2.0
#include "xlb/health/prober.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "probe.h"

namespace xlb::health {

std::string errno_text(int err) {
  std::string s = std::system_category().message(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

socklen_t to_sockaddr(const Endpoint& ep, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof(ss));
  if (ep.address.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(ep.port);
    std::memcpy(&sin->sin_addr, ep.address.bytes(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(ep.port);
  std::memcpy(&sin6->sin6_addr, ep.address.bytes(), 16);
  return sizeof(sockaddr_in6);
}

Prober::Prober(EventLoop& loop) : loop_(loop), rng_(std::random_device{}()) {}

Prober::~Prober() {
  loop_.cancel_timer(deadline_timer_);
  loop_.cancel_timer(delivery_timer_);
  probes_.clear();  // destructors release sockets, kill exec process groups (reap_later())
  for (auto& [pid, z] : zombies_) {
    loop_.unwatch(z.watch);
    // Killed with SIGKILL: waiting is short, and leaving a zombie behind is not an option.
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ::close(z.pidfd);
  }
  while (!sockets_.empty()) close_stream_socket(sockets_.begin()->first);
  if (tls_) SSL_CTX_free(tls_);
}

Result<int> Prober::acquire_stream_socket(int family, std::function<void(uint32_t)> on_event) {
  auto& idle = family == AF_INET6 ? idle_v6_ : idle_v4_;
  if (!idle.empty()) {
    const int fd = idle.back();
    idle.pop_back();
    sockets_.at(fd).on_event = std::move(on_event);
    return fd;
  }
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return Error::from_errno(errno, "socket");
  // Abortive close: see stream_probe.cpp.
  const linger reset{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  // Edge-triggered: an idle socket (closed state, always "writable") must not wake the loop,
  // and a reused one reports what its current connection does (epoll polls the socket when it
  // delivers an event, so an edge left over from the previous check shows the current state).
  auto watch = loop_.watch(fd, EPOLLIN | EPOLLOUT | EPOLLET, [this, fd](uint32_t events) {
    auto it = sockets_.find(fd);
    if (it == sockets_.end() || !it->second.on_event) return;  // idle: a late event
    auto handler = it->second.on_event;  // a copy: the handler may release the socket
    handler(events);
  });
  if (!watch) {
    ::close(fd);
    return watch.error();
  }
  sockets_[fd] = PooledSocket{family, *watch, std::move(on_event)};
  return fd;
}

void Prober::close_stream_socket(int fd) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return;
  loop_.forget(it->second.watch);
  sockets_.erase(it);
  ::close(fd);
}

void Prober::release_stream_socket(int fd, bool broken) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return;
  it->second.on_event = nullptr;
  auto& idle = it->second.family == AF_INET6 ? idle_v6_ : idle_v4_;
  // Idle sockets cost an fd each; checks running at once rarely need more than this.
  constexpr size_t kMaxIdle = 1024;
  if (!broken && idle.size() < kMaxIdle) {
    // connect(AF_UNSPEC) disconnects a TCP socket (tcp_disconnect: RST when established) and
    // leaves it unconnected, ready for another connect().
    sockaddr unspec{};
    unspec.sa_family = AF_UNSPEC;
    if (::connect(fd, &unspec, sizeof(unspec)) == 0) {
      // The abort leaves ECONNRESET pending; the next check must not see it.
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      idle.push_back(fd);
      return;
    }
  }
  close_stream_socket(fd);
}

uint64_t Prober::start(const CheckRequest& request, Done done) {
  return start(std::make_shared<const CheckRequest>(request), std::move(done));
}

uint64_t Prober::start(std::shared_ptr<const CheckRequest> shared, Done done) {
  const uint64_t id = next_id_++;
  const CheckRequest& request = *shared;
  std::unique_ptr<Probe> probe;
  switch (request.spec.type) {
    case state::CheckType::kTcp:
    case state::CheckType::kHttp:
    case state::CheckType::kHttps:
      probe = make_stream_probe(*this, id, shared);
      break;
    case state::CheckType::kUdpDns:
      probe = make_dns_probe(*this, id, shared);
      break;
    case state::CheckType::kExec:
      probe = make_exec_probe(*this, id, shared);
      break;
    case state::CheckType::kNone:
      break;
  }
  const SteadyTime now = std::chrono::steady_clock::now();
  Running& r = probes_[id];
  r.done = std::move(done);
  r.started = now;
  r.timeout_ms = request.spec.timeout_ms;
  deadlines_.emplace_back(now + std::chrono::milliseconds(r.timeout_ms), id);
  std::push_heap(deadlines_.begin(), deadlines_.end(), std::greater<>());
  arm_deadline_timer();
  if (!probe) {
    complete(id, true, "no check");
    return id;
  }
  r.probe = std::move(probe);
  r.probe->start();
  return id;
}

void Prober::arm_deadline_timer() {
  // Entries of probes that have completed (most of them: a check rarely runs to its timeout)
  // leave the heap here, so the timer waits for a probe that still runs.
  while (!deadlines_.empty()) {
    auto it = probes_.find(deadlines_.front().second);
    if (it != probes_.end() && !it->second.completed) break;
    std::pop_heap(deadlines_.begin(), deadlines_.end(), std::greater<>());
    deadlines_.pop_back();
  }
  if (deadlines_.empty()) return;  // an armed timer finds nothing and is not re-armed
  const SteadyTime at = deadlines_.front().first;
  // Armed no later than needed: when it fires it re-arms for what is then the earliest.
  if (deadline_timer_ != 0 && deadline_timer_at_ <= at) return;
  loop_.cancel_timer(deadline_timer_);
  deadline_timer_at_ = at;
  deadline_timer_ = loop_.add_timer(at, [this] {
    deadline_timer_ = 0;
    expire_deadlines();
  });
}

void Prober::expire_deadlines() {
  const SteadyTime now = std::chrono::steady_clock::now();
  while (!deadlines_.empty() && deadlines_.front().first <= now) {
    const uint64_t id = deadlines_.front().second;
    std::pop_heap(deadlines_.begin(), deadlines_.end(), std::greater<>());
    deadlines_.pop_back();
    auto it = probes_.find(id);
    if (it == probes_.end() || it->second.completed) continue;
    const std::string stage = it->second.probe ? it->second.probe->stage() : "starting";
    complete(id, false,
             "timeout after " + std::to_string(it->second.timeout_ms) + " ms (" + stage + ")");
  }
  arm_deadline_timer();
}

void Prober::cancel(uint64_t id) {
  // A pending deadline or delivery finds no probe and is skipped.
  probes_.erase(id);
}

void Prober::complete(uint64_t id, bool ok, std::string detail) {
  auto it = probes_.find(id);
  if (it == probes_.end() || it->second.completed) return;
  Running& r = it->second;
  r.completed = true;
  r.result = CheckResult{ok, std::move(detail), std::chrono::steady_clock::now() - r.started};
  // Delivered from a timer due now: complete() is called from inside the probe, which must not
  // be destroyed under its own feet, and start() promises not to call `done` itself. One
  // timer delivers every result completed meanwhile.
  completed_.push_back(id);
  if (delivery_timer_ == 0) {
    delivery_timer_ = loop_.add_timer(SteadyTime{}, [this] {
      delivery_timer_ = 0;
      deliver_results();
    });
  }
}

void Prober::deliver_results() {
  // `done` may start probes that complete at once: those go to the next delivery.
  delivering_.swap(completed_);
  for (uint64_t id : delivering_) {
    auto found = probes_.find(id);
    if (found == probes_.end()) continue;  // cancelled meanwhile
    Done done = std::move(found->second.done);
    CheckResult result = std::move(found->second.result);
    probes_.erase(found);  // releases the probe's sockets / process before `done` runs
    done(result);
  }
  delivering_.clear();
}

void Prober::reap_later(pid_t pid, int pidfd) {
  auto watch = loop_.watch(pidfd, EPOLLIN, [this, pid](uint32_t) {
    int status;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == 0) return;  // not yet
    auto it = zombies_.find(pid);
    if (it == zombies_.end()) return;
    loop_.unwatch(it->second.watch);
    ::close(it->second.pidfd);
    zombies_.erase(it);
  });
  if (!watch) {
    // Cannot watch it: wait here; it has been sent SIGKILL.
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ::close(pidfd);
    return;
  }
  zombies_[pid] = Zombie{pidfd, *watch};
}

SSL_CTX* Prober::tls_context(std::string& error) {
  if (tls_) return tls_;
  tls_ = SSL_CTX_new(TLS_client_method());
  if (!tls_) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    error = std::string("cannot make a TLS context: ") + buf;
    return nullptr;
  }
  // A health check asks "does this backend serve TLS and HTTP"; it does not authenticate the
  // backend. A backend's certificate names the service, not the backend address the check
  // connects to, so verification would fail everywhere (HAProxy's "check-ssl verify none").
  SSL_CTX_set_verify(tls_, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_min_proto_version(tls_, TLS1_2_VERSION);
  // One handshake per check: session tickets would only fill memory.
  SSL_CTX_set_session_cache_mode(tls_, SSL_SESS_CACHE_OFF);
  return tls_;
}

uint16_t Prober::random_u16() { return static_cast<uint16_t>(rng_()); }

}  // namespace xlb::health
