// SPDX-License-Identifier: Apache-2.0
// Collector: turns what the ControlPlane reports into Prometheus metric families, at scrape
// time. Everything xlbd exports is listed here.
//
// Always:
//   xlb_up                                   gauge    1 if every read below succeeded, else 0
//   xlb_scrape_errors_total{source}          counter  failed reads; source=status|vips|counters
// From status():
//   xlb_info{version,interface,attach_mode,attach_method}  gauge  1
//   xlb_uptime_seconds                       gauge
//   xlb_reconcile_total                      counter
//   xlb_reconcile_errors_total               counter
//   xlb_reconcile_duration_seconds           summary  _sum and _count only (no quantiles)
//   xlb_last_reconcile_seconds               gauge    duration of the latest reconcile
// From vips() (the name label only on VIPs that have a name):
//   xlb_vip_packets_total{vip,name}          counter
//   xlb_vip_bytes_total{vip,name}            counter
//   xlb_vip_ring_size{vip,name}              gauge    slots of the VIP's Maglev ring
//   xlb_backend_packets_total{vip,backend}   counter
//   xlb_backend_bytes_total{vip,backend}     counter
//   xlb_backend_weight{vip,backend}          gauge    configured weight
//   xlb_backend_effective_weight{vip,backend}  gauge  weight in the ring now (0 unless active)
//   xlb_backend_slots{vip,backend}           gauge    ring slots owned (share = slots/ring size)
//   xlb_backend_state{vip,backend,state}     gauge    1 for the current state, 0 for the others
//                                                     of active|draining|disabled
// From counters(), one series per XLB_COUNTERS entry of abi.h, grouped by the metric name's
// prefix so that related series share a family and sum() over a label makes sense:
//   xdp_<action>   -> xlb_xdp_actions_total{action="<action>"}  (every XDP verdict, pass|tx|drop)
//   drop_<reason>  -> xlb_drops_total{reason="<reason>"}        (drops the balancer decided;
//                     policy drops of fragments and IP options count in their own counters)
//   anything else  -> xlb_<metric>_total                        (e.g. xlb_lru_hit_total)
// A new entry in XLB_COUNTERS shows up without any change here.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "xlb/state/control_plane.h"

namespace xlb::metrics {

class Collector final : public prometheus::Collectable {
 public:
  explicit Collector(state::ControlPlane& cp) : cp_(cp) {}

  // Called by the HTTP server's worker threads, possibly concurrently. Never throws.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  enum Source : size_t { kStatus, kVips, kCounters, kSourceCount };

  // The value of `read_fn()`, or nullopt (counted in errors_) when it fails.
  template <typename T, typename ReadFn>
  std::optional<T> read(Source source, ReadFn read_fn) const;

  state::ControlPlane& cp_;
  mutable std::array<std::atomic<uint64_t>, kSourceCount> errors_{};
};

}  // namespace xlb::metrics
