// SPDX-License-Identifier: Apache-2.0
// Typed, located reading of JSON objects: the one validator behind push bodies, etcd values and
// service files (YAML files are converted to JSON first, keeping each field's line and column).
// Every reader returns the value or a rejection naming the field; absent and null are the same.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xlb/discovery/event.h"

namespace xlb::discovery::detail {

using json = nlohmann::json;

// Parses JSON text. Duplicate keys are rejected (nlohmann would keep the last silently, and a
// registry value with two weights is a bug worth seeing).
Result<json> parse_json_text(std::string_view text, const Origin& origin);

// "a string", "an integer", "a list", ...
std::string type_name(const json& v);

std::string join_path(const std::string& path, std::string_view key);
std::string index_path(const std::string& path, size_t index);

class ObjectReader {
 public:
  ObjectReader(const json& obj, const Origin& origin, std::string path)
      : obj_(obj), origin_(origin), path_(std::move(path)) {}

  // The object itself must be an object whose keys are all in `allowed`.
  Status check(const std::vector<std::string_view>& allowed, std::string_view example) const;

  const json* get(std::string_view key) const;  // nullptr when absent or null
  bool has(std::string_view key) const { return get(key) != nullptr; }

  Result<std::optional<std::string>> string(std::string_view key) const;
  Result<std::optional<bool>> boolean(std::string_view key) const;
  // An integer in [min, max]; out of range is `range_reason`, a non-integer kWrongType.
  Result<std::optional<uint64_t>> integer(std::string_view key, uint64_t min, uint64_t max,
                                          Reject range_reason, std::string_view why) const;

  std::string path(std::string_view key) const { return join_path(path_, key); }
  const std::string& path() const { return path_; }
  const Origin& origin() const { return origin_; }
  Error fail(Reject r, std::string_view key, const std::string& what) const {
    return rejection(r, origin_.at(path(key)) + what);
  }

 private:
  const json& obj_;
  const Origin& origin_;
  std::string path_;
};

// A VIP's text form, checked to be a usable service address.
Result<state::VipKey> read_vip_text(const std::string& text, const Origin& origin,
                                    const std::string& path);
// A backend's bare address, checked to be a usable unicast address.
Result<IpAddress> read_backend_address(const std::string& text, const Origin& origin,
                                       const std::string& path);

struct BackendFields {
  state::BackendSpec spec;
  bool has_address = false;
  std::string metadata;  // compact JSON or ""
};
// {address, weight, state, metadata}. `address_required`: files and push; etcd takes the
// address from the key.
Result<BackendFields> read_backend(const json& v, const Origin& origin, const std::string& path,
                                   bool address_required);

// The VIP settings of an object (name, no_lru, hash, gue, icmp_too_big, no_rate_guard,
// ring_size, all_down) into `spec`; other keys are the caller's to check.
Status read_vip_settings(const ObjectReader& r, state::VipSpec& spec);
std::vector<std::string_view> vip_setting_keys(std::initializer_list<std::string_view> more);

}  // namespace xlb::discovery::detail
