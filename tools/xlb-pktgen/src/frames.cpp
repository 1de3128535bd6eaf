// SPDX-License-Identifier: Apache-2.0
#include "xlb/pktgen/frames.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace xlb::pktgen {

namespace {

constexpr uint32_t kEth = 14;

uint32_t ip_header(Family family) { return family == Family::kV4 ? 20 : 40; }

uint32_t l4_header(Proto proto) { return proto == Proto::kUdp ? 8 : 20; }

IpAddress must_parse(const char* text) { return *IpAddress::parse(text); }

}  // namespace

Result<Proto> parse_proto(std::string_view text) {
  if (text == "tcp-syn") return Proto::kTcpSyn;
  if (text == "tcp-ack") return Proto::kTcpAck;
  if (text == "udp") return Proto::kUdp;
  return Error::invalid("protocol '" + std::string(text) + "': want tcp-syn, tcp-ack or udp");
}

const char* to_string(Proto proto) {
  switch (proto) {
    case Proto::kTcpSyn:
      return "tcp-syn";
    case Proto::kTcpAck:
      return "tcp-ack";
    case Proto::kUdp:
      return "udp";
  }
  return "?";
}

FrameSpec default_spec(Family family) {
  FrameSpec spec;
  spec.family = family;
  bool v4 = family == Family::kV4;
  spec.src = must_parse(v4 ? "198.18.128.0" : "2001:db8:1::1:0");
  spec.dst = must_parse(v4 ? "198.18.200.1" : "2001:db8:200::1");
  spec.size = default_frame_size(family, spec.proto);
  return spec;
}

uint32_t header_size(Family family, Proto proto) {
  return kEth + ip_header(family) + l4_header(proto);
}

uint32_t min_frame_size(Family family, Proto proto) { return header_size(family, proto); }

uint32_t default_frame_size(Family family, Proto proto) {
  return std::max<uint32_t>(64, min_frame_size(family, proto));
}

bool in_test_range(const IpAddress& addr) {
  const uint8_t* b = addr.bytes();
  if (addr.is_v4()) return b[0] == 198 && (b[1] & 0xfe) == 18;
  return b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8;
}

Status validate(const FrameSpec& spec) {
  const char* fam = spec.family == Family::kV4 ? "IPv4" : "IPv6";
  if (spec.src.family() != spec.family || spec.dst.family() != spec.family) {
    return Error::invalid(std::string("source and destination must be ") + fam +
                          " addresses (--family)");
  }
  for (const IpAddress* a : {&spec.src, &spec.dst}) {
    if (!in_test_range(*a)) {
      return Error::invalid("address " + a->to_string() +
                            " is outside the test ranges 198.18.0.0/15 and 2001:db8::/32");
    }
  }
  if (spec.flows < 1 || spec.flows > kMaxFlows) {
    return Error::invalid("flows must be 1.." + std::to_string(kMaxFlows));
  }
  // The clients' addresses are src + 0 .. src + flows - 1 in the last 32-bit word.
  uint32_t last = ntohl(spec.src.abi().words[spec.family == Family::kV4 ? 0 : 3]);
  if (uint64_t{last} + spec.flows - 1 > 0xffffffffull) {
    return Error::invalid("source " + spec.src.to_string() + " + flows wraps around");
  }
  if (spec.family == Family::kV4) {
    auto top = IpAddress::v4_from_be(htonl(last + spec.flows - 1));
    if (!in_test_range(top)) {
      return Error::invalid("the last client address " + top.to_string() +
                            " is outside 198.18.0.0/15: lower --flows or --src");
    }
  }
  uint32_t min = min_frame_size(spec.family, spec.proto);
  if (spec.size < min || spec.size > kMaxFrameSize) {
    return Error::invalid("frame size " + std::to_string(spec.size) + " out of range " +
                          std::to_string(min) + ".." + std::to_string(kMaxFrameSize) + " for " +
                          fam + "/" + to_string(spec.proto) +
                          " (Ethernet header to end of payload, no FCS)");
  }
  if (spec.dport == 0) return Error::invalid("destination port must be 1..65535");
  return {};
}

test::Bytes flow_frame(const FrameSpec& spec, uint64_t n) {
  const uint32_t client = n % spec.flows;
  const uint32_t conn = spec.new_connections ? (n / spec.flows) % XLB_PKTGEN_SPORT_SPAN : 0;
  const uint16_t sport = XLB_PKTGEN_SPORT_BASE + (client + conn) % XLB_PKTGEN_SPORT_SPAN;
  xlb_addr src = spec.src.abi();
  const int last = spec.family == Family::kV4 ? 0 : 3;
  src.words[last] = htonl(ntohl(src.words[last]) + client);

  test::Packet p;
  p.eth({.src = spec.src_mac, .dst = spec.dst_mac});
  if (spec.family == Family::kV4) {
    p.ipv4({.src = test::Ipv4Addr::from_be(src.words[0]),
            .dst = test::Ipv4Addr::from_be(spec.dst.abi().words[0]),
            .df = true});
  } else {
    p.ipv6({.src = test::Ipv6Addr::from_abi(src), .dst = test::Ipv6Addr::from_abi(spec.dst.abi())});
  }
  if (spec.proto == Proto::kUdp) {
    p.udp({.sport = sport, .dport = spec.dport});
  } else {
    p.tcp({.sport = sport,
           .dport = spec.dport,
           .flags = spec.proto == Proto::kTcpSyn ? test::kSyn : test::kAck,
           .seq = 1,
           .ack = spec.proto == Proto::kTcpSyn ? 0u : 1u});
  }
  p.payload_pattern(spec.size - header_size(spec.family, spec.proto));
  return p.bytes();
}

test::Bytes template_frame(const FrameSpec& spec) { return flow_frame(spec, 0); }

xlb_pktgen_config generator_config(const FrameSpec& spec) {
  xlb_pktgen_config cfg{};
  test::Bytes frame = template_frame(spec);
  std::memcpy(cfg.hdr, frame.data(), header_size(spec.family, spec.proto));
  cfg.flows = spec.flows;
  cfg.ports_per_flow = spec.new_connections ? XLB_PKTGEN_SPORT_SPAN : 1;
  cfg.family = static_cast<uint8_t>(spec.family);
  cfg.proto = spec.proto == Proto::kUdp ? IPPROTO_UDP : IPPROTO_TCP;
  return cfg;
}

}  // namespace xlb::pktgen
