// SPDX-License-Identifier: Apache-2.0
// The control plane's model of what should be served: VIPs, their backends and settings, and
// the global configuration of an xlbd instance. Sources (config file, API, later health checks
// and service discovery) produce a DesiredState; the Reconciler turns it into map contents.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xlb/abi.h"
#include "xlb/core/address.h"
#include "xlb/core/result.h"
#include "xlb/dataplane/attach.h"
#include "xlb/dataplane/balancer.h"

namespace YAML {
class Node;
}

namespace xlb::state {

enum class Protocol : uint8_t { kTcp = 6, kUdp = 17 };
std::string_view to_string(Protocol p);
Result<Protocol> parse_protocol(std::string_view text);  // "tcp" / "udp"

// A service: address, port (0 = all ports: a port-less VIP) and protocol.
struct VipKey {
  IpAddress address;
  uint16_t port = 0;
  Protocol protocol = Protocol::kTcp;

  // "198.18.200.1:80/tcp", "[2001:db8:200::1]:443/udp", "198.18.200.2/tcp" (port-less).
  static Result<VipKey> parse(std::string_view text);
  std::string to_string() const;
  xlb_vip_key abi() const;

  friend bool operator==(const VipKey&, const VipKey&) = default;
  friend std::strong_ordering operator<=>(const VipKey& a, const VipKey& b);
};

enum class BackendState : uint8_t {
  kActive,    // takes new flows (weight > 0)
  kDraining,  // no new flows; established flows keep it through the connection table
  kDisabled,  // operator took it out: no new flows (same data-plane effect as draining)
};
std::string_view to_string(BackendState s);
Result<BackendState> parse_backend_state(std::string_view text);

// Health checking of a VIP's backends (HAProxy's semantics: a backend goes down after `fall`
// failed checks in a row and comes back after `rise` good ones; `fastinter` is the interval
// while a state change is in progress, `downinter` while down).
enum class CheckType : uint8_t { kNone, kTcp, kHttp, kHttps, kUdpDns, kExec };
std::string_view to_string(CheckType t);
Result<CheckType> parse_check_type(std::string_view text);  // none tcp http https udp-dns exec

struct HealthCheckSpec {
  CheckType type = CheckType::kNone;
  uint32_t interval_ms = 2000;
  uint32_t timeout_ms = 1000;
  uint32_t fastinter_ms = 0;  // 0: interval_ms
  uint32_t downinter_ms = 0;  // 0: interval_ms
  uint32_t rise = 2;
  uint32_t fall = 3;
  std::optional<uint16_t> port;      // default: the VIP's port (required for port-less VIPs)
  std::optional<IpAddress> address;  // default: the backend's address
  // http / https
  std::string http_path = "/";
  std::string http_host;  // Host header; empty: the VIP's address
  uint16_t http_status_min = 200;
  uint16_t http_status_max = 399;
  std::string http_body_contains;
  // udp-dns: a query for this name (type A) must get an answer
  std::string dns_query_name = ".";
  // exec: argv; exit status 0 = up. XLB_BACKEND, XLB_PORT and XLB_VIP are set in its env.
  std::vector<std::string> exec_command;
  // After recovery the weight ramps linearly from 0 to its configured value over this time.
  uint32_t slow_start_ms = 0;

  friend bool operator==(const HealthCheckSpec&, const HealthCheckSpec&) = default;
};

// A backend's own health settings: every field set replaces the VIP's for this backend, the
// others are the VIP's (VipSpec::health_for). Empty: the backend is checked as the VIP says.
// `type = kNone` exempts one backend from checks.
struct HealthCheckOverride {
  std::optional<CheckType> type;
  std::optional<uint32_t> interval_ms;
  std::optional<uint32_t> timeout_ms;
  std::optional<uint32_t> fastinter_ms;
  std::optional<uint32_t> downinter_ms;
  std::optional<uint32_t> rise;
  std::optional<uint32_t> fall;
  std::optional<uint16_t> port;
  std::optional<IpAddress> address;
  std::optional<std::string> http_path;
  std::optional<std::string> http_host;
  std::optional<uint16_t> http_status_min;
  std::optional<uint16_t> http_status_max;
  std::optional<std::string> http_body_contains;
  std::optional<std::string> dns_query_name;
  std::optional<std::vector<std::string>> exec_command;
  std::optional<uint32_t> slow_start_ms;

  bool empty() const { return *this == HealthCheckOverride{}; }
  // `base` with the fields set here replaced.
  HealthCheckSpec applied_to(HealthCheckSpec base) const;

  friend bool operator==(const HealthCheckOverride&, const HealthCheckOverride&) = default;
};

struct BackendSpec {
  IpAddress address;
  uint32_t weight = 1;  // relative share; 0 = no new flows
  BackendState state = BackendState::kActive;
  HealthCheckOverride health;  // empty: the VIP's health check as it is

  friend bool operator==(const BackendSpec&, const BackendSpec&) = default;
};

// What a VIP does when no backend is healthy.
enum class AllDownPolicy : uint8_t {
  kKeepLastSet,  // keep sending to the backends as if they were up (fail open)
  kDrop,         // empty ring: packets are dropped and counted (drop_no_backend)
};
std::string_view to_string(AllDownPolicy p);
Result<AllDownPolicy> parse_all_down_policy(std::string_view text);  // keep-last-set / drop

enum class HashMode : uint8_t {
  kFiveTuple,    // default
  kSourceOnly,   // all flows of a client to one backend
  kNoSourcePort  // addresses, protocol and destination port
};
std::string_view to_string(HashMode m);
Result<HashMode> parse_hash_mode(std::string_view text);  // "5tuple" / "src" / "no-sport"

struct VipSpec {
  VipKey key;
  std::string name;  // optional label (metrics, CLI); unique when set
  bool no_lru = false;
  HashMode hash = HashMode::kFiveTuple;
  bool gue = false;
  bool icmp_too_big = false;
  bool no_rate_guard = false;
  std::optional<uint32_t> ring_size;  // prime; default chosen by maglev::choose_ring_size
  HealthCheckSpec health;
  AllDownPolicy all_down = AllDownPolicy::kKeepLastSet;
  std::vector<BackendSpec> backends;  // unique addresses, kept sorted by address

  uint32_t abi_flags() const;  // enum xlb_vip_flags
  const BackendSpec* find_backend(const IpAddress& address) const;
  // The check `backend` gets: this VIP's health with the backend's override applied.
  HealthCheckSpec health_for(const BackendSpec& backend) const {
    return backend.health.applied_to(health);
  }

  friend bool operator==(const VipSpec&, const VipSpec&) = default;
};

// A VIP's on/off settings under the names the config file, the API and discovery use.
struct VipFlagField {
  std::string_view name;
  bool VipSpec::*member;
};
inline constexpr std::array<VipFlagField, 4> kVipFlagFields{{
    {"no_lru", &VipSpec::no_lru},
    {"gue", &VipSpec::gue},
    {"icmp_too_big", &VipSpec::icmp_too_big},
    {"no_rate_guard", &VipSpec::no_rate_guard},
}};

struct DesiredState {
  std::map<VipKey, VipSpec> vips;

  friend bool operator==(const DesiredState&, const DesiredState&) = default;
};

// Why `a` can be neither a VIP nor a backend (`role`: "a VIP"): unspecified, multicast,
// broadcast or IPv4-mapped; nullopt when it is a usable unicast address.
std::optional<std::string> unusable_address(const IpAddress& a, std::string_view role);

// The weight a backend gets in its VIP's ring now: 0 unless active.
uint32_t effective_weight(const BackendSpec& backend);

// Checks invariants across the whole state: unique names, unique backend addresses per VIP,
// prime ring sizes, VIP and membership counts within the limits.
Status validate(const DesiredState& state, uint32_t max_vips, uint32_t max_backends);

struct Limits {
  uint32_t max_vips = XLB_MAX_VIPS;
  uint32_t max_backends = XLB_MAX_BACKENDS;  // VIP x backend memberships
  uint32_t flows_per_cpu = XLB_DEFAULT_FLOWS_PER_CPU;

  friend bool operator==(const Limits&, const Limits&) = default;
};

struct GlobalConfig {
  std::string interface;  // the NIC xlb attaches to
  dataplane::AttachMode attach_mode = dataplane::AttachMode::kAuto;
  // Destination MAC of encapsulated packets; empty: the neighbour entry of the default
  // route's gateway on `interface`.
  std::optional<std::array<uint8_t, 6>> next_hop_mac;
  std::optional<IpPrefix> encap_source_v4;  // required when any backend is IPv4
  std::optional<IpPrefix> encap_source_v6;  // required when any backend is IPv6
  uint32_t hash_seed = 0;
  uint16_t gue_port = XLB_DEFAULT_GUE_PORT;
  uint32_t max_packet_size = XLB_DEFAULT_MAX_PKT_SIZE;
  uint64_t udp_idle_timeout_ms = XLB_DEFAULT_UDP_IDLE_NS / 1000000;
  uint32_t new_flows_per_second = XLB_DEFAULT_NEW_FLOWS_PER_SEC;  // per CPU; 0 = no guard
  bool pass_fragments = false;
  bool pass_ip_options = false;
  Limits limits;
  dataplane::FlowTable flow_table = dataplane::FlowTable::kSharedPerCpuLru;
  std::string pin_root = "/sys/fs/bpf/xlb";  // maps and link under <pin_root>/<interface>
  std::string api_socket = "/run/xlb/xlbd.sock";
  std::optional<std::string> api_tcp_listen;  // "127.0.0.1:9476"; needs api_token_file
  std::optional<std::string> api_token_file;
  std::string metrics_listen = "127.0.0.1:9475";  // empty: no metrics endpoint

  friend bool operator==(const GlobalConfig&, const GlobalConfig&) = default;
};

// The data-plane configuration a GlobalConfig asks for (next-hop MAC resolved by the caller).
xlb_config to_abi(const GlobalConfig& g, const std::array<uint8_t, 6>& next_hop_mac);

struct Config {
  GlobalConfig global;
  DesiredState state;
  // The `discovery:` section as written (with its line marks), or null when absent. Its schema
  // belongs to the discovery module, which depends on this one: the daemon parses it
  // (discovery::parse_discovery_config) so errors still name FILE:LINE:COL.
  std::shared_ptr<const YAML::Node> discovery;
};

}  // namespace xlb::state
