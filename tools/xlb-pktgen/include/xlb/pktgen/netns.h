// SPDX-License-Identifier: Apache-2.0
// Network namespaces for the load generator and the lab bench.
//
// The generator only ever sends into namespaces that are not the host's: every entry point
// that injects frames checks, after entering the namespace, that it is not PID 1's
// (is_initial_netns). The bench creates anonymous namespaces (create_netns): they live only as
// long as a file descriptor refers to them, so they and their interfaces vanish with the
// process, however it ends (Ctrl-C, a crash). Nothing here changes the namespace of the
// calling thread: work inside a namespace runs on a thread of its own (run_in_netns) or in a
// child process (run_command).
#pragma once

#include <sched.h>

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "xlb/core/result.h"
#include "xlb/dataplane/fd.h"

namespace xlb::pktgen {

// Opens a network namespace given as a path (/run/netns/NAME, /proc/PID/ns/net, a bind mount)
// or as a name under /run/netns.
Result<dataplane::UniqueFd> open_netns(std::string_view name_or_path);

// A new, anonymous network namespace with `lo` up.
Result<dataplane::UniqueFd> create_netns();

// Whether the namespace of `netns_fd` is the initial one: PID 1's, or kthreadd's where a
// sandbox hides PID 1's (kernel threads always run in the initial namespace).
Result<bool> is_initial_netns(int netns_fd);
// Whether the calling thread is in the initial namespace.
Result<bool> thread_in_initial_netns();

// Runs `fn` on a new thread that first enters `netns_fd`; returns what `fn` returns (a
// Result or Status), or the error of entering the namespace.
template <typename Fn>
auto run_in_netns(int netns_fd, Fn&& fn) -> decltype(fn()) {
  using R = decltype(fn());
  std::optional<R> out;
  std::thread worker([&] {
    if (setns(netns_fd, CLONE_NEWNET) != 0) {
      out.emplace(Error::from_errno(errno, "entering a network namespace (setns)"));
      return;
    }
    out.emplace(fn());
  });
  worker.join();
  return std::move(*out);
}

// Runs argv[0] (looked up in PATH, no shell) in the namespace `netns_fd` (-1: the caller's)
// and waits for it. Fails with the command line and its output when it exits non-zero.
Status run_command(const std::vector<std::string>& argv, int netns_fd = -1);
// The same with the arguments separated by spaces (no quoting: arguments hold no spaces).
Status run_command(std::string_view line, int netns_fd = -1);

// Index of interface `ifname` in namespace `netns_fd`.
Result<int> ifindex_in(int netns_fd, const std::string& ifname);

// MTU of interface `ifname` in namespace `netns_fd`.
Result<int> mtu_in(int netns_fd, const std::string& ifname);

// A path other processes can open to reach the namespace behind `fd` of this process.
std::string fd_path(int fd);

}  // namespace xlb::pktgen
