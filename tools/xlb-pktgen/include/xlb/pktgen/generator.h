// SPDX-License-Identifier: Apache-2.0
// The load generator: sends frames out of an interface with BPF_PROG_TEST_RUN in live-frame
// mode (BPF_F_TEST_XDP_LIVE_FRAMES, batch 64), and counts what comes back.
//
// inject() starts one thread per CPU given; each enters the generator's namespace, refuses to
// go on if that is the initial namespace, pins itself to its CPU and calls the test run in
// chunks until its share of the frames is sent or the time bound passes. In live mode XDP_TX of
// xlb_pktgen_tx becomes a transmission out of the ingress interface (to its veth peer); the
// peer's XDP program runs in the NAPI of the same CPU (veth picks the receive queue by the
// sending CPU), so one thread per CPU feeds one receive queue. sink() counts what the peer
// sent back to the interface, if xlb_pktgen_sink (sink_fd) is attached there.
//
// BPF_PROG_TEST_RUN adds the program to the kernel's XDP dispatcher for the call and removes it
// after, each change waiting for an RCU grace period (several ms at HZ=250): one thread making
// calls of 65536 frames spent two thirds of its time there. load() therefore also attaches
// xlb_pktgen_tx to an idle veth in an anonymous namespace of its own (nothing ever arrives
// there): while it is attached, the program stays in the dispatcher and a call only counts a
// reference. The namespace, the veth and the link vanish with the Generator or the process.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "xlb/abi.h"
#include "xlb/core/result.h"
#include "xlb/dataplane/map.h"
#include "xlb/pktgen/frames.h"

struct xlb_pktgen;  // the generated skeleton

namespace xlb::pktgen {

struct InjectOptions {
  int netns_fd = -1;   // the namespace of the interface (never the initial one)
  int ifindex = 0;     // the interface, in that namespace
  uint64_t count = 0;  // frames in total, split over the threads
  std::chrono::milliseconds max_duration{1000};
  std::vector<int> cpus;  // one thread per entry, pinned to that CPU
  uint32_t batch_size = 64;
};

struct InjectResult {
  uint64_t sent = 0;       // frames the generator program wrote (its per-CPU counters)
  double seconds = 0;      // from the common start to the last thread's end
  bool timed_out = false;  // the time bound stopped a thread before its count
};

class Generator {
 public:
  static Result<std::unique_ptr<Generator>> load();
  ~Generator();  // in generator.cpp: DispatcherKeeper is complete there
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Sets the frames to send (validates the spec).
  Status configure(const FrameSpec& spec);
  const FrameSpec& spec() const { return spec_; }
  uint32_t frame_size() const { return static_cast<uint32_t>(frame_.size()); }

  // Restarts the flow sequence (inject() does it first): the thread on cpus[i] starts at
  // frame i and steps by cpus.size(), so the threads together send the sequence one would.
  Status start_sequence(std::span<const int> cpus);

  Result<InjectResult> inject(const InjectOptions& opts);

  // Frames xlb_pktgen_sink counted so far, summed over CPUs.
  Result<uint64_t> sink() const;
  // The same, once the count stops moving (frames still in flight in the veth rings after
  // inject() returned), polling every 5 ms for at most 200 ms.
  Result<uint64_t> settled_sink() const;

  int tx_fd() const;
  int sink_fd() const;

 private:
  Generator() = default;
  Status inject_thread(const InjectOptions& opts, size_t index, uint64_t count,
                       std::chrono::steady_clock::time_point start,
                       std::chrono::steady_clock::time_point& end, bool& timed_out) const;

  xlb_pktgen* skel_ = nullptr;
  // Keeps xlb_pktgen_tx in the XDP dispatcher (see the top of this file). Declared after the
  // skeleton: detached before the program goes.
  struct DispatcherKeeper;
  std::unique_ptr<DispatcherKeeper> keeper_;
  FrameSpec spec_;
  test::Bytes frame_;
  dataplane::Map<uint32_t, xlb_pktgen_config> config_;
  dataplane::PerCpuArray<xlb_pktgen_state> state_;
  dataplane::PerCpuArray<uint64_t> sink_;
};

}  // namespace xlb::pktgen
