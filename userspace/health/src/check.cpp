// SPDX-License-Identifier: Apache-2.0
#include "xlb/health/check.h"

#include <algorithm>

namespace xlb::health {
namespace {

using state::CheckType;

bool needs_port(CheckType t) {
  return t == CheckType::kTcp || t == CheckType::kHttp || t == CheckType::kHttps ||
         t == CheckType::kUdpDns;
}

// Bytes that would end or split a request line or header: controls, space, DEL.
bool header_safe(std::string_view s, bool allow_space) {
  return std::all_of(s.begin(), s.end(), [&](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 ? u != 0x7f : (allow_space && u == 0x20);
  });
}

}  // namespace

Result<std::string> dns_wire_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string wire;
  while (!name.empty()) {
    auto dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    if (label.empty()) return Error::invalid("DNS name has an empty label ('..')");
    if (label.size() > 63)
      return Error::invalid("DNS label '" + std::string(label) + "' is over 63 bytes");
    wire.push_back(static_cast<char>(label.size()));
    wire.append(label);
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
    if (dot != std::string_view::npos && name.empty()) {
      return Error::invalid("DNS name has an empty label ('..')");
    }
  }
  wire.push_back('\0');
  if (wire.size() > 255) return Error::invalid("DNS name is over 255 bytes");
  return wire;
}

Status validate(const state::VipKey& vip, const state::HealthCheckSpec& spec) {
  if (spec.type == CheckType::kNone) return ok_status();
  if (spec.interval_ms < kMinIntervalMs) {
    return Error::invalid("interval " + std::to_string(spec.interval_ms) + " ms is below " +
                          std::to_string(kMinIntervalMs) + " ms");
  }
  if (spec.timeout_ms == 0 || spec.timeout_ms >= spec.interval_ms) {
    return Error::invalid("timeout " + std::to_string(spec.timeout_ms) +
                          " ms must be above 0 and below the interval (" +
                          std::to_string(spec.interval_ms) + " ms)");
  }
  if ((spec.fastinter_ms != 0 && spec.fastinter_ms < kMinIntervalMs) ||
      (spec.downinter_ms != 0 && spec.downinter_ms < kMinIntervalMs)) {
    return Error::invalid("fastinter and downinter must be at least " +
                          std::to_string(kMinIntervalMs) + " ms");
  }
  if (spec.rise == 0 || spec.fall == 0) return Error::invalid("rise and fall must be at least 1");
  if (needs_port(spec.type) && !spec.port && vip.port == 0) {
    return Error::invalid(std::string(state::to_string(spec.type)) +
                          " check of the port-less VIP " + vip.to_string() +
                          " needs a port (health.port)");
  }
  if (spec.port && *spec.port == 0) return Error::invalid("health port 0");
  switch (spec.type) {
    case CheckType::kHttp:
    case CheckType::kHttps:
      if (spec.http_path.empty() || spec.http_path.front() != '/' ||
          spec.http_path.size() > kMaxHttpPathLength || !header_safe(spec.http_path, false)) {
        return Error::invalid("http_path '" + spec.http_path +
                              "' must start with '/', hold no spaces or control characters and "
                              "be at most 1024 bytes");
      }
      if (spec.http_host.size() > kMaxHttpHostLength || !header_safe(spec.http_host, false)) {
        return Error::invalid("http_host '" + spec.http_host +
                              "' must hold no spaces or control characters (at most 255 bytes)");
      }
      if (spec.http_status_min < 100 || spec.http_status_max > 599 ||
          spec.http_status_min > spec.http_status_max) {
        return Error::invalid("http_status " + std::to_string(spec.http_status_min) + "-" +
                              std::to_string(spec.http_status_max) +
                              " is not a range within 100-599");
      }
      if (spec.http_body_contains.size() > kMaxBodyNeedleLength) {
        return Error::invalid("http_body_contains is over 1024 bytes");
      }
      break;
    case CheckType::kUdpDns:
      if (auto wire = dns_wire_name(spec.dns_query_name); !wire) {
        return Error::invalid("dns_query_name '" + spec.dns_query_name +
                              "': " + wire.error().message);
      }
      break;
    case CheckType::kExec:
      if (spec.exec_command.empty() || spec.exec_command.front().empty()) {
        return Error::invalid("an exec check needs exec_command (the program and its arguments)");
      }
      for (const auto& arg : spec.exec_command) {
        if (arg.find('\0') != std::string::npos) {
          return Error::invalid("exec_command holds a NUL byte");
        }
      }
      break;
    default:
      break;
  }
  return ok_status();
}

Result<CheckRequest> resolve(const state::VipKey& vip, const IpAddress& backend,
                             const state::HealthCheckSpec& spec) {
  XLB_TRY(validate(vip, spec));
  CheckRequest r;
  r.vip = vip;
  r.backend = backend;
  r.spec = spec;
  r.target.address = spec.address ? *spec.address : backend;
  r.target.port = spec.port ? *spec.port : vip.port;
  if (spec.type == CheckType::kHttp || spec.type == CheckType::kHttps) {
    if (!spec.http_host.empty()) {
      r.host_header = spec.http_host;
    } else {
      // The VIP as a client would have written it in the URL: the port only when it is not the
      // scheme's default.
      const uint16_t default_port = spec.type == CheckType::kHttps ? 443 : 80;
      const std::string a = vip.address.to_string();
      r.host_header = vip.address.is_v6() ? "[" + a + "]" : a;
      if (vip.port != 0 && vip.port != default_port) {
        r.host_header += ":" + std::to_string(vip.port);
      }
    }
  }
  return r;
}

}  // namespace xlb::health
