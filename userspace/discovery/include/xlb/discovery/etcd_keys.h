// SPDX-License-Identifier: Apache-2.0
// The etcd key layout (docs/discovery.md), one key per VIP's settings and per backend:
//
//   PREFIX/vips/198.18.200.1:80/tcp/spec                   {"name": "web", "hash": "src"}
//   PREFIX/vips/198.18.200.1:80/tcp/backends/198.18.3.11   {"weight": 2, "state": "active",
//                                                            "metadata": {"zone": "a"}}
//   PREFIX/vips/[2001:db8:200::1]:443/tcp/backends/2001:db8:3::11
//
// The VIP is written in its text form (the '/' before the protocol included) and the backend as
// a bare address, both canonical (what VipKey::to_string / IpAddress::to_string print), so one
// VIP or backend has exactly one key. A value may repeat its "address" (or "vip" for a spec) but
// must then agree with its key. Every key under PREFIX/ that fits no part of the layout is
// rejected (and counted), so a typo does not go unnoticed.
#pragma once

#include <string>
#include <string_view>

#include "xlb/core/result.h"
#include "xlb/discovery/event.h"

namespace xlb::discovery {

std::string etcd_vip_prefix(const std::string& prefix);  // PREFIX/vips/
std::string etcd_spec_key(const std::string& prefix, const state::VipKey& vip);
std::string etcd_backend_key(const std::string& prefix, const state::VipKey& vip,
                             const IpAddress& backend);

struct EtcdKey {
  bool is_spec = false;  // else a backend key
  state::VipKey vip;
  IpAddress backend;
};

// What a key under PREFIX/ names; kBadKey when it fits no part of the layout.
Result<EtcdKey> parse_etcd_key(const std::string& prefix, std::string_view key);

// The event a put of `value` at `key` stands for: upsert_vip (settings) or upsert_backend.
Result<Event> parse_etcd_put(const std::string& prefix, std::string_view key,
                             std::string_view value);

}  // namespace xlb::discovery
