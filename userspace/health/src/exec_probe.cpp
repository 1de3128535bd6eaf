// SPDX-License-Identifier: Apache-2.0
// exec checks: run exec_command (argv, searched in PATH) with the daemon's environment plus
//   XLB_BACKEND       the address checked (health.address, else the backend)
//   XLB_PORT          the port checked (health.port, else the VIP's; 0 for a port-less VIP)
//   XLB_VIP           the VIP's address
//   XLB_VIP_PORT      the VIP's port (0: port-less)
//   XLB_VIP_PROTOCOL  tcp or udp
// stdin is /dev/null; stdout and stderr go to a pipe whose first line is shown in the result.
// Exit status 0 is up, anything else down.
//
// The child leads a process group of its own, so at the timeout the whole group (a shell and
// whatever it started) gets SIGKILL. posix_spawn rather than fork: the daemon is
// multi-threaded, and posix_spawn needs no care about what the child may do before exec. The
// exit is watched through a pidfd, so the event loop needs no SIGCHLD handler; a child killed
// at the timeout is reaped later by the Prober.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "probe.h"

extern char** environ;

namespace xlb::health {
namespace {

constexpr size_t kMaxOutput = 512;

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

class ExecProbe final : public Probe {
 public:
  using Probe::Probe;

  ~ExecProbe() override {
    if (out_watch_) prober_.loop().unwatch(out_watch_);
    if (out_fd_ >= 0) ::close(out_fd_);
    if (pid_watch_) prober_.loop().unwatch(pid_watch_);
    if (pid_ > 0 && !reaped_) {
      // Timed out or cancelled: the group goes, the Prober reaps the child when it is gone.
      ::kill(-pid_, SIGKILL);
      prober_.reap_later(pid_, pidfd_);
      pidfd_ = -1;
    }
    if (pidfd_ >= 0) ::close(pidfd_);
  }

  void start() override {
    const auto& spec = request_.spec;
    std::vector<std::string> env;
    for (char** e = environ; e && *e; e++) {
      std::string_view v(*e);
      if (v.starts_with("XLB_BACKEND=") || v.starts_with("XLB_PORT=") ||
          v.starts_with("XLB_VIP=") || v.starts_with("XLB_VIP_PORT=") ||
          v.starts_with("XLB_VIP_PROTOCOL=")) {
        continue;
      }
      env.emplace_back(v);
    }
    env.push_back("XLB_BACKEND=" + request_.target.address.to_string());
    env.push_back("XLB_PORT=" + std::to_string(request_.target.port));
    env.push_back("XLB_VIP=" + request_.vip.address.to_string());
    env.push_back("XLB_VIP_PORT=" + std::to_string(request_.vip.port));
    env.push_back("XLB_VIP_PROTOCOL=" + std::string(state::to_string(request_.vip.protocol)));
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = spec.exec_command;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail("pipe: " + errno_text(errno));
    out_fd_ = pipe_fds[0];
    // Only our end is non-blocking: the command sees an ordinary pipe.
    ::fcntl(out_fd_, F_SETFL, O_NONBLOCK);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
    // Nothing of the daemon's (sockets, BPF objects) leaks into a check, CLOEXEC or not.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    // Own process group (for the kill at the timeout); default signal dispositions and an
    // empty mask, whatever the daemon's threads block or ignore (SIGPIPE).
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(pipe_fds[1]);
    if (rc != 0) return fail("cannot run '" + spec.exec_command.front() + "': " + errno_text(rc));
    pid_ = pid;
    pidfd_ = pidfd_open(pid);
    if (pidfd_ < 0) {
      const int err = errno;
      ::kill(-pid_, SIGKILL);
      int status;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
      return fail("pidfd_open: " + errno_text(err));
    }
    auto ow = prober_.loop().watch(out_fd_, EPOLLIN, [this](uint32_t) { drain(); });
    if (!ow) return fail(ow.error().to_string());
    out_watch_ = *ow;
    auto pw = prober_.loop().watch(pidfd_, EPOLLIN, [this](uint32_t) { on_exit(); });
    if (!pw) return fail(pw.error().to_string());
    pid_watch_ = *pw;
  }

  std::string stage() const override {
    return "process group of '" + request_.spec.exec_command.front() + "' killed";
  }

 private:
  // Keeps the first bytes of output and discards the rest, so a chatty command never blocks on
  // a full pipe.
  void drain() {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(out_fd_, buf, sizeof(buf));
      if (n > 0) {
        const size_t keep = std::min(static_cast<size_t>(n), kMaxOutput - output_.size());
        output_.append(buf, keep);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 && out_watch_) {
        // EOF: every writer is gone.
        prober_.loop().unwatch(out_watch_);
        out_watch_ = 0;
      }
      return;
    }
  }

  void on_exit() {
    if (finished_) return;
    // The pidfd is readable: the child has exited and, not reaped yet, still holds its pid and
    // process group id. Whatever it left running in its group goes now, before the id can be
    // reused.
    ::kill(-pid_, SIGKILL);
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0) return;
    reaped_ = true;
    // What the command wrote before it exited (a grandchild may keep the pipe open: do not
    // wait for EOF).
    drain();
    std::string line = output_.substr(0, output_.find('\n'));
    for (char& c : line) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    }
    const std::string said = line.empty() ? "" : ": " + line;
    if (r < 0) return fail("exit status lost (" + errno_text(errno) + ")");
    if (WIFEXITED(status)) {
      const int code = WEXITSTATUS(status);
      if (code == 0) return succeed("exit 0" + said);
      return fail("exit " + std::to_string(code) + said);
    }
    if (WIFSIGNALED(status)) {
      return fail("killed by signal " + std::to_string(WTERMSIG(status)) + said);
    }
    return fail("ended with status " + std::to_string(status));
  }

  pid_t pid_ = 0;
  int pidfd_ = -1;
  int out_fd_ = -1;
  uint64_t pid_watch_ = 0;
  uint64_t out_watch_ = 0;
  bool reaped_ = false;
  std::string output_;
};

}  // namespace

std::unique_ptr<Probe> make_exec_probe(Prober& prober, uint64_t id, RequestPtr request) {
  return std::make_unique<ExecProbe>(prober, id, std::move(request));
}

}  // namespace xlb::health
