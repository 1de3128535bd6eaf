// SPDX-License-Identifier: Apache-2.0
// What the load generator sends: one template frame plus the rule that turns it into a
// sequence of flows (bpf/pktgen.bpf.c, struct xlb_pktgen_config in abi.h).
//
// Frame n of a generator thread belongs to client n % flows (source address = `src` + client)
// and is that client's connection (n / flows) % ports_per_flow (source port =
// XLB_PKTGEN_SPORT_BASE + (client + connection) % XLB_PKTGEN_SPORT_SPAN). With
// new_connections off every client is one flow (one source port); with it on, a client's
// source port advances with every frame, so a tuple recurs only after flows x 64512 frames.
//
// Addresses are restricted to the test ranges 198.18.0.0/15 and 2001:db8::/32 (network rule):
// validate() refuses anything else, including a source range that would leave them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "packet.h"
#include "xlb/abi.h"
#include "xlb/core/address.h"
#include "xlb/core/result.h"

namespace xlb::pktgen {

enum class Proto { kTcpSyn, kTcpAck, kUdp };
Result<Proto> parse_proto(std::string_view text);  // tcp-syn, tcp-ack, udp
const char* to_string(Proto proto);

// Largest frame: a full frame of a 1500-byte MTU (no FCS).
inline constexpr uint32_t kMaxFrameSize = 1514;
// Most clients: IPv4 sources must stay inside 198.18.0.0/15 anyway.
inline constexpr uint32_t kMaxFlows = 1u << 20;

struct FrameSpec {
  Family family = Family::kV4;
  Proto proto = Proto::kUdp;
  uint32_t flows = 1;
  bool new_connections = false;
  // Bytes from the Ethernet header to the end of the payload (no FCS).
  uint32_t size = 64;
  IpAddress src;  // client 0's source address
  IpAddress dst;
  uint16_t dport = 80;  // host order
  test::Mac src_mac = test::mac("02:00:00:00:01:fe");
  test::Mac dst_mac = test::mac("02:00:00:00:02:01");
};

// Defaults of a family: clients from 198.18.128.0 / 2001:db8:1::1:0, destination the lab VIP
// 198.18.200.1 / 2001:db8:200::1.
FrameSpec default_spec(Family family);

// Smallest frame that holds the headers (Ethernet, IP, TCP or UDP).
uint32_t min_frame_size(Family family, Proto proto);
// 64 bytes, or the smallest frame when the headers need more (IPv6 + TCP: 74).
uint32_t default_frame_size(Family family, Proto proto);
// Bytes of headers the generator rewrites in every frame.
uint32_t header_size(Family family, Proto proto);

// Every field in range, addresses in the test ranges and of the spec's family.
Status validate(const FrameSpec& spec);

// True for 198.18.0.0/15 and 2001:db8::/32.
bool in_test_range(const IpAddress& addr);

// Frame n of the sequence, as the generator program must write it (spec must validate): the
// reference its tests compare with.
test::Bytes flow_frame(const FrameSpec& spec, uint64_t n);
// Frame 0 (client 0, connection 0): the template the program starts from.
test::Bytes template_frame(const FrameSpec& spec);

// The generator's map entry for `spec` (its template header and flow rule).
xlb_pktgen_config generator_config(const FrameSpec& spec);

}  // namespace xlb::pktgen
