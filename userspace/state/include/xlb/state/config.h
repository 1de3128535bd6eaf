// SPDX-License-Identifier: Apache-2.0
// The xlbd configuration file: one YAML document (schema and rules in docs/config.md) parsed
// into a Config. Parsing is all-or-nothing: the first problem found is returned as
//   FILE:LINE:COL: field.path: what is wrong (what to do)
// with LINE and COL 1-based, and no partial Config ever leaves this module, so a reload with a
// broken file keeps the running configuration. Nothing here touches the kernel or the network:
// `xlbd --check-config FILE` is load_config() alone.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "xlb/abi.h"
#include "xlb/core/result.h"
#include "xlb/state/types.h"

namespace xlb::state {

// Reads and parses the file at `path`. A file that cannot be read gives an errno Error.
Result<Config> load_config(const std::string& path);

// Parses YAML text; `source_name` (a path, or e.g. "<api>") starts every error message.
Result<Config> parse_config(std::string_view yaml_text, const std::string& source_name);

// "02:00:00:00:02:fe": six two-digit hex octets separated by ':' (either case).
Result<std::array<uint8_t, 6>> parse_mac(std::string_view text);
std::string format_mac(const std::array<uint8_t, 6>& mac);  // lower case, ':'-separated

// A duration as the file writes it: a non-negative integer and one unit, "500ms", "30s", "5m",
// "1h". No bare numbers: a unit-less "30" is the classic seconds-or-milliseconds mistake.
Result<uint64_t> parse_duration_ms(std::string_view text);

// Ranges the parser enforces beyond the fields' types; docs/config.md explains each one.
namespace config_bounds {
// max_packet_size counts the Ethernet frame: 68 is the smallest MTU IPv4 allows (RFC 791),
// 9216 the largest jumbo frame common NICs and switches accept.
inline constexpr uint32_t kMinPacketSize = 68;
inline constexpr uint32_t kMaxPacketSize = 9216;
// udp_idle_timeout: shorter re-places nearly every packet (no_lru says that directly);
// longer keeps dead entries for a day.
inline constexpr uint64_t kMinUdpIdleMs = 100;
inline constexpr uint64_t kMaxUdpIdleMs = 24ULL * 3600 * 1000;
// Every VIP owns a ring of at least XLB_DEFAULT_RING_SIZE slots (256 KiB of locked kernel
// memory): 4096 VIPs are already 1 GiB.
inline constexpr uint32_t kMaxVips = 4096;
// VIP x backend memberships: per-CPU counters of 16 bytes each (128 MiB at 65536 x 128 CPUs).
inline constexpr uint32_t kMaxBackends = 65536;
// One VIP's backends: above this even the largest ring gives a backend < 100 slots, i.e.
// shares coarser than 1 % (maglev::kMaxRingSize / maglev::kSlotsPerBackend).
inline constexpr uint32_t kMaxBackendsPerVip = XLB_MAX_RING_SIZE / 100;
// Connection-table entries per CPU and address family (LRU maps are preallocated, ~100 bytes
// an entry): 2^24 is 1.6 GiB per CPU and family.
inline constexpr uint32_t kMinFlowsPerCpu = 1024;
inline constexpr uint32_t kMaxFlowsPerCpu = 1U << 24;
inline constexpr uint32_t kMaxWeight = 65535;
// Outer-source prefixes: shorter ones are not a range anybody reserves for a load balancer.
inline constexpr uint8_t kMinEncapPrefixV4 = 8;
inline constexpr uint8_t kMinEncapPrefixV6 = 32;
}  // namespace config_bounds

}  // namespace xlb::state
