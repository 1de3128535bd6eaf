// SPDX-License-Identifier: Apache-2.0
#include "fields.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <vector>

#include "xlb/core/spelling.h"
#include "xlb/maglev/maglev.h"
#include "xlb/state/config.h"

namespace xlb::discovery::detail {
namespace {

// 1-based line and column of byte `offset` of `text`.
std::pair<int, int> line_col(std::string_view text, size_t offset) {
  int line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); i++) {
    if (text[i] == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  return {line, col};
}

}  // namespace

std::string join_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string index_path(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

std::string type_name(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number_float()) return "a fractional number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "an object";
  return "null";
}

Result<json> parse_json_text(std::string_view text, const Origin& origin) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return rejection(Reject::kEmpty, origin.at("") + "empty (want a JSON object)");
  }
  // Keys seen per open object, to find duplicates the parser would merge silently.
  std::vector<std::set<std::string>> open;
  std::string duplicate;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open.emplace_back();
        break;
      case json::parse_event_t::key:
        if (!open.empty() && !open.back().insert(parsed.get<std::string>()).second &&
            duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      case json::parse_event_t::object_end:
        if (!open.empty()) open.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  json value;
  // nlohmann reports the position only through its exception; it is caught right here.
  try {
    value = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
  } catch (const json::parse_error& e) {
    auto [line, col] = line_col(text, e.byte > 0 ? e.byte - 1 : 0);
    std::string what = e.what();
    if (auto p = what.find("column "); p != std::string::npos) {
      if (auto colon = what.find(": ", p); colon != std::string::npos)
        what = what.substr(colon + 2);
    }
    return rejection(Reject::kSyntax, origin.name + ":" + std::to_string(line) + ":" +
                                          std::to_string(col) + ": not valid JSON: " + what);
  } catch (const std::exception& e) {
    return rejection(Reject::kSyntax, origin.at("") + "not valid JSON: " + e.what());
  }
  if (!duplicate.empty()) {
    return rejection(Reject::kDuplicateField,
                     origin.at("") + "field '" + duplicate + "' given twice (keep one)");
  }
  return value;
}

std::vector<std::string_view> vip_setting_keys(std::initializer_list<std::string_view> more) {
  std::vector<std::string_view> keys(more);
  for (auto k : {"name", "no_lru", "hash", "gue", "icmp_too_big", "no_rate_guard", "ring_size",
                 "all_down"}) {
    keys.emplace_back(k);
  }
  return keys;
}

Status ObjectReader::check(const std::vector<std::string_view>& allowed,
                           std::string_view example) const {
  if (!obj_.is_object()) {
    return rejection(Reject::kNotObject, origin_.at(path_) + "want an object, got " +
                                             type_name(obj_) + " (" + std::string(example) + ")");
  }
  for (const auto& item : obj_.items()) {
    const std::string& key = item.key();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string accepted;
    for (auto a : allowed) accepted += (accepted.empty() ? "" : ", ") + std::string(a);
    return fail(Reject::kUnknownField, key,
                "unknown field (" + did_you_mean(key, allowed) + "accepted: " + accepted + ")");
  }
  return ok_status();
}

const json* ObjectReader::get(std::string_view key) const {
  if (!obj_.is_object()) return nullptr;
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::optional<std::string>> ObjectReader::string(std::string_view key) const {
  const json* v = get(key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) {
    return fail(Reject::kWrongType, key, "want a string, got " + type_name(*v));
  }
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::optional<bool>> ObjectReader::boolean(std::string_view key) const {
  const json* v = get(key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) {
    return fail(Reject::kWrongType, key, "want true or false, got " + type_name(*v));
  }
  return std::optional<bool>(v->get<bool>());
}

Result<std::optional<uint64_t>> ObjectReader::integer(std::string_view key, uint64_t min,
                                                      uint64_t max, Reject range_reason,
                                                      std::string_view why) const {
  const json* v = get(key);
  if (v == nullptr) return std::optional<uint64_t>();
  const std::string range = std::to_string(min) + ".." + std::to_string(max);
  const std::string because = why.empty() ? "" : " (" + std::string(why) + ")";
  if (v->is_number_unsigned()) {
    uint64_t n = v->get<uint64_t>();
    if (n < min || n > max) {
      return fail(range_reason, key, std::to_string(n) + " is out of range " + range + because);
    }
    return std::optional<uint64_t>(n);
  }
  if (v->is_number_integer()) {  // negative: nlohmann keeps non-negative ones unsigned
    return fail(range_reason, key, v->dump() + " is out of range " + range + because);
  }
  return fail(Reject::kWrongType, key, "want an integer " + range + ", got " + type_name(*v));
}

Result<state::VipKey> read_vip_text(const std::string& text, const Origin& origin,
                                    const std::string& path) {
  auto key = state::VipKey::parse(text);
  if (!key) {
    return rejection(Reject::kBadVip, origin.at(path) + key.error().message +
                                          " (e.g. 198.18.200.1:80/tcp, 198.18.200.2/udp or "
                                          "[2001:db8:200::1]:443/tcp)");
  }
  if (auto why = state::unusable_address(key->address, "a VIP")) {
    return rejection(Reject::kVipNotUnicast, origin.at(path) + *why);
  }
  return *key;
}

Result<IpAddress> read_backend_address(const std::string& text, const Origin& origin,
                                       const std::string& path) {
  auto address = IpAddress::parse(text);
  if (!address) {
    // The data plane keeps the VIP's destination port (DSR): a backend is an address alone.
    if (Endpoint::parse(text)) {
      return rejection(Reject::kAddressWithPort,
                       origin.at(path) + "'" + text +
                           "' has a port; a backend is a bare address (packets keep the VIP's "
                           "destination port)");
    }
    std::string hint = text.find('/') != std::string::npos
                           ? " (a backend is one address, not a prefix)"
                           : " (write a bare address, e.g. 198.18.3.11 or 2001:db8:3::11)";
    return rejection(Reject::kBadAddress, origin.at(path) + address.error().message + hint);
  }
  if (auto why = state::unusable_address(*address, "a backend")) {
    return rejection(Reject::kBackendNotUnicast, origin.at(path) + *why);
  }
  return *address;
}

Result<BackendFields> read_backend(const json& v, const Origin& origin, const std::string& path,
                                   bool address_required) {
  ObjectReader r(v, origin, path);
  XLB_TRY(r.check({"address", "weight", "state", "metadata"},
                  "e.g. {\"address\": \"198.18.3.11\", \"weight\": 1, \"state\": \"active\"}"));
  BackendFields out;
  auto address = r.string("address");
  if (!address) return address.error();
  if (*address) {
    auto a = read_backend_address(**address, origin, r.path("address"));
    if (!a) return a.error();
    out.spec.address = *a;
    out.has_address = true;
  } else if (address_required) {
    return r.fail(Reject::kMissingAddress, "address",
                  "required (the backend's bare address, e.g. 198.18.3.11)");
  }
  auto weight = r.integer("weight", 0, state::config_bounds::kMaxWeight, Reject::kBadWeight,
                          "a relative share; 0 takes no new flows");
  if (!weight) return weight.error();
  if (*weight) out.spec.weight = static_cast<uint32_t>(**weight);
  auto st = r.string("state");
  if (!st) return st.error();
  if (*st) {
    auto parsed = state::parse_backend_state(**st);
    if (!parsed) {
      return r.fail(Reject::kBadState, "state",
                    "'" + **st + "' is not a state (active, draining or disabled)");
    }
    out.spec.state = *parsed;
  }
  if (const json* m = r.get("metadata")) {
    if (!m->is_object()) {
      return r.fail(Reject::kBadMetadata, "metadata",
                    "want an object of the registry's own fields, got " + type_name(*m));
    }
    out.metadata = m->dump();
    if (out.metadata.size() > kMaxMetadataBytes) {
      return r.fail(Reject::kTooLarge, "metadata",
                    std::to_string(out.metadata.size()) + " bytes, the limit is " +
                        std::to_string(kMaxMetadataBytes) + " (keep metadata to a few labels)");
    }
  }
  return out;
}

Status read_vip_settings(const ObjectReader& r, state::VipSpec& spec) {
  auto name = r.string("name");
  if (!name) return name.error();
  if (*name) {
    // Names become metric labels and CLI arguments (the config file's rule).
    const std::string& n = **name;
    const bool ok =
        !n.empty() && n.size() <= 63 && std::isalnum(static_cast<unsigned char>(n[0])) &&
        std::all_of(n.begin(), n.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
        });
    if (!ok) {
      return r.fail(Reject::kBadName, "name",
                    "'" + n +
                        "' is not a valid name (1..63 letters, digits, '-', '_' or '.', "
                        "starting with a letter or digit)");
    }
    spec.name = n;
  }
  for (const auto& flag : state::kVipFlagFields) {
    auto v = r.boolean(flag.name);
    if (!v) return v.error();
    if (*v) spec.*flag.member = **v;
  }
  auto hash = r.string("hash");
  if (!hash) return hash.error();
  if (*hash) {
    auto mode = state::parse_hash_mode(**hash);
    if (!mode) {
      return r.fail(Reject::kBadHash, "hash",
                    "'" + **hash + "' is not a hash mode (5tuple, src or no-sport)");
    }
    spec.hash = *mode;
  }
  auto ring = r.integer("ring_size", maglev::kMinRingSize, maglev::kMaxRingSize,
                        Reject::kBadRingSize, "the Maglev ring sizes xlb supports");
  if (!ring) return ring.error();
  if (*ring) {
    if (!maglev::is_prime(**ring)) {
      return r.fail(Reject::kBadRingSize, "ring_size",
                    std::to_string(**ring) + " is not prime (Maglev needs a prime; e.g. " +
                        std::to_string(maglev::next_prime(static_cast<uint32_t>(**ring))) + ")");
    }
    spec.ring_size = static_cast<uint32_t>(**ring);
  }
  auto all_down = r.string("all_down");
  if (!all_down) return all_down.error();
  if (*all_down) {
    auto policy = state::parse_all_down_policy(**all_down);
    if (!policy) {
      return r.fail(Reject::kBadAllDown, "all_down",
                    "'" + **all_down + "' is not a policy (keep-last-set or drop)");
    }
    spec.all_down = *policy;
  }
  return ok_status();
}

}  // namespace xlb::discovery::detail
