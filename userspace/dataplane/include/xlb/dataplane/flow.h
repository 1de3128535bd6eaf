// SPDX-License-Identifier: Apache-2.0
// What the balancer program picks for a flow, computed in userspace with the very hash the
// program uses (xlb/flow_hash.h). Pure functions; the Balancer adds the map reads.
#pragma once

#include <cstdint>
#include <span>

#include "xlb/abi.h"
#include "xlb/core/address.h"

namespace xlb::dataplane {

// The connection-table key of a client's flow towards a VIP (ports in host order here).
xlb_flow_key make_flow_key(const IpAddress& client, uint16_t client_port, const IpAddress& vip,
                           uint16_t vip_port, uint8_t proto);

// The VIP key of a service (port 0 = port-less).
xlb_vip_key make_vip_key(const IpAddress& vip, uint16_t port, uint8_t proto);

// Slot of a flow in a VIP's ring.
uint32_t ring_slot(const xlb_flow_key& flow, const xlb_vip_meta& vip, uint32_t seed);

// The backend index the ring gives a flow: what the program does without a table entry.
// Returns XLB_MAX_BACKENDS-or-more values as stored (the caller validates).
uint32_t ring_backend(const xlb_flow_key& flow, const xlb_vip_meta& vip, uint32_t seed,
                      std::span<const uint32_t> ring);

}  // namespace xlb::dataplane
