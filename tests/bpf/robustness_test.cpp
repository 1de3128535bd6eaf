// SPDX-License-Identifier: Apache-2.0
// Robustness of both XDP programs against what a NIC can deliver: 200k valid, mutated and random
// frames (fixed seeds) through xlb_balancer, and each input plus each tunnel it emits through
// xlb_decap. Per frame the invariants hold that golden tests cannot enumerate:
//  - the balancer answers PASS (the frame byte for byte), DROP, or TX of either a well-formed
//    tunnel towards a backend, carrying exactly the client's IP datagram, or (VIPs flagged
//    ICMP_TOO_BIG only) a well-formed ICMP too-big answer; never XDP_ABORTED;
//  - every tunnel decapsulates on its backend back to that datagram;
//  - the decap answers PASS (untouched, or the frame minus its outer headers) or DROP;
//  - the per-action counters account for every run.
#include <arpa/inet.h>
#include <linux/bpf.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "balancer_fixture.h"
#include "xlb/dataplane/decap.h"

namespace xlb::test {
namespace {

// 200k frames take about a second (a test run costs well under 2 us here).
constexpr size_t kValidFrames = 60'000;
constexpr size_t kMutatedFrames = 100'000;
constexpr size_t kRandomFrames = 40'000;
// Frames larger than this go over max_pkt_size (1514) now and then.
constexpr size_t kMaxFrame = 1600;

// The decap that sees the raw inputs plays backend 1 (198.18.3.11 and 2001:db8:3::11).
const char* const kLocalV4 = "198.18.3.11";
const char* const kLocalV6 = "2001:db8:3::11";
// The backends of the standard set: address -> index.
const std::map<std::string, uint32_t> kBackends = {
    {"198.18.3.11", 1}, {"198.18.3.12", 2}, {"2001:db8:3::11", 3}, {"2001:db8:3::12", 4}};

uint16_t rd16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}

bool range_eq(const Bytes& a, size_t a_off, const Bytes& b, size_t b_off, size_t n) {
  return a.size() >= a_off + n && b.size() >= b_off + n &&
         std::equal(a.begin() + a_off, a.begin() + a_off + n, b.begin() + b_off);
}

// A service of the standard set, as the generator targets it (port 0: any port).
struct Service {
  std::string addr;
  uint16_t port;
  uint8_t proto;
  bool v6;
};

// ---- Frame generators -------------------------------------------------------------------------

class Generator {
 public:
  Generator(uint32_t seed, std::vector<Service> services)
      : rng_(seed), services_(std::move(services)) {
    for (int i = 0; i < 8; i++) {
      pool_v4_.push_back(random_v4());
      pool_v6_.push_back(random_v6());
      pool_ports_.push_back(static_cast<uint16_t>(1024 + u(64512)));
    }
  }

  uint32_t u(uint32_t n) { return n ? static_cast<uint32_t>(rng_() % n) : 0; }
  // No std:: distributions: their algorithms differ between standard libraries, and the frames
  // must be the same everywhere for a failure to be reproducible.
  bool chance(double p) { return rng_() < static_cast<uint64_t>(p * 4294967296.0); }
  uint8_t byte() { return static_cast<uint8_t>(rng_()); }
  Bytes random_bytes(size_t n) {
    Bytes b(n);
    for (auto& x : b) x = byte();
    return b;
  }

  // (1) A valid frame of one of many kinds, to VIPs and elsewhere.
  Bytes valid() {
    const uint32_t kind = u(100);
    Bytes frame;
    if (kind < 35) {
      frame = to_service(pick_service(), /*big=*/false);
    } else if (kind < 43) {
      frame = to_elsewhere();
    } else if (kind < 55) {
      frame = icmp_error();
    } else if (kind < 67) {
      frame = policy_case();
    } else if (kind < 72) {
      frame = other_protocol();
    } else if (kind < 87) {
      frame = tunnel();
    } else if (kind < 95) {
      frame = to_service(pick_service(), /*big=*/true);
    } else {
      frame = Packet()
                  .eth({.src = kPeerMac,
                        .dst = kLbMac,
                        .ethertype = std::array<uint16_t, 4>{0x0806, 0x8100, 0x88cc, 0x88a8}[u(4)]})
                  .payload(random_bytes(28 + u(60)))
                  .bytes();
    }
    // Ethernet padding, or trailing bytes after the IP datagram.
    if (chance(0.1) && frame.size() < kMaxFrame) {
      Bytes tail = chance(0.5)
                       ? Bytes(std::max<size_t>(frame.size(), kEthMinFrame) - frame.size(), 0)
                       : random_bytes(1 + u(40));
      frame.insert(frame.end(), tail.begin(), tail.end());
    }
    return frame;
  }

  // (2) A valid frame, then 1..3 mutations.
  Bytes mutated() {
    Bytes b = valid();
    const uint32_t ops = 1 + u(3);
    for (uint32_t i = 0; i < ops; i++) mutate(b);
    return b;
  }

  // (3) Random bytes behind an IPv4/IPv6 ethertype, sometimes with a plausible first byte, a VIP
  // destination or a consistent length, so that they get past the first checks.
  Bytes random_frame() {
    const size_t size = chance(0.5) ? 14 + u(115) : 14 + u(kMaxFrame - 13);
    Bytes b = random_bytes(size);
    std::copy(kLbMac.octets.begin(), kLbMac.octets.end(), b.begin());
    const bool v6 = chance(0.5);
    b[12] = v6 ? 0x86 : 0x08;
    b[13] = v6 ? 0xdd : 0x00;
    if (size > 14 && chance(0.5))
      b[14] = v6 ? (0x60 | (b[14] & 0xf)) : (chance(0.5) ? 0x45 : 0x40 | (b[14] & 0xf));
    const Service& s = pick_service(v6);
    if (!v6 && size >= 34 && chance(0.4)) {
      auto dst = Ipv4Addr(s.addr).octets;
      std::copy(dst.begin(), dst.end(), b.begin() + 30);
      b[23] = s.proto;
      if (chance(0.5)) put16(b, 16, static_cast<uint16_t>(size - 14));
      if (chance(0.5)) put16(b, 20, 0);  // not a fragment
    }
    if (v6 && size >= 54 && chance(0.4)) {
      auto dst = Ipv6Addr(s.addr).octets;
      std::copy(dst.begin(), dst.end(), b.begin() + 38);
      b[20] = s.proto;
      if (chance(0.5)) put16(b, 18, static_cast<uint16_t>(size - 54));
    }
    return b;
  }

 private:
  static void put16(Bytes& b, size_t off, uint16_t v) {
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
  }

  // Test ranges only: clients in 198.18.0.0/15 and 2001:db8::/32.
  std::string random_v4() {
    const uint32_t host = u(1U << 17);
    return "198." + std::to_string(18 + (host >> 16)) + "." + std::to_string((host >> 8) & 0xff) +
           "." + std::to_string(host & 0xff);
  }
  std::string random_v6() {
    std::string addr = "2001:db8";
    for (int group = 0; group < 6; group++) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), ":%x", u(0x10000));
      addr += hex;
    }
    return addr;
  }
  // Clients and ports repeat (a small pool) so that flows hit the connection table and ICMP
  // errors quote flows it knows.
  std::string client(bool v6) {
    if (chance(0.5)) return v6 ? pool_v6_[u(8)] : pool_v4_[u(8)];
    return v6 ? random_v6() : random_v4();
  }
  uint16_t client_port() {
    return chance(0.5) ? pool_ports_[u(8)] : static_cast<uint16_t>(u(65536));
  }
  const Service& pick_service() { return services_[u(static_cast<uint32_t>(services_.size()))]; }
  const Service& pick_service(bool v6) {
    for (;;) {
      const Service& s = pick_service();
      if (s.v6 == v6) return s;
    }
  }

  size_t payload_len() {
    const uint32_t r = u(100);
    if (r < 70) return u(65);
    if (r < 95) return 65 + u(536);
    return 600 + u(800);
  }

  uint8_t tcp_flags() {
    static constexpr uint8_t kFlags[] = {kSyn, kAck,        kSyn | kAck, kFin | kAck,
                                         kRst, kPsh | kAck, 0,           kSyn | kFin};
    return chance(0.9) ? kFlags[u(8)] : byte();
  }

  // An IP packet from src:sport to dst:dport (proto TCP or UDP), with random header details.
  Packet ip_packet(bool v6, const std::string& src, const std::string& dst, uint8_t proto,
                   uint16_t sport, uint16_t dport, size_t payload, bool eth = true) {
    Packet p;
    if (eth) p.eth(eth_in());
    if (v6) {
      Ipv6 h{.src = src, .dst = dst};
      h.traffic_class = chance(0.3) ? byte() : 0;
      h.flow_label = chance(0.3) ? u(1U << 20) : 0;
      h.hop_limit = static_cast<uint8_t>(1 + u(255));
      if (chance(0.2)) {
        const uint32_t n = 1 + u(3);
        for (uint32_t i = 0; i < n; i++) {
          switch (u(3)) {
            case 0:
              h.ext.push_back(Ipv6Ext::hop_by_hop());
              break;
            case 1:
              h.ext.push_back(Ipv6Ext::dest_opts(Bytes(u(15), 0)));
              break;
            default:
              h.ext.push_back(Ipv6Ext::routing(0, 0));
          }
        }
      }
      p.ipv6(h);
    } else {
      Ipv4 h{.src = src, .dst = dst};
      h.tos = chance(0.3) ? byte() : 0;
      h.ttl = static_cast<uint8_t>(1 + u(255));
      h.id = static_cast<uint16_t>(u(65536));
      h.df = chance(0.7);
      p.ipv4(h);
    }
    if (proto == kProtoTcp) {
      Tcp t{.sport = sport, .dport = dport, .flags = tcp_flags()};
      t.seq = static_cast<uint32_t>(rng_());
      t.ack = static_cast<uint32_t>(rng_());
      if (chance(0.3)) t.options = Bytes{0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07};
      p.tcp(t);
    } else {
      p.udp({.sport = sport, .dport = dport});
    }
    return p.payload(random_bytes(payload));
  }

  // A client packet to a service: a small one, or a frame of 1400..1600 bytes (over the size
  // limit from 1515 on).
  Bytes to_service(const Service& s, bool big) {
    const uint16_t dport = s.port ? s.port : static_cast<uint16_t>(u(65536));
    const std::string src = client(s.v6);
    const uint16_t sport = client_port();
    if (!big) return ip_packet(s.v6, src, s.addr, s.proto, sport, dport, payload_len()).bytes();
    Packet p = ip_packet(s.v6, src, s.addr, s.proto, sport, dport, 0);
    const size_t headers = p.bytes().size();
    const size_t target = 1400 + u(kMaxFrame - 1400 + 1);
    return p.payload(random_bytes(target > headers ? target - headers : 0)).bytes();
  }

  // A VIP address on a port or protocol it does not serve, or another address.
  Bytes to_elsewhere() {
    const bool v6 = chance(0.5);
    std::string dst;
    switch (u(3)) {
      case 0:
        dst = pick_service(v6).addr;
        break;
      case 1:
        dst = v6 ? "2001:db8:9::9" : "198.18.9.9";
        break;
      default:
        dst = v6 ? "2001:db8:3::12" : "198.18.3.12";
    }
    // One draw per statement: the order of evaluation of function arguments is unspecified.
    const std::string src = client(v6);
    const uint8_t proto = chance(0.5) ? kProtoTcp : kProtoUdp;
    const uint16_t sport = client_port();
    const auto dport = static_cast<uint16_t>(u(65536));
    return ip_packet(v6, src, dst, proto, sport, dport, payload_len()).bytes();
  }

  // An ICMP error about a packet the VIP sent to a client (or another host sent), as routers
  // on the way send them.
  Bytes icmp_error() {
    const bool v6 = chance(0.5);
    const Service& s = pick_service(v6);
    const std::string from = chance(0.85) ? s.addr : (v6 ? "2001:db8:9::9" : "198.18.9.9");
    const std::string to = client(v6);
    const uint16_t vip_port = s.port ? s.port : static_cast<uint16_t>(u(65536));
    const uint16_t client_side_port = client_port();
    Bytes quote =
        ip_packet(v6, from, to, s.proto, vip_port, client_side_port, u(64), false).l3_bytes();
    // Routers quote at least 8 bytes after the header; some quote more, some (broken) less.
    const size_t min_quote = v6 ? 48 : 28;
    size_t keep = chance(0.1) ? u(static_cast<uint32_t>(min_quote))
                              : min_quote + u(static_cast<uint32_t>(quote.size() - min_quote + 1));
    quote.resize(std::min(keep, quote.size()));
    const std::string dst = chance(0.9) ? s.addr : to;
    Packet p;
    p.eth(eth_in());
    if (v6) {
      p.ipv6({.src = "2001:db8:1::fe", .dst = dst});
      static constexpr uint8_t kTypes[] = {kIcmpv6DestUnreach, kIcmpv6PacketTooBig,
                                           kIcmpv6TimeExceeded, kIcmpv6EchoReply};
      p.icmpv6({.type = kTypes[u(4)], .code = static_cast<uint8_t>(u(7)), .rest = 1280 + u(300)});
    } else {
      p.ipv4({.src = "198.18.1.254", .dst = dst});
      static constexpr uint8_t kTypes[] = {kIcmpDestUnreach, kIcmpDestUnreach, kIcmpTimeExceeded,
                                           kIcmpEchoReply};
      p.icmp({.type = kTypes[u(4)], .code = static_cast<uint8_t>(u(6)), .rest = 1000 + u(500)});
    }
    return p.payload(quote).bytes();
  }

  // IPv4 options and fragments, IPv6 fragments and long extension-header chains, to VIPs and
  // elsewhere: the policy paths.
  Bytes policy_case() {
    const bool v6 = chance(0.5);
    const Service& s = pick_service(v6);
    const std::string dst = chance(0.8) ? s.addr : (v6 ? "2001:db8:9::9" : "198.18.9.9");
    const uint16_t dport = s.port ? s.port : static_cast<uint16_t>(u(65536));
    Packet p;
    p.eth(eth_in());
    if (v6) {
      Ipv6 h{.src = client(true), .dst = dst};
      const uint32_t before = u(3);
      for (uint32_t i = 0; i < before; i++) h.ext.push_back(Ipv6Ext::dest_opts());
      if (chance(0.6)) {
        const auto offset = static_cast<uint16_t>(chance(0.5) ? 0 : u(8192));
        const bool more = chance(0.5);
        h.ext.push_back(Ipv6Ext::fragment(offset, more, static_cast<uint32_t>(rng_())));
      } else {
        const uint32_t extra = 2 + u(4);  // 2..7 headers in all, often over the limit of 4
        for (uint32_t i = 0; i < extra; i++) h.ext.push_back(Ipv6Ext::dest_opts());
      }
      p.ipv6(h);
    } else {
      Ipv4 h{.src = client(false), .dst = dst};
      if (chance(0.5)) {
        h.options = chance(0.5) ? Bytes{0x94, 0x04, 0x00, 0x00} : random_bytes(1 + u(40));
      } else {
        h.mf = chance(0.5);
        h.frag_offset = static_cast<uint16_t>(h.mf && chance(0.5) ? 0 : 1 + u(8191));
      }
      p.ipv4(h);
    }
    if (s.proto == kProtoTcp) {
      p.tcp({.sport = client_port(), .dport = dport, .flags = tcp_flags()});
    } else {
      p.udp({.sport = client_port(), .dport = dport});
    }
    return p.payload(random_bytes(payload_len())).bytes();
  }

  // ICMP echo, GRE, ESP, SCTP, ICMPv6 neighbour discovery, no-next-header: not ours.
  Bytes other_protocol() {
    const bool v6 = chance(0.5);
    const std::string dst = pick_service(v6).addr;
    Packet p;
    p.eth(eth_in());
    if (v6) {
      if (chance(0.5)) {
        p.ipv6({.src = client(true), .dst = dst});
        p.icmpv6({.type = static_cast<uint8_t>(chance(0.5) ? kIcmpv6EchoRequest : 135)});
      } else {
        static constexpr uint8_t kProtos[] = {47, 50, 132, kProtoNoNext};
        p.ipv6({.src = client(true), .dst = dst, .next_header = kProtos[u(4)]});
      }
    } else {
      if (chance(0.5)) {
        p.ipv4({.src = client(false), .dst = dst});
        p.icmp({.type = kIcmpEchoRequest, .rest = static_cast<uint32_t>(rng_())});
      } else {
        static constexpr uint8_t kProtos[] = {47, 50, 132, 2};
        p.ipv4({.src = client(false), .dst = dst, .proto = kProtos[u(4)]});
      }
    }
    return p.payload(random_bytes(u(100))).bytes();
  }

  // A tunnel as a balancer sends it (IPIP, 6in4, 4in6, IP6IP6, GUE), mostly to the decap's
  // local address, carrying a client packet to a VIP.
  Bytes tunnel() {
    const Service& s = pick_service();
    const uint16_t dport = s.port ? s.port : static_cast<uint16_t>(u(65536));
    const std::string src = client(s.v6);
    const uint16_t sport = client_port();
    Bytes inner =
        ip_packet(s.v6, src, s.addr, s.proto, sport, dport, payload_len(), false).l3_bytes();
    const bool outer_v6 = chance(0.5);
    const bool local = chance(0.8);
    const bool gue = chance(0.3);
    uint8_t proto = s.v6 ? kProtoIpv6 : kProtoIpip;
    if (chance(0.05)) proto = s.v6 ? kProtoIpip : kProtoIpv6;  // announces the wrong family
    Packet p;
    p.eth({.src = kRouterMac, .dst = kLbMac});
    if (outer_v6) {
      p.ipv6({.src = "2001:db8:ff::1",
              .dst = local ? kLocalV6 : "2001:db8:3::12",
              .next_header = gue ? std::optional<uint8_t>() : proto});
    } else {
      p.ipv4({.src = "198.19.0.1",
              .dst = local ? kLocalV4 : "198.18.3.12",
              .df = true,
              .proto = gue ? std::optional<uint8_t>() : proto});
    }
    if (gue) {
      p.udp({.sport = static_cast<uint16_t>(49152 + u(16384)),
             .dport = chance(0.9) ? kGuePort : static_cast<uint16_t>(u(65536)),
             .checksum = 0});
    }
    return p.payload(inner).bytes();
  }

  void mutate(Bytes& b) {
    const size_t size = b.size();
    const bool v4 = size >= 14 && b[12] == 0x08 && b[13] == 0x00;
    const bool v6 = size >= 14 && b[12] == 0x86 && b[13] == 0xdd;
    switch (u(8)) {
      case 0:  // truncate (BPF_PROG_TEST_RUN refuses less than an Ethernet header)
        if (size > 14) b.resize(14 + u(static_cast<uint32_t>(size - 14)));
        break;
      case 1: {  // random bytes, mostly in the headers
        const uint32_t n = 1 + u(6);
        for (uint32_t i = 0; i < n; i++) {
          const size_t pos = chance(0.7) ? u(static_cast<uint32_t>(std::min<size_t>(size, 96)))
                                         : u(static_cast<uint32_t>(size));
          b[pos] = chance(0.5) ? byte() : static_cast<uint8_t>(b[pos] ^ (1U << u(8)));
        }
        break;
      }
      case 2:  // IP version
        if (size > 14) b[14] = static_cast<uint8_t>((b[14] & 0x0f) | (u(16) << 4));
        break;
      case 3:  // IPv4 header length / IPv6 next header
        if (v4 && size > 14) b[14] = static_cast<uint8_t>((b[14] & 0xf0) | u(16));
        if (v6 && size > 20) {
          static constexpr uint8_t kNext[] = {0, 4, 6, 17, 41, 43, 44, 58, 59, 60};
          b[20] = chance(0.8) ? kNext[u(10)] : byte();
        }
        break;
      case 4: {  // IPv4 total length / IPv6 payload length: random, or off by a little
        const size_t off = v4 ? 16 : 18;
        if ((v4 || v6) && size >= off + 2) {
          const uint16_t now = rd16(b, off);
          put16(b, off,
                chance(0.5) ? static_cast<uint16_t>(u(65536))
                            : static_cast<uint16_t>(now + u(129) - 64));
        }
        break;
      }
      case 5:  // the other IP ethertype on the same bytes
        b[12] = v4 ? 0x86 : 0x08;
        b[13] = v4 ? 0xdd : 0x00;
        break;
      case 6:  // IPv4 fragment bits and protocol
        if (v4 && size >= 24) {
          if (chance(0.5)) put16(b, 20, static_cast<uint16_t>(rng_()));
          static constexpr uint8_t kProtos[] = {1, 4, 6, 17, 41, 47, 58};
          if (chance(0.5)) b[23] = kProtos[u(7)];
        }
        break;
      default: {  // trailing bytes
        if (size < kMaxFrame) {
          Bytes tail = random_bytes(1 + u(64));
          b.insert(b.end(), tail.begin(), tail.end());
        }
      }
    }
  }

  std::mt19937 rng_;
  std::vector<Service> services_;
  std::vector<std::string> pool_v4_, pool_v6_;
  std::vector<uint16_t> pool_ports_;
};

// ---- The test ---------------------------------------------------------------------------------

class RobustnessTest : public BalancerTest {
 protected:
  // The balancer tests' standard set, plus port-less, hash-variant, no-backend and
  // rate-guard-exempt VIPs; rings over several backends where the VIP allows it.
  void SetUp() override {
    BalancerTest::SetUp();
    if (HasFatalFailure()) return;
    auto cfg = default_test_config();
    cfg.new_flows_per_sec = 300;  // the clock advances 1 ms a frame: the guard trips at times
    set_config(cfg);
    add_backend(1, "198.18.3.11");
    add_backend(2, "198.18.3.12");
    add_backend(3, "2001:db8:3::11");
    add_backend(4, "2001:db8:3::12");
    const std::vector<uint32_t> mixed = {1, 2, 3, 4, 2, 1, 4, 3, 1, 3, 2, 4, 1};
    const std::vector<uint32_t> v6_only = {3, 4, 4, 3, 3, 4, 3, 4, 4, 3, 4, 3, 3};
    add_one("198.18.200.1", 80, kProtoTcp, 0, 0, 1);
    add_one("198.18.200.1", 53, kProtoUdp, 1, 0, 2);
    add_one("2001:db8:200::1", 80, kProtoTcp, 2, 0, 3);
    add_one("198.18.200.2", 80, kProtoTcp, 3, XLB_VIP_NO_LRU, 1);
    add_one("198.18.200.3", 443, kProtoTcp, 4, XLB_VIP_GUE, 1);
    add_one("198.18.200.5", 80, kProtoTcp, 5, 0, 3);     // v4 VIP, v6 backend: 4in6
    add_one("2001:db8:200::2", 80, kProtoTcp, 6, 0, 2);  // v6 VIP, v4 backend: 6in4
    add_one("2001:db8:200::3", 443, kProtoUdp, 7, XLB_VIP_GUE, 4);
    add_one("198.18.200.7", 80, kProtoTcp, 8, XLB_VIP_ICMP_TOO_BIG, 1);
    add_one("2001:db8:200::7", 80, kProtoTcp, 9, XLB_VIP_ICMP_TOO_BIG, 3);
    add("198.18.200.4", 0, kProtoTcp, 10, 0, mixed);
    add("2001:db8:200::4", 0, kProtoUdp, 11,
        XLB_VIP_HASH_NO_SPORT | XLB_VIP_ICMP_TOO_BIG | XLB_VIP_GUE, mixed);
    add("198.18.200.6", 53, kProtoUdp, 12, XLB_VIP_HASH_SRC_ONLY | XLB_VIP_NO_LRU | XLB_VIP_GUE,
        v6_only);
    add_one("198.18.200.9", 80, kProtoTcp, 13, 0, 77);  // slot of no backend: counted drop
    add("2001:db8:200::5", 80, kProtoTcp, 14, XLB_VIP_NO_RATE_GUARD, mixed);
    if (HasFatalFailure()) return;

    for (auto* d : {&decap_raw_, &decap_be_}) {
      auto loaded = dataplane::Decap::load();
      ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
      *d = std::move(*loaded);
    }
    raw_cfg_.local_v4 = Ipv4Addr(kLocalV4).be();
    raw_cfg_.local_v6 = Ipv6Addr(kLocalV6).to_abi();
    raw_cfg_.gue_port = htons(kGuePort);
    ASSERT_TRUE(decap_raw_->set_config(raw_cfg_).ok());
  }

  void add(const char* addr, uint16_t port, uint8_t proto, uint32_t index, uint32_t flags,
           const std::vector<uint32_t>& ring) {
    add_vip(addr, port, proto, index, flags, ring);
    const bool v6 = std::string(addr).find(':') != std::string::npos;
    services_.push_back({addr, port, proto, v6});
    const std::string a = canonical(addr, v6);
    vip_addrs_.insert(a);
    if (flags & XLB_VIP_GUE) gue_addrs_.insert(a);
    if (flags & XLB_VIP_ICMP_TOO_BIG) too_big_addrs_.insert(a);
  }
  void add_one(const char* addr, uint16_t port, uint8_t proto, uint32_t index, uint32_t flags,
               uint32_t backend) {
    add(addr, port, proto, index, flags, std::vector<uint32_t>(13, backend));
  }

  // Address bytes as text, the form the sets above hold.
  static std::string canonical(const char* text, bool v6) {
    return v6 ? Ipv6Addr(text).to_string() : Ipv4Addr(text).to_string();
  }
  static std::string addr_at(const Bytes& b, size_t off, bool v6) {
    if (v6) {
      Ipv6Addr a;
      std::copy_n(b.begin() + off, 16, a.octets.begin());
      return a.to_string();
    }
    Ipv4Addr a;
    std::copy_n(b.begin() + off, 4, a.octets.begin());
    return a.to_string();
  }

  // The address the balancer looks VIPs up by, following its own parsing: the destination, or
  // for ICMP errors the source of the quoted packet. Empty when the frame is too short for it.
  static std::string steering_address(const Bytes& in) {
    const bool v6 = rd16(in, 12) == kEthPIpv6;
    if (!v6) {
      if (in.size() < 34) return {};
      if (in[23] == kProtoIcmp && (in[14] & 0xf) == 5) {
        return in.size() >= 58 ? addr_at(in, 54, false) : std::string();
      }
      return addr_at(in, 30, false);
    }
    if (in.size() < 54) return {};
    uint8_t next = in[20];
    size_t off = 54;
    for (int i = 0; i < XLB_MAX_IPV6_EXT_HDRS; i++) {
      if (next != kProtoHopByHop && next != kProtoRouting && next != kProtoDestOpts) break;
      if (in.size() < off + 2) return {};
      next = in[off];
      off += (in[off + 1] + 1) * 8;
    }
    if (next == kProtoIcmpv6) return in.size() >= off + 32 ? addr_at(in, off + 16, true) : "";
    return addr_at(in, 38, true);
  }

  // Records a broken invariant; keeps the smallest input per kind of failure for the report.
  void fail(const std::string& what, const Bytes& in, const Bytes& out, const std::string& why) {
    failures_++;
    auto& smallest = smallest_failure_[what];
    if (smallest.empty() || in.size() < smallest.size()) smallest = in;
    if (failures_ <= 10) {
      ADD_FAILURE() << what << ": " << why << "\ninput:\n"
                    << hexdump(in) << "output:\n"
                    << hexdump(out);
    }
  }

  void set_decap_be(const Bytes& tunnel) {
    xlb_decap_config cfg{.gue_port = htons(kGuePort)};
    if (rd16(tunnel, 12) == kEthPIpv4) {
      cfg.local_v4 = Ipv4Addr(addr_at(tunnel, 30, false)).be();
    } else {
      cfg.local_v6 = Ipv6Addr(addr_at(tunnel, 38, true)).to_abi();
    }
    if (std::memcmp(&cfg, &be_cfg_, sizeof(cfg)) == 0) return;
    ASSERT_TRUE(decap_be_->set_config(cfg).ok());
    be_cfg_ = cfg;
  }

  // An XDP_TX tunnel: well-formed, towards a backend, from a VIP, carrying the client's
  // datagram, and its backend's decap gives that datagram back.
  void check_tunnel(const Bytes& in, const Bytes& out) {
    const bool in_v6 = rd16(in, 12) == kEthPIpv6;
    const size_t l3_len = in_v6 ? 40u + rd16(in, 18) : rd16(in, 16);
    const std::string vip = steering_address(in);
    if (!vip_addrs_.count(vip)) {
      return fail("tunnel of a non-VIP packet", in, out, "steering address '" + vip + "'");
    }
    if (!std::equal(kRouterMac.octets.begin(), kRouterMac.octets.end(), out.begin()) ||
        !range_eq(out, 6, in, 0, 6)) {
      return fail("tunnel MAC addresses", in, out, "");
    }
    const bool out_v6 = rd16(out, 12) == kEthPIpv6;
    const uint8_t outer_proto = out_v6 ? out[20] : out[23];
    const bool gue = outer_proto == kProtoUdp;
    if (gue != (gue_addrs_.count(vip) > 0)) {
      return fail("GUE for the wrong VIP", in, out, "VIP " + vip);
    }
    const std::string backend = addr_at(out, out_v6 ? 38 : 30, out_v6);
    auto be = kBackends.find(backend);
    if (be == kBackends.end()) return fail("tunnel to a non-backend", in, out, backend);
    const size_t outer = (out_v6 ? 40 : 20) + (gue ? 8 : 0);
    if (out.size() != kEthHeaderLen + outer + l3_len ||
        !range_eq(out, kEthHeaderLen + outer, in, kEthHeaderLen, l3_len)) {
      return fail("tunnel does not carry the client datagram", in, out, "");
    }
    stats_.tx_tunnel++;
    // What backend_stats must have counted: the frame as it arrived.
    tunnelled_[be->second].packets++;
    tunnelled_[be->second].bytes += in.size();

    set_decap_be(out);
    if (HasFatalFailure()) return;
    auto st = dataplane::test_run_into(decap_be_->prog_fd(), out, {}, decap_result_);
    ASSERT_TRUE(st.ok()) << st.error().to_string();
    stats_.decap_be_runs++;
    const Bytes& back = decap_result_.out;
    if (decap_result_.action != XDP_PASS || back.size() != kEthHeaderLen + l3_len ||
        !range_eq(back, 0, out, 0, 12) || rd16(back, 12) != (in_v6 ? kEthPIpv6 : kEthPIpv4) ||
        !range_eq(back, kEthHeaderLen, in, kEthHeaderLen, l3_len)) {
      return fail(
          "decap of a tunnel", out, back,
          "action " + std::to_string(decap_result_.action) + ", balancer input:\n" + hexdump(in));
    }
    stats_.decap_be_stripped++;
  }

  // An XDP_TX ICMP answer: only for too-big frames to flagged VIPs, and well-formed.
  void check_too_big(const Bytes& in, const Bytes& out) {
    const bool v6 = rd16(in, 12) == kEthPIpv6;
    const std::string vip = v6 ? addr_at(in, 38, true) : addr_at(in, 30, false);
    if (!too_big_addrs_.count(vip)) return fail("ICMP too-big for an unflagged VIP", in, out, vip);
    if (in.size() <= cfg_.max_pkt_size) return fail("ICMP too-big for a small frame", in, out, "");
    if (!v6 && !(in[20] & 0x40)) return fail("ICMP frag-needed without DF", in, out, "");
    ParsedPacket p = parse(out);
    if (!p.ok()) return fail("malformed ICMP too-big", in, out, p.to_string());
    const size_t quote = v6 ? 48 : 28;
    const uint32_t mtu = cfg_.max_pkt_size - kEthHeaderLen;
    const auto* eth = p.find<ParsedEth>();
    bool ok = eth && range_eq(out, 0, in, 6, 6) && range_eq(out, 6, in, 0, 6) &&
              out.size() == kEthHeaderLen + (v6 ? 40 : 20) + 8 + quote;
    if (ok && v6) {
      const auto* ip = p.find<ParsedIpv6>();
      const auto* icmp = p.find<ParsedIcmpv6>();
      ok = ip && icmp && ip->src.to_string() == vip &&
           ip->dst.to_string() == addr_at(in, 22, true) && ip->next_header == kProtoIcmpv6 &&
           ip->ext_headers.empty() && icmp->type == kIcmpv6PacketTooBig && icmp->code == 0 &&
           icmp->rest == std::max<uint32_t>(mtu, 1280) && icmp->checksum_ok == true &&
           icmp->body == Bytes(in.begin() + 14, in.begin() + 14 + quote);
    } else if (ok) {
      const auto* ip = p.find<ParsedIpv4>();
      const auto* icmp = p.find<ParsedIcmp>();
      ok = ip && icmp && ip->checksum_ok && ip->src.to_string() == vip &&
           ip->dst.to_string() == addr_at(in, 26, false) && ip->proto == kProtoIcmp && ip->df &&
           !ip->mf && ip->frag_offset == 0 && icmp->type == kIcmpDestUnreach &&
           icmp->code == kIcmpCodeFragNeeded && icmp->rest == mtu && icmp->checksum_ok == true &&
           icmp->body == Bytes(in.begin() + 14, in.begin() + 14 + quote);
    }
    if (!ok) return fail("ICMP too-big contents", in, out, p.to_string());
    stats_.tx_too_big++;
  }

  // The decap on a raw frame: untouched PASS, a PASS of exactly the frame minus outer headers
  // addressed to its local address, or DROP.
  void check_raw_decap(const Bytes& in) {
    auto st = dataplane::test_run_into(decap_raw_->prog_fd(), in, {}, decap_result_);
    ASSERT_TRUE(st.ok()) << st.error().to_string();
    stats_.decap_raw_runs++;
    const Bytes& out = decap_result_.out;
    const uint32_t action = decap_result_.action;
    if (action == XDP_DROP) {
      stats_.decap_raw_drop++;
      return;
    }
    if (action != XDP_PASS) {
      return fail("decap action", in, out, "action " + std::to_string(action));
    }
    if (out == in) {
      stats_.decap_raw_untouched++;
      return;
    }
    const size_t cut = in.size() > out.size() ? in.size() - out.size() : 0;
    const bool outer_v6 = rd16(in, 12) == kEthPIpv6;
    const std::string dst = outer_v6 ? addr_at(in, 38, true) : addr_at(in, 30, false);
    const uint8_t inner_version = out.size() > kEthHeaderLen ? out[kEthHeaderLen] >> 4 : 0;
    const bool ok =
        (cut == 20 || cut == 28 || cut == 40 || cut == 48) &&
        dst == canonical(outer_v6 ? kLocalV6 : kLocalV4, outer_v6) && range_eq(out, 0, in, 0, 12) &&
        (inner_version == 4 || inner_version == 6) &&
        rd16(out, 12) == (inner_version == 4 ? kEthPIpv4 : kEthPIpv6) &&
        range_eq(out, kEthHeaderLen, in, kEthHeaderLen + cut, out.size() - kEthHeaderLen);
    if (!ok) return fail("decap PASS changed the frame", in, out, "");
    stats_.decap_raw_stripped++;
  }

  void check(const Bytes& in, int group) {
    auto st = dataplane::test_run_into(lb_->prog_fd(), in, {}, lb_result_);
    ASSERT_TRUE(st.ok()) << st.error().to_string() << "\n" << hexdump(in);
    stats_.runs++;
    const Bytes& out = lb_result_.out;
    const uint32_t action = lb_result_.action;
    histogram_[group][std::min<uint32_t>(action, 5)]++;
    switch (action) {
      case XDP_PASS:
        stats_.pass++;
        if (out != in) fail("balancer PASS changed the frame", in, out, hexdump_diff(in, out));
        break;
      case XDP_DROP:
        stats_.drop++;
        break;
      case XDP_TX: {
        stats_.tx++;
        auto problem = check_encapsulated(out, kGuePort);
        const bool v6 = out.size() >= 14 && rd16(out, 12) == kEthPIpv6;
        const bool icmp =
            out.size() >= 54 && (v6 ? out[20] == kProtoIcmpv6 : out[23] == kProtoIcmp);
        if (!problem) {
          check_tunnel(in, out);
        } else if (icmp) {
          check_too_big(in, out);
        } else {
          fail("malformed XDP_TX", in, out, *problem);
        }
        break;
      }
      default:
        fail("balancer action", in, out, "action " + std::to_string(action));
    }
    if (HasFatalFailure()) return;
    check_raw_decap(in);
  }

  struct Stats {
    size_t runs = 0, pass = 0, drop = 0, tx = 0, tx_tunnel = 0, tx_too_big = 0;
    size_t decap_raw_runs = 0, decap_raw_untouched = 0, decap_raw_stripped = 0, decap_raw_drop = 0;
    size_t decap_be_runs = 0, decap_be_stripped = 0;
  };

  std::unique_ptr<dataplane::Decap> decap_raw_, decap_be_;
  xlb_decap_config raw_cfg_{}, be_cfg_{};
  std::vector<Service> services_;
  std::set<std::string> vip_addrs_, gue_addrs_, too_big_addrs_;
  dataplane::TestRunResult lb_result_, decap_result_;
  Stats stats_;
  // [valid, mutated, random][XDP action, 5 = other]
  std::array<std::array<size_t, 6>, 3> histogram_{};
  // Tunnels per backend index, as seen in the outputs.
  std::map<uint32_t, xlb_traffic> tunnelled_;
  size_t failures_ = 0;
  std::map<std::string, Bytes> smallest_failure_;
};

uint64_t sum(const xlb_decap_counters& c) {
  uint64_t n = 0;
  for (uint64_t x : c.c) n += x;
  return n;
}

TEST_F(RobustnessTest, RandomAndMutatedFrames) {
  const auto t0 = std::chrono::steady_clock::now();
  const xlb_counters lb_before = counters();
  std::map<uint32_t, xlb_traffic> backends_before;
  for (const auto& [addr, index] : kBackends) backends_before[index] = backend_traffic(index);
  uint64_t vips_before = 0;
  for (uint32_t i = 0; i < services_.size(); i++) vips_before += vip_traffic(i).packets;
  auto raw_before = decap_raw_->counters();
  auto be_before = decap_be_->counters();
  ASSERT_TRUE(raw_before.ok() && be_before.ok());

  Generator gen(0x0b5e55ed, services_);
  const std::array<size_t, 3> counts = {kValidFrames, kMutatedFrames, kRandomFrames};
  uint64_t now = lb_->now_ns();
  for (int group = 0; group < 3; group++) {
    for (size_t i = 0; i < counts[group]; i++) {
      Bytes in = group == 0 ? gen.valid() : group == 1 ? gen.mutated() : gen.random_frame();
      // Time moves (UDP entries expire, the rate guard's window turns over).
      now += 1'000'000;
      lb_->set_fake_now(now);
      check(in, group);
      if (HasFatalFailure()) return;
    }
  }

  // Counters add up: one action per run, one drop reason per drop (both policy flags are off,
  // so options and fragments to VIPs count as drops), and they match what the runs returned.
  const xlb_counters lb_after = counters();
  auto d = [&](xlb_counter c) { return delta(lb_before, lb_after, c); };
  EXPECT_EQ(d(XLB_CNT_XDP_PASS) + d(XLB_CNT_XDP_TX) + d(XLB_CNT_XDP_DROP), stats_.runs);
  EXPECT_EQ(d(XLB_CNT_XDP_PASS), stats_.pass);
  EXPECT_EQ(d(XLB_CNT_XDP_TX), stats_.tx);
  EXPECT_EQ(d(XLB_CNT_XDP_DROP), stats_.drop);
  EXPECT_EQ(d(XLB_CNT_ICMP_TOO_BIG_SENT), stats_.tx_too_big);
  EXPECT_EQ(d(XLB_CNT_DROP_MALFORMED) + d(XLB_CNT_DROP_EXT_HDRS) + d(XLB_CNT_DROP_TOO_BIG) +
                d(XLB_CNT_DROP_NO_BACKEND) + d(XLB_CNT_DROP_NO_RING) + d(XLB_CNT_DROP_ENCAP) +
                d(XLB_CNT_DROP_NO_CONFIG) + d(XLB_CNT_FRAGMENT) + d(XLB_CNT_IP_OPTIONS),
            stats_.drop);
  // Per backend, packets and bytes of what was tunnelled there (encapsulation never fails with
  // test-run headroom: DROP_ENCAP would count traffic without a tunnel).
  EXPECT_EQ(d(XLB_CNT_DROP_ENCAP), 0u);
  for (const auto& [addr, index] : kBackends) {
    const xlb_traffic now = backend_traffic(index);
    EXPECT_EQ(now.packets - backends_before[index].packets, tunnelled_[index].packets) << addr;
    EXPECT_EQ(now.bytes - backends_before[index].bytes, tunnelled_[index].bytes) << addr;
  }
  uint64_t vips_after = 0;
  for (uint32_t i = 0; i < services_.size(); i++) vips_after += vip_traffic(i).packets;
  EXPECT_EQ(vips_after - vips_before, stats_.tx_tunnel);
  auto raw_after = decap_raw_->counters();
  auto be_after = decap_be_->counters();
  ASSERT_TRUE(raw_after.ok() && be_after.ok());
  EXPECT_EQ(sum(*raw_after) - sum(*raw_before), stats_.decap_raw_runs);
  EXPECT_EQ(sum(*be_after) - sum(*be_before), stats_.decap_be_runs);
  auto stripped = [](const xlb_decap_counters& a, const xlb_decap_counters& b) {
    uint64_t n = 0;
    for (int c : {XLB_DCNT_IPIP, XLB_DCNT_IP6IP6, XLB_DCNT_IP4IN6, XLB_DCNT_IP6IN4, XLB_DCNT_GUE}) {
      n += b.c[c] - a.c[c];
    }
    return n;
  };
  EXPECT_EQ(stripped(*raw_before, *raw_after), stats_.decap_raw_stripped);
  EXPECT_EQ(raw_after->c[XLB_DCNT_PASS] - raw_before->c[XLB_DCNT_PASS], stats_.decap_raw_untouched);
  EXPECT_EQ(stripped(*be_before, *be_after), stats_.decap_be_stripped);

  EXPECT_GE(stats_.runs, 100'000u);
  // The generators reach every outcome (a silent generator bug would make the test vacuous).
  EXPECT_GT(stats_.tx_tunnel, 10'000u);
  EXPECT_GT(stats_.tx_too_big, 100u);
  EXPECT_GT(stats_.decap_raw_stripped, 1'000u);
  EXPECT_GT(stats_.decap_raw_drop, 100u);
  EXPECT_GT(d(XLB_CNT_LRU_HIT), 1'000u);
  EXPECT_GT(d(XLB_CNT_ICMP_STEERED), 100u);
  EXPECT_GT(d(XLB_CNT_UDP_EXPIRED), 0u);
  EXPECT_GT(d(XLB_CNT_RATE_GUARDED), 0u);

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  static const char* const kGroups[] = {"valid", "mutated", "random"};
  std::cout << "balancer actions      ABORTED       DROP       PASS         TX   REDIRECT  other\n";
  for (int g = 0; g < 3; g++) {
    std::cout << std::left << std::setw(18) << kGroups[g] << std::right;
    for (size_t n : histogram_[g]) std::cout << std::setw(11) << n;
    std::cout << "\n";
  }
  std::cout << "balancer: " << stats_.runs << " runs, " << stats_.tx_tunnel << " tunnels, "
            << stats_.tx_too_big << " ICMP too-big; decap: " << stats_.decap_raw_runs
            << " raw runs (" << stats_.decap_raw_untouched << " untouched, "
            << stats_.decap_raw_stripped << " decapsulated, " << stats_.decap_raw_drop
            << " dropped), " << stats_.decap_be_runs << " tunnels decapsulated back; " << secs
            << " s\n";
  for (const auto& [what, frame] : smallest_failure_) {
    std::cout << "smallest input failing '" << what << "' (" << frame.size() << " bytes):\n"
              << hexdump(frame);
  }
  EXPECT_EQ(failures_, 0u);
}

}  // namespace
}  // namespace xlb::test
