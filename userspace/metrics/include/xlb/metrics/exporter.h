// SPDX-License-Identifier: Apache-2.0
// Exporter: the Prometheus endpoint of xlbd (GET /metrics, text format 0.0.4).
//
// Nothing is cached: every scrape reads the ControlPlane (status, VIPs with their backends,
// global data-plane counters), so values never go stale, and the data plane's counters, which
// live in pinned maps and survive daemon restarts, are exported exactly as they are. A failing
// ControlPlane call does not fail the scrape: it shows as xlb_up 0 and
// xlb_scrape_errors_total{source}. The metric list is documented in src/collector.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "xlb/core/result.h"
#include "xlb/state/control_plane.h"

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace xlb::metrics {

class Exporter {
 public:
  // Serves GET /metrics on `listen`: "IPv4:PORT" or "[IPv6]:PORT" (port 0 = any free port).
  // `cp` must outlive the Exporter. Fails (no exception) when the address is malformed or
  // cannot be bound, e.g. when the port is in use.
  static Result<std::unique_ptr<Exporter>> start(const std::string& listen,
                                                 state::ControlPlane& cp);

  // Stops the HTTP server; no scrape runs after it returns. Takes up to 2 s once a request was
  // served: civetweb polls for connections with a 2 s timeout and checks for shutdown between.
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  std::vector<uint16_t> ports() const;  // the bound port(s)

 private:
  Exporter(std::shared_ptr<prometheus::Collectable> collector,
           std::unique_ptr<prometheus::Exposer> exposer);

  // Declared before exposer_ so that the server stops before the collector goes away.
  std::shared_ptr<prometheus::Collectable> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace xlb::metrics
