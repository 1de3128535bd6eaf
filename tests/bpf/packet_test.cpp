// SPDX-License-Identifier: Apache-2.0
// Self-tests of the test packet builder and parser. Golden tests of the XDP programs trust
// these bytes, so the builder is checked against values computed by hand or by the RFCs, not
// only against its own parser.
#include "packet.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace xlb::test {
namespace {

const Mac kClientMac = mac("02:00:00:00:00:01");
const Mac kLbMac = mac("02:00:00:00:00:02");
const Eth kEth = {.src = kClientMac, .dst = kLbMac};

std::span<const uint8_t> sub(const Bytes& b, size_t off, size_t len) {
  return std::span<const uint8_t>(b).subspan(off, len);
}

uint16_t be16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}

// Empty for "no error", so a failure prints the error text.
std::string error_text(const std::optional<std::string>& error) { return error.value_or(""); }

// The client's packet as the balancer receives it, without Ethernet: 20 + 20 + 5 = 45 bytes.
Packet client_v4() {
  return Packet()
      .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .df = true})
      .tcp({.sport = 40000, .dport = 80, .flags = kSyn, .seq = 1})
      .payload("hello");
}

// 40 + 20 + 5 = 65 bytes.
Packet client_v6() {
  return Packet()
      .ipv6({.src = "2001:db8::1", .dst = "2001:db8:ff::1"})
      .tcp({.sport = 40000, .dport = 443, .flags = kAck, .seq = 7, .ack = 9})
      .payload("hello");
}

// ---- Checksums -----------------------------------------------------------------------------

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 section 3: the words sum to 0x2ddf0, fold to 0xddf2, complement 0x220d.
  const Bytes data = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(checksum_add(data), 0xddf2u);
  EXPECT_EQ(internet_checksum(data), 0x220d);
}

TEST(Checksum, OddLengthPadsWithZero) {
  EXPECT_EQ(internet_checksum(Bytes{0x01}), 0xfeff);
  EXPECT_EQ(internet_checksum(Bytes{0x12, 0x34, 0x56}), static_cast<uint16_t>(~(0x1234 + 0x5600)));
}

TEST(Checksum, Ipv4HeaderKnownAnswer) {
  // The shape of the textbook IPv4 header checksum example, with test-range addresses:
  // 198.18.0.1 -> 198.18.0.199, UDP, tot_len 0x73, DF, TTL 64. By hand: 4500 + 0073 + 0000 +
  // 4000 + 4011 + c612 + 0001 + c612 + 00c7 = 0x25270; fold 0x5272, complement 0xad8d.
  const Bytes expected = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                          0xad, 0x8d, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12, 0x00, 0xc7};
  Bytes b = Packet()
                .ipv4({.src = "198.18.0.1", .dst = "198.18.0.199", .df = true, .proto = 17})
                .payload_pattern(0x73 - 20)
                .bytes();
  ASSERT_EQ(b.size(), 0x73u);
  Bytes header(b.begin(), b.begin() + 20);
  EXPECT_TRUE(header == expected) << hexdump_diff(expected, header);
}

TEST(Checksum, Ipv4HeaderHandComputed) {
  // 45 00 | 00 2d | 00 00 | 40 00 | 40 06 | cksum | c6 12 01 02 | c6 12 c8 01
  // 0x4500 + 0x002d + 0x4000 + 0x4006 + 0xc612 + 0x0102 + 0xc612 + 0xc801 = 0x31a5a
  // fold: 0x1a5a + 0x3 = 0x1a5d, complement 0xe5a2.
  Bytes b = client_v4().bytes();
  EXPECT_EQ(be16(b, 10), 0xe5a2);
}

TEST(Checksum, PseudoHeadersKnownAnswer) {
  // c612 + 0001 + c612 + 0002 + 0011 (proto) + 0008 (length) = 0x18c40, folded 0x8c41
  EXPECT_EQ(pseudo_header_v4("198.18.0.1", "198.18.0.2", kProtoUdp, 8), 0x8c41u);
  // 0001 + 0002 + 0000 0014 (length) + 0000 0006 (next header) = 0x1d
  EXPECT_EQ(pseudo_header_v6("::1", "::2", kProtoTcp, 20), 0x1du);
}

TEST(Checksum, L4KnownAnswers) {
  // TCP 1 -> 2, SYN, window 0: 0001 + 0002 + 5002 (offset, flags) = 0x5005; pseudo-header
  // c612 + 0001 + c612 + 0002 + 0006 + 0014 = 0x18c41; total 0x1dc46, folded 0xdc47,
  // checksum 0x23b8.
  Bytes tcp = Packet()
                  .ipv4({.src = "198.18.0.1", .dst = "198.18.0.2"})
                  .tcp({.sport = 1, .dport = 2, .flags = kSyn, .window = 0})
                  .bytes();
  EXPECT_EQ(be16(tcp, 20 + 16), 0x23b8);
  // UDP over IPv6 ::1 -> ::2, 1 -> 2, empty: 0001 + 0002 + 0008 = 0x000b; pseudo-header
  // 0001 + 0002 + 0008 + 0011 = 0x1c; total 0x27, checksum 0xffd8.
  Bytes udp = Packet().ipv6({.src = "::1", .dst = "::2"}).udp({.sport = 1, .dport = 2}).bytes();
  EXPECT_EQ(be16(udp, 40 + 6), 0xffd8);
}

TEST(Checksum, TcpResumsToFfff) {
  Bytes b = Packet()
                .eth(kEth)
                .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1"})
                .tcp({.sport = 40000, .dport = 80, .flags = kSyn | kAck, .seq = 1, .ack = 2})
                .payload("odd")  // odd length exercises the zero padding
                .bytes();
  const size_t l4 = 14 + 20;
  const size_t len = b.size() - l4;
  uint32_t sum = pseudo_header_v4("198.18.1.2", "198.18.200.1", kProtoTcp, len);
  EXPECT_EQ(checksum_fold(checksum_add(sub(b, l4, len), sum)), 0xffff);
  EXPECT_NE(be16(b, l4 + 16), 0);
}

TEST(Checksum, TcpOverIpv6ResumsToFfff) {
  Bytes b = client_v6().bytes();
  const size_t len = b.size() - 40;
  uint32_t sum = pseudo_header_v6("2001:db8::1", "2001:db8:ff::1", kProtoTcp, len);
  EXPECT_EQ(checksum_fold(checksum_add(sub(b, 40, len), sum)), 0xffff);
}

TEST(Checksum, UdpComputedZeroIsSentAsFfff) {
  // With the last payload word equal to the checksum the packet had with that word zero, the
  // one's-complement sum becomes x + ~x = 0xffff and the computed checksum 0, which RFC 768
  // says to send as 0xffff.
  auto build = [](uint8_t hi, uint8_t lo) {
    return Packet()
        .ipv4({.src = "198.18.0.1", .dst = "198.18.0.2"})
        .udp({.sport = 1, .dport = 2})
        .payload({0xab, 0xcd, hi, lo})
        .bytes();
  };
  const uint16_t c0 = be16(build(0, 0), 26);
  Bytes b = build(static_cast<uint8_t>(c0 >> 8), static_cast<uint8_t>(c0));
  EXPECT_EQ(be16(b, 26), 0xffff);
}

// ---- Builder: layers -----------------------------------------------------------------------

TEST(Builder, EthernetAndDerivedTypes) {
  Bytes b = Packet().eth(kEth).ipv4({.src = "198.18.0.1", .dst = "198.18.0.2"}).udp({}).bytes();
  ASSERT_EQ(b.size(), 14u + 20 + 8);
  EXPECT_EQ(Bytes(b.begin(), b.begin() + 6), Bytes(kLbMac.octets.begin(), kLbMac.octets.end()));
  EXPECT_EQ(Bytes(b.begin() + 6, b.begin() + 12),
            Bytes(kClientMac.octets.begin(), kClientMac.octets.end()));
  EXPECT_EQ(be16(b, 12), kEthPIpv4);
  EXPECT_EQ(b[14 + 9], kProtoUdp);
  EXPECT_EQ(be16(b, 14 + 2), 28);  // tot_len
  EXPECT_EQ(be16(b, 34 + 4), 8);   // udp len

  Bytes b6 = Packet().eth(kEth).ipv6({.src = "::1", .dst = "::2"}).icmpv6({}).bytes();
  EXPECT_EQ(be16(b6, 12), kEthPIpv6);
  EXPECT_EQ(b6[14 + 6], kProtoIcmpv6);
  EXPECT_EQ(b6[14 + 7], 64);  // default hop limit
}

TEST(Builder, Ipv4FieldsAndOptions) {
  Bytes b = Packet()
                .ipv4({.src = "198.18.0.1",
                       .dst = "198.18.0.2",
                       .ttl = 5,
                       .tos = 0x10,
                       .id = 0x1234,
                       .mf = true,
                       .frag_offset = 3,
                       .options = {0x94, 0x04, 0x00}})  // router alert, padded to 4
                .udp({})
                .bytes();
  EXPECT_EQ(b[0], 0x46);  // version 4, ihl 6
  EXPECT_EQ(b[1], 0x10);
  EXPECT_EQ(be16(b, 4), 0x1234);
  EXPECT_EQ(be16(b, 6), 0x2003);
  EXPECT_EQ(b[8], 5);
  EXPECT_EQ(b[23], 0x00);  // option padding
  EXPECT_EQ(be16(b, 2), 24 + 8);
  EXPECT_EQ(internet_checksum(sub(b, 0, 24)), 0);
}

TEST(Builder, Ipv4Overrides) {
  Bytes b = Packet()
                .ipv4({.src = "198.18.0.1",
                       .dst = "198.18.0.2",
                       .proto = 99,
                       .tot_len = 1000,
                       .ihl = 4,
                       .version = 5,
                       .checksum = 0xbeef})
                .payload("x")
                .bytes();
  EXPECT_EQ(b[0], 0x54);
  EXPECT_EQ(be16(b, 2), 1000);
  EXPECT_EQ(b[9], 99);
  EXPECT_EQ(be16(b, 10), 0xbeef);
}

TEST(Builder, TcpFieldsAndOptions) {
  Bytes b = client_v4().bytes();
  const size_t t = 20;
  EXPECT_EQ(be16(b, t), 40000);
  EXPECT_EQ(be16(b, t + 2), 80);
  EXPECT_EQ(be16(b, t + 6), 1);  // low half of seq
  EXPECT_EQ(b[t + 12], 0x50);
  EXPECT_EQ(b[t + 13], kSyn);
  EXPECT_EQ(be16(b, t + 14), 65535);  // default window

  // MSS 1460 (4 bytes) plus a NOP: padded to 8, data offset 7.
  Bytes o = Packet()
                .ipv4({.src = "198.18.0.1", .dst = "198.18.0.2"})
                .tcp({.flags = kSyn, .options = {2, 4, 0x05, 0xb4, 1}})
                .bytes();
  EXPECT_EQ(o[t + 12], 0x70);
  EXPECT_EQ(o.size(), 20u + 28);
}

TEST(Builder, Ipv6ExtensionHeaders) {
  Bytes b = Packet()
                .ipv6({.src = "2001:db8::1",
                       .dst = "2001:db8::2",
                       .traffic_class = 0xab,
                       .flow_label = 0x12345,
                       .ext = {Ipv6Ext::hop_by_hop(), Ipv6Ext::routing(4, 0),
                               Ipv6Ext::fragment(0, false, 0xdeadbeef)}})
                .udp({.sport = 1, .dport = 2})
                .bytes();
  EXPECT_EQ(b[0], 0x6a);  // version 6, upper nibble of the traffic class
  EXPECT_EQ(b[1], 0xb1);
  EXPECT_EQ(be16(b, 2), 0x2345);
  EXPECT_EQ(b[6], kProtoHopByHop);
  // Hop-by-hop without options: next header, length 0, then a 4-byte PadN.
  const Bytes hbh = {kProtoRouting, 0, 1, 4, 0, 0, 0, 0};
  EXPECT_EQ(Bytes(b.begin() + 40, b.begin() + 48), hbh);
  const Bytes routing = {kProtoFragment, 0, 4, 0, 0, 0, 0, 0};
  EXPECT_EQ(Bytes(b.begin() + 48, b.begin() + 56), routing);
  const Bytes frag = {kProtoUdp, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef};
  EXPECT_EQ(Bytes(b.begin() + 56, b.begin() + 64), frag);
  EXPECT_EQ(be16(b, 4), 24 + 8);  // payload_len counts the extension headers
}

TEST(Builder, Ipv6TlvPaddingUsesPad1AndPadN) {
  // 5 option bytes + 2 header bytes leave one byte: Pad1.
  Ipv6Ext one = Ipv6Ext::dest_opts({0x1e, 0x03, 1, 2, 3});
  EXPECT_EQ(one.body.size(), 6u);
  EXPECT_EQ(one.body.back(), 0);
  // 12 option bytes: 2 more to 16, a PadN with no data bytes.
  Ipv6Ext two = Ipv6Ext::hop_by_hop(Bytes{0x1e, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(two.body.size(), 14u);
  EXPECT_EQ(two.body[12], 1);
  EXPECT_EQ(two.body[13], 0);
  Ipv6Ext frag = Ipv6Ext::fragment(0x1fff, true, 1);
  EXPECT_EQ(frag.body, (Bytes{0xff, 0xf9, 0, 0, 0, 1}));
}

TEST(Builder, IcmpRestCarriesMtu) {
  Bytes b = Packet()
                .ipv4({.src = "198.18.0.1", .dst = "198.18.0.2"})
                .icmp({.type = kIcmpDestUnreach, .code = kIcmpCodeFragNeeded, .rest = 1400})
                .bytes();
  EXPECT_EQ(b[9], kProtoIcmp);
  // 0x0304 + 0x0000 + 0x0578 = 0x087c, complement 0xf783.
  EXPECT_EQ(Bytes(b.begin() + 20, b.end()), (Bytes{3, 4, 0xf7, 0x83, 0, 0, 0x05, 0x78}));
  EXPECT_EQ(internet_checksum(sub(b, 20, 8)), 0);
}

TEST(Builder, DerivationFailuresThrow) {
  EXPECT_THROW(Packet().eth(kEth).payload("x").bytes(), std::logic_error);
  EXPECT_THROW(Packet().ipv4({}).payload("x").bytes(), std::logic_error);
  EXPECT_THROW(Packet().ipv4({}).bytes(), std::logic_error);
  EXPECT_THROW(Packet().tcp({}).bytes(), std::logic_error);  // no pseudo-header
  EXPECT_NO_THROW(Packet().tcp({.checksum = 0}).bytes());
  EXPECT_NO_THROW(Packet().ipv4({.proto = 253}).payload("x").bytes());
  // IPv6 followed by nothing is "no next header".
  EXPECT_EQ(Packet().ipv6({}).bytes()[6], kProtoNoNext);
  EXPECT_THROW(Packet().ipv4({}).udp({}).payload_pattern(70000).bytes(), std::logic_error);
}

// ---- Builder: stacking ---------------------------------------------------------------------

TEST(Stacking, Ipip) {
  Bytes b = Packet()
                .eth(kEth)
                .ipv4({.src = "198.18.1.1", .dst = "198.18.2.1"})
                .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .df = true})
                .tcp({.sport = 40000, .dport = 80, .flags = kSyn, .seq = 1})
                .payload("hello")
                .bytes();
  ASSERT_EQ(b.size(), 14u + 20 + 45);
  EXPECT_EQ(b[14 + 9], kProtoIpip);
  EXPECT_EQ(be16(b, 14 + 2), 65);
  EXPECT_EQ(be16(b, 34 + 2), 45);
  // The inner packet is exactly the client's packet.
  Bytes inner(b.begin() + 34, b.end());
  Bytes client = client_v4().bytes();
  EXPECT_TRUE(inner == client) << hexdump_diff(client, inner);
}

TEST(Stacking, Ip6ip6) {
  Bytes b = Packet()
                .eth(kEth)
                .ipv6({.src = "fc00::1", .dst = "fc00::2"})
                .ipv6({.src = "2001:db8::1", .dst = "2001:db8:ff::1"})
                .tcp({.sport = 40000, .dport = 443, .flags = kAck, .seq = 7, .ack = 9})
                .payload("hello")
                .bytes();
  ASSERT_EQ(b.size(), 14u + 40 + 65);
  EXPECT_EQ(b[14 + 6], kProtoIpv6);
  EXPECT_EQ(be16(b, 14 + 4), 65);
  EXPECT_EQ(be16(b, 54 + 4), 25);
  Bytes inner(b.begin() + 54, b.end());
  EXPECT_EQ(inner, client_v6().bytes());
}

TEST(Stacking, FourInSix) {
  // A built packet can be carried as raw bytes too, with the protocol given by hand.
  Bytes c = Packet()
                .eth(kEth)
                .ipv6({.src = "fc00::1", .dst = "fc00::2", .next_header = kProtoIpip})
                .payload(client_v4().bytes())
                .bytes();
  Bytes s = Packet()
                .eth(kEth)
                .ipv6({.src = "fc00::1", .dst = "fc00::2"})
                .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .df = true})
                .tcp({.sport = 40000, .dport = 80, .flags = kSyn, .seq = 1})
                .payload("hello")
                .bytes();
  ASSERT_EQ(s.size(), 14u + 40 + 45);
  EXPECT_EQ(s[14 + 6], kProtoIpip);
  EXPECT_EQ(be16(s, 14 + 4), 45);
  EXPECT_TRUE(s == c) << hexdump_diff(c, s);
}

TEST(Stacking, GueOverIpv4WithZeroChecksum) {
  Bytes b = Packet()
                .eth(kEth)
                .ipv4({.src = "198.18.1.1", .dst = "198.18.2.1"})
                .udp({.sport = 31337, .dport = XLB_DEFAULT_GUE_PORT, .checksum = 0})
                .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .df = true})
                .tcp({.sport = 40000, .dport = 80, .flags = kSyn, .seq = 1})
                .payload("hello")
                .bytes();
  ASSERT_EQ(b.size(), 14u + 20 + 8 + 45);
  EXPECT_EQ(b[14 + 9], kProtoUdp);
  EXPECT_EQ(be16(b, 14 + 2), 20 + 8 + 45);
  EXPECT_EQ(be16(b, 34 + 2), XLB_DEFAULT_GUE_PORT);
  EXPECT_EQ(be16(b, 34 + 4), 8 + 45);
  EXPECT_EQ(be16(b, 34 + 6), 0);
  EXPECT_EQ(Bytes(b.begin() + 42, b.end()), client_v4().bytes());
}

TEST(Stacking, GueOverIpv6WithComputedChecksum) {
  Bytes b = Packet()
                .eth(kEth)
                .ipv6({.src = "fc00::1", .dst = "fc00::2"})
                .udp({.sport = 31337, .dport = XLB_DEFAULT_GUE_PORT})
                .ipv6({.src = "2001:db8::1", .dst = "2001:db8:ff::1"})
                .tcp({.sport = 40000, .dport = 443, .flags = kAck, .seq = 7, .ack = 9})
                .payload("hello")
                .bytes();
  const size_t udp = 14 + 40;
  const size_t len = b.size() - udp;
  EXPECT_EQ(len, 8u + 65);
  EXPECT_EQ(be16(b, 14 + 4), len);
  EXPECT_EQ(be16(b, udp + 4), len);
  uint32_t sum = pseudo_header_v6("fc00::1", "fc00::2", kProtoUdp, len);
  EXPECT_EQ(checksum_fold(checksum_add(sub(b, udp, len), sum)), 0xffff);
}

TEST(Stacking, IcmpFragNeededQuotesOriginal) {
  Packet original = Packet()
                        .eth(kEth)
                        .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .df = true})
                        .tcp({.sport = 40000, .dport = 80, .flags = kAck, .seq = 5})
                        .payload_pattern(1460);
  Bytes quote = original.l3_bytes();
  quote.resize(20 + 8);  // IP header and the first 8 transport bytes (RFC 792)
  Bytes b = Packet()
                .eth({.src = kLbMac, .dst = kClientMac})
                .ipv4({.src = "198.18.200.1", .dst = "198.18.1.2"})
                .icmp({.type = kIcmpDestUnreach, .code = kIcmpCodeFragNeeded, .rest = 1400})
                .payload(quote)
                .bytes();
  ASSERT_EQ(b.size(), 14u + 20 + 8 + 28);
  EXPECT_EQ(be16(b, 14 + 2), 20 + 8 + 28);
  EXPECT_EQ(be16(b, 34 + 6), 1400);
  EXPECT_EQ(internet_checksum(sub(b, 34, 36)), 0);

  ParsedPacket p = parse(b);
  ASSERT_TRUE(p.ok()) << p.to_string();
  const auto* icmp = p.find<ParsedIcmp>();
  ASSERT_NE(icmp, nullptr);
  EXPECT_EQ(icmp->rest, 1400u);
  EXPECT_EQ(icmp->checksum_ok, true);
  EXPECT_EQ(icmp->body, quote);

  ParsedPacket q = parse_quote(icmp->body);
  ASSERT_TRUE(q.ok()) << q.to_string();
  ASSERT_NE(q.find<ParsedIpv4>(), nullptr);
  EXPECT_EQ(q.find<ParsedIpv4>()->tot_len, 20 + 20 + 1460);
  EXPECT_EQ(q.find<ParsedIpv4>()->dst, Ipv4Addr("198.18.200.1"));
  ASSERT_NE(q.find<ParsedTcp>(), nullptr);
  EXPECT_EQ(q.find<ParsedTcp>()->sport, 40000);
  EXPECT_EQ(q.find<ParsedTcp>()->seq, 5u);
  EXPECT_FALSE(q.find<ParsedTcp>()->checksum_ok.has_value());

  Bytes short_quote(quote.begin(), quote.begin() + 24);
  EXPECT_FALSE(parse_quote(short_quote).ok());
}

TEST(Stacking, Icmpv6PacketTooBig) {
  Bytes quote = client_v6().bytes();
  Bytes b = Packet()
                .eth(kEth)
                .ipv6({.src = "2001:db8:ff::1", .dst = "2001:db8::1"})
                .icmpv6({.type = kIcmpv6PacketTooBig, .rest = 1280})
                .payload(quote)
                .bytes();
  const size_t m = 14 + 40;
  const size_t len = b.size() - m;
  EXPECT_EQ(b[m], kIcmpv6PacketTooBig);
  EXPECT_EQ(be16(b, m + 6), 1280);
  uint32_t sum = pseudo_header_v6("2001:db8:ff::1", "2001:db8::1", kProtoIcmpv6, len);
  EXPECT_EQ(checksum_fold(checksum_add(sub(b, m, len), sum)), 0xffff);

  ParsedPacket p = parse(b);
  ASSERT_TRUE(p.ok()) << p.to_string();
  ASSERT_NE(p.find<ParsedIcmpv6>(), nullptr);
  EXPECT_EQ(p.find<ParsedIcmpv6>()->checksum_ok, true);
  ParsedPacket q = parse_quote(p.find<ParsedIcmpv6>()->body);
  ASSERT_TRUE(q.ok()) << q.to_string();
  EXPECT_EQ(q.find<ParsedTcp>()->dport, 443);
}

// ---- Builder: edits ------------------------------------------------------------------------

TEST(Edits, AppliedAfterChecksumsInOrder) {
  Bytes base = client_v4().bytes();
  Bytes b = client_v4().set_byte(0, 0x46).truncate(2).pad_to(60).truncate_to(50).bytes();
  ASSERT_EQ(b.size(), 50u);
  EXPECT_EQ(b[0], 0x46);
  EXPECT_EQ(be16(b, 10), be16(base, 10));  // checksum was computed before the edit
  EXPECT_EQ(Bytes(b.begin() + 1, b.begin() + 43), Bytes(base.begin() + 1, base.begin() + 43));
  EXPECT_EQ(b[43], 0);  // padding

  EXPECT_THROW(client_v4().set_byte(45, 0).bytes(), std::logic_error);
  EXPECT_THROW(client_v4().truncate(46).bytes(), std::logic_error);
  EXPECT_THROW(client_v4().truncate_to(46).bytes(), std::logic_error);
  EXPECT_EQ(client_v4().pad_to(10).bytes().size(), 45u);  // never shortens
}

TEST(Edits, L3BytesDropsEthernet) {
  Packet p = Packet().eth(kEth).ipv4({.src = "198.18.0.1", .dst = "198.18.0.2"}).udp({});
  EXPECT_EQ(p.l3_bytes().size(), 28u);
  EXPECT_EQ(p.l3_bytes()[0], 0x45);
  EXPECT_EQ(client_v4().l3_bytes(), client_v4().bytes());
}

// ---- Addresses and hexdumps ----------------------------------------------------------------

TEST(Addresses, ParseAndConvert) {
  EXPECT_EQ(mac("02:00:0a:0B:ff:01").to_string(), "02:00:0a:0b:ff:01");
  EXPECT_EQ(mac("02-00-00-00-00-01"), kClientMac);
  EXPECT_THROW(mac("02:00:00:00:00"), std::invalid_argument);
  EXPECT_THROW(mac("02:00:00:00:00:0g"), std::invalid_argument);
  EXPECT_THROW(Ipv4Addr("198.18.1"), std::invalid_argument);
  EXPECT_THROW(Ipv6Addr("198.18.1.1"), std::invalid_argument);

  Ipv4Addr a("198.18.1.2");
  EXPECT_EQ(a.octets, (std::array<uint8_t, 4>{198, 18, 1, 2}));
  EXPECT_EQ(Ipv4Addr::from_be(a.be()), a);
  EXPECT_EQ(a.to_abi().words[0], a.be());
  EXPECT_EQ(a.to_abi().words[3], 0u);
  Ipv6Addr b(std::string("2001:db8::1"));
  EXPECT_EQ(b.to_string(), "2001:db8::1");
  EXPECT_EQ(Ipv6Addr::from_abi(b.to_abi()), b);
  EXPECT_EQ(b.octets[15], 1);
}

TEST(Hexdump, DiffMarksDifferences) {
  Bytes a = client_v4().bytes();
  EXPECT_EQ(hexdump_diff(a, a), "");

  Bytes b = a;
  b[0x11] ^= 0xff;
  std::string d = hexdump_diff(a, b);
  EXPECT_NE(d.find("first difference at 0x0011"), std::string::npos) << d;
  EXPECT_NE(d.find("0010  "), std::string::npos) << d;
  EXPECT_NE(d.find("      ^^ "), std::string::npos) << d;  // second byte of line 0x10
  EXPECT_NE(d.find("^^"), std::string::npos);

  Bytes longer = a;
  longer.push_back(0);
  std::string s = hexdump_diff(a, longer);
  EXPECT_NE(s.find("expected 45 bytes, actual 46 bytes"), std::string::npos) << s;

  EXPECT_EQ(hexdump(Bytes{1, 2, 3}), "0000  01 02 03\n");
}

TEST(Hexdump, ElidesFarEqualLines) {
  Bytes a(160, 0);
  Bytes b = a;
  b[150] = 1;
  std::string d = hexdump_diff(a, b);
  EXPECT_NE(d.find("...\n"), std::string::npos) << d;
  EXPECT_EQ(d.find("0000  "), std::string::npos) << d;
  EXPECT_NE(d.find("0080  "), std::string::npos) << d;
  EXPECT_NE(d.find("0090  "), std::string::npos) << d;
}

// ---- Parser --------------------------------------------------------------------------------

TEST(Parse, RoundTripTcpV4) {
  Bytes b = Packet()
                .eth(kEth)
                .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .ttl = 9, .id = 77, .df = true})
                .tcp({.sport = 40000,
                      .dport = 80,
                      .flags = kSyn | kAck,
                      .seq = 100,
                      .ack = 200,
                      .window = 1024,
                      .options = {2, 4, 5, 0xb4}})
                .payload("hello")
                .bytes();
  ParsedPacket p = parse(b);
  ASSERT_TRUE(p.ok()) << p.to_string();
  ASSERT_EQ(p.layers.size(), 4u);
  const auto* eth = p.find<ParsedEth>();
  ASSERT_NE(eth, nullptr);
  EXPECT_EQ(eth->src, kClientMac);
  EXPECT_EQ(eth->dst, kLbMac);
  const auto* ip = p.find<ParsedIpv4>();
  ASSERT_NE(ip, nullptr);
  EXPECT_EQ(ip->offset, 14u);
  EXPECT_EQ(ip->src, Ipv4Addr("198.18.1.2"));
  EXPECT_EQ(ip->dst, Ipv4Addr("198.18.200.1"));
  EXPECT_EQ(ip->ttl, 9);
  EXPECT_EQ(ip->id, 77);
  EXPECT_TRUE(ip->df);
  EXPECT_TRUE(ip->checksum_ok);
  const auto* tcp = p.find<ParsedTcp>();
  ASSERT_NE(tcp, nullptr);
  EXPECT_EQ(tcp->sport, 40000);
  EXPECT_EQ(tcp->dport, 80);
  EXPECT_EQ(tcp->flags, kSyn | kAck);
  EXPECT_EQ(tcp->seq, 100u);
  EXPECT_EQ(tcp->ack, 200u);
  EXPECT_EQ(tcp->window, 1024);
  EXPECT_EQ(tcp->header_len, 24u);
  EXPECT_EQ(tcp->checksum_ok, true);
  const auto* pl = p.find<ParsedPayload>();
  ASSERT_NE(pl, nullptr);
  EXPECT_EQ(std::string(pl->data.begin(), pl->data.end()), "hello");
  EXPECT_EQ(p.to_string(),
            "eth 0x0800 | ipv4 198.18.1.2>198.18.200.1 proto 6 len 49 | "
            "tcp 40000>80 [SA] | payload(5)");
}

TEST(Parse, RoundTripUdpV6WithExtensionHeaders) {
  Bytes b = Packet()
                .eth(kEth)
                .ipv6({.src = "2001:db8::1",
                       .dst = "2001:db8::2",
                       .hop_limit = 3,
                       .traffic_class = 0x2e,
                       .flow_label = 0xabcde,
                       .ext = {Ipv6Ext::hop_by_hop(), Ipv6Ext::dest_opts({0x1e, 1, 0}),
                               Ipv6Ext::routing(4, 0), Ipv6Ext::fragment(0, false, 42)}})
                .udp({.sport = 5353, .dport = 53})
                .payload_pattern(33)
                .bytes();
  ParsedPacket p = parse(b);
  ASSERT_TRUE(p.ok()) << p.to_string();
  const auto* ip = p.find<ParsedIpv6>();
  ASSERT_NE(ip, nullptr);
  EXPECT_EQ(ip->ext_headers, (std::vector<uint8_t>{0, 60, 43, 44}));
  EXPECT_EQ(ip->next_header, kProtoUdp);
  EXPECT_EQ(ip->header_len, 40u + 32);
  EXPECT_EQ(ip->hop_limit, 3);
  EXPECT_EQ(ip->traffic_class, 0x2e);
  EXPECT_EQ(ip->flow_label, 0xabcdeu);
  EXPECT_TRUE(ip->fragment);
  EXPECT_EQ(ip->frag_id, 42u);
  EXPECT_EQ(ip->src, Ipv6Addr("2001:db8::1"));
  const auto* udp = p.find<ParsedUdp>();
  ASSERT_NE(udp, nullptr);
  EXPECT_EQ(udp->offset, 14u + 72);
  EXPECT_EQ(udp->sport, 5353);
  EXPECT_EQ(udp->len, 8 + 33);
  EXPECT_EQ(udp->checksum_ok, true);
  EXPECT_FALSE(udp->gue);
}

TEST(Parse, Tunnels) {
  struct Case {
    const char* name;
    Packet packet;
    uint16_t gue_port;
  };
  const Case cases[] = {
      {"ipip",
       Packet()
           .eth(kEth)
           .ipv4({.src = "198.18.1.1", .dst = "198.18.2.1"})
           .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1"})
           .tcp({.sport = 1, .dport = 80}),
       0},
      {"ip6ip6",
       Packet()
           .eth(kEth)
           .ipv6({.src = "fc00::1", .dst = "fc00::2"})
           .ipv6({.src = "2001:db8::1", .dst = "2001:db8::2"})
           .tcp({.sport = 1, .dport = 80}),
       0},
      {"4in6",
       Packet()
           .eth(kEth)
           .ipv6({.src = "fc00::1", .dst = "fc00::2"})
           .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1"})
           .tcp({.sport = 1, .dport = 80}),
       0},
      {"gue4",
       Packet()
           .eth(kEth)
           .ipv4({.src = "198.18.1.1", .dst = "198.18.2.1"})
           .udp({.sport = 9, .dport = 6080, .checksum = 0})
           .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1"})
           .tcp({.sport = 1, .dport = 80}),
       6080},
      {"gue6",
       Packet()
           .eth(kEth)
           .ipv6({.src = "fc00::1", .dst = "fc00::2"})
           .udp({.sport = 9, .dport = 6081})
           .ipv6({.src = "2001:db8::1", .dst = "2001:db8::2"})
           .tcp({.sport = 1, .dport = 80}),
       6081},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Bytes b = c.packet.bytes();
    ParsedPacket p = parse(b, {.gue_port = c.gue_port});
    ASSERT_TRUE(p.ok()) << p.to_string();
    size_t ips = 0;
    for (const auto& l : p.layers) {
      ips += std::holds_alternative<ParsedIpv4>(l) || std::holds_alternative<ParsedIpv6>(l);
    }
    EXPECT_EQ(ips, 2u) << p.to_string();
    ASSERT_NE(p.find<ParsedTcp>(), nullptr) << p.to_string();
    EXPECT_EQ(p.find<ParsedTcp>()->dport, 80);
    EXPECT_EQ(p.find<ParsedTcp>()->checksum_ok, true);
    if (c.gue_port != 0) {
      EXPECT_TRUE(p.find<ParsedUdp>()->gue);
      // Without the port the inner packet is just UDP payload.
      ParsedPacket plain = parse(b);
      EXPECT_EQ(plain.find<ParsedTcp>(), nullptr);
      EXPECT_NE(plain.find<ParsedPayload>(), nullptr);
    }
    EXPECT_EQ(error_text(check_encapsulated(b, c.gue_port)), "");
  }
}

TEST(Parse, EthernetPadding) {
  const Packet small = Packet().eth(kEth).ipv4({.src = "198.18.0.1", .dst = "198.18.0.2"}).udp({});
  ParsedPacket p = parse(Packet(small).pad_to(60).bytes());
  EXPECT_TRUE(p.ok()) << p.to_string();
  EXPECT_EQ(p.eth_padding, 60u - 42);
  EXPECT_EQ(p.find<ParsedPayload>(), nullptr);

  ParsedPacket trailing = parse(Packet(small).pad_to(61).bytes());
  ASSERT_EQ(trailing.problems.size(), 1u) << trailing.to_string();
  EXPECT_NE(trailing.problems[0].find("19 bytes after"), std::string::npos);
}

TEST(Parse, ReportsProblems) {
  auto v4 = [](Ipv4 ip, Tcp tcp = {.sport = 1, .dport = 2}) {
    ip.src = "198.18.0.1";
    ip.dst = "198.18.0.2";
    return Packet().eth(kEth).ipv4(ip).tcp(tcp).payload("abc");
  };
  struct Case {
    const char* name;
    Bytes frame;
    const char* expected;
  };
  const Case cases[] = {
      {"ip checksum", v4({.checksum = 0x1234}).bytes(), "bad header checksum 0x1234"},
      {"tot_len long", v4({.tot_len = 200}).bytes(), "tot_len 200, only 43 bytes present"},
      {"truncated", v4({}).truncate(1).bytes(), "tot_len 43, only 42 bytes present"},
      {"tot_len short", v4({.tot_len = 10}).bytes(), "smaller than the header"},
      {"version", v4({.version = 6}).bytes(), "version 6"},
      {"ihl", v4({.ihl = 4}).bytes(), "header length 16"},
      {"tcp checksum", v4({}, {.checksum = 0x4321}).bytes(), "tcp at 34: bad checksum 0x4321"},
      {"tcp doff", v4({}, {.data_offset = 15}).bytes(), "tcp at 34: header length 60"},
      {"short eth", Bytes(10, 0), "truncated Ethernet header"},
      {"short ip", v4({}).truncate_to(30).bytes(), "truncated header (16 of 20 bytes)"},
      {"udp len",
       Packet().eth(kEth).ipv4({.src = "198.18.0.1", .dst = "198.18.0.2"}).udp({.len = 9}).bytes(),
       "udp at 34: length 9, but 8 bytes"},
      {"ipv6 plen", Packet().eth(kEth).ipv6({.payload_len = 4}).udp({}).bytes(),
       "4 bytes after the datagram"},
      {"icmp checksum", Packet().eth(kEth).ipv4({}).icmp({.checksum = 1}).bytes(),
       "icmp at 34: bad checksum 0x0001"},
      {"gue version",
       Packet()
           .eth(kEth)
           .ipv4({})
           .udp({.dport = 6080, .checksum = 0})
           .payload("\x50 garbage")
           .bytes(),
       "gue at 42: inner IP version 5"},
      {"ipv6 ext truncated",
       Packet().eth(kEth).ipv6({.ext = {Ipv6Ext::hop_by_hop()}}).udp({}).truncate(12).bytes(),
       "truncated extension header"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ParsedPacket p = parse(c.frame, {.gue_port = 6080});
    ASSERT_FALSE(p.ok()) << p.to_string();
    bool found = false;
    for (const auto& pr : p.problems) found = found || pr.find(c.expected) != std::string::npos;
    EXPECT_TRUE(found) << p.to_string();
  }
}

TEST(Parse, ChecksumVerificationCanBeOff) {
  Bytes b = Packet()
                .eth(kEth)
                .ipv4({.src = "198.18.0.1", .dst = "198.18.0.2"})
                .tcp({.checksum = 0x1111})
                .bytes();
  EXPECT_FALSE(parse(b).ok());
  ParsedPacket p = parse(b, {.verify_l4_checksums = false});
  EXPECT_TRUE(p.ok()) << p.to_string();
  EXPECT_FALSE(p.find<ParsedTcp>()->checksum_ok.has_value());
}

TEST(Parse, FragmentsAreNotParsedBeyondIp) {
  Bytes later = Packet()
                    .eth(kEth)
                    .ipv4({.src = "198.18.0.1", .dst = "198.18.0.2", .frag_offset = 185, .proto = 6})
                    .payload_pattern(100)
                    .bytes();
  ParsedPacket p = parse(later);
  EXPECT_TRUE(p.ok()) << p.to_string();
  EXPECT_EQ(p.find<ParsedTcp>(), nullptr);
  EXPECT_EQ(p.find<ParsedPayload>()->data.size(), 100u);

  // A first fragment has ports, but its checksum covers bytes that are not here.
  Bytes first = Packet()
                    .eth(kEth)
                    .ipv6({.src = "::1", .dst = "::2", .ext = {Ipv6Ext::fragment(0, true, 1)}})
                    .udp({.sport = 7, .dport = 8, .len = 1000})
                    .payload_pattern(8)
                    .bytes();
  ParsedPacket f = parse(first);
  EXPECT_TRUE(f.ok()) << f.to_string();  // UDP length 1000 > bytes here is normal in a fragment
  ASSERT_NE(f.find<ParsedUdp>(), nullptr) << f.to_string();
  EXPECT_EQ(f.find<ParsedUdp>()->dport, 8);
  EXPECT_FALSE(f.find<ParsedUdp>()->checksum_ok.has_value());
}

// ---- check_encapsulated --------------------------------------------------------------------

Packet ipip() {
  return Packet()
      .eth(kEth)
      .ipv4({.src = "198.18.1.1", .dst = "198.18.2.1"})
      .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1"})
      .tcp({.sport = 40000, .dport = 80});
}

Packet gue4(Udp udp = {.sport = 9, .dport = 6080, .checksum = 0}, Ipv4 inner = {}) {
  inner.src = "198.18.1.2";
  inner.dst = "198.18.200.1";
  return Packet()
      .eth(kEth)
      .ipv4({.src = "198.18.1.1", .dst = "198.18.2.1"})
      .udp(udp)
      .ipv4(inner)
      .tcp({.sport = 40000, .dport = 80});
}

TEST(CheckEncapsulated, AcceptsWellFormed) {
  EXPECT_EQ(error_text(check_encapsulated(ipip().bytes(), 0)), "");
  EXPECT_EQ(error_text(check_encapsulated(gue4().bytes(), 6080)), "");
  // A computed outer UDP checksum is fine too.
  EXPECT_EQ(error_text(check_encapsulated(gue4({.sport = 9, .dport = 6080}).bytes(), 6080)), "");
  Bytes six_in_four = Packet()
                          .eth(kEth)
                          .ipv4({.src = "198.18.1.1", .dst = "198.18.2.1"})
                          .ipv6({.src = "2001:db8::1", .dst = "2001:db8::2"})
                          .bytes();
  EXPECT_EQ(error_text(check_encapsulated(six_in_four, 0)), "");
  // A minimum-size frame may carry Ethernet padding after the outer datagram.
  Bytes padded = Packet()
                     .eth(kEth)
                     .ipv4({.src = "198.18.1.1", .dst = "198.18.2.1"})
                     .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .proto = 253})
                     .pad_to(60)
                     .bytes();
  EXPECT_EQ(error_text(check_encapsulated(padded, 0)), "");
  // The inner packet may be shorter than the outer payload (client padding carried along).
  Bytes inner_padded = Packet()
                           .eth(kEth)
                           .ipv4({.src = "198.18.1.1", .dst = "198.18.2.1", .proto = kProtoIpip})
                           .payload(client_v4().pad_to(60).bytes())
                           .bytes();
  EXPECT_EQ(error_text(check_encapsulated(inner_padded, 0)), "");
}

TEST(CheckEncapsulated, InnerChecksumsOnlyWhenAsked) {
  Bytes b = Packet()
                .eth(kEth)
                .ipv4({.src = "198.18.1.1", .dst = "198.18.2.1"})
                .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1", .checksum = 1})
                .tcp({.sport = 40000, .dport = 80, .checksum = 2})
                .bytes();
  EXPECT_EQ(error_text(check_encapsulated(b, 0)), "");
  auto err = check_encapsulated(b, 0, {.verify_inner_checksums = true});
  ASSERT_TRUE(err.has_value());
  EXPECT_NE(err->find("inner packet: ipv4 at 0: bad header checksum"), std::string::npos) << *err;
  EXPECT_EQ(error_text(check_encapsulated(ipip().bytes(), 0, {.verify_inner_checksums = true})),
            "");
}

TEST(CheckEncapsulated, RejectsBroken) {
  struct Case {
    const char* name;
    Bytes frame;
    const char* expected;
  };
  const Case cases[] = {
      {"short", Bytes(13, 0), "shorter than an Ethernet header"},
      {"arp", Packet().eth({.ethertype = 0x0806}).payload_pattern(28).bytes(), "ethertype 0x0806"},
      {"icmp", Packet().eth(kEth).ipv4({}).icmp({}).bytes(), "outer protocol 1 "},
      {"not a tunnel",
       Packet().eth(kEth).ipv4({.src = "1.1.1.1", .dst = "2.2.2.2"}).tcp({}).bytes(),
       "outer protocol 6"},
      {"outer checksum", ipip().set_byte(14 + 10, 0).set_byte(14 + 11, 0).bytes(),
       "outer IPv4 header checksum"},
      {"truncated", ipip().truncate(1).bytes(), "length 60 exceeds the 59 bytes"},
      {"trailing", ipip().pad_to(100).bytes(), "26 bytes after the outer IPv4"},
      {"fragment",
       Packet()
           .eth(kEth)
           .ipv4({.src = "198.18.1.1", .dst = "198.18.2.1", .mf = true})
           .ipv4({.src = "1.1.1.1", .dst = "2.2.2.2", .proto = 253})
           .bytes(),
       "fragment"},
      {"outer version", ipip().set_byte(14, 0x55).bytes(), "version 5"},
      {"gue port", gue4().bytes(), "not the GUE port 6081"},
      {"gue len", gue4({.dport = 6081, .len = 20, .checksum = 0}).bytes(), "outer UDP length 20"},
      {"gue checksum", gue4({.dport = 6081, .checksum = 7}).bytes(), "outer UDP checksum 0x0007"},
      {"inner version", gue4({.dport = 6081, .checksum = 0}, {.version = 7}).bytes(),
       "GUE inner IP version 7"},
      {"inner ihl", gue4({.dport = 6081, .checksum = 0}, {.ihl = 3}).bytes(),
       "inner IPv4 header length 12"},
      {"inner tot_len", gue4({.dport = 6081, .checksum = 0}, {.tot_len = 41}).bytes(),
       "inner IPv4 tot_len 41 exceeds the 40-byte outer payload"},
      {"inner family",
       Packet()
           .eth(kEth)
           .ipv6({.src = "fc00::1", .dst = "fc00::2", .next_header = kProtoIpip})
           .ipv6({.src = "2001:db8::1", .dst = "2001:db8::2"})
           .bytes(),
       "inner IP version 6 where IPv4 is announced"},
      {"inner v6 truncated",
       Packet()
           .eth(kEth)
           .ipv6({.src = "fc00::1", .dst = "fc00::2"})
           .ipv6({.src = "2001:db8::1", .dst = "2001:db8::2", .payload_len = 1})
           .bytes(),
       "inner IPv6 length 41 exceeds the 40-byte outer payload"},
      {"outer v6 length",
       Packet()
           .eth(kEth)
           .ipv6({.src = "fc00::1", .dst = "fc00::2", .payload_len = 100})
           .ipv6({.src = "2001:db8::1", .dst = "2001:db8::2"})
           .bytes(),
       "outer IPv6 length 140 exceeds"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto err = check_encapsulated(c.frame, 6081);
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(err->find(c.expected), std::string::npos) << *err;
  }
  EXPECT_TRUE(check_encapsulated(gue4().bytes(), 0).has_value());  // GUE not expected
}

}  // namespace
}  // namespace xlb::test
