// SPDX-License-Identifier: Apache-2.0
#include "sandbox.h"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace xlb::test {

std::string enter_private_netns() {
  if (unshare(CLONE_NEWNET) != 0) {
    return std::string("unshare(CLONE_NEWNET) failed: ") + std::strerror(errno) +
           " (run as root)";
  }
  if (run("ip link set lo up") != 0) return "could not bring lo up in the test namespace";
  return "";
}

int run(const std::string& command) {
  int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

PinDir::PinDir() {
  static std::atomic<int> counter{0};
  path_ = "/sys/fs/bpf/xlb-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  std::filesystem::create_directories(path_);
}

PinDir::~PinDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace xlb::test
