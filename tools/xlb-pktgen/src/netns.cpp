// SPDX-License-Identifier: Apache-2.0
#include "xlb/pktgen/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace xlb::pktgen {

using dataplane::UniqueFd;

namespace {

Result<struct stat> stat_of(const char* path) {
  struct stat st {};
  if (stat(path, &st) != 0) return Error::from_errno(errno, std::string("stat ") + path);
  return st;
}

bool same_inode(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The initial namespace: PID 1's. Some sandboxes hide PID 1's namespace links even from root;
// then kthreadd's (PID 2: kernel threads always run in the initial namespace). When neither
// can be read, fail: the callers refuse to send rather than guess.
Result<struct stat> initial_netns() {
  auto init = stat_of("/proc/1/ns/net");
  if (init || (init.error().code != std::errc::permission_denied &&
               init.error().code != std::errc::operation_not_permitted)) {
    return init;
  }
  char comm[32] = {};
  int fd = open("/proc/2/comm", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, comm, sizeof(comm) - 1);
    close(fd);
    if (n > 0 && std::string(comm, n) == "kthreadd\n") {
      auto kthreadd = stat_of("/proc/2/ns/net");
      if (kthreadd) return kthreadd;
    }
  }
  return Error::invalid(
      "cannot read the initial network namespace (/proc/1/ns/net, /proc/2/ns/net of kthreadd): "
      "cannot prove the target is a test namespace");
}

}  // namespace

Result<UniqueFd> open_netns(std::string_view name_or_path) {
  if (name_or_path.empty()) return Error::invalid("network namespace: empty name");
  std::string path(name_or_path);
  if (path.find('/') == std::string::npos) path = "/run/netns/" + path;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error::from_errno(
        errno, "opening network namespace " + path + " (`ip netns list` shows the named ones)");
  }
  UniqueFd owned(fd);
  // Entering it is the real test; setns() on a thread that exits right after costs nothing.
  auto entered = run_in_netns(fd, []() -> Status { return {}; });
  if (!entered) return Error::invalid(path + " is not a network namespace");
  return owned;
}

Result<UniqueFd> create_netns() {
  Result<UniqueFd> out = Error::invalid("no namespace");
  std::thread worker([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      out = Error::from_errno(errno, "creating a network namespace (unshare; run as root)");
      return;
    }
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      out = Error::from_errno(errno, "opening the new network namespace");
      return;
    }
    out = UniqueFd(fd);
  });
  worker.join();
  if (!out) return out;
  XLB_TRY(run_command("ip link set lo up", out->get()));
  return out;
}

Result<bool> is_initial_netns(int netns_fd) {
  struct stat ns {};
  if (fstat(netns_fd, &ns) != 0) return Error::from_errno(errno, "fstat on a namespace fd");
  auto init = initial_netns();
  if (!init) return init.error();
  return same_inode(ns, *init);
}

Result<bool> thread_in_initial_netns() {
  auto self = stat_of("/proc/thread-self/ns/net");
  if (!self) return self.error();
  auto init = initial_netns();
  if (!init) return init.error();
  return same_inode(*self, *init);
}

Status run_command(const std::vector<std::string>& argv, int netns_fd) {
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Error::from_errno(errno, "pipe for " + line);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return Error::from_errno(errno, "fork for " + line);
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) _exit(126);
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  std::string output;
  char buf[512];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) output.append(buf, n);
  }
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Error::from_errno(errno, "waiting for " + line);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  while (!output.empty() && output.back() == '\n') output.pop_back();
  std::string why = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                      : "killed by a signal";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 126) why = "could not enter the namespace";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) why = "command not found";
  return Error::invalid("`" + line + "` failed (" + why + ")" +
                        (output.empty() ? "" : ": " + output));
}

Status run_command(std::string_view line, int netns_fd) {
  std::vector<std::string> argv;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    if (end > pos) argv.emplace_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  if (argv.empty()) return Error::invalid("run_command: empty command");
  return run_command(argv, netns_fd);
}

Result<int> ifindex_in(int netns_fd, const std::string& ifname) {
  return run_in_netns(netns_fd, [&]() -> Result<int> {
    unsigned idx = if_nametoindex(ifname.c_str());
    if (idx == 0) return Error::from_errno(errno, "interface '" + ifname + "' not found");
    return static_cast<int>(idx);
  });
}

Result<int> mtu_in(int netns_fd, const std::string& ifname) {
  if (ifname.size() >= IFNAMSIZ) return Error::invalid("interface name '" + ifname + "' too long");
  return run_in_netns(netns_fd, [&]() -> Result<int> {
    UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock.valid()) return Error::from_errno(errno, "socket for an MTU query");
    ifreq req{};
    std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    if (ioctl(sock.get(), SIOCGIFMTU, &req) != 0) {
      return Error::from_errno(errno, "reading the MTU of '" + ifname + "'");
    }
    return req.ifr_mtu;
  });
}

std::string fd_path(int fd) {
  return "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(fd);
}

}  // namespace xlb::pktgen
