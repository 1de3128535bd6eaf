// SPDX-License-Identifier: Apache-2.0
#include "json_out.h"

#include <string>

namespace xlb::api::detail {
namespace {

OutJson optional_index(const std::optional<uint32_t>& index) {
  return index ? OutJson(*index) : OutJson(nullptr);
}

}  // namespace

OutJson status_json(const state::StatusView& s) {
  return {
      {"version", s.version},
      {"interface", s.interface},
      {"attach_mode", s.attach_mode},
      {"attach_method", s.attach_method},
      {"prog_id", s.prog_id},
      {"pin_dir", s.pin_dir},
      {"adopted", s.adopted},
      {"uptime_seconds", s.uptime_seconds},
      {"config_file", s.config_file},
      {"reconcile_total", s.reconcile_total},
      {"reconcile_errors", s.reconcile_errors},
      {"reconcile_seconds_sum", s.reconcile_seconds_sum},
      {"last_reconcile_seconds", s.last_reconcile_seconds},
      {"last_error", s.last_error},
      {"discovery", s.discovery ? discovery_json(*s.discovery) : OutJson(nullptr)},
  };
}

OutJson discovery_json(const state::DiscoveryView& d) {
  OutJson sources = OutJson::array();
  for (const auto& s : d.sources) {
    OutJson by_reason = OutJson::object();
    for (const auto& [reason, n] : s.rejected_by_reason) by_reason[reason] = n;
    sources.push_back({
        {"name", s.name},
        {"type", s.type},
        {"priority", s.priority},
        {"state", s.state},
        {"detail", s.detail},
        {"revision", s.revision ? OutJson(*s.revision) : OutJson(nullptr)},
        {"last_good_unix", s.last_good_unix ? OutJson(*s.last_good_unix) : OutJson(nullptr)},
        {"events_applied", s.events_applied},
        {"events_rejected", s.events_rejected},
        {"rejected_by_reason", std::move(by_reason)},
        {"last_rejection", s.last_rejection},
        {"stale_total", s.stale_total},
        {"reconnects_total", s.reconnects_total},
        {"resyncs_total", s.resyncs_total},
        {"full_resyncs_total", s.full_resyncs_total},
        {"problems", s.problems},
    });
  }
  return {
      {"debounce_ms", d.debounce_ms},
      {"generation", d.generation},
      {"update_errors", d.update_errors},
      {"last_error", d.last_error},
      {"events_accepted", d.events_accepted},
      {"events_rejected", d.events_rejected},
      {"queued_events", d.queued_events},
      {"discovered_vips", d.discovered_vips},
      {"discovered_backends", d.discovered_backends},
      {"merge_notes", d.merge_notes},
      {"sources", std::move(sources)},
  };
}

OutJson push_json(const state::PushView& p) {
  OutJson rejected = OutJson::array();
  for (const auto& r : p.rejected) {
    rejected.push_back({{"index", r.index}, {"reason", r.reason}, {"message", r.message}});
  }
  return {{"source", p.source},
          {"replace", p.replace},
          {"accepted", p.accepted},
          {"rejected", std::move(rejected)}};
}

OutJson backend_json(const state::BackendView& b) {
  return {
      {"address", b.spec.address.to_string()},
      {"weight", b.spec.weight},
      {"state", std::string(state::to_string(b.spec.state))},
      {"effective_weight", b.effective_weight},
      {"slots", b.slots},
      {"index", optional_index(b.index)},
      {"packets", b.packets},
      {"bytes", b.bytes},
  };
}

OutJson vip_json(const state::VipView& v) {
  OutJson backends = OutJson::array();
  for (const auto& b : v.backends) backends.push_back(backend_json(b));
  return {
      {"vip", v.spec.key.to_string()},
      {"name", v.spec.name},
      {"no_lru", v.spec.no_lru},
      {"hash", std::string(state::to_string(v.spec.hash))},
      {"gue", v.spec.gue},
      {"icmp_too_big", v.spec.icmp_too_big},
      {"no_rate_guard", v.spec.no_rate_guard},
      {"ring_size", v.ring_size},
      {"ring_size_requested", v.spec.ring_size ? OutJson(*v.spec.ring_size) : OutJson(nullptr)},
      {"index", optional_index(v.index)},
      {"packets", v.packets},
      {"bytes", v.bytes},
      {"backends", std::move(backends)},
  };
}

state::VipView view_of(const state::VipSpec& spec) {
  state::VipView view;
  view.spec = spec;
  for (const auto& b : spec.backends) {
    view.backends.push_back(
        state::BackendView{.spec = b, .effective_weight = state::effective_weight(b)});
  }
  return view;
}

OutJson counters_json(const xlb_counters& counters) {
  OutJson out = OutJson::object();
#define XLB_API_COUNTER(name, metric, help) out[metric] = counters.c[XLB_CNT_##name];
  XLB_COUNTERS(XLB_API_COUNTER)
#undef XLB_API_COUNTER
  return out;
}

OutJson vip_stats_json(const state::VipView& v) {
  OutJson backends = OutJson::array();
  for (const auto& b : v.backends) {
    double share = v.packets == 0 ? 0.0 : static_cast<double>(b.packets) / v.packets;
    backends.push_back({
        {"address", b.spec.address.to_string()},
        {"packets", b.packets},
        {"bytes", b.bytes},
        {"share", share},
    });
  }
  return {
      {"vip", v.spec.key.to_string()},
      {"name", v.spec.name},
      {"packets", v.packets},
      {"bytes", v.bytes},
      {"backends", std::move(backends)},
  };
}

OutJson plan_json(const state::VipKey& vip, const maglev::Plan& plan) {
  OutJson backends = OutJson::array();
  for (const auto& b : plan.backends) {
    backends.push_back({
        {"address", b.id},
        {"slots_before", b.slots_before},
        {"slots_after", b.slots_after},
        {"slots_gained", b.slots_gained},
        {"slots_lost", b.slots_lost},
    });
  }
  return {
      {"vip", vip.to_string()},
      {"ring_size", plan.ring_size},
      {"slots_changed", plan.slots_changed},
      {"moved_fraction", plan.moved_fraction},
      {"backends", std::move(backends)},
  };
}

OutJson lookup_json(const state::VipKey& vip, const Endpoint& from, const state::LookupView& view) {
  return {
      {"vip", vip.to_string()},
      {"from", from.to_string()},
      {"backend", view.backend.to_string()},
      {"backend_index", view.backend_index},
      {"from_table", view.from_table},
  };
}

OutJson health_json(const std::vector<state::VipView>& vips) {
  OutJson list = OutJson::array();
  for (const auto& v : vips) {
    OutJson backends = OutJson::array();
    for (const auto& b : v.backends) {
      const state::HealthView& h = b.health;
      backends.push_back({
          {"address", b.spec.address.to_string()},
          {"state", std::string(state::to_string(b.spec.state))},
          {"weight", b.spec.weight},
          {"effective_weight", b.effective_weight},
          {"check", h.check},
          {"health", h.state},
          {"up", h.up},
          {"weight_factor", h.weight_factor},
          {"last_result", h.last_result},
          {"since", h.since_unix},
          {"rise_progress", h.rise_progress},
          {"rise", h.rise},
          {"fall_progress", h.fall_progress},
          {"fall", h.fall},
          {"checks", h.checks},
          {"failures", h.failures},
          {"transitions", h.transitions},
          {"target", h.target},
          {"interval_ms", h.interval_ms},
          {"timeout_ms", h.timeout_ms},
      });
    }
    list.push_back({{"vip", v.spec.key.to_string()},
                    {"name", v.spec.name},
                    {"check", std::string(state::to_string(v.spec.health.type))},
                    {"all_down", std::string(state::to_string(v.spec.all_down))},
                    {"backends", std::move(backends)}});
  }
  return {{"vips", std::move(list)}};
}

}  // namespace xlb::api::detail
