// SPDX-License-Identifier: Apache-2.0
// Shared fixture of the balancer's golden-packet tests: a loaded program with a fake clock, a
// fixed configuration, helpers to add VIPs/backends/rings, to run a frame, to read counter
// deltas, and to build the golden encapsulated frame the program must emit.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "packet.h"
#include "xlb/abi.h"
#include "xlb/core/address.h"
#include "xlb/dataplane/balancer.h"
#include "xlb/dataplane/test_run.h"

namespace xlb::test {

// The LB's own NIC, the router it sends to, and the client-side hop frames arrive from.
inline const Mac kLbMac = mac("02:00:00:00:02:01");
inline const Mac kRouterMac = mac("02:00:00:00:02:fe");
inline const Mac kPeerMac = mac("02:00:00:00:01:fe");

inline constexpr uint32_t kSeed = 0x5eed1234;
inline constexpr uint16_t kGuePort = 6080;

// An Ethernet header as frames arrive at the LB.
Eth eth_in();

// Flow key (client -> VIP) of a client frame, read with the packet parser.
xlb_flow_key flow_of(const Bytes& frame);

class BalancerTest : public ::testing::Test {
 protected:
  void SetUp() override;

  xlb_config default_test_config() const;
  void set_config(const xlb_config& cfg);

  // A VIP whose ring has `ring` as its slots (ring_size = ring.size()).
  void add_vip(const char* addr, uint16_t port, uint8_t proto, uint32_t index, uint32_t flags,
               const std::vector<uint32_t>& ring);
  // A VIP with a 13-slot ring that sends everything to one backend.
  void add_vip_one_backend(const char* addr, uint16_t port, uint8_t proto, uint32_t index,
                           uint32_t flags, uint32_t backend);
  void add_backend(uint32_t index, const char* addr);

  dataplane::TestRunResult run(const Bytes& frame);
  xlb_counters counters();
  xlb_traffic backend_traffic(uint32_t index);
  xlb_traffic vip_traffic(uint32_t index);

  // Golden frame: `client` (a frame as it arrived) encapsulated towards `backend`.
  Bytes encapsulated(const Bytes& client, const char* backend, bool gue = false) const;

  std::unique_ptr<dataplane::Balancer> lb_;
  xlb_config cfg_{};
};

// Counter deltas between two snapshots.
inline uint64_t delta(const xlb_counters& before, const xlb_counters& after, xlb_counter c) {
  return after.c[c] - before.c[c];
}

// Asserts that only the listed counters moved from `before` to `after`, each by the given
// amount: the balancer's counters...
void expect_counter_deltas(const xlb_counters& before, const xlb_counters& after,
                           std::initializer_list<std::pair<xlb_counter, uint64_t>> moved);
// ...and for the decap program's.
void expect_decap_deltas(const xlb_decap_counters& before, const xlb_decap_counters& after,
                         std::initializer_list<std::pair<xlb_decap_counter, uint64_t>> moved);

}  // namespace xlb::test
