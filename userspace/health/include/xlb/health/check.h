// SPDX-License-Identifier: Apache-2.0
// One check, ready to run: a VIP's HealthCheckSpec applied to one of its backends, and the
// rules a spec must follow to be runnable at all.
#pragma once

#include <string>
#include <string_view>

#include "xlb/core/address.h"
#include "xlb/core/result.h"
#include "xlb/health/clock.h"
#include "xlb/state/types.h"

namespace xlb::health {

// Bounds the checkers rely on. The config parser enforces the same numbers with located errors
// (state/src/config.cpp); validate() below is the check for specs from anywhere else (the API).
inline constexpr uint32_t kMinIntervalMs = 10;
inline constexpr size_t kMaxHttpPathLength = 1024;
inline constexpr size_t kMaxHttpHostLength = 255;
inline constexpr size_t kMaxBodyNeedleLength = 1024;
// An http(s) check reads at most this much of a response: enough for a status page, and a
// backend streaming a large body cannot make a check expensive.
inline constexpr size_t kMaxHttpResponseBytes = 64 * 1024;

struct CheckRequest {
  state::VipKey vip;
  IpAddress backend;
  state::HealthCheckSpec spec;
  // Where the check goes: spec.address or the backend, spec.port or the VIP's port. Port 0
  // only for an exec check of a port-less VIP without spec.port (XLB_PORT=0 then).
  Endpoint target;
  std::string host_header;  // http / https: spec.http_host, or the VIP as clients write it

  friend bool operator==(const CheckRequest&, const CheckRequest&) = default;
};

// What one check found.
struct CheckResult {
  bool ok = false;
  std::string detail;  // "HTTP 200", "connection refused", "timeout after 1000 ms (connecting)"
  Duration took{};
};

// Why `spec` cannot check backends of `vip` (timeout not below the interval, no port to check,
// an exec check without a command, a path that would break the request line, ...), or ok.
Status validate(const state::VipKey& vip, const state::HealthCheckSpec& spec);

// The check of `backend` as a member of `vip`; the errors of validate().
Result<CheckRequest> resolve(const state::VipKey& vip, const IpAddress& backend,
                             const state::HealthCheckSpec& spec);

// A DNS name in wire format (length-prefixed labels, root label last). "." and "" are the root;
// a trailing dot is optional. Errors: empty labels, labels over 63 bytes, names over 255.
Result<std::string> dns_wire_name(std::string_view name);

}  // namespace xlb::health
