// SPDX-License-Identifier: Apache-2.0
#include "packet.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace xlb::test {
namespace {

__attribute__((format(printf, 1, 2))) std::string strf(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  char buf[512];
  std::vsnprintf(buf, sizeof(buf), format, ap);
  va_end(ap);
  return buf;
}

void put8(Bytes& b, uint8_t v) { b.push_back(v); }

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}

void put(Bytes& b, std::span<const uint8_t> data) { b.insert(b.end(), data.begin(), data.end()); }

void write16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}

uint16_t rd16(std::span<const uint8_t> d, size_t off) {
  return static_cast<uint16_t>(d[off] << 8 | d[off + 1]);
}

uint32_t rd32(std::span<const uint8_t> d, size_t off) {
  return static_cast<uint32_t>(rd16(d, off)) << 16 | rd16(d, off + 2);
}

template <size_t N>
std::array<uint8_t, N> rd_array(std::span<const uint8_t> d, size_t off) {
  std::array<uint8_t, N> a{};
  std::copy_n(d.begin() + static_cast<std::ptrdiff_t>(off), N, a.begin());
  return a;
}

// Lengths derived from the bytes must fit their 16-bit fields; a test that builds a bigger
// packet has a bug worth a loud message rather than a silently wrapped length.
uint16_t fit16(size_t n, const char* what) {
  if (n > 0xffff) {
    throw std::logic_error(strf("%s: derived length %zu does not fit 16 bits", what, n));
  }
  return static_cast<uint16_t>(n);
}

// inet_pton needs a NUL-terminated string, hence std::string.
template <size_t N>
std::array<uint8_t, N> parse_addr(const char* text, int af) {
  if (text == nullptr) throw std::invalid_argument("null address text");
  std::array<uint8_t, N> out{};
  if (inet_pton(af, text, out.data()) != 1) {
    throw std::invalid_argument(strf("'%s' is not an IPv%d address", text, af == AF_INET ? 4 : 6));
  }
  return out;
}

std::string addr_to_string(const uint8_t* bytes, int af) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(af, bytes, buf, sizeof(buf));
  return buf;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The pseudo-header of the IP layer around an L4 header.
struct Pseudo {
  bool v6 = false;
  Ipv4Addr src4, dst4;
  Ipv6Addr src6, dst6;

  uint32_t sum(uint8_t proto, size_t len) const {
    return v6 ? pseudo_header_v6(src6, dst6, proto, static_cast<uint32_t>(len))
              : pseudo_header_v4(src4, dst4, proto, static_cast<uint16_t>(len));
  }
};

// The checksum a segment should carry: the field zeroed, then summed.
uint16_t expected_checksum(std::span<const uint8_t> seg, size_t field, uint32_t initial) {
  Bytes copy(seg.begin(), seg.end());
  copy[field] = copy[field + 1] = 0;
  return internet_checksum(copy, initial);
}

}  // namespace

// ---- Addresses -----------------------------------------------------------------------------

std::string Mac::to_string() const {
  return strf("%02x:%02x:%02x:%02x:%02x:%02x", octets[0], octets[1], octets[2], octets[3],
              octets[4], octets[5]);
}

Mac mac(std::string_view text) {
  Mac m;
  bool ok = text.size() == 17;
  for (size_t i = 0; ok && i < 6; ++i) {
    int hi = hex_digit(text[i * 3]);
    int lo = hex_digit(text[i * 3 + 1]);
    bool sep_ok = i == 5 || text[i * 3 + 2] == ':' || text[i * 3 + 2] == '-';
    ok = hi >= 0 && lo >= 0 && sep_ok;
    m.octets[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  if (!ok) throw std::invalid_argument("'" + std::string(text) + "' is not a MAC address");
  return m;
}

Ipv4Addr::Ipv4Addr(const char* text) : octets(parse_addr<4>(text, AF_INET)) {}
Ipv4Addr::Ipv4Addr(const std::string& text) : Ipv4Addr(text.c_str()) {}

Ipv4Addr Ipv4Addr::from_be(uint32_t be) {
  Ipv4Addr a;
  std::memcpy(a.octets.data(), &be, 4);
  return a;
}

uint32_t Ipv4Addr::be() const {
  uint32_t be = 0;
  std::memcpy(&be, octets.data(), 4);
  return be;
}

xlb_addr Ipv4Addr::to_abi() const {
  xlb_addr a{};
  a.words[0] = be();
  return a;
}

std::string Ipv4Addr::to_string() const { return addr_to_string(octets.data(), AF_INET); }

Ipv6Addr::Ipv6Addr(const char* text) : octets(parse_addr<16>(text, AF_INET6)) {}
Ipv6Addr::Ipv6Addr(const std::string& text) : Ipv6Addr(text.c_str()) {}

Ipv6Addr Ipv6Addr::from_abi(const xlb_addr& addr) {
  Ipv6Addr a;
  std::memcpy(a.octets.data(), addr.words, 16);
  return a;
}

xlb_addr Ipv6Addr::to_abi() const {
  xlb_addr a{};
  std::memcpy(a.words, octets.data(), 16);
  return a;
}

std::string Ipv6Addr::to_string() const { return addr_to_string(octets.data(), AF_INET6); }

std::ostream& operator<<(std::ostream& os, const Mac& m) { return os << m.to_string(); }
std::ostream& operator<<(std::ostream& os, const Ipv4Addr& a) { return os << a.to_string(); }
std::ostream& operator<<(std::ostream& os, const Ipv6Addr& a) { return os << a.to_string(); }

// ---- Checksums -----------------------------------------------------------------------------

uint32_t checksum_add(std::span<const uint8_t> data, uint32_t sum) {
  // 64 bits cannot overflow for any packet; folding at the end keeps the result chainable.
  uint64_t s = sum;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) s += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (i < data.size()) s += static_cast<uint32_t>(data[i] << 8);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint32_t>(s);
}

uint16_t checksum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

uint16_t internet_checksum(std::span<const uint8_t> data, uint32_t initial) {
  return static_cast<uint16_t>(~checksum_fold(checksum_add(data, initial)));
}

uint32_t pseudo_header_v4(const Ipv4Addr& src, const Ipv4Addr& dst, uint8_t proto,
                          uint16_t l4_len) {
  Bytes ph;
  put(ph, src.octets);
  put(ph, dst.octets);
  put8(ph, 0);
  put8(ph, proto);
  put16(ph, l4_len);
  return checksum_add(ph);
}

uint32_t pseudo_header_v6(const Ipv6Addr& src, const Ipv6Addr& dst, uint8_t next_header,
                          uint32_t l4_len) {
  Bytes ph;
  put(ph, src.octets);
  put(ph, dst.octets);
  put32(ph, l4_len);
  put32(ph, next_header);  // three zero bytes, then the next header
  return checksum_add(ph);
}

// ---- IPv6 extension headers ----------------------------------------------------------------

namespace {

// Pads TLV options so that 2 header bytes + options fill whole 8-byte units (RFC 8200 4.2).
Bytes pad_tlv_options(Bytes options) {
  size_t pad = (8 - (2 + options.size()) % 8) % 8;
  if (pad == 1) {
    options.push_back(0);  // Pad1
  } else if (pad >= 2) {
    options.push_back(1);  // PadN
    options.push_back(static_cast<uint8_t>(pad - 2));
    options.insert(options.end(), pad - 2, 0);
  }
  return options;
}

}  // namespace

Ipv6Ext Ipv6Ext::hop_by_hop(Bytes options) {
  return {.type = kProtoHopByHop, .body = pad_tlv_options(std::move(options))};
}

Ipv6Ext Ipv6Ext::dest_opts(Bytes options) {
  return {.type = kProtoDestOpts, .body = pad_tlv_options(std::move(options))};
}

Ipv6Ext Ipv6Ext::routing(uint8_t routing_type, uint8_t segments_left, Bytes data) {
  Bytes body{routing_type, segments_left};
  if (data.empty()) data.assign(4, 0);
  body.insert(body.end(), data.begin(), data.end());
  body.resize(body.size() + (8 - (2 + body.size()) % 8) % 8, 0);
  return {.type = kProtoRouting, .body = std::move(body)};
}

Ipv6Ext Ipv6Ext::fragment(uint16_t offset, bool more, uint32_t id) {
  Bytes body;
  put16(body, static_cast<uint16_t>((offset & 0x1fff) << 3 | (more ? 1 : 0)));
  put32(body, id);
  return {.type = kProtoFragment, .body = std::move(body)};
}

// ---- Builder -------------------------------------------------------------------------------

Packet& Packet::eth(const Eth& h) {
  layers_.emplace_back(h);
  return *this;
}
Packet& Packet::ipv4(const Ipv4& h) {
  layers_.emplace_back(h);
  return *this;
}
Packet& Packet::ipv6(const Ipv6& h) {
  layers_.emplace_back(h);
  return *this;
}
Packet& Packet::tcp(const Tcp& h) {
  layers_.emplace_back(h);
  return *this;
}
Packet& Packet::udp(const Udp& h) {
  layers_.emplace_back(h);
  return *this;
}
Packet& Packet::icmp(const Icmp& h) {
  layers_.emplace_back(h);
  return *this;
}
Packet& Packet::icmpv6(const Icmpv6& h) {
  layers_.emplace_back(h);
  return *this;
}

Packet& Packet::payload(std::string_view text) {
  layers_.emplace_back(Raw{Bytes(text.begin(), text.end())});
  return *this;
}

Packet& Packet::payload(std::span<const uint8_t> data) {
  layers_.emplace_back(Raw{Bytes(data.begin(), data.end())});
  return *this;
}

Packet& Packet::payload(std::initializer_list<uint8_t> data) {
  return payload(std::span<const uint8_t>(data.begin(), data.size()));
}

Packet& Packet::payload_pattern(size_t n) {
  Bytes data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(i);
  layers_.emplace_back(Raw{std::move(data)});
  return *this;
}

Packet& Packet::pad_to(size_t size) {
  edits_.push_back({.kind = Edit::Kind::kPadTo, .n = size});
  return *this;
}
Packet& Packet::truncate(size_t n) {
  edits_.push_back({.kind = Edit::Kind::kTruncate, .n = n});
  return *this;
}
Packet& Packet::truncate_to(size_t size) {
  edits_.push_back({.kind = Edit::Kind::kTruncateTo, .n = size});
  return *this;
}
Packet& Packet::set_byte(size_t offset, uint8_t value) {
  edits_.push_back({.kind = Edit::Kind::kSetByte, .n = offset, .value = value});
  return *this;
}

Bytes Packet::bytes() const {
  Bytes out = build();
  for (const Edit& e : edits_) {
    switch (e.kind) {
      case Edit::Kind::kPadTo:
        if (out.size() < e.n) out.resize(e.n, 0);
        break;
      case Edit::Kind::kTruncate:
        if (e.n > out.size()) {
          throw std::logic_error(strf("truncate(%zu) of a %zu-byte frame", e.n, out.size()));
        }
        out.resize(out.size() - e.n);
        break;
      case Edit::Kind::kTruncateTo:
        if (e.n > out.size()) {
          throw std::logic_error(strf("truncate_to(%zu) of a %zu-byte frame", e.n, out.size()));
        }
        out.resize(e.n);
        break;
      case Edit::Kind::kSetByte:
        if (e.n >= out.size()) {
          throw std::logic_error(strf("set_byte(%zu) of a %zu-byte frame", e.n, out.size()));
        }
        out[e.n] = e.value;
        break;
    }
  }
  return out;
}

Bytes Packet::l3_bytes() const {
  Bytes out = bytes();
  if (!layers_.empty() && std::holds_alternative<Eth>(layers_.front())) {
    if (out.size() < kEthHeaderLen) throw std::logic_error("l3_bytes() of a truncated frame");
    out.erase(out.begin(), out.begin() + kEthHeaderLen);
  }
  return out;
}

Bytes Packet::build() const {
  const size_t n = layers_.size();
  auto next = [&](size_t i) -> const Layer* { return i + 1 < n ? &layers_[i + 1] : nullptr; };

  // The protocol number that announces layer `l`.
  auto proto_of = [](const Layer* l, const char* who, bool v6) -> uint8_t {
    if (l == nullptr && v6) return kProtoNoNext;
    if (l != nullptr) {
      if (std::holds_alternative<Tcp>(*l)) return kProtoTcp;
      if (std::holds_alternative<Udp>(*l)) return kProtoUdp;
      if (std::holds_alternative<Icmp>(*l)) return kProtoIcmp;
      if (std::holds_alternative<Icmpv6>(*l)) return kProtoIcmpv6;
      if (std::holds_alternative<Ipv4>(*l)) return kProtoIpip;
      if (std::holds_alternative<Ipv6>(*l)) return kProtoIpv6;
    }
    throw std::logic_error(strf("%s: cannot derive the protocol of what follows (%s); set it", who,
                                l == nullptr ? "nothing" : "a payload"));
  };

  // Pass 1: headers with derived type fields, lengths and checksums still zero.
  Bytes out;
  std::vector<size_t> off(n);
  std::vector<size_t> hdr_len(n);
  for (size_t i = 0; i < n; ++i) {
    off[i] = out.size();
    const Layer& l = layers_[i];
    if (const auto* e = std::get_if<Eth>(&l)) {
      uint16_t type = 0;
      if (e->ethertype) {
        type = *e->ethertype;
      } else if (next(i) && std::holds_alternative<Ipv4>(*next(i))) {
        type = kEthPIpv4;
      } else if (next(i) && std::holds_alternative<Ipv6>(*next(i))) {
        type = kEthPIpv6;
      } else {
        throw std::logic_error("eth: cannot derive the ethertype (no IP layer follows); set it");
      }
      put(out, e->dst.octets);
      put(out, e->src.octets);
      put16(out, type);
    } else if (const auto* ip4 = std::get_if<Ipv4>(&l)) {
      Bytes opts = ip4->options;
      opts.resize((opts.size() + 3) / 4 * 4, 0);
      size_t len = 20 + opts.size();
      if (!ip4->ihl && len > 60) throw std::logic_error("ipv4: options longer than 40 bytes");
      uint8_t ihl = ip4->ihl.value_or(static_cast<uint8_t>(len / 4));
      put8(out, static_cast<uint8_t>(ip4->version << 4 | (ihl & 0xf)));
      put8(out, ip4->tos);
      put16(out, 0);  // tot_len, pass 2
      put16(out, ip4->id);
      put16(out, static_cast<uint16_t>((ip4->df ? 0x4000 : 0) | (ip4->mf ? 0x2000 : 0) |
                                       (ip4->frag_offset & 0x1fff)));
      put8(out, ip4->ttl);
      put8(out, ip4->proto ? *ip4->proto : proto_of(next(i), "ipv4", false));
      put16(out, 0);  // checksum, pass 2
      put(out, ip4->src.octets);
      put(out, ip4->dst.octets);
      put(out, opts);
      hdr_len[i] = len;
    } else if (const auto* ip6 = std::get_if<Ipv6>(&l)) {
      uint8_t upper = ip6->next_header ? *ip6->next_header : proto_of(next(i), "ipv6", true);
      put32(out, static_cast<uint32_t>(ip6->version) << 28 |
                     static_cast<uint32_t>(ip6->traffic_class) << 20 | (ip6->flow_label & 0xfffff));
      put16(out, 0);  // payload_len, pass 2
      put8(out, ip6->ext.empty() ? upper : ip6->ext.front().type);
      put8(out, ip6->hop_limit);
      put(out, ip6->src.octets);
      put(out, ip6->dst.octets);
      for (size_t k = 0; k < ip6->ext.size(); ++k) {
        const Ipv6Ext& x = ip6->ext[k];
        Bytes body = x.body;
        body.resize(body.size() + (8 - (2 + body.size()) % 8) % 8, 0);
        put8(out, k + 1 < ip6->ext.size() ? ip6->ext[k + 1].type : upper);
        // The fragment header has a reserved byte where the others have their length.
        put8(out, x.type == kProtoFragment ? 0 : static_cast<uint8_t>((2 + body.size()) / 8 - 1));
        put(out, body);
      }
      hdr_len[i] = out.size() - off[i];
    } else if (const auto* t = std::get_if<Tcp>(&l)) {
      Bytes opts = t->options;
      opts.resize((opts.size() + 3) / 4 * 4, 0);
      size_t len = 20 + opts.size();
      if (!t->data_offset && len > 60) throw std::logic_error("tcp: options longer than 40 bytes");
      put16(out, t->sport);
      put16(out, t->dport);
      put32(out, t->seq);
      put32(out, t->ack);
      put8(out, static_cast<uint8_t>(t->data_offset.value_or(static_cast<uint8_t>(len / 4)) << 4));
      put8(out, t->flags);
      put16(out, t->window);
      put16(out, 0);  // checksum, pass 2
      put16(out, t->urg);
      put(out, opts);
      hdr_len[i] = len;
    } else if (const auto* u = std::get_if<Udp>(&l)) {
      put16(out, u->sport);
      put16(out, u->dport);
      put32(out, 0);  // length and checksum, pass 2
      hdr_len[i] = 8;
    } else if (const auto* m4 = std::get_if<Icmp>(&l)) {
      put8(out, m4->type);
      put8(out, m4->code);
      put16(out, 0);
      put32(out, m4->rest);
      hdr_len[i] = 8;
    } else if (const auto* m6 = std::get_if<Icmpv6>(&l)) {
      put8(out, m6->type);
      put8(out, m6->code);
      put16(out, 0);
      put32(out, m6->rest);
      hdr_len[i] = 8;
    } else if (const auto* r = std::get_if<Raw>(&l)) {
      put(out, r->data);
    }
  }

  // The pseudo-header sum of the nearest IP layer before layer i.
  auto pseudo = [&](size_t i, uint8_t proto, size_t len, const char* who) -> uint32_t {
    for (size_t j = i; j-- > 0;) {
      if (const auto* ip = std::get_if<Ipv4>(&layers_[j])) {
        return pseudo_header_v4(ip->src, ip->dst, proto, fit16(len, who));
      }
      if (const auto* ip = std::get_if<Ipv6>(&layers_[j])) {
        return pseudo_header_v6(ip->src, ip->dst, proto, static_cast<uint32_t>(len));
      }
    }
    throw std::logic_error(
        strf("%s: no IP layer before it for the checksum pseudo-header; set .checksum", who));
  };

  // Pass 2, innermost first: a layer's lengths and checksum cover everything after it, which
  // is then final (GUE's outer UDP checksum covers the finished inner packet).
  for (size_t i = n; i-- > 0;) {
    const Layer& l = layers_[i];
    const size_t o = off[i];
    const size_t rest = out.size() - o;
    const auto seg = std::span<const uint8_t>(out).subspan(o);
    if (const auto* ip4 = std::get_if<Ipv4>(&l)) {
      write16(out, o + 2, ip4->tot_len ? *ip4->tot_len : fit16(rest, "ipv4 tot_len"));
      write16(out, o + 10,
              ip4->checksum ? *ip4->checksum : internet_checksum(seg.first(hdr_len[i])));
    } else if (const auto* ip6 = std::get_if<Ipv6>(&l)) {
      write16(out, o + 4,
              ip6->payload_len ? *ip6->payload_len : fit16(rest - 40, "ipv6 payload_len"));
    } else if (const auto* t = std::get_if<Tcp>(&l)) {
      write16(
          out, o + 16,
          t->checksum ? *t->checksum : internet_checksum(seg, pseudo(i, kProtoTcp, rest, "tcp")));
    } else if (const auto* u = std::get_if<Udp>(&l)) {
      write16(out, o + 4, u->len ? *u->len : fit16(rest, "udp len"));
      uint16_t csum = 0;
      if (u->checksum) {
        csum = *u->checksum;
      } else {
        csum = internet_checksum(seg, pseudo(i, kProtoUdp, rest, "udp"));
        if (csum == 0) csum = 0xffff;  // 0 means "no checksum" on the wire
      }
      write16(out, o + 6, csum);
    } else if (const auto* m4 = std::get_if<Icmp>(&l)) {
      write16(out, o + 2, m4->checksum ? *m4->checksum : internet_checksum(seg));
    } else if (const auto* m6 = std::get_if<Icmpv6>(&l)) {
      write16(out, o + 2,
              m6->checksum ? *m6->checksum
                           : internet_checksum(seg, pseudo(i, kProtoIcmpv6, rest, "icmpv6")));
    }
  }
  return out;
}

// ---- Hexdumps ------------------------------------------------------------------------------

std::string hexdump(std::span<const uint8_t> data) {
  std::string s;
  for (size_t line = 0; line < data.size(); line += 16) {
    s += strf("%04zx ", line);
    for (size_t i = line; i < std::min(line + 16, data.size()); ++i) s += strf(" %02x", data[i]);
    s += '\n';
  }
  return s;
}

std::string hexdump_diff(std::span<const uint8_t> expected, std::span<const uint8_t> actual) {
  if (expected.size() == actual.size() &&
      std::equal(expected.begin(), expected.end(), actual.begin())) {
    return "";
  }
  const size_t size = std::max(expected.size(), actual.size());
  auto differs = [&](size_t i) {
    return i >= expected.size() || i >= actual.size() || expected[i] != actual[i];
  };
  size_t first = 0;
  while (!differs(first)) ++first;

  const size_t lines = (size + 15) / 16;
  std::vector<bool> line_differs(lines);
  for (size_t i = 0; i < size; ++i) line_differs[i / 16] = line_differs[i / 16] || differs(i);

  auto cells = [](std::span<const uint8_t> d, size_t line) {
    std::string s;
    for (size_t i = line * 16; i < line * 16 + 16; ++i) {
      s += i < d.size() ? strf("%02x ", d[i]) : std::string("   ");
    }
    return s;
  };
  std::string out = strf("expected %zu bytes, actual %zu bytes; first difference at 0x%04zx\n",
                         expected.size(), actual.size(), first);
  out += strf("%-6s%-48s| %s\n", "", "expected", "actual");
  bool elided = false;
  for (size_t line = 0; line < lines; ++line) {
    // One line of context either side of a difference; the rest is noise.
    bool near = line_differs[line] || (line > 0 && line_differs[line - 1]) ||
                (line + 1 < lines && line_differs[line + 1]);
    if (!near) {
      if (!elided) out += "...\n";
      elided = true;
      continue;
    }
    elided = false;
    out += strf("%04zx  ", line * 16) + cells(expected, line) + "| " + cells(actual, line) + "\n";
    if (line_differs[line]) {
      std::string marks;
      for (size_t i = line * 16; i < line * 16 + 16; ++i) marks += differs(i) ? "^^ " : "   ";
      out += "      " + marks + "| " + marks + "\n";
    }
  }
  return out;
}

// ---- Parser --------------------------------------------------------------------------------

namespace {

// Nested IP headers followed before giving up (IPIP in IPIP in ...): random bytes must not
// recurse without bound, and no real test needs more than two levels.
constexpr int kMaxIpDepth = 8;
constexpr size_t kMaxExtHeaders = 16;

class Parser {
 public:
  Parser(std::span<const uint8_t> data, const ParseOptions& opts, bool quote, bool ethernet)
      : d_(data), opts_(opts), quote_(quote), ethernet_(ethernet) {}

  ParsedPacket from_eth() {
    if (d_.size() < kEthHeaderLen) {
      problem(strf("frame of %zu bytes: truncated Ethernet header", d_.size()));
      payload(0, d_.size());
      return std::move(p_);
    }
    ParsedEth eth{.offset = 0,
                  .src = Mac{rd_array<6>(d_, 6)},
                  .dst = Mac{rd_array<6>(d_, 0)},
                  .ethertype = rd16(d_, 12)};
    p_.layers.emplace_back(eth);
    if (eth.ethertype == kEthPIpv4) {
      ipv4(kEthHeaderLen, d_.size(), true, 0);
    } else if (eth.ethertype == kEthPIpv6) {
      ipv6(kEthHeaderLen, d_.size(), true, 0);
    } else {
      payload(kEthHeaderLen, d_.size());
    }
    return std::move(p_);
  }

  ParsedPacket from_ip() {
    if (d_.empty()) {
      problem("no bytes: IP header missing");
      return std::move(p_);
    }
    int version = d_[0] >> 4;
    if (version == 4) {
      ipv4(0, d_.size(), true, 0);
    } else if (version == 6) {
      ipv6(0, d_.size(), true, 0);
    } else {
      problem(strf("ip at 0: version %d", version));
      payload(0, d_.size());
    }
    return std::move(p_);
  }

 private:
  void problem(std::string text) { p_.problems.push_back(std::move(text)); }

  void payload(size_t off, size_t end) {
    if (end > off) p_.layers.emplace_back(ParsedPayload{.offset = off, .data = bytes(off, end)});
  }

  Bytes bytes(size_t off, size_t end) const {
    return Bytes(d_.begin() + static_cast<std::ptrdiff_t>(off),
                 d_.begin() + static_cast<std::ptrdiff_t>(end));
  }

  // Bytes between the end of an IP datagram and the end of what carries it.
  void trailing(const char* what, size_t off, size_t ip_len, size_t extra, bool outermost) {
    if (quote_) return;
    if (outermost && ethernet_ && d_.size() <= kEthMinFrame) {
      p_.eth_padding = extra;
      return;
    }
    problem(strf("%s at %zu: %zu bytes after the datagram (length %zu)", what, off, extra, ip_len));
  }

  void ipv4(size_t off, size_t end, bool outermost, int depth) {
    const size_t avail = end - off;
    if (avail < 20) {
      problem(strf("ipv4 at %zu: truncated header (%zu of 20 bytes)", off, avail));
      payload(off, end);
      return;
    }
    const auto h = d_.subspan(off);
    ParsedIpv4 ip{.offset = off,
                  .header_len = static_cast<size_t>(h[0] & 0xf) * 4,
                  .version = static_cast<uint8_t>(h[0] >> 4),
                  .tos = h[1],
                  .ttl = h[8],
                  .proto = h[9],
                  .tot_len = rd16(h, 2),
                  .id = rd16(h, 4),
                  .df = (h[6] & 0x40) != 0,
                  .mf = (h[6] & 0x20) != 0,
                  .frag_offset = static_cast<uint16_t>(rd16(h, 6) & 0x1fff),
                  .checksum = rd16(h, 10)};
    ip.src.octets = rd_array<4>(h, 12);
    ip.dst.octets = rd_array<4>(h, 16);
    const size_t hl = ip.header_len;
    if (ip.version != 4) {
      problem(strf("ipv4 at %zu: version %u", off, ip.version));
      p_.layers.emplace_back(ip);
      return;
    }
    if (hl < 20 || hl > avail) {
      problem(strf("ipv4 at %zu: header length %zu, %zu bytes present", off, hl, avail));
      p_.layers.emplace_back(ip);
      return;
    }
    ip.checksum_ok = internet_checksum(h.first(hl)) == 0;
    if (!ip.checksum_ok) {
      problem(strf("ipv4 at %zu: bad header checksum 0x%04x (expected 0x%04x)", off, ip.checksum,
                   expected_checksum(h.first(hl), 10, 0)));
    }
    p_.layers.emplace_back(ip);

    size_t ip_end = end;
    bool complete = !quote_;
    if (ip.tot_len < hl) {
      problem(strf("ipv4 at %zu: tot_len %u smaller than the header (%zu)", off, ip.tot_len, hl));
      ip_end = off + hl;
      complete = false;
    } else if (ip.tot_len > avail) {
      if (!quote_) {
        problem(strf("ipv4 at %zu: tot_len %u, only %zu bytes present", off, ip.tot_len, avail));
      }
      complete = false;
    } else {
      ip_end = off + ip.tot_len;
      if (ip.tot_len < avail) trailing("ipv4", off, ip.tot_len, avail - ip.tot_len, outermost);
    }
    if (ip.frag_offset != 0) {
      payload(off + hl, ip_end);  // a later fragment: no L4 header here
      return;
    }
    Pseudo ps{.v6 = false, .src4 = ip.src, .dst4 = ip.dst};
    l4(ip.proto, off + hl, ip_end, ps, complete && !ip.mf, ip.mf, depth);
  }

  void ipv6(size_t off, size_t end, bool outermost, int depth) {
    const size_t avail = end - off;
    if (avail < 40) {
      problem(strf("ipv6 at %zu: truncated header (%zu of 40 bytes)", off, avail));
      payload(off, end);
      return;
    }
    const auto h = d_.subspan(off);
    const uint32_t w0 = rd32(h, 0);
    ParsedIpv6 ip{.offset = off,
                  .header_len = 40,
                  .traffic_class = static_cast<uint8_t>(w0 >> 20),
                  .flow_label = w0 & 0xfffff,
                  .hop_limit = h[7],
                  .payload_len = rd16(h, 4),
                  .next_header = h[6]};
    ip.src.octets = rd_array<16>(h, 8);
    ip.dst.octets = rd_array<16>(h, 24);
    if ((w0 >> 28) != 6) {
      problem(strf("ipv6 at %zu: version %u", off, w0 >> 28));
      p_.layers.emplace_back(ip);
      return;
    }
    size_t ip_end = end;
    bool complete = !quote_;
    if (40u + ip.payload_len > avail) {
      if (!quote_) {
        problem(strf("ipv6 at %zu: payload_len %u, only %zu bytes present", off, ip.payload_len,
                     avail - 40));
      }
      complete = false;
    } else {
      ip_end = off + 40 + ip.payload_len;
      if (40u + ip.payload_len < avail) {
        trailing("ipv6", off, 40u + ip.payload_len, avail - 40 - ip.payload_len, outermost);
      }
    }

    size_t pos = off + 40;
    uint8_t next = h[6];
    while (next == kProtoHopByHop || next == kProtoRouting || next == kProtoFragment ||
           next == kProtoDestOpts || next == 51 /* AH */) {
      if (next == kProtoHopByHop && !ip.ext_headers.empty()) {
        problem(strf("ipv6 at %zu: hop-by-hop header not first", off));
      }
      if (ip.ext_headers.size() >= kMaxExtHeaders) {
        problem(strf("ipv6 at %zu: more than %zu extension headers", off, kMaxExtHeaders));
        p_.layers.emplace_back(ip);
        return;
      }
      size_t len = 8;
      if (pos + 2 <= ip_end) {
        if (next == 51) {
          len = (static_cast<size_t>(d_[pos + 1]) + 2) * 4;
        } else if (next != kProtoFragment) {
          len = (static_cast<size_t>(d_[pos + 1]) + 1) * 8;
        }
      }
      if (pos + len > ip_end) {
        problem(strf("ipv6 at %zu: truncated extension header %u at %zu", off, next, pos));
        p_.layers.emplace_back(ip);
        return;
      }
      if (next == kProtoFragment) {
        ip.fragment = true;
        ip.frag_offset = static_cast<uint16_t>(rd16(d_, pos + 2) >> 3);
        ip.mf = (d_[pos + 3] & 1) != 0;
        ip.frag_id = rd32(d_, pos + 4);
      }
      ip.ext_headers.push_back(next);
      next = d_[pos];
      pos += len;
    }
    ip.next_header = next;
    ip.header_len = pos - off;
    p_.layers.emplace_back(ip);
    if (ip.fragment && ip.frag_offset != 0) {
      payload(pos, ip_end);
      return;
    }
    Pseudo ps{.v6 = true, .src6 = ip.src, .dst6 = ip.dst};
    l4(next, pos, ip_end, ps, complete && !ip.mf, ip.mf, depth);
  }

  // `complete`: the whole L4 segment is here, so its checksum can be verified. `first_fragment`:
  // the segment continues in other fragments, so its own length field exceeds these bytes.
  void l4(uint8_t proto, size_t off, size_t end, const Pseudo& ps, bool complete,
          bool first_fragment, int depth) {
    switch (proto) {
      case kProtoTcp:
        return tcp(off, end, ps, complete);
      case kProtoUdp:
        return udp(off, end, ps, complete, first_fragment, depth);
      case kProtoIcmp:
        return icmp(off, end, ps, complete, false);
      case kProtoIcmpv6:
        return icmp(off, end, ps, complete, true);
      case kProtoIpip:
      case kProtoIpv6:
        if (depth + 1 >= kMaxIpDepth) {
          problem(strf("ip at %zu: more than %d nested IP headers", off, kMaxIpDepth));
          return payload(off, end);
        }
        return proto == kProtoIpip ? ipv4(off, end, false, depth + 1)
                                   : ipv6(off, end, false, depth + 1);
      default:
        return payload(off, end);
    }
  }

  bool verify(bool complete) const { return complete && !quote_ && opts_.verify_l4_checksums; }

  // An ICMP quote must hold 8 transport bytes; a packet must hold the whole header.
  bool have(const char* what, size_t off, size_t end, size_t need) {
    if (quote_) need = 8;
    if (end - off >= need) return true;
    problem(strf("%s at %zu: truncated header (%zu of %zu bytes)", what, off, end - off, need));
    payload(off, end);
    return false;
  }

  void tcp(size_t off, size_t end, const Pseudo& ps, bool complete) {
    if (!have("tcp", off, end, 20)) return;
    const size_t avail = end - off;
    // A quote may stop after 8 bytes: read from a zero-filled copy.
    std::array<uint8_t, 20> h{};
    std::copy_n(d_.begin() + static_cast<std::ptrdiff_t>(off), std::min<size_t>(avail, 20),
                h.begin());
    ParsedTcp t{.offset = off,
                .header_len = static_cast<size_t>(h[12] >> 4) * 4,
                .sport = rd16(h, 0),
                .dport = rd16(h, 2),
                .seq = rd32(h, 4),
                .ack = rd32(h, 8),
                .flags = h[13],
                .window = rd16(h, 14),
                .checksum = rd16(h, 16),
                .urg = rd16(h, 18)};
    if (quote_) {
      p_.layers.emplace_back(t);
      return;
    }
    if (t.header_len < 20 || t.header_len > avail) {
      problem(strf("tcp at %zu: header length %zu, %zu bytes present", off, t.header_len, avail));
      p_.layers.emplace_back(t);
      return;
    }
    if (verify(complete)) {
      const auto seg = d_.subspan(off, avail);
      const uint32_t initial = ps.sum(kProtoTcp, avail);
      t.checksum_ok = checksum_fold(checksum_add(seg, initial)) == 0xffff;
      if (!*t.checksum_ok) {
        problem(strf("tcp at %zu: bad checksum 0x%04x (expected 0x%04x)", off, t.checksum,
                     expected_checksum(seg, 16, initial)));
      }
    }
    p_.layers.emplace_back(t);
    payload(off + t.header_len, end);
  }

  void udp(size_t off, size_t end, const Pseudo& ps, bool complete, bool first_fragment,
           int depth) {
    if (!have("udp", off, end, 8)) return;
    const size_t avail = end - off;
    ParsedUdp u{.offset = off,
                .sport = rd16(d_, off),
                .dport = rd16(d_, off + 2),
                .len = rd16(d_, off + 4),
                .checksum = rd16(d_, off + 6)};
    if (quote_) {
      p_.layers.emplace_back(u);
      return;
    }
    size_t udp_end = end;
    if (u.len < 8) {
      problem(strf("udp at %zu: length %u smaller than the header", off, u.len));
      complete = false;
    } else if (u.len != avail && !(first_fragment && u.len > avail)) {
      problem(strf("udp at %zu: length %u, but %zu bytes of IP payload", off, u.len, avail));
      if (u.len < avail) udp_end = off + u.len;
      complete = false;
    }
    // Checksum 0 means none (IPv4; RFC 6935 allows it for tunnels over IPv6, as GUE does).
    if (u.checksum != 0 && verify(complete)) {
      const auto seg = d_.subspan(off, avail);
      const uint32_t initial = ps.sum(kProtoUdp, avail);
      u.checksum_ok = checksum_fold(checksum_add(seg, initial)) == 0xffff;
      if (!*u.checksum_ok) {
        problem(strf("udp at %zu: bad checksum 0x%04x (expected 0x%04x)", off, u.checksum,
                     expected_checksum(seg, 6, initial)));
      }
    }
    u.gue = opts_.gue_port != 0 && u.dport == opts_.gue_port;
    p_.layers.emplace_back(u);
    if (!u.gue) return payload(off + 8, udp_end);

    const size_t inner = off + 8;
    if (inner >= udp_end) return problem(strf("gue at %zu: no inner packet", inner));
    const int version = d_[inner] >> 4;
    if (depth + 1 >= kMaxIpDepth) {
      problem(strf("gue at %zu: more than %d nested IP headers", inner, kMaxIpDepth));
      payload(inner, udp_end);
    } else if (version == 4) {
      ipv4(inner, udp_end, false, depth + 1);
    } else if (version == 6) {
      ipv6(inner, udp_end, false, depth + 1);
    } else {
      problem(strf("gue at %zu: inner IP version %d", inner, version));
      payload(inner, udp_end);
    }
  }

  void icmp(size_t off, size_t end, const Pseudo& ps, bool complete, bool v6) {
    const char* what = v6 ? "icmpv6" : "icmp";
    if (!have(what, off, end, 8)) return;
    const auto seg = d_.subspan(off, end - off);
    ParsedIcmp m{.offset = off,
                 .type = seg[0],
                 .code = seg[1],
                 .checksum = rd16(seg, 2),
                 .rest = rd32(seg, 4),
                 .body = bytes(off + 8, end)};
    if (verify(complete)) {
      const uint32_t initial = v6 ? ps.sum(kProtoIcmpv6, seg.size()) : 0;
      m.checksum_ok = checksum_fold(checksum_add(seg, initial)) == 0xffff;
      if (!*m.checksum_ok) {
        problem(strf("%s at %zu: bad checksum 0x%04x (expected 0x%04x)", what, off, m.checksum,
                     expected_checksum(seg, 2, initial)));
      }
    }
    if (v6) {
      p_.layers.emplace_back(ParsedIcmpv6{m});
    } else {
      p_.layers.emplace_back(m);
    }
  }

  std::span<const uint8_t> d_;
  ParseOptions opts_;
  bool quote_;
  bool ethernet_;
  ParsedPacket p_;
};

std::string tcp_flags(uint8_t f) {
  static constexpr char kNames[] = "FSRPAUEC";
  std::string s;
  for (int i = 0; i < 8; ++i) {
    if (f & (1 << i)) s += kNames[i];
  }
  return s;
}

}  // namespace

ParsedPacket parse(std::span<const uint8_t> frame, const ParseOptions& opts) {
  return Parser(frame, opts, false, true).from_eth();
}

ParsedPacket parse_quote(std::span<const uint8_t> quote) {
  return Parser(quote, {}, true, false).from_ip();
}

std::string ParsedPacket::to_string() const {
  std::string s;
  for (const ParsedLayer& l : layers) {
    if (!s.empty()) s += " | ";
    if (const auto* eth = std::get_if<ParsedEth>(&l)) {
      s += strf("eth 0x%04x", eth->ethertype);
    } else if (const auto* ip = std::get_if<ParsedIpv4>(&l)) {
      s += "ipv4 " + ip->src.to_string() + ">" + ip->dst.to_string() +
           strf(" proto %u len %u", ip->proto, ip->tot_len);
    } else if (const auto* ip6 = std::get_if<ParsedIpv6>(&l)) {
      s += "ipv6 " + ip6->src.to_string() + ">" + ip6->dst.to_string();
      for (uint8_t e : ip6->ext_headers) s += strf(" ext %u", e);
      s += strf(" nh %u plen %u", ip6->next_header, ip6->payload_len);
    } else if (const auto* t = std::get_if<ParsedTcp>(&l)) {
      s += strf("tcp %u>%u [%s]", t->sport, t->dport, tcp_flags(t->flags).c_str());
    } else if (const auto* u = std::get_if<ParsedUdp>(&l)) {
      s += strf("udp %u>%u len %u%s", u->sport, u->dport, u->len, u->gue ? " gue" : "");
    } else if (const auto* m = std::get_if<ParsedIcmpv6>(&l)) {
      s += strf("icmpv6 %u/%u body %zu", m->type, m->code, m->body.size());
    } else if (const auto* m4 = std::get_if<ParsedIcmp>(&l)) {
      s += strf("icmp %u/%u body %zu", m4->type, m4->code, m4->body.size());
    } else if (const auto* p = std::get_if<ParsedPayload>(&l)) {
      s += strf("payload(%zu)", p->data.size());
    }
  }
  for (size_t i = 0; i < problems.size(); ++i) s += (i == 0 ? "; problems: " : "; ") + problems[i];
  return s;
}

// ---- Encapsulation check -------------------------------------------------------------------

std::optional<std::string> check_encapsulated(std::span<const uint8_t> frame, uint16_t gue_port,
                                              const EncapCheckOptions& opts) {
  if (frame.size() < kEthHeaderLen) {
    return strf("frame of %zu bytes is shorter than an Ethernet header", frame.size());
  }
  const uint16_t ethertype = rd16(frame, 12);
  const size_t off = kEthHeaderLen;
  const size_t avail = frame.size() - off;
  const auto h = frame.subspan(off);

  // The outer datagram must end where the frame ends, unless the frame is padded to minimum.
  auto length_error = [&](const char* what, size_t ip_len) -> std::optional<std::string> {
    if (ip_len > avail) {
      return strf("outer %s length %zu exceeds the %zu bytes after Ethernet", what, ip_len, avail);
    }
    if (ip_len < avail && frame.size() > kEthMinFrame) {
      return strf("%zu bytes after the outer %s datagram (length %zu) in a %zu-byte frame",
                  avail - ip_len, what, ip_len, frame.size());
    }
    return std::nullopt;
  };

  uint8_t proto = 0;
  size_t pay_off = 0;
  size_t pay_end = 0;
  Pseudo ps;
  if (ethertype == kEthPIpv4) {
    if (avail < 20) return strf("outer IPv4 header truncated (%zu bytes)", avail);
    if ((h[0] >> 4) != 4) return strf("outer IPv4 header has version %d", h[0] >> 4);
    const size_t hl = static_cast<size_t>(h[0] & 0xf) * 4;
    if (hl < 20 || hl > avail) return strf("outer IPv4 header length %zu", hl);
    if (internet_checksum(h.first(hl)) != 0) {
      return strf("outer IPv4 header checksum 0x%04x, expected 0x%04x", rd16(h, 10),
                  expected_checksum(h.first(hl), 10, 0));
    }
    const size_t tot_len = rd16(h, 2);
    if (tot_len < hl) return strf("outer IPv4 tot_len %zu smaller than its header", tot_len);
    if (auto e = length_error("IPv4", tot_len)) return e;
    if ((rd16(h, 6) & 0x3fff) != 0) return std::string("outer IPv4 is a fragment");
    proto = h[9];
    pay_off = off + hl;
    pay_end = off + tot_len;
    ps.src4.octets = rd_array<4>(h, 12);
    ps.dst4.octets = rd_array<4>(h, 16);
  } else if (ethertype == kEthPIpv6) {
    if (avail < 40) return strf("outer IPv6 header truncated (%zu bytes)", avail);
    if ((h[0] >> 4) != 6) return strf("outer IPv6 header has version %d", h[0] >> 4);
    if (auto e = length_error("IPv6", 40u + rd16(h, 4))) return e;
    proto = h[6];
    pay_off = off + 40;
    pay_end = off + 40 + rd16(h, 4);
    ps.v6 = true;
    ps.src6.octets = rd_array<16>(h, 8);
    ps.dst6.octets = rd_array<16>(h, 24);
  } else {
    return strf("ethertype 0x%04x is neither IPv4 nor IPv6", ethertype);
  }

  int inner_version = 0;
  if (proto == kProtoIpip) {
    inner_version = 4;
  } else if (proto == kProtoIpv6) {
    inner_version = 6;
  } else if (proto == kProtoUdp) {
    if (gue_port == 0) return std::string("outer protocol is UDP but no GUE port is expected");
    const auto udp = frame.subspan(pay_off, pay_end - pay_off);
    if (udp.size() < 8) return strf("outer UDP header truncated (%zu bytes)", udp.size());
    if (rd16(udp, 2) != gue_port) {
      return strf("outer UDP destination port %u is not the GUE port %u", rd16(udp, 2), gue_port);
    }
    if (rd16(udp, 4) != udp.size()) {
      return strf("outer UDP length %u, outer IP payload %zu bytes", rd16(udp, 4), udp.size());
    }
    if (rd16(udp, 6) != 0 &&
        checksum_fold(checksum_add(udp, ps.sum(kProtoUdp, udp.size()))) != 0xffff) {
      return strf("outer UDP checksum 0x%04x, expected 0x%04x", rd16(udp, 6),
                  expected_checksum(udp, 6, ps.sum(kProtoUdp, udp.size())));
    }
    pay_off += 8;
    if (pay_off == pay_end) return std::string("GUE carries no inner packet");
    inner_version = frame[pay_off] >> 4;
    if (inner_version != 4 && inner_version != 6) {
      return strf("GUE inner IP version %d", inner_version);
    }
  } else {
    return strf("outer protocol %u is not IPIP (4), IPv6 (41) or UDP (17)", proto);
  }

  const auto in = frame.subspan(pay_off, pay_end - pay_off);
  size_t inner_len = 0;
  if (inner_version == 4) {
    if (in.size() < 20) return strf("inner IPv4 header truncated (%zu bytes)", in.size());
    if ((in[0] >> 4) != 4) return strf("inner IP version %d where IPv4 is announced", in[0] >> 4);
    const size_t hl = static_cast<size_t>(in[0] & 0xf) * 4;
    if (hl < 20 || hl > in.size()) {
      return strf("inner IPv4 header length %zu, %zu bytes present", hl, in.size());
    }
    inner_len = rd16(in, 2);
    if (inner_len < hl) return strf("inner IPv4 tot_len %zu smaller than its header", inner_len);
    if (inner_len > in.size()) {
      return strf("inner IPv4 tot_len %zu exceeds the %zu-byte outer payload", inner_len,
                  in.size());
    }
  } else {
    if (in.size() < 40) return strf("inner IPv6 header truncated (%zu bytes)", in.size());
    if ((in[0] >> 4) != 6) return strf("inner IP version %d where IPv6 is announced", in[0] >> 4);
    inner_len = 40u + rd16(in, 4);
    if (inner_len > in.size()) {
      return strf("inner IPv6 length %zu exceeds the %zu-byte outer payload", inner_len, in.size());
    }
  }

  if (opts.verify_inner_checksums) {
    // The parser already knows every checksum rule; any problem in the inner datagram counts.
    ParsedPacket p = Parser(in.first(inner_len), {}, false, false).from_ip();
    if (!p.ok()) return "inner packet: " + p.problems.front();
  }
  return std::nullopt;
}

}  // namespace xlb::test
