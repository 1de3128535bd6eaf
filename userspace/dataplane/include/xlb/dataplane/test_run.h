// SPDX-License-Identifier: Apache-2.0
// Running an XDP program on a given frame with BPF_PROG_TEST_RUN: for golden-packet tests,
// fuzzing and the per-packet benchmarks. No interface is involved.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "xlb/core/result.h"

namespace xlb::dataplane {

struct TestRunOptions {
  uint32_t repeat = 1;  // >1 feeds the rewritten frame back in: use 1 for per-packet costs
  uint32_t ingress_ifindex = 0;
  uint32_t rx_queue = 0;
};

struct TestRunResult {
  uint32_t action = 0;  // XDP_* verdict
  std::vector<uint8_t> out;  // the frame after the program
  uint32_t duration_ns = 0;  // kernel's average per repeat
};

Result<TestRunResult> test_run(int prog_fd, std::span<const uint8_t> frame,
                               const TestRunOptions& opts = {});

// Same, reusing `result` buffers (the benchmark's hot loop allocates nothing).
Status test_run_into(int prog_fd, std::span<const uint8_t> frame, const TestRunOptions& opts,
                     TestRunResult& result);

// Keeps kernel per-program run-time statistics on while alive (bpf_enable_stats).
class RunTimeStats {
 public:
  static Result<RunTimeStats> enable();
  RunTimeStats(RunTimeStats&&) noexcept;
  RunTimeStats& operator=(RunTimeStats&&) noexcept;
  ~RunTimeStats();

 private:
  explicit RunTimeStats(int fd) : fd_(fd) {}
  int fd_ = -1;
};

struct ProgStats {
  uint64_t run_time_ns = 0;
  uint64_t run_cnt = 0;
};
Result<ProgStats> prog_stats(int prog_fd);

}  // namespace xlb::dataplane
