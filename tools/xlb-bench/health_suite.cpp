// SPDX-License-Identifier: Apache-2.0
// xlb-bench suite "health": how fast health checking takes a dead backend out of the ring in
// the kernel, and what checking many backends costs. Every check goes to listeners this suite
// makes on loopback (127.0.0.0/8); nothing leaves the host.
//
//   detect_to_map_ms  from the moment a backend fails to the moment the Maglev ring in the BPF
//                     map no longer names it. xlbd's path end to end: Monitor -> change callback
//                     -> a worker reconciles the health-filtered state -> the reconciler patches
//                     the ring of a loaded (not attached) balancer. A thread reads the ring from
//                     the map in a tight loop ("poll_ms": one read); "to_change_ms" is the
//                     Monitor's callback alone. The VIP has three backends with test-range ring
//                     addresses (198.18.3.1-3); per-backend health overrides send their checks
//                     to 127.0.0.1 listeners. Two ways to fail:
//                       tcp_refused   the listener stops listening: each check is refused
//                       http_timeout  the server stops answering: each check runs to its timeout
//                     interval 100 ms, timeout 50 ms, fall 3, fastinter = interval. Median of
//                     the runs, the worst in "max"; budget_ms = fall x interval + 50 (the issue's
//                     bound) is the target. Needs root (BPF maps): skipped otherwise.
//   cpu_pct_of_core   CPU time (user + system, getrusage; split in "user_pct" and "sys_pct") of
//                     this process while one Monitor checks 4096 backends (tcp, each on its own
//                     127.0.x.y listener) every 1 s, over >= 5 s after the first round, as a
//                     percentage of one core. Loopback runs the listener's side of each
//                     handshake (SYN-ACK, the reset) inside the checker's system calls, so the
//                     value is an upper bound of what the checks cost a load balancer whose
//                     backends are remote. "floor_cpu_pct": the same connections at the same
//                     pace from a bare loop right after (the kernel's share, measured in the
//                     same run), "over_floor_pct" what the checker adds. The listeners run in a
//                     child process ("listener_cpu_pct"). Target <= 10.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "xlb/dataplane/balancer.h"
#include "xlb/health/monitor.h"
#include "xlb/state/balancer_writer.h"
#include "xlb/state/config.h"
#include "xlb/state/reconciler.h"

namespace xlb::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kSuite[] = "health";
constexpr uint32_t kDetectIntervalMs = 100;
constexpr uint32_t kDetectTimeoutMs = 50;
constexpr uint32_t kDetectFall = 3;
constexpr double kCpuTarget = 10.0;
constexpr size_t kCpuBackends = 4096;

// 127.0.x.y, x from 1: every address of 127.0.0.0/8 is local on Linux without configuration.
std::string loopback_address(size_t i, unsigned block) {
  return "127." + std::to_string(block) + "." + std::to_string(1 + i / 250) + "." +
         std::to_string(1 + i % 250);
}

int listen_on(const std::string& address, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  auto a = IpAddress::parse(address);
  if (!a) {
    ::close(fd);
    return -1;
  }
  std::memcpy(&sin.sin_addr, a->bytes(), 4);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 || ::listen(fd, 256) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A port free on 127.0.0.1 right now; listeners on other 127.x addresses bind it separately.
uint16_t pick_port() {
  int fd = listen_on("127.0.0.1", 0);
  if (fd < 0) return 0;
  sockaddr_in sin{};
  socklen_t len = sizeof(sin);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  ::close(fd);
  return ntohs(sin.sin_port);
}

// Raises the soft fd limit to the hard one; returns the soft limit in force.
size_t raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

state::DesiredState vip_of(const std::vector<std::string>& backends, uint16_t port,
                           const state::HealthCheckSpec& spec) {
  state::VipSpec v;
  v.key = *state::VipKey::parse("198.18.200.1:80/tcp");
  v.health = spec;
  v.health.port = port;
  for (const auto& b : backends) {
    v.backends.push_back({*IpAddress::parse(b), 1, state::BackendState::kActive});
  }
  std::sort(v.backends.begin(), v.backends.end(),
            [](const auto& a, const auto& b) { return a.address < b.address; });
  state::DesiredState d;
  d.vips.emplace(v.key, v);
  return d;
}

// ---- detect_to_map_ms ---------------------------------------------------------------------

// One backend's check target on 127.0.0.1: a TCP listener that accepts and either answers
// HTTP 200 or, once told to hang, keeps connections open without a word; or stops listening.
class Backend {
 public:
  explicit Backend(uint16_t port) : fd_(listen_on("127.0.0.1", port)) {
    if (fd_ >= 0) thread_ = std::thread([this] { run(); });
  }
  ~Backend() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (int c : held_) ::close(c);
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  void hang() { hang_ = true; }
  // Stops listening at once: the next SYN is answered with a reset. (The fd stays open until
  // the destructor, so the accepting thread never polls a closed or reused fd.)
  void refuse() { ::shutdown(fd_, SHUT_RDWR); }

 private:
  void run() {
    const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINVAL) std::this_thread::sleep_for(5ms);  // shut down: no longer listening
        continue;
      }
      if (hang_) {
        held_.push_back(c);
        continue;
      }
      // A check's request arrives right after the handshake; wait for it briefly.
      pollfd r{c, POLLIN, 0};
      if (::poll(&r, 1, 20) > 0) {
        char buf[2048];
        [[maybe_unused]] ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        [[maybe_unused]] ssize_t w = ::send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
      }
      ::close(c);
    }
  }
  int fd_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> hang_{false};
  std::vector<int> held_;
  std::thread thread_;
};

// The daemon's health path over real maps: a Monitor, the health filter, the reconciler and a
// loaded balancer (not attached to any interface: the maps are what is measured). As in xlbd,
// the Monitor's callback wakes a worker that reconciles.
class HealthToRing {
 public:
  static Result<std::unique_ptr<HealthToRing>> start(const state::DesiredState& desired) {
    std::unique_ptr<HealthToRing> h(new HealthToRing(desired));
    auto lb = dataplane::Balancer::load({.max_vips = 4, .max_backends = 16,
                                         .flows_per_cpu = state::config_bounds::kMinFlowsPerCpu});
    if (!lb) return lb.error();
    h->lb_ = std::move(*lb);
    h->writer_ = std::make_unique<state::BalancerWriter>(*h->lb_);
    h->reconciler_ = std::make_unique<state::Reconciler>(
        *h->writer_, state::ReconcilerOptions{.max_vips = 4, .max_backends = 16});
    auto monitor = health::Monitor::start([raw = h.get()] {
      std::lock_guard lock(raw->mu_);
      if (!raw->changed_at_) raw->changed_at_ = Clock::now();
      raw->changed_ = true;
      raw->cv_.notify_one();
    });
    if (!monitor) return monitor.error();
    h->monitor_ = std::move(*monitor);
    h->monitor_->set_targets(desired);
    XLB_TRY(h->reconcile());
    h->worker_ = std::thread([raw = h.get()] { raw->work(); });
    return h;
  }
  ~HealthToRing() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_one();
    }
    if (worker_.joinable()) worker_.join();
    if (monitor_) monitor_->stop();
  }

  health::Monitor& monitor() { return *monitor_; }
  dataplane::Balancer& balancer() { return *lb_; }
  // The VIP index and the backend index of `backend` as applied.
  std::optional<std::pair<uint32_t, uint32_t>> indices(const state::VipKey& vip,
                                                       const IpAddress& backend) {
    std::lock_guard lock(mu_);
    const state::AppliedVip* applied = reconciler_->applied_vip(vip);
    if (!applied) return std::nullopt;
    for (const auto& b : applied->backends) {
      if (b.address == backend) return std::make_pair(applied->index, b.index);
    }
    return std::nullopt;
  }
  // When the Monitor last called back since the previous call of this (nullopt: not since).
  std::optional<Clock::time_point> take_change_time() {
    std::lock_guard lock(mu_);
    return std::exchange(changed_at_, std::nullopt);
  }
  bool failed() const { return failed_; }

 private:
  explicit HealthToRing(state::DesiredState desired) : desired_(std::move(desired)) {}

  Status reconcile() {
    auto report = reconciler_->apply(monitor_->apply(desired_).state,
                                     dataplane::Balancer::default_config());
    if (!report) return report.error();
    return {};
  }
  void work() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return changed_ || stop_; });
      if (stop_) return;
      changed_ = false;
      if (auto st = reconcile(); !st) {
        std::fprintf(stderr, "health: reconcile: %s\n", st.error().to_string().c_str());
        failed_ = true;
      }
    }
  }

  const state::DesiredState desired_;
  std::unique_ptr<dataplane::Balancer> lb_;
  std::unique_ptr<state::BalancerWriter> writer_;
  std::unique_ptr<state::Reconciler> reconciler_;  // guarded by mu_
  std::unique_ptr<health::Monitor> monitor_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool changed_ = false;
  bool stop_ = false;
  std::atomic<bool> failed_{false};
  std::optional<Clock::time_point> changed_at_;
  std::thread worker_;
};

struct Detection {
  double to_ring_ms = 0;    // the failure -> no ring slot names the backend
  double to_change_ms = 0;  // the failure -> the Monitor's change callback
  double poll_ms = 0;       // mean time of one read of the ring
};

bool ring_names(const std::vector<uint32_t>& ring, uint32_t backend_index) {
  return std::find(ring.begin(), ring.end(), backend_index) != ring.end();
}

// One measurement; nullopt (with the reason on stderr) when it could not be made.
std::optional<Detection> detect_once(state::CheckType type, std::mt19937& rng) {
  // Three backends, so one failing is not "all down" (keep-last-set would keep it in the
  // ring). Their ring addresses are test-range ones; their checks go to loopback listeners
  // through per-backend overrides.
  constexpr size_t kBackends = 3;
  constexpr size_t kFailing = 1;
  std::vector<std::unique_ptr<Backend>> listeners;
  state::VipSpec v;
  v.key = *state::VipKey::parse("198.18.200.1:80/tcp");
  v.health.type = type;
  v.health.interval_ms = kDetectIntervalMs;
  v.health.timeout_ms = kDetectTimeoutMs;
  v.health.rise = 2;
  v.health.fall = kDetectFall;
  for (size_t i = 0; i < kBackends; i++) {
    const uint16_t port = pick_port();
    listeners.push_back(std::make_unique<Backend>(port));
    if (!listeners.back()->ok()) {
      std::fprintf(stderr, "health: cannot listen on 127.0.0.1:%u\n", port);
      return std::nullopt;
    }
    v.backends.push_back({*IpAddress::parse("198.18.3." + std::to_string(i + 1)), 1,
                          state::BackendState::kActive,
                          {.port = port, .address = *IpAddress::parse("127.0.0.1")}});
  }
  const IpAddress failing = v.backends[kFailing].address;
  state::DesiredState desired;
  desired.vips.emplace(v.key, v);
  auto wiring = HealthToRing::start(desired);
  if (!wiring) {
    std::fprintf(stderr, "health: %s\n", wiring.error().to_string().c_str());
    return std::nullopt;
  }
  HealthToRing& h = **wiring;
  // Up (pending -> up changes no weight), then a few steady checks.
  const auto deadline = Clock::now() + 3s;
  bool steady = false;
  while (!steady && Clock::now() < deadline) {
    auto s = h.monitor().snapshot();
    steady = s.backends.size() == kBackends &&
             std::all_of(s.backends.begin(), s.backends.end(), [](const auto& b) {
               return b.health == health::Health::kUp && b.checks >= 3;
             });
    if (!steady) std::this_thread::sleep_for(5ms);
  }
  auto idx = h.indices(v.key, failing);
  if (!steady || !idx) {
    std::fprintf(stderr, "health: the backends did not come up within 3 s\n");
    return std::nullopt;
  }
  const auto [vip_index, backend_index] = *idx;
  auto ring = h.balancer().ring(vip_index);
  if (!ring || !ring_names(*ring, backend_index)) {
    std::fprintf(stderr, "health: the ring does not name the backend before it fails\n");
    return std::nullopt;
  }
  // Fail at a random phase relative to the checks.
  std::this_thread::sleep_for(std::chrono::microseconds(
      std::uniform_int_distribution<int>(0, kDetectIntervalMs * 1000)(rng)));
  h.take_change_time();
  // The poller reads the ring from the kernel map until no slot names the backend.
  std::atomic<bool> go{false};
  std::optional<Clock::time_point> gone;
  std::optional<Clock::time_point> failed_at;
  size_t polls = 0;
  Clock::duration polling{};
  std::thread poller([&] {
    while (!go) std::this_thread::yield();
    const auto start = Clock::now();
    const auto until = start + 3s;
    for (auto now = start; now < until; now = Clock::now()) {
      auto r = h.balancer().ring(vip_index);
      const auto read = Clock::now();
      polls++;
      if (r && !ring_names(*r, backend_index)) {
        gone = read;
        break;
      }
    }
    polling = Clock::now() - start;
  });
  failed_at = Clock::now();
  go = true;
  if (type == state::CheckType::kTcp) {
    listeners[kFailing]->refuse();
  } else {
    listeners[kFailing]->hang();
  }
  poller.join();
  const auto changed = h.take_change_time();
  if (!gone || h.failed()) {
    std::fprintf(stderr, "health: the ring still names the failed backend after 3 s\n");
    return std::nullopt;
  }
  Detection d;
  d.to_ring_ms = std::chrono::duration<double, std::milli>(*gone - *failed_at).count();
  d.to_change_ms = changed ? std::chrono::duration<double, std::milli>(*changed - *failed_at).count()
                           : d.to_ring_ms;
  d.poll_ms = std::chrono::duration<double, std::milli>(polling).count() / std::max<size_t>(polls, 1);
  return d;
}

int detect_case(const Options& opts, const std::string& name, state::CheckType type) {
  if (::geteuid() != 0) {
    std::fprintf(stderr,
                 "health %s: skipped: needs root (the ring is read from a BPF map of a loaded "
                 "balancer)\n",
                 name.c_str());
    return 0;
  }
  std::mt19937 rng(std::random_device{}());
  const int runs = static_cast<int>(scaled(opts, 5L * opts.runs, 3));
  std::vector<double> to_ring, to_change, poll;
  for (int i = 0; i < runs; i++) {
    auto d = detect_once(type, rng);
    if (!d) {
      std::fprintf(stderr, "health %s: run %d failed\n", name.c_str(), i);
      return 1;
    }
    to_ring.push_back(d->to_ring_ms);
    to_change.push_back(d->to_change_ms);
    poll.push_back(d->poll_ms);
  }
  const double budget = kDetectFall * kDetectIntervalMs + 50.0;
  emit(opts, kSuite, name, "detect_to_map_ms", median(to_ring), "ms",
       {{"target", budget},
        {"budget_ms", budget},
        {"max", *std::max_element(to_ring.begin(), to_ring.end())},
        {"min", *std::min_element(to_ring.begin(), to_ring.end())},
        {"to_change_ms", median(to_change)},
        {"poll_ms", median(poll)},
        {"runs", runs},
        {"interval_ms", kDetectIntervalMs},
        {"timeout_ms", kDetectTimeoutMs},
        {"fall", kDetectFall}});
  return 0;
}

// ---- cpu_pct_of_core ----------------------------------------------------------------------

double seconds_of(const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; }

// CPU time of this process: user and system seconds.
std::pair<double, double> cpu_seconds() {
  rusage r{};
  ::getrusage(RUSAGE_SELF, &r);
  return {seconds_of(r.ru_utime), seconds_of(r.ru_stime)};
}

// CPU seconds (user + system) of process `pid` from /proc.
double process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; i++) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The listeners, in a child process: `n` addresses, one port, accept and close.
struct ListenerProcess {
  pid_t pid = -1;
  ~ListenerProcess() { stop(); }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
  }
  bool start(size_t n, uint16_t port) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return false;
    pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the bench
      ::close(ready[0]);
      int ep = ::epoll_create1(EPOLL_CLOEXEC);
      char status = 1;
      for (size_t i = 0; i < n; i++) {
        int fd = listen_on(loopback_address(i, 0), port);
        if (fd < 0 || ep < 0) {
          status = 0;
          break;
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      }
      [[maybe_unused]] ssize_t w = ::write(ready[1], &status, 1);
      if (!status) ::_exit(1);
      // Accepts in rounds, 20 ms apart, never sleeping in epoll_wait: a loopback connection is
      // handled by the kernel in the connecting process's context, so an acceptor asleep in
      // epoll_wait would be woken from the checker's connect() (an IPI on a VM), a cost remote
      // backends never put on a load balancer. The backlogs hold the ~100 connections a round.
      epoll_event events[256];
      for (;;) {
        ::usleep(20000);
        int k;
        while ((k = ::epoll_wait(ep, events, 256, 0)) > 0) {
          for (int i = 0; i < k; i++) {
            for (;;) {
              int c = ::accept4(events[i].data.fd, nullptr, nullptr, SOCK_CLOEXEC);
              if (c < 0) break;
              ::close(c);
            }
          }
        }
      }
    }
    ::close(ready[1]);
    char status = 0;
    ssize_t r = ::read(ready[0], &status, 1);
    ::close(ready[0]);
    return r == 1 && status == 1;
  }
};

// The floor: the kernel's work for the same connections at the same pace, from a plain loop
// with no scheduler, event loop or bookkeeping: TCP_QUICKACK off, a non-blocking connect (on
// loopback the handshake completes inside it), the abort, as the checker's tcp check does.
// Returns the CPU percentage of one core; `unconnected` counts connections that had not
// completed when aborted (the floor would then be too low).
double floor_cpu_pct(size_t n, uint16_t port, double seconds, uint64_t& unconnected) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  const linger reset{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  std::vector<sockaddr_in> targets(n);
  for (size_t i = 0; i < n; i++) {
    targets[i].sin_family = AF_INET;
    targets[i].sin_port = htons(port);
    std::memcpy(&targets[i].sin_addr, IpAddress::parse(loopback_address(i, 0))->bytes(), 4);
  }
  // n connections a second, in rounds 25 ms apart (the Monitor's batches).
  constexpr auto kRound = 25ms;
  const size_t per_round = std::max<size_t>(n * 25 / 1000, 1);
  size_t next = 0;
  const auto [u0, s0] = cpu_seconds();
  const auto t0 = Clock::now();
  for (auto round = t0; round < t0 + std::chrono::duration<double>(seconds); round += kRound) {
    std::this_thread::sleep_until(round);
    for (size_t k = 0; k < per_round; k++, next = (next + 1) % n) {
      const int no = 0;
      ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &no, sizeof(no));
      ::connect(fd, reinterpret_cast<const sockaddr*>(&targets[next]), sizeof(targets[next]));
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 0) != 1 || (p.revents & (POLLERR | POLLHUP))) unconnected++;
      sockaddr unspec{};
      unspec.sa_family = AF_UNSPEC;
      ::connect(fd, &unspec, sizeof(unspec));
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
  }
  const auto [u1, s1] = cpu_seconds();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(fd);
  return 100.0 * ((u1 - u0) + (s1 - s0)) / wall;
}

int cpu_case(const Options& opts) {
  // The child holds one fd per listener; this process one per running check (a few hundred).
  const size_t fds = raise_fd_limit();
  size_t n = kCpuBackends;
  if (fds < n + 64) {
    n = fds > 128 ? fds - 64 : 64;
    std::fprintf(stderr, "health cpu: the fd limit (%zu) allows %zu backends, not %zu\n", fds, n,
                 kCpuBackends);
  }
  const uint16_t port = pick_port();
  ListenerProcess listeners;
  if (!listeners.start(n, port)) {
    std::fprintf(stderr, "health cpu: cannot bind %zu loopback listeners\n", n);
    return 1;
  }
  std::vector<std::string> backends;
  for (size_t i = 0; i < n; i++) backends.push_back(loopback_address(i, 0));
  state::HealthCheckSpec spec;
  spec.type = state::CheckType::kTcp;
  spec.interval_ms = 1000;
  spec.timeout_ms = 500;
  const double seconds = std::max(5.0 * opts.scale, 0.5);  // >= 5 s in a real run
  std::vector<double> pcts, user_pcts, sys_pcts, floor_pcts;
  std::vector<double> listener_pcts;
  uint64_t unconnected = 0;
  uint64_t checks = 0, failures = 0;
  for (int run = 0; run < opts.runs; run++) {
    auto monitor = health::Monitor::start([] {});
    if (!monitor) {
      std::fprintf(stderr, "health cpu: %s\n", monitor.error().to_string().c_str());
      return 1;
    }
    (*monitor)->set_targets(vip_of(backends, port, spec));
    // The first round spreads over one interval (the start delay); measure after it.
    std::this_thread::sleep_for(1200ms);
    const auto before = (*monitor)->snapshot();
    const auto [u0, s0] = cpu_seconds();
    const double l0 = process_cpu_seconds(listeners.pid);
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const auto [u1, s1] = cpu_seconds();
    const double l1 = process_cpu_seconds(listeners.pid);
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const auto after = (*monitor)->snapshot();
    (*monitor)->stop();
    user_pcts.push_back(100.0 * (u1 - u0) / wall);
    sys_pcts.push_back(100.0 * (s1 - s0) / wall);
    pcts.push_back(user_pcts.back() + sys_pcts.back());
    listener_pcts.push_back(100.0 * (l1 - l0) / wall);
    // Same run, same listeners, same machine load: the floor right after.
    floor_pcts.push_back(floor_cpu_pct(n, port, seconds, unconnected));
    checks += after.checks_total - before.checks_total;
    failures += after.failures_total - before.failures_total;
  }
  emit(opts, kSuite, "tcp_" + std::to_string(n) + "_backends_1s", "cpu_pct_of_core", median(pcts),
       "%",
       {{"target", kCpuTarget},
        {"backends", n},
        {"interval_ms", spec.interval_ms},
        {"seconds", seconds},
        {"checks_per_s", checks / (seconds * opts.runs)},
        {"failed_checks", failures},
        {"user_pct", median(user_pcts)},
        {"sys_pct", median(sys_pcts)},
        {"floor_cpu_pct", median(floor_pcts)},
        {"over_floor_pct", median(pcts) - median(floor_pcts)},
        {"floor_unconnected", unconnected},
        {"listener_cpu_pct", median(listener_pcts)}});
  return failures == 0 && unconnected == 0 ? 0 : 1;
}

}  // namespace

int run_health_suite(const Options& opts) {
  // Transitions are logged at info and warning on stdout, which carries the JSON records.
  spdlog::set_level(spdlog::level::err);
  int rc = 0;
  rc |= detect_case(opts, "tcp_refused", state::CheckType::kTcp);
  rc |= detect_case(opts, "http_timeout", state::CheckType::kHttp);
  rc |= cpu_case(opts);
  return rc;
}

}  // namespace xlb::bench
