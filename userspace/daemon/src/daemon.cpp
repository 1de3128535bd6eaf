// SPDX-License-Identifier: Apache-2.0
#include "xlb/daemon/daemon.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <yaml-cpp/yaml.h>

#include "xlb/api/server.h"
#include "xlb/dataplane/flow.h"
#include "xlb/discovery/discovery.h"
#include "xlb/discovery/merge.h"
#include "xlb/health/monitor.h"
#include "xlb/maglev/maglev.h"
#include "xlb/state/balancer_writer.h"
#include "xlb/metrics/exporter.h"

#ifndef XLB_VERSION
#define XLB_VERSION "dev"
#endif

namespace xlb::daemon {
namespace {

std::string mac_text(const std::array<uint8_t, 6>& m) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                m[5]);
  return buf;
}

Result<std::string> read_token(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::from_errno(errno, "reading the API token file " + path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) {
    return Error::invalid("the API token in " + path + " is shorter than 16 characters");
  }
  return token;
}

// Settings that only take effect at start-up.
std::vector<std::string> restart_only_changes(const state::GlobalConfig& a,
                                              const state::GlobalConfig& b) {
  std::vector<std::string> out;
  if (a.interface != b.interface) out.push_back("interface");
  if (a.attach_mode != b.attach_mode) out.push_back("attach_mode");
  if (!(a.limits == b.limits)) out.push_back("limits");
  if (a.flow_table != b.flow_table) out.push_back("flow_table");
  if (a.pin_root != b.pin_root) out.push_back("pin_root");
  if (a.api_socket != b.api_socket || a.api_tcp_listen != b.api_tcp_listen ||
      a.api_token_file != b.api_token_file) {
    out.push_back("api");
  }
  if (a.metrics_listen != b.metrics_listen) out.push_back("metrics");
  return out;
}

state::DiscoverySourceView source_view(const discovery::SourceStatus& s) {
  state::DiscoverySourceView v;
  v.name = s.name;
  v.type = std::string(discovery::to_string(s.type));
  v.priority = s.priority;
  v.state = std::string(discovery::to_string(s.state));
  v.detail = s.detail;
  v.revision = s.revision;
  if (s.last_good) {
    v.last_good_unix = std::chrono::duration<double>(s.last_good->time_since_epoch()).count();
  }
  v.events_applied = s.events_applied;
  v.events_rejected = s.events_rejected;
  for (int r = 1; r <= discovery::kRejectKinds; r++) {
    if (uint64_t n = s.rejected_by_reason[static_cast<size_t>(r)]; n > 0) {
      v.rejected_by_reason[std::string(discovery::to_string(static_cast<discovery::Reject>(r)))] =
          n;
    }
  }
  v.last_rejection = s.last_rejection;
  v.stale_total = s.stale_total;
  v.reconnects_total = s.reconnects_total;
  v.resyncs_total = s.resyncs_total;
  v.full_resyncs_total = s.full_resyncs_total;
  v.problems = s.problems;
  return v;
}

}  // namespace

Result<DaemonConfig> load_daemon_config(const std::string& path) {
  auto cfg = state::load_config(path);
  if (!cfg) return cfg.error();
  DaemonConfig out{.config = std::move(*cfg), .discovery = std::nullopt};
  if (out.config.discovery) {
    auto d = discovery::parse_discovery_config(*out.config.discovery, path);
    if (!d) return d.error();
    out.discovery = std::move(*d);
  }
  return out;
}

Result<state::DataplaneSnapshot> snapshot(const dataplane::Balancer& lb) {
  state::DataplaneSnapshot snap;
  auto vips = lb.vips();
  if (!vips) return vips.error();
  snap.vips = *vips;
  for (const auto& [key, meta] : snap.vips) {
    auto ring = lb.ring(meta.vip_index);
    if (!ring) return ring.error();
    snap.rings[meta.vip_index] = std::move(*ring);
  }
  for (uint32_t i = 0; i < lb.options().max_backends; i++) {
    auto b = lb.backend(i);
    if (!b) return b.error();
    if (b->family != 0) snap.backends[i] = *b;
  }
  return snap;
}

Result<std::unique_ptr<Daemon>> Daemon::start(const DaemonOptions& opts) {
  std::unique_ptr<Daemon> d(new Daemon());
  XLB_TRY(d->init(opts));
  return d;
}

Status Daemon::init(const DaemonOptions& opts) {
  opts_ = opts;
  started_ = std::chrono::steady_clock::now();
  auto cfg = load_daemon_config(opts.config_path);
  if (!cfg) return cfg.error();
  config_ = std::move(cfg->config);
  discovery_config_ = std::move(cfg->discovery);
  if (opts.interface_override) config_.global.interface = *opts.interface_override;
  const auto& g = config_.global;

  if (g.next_hop_mac) {
    next_hop_ = *g.next_hop_mac;
  } else {
    auto mac = resolve_next_hop_mac(g.interface);
    if (!mac) return mac.error();
    next_hop_ = *mac;
  }
  spdlog::info("next hop MAC {} on {}", mac_text(next_hop_), g.interface);

  // Maps pinned under the interface's directory: adopted when present.
  pin_dir_ = g.pin_root + "/" + g.interface;
  adopted_ = std::filesystem::exists(pin_dir_ + "/vips");
  auto lb = dataplane::Balancer::load({.max_vips = g.limits.max_vips,
                                       .max_backends = g.limits.max_backends,
                                       .flows_per_cpu = g.limits.flows_per_cpu,
                                       .flow_table = g.flow_table,
                                       .pin_dir = pin_dir_});
  if (!lb) return lb.error();
  lb_ = std::move(*lb);
  spdlog::info("balancer maps {} under {}", adopted_ ? "adopted" : "created", pin_dir_);

  writer_ = std::make_unique<state::BalancerWriter>(*lb_);
  reconciler_ = std::make_unique<state::Reconciler>(
      *writer_, state::ReconcilerOptions{.max_vips = g.limits.max_vips,
                                         .max_backends = g.limits.max_backends});
  // Health checks start before the first reconcile: new checks are "pending" (counted as up)
  // until their first results, so a restart never drains a healthy service.
  auto monitor = health::Monitor::start([this] {
    std::lock_guard lock(health_mu_);
    health_changed_ = true;
    health_cv_.notify_one();
  });
  if (!monitor) return monitor.error();
  health_ = std::move(*monitor);
  health_thread_ = std::thread([this] { health_worker(); });
  if (adopted_) {
    auto snap = snapshot(*lb_);
    if (!snap) return snap.error();
    XLB_TRY(reconciler_->adopt(*snap));
    spdlog::info("adopted {} VIPs and {} backend entries from the pinned maps",
                 snap->vips.size(), snap->backends.size());
  }
  {
    std::lock_guard lock(mu_);
    XLB_TRY(apply_locked(config_.state, discovered_));
  }
  // Attach only once the maps hold the configuration, so the first packet already sees it.
  XLB_TRY(attach_or_upgrade());
  // Discovered backends join as their sources deliver (the configured state serves meanwhile).
  XLB_TRY(configure_discovery(discovery_config_));

  std::optional<std::string> token;
  if (g.api_token_file) {
    auto t = read_token(*g.api_token_file);
    if (!t) return t.error();
    token = *t;
  }
  auto server = api::Server::start(
      *this, {.socket_path = g.api_socket, .tcp_listen = g.api_tcp_listen, .token = token});
  if (!server) return server.error();
  api_ = std::move(*server);
  spdlog::info("API on {}{}", g.api_socket,
               g.api_tcp_listen ? " and " + *g.api_tcp_listen + " (token)" : "");
  if (!g.metrics_listen.empty()) {
    auto exporter = metrics::Exporter::start(g.metrics_listen, *this);
    if (!exporter) return exporter.error();
    metrics_ = std::move(*exporter);
    spdlog::info("metrics on http://{}/metrics", g.metrics_listen);
  }
  return {};
}

Status Daemon::attach_or_upgrade() {
  const auto& g = config_.global;
  const std::string link_path = pin_dir_ + "/link";
  if (std::filesystem::exists(link_path)) {
    auto link = dataplane::XdpAttachment::open_pinned(link_path);
    if (!link) return link.error();
    unsigned ifindex = if_nametoindex(g.interface.c_str());
    if (ifindex == 0 || static_cast<int>(ifindex) != link->ifindex()) {
      return Error::invalid("the XDP link pinned at " + link_path +
                            " belongs to another interface than " + g.interface +
                            "; remove the pins under " + pin_dir_ + " to start afresh");
    }
    auto before = link->prog_id();
    // The upgrade: one atomic swap of the program behind the link; the maps are shared.
    XLB_TRY(link->replace_program(lb_->prog_fd()));
    auto after = link->prog_id();
    spdlog::info("took over the XDP link on {}: program {} replaced by {}", g.interface,
                 before ? std::to_string(*before) : "?", after ? std::to_string(*after) : "?");
    link_ = std::move(*link);
    return {};
  }
  // A pinned link (rather than libxdp's dispatcher) is what lets a later xlbd take over.
  auto link = dataplane::XdpAttachment::attach(lb_->prog_fd(), g.interface, g.attach_mode,
                                               /*allow_dispatcher=*/false);
  if (!link) return link.error();
  XLB_TRY(link->pin(link_path));
  spdlog::info("attached to {} in {} mode ({}), link pinned at {}", g.interface,
               dataplane::to_string(link->mode()), dataplane::to_string(link->method()),
               link_path);
  link_ = std::move(*link);
  return {};
}

void Daemon::health_worker() {
  for (;;) {
    {
      std::unique_lock lock(health_mu_);
      health_cv_.wait(lock, [this] { return health_changed_ || health_stop_; });
      if (health_stop_) return;
      health_changed_ = false;
    }
    std::lock_guard lock(mu_);
    if (stopped_) return;
    (void)reconcile_locked(served_);  // errors are logged and counted there
  }
}

Status Daemon::apply_locked(const state::DesiredState& configured,
                            const discovery::Snapshot& discovered) {
  const auto& limits = config_.global.limits;
  auto merged = discovery::merge(configured, discovered, limits);
  XLB_TRY(state::validate(merged.state, limits.max_vips, limits.max_backends));
  XLB_TRY(reconcile_locked(merged.state));
  if (merged.notes != merge_notes_) {
    for (const auto& note : merged.notes) spdlog::warn("discovery: {}", note);
  }
  served_ = std::move(merged.state);
  merge_notes_ = std::move(merged.notes);
  if (&discovered != &discovered_) discovered_ = discovered;
  health_->set_targets(served_);
  return {};
}

Status Daemon::configure_discovery(const std::optional<discovery::DiscoveryConfig>& config) {
  std::lock_guard serial(discovery_mu_);
  std::shared_ptr<discovery::Discovery> running;
  {
    std::lock_guard lock(discovery_ptr_mu_);
    running = discovery_;
  }
  if (running && config) return running->reconfigure(*config);
  if (running) {
    // The section was removed: its entries leave the served state.
    running->stop();
    {
      std::lock_guard lock(discovery_ptr_mu_);
      discovery_.reset();
    }
    std::lock_guard lock(mu_);
    if (auto st = apply_locked(config_.state, discovery::Snapshot{}); !st) {
      return Error::invalid("discovery stopped, but removing its entries failed (" +
                            st.error().message + "); they stay until the next change");
    }
    spdlog::info("discovery stopped; its entries were removed");
    return {};
  }
  if (!config) return {};
  auto started = discovery::Discovery::start(*config, [this](const discovery::Update& u) {
    std::lock_guard lock(mu_);
    if (stopped_) return Status(Error::invalid("xlbd is stopping"));
    auto st = apply_locked(config_.state, u.discovered);
    if (st) {
      spdlog::info("discovery update {} applied: {} VIP(s) changed", u.generation,
                   u.changed.size());
    } else {
      spdlog::error("discovery update refused, the served state stays: {}",
                    st.error().to_string());
    }
    return st;
  });
  if (!started) return started.error();
  std::lock_guard lock(discovery_ptr_mu_);
  discovery_ = std::move(*started);
  spdlog::info("discovery started with {} source(s)", config->sources.size());
  return {};
}

Status Daemon::reconcile_locked(const state::DesiredState& desired) {
  const auto t0 = std::chrono::steady_clock::now();
  health::Filtered filtered{desired, {}};
  if (health_) filtered = health_->apply(desired);
  for (const auto& key : filtered.all_down) {
    spdlog::warn("every backend of {} is down: {}", key.to_string(),
                 state::to_string(desired.vips.at(key).all_down));
  }
  auto report = reconciler_->apply(filtered.state, state::to_abi(config_.global, next_hop_));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  reconcile_total_++;
  reconcile_seconds_sum_ += seconds;
  last_reconcile_seconds_ = seconds;
  if (!report) {
    reconcile_errors_++;
    last_error_ = report.error().to_string();
    spdlog::error("reconcile failed, previous state kept: {}", last_error_);
    return report.error();
  }
  last_error_.clear();
  if (report->vips_added || report->vips_removed || report->vips_changed ||
      report->backends_added || report->backends_removed || report->slots_changed ||
      report->config_changed) {
    spdlog::info(
        "reconciled in {:.3f} ms: VIPs +{} -{} ~{}, backends +{} -{}, {} slots changed, {} rings "
        "swapped{}",
        seconds * 1e3, report->vips_added, report->vips_removed, report->vips_changed,
        report->backends_added, report->backends_removed, report->slots_changed,
        report->rings_swapped, report->config_changed ? ", config written" : "");
  }
  return {};
}

Status Daemon::reload() {
  auto loaded = load_daemon_config(opts_.config_path);
  if (!loaded) {
    spdlog::error("reload: {}; the running configuration stays", loaded.error().to_string());
    return loaded.error();
  }
  if (opts_.interface_override) loaded->config.global.interface = *opts_.interface_override;
  auto fixed = reload_locked(loaded->config);
  if (!fixed) return fixed.error();
  // Sources follow once the new configured state is served; their changes arrive as updates.
  {
    std::lock_guard lock(mu_);
    discovery_config_ = loaded->discovery;
  }
  if (auto st = configure_discovery(loaded->discovery); !st) {
    spdlog::error("reload: discovery: {}", st.error().to_string());
    return st;
  }
  spdlog::info("reloaded {}", opts_.config_path);
  if (!fixed->empty()) {
    std::string names;
    for (const auto& f : *fixed) names += (names.empty() ? "" : ", ") + f;
    return Error::invalid("reloaded, but these settings need a restart of xlbd: " + names);
  }
  return {};
}

Result<std::vector<std::string>> Daemon::reload_locked(const state::Config& loaded) {
  std::lock_guard lock(mu_);
  auto fixed = restart_only_changes(config_.global, loaded.global);
  state::GlobalConfig next = loaded.global;
  if (!fixed.empty()) {
    // Keep the running values of what cannot change without a restart.
    next.interface = config_.global.interface;
    next.attach_mode = config_.global.attach_mode;
    next.limits = config_.global.limits;
    next.flow_table = config_.global.flow_table;
    next.pin_root = config_.global.pin_root;
    next.api_socket = config_.global.api_socket;
    next.api_tcp_listen = config_.global.api_tcp_listen;
    next.api_token_file = config_.global.api_token_file;
    next.metrics_listen = config_.global.metrics_listen;
  }
  // The file was checked against its own limits; the running ones are what count.
  const auto previous_next_hop = next_hop_;
  if (next.next_hop_mac) next_hop_ = *next.next_hop_mac;
  state::GlobalConfig previous = config_.global;
  config_.global = next;
  if (auto st = apply_locked(loaded.state, discovered_); !st) {
    config_.global = previous;
    next_hop_ = previous_next_hop;
    spdlog::error("reload: {}; the running configuration stays", st.error().to_string());
    return st.error();
  }
  config_.state = loaded.state;
  return fixed;
}

void Daemon::stop() {
  {
    std::lock_guard lock(health_mu_);
    health_stop_ = true;
    health_cv_.notify_one();
  }
  if (health_thread_.joinable()) health_thread_.join();
  if (health_) health_->stop();
  {
    std::lock_guard serial(discovery_mu_);
    std::shared_ptr<discovery::Discovery> running;
    {
      std::lock_guard lock(discovery_ptr_mu_);
      running = std::move(discovery_);
    }
    if (running) running->stop();  // outside mu_: stop() waits for a running callback
  }
  std::lock_guard lock(mu_);
  if (stopped_) return;
  stopped_ = true;
  api_.reset();
  metrics_.reset();
  if (opts_.detach_on_exit && link_) {
    if (auto st = link_->detach(); !st) spdlog::error("detach: {}", st.error().to_string());
    link_.reset();
    std::error_code ec;
    std::filesystem::remove_all(pin_dir_, ec);
    spdlog::info("detached from {} and removed the pins under {}", config_.global.interface,
                 pin_dir_);
  } else if (link_) {
    spdlog::info("exiting; the data plane keeps forwarding on {} (pinned under {})",
                 config_.global.interface, pin_dir_);
  }
}

Daemon::~Daemon() { stop(); }

Result<state::StatusView> Daemon::status() {
  std::lock_guard lock(mu_);
  state::StatusView s;
  s.version = XLB_VERSION;
  s.interface = config_.global.interface;
  if (link_) {
    s.attach_mode = dataplane::to_string(link_->mode());
    s.attach_method = dataplane::to_string(link_->method());
    auto id = link_->prog_id();
    if (id) s.prog_id = *id;
  }
  s.pin_dir = pin_dir_;
  s.adopted = adopted_;
  s.uptime_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  s.config_file = opts_.config_path;
  s.reconcile_total = reconcile_total_;
  s.reconcile_errors = reconcile_errors_;
  s.reconcile_seconds_sum = reconcile_seconds_sum_;
  s.last_reconcile_seconds = last_reconcile_seconds_;
  s.last_error = last_error_;
  std::shared_ptr<discovery::Discovery> d;
  {
    std::lock_guard ptr_lock(discovery_ptr_mu_);
    d = discovery_;
  }
  if (d && discovery_config_) {
    state::DiscoveryView v;
    v.debounce_ms = discovery_config_->debounce_ms;
    auto stats = d->stats();
    v.generation = stats.generation;
    v.update_errors = stats.engine.update_errors;
    v.last_error = stats.engine.last_error;
    v.events_accepted = stats.engine.events_accepted;
    v.events_rejected = stats.engine.events_rejected;
    v.queued_events = stats.queued_events;
    v.discovered_vips = discovered_.vips.size();
    for (const auto& [key, vip] : discovered_.vips) v.discovered_backends += vip.backends.size();
    v.merge_notes = merge_notes_;
    for (const auto& src : d->sources()) v.sources.push_back(source_view(src));
    s.discovery = std::move(v);
  }
  return s;
}

Result<std::vector<state::VipView>> Daemon::vips() {
  std::lock_guard lock(mu_);
  std::map<std::pair<state::VipKey, IpAddress>, const health::BackendHealth*> health;
  health::HealthSnapshot snap;
  if (health_) snap = health_->snapshot();
  for (const auto& h : snap.backends) health[{h.vip, h.backend}] = &h;
  std::vector<state::VipView> out;
  for (const auto& [key, spec] : served_.vips) {
    state::VipView v;
    v.spec = spec;
    const state::AppliedVip* applied = reconciler_->applied_vip(key);
    if (applied) {
      v.index = applied->index;
      v.ring_size = applied->ring_size;
      auto t = lb_->vip_traffic(applied->index);
      if (!t) return t.error();
      v.packets = t->packets;
      v.bytes = t->bytes;
    }
    for (const auto& b : spec.backends) {
      state::BackendView bv;
      bv.spec = b;
      if (auto it = health.find({key, b.address}); it != health.end()) {
        const health::BackendHealth& h = *it->second;
        bv.health.check = std::string(state::to_string(h.type));
        bv.health.state = std::string(health::to_string(h.health));
        bv.health.up = h.up;
        bv.health.weight_factor = h.weight_factor;
        bv.health.last_result = h.last_result;
        bv.health.since_unix = std::chrono::duration<double>(h.since.time_since_epoch()).count();
        bv.health.rise_progress = h.rise_progress;
        bv.health.fall_progress = h.fall_progress;
        bv.health.rise = h.rise;
        bv.health.fall = h.fall;
        bv.health.checks = h.checks;
        bv.health.failures = h.failures;
        bv.health.transitions = h.transitions;
        if (h.type != state::CheckType::kNone) bv.health.target = h.target.to_string();
        bv.health.interval_ms = h.interval_ms;
        bv.health.timeout_ms = h.timeout_ms;
      }
      if (applied) {
        for (const auto& ab : applied->backends) {
          if (!(ab.address == b.address)) continue;
          bv.index = ab.index;
          bv.effective_weight = ab.weight;
          bv.slots = static_cast<uint32_t>(
              std::count(applied->ring.begin(), applied->ring.end(), ab.index));
          auto t = lb_->backend_traffic(ab.index);
          if (!t) return t.error();
          bv.packets = t->packets;
          bv.bytes = t->bytes;
        }
      }
      v.backends.push_back(std::move(bv));
    }
    out.push_back(std::move(v));
  }
  return out;
}

Result<state::DesiredState> Daemon::desired() {
  std::lock_guard lock(mu_);
  return served_;
}

Status Daemon::mutate(const std::function<Status(state::DesiredState&)>& change) {
  std::lock_guard lock(mu_);
  state::DesiredState next = config_.state;
  XLB_TRY(change(next));
  for (auto& [key, vip] : next.vips) {
    std::sort(vip.backends.begin(), vip.backends.end(),
              [](const auto& a, const auto& b) { return a.address < b.address; });
  }
  XLB_TRY(state::validate(next, config_.global.limits.max_vips,
                          config_.global.limits.max_backends));
  XLB_TRY(apply_locked(next, discovered_));
  config_.state = std::move(next);
  return {};
}

Result<maglev::Plan> Daemon::plan(const state::VipKey& vip,
                                  const std::vector<state::BackendSpec>& proposed) {
  std::lock_guard lock(mu_);
  auto it = served_.vips.find(vip);
  if (it == served_.vips.end()) return Error::invalid("no VIP " + vip.to_string());
  auto to_maglev = [](const std::vector<state::BackendSpec>& specs) {
    std::vector<maglev::Backend> out;
    uint32_t i = 0;
    for (const auto& b : specs) {
      out.push_back({.id = b.address.to_string(), .weight = state::effective_weight(b), .index = i++});
    }
    return out;
  };
  const state::AppliedVip* applied = reconciler_->applied_vip(vip);
  uint32_t ring_size = applied ? applied->ring_size : 0;
  if (ring_size == 0) {
    auto size = maglev::choose_ring_size(std::max(it->second.backends.size(), proposed.size()),
                                         it->second.ring_size);
    if (!size) return size.error();
    ring_size = size->size;
  }
  return maglev::plan(to_maglev(it->second.backends), to_maglev(proposed), ring_size,
                      config_.global.hash_seed);
}

Result<state::LookupView> Daemon::lookup(const state::VipKey& vip, const Endpoint& client) {
  std::lock_guard lock(mu_);
  // `vip` carries the flow's destination port; a port-less VIP serves it when no VIP has that
  // port (the data plane's fallback), and the port stays in the hash.
  const state::AppliedVip* applied = reconciler_->applied_vip(vip);
  if (!applied && vip.port != 0) {
    state::VipKey any = vip;
    any.port = 0;
    applied = reconciler_->applied_vip(any);
  }
  if (!applied) return Error::invalid("no VIP " + vip.to_string());
  if (client.address.family() != vip.address.family()) {
    return Error::invalid("the client and the VIP are of different address families");
  }
  xlb_flow_key key = dataplane::make_flow_key(client.address, client.port, vip.address, vip.port,
                                              static_cast<uint8_t>(vip.protocol));
  auto placed = lb_->flow_to_backend(key);
  if (!placed) return placed.error();
  for (const auto& b : applied->backends) {
    if (b.index == placed->backend_index) {
      return state::LookupView{b.address, b.index, placed->from_table};
    }
  }
  return Error::invalid("the flow maps to backend index " +
                        std::to_string(placed->backend_index) +
                        ", which belongs to no backend of " + vip.to_string() +
                        " (an empty ring slot: no backend with a positive weight)");
}

Result<xlb_counters> Daemon::counters() {
  std::lock_guard lock(mu_);
  return lb_->counters();
}

Result<state::PushView> Daemon::push_events(std::string_view body) {
  std::shared_ptr<discovery::Discovery> d;
  {
    std::lock_guard lock(discovery_ptr_mu_);
    d = discovery_;
  }
  if (!d) {
    return Error::from_errno(ENOTSUP,
                             "discovery is not configured: add a discovery section with a source "
                             "of type push and reload (docs/discovery.md)");
  }
  auto reply = d->push(body);
  if (!reply) {
    auto reason = discovery::reject_of(reply.error());
    return Error::invalid(std::string(reason ? discovery::to_string(*reason) : "rejected") +
                          ": " + reply.error().message);
  }
  state::PushView v{.source = reply->source, .replace = reply->replace,
                    .accepted = reply->accepted, .rejected = {}};
  for (const auto& r : reply->rejected) {
    v.rejected.push_back({r.index, std::string(discovery::to_string(r.reason)), r.message});
  }
  return v;
}

}  // namespace xlb::daemon
