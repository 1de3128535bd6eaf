// SPDX-License-Identifier: Apache-2.0
#include "xlb/health/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace xlb::health {

std::string_view to_string(Health h) {
  switch (h) {
    case Health::kUnchecked:
      return "unchecked";
    case Health::kPending:
      return "pending";
    case Health::kUp:
      return "up";
    case Health::kDown:
      return "down";
  }
  return "?";
}

Engine::Engine(const Clock& clock, Options options)
    : clock_(clock),
      options_(options),
      rng_(options.seed ? *options.seed : std::random_device{}()) {}

SteadyTime Engine::jittered(Duration interval) {
  // Uniform in [0, interval): checks of backends added together spread over one interval
  // instead of hitting every backend (and the event loop) in the same millisecond, forever.
  const auto span = std::max<Duration::rep>(interval.count(), 1);
  std::uniform_int_distribution<Duration::rep> dist(0, span - 1);
  return clock_.now() + Duration(dist(rng_));
}

void Engine::queue_check(Target& t, SteadyTime when) {
  // Every check moves its target's entry: the tree node is reused rather than freed and
  // allocated again (take_due keeps the nodes of the checks it hands out).
  Queue::node_type node;
  if (t.queued) {
    node = queue_.extract({*t.queued, t.serial, &t});
  } else if (!spare_nodes_.empty()) {
    node = std::move(spare_nodes_.back());
    spare_nodes_.pop_back();
  }
  t.queued = when;
  if (node.empty()) {
    queue_.emplace(when, t.serial, &t);
    return;
  }
  node.value() = {when, t.serial, &t};
  queue_.insert(std::move(node));
}

void Engine::queue_ramp(Target& t) {
  if (t.ramp_queued) {
    ramps_.erase({*t.ramp_queued, t.serial, &t});
    t.ramp_queued.reset();
  }
  if (!t.tracker || !t.tracker->up()) return;
  if (auto step = t.tracker->next_step()) {
    t.ramp_queued = *step;
    ramps_.emplace(*step, t.serial, &t);
  }
}

void Engine::unqueue(Target& t) {
  if (t.queued) queue_.erase({*t.queued, t.serial, &t});
  if (t.ramp_queued) ramps_.erase({*t.ramp_queued, t.serial, &t});
  t.queued.reset();
  t.ramp_queued.reset();
}

void Engine::set_targets(const state::DesiredState& desired) {
  std::set<Key> wanted;
  std::set<state::VipKey> warned;
  for (const auto& [vip_key, vip] : desired.vips) {
    for (const auto& backend : vip.backends) {
      Key key{vip_key, backend.address};
      wanted.insert(key);
      // The VIP's check with the backend's override: a backend whose own settings change is
      // the only one restarted below.
      const state::HealthCheckSpec spec = vip.health_for(backend);
      std::shared_ptr<const CheckRequest> request;
      std::string unchecked;
      bool invalid = false;
      if (spec.type == state::CheckType::kNone) {
        unchecked = "no check (type none)";
      } else if (backend.state == state::BackendState::kDisabled) {
        // Taken out by the operator, often for maintenance: checks would only add noise.
        unchecked = "not checked while disabled";
      } else if (auto r = resolve(vip_key, backend.address, spec); !r) {
        unchecked = "not checked: " + r.error().message;
        invalid = true;
      } else {
        request = std::make_shared<const CheckRequest>(std::move(*r));
      }

      auto [it, fresh] = targets_.try_emplace(key);
      Target& t = it->second;
      if (fresh) {
        t.key = key;
        t.serial = next_serial_++;
        t.first_seen = clock_.wall_now();
        by_serial_.emplace(t.serial, &t);
      } else if ((t.request && request && *t.request == *request) || (!t.request && !request)) {
        if (!request) t.last_result = unchecked;
        continue;  // unchanged: keeps its state, counts and schedule
      }
      // The config parser refuses such specs; one from elsewhere (the API) is logged once per
      // VIP and change, and its backends are treated as unchecked (health does not touch them).
      if (invalid && warned.insert(vip_key).second) {
        spdlog::warn("health: {}: {}", vip_key.to_string(), unchecked);
      }
      // Changed (or new): results of a check started under the old spec say nothing now.
      t.running_job = 0;
      t.request = request;
      if (!request) {
        unqueue(t);
        t.tracker.reset();
        t.last_result = unchecked;
        continue;
      }
      const Timing timing = Timing::from(request->spec);
      const SteadyTime first = jittered(timing.interval);
      if (t.tracker) {
        t.tracker->retime(timing, first);
        if (!t.last_result.starts_with("check changed: ")) {
          t.last_result = "check changed: " + t.last_result;
        }
      } else {
        t.tracker.emplace(timing, first, clock_.wall_now(), options_.slow_start_steps);
        t.last_result = "no result yet";
      }
      queue_check(t, first);
      queue_ramp(t);
    }
  }
  for (auto it = targets_.begin(); it != targets_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    unqueue(it->second);
    by_serial_.erase(it->second.serial);
    it = targets_.erase(it);
  }
}

std::vector<Engine::Job> Engine::take_due(Duration ahead) {
  const SteadyTime now = clock_.now();
  std::vector<Job> jobs;
  for (auto it = queue_.begin(); it != queue_.end() && std::get<0>(*it) <= now + ahead;) {
    const auto [due, serial, target] = *it;
    Target& t = *target;
    if (due > now && t.tracker && (due - now) * 10 > t.tracker->current_interval()) {
      ++it;  // too early for this backend's pace
      continue;
    }
    auto node = queue_.extract(it++);
    if (spare_nodes_.size() < targets_.size()) spare_nodes_.push_back(std::move(node));
    t.queued.reset();
    if (!t.request) continue;
    const uint64_t id = next_job_++;
    t.running_job = id;
    t.running_since = now;
    jobs_.emplace(id, serial);
    jobs.push_back({id, t.request});
  }
  return jobs;
}

void Engine::log_change(const Key& key, const Target& t, bool first_result) const {
  const Tracker& tr = *t.tracker;
  const std::string who = key.vip.to_string() + " backend " + key.backend.to_string();
  if (first_result) {
    if (tr.up()) {
      spdlog::info("health: {} is up (first check: {})", who, t.last_result);
    } else {
      spdlog::warn("health: {} is DOWN (first check: {})", who, t.last_result);
    }
  } else if (tr.up()) {
    spdlog::info("health: {} is UP again after {} good checks ({}){}", who, tr.timing().rise,
                 t.last_result, tr.ramping() ? ", slow start" : "");
  } else {
    spdlog::warn("health: {} is DOWN after {} failed checks (last: {})", who, tr.timing().fall,
                 t.last_result);
  }
}

bool Engine::finish(uint64_t job_id, const CheckResult& result) {
  auto j = jobs_.find(job_id);
  if (j == jobs_.end()) return false;
  const uint64_t serial = j->second;
  jobs_.erase(j);
  auto k = by_serial_.find(serial);
  if (k == by_serial_.end()) return false;  // removed while it ran
  Target& t = *k->second;
  if (t.running_job != job_id || !t.tracker) return false;  // the check changed while it ran
  t.running_job = 0;
  const SteadyTime now = clock_.now();
  const bool was_pending = t.tracker->phase() == Phase::kPending;
  const uint64_t transitions_before = t.tracker->transitions();
  const auto change = t.tracker->record(result.ok, t.running_since, now, clock_.wall_now());
  t.last_result = result.detail;
  t.last_took = result.took;
  checks_total_++;
  if (!result.ok) failures_total_++;
  transitions_total_ += t.tracker->transitions() - transitions_before;
  if (change.phase) log_change(t.key, t, was_pending);
  queue_check(t, t.tracker->next_check());
  queue_ramp(t);
  return change.factor;
}

bool Engine::advance() {
  const SteadyTime now = clock_.now();
  bool changed = false;
  while (!ramps_.empty() && std::get<0>(*ramps_.begin()) <= now) {
    Target& t = *std::get<2>(*ramps_.begin());
    ramps_.erase(ramps_.begin());
    t.ramp_queued.reset();
    if (!t.tracker) continue;
    changed |= t.tracker->advance(now).factor;
    queue_ramp(t);
  }
  return changed;
}

std::optional<SteadyTime> Engine::next_wakeup() const {
  std::optional<SteadyTime> at;
  if (!queue_.empty()) at = std::get<0>(*queue_.begin());
  if (!ramps_.empty() && (!at || std::get<0>(*ramps_.begin()) < *at)) {
    at = std::get<0>(*ramps_.begin());
  }
  return at;
}

double Engine::weight_factor(const state::VipKey& vip, const IpAddress& backend) const {
  auto it = targets_.find(Key{vip, backend});
  if (it == targets_.end() || !it->second.tracker) return 1.0;
  return it->second.tracker->weight_factor();
}

HealthSnapshot Engine::snapshot() const {
  HealthSnapshot s;
  s.checks_total = checks_total_;
  s.failures_total = failures_total_;
  s.transitions_total = transitions_total_;
  s.backends.reserve(targets_.size());
  for (const auto& [key, t] : targets_) {
    BackendHealth b;
    b.vip = key.vip;
    b.backend = key.backend;
    b.last_result = t.last_result;
    b.since = t.first_seen;
    if (t.request) {
      b.type = t.request->spec.type;
      b.target = t.request->target;
      b.interval_ms = t.request->spec.interval_ms;
      b.timeout_ms = t.request->spec.timeout_ms;
    }
    if (t.tracker) {
      const Tracker& tr = *t.tracker;
      switch (tr.phase()) {
        case Phase::kPending:
          b.health = Health::kPending;
          break;
        case Phase::kUp:
          b.health = Health::kUp;
          break;
        case Phase::kDown:
          b.health = Health::kDown;
          break;
      }
      b.up = tr.up();
      b.weight_factor = tr.weight_factor();
      b.slow_start = tr.up() && tr.ramping();
      b.since = tr.since();
      b.rise_progress = tr.rise_progress();
      b.fall_progress = tr.fall_progress();
      b.rise = tr.timing().rise;
      b.fall = tr.timing().fall;
      b.checks = tr.checks();
      b.failures = tr.failures();
      b.transitions = tr.transitions();
      b.last_check_ms = std::chrono::duration<double, std::milli>(t.last_took).count();
    }
    s.backends.push_back(std::move(b));
  }
  return s;
}

}  // namespace xlb::health
