// SPDX-License-Identifier: Apache-2.0
#include "xlbctl/syntax.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "xlbctl/args.h"

namespace xlbctl {
namespace {

using xlb::Endpoint;
using xlb::IpAddress;
using xlb::Result;

bool has_space(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](unsigned char c) { return std::isspace(c) || std::iscntrl(c); });
}

// Why `a` cannot be a VIP, a backend or a client of one, or empty if it can. These parse fine
// but never reach (or leave) an XDP program on a NIC.
std::string not_unicast(const IpAddress& a) {
  const uint8_t* b = a.bytes();
  if (a.is_v4()) {
    if (b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0) return "the unspecified address";
    if (b[0] == 127) return "a loopback address";
    if (b[0] >= 224 && b[0] <= 239) return "a multicast address";
    if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255) return "the broadcast address";
    return "";
  }
  if (std::all_of(b, b + 16, [](uint8_t x) { return x == 0; })) return "the unspecified address";
  if (std::all_of(b, b + 15, [](uint8_t x) { return x == 0; }) && b[15] == 1) {
    return "the loopback address";
  }
  if (b[0] == 0xff) return "a multicast address";
  return "";
}

}  // namespace

Result<xlb::state::VipKey> parse_vip(std::string_view text) {
  const std::string t(text);
  if (text.empty()) {
    return usage_error("empty VIP: want ADDRESS[:PORT]/PROTOCOL, e.g. 198.18.200.1:80/tcp");
  }
  if (has_space(text)) return usage_error("VIP '" + t + "': contains white space");
  auto key = xlb::state::VipKey::parse(text);
  if (!key) {
    std::string msg = key.error().message;
    if (text.find('/') == std::string_view::npos) {
      msg = "VIP '" + t + "': the protocol is missing: write " + t + "/tcp or " + t + "/udp";
    }
    return usage_error(std::move(msg));
  }
  if (text.front() == '[' && key->address.is_v4()) {
    return usage_error("VIP '" + t + "': only IPv6 addresses go in brackets");
  }
  if (auto why = not_unicast(key->address); !why.empty()) {
    return usage_error("VIP '" + t + "': " + key->address.to_string() + " is " + why +
                       ", which no client can reach through xlb");
  }
  return key;
}

Result<IpAddress> parse_backend_address(std::string_view text) {
  const std::string t(text);
  if (text.empty()) return usage_error("empty backend address");
  if (has_space(text)) return usage_error("backend '" + t + "': contains white space");
  if (text.find('[') != std::string_view::npos || text.find(']') != std::string_view::npos) {
    return usage_error("backend '" + t +
                       "': write the address without brackets and port, e.g. 2001:db8:3::11");
  }
  if (text.find('/') != std::string_view::npos) {
    return usage_error("backend '" + t + "': one address, not a prefix or a VIP");
  }
  auto colons = std::count(text.begin(), text.end(), ':');
  if (colons == 1 && text.find('.') != std::string_view::npos) {
    return usage_error("backend '" + t +
                       "': a backend has no port (xlb forwards to the VIP's port); write " +
                       t.substr(0, t.find(':')));
  }
  auto addr = IpAddress::parse(text);
  if (!addr) return usage_error("backend " + addr.error().message);
  if (auto why = not_unicast(*addr); !why.empty()) {
    return usage_error("backend '" + t + "' is " + why);
  }
  return addr;
}

Result<Endpoint> parse_client_endpoint(std::string_view text) {
  const std::string t(text);
  if (text.empty()) return usage_error("empty client endpoint: want ADDRESS:PORT");
  if (has_space(text)) return usage_error("client '" + t + "': contains white space");
  auto ep = Endpoint::parse(text);
  if (!ep) return usage_error("client " + ep.error().message);
  if (text.front() == '[' && ep->address.is_v4()) {
    return usage_error("client '" + t + "': only IPv6 addresses go in brackets");
  }
  if (auto why = not_unicast(ep->address); !why.empty()) {
    return usage_error("client '" + t + "': " + ep->address.to_string() + " is " + why);
  }
  return ep;
}

Result<uint64_t> parse_uint(std::string_view text, std::string_view what, uint64_t min,
                            uint64_t max) {
  const std::string range = "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return usage_error(std::string(what) + ": want an integer in " + range + ", got '" +
                       std::string(text) + "'");
  }
  return v;
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view what) {
  auto bad = [&] {
    return usage_error(std::string(what) + ": want a duration such as 1s, 500ms or 2m, got '" +
                       std::string(text) + "'");
  };
  size_t unit_at = 0;
  while (unit_at < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    unit_at++;
  }
  std::string_view number = text.substr(0, unit_at);
  std::string_view unit = text.substr(unit_at);
  if (number.empty() || std::count(number.begin(), number.end(), '.') > 1 ||
      number.front() == '.' || number.back() == '.') {
    return bad();
  }
  double scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "ms") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60000;
  } else {
    return bad();
  }
  double v = std::stod(std::string(number)) * scale;  // digits and one inner dot: cannot throw
  if (!std::isfinite(v) || v > 3600e3) {
    return usage_error(std::string(what) + ": at most 1 hour, got '" + std::string(text) + "'");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(v)));
}

Result<TcpTarget> parse_tcp_target(std::string_view text) {
  const std::string t(text);
  auto bad = [&](std::string why) {
    return usage_error("--tcp '" + t + "': " + why + " (want HOST:PORT, e.g. 127.0.0.1:9476)");
  };
  TcpTarget out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("unbalanced '[' or no port");
    }
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    if (text.find(':') != colon) return bad("write IPv6 addresses in brackets");
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty() || has_space(out.host)) return bad("no host");
  auto port = parse_uint(port_text, "port", 1, 65535);
  if (!port) return bad("port must be 1..65535");
  out.port = static_cast<int>(*port);
  return out;
}

}  // namespace xlbctl
