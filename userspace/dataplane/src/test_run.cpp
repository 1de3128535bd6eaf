// SPDX-License-Identifier: Apache-2.0
#include "xlb/dataplane/test_run.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace xlb::dataplane {

// Encapsulation and ICMP answers grow a frame by well under this.
constexpr size_t kOutSlack = 256;

Status test_run_into(int prog_fd, std::span<const uint8_t> frame, const TestRunOptions& opts,
                     TestRunResult& result) {
  result.out.resize(frame.size() + kOutSlack);
  xdp_md ctx{};
  ctx.data_end = frame.size();
  ctx.ingress_ifindex = opts.ingress_ifindex;
  ctx.rx_queue_index = opts.rx_queue;
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame.data(), .data_out = result.out.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()),
              .data_size_out = static_cast<uint32_t>(result.out.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(opts.repeat));
  if (opts.ingress_ifindex == 0) {
    run.ctx_in = nullptr;
    run.ctx_size_in = 0;
  }
  if (bpf_prog_test_run_opts(prog_fd, &run) != 0) {
    return Error::from_errno(errno, "BPF_PROG_TEST_RUN");
  }
  result.action = run.retval;
  result.out.resize(run.data_size_out);
  result.duration_ns = run.duration;
  return {};
}

Result<TestRunResult> test_run(int prog_fd, std::span<const uint8_t> frame,
                               const TestRunOptions& opts) {
  TestRunResult result;
  XLB_TRY(test_run_into(prog_fd, frame, opts, result));
  return result;
}

Result<RunTimeStats> RunTimeStats::enable() {
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) return Error::from_errno(errno, "enabling BPF run-time statistics");
  return RunTimeStats(fd);
}

RunTimeStats::RunTimeStats(RunTimeStats&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

RunTimeStats& RunTimeStats::operator=(RunTimeStats&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

RunTimeStats::~RunTimeStats() {
  if (fd_ >= 0) close(fd_);
}

Result<ProgStats> prog_stats(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) {
    return Error::from_errno(errno, "reading program info");
  }
  return ProgStats{info.run_time_ns, info.run_cnt};
}

}  // namespace xlb::dataplane
