// SPDX-License-Identifier: Apache-2.0
#include "xlb/health/monitor.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <exception>
#include <utility>
#include <vector>

#include "xlb/health/prober.h"

namespace xlb::health {
namespace {

// Checks due within this time start together: one wakeup of the loop per batch rather than
// per check (4096 backends at 1 s are a check every 250 us). Engine::take_due keeps a check
// from starting earlier than a tenth of its interval.
constexpr Duration kBatch = std::chrono::milliseconds(25);

}  // namespace

Monitor::Monitor(std::function<void()> on_change, Options options)
    : on_change_(std::move(on_change)),
      options_(options),
      engine_(SystemClock::instance(),
              Engine::Options{.slow_start_steps = options.slow_start_steps, .seed = options.seed}) {
}

Result<std::unique_ptr<Monitor>> Monitor::start(std::function<void()> on_change, Options options) {
  std::unique_ptr<Monitor> m(new Monitor(std::move(on_change), options));
  auto loop = EventLoop::create();
  if (!loop) return loop.error();
  m->loop_ = std::move(*loop);
  try {
    m->thread_ = std::thread([raw = m.get()] {
      // Nothing may escape a thread (std::terminate); the loop throws only when memory runs
      // out, and then checks stop with a last word in the log.
      try {
        raw->run();
      } catch (const std::exception& e) {
        spdlog::critical("health: the check loop ended: {}; backends keep their last state",
                         e.what());
      }
    });
  } catch (const std::system_error& e) {
    return Error::from_errno(e.code().value(), "starting the health-check thread");
  }
  pthread_setname_np(m->thread_.native_handle(), "xlb-health");
  return m;
}

Monitor::~Monitor() { stop(); }

void Monitor::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  if (loop_) loop_->wake();
  // From on_change the thread cannot wait for itself: it ends after the callback returns, and
  // the destructor (on another thread) joins it.
  if (thread_.joinable() && std::this_thread::get_id() == thread_.get_id()) return;
  std::call_once(joined_, [this] {
    if (thread_.joinable()) thread_.join();
  });
}

void Monitor::set_targets(const state::DesiredState& desired) {
  {
    std::lock_guard lock(mu_);
    engine_.set_targets(desired);
  }
  loop_->wake();  // new targets may be due before what the loop waits for
}

Filtered Monitor::apply(const state::DesiredState& desired) const {
  std::lock_guard lock(mu_);
  return apply_health(
      desired,
      [this](const state::VipKey& vip, const IpAddress& b) {
        return engine_.weight_factor(vip, b);
      },
      options_.slow_start_steps);
}

double Monitor::weight_factor(const state::VipKey& vip, const IpAddress& backend) const {
  std::lock_guard lock(mu_);
  return engine_.weight_factor(vip, backend);
}

HealthSnapshot Monitor::snapshot() const {
  std::lock_guard lock(mu_);
  return engine_.snapshot();
}

void Monitor::run() {
  // The Prober lives on this thread: it and the probes touch the loop only from here, and its
  // end kills and reaps what exec checks still run.
  Prober prober(*loop_);
  std::vector<std::pair<uint64_t, CheckResult>> results;
  bool changed = false;
  for (;;) {
    std::vector<Engine::Job> jobs;
    std::optional<SteadyTime> wake;
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      for (const auto& [id, result] : results) changed |= engine_.finish(id, result);
      changed |= engine_.advance();
      jobs = engine_.take_due(kBatch);
      wake = engine_.next_wakeup();
    }
    results.clear();
    for (const auto& job : jobs) {
      prober.start(job.request,
                   [&results, id = job.id](const CheckResult& r) { results.emplace_back(id, r); });
    }
    if (changed && on_change_) {
      changed = false;
      try {
        on_change_();
      } catch (const std::exception& e) {
        spdlog::error("health: the change callback failed: {}", e.what());
      } catch (...) {
        spdlog::error("health: the change callback failed");
      }
    }
    if (auto st = loop_->run_once(wake); !st) {
      // Not expected (epoll_wait on a valid fd); do not spin on it.
      spdlog::error("health: event loop: {}", st.error().to_string());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace xlb::health
