// SPDX-License-Identifier: Apache-2.0
#include "xlb/pktgen/generator.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <latch>
#include <numeric>
#include <optional>
#include <set>
#include <thread>

#include "xlb/dataplane/attach.h"
#include "xlb/pktgen/netns.h"
#include "xlb/skel/pktgen.skel.h"

namespace xlb::pktgen {

namespace {

// Frames per BPF_PROG_TEST_RUN call: the time bound is checked between calls, so a call lasts
// a few tens of milliseconds at most at the rates veth reaches.
constexpr uint64_t kChunk = 1 << 16;
// The kernel's limit on live-frame batches.
constexpr uint32_t kMaxBatch = 256;

}  // namespace

// An anonymous namespace with an idle veth pair whose first end runs the generator program.
struct Generator::DispatcherKeeper {
  dataplane::UniqueFd netns;
  std::optional<dataplane::XdpAttachment> link;  // declared last: detached first

  static Result<std::unique_ptr<DispatcherKeeper>> create(int prog_fd) {
    auto k = std::make_unique<DispatcherKeeper>();
    auto ns = create_netns();
    if (!ns) return ns.error();
    k->netns = std::move(*ns);
    XLB_TRY(run_command("ip link add keep0 type veth peer name keep1", k->netns.get()));
    auto att = run_in_netns(k->netns.get(), [&] {
      return dataplane::XdpAttachment::attach(prog_fd, "keep0", dataplane::AttachMode::kNative,
                                              false);
    });
    if (!att) return att.error();
    k->link.emplace(std::move(*att));
    return k;
  }
};

Result<std::unique_ptr<Generator>> Generator::load() {
  std::unique_ptr<Generator> g(new Generator());
  g->skel_ = xlb_pktgen__open_and_load();
  if (!g->skel_) return Error::from_errno(errno, "loading the generator's XDP programs");
  auto keeper = DispatcherKeeper::create(g->tx_fd());
  if (!keeper) {
    return Error::invalid(
        "keeping the generator in the XDP dispatcher (an idle veth in a "
        "namespace of its own): " +
        keeper.error().to_string());
  }
  g->keeper_ = std::move(*keeper);
  g->config_ = dataplane::Map<uint32_t, xlb_pktgen_config>(
      dataplane::MapRef(bpf_map__fd(g->skel_->maps.pktgen_config), "pktgen_config"));
  g->state_ = dataplane::PerCpuArray<xlb_pktgen_state>(
      dataplane::MapRef(bpf_map__fd(g->skel_->maps.pktgen_state), "pktgen_state"));
  g->sink_ = dataplane::PerCpuArray<uint64_t>(
      dataplane::MapRef(bpf_map__fd(g->skel_->maps.pktgen_sink), "pktgen_sink"));
  return g;
}

Generator::~Generator() {
  keeper_.reset();
  xlb_pktgen__destroy(skel_);
}

int Generator::tx_fd() const { return bpf_program__fd(skel_->progs.xlb_pktgen_tx); }

int Generator::sink_fd() const { return bpf_program__fd(skel_->progs.xlb_pktgen_sink); }

Status Generator::configure(const FrameSpec& spec) {
  XLB_TRY(validate(spec));
  XLB_TRY(config_.update(0, generator_config(spec)));
  spec_ = spec;
  frame_ = template_frame(spec);
  return {};
}

Result<uint64_t> Generator::sink() const {
  auto per_cpu = sink_.lookup_all(0);
  if (!per_cpu) return per_cpu.error();
  return std::accumulate(per_cpu->begin(), per_cpu->end(), uint64_t{0});
}

Result<uint64_t> Generator::settled_sink() const {
  auto last = sink();
  for (int i = 0; i < 40 && last; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto now = sink();
    if (!now || *now == *last) return now;
    last = now;
  }
  return last;
}

Status Generator::start_sequence(std::span<const int> cpus) {
  std::vector<xlb_pktgen_state> state(dataplane::possible_cpus());
  for (auto& s : state) s.stride = cpus.size();
  for (size_t i = 0; i < cpus.size(); i++) {
    if (cpus[i] < 0 || static_cast<size_t>(cpus[i]) >= state.size()) {
      return Error::invalid("generator: no CPU " + std::to_string(cpus[i]));
    }
    state[cpus[i]].next = i;
  }
  return state_.update_all(0, state);
}

Status Generator::inject_thread(const InjectOptions& opts, size_t index, uint64_t count,
                                std::chrono::steady_clock::time_point start,
                                std::chrono::steady_clock::time_point& end, bool& timed_out) const {
  xdp_md ctx{};
  ctx.data_end = frame_.size();
  ctx.ingress_ifindex = opts.ifindex;
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame_.data(),
              .data_size_in = static_cast<uint32_t>(frame_.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
              .batch_size = opts.batch_size);
  const auto deadline = start + opts.max_duration;
  uint64_t remaining = count;
  while (remaining > 0) {
    run.repeat = static_cast<int>(std::min(remaining, kChunk));
    if (bpf_prog_test_run_opts(tx_fd(), &run) != 0) {
      end = std::chrono::steady_clock::now();
      return Error::from_errno(
          errno, "BPF_PROG_TEST_RUN (live frames) on thread " + std::to_string(index));
    }
    remaining -= static_cast<uint64_t>(run.repeat);
    if (remaining > 0 && std::chrono::steady_clock::now() >= deadline) {
      timed_out = true;
      break;
    }
  }
  end = std::chrono::steady_clock::now();
  return {};
}

Result<InjectResult> Generator::inject(const InjectOptions& opts) {
  if (frame_.empty()) return Error::invalid("generator: configure() before inject()");
  const size_t threads = opts.cpus.size();
  const int cpus = dataplane::possible_cpus();
  if (threads == 0) return Error::invalid("generator: no CPU to run on");
  if (std::set<int>(opts.cpus.begin(), opts.cpus.end()).size() != threads) {
    return Error::invalid("generator: one thread per CPU (CPUs repeated)");
  }
  for (int cpu : opts.cpus) {
    if (cpu < 0 || cpu >= cpus) return Error::invalid("generator: no CPU " + std::to_string(cpu));
  }
  if (opts.count == 0) return Error::invalid("generator: count must be at least 1");
  if (opts.max_duration.count() <= 0) return Error::invalid("generator: duration must be > 0");
  if (opts.batch_size < 1 || opts.batch_size > kMaxBatch) {
    return Error::invalid("generator: batch size must be 1.." + std::to_string(kMaxBatch));
  }
  if (opts.ifindex <= 0) return Error::invalid("generator: no interface");
  auto initial = is_initial_netns(opts.netns_fd);
  if (!initial) return initial.error();
  if (*initial) {
    return Error::invalid(
        "refusing to send into the initial network namespace: "
        "only namespaces made for testing are allowed");
  }

  XLB_TRY(start_sequence(opts.cpus));

  std::vector<Status> results(threads);
  std::vector<std::chrono::steady_clock::time_point> ends(threads);
  std::vector<char> timed_out(threads, 0);
  std::chrono::steady_clock::time_point start;
  std::atomic<bool> prepared_ok{true};
  std::latch ready(static_cast<std::ptrdiff_t>(threads));
  std::latch go(1);
  std::vector<std::thread> workers;
  for (size_t i = 0; i < threads; i++) {
    workers.emplace_back([&, i] {
      Status prep = [&]() -> Status {
        if (setns(opts.netns_fd, CLONE_NEWNET) != 0) {
          return Error::from_errno(errno, "entering the generator's network namespace");
        }
        // Checked again where it counts: the thread that sends.
        auto in_initial = thread_in_initial_netns();
        if (!in_initial) return in_initial.error();
        if (*in_initial) return Error::invalid("refusing to send from the initial namespace");
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(opts.cpus[i], &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0) {
          return Error::from_errno(
              errno, "pinning a generator thread to CPU " + std::to_string(opts.cpus[i]));
        }
        return {};
      }();
      if (!prep) {
        results[i] = prep;
        prepared_ok = false;
      }
      ready.count_down();
      go.wait();
      if (!prepared_ok) return;
      uint64_t share = opts.count / threads + (i < opts.count % threads ? 1 : 0);
      bool late = false;
      if (share > 0)
        results[i] = inject_thread(opts, i, share, start, ends[i], late);
      else
        ends[i] = start;
      timed_out[i] = late;
    });
  }
  ready.wait();
  start = std::chrono::steady_clock::now();
  go.count_down();
  for (auto& w : workers) w.join();
  for (const auto& r : results) {
    if (!r) return r.error();
  }

  InjectResult out;
  auto last = *std::max_element(ends.begin(), ends.end());
  out.seconds = std::chrono::duration<double>(last - start).count();
  out.timed_out = std::any_of(timed_out.begin(), timed_out.end(), [](char t) { return t; });
  auto after = state_.lookup_all(0);
  if (!after) return after.error();
  for (const auto& s : *after) out.sent += s.sent;
  return out;
}

}  // namespace xlb::pktgen
