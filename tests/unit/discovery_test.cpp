// SPDX-License-Identifier: Apache-2.0
// Service discovery without a network: the discovery: config section, every kind of malformed
// event refused with its reason, service files, the etcd key layout, the store's precedence,
// merge() with the configured state, coalescing with a fake clock, and the files and push
// sources running for real (inotify on a temporary directory).
#include "xlb/discovery/discovery.h"
#include "xlb/discovery/testing/collector.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "xlb/discovery/config.h"
#include "xlb/discovery/engine.h"
#include "xlb/discovery/etcd_gateway.h"
#include "xlb/discovery/etcd_keys.h"
#include "xlb/discovery/event.h"
#include "xlb/discovery/merge.h"
#include "xlb/discovery/service_file.h"
#include "xlb/discovery/store.h"
#include "xlb/state/config.h"

namespace xlb::discovery {
namespace {

using namespace std::chrono_literals;
using Clock = Engine::Clock;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }
state::VipKey vip(const char* text) { return *state::VipKey::parse(text); }

Event upsert_backend(const char* v, const char* address, uint32_t weight = 1) {
  return Event{.kind = EventKind::kUpsertBackend,
               .vip = vip(v),
               .backend = state::BackendSpec{.address = ip(address), .weight = weight}};
}
Event remove_backend(const char* v, const char* address) {
  return Event{.kind = EventKind::kRemoveBackend,
               .vip = vip(v),
               .backend = state::BackendSpec{.address = ip(address)}};
}
Event upsert_vip(const char* v, const std::string& name) {
  state::VipSpec spec;
  spec.key = vip(v);
  spec.name = name;
  return Event{.kind = EventKind::kUpsertVip, .vip = vip(v), .vip_spec = spec};
}
Event remove_vip(const char* v) { return Event{.kind = EventKind::kRemoveVip, .vip = vip(v)}; }

Batch delta(const std::string& source, std::vector<Event> events, const std::string& scope = "") {
  return Batch{
      .mode = Batch::Mode::kDelta, .source = source, .scope = scope, .events = std::move(events)};
}

// ---- Config section -----------------------------------------------------------------------

TEST(DiscoveryConfig, ReadsEverySourceType) {
  auto c = parse_discovery_config_text(R"(
debounce: 20ms
sources:
  - name: services
    type: files
    dir: /etc/xlb/services.d
  - name: registry
    type: etcd
    endpoints: ["https://198.18.0.10:2379", "https://[2001:db8::10]:2379"]
    prefix: /xlb/cluster-a
    username: xlb
    password_file: /etc/xlb/etcd.password
    ca_file: /etc/xlb/ca.pem
    cert_file: /etc/xlb/client.pem
    key_file: /etc/xlb/client.key
    reconnect_max: 10s
    priority: 150
  - name: webhooks
    type: push
)",
                                       "xlbd.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->debounce_ms, 20u);
  ASSERT_EQ(c->sources.size(), 3u);
  EXPECT_EQ(c->sources[0].type, SourceType::kFiles);
  EXPECT_EQ(c->sources[0].files.dir, "/etc/xlb/services.d");
  EXPECT_EQ(c->sources[0].priority, 200);
  const SourceConfig& e = c->sources[1];
  EXPECT_EQ(e.type, SourceType::kEtcd);
  EXPECT_EQ(e.priority, 150);
  EXPECT_EQ(e.etcd.endpoints.size(), 2u);
  EXPECT_EQ(e.etcd.prefix, "/xlb/cluster-a");
  EXPECT_EQ(e.etcd.username, std::optional<std::string>("xlb"));
  EXPECT_EQ(e.etcd.password_file, std::optional<std::string>("/etc/xlb/etcd.password"));
  EXPECT_EQ(e.etcd.cert_file, std::optional<std::string>("/etc/xlb/client.pem"));
  EXPECT_EQ(e.etcd.backoff_max_ms, 10000u);
  EXPECT_EQ(c->sources[2].type, SourceType::kPush);
  EXPECT_EQ(c->sources[2].priority, 300);
}

TEST(DiscoveryConfig, DefaultsAndEmpty) {
  auto c = parse_discovery_config_text("sources: []", "x.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->debounce_ms, 50u);
  EXPECT_TRUE(c->sources.empty());
}

TEST(DiscoveryConfig, RefusesWithLocation) {
  struct Case {
    const char* yaml;
    const char* where;  // FILE:LINE
    const char* message;
  };
  const Case cases[] = {
      {"debounce: 50\n", "d.yaml:1:", "has no unit"},
      {"debounce: 11s\n", "d.yaml:1:", "too long"},
      {"debounse: 50ms\n", "d.yaml:1:", "unknown key"},
      {"sources:\n  - {name: a, type: file, dir: /x}\n", "d.yaml:2:", "not a source type"},
      {"sources:\n  - {name: a, type: files}\n", "d.yaml:2:", "missing required key 'dir'"},
      {"sources:\n  - {name: a, type: files, dir: x}\n", "d.yaml:2:", "not an absolute path"},
      {"sources:\n  - {name: a, type: push, dir: /x}\n", "d.yaml:2:", "unknown key"},
      {"sources:\n  - {name: a, type: push}\n  - {name: a, type: push}\n",
       "d.yaml:3:", "already used"},
      {"sources:\n  - {name: -a, type: push}\n", "d.yaml:2:", "not a valid name"},
      {"sources:\n  - {name: e, type: etcd, endpoints: [198.18.0.10:2379], prefix: /x}\n",
       "d.yaml:2:", "neither http"},
      {"sources:\n  - {name: e, type: etcd, endpoints: [\"http://198.18.0.10\"], prefix: /x}\n",
       "d.yaml:2:", "no port"},
      {"sources:\n  - name: e\n    type: etcd\n    endpoints: [\"http://198.18.0.10:2379\", "
       "\"https://198.18.0.11:2379\"]\n    prefix: /x\n",
       "d.yaml:4:", "mixes http"},
      {"sources:\n  - {name: e, type: etcd, endpoints: [\"http://198.18.0.10:2379\"], prefix: "
       "x/}\n",
       "d.yaml:2:", "not a key prefix"},
      {"sources:\n  - {name: e, type: etcd, endpoints: [\"http://198.18.0.10:2379\"], prefix: "
       "/x, username: u}\n",
       "d.yaml:2:", "go together"},
      {"sources:\n  - {name: e, type: etcd, endpoints: [\"http://198.18.0.10:2379\"], prefix: "
       "/x, ca_file: /ca}\n",
       "d.yaml:2:", "need https"},
      {"sources:\n  - {name: e, type: etcd, endpoints: [], prefix: /x}\n",
       "d.yaml:2:", "non-empty list"},
      {"sources:\n  - {name: e, type: push, priority: 1001}\n", "d.yaml:2:", "0..1000"},
  };
  for (const auto& c : cases) {
    auto parsed = parse_discovery_config_text(c.yaml, "d.yaml");
    ASSERT_FALSE(parsed.ok()) << c.yaml;
    EXPECT_NE(parsed.error().message.find(c.where), std::string::npos)
        << c.yaml << " -> " << parsed.error().message;
    EXPECT_NE(parsed.error().message.find(c.message), std::string::npos)
        << c.yaml << " -> " << parsed.error().message;
    EXPECT_NE(parsed.error().message.find("discovery"), std::string::npos)
        << parsed.error().message;
  }
}

// ---- Malformed events: every reason --------------------------------------------------------

struct BadInput {
  enum Kind { kPush, kEtcd, kYamlFile, kJsonFile } kind;
  std::string key;  // etcd key (prefix /xlb/t)
  std::string text;
  Reject want;
};

const std::string kVipsPrefix = "/xlb/t/vips/";

std::vector<BadInput> bad_inputs() {
  auto ev = [](const std::string& event_json) { return "{\"events\": [" + event_json + "]}"; };
  const std::string b = kVipsPrefix + "198.18.200.1:80/tcp/backends/198.18.3.11";
  const std::string spec = kVipsPrefix + "198.18.200.1:80/tcp/spec";
  const std::string vip = "\"vip\": \"198.18.200.1:80/tcp\"";
  return {
      {BadInput::kPush, "", "{\"events\": [", Reject::kSyntax},
      {BadInput::kEtcd, b, "{\"weight\": 2,}", Reject::kSyntax},
      {BadInput::kYamlFile, "", "vip: [198.18.200.1:80/tcp\n", Reject::kSyntax},
      {BadInput::kPush, "", "   ", Reject::kEmpty},
      {BadInput::kYamlFile, "", "", Reject::kEmpty},
      {BadInput::kEtcd, b, "", Reject::kEmpty},
      {BadInput::kEtcd, b, "{\"metadata\": {\"x\": \"" + std::string(70000, 'a') + "\"}}",
       Reject::kTooLarge},
      {BadInput::kPush, "",
       ev("{\"kind\": \"upsert_backend\", " + vip +
          ", \"backend\": {\"address\": "
          "\"198.18.3.11\", \"metadata\": {\"x\": \"" +
          std::string(5000, 'a') + "\"}}}"),
       Reject::kTooLarge},
      {BadInput::kPush, "", ev("[1]"), Reject::kNotObject},
      {BadInput::kEtcd, b, "\"weight\"", Reject::kNotObject},
      {BadInput::kPush, "", ev("{\"kind\": \"upsert_vip\", " + vip + ", \"spce\": {}}"),
       Reject::kUnknownField},
      {BadInput::kEtcd, b, "{\"wieght\": 2}", Reject::kUnknownField},
      {BadInput::kEtcd, b, "{\"weight\": 2, \"weight\": 3}", Reject::kDuplicateField},
      {BadInput::kYamlFile, "", "vip: 198.18.200.1:80/tcp\nvip: 198.18.200.2:80/tcp\n",
       Reject::kDuplicateField},
      {BadInput::kEtcd, b, "{\"weight\": \"2\"}", Reject::kWrongType},
      {BadInput::kYamlFile, "", "vip: 198.18.200.1:80/tcp\ngue: yes\n", Reject::kWrongType},
      {BadInput::kPush, "",
       ev("{\"kind\": \"remove_vip\", " + vip + ", \"backend\": {\"address\": \"198.18.3.1\"}}"),
       Reject::kFieldNotAllowed},
      {BadInput::kPush, "",
       ev("{\"kind\": \"remove_backend\", " + vip +
          ", \"backend\": {\"address\": \"198.18.3.1\", \"weight\": 1}}"),
       Reject::kFieldNotAllowed},
      {BadInput::kPush, "", ev("{" + vip + "}"), Reject::kMissingKind},
      {BadInput::kPush, "", ev("{\"kind\": \"add_backend\", " + vip + "}"), Reject::kUnknownKind},
      {BadInput::kPush, "", ev("{\"kind\": \"remove_vip\"}"), Reject::kMissingVip},
      {BadInput::kYamlFile, "", "name: web\n", Reject::kMissingVip},
      {BadInput::kPush, "", ev("{\"kind\": \"remove_vip\", \"vip\": \"198.18.200.1:80\"}"),
       Reject::kBadVip},
      {BadInput::kPush, "",
       ev("{\"kind\": \"remove_vip\", \"vip\": \"[::ffff:198.18.200.1]:80/tcp\"}"),
       Reject::kVipNotUnicast},
      {BadInput::kPush, "", ev("{\"kind\": \"upsert_backend\", " + vip + "}"),
       Reject::kMissingBackend},
      {BadInput::kPush, "",
       ev("{\"kind\": \"upsert_backend\", " + vip + ", \"backend\": {\"weight\": 1}}"),
       Reject::kMissingAddress},
      {BadInput::kPush, "",
       ev("{\"kind\": \"upsert_backend\", " + vip + ", \"backend\": {\"address\": \"web1\"}}"),
       Reject::kBadAddress},
      {BadInput::kYamlFile, "", "vip: 198.18.200.1:80/tcp\nbackends:\n  - address: 198.18.3.0/24\n",
       Reject::kBadAddress},
      {BadInput::kPush, "",
       ev("{\"kind\": \"upsert_backend\", " + vip +
          ", \"backend\": {\"address\": \"198.18.3.11:8080\"}}"),
       Reject::kAddressWithPort},
      {BadInput::kPush, "",
       ev("{\"kind\": \"upsert_backend\", " + vip +
          ", \"backend\": {\"address\": \"::ffff:198.18.3.11\"}}"),
       Reject::kBackendNotUnicast},
      {BadInput::kEtcd, b, "{\"weight\": 70000}", Reject::kBadWeight},
      {BadInput::kEtcd, b, "{\"weight\": -1}", Reject::kBadWeight},
      {BadInput::kEtcd, b, "{\"state\": \"up\"}", Reject::kBadState},
      {BadInput::kEtcd, spec, "{\"name\": \"web site\"}", Reject::kBadName},
      {BadInput::kEtcd, spec, "{\"hash\": \"crc\"}", Reject::kBadHash},
      {BadInput::kEtcd, spec, "{\"ring_size\": 1000}", Reject::kBadRingSize},
      {BadInput::kEtcd, spec, "{\"ring_size\": 3}", Reject::kBadRingSize},
      {BadInput::kEtcd, spec, "{\"all_down\": \"panic\"}", Reject::kBadAllDown},
      {BadInput::kEtcd, b, "{\"metadata\": [\"zone-a\"]}", Reject::kBadMetadata},
      {BadInput::kEtcd, b, "{\"address\": \"198.18.3.12\"}", Reject::kKeyMismatch},
      {BadInput::kEtcd, spec, "{\"vip\": \"198.18.200.2:80/tcp\"}", Reject::kKeyMismatch},
      {BadInput::kEtcd, spec, "{\"backends\": []}", Reject::kUnknownField},
      {BadInput::kEtcd, kVipsPrefix + "198.18.200.1:80/tcp/members/198.18.3.11", "{}",
       Reject::kBadKey},
      {BadInput::kEtcd, kVipsPrefix + "198.18.200.1:080/tcp/spec", "{}", Reject::kBadKey},
      {BadInput::kEtcd, kVipsPrefix + "198.18.200.1:80/tcp/backends/2001:DB8::1", "{}",
       Reject::kBadKey},
      {BadInput::kYamlFile, "", "- vip: 198.18.200.1:80/tcp\n- vip: 198.18.200.1:80/tcp\n",
       Reject::kDuplicateVip},
      {BadInput::kJsonFile, "",
       R"({"vip": "198.18.200.1:80/tcp", "backends": [{"address": "198.18.3.11"},
           {"address": "198.18.3.11"}]})",
       Reject::kDuplicateBackend},
  };
}

Result<std::vector<Event>> parse_bad(const BadInput& in) {
  switch (in.kind) {
    case BadInput::kPush: {
      std::vector<PushRejection> rejected;
      auto body = parse_push_body(in.text, rejected);
      if (!body) return body.error();
      if (!rejected.empty()) return rejection(rejected[0].reason, rejected[0].message);
      return body->events;
    }
    case BadInput::kEtcd: {
      auto e = parse_etcd_put("/xlb/t", in.key, in.text);
      if (!e) return e.error();
      return std::vector<Event>{*e};
    }
    case BadInput::kYamlFile:
      return parse_service_file(in.text, FileFormat::kYaml, "svc.yaml");
    case BadInput::kJsonFile:
      return parse_service_file(in.text, FileFormat::kJson, "svc.json");
  }
  return std::vector<Event>{};
}

TEST(DiscoveryEvents, EveryMalformedKindIsRejectedWithItsReason) {
  std::set<Reject> covered;
  for (const auto& in : bad_inputs()) {
    auto r = parse_bad(in);
    ASSERT_FALSE(r.ok()) << in.key << " " << in.text.substr(0, 200);
    auto reason = reject_of(r.error());
    ASSERT_TRUE(reason.has_value()) << r.error().message;
    EXPECT_EQ(*reason, in.want) << in.key << " " << in.text.substr(0, 200) << " -> "
                                << to_string(*reason) << ": " << r.error().message;
    EXPECT_FALSE(r.error().message.empty());
    covered.insert(in.want);
  }
  // The store's own refusal (kTooManyBackends) and kUnknownSource (Discovery::push) are
  // covered by their own tests below.
  EXPECT_GE(covered.size(), 20u);
  EXPECT_EQ(covered.size() + 2, static_cast<size_t>(kRejectKinds));
}

TEST(DiscoveryEvents, RejectionNamesAreStable) {
  EXPECT_EQ(to_string(Reject::kBadWeight), "bad_weight");
  EXPECT_EQ(to_string(Reject::kSyntax), "syntax");
  EXPECT_EQ(to_string(Reject::kUnknownSource), "unknown_source");
  std::set<std::string_view> names;
  for (int r = 1; r <= kRejectKinds; r++) names.insert(to_string(static_cast<Reject>(r)));
  EXPECT_EQ(names.size(), static_cast<size_t>(kRejectKinds));
}

TEST(DiscoveryEvents, MessagesSayWhere) {
  auto f = parse_service_file(
      "vip: 198.18.200.1:80/tcp\nbackends:\n  - address: 198.18.3.11\n"
      "    weight: 70000\n",
      FileFormat::kYaml, "/srv/web.yaml");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().message.rfind("/srv/web.yaml:4:13: backends[0].weight: 70000", 0), 0u)
      << f.error().message;

  std::vector<PushRejection> rejected;
  auto body = parse_push_body(
      R"({"events": [{"kind": "remove_vip", "vip": "198.18.200.1:80/tcp"},
                     {"kind": "upsert_backend", "vip": "198.18.200.1:80/tcp",
                      "backend": {"address": "198.18.3.11", "wieght": 2}}]})",
      rejected);
  ASSERT_TRUE(body.ok());
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].index, 1u);
  EXPECT_EQ(rejected[0].reason, Reject::kUnknownField);
  EXPECT_NE(rejected[0].message.find("events[1].backend.wieght"), std::string::npos)
      << rejected[0].message;
  EXPECT_NE(rejected[0].message.find("did you mean 'weight'"), std::string::npos);
}

TEST(DiscoveryEvents, PushBodyRoundTrip) {
  std::vector<PushRejection> rejected;
  auto body = parse_push_body(R"({"source": "hooks", "replace": true, "events": [
      {"kind": "upsert_vip", "vip": "[2001:db8:200::1]:443/tcp",
       "spec": {"name": "tls", "hash": "src", "ring_size": 1009, "all_down": "drop"}},
      {"kind": "upsert_backend", "vip": "[2001:db8:200::1]:443/tcp",
       "backend": {"address": "2001:db8:3::11", "weight": 3, "state": "draining",
                   "metadata": {"zone": "a"}}},
      {"kind": "remove_backend", "vip": "198.18.200.1:80/tcp",
       "backend": {"address": "198.18.3.11"}},
      {"kind": "remove_vip", "vip": "198.18.200.2/udp"}]})",
                              rejected);
  ASSERT_TRUE(body.ok()) << body.error().message;
  ASSERT_TRUE(rejected.empty()) << rejected[0].message;
  EXPECT_EQ(body->source, std::optional<std::string>("hooks"));
  EXPECT_TRUE(body->replace);
  ASSERT_EQ(body->events.size(), 4u);
  const Event& v = body->events[0];
  EXPECT_EQ(v.kind, EventKind::kUpsertVip);
  ASSERT_TRUE(v.vip_spec);
  EXPECT_EQ(v.vip_spec->name, "tls");
  EXPECT_EQ(v.vip_spec->hash, state::HashMode::kSourceOnly);
  EXPECT_EQ(v.vip_spec->ring_size, std::optional<uint32_t>(1009));
  EXPECT_EQ(v.vip_spec->all_down, state::AllDownPolicy::kDrop);
  const Event& b = body->events[1];
  ASSERT_TRUE(b.backend);
  EXPECT_EQ(b.backend->weight, 3u);
  EXPECT_EQ(b.backend->state, state::BackendState::kDraining);
  EXPECT_EQ(b.metadata, R"({"zone":"a"})");
  for (const auto& e : body->events) {
    auto again = parse_event_json(to_json(e), Origin{"roundtrip"});
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(*again, e) << to_json(e);
  }
}

// ---- Service files and the etcd layout -------------------------------------------------------

TEST(ServiceFile, YamlAndJsonGiveTheSameEvents) {
  auto yaml = parse_service_file(R"(
- vip: 198.18.200.1:80/tcp
  name: web
  backends:
    - address: 198.18.3.11
      weight: 2
    - {address: 198.18.3.12, state: draining, metadata: {zone: b}}
- vip: "[2001:db8:200::1]:80/tcp"
  backends: [{address: "2001:db8:3::11"}]
)",
                                 FileFormat::kYaml, "web.yaml");
  ASSERT_TRUE(yaml.ok()) << yaml.error().message;
  auto json = parse_service_file(R"([
  {"vip": "198.18.200.1:80/tcp", "name": "web", "backends": [
     {"address": "198.18.3.11", "weight": 2},
     {"address": "198.18.3.12", "state": "draining", "metadata": {"zone": "b"}}]},
  {"vip": "[2001:db8:200::1]:80/tcp", "backends": [{"address": "2001:db8:3::11"}]}])",
                                 FileFormat::kJson, "web.json");
  ASSERT_TRUE(json.ok()) << json.error().message;
  EXPECT_EQ(*yaml, *json);
  ASSERT_EQ(yaml->size(), 5u);
  EXPECT_EQ((*yaml)[0].kind, EventKind::kUpsertVip);
  EXPECT_EQ((*yaml)[2].backend->state, state::BackendState::kDraining);
  EXPECT_EQ((*yaml)[2].metadata, R"({"zone":"b"})");
}

TEST(ServiceFile, EmptyListIsNoServicesButAnEmptyFileIsRefused) {
  auto none = parse_service_file("[]\n", FileFormat::kYaml, "x.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto empty = parse_service_file("\n# nothing\n", FileFormat::kYaml, "x.yaml");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(reject_of(empty.error()), Reject::kEmpty);
}

TEST(ServiceFile, NamesAFilesSourceReads) {
  EXPECT_EQ(service_file_format("web.yaml"), FileFormat::kYaml);
  EXPECT_EQ(service_file_format("web.yml"), FileFormat::kYaml);
  EXPECT_EQ(service_file_format("web.json"), FileFormat::kJson);
  EXPECT_FALSE(service_file_format(".web.yaml.swp"));
  EXPECT_FALSE(service_file_format(".web.yaml"));
  EXPECT_FALSE(service_file_format("web.yaml~"));
  EXPECT_FALSE(service_file_format("web.yaml.tmp"));
  EXPECT_FALSE(service_file_format("README"));
}

TEST(EtcdKeys, LayoutRoundTrip) {
  const auto v6 = vip("[2001:db8:200::1]:443/udp");
  const std::string k = etcd_backend_key("/xlb/a", v6, ip("2001:db8:3::11"));
  EXPECT_EQ(k, "/xlb/a/vips/[2001:db8:200::1]:443/udp/backends/2001:db8:3::11");
  auto parsed = parse_etcd_key("/xlb/a", k);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_FALSE(parsed->is_spec);
  EXPECT_EQ(parsed->vip, v6);
  EXPECT_EQ(parsed->backend, ip("2001:db8:3::11"));
  auto spec = parse_etcd_key("/xlb/a", etcd_spec_key("/xlb/a", vip("198.18.200.2/tcp")));
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_TRUE(spec->is_spec);
  EXPECT_EQ(spec->vip, vip("198.18.200.2/tcp"));

  auto put = parse_etcd_put("/xlb/a", k, R"({"weight": 5, "metadata": {"pod": "a-1"}})");
  ASSERT_TRUE(put.ok()) << put.error().message;
  EXPECT_EQ(put->kind, EventKind::kUpsertBackend);
  EXPECT_EQ(put->backend->weight, 5u);
  EXPECT_EQ(put->backend->address, ip("2001:db8:3::11"));
}

TEST(EtcdGatewayCodec, Base64AndPrefixEnd) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "/xlb/a/vips/198.18.200.1:80/tcp"}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_FALSE(base64_decode("Zm9v!").has_value());
  EXPECT_EQ(EtcdGateway::prefix_end("/a/"), "/a0");
  EXPECT_EQ(EtcdGateway::prefix_end(std::string("a\xff", 2)), "b");
}

// ---- Store: ownership and precedence ---------------------------------------------------------

TEST(Store, HigherPriorityWinsTheWholeEntryWhateverTheOrder) {
  for (bool push_first : {false, true}) {
    Store s;
    s.set_priority("push", 300);
    s.set_priority("registry", 100);
    Batch from_push = delta("push", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11", 9)});
    Batch from_registry =
        delta("registry", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11", 1),
                           upsert_backend("198.18.200.1:80/tcp", "198.18.3.12", 1)});
    if (push_first) {
      s.apply(from_push);
      s.apply(from_registry);
    } else {
      s.apply(from_registry);
      s.apply(from_push);
    }
    auto v = s.view(vip("198.18.200.1:80/tcp"));
    ASSERT_TRUE(v);
    ASSERT_EQ(v->backends.size(), 2u);
    EXPECT_EQ(v->backends[0].spec.weight, 9u);
    EXPECT_EQ(v->backends[0].owner, "push");
    EXPECT_EQ(v->backends[1].owner, "registry");
  }
}

TEST(Store, EqualPrioritiesAreDecidedByName) {
  Store s;
  s.set_priority("b-source", 100);
  s.set_priority("a-source", 100);
  s.apply(delta("b-source", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11", 2)}));
  s.apply(delta("a-source", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11", 7)}));
  auto v = s.view(vip("198.18.200.1:80/tcp"));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->backends[0].owner, "a-source");
  EXPECT_EQ(v->backends[0].spec.weight, 7u);
}

TEST(Store, RemovalByOneSourceLeavesAnothersEntry) {
  Store s;
  s.set_priority("files", 200);
  s.set_priority("etcd", 100);
  s.apply(delta("files", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11", 5)}, "web.yaml"));
  s.apply(delta("etcd", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11", 1),
                         upsert_vip("198.18.200.1:80/tcp", "web")}));
  // The files' entry goes: etcd's takes over, with its own weight.
  auto r =
      s.apply(delta("files", {remove_backend("198.18.200.1:80/tcp", "198.18.3.11")}, "web.yaml"));
  EXPECT_EQ(r.touched.size(), 1u);
  auto v = s.view(vip("198.18.200.1:80/tcp"));
  ASSERT_TRUE(v);
  ASSERT_EQ(v->backends.size(), 1u);
  EXPECT_EQ(v->backends[0].owner, "etcd");
  EXPECT_EQ(v->backends[0].spec.weight, 1u);
  // remove_vip by a source that never named the VIP changes nothing.
  r = s.apply(delta("push", {remove_vip("198.18.200.1:80/tcp")}));
  EXPECT_TRUE(r.touched.empty());
  EXPECT_EQ(s.view(vip("198.18.200.1:80/tcp")), v);
  // remove_vip by etcd takes all of etcd's: the VIP is gone.
  s.apply(delta("etcd", {remove_vip("198.18.200.1:80/tcp")}));
  EXPECT_FALSE(s.view(vip("198.18.200.1:80/tcp")));
}

TEST(Store, ReplaceScopeRetainScopesAndDropSource) {
  Store s;
  s.set_priority("files", 200);
  s.apply(Batch{.mode = Batch::Mode::kReplaceScope,
                .source = "files",
                .scope = "a.yaml",
                .events = {upsert_vip("198.18.200.1:80/tcp", "a"),
                           upsert_backend("198.18.200.1:80/tcp", "198.18.3.11")}});
  s.apply(Batch{.mode = Batch::Mode::kReplaceScope,
                .source = "files",
                .scope = "b.yaml",
                .events = {upsert_backend("198.18.200.2:80/tcp", "198.18.3.21")}});
  // a.yaml now holds another backend: the old one goes.
  auto r = s.apply(Batch{.mode = Batch::Mode::kReplaceScope,
                         .source = "files",
                         .scope = "a.yaml",
                         .events = {upsert_vip("198.18.200.1:80/tcp", "a"),
                                    upsert_backend("198.18.200.1:80/tcp", "198.18.3.12")}});
  EXPECT_EQ(r.touched, (std::set<state::VipKey>{vip("198.18.200.1:80/tcp")}));
  auto v = s.view(vip("198.18.200.1:80/tcp"));
  ASSERT_TRUE(v);
  ASSERT_EQ(v->backends.size(), 1u);
  EXPECT_EQ(v->backends[0].spec.address, ip("198.18.3.12"));
  EXPECT_EQ(v->backends[0].owner, "files/a.yaml");
  EXPECT_EQ(v->spec_owner, "files/a.yaml");
  // Restating the same content touches nothing.
  r = s.apply(Batch{.mode = Batch::Mode::kReplaceScope,
                    .source = "files",
                    .scope = "a.yaml",
                    .events = {upsert_vip("198.18.200.1:80/tcp", "a"),
                               upsert_backend("198.18.200.1:80/tcp", "198.18.3.12")}});
  EXPECT_TRUE(r.touched.empty());
  // Only a.yaml is left in the directory.
  s.apply(Batch{.mode = Batch::Mode::kRetainScopes, .source = "files", .scopes = {"a.yaml"}});
  EXPECT_FALSE(s.view(vip("198.18.200.2:80/tcp")));
  EXPECT_TRUE(s.view(vip("198.18.200.1:80/tcp")));
  s.apply(Batch{.mode = Batch::Mode::kDropSource, .source = "files"});
  EXPECT_EQ(s.entries(), 0u);
  EXPECT_TRUE(s.snapshot().vips.empty());
}

TEST(Store, ReRankingChangesTheWinner) {
  Store s;
  s.set_priority("a", 100);
  s.set_priority("b", 50);
  s.apply(delta("a", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11", 1)}));
  s.apply(delta("b", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11", 2)}));
  EXPECT_EQ(s.view(vip("198.18.200.1:80/tcp"))->backends[0].owner, "a");
  auto r = s.apply(Batch{.mode = Batch::Mode::kSetPriority, .source = "b", .priority = 500});
  EXPECT_FALSE(r.touched.empty());
  EXPECT_EQ(s.view(vip("198.18.200.1:80/tcp"))->backends[0].owner, "b");
  EXPECT_EQ(s.view(vip("198.18.200.1:80/tcp"))->backends[0].spec.weight, 2u);
}

TEST(Store, OneSourceCannotOverfillAVip) {
  Store s;
  std::vector<Event> events;
  const size_t limit = state::config_bounds::kMaxBackendsPerVip;
  for (size_t i = 0; i <= limit; i++) {
    IpAddress a = IpAddress::v4_from_be(htonl(0xc6120000u + static_cast<uint32_t>(i) + 1));
    events.push_back(Event{.kind = EventKind::kUpsertBackend,
                           .vip = vip("198.18.200.1:80/tcp"),
                           .backend = state::BackendSpec{.address = a}});
  }
  auto r = s.apply(delta("etcd", events));
  EXPECT_EQ(r.accepted, limit);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(reject_of(r.rejected[0]), Reject::kTooManyBackends);
}

// ---- merge() with the configured state --------------------------------------------------------

TEST(Merge, ConfigOwnsItsVipsDiscoveryAddsMembers) {
  state::DesiredState configured;
  state::VipSpec web;
  web.key = vip("198.18.200.1:80/tcp");
  web.name = "web";
  web.backends = {{.address = ip("198.18.3.11"), .weight = 4}};
  configured.vips[web.key] = web;

  Store s;
  s.set_priority("etcd", 100);
  state::VipSpec other;
  other.key = web.key;
  other.name = "web-from-etcd";
  other.hash = state::HashMode::kSourceOnly;
  s.apply(delta("etcd", {Event{.kind = EventKind::kUpsertVip, .vip = web.key, .vip_spec = other},
                         upsert_backend("198.18.200.1:80/tcp", "198.18.3.11", 1),
                         upsert_backend("198.18.200.1:80/tcp", "198.18.3.10", 1),
                         upsert_vip("198.18.200.9:80/tcp", "web"),
                         upsert_backend("198.18.200.9:80/tcp", "198.18.3.91", 1)}));
  auto m = merge(configured, s.snapshot(), state::Limits{});
  const auto& v = m.state.vips.at(web.key);
  EXPECT_EQ(v.name, "web");
  EXPECT_EQ(v.hash, state::HashMode::kFiveTuple);
  ASSERT_EQ(v.backends.size(), 2u);
  EXPECT_EQ(v.backends[0].address, ip("198.18.3.10"));       // sorted by address
  EXPECT_EQ(v.find_backend(ip("198.18.3.11"))->weight, 4u);  // configured entry wins
  // The discovered VIP keeps its backends, but not the name the configuration uses.
  const auto& d = m.state.vips.at(vip("198.18.200.9:80/tcp"));
  EXPECT_EQ(d.name, "");
  EXPECT_EQ(d.backends.size(), 1u);
  EXPECT_EQ(m.notes.size(), 2u);
  EXPECT_TRUE(state::validate(m.state, 512, 4096).ok());
}

TEST(Merge, LimitsLeaveOutDeterministically) {
  Store s;
  for (int i = 1; i <= 5; i++) {
    std::string v = "198.18.200." + std::to_string(i) + ":80/tcp";
    s.apply(delta("etcd", {upsert_backend(v.c_str(), "198.18.3.11"),
                           upsert_backend(v.c_str(), "198.18.3.12")}));
  }
  auto m = merge({}, s.snapshot(), state::Limits{.max_vips = 3, .max_backends = 5});
  EXPECT_EQ(m.state.vips.size(), 3u);
  size_t members = 0;
  for (const auto& [k, v] : m.state.vips) members += v.backends.size();
  EXPECT_EQ(members, 5u);
  EXPECT_TRUE(m.state.vips.contains(vip("198.18.200.1:80/tcp")));
  EXPECT_FALSE(m.state.vips.contains(vip("198.18.200.4:80/tcp")));
  EXPECT_TRUE(state::validate(m.state, 3, 5).ok());
}

// ---- Engine: coalescing with a fake clock ----------------------------------------------------

struct Recorder {
  std::vector<std::pair<Clock::time_point, std::vector<state::VipKey>>> calls;
  Snapshot last;
  Clock::time_point now{};
  Status next_result = ok_status();

  ApplyFn fn() {
    return [this](const Update& u) -> Status {
      if (!next_result) return next_result;
      calls.emplace_back(now, u.changed);
      last = u.discovered;
      return ok_status();
    };
  }
};

TEST(Engine, ThousandEventsInABurstAreOneCallback) {
  Recorder rec;
  Engine engine(EngineOptions{.debounce = 50ms}, rec.fn());
  Clock::time_point t{};
  rec.now = t;
  std::vector<Event> events;
  for (int i = 0; i < 1000; i++) {
    // 10 VIPs x 100 backends, each written with a new weight.
    std::string v = "198.18.200." + std::to_string(i % 10 + 1) + ":80/tcp";
    IpAddress a = IpAddress::v4_from_be(htonl(0xc6120300u + static_cast<uint32_t>(i / 10) + 1));
    events.push_back(Event{.kind = EventKind::kUpsertBackend,
                           .vip = vip(v.c_str()),
                           .backend = state::BackendSpec{.address = a, .weight = 2}});
  }
  for (size_t i = 0; i < events.size(); i += 10) {
    engine.submit(delta("etcd", {events.begin() + i, events.begin() + i + 10}), t);
  }
  EXPECT_FALSE(engine.poll(t).has_value());
  ASSERT_EQ(rec.calls.size(), 1u);
  EXPECT_EQ(rec.calls[0].second.size(), 10u);
  EXPECT_EQ(rec.last.vips.size(), 10u);
  for (const auto& [k, v] : rec.last.vips) EXPECT_EQ(v.backends.size(), 100u);
  EXPECT_EQ(engine.stats().events_accepted, 1000u);
}

TEST(Engine, AtMostOneCallbackPerWindowWhileEventsTrickle) {
  Recorder rec;
  Engine engine(EngineOptions{.debounce = 50ms}, rec.fn());
  const Clock::time_point t0{};
  // 1,000 events over 500 ms on 4 VIPs (one every 0.5 ms), the engine polled each time.
  std::optional<Clock::time_point> next;
  for (int i = 0; i < 1000; i++) {
    Clock::time_point t = t0 + std::chrono::microseconds(500 * i);
    // Due polls first, as the worker's timer would.
    while (next && *next <= t) {
      rec.now = *next;
      next = engine.poll(*next);
    }
    std::string v = "198.18.200." + std::to_string(i % 4 + 1) + ":80/tcp";
    engine.submit(
        delta("etcd", {upsert_backend(v.c_str(), "198.18.3.11", static_cast<uint32_t>(i + 1))}), t);
    rec.now = t;
    next = engine.poll(t);
  }
  while (next) {
    rec.now = *next;
    next = engine.poll(*next);
  }
  // Leading edge at t0, then one per 50 ms window: 11 callbacks for 500 ms.
  ASSERT_GE(rec.calls.size(), 10u);
  ASSERT_LE(rec.calls.size(), 12u);
  for (size_t i = 1; i < rec.calls.size(); i++) {
    EXPECT_GE(rec.calls[i].first - rec.calls[i - 1].first, 50ms);
    std::set<state::VipKey> unique(rec.calls[i].second.begin(), rec.calls[i].second.end());
    EXPECT_EQ(unique.size(), rec.calls[i].second.size());  // each VIP once per callback
  }
  EXPECT_EQ(rec.calls.front().first, t0);  // the first change is not delayed
  // The end state is the last event of each VIP.
  for (int k = 0; k < 4; k++) {
    std::string v = "198.18.200." + std::to_string(k + 1) + ":80/tcp";
    EXPECT_EQ(rec.last.vips.at(vip(v.c_str())).backends[0].spec.weight,
              static_cast<uint32_t>(996 + k + 1));
  }
}

TEST(Engine, ALoneEventAfterQuietIsAppliedAtOnce) {
  Recorder rec;
  Engine engine(EngineOptions{.debounce = 50ms}, rec.fn());
  Clock::time_point t{};
  engine.submit(delta("etcd", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11")}), t);
  EXPECT_FALSE(engine.poll(t).has_value());
  EXPECT_EQ(rec.calls.size(), 1u);
  // 10 ms later: inside the window, so it waits for the window's end.
  t += 10ms;
  engine.submit(delta("etcd", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.12")}), t);
  auto due = engine.poll(t);
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(*due, Clock::time_point{} + 50ms);
  EXPECT_EQ(rec.calls.size(), 1u);
  EXPECT_FALSE(engine.poll(*due).has_value());
  EXPECT_EQ(rec.calls.size(), 2u);
  // A second later: at once again.
  t += 1s;
  engine.submit(delta("etcd", {remove_backend("198.18.200.1:80/tcp", "198.18.3.12")}), t);
  EXPECT_FALSE(engine.poll(t).has_value());
  EXPECT_EQ(rec.calls.size(), 3u);
}

TEST(Engine, RestatingAppliedContentCostsNothing) {
  Recorder rec;
  Engine engine(EngineOptions{.debounce = 50ms}, rec.fn());
  Clock::time_point t{};
  engine.submit(delta("a", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11")}), t);
  (void)engine.poll(t);
  ASSERT_EQ(rec.calls.size(), 1u);
  // Another, lower source names the same backend: the view is unchanged.
  t += 1s;
  engine.submit(delta("b", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11", 7)}), t);
  EXPECT_FALSE(engine.poll(t).has_value());
  EXPECT_EQ(rec.calls.size(), 1u);
}

TEST(Engine, AFailedCallbackKeepsTheAppliedStateAndRetries) {
  Recorder rec;
  Engine engine(EngineOptions{.debounce = 50ms, .retry_initial = 100ms}, rec.fn());
  Clock::time_point t{};
  engine.submit(delta("a", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.11")}), t);
  (void)engine.poll(t);
  ASSERT_EQ(engine.generation(), 1u);
  t += 1s;
  rec.next_result = Error::invalid("reconcile failed");
  engine.submit(delta("a", {upsert_backend("198.18.200.1:80/tcp", "198.18.3.12")}), t);
  auto retry = engine.poll(t);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(*retry, t + 100ms);
  EXPECT_EQ(engine.stats().update_errors, 1u);
  EXPECT_EQ(engine.applied()->vips.at(vip("198.18.200.1:80/tcp")).backends.size(), 1u);
  rec.next_result = ok_status();
  EXPECT_FALSE(engine.poll(*retry).has_value());
  EXPECT_EQ(engine.generation(), 2u);
  EXPECT_EQ(engine.applied()->vips.at(vip("198.18.200.1:80/tcp")).backends.size(), 2u);
}

// ---- Running sources ---------------------------------------------------------------------------

// Collects updates from the worker thread; waits for a condition on the latest snapshot.
using testing::Collector;

std::optional<SourceStatus> status_of(const Discovery& d, const std::string& name) {
  for (const auto& s : d.sources()) {
    if (s.name == name) return s;
  }
  return std::nullopt;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

class TempDir {
 public:
  TempDir() {
    std::string t = std::filesystem::temp_directory_path().string() + "/xlb-disc-XXXXXX";
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  // Written beside, then renamed into place: what config-management tools do.
  void put(const std::string& name, const std::string& text) const {
    const std::string tmp = path_ + "/." + name + ".tmp";
    {
      std::ofstream out(tmp);
      out << text;
    }
    std::filesystem::rename(tmp, path_ + "/" + name);
  }
  void write_in_place(const std::string& name, const std::string& text) const {
    std::ofstream out(path_ + "/" + name);
    out << text;
  }

 private:
  std::string path_;
};

size_t backends_of(const Snapshot& s, const char* v) {
  auto it = s.vips.find(vip(v));
  return it == s.vips.end() ? 0 : it->second.backends.size();
}

TEST(FilesSource, FollowsTheDirectoryAndKeepsLastGoodOfABrokenFile) {
  TempDir dir;
  dir.put("web.yaml", "vip: 198.18.200.1:80/tcp\nname: web\nbackends:\n  - address: 198.18.3.11\n");
  Collector c;
  DiscoveryConfig config{.debounce_ms = 5,
                         .sources = {SourceConfig{.name = "services",
                                                  .type = SourceType::kFiles,
                                                  .priority = 200,
                                                  .files = {.dir = dir.path()}}}};
  auto d = Discovery::start(config, c.fn());
  ASSERT_TRUE(d.ok()) << d.error().message;
  // Initial scan.
  ASSERT_TRUE(c.wait([](const Snapshot& s) { return backends_of(s, "198.18.200.1:80/tcp") == 1; }));
  ASSERT_TRUE(
      eventually([&] { return status_of(**d, "services")->state == SourceState::kConnected; }));

  // Atomic replace adds a backend.
  dir.put("web.yaml",
          "vip: 198.18.200.1:80/tcp\nname: web\nbackends:\n  - address: 198.18.3.11\n"
          "  - address: 198.18.3.12\n    weight: 3\n");
  ASSERT_TRUE(c.wait([](const Snapshot& s) { return backends_of(s, "198.18.200.1:80/tcp") == 2; }));

  // A broken file is reported and ignored; the last good content stays.
  const int before = c.updates();
  dir.put("web.yaml",
          "vip: 198.18.200.1:80/tcp\nbackends:\n  - address: 198.18.3.11\n"
          "    weight: lots\n");
  ASSERT_TRUE(eventually([&] { return !status_of(**d, "services")->problems.empty(); }));
  auto st = *status_of(**d, "services");
  EXPECT_NE(st.problems[0].find("web.yaml:4:"), std::string::npos) << st.problems[0];
  EXPECT_NE(st.problems[0].find("last good content stays"), std::string::npos);
  EXPECT_EQ(st.rejected_by_reason[static_cast<size_t>(Reject::kWrongType)], 1u);
  EXPECT_TRUE((*d)->wait_idle(2s));
  EXPECT_EQ(c.updates(), before);
  EXPECT_EQ(backends_of(c.last(), "198.18.200.1:80/tcp"), 2u);
  EXPECT_EQ(c.last().vips.at(vip("198.18.200.1:80/tcp")).spec->name, "web");

  // Fixed by a write in place (IN_CLOSE_WRITE); a second service arrives; temporaries and
  // other names are ignored.
  dir.write_in_place("web.yaml",
                     "vip: 198.18.200.1:80/tcp\nbackends:\n  - address: "
                     "198.18.3.13\n");
  dir.write_in_place("api.json", R"({"vip": "[2001:db8:200::1]:443/tcp",
                                     "backends": [{"address": "2001:db8:3::11"}]})");
  dir.write_in_place(".api.json.swp", "garbage");
  dir.write_in_place("notes.txt", "garbage");
  ASSERT_TRUE(c.wait([](const Snapshot& s) {
    return backends_of(s, "[2001:db8:200::1]:443/tcp") == 1 &&
           backends_of(s, "198.18.200.1:80/tcp") == 1 &&
           s.vips.at(vip("198.18.200.1:80/tcp")).backends[0].spec.address == ip("198.18.3.13");
  }));
  EXPECT_TRUE(eventually([&] { return status_of(**d, "services")->problems.empty(); }));
  EXPECT_EQ(c.last().vips.at(vip("198.18.200.1:80/tcp")).backends[0].owner, "services/web.yaml");

  // Removing a file removes its services.
  std::filesystem::remove(dir.path() + "/web.yaml");
  ASSERT_TRUE(c.wait([](const Snapshot& s) {
    return !s.vips.contains(vip("198.18.200.1:80/tcp")) &&
           s.vips.contains(vip("[2001:db8:200::1]:443/tcp"));
  }));

  // The directory going away is a source going down: entries stay, the source is stale, and it
  // recovers when the directory is back.
  const std::string moved = dir.path() + ".moved";
  std::filesystem::rename(dir.path(), moved);
  ASSERT_TRUE(eventually([&] { return status_of(**d, "services")->state == SourceState::kStale; }));
  EXPECT_EQ(status_of(**d, "services")->stale_total, 1u);
  EXPECT_TRUE((*d)->wait_idle(2s));
  EXPECT_TRUE(c.last().vips.contains(vip("[2001:db8:200::1]:443/tcp")));
  std::filesystem::rename(moved, dir.path());
  ASSERT_TRUE(
      eventually([&] { return status_of(**d, "services")->state == SourceState::kConnected; }));
  dir.put("web.yaml", "vip: 198.18.200.1:80/tcp\nbackends:\n  - address: 198.18.3.14\n");
  ASSERT_TRUE(c.wait([](const Snapshot& s) { return backends_of(s, "198.18.200.1:80/tcp") == 1; }));
  (*d)->stop();
}

TEST(FilesSource, ASymlinkIsAppliedWhenCreated) {
  TempDir dir, elsewhere;
  {
    std::ofstream out(elsewhere.path() + "/web.yaml");
    out << "vip: 198.18.200.1:80/tcp\nbackends: [{address: 198.18.3.11}]\n";
  }
  Collector c;
  auto d = Discovery::start(
      DiscoveryConfig{
          .debounce_ms = 5,
          .sources = {SourceConfig{
              .name = "svc", .type = SourceType::kFiles, .files = {.dir = dir.path()}}}},
      c.fn());
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(eventually([&] { return status_of(**d, "svc")->state == SourceState::kConnected; }));
  std::filesystem::create_symlink(elsewhere.path() + "/web.yaml", dir.path() + "/web.yaml");
  ASSERT_TRUE(c.wait([](const Snapshot& s) { return backends_of(s, "198.18.200.1:80/tcp") == 1; }));
}

TEST(FilesSource, AMissingDirectoryIsAnErrorUntilItAppears) {
  TempDir parent;
  const std::string dir = parent.path() + "/later";
  Collector c;
  auto d = Discovery::start(
      DiscoveryConfig{.debounce_ms = 5,
                      .sources = {SourceConfig{
                          .name = "svc", .type = SourceType::kFiles, .files = {.dir = dir}}}},
      c.fn());
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(eventually([&] { return status_of(**d, "svc")->state == SourceState::kError; }));
  ::mkdir(dir.c_str(), 0755);
  {
    std::ofstream out(dir + "/a.yaml");
    out << "vip: 198.18.200.1:80/tcp\nbackends: [{address: 198.18.3.11}]\n";
  }
  ASSERT_TRUE(
      c.wait([](const Snapshot& s) { return backends_of(s, "198.18.200.1:80/tcp") == 1; }, 10s));
  EXPECT_EQ(status_of(**d, "svc")->state, SourceState::kConnected);
}

TEST(PushSource, ValidatesQueuesAndReportsEveryRejection) {
  Collector c;
  auto d = Discovery::start(
      DiscoveryConfig{
          .debounce_ms = 5,
          .sources = {SourceConfig{.name = "hooks", .type = SourceType::kPush, .priority = 300}}},
      c.fn());
  ASSERT_TRUE(d.ok());
  auto r = (*d)->push(R"({"events": [
      {"kind": "upsert_vip", "vip": "198.18.200.1:80/tcp", "spec": {"name": "web"}},
      {"kind": "upsert_backend", "vip": "198.18.200.1:80/tcp",
       "backend": {"address": "198.18.3.11", "weight": 2}},
      {"kind": "upsert_backend", "vip": "198.18.200.1:80/tcp",
       "backend": {"address": "198.18.3.12"}}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->source, "hooks");
  EXPECT_EQ(r->accepted, 3u);
  ASSERT_TRUE(c.wait([](const Snapshot& s) { return backends_of(s, "198.18.200.1:80/tcp") == 2; }));

  // One bad event: nothing of the body is applied, every bad event is reported.
  r = (*d)->push(R"({"events": [
      {"kind": "remove_backend", "vip": "198.18.200.1:80/tcp", "backend": {"address": "198.18.3.11"}},
      {"kind": "upsert_backend", "vip": "198.18.200.1:80/tcp", "backend": {"address": "x"}},
      {"kind": "remove_vip", "vip": "198.18.200.1:80"}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->accepted, 0u);
  ASSERT_EQ(r->rejected.size(), 2u);
  EXPECT_EQ(r->rejected[0].index, 1u);
  EXPECT_EQ(r->rejected[1].reason, Reject::kBadVip);
  EXPECT_EQ(r->rejected[0].reason, Reject::kBadAddress);
  EXPECT_TRUE((*d)->wait_idle(2s));
  EXPECT_EQ(backends_of(c.last(), "198.18.200.1:80/tcp"), 2u);  // never cleared
  auto st = *status_of(**d, "hooks");
  EXPECT_EQ(st.events_rejected, 2u);
  EXPECT_EQ(st.events_applied, 3u);
  EXPECT_EQ(st.state, SourceState::kConnected);

  // Body-level problems.
  auto bad = (*d)->push("not json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(reject_of(bad.error()), Reject::kSyntax);
  bad = (*d)->push(R"({"source": "consul", "events": []})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(reject_of(bad.error()), Reject::kUnknownSource);

  // replace: the body is the source's whole content.
  r = (*d)->push(R"({"replace": true, "events": [
      {"kind": "upsert_backend", "vip": "198.18.200.2:80/tcp", "backend": {"address": "198.18.3.21"}}]})");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(c.wait([](const Snapshot& s) {
    return !s.vips.contains(vip("198.18.200.1:80/tcp")) &&
           backends_of(s, "198.18.200.2:80/tcp") == 1;
  }));
}

TEST(Discovery, TwoSourcesNamingOneBackendDoNotFight) {
  TempDir dir;
  dir.put("web.yaml",
          "vip: 198.18.200.1:80/tcp\nbackends:\n  - address: 198.18.3.11\n"
          "    weight: 1\n");
  Collector c;
  auto d = Discovery::start(
      DiscoveryConfig{
          .debounce_ms = 5,
          .sources = {SourceConfig{.name = "services",
                                   .type = SourceType::kFiles,
                                   .priority = 200,
                                   .files = {.dir = dir.path()}},
                      SourceConfig{.name = "hooks", .type = SourceType::kPush, .priority = 300}}},
      c.fn());
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(c.wait([](const Snapshot& s) { return backends_of(s, "198.18.200.1:80/tcp") == 1; }));
  auto backend = [&] { return c.last().vips.at(vip("198.18.200.1:80/tcp")).backends.at(0); };

  // The push (priority 300) wins the backend whatever the files say afterwards.
  ASSERT_TRUE((*d)->push(R"({"events": [{"kind": "upsert_backend", "vip": "198.18.200.1:80/tcp",
      "backend": {"address": "198.18.3.11", "weight": 9, "state": "draining"}}]})")
                  .ok());
  ASSERT_TRUE(c.wait([&](const Snapshot& s) {
    return s.vips.at(vip("198.18.200.1:80/tcp")).backends.at(0).spec.weight == 9;
  }));
  dir.put("web.yaml",
          "vip: 198.18.200.1:80/tcp\nbackends:\n  - address: 198.18.3.11\n"
          "    weight: 2\n");
  EXPECT_TRUE(eventually([&] { return status_of(**d, "services")->events_applied >= 4; }));
  EXPECT_TRUE((*d)->wait_idle(2s));
  EXPECT_EQ(backend().spec.weight, 9u);
  EXPECT_EQ(backend().owner, "hooks");

  // The push removes its entry: the file's entry (weight 2) serves, the backend never leaves.
  ASSERT_TRUE((*d)->push(R"({"events": [{"kind": "remove_backend", "vip": "198.18.200.1:80/tcp",
      "backend": {"address": "198.18.3.11"}}]})")
                  .ok());
  ASSERT_TRUE(c.wait([&](const Snapshot& s) {
    const auto& b = s.vips.at(vip("198.18.200.1:80/tcp")).backends.at(0);
    return b.spec.weight == 2 && b.owner == "services/web.yaml";
  }));

  // Reconfigured without the files source: its entries go.
  ASSERT_TRUE((*d)->reconfigure(DiscoveryConfig{.debounce_ms = 5,
                                                .sources = {SourceConfig{.name = "hooks",
                                                                         .type = SourceType::kPush,
                                                                         .priority = 300}}})
                  .ok());
  ASSERT_TRUE(c.wait([](const Snapshot& s) { return s.vips.empty(); }));
  EXPECT_FALSE(status_of(**d, "services").has_value());
}

}  // namespace
}  // namespace xlb::discovery
