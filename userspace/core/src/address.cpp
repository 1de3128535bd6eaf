// SPDX-License-Identifier: Apache-2.0
#include "xlb/core/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace xlb {

Result<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; an address is at most 45 characters.
  if (text.empty() || text.size() > INET6_ADDRSTRLEN - 1) {
    return Error::invalid("'" + std::string(text) + "' is not an IP address");
  }
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  IpAddress a;
  if (inet_pton(AF_INET, buf, &a.addr_.words[0]) == 1) {
    a.family_ = Family::kV4;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.addr_.words) == 1) {
    a.family_ = Family::kV6;
    return a;
  }
  return Error::invalid("'" + std::string(text) + "' is not an IPv4 or IPv6 address");
}

IpAddress IpAddress::from_abi(const xlb_addr& addr, Family family) {
  IpAddress a;
  a.family_ = family;
  a.addr_ = addr;
  if (family == Family::kV4) a.addr_.words[1] = a.addr_.words[2] = a.addr_.words[3] = 0;
  return a;
}

IpAddress IpAddress::v4_from_be(uint32_t be) {
  IpAddress a;
  a.addr_.words[0] = be;
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(is_v4() ? AF_INET : AF_INET6, addr_.words, buf, sizeof(buf));
  return buf;
}

bool operator==(const IpAddress& a, const IpAddress& b) {
  return a.family_ == b.family_ && std::memcmp(&a.addr_, &b.addr_, sizeof(a.addr_)) == 0;
}

std::strong_ordering operator<=>(const IpAddress& a, const IpAddress& b) {
  if (a.family_ != b.family_) return a.family_ <=> b.family_;
  int c = std::memcmp(&a.addr_, &b.addr_, sizeof(a.addr_));
  return c <=> 0;
}

Result<IpPrefix> IpPrefix::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return Error::invalid("'" + std::string(text) + "' is not a prefix (want ADDRESS/LENGTH)");
  }
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return addr.error();
  auto len_text = text.substr(slash + 1);
  unsigned len = 0;
  auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  unsigned max = addr->is_v4() ? 32 : 128;
  if (ec != std::errc() || ptr != len_text.data() + len_text.size() || len > max) {
    return Error::invalid("'" + std::string(text) + "': prefix length must be 0.." +
                          std::to_string(max));
  }
  return IpPrefix{*addr, static_cast<uint8_t>(len)};
}

std::string IpPrefix::to_string() const {
  return address.to_string() + "/" + std::to_string(length);
}

Result<Endpoint> Endpoint::parse(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error::invalid("'" + std::string(text) + "': want [IPv6]:PORT");
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return Error::invalid("'" + std::string(text) +
                            "': want IPv4:PORT or [IPv6]:PORT");
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  auto addr = IpAddress::parse(host);
  if (!addr) return addr.error();
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
      port > 65535) {
    return Error::invalid("'" + std::string(text) + "': port must be 0..65535");
  }
  return Endpoint{*addr, static_cast<uint16_t>(port)};
}

std::string Endpoint::to_string() const {
  if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(port);
  return address.to_string() + ":" + std::to_string(port);
}

}  // namespace xlb
