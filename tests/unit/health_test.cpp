// SPDX-License-Identifier: Apache-2.0
// Health checking: the state machine and the scheduler on a ManualClock (no sleeping), the
// health filter, and the real checkers against listeners this test makes on loopback only
// (127.0.0.0/8 and ::1). Every server here is bounded in time and closed at the end of its test.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "xlb/health/check.h"
#include "xlb/health/clock.h"
#include "xlb/health/engine.h"
#include "xlb/health/event_loop.h"
#include "xlb/health/filter.h"
#include "xlb/health/monitor.h"
#include "xlb/health/prober.h"
#include "xlb/health/tracker.h"

namespace xlb::health {
namespace {

using namespace std::chrono_literals;
using state::CheckType;
using std::chrono::milliseconds;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }
state::VipKey vip_key(const char* text) { return *state::VipKey::parse(text); }

// Keeps the test output to failures: transitions are logged at info and warning.
const bool kQuietLogs = [] {
  spdlog::set_level(spdlog::level::err);
  return true;
}();

// ---- Tracker: the state machine -----------------------------------------------------------

Timing timing(uint32_t interval_ms, uint32_t rise, uint32_t fall, uint32_t fastinter_ms = 0,
              uint32_t downinter_ms = 0, uint32_t slow_start_ms = 0) {
  state::HealthCheckSpec spec;
  spec.type = CheckType::kTcp;
  spec.interval_ms = interval_ms;
  spec.timeout_ms = interval_ms / 2;
  spec.rise = rise;
  spec.fall = fall;
  spec.fastinter_ms = fastinter_ms;
  spec.downinter_ms = downinter_ms;
  spec.slow_start_ms = slow_start_ms;
  return Timing::from(spec);
}

// Feeds results one interval apart (as scheduled) and returns the tracker.
struct Feeder {
  ManualClock clock;
  Tracker tracker;
  explicit Feeder(const Timing& t) : tracker(t, clock.now(), clock.wall_now()) {}
  Tracker::Change feed(bool ok, Duration took = 1ms) {
    clock.set(tracker.next_check());
    const SteadyTime started = clock.now();
    clock.advance(took);
    return tracker.record(ok, started, clock.now(), clock.wall_now());
  }
};

TEST(Tracker, FirstResultDecidesAndPendingCountsAsUp) {
  Feeder good(timing(100, 2, 3));
  EXPECT_EQ(good.tracker.phase(), Phase::kPending);
  EXPECT_TRUE(good.tracker.up());
  EXPECT_EQ(good.tracker.weight_factor(), 1.0);
  auto c = good.feed(true);
  EXPECT_TRUE(c.phase);
  EXPECT_FALSE(c.factor);  // pending already counted as up: nothing for the rings
  EXPECT_EQ(good.tracker.phase(), Phase::kUp);
  EXPECT_EQ(good.tracker.transitions(), 0u);

  Feeder bad(timing(100, 2, 3));
  c = bad.feed(false);
  EXPECT_TRUE(c.phase);
  EXPECT_TRUE(c.factor);
  EXPECT_EQ(bad.tracker.phase(), Phase::kDown);  // at once, not after `fall` failures
  EXPECT_EQ(bad.tracker.weight_factor(), 0.0);
  EXPECT_EQ(bad.tracker.transitions(), 1u);
}

TEST(Tracker, FallNeedsThatManyFailuresInARow) {
  Feeder f(timing(100, 2, 3));
  f.feed(true);
  for (bool ok : {false, false, true, false, false, true, false, false}) {
    EXPECT_FALSE(f.feed(ok).phase);
    EXPECT_EQ(f.tracker.phase(), Phase::kUp);
  }
  EXPECT_EQ(f.tracker.fall_progress(), 2u);
  auto c = f.feed(false);
  EXPECT_TRUE(c.phase);
  EXPECT_TRUE(c.factor);
  EXPECT_EQ(f.tracker.phase(), Phase::kDown);
  EXPECT_EQ(f.tracker.fall_progress(), 0u);
  EXPECT_EQ(f.tracker.checks(), 10u);
  EXPECT_EQ(f.tracker.failures(), 7u);
  EXPECT_EQ(f.tracker.transitions(), 1u);
}

TEST(Tracker, RiseNeedsThatManySuccessesInARow) {
  Feeder f(timing(100, 3, 1));
  f.feed(false);
  ASSERT_EQ(f.tracker.phase(), Phase::kDown);
  for (bool ok : {true, true, false, true, true}) {
    EXPECT_FALSE(f.feed(ok).phase);
    EXPECT_EQ(f.tracker.phase(), Phase::kDown);
  }
  EXPECT_EQ(f.tracker.rise_progress(), 2u);
  EXPECT_TRUE(f.feed(true).phase);
  EXPECT_EQ(f.tracker.phase(), Phase::kUp);
  EXPECT_EQ(f.tracker.weight_factor(), 1.0);  // no slow start configured
  EXPECT_EQ(f.tracker.transitions(), 2u);
}

TEST(Tracker, IntervalFastinterDowninterFollowTheState) {
  Feeder f(timing(1000, 2, 2, /*fastinter=*/100, /*downinter=*/5000));
  f.feed(true);  // up
  SteadyTime start = f.clock.now() - 1ms;
  EXPECT_EQ(f.tracker.next_check() - start, 1000ms);  // up, steady: interval
  f.feed(false);                                      // going down: fastinter
  EXPECT_EQ(f.tracker.next_check() - (f.clock.now() - 1ms), 100ms);
  f.feed(false);  // down, nothing pending: downinter
  ASSERT_EQ(f.tracker.phase(), Phase::kDown);
  EXPECT_EQ(f.tracker.next_check() - (f.clock.now() - 1ms), 5000ms);
  f.feed(true);  // coming up: fastinter
  EXPECT_EQ(f.tracker.next_check() - (f.clock.now() - 1ms), 100ms);
  f.feed(false);  // the rise count restarts: back to downinter
  EXPECT_EQ(f.tracker.next_check() - (f.clock.now() - 1ms), 5000ms);
  f.feed(true);
  f.feed(true);  // up again
  ASSERT_EQ(f.tracker.phase(), Phase::kUp);
  EXPECT_EQ(f.tracker.next_check() - (f.clock.now() - 1ms), 1000ms);
}

TEST(Tracker, ScheduleCountsFromTheCheckStartAndNeverOverlaps) {
  Feeder f(timing(100, 2, 3));
  f.feed(true);
  // A 40 ms check: the next one is 100 ms after its start, not after its end.
  SteadyTime before = f.tracker.next_check();
  f.feed(true, 40ms);
  EXPECT_EQ(f.tracker.next_check() - before, 100ms);
  // A check that took longer than the interval (fastinter below the timeout): the next one
  // starts when it ended, never while it runs.
  Feeder g(timing(100, 2, 3, /*fastinter=*/20));
  g.feed(true);
  g.feed(false, 60ms);  // going down: fastinter 20 ms < 60 ms spent
  EXPECT_EQ(g.tracker.next_check(), g.clock.now());
}

TEST(Tracker, SlowStartRampsInSteps) {
  const auto S = 10s;
  Feeder f(timing(100, 1, 1, 0, 0, /*slow_start_ms=*/10000));
  f.feed(true);
  EXPECT_FALSE(f.tracker.ramping());  // pending -> up is not a recovery
  EXPECT_EQ(f.tracker.weight_factor(), 1.0);
  f.feed(false);
  EXPECT_EQ(f.tracker.weight_factor(), 0.0);
  auto c = f.feed(true);  // recovered: the ramp starts at 1/10
  ASSERT_TRUE(c.factor);
  const SteadyTime t0 = f.clock.now();
  EXPECT_TRUE(f.tracker.ramping());
  EXPECT_DOUBLE_EQ(f.tracker.weight_factor(), 0.1);
  // Steps at t0 + k * S / 10: one factor change each, nine in all, none in between.
  int steps = 0;
  for (int k = 1; k <= 9; k++) {
    auto next = f.tracker.next_step();
    ASSERT_TRUE(next.has_value());
    EXPECT_EQ(*next - t0, S * k / 10);
    EXPECT_FALSE(f.tracker.advance(*next - 1ns).factor);
    EXPECT_TRUE(f.tracker.advance(*next).factor);
    steps++;
    EXPECT_DOUBLE_EQ(f.tracker.weight_factor(), (k + 1) / 10.0);
  }
  EXPECT_EQ(steps, 9);
  EXPECT_FALSE(f.tracker.ramping());
  EXPECT_FALSE(f.tracker.next_step().has_value());
  EXPECT_FALSE(f.tracker.advance(t0 + 1h).factor);
}

TEST(Tracker, FailureDuringSlowStartStopsTheRampAndRecoveryRestartsIt) {
  Feeder f(timing(100, 1, 1, 0, 0, 1000));
  f.feed(true);
  f.feed(false);
  f.feed(true);
  f.tracker.advance(f.clock.now() + 500ms);
  EXPECT_DOUBLE_EQ(f.tracker.weight_factor(), 0.6);
  f.clock.advance(500ms);
  f.feed(false);
  EXPECT_EQ(f.tracker.weight_factor(), 0.0);
  EXPECT_FALSE(f.tracker.advance(f.clock.now() + 10s).factor);  // down: no steps
  f.feed(true);
  EXPECT_DOUBLE_EQ(f.tracker.weight_factor(), 0.1);  // from the start again
}

TEST(Tracker, RetimeKeepsThePhaseAndRestartsTheCounts) {
  Feeder f(timing(100, 3, 3));
  f.feed(false);
  f.feed(true);
  f.feed(true);
  ASSERT_EQ(f.tracker.rise_progress(), 2u);
  f.tracker.retime(timing(200, 3, 3), f.clock.now() + 50ms);
  EXPECT_EQ(f.tracker.phase(), Phase::kDown);
  EXPECT_EQ(f.tracker.rise_progress(), 0u);
  EXPECT_EQ(f.tracker.next_check(), f.clock.now() + 50ms);
  EXPECT_EQ(f.tracker.checks(), 3u);  // the counters are the backend's, they stay
}

// ---- Engine on a simulated backend --------------------------------------------------------

state::DesiredState one_vip(const state::HealthCheckSpec& spec, size_t backends,
                            state::AllDownPolicy all_down = state::AllDownPolicy::kKeepLastSet) {
  state::DesiredState d;
  state::VipSpec v;
  v.key = vip_key("198.18.200.1:80/tcp");
  v.health = spec;
  v.all_down = all_down;
  for (size_t i = 0; i < backends; i++) {
    char addr[32];
    std::snprintf(addr, sizeof(addr), "198.18.%zu.%zu", 3 + i / 250, 1 + i % 250);
    v.backends.push_back({ip(addr), 1, state::BackendState::kActive});
  }
  d.vips.emplace(v.key, v);
  return d;
}

state::HealthCheckSpec tcp_spec(uint32_t interval_ms, uint32_t timeout_ms, uint32_t rise,
                                uint32_t fall) {
  state::HealthCheckSpec s;
  s.type = CheckType::kTcp;
  s.interval_ms = interval_ms;
  s.timeout_ms = timeout_ms;
  s.rise = rise;
  s.fall = fall;
  return s;
}

// Drives an Engine on a ManualClock: checks are answered by `healthy(backend, start time)`,
// successes after `latency`, failures after `fail_latency` (the timeout, to model a backend
// that hangs, or a little to model a refused connection).
struct Simulation {
  ManualClock clock;
  Engine engine;
  std::function<bool(const IpAddress&, SteadyTime)> healthy = [](const IpAddress&, SteadyTime) {
    return true;
  };
  Duration latency = 1ms;
  Duration fail_latency = 1ms;
  int factor_changes = 0;
  std::vector<SteadyTime> change_times;
  std::vector<std::pair<SteadyTime, bool>> results;  // every result, in order

  explicit Simulation(uint64_t seed = 1)
      : engine(clock, Engine::Options{.slow_start_steps = 10, .seed = seed}) {}

  void run_until(SteadyTime until) {
    struct Pending {
      SteadyTime at;
      uint64_t job;
      bool ok;
    };
    std::vector<Pending> pending;
    for (;;) {
      std::optional<SteadyTime> next = engine.next_wakeup();
      for (const auto& p : pending) {
        if (!next || p.at < *next) next = p.at;
      }
      if (!next || *next > until) break;
      clock.set(std::max(*next, clock.now()));
      std::sort(pending.begin(), pending.end(),
                [](const Pending& a, const Pending& b) { return a.at < b.at; });
      while (!pending.empty() && pending.front().at <= clock.now()) {
        Pending p = pending.front();
        pending.erase(pending.begin());
        results.emplace_back(clock.now(), p.ok);
        if (engine.finish(p.job, CheckResult{p.ok, p.ok ? "ok" : "failed", 0ns})) note_change();
      }
      if (engine.advance()) note_change();
      for (const auto& job : engine.take_due()) {
        const bool ok = healthy(job.request->backend, clock.now());
        pending.push_back({clock.now() + (ok ? latency : fail_latency), job.id, ok});
      }
    }
    clock.set(until);
  }

  void note_change() {
    factor_changes++;
    change_times.push_back(clock.now());
  }
};

TEST(Engine, StartDelayIsJitteredWithinOneInterval) {
  ManualClock clock;
  Engine engine(clock, Engine::Options{.seed = 42});
  engine.set_targets(one_vip(tcp_spec(1000, 500, 2, 3), 1000));
  const SteadyTime t0 = clock.now();
  std::vector<Duration> delays;
  while (auto next = engine.next_wakeup()) {
    if (*next >= t0 + 1000ms) break;
    clock.set(*next);
    for (const auto& job : engine.take_due()) {
      delays.push_back(clock.now() - t0);
      engine.finish(job.id, {true, "ok", 0ns});
    }
  }
  // Every backend's first check within [0, interval), spread over it rather than bunched.
  ASSERT_EQ(delays.size(), 1000u);
  std::sort(delays.begin(), delays.end());
  EXPECT_GE(delays.front(), 0ns);
  EXPECT_LT(delays.back(), 1000ms);
  EXPECT_LT(delays.front(), 10ms);
  EXPECT_GT(delays.back(), 990ms);
  // Each tenth of the interval holds about a tenth of the checks.
  for (int decile = 0; decile < 10; decile++) {
    auto n = std::count_if(delays.begin(), delays.end(), [&](Duration d) {
      return d >= decile * 100ms && d < (decile + 1) * 100ms;
    });
    EXPECT_GT(n, 60) << "decile " << decile;
    EXPECT_LT(n, 140) << "decile " << decile;
  }
}

TEST(Engine, DetectsAFailureWithinFallTimesInterval) {
  for (uint64_t seed = 1; seed <= 20; seed++) {
    Simulation sim(seed);
    const SteadyTime t0 = sim.clock.now();
    // Failing 1234 ms into the run (any phase relative to the checks, by the seed's jitter).
    const SteadyTime fails_at = t0 + 1234ms + milliseconds(seed * 7);
    sim.healthy = [&](const IpAddress&, SteadyTime t) { return t < fails_at; };
    sim.engine.set_targets(one_vip(tcp_spec(100, 50, 2, 3), 1));
    sim.run_until(t0 + 3s);
    ASSERT_EQ(sim.change_times.size(), 1u) << "seed " << seed;
    const auto detect = sim.change_times[0] - fails_at;
    // fall x interval; the refused connection is known 1 ms after each check starts.
    EXPECT_LE(detect, 300ms + 1ms) << "seed " << seed;
    EXPECT_GE(detect, 200ms) << "seed " << seed;  // three failures, 100 ms apart
  }
}

TEST(Engine, HangingBackendIsDetectedWithinTimeoutPlusFallTimesInterval) {
  for (uint64_t seed = 1; seed <= 20; seed++) {
    Simulation sim(seed);
    const SteadyTime t0 = sim.clock.now();
    const SteadyTime fails_at = t0 + 777ms + milliseconds(seed * 3);
    sim.healthy = [&](const IpAddress&, SteadyTime t) { return t < fails_at; };
    sim.fail_latency = 50ms;  // every failed check runs into its timeout
    sim.engine.set_targets(one_vip(tcp_spec(100, 50, 2, 3), 1));
    sim.run_until(t0 + 3s);
    ASSERT_EQ(sim.change_times.size(), 1u);
    // The timeouts do not push the schedule back: checks stay 100 ms apart from their starts.
    EXPECT_LE(sim.change_times[0] - fails_at, 300ms + 50ms) << "seed " << seed;
  }
}

TEST(Engine, FastinterShortensDetectionAndDowninterSlowsChecksOfDeadBackends) {
  Simulation sim;
  const SteadyTime t0 = sim.clock.now();
  const SteadyTime fails_at = t0 + 5050ms;
  sim.healthy = [&](const IpAddress&, SteadyTime t) { return t < fails_at; };
  auto spec = tcp_spec(1000, 200, 2, 3);
  spec.fastinter_ms = 100;
  spec.downinter_ms = 5000;
  sim.engine.set_targets(one_vip(spec, 1));
  sim.run_until(t0 + 20s);
  ASSERT_EQ(sim.change_times.size(), 1u);
  // First failure within one interval, then two more at fastinter.
  EXPECT_LE(sim.change_times[0] - fails_at, 1000ms + 2 * 100ms + 1ms);
  // While down: one check per 5 s.
  size_t after_down = std::count_if(sim.results.begin(), sim.results.end(),
                                    [&](const auto& r) { return r.first > sim.change_times[0]; });
  EXPECT_GE(after_down, 2u);
  EXPECT_LE(after_down, 3u);
}

TEST(Engine, RecoveryNeedsRiseSuccessesAtFastinter) {
  Simulation sim;
  const SteadyTime t0 = sim.clock.now();
  const SteadyTime back_at = t0 + 3000ms;
  sim.healthy = [&](const IpAddress&, SteadyTime t) { return t >= back_at; };
  auto spec = tcp_spec(500, 100, 3, 2);
  spec.fastinter_ms = 50;
  spec.downinter_ms = 1000;
  sim.engine.set_targets(one_vip(spec, 1));
  sim.run_until(t0 + 10s);
  ASSERT_EQ(sim.change_times.size(), 2u);  // pending -> down, then down -> up
  const auto up_after = sim.change_times[1] - back_at;
  // The next downinter check, then two more at fastinter.
  EXPECT_LE(up_after, 1000ms + 2 * 50ms + 1ms);
  EXPECT_GE(up_after, 2 * 50ms);
}

TEST(Engine, FlappingBackendDoesNotFlapTheRingFasterThanTheThresholdsAllow) {
  // Up and down every 300 ms, checked every 100 ms with rise 2 and fall 3.
  for (uint64_t seed = 1; seed <= 10; seed++) {
    Simulation sim(seed);
    const SteadyTime t0 = sim.clock.now();
    sim.healthy = [&](const IpAddress&, SteadyTime t) { return ((t - t0) / 300ms) % 2 == 0; };
    sim.engine.set_targets(one_vip(tcp_spec(100, 50, 2, 3), 1));
    sim.run_until(t0 + 60s);
    auto snap = sim.engine.snapshot();
    ASSERT_EQ(snap.backends.size(), 1u);
    const auto& b = snap.backends[0];
    // A 300 ms outage holds at most 3 checks: just enough for fall 3. The ring changes at most
    // twice per 600 ms cycle (down, then up after 2 good checks), never more.
    EXPECT_LE(b.transitions, 2u * 100u) << "seed " << seed;
    EXPECT_EQ(static_cast<uint64_t>(sim.factor_changes), b.transitions);
    // Every down transition followed 3 failures in a row and every up 2 successes: replay the
    // results and check the transitions against them.
    int fails = 0, oks = 0;
    bool up = true;
    size_t change = 0;
    bool first = true;
    for (const auto& [t, ok] : sim.results) {
      fails = ok ? 0 : fails + 1;
      oks = ok ? oks + 1 : 0;
      bool flips = first ? !ok : (up ? fails == 3 : oks == 2);
      first = false;
      if (flips) {
        ASSERT_LT(change, sim.change_times.size());
        EXPECT_EQ(sim.change_times[change], t);
        change++;
        up = !up;
        fails = oks = 0;
      }
    }
    EXPECT_EQ(change, sim.change_times.size());
  }
  // With fall 4, a 300 ms outage never holds enough failures: the ring never changes.
  for (uint64_t seed = 1; seed <= 10; seed++) {
    Simulation sim(seed);
    const SteadyTime t0 = sim.clock.now();
    sim.healthy = [&](const IpAddress&, SteadyTime t) {
      return t - t0 < 50ms || ((t - t0) / 300ms) % 2 == 0;
    };
    sim.engine.set_targets(one_vip(tcp_spec(100, 50, 2, 4), 1));
    sim.run_until(t0 + 60s);
    EXPECT_EQ(sim.engine.snapshot().backends[0].transitions, 0u) << "seed " << seed;
    EXPECT_EQ(sim.factor_changes, 0);
    EXPECT_GT(sim.engine.snapshot().backends[0].failures, 200u);
  }
}

TEST(Engine, SlowStartNotifiesOncePerStep) {
  Simulation sim;
  const SteadyTime t0 = sim.clock.now();
  sim.healthy = [&](const IpAddress&, SteadyTime t) { return t < t0 + 1s || t >= t0 + 2s; };
  auto spec = tcp_spec(100, 50, 1, 1);
  spec.slow_start_ms = 5000;
  sim.engine.set_targets(one_vip(spec, 1));
  sim.run_until(t0 + 20s);
  // down, up at 1/10, then nine steps: 11 changes, the last one ~4.5 s after recovery.
  ASSERT_EQ(sim.factor_changes, 11);
  const auto ramp = sim.change_times.back() - sim.change_times[1];
  EXPECT_EQ(ramp, 4500ms);
  for (size_t i = 2; i < sim.change_times.size(); i++) {
    EXPECT_EQ(sim.change_times[i] - sim.change_times[i - 1], 500ms);
  }
  EXPECT_EQ(sim.engine.weight_factor(vip_key("198.18.200.1:80/tcp"), ip("198.18.3.1")), 1.0);
}

TEST(Engine, SetTargetsKeepsUnchangedChecksAndResetsChangedOnes) {
  Simulation sim;
  const SteadyTime t0 = sim.clock.now();
  sim.healthy = [](const IpAddress& b, SteadyTime) { return !(b == ip("198.18.3.2")); };
  auto desired = one_vip(tcp_spec(100, 50, 2, 3), 3);
  sim.engine.set_targets(desired);
  sim.run_until(t0 + 1s);
  const auto vip = vip_key("198.18.200.1:80/tcp");
  EXPECT_EQ(sim.engine.weight_factor(vip, ip("198.18.3.2")), 0.0);
  auto before = sim.engine.snapshot();
  ASSERT_EQ(before.backends.size(), 3u);
  EXPECT_EQ(before.backends[1].health, Health::kDown);
  EXPECT_EQ(before.backends[0].health, Health::kUp);

  // The same spec again (a reload that changed nothing for these backends) plus a fourth.
  auto more = one_vip(tcp_spec(100, 50, 2, 3), 4);
  sim.engine.set_targets(more);
  auto after = sim.engine.snapshot();
  ASSERT_EQ(after.backends.size(), 4u);
  EXPECT_EQ(after.backends[1].health, Health::kDown);
  EXPECT_EQ(after.backends[1].checks, before.backends[1].checks);
  EXPECT_EQ(after.backends[3].health, Health::kPending);
  EXPECT_EQ(sim.engine.weight_factor(vip, ip("198.18.3.4")), 1.0);

  // A changed check (another port): the down backend stays down until its new check says so.
  auto other_port = more;
  other_port.vips.begin()->second.health.port = 8080;
  sim.engine.set_targets(other_port);
  auto changed = sim.engine.snapshot();
  EXPECT_EQ(changed.backends[1].health, Health::kDown);
  EXPECT_EQ(changed.backends[1].fall_progress, 0u);

  // Disabled: no check, factor 1 (its weight is 0 anyway); type none: nothing checked.
  auto disabled = other_port;
  disabled.vips.begin()->second.backends[1].state = state::BackendState::kDisabled;
  sim.engine.set_targets(disabled);
  auto d = sim.engine.snapshot();
  EXPECT_EQ(d.backends[1].health, Health::kUnchecked);
  EXPECT_EQ(d.backends[1].last_result, "not checked while disabled");
  EXPECT_EQ(sim.engine.weight_factor(vip, ip("198.18.3.2")), 1.0);
  auto none = disabled;
  none.vips.begin()->second.health.type = CheckType::kNone;
  sim.engine.set_targets(none);
  EXPECT_FALSE(sim.engine.next_wakeup().has_value());
  for (const auto& b : sim.engine.snapshot().backends) EXPECT_EQ(b.health, Health::kUnchecked);

  // Removed VIP: its backends leave the snapshot; the totals stay.
  const uint64_t checks = sim.engine.snapshot().checks_total;
  sim.engine.set_targets({});
  EXPECT_TRUE(sim.engine.snapshot().backends.empty());
  EXPECT_EQ(sim.engine.snapshot().checks_total, checks);
}

TEST(Engine, BackendOverrideChecksThatBackendItsWayAndRestartsOnlyIt) {
  Simulation sim;
  const auto vip = vip_key("198.18.200.1:80/tcp");
  auto desired = one_vip(tcp_spec(100, 50, 2, 3), 3);
  auto& backends = desired.vips.begin()->second.backends;
  // 198.18.3.2: checked on loopback, at its own pace, and down at the first failure.
  backends[1].health = {.interval_ms = 200, .timeout_ms = 100, .rise = 2, .fall = 1,
                        .port = 9000, .address = ip("127.0.0.1")};
  // 198.18.3.3: exempt.
  backends[2].health = {.type = CheckType::kNone};
  std::map<std::string, int> checked;  // target -> checks
  bool b2_fails = false;
  sim.healthy = [&](const IpAddress& b, SteadyTime) { return !(b2_fails && b == ip("198.18.3.2")); };
  sim.engine.set_targets(desired);
  sim.clock.advance(200ms);  // every first check is due within one interval
  for (const auto& job : sim.engine.take_due()) checked[job.request->target.to_string()]++;
  EXPECT_EQ(checked, (std::map<std::string, int>{{"127.0.0.1:9000", 1}, {"198.18.3.1:80", 1}}));
  auto first = sim.engine.snapshot();  // (the jobs taken above are never answered)
  ASSERT_EQ(first.backends.size(), 3u);
  EXPECT_EQ(first.backends[1].target.to_string(), "127.0.0.1:9000");
  EXPECT_EQ(first.backends[1].interval_ms, 200u);
  EXPECT_EQ(first.backends[0].interval_ms, 100u);
  EXPECT_EQ(first.backends[2].health, Health::kUnchecked);
  EXPECT_EQ(first.backends[2].last_result, "no check (type none)");

  Simulation run;
  run.healthy = sim.healthy;
  run.engine.set_targets(desired);
  run.run_until(run.clock.now() + 2s);
  auto s = run.engine.snapshot();
  // Every 100 ms and every 200 ms (the first within one interval of the start).
  EXPECT_NEAR(static_cast<double>(s.backends[0].checks), 20, 1);
  EXPECT_NEAR(static_cast<double>(s.backends[1].checks), 10, 1);
  EXPECT_EQ(s.backends[2].checks, 0u);
  b2_fails = true;
  run.run_until(run.clock.now() + 250ms);
  EXPECT_EQ(run.engine.weight_factor(vip, ip("198.18.3.2")), 0.0);  // fall 1: one failure
  EXPECT_EQ(run.engine.weight_factor(vip, ip("198.18.3.1")), 1.0);
  b2_fails = false;
  for (int i = 0; i < 50 && run.engine.snapshot().backends[1].rise_progress == 0; i++) {
    run.run_until(run.clock.now() + 10ms);
  }
  const auto before = run.engine.snapshot();
  ASSERT_EQ(before.backends[1].rise_progress, 1u);  // one good check of the two it needs

  // Its override changes: only it restarts (counts in progress), the others keep everything.
  auto moved = desired;
  moved.vips.begin()->second.backends[1].health.port = 9001;
  run.engine.set_targets(moved);
  auto after = run.engine.snapshot();
  EXPECT_EQ(after.backends[1].target.to_string(), "127.0.0.1:9001");
  EXPECT_EQ(after.backends[1].health, Health::kDown);  // the phase stays
  EXPECT_EQ(after.backends[1].rise_progress, 0u);
  EXPECT_EQ(after.backends[1].last_result.rfind("check changed: ", 0), 0u);
  EXPECT_EQ(after.backends[0].last_result, before.backends[0].last_result);
  EXPECT_EQ(after.backends[0].checks, before.backends[0].checks);

  // The VIP's rise changes: the backends that inherit it restart; the one whose override
  // sets rise does not (its check is the same as before).
  auto vip_rise = moved;
  vip_rise.vips.begin()->second.health.rise = 5;
  run.run_until(run.clock.now() + 150ms);
  const auto before_rise = run.engine.snapshot();
  run.engine.set_targets(vip_rise);
  auto after_rise = run.engine.snapshot();
  EXPECT_EQ(after_rise.backends[0].last_result.rfind("check changed: ", 0), 0u);
  EXPECT_EQ(after_rise.backends[1].last_result, before_rise.backends[1].last_result);
  EXPECT_EQ(after_rise.backends[1].rise_progress, before_rise.backends[1].rise_progress);
  EXPECT_EQ(after_rise.backends[0].rise, 5u);
  EXPECT_EQ(after_rise.backends[1].rise, 2u);
}

TEST(Engine, ResultOfACheckStartedBeforeAChangeIsIgnored) {
  ManualClock clock;
  Engine engine(clock, Engine::Options{.seed = 3});
  auto desired = one_vip(tcp_spec(100, 50, 1, 1), 1);
  engine.set_targets(desired);
  clock.advance(100ms);
  auto jobs = engine.take_due();
  ASSERT_EQ(jobs.size(), 1u);
  desired.vips.begin()->second.health.port = 8080;
  engine.set_targets(desired);
  EXPECT_FALSE(engine.finish(jobs[0].id, {false, "refused", 0ns}));
  EXPECT_EQ(engine.snapshot().backends[0].health, Health::kPending);
  engine.set_targets({});
  EXPECT_FALSE(engine.finish(jobs[0].id, {false, "refused", 0ns}));  // and for removed ones
}

TEST(Engine, InvalidSpecLeavesTheBackendsUncheckedWithTheReason) {
  ManualClock clock;
  Engine engine(clock);
  auto spec = tcp_spec(100, 100, 1, 1);  // timeout not below the interval
  engine.set_targets(one_vip(spec, 1));
  auto s = engine.snapshot();
  ASSERT_EQ(s.backends.size(), 1u);
  EXPECT_EQ(s.backends[0].health, Health::kUnchecked);
  EXPECT_NE(s.backends[0].last_result.find("below the interval"), std::string::npos)
      << s.backends[0].last_result;
}

// ---- The health filter --------------------------------------------------------------------

TEST(Filter, DownBackendsLoseTheirSlotsAndRampingOnesScale) {
  auto desired = one_vip(tcp_spec(100, 50, 1, 1), 4);
  auto& backends = desired.vips.begin()->second.backends;
  backends[0].weight = 3;
  backends[3].state = state::BackendState::kDraining;
  std::map<std::string, double> factors = {{"198.18.3.2", 0.0}};
  auto f = [&](const state::VipKey&, const IpAddress& b) {
    auto it = factors.find(b.to_string());
    return it == factors.end() ? 1.0 : it->second;
  };
  auto out = apply_health(desired, f, 10);
  const auto& w = out.state.vips.begin()->second.backends;
  EXPECT_EQ(w[0].weight, 3u);
  EXPECT_EQ(w[1].weight, 0u);
  EXPECT_EQ(w[2].weight, 1u);
  EXPECT_EQ(w[3].state, state::BackendState::kDraining);
  EXPECT_TRUE(out.all_down.empty());

  // .3 at 3/10 of its ramp: every weight x10, its own x0.3 on top.
  factors["198.18.3.3"] = 0.3;
  out = apply_health(desired, f, 10);
  const auto& r = out.state.vips.begin()->second.backends;
  EXPECT_EQ(r[0].weight, 30u);
  EXPECT_EQ(r[1].weight, 0u);
  EXPECT_EQ(r[2].weight, 3u);
}

TEST(Filter, AllDownFollowsThePolicy) {
  auto f = [](const state::VipKey&, const IpAddress&) { return 0.0; };
  auto keep = one_vip(tcp_spec(100, 50, 1, 1), 3, state::AllDownPolicy::kKeepLastSet);
  auto out = apply_health(keep, f);
  ASSERT_EQ(out.all_down.size(), 1u);
  EXPECT_EQ(out.state, keep);  // fail open: the configured weights
  auto drop = one_vip(tcp_spec(100, 50, 1, 1), 3, state::AllDownPolicy::kDrop);
  out = apply_health(drop, f);
  ASSERT_EQ(out.all_down.size(), 1u);
  for (const auto& b : out.state.vips.begin()->second.backends) EXPECT_EQ(b.weight, 0u);
  // Draining backends are not "serving": one serving backend up means not all down.
  auto f1 = [](const state::VipKey&, const IpAddress& b) {
    return b == ip("198.18.3.1") ? 1.0 : 0.0;
  };
  out = apply_health(drop, f1);
  EXPECT_TRUE(out.all_down.empty());
}

// ---- Specs --------------------------------------------------------------------------------

TEST(Check, ValidateRefusesSpecsThatCannotRun) {
  const auto vip = vip_key("198.18.200.1:80/tcp");
  const auto portless = vip_key("198.18.200.2/tcp");
  auto spec = tcp_spec(1000, 500, 2, 3);
  EXPECT_TRUE(validate(vip, spec).ok());
  EXPECT_FALSE(validate(portless, spec).ok());
  spec.port = 80;
  EXPECT_TRUE(validate(portless, spec).ok());
  auto t = tcp_spec(1000, 1000, 2, 3);
  EXPECT_FALSE(validate(vip, t).ok());
  auto exec = tcp_spec(1000, 500, 2, 3);
  exec.type = CheckType::kExec;
  EXPECT_FALSE(validate(portless, exec).ok());  // no command
  exec.exec_command = {"/bin/true"};
  EXPECT_TRUE(validate(portless, exec).ok());  // exec needs no port
  auto http = tcp_spec(1000, 500, 2, 3);
  http.type = CheckType::kHttp;
  http.http_path = "/health\r\nX: y";
  EXPECT_FALSE(validate(vip, http).ok());
  http.http_path = "health";
  EXPECT_FALSE(validate(vip, http).ok());
  http.http_path = "/health?full=1";
  EXPECT_TRUE(validate(vip, http).ok());
  http.http_status_min = 400;
  http.http_status_max = 300;
  EXPECT_FALSE(validate(vip, http).ok());
  auto dns = tcp_spec(1000, 500, 2, 3);
  dns.type = CheckType::kUdpDns;
  dns.dns_query_name = "a..b";
  EXPECT_FALSE(validate(vip, dns).ok());
}

TEST(Check, ResolveTargetsAndHostHeader) {
  auto spec = tcp_spec(1000, 500, 2, 3);
  spec.type = CheckType::kHttp;
  auto r = resolve(vip_key("198.18.200.1:8080/tcp"), ip("198.18.3.11"), spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->target.to_string(), "198.18.3.11:8080");
  EXPECT_EQ(r->host_header, "198.18.200.1:8080");
  r = resolve(vip_key("[2001:db8:200::1]:80/tcp"), ip("2001:db8:3::11"), spec);
  EXPECT_EQ(r->host_header, "[2001:db8:200::1]");  // the scheme's default port is left out
  spec.type = CheckType::kHttps;
  r = resolve(vip_key("198.18.200.1:443/tcp"), ip("198.18.3.11"), spec);
  EXPECT_EQ(r->host_header, "198.18.200.1");
  spec.http_host = "www.example.com";
  spec.port = 8443;
  spec.address = ip("198.18.3.99");
  r = resolve(vip_key("198.18.200.1:443/tcp"), ip("198.18.3.11"), spec);
  EXPECT_EQ(r->host_header, "www.example.com");
  EXPECT_EQ(r->target.to_string(), "198.18.3.99:8443");
}

TEST(Check, DnsWireName) {
  EXPECT_EQ(*dns_wire_name("."), std::string(1, '\0'));
  EXPECT_EQ(*dns_wire_name(""), std::string(1, '\0'));
  EXPECT_EQ(*dns_wire_name("example.com"), std::string("\7example\3com\0", 13));
  EXPECT_EQ(*dns_wire_name("example.com."), std::string("\7example\3com\0", 13));
  EXPECT_FALSE(dns_wire_name("a..b").ok());
  EXPECT_FALSE(dns_wire_name(".a").ok());
  EXPECT_FALSE(dns_wire_name(std::string(64, 'a')).ok());
}

// ---- Loopback servers ---------------------------------------------------------------------

// A socket fd closed at scope end.
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (fd >= 0) ::close(fd);
    fd = std::exchange(o.fd, -1);
    return *this;
  }
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

// A bound socket on a loopback address (port 0: any).
Fd bound_socket(const char* address, uint16_t port, int type) {
  IpAddress a = ip(address);
  sockaddr_storage ss{};
  socklen_t len;
  if (a.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, a.bytes(), 4);
    len = sizeof(*sin);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    std::memcpy(&sin6->sin6_addr, a.bytes(), 16);
    len = sizeof(*sin6);
  }
  Fd fd(::socket(ss.ss_family, type | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(fd.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return Fd();
  return fd;
}

// A TCP server on loopback: each connection is handed to `serve` on the server's thread.
class TcpServer {
 public:
  using Serve = std::function<void(int fd)>;
  TcpServer(const char* address, Serve serve) : serve_(std::move(serve)) {
    listener_ = bound_socket(address, 0, SOCK_STREAM);
    EXPECT_GE(listener_.fd, 0);
    ::listen(listener_.fd, 64);
    port_ = local_port(listener_.fd);
    thread_ = std::thread([this] { run(); });
  }
  ~TcpServer() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    listener_ = Fd();
  }
  uint16_t port() const { return port_; }

 private:
  void run() {
    while (!stop_) {
      pollfd p{listener_.fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      Fd c(::accept4(listener_.fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (c.fd >= 0) serve_(c.fd);
    }
  }
  Serve serve_;
  Fd listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Reads a request head (up to the blank line), bounded by 2 s.
std::string read_request(int fd) {
  std::string req;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (req.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    req.append(buf, static_cast<size_t>(n));
  }
  return req;
}

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Runs one check on a fresh loop and returns its result.
CheckResult run_check(const CheckRequest& request) {
  auto loop = EventLoop::create();
  EXPECT_TRUE(loop.ok());
  std::optional<CheckResult> result;
  {
    Prober prober(**loop);
    prober.start(request, [&](const CheckResult& r) { result = r; });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!result && std::chrono::steady_clock::now() < deadline) {
      EXPECT_TRUE((*loop)->run_once(std::chrono::steady_clock::now() + 100ms).ok());
    }
    EXPECT_EQ(prober.running(), 0u);
  }
  EXPECT_EQ((*loop)->watches(), 0u);  // every socket and pidfd let go
  EXPECT_EQ((*loop)->timers(), 0u);
  return result.value_or(CheckResult{false, "no result", 0ns});
}

CheckRequest request(CheckType type, const char* backend, uint16_t port,
                     const std::function<void(state::HealthCheckSpec&)>& edit = {}) {
  state::HealthCheckSpec spec = tcp_spec(2000, 500, 1, 1);
  spec.type = type;
  spec.port = port;
  if (edit) edit(spec);
  auto r = resolve(vip_key("198.18.200.1:80/tcp"), ip(backend), spec);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return *r;
}

// A port nothing listens on: bound (so no one else takes it) but not listening.
struct ClosedPort {
  Fd fd;
  uint16_t port;
  explicit ClosedPort(const char* address, int type = SOCK_STREAM)
      : fd(bound_socket(address, 0, type)), port(local_port(fd.fd)) {
    if (type == SOCK_DGRAM) fd = Fd();  // UDP: nothing bound answers, ICMP unreachable
  }
};

// ---- tcp ----------------------------------------------------------------------------------

TEST(TcpCheck, UpWhenListeningDownWhenRefused) {
  for (const char* address : {"127.0.0.1", "::1"}) {
    TcpServer server(address, [](int) {});
    auto ok = run_check(request(CheckType::kTcp, address, server.port()));
    EXPECT_TRUE(ok.ok) << address << ": " << ok.detail;
    EXPECT_EQ(ok.detail, "connected");
    ClosedPort closed(address);
    auto refused = run_check(request(CheckType::kTcp, address, closed.port));
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.detail, "connect: connection refused") << address;
  }
}

TEST(TcpCheck, ResetsBeforeTheBackendHasAConnectionToAccept) {
  // The check aborts on the SYN-ACK without acknowledging it: the backend's half-open entry
  // goes away with the reset, and its server never sees a connection.
  for (const char* address : {"127.0.0.1", "::1"}) {
    Fd listener = bound_socket(address, 0, SOCK_STREAM | SOCK_NONBLOCK);
    ASSERT_EQ(::listen(listener.fd, 16), 0);
    for (int i = 0; i < 3; i++) {
      auto r = run_check(request(CheckType::kTcp, address, local_port(listener.fd)));
      EXPECT_TRUE(r.ok) << address << ": " << r.detail;
    }
    std::this_thread::sleep_for(50ms);
    EXPECT_LT(::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC), 0) << address;
    EXPECT_EQ(errno, EAGAIN) << address;
  }
}

// ---- http ---------------------------------------------------------------------------------

struct HttpReply {
  std::string response;
  Duration delay{};
};

// An HTTP server answering every request with `reply`, remembering the last request head.
class HttpServer {
 public:
  explicit HttpServer(HttpReply reply, const char* address = "127.0.0.1")
      : reply_(std::move(reply)), server_(address, [this](int fd) { serve(fd); }) {}
  uint16_t port() const { return server_.port(); }
  std::string last_request() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  void serve(int fd) {
    std::string req = read_request(fd);
    {
      std::lock_guard lock(mu_);
      last_ = req;
    }
    if (reply_.delay > 0ns) std::this_thread::sleep_for(reply_.delay);
    send_all(fd, reply_.response);
  }
  HttpReply reply_;
  std::mutex mu_;
  std::string last_;
  TcpServer server_;
};

std::string http_response(int status, std::string_view body) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         std::string(body);
}

TEST(HttpCheck, StatusInRangeIsUpAndTheRequestCarriesTheHostHeader) {
  HttpServer server({http_response(200, "fine")});
  auto r = run_check(request(CheckType::kHttp, "127.0.0.1", server.port(),
                             [](auto& s) { s.http_path = "/healthz?deep=1"; }));
  EXPECT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(r.detail, "HTTP 200");
  const std::string req = server.last_request();
  EXPECT_EQ(req.rfind("GET /healthz?deep=1 HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("\r\nHost: 198.18.200.1\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\nConnection: close\r\n"), std::string::npos) << req;

  auto named = run_check(request(CheckType::kHttp, "127.0.0.1", server.port(),
                                 [](auto& s) { s.http_host = "svc.example"; }));
  EXPECT_TRUE(named.ok);
  EXPECT_NE(server.last_request().find("\r\nHost: svc.example\r\n"), std::string::npos);
}

TEST(HttpCheck, StatusOutOfRangeIsDown) {
  HttpServer server({http_response(500, "oops")});
  auto r = run_check(request(CheckType::kHttp, "127.0.0.1", server.port()));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "HTTP 500 (want 200-399)");
  auto ranged = run_check(request(CheckType::kHttp, "127.0.0.1", server.port(), [](auto& s) {
    s.http_status_min = 500;
    s.http_status_max = 503;
  }));
  EXPECT_TRUE(ranged.ok) << ranged.detail;
}

TEST(HttpCheck, BodyMustHoldTheString) {
  HttpServer server({http_response(200, "status: degraded")});
  auto wrong = run_check(request(CheckType::kHttp, "127.0.0.1", server.port(),
                                 [](auto& s) { s.http_body_contains = "status: ok"; }));
  EXPECT_FALSE(wrong.ok);
  EXPECT_EQ(wrong.detail, "HTTP 200, but the body lacks 'status: ok'");
  auto right = run_check(request(CheckType::kHttp, "127.0.0.1", server.port(),
                                 [](auto& s) { s.http_body_contains = "degraded"; }));
  EXPECT_TRUE(right.ok) << right.detail;
}

TEST(HttpCheck, SlowResponseTimesOut) {
  HttpServer server({http_response(200, "late"), 1500ms});
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_check(
      request(CheckType::kHttp, "127.0.0.1", server.port(), [](auto& s) { s.timeout_ms = 200; }));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "timeout after 200 ms (waiting for the response)");
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 1000ms);
}

TEST(Prober, EachCheckTimesOutAtItsOwnDeadline) {
  // A listener that never accepts: connections complete in its backlog, requests go
  // unanswered. The earliest deadline is the last one started.
  Fd listener = bound_socket("127.0.0.1", 0, SOCK_STREAM);
  ASSERT_EQ(::listen(listener.fd, 16), 0);
  const uint16_t port = local_port(listener.fd);
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  std::vector<std::pair<uint32_t, CheckResult>> done;  // timeout, result; in completion order
  {
    Prober prober(**loop);
    for (uint32_t timeout : {300u, 100u, 200u}) {
      prober.start(request(CheckType::kHttp, "127.0.0.1", port,
                           [&](auto& s) { s.timeout_ms = timeout; }),
                   [&done, timeout](const CheckResult& r) { done.emplace_back(timeout, r); });
    }
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (done.size() < 3 && std::chrono::steady_clock::now() < deadline) {
      ASSERT_TRUE((*loop)->run_once(std::chrono::steady_clock::now() + 100ms).ok());
    }
    EXPECT_EQ(prober.running(), 0u);
  }
  EXPECT_EQ((*loop)->timers(), 0u);
  EXPECT_EQ((*loop)->watches(), 0u);
  ASSERT_EQ(done.size(), 3u);
  for (size_t i = 0; i < 3; i++) {
    const uint32_t timeout = 100 * static_cast<uint32_t>(i + 1);
    EXPECT_EQ(done[i].first, timeout);
    EXPECT_EQ(done[i].second.detail,
              "timeout after " + std::to_string(timeout) + " ms (waiting for the response)");
    EXPECT_GE(done[i].second.took, milliseconds(timeout));
    EXPECT_LT(done[i].second.took, milliseconds(timeout) + 150ms);
  }
}

TEST(HttpCheck, WhatIsNotHttpIsDown) {
  HttpServer garbage({"SSH-2.0-OpenSSH_9.2\r\n"});
  auto r = run_check(request(CheckType::kHttp, "127.0.0.1", garbage.port()));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail.rfind("not an HTTP response: 'SSH-2.0", 0), 0u) << r.detail;
  HttpServer silent({""});
  r = run_check(request(CheckType::kHttp, "127.0.0.1", silent.port()));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "connection closed without a response");
}

TEST(HttpCheck, LargeBodyIsReadOnlyUpToTheLimit) {
  std::string body(1 << 20, 'x');
  HttpServer server({http_response(200, body + "needle")});
  auto r = run_check(request(CheckType::kHttp, "127.0.0.1", server.port(),
                             [](auto& s) { s.http_body_contains = "needle"; }));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("(in its first 64 KiB)"), std::string::npos) << r.detail;
}

// ---- https (OpenSSL on both sides; a self-signed certificate made here) -------------------

class TlsServer {
 public:
  explicit TlsServer(std::string response) : response_(std::move(response)) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("svc.example"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx_, cert);
    SSL_CTX_use_PrivateKey(ctx_, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    server_.emplace("127.0.0.1", [this](int fd) { serve(fd); });
  }
  ~TlsServer() {
    server_.reset();
    SSL_CTX_free(ctx_);
  }
  uint16_t port() const { return server_->port(); }
  std::string last_request() {
    std::lock_guard lock(mu_);
    return last_;
  }
  std::string last_sni() {
    std::lock_guard lock(mu_);
    return sni_;
  }

 private:
  void serve(int fd) {
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        int n = SSL_read(ssl, buf, sizeof(buf));
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        last_ = req;
        const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        sni_ = sni ? sni : "";
      }
      SSL_write(ssl, response_.data(), static_cast<int>(response_.size()));
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
  }
  std::string response_;
  SSL_CTX* ctx_ = nullptr;
  std::mutex mu_;
  std::string last_;
  std::string sni_;
  std::optional<TcpServer> server_;
};

TEST(HttpsCheck, TlsThenHttpWithSni) {
  TlsServer server(http_response(200, "secure ok"));
  auto r = run_check(request(CheckType::kHttps, "127.0.0.1", server.port(), [](auto& s) {
    s.http_host = "svc.example";
    s.http_body_contains = "secure ok";
  }));
  EXPECT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(r.detail, "HTTP 200, body has 'secure ok'");
  EXPECT_NE(server.last_request().find("\r\nHost: svc.example\r\n"), std::string::npos);
  EXPECT_EQ(server.last_sni(), "svc.example");
  // An address as Host: no SNI (RFC 6066 allows names only).
  auto by_address = run_check(request(CheckType::kHttps, "127.0.0.1", server.port()));
  EXPECT_TRUE(by_address.ok) << by_address.detail;
  EXPECT_EQ(server.last_sni(), "");
}

TEST(HttpsCheck, PlainHttpServerFailsTheHandshake) {
  // What a plain HTTP server says to a ClientHello.
  TcpServer plain("127.0.0.1", [](int fd) {
    send_all(fd, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
  });
  auto r = run_check(request(CheckType::kHttps, "127.0.0.1", plain.port()));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail.rfind("TLS handshake", 0), 0u) << r.detail;
}

// ---- udp-dns ------------------------------------------------------------------------------

// Answers DNS queries on loopback: `mode` 0 echoes the question with `rcode`, 1 answers with
// another id, 2 stays silent.
class DnsServer {
 public:
  DnsServer(int mode, uint8_t rcode) : mode_(mode), rcode_(rcode) {
    fd_ = bound_socket("127.0.0.1", 0, SOCK_DGRAM);
    port_ = local_port(fd_.fd);
    thread_ = std::thread([this] { run(); });
  }
  ~DnsServer() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::string last_query() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_.fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char buf[512];
      sockaddr_storage from{};
      socklen_t len = sizeof(from);
      ssize_t n = ::recvfrom(fd_.fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 12) continue;
      {
        std::lock_guard lock(mu_);
        last_.assign(buf, static_cast<size_t>(n));
      }
      if (mode_ == 2) continue;
      std::string reply(buf, static_cast<size_t>(n));
      reply[2] = static_cast<char>(reply[2] | 0x80);  // QR
      reply[3] = static_cast<char>((reply[3] & 0xf0) | rcode_);
      if (mode_ == 1) reply[1] = static_cast<char>(reply[1] ^ 0x55);
      ::sendto(fd_.fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
  int mode_;
  uint8_t rcode_;
  Fd fd_;
  uint16_t port_;
  std::mutex mu_;
  std::string last_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(DnsCheck, AnyResponseWithTheQueryIdIsUp) {
  DnsServer noerror(0, 0);
  auto r = run_check(request(CheckType::kUdpDns, "127.0.0.1", noerror.port(),
                             [](auto& s) { s.dns_query_name = "health.example."; }));
  EXPECT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(r.detail, "DNS NOERROR, 0 answers");
  const std::string q = noerror.last_query();
  ASSERT_GE(q.size(), 12u + 16u + 4u);
  EXPECT_EQ(q.substr(12, 16), std::string("\6health\7example\0", 16));
  EXPECT_EQ(q.substr(28, 4), std::string("\0\1\0\1", 4));  // A, IN

  DnsServer nxdomain(0, 3);
  r = run_check(request(CheckType::kUdpDns, "127.0.0.1", nxdomain.port()));
  EXPECT_TRUE(r.ok);  // the server answered: alive
  EXPECT_EQ(r.detail, "DNS NXDOMAIN, 0 answers");
}

TEST(DnsCheck, NoAnswerOrAnotherIdTimesOutAndNoServerIsRefused) {
  DnsServer other_id(1, 0);
  auto r = run_check(request(CheckType::kUdpDns, "127.0.0.1", other_id.port(),
                             [](auto& s) { s.timeout_ms = 200; }));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "timeout after 200 ms (waiting for the DNS response)");
  DnsServer silent(2, 0);
  r = run_check(
      request(CheckType::kUdpDns, "127.0.0.1", silent.port(), [](auto& s) { s.timeout_ms = 200; }));
  EXPECT_FALSE(r.ok);
  ClosedPort closed("127.0.0.1", SOCK_DGRAM);
  r = run_check(request(CheckType::kUdpDns, "127.0.0.1", closed.port));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "port unreachable: no DNS server on the port");
}

// ---- exec ---------------------------------------------------------------------------------

CheckRequest exec_request(std::vector<std::string> argv, uint32_t timeout_ms = 2000) {
  return request(CheckType::kExec, "127.0.0.1", 8080, [&](auto& s) {
    s.exec_command = argv;
    s.timeout_ms = timeout_ms;
    s.interval_ms = timeout_ms * 2;
  });
}

bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

TEST(ExecCheck, ExitStatusDecides) {
  auto up = run_check(exec_request({"true"}));
  EXPECT_TRUE(up.ok) << up.detail;
  EXPECT_EQ(up.detail, "exit 0");
  auto down = run_check(exec_request({"false"}));
  EXPECT_FALSE(down.ok);
  EXPECT_EQ(down.detail, "exit 1");
  auto says = run_check(exec_request({"sh", "-c", "echo 'db unreachable'; echo more >&2; exit 3"}));
  EXPECT_FALSE(says.ok);
  EXPECT_EQ(says.detail, "exit 3: db unreachable");
  auto missing = run_check(exec_request({"/nonexistent/xlb-check"}));
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.detail, "cannot run '/nonexistent/xlb-check': no such file or directory");
}

TEST(ExecCheck, EnvironmentNamesTheBackendPortAndVip) {
  auto r = run_check(exec_request(
      {"sh", "-c",
       "test \"$XLB_BACKEND\" = 127.0.0.1 && test \"$XLB_PORT\" = 8080 && "
       "test \"$XLB_VIP\" = 198.18.200.1 && test \"$XLB_VIP_PORT\" = 80 && "
       "test \"$XLB_VIP_PROTOCOL\" = tcp && test -n \"$PATH\" && "
       "test ! -e /proc/self/fd/3 || { ls -l /proc/self/fd; env | grep XLB_; exit 1; }"}));
  EXPECT_TRUE(r.ok) << r.detail;
}

TEST(ExecCheck, TimeoutKillsTheWholeProcessGroup) {
  const std::string pidfile =
      (std::filesystem::temp_directory_path() / ("xlb-health-" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove(pidfile);
  const auto t0 = std::chrono::steady_clock::now();
  // A shell that starts a long sleep in the background and waits: both must go.
  auto r =
      run_check(exec_request({"sh", "-c", "sleep 30 & echo $$ $! > " + pidfile + "; wait"}, 300));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "timeout after 300 ms (process group of 'sh' killed)");
  EXPECT_LT(took, 2s);
  std::ifstream in(pidfile);
  pid_t shell = 0, sleeper = 0;
  in >> shell >> sleeper;
  ASSERT_GT(shell, 0);
  ASSERT_GT(sleeper, 0);
  // The Prober reaped the shell before run_check returned; the orphaned sleep is reaped by
  // init, which may take a moment.
  EXPECT_TRUE(process_gone(shell));
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!process_gone(sleeper) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(process_gone(sleeper)) << "sleep " << sleeper << " survived";
  std::filesystem::remove(pidfile);
}

// ---- The Monitor: one thread, one loop, many backends -------------------------------------

size_t thread_count() {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    (void)e;
    n++;
  }
  return n;
}

size_t fd_count() {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    n++;
  }
  return n;
}

// Many TCP listeners on distinct 127.0.x.y addresses (all of 127.0.0.0/8 is loopback), one
// thread accepting and closing on all of them.
class ListenerFarm {
 public:
  ListenerFarm(size_t n, uint16_t port) {
    epoll_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
    for (size_t i = 0; i < n; i++) {
      const std::string a = address(i);
      Fd fd = bound_socket(a.c_str(), port, SOCK_STREAM | SOCK_NONBLOCK);
      if (fd.fd < 0 || ::listen(fd.fd, 128) != 0) {
        ok_ = false;
        return;
      }
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd.fd;
      ::epoll_ctl(epoll_.fd, EPOLL_CTL_ADD, fd.fd, &ev);
      listeners_.push_back(std::move(fd));
    }
    thread_ = std::thread([this] { run(); });
  }
  ~ListenerFarm() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return ok_; }
  static std::string address(size_t i) {
    return "127.0." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250);
  }

 private:
  void run() {
    epoll_event events[64];
    while (!stop_) {
      int n = ::epoll_wait(epoll_.fd, events, 64, 20);
      for (int i = 0; i < n; i++) {
        for (;;) {
          int c = ::accept4(events[i].data.fd, nullptr, nullptr, SOCK_CLOEXEC);
          if (c < 0) break;
          ::close(c);
        }
      }
    }
  }
  Fd epoll_;
  std::vector<Fd> listeners_;
  bool ok_ = true;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A free TCP port on 127.0.0.1 for the farm (each farm address binds it separately).
uint16_t free_port() {
  Fd fd = bound_socket("127.0.0.1", 0, SOCK_STREAM);
  return local_port(fd.fd);
}

state::DesiredState loopback_vip(size_t n, uint16_t port, const state::HealthCheckSpec& spec) {
  state::DesiredState d;
  state::VipSpec v;
  v.key = vip_key("198.18.200.1:80/tcp");
  v.health = spec;
  v.health.port = port;
  for (size_t i = 0; i < n; i++) {
    v.backends.push_back({ip(ListenerFarm::address(i).c_str()), 1, state::BackendState::kActive});
  }
  std::sort(v.backends.begin(), v.backends.end(),
            [](const auto& a, const auto& b) { return a.address < b.address; });
  d.vips.emplace(v.key, v);
  return d;
}

TEST(Monitor, FiveHundredBackendsOnOneLoopWithoutNewThreads) {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < 4096 && lim.rlim_max >= 4096) {
    lim.rlim_cur = 4096;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  const uint16_t port = free_port();
  ListenerFarm farm(500, port);
  ASSERT_TRUE(farm.ok()) << "cannot bind 500 loopback listeners";
  const size_t threads_before = thread_count();
  std::atomic<int> changes{0};
  auto monitor = Monitor::start([&] { changes++; });
  ASSERT_TRUE(monitor.ok()) << monitor.error().to_string();
  EXPECT_EQ(thread_count(), threads_before + 1);
  const size_t fds_before = fd_count();
  (*monitor)->set_targets(loopback_vip(500, port, tcp_spec(100, 80, 2, 3)));
  size_t max_threads = 0;
  size_t max_fds = 0;
  for (int i = 0; i < 30; i++) {
    std::this_thread::sleep_for(50ms);
    max_threads = std::max(max_threads, thread_count());
    max_fds = std::max(max_fds, fd_count());
  }
  auto snap = (*monitor)->snapshot();
  ASSERT_EQ(snap.backends.size(), 500u);
  for (const auto& b : snap.backends) {
    EXPECT_EQ(b.health, Health::kUp) << b.backend.to_string() << ": " << b.last_result;
    // 1.5 s at 100 ms: ~14 checks each, minus the start delay and scheduling slack.
    EXPECT_GE(b.checks, 10u) << b.backend.to_string();
  }
  std::map<std::string, int> results;
  for (const auto& b : snap.backends) results[b.last_result]++;
  EXPECT_EQ(snap.failures_total, 0u)
      << "of " << snap.checks_total << "; last results: " << testing::PrintToString(results);
  EXPECT_EQ(changes.load(), 0);
  EXPECT_EQ(max_threads, threads_before + 1);  // checks never add threads
  // Sockets exist only while their checks run, and a backend never has two checks running.
  EXPECT_LE(max_fds, fds_before + 500);
  (*monitor)->stop();
  EXPECT_EQ(thread_count(), threads_before);
}

TEST(Monitor, BackendThatStopsListeningLeavesAndReturns) {
  const uint16_t port = free_port();
  std::atomic<int> changes{0};
  auto monitor = Monitor::start([&] { changes++; });
  ASSERT_TRUE(monitor.ok());
  auto desired = loopback_vip(2, port, tcp_spec(50, 40, 2, 3));
  const auto vip = vip_key("198.18.200.1:80/tcp");
  const IpAddress b0 = ip(ListenerFarm::address(0).c_str());
  const IpAddress b1 = ip(ListenerFarm::address(1).c_str());
  std::optional<ListenerFarm> farm(std::in_place, 2, port);
  ASSERT_TRUE(farm->ok());
  (*monitor)->set_targets(desired);
  auto wait_for = [&](const std::function<bool()>& cond, Duration limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!cond() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return cond();
  };
  ASSERT_TRUE(wait_for(
      [&] {
        auto s = (*monitor)->snapshot();
        return std::all_of(s.backends.begin(), s.backends.end(),
                           [](const auto& b) { return b.health == Health::kUp; });
      },
      2s));
  EXPECT_EQ(changes.load(), 0);  // pending -> up changes no weight

  farm.reset();  // both stop listening: refused
  const auto failed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_for([&] { return (*monitor)->weight_factor(vip, b0) == 0.0; }, 2s));
  const auto detect = std::chrono::steady_clock::now() - failed_at;
  EXPECT_LT(detect, 3 * 50ms + 100ms);  // fall x interval, plus scheduling slack
  EXPECT_GE(changes.load(), 1);
  ASSERT_TRUE(wait_for([&] { return (*monitor)->weight_factor(vip, b1) == 0.0; }, 2s));
  auto filtered = (*monitor)->apply(desired);
  ASSERT_EQ(filtered.all_down.size(), 1u);  // keep-last-set: weights as configured
  EXPECT_EQ(filtered.state, desired);
  auto snap = (*monitor)->snapshot();
  EXPECT_EQ(snap.backends[0].health, Health::kDown);
  EXPECT_EQ(snap.backends[0].last_result, "connect: connection refused");
  EXPECT_EQ(snap.transitions_total, 2u);

  farm.emplace(2, port);
  ASSERT_TRUE(farm->ok());
  ASSERT_TRUE(wait_for([&] { return (*monitor)->weight_factor(vip, b0) == 1.0; }, 2s));
  snap = (*monitor)->snapshot();
  EXPECT_EQ(snap.backends[0].transitions, 2u);
  EXPECT_GE(snap.backends[0].checks, 5u);
}

TEST(Monitor, BackendOverridesSendEachCheckWhereItsBackendSays) {
  // Backends named by test-range addresses, checked on loopback through their overrides (the
  // backends' own addresses never see a packet).
  TcpServer listening("127.0.0.1", [](int) {});
  ClosedPort closed("127.0.0.1");
  state::DesiredState desired;
  state::VipSpec v;
  v.key = vip_key("198.18.200.1:80/tcp");
  v.health = tcp_spec(50, 40, 2, 1);
  v.backends = {
      {ip("198.18.3.1"), 1, state::BackendState::kActive,
       {.port = listening.port(), .address = ip("127.0.0.1")}},
      {ip("198.18.3.2"), 1, state::BackendState::kActive,
       {.port = closed.port, .address = ip("127.0.0.1")}},
      {ip("198.18.3.3"), 1, state::BackendState::kActive, {.type = CheckType::kNone}},
  };
  desired.vips.emplace(v.key, v);
  auto monitor = Monitor::start([] {});
  ASSERT_TRUE(monitor.ok());
  (*monitor)->set_targets(desired);
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  HealthSnapshot s;
  while (std::chrono::steady_clock::now() < deadline) {
    s = (*monitor)->snapshot();
    if (s.backends.size() == 3 && s.backends[0].checks >= 2 && s.backends[1].checks >= 2) break;
    std::this_thread::sleep_for(5ms);
  }
  (*monitor)->stop();
  ASSERT_EQ(s.backends.size(), 3u);
  EXPECT_EQ(s.backends[0].health, Health::kUp) << s.backends[0].last_result;
  EXPECT_EQ(s.backends[0].target.to_string(), "127.0.0.1:" + std::to_string(listening.port()));
  EXPECT_EQ(s.backends[1].health, Health::kDown);
  EXPECT_EQ(s.backends[1].last_result, "connect: connection refused");
  EXPECT_EQ(s.backends[2].health, Health::kUnchecked);
  EXPECT_EQ(s.backends[2].checks, 0u);
}


// Children of this process (pids whose parent is us), zombies included.
std::vector<pid_t> children() {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state;
    pid_t ppid;
    rest >> state >> ppid;
    if (ppid == ::getpid()) out.push_back(std::stoi(name));
  }
  return out;
}

TEST(Monitor, StopKillsAndReapsRunningExecChecks) {
  auto monitor = Monitor::start([] {});
  ASSERT_TRUE(monitor.ok());
  auto spec = tcp_spec(1000, 900, 1, 1);
  spec.type = CheckType::kExec;
  spec.exec_command = {"sleep", "30"};
  (*monitor)->set_targets(one_vip(spec, 3));
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (children().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(children().empty());
  const auto t0 = std::chrono::steady_clock::now();
  (*monitor)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_TRUE(children().empty());
}

}  // namespace
}  // namespace xlb::health
