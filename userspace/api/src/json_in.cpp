// SPDX-License-Identifier: Apache-2.0
#include "json_in.h"

#include <algorithm>
#include <limits>

namespace xlb::api::detail {
namespace {

const char* type_name(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number_float()) return "a fractional number";
  return v.type_name();
}

Error wrong_type(std::string_view where, std::string_view key, std::string_view want,
                 const json& got) {
  return Error::invalid(field_name(where, key) + ": want " + std::string(want) + ", got " +
                        type_name(got));
}

// The field, or nullptr when absent or null.
const json* member(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

Result<json> parse_body(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Error::invalid("body: empty; want a JSON object");
  }
  json value = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return Error::invalid("body: not valid JSON");
  if (!value.is_object()) {
    return Error::invalid(std::string("body: want a JSON object, got ") + type_name(value));
  }
  return value;
}

std::string field_name(std::string_view where, std::string_view key) {
  std::string name(where);
  if (!name.empty()) name += '.';
  name += key;
  return "field '" + name + "'";
}

Status check_object(const json& value, std::string_view where,
                    std::initializer_list<std::string_view> allowed) {
  if (!value.is_object()) {
    std::string name = where.empty() ? "body" : "field '" + std::string(where) + "'";
    return Error::invalid(name + ": want an object, got " + type_name(value));
  }
  for (const auto& item : value.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      std::string accepted;
      for (auto a : allowed) accepted += (accepted.empty() ? "" : ", ") + std::string(a);
      return Error::invalid("unknown " + field_name(where, item.key()) + " (accepted: " + accepted +
                            ")");
    }
  }
  return {};
}

Result<std::optional<std::string>> opt_string(const json& obj, std::string_view key,
                                              std::string_view where) {
  const json* v = member(obj, key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return wrong_type(where, key, "a string", *v);
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::optional<bool>> opt_bool(const json& obj, std::string_view key,
                                     std::string_view where) {
  const json* v = member(obj, key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) return wrong_type(where, key, "true or false", *v);
  return std::optional<bool>(v->get<bool>());
}

Result<std::optional<uint32_t>> opt_u32(const json& obj, std::string_view key,
                                        std::string_view where) {
  const json* v = member(obj, key);
  if (v == nullptr) return std::optional<uint32_t>();
  constexpr const char* kWant = "an integer in [0, 4294967295]";
  if (v->is_number_unsigned()) {
    uint64_t n = v->get<uint64_t>();
    if (n > std::numeric_limits<uint32_t>::max()) {
      return Error::invalid(field_name(where, key) + ": " + std::to_string(n) +
                            " is out of range; want " + kWant);
    }
    return std::optional<uint32_t>(static_cast<uint32_t>(n));
  }
  if (v->is_number_integer()) {  // signed in nlohmann terms: negative here
    return Error::invalid(field_name(where, key) + ": " + v->dump() + " is out of range; want " +
                          kWant);
  }
  return wrong_type(where, key, kWant, *v);
}

Result<std::string> req_string(const json& obj, std::string_view key, std::string_view where) {
  auto v = opt_string(obj, key, where);
  if (!v) return v.error();
  if (!*v) return Error::invalid(field_name(where, key) + ": required");
  return std::move(**v);
}

Result<state::VipKey> parse_vip_text(std::string_view text, std::string_view field) {
  auto key = state::VipKey::parse(text);
  if (!key) return Error::invalid(std::string(field) + ": " + key.error().message);
  return *key;
}

Result<IpAddress> parse_address_text(std::string_view text, std::string_view field) {
  auto addr = IpAddress::parse(text);
  if (!addr) {
    return Error::invalid(std::string(field) + ": " + addr.error().message +
                          " (want a bare address such as 198.18.3.11 or 2001:db8:3::11)");
  }
  return *addr;
}

Result<state::BackendSpec> parse_backend(const json& value, std::string_view where) {
  XLB_TRY(check_object(value, where, {"address", "weight", "state"}));
  auto address = req_string(value, "address", where);
  if (!address) return address.error();
  state::BackendSpec spec;
  auto addr = parse_address_text(*address, field_name(where, "address"));
  if (!addr) return addr.error();
  spec.address = *addr;
  auto weight = opt_u32(value, "weight", where);
  if (!weight) return weight.error();
  if (*weight) spec.weight = **weight;
  auto st = opt_string(value, "state", where);
  if (!st) return st.error();
  if (*st) {
    auto parsed = state::parse_backend_state(**st);
    if (!parsed) return Error::invalid(field_name(where, "state") + ": " + parsed.error().message);
    spec.state = *parsed;
  }
  return spec;
}

Result<state::VipSpec> parse_vip(const json& value) {
  XLB_TRY(check_object(value, "",
                       {"vip", "name", "no_lru", "hash", "gue", "icmp_too_big", "no_rate_guard",
                        "ring_size", "backends"}));
  state::VipSpec spec;
  auto text = req_string(value, "vip");
  if (!text) return text.error();
  auto key = parse_vip_text(*text, field_name("", "vip"));
  if (!key) return key.error();
  spec.key = *key;

  auto name = opt_string(value, "name");
  if (!name) return name.error();
  if (*name) spec.name = **name;

  for (const auto& flag : state::kVipFlagFields) {
    auto v = opt_bool(value, flag.name);
    if (!v) return v.error();
    if (*v) spec.*flag.member = **v;
  }

  auto hash = opt_string(value, "hash");
  if (!hash) return hash.error();
  if (*hash) {
    auto mode = state::parse_hash_mode(**hash);
    if (!mode) return Error::invalid(field_name("", "hash") + ": " + mode.error().message);
    spec.hash = *mode;
  }

  auto ring = opt_u32(value, "ring_size");
  if (!ring) return ring.error();
  spec.ring_size = *ring;

  if (const json* backends = member(value, "backends")) {
    if (!backends->is_array()) return wrong_type("", "backends", "an array", *backends);
    for (size_t i = 0; i < backends->size(); ++i) {
      auto b = parse_backend((*backends)[i], "backends[" + std::to_string(i) + "]");
      if (!b) return b.error();
      spec.backends.push_back(*b);
    }
    std::sort(spec.backends.begin(), spec.backends.end(),
              [](const auto& a, const auto& b) { return a.address < b.address; });
  }
  return spec;
}

Result<BackendPatch> parse_backend_patch(const json& value) {
  XLB_TRY(check_object(value, "", {"weight", "state"}));
  BackendPatch patch;
  auto weight = opt_u32(value, "weight");
  if (!weight) return weight.error();
  patch.weight = *weight;
  auto st = opt_string(value, "state");
  if (!st) return st.error();
  if (*st) {
    auto parsed = state::parse_backend_state(**st);
    if (!parsed) return Error::invalid(field_name("", "state") + ": " + parsed.error().message);
    patch.state = *parsed;
  }
  if (!patch.weight && !patch.state) {
    return Error::invalid("nothing to change: give 'weight' and/or 'state'");
  }
  return patch;
}

Result<PlanRequest> parse_plan_request(const json& value) {
  XLB_TRY(check_object(value, "", {"vip", "remove", "add", "set"}));
  PlanRequest req;
  auto text = req_string(value, "vip");
  if (!text) return text.error();
  auto key = parse_vip_text(*text, field_name("", "vip"));
  if (!key) return key.error();
  req.vip = *key;

  auto remove = opt_string(value, "remove");
  if (!remove) return remove.error();
  if (*remove) {
    auto addr = parse_address_text(**remove, field_name("", "remove"));
    if (!addr) return addr.error();
    req.remove = *addr;
  }
  if (const json* add = member(value, "add")) {
    auto b = parse_backend(*add, "add");
    if (!b) return b.error();
    req.add = *b;
  }
  if (const json* set = member(value, "set")) {
    XLB_TRY(check_object(*set, "set", {"address", "weight", "state"}));
    auto address = req_string(*set, "address", "set");
    if (!address) return address.error();
    auto addr = parse_address_text(*address, field_name("set", "address"));
    if (!addr) return addr.error();
    req.set_address = *addr;
    auto weight = opt_u32(*set, "weight", "set");
    if (!weight) return weight.error();
    req.set.weight = *weight;
    auto st = opt_string(*set, "state", "set");
    if (!st) return st.error();
    if (*st) {
      auto parsed = state::parse_backend_state(**st);
      if (!parsed)
        return Error::invalid(field_name("set", "state") + ": " + parsed.error().message);
      req.set.state = *parsed;
    }
    if (!req.set.weight && !req.set.state) {
      return Error::invalid("field 'set': give 'weight' and/or 'state' to change");
    }
  }
  if (!req.remove && !req.add && !req.set_address) {
    return Error::invalid("nothing to plan: give 'remove', 'add' or 'set'");
  }
  return req;
}

}  // namespace xlb::api::detail
