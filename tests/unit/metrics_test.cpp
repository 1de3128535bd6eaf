// SPDX-License-Identifier: Apache-2.0
// The metrics exporter over real HTTP on 127.0.0.1, against a fake ControlPlane: every family
// with its exact labels and values, fresh values on every scrape, ControlPlane failures as
// xlb_up 0, and bind failures as clear errors.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "xlb/abi.h"
#include "xlb/metrics/exporter.h"

namespace xlb::metrics {
namespace {

using Labels = std::map<std::string, std::string>;

IpAddress ip(std::string_view text) { return *IpAddress::parse(text); }
state::VipKey vip_key(std::string_view text) { return *state::VipKey::parse(text); }

// ---- Fake ControlPlane --------------------------------------------------------------------------

// What the fake reports; tests edit it through FakeControlPlane::update.
struct FakeState {
  state::StatusView status;
  std::vector<state::VipView> vips;
  xlb_counters counters{};
  bool fail_status = false;
  bool fail_vips = false;
  bool fail_counters = false;

  void fail_all(bool fail) { fail_status = fail_vips = fail_counters = fail; }
};

state::BackendView backend(std::string_view address, uint32_t weight, state::BackendState st,
                           uint32_t effective, uint32_t slots, uint64_t packets, uint64_t bytes) {
  state::BackendView b;
  b.spec = {.address = ip(address), .weight = weight, .state = st};
  b.index = 0;
  b.effective_weight = effective;
  b.slots = slots;
  b.packets = packets;
  b.bytes = bytes;
  return b;
}

// Two VIPs (IPv4 named, IPv6 unnamed), three backends, one of each state.
FakeState initial_state() {
  FakeState s;
  s.status.version = "0.1.0-test";
  s.status.interface = "eth1";
  s.status.attach_mode = "native";
  s.status.attach_method = "bpf_link";
  s.status.uptime_seconds = 12.5;
  s.status.reconcile_total = 7;
  s.status.reconcile_errors = 2;
  s.status.reconcile_seconds_sum = 0.35;
  s.status.last_reconcile_seconds = 0.05;

  state::VipView web;
  web.spec.key = vip_key("198.18.200.1:80/tcp");
  web.spec.name = "web";
  web.index = 0;
  web.ring_size = 65537;
  web.packets = 1000;
  web.bytes = 64000;
  web.backends = {
      backend("198.19.0.1", 3, state::BackendState::kActive, 3, 65537, 900, 57600),
      backend("198.19.0.2", 2, state::BackendState::kDraining, 0, 0, 100, 6400),
  };
  web.spec.backends = {web.backends[0].spec, web.backends[1].spec};

  state::VipView dns;
  dns.spec.key = vip_key("[2001:db8:200::1]:443/udp");
  dns.index = 1;
  dns.ring_size = 307;
  dns.packets = 5;
  dns.bytes = 1ULL << 40;  // beyond 32 bits: no truncation on the way
  dns.backends = {
      backend("2001:db8:1::1", 1, state::BackendState::kDisabled, 0, 0, 5, 1ULL << 40),
  };
  dns.spec.backends = {dns.backends[0].spec};

  s.vips = {web, dns};
  s.counters.c[XLB_CNT_XDP_PASS] = 11;
  s.counters.c[XLB_CNT_XDP_TX] = 1005;
  s.counters.c[XLB_CNT_XDP_DROP] = 4;
  s.counters.c[XLB_CNT_LRU_HIT] = 990;
  s.counters.c[XLB_CNT_DROP_MALFORMED] = 3;
  s.counters.c[XLB_CNT_DROP_NO_BACKEND] = 1;
  return s;
}

class FakeControlPlane : public state::ControlPlane {
 public:
  FakeControlPlane() : state_(initial_state()) {}

  void update(const std::function<void(FakeState&)>& change) {
    std::lock_guard lock(mu_);
    change(state_);
  }

  Result<state::StatusView> status() override {
    std::lock_guard lock(mu_);
    if (state_.fail_status) return Error::invalid("fake: status unavailable");
    return state_.status;
  }
  Result<std::vector<state::VipView>> vips() override {
    std::lock_guard lock(mu_);
    if (state_.fail_vips) return Error::invalid("fake: VIPs unavailable");
    return state_.vips;
  }
  Result<xlb_counters> counters() override {
    std::lock_guard lock(mu_);
    if (state_.fail_counters) return Error::from_errno(EIO, "fake: counters unreadable");
    return state_.counters;
  }
  // Not read by the exporter.
  Result<state::DesiredState> desired() override { return Error::invalid("fake: unused"); }
  Status mutate(const std::function<Status(state::DesiredState&)>&) override {
    return Error::invalid("fake: unused");
  }
  Result<maglev::Plan> plan(const state::VipKey&, const std::vector<state::BackendSpec>&) override {
    return Error::invalid("fake: unused");
  }
  Result<state::LookupView> lookup(const state::VipKey&, const Endpoint&) override {
    return Error::invalid("fake: unused");
  }
  Result<state::PushView> push_events(std::string_view) override {
    return Error::invalid("fake: unused");
  }

 private:
  std::mutex mu_;
  FakeState state_;
};

// ---- HTTP and text-format parsing ---------------------------------------------------------------

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Scrape {
  int http_status = 0;
  std::string content_type;
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // # TYPE lines: family -> type
  std::map<std::string, std::string> helps;  // # HELP lines

  std::vector<Sample> series(std::string_view name) const {
    std::vector<Sample> out;
    for (const auto& s : samples) {
      if (s.name == name) out.push_back(s);
    }
    return out;
  }
  // The value of the sample with exactly these labels.
  std::optional<double> value(std::string_view name, const Labels& labels = {}) const {
    for (const auto& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nullopt;
  }
};

// Plain HTTP/1.0 over a socket: the server closes the connection after the response.
std::optional<std::string> http_get(uint16_t port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval timeout{.tv_sec = 5, .tv_usec = 0};  // a hung server fails the test, not the run
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, n);
    }
  }
  close(fd);
  if (response.empty()) return std::nullopt;
  return response;
}

// One sample line: name{label="value",...} value
std::optional<Sample> parse_sample(std::string_view line) {
  Sample s;
  size_t i = line.find_first_of("{ ");
  if (i == std::string_view::npos) return std::nullopt;
  s.name = line.substr(0, i);
  if (line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      size_t eq = line.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
        return std::nullopt;
      }
      std::string key(line.substr(i, eq - i));
      std::string value;
      for (i = eq + 2; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) {
          ++i;
          value += line[i] == 'n' ? '\n' : line[i];
        } else {
          value += line[i];
        }
      }
      if (i >= line.size()) return std::nullopt;
      ++i;  // closing quote
      if (i < line.size() && line[i] == ',') ++i;
      s.labels[key] = value;
    }
    if (i >= line.size()) return std::nullopt;
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return std::nullopt;
  std::string value(line.substr(i + 1));
  char* end = nullptr;
  s.value = std::strtod(value.c_str(), &end);
  if (end != value.c_str() + value.size()) return std::nullopt;
  return s;
}

// Fetches /metrics and parses it; any malformed line fails the test.
Scrape scrape(uint16_t port) {
  Scrape out;
  auto response = http_get(port, "/metrics");
  if (!response) {
    ADD_FAILURE() << "no HTTP response from 127.0.0.1:" << port;
    return out;
  }
  std::string_view text = *response;
  size_t header_end = text.find("\r\n\r\n");
  if (header_end == std::string_view::npos) {
    ADD_FAILURE() << "no end of headers in: " << text;
    return out;
  }
  std::string_view head = text.substr(0, header_end);
  std::string_view body = text.substr(header_end + 4);
  if (head.starts_with("HTTP/1."))
    out.http_status = std::atoi(std::string(head.substr(9, 3)).c_str());
  if (auto ct = head.find("Content-Type: "); ct != std::string_view::npos) {
    out.content_type = head.substr(ct + 14, head.find("\r\n", ct) - ct - 14);
  }
  while (!body.empty()) {
    size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    if (line.empty()) continue;
    if (line.starts_with("# TYPE ") || line.starts_with("# HELP ")) {
      std::string_view rest = line.substr(7);
      size_t space = rest.find(' ');
      auto& map = line[2] == 'T' ? out.types : out.helps;
      map[std::string(rest.substr(0, space))] = rest.substr(space + 1);
      continue;
    }
    auto sample = parse_sample(line);
    if (!sample) {
      ADD_FAILURE() << "malformed sample line: " << line;
      continue;
    }
    out.samples.push_back(std::move(*sample));
  }
  return out;
}

// ---- Fixture ------------------------------------------------------------------------------------

// One exporter and fake for the whole suite: civetweb polls for new connections with a 2 s
// timeout and checks for shutdown only in between, so stopping a server that has served a
// request takes up to 2 s. Each test starts from initial_state(); scrape error counts, which
// only grow, are compared with the count before the test.
class ExporterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fake_ = std::make_unique<FakeControlPlane>();
    auto started = Exporter::start("127.0.0.1:0", *fake_);
    ASSERT_TRUE(started.ok()) << started.error().to_string();
    exporter_ = std::move(started).value();
    auto ports = exporter_->ports();
    ASSERT_EQ(ports.size(), 1u);
    port_ = ports[0];
  }
  static void TearDownTestSuite() {
    exporter_.reset();
    fake_.reset();
  }
  void SetUp() override {
    ASSERT_NE(port_, 0) << "the exporter did not start";
    fake_->update([](FakeState& st) { st = initial_state(); });
  }

  static inline std::unique_ptr<FakeControlPlane> fake_;
  static inline std::unique_ptr<Exporter> exporter_;
  static inline uint16_t port_ = 0;
};

double scrape_errors(const Scrape& s, const std::string& source) {
  return s.value("xlb_scrape_errors_total", {{"source", source}}).value_or(-1);
}

const Labels kWeb{{"vip", "198.18.200.1:80/tcp"}, {"name", "web"}};
const Labels kDns{{"vip", "[2001:db8:200::1]:443/udp"}};  // unnamed: no name label
const Labels kWeb1{{"vip", "198.18.200.1:80/tcp"}, {"backend", "198.19.0.1"}};
const Labels kWeb2{{"vip", "198.18.200.1:80/tcp"}, {"backend", "198.19.0.2"}};
const Labels kDns1{{"vip", "[2001:db8:200::1]:443/udp"}, {"backend", "2001:db8:1::1"}};

Labels with(Labels labels, const std::string& key, const std::string& value) {
  labels[key] = value;
  return labels;
}

// The family and labels an XLB_COUNTERS entry is exported as (the rule of collector.h,
// restated here so that the test does not share the exporter's code).
struct CounterSeries {
  std::string family;
  Labels labels;
};
CounterSeries counter_series(std::string_view metric) {
  if (metric.starts_with("xdp_")) {
    return {"xlb_xdp_actions_total", {{"action", std::string(metric.substr(4))}}};
  }
  if (metric.starts_with("drop_")) {
    return {"xlb_drops_total", {{"reason", std::string(metric.substr(5))}}};
  }
  return {"xlb_" + std::string(metric) + "_total", {}};
}

struct CounterDef {
  xlb_counter index;
  std::string_view metric;
};
#define XLB_TEST_COUNTER(name, metric, help) CounterDef{XLB_CNT_##name, metric},
const std::vector<CounterDef> kCounterDefs{XLB_COUNTERS(XLB_TEST_COUNTER)};
#undef XLB_TEST_COUNTER

// ---- Tests --------------------------------------------------------------------------------------

TEST_F(ExporterTest, ServesTextFormatOnMetrics) {
  auto s = scrape(port_);
  EXPECT_EQ(s.http_status, 200);
  EXPECT_TRUE(s.content_type.starts_with("text/plain")) << s.content_type;
  EXPECT_FALSE(s.samples.empty());
}

TEST_F(ExporterTest, UpAndScrapeErrors) {
  auto s = scrape(port_);
  EXPECT_EQ(s.types["xlb_up"], "gauge");
  EXPECT_EQ(s.value("xlb_up"), 1);
  EXPECT_EQ(s.types["xlb_scrape_errors_total"], "counter");
  EXPECT_EQ(s.series("xlb_scrape_errors_total").size(), 3u);
  auto again = scrape(port_);
  for (const char* source : {"status", "vips", "counters"}) {
    EXPECT_GE(scrape_errors(s, source), 0) << source;
    EXPECT_EQ(scrape_errors(again, source), scrape_errors(s, source)) << source;
  }
}

TEST_F(ExporterTest, StatusFamilies) {
  auto s = scrape(port_);
  EXPECT_EQ(s.types["xlb_info"], "gauge");
  ASSERT_EQ(s.series("xlb_info").size(), 1u);
  EXPECT_EQ(s.value("xlb_info", {{"version", "0.1.0-test"},
                                 {"interface", "eth1"},
                                 {"attach_mode", "native"},
                                 {"attach_method", "bpf_link"}}),
            1);
  EXPECT_EQ(s.types["xlb_uptime_seconds"], "gauge");
  EXPECT_EQ(s.value("xlb_uptime_seconds"), 12.5);
  EXPECT_EQ(s.types["xlb_reconcile_total"], "counter");
  EXPECT_EQ(s.value("xlb_reconcile_total"), 7);
  EXPECT_EQ(s.types["xlb_reconcile_errors_total"], "counter");
  EXPECT_EQ(s.value("xlb_reconcile_errors_total"), 2);
  EXPECT_EQ(s.types["xlb_reconcile_duration_seconds"], "summary");
  EXPECT_EQ(s.value("xlb_reconcile_duration_seconds_count"), 7);
  ASSERT_TRUE(s.value("xlb_reconcile_duration_seconds_sum").has_value());
  EXPECT_DOUBLE_EQ(*s.value("xlb_reconcile_duration_seconds_sum"), 0.35);
  EXPECT_TRUE(s.series("xlb_reconcile_duration_seconds").empty()) << "no quantiles";
  EXPECT_EQ(s.types["xlb_last_reconcile_seconds"], "gauge");
  ASSERT_TRUE(s.value("xlb_last_reconcile_seconds").has_value());
  EXPECT_DOUBLE_EQ(*s.value("xlb_last_reconcile_seconds"), 0.05);
}

TEST_F(ExporterTest, DiscoveryFamiliesOnlyWithDiscovery) {
  auto s = scrape(port_);
  EXPECT_TRUE(s.series("xlb_discovery_source_stale").empty());
  state::DiscoveryView d;
  d.generation = 4;
  d.update_errors = 1;
  d.discovered_backends = 12;
  d.sources.push_back({.name = "registry", .type = "etcd", .state = "stale",
                       .last_good_unix = 1.8e9, .events_applied = 30, .events_rejected = 2,
                       .rejected_by_reason = {{"bad_weight", 2}}, .stale_total = 1,
                       .resyncs_total = 3, .full_resyncs_total = 1});
  d.sources.push_back({.name = "hooks", .type = "push", .state = "connected"});
  fake_->update([&](FakeState& f) { f.status.discovery = d; });
  s = scrape(port_);
  EXPECT_EQ(s.types["xlb_discovery_source_stale"], "gauge");
  EXPECT_EQ(s.value("xlb_discovery_source_stale", {{"source", "registry"}}), 1);
  EXPECT_EQ(s.value("xlb_discovery_source_stale", {{"source", "hooks"}}), 0);
  EXPECT_EQ(s.value("xlb_discovery_source_state",
                    {{"source", "registry"}, {"type", "etcd"}, {"state", "stale"}}),
            1);
  EXPECT_EQ(s.value("xlb_discovery_source_state",
                    {{"source", "registry"}, {"type", "etcd"}, {"state", "connected"}}),
            0);
  EXPECT_EQ(s.value("xlb_discovery_events_total", {{"source", "registry"}, {"result", "applied"}}),
            30);
  EXPECT_EQ(s.value("xlb_discovery_events_rejected_total",
                    {{"source", "registry"}, {"reason", "bad_weight"}}),
            2);
  EXPECT_EQ(s.value("xlb_discovery_source_resyncs_total", {{"source", "registry"}, {"kind", "full"}}),
            1);
  EXPECT_EQ(s.value("xlb_discovery_updates_total"), 4);
  EXPECT_EQ(s.value("xlb_discovery_update_errors_total"), 1);
  EXPECT_EQ(s.value("xlb_discovery_backends"), 12);
  EXPECT_TRUE(s.series("xlb_discovery_source_last_good_timestamp_seconds").size() == 1u)
      << "only sources that were ever current have one";
}

TEST_F(ExporterTest, VipFamilies) {
  auto s = scrape(port_);
  for (const char* f : {"xlb_vip_packets_total", "xlb_vip_bytes_total"}) {
    EXPECT_EQ(s.types[f], "counter") << f;
    EXPECT_EQ(s.series(f).size(), 2u) << f;
  }
  EXPECT_EQ(s.types["xlb_vip_ring_size"], "gauge");
  EXPECT_EQ(s.series("xlb_vip_ring_size").size(), 2u);

  EXPECT_EQ(s.value("xlb_vip_packets_total", kWeb), 1000);
  EXPECT_EQ(s.value("xlb_vip_bytes_total", kWeb), 64000);
  EXPECT_EQ(s.value("xlb_vip_ring_size", kWeb), 65537);
  EXPECT_EQ(s.value("xlb_vip_packets_total", kDns), 5);
  EXPECT_EQ(s.value("xlb_vip_bytes_total", kDns), 1099511627776.0);
  EXPECT_EQ(s.value("xlb_vip_ring_size", kDns), 307);
}

TEST_F(ExporterTest, BackendFamilies) {
  auto s = scrape(port_);
  for (const char* f : {"xlb_backend_packets_total", "xlb_backend_bytes_total"}) {
    EXPECT_EQ(s.types[f], "counter") << f;
    EXPECT_EQ(s.series(f).size(), 3u) << f;
  }
  for (const char* f :
       {"xlb_backend_weight", "xlb_backend_effective_weight", "xlb_backend_slots"}) {
    EXPECT_EQ(s.types[f], "gauge") << f;
    EXPECT_EQ(s.series(f).size(), 3u) << f;
  }

  EXPECT_EQ(s.value("xlb_backend_packets_total", kWeb1), 900);
  EXPECT_EQ(s.value("xlb_backend_bytes_total", kWeb1), 57600);
  EXPECT_EQ(s.value("xlb_backend_weight", kWeb1), 3);
  EXPECT_EQ(s.value("xlb_backend_effective_weight", kWeb1), 3);
  EXPECT_EQ(s.value("xlb_backend_slots", kWeb1), 65537);

  EXPECT_EQ(s.value("xlb_backend_packets_total", kWeb2), 100);
  EXPECT_EQ(s.value("xlb_backend_bytes_total", kWeb2), 6400);
  EXPECT_EQ(s.value("xlb_backend_weight", kWeb2), 2);
  EXPECT_EQ(s.value("xlb_backend_effective_weight", kWeb2), 0);
  EXPECT_EQ(s.value("xlb_backend_slots", kWeb2), 0);

  EXPECT_EQ(s.value("xlb_backend_packets_total", kDns1), 5);
  EXPECT_EQ(s.value("xlb_backend_bytes_total", kDns1), 1099511627776.0);
  EXPECT_EQ(s.value("xlb_backend_weight", kDns1), 1);
  EXPECT_EQ(s.value("xlb_backend_effective_weight", kDns1), 0);
  EXPECT_EQ(s.value("xlb_backend_slots", kDns1), 0);
}

TEST_F(ExporterTest, BackendStateHasOneSeriesPerState) {
  auto s = scrape(port_);
  EXPECT_EQ(s.types["xlb_backend_state"], "gauge");
  EXPECT_EQ(s.series("xlb_backend_state").size(), 9u);
  const std::vector<std::pair<Labels, std::string>> current{
      {kWeb1, "active"}, {kWeb2, "draining"}, {kDns1, "disabled"}};
  for (const auto& [labels, now] : current) {
    for (const char* st : {"active", "draining", "disabled"}) {
      EXPECT_EQ(s.value("xlb_backend_state", with(labels, "state", st)), st == now ? 1 : 0)
          << labels.at("backend") << " " << st;
    }
  }
}

TEST_F(ExporterTest, DataPlaneCountersNamedAsDocumented) {
  auto s = scrape(port_);
  EXPECT_EQ(s.types["xlb_xdp_actions_total"], "counter");
  EXPECT_EQ(s.value("xlb_xdp_actions_total", {{"action", "pass"}}), 11);
  EXPECT_EQ(s.value("xlb_xdp_actions_total", {{"action", "tx"}}), 1005);
  EXPECT_EQ(s.value("xlb_xdp_actions_total", {{"action", "drop"}}), 4);
  EXPECT_EQ(s.series("xlb_xdp_actions_total").size(), 3u);

  EXPECT_EQ(s.types["xlb_drops_total"], "counter");
  EXPECT_EQ(s.value("xlb_drops_total", {{"reason", "malformed"}}), 3);
  EXPECT_EQ(s.value("xlb_drops_total", {{"reason", "no_backend"}}), 1);
  EXPECT_EQ(s.value("xlb_drops_total", {{"reason", "no_config"}}), 0);
  EXPECT_EQ(s.series("xlb_drops_total").size(), 7u);
  // The family's help explains each reason, from the X-macro's help text.
  EXPECT_NE(s.helps["xlb_drops_total"].find("malformed = truncated or inconsistent headers"),
            std::string::npos)
      << s.helps["xlb_drops_total"];

  EXPECT_EQ(s.types["xlb_lru_hit_total"], "counter");
  EXPECT_EQ(s.value("xlb_lru_hit_total"), 990);
  EXPECT_EQ(s.value("xlb_lru_miss_total"), 0);
  EXPECT_EQ(s.helps["xlb_lru_hit_total"], "VIP packets placed by the connection table");
  // Grouped entries have no family of their own.
  EXPECT_EQ(s.types.count("xlb_xdp_tx_total"), 0u);
  EXPECT_EQ(s.types.count("xlb_drop_malformed_total"), 0u);
}

TEST_F(ExporterTest, EveryXlbCountersEntryIsExported) {
  fake_->update([](FakeState& st) {
    for (const auto& def : kCounterDefs) st.counters.c[def.index] = 1000 + def.index;
  });
  auto s = scrape(port_);
  size_t counter_samples = 0;
  std::map<std::string, int> per_family;
  for (const auto& def : kCounterDefs) {
    auto series = counter_series(def.metric);
    EXPECT_EQ(s.types[series.family], "counter") << def.metric;
    EXPECT_EQ(s.value(series.family, series.labels), 1000 + def.index) << def.metric;
    ++per_family[series.family];
  }
  for (const auto& [family, count] : per_family) {
    EXPECT_EQ(s.series(family).size(), static_cast<size_t>(count)) << family;
    counter_samples += count;
  }
  EXPECT_EQ(counter_samples, static_cast<size_t>(XLB_CNT__MAX));
}

TEST_F(ExporterTest, SecondScrapeShowsNewValues) {
  auto first = scrape(port_);
  EXPECT_EQ(first.value("xlb_vip_packets_total", kWeb), 1000);

  fake_->update([](FakeState& st) {
    st.status.uptime_seconds = 20;
    st.status.reconcile_total = 8;
    st.status.reconcile_seconds_sum = 0.5;
    st.vips[0].packets = 1500;
    st.vips[0].bytes = 96000;
    auto& drained = st.vips[0].backends[1];  // draining -> active
    drained.spec.state = state::BackendState::kActive;
    drained.effective_weight = 2;
    drained.slots = 26215;
    drained.packets = 600;
    st.vips[0].backends[0].slots = 39322;
    st.counters.c[XLB_CNT_XDP_TX] = 2000;
    st.counters.c[XLB_CNT_LRU_HIT] = 1980;
    st.counters.c[XLB_CNT_DROP_MALFORMED] = 4;
  });

  auto second = scrape(port_);
  EXPECT_EQ(second.value("xlb_up"), 1);
  EXPECT_EQ(second.value("xlb_uptime_seconds"), 20);
  EXPECT_EQ(second.value("xlb_reconcile_total"), 8);
  EXPECT_EQ(second.value("xlb_reconcile_duration_seconds_count"), 8);
  EXPECT_EQ(second.value("xlb_reconcile_duration_seconds_sum"), 0.5);
  EXPECT_EQ(second.value("xlb_vip_packets_total", kWeb), 1500);
  EXPECT_EQ(second.value("xlb_vip_bytes_total", kWeb), 96000);
  EXPECT_EQ(second.value("xlb_backend_packets_total", kWeb2), 600);
  EXPECT_EQ(second.value("xlb_backend_effective_weight", kWeb2), 2);
  EXPECT_EQ(second.value("xlb_backend_slots", kWeb2), 26215);
  EXPECT_EQ(second.value("xlb_backend_slots", kWeb1), 39322);
  EXPECT_EQ(second.value("xlb_backend_state", with(kWeb2, "state", "active")), 1);
  EXPECT_EQ(second.value("xlb_backend_state", with(kWeb2, "state", "draining")), 0);
  EXPECT_EQ(second.value("xlb_xdp_actions_total", {{"action", "tx"}}), 2000);
  EXPECT_EQ(second.value("xlb_lru_hit_total"), 1980);
  EXPECT_EQ(second.value("xlb_drops_total", {{"reason", "malformed"}}), 4);
}

TEST_F(ExporterTest, FailingControlPlaneGivesUpZeroNotAFailedScrape) {
  auto before = scrape(port_);
  fake_->update([](FakeState& st) { st.fail_all(true); });
  auto s = scrape(port_);
  EXPECT_EQ(s.http_status, 200);
  EXPECT_EQ(s.value("xlb_up"), 0);
  for (const char* source : {"status", "vips", "counters"}) {
    EXPECT_EQ(scrape_errors(s, source), scrape_errors(before, source) + 1) << source;
  }
  // Nothing that could not be read is made up.
  for (const char* f : {"xlb_info", "xlb_reconcile_total", "xlb_vip_packets_total",
                        "xlb_backend_state", "xlb_xdp_actions_total", "xlb_lru_hit_total"}) {
    EXPECT_TRUE(s.series(f).empty()) << f;
  }

  // The error count accumulates; recovery brings xlb_up back and keeps the count.
  const double vips_before = scrape_errors(before, "vips");
  EXPECT_EQ(scrape_errors(scrape(port_), "vips"), vips_before + 2);
  fake_->update([](FakeState& st) { st.fail_all(false); });
  auto recovered = scrape(port_);
  EXPECT_EQ(recovered.value("xlb_up"), 1);
  EXPECT_EQ(scrape_errors(recovered, "vips"), vips_before + 2);
  EXPECT_EQ(recovered.value("xlb_vip_packets_total", kWeb), 1000);
}

TEST_F(ExporterTest, PartialFailureKeepsWhatCouldBeRead) {
  auto before = scrape(port_);
  fake_->update([](FakeState& st) { st.fail_counters = true; });
  auto s = scrape(port_);
  EXPECT_EQ(s.value("xlb_up"), 0);
  EXPECT_EQ(scrape_errors(s, "counters"), scrape_errors(before, "counters") + 1);
  EXPECT_EQ(scrape_errors(s, "status"), scrape_errors(before, "status"));
  EXPECT_EQ(scrape_errors(s, "vips"), scrape_errors(before, "vips"));
  EXPECT_EQ(s.value("xlb_vip_packets_total", kWeb), 1000);
  EXPECT_EQ(s.value("xlb_reconcile_total"), 7);
  EXPECT_TRUE(s.series("xlb_xdp_actions_total").empty());
  EXPECT_TRUE(s.series("xlb_lru_hit_total").empty());
}

TEST_F(ExporterTest, SecondExporterOnTheSamePortFails) {
  const std::string listen_at = "127.0.0.1:" + std::to_string(port_);
  auto second = Exporter::start(listen_at, *fake_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, std::errc::address_in_use) << second.error().to_string();
  EXPECT_EQ(scrape(port_).value("xlb_up"), 1) << "the first one still serves";
}

TEST(Exporter, StopsServingWhenDestroyed) {
  FakeControlPlane fake;
  auto started = Exporter::start("127.0.0.1:0", fake);
  ASSERT_TRUE(started.ok()) << started.error().to_string();
  const uint16_t port = (*started)->ports().at(0);
  EXPECT_EQ(scrape(port).value("xlb_up"), 1);
  started->reset();
  EXPECT_FALSE(http_get(port, "/metrics").has_value());
}

TEST(Exporter, PortInUseIsAClearError) {
  // A listener of our own holds a free port on 127.0.0.1.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string listen_at = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  FakeControlPlane fake;
  auto started = Exporter::start(listen_at, fake);
  close(fd);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, std::errc::address_in_use) << started.error().to_string();
  EXPECT_NE(started.error().message.find(listen_at), std::string::npos) << started.error().message;
}

TEST(Exporter, RejectsMalformedListenAddress) {
  FakeControlPlane fake;
  for (const char* bad : {"", "localhost:9475", "127.0.0.1", "127.0.0.1:9475,127.0.0.1:9476",
                          "127.0.0.1:9475s", "127.0.0.1:65536"}) {
    auto started = Exporter::start(bad, fake);
    ASSERT_FALSE(started.ok()) << bad;
    EXPECT_EQ(started.error().code, std::errc::invalid_argument) << bad;
    EXPECT_NE(started.error().message.find("metrics listen address"), std::string::npos)
        << started.error().message;
  }
}

}  // namespace
}  // namespace xlb::metrics
