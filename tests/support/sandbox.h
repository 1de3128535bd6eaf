// SPDX-License-Identifier: Apache-2.0
// Test sandboxing for BPF tests that need interfaces or pins.
//
// enter_private_netns(): moves the test process into a network namespace of its own (unshare),
// so veth pairs it creates are invisible to the host and vanish with the process, even when it
// crashes. PinDir: a unique bpffs directory, removed (with everything pinned in it) on scope exit.
#pragma once

#include <string>

namespace xlb::test {

// Returns an empty string on success, else the reason (for GTEST_SKIP/FAIL).
std::string enter_private_netns();

// Runs a shell command (in the current netns); returns its exit status.
int run(const std::string& command);

class PinDir {
 public:
  PinDir();  // /sys/fs/bpf/xlb-test-<pid>-<counter>
  ~PinDir();
  PinDir(const PinDir&) = delete;
  PinDir& operator=(const PinDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace xlb::test
