// SPDX-License-Identifier: Apache-2.0
#include "xlb/dataplane/flow.h"

#include <arpa/inet.h>

#include "xlb/flow_hash.h"

namespace xlb::dataplane {

xlb_flow_key make_flow_key(const IpAddress& client, uint16_t client_port, const IpAddress& vip,
                           uint16_t vip_port, uint8_t proto) {
  xlb_flow_key key{};
  key.src = client.abi();
  key.dst = vip.abi();
  key.sport = htons(client_port);
  key.dport = htons(vip_port);
  key.proto = proto;
  key.family = vip.abi_family();
  return key;
}

xlb_vip_key make_vip_key(const IpAddress& vip, uint16_t port, uint8_t proto) {
  xlb_vip_key key{};
  key.addr = vip.abi();
  key.port = htons(port);
  key.proto = proto;
  key.family = vip.abi_family();
  return key;
}

uint32_t ring_slot(const xlb_flow_key& flow, const xlb_vip_meta& vip, uint32_t seed) {
  return xlb_ring_slot(xlb_flow_hash(&flow, vip.flags, seed), vip.ring_size);
}

uint32_t ring_backend(const xlb_flow_key& flow, const xlb_vip_meta& vip, uint32_t seed,
                      std::span<const uint32_t> ring) {
  uint32_t slot = ring_slot(flow, vip, seed);
  return slot < ring.size() ? ring[slot] : UINT32_MAX;
}

}  // namespace xlb::dataplane
