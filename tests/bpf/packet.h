// SPDX-License-Identifier: Apache-2.0
// Test packets for the XDP programs: a fluent, layered builder that makes both the input of
// BPF_PROG_TEST_RUN and the golden output it is compared with, and a parser/checker that says
// what a frame holds and what is wrong with it.
//
// Builder: every layer is a designated-initializer struct; whatever a layer can derive from the
// layers around it (ethertype, IP protocol, lengths, checksums) is computed at bytes() unless the
// struct overrides it, so broken packets are one field away. Stacking gives the tunnels the
// balancer emits: IPv4 after IPv4 = IPIP, IPv6 after IPv6 = IP6IP6, IPv4 after IPv6 = 4in6, IP
// after UDP = GUE variant 1 (no GUE header). The same builder makes the input and the golden
// packet, so a test compares bytes exactly:
//
//   auto in = Packet()
//                 .eth({.src = mac("02:00:00:00:00:01"), .dst = mac("02:00:00:00:00:02")})
//                 .ipv4({.src = "198.18.1.2", .dst = "198.18.200.1"})
//                 .tcp({.sport = 40000, .dport = 80, .flags = kSyn})
//                 .payload("hello")
//                 .bytes();
//   ASSERT_TRUE(out == golden) << hexdump_diff(golden, out);
//
// Conventions: numbers in the structs (ports, ids, checksums, ICMP rest) are host order and are
// written big-endian; addresses are parsed from text. Mistakes in a test's own packet
// description (bad address text, a protocol that cannot be derived, an edit past the end) throw
// std::invalid_argument / std::logic_error, which GoogleTest reports as a failure with the text.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "xlb/abi.h"

namespace xlb::test {

using Bytes = std::vector<uint8_t>;

// ---- Protocol numbers ----------------------------------------------------------------------

inline constexpr uint16_t kEthPIpv4 = 0x0800;
inline constexpr uint16_t kEthPIpv6 = 0x86dd;

inline constexpr uint8_t kProtoHopByHop = 0;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoIpip = 4;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIpv6 = 41;
inline constexpr uint8_t kProtoRouting = 43;
inline constexpr uint8_t kProtoFragment = 44;
inline constexpr uint8_t kProtoIcmpv6 = 58;
inline constexpr uint8_t kProtoNoNext = 59;
inline constexpr uint8_t kProtoDestOpts = 60;

// TCP flags (combine with |).
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
inline constexpr uint8_t kUrg = 0x20;
inline constexpr uint8_t kEce = 0x40;
inline constexpr uint8_t kCwr = 0x80;

inline constexpr uint8_t kIcmpEchoReply = 0;
inline constexpr uint8_t kIcmpDestUnreach = 3;
inline constexpr uint8_t kIcmpCodeFragNeeded = 4;  // with kIcmpDestUnreach
inline constexpr uint8_t kIcmpEchoRequest = 8;
inline constexpr uint8_t kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmpv6DestUnreach = 1;
inline constexpr uint8_t kIcmpv6PacketTooBig = 2;
inline constexpr uint8_t kIcmpv6TimeExceeded = 3;
inline constexpr uint8_t kIcmpv6EchoRequest = 128;
inline constexpr uint8_t kIcmpv6EchoReply = 129;

// Smallest Ethernet frame without FCS; shorter frames are padded on the wire.
inline constexpr size_t kEthMinFrame = 60;
inline constexpr size_t kEthHeaderLen = 14;

// ---- Addresses -----------------------------------------------------------------------------

struct Mac {
  std::array<uint8_t, 6> octets{};
  bool operator==(const Mac&) const = default;
  std::string to_string() const;
};

// "02:00:00:00:00:01" (also '-' separated). Throws std::invalid_argument on bad text.
Mac mac(std::string_view text);

// The converting constructors are implicit on purpose: they let option structs take
// `.src = "198.18.1.2"`. Bad text throws std::invalid_argument.
struct Ipv4Addr {
  std::array<uint8_t, 4> octets{};

  Ipv4Addr() = default;
  Ipv4Addr(const char* text);         // NOLINT(google-explicit-constructor)
  Ipv4Addr(const std::string& text);  // NOLINT(google-explicit-constructor)
  // From a network-order word, as the ABI stores addresses.
  static Ipv4Addr from_be(uint32_t be);
  uint32_t be() const;
  // The ABI form: word 0, the other words zero.
  xlb_addr to_abi() const;
  std::string to_string() const;
  bool operator==(const Ipv4Addr&) const = default;
};

struct Ipv6Addr {
  std::array<uint8_t, 16> octets{};

  Ipv6Addr() = default;
  Ipv6Addr(const char* text);         // NOLINT(google-explicit-constructor)
  Ipv6Addr(const std::string& text);  // NOLINT(google-explicit-constructor)
  static Ipv6Addr from_abi(const xlb_addr& addr);
  xlb_addr to_abi() const;
  std::string to_string() const;
  bool operator==(const Ipv6Addr&) const = default;
};

// GoogleTest prints these in assertion failures.
std::ostream& operator<<(std::ostream& os, const Mac& m);
std::ostream& operator<<(std::ostream& os, const Ipv4Addr& a);
std::ostream& operator<<(std::ostream& os, const Ipv6Addr& a);

// ---- Checksums -----------------------------------------------------------------------------
// Values are host-order numbers of the big-endian 16-bit field, as the option structs take them.

// Adds `data` as big-endian 16-bit words to a one's-complement running sum (an odd final byte
// is padded with zero, so only the last chunk of a chained sum may have odd length). The result
// is folded to 16 bits but not complemented, so it can be chained.
uint32_t checksum_add(std::span<const uint8_t> data, uint32_t sum = 0);
// Folds carries into 16 bits (no complement). A valid packet re-sums to 0xffff.
uint16_t checksum_fold(uint32_t sum);
// RFC 1071 checksum: ~fold(checksum_add(data, initial)).
uint16_t internet_checksum(std::span<const uint8_t> data, uint32_t initial = 0);
// Sums of the pseudo-headers (RFC 793 / RFC 8200 section 8.1), to pass as `initial`.
uint32_t pseudo_header_v4(const Ipv4Addr& src, const Ipv4Addr& dst, uint8_t proto, uint16_t l4_len);
uint32_t pseudo_header_v6(const Ipv6Addr& src, const Ipv6Addr& dst, uint8_t next_header,
                          uint32_t l4_len);

// ---- Layers --------------------------------------------------------------------------------
// C++20 designated initializers must follow declaration order: fields are ordered from the
// commonly set to the overrides that make broken packets. std::optional fields are derived when
// empty.

struct Eth {
  Mac src;
  Mac dst;
  std::optional<uint16_t> ethertype;  // derived from the next layer (IPv4/IPv6)
};

struct Ipv4 {
  Ipv4Addr src;
  Ipv4Addr dst;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0;
  bool df = false;
  bool mf = false;
  uint16_t frag_offset = 0;         // in 8-byte units, as in the header
  Bytes options;                    // zero-padded to a multiple of 4
  std::optional<uint8_t> proto;     // derived: 6/17/1/58/4/41
  std::optional<uint16_t> tot_len;  // derived: this header and everything after it
  std::optional<uint8_t> ihl;       // derived from the options, in 32-bit words
  uint8_t version = 4;
  std::optional<uint16_t> checksum;  // derived over the header as written
};

// One IPv6 extension header. `body` is everything after the next-header byte and the length
// byte; the factories build valid bodies (padded to the 8-byte unit). The builder fills both
// leading bytes. Types built: hop-by-hop, routing, fragment, destination options. A routing
// header does not change the L4 pseudo-header (the IPv6 dst is used): set the checksum by hand
// if a test needs the final-destination rule.
struct Ipv6Ext {
  uint8_t type = kProtoDestOpts;
  Bytes body;

  // Options are padded with Pad1/PadN so the header is a multiple of 8 bytes.
  static Ipv6Ext hop_by_hop(Bytes options = {});
  static Ipv6Ext dest_opts(Bytes options = {});
  // `data` is the type-specific data (4 reserved zero bytes when empty), zero-padded.
  static Ipv6Ext routing(uint8_t routing_type, uint8_t segments_left, Bytes data = {});
  // offset in 8-byte units; `more` is the M flag.
  static Ipv6Ext fragment(uint16_t offset, bool more, uint32_t id);
};

struct Ipv6 {
  Ipv6Addr src;
  Ipv6Addr dst;
  uint8_t hop_limit = 64;
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;   // 20 bits
  std::vector<Ipv6Ext> ext;  // in order, between this header and the next layer
  // The protocol after the last header of this layer (after `ext`); derived like Ipv4::proto.
  std::optional<uint8_t> next_header;
  std::optional<uint16_t> payload_len;  // derived: extension headers and everything after
  uint8_t version = 6;
};

struct Tcp {
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t flags = 0;  // kSyn | kAck ...
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t window = 65535;
  uint16_t urg = 0;
  Bytes options;                       // zero-padded to a multiple of 4
  std::optional<uint8_t> data_offset;  // derived from the options, in 32-bit words
  // Derived over the pseudo-header of the nearest IP layer before it and the real segment
  // length, so it stays valid when an IP field is deliberately broken.
  std::optional<uint16_t> checksum;
};

struct Udp {
  uint16_t sport = 0;
  uint16_t dport = 0;
  std::optional<uint16_t> len;  // derived: this header and everything after it
  // Empty: computed (0 becomes 0xffff, RFC 768). 0: no checksum, as GUE from the balancer.
  // Anything else: written as given.
  std::optional<uint16_t> checksum;
};

// ICMP and ICMPv6: `rest` is the 4 bytes after the checksum, written big-endian, so
// frag-needed is {.type = 3, .code = 4, .rest = mtu} (RFC 1191 puts the MTU in the low 16
// bits) and packet-too-big {.type = 2, .rest = mtu}; echo is rest = id << 16 | seq. The quoted
// packet is a payload after this layer, e.g. .payload(original.l3_bytes()).
struct Icmp {
  uint8_t type = kIcmpEchoRequest;
  uint8_t code = 0;
  uint32_t rest = 0;
  std::optional<uint16_t> checksum;  // derived over the message
};

struct Icmpv6 {
  uint8_t type = kIcmpv6EchoRequest;
  uint8_t code = 0;
  uint32_t rest = 0;
  std::optional<uint16_t> checksum;  // derived over the pseudo-header and the message
};

// ---- Builder -------------------------------------------------------------------------------

class Packet {
 public:
  Packet& eth(const Eth& h);
  Packet& ipv4(const Ipv4& h);
  Packet& ipv6(const Ipv6& h);
  Packet& tcp(const Tcp& h);
  Packet& udp(const Udp& h);
  Packet& icmp(const Icmp& h);
  Packet& icmpv6(const Icmpv6& h);
  // Raw bytes; may stand anywhere in the stack (an IP layer before it then needs .proto).
  Packet& payload(std::string_view text);
  Packet& payload(std::span<const uint8_t> data);
  Packet& payload(std::initializer_list<uint8_t> data);
  // n bytes 0x00, 0x01, ... 0xff, 0x00, ... (easy to locate in a hexdump).
  Packet& payload_pattern(size_t n);

  // Edits of the finished frame, applied in call order after lengths and checksums.
  Packet& pad_to(size_t size);       // appends zeros up to `size` (Ethernet padding)
  Packet& truncate(size_t n);        // drops the last n bytes
  Packet& truncate_to(size_t size);  // keeps the first `size` bytes
  Packet& set_byte(size_t offset, uint8_t value);

  // The frame. Throws std::logic_error if a derived field cannot be derived or an edit does
  // not fit the frame.
  Bytes bytes() const;
  // The frame without its leading Ethernet header: what an ICMP error quotes, what a tunnel
  // carries.
  Bytes l3_bytes() const;

 private:
  struct Raw {
    Bytes data;
  };
  using Layer = std::variant<Eth, Ipv4, Ipv6, Tcp, Udp, Icmp, Icmpv6, Raw>;
  struct Edit {
    enum class Kind { kPadTo, kTruncate, kTruncateTo, kSetByte } kind;
    size_t n = 0;
    uint8_t value = 0;
  };

  Bytes build() const;

  std::vector<Layer> layers_;
  std::vector<Edit> edits_;
};

// ---- Hexdumps ------------------------------------------------------------------------------

// 16 bytes per line with offsets.
std::string hexdump(std::span<const uint8_t> data);
// Empty when equal. Otherwise the sizes and, side by side and offset-aligned, the expected and
// actual lines that differ (with one line of context), each differing byte marked with ^^ on
// the line below.
std::string hexdump_diff(std::span<const uint8_t> expected, std::span<const uint8_t> actual);

// ---- Parser --------------------------------------------------------------------------------

struct ParsedEth {
  size_t offset = 0;
  Mac src;
  Mac dst;
  uint16_t ethertype = 0;
};

struct ParsedIpv4 {
  size_t offset = 0;
  size_t header_len = 0;  // ihl * 4
  Ipv4Addr src;
  Ipv4Addr dst;
  uint8_t version = 0;
  uint8_t tos = 0;
  uint8_t ttl = 0;
  uint8_t proto = 0;
  uint16_t tot_len = 0;
  uint16_t id = 0;
  bool df = false;
  bool mf = false;
  uint16_t frag_offset = 0;  // 8-byte units
  uint16_t checksum = 0;
  bool checksum_ok = false;
};

struct ParsedIpv6 {
  size_t offset = 0;
  size_t header_len = 0;  // 40 plus the extension headers
  Ipv6Addr src;
  Ipv6Addr dst;
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;
  uint8_t hop_limit = 0;
  uint16_t payload_len = 0;
  std::vector<uint8_t> ext_headers;  // types, in order
  uint8_t next_header = 0;           // the protocol after the extension headers
  bool fragment = false;             // a fragment header was present
  uint16_t frag_offset = 0;          // 8-byte units
  bool mf = false;
  uint32_t frag_id = 0;
};

struct ParsedTcp {
  size_t offset = 0;
  size_t header_len = 0;  // data offset * 4
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  uint16_t checksum = 0;
  uint16_t urg = 0;
  // Empty when not verified: a fragment, an incomplete segment, an ICMP quote, or disabled.
  std::optional<bool> checksum_ok;
};

struct ParsedUdp {
  size_t offset = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint16_t len = 0;
  uint16_t checksum = 0;
  std::optional<bool> checksum_ok;  // also empty for checksum 0 (none)
  bool gue = false;                 // dport matched the GUE port: an IP header follows
};

struct ParsedIcmp {
  size_t offset = 0;
  uint8_t type = 0;
  uint8_t code = 0;
  uint16_t checksum = 0;
  uint32_t rest = 0;
  std::optional<bool> checksum_ok;
  Bytes body;  // after the 8-byte header: for errors, the quote (see parse_quote)
};

struct ParsedIcmpv6 : ParsedIcmp {};

// Bytes no header claimed: an L4 payload, or what follows an unknown protocol or a fragment.
struct ParsedPayload {
  size_t offset = 0;
  Bytes data;
};

using ParsedLayer = std::variant<ParsedEth, ParsedIpv4, ParsedIpv6, ParsedTcp, ParsedUdp,
                                 ParsedIcmp, ParsedIcmpv6, ParsedPayload>;

struct ParsedPacket {
  std::vector<ParsedLayer> layers;  // outermost first
  std::vector<std::string> problems;
  size_t eth_padding = 0;  // bytes after the outermost IP datagram in a minimum-size frame

  bool ok() const { return problems.empty(); }

  // The nth layer of type T (0 = outermost), or nullptr: find<ParsedIpv4>(1) is the inner
  // header of IPIP.
  template <typename T>
  const T* find(size_t nth = 0) const {
    for (const auto& l : layers) {
      if (const T* p = std::get_if<T>(&l)) {
        if (nth == 0) return p;
        --nth;
      }
    }
    return nullptr;
  }

  // One line such as "eth ipv4 198.18.1.2>198.18.200.1 ipv4 ... tcp 40000>80 [S] payload(5)",
  // followed by the problems, for assertion messages.
  std::string to_string() const;
};

struct ParseOptions {
  // Host order. UDP to this destination port carries an inner IP header (GUE variant 1);
  // 0: UDP is never decoded as GUE.
  uint16_t gue_port = 0;
  // Verify TCP/UDP/ICMP/ICMPv6 checksums of complete, unfragmented segments.
  bool verify_l4_checksums = true;
};

// Walks Ethernet, IPv4/IPv6 (extension headers), nested IP (IPIP, IP6IP6, 4in6, GUE), then
// TCP/UDP/ICMP/ICMPv6. Never throws: whatever is wrong goes into `problems` (truncation, bad
// version or header length, bad IPv4 header checksum, IP/UDP lengths that disagree with the
// bytes present, bad L4 checksums), and parsing stops where the bytes stop making sense.
ParsedPacket parse(std::span<const uint8_t> frame, const ParseOptions& opts = {});

// Parses what an ICMP error quotes: an IP header and at least 8 bytes of what followed it.
// Short lengths are expected there and L4 checksums are not verified; a truncated IP header or
// fewer than 8 transport bytes are problems.
ParsedPacket parse_quote(std::span<const uint8_t> quote);

// ---- Encapsulation check -------------------------------------------------------------------

struct EncapCheckOptions {
  // Also require a valid inner IPv4 header checksum and inner L4 checksum. Off by default: the
  // balancer forwards client bytes as they came, garbage included.
  bool verify_inner_checksums = false;
};

// Empty if `frame` is a well-formed encapsulated packet, else what is wrong. Well-formed:
// Ethernet; outer IPv4 (valid header checksum, not a fragment) or IPv6 (no extension headers)
// whose length matches the frame (longer only by padding of a minimum-size frame); outer
// protocol 4 (inner IPv4) or 41 (inner IPv6), or UDP to `gue_port` (host order; 0 = no GUE)
// with a UDP length equal to the outer payload and a valid checksum unless zero, followed by an
// IP header; an inner IP header whose version and header length are valid and whose length
// fits in the outer payload.
std::optional<std::string> check_encapsulated(std::span<const uint8_t> frame, uint16_t gue_port,
                                              const EncapCheckOptions& opts = {});

}  // namespace xlb::test
