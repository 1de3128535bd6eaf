// SPDX-License-Identifier: Apache-2.0
#include "xlb/state/types.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "xlb/maglev/maglev.h"

namespace xlb::state {

std::string_view to_string(Protocol p) { return p == Protocol::kTcp ? "tcp" : "udp"; }

Result<Protocol> parse_protocol(std::string_view text) {
  if (text == "tcp") return Protocol::kTcp;
  if (text == "udp") return Protocol::kUdp;
  return Error::invalid("protocol '" + std::string(text) + "': want tcp or udp");
}

Result<VipKey> VipKey::parse(std::string_view text) {
  const std::string whole(text);
  auto slash = text.rfind('/');
  if (slash == std::string_view::npos) {
    return Error::invalid("VIP '" + whole + "': want ADDRESS[:PORT]/PROTOCOL, e.g. " +
                          "198.18.200.1:80/tcp or [2001:db8:200::1]:443/udp");
  }
  auto proto = parse_protocol(text.substr(slash + 1));
  if (!proto) return Error::invalid("VIP '" + whole + "': " + proto.error().message);
  std::string_view host = text.substr(0, slash);
  VipKey key;
  key.protocol = *proto;
  // Port-less: a bare address (IPv6 possibly in brackets).
  bool bracketed = !host.empty() && host.front() == '[';
  bool has_port = bracketed ? host.find("]:") != std::string_view::npos
                            : (host.find(':') != std::string_view::npos &&
                               host.find(':') == host.rfind(':'));
  if (!has_port) {
    if (bracketed) {
      if (host.back() != ']') return Error::invalid("VIP '" + whole + "': unbalanced '['");
      host = host.substr(1, host.size() - 2);
    }
    auto addr = IpAddress::parse(host);
    if (!addr) return Error::invalid("VIP '" + whole + "': " + addr.error().message);
    key.address = *addr;
    return key;
  }
  auto ep = Endpoint::parse(host);
  if (!ep) return Error::invalid("VIP '" + whole + "': " + ep.error().message);
  if (ep->port == 0) {
    return Error::invalid("VIP '" + whole + "': port 0; leave the port out for a port-less VIP");
  }
  key.address = ep->address;
  key.port = ep->port;
  return key;
}

std::string VipKey::to_string() const {
  std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  if (port != 0) host += ":" + std::to_string(port);
  return host + "/" + std::string(xlb::state::to_string(protocol));
}

xlb_vip_key VipKey::abi() const {
  xlb_vip_key k{};
  k.addr = address.abi();
  k.port = htons(port);
  k.proto = static_cast<uint8_t>(protocol);
  k.family = address.abi_family();
  return k;
}

std::strong_ordering operator<=>(const VipKey& a, const VipKey& b) {
  if (auto c = a.address <=> b.address; c != 0) return c;
  if (auto c = a.port <=> b.port; c != 0) return c;
  return a.protocol <=> b.protocol;
}

std::string_view to_string(BackendState s) {
  switch (s) {
    case BackendState::kActive:
      return "active";
    case BackendState::kDraining:
      return "draining";
    case BackendState::kDisabled:
      return "disabled";
  }
  return "?";
}

Result<BackendState> parse_backend_state(std::string_view text) {
  if (text == "active") return BackendState::kActive;
  if (text == "draining") return BackendState::kDraining;
  if (text == "disabled") return BackendState::kDisabled;
  return Error::invalid("backend state '" + std::string(text) +
                        "': want active, draining or disabled");
}

std::string_view to_string(HashMode m) {
  switch (m) {
    case HashMode::kFiveTuple:
      return "5tuple";
    case HashMode::kSourceOnly:
      return "src";
    case HashMode::kNoSourcePort:
      return "no-sport";
  }
  return "?";
}

Result<HashMode> parse_hash_mode(std::string_view text) {
  if (text == "5tuple") return HashMode::kFiveTuple;
  if (text == "src") return HashMode::kSourceOnly;
  if (text == "no-sport") return HashMode::kNoSourcePort;
  return Error::invalid("hash '" + std::string(text) + "': want 5tuple, src or no-sport");
}

std::string_view to_string(CheckType t) {
  switch (t) {
    case CheckType::kNone:
      return "none";
    case CheckType::kTcp:
      return "tcp";
    case CheckType::kHttp:
      return "http";
    case CheckType::kHttps:
      return "https";
    case CheckType::kUdpDns:
      return "udp-dns";
    case CheckType::kExec:
      return "exec";
  }
  return "?";
}

Result<CheckType> parse_check_type(std::string_view text) {
  for (auto t : {CheckType::kNone, CheckType::kTcp, CheckType::kHttp, CheckType::kHttps,
                 CheckType::kUdpDns, CheckType::kExec}) {
    if (text == to_string(t)) return t;
  }
  return Error::invalid("check type '" + std::string(text) +
                        "': want none, tcp, http, https, udp-dns or exec");
}

HealthCheckSpec HealthCheckOverride::applied_to(HealthCheckSpec base) const {
  auto take = [](auto& field, const auto& value) {
    if (value) field = *value;
  };
  take(base.type, type);
  take(base.interval_ms, interval_ms);
  take(base.timeout_ms, timeout_ms);
  take(base.fastinter_ms, fastinter_ms);
  take(base.downinter_ms, downinter_ms);
  take(base.rise, rise);
  take(base.fall, fall);
  take(base.port, port);
  take(base.address, address);
  take(base.http_path, http_path);
  take(base.http_host, http_host);
  take(base.http_status_min, http_status_min);
  take(base.http_status_max, http_status_max);
  take(base.http_body_contains, http_body_contains);
  take(base.dns_query_name, dns_query_name);
  take(base.exec_command, exec_command);
  take(base.slow_start_ms, slow_start_ms);
  return base;
}

std::string_view to_string(AllDownPolicy p) {
  return p == AllDownPolicy::kDrop ? "drop" : "keep-last-set";
}

Result<AllDownPolicy> parse_all_down_policy(std::string_view text) {
  if (text == "keep-last-set") return AllDownPolicy::kKeepLastSet;
  if (text == "drop") return AllDownPolicy::kDrop;
  return Error::invalid("all_down '" + std::string(text) + "': want keep-last-set or drop");
}

uint32_t VipSpec::abi_flags() const {
  uint32_t f = 0;
  if (no_lru) f |= XLB_VIP_NO_LRU;
  if (hash == HashMode::kSourceOnly) f |= XLB_VIP_HASH_SRC_ONLY;
  if (hash == HashMode::kNoSourcePort) f |= XLB_VIP_HASH_NO_SPORT;
  if (gue) f |= XLB_VIP_GUE;
  if (no_rate_guard) f |= XLB_VIP_NO_RATE_GUARD;
  if (icmp_too_big) f |= XLB_VIP_ICMP_TOO_BIG;
  return f;
}

const BackendSpec* VipSpec::find_backend(const IpAddress& address) const {
  for (const auto& b : backends) {
    if (b.address == address) return &b;
  }
  return nullptr;
}

std::optional<std::string> unusable_address(const IpAddress& a, std::string_view role) {
  const uint8_t* b = a.bytes();
  const size_t n = a.is_v4() ? 4 : 16;
  std::string what;
  if (std::all_of(b, b + n, [](uint8_t x) { return x == 0; })) {
    what = "the unspecified address";
  } else if (a.is_v4() && b[0] >= 224) {
    what = "a multicast, reserved or broadcast address";
  } else if (a.is_v6() && b[0] == 0xff) {
    what = "a multicast address";
  } else {
    // ::ffff:a.b.c.d is an IPv4 host in IPv6 notation: xlb would send it IPv6 packets that no
    // host receives as such.
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a.is_v6() && std::equal(kMapped, kMapped + 12, b)) {
      return a.to_string() + " is an IPv4-mapped IPv6 address (write the IPv4 address itself)";
    }
    return std::nullopt;
  }
  return a.to_string() + " is " + what + " (" + std::string(role) + " is a unicast address)";
}

uint32_t effective_weight(const BackendSpec& backend) {
  return backend.state == BackendState::kActive ? backend.weight : 0;
}

Status validate(const DesiredState& state, uint32_t max_vips, uint32_t max_backends) {
  if (state.vips.size() > max_vips) {
    return Error::invalid(std::to_string(state.vips.size()) + " VIPs, the limit is " +
                          std::to_string(max_vips) + " (limits.max_vips)");
  }
  std::set<std::string> names;
  size_t memberships = 0;
  for (const auto& [key, vip] : state.vips) {
    const std::string where = "VIP " + key.to_string() + ": ";
    if (!(vip.key == key)) return Error::invalid(where + "key mismatch (internal)");
    if (!vip.name.empty() && !names.insert(vip.name).second) {
      return Error::invalid(where + "name '" + vip.name + "' is used by another VIP");
    }
    if (vip.ring_size && !maglev::is_prime(*vip.ring_size)) {
      return Error::invalid(where + "ring_size " + std::to_string(*vip.ring_size) +
                            " is not prime");
    }
    std::set<IpAddress> seen;
    for (const auto& b : vip.backends) {
      if (!seen.insert(b.address).second) {
        return Error::invalid(where + "backend " + b.address.to_string() + " listed twice");
      }
    }
    memberships += vip.backends.size();
  }
  if (memberships > max_backends) {
    return Error::invalid(std::to_string(memberships) + " VIP backends in all, the limit is " +
                          std::to_string(max_backends) + " (limits.max_backends)");
  }
  return {};
}

xlb_config to_abi(const GlobalConfig& g, const std::array<uint8_t, 6>& next_hop_mac) {
  xlb_config c = dataplane::Balancer::default_config();
  std::copy(next_hop_mac.begin(), next_hop_mac.end(), c.next_hop_mac);
  c.gue_port = htons(g.gue_port);
  auto host_mask_v4 = [](uint8_t len) -> uint32_t {
    return len >= 32 ? 0 : htonl(0xffffffffu >> len);
  };
  if (g.encap_source_v4) {
    c.encap_src_v4 = g.encap_source_v4->address.abi().words[0];
    c.encap_src_v4_host_mask = host_mask_v4(g.encap_source_v4->length);
    c.encap_src_v4 &= ~c.encap_src_v4_host_mask;
  }
  if (g.encap_source_v6) {
    c.encap_src_v6 = g.encap_source_v6->address.abi();
    // Per-flow bits go into the last word only (up to 32 host bits).
    uint8_t len = g.encap_source_v6->length;
    c.encap_src_v6_host_mask = len >= 128 ? 0 : (len <= 96 ? 0xffffffffu : htonl(0xffffffffu >> (len - 96)));
    c.encap_src_v6.words[3] &= ~c.encap_src_v6_host_mask;
  }
  c.hash_seed = g.hash_seed;
  c.flags = (g.pass_fragments ? XLB_CFG_PASS_FRAGMENTS : 0) |
            (g.pass_ip_options ? XLB_CFG_PASS_IP_OPTIONS : 0);
  c.max_pkt_size = g.max_packet_size;
  c.new_flows_per_sec = g.new_flows_per_second;
  c.udp_idle_ns = g.udp_idle_timeout_ms * 1000000ULL;
  return c;
}

}  // namespace xlb::state
