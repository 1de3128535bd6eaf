// SPDX-License-Identifier: Apache-2.0
// Request bodies to state types. Everything is checked before any ControlPlane call: bad JSON,
// a wrong type, an unknown field or a bad value gives an Error::invalid naming the field
// ("backends[1].weight: want an unsigned 32-bit integer"). A field set to null counts as
// absent.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "xlb/core/address.h"
#include "xlb/core/result.h"
#include "xlb/state/types.h"

namespace xlb::api::detail {

using nlohmann::json;

// The body as JSON; it must be an object.
Result<json> parse_body(const std::string& body);

// "where.key", or "key" at the top level.
std::string field_name(std::string_view where, std::string_view key);

// `value` must be an object whose keys are all in `allowed`.
Status check_object(const json& value, std::string_view where,
                    std::initializer_list<std::string_view> allowed);

Result<std::optional<std::string>> opt_string(const json& obj, std::string_view key,
                                              std::string_view where = "");
Result<std::optional<bool>> opt_bool(const json& obj, std::string_view key,
                                     std::string_view where = "");
Result<std::optional<uint32_t>> opt_u32(const json& obj, std::string_view key,
                                        std::string_view where = "");
Result<std::string> req_string(const json& obj, std::string_view key, std::string_view where = "");

// Text to values; `field` names where the text came from ("vip", "path", "query 'from'").
Result<state::VipKey> parse_vip_text(std::string_view text, std::string_view field);
Result<IpAddress> parse_address_text(std::string_view text, std::string_view field);

// {address, weight?, state?}
Result<state::BackendSpec> parse_backend(const json& value, std::string_view where);

// {vip, name?, no_lru?, hash?, gue?, icmp_too_big?, no_rate_guard?, ring_size?, backends?};
// backends come out sorted by address, as VipSpec wants them.
Result<state::VipSpec> parse_vip(const json& value);

// {weight?, state?} with at least one of them.
struct BackendPatch {
  std::optional<uint32_t> weight;
  std::optional<state::BackendState> state;
};
Result<BackendPatch> parse_backend_patch(const json& value);

// {vip, remove?: address, add?: {address, weight?, state?}, set?: {address, weight?, state?}}
struct PlanRequest {
  state::VipKey vip;
  std::optional<IpAddress> remove;
  std::optional<state::BackendSpec> add;
  std::optional<IpAddress> set_address;
  BackendPatch set;
};
Result<PlanRequest> parse_plan_request(const json& value);

}  // namespace xlb::api::detail
