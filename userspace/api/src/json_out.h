// SPDX-License-Identifier: Apache-2.0
// State views to the JSON documents of docs/api.md. Field names here are the API's contract.
// Output objects keep their fields in the order written here (ordered_json): "vip" first,
// "backends" last, as a person reading curl output expects.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "xlb/abi.h"
#include "xlb/maglev/maglev.h"
#include "xlb/state/control_plane.h"

namespace xlb::api::detail {

using OutJson = nlohmann::ordered_json;

OutJson status_json(const state::StatusView& status);
OutJson backend_json(const state::BackendView& backend);
OutJson vip_json(const state::VipView& vip);
// A VIP as the desired state has it, before the data plane reports on it (no counters yet).
state::VipView view_of(const state::VipSpec& spec);

// {"xdp_pass": n, ...}: every counter of XLB_COUNTERS by its metric name.
OutJson counters_json(const xlb_counters& counters);
// Per VIP and per backend packets, bytes and each backend's share of its VIP's packets.
OutJson vip_stats_json(const state::VipView& vip);
OutJson plan_json(const state::VipKey& vip, const maglev::Plan& plan);
OutJson lookup_json(const state::VipKey& vip, const Endpoint& from, const state::LookupView& view);
OutJson health_json(const std::vector<state::VipView>& vips);
OutJson discovery_json(const state::DiscoveryView& discovery);
OutJson push_json(const state::PushView& push);

}  // namespace xlb::api::detail
