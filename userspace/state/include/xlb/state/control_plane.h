// SPDX-License-Identifier: Apache-2.0
// ControlPlane: what the local API and the metrics exporter see of a running xlbd. The daemon
// implements it (one lock around desired state, reconciler and data plane); API and metrics
// tests use fakes. Every call is safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xlb/abi.h"
#include "xlb/core/address.h"
#include "xlb/core/result.h"
#include "xlb/maglev/maglev.h"
#include "xlb/state/types.h"

namespace xlb::state {

// A backend's health as the checks see it (issue "health"; docs/health.md).
struct HealthView {
  std::string check = "none";      // check type
  std::string state = "unchecked";  // unchecked / pending / up / down
  bool up = true;                  // unchecked and pending count as up
  double weight_factor = 1.0;      // 0 down, 1 up, in between during slow start
  std::string last_result;         // the last check's outcome
  double since_unix = 0;           // last change of `state`, seconds since the epoch
  uint32_t rise_progress = 0, fall_progress = 0, rise = 0, fall = 0;
  uint64_t checks = 0, failures = 0, transitions = 0;
  // Where and how often this backend is checked (its VIP's spec with its own override).
  std::string target;  // "198.18.3.11:80"; empty when unchecked
  uint32_t interval_ms = 0, timeout_ms = 0;
};

struct BackendView {
  BackendSpec spec;
  HealthView health;
  std::optional<uint32_t> index;  // backends map index, once applied
  uint32_t effective_weight = 0;  // the weight in the ring now
  uint32_t slots = 0;             // ring slots it owns
  uint64_t packets = 0;           // since the maps were created (survive restarts)
  uint64_t bytes = 0;
};

struct VipView {
  VipSpec spec;
  std::optional<uint32_t> index;  // VIP index, once applied
  uint32_t ring_size = 0;
  std::vector<BackendView> backends;  // same order as spec.backends
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

// One service-discovery source (docs/discovery.md). `state`: starting, connected, stale (cannot
// reach its registry: its last good entries stay in service) or error (reached but unusable).
struct DiscoverySourceView {
  std::string name;
  std::string type;  // files / etcd / push
  int priority = 0;
  std::string state;
  std::string detail;                   // why stale or error; the endpoint when connected
  std::optional<int64_t> revision;      // etcd: last revision applied
  std::optional<double> last_good_unix;  // last time it was known current
  uint64_t events_applied = 0, events_rejected = 0;
  std::map<std::string, uint64_t> rejected_by_reason;  // reason name -> count (non-zero only)
  std::string last_rejection;
  uint64_t stale_total = 0, reconnects_total = 0, resyncs_total = 0, full_resyncs_total = 0;
  std::vector<std::string> problems;  // files: broken files that are ignored
};

struct DiscoveryView {
  uint32_t debounce_ms = 0;
  uint64_t generation = 0;     // successful updates applied to the data plane
  uint64_t update_errors = 0;  // updates refused (validation, maps): retried with back-off
  std::string last_error;      // of the last refused update, empty after a success
  uint64_t events_accepted = 0, events_rejected = 0;
  size_t queued_events = 0;
  size_t discovered_vips = 0, discovered_backends = 0;  // in the last applied update
  // What merging left out or overrode in the last update (name taken, limits, config wins).
  std::vector<std::string> merge_notes;
  std::vector<DiscoverySourceView> sources;
};

// The answer to POST /v1/events: with any rejection nothing was queued.
struct PushView {
  struct Rejection {
    size_t index = 0;    // position in "events"
    std::string reason;  // e.g. bad_weight
    std::string message;
  };
  std::string source;
  bool replace = false;
  size_t accepted = 0;
  std::vector<Rejection> rejected;
};

struct StatusView {
  std::string version;         // xlbd build version
  std::string interface;
  std::string attach_mode;     // native / generic
  std::string attach_method;   // bpf_link / libxdp-dispatcher
  uint32_t prog_id = 0;
  std::string pin_dir;
  bool adopted = false;        // maps and link were taken over from an earlier xlbd
  double uptime_seconds = 0;
  std::string config_file;
  uint64_t reconcile_total = 0;
  uint64_t reconcile_errors = 0;
  double reconcile_seconds_sum = 0;  // with reconcile_total: a Prometheus summary
  double last_reconcile_seconds = 0;
  std::string last_error;      // last failed reconcile, empty if none
  std::optional<DiscoveryView> discovery;  // absent: no discovery section configured
};

struct LookupView {
  IpAddress backend;
  uint32_t backend_index = 0;
  bool from_table = false;  // the connection table holds the flow; else the ring decides
};

class ControlPlane {
 public:
  virtual ~ControlPlane() = default;

  virtual Result<StatusView> status() = 0;
  // Every VIP with its backends and counters, sorted by key.
  virtual Result<std::vector<VipView>> vips() = 0;
  virtual Result<DesiredState> desired() = 0;
  // Transactional change: `change` edits a copy of the desired state; the result is validated
  // and reconciled. On any error (from `change`, validation or the maps) nothing changes and
  // the error is returned.
  virtual Status mutate(const std::function<Status(DesiredState&)>& change) = 0;
  // What `proposed` backends would do to the VIP's ring, without changing anything.
  virtual Result<maglev::Plan> plan(const VipKey& vip,
                                    const std::vector<BackendSpec>& proposed) = 0;
  // The backend that serves the flow `client` -> vip now (what the data plane does).
  virtual Result<LookupView> lookup(const VipKey& vip, const Endpoint& client) = 0;
  // Global counters of the data plane, summed over CPUs.
  virtual Result<xlb_counters> counters() = 0;
  // POST /v1/events: queues a push body's events for the discovery module (applied within the
  // debounce window). Errors: invalid argument = a body-level problem (not JSON, unknown
  // source...; the message starts with the reason); operation_not_supported = no push source
  // is configured. Per-event problems are in the reply, and then nothing was queued.
  virtual Result<PushView> push_events(std::string_view body) = 0;
};

}  // namespace xlb::state
