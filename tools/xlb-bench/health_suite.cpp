// SPDX-License-Identifier: Apache-2.0
// xlb-bench suite "health": how fast health checking notices a dead backend, and what checking
// many backends costs. Every check goes to listeners this suite makes on loopback
// (127.0.0.0/8); nothing leaves the host.
//
//   detect_to_map_ms  from the moment a backend fails to the Monitor's change callback, i.e. the
//                     moment the daemon starts rebuilding the ring (its map write, well under a
//                     millisecond for one ring, comes on top). Two ways to fail:
//                       tcp_refused   the listener closes: each check is refused at once
//                       http_timeout  the server stops answering: each check runs to its timeout
//                     interval 100 ms, timeout 50 ms, fall 3, fastinter = interval. Median of
//                     the runs, the worst in "max"; budget_ms = fall x interval + 50 (the issue's
//                     bound) is the target.
//   cpu_pct_of_core   CPU time (user + system, getrusage) of this process while one Monitor
//                     checks 4096 backends (tcp, each on its own 127.0.x.y listener) every 1 s,
//                     over >= 5 s after the first round, as a percentage of one core. The
//                     listeners run in a child process, so their accept() work is not counted
//                     (it is reported as "listener_cpu_pct"). The kernel's TCP work is, for both
//                     ends: loopback runs the listener's side of each handshake (SYN, ACK, the
//                     child socket, the RST) inside the checker's connect(), so the value is an
//                     upper bound of what the checks cost a load balancer whose backends are
//                     remote (there the backend's half runs on the backend). Target <= 10.
#include <fcntl.h>
#include <netinet/in.h>
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
#include "xlb/health/monitor.h"

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

// One backend on loopback: a TCP listener that accepts and either answers HTTP 200 or, once
// told to hang, keeps connections open without a word; or closes for good.
class Backend {
 public:
  Backend(const std::string& address, uint16_t port) : fd_(listen_on(address, port)) {
    if (fd_ >= 0) thread_ = std::thread([this] { run(); });
  }
  ~Backend() { close(); }
  bool ok() const { return fd_ >= 0; }
  void hang() { hang_ = true; }
  void close() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (int c : held_) ::close(c);
    held_.clear();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  void run() {
    const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
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

// One measurement: ms from the failure to the change callback; nullopt on a setup problem.
std::optional<double> detect_once(state::CheckType type, std::mt19937& rng) {
  const uint16_t port = pick_port();
  const std::string address = "127.0.9.1";
  Backend backend(address, port);
  if (!backend.ok()) return std::nullopt;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Clock::time_point> changed;
  auto monitor = health::Monitor::start([&] {
    std::lock_guard lock(mu);
    if (!changed) changed = Clock::now();
    cv.notify_all();
  });
  if (!monitor) {
    std::fprintf(stderr, "health: %s\n", monitor.error().to_string().c_str());
    return std::nullopt;
  }
  state::HealthCheckSpec spec;
  spec.type = type;
  spec.interval_ms = kDetectIntervalMs;
  spec.timeout_ms = kDetectTimeoutMs;
  spec.rise = 2;
  spec.fall = kDetectFall;
  const auto desired = vip_of({address}, port, spec);
  (*monitor)->set_targets(desired);
  // Up (pending -> up changes no weight), then a few steady checks.
  const auto vip = desired.vips.begin()->first;
  const auto deadline = Clock::now() + 3s;
  while (Clock::now() < deadline) {
    auto s = (*monitor)->snapshot();
    if (!s.backends.empty() && s.backends[0].health == health::Health::kUp &&
        s.backends[0].checks >= 3) {
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  // Fail at a random phase relative to the checks.
  std::this_thread::sleep_for(std::chrono::microseconds(
      std::uniform_int_distribution<int>(0, kDetectIntervalMs * 1000)(rng)));
  {
    std::lock_guard lock(mu);
    changed.reset();
  }
  const auto failed = Clock::now();
  if (type == state::CheckType::kTcp) {
    backend.close();
  } else {
    backend.hang();
  }
  std::unique_lock lock(mu);
  cv.wait_for(lock, 3s, [&] { return changed.has_value(); });
  std::optional<double> ms;
  if (changed && (*monitor)->weight_factor(vip, *IpAddress::parse(address)) == 0.0) {
    ms = std::chrono::duration<double, std::milli>(*changed - failed).count();
  }
  lock.unlock();
  (*monitor)->stop();
  return ms;
}

int detect_case(const Options& opts, const std::string& name, state::CheckType type) {
  std::mt19937 rng(std::random_device{}());
  const int runs = static_cast<int>(scaled(opts, 5L * opts.runs, 3));
  std::vector<double> values;
  for (int i = 0; i < runs; i++) {
    auto ms = detect_once(type, rng);
    if (!ms) {
      std::fprintf(stderr, "health %s: run %d saw no change within 3 s\n", name.c_str(), i);
      return 1;
    }
    values.push_back(*ms);
  }
  const double budget = kDetectFall * kDetectIntervalMs + 50.0;
  emit(opts, kSuite, name, "detect_to_map_ms", median(values), "ms",
       {{"target", budget},
        {"budget_ms", budget},
        {"max", *std::max_element(values.begin(), values.end())},
        {"min", *std::min_element(values.begin(), values.end())},
        {"runs", runs},
        {"interval_ms", kDetectIntervalMs},
        {"timeout_ms", kDetectTimeoutMs},
        {"fall", kDetectFall}});
  return 0;
}

// ---- cpu_pct_of_core ----------------------------------------------------------------------

double cpu_seconds(const rusage& r) {
  return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec +
         r.ru_stime.tv_usec / 1e6;
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
  std::vector<double> pcts;
  std::vector<double> listener_pcts;
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
    rusage r0{};
    ::getrusage(RUSAGE_SELF, &r0);
    const double l0 = process_cpu_seconds(listeners.pid);
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    rusage r1{};
    ::getrusage(RUSAGE_SELF, &r1);
    const double l1 = process_cpu_seconds(listeners.pid);
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const auto after = (*monitor)->snapshot();
    (*monitor)->stop();
    pcts.push_back(100.0 * (cpu_seconds(r1) - cpu_seconds(r0)) / wall);
    listener_pcts.push_back(100.0 * (l1 - l0) / wall);
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
        {"listener_cpu_pct", median(listener_pcts)}});
  return failures == 0 ? 0 : 1;
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
