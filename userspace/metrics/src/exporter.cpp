// SPDX-License-Identifier: Apache-2.0
#include "xlb/metrics/exporter.h"

#include <CivetServer.h>
#include <prometheus/exposer.h>

#include <charconv>
#include <exception>
#include <string_view>
#include <utility>

#include "collector.h"
#include "xlb/core/address.h"

namespace xlb::metrics {
namespace {

// Worker threads of the HTTP server: scrapes are rare and cheap; two let one stuck client not
// block Prometheus.
constexpr size_t kServerThreads = 2;

// civetweb reports why it could not bind only through its log hook, which has no user pointer.
// The server is created on the calling thread, so a thread-local pointer catches the message
// of that thread alone; on civetweb's own threads it is null and civetweb logs as usual.
thread_local std::string* start_log = nullptr;

// Points start_log at a string while the server starts.
class StartLogCapture {
 public:
  explicit StartLogCapture(std::string* log) { start_log = log; }
  ~StartLogCapture() { start_log = nullptr; }
  StartLogCapture(const StartLogCapture&) = delete;
  StartLogCapture& operator=(const StartLogCapture&) = delete;
};

int capture_log(const mg_connection*, const char* message) {
  if (start_log == nullptr) return 0;
  if (start_log->empty()) *start_log = message;  // the first message names the cause
  return 1;
}

const CivetCallbacks& server_callbacks() {
  static const CivetCallbacks callbacks = [] {
    CivetCallbacks c;
    c.log_message = &capture_log;
    return c;
  }();
  return callbacks;
}

// civetweb says "cannot bind to 127.0.0.1:9475: 98 (Address already in use)": keep the errno
// so that callers see a real error code; anything else is reported verbatim.
Error bind_error(const std::string& where, std::string_view log) {
  const std::string what = "metrics: cannot serve on " + where;
  auto open = log.rfind(" (");
  auto colon = log.rfind(": ", open);
  if (open != std::string_view::npos && colon != std::string_view::npos) {
    int err = 0;
    const char* first = log.data() + colon + 2;
    const char* last = log.data() + open;
    auto [ptr, ec] = std::from_chars(first, last, err);
    if (ec == std::errc() && ptr == last && err > 0) return Error::from_errno(err, what);
  }
  return Error::invalid(what + ": " +
                        (log.empty() ? "the HTTP server did not start" : std::string(log)));
}

}  // namespace

Exporter::Exporter(std::shared_ptr<prometheus::Collectable> collector,
                   std::unique_ptr<prometheus::Exposer> exposer)
    : collector_(std::move(collector)), exposer_(std::move(exposer)) {}

Exporter::~Exporter() = default;

Result<std::unique_ptr<Exporter>> Exporter::start(const std::string& listen,
                                                  state::ControlPlane& cp) {
  // Parsed here rather than handed to civetweb as is: its listening_ports syntax also takes
  // lists, SSL and redirect suffixes, none of which metrics_listen should be able to ask for.
  auto endpoint = Endpoint::parse(listen);
  if (!endpoint) return Error::invalid("metrics listen address " + endpoint.error().message);
  const std::string where = endpoint->to_string();

  auto collector = std::make_shared<Collector>(cp);
  std::string log;
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    StartLogCapture capture(&log);
    exposer = std::make_unique<prometheus::Exposer>(where, kServerThreads, &server_callbacks());
    exposer->RegisterCollectable(collector);
  } catch (const std::exception&) {
    // prometheus-cpp throws when civetweb fails to start, with a message that does not say why.
    return bind_error(where, log);
  }
  return std::unique_ptr<Exporter>(new Exporter(std::move(collector), std::move(exposer)));
}

std::vector<uint16_t> Exporter::ports() const {
  std::vector<uint16_t> ports;
  for (int port : exposer_->GetListeningPorts()) ports.push_back(static_cast<uint16_t>(port));
  return ports;
}

}  // namespace xlb::metrics
