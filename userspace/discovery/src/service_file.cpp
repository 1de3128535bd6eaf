// SPDX-License-Identifier: Apache-2.0
// Service files are validated by the same JSON readers as push bodies and etcd values: a YAML
// file is first converted into a JSON tree (plain scalars typed as YAML 1.2's core schema types
// them, quoted ones stay strings) with every field's line and column kept for the messages.
#include "xlb/discovery/service_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "fields.h"
#include "xlb/state/config.h"

namespace xlb::discovery {
namespace {

using detail::json;
using Marks = std::map<std::string, std::pair<int, int>>;

constexpr int kMaxDepth = 32;

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A plain scalar as YAML 1.2's core schema reads it; yes/no/on/off stay strings (the config
// file's rule: no YAML 1.1 spellings).
json plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  std::string_view digits = s;
  const bool negative = digits.starts_with('-');
  if (negative || digits.starts_with('+')) digits.remove_prefix(1);
  if (all_digits(digits)) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec == std::errc()) {
      if (!negative) return v;
      if (v <= static_cast<uint64_t>(INT64_MAX)) return -static_cast<int64_t>(v);
    }
    return s;
  }
  // Fractional numbers only matter for the message ("got a fractional number").
  double d = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec == std::errc() && end == s.data() + s.size() && s.find('.') != std::string::npos) {
    return d;
  }
  return s;
}

std::pair<int, int> position(const YAML::Mark& m) {
  return {m.is_null() ? 1 : m.line + 1, m.is_null() ? 1 : m.column + 1};
}

Result<json> to_json_tree(const YAML::Node& node, const std::string& path, int depth,
                          const std::string& origin, Marks& marks) {
  if (depth > kMaxDepth) {
    return rejection(Reject::kTooLarge, origin + ":" + std::to_string(position(node.Mark()).first) +
                                            ": " + path + ": nested deeper than " +
                                            std::to_string(kMaxDepth) + " levels");
  }
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      // yaml-cpp tags quoted scalars "!" and plain ones "?".
      if (node.Tag() == "!") return json(node.Scalar());
      return plain_scalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      json out = json::array();
      size_t i = 0;
      for (const auto& item : node) {
        const std::string p = detail::index_path(path, i++);
        marks.emplace(p, position(item.Mark()));
        auto v = to_json_tree(item, p, depth + 1, origin, marks);
        if (!v) return v.error();
        out.push_back(std::move(*v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (auto it = node.begin(); it != node.end(); ++it) {
        const YAML::Node key = it->first;
        const YAML::Node value = it->second;
        const auto [line, col] = position(key.Mark());
        const std::string where = origin + ":" + std::to_string(line) + ":" + std::to_string(col);
        if (!key.IsScalar()) {
          return rejection(Reject::kNotObject,
                           where + ": " + path + ": a key must be a plain word");
        }
        const std::string p = detail::join_path(path, key.Scalar());
        if (out.contains(key.Scalar())) {
          return rejection(Reject::kDuplicateField, where + ": " + p + ": given twice (keep one)");
        }
        // Point at the value, or at the key when the value is empty.
        marks.emplace(p, value.IsNull() ? position(key.Mark()) : position(value.Mark()));
        auto v = to_json_tree(value, p, depth + 1, origin, marks);
        if (!v) return v.error();
        out[key.Scalar()] = std::move(*v);
      }
      return out;
    }
    default:
      return json(nullptr);
  }
}

Status read_vip_entry(const json& v, const Origin& origin, const std::string& path,
                      std::set<state::VipKey>& seen, std::vector<Event>& out) {
  detail::ObjectReader r(v, origin, path);
  XLB_TRY(r.check(detail::vip_setting_keys({"vip", "backends"}),
                  "a VIP entry: vip, optional settings and backends"));
  auto vip_text = r.string("vip");
  if (!vip_text) return vip_text.error();
  if (!*vip_text) return r.fail(Reject::kMissingVip, "vip", "required (e.g. 198.18.200.1:80/tcp)");
  auto key = detail::read_vip_text(**vip_text, origin, r.path("vip"));
  if (!key) return key.error();
  if (!seen.insert(*key).second) {
    return r.fail(Reject::kDuplicateVip, "vip",
                  key->to_string() + " is already in this file (merge the two entries)");
  }
  state::VipSpec spec;
  spec.key = *key;
  XLB_TRY(detail::read_vip_settings(r, spec));
  out.push_back(Event{.kind = EventKind::kUpsertVip, .vip = *key, .vip_spec = spec});

  const json* backends = r.get("backends");
  if (backends == nullptr) return ok_status();
  if (!backends->is_array()) {
    return r.fail(Reject::kWrongType, "backends",
                  "want a list of backends, got " + detail::type_name(*backends));
  }
  if (backends->size() > state::config_bounds::kMaxBackendsPerVip) {
    return r.fail(Reject::kTooManyBackends, "backends",
                  std::to_string(backends->size()) + " backends, a VIP takes at most " +
                      std::to_string(state::config_bounds::kMaxBackendsPerVip) +
                      " (split the service over more VIPs)");
  }
  std::set<IpAddress> addresses;
  for (size_t i = 0; i < backends->size(); i++) {
    const std::string p = detail::index_path(r.path("backends"), i);
    auto b = detail::read_backend((*backends)[i], origin, p, /*address_required=*/true);
    if (!b) return b.error();
    if (!addresses.insert(b->spec.address).second) {
      return rejection(Reject::kDuplicateBackend,
                       origin.at(detail::join_path(p, "address")) + b->spec.address.to_string() +
                           " is already a backend of " + key->to_string() +
                           " in this file (list it once)");
    }
    out.push_back(Event{.kind = EventKind::kUpsertBackend,
                        .vip = *key,
                        .backend = b->spec,
                        .metadata = std::move(b->metadata)});
  }
  return ok_status();
}

}  // namespace

std::optional<FileFormat> service_file_format(std::string_view name) {
  if (name.empty() || name.front() == '.' || name.back() == '~') return std::nullopt;
  if (name.ends_with(".yaml") || name.ends_with(".yml")) return FileFormat::kYaml;
  if (name.ends_with(".json")) return FileFormat::kJson;
  return std::nullopt;
}

Result<std::vector<Event>> parse_service_file(std::string_view text, FileFormat format,
                                              const std::string& origin_name) {
  if (text.size() > kMaxFileBytes) {
    return rejection(Reject::kTooLarge, origin_name + ": " + std::to_string(text.size()) +
                                            " bytes, the limit is " +
                                            std::to_string(kMaxFileBytes));
  }
  Marks marks;
  json doc;
  if (format == FileFormat::kJson) {
    auto parsed = detail::parse_json_text(text, Origin{origin_name});
    if (!parsed) return parsed.error();
    doc = std::move(*parsed);
  } else {
    std::vector<YAML::Node> docs;
    // yaml-cpp reports syntax errors (and misuse) by exception: caught here, never passed on.
    try {
      docs = YAML::LoadAll(std::string(text));
      if (docs.size() > 1) {
        auto [line, col] = position(docs[1].Mark());
        return rejection(Reject::kSyntax,
                         origin_name + ":" + std::to_string(line) + ":" + std::to_string(col) +
                             ": a second YAML document (a file holds one service: remove the "
                             "'---' line or split the file)");
      }
      if (docs.empty() || docs[0].IsNull()) {
        return rejection(Reject::kEmpty,
                         origin_name +
                             ": empty (a truncated file is never applied; delete the file to "
                             "remove its services, or write [] for none)");
      }
      auto tree = to_json_tree(docs[0], "", 0, origin_name, marks);
      if (!tree) return tree.error();
      doc = std::move(*tree);
    } catch (const YAML::Exception& e) {
      auto [line, col] = position(e.mark);
      return rejection(Reject::kSyntax, origin_name + ":" + std::to_string(line) + ":" +
                                            std::to_string(col) + ": YAML syntax error: " + e.msg +
                                            " (check indentation and quoting)");
    }
  }
  const Origin origin{origin_name, format == FileFormat::kYaml ? &marks : nullptr};
  std::vector<Event> events;
  std::set<state::VipKey> seen;
  if (doc.is_array()) {
    for (size_t i = 0; i < doc.size(); i++) {
      XLB_TRY(read_vip_entry(doc[i], origin, detail::index_path("", i), seen, events));
    }
  } else if (doc.is_object()) {
    XLB_TRY(read_vip_entry(doc, origin, "", seen, events));
  } else {
    return rejection(Reject::kNotObject,
                     origin.at("") +
                         "want a VIP entry (a map with vip: ...) or a list of them, "
                         "got " +
                         detail::type_name(doc));
  }
  return events;
}

}  // namespace xlb::discovery
