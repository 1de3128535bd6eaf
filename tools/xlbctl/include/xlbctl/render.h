// SPDX-License-Identifier: Apache-2.0
// The tables xlbctl prints without -j, made from the JSON the daemon answers (docs/api.md) and
// xlbctl's own stats document (stats.h). Missing or mistyped fields print as "-" rather than
// failing: an older or newer xlbd must still give a readable table.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace xlbctl {

using Json = nlohmann::json;

// GET /v1/status, with the address of the API and xlbctl's own version.
std::string render_status(const Json& status, std::string_view api, std::string_view version);
// GET /v1/vips: one line per VIP.
std::string render_vip_list(const Json& vips);
// One VIP (GET /v1/vips/{vip}): its settings, then its backends.
std::string render_vip(const Json& vip);
// A list of backends (GET /v1/vips/{vip}/backends), or one backend as a one-row table.
std::string render_backends(const Json& backends);
// GET /v1/health; `now_unix` (seconds) turns each backend's "since" into an age.
std::string render_health(const Json& health, double now_unix);
// POST /v1/plan.
std::string render_plan(const Json& plan);
// GET /v1/lookup.
std::string render_lookup(const Json& lookup);
// xlbctl's stats document (stats_with_rates); `bar_width` 0 leaves out the rate bars.
std::string render_stats(const Json& stats, size_t bar_width);

// Safe field access: the value, or `fallback` when the field is missing or of another type.
std::string str_field(const Json& j, std::string_view key, std::string_view fallback = "");
uint64_t uint_field(const Json& j, std::string_view key, uint64_t fallback = 0);
double num_field(const Json& j, std::string_view key, double fallback = 0);
bool bool_field(const Json& j, std::string_view key, bool fallback = false);

}  // namespace xlbctl
