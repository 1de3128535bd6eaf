// SPDX-License-Identifier: Apache-2.0
// What xlbctl checks of its arguments before anything is sent to xlbd: VIPs, backend and client
// addresses, numbers, durations. The grammar is the daemon's own (state::VipKey::parse,
// IpAddress::parse, Endpoint::parse); on top of it xlbctl refuses what parses but can never
// serve traffic (unspecified, loopback, multicast, broadcast addresses; an IPv4 address in
// brackets) and explains the common slips (a port on a backend, a missing protocol).
//
// Every function returns a usage error (exit status 2) whose message names the bad text.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "xlb/core/address.h"
#include "xlb/core/result.h"
#include "xlb/state/types.h"

namespace xlbctl {

// "198.18.200.1:80/tcp", "[2001:db8:200::1]:443/udp", "198.18.200.2/tcp" (port-less).
xlb::Result<xlb::state::VipKey> parse_vip(std::string_view text);

// A backend is a bare address: "198.18.3.11", "2001:db8:3::11" (no brackets, no port: xlb
// forwards to the VIP's destination port).
xlb::Result<xlb::IpAddress> parse_backend_address(std::string_view text);

// A client endpoint for lookups: "198.18.1.2:40000", "[2001:db8:1::2]:40000".
xlb::Result<xlb::Endpoint> parse_client_endpoint(std::string_view text);

// A decimal integer in [min, max]; `what` names it in the message ("--weight").
xlb::Result<uint64_t> parse_uint(std::string_view text, std::string_view what, uint64_t min,
                                 uint64_t max);

// "1s", "500ms", "1.5s", "2m"; a bare number is seconds. At most one hour.
xlb::Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view what);

// --tcp HOST:PORT: "127.0.0.1:9476", "[::1]:9476", "localhost:9476".
struct TcpTarget {
  std::string host;  // without brackets
  int port = 0;
};
xlb::Result<TcpTarget> parse_tcp_target(std::string_view text);

}  // namespace xlbctl
