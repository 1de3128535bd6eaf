// SPDX-License-Identifier: Apache-2.0
#include "collector.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>

#include <string>
#include <string_view>
#include <utility>

#include "xlb/abi.h"
#include "xlb/state/types.h"

namespace xlb::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// ---- Data-plane counters, generated from XLB_COUNTERS -------------------------------------------

struct CounterEntry {
  xlb_counter index;
  std::string_view metric;
  std::string_view help;
};

#define XLB_COUNTER_ENTRY(name, metric, help) CounterEntry{XLB_CNT_##name, metric, help},
constexpr std::array kCounterEntries{XLB_COUNTERS(XLB_COUNTER_ENTRY)};
#undef XLB_COUNTER_ENTRY
static_assert(kCounterEntries.size() == XLB_CNT__MAX);

// A family that gathers the XLB_COUNTERS entries whose metric name starts with `prefix`; the
// rest of the name becomes the value of `label`.
struct CounterGroup {
  std::string_view prefix;
  std::string_view family;
  std::string_view label;
  std::string_view help;
  std::string_view help_prefix;  // stripped from the entries' help in the family's help
};

constexpr std::array kCounterGroups{
    CounterGroup{"xdp_", "xlb_xdp_actions_total", "action", "XDP verdicts of the balancer", ""},
    CounterGroup{"drop_", "xlb_drops_total", "reason", "packets the balancer dropped", "dropped: "},
};

constexpr const CounterGroup* group_of(std::string_view metric) {
  for (const auto& group : kCounterGroups) {
    if (metric.starts_with(group.prefix)) return &group;
  }
  return nullptr;
}

// Entries end up in metric and label names: catch a bad one at compile time, not in Prometheus.
constexpr bool valid_counter_names() {
  for (const auto& entry : kCounterEntries) {
    std::string_view m = entry.metric;
    if (m.empty() || m.front() == '_' || m.ends_with("_total")) return false;
    for (char c : m) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    const CounterGroup* group = group_of(m);
    if (group != nullptr && m.size() == group->prefix.size()) return false;
  }
  return true;
}
static_assert(
    valid_counter_names(),
    "XLB_COUNTERS metric names: lower_snake_case, no _total suffix, no bare group prefix");

// ---- Family construction ------------------------------------------------------------------------

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add(MetricFamily& f, Labels labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

void add_status(const state::StatusView& s, std::vector<MetricFamily>& out) {
  auto& info = out.emplace_back(family("xlb_info", "xlbd build and attachment", MetricType::Gauge));
  add(info,
      {{"version", s.version},
       {"interface", s.interface},
       {"attach_mode", s.attach_mode},
       {"attach_method", s.attach_method}},
      1);
  add(out.emplace_back(
          family("xlb_uptime_seconds", "seconds since xlbd started", MetricType::Gauge)),
      {}, s.uptime_seconds);
  add(out.emplace_back(family("xlb_reconcile_total", "reconciles of the maps to the desired state",
                              MetricType::Counter)),
      {}, static_cast<double>(s.reconcile_total));
  add(out.emplace_back(family("xlb_reconcile_errors_total",
                              "reconciles that failed (the maps kept their previous state)",
                              MetricType::Counter)),
      {}, static_cast<double>(s.reconcile_errors));

  // The daemon keeps a sum and a count, not samples: a summary without quantiles.
  auto& duration = out.emplace_back(
      family("xlb_reconcile_duration_seconds", "time spent reconciling", MetricType::Summary));
  ClientMetric summary;
  summary.summary.sample_count = s.reconcile_total;
  summary.summary.sample_sum = s.reconcile_seconds_sum;
  duration.metric.push_back(std::move(summary));

  add(out.emplace_back(family("xlb_last_reconcile_seconds", "duration of the latest reconcile",
                              MetricType::Gauge)),
      {}, s.last_reconcile_seconds);
}

// Service discovery (docs/discovery.md): absent when xlbd has no discovery section.
void add_discovery(const state::DiscoveryView& d, std::vector<MetricFamily>& out) {
  static constexpr std::array<std::string_view, 4> kStates{"starting", "connected", "stale",
                                                           "error"};
  MetricFamily state = family("xlb_discovery_source_state",
                              "1 for the state each discovery source is in (stale/error: its "
                              "last good entries are served while it retries)",
                              MetricType::Gauge);
  MetricFamily stale = family("xlb_discovery_source_stale",
                              "1 while a source is stale or in error", MetricType::Gauge);
  MetricFamily last_good = family("xlb_discovery_source_last_good_timestamp_seconds",
                                  "last time the source was known current (Unix)",
                                  MetricType::Gauge);
  MetricFamily events = family("xlb_discovery_events_total", "events from a source, by result",
                               MetricType::Counter);
  MetricFamily rejected = family("xlb_discovery_events_rejected_total",
                                 "events refused, by source and reason", MetricType::Counter);
  MetricFamily stale_total = family("xlb_discovery_source_stale_total",
                                    "times a source left connected", MetricType::Counter);
  MetricFamily resyncs = family("xlb_discovery_source_resyncs_total",
                                "resyncs of a source, by kind (resume, full)", MetricType::Counter);
  for (const auto& src : d.sources) {
    for (auto st : kStates) {
      add(state, {{"source", src.name}, {"type", src.type}, {"state", std::string(st)}},
          src.state == st ? 1 : 0);
    }
    add(stale, {{"source", src.name}}, src.state == "stale" || src.state == "error" ? 1 : 0);
    if (src.last_good_unix) add(last_good, {{"source", src.name}}, *src.last_good_unix);
    add(events, {{"source", src.name}, {"result", "applied"}},
        static_cast<double>(src.events_applied));
    add(events, {{"source", src.name}, {"result", "rejected"}},
        static_cast<double>(src.events_rejected));
    for (const auto& [reason, n] : src.rejected_by_reason) {
      add(rejected, {{"source", src.name}, {"reason", reason}}, static_cast<double>(n));
    }
    add(stale_total, {{"source", src.name}}, static_cast<double>(src.stale_total));
    add(resyncs, {{"source", src.name}, {"kind", "resume"}},
        static_cast<double>(src.resyncs_total));
    add(resyncs, {{"source", src.name}, {"kind", "full"}},
        static_cast<double>(src.full_resyncs_total));
  }
  for (auto* f : {&state, &stale, &last_good, &events, &rejected, &stale_total, &resyncs}) {
    out.push_back(std::move(*f));
  }
  add(out.emplace_back(family("xlb_discovery_updates_total",
                              "discovery updates applied to the data plane", MetricType::Counter)),
      {}, static_cast<double>(d.generation));
  add(out.emplace_back(family("xlb_discovery_update_errors_total",
                              "discovery updates refused (served state kept; retried)",
                              MetricType::Counter)),
      {}, static_cast<double>(d.update_errors));
  add(out.emplace_back(family("xlb_discovery_backends", "backends discovery provides now",
                              MetricType::Gauge)),
      {}, static_cast<double>(d.discovered_backends));
}

void add_vips(const std::vector<state::VipView>& vips, std::vector<MetricFamily>& out) {
  // Every backend state gets a series, so that a state change never leaves a stale 1 behind.
  constexpr std::array kStates{state::BackendState::kActive, state::BackendState::kDraining,
                               state::BackendState::kDisabled};

  // Bytes are counted as the frames arrived (Ethernet header included, before encapsulation).
  auto vip_packets = family("xlb_vip_packets_total", "packets of the VIP placed on a backend",
                            MetricType::Counter);
  auto vip_bytes =
      family("xlb_vip_bytes_total", "bytes of the VIP placed on a backend", MetricType::Counter);
  auto ring_size = family("xlb_vip_ring_size", "slots of the VIP's Maglev ring", MetricType::Gauge);
  auto packets =
      family("xlb_backend_packets_total", "packets placed on the backend", MetricType::Counter);
  auto bytes =
      family("xlb_backend_bytes_total", "bytes placed on the backend", MetricType::Counter);
  auto weight = family("xlb_backend_weight", "configured weight of the backend", MetricType::Gauge);
  auto effective =
      family("xlb_backend_effective_weight",
             "weight of the backend in the ring now (0 unless active)", MetricType::Gauge);
  auto slots = family("xlb_backend_slots", "ring slots the backend owns", MetricType::Gauge);
  auto states = family("xlb_backend_state", "1 for the backend's current state", MetricType::Gauge);
  auto up = family("xlb_backend_up",
                   "1 while health checks count the backend as up (unchecked and pending too)",
                   MetricType::Gauge);
  auto factor = family("xlb_backend_weight_factor",
                       "health's factor on the weight: 0 down, ramping to 1 in slow start",
                       MetricType::Gauge);
  auto checks = family("xlb_backend_health_checks_total", "health checks run on the backend",
                       MetricType::Counter);
  auto failures = family("xlb_backend_health_failures_total",
                         "health checks of the backend that failed", MetricType::Counter);
  auto transitions = family("xlb_backend_health_transitions_total",
                            "up/down changes of the backend", MetricType::Counter);

  for (const auto& vip : vips) {
    const std::string key = vip.spec.key.to_string();
    Labels vip_labels{{"vip", key}};
    if (!vip.spec.name.empty()) vip_labels.push_back({"name", vip.spec.name});
    add(vip_packets, vip_labels, static_cast<double>(vip.packets));
    add(vip_bytes, vip_labels, static_cast<double>(vip.bytes));
    add(ring_size, vip_labels, vip.ring_size);

    for (const auto& backend : vip.backends) {
      const Labels labels{{"vip", key}, {"backend", backend.spec.address.to_string()}};
      add(packets, labels, static_cast<double>(backend.packets));
      add(bytes, labels, static_cast<double>(backend.bytes));
      add(weight, labels, backend.spec.weight);
      add(effective, labels, backend.effective_weight);
      add(slots, labels, backend.slots);
      add(up, labels, backend.health.up ? 1 : 0);
      add(factor, labels, backend.health.weight_factor);
      add(checks, labels, static_cast<double>(backend.health.checks));
      add(failures, labels, static_cast<double>(backend.health.failures));
      add(transitions, labels, static_cast<double>(backend.health.transitions));
      for (auto s : kStates) {
        Labels with_state = labels;
        with_state.push_back({"state", std::string(state::to_string(s))});
        add(states, std::move(with_state), backend.spec.state == s ? 1 : 0);
      }
    }
  }
  for (auto* f : {&vip_packets, &vip_bytes, &ring_size, &packets, &bytes, &weight, &effective,
                  &slots, &states, &up, &factor, &checks, &failures, &transitions}) {
    out.push_back(std::move(*f));
  }
}

void add_counters(const xlb_counters& counters, std::vector<MetricFamily>& out) {
  // Grouped families first, in XLB_COUNTERS order within each; the family's help lists what
  // each label value counts, taken from the entries' help.
  for (const auto& group : kCounterGroups) {
    auto f = family(std::string(group.family), std::string(group.help), MetricType::Counter);
    std::string legend;
    for (const auto& entry : kCounterEntries) {
      if (group_of(entry.metric) != &group) continue;
      std::string_view value = entry.metric.substr(group.prefix.size());
      std::string_view help = entry.help;
      if (help.starts_with(group.help_prefix)) help.remove_prefix(group.help_prefix.size());
      legend += (legend.empty() ? ", by " + std::string(group.label) + ": " : "; ");
      legend += std::string(value) + " = " + std::string(help);
      add(f, {{std::string(group.label), std::string(value)}},
          static_cast<double>(counters.c[entry.index]));
    }
    f.help += legend;
    out.push_back(std::move(f));
  }
  for (const auto& entry : kCounterEntries) {
    if (group_of(entry.metric) != nullptr) continue;
    auto& f = out.emplace_back(family("xlb_" + std::string(entry.metric) + "_total",
                                      std::string(entry.help), MetricType::Counter));
    add(f, {}, static_cast<double>(counters.c[entry.index]));
  }
}

}  // namespace

template <typename T, typename ReadFn>
std::optional<T> Collector::read(Source source, ReadFn read_fn) const {
  // ControlPlane reports failures as Results; an exception would still unwind into the HTTP
  // server's C worker thread and end the daemon, so it is counted like any failed read.
  try {
    auto result = read_fn();
    if (result.ok()) return std::move(result).value();
  } catch (...) {
  }
  errors_[source].fetch_add(1, std::memory_order_relaxed);
  return std::nullopt;
}

std::vector<MetricFamily> Collector::Collect() const {
  std::vector<MetricFamily> out;
  out.push_back(family("xlb_up", "1 if xlbd's state could be read completely in this scrape",
                       MetricType::Gauge));
  bool up = true;

  // Each source exports what it could read; a failing one only drops its own families.
  if (auto status = read<state::StatusView>(kStatus, [this] { return cp_.status(); })) {
    add_status(*status, out);
    if (status->discovery) add_discovery(*status->discovery, out);
  } else {
    up = false;
  }
  if (auto vips = read<std::vector<state::VipView>>(kVips, [this] { return cp_.vips(); })) {
    add_vips(*vips, out);
  } else {
    up = false;
  }
  if (auto counters = read<xlb_counters>(kCounters, [this] { return cp_.counters(); })) {
    add_counters(*counters, out);
  } else {
    up = false;
  }

  add(out.front(), {}, up ? 1 : 0);
  auto& errors = out.emplace_back(family("xlb_scrape_errors_total",
                                         "reads of xlbd's state that failed during scrapes",
                                         MetricType::Counter));
  constexpr std::array<std::string_view, kSourceCount> kSourceNames{"status", "vips", "counters"};
  for (size_t s = 0; s < kSourceCount; ++s) {
    add(errors, {{"source", std::string(kSourceNames[s])}},
        static_cast<double>(errors_[s].load(std::memory_order_relaxed)));
  }
  return out;
}

}  // namespace xlb::metrics
