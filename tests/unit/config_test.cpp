// SPDX-License-Identifier: Apache-2.0
// The configuration file: the full and minimal examples read field by field, and every file of
// config_files/bad/ refused with the line it names and the message it must carry.
#include "xlb/state/config.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "xlb/state/types.h"

namespace xlb::state {
namespace {

const std::string kDir = XLB_CONFIG_TEST_DIR;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }
VipKey vip_key(const char* text) { return *VipKey::parse(text); }

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- Good files ---------------------------------------------------------------------------

TEST(Config, FullExampleSetsEveryKey) {
  auto parsed = load_config(kDir + "/good/full.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const GlobalConfig& g = parsed->global;
  EXPECT_EQ(g.interface, "eth0");
  EXPECT_EQ(g.attach_mode, dataplane::AttachMode::kNative);
  ASSERT_TRUE(g.next_hop_mac.has_value());
  EXPECT_EQ(*g.next_hop_mac, (std::array<uint8_t, 6>{0x02, 0, 0, 0, 0x02, 0xfe}));
  ASSERT_TRUE(g.encap_source_v4.has_value());
  EXPECT_EQ(g.encap_source_v4->to_string(), "198.19.0.0/16");
  ASSERT_TRUE(g.encap_source_v6.has_value());
  EXPECT_EQ(g.encap_source_v6->to_string(), "2001:db8:ff::/64");
  EXPECT_EQ(g.hash_seed, 12345u);
  EXPECT_EQ(g.gue_port, 6081);
  EXPECT_EQ(g.max_packet_size, 1600u);
  EXPECT_EQ(g.udp_idle_timeout_ms, 45000u);
  EXPECT_EQ(g.new_flows_per_second, 0u);
  EXPECT_TRUE(g.pass_fragments);
  EXPECT_TRUE(g.pass_ip_options);
  EXPECT_EQ(g.flow_table, dataplane::FlowTable::kPerCpuMaps);
  EXPECT_EQ(g.limits, (Limits{.max_vips = 1024, .max_backends = 8192, .flows_per_cpu = 2097152}));
  EXPECT_EQ(g.pin_root, "/sys/fs/bpf/xlb-test");
  EXPECT_EQ(g.api_socket, "/run/xlb/test.sock");
  EXPECT_EQ(g.api_tcp_listen, std::optional<std::string>("127.0.0.1:9476"));
  EXPECT_EQ(g.api_token_file, std::optional<std::string>("/etc/xlb/token"));
  EXPECT_EQ(g.metrics_listen, "");  // "" turns the endpoint off

  const auto& vips = parsed->state.vips;
  ASSERT_EQ(vips.size(), 4u);

  const VipSpec& web = vips.at(vip_key("198.18.200.1:80/tcp"));
  EXPECT_EQ(web.name, "web");
  EXPECT_FALSE(web.no_lru);
  EXPECT_EQ(web.hash, HashMode::kFiveTuple);
  EXPECT_FALSE(web.gue);
  EXPECT_TRUE(web.icmp_too_big);
  EXPECT_FALSE(web.no_rate_guard);
  EXPECT_EQ(web.ring_size, std::optional<uint32_t>(65537));
  EXPECT_EQ(web.abi_flags(), uint32_t{XLB_VIP_ICMP_TOO_BIG});
  // Written .12, .11, .13: stored sorted, defaults filled in.
  ASSERT_EQ(web.backends.size(), 3u);
  EXPECT_EQ(web.backends[0], (BackendSpec{ip("198.18.3.11"), 1, BackendState::kActive}));
  EXPECT_EQ(web.backends[1],
            (BackendSpec{ip("198.18.3.12"), 2, BackendState::kActive,
                         HealthCheckOverride{.interval_ms = 2000,
                                             .timeout_ms = 1500,
                                             .port = 8081,
                                             .http_path = "/ready"}}));
  EXPECT_EQ(web.backends[2],
            (BackendSpec{ip("198.18.3.13"), 1, BackendState::kDraining,
                         HealthCheckOverride{.type = CheckType::kNone}}));
  EXPECT_EQ(web.all_down, AllDownPolicy::kDrop);
  const HealthCheckSpec& h = web.health;
  EXPECT_EQ(h.type, CheckType::kHttp);
  EXPECT_EQ(h.interval_ms, 1000u);
  EXPECT_EQ(h.timeout_ms, 500u);
  EXPECT_EQ(h.fastinter_ms, 200u);
  EXPECT_EQ(h.downinter_ms, 5000u);
  EXPECT_EQ(h.rise, 3u);
  EXPECT_EQ(h.fall, 2u);
  EXPECT_EQ(h.port, std::optional<uint16_t>(8080));
  EXPECT_FALSE(h.address.has_value());
  EXPECT_EQ(h.http_path, "/healthz?full=1");
  EXPECT_EQ(h.http_host, "www.example.com");
  EXPECT_EQ(h.http_status_min, 200);
  EXPECT_EQ(h.http_status_max, 204);
  EXPECT_EQ(h.http_body_contains, "status: ok");
  EXPECT_EQ(h.slow_start_ms, 30000u);
  // Per backend: the VIP's check, with the backend's own keys where it has some.
  EXPECT_EQ(web.health_for(web.backends[0]), h);
  HealthCheckSpec own = h;
  own.interval_ms = 2000;
  own.timeout_ms = 1500;
  own.port = 8081;
  own.http_path = "/ready";
  EXPECT_EQ(web.health_for(web.backends[1]), own);
  EXPECT_EQ(web.health_for(web.backends[2]).type, CheckType::kNone);

  const VipSpec& dns = vips.at(vip_key("198.18.200.2/udp"));
  EXPECT_EQ(dns.key.port, 0);
  EXPECT_EQ(dns.key.protocol, Protocol::kUdp);
  EXPECT_EQ(dns.name, "dns.v4");
  EXPECT_TRUE(dns.no_lru);
  EXPECT_EQ(dns.hash, HashMode::kSourceOnly);
  EXPECT_TRUE(dns.gue);
  EXPECT_FALSE(dns.icmp_too_big);
  EXPECT_TRUE(dns.no_rate_guard);
  EXPECT_EQ(dns.ring_size, std::optional<uint32_t>(7919));
  EXPECT_EQ(dns.abi_flags(),
            uint32_t{XLB_VIP_NO_LRU | XLB_VIP_HASH_SRC_ONLY | XLB_VIP_GUE | XLB_VIP_NO_RATE_GUARD});
  ASSERT_EQ(dns.backends.size(), 1u);  // IPv4 VIP, IPv6 backend (4in6)
  EXPECT_EQ(dns.backends[0], (BackendSpec{ip("2001:db8:3::11"), 0, BackendState::kDisabled}));
  EXPECT_EQ(dns.health.type, CheckType::kUdpDns);
  EXPECT_EQ(dns.health.port, std::optional<uint16_t>(53));
  EXPECT_EQ(dns.health.dns_query_name, "health.example.com.");
  EXPECT_EQ(dns.all_down, AllDownPolicy::kKeepLastSet);

  const VipSpec& v6 = vips.at(vip_key("[2001:db8:200::1]:443/udp"));
  EXPECT_TRUE(v6.key.address.is_v6());
  EXPECT_EQ(v6.key.port, 443);
  EXPECT_EQ(v6.name, "");
  EXPECT_EQ(v6.hash, HashMode::kNoSourcePort);
  EXPECT_EQ(v6.ring_size, std::nullopt);
  // IPv6 VIP with an IPv4 backend (6in4); IPv4 sorts before IPv6.
  ASSERT_EQ(v6.backends.size(), 2u);
  EXPECT_EQ(v6.backends[0].address, ip("198.18.3.11"));
  EXPECT_EQ(v6.backends[1].address, ip("2001:db8:3::12"));
  EXPECT_EQ(v6.health.type, CheckType::kExec);
  EXPECT_EQ(v6.health.address, std::optional<IpAddress>(ip("2001:db8:3::99")));
  EXPECT_EQ(v6.health.exec_command,
            (std::vector<std::string>{"/usr/local/bin/check-db", "--quick", ""}));
  EXPECT_EQ(v6.health.interval_ms, 2000u);  // defaults where the map says nothing
  EXPECT_EQ(v6.health.timeout_ms, 1000u);

  EXPECT_TRUE(vips.at(vip_key("198.18.200.3:53/udp")).backends.empty());
}

TEST(Config, FullExampleGivesTheDataPlaneItsMasks) {
  auto parsed = load_config(kDir + "/good/full.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  xlb_config c = to_abi(parsed->global, *parsed->global.next_hop_mac);
  // /16: 16 host bits of the outer IPv4 source carry flow-hash bits.
  EXPECT_EQ(c.encap_src_v4, ip("198.19.0.0").abi().words[0]);
  EXPECT_EQ(c.encap_src_v4_host_mask, htonl(0x0000ffffu));
  // /64: the last word is all host bits.
  EXPECT_EQ(c.encap_src_v6_host_mask, 0xffffffffu);
  EXPECT_EQ(c.gue_port, htons(6081));
  EXPECT_EQ(c.udp_idle_ns, 45ULL * 1000 * 1000 * 1000);
  EXPECT_EQ(c.flags, uint32_t{XLB_CFG_PASS_FRAGMENTS | XLB_CFG_PASS_IP_OPTIONS});
  EXPECT_EQ(c.next_hop_mac[5], 0xfe);
}

TEST(Config, MinimalExampleTakesEveryDefault) {
  auto parsed = load_config(kDir + "/good/minimal.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const GlobalConfig& g = parsed->global;
  EXPECT_EQ(g.interface, "eth0");
  ASSERT_TRUE(g.encap_source_v4.has_value());
  EXPECT_EQ(g.encap_source_v4->to_string(), "198.19.0.0/16");
  // Every default spelled out, so a changed default shows up here and in docs/config.md.
  EXPECT_EQ(g.attach_mode, dataplane::AttachMode::kAuto);
  EXPECT_FALSE(g.next_hop_mac.has_value());
  EXPECT_FALSE(g.encap_source_v6.has_value());
  EXPECT_EQ(g.hash_seed, 0u);
  EXPECT_EQ(g.gue_port, 6080);
  EXPECT_EQ(g.max_packet_size, 1514u);
  EXPECT_EQ(g.udp_idle_timeout_ms, 30000u);
  EXPECT_EQ(g.new_flows_per_second, 125000u);
  EXPECT_FALSE(g.pass_fragments);
  EXPECT_FALSE(g.pass_ip_options);
  EXPECT_EQ(g.flow_table, dataplane::FlowTable::kSharedPerCpuLru);
  EXPECT_EQ(g.limits, (Limits{.max_vips = 512, .max_backends = 4096, .flows_per_cpu = 1u << 20}));
  EXPECT_EQ(g.pin_root, "/sys/fs/bpf/xlb");
  EXPECT_EQ(g.api_socket, "/run/xlb/xlbd.sock");
  EXPECT_FALSE(g.api_tcp_listen.has_value());
  EXPECT_FALSE(g.api_token_file.has_value());
  EXPECT_EQ(g.metrics_listen, "127.0.0.1:9475");

  ASSERT_EQ(parsed->state.vips.size(), 1u);
  const VipSpec& vip = parsed->state.vips.begin()->second;
  EXPECT_EQ(vip.key, vip_key("198.18.200.1:80/tcp"));
  EXPECT_EQ(vip.name, "");
  EXPECT_EQ(vip.abi_flags(), 0u);
  EXPECT_EQ(vip.hash, HashMode::kFiveTuple);
  EXPECT_EQ(vip.ring_size, std::nullopt);
  ASSERT_EQ(vip.backends.size(), 1u);
  EXPECT_EQ(vip.backends[0], (BackendSpec{ip("198.18.3.11"), 1, BackendState::kActive}));
  // No health map: no checks, and the documented defaults for when a type is set.
  EXPECT_EQ(vip.health, HealthCheckSpec{});
  EXPECT_EQ(vip.health.type, CheckType::kNone);
  EXPECT_EQ(vip.health.interval_ms, 2000u);
  EXPECT_EQ(vip.health.timeout_ms, 1000u);
  EXPECT_EQ(vip.health.rise, 2u);
  EXPECT_EQ(vip.health.fall, 3u);
  EXPECT_EQ(vip.health.http_path, "/");
  EXPECT_EQ(vip.health.http_status_min, 200);
  EXPECT_EQ(vip.health.http_status_max, 399);
  EXPECT_EQ(vip.health.slow_start_ms, 0u);
  EXPECT_EQ(vip.all_down, AllDownPolicy::kKeepLastSet);
}

TEST(Config, HealthChecksOfEveryType) {
  const std::string head = "interface: eth0\nvips:\n  - vip: 198.18.200.1:443/tcp\n";
  // https is supported (OpenSSL), a single status is a range of one.
  auto https = parse_config(head + "    health: {type: https, http_status: \"200\"}\n", "x");
  ASSERT_TRUE(https.ok()) << https.error().message;
  const auto& h = https->state.vips.begin()->second.health;
  EXPECT_EQ(h.type, CheckType::kHttps);
  EXPECT_EQ(h.http_status_min, 200);
  EXPECT_EQ(h.http_status_max, 200);
  // The health map may come before the VIP's address: the port check still sees the VIP.
  auto order = parse_config(
      "interface: eth0\nvips:\n  - health: {type: tcp}\n    vip: 198.18.200.2/tcp\n", "x");
  ASSERT_FALSE(order.ok());
  EXPECT_NE(order.error().message.find("port-less VIP 198.18.200.2/tcp needs a port"),
            std::string::npos)
      << order.error().message;
  // An exec check needs no port, even for a port-less VIP; the root is the default DNS name.
  auto exec = parse_config(
      "interface: eth0\nvips:\n  - vip: 198.18.200.2/udp\n    health: {type: exec, "
      "exec_command: [check]}\n  - vip: 198.18.200.3:53/udp\n    health: {type: udp-dns, "
      "dns_query_name: .}\n",
      "x");
  ASSERT_TRUE(exec.ok()) << exec.error().message;
  // Type none switches checks off and keeps the other settings for later.
  auto none = parse_config(head + "    health: {type: none, http_path: /x, interval: 5s}\n", "x");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(none->state.vips.begin()->second.health.http_path, "/x");
  // Bad check targets are refused like backends.
  auto multicast = parse_config(head + "    health: {type: tcp, address: 224.0.0.1}\n", "x");
  ASSERT_FALSE(multicast.ok());
  EXPECT_NE(multicast.error().message.find("vips[0].health.address: 224.0.0.1 is a multicast"),
            std::string::npos)
      << multicast.error().message;
}

TEST(Config, BackendHealthOverridesTheKeysItWrites) {
  // The VIP's health comes after the backends: the overrides are read as written and checked
  // against the whole VIP.
  const char* text = R"(interface: eth0
encap_source_v4: 198.19.0.0/16
vips:
  - vip: 198.18.200.2/tcp
    backends:
      - address: 198.18.3.11
      - address: 198.18.3.12
        health: {address: 127.0.0.1, port: 9001, fall: 5, http_status: 200-299}
      - address: 198.18.3.13
        health: {type: tcp, port: 22, interval: 500ms, timeout: 200ms}
      - address: 198.18.3.14
        health: {type: exec, exec_command: [/bin/true], slow_start: 10s}
    health: {type: http, port: 8080, http_path: /healthz, rise: 4}
)";
  auto parsed = parse_config(text, "x");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const VipSpec& vip = parsed->state.vips.begin()->second;
  ASSERT_EQ(vip.backends.size(), 4u);
  EXPECT_TRUE(vip.backends[0].health.empty());
  EXPECT_EQ(vip.health_for(vip.backends[0]), vip.health);

  const HealthCheckSpec b12 = vip.health_for(vip.backends[1]);
  EXPECT_EQ(b12.type, CheckType::kHttp);  // the VIP's
  EXPECT_EQ(b12.http_path, "/healthz");
  EXPECT_EQ(b12.rise, 4u);
  EXPECT_EQ(b12.address, std::optional<IpAddress>(ip("127.0.0.1")));  // its own
  EXPECT_EQ(b12.port, std::optional<uint16_t>(9001));
  EXPECT_EQ(b12.fall, 5u);
  EXPECT_EQ(b12.http_status_min, 200);
  EXPECT_EQ(b12.http_status_max, 299);
  // Only the keys written are in the override.
  EXPECT_EQ(vip.backends[1].health,
            (HealthCheckOverride{.fall = 5,
                                 .port = 9001,
                                 .address = ip("127.0.0.1"),
                                 .http_status_min = 200,
                                 .http_status_max = 299}));

  const HealthCheckSpec b13 = vip.health_for(vip.backends[2]);
  EXPECT_EQ(b13.type, CheckType::kTcp);
  EXPECT_EQ(b13.port, std::optional<uint16_t>(22));
  EXPECT_EQ(b13.interval_ms, 500u);
  EXPECT_EQ(b13.timeout_ms, 200u);
  EXPECT_EQ(b13.rise, 4u);  // inherited, though the type is its own

  const HealthCheckSpec b14 = vip.health_for(vip.backends[3]);
  EXPECT_EQ(b14.type, CheckType::kExec);
  EXPECT_EQ(b14.exec_command, std::vector<std::string>{"/bin/true"});
  EXPECT_EQ(b14.slow_start_ms, 10000u);

  // A backend of a VIP without checks may have its own; written in another key order, the
  // override is the same (DesiredState compares backends with it).
  auto own = [](const char* health) {
    return parse_config(std::string("interface: eth0\nencap_source_v4: 198.19.0.0/16\nvips:\n"
                                    "  - vip: 198.18.200.2/udp\n    backends:\n"
                                    "      - {address: 198.18.3.11, health: ") +
                            health + "}\n",
                        "y");
  };
  auto a = own("{type: udp-dns, port: 53, dns_query_name: example.com}");
  auto b = own("{dns_query_name: example.com, port: 53, type: udp-dns}");
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_TRUE(a->state == b->state);
  const VipSpec& dns = a->state.vips.begin()->second;
  EXPECT_EQ(dns.health.type, CheckType::kNone);
  EXPECT_EQ(dns.health_for(dns.backends[0]).type, CheckType::kUdpDns);
  auto other = own("{type: udp-dns, port: 5353, dns_query_name: example.com}");
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_FALSE(a->state == other->state);
  // An empty map overrides nothing.
  auto empty = own("{}");
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_TRUE(empty->state.vips.begin()->second.backends[0].health.empty());
}

TEST(Config, DocumentedExampleIsValid) {
  // docs/config.md shows a full example; it must keep parsing as the schema evolves.
  const std::string doc = read_file(kDir + "/../../../docs/config.md");
  auto marker = doc.find("<!-- config-example -->");
  ASSERT_NE(marker, std::string::npos) << "docs/config.md lost its example marker";
  auto start = doc.find("```yaml\n", marker);
  ASSERT_NE(start, std::string::npos);
  start += 8;
  auto end = doc.find("```", start);
  ASSERT_NE(end, std::string::npos);
  auto parsed = parse_config(doc.substr(start, end - start), "docs/config.md example");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->state.vips.size(), 3u);
  EXPECT_EQ(parsed->global.limits, Limits{});  // the example shows the defaults
  EXPECT_EQ(parsed->global.udp_idle_timeout_ms, 30000u);
}

TEST(Config, InterfaceAloneIsAConfiguration) {
  // No VIPs yet (they may come from the API): no outer-source prefix is needed either.
  auto parsed = parse_config("interface: eth0\n", "inline");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(parsed->state.vips.empty());
  auto empty_list = parse_config("interface: eth0\nvips: []\n", "inline");
  ASSERT_TRUE(empty_list.ok()) << empty_list.error().message;
}

TEST(Config, BackendOrderInTheFileDoesNotMatter) {
  const char* a = R"(interface: eth0
encap_source_v4: 198.19.0.0/16
vips:
  - vip: 198.18.200.1:80/tcp
    backends: [{address: 198.18.3.13}, {address: 198.18.3.11, weight: 3}, {address: 198.18.3.12}]
)";
  const char* b = R"(interface: eth0
encap_source_v4: 198.19.0.0/16
vips:
  - vip: 198.18.200.1:80/tcp
    backends:
      - {address: 198.18.3.12}
      - {address: 198.18.3.11, weight: 3}
      - {address: 198.18.3.13}
)";
  auto pa = parse_config(a, "a");
  auto pb = parse_config(b, "b");
  ASSERT_TRUE(pa.ok()) << pa.error().message;
  ASSERT_TRUE(pb.ok()) << pb.error().message;
  EXPECT_TRUE(pa->state == pb->state);
}

TEST(Config, BooleansAndDurationsInEveryAcceptedSpelling) {
  auto parsed = parse_config(
      "interface: eth0\npass_fragments: TRUE\npass_ip_options: False\nudp_idle_timeout: 2m\n",
      "inline");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(parsed->global.pass_fragments);
  EXPECT_FALSE(parsed->global.pass_ip_options);
  EXPECT_EQ(parsed->global.udp_idle_timeout_ms, 120000u);
}

// ---- Bad files ----------------------------------------------------------------------------

struct BadFile {
  const char* name;     // config_files/bad/<name>.yaml
  int line;             // 1-based line the error must name
  const char* message;  // a part of the message that says what is wrong
};

const BadFile kBadFiles[] = {
    {"unknown_top_level_key", 3, "unknown key (did you mean 'hash_seed'?"},
    {"unknown_vip_key", 6, "vips[0].backend: unknown key (did you mean 'backends'?"},
    {"unknown_backend_key", 8, "vips[0].backends[0].priority: unknown key"},
    {"unknown_limits_key", 4, "limits.max_flows: unknown key"},
    {"vip_without_protocol", 4, "want ADDRESS[:PORT]/PROTOCOL"},
    {"vip_port_zero", 4, "leave the port out for a port-less VIP"},
    {"vip_bad_protocol", 4, "want tcp or udp"},
    {"vip_bad_address", 4, "is not an IPv4 or IPv6 address"},
    {"vip_missing", 4, "vips[0]: missing required key 'vip'"},
    {"backend_bad_address", 7, "'198.18.3.300' is not an IPv4 or IPv6 address"},
    {"backend_with_port", 7, "a backend is an address without a port"},
    {"backend_not_a_map", 7, "vips[0].backends[0]: expected a map, got '198.18.3.11'"},
    {"duplicate_vip", 5, "198.18.200.1:80/tcp is already defined on line 4"},
    {"duplicate_backend", 9, "198.18.3.11 is already a backend of this VIP, on line 7"},
    {"duplicate_name", 7, "name 'web' is already used by the VIP on line 5"},
    {"duplicate_key", 4, "gue_port: given twice, first on line 3"},
    {"ring_size_not_prime", 5,
     "65536 is not prime (Maglev needs a prime; nearest: 65521 or 65537)"},
    {"ring_size_too_small", 5, "ring_size: 5 is out of range 7..1048573"},
    {"weight_negative", 8, "weight: -1 is out of range 0..65535"},
    {"weight_huge", 8, "weight: 70000 is out of range 0..65535"},
    {"backend_bad_state", 8, "want active, draining or disabled"},
    {"vip_bad_hash", 5, "want 5tuple, src or no-sport"},
    {"missing_interface", 2, "missing required key 'interface'"},
    {"empty_interface", 2, "interface: empty"},
    {"missing_encap_v6", 8, "an IPv6 backend needs encap_source_v6"},
    {"missing_encap_v4", 7, "an IPv4 backend needs encap_source_v4"},
    {"encap_host_bits", 3, "has host bits set (did you mean 198.19.0.0/16?)"},
    {"encap_wrong_family", 3, "is not an IPv4 prefix"},
    {"encap_too_short", 3, "prefix length /4 is too short"},
    {"tcp_listen_without_token", 5, "api.tcp_listen: needs api.token_file"},
    {"tcp_listen_bad", 4, "is not ADDRESS:PORT with a port"},
    {"api_socket_relative", 4, "api.socket: 'xlbd.sock' is not an absolute path"},
    {"duration_without_unit", 3, "'30' has no unit (write 30s or 30ms)"},
    {"duration_bad_unit", 3, "'30sec' is not a duration"},
    {"duration_out_of_range", 3, "25h is out of range 100ms..24h"},
    {"mac_malformed", 3, "is not a MAC address"},
    {"mac_multicast", 3, "multicast or broadcast MAC"},
    {"max_packet_size_too_small", 3, "64 is out of range 68..9216 (bytes of Ethernet frame"},
    {"max_packet_size_too_big", 3, "9217 is out of range 68..9216"},
    {"max_packet_size_below_ipv6_minimum", 3,
     "1280 is below 1294 while IPv6 VIP [2001:db8:200::1]:443/tcp exists"},
    {"limits_too_high", 4, "limits.max_vips: 100000 is out of range 1..4096"},
    {"limits_flows_too_low", 3, "limits.flows_per_cpu: 100 is out of range 1024..16777216"},
    {"too_many_vips", 7, "vips[1]: more VIPs than limits.max_vips = 1"},
    {"too_many_backends", 13,
     "vips[1].backends[0].address: more VIP backends in all than limits.max_backends = 2"},
    {"limits_not_a_map", 3, "limits: expected a map, got '512'"},
    {"vips_not_a_list", 4, "vips: expected a list of VIPs, got a map"},
    {"interface_is_a_list", 2, "interface: expected an interface name such as eth0, got a list"},
    {"vip_v6_unquoted", 4,
     "vips[0].vip: expected a VIP such as 198.18.200.1:80/tcp, got a list (quote an IPv6 address"},
    {"vip_unspecified", 4, "0.0.0.0 is the unspecified address"},
    {"backend_multicast", 7, "ff02::1 is a multicast address"},
    {"empty_value", 3, "hash_seed: expected an integer 0..4294967295, got no value"},
    {"hash_seed_too_big", 3, "4294967296 is out of range 0..4294967295"},
    {"gue_port_zero", 3, "gue_port: 0 is out of range 1..65535"},
    {"bool_yes", 3, "expected true or false, got 'yes'"},
    {"bad_attach_mode", 3, "want auto, native or generic"},
    {"bad_flow_table", 3, "want per-cpu-maps or shared"},
    {"bad_vip_name", 5, "'my web' is not a valid name"},
    {"yaml_syntax_indent", 5, "YAML syntax error"},
    {"yaml_syntax_tab", 4, "YAML syntax error"},
    {"two_documents", 4, "a second YAML document"},
    {"empty_file", 1, "no configuration in the file"},
    {"health_unknown_key", 8, "vips[0].health.intreval: unknown key (did you mean 'interval'?"},
    {"health_missing_type", 6, "vips[0].health: missing required key 'type'"},
    {"health_bad_type", 6, "want none, tcp, http, https, udp-dns or exec"},
    {"health_timeout_not_below_interval", 8,
     "vips[0].health.timeout: the timeout (1s) must be below the interval (1s)"},
    {"health_default_timeout_above_interval", 7,
     "vips[0].health.interval: the timeout (1s, the default) must be below the interval (500ms)"},
    {"health_interval_too_short", 7, "5ms is out of range 10ms..1h"},
    {"health_rise_zero", 7, "vips[0].health.rise: 0 is out of range 1..100"},
    {"health_portless_needs_port", 7,
     "a tcp check of the port-less VIP 198.18.200.2/tcp needs a port (add health.port"},
    {"health_exec_without_command", 6, "an exec check needs exec_command"},
    {"health_exec_command_not_a_list", 7,
     "expected the program and its arguments as a list, got '/usr/local/bin/check --quick'"},
    {"health_key_of_another_type", 7,
     "vips[0].health.http_path: applies to http and https checks only, and this check is tcp"},
    {"health_bad_status_range", 7, "'399-200' is not a status or a range of statuses"},
    {"health_path_without_slash", 7, "'healthz' must start with '/'"},
    {"health_path_with_space", 7, "holds a space or a control character"},
    {"health_bad_dns_name", 7, "'health..example.com' is not a DNS name"},
    {"health_port_zero", 7, "vips[0].health.port: 0 is out of range 1..65535"},
    {"health_not_a_map", 5, "vips[0].health: expected a map, got 'tcp'"},
    {"all_down_bad", 5, "want keep-last-set or drop"},
    {"backend_health_unknown_key", 9,
     "vips[0].backends[0].health.intreval: unknown key (did you mean 'interval'?"},
    {"backend_health_not_a_map", 8, "vips[0].backends[0].health: expected a map, got 'none'"},
    {"backend_health_rise_zero", 9, "vips[0].backends[0].health.rise: 0 is out of range 1..100"},
    {"backend_health_timeout_not_below_vip_interval", 10,
     "vips[0].backends[1].health.timeout: the timeout (1s) must be below the interval (1s, the "
     "VIP's)"},
    {"backend_health_interval_below_vip_timeout", 9,
     "vips[0].backends[0].health.interval: the timeout (1s, the VIP's) must be below the "
     "interval (500ms)"},
    {"backend_health_portless_needs_port", 8,
     "vips[0].backends[0].health.type: a tcp check of the port-less VIP 198.18.200.2/tcp needs "
     "a port"},
    {"backend_health_key_of_another_type", 9,
     "vips[0].backends[0].health.http_path: applies to http and https checks only, and this "
     "check is tcp"},
    {"backend_health_exec_without_command", 9,
     "vips[0].backends[0].health.type: an exec check needs exec_command"},
};

// The line a bad file marks with "# <-": the table above and the file must agree.
int marked_line(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); n++) {
    if (line.find("# <-") != std::string::npos) return n;
  }
  return 0;
}

class BadConfig : public testing::TestWithParam<BadFile> {};

TEST_P(BadConfig, IsRefusedWithItsLocation) {
  const BadFile& bad = GetParam();
  const std::string path = kDir + "/bad/" + bad.name + ".yaml";
  const std::string text = read_file(path);
  ASSERT_FALSE(text.empty()) << path;
  EXPECT_EQ(text.rfind("# wrong: ", 0), 0u) << path << " must open with what is wrong";
  EXPECT_EQ(marked_line(text), bad.line) << path << ": the table and the '# <-' marker differ";

  auto parsed = load_config(path);
  ASSERT_FALSE(parsed.ok()) << path << " was accepted";
  const std::string& message = parsed.error().message;
  EXPECT_EQ(parsed.error().code, std::make_error_code(std::errc::invalid_argument));
  // FILE:LINE:COL: ...
  const std::string prefix = path + ":" + std::to_string(bad.line) + ":";
  EXPECT_EQ(message.rfind(prefix, 0), 0u) << "want " << prefix << "..., got: " << message;
  EXPECT_TRUE(std::regex_search(message, std::regex("^[^:]+:[0-9]+:[0-9]+: ")));
  EXPECT_NE(message.find(bad.message), std::string::npos)
      << "want '" << bad.message << "' in: " << message;
}

INSTANTIATE_TEST_SUITE_P(Files, BadConfig, testing::ValuesIn(kBadFiles),
                         [](const testing::TestParamInfo<BadFile>& info) {
                           return std::string(info.param.name);
                         });

TEST(BadConfigFiles, EveryFileIsInTheTable) {
  std::set<std::string> listed;
  for (const auto& bad : kBadFiles) listed.insert(std::string(bad.name) + ".yaml");
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kDir + "/bad")) {
    files++;
    EXPECT_TRUE(listed.contains(entry.path().filename().string()))
        << entry.path() << " is not checked by any test";
  }
  EXPECT_EQ(files, listed.size());
  EXPECT_GE(files, 20u);
}

// ---- Messages and entry points ------------------------------------------------------------

TEST(Config, ErrorsAreFileLineColumnPathWhatAndWhatToDo) {
  auto r = parse_config("interface: eth0\nlimits:\n  max_vips: 0\n", "xlbd.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error().message.rfind("xlbd.yaml:3:13: limits.max_vips: 0 is out of range 1..4096 (", 0),
      0u)
      << r.error().message;

  auto unknown = parse_config("interface: eth0\nvip:\n", "x");
  ASSERT_FALSE(unknown.ok());
  // Lists every allowed key, so the operator sees the schema without opening the docs.
  EXPECT_EQ(unknown.error().message,
            "x:2:1: vip: unknown key (did you mean 'vips'? allowed: interface, attach_mode, "
            "next_hop_mac, encap_source_v4, encap_source_v6, hash_seed, gue_port, "
            "max_packet_size, udp_idle_timeout, new_flows_per_second, pass_fragments, "
            "pass_ip_options, flow_table, limits, pin_root, api, metrics, vips, discovery)");
}

TEST(Config, EveryTruncationOfTheFullExampleFailsCleanly) {
  // A file cut short (an editor saving, a partial copy) must give a located error or a valid
  // config, never an exception or a crash.
  const std::string text = read_file(kDir + "/good/full.yaml");
  ASSERT_FALSE(text.empty());
  const std::regex located("^cut:[0-9]+:[0-9]+: ");
  for (size_t n = 0; n < text.size(); n++) {
    auto r = parse_config(std::string_view(text).substr(0, n), "cut");
    if (!r.ok()) {
      EXPECT_TRUE(std::regex_search(r.error().message, located)) << n << ": " << r.error().message;
    }
  }
}

TEST(Config, BackendAddressesMustBeUsable) {
  for (const char* address :
       {"\"::ffff:198.18.3.11\"", "0.0.0.0", "\"::\"", "255.255.255.255", "224.0.0.1"}) {
    std::string yaml =
        "interface: eth0\nencap_source_v4: 198.19.0.0/16\nencap_source_v6: 2001:db8:ff::/64\n"
        "vips:\n  - vip: 198.18.200.1:80/tcp\n    backends:\n      - address: " +
        std::string(address) + "\n";
    auto r = parse_config(yaml, "x");
    ASSERT_FALSE(r.ok()) << address;
    EXPECT_EQ(r.error().message.rfind("x:7:18: vips[0].backends[0].address: ", 0), 0u)
        << r.error().message;
  }
}

TEST(Config, EmptyValueIsReportedOnItsKeysLine) {
  // yaml-cpp places an empty value at the next token; the error must name the key's line.
  auto r = parse_config("interface: eth0\nnext_hop_mac:\n\n\ngue_port: 1\n", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("x:2:1: next_hop_mac: expected a MAC address", 0), 0u)
      << r.error().message;
}

TEST(Config, VipWithTooManyBackendsIsRefused) {
  std::string yaml =
      "interface: eth0\nencap_source_v6: 2001:db8:ff::/64\nlimits: {max_backends: 65536}\n"
      "vips:\n  - vip: 198.18.200.1:80/tcp\n    backends:\n";
  for (uint32_t i = 0; i <= config_bounds::kMaxBackendsPerVip; i++) {
    char addr[64];
    std::snprintf(addr, sizeof(addr), "2001:db8:3::%x:%x", i >> 16, i & 0xffff);
    yaml += std::string("      - address: \"") + addr + "\"\n";
  }
  auto r = parse_config(yaml, "big");
  ASSERT_FALSE(r.ok());
  const std::string line = std::to_string(7 + config_bounds::kMaxBackendsPerVip);
  EXPECT_EQ(r.error().message.rfind("big:" + line +
                                        ":9: vips[0].backends[10485]: a VIP takes at "
                                        "most 10485 backends",
                                    0),
            0u)
      << r.error().message.substr(0, 200);
}

TEST(Config, MissingFileIsAnErrnoError) {
  const std::string path = "/nonexistent/xlb/config.yaml";
  auto r = load_config(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, std::make_error_code(std::errc::no_such_file_or_directory));
  EXPECT_NE(r.error().message.find(path), std::string::npos);
  EXPECT_NE(r.error().to_string().find("No such file or directory"), std::string::npos);
}

TEST(Config, DirectoryIsNotAConfigFile) {
  auto r = load_config(kDir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, std::make_error_code(std::errc::is_a_directory));
}

TEST(Config, SourceNameStartsEveryMessage) {
  auto r = parse_config("interface: eth0\ngue_port: x\n", "<api>");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("<api>:2:11: gue_port: expected an integer 1..65535", 0), 0u)
      << r.error().message;
}

// ---- Helpers ------------------------------------------------------------------------------

TEST(Mac, ParsesAndFormats) {
  auto mac = parse_mac("02:00:5E:10:aB:ff");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(*mac, (std::array<uint8_t, 6>{0x02, 0x00, 0x5e, 0x10, 0xab, 0xff}));
  EXPECT_EQ(format_mac(*mac), "02:00:5e:10:ab:ff");
  for (const char* bad : {"", "02:00:5e:10:ab", "02:00:5e:10:ab:ff:00", "02-00-5e-10-ab-ff",
                          "020:0:5e:10:ab:ff", "02:00:5e:10:ab:fg", "02:00:5e:10:ab:+f"}) {
    EXPECT_FALSE(parse_mac(bad).ok()) << bad;
  }
}

TEST(Duration, TakesOneIntegerAndOneUnit) {
  EXPECT_EQ(*parse_duration_ms("500ms"), 500u);
  EXPECT_EQ(*parse_duration_ms("30s"), 30000u);
  EXPECT_EQ(*parse_duration_ms("5m"), 300000u);
  EXPECT_EQ(*parse_duration_ms("1h"), 3600000u);
  EXPECT_EQ(*parse_duration_ms("0s"), 0u);
  for (const char* bad : {"", "30", "s", "-1s", "1.5s", "30 s", "1m30s", "30S", "30sec",
                          "99999999999999999999ms", "18446744073709551615h"}) {
    EXPECT_FALSE(parse_duration_ms(bad).ok()) << bad;
  }
  auto unitless = parse_duration_ms("30");
  ASSERT_FALSE(unitless.ok());
  EXPECT_NE(unitless.error().message.find("has no unit (write 30s or 30ms)"), std::string::npos);
}

}  // namespace
}  // namespace xlb::state
