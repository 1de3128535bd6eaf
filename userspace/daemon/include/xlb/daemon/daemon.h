// SPDX-License-Identifier: Apache-2.0
// Daemon: one running xlbd. Wires the configuration, the data plane (loaded, or adopted from
// pinned maps and link), the reconciler, the local API and the metrics exporter, and is the
// ControlPlane they all go through: one lock around desired state, reconciler and maps.
//
// Start-up: parse the config; load the balancer program with its maps pinned under
// <pin_root>/<interface> (maps already there are adopted: connection table, rings, counters
// survive); attach it with a pinned bpf_link, or, when a pinned link exists, swap the new
// program into it atomically (hitless upgrade: the old program runs until the swap, and both
// use the same maps); rebuild the reconciler's view from the maps; reconcile to the config.
// Exit leaves the data plane forwarding, unless detach_on_exit.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "xlb/dataplane/attach.h"
#include "xlb/discovery/config.h"
#include "xlb/discovery/store.h"
#include "xlb/dataplane/balancer.h"
#include "xlb/state/config.h"
#include "xlb/state/control_plane.h"
#include "xlb/state/reconciler.h"

namespace xlb::api {
class Server;
}
namespace xlb::metrics {
class Exporter;
}
namespace xlb::health {
class Monitor;
}
namespace xlb::discovery {
class Discovery;
}
namespace xlb::state {
class BalancerWriter;
}

namespace xlb::daemon {

struct DaemonOptions {
  std::string config_path;
  std::optional<std::string> interface_override;
  bool detach_on_exit = false;
};

// The whole configuration file: the state module's part and the `discovery:` section, parsed
// and checked together (all or nothing, errors as FILE:LINE:COL). `xlbd --check-config` is this.
struct DaemonConfig {
  state::Config config;
  std::optional<discovery::DiscoveryConfig> discovery;  // absent: no discovery section
};
Result<DaemonConfig> load_daemon_config(const std::string& path);

class Daemon final : public state::ControlPlane {
 public:
  static Result<std::unique_ptr<Daemon>> start(const DaemonOptions& opts);
  ~Daemon() override;

  // SIGHUP: re-reads the config file and applies it. Settings that need a restart (interface,
  // attach mode, limits, flow table layout, pin root, API and metrics listeners) keep their
  // running values; the error names them.
  Status reload();
  // Stops API and metrics; detaches and unpins the data plane only with detach_on_exit.
  void stop();

  // ControlPlane
  Result<state::StatusView> status() override;
  Result<std::vector<state::VipView>> vips() override;
  Result<state::DesiredState> desired() override;
  Status mutate(const std::function<Status(state::DesiredState&)>& change) override;
  Result<maglev::Plan> plan(const state::VipKey& vip,
                            const std::vector<state::BackendSpec>& proposed) override;
  Result<state::LookupView> lookup(const state::VipKey& vip, const Endpoint& client) override;
  Result<xlb_counters> counters() override;
  Result<state::PushView> push_events(std::string_view body) override;

 private:
  Daemon() = default;
  Status init(const DaemonOptions& opts);
  Status attach_or_upgrade();
  // The state half of reload(): global settings and configured state, applied all or nothing.
  // Returns the settings that kept their running values (they need a restart).
  Result<std::vector<std::string>> reload_locked(const state::Config& loaded);
  // The one path of every change: merges the configured state with what discovery found
  // (discovery::merge), validates the result against the running limits and reconciles it.
  // All or nothing: on success served_, discovered_ and the health targets follow; on error
  // nothing changed.
  Status apply_locked(const state::DesiredState& configured,
                      const discovery::Snapshot& discovered);
  // Reconciles to `desired`, with health applied (down backends weight 0, slow start), and
  // the current global config; updates the reconcile statistics.
  Status reconcile_locked(const state::DesiredState& desired);
  // Starts, reconfigures or stops discovery to match `config` (never with mu_ held: the
  // discovery callback takes it).
  Status configure_discovery(const std::optional<discovery::DiscoveryConfig>& config);
  // Runs on its own thread: reconciles whenever health checks changed a backend's weight, so
  // the checks' event loop never waits for map writes.
  void health_worker();

  std::mutex mu_;
  DaemonOptions opts_;
  state::Config config_;  // config_.state: the configured state (file + API edits)
  // What discovery found (last update applied) and what is served: merge(configured, found).
  discovery::Snapshot discovered_;
  state::DesiredState served_;
  std::vector<std::string> merge_notes_;
  std::optional<discovery::DiscoveryConfig> discovery_config_;
  // Readers copy the pointer under discovery_ptr_mu_ and call it without any lock (its
  // queries never wait for the callback); configure_discovery() is serialised by
  // discovery_mu_ and never runs with mu_ held (stopping waits for the callback, which takes mu_).
  std::shared_ptr<discovery::Discovery> discovery_;
  std::mutex discovery_ptr_mu_;
  std::mutex discovery_mu_;
  std::array<uint8_t, 6> next_hop_{};
  std::string pin_dir_;
  bool adopted_ = false;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point started_;
  std::unique_ptr<dataplane::Balancer> lb_;
  std::optional<dataplane::XdpAttachment> link_;
  std::unique_ptr<state::BalancerWriter> writer_;
  std::unique_ptr<state::Reconciler> reconciler_;
  std::unique_ptr<api::Server> api_;
  std::unique_ptr<metrics::Exporter> metrics_;
  std::unique_ptr<health::Monitor> health_;
  std::thread health_thread_;
  std::mutex health_mu_;
  std::condition_variable health_cv_;
  bool health_changed_ = false;  // guarded by health_mu_
  bool health_stop_ = false;     // guarded by health_mu_
  uint64_t reconcile_total_ = 0, reconcile_errors_ = 0;
  double reconcile_seconds_sum_ = 0, last_reconcile_seconds_ = 0;
  std::string last_error_;
};

// The MAC of the default IPv4 gateway on `ifname`, from the kernel's route and neighbour
// tables; asks the kernel to resolve it (one UDP datagram to the gateway's discard port) when
// the neighbour entry is missing.
Result<std::array<uint8_t, 6>> resolve_next_hop_mac(const std::string& ifname);

// Reads what the balancer's maps hold, for Reconciler::adopt().
Result<state::DataplaneSnapshot> snapshot(const dataplane::Balancer& lb);

}  // namespace xlb::daemon
