// SPDX-License-Identifier: Apache-2.0
// Golden-packet tests of xlb_balancer: one behaviour per case; each asserts the XDP action, the
// exact output bytes and the counter deltas.
#include <arpa/inet.h>
#include <linux/bpf.h>

#include <set>
#include <string>

#include "balancer_fixture.h"
#include "xlb/dataplane/flow.h"

namespace xlb::test {
namespace {

constexpr uint8_t kTcp = kProtoTcp;
constexpr uint8_t kUdp = kProtoUdp;

// The standard service set of these tests (index: what it exercises).
class BalancerCase : public BalancerTest {
 protected:
  void SetUp() override {
    BalancerTest::SetUp();
    if (HasFatalFailure()) return;
    add_backend(1, "198.18.3.11");
    add_backend(2, "198.18.3.12");
    add_backend(3, "2001:db8:3::11");
    add_backend(4, "2001:db8:3::12");
    add_vip_one_backend("198.18.200.1", 80, kTcp, 0, 0, 1);
    add_vip_one_backend("198.18.200.1", 53, kUdp, 1, 0, 2);
    add_vip_one_backend("2001:db8:200::1", 80, kTcp, 2, 0, 3);
    add_vip_one_backend("198.18.200.2", 80, kTcp, 3, XLB_VIP_NO_LRU, 1);
    add_vip_one_backend("198.18.200.3", 443, kTcp, 4, XLB_VIP_GUE, 1);
    add_vip_one_backend("198.18.200.5", 80, kTcp, 5, 0, 3);
    add_vip_one_backend("2001:db8:200::2", 80, kTcp, 6, 0, 2);
    add_vip_one_backend("2001:db8:200::3", 443, kUdp, 7, XLB_VIP_GUE, 4);
    add_vip_one_backend("198.18.200.7", 80, kTcp, 8, XLB_VIP_ICMP_TOO_BIG, 1);
    add_vip_one_backend("2001:db8:200::7", 80, kTcp, 9, XLB_VIP_ICMP_TOO_BIG, 3);
  }

  static Bytes tcp4(const char* dst, uint16_t dport, uint8_t flags, uint16_t sport = 40000,
                    uint8_t tos = 0) {
    return Packet()
        .eth(eth_in())
        .ipv4({.src = "198.18.1.2", .dst = dst, .tos = tos, .df = true})
        .tcp({.sport = sport, .dport = dport, .flags = flags, .seq = 1000})
        .payload("GET / HTTP/1.1\r\n")
        .bytes();
  }
  static Bytes tcp6(const char* dst, uint16_t dport, uint8_t flags, uint16_t sport = 40000,
                    uint8_t tclass = 0) {
    return Packet()
        .eth(eth_in())
        .ipv6({.src = "2001:db8:1::2", .dst = dst, .traffic_class = tclass})
        .tcp({.sport = sport, .dport = dport, .flags = flags, .seq = 1000})
        .payload("GET / HTTP/1.1\r\n")
        .bytes();
  }
  static Bytes udp4(const char* dst, uint16_t dport, uint16_t sport = 40000) {
    return Packet()
        .eth(eth_in())
        .ipv4({.src = "198.18.1.2", .dst = dst})
        .udp({.sport = sport, .dport = dport})
        .payload("query")
        .bytes();
  }
  static Bytes udp6(const char* dst, uint16_t dport, uint16_t sport = 40000) {
    return Packet()
        .eth(eth_in())
        .ipv6({.src = "2001:db8:1::2", .dst = dst})
        .udp({.sport = sport, .dport = dport})
        .payload("query")
        .bytes();
  }

  // Runs `in`, expecting an untouched XDP_PASS.
  void expect_pass(const Bytes& in) {
    auto r = run(in);
    EXPECT_EQ(r.action, XDP_PASS);
    EXPECT_EQ(r.out, in) << hexdump_diff(in, r.out);
  }
  void expect_tx(const Bytes& in, const Bytes& golden) {
    auto r = run(in);
    EXPECT_EQ(r.action, XDP_TX);
    EXPECT_EQ(r.out, golden) << hexdump_diff(golden, r.out);
  }
};

// ---- Not for us: passes untouched, as cheaply as possible ---------------------------------

TEST_F(BalancerCase, NonIpFramePasses) {
  auto before = counters();
  Bytes arp = Packet().eth({.src = kPeerMac, .dst = kLbMac, .ethertype = 0x0806})
                  .payload_pattern(28).bytes();
  expect_pass(arp);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_PASS, 1}});
}

TEST_F(BalancerCase, NonVipV4Passes) {
  auto before = counters();
  expect_pass(tcp4("198.18.9.9", 80, kAck));
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_PASS, 1}});
}

TEST_F(BalancerCase, NonVipV6Passes) {
  auto before = counters();
  expect_pass(tcp6("2001:db8:9::9", 80, kAck));
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_PASS, 1}});
}

TEST_F(BalancerCase, VipAddressOnOtherPortPasses) {
  auto before = counters();
  expect_pass(tcp4("198.18.200.1", 81, kAck));
  expect_pass(udp4("198.18.200.1", 80));  // port 80 is a TCP VIP only
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_PASS, 2}});
}

TEST_F(BalancerCase, OtherIpProtocolsPass) {
  auto before = counters();
  expect_pass(Packet().eth(eth_in())
                  .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .proto = 47})
                  .payload_pattern(24).bytes());
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_PASS, 1}});
}

// ---- Malformed: counted drops, never a bad TX ----------------------------------------------

// (BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header; NICs never deliver them.)
TEST_F(BalancerCase, EthernetHeaderAloneDropped) {
  auto before = counters();
  auto r = run(Packet().eth({.src = kPeerMac, .dst = kLbMac, .ethertype = kEthPIpv4}).bytes());
  EXPECT_EQ(r.action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_DROP_MALFORMED, 1}});
}

TEST_F(BalancerCase, TruncatedIpv4HeaderDropped) {
  auto before = counters();
  auto r = run(Packet().eth({.src = kPeerMac, .dst = kLbMac, .ethertype = kEthPIpv4})
                   .payload(Bytes{0x45, 0x00, 0x00}).bytes());
  EXPECT_EQ(r.action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_DROP_MALFORMED, 1}});
}

TEST_F(BalancerCase, BadIpVersionAndHeaderLengthDropped) {
  auto before = counters();
  EXPECT_EQ(run(Packet().eth({.src = kPeerMac, .dst = kLbMac, .ethertype = kEthPIpv4})
                    .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .version = 6})
                    .tcp({.sport = 1, .dport = 80}).bytes())
                .action,
            XDP_DROP);
  EXPECT_EQ(run(Packet().eth(eth_in())
                    .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .ihl = 4})
                    .tcp({.sport = 1, .dport = 80}).bytes())
                .action,
            XDP_DROP);
  EXPECT_EQ(run(Packet().eth({.src = kPeerMac, .dst = kLbMac, .ethertype = kEthPIpv6})
                    .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1"})
                    .tcp({.sport = 1, .dport = 80}).bytes())
                .action,
            XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 3}, {XLB_CNT_DROP_MALFORMED, 3}});
}

TEST_F(BalancerCase, Ipv4TotalLengthBeyondFrameDropped) {
  auto before = counters();
  auto r = run(Packet().eth(eth_in())
                   .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .tot_len = 1400})
                   .tcp({.sport = 40000, .dport = 80, .flags = kAck}).bytes());
  EXPECT_EQ(r.action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_DROP_MALFORMED, 1}});
}

TEST_F(BalancerCase, TruncatedTcpHeaderDropped) {
  auto before = counters();
  auto r = run(Packet().eth(eth_in())
                   .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .proto = kTcp})
                   .payload(Bytes{0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 0, 0, 0})
                   .bytes());
  EXPECT_EQ(r.action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_DROP_MALFORMED, 1}});
}

TEST_F(BalancerCase, Ipv6PayloadLengthBeyondFrameDropped) {
  auto before = counters();
  auto r = run(Packet().eth(eth_in())
                   .ipv6({.src = "2001:db8:1::2", .dst = "2001:db8:200::1", .payload_len = 900})
                   .tcp({.sport = 40000, .dport = 80, .flags = kAck}).bytes());
  EXPECT_EQ(r.action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_DROP_MALFORMED, 1}});
}

// ---- Policies: IPv4 options, fragments, IPv6 extension headers ------------------------------

TEST_F(BalancerCase, Ipv4OptionsToVipDroppedByDefault) {
  auto before = counters();
  auto r = run(Packet().eth(eth_in())
                   .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1",
                          .options = {0x94, 0x04, 0x00, 0x00}})  // router alert
                   .tcp({.sport = 40000, .dport = 80, .flags = kAck}).bytes());
  EXPECT_EQ(r.action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_IP_OPTIONS, 1}});
}

TEST_F(BalancerCase, Ipv4OptionsPassedWhenPolicySaysSo) {
  auto cfg = default_test_config();
  cfg.flags |= XLB_CFG_PASS_IP_OPTIONS;
  set_config(cfg);
  auto before = counters();
  expect_pass(Packet().eth(eth_in())
                  .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .options = {1, 1, 1, 1}})
                  .tcp({.sport = 40000, .dport = 80, .flags = kAck}).bytes());
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_PASS, 1}, {XLB_CNT_IP_OPTIONS, 1}});
}

TEST_F(BalancerCase, Ipv4OptionsToOtherAddressesPassUncounted) {
  auto before = counters();
  expect_pass(Packet().eth(eth_in())
                  .ipv4({.src = "198.18.1.2", .dst = "198.18.9.9", .options = {1, 1, 1, 1}})
                  .tcp({.sport = 40000, .dport = 80, .flags = kAck}).bytes());
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_PASS, 1}});
}

TEST_F(BalancerCase, Ipv4FragmentsToVipDroppedByDefault) {
  auto before = counters();
  // First fragment (MF) and a later one (offset): neither can be balanced consistently.
  EXPECT_EQ(run(Packet().eth(eth_in())
                    .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .mf = true})
                    .tcp({.sport = 40000, .dport = 80, .flags = kAck}).bytes())
                .action,
            XDP_DROP);
  EXPECT_EQ(run(Packet().eth(eth_in())
                    .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .frag_offset = 185,
                           .proto = kTcp})
                    .payload_pattern(64).bytes())
                .action,
            XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 2}, {XLB_CNT_FRAGMENT, 2}});
}

TEST_F(BalancerCase, FragmentsPassedWhenPolicySaysSo) {
  auto cfg = default_test_config();
  cfg.flags |= XLB_CFG_PASS_FRAGMENTS;
  set_config(cfg);
  auto before = counters();
  expect_pass(Packet().eth(eth_in())
                  .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .mf = true})
                  .tcp({.sport = 40000, .dport = 80, .flags = kAck}).bytes());
  expect_pass(Packet().eth(eth_in())
                  .ipv6({.src = "2001:db8:1::2", .dst = "2001:db8:200::1",
                         .ext = {Ipv6Ext::fragment(0, true, 7)}})
                  .tcp({.sport = 40000, .dport = 80, .flags = kAck}).bytes());
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_PASS, 2}, {XLB_CNT_FRAGMENT, 2}});
}

TEST_F(BalancerCase, Ipv6FragmentToVipDropped) {
  auto before = counters();
  auto r = run(Packet().eth(eth_in())
                   .ipv6({.src = "2001:db8:1::2", .dst = "2001:db8:200::1",
                          .ext = {Ipv6Ext::fragment(0, true, 7)}})
                   .tcp({.sport = 40000, .dport = 80, .flags = kAck}).bytes());
  EXPECT_EQ(r.action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_FRAGMENT, 1}});
}

TEST_F(BalancerCase, Ipv6ExtensionHeadersAreWalked) {
  Bytes in = Packet()
                 .eth(eth_in())
                 .ipv6({.src = "2001:db8:1::2", .dst = "2001:db8:200::1",
                        .ext = {Ipv6Ext::hop_by_hop(), Ipv6Ext::dest_opts(Bytes(10, 0)),
                                Ipv6Ext::routing(0, 0)}})
                 .tcp({.sport = 40000, .dport = 80, .flags = kSyn})
                 .bytes();
  auto before = counters();
  expect_tx(in, encapsulated(in, "2001:db8:3::11"));
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_SKIPPED, 1}});
}

TEST_F(BalancerCase, TooManyIpv6ExtensionHeadersDropped) {
  std::vector<Ipv6Ext> ext(XLB_MAX_IPV6_EXT_HDRS + 1, Ipv6Ext::dest_opts());
  auto before = counters();
  auto r = run(Packet().eth(eth_in())
                   .ipv6({.src = "2001:db8:1::2", .dst = "2001:db8:200::1", .ext = ext})
                   .tcp({.sport = 40000, .dport = 80, .flags = kAck}).bytes());
  EXPECT_EQ(r.action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_DROP_EXT_HDRS, 1}});
  // The same chain to a non-VIP address is the host's business.
  expect_pass(Packet().eth(eth_in())
                  .ipv6({.src = "2001:db8:1::2", .dst = "2001:db8:9::9", .ext = ext})
                  .tcp({.sport = 40000, .dport = 80, .flags = kAck}).bytes());
}

TEST_F(BalancerCase, TruncatedIpv6ExtensionHeaderDropped) {
  Bytes in = Packet().eth(eth_in())
                 .ipv6({.src = "2001:db8:1::2", .dst = "2001:db8:200::1",
                        .next_header = kProtoDestOpts})
                 .payload(Bytes{kProtoTcp})
                 .bytes();
  auto before = counters();
  EXPECT_EQ(run(in).action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_DROP_MALFORMED, 1}});
}

// ---- Encapsulation: IPIP, IP6IP6, 4in6, 6in4, GUE --------------------------------------------

TEST_F(BalancerCase, TcpV4IsIpipEncapsulated) {
  Bytes in = tcp4("198.18.200.1", 80, kSyn);
  auto before = counters();
  expect_tx(in, encapsulated(in, "198.18.3.11"));
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_SKIPPED, 1}});
  EXPECT_EQ(vip_traffic(0).packets, 1u);
  EXPECT_EQ(vip_traffic(0).bytes, in.size());
  EXPECT_EQ(backend_traffic(1).packets, 1u);
  EXPECT_EQ(backend_traffic(1).bytes, in.size());
}

TEST_F(BalancerCase, OuterHeaderIsWellFormed) {
  Bytes in = tcp4("198.18.200.1", 80, kSyn, 40000, 0xb8);
  auto r = run(in);
  ASSERT_EQ(r.action, XDP_TX);
  EXPECT_EQ(check_encapsulated(r.out, kGuePort, {.verify_inner_checksums = true}), std::nullopt);
  ParsedPacket p = parse(r.out);
  const auto* outer = p.find<ParsedIpv4>(0);
  ASSERT_NE(outer, nullptr);
  EXPECT_TRUE(outer->checksum_ok);
  EXPECT_TRUE(outer->df);
  EXPECT_EQ(outer->ttl, XLB_OUTER_TTL);
  EXPECT_EQ(outer->tos, 0xb8);  // DSCP/ECN copied outwards
  EXPECT_EQ(outer->src.octets[0], 198);
  EXPECT_EQ(outer->src.octets[1], 19);  // inside the encap source prefix 198.19.0.0/16
}

TEST_F(BalancerCase, TcpV6IsIp6ip6EncapsulatedWithTrafficClass) {
  Bytes in = tcp6("2001:db8:200::1", 80, kSyn, 40000, 0x2e);
  auto before = counters();
  expect_tx(in, encapsulated(in, "2001:db8:3::11"));
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_SKIPPED, 1}});
  EXPECT_EQ(backend_traffic(3).packets, 1u);
}

TEST_F(BalancerCase, V4VipToV6BackendIs4in6) {
  Bytes in = tcp4("198.18.200.5", 80, kSyn);
  expect_tx(in, encapsulated(in, "2001:db8:3::11"));
}

TEST_F(BalancerCase, V6VipToV4BackendIs6in4) {
  Bytes in = tcp6("2001:db8:200::2", 80, kSyn);
  expect_tx(in, encapsulated(in, "198.18.3.12"));
}

TEST_F(BalancerCase, UdpV4IsIpipEncapsulated) {
  Bytes in = udp4("198.18.200.1", 53);
  auto before = counters();
  expect_tx(in, encapsulated(in, "198.18.3.12"));
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_MISS, 1}});
}

TEST_F(BalancerCase, GueV4) {
  Bytes in = tcp4("198.18.200.3", 443, kSyn);
  expect_tx(in, encapsulated(in, "198.18.3.11", /*gue=*/true));
}

TEST_F(BalancerCase, GueV6) {
  Bytes in = udp6("2001:db8:200::3", 443);
  expect_tx(in, encapsulated(in, "2001:db8:3::12", /*gue=*/true));
}

TEST_F(BalancerCase, GuePortIsConfigurable) {
  auto cfg = default_test_config();
  cfg.gue_port = htons(7777);
  set_config(cfg);
  auto r = run(tcp4("198.18.200.3", 443, kSyn));
  ASSERT_EQ(r.action, XDP_TX);
  ParsedPacket p = parse(r.out, {.gue_port = 7777});
  const auto* udp = p.find<ParsedUdp>();
  ASSERT_NE(udp, nullptr);
  EXPECT_EQ(udp->dport, 7777);
  EXPECT_TRUE(udp->gue);
  EXPECT_EQ(check_encapsulated(r.out, 7777), std::nullopt);
}

TEST_F(BalancerCase, EthernetPaddingIsNotTunnelled) {
  Bytes in = Packet().eth(eth_in())
                 .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1"})
                 .tcp({.sport = 40000, .dport = 80, .flags = kSyn})
                 .pad_to(kEthMinFrame)
                 .bytes();
  ASSERT_EQ(in.size(), kEthMinFrame);
  expect_tx(in, encapsulated(in, "198.18.3.11"));
}

TEST_F(BalancerCase, OuterSourceSpreadsFlows) {
  std::set<std::string> sources;
  for (uint16_t port = 40000; port < 40032; port++) {
    auto r = run(tcp4("198.18.200.1", 80, kSyn, port));
    ASSERT_EQ(r.action, XDP_TX);
    sources.insert(parse(r.out).find<ParsedIpv4>(0)->src.to_string());
  }
  EXPECT_GE(sources.size(), 30u);  // 32 flows, 16 host bits: collisions are rare
}

// ---- VIP matching --------------------------------------------------------------------------

TEST_F(BalancerCase, PortlessVipCatchesAllPorts) {
  add_vip_one_backend("198.18.200.4", 0, kTcp, 10, 0, 2);
  EXPECT_TRUE(cfg_.flags & XLB_CFG_PORTLESS_VIPS);
  Bytes in = tcp4("198.18.200.4", 12345, kSyn);
  expect_tx(in, encapsulated(in, "198.18.3.12"));
  // UDP to the same address is not covered by a TCP port-less VIP.
  expect_pass(udp4("198.18.200.4", 12345));
}

TEST_F(BalancerCase, PortSpecificVipWinsOverPortless) {
  add_vip_one_backend("198.18.200.1", 0, kTcp, 10, 0, 2);
  Bytes in = tcp4("198.18.200.1", 80, kSyn);
  expect_tx(in, encapsulated(in, "198.18.3.11"));  // the :80 VIP's backend
  Bytes other = tcp4("198.18.200.1", 8080, kSyn);
  expect_tx(other, encapsulated(other, "198.18.3.12"));  // the port-less VIP's backend
}

TEST_F(BalancerCase, PortlessFlagFollowsVipSet) {
  EXPECT_FALSE(cfg_.flags & XLB_CFG_PORTLESS_VIPS);
  add_vip_one_backend("198.18.200.4", 0, kTcp, 10, 0, 2);
  EXPECT_TRUE(cfg_.flags & XLB_CFG_PORTLESS_VIPS);
  auto erased = lb_->delete_vip(dataplane::make_vip_key(*IpAddress::parse("198.18.200.4"), 0,
                                                        kTcp));
  ASSERT_TRUE(erased.ok());
  EXPECT_TRUE(*erased);
  auto cfg = lb_->config();
  ASSERT_TRUE(cfg.ok());
  EXPECT_FALSE(cfg->flags & XLB_CFG_PORTLESS_VIPS);
  expect_pass(tcp4("198.18.200.4", 12345, kSyn));
}

// ---- Connection table ----------------------------------------------------------------------

TEST_F(BalancerCase, MissInsertsThenHits) {
  Bytes in = tcp4("198.18.200.1", 80, kAck);
  auto before = counters();
  expect_tx(in, encapsulated(in, "198.18.3.11"));
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_MISS, 1}});
  auto entry = lb_->flow(flow_of(in));
  ASSERT_TRUE(entry.ok());
  ASSERT_TRUE(entry->has_value());
  EXPECT_EQ((*entry)->backend_index, 1u);

  before = counters();
  expect_tx(in, encapsulated(in, "198.18.3.11"));
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_HIT, 1}});
}

TEST_F(BalancerCase, TableEntryWinsOverRing) {
  Bytes in = tcp4("198.18.200.1", 80, kAck);
  ASSERT_TRUE(lb_->put_flow(flow_of(in), {.backend_index = 2}).ok());
  auto before = counters();
  expect_tx(in, encapsulated(in, "198.18.3.12"));  // the ring would say backend 1
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_HIT, 1}});
  EXPECT_EQ(backend_traffic(2).packets, 1u);
  EXPECT_EQ(backend_traffic(1).packets, 0u);
}

TEST_F(BalancerCase, SynSkipsLookupAndReplacesEntry) {
  Bytes syn = tcp4("198.18.200.1", 80, kSyn);
  ASSERT_TRUE(lb_->put_flow(flow_of(syn), {.backend_index = 2}).ok());
  auto before = counters();
  expect_tx(syn, encapsulated(syn, "198.18.3.11"));  // a new connection follows the ring
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_SKIPPED, 1}});
  auto entry = lb_->flow(flow_of(syn));
  ASSERT_TRUE(entry.ok() && entry->has_value());
  EXPECT_EQ((*entry)->backend_index, 1u);
}

TEST_F(BalancerCase, NoLruVipNeverUsesTheTable) {
  Bytes in = tcp4("198.18.200.2", 80, kAck);
  xlb_flow_key key = flow_of(in);
  ASSERT_TRUE(lb_->put_flow(key, {.backend_index = 2}).ok());
  auto before = counters();
  expect_tx(in, encapsulated(in, "198.18.3.11"));  // ring, despite the entry
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_SKIPPED, 1}});
  Bytes other = tcp4("198.18.200.2", 80, kAck, 41000);
  expect_tx(other, encapsulated(other, "198.18.3.11"));
  auto entry = lb_->flow(flow_of(other));
  ASSERT_TRUE(entry.ok());
  EXPECT_FALSE(entry->has_value());  // and never fills it
}

TEST_F(BalancerCase, UdpEntryExpiresWhenIdle) {
  Bytes in = udp4("198.18.200.1", 53);
  const uint64_t t0 = lb_->now_ns();
  ASSERT_EQ(run(in).action, XDP_TX);
  // Point the entry elsewhere, then age it: within the idle time it holds, after it expires.
  xlb_flow_key key = flow_of(in);
  ASSERT_TRUE(lb_->put_flow(key, {.backend_index = 1, .atime_ns = t0}).ok());

  lb_->set_fake_now(t0 + cfg_.udp_idle_ns);
  auto before = counters();
  expect_tx(in, encapsulated(in, "198.18.3.11"));
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_HIT, 1}});

  // The hit refreshed atime: idle again, then one nanosecond more.
  lb_->set_fake_now(t0 + 2 * cfg_.udp_idle_ns + 1);
  before = counters();
  expect_tx(in, encapsulated(in, "198.18.3.12"));  // re-placed by the ring
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_UDP_EXPIRED, 1}});
  auto entry = lb_->flow(key);
  ASSERT_TRUE(entry.ok() && entry->has_value());
  EXPECT_EQ((*entry)->backend_index, 2u);
  EXPECT_EQ((*entry)->atime_ns, t0 + 2 * cfg_.udp_idle_ns + 1);
}

TEST_F(BalancerCase, TcpEntriesDoNotExpire) {
  Bytes in = tcp4("198.18.200.1", 80, kAck);
  ASSERT_TRUE(lb_->put_flow(flow_of(in), {.backend_index = 2, .atime_ns = 0}).ok());
  lb_->set_fake_now(lb_->now_ns() + 10 * cfg_.udp_idle_ns);
  expect_tx(in, encapsulated(in, "198.18.3.12"));
}

TEST_F(BalancerCase, RateGuardStopsInsertsPastTheLimit) {
  auto cfg = default_test_config();
  cfg.new_flows_per_sec = 2;
  set_config(cfg);
  auto before = counters();
  for (uint16_t port = 50000; port < 50003; port++) {
    Bytes in = tcp4("198.18.200.1", 80, kAck, port);
    expect_tx(in, encapsulated(in, "198.18.3.11"));  // guarded flows are still forwarded
  }
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 3}, {XLB_CNT_LRU_MISS, 3},
                                             {XLB_CNT_RATE_GUARDED, 1}});
  EXPECT_TRUE(lb_->flow(flow_of(tcp4("198.18.200.1", 80, kAck, 50001)))->has_value());
  EXPECT_FALSE(lb_->flow(flow_of(tcp4("198.18.200.1", 80, kAck, 50002)))->has_value());

  // A second later the window has room again.
  lb_->set_fake_now(lb_->now_ns() + 1'000'000'000ULL);
  ASSERT_EQ(run(tcp4("198.18.200.1", 80, kAck, 50002)).action, XDP_TX);
  EXPECT_TRUE(lb_->flow(flow_of(tcp4("198.18.200.1", 80, kAck, 50002)))->has_value());
}

TEST_F(BalancerCase, RateGuardBypassedByVipFlag) {
  auto cfg = default_test_config();
  cfg.new_flows_per_sec = 1;
  set_config(cfg);
  add_vip_one_backend("198.18.200.8", 80, kTcp, 10, XLB_VIP_NO_RATE_GUARD, 1);
  auto before = counters();
  for (uint16_t port = 50000; port < 50004; port++) {
    ASSERT_EQ(run(tcp4("198.18.200.8", 80, kAck, port)).action, XDP_TX);
    EXPECT_TRUE(lb_->flow(flow_of(tcp4("198.18.200.8", 80, kAck, port)))->has_value());
  }
  EXPECT_EQ(delta(before, counters(), XLB_CNT_RATE_GUARDED), 0u);
}

// ---- Ring selection --------------------------------------------------------------------------

class RingCase : public BalancerCase {
 protected:
  static constexpr uint32_t kRingSize = 251;
  void SetUp() override {
    BalancerCase::SetUp();
    if (HasFatalFailure()) return;
    for (uint32_t b = 0; b < 8; b++) {
      add_backend(100 + b, ("198.18.3." + std::to_string(100 + b)).c_str());
    }
    for (uint32_t i = 0; i < kRingSize; i++) ring_.push_back(100 + (i * 7 + i / 3) % 8);
  }
  // Backend address the ring gives a flow, computed in userspace.
  std::string expected_backend(const Bytes& in, uint32_t vip_flags) {
    xlb_vip_meta meta{.vip_index = 0, .flags = vip_flags, .ring_size = kRingSize};
    uint32_t b = dataplane::ring_backend(flow_of(in), meta, cfg_.hash_seed, ring_);
    return "198.18.3." + std::to_string(b);
  }
  std::vector<uint32_t> ring_;
};

TEST_F(RingCase, SeededHashPicksTheSlot) {
  add_vip("198.18.200.9", 80, kTcp, 10, 0, ring_);
  std::set<std::string> used;
  for (uint16_t port = 30000; port < 30064; port++) {
    Bytes in = tcp4("198.18.200.9", 80, kSyn, port);
    std::string want = expected_backend(in, 0);
    used.insert(want);
    expect_tx(in, encapsulated(in, want.c_str()));
  }
  EXPECT_GE(used.size(), 6u);  // 64 flows over 8 backends land on most of them
}

TEST_F(RingCase, SeedChangesPlacement) {
  add_vip("198.18.200.9", 80, kTcp, 10, XLB_VIP_NO_LRU, ring_);
  std::vector<uint32_t> first;
  for (uint16_t port = 30000; port < 30032; port++) {
    auto r = run(tcp4("198.18.200.9", 80, kAck, port));
    first.push_back(parse(r.out).find<ParsedIpv4>(0)->dst.octets[3]);
  }
  auto cfg = default_test_config();
  cfg.hash_seed = kSeed + 1;
  set_config(cfg);
  int moved = 0;
  for (uint16_t port = 30000; port < 30032; port++) {
    Bytes in = tcp4("198.18.200.9", 80, kAck, port);
    auto r = run(in);
    uint32_t now = parse(r.out).find<ParsedIpv4>(0)->dst.octets[3];
    moved += now != first[port - 30000];
    EXPECT_EQ("198.18.3." + std::to_string(now), expected_backend(in, XLB_VIP_NO_LRU));
  }
  EXPECT_GE(moved, 16);  // 7/8 of flows move on average
}

TEST_F(RingCase, SourceOnlyHashKeepsAClientTogether) {
  add_vip("198.18.200.9", 80, kTcp, 10, XLB_VIP_HASH_SRC_ONLY | XLB_VIP_NO_LRU, ring_);
  std::set<std::string> used;
  for (uint16_t port = 30000; port < 30032; port++) {
    Bytes in = tcp4("198.18.200.9", 80, kAck, port);
    std::string want = expected_backend(in, XLB_VIP_HASH_SRC_ONLY);
    used.insert(want);
    expect_tx(in, encapsulated(in, want.c_str()));
  }
  EXPECT_EQ(used.size(), 1u);
}

TEST_F(RingCase, NoSourcePortHashIgnoresTheSourcePort) {
  add_vip("198.18.200.9", 0, kTcp, 10, XLB_VIP_HASH_NO_SPORT | XLB_VIP_NO_LRU, ring_);
  std::set<std::string> by_sport, by_dport;
  for (uint16_t port = 30000; port < 30032; port++) {
    Bytes a = tcp4("198.18.200.9", 80, kAck, port);
    Bytes b = tcp4("198.18.200.9", port, kAck, 40000);
    by_sport.insert(expected_backend(a, XLB_VIP_HASH_NO_SPORT));
    by_dport.insert(expected_backend(b, XLB_VIP_HASH_NO_SPORT));
    expect_tx(a, encapsulated(a, expected_backend(a, XLB_VIP_HASH_NO_SPORT).c_str()));
    expect_tx(b, encapsulated(b, expected_backend(b, XLB_VIP_HASH_NO_SPORT).c_str()));
  }
  EXPECT_EQ(by_sport.size(), 1u);
  EXPECT_GT(by_dport.size(), 1u);
}

TEST_F(RingCase, RingSwapTakesEffectAtOnce) {
  add_vip("198.18.200.9", 80, kTcp, 10, XLB_VIP_NO_LRU, ring_);
  Bytes in = tcp4("198.18.200.9", 80, kAck);
  expect_tx(in, encapsulated(in, expected_backend(in, 0).c_str()));
  ASSERT_TRUE(lb_->set_ring(10, std::vector<uint32_t>(kRingSize, 2)).ok());
  expect_tx(in, encapsulated(in, "198.18.3.12"));
}

TEST_F(RingCase, RingPatchChangesOnlyNamedSlots) {
  add_vip("198.18.200.9", 80, kTcp, 10, XLB_VIP_NO_LRU, ring_);
  Bytes in = tcp4("198.18.200.9", 80, kAck);
  xlb_vip_meta meta{.vip_index = 10, .flags = XLB_VIP_NO_LRU, .ring_size = kRingSize};
  uint32_t slot = dataplane::ring_slot(flow_of(in), meta, cfg_.hash_seed);
  std::vector<std::pair<uint32_t, uint32_t>> patch = {{slot, 2}};
  ASSERT_TRUE(lb_->update_ring(10, patch).ok());
  expect_tx(in, encapsulated(in, "198.18.3.12"));
  auto ring = lb_->ring(10);
  ASSERT_TRUE(ring.ok());
  for (uint32_t i = 0; i < kRingSize; i++) {
    EXPECT_EQ((*ring)[i], i == slot ? 2u : ring_[i]) << "slot " << i;
  }
}

TEST_F(BalancerCase, UnusedBackendSlotDropsCounted) {
  add_vip_one_backend("198.18.200.9", 80, kTcp, 10, 0, 77);  // index 77 never configured
  auto before = counters();
  EXPECT_EQ(run(tcp4("198.18.200.9", 80, kSyn)).action, XDP_DROP);
  EXPECT_EQ(run(tcp4("198.18.200.9", 80, kAck)).action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 2}, {XLB_CNT_LRU_SKIPPED, 1},
                                             {XLB_CNT_LRU_MISS, 1}, {XLB_CNT_DROP_NO_BACKEND, 2}});
  // A flow whose backend is unusable is not remembered.
  EXPECT_FALSE(lb_->flow(flow_of(tcp4("198.18.200.9", 80, kAck)))->has_value());
}

TEST_F(BalancerCase, VipWithoutRingDropsCounted) {
  ASSERT_TRUE(lb_->clear_ring(0).ok());
  auto before = counters();
  EXPECT_EQ(run(tcp4("198.18.200.1", 80, kSyn)).action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_LRU_SKIPPED, 1},
                                             {XLB_CNT_DROP_NO_RING, 1}});
}

// ---- ICMP errors follow their flow --------------------------------------------------------

TEST_F(BalancerCase, Icmp4FragNeededGoesToTheFlowsBackend) {
  // The backend answered the client from the VIP; a router on the way says "too big".
  Bytes client = tcp4("198.18.200.1", 80, kAck, 40000);
  ASSERT_TRUE(lb_->put_flow(flow_of(client), {.backend_index = 2}).ok());
  Bytes quoted = Packet().ipv4({.src = "198.18.200.1", .dst = "198.18.1.2", .df = true})
                     .tcp({.sport = 80, .dport = 40000, .flags = kAck})
                     .payload_pattern(32)
                     .l3_bytes();
  Bytes in = Packet().eth(eth_in())
                 .ipv4({.src = "198.18.1.254", .dst = "198.18.200.1"})
                 .icmp({.type = kIcmpDestUnreach, .code = kIcmpCodeFragNeeded, .rest = 1400})
                 .payload(Bytes(quoted.begin(), quoted.begin() + 28))
                 .bytes();
  auto before = counters();
  auto r = run(in);
  ASSERT_EQ(r.action, XDP_TX);
  EXPECT_EQ(check_encapsulated(r.out, kGuePort), std::nullopt);
  ParsedPacket p = parse(r.out, {.verify_l4_checksums = false});
  EXPECT_EQ(p.find<ParsedIpv4>(0)->dst.to_string(), "198.18.3.12");
  // The ICMP packet itself is what the tunnel carries.
  Bytes carried(r.out.begin() + kEthHeaderLen + 20, r.out.end());
  EXPECT_EQ(carried, Bytes(in.begin() + kEthHeaderLen, in.end()));
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_HIT, 1},
                                             {XLB_CNT_ICMP_STEERED, 1}});
}

TEST_F(BalancerCase, Icmp6PacketTooBigGoesToTheFlowsBackend) {
  Bytes client = tcp6("2001:db8:200::1", 80, kAck, 40000);
  ASSERT_TRUE(lb_->put_flow(flow_of(client), {.backend_index = 4}).ok());
  Bytes quoted = Packet().ipv6({.src = "2001:db8:200::1", .dst = "2001:db8:1::2"})
                     .tcp({.sport = 80, .dport = 40000, .flags = kAck})
                     .payload_pattern(64)
                     .l3_bytes();
  Bytes in = Packet().eth(eth_in())
                 .ipv6({.src = "2001:db8:1::fe", .dst = "2001:db8:200::1"})
                 .icmpv6({.type = kIcmpv6PacketTooBig, .rest = 1280})
                 .payload(quoted)
                 .bytes();
  auto before = counters();
  auto r = run(in);
  ASSERT_EQ(r.action, XDP_TX);
  ParsedPacket p = parse(r.out, {.verify_l4_checksums = false});
  EXPECT_EQ(p.find<ParsedIpv6>(0)->dst.to_string(), "2001:db8:3::12");
  EXPECT_EQ(check_encapsulated(r.out, kGuePort), std::nullopt);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_HIT, 1},
                                             {XLB_CNT_ICMP_STEERED, 1}});
}

TEST_F(BalancerCase, IcmpWithoutTableEntryFollowsTheRing) {
  Bytes quoted = Packet().ipv4({.src = "198.18.200.1", .dst = "198.18.1.2"})
                     .tcp({.sport = 80, .dport = 40123, .flags = kAck})
                     .l3_bytes();
  Bytes in = Packet().eth(eth_in())
                 .ipv4({.src = "198.18.1.254", .dst = "198.18.200.1"})
                 .icmp({.type = kIcmpDestUnreach, .code = 1})
                 .payload(quoted)
                 .bytes();
  auto before = counters();
  auto r = run(in);
  ASSERT_EQ(r.action, XDP_TX);
  EXPECT_EQ(parse(r.out, {.verify_l4_checksums = false}).find<ParsedIpv4>(0)->dst.to_string(),
            "198.18.3.11");
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_MISS, 1},
                                             {XLB_CNT_ICMP_STEERED, 1}});
  EXPECT_FALSE(lb_->flow(dataplane::make_flow_key(*IpAddress::parse("198.18.1.2"), 40123,
                                                  *IpAddress::parse("198.18.200.1"), 80, kTcp))
                   ->has_value());
}

TEST_F(BalancerCase, IcmpEchoAndUnrelatedErrorsPass) {
  auto before = counters();
  expect_pass(Packet().eth(eth_in())
                  .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1"})
                  .icmp({.type = kIcmpEchoRequest, .rest = 0x00010001})
                  .payload("ping").bytes());
  Bytes quoted = Packet().ipv4({.src = "198.18.9.9", .dst = "198.18.1.2"})
                     .tcp({.sport = 80, .dport = 40000}).l3_bytes();
  expect_pass(Packet().eth(eth_in())
                  .ipv4({.src = "198.18.1.254", .dst = "198.18.9.9"})
                  .icmp({.type = kIcmpDestUnreach, .code = 4})
                  .payload(quoted).bytes());
  expect_pass(Packet().eth(eth_in())
                  .ipv6({.src = "2001:db8:1::2", .dst = "2001:db8:200::1"})
                  .icmpv6({.type = kIcmpv6EchoRequest}).payload("ping").bytes());
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_PASS, 3}});
}

// ---- Size limit ------------------------------------------------------------------------------

TEST_F(BalancerCase, OversizeFrameDroppedCounted) {
  auto cfg = default_test_config();
  cfg.max_pkt_size = 200;
  set_config(cfg);
  Bytes big = Packet().eth(eth_in())
                  .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .df = true})
                  .tcp({.sport = 40000, .dport = 80, .flags = kAck})
                  .payload_pattern(200).bytes();
  auto before = counters();
  EXPECT_EQ(run(big).action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_DROP_TOO_BIG, 1}});
  // At the limit exactly it is forwarded.
  Bytes fits = Packet().eth(eth_in())
                   .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .df = true})
                   .tcp({.sport = 40000, .dport = 80, .flags = kAck})
                   .payload_pattern(200 - 54).bytes();
  ASSERT_EQ(fits.size(), 200u);
  EXPECT_EQ(run(fits).action, XDP_TX);
}

TEST_F(BalancerCase, SizeLimitCountsTheDatagramNotTrailingBytes) {
  auto cfg = default_test_config();
  cfg.max_pkt_size = 200;
  set_config(cfg);
  // A datagram exactly at the limit, followed by trailing bytes that are not tunnelled.
  Packet client;
  client.eth(eth_in())
      .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .df = true})
      .tcp({.sport = 40000, .dport = 80, .flags = kAck})
      .payload_pattern(200 - 54);
  Bytes in = client.bytes();
  in.insert(in.end(), 40, 0xee);
  auto before = counters();
  expect_tx(in, encapsulated(client.bytes(), "198.18.3.11"));
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1}, {XLB_CNT_LRU_MISS, 1}});
}

TEST_F(BalancerCase, OversizeV4WithFlagAnswersFragNeeded) {
  auto cfg = default_test_config();
  cfg.max_pkt_size = 600;
  set_config(cfg);
  Packet client;
  client.eth(eth_in())
      .ipv4({.src = "198.18.1.2", .dst = "198.18.200.7", .id = 7, .df = true})
      .tcp({.sport = 40000, .dport = 80, .flags = kAck, .seq = 5})
      .payload_pattern(700);
  Bytes in = client.bytes();
  Bytes l3 = client.l3_bytes();
  Bytes golden = Packet()
                     .eth({.src = kLbMac, .dst = kPeerMac})
                     .ipv4({.src = "198.18.200.7", .dst = "198.18.1.2", .df = true})
                     .icmp({.type = kIcmpDestUnreach, .code = kIcmpCodeFragNeeded,
                            .rest = 600 - 14})
                     .payload(Bytes(l3.begin(), l3.begin() + 28))
                     .bytes();
  auto before = counters();
  expect_tx(in, golden);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1},
                                             {XLB_CNT_ICMP_TOO_BIG_SENT, 1}});
}

TEST_F(BalancerCase, OversizeV4WithoutDfIsDropped) {
  auto cfg = default_test_config();
  cfg.max_pkt_size = 600;
  set_config(cfg);
  Bytes in = Packet().eth(eth_in())
                 .ipv4({.src = "198.18.1.2", .dst = "198.18.200.7", .df = false})
                 .tcp({.sport = 40000, .dport = 80, .flags = kAck})
                 .payload_pattern(700).bytes();
  auto before = counters();
  EXPECT_EQ(run(in).action, XDP_DROP);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_DROP, 1}, {XLB_CNT_DROP_TOO_BIG, 1}});
}

TEST_F(BalancerCase, OversizeV6WithFlagAnswersPacketTooBig) {
  auto cfg = default_test_config();
  cfg.max_pkt_size = 1400;
  set_config(cfg);
  Packet client;
  client.eth(eth_in())
      .ipv6({.src = "2001:db8:1::2", .dst = "2001:db8:200::7"})
      .tcp({.sport = 40000, .dport = 80, .flags = kAck})
      .payload_pattern(1400);
  Bytes in = client.bytes();
  Bytes l3 = client.l3_bytes();
  Bytes golden = Packet()
                     .eth({.src = kLbMac, .dst = kPeerMac})
                     .ipv6({.src = "2001:db8:200::7", .dst = "2001:db8:1::2"})
                     .icmpv6({.type = kIcmpv6PacketTooBig, .rest = 1400 - 14})
                     .payload(Bytes(l3.begin(), l3.begin() + 48))
                     .bytes();
  auto before = counters();
  expect_tx(in, golden);
  expect_counter_deltas(before, counters(), {{XLB_CNT_XDP_TX, 1},
                                             {XLB_CNT_ICMP_TOO_BIG_SENT, 1}});
}

// ---- Counters add up ---------------------------------------------------------------------------

TEST_F(BalancerCase, EveryPacketCountsOneAction) {
  auto before = counters();
  std::vector<Bytes> frames = {tcp4("198.18.200.1", 80, kSyn), tcp4("198.18.9.9", 80, kAck),
                               Bytes(14, 0), udp6("2001:db8:200::3", 443),
                               tcp6("2001:db8:200::1", 80, kAck)};
  for (const auto& f : frames) run(f);
  auto after = counters();
  EXPECT_EQ(delta(before, after, XLB_CNT_XDP_PASS) + delta(before, after, XLB_CNT_XDP_TX) +
                delta(before, after, XLB_CNT_XDP_DROP),
            frames.size());
}

}  // namespace
}  // namespace xlb::test
