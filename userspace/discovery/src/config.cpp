// SPDX-License-Identifier: Apache-2.0
// The `discovery:` section, walked node by node like the rest of the configuration file: every
// map is a table of keys, every value is read as text and converted here (no yaml-cpp as<T>(),
// whose conversions throw without a location), and the first problem is returned.
#include "xlb/discovery/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <map>
#include <set>

#include "xlb/core/address.h"
#include "xlb/state/config.h"
#include "xlb/state/yaml_walk.h"

namespace xlb::discovery {
namespace {

namespace db = discovery_bounds;
using state::yaml::describe;
using state::yaml::Field;
using state::yaml::Key;

bool valid_name(const std::string& n) {
  return !n.empty() && n.size() <= 63 && std::isalnum(static_cast<unsigned char>(n[0])) &&
         std::all_of(n.begin(), n.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

// "http://HOST:PORT" with HOST an IPv4 address, [IPv6] or a DNS name; no path.
std::optional<std::string> endpoint_problem(const std::string& url) {
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else {
    return "starts with neither http:// nor https://";
  }
  if (rest.find('/') != std::string_view::npos) return "has a path (write scheme://HOST:PORT)";
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == rest.size()) {
    return "has no port (etcd clients usually use :2379)";
  }
  std::string_view host = rest.substr(0, colon), port = rest.substr(colon + 1);
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) {
    return "has no valid port 1..65535";
  }
  if (host.starts_with("[")) {
    if (!host.ends_with("]") || !IpAddress::parse(host.substr(1, host.size() - 2))) {
      return "has a bad IPv6 address (write [2001:db8::1]:2379)";
    }
    return std::nullopt;
  }
  if (host.empty() || !std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
      })) {
    return "has a bad host (an IPv4 address, [IPv6] or a DNS name)";
  }
  return std::nullopt;
}

class Parser : private state::yaml::Walker {
 public:
  explicit Parser(std::string source) : Walker(std::move(source)) {}

  Result<DiscoveryConfig> parse(const YAML::Node& node);

 private:
  Result<std::string> scalar(const Field& f, std::string_view expected);
  Result<uint64_t> duration_ms(const Field& f, uint64_t max_ms, std::string_view why);
  Result<std::string> absolute_path(const Field& f);
  Status parse_source(const Field& f, SourceConfig& out);

  DiscoveryConfig config_;
  std::map<std::string, int> name_lines_;
};

Result<std::string> Parser::scalar(const Field& f, std::string_view expected) {
  if (f.value.IsScalar()) return f.value.Scalar();
  return fail(f.mark(), f.path, "expected " + std::string(expected) + ", got " + describe(f.value));
}

Result<uint64_t> Parser::duration_ms(const Field& f, uint64_t max_ms, std::string_view why) {
  auto text = scalar(f, "a duration such as 50ms");
  if (!text) return text.error();
  auto ms = state::parse_duration_ms(*text);
  if (!ms) return fail(f.mark(), f.path, ms.error().message);
  if (*ms > max_ms) {
    return fail(f.mark(), f.path,
                *text + " is too long, at most " + std::to_string(max_ms) + "ms (" +
                    std::string(why) + ")");
  }
  return ms;
}

Result<std::string> Parser::absolute_path(const Field& f) {
  auto text = scalar(f, "an absolute path");
  if (!text) return text.error();
  if (text->empty() || text->front() != '/') {
    return fail(f.mark(), f.path, "'" + *text + "' is not an absolute path (start it with '/')");
  }
  if (text->size() > 4000) return fail(f.mark(), f.path, "path longer than 4000 bytes");
  return text;
}

Status Parser::parse_source(const Field& f, SourceConfig& out) {
  if (!f.value.IsMap()) {
    return fail(f.mark(), f.path,
                "expected a map, got " + describe(f.value) +
                    " (e.g. - {name: services, type: files, dir: /etc/xlb/services.d})");
  }
  // The type decides which keys are allowed: read it first.
  const YAML::Node type_node = f.value["type"];
  if (!type_node.IsDefined() || type_node.IsNull()) {
    return fail(f.mark(), f.path, "missing required key 'type' (files, etcd or push)");
  }
  const Field type_field{f.path + ".type", YAML::Mark::null_mark(), type_node};
  auto type_text = scalar(type_field, "files, etcd or push");
  if (!type_text) return type_text.error();
  if (*type_text == "files") {
    out.type = SourceType::kFiles;
  } else if (*type_text == "etcd") {
    out.type = SourceType::kEtcd;
  } else if (*type_text == "push") {
    out.type = SourceType::kPush;
  } else {
    return fail(type_node.Mark(), type_field.path,
                "'" + *type_text + "' is not a source type (files, etcd or push)");
  }
  out.priority = default_priority(out.type);

  YAML::Mark etcd_mark = f.mark();
  std::vector<Key> keys = {
      {"name",
       [&](const Field& v) -> Status {
         auto text = scalar(v, "a name");
         if (!text) return text.error();
         if (!valid_name(*text)) {
           return fail(v.mark(), v.path,
                       "'" + *text +
                           "' is not a valid name (1..63 letters, digits, '-', '_' or '.', "
                           "starting with a letter or digit)");
         }
         const int line = v.mark().line + 1;
         if (auto [first, fresh] = name_lines_.emplace(*text, line); !fresh) {
           return fail(v.mark(), v.path,
                       "name '" + *text + "' is already used by the source on line " +
                           std::to_string(first->second) + " (names are unique)");
         }
         out.name = *text;
         return ok_status();
       },
       true},
      {"type", [](const Field&) { return ok_status(); }, true},
      {"priority",
       [&](const Field& v) -> Status {
         auto text = scalar(v, "an integer 0..1000");
         if (!text) return text.error();
         int p = -1;
         auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), p);
         if (ec != std::errc() || end != text->data() + text->size() || p < 0 ||
             p > db::kMaxPriority) {
           return fail(v.mark(), v.path,
                       "expected an integer 0..1000, got '" + *text +
                           "' (higher wins when two sources name the same backend)");
         }
         out.priority = p;
         return ok_status();
       }},
  };
  if (out.type == SourceType::kFiles) {
    keys.push_back({"dir",
                    [&](const Field& v) -> Status {
                      auto p = absolute_path(v);
                      if (!p) return p.error();
                      out.files.dir = *p;
                      return ok_status();
                    },
                    true});
  }
  EtcdSourceConfig& e = out.etcd;
  if (out.type == SourceType::kEtcd) {
    auto path_key = [&](std::string_view name, std::optional<std::string>& target) {
      return Key{name, [&target, this](const Field& v) -> Status {
                   auto p = absolute_path(v);
                   if (!p) return p.error();
                   target = *p;
                   return ok_status();
                 }};
    };
    auto ms_key = [&](std::string_view name, uint32_t& target, uint64_t max_ms) {
      return Key{name, [&target, max_ms, this](const Field& v) -> Status {
                   auto ms = duration_ms(v, max_ms, "a bound on waiting for etcd");
                   if (!ms) return ms.error();
                   if (*ms == 0) return fail(v.mark(), v.path, "must be above 0ms");
                   target = static_cast<uint32_t>(*ms);
                   return ok_status();
                 }};
    };
    keys.push_back({"endpoints",
                    [&](const Field& v) -> Status {
                      etcd_mark = v.mark();
                      if (!v.value.IsSequence() || v.value.size() == 0) {
                        return fail(v.mark(), v.path,
                                    "expected a non-empty list of URLs, got " + describe(v.value) +
                                        " (e.g. [\"http://198.18.0.10:2379\"])");
                      }
                      size_t i = 0;
                      for (const auto& item : v.value) {
                        const Field it{state::yaml::item(v.path, i++),
                                       YAML::Mark::null_mark(), item};
                        auto url = scalar(it, "a URL such as http://198.18.0.10:2379");
                        if (!url) return url.error();
                        if (auto why = endpoint_problem(*url)) {
                          return fail(it.mark(), it.path, "'" + *url + "' " + *why);
                        }
                        e.endpoints.push_back(*url);
                      }
                      const bool tls = e.endpoints[0].starts_with("https://");
                      for (const auto& url : e.endpoints) {
                        if (url.starts_with("https://") != tls) {
                          return fail(v.mark(), v.path,
                                      "mixes http:// and https:// endpoints (one cluster, one "
                                      "scheme)");
                        }
                      }
                      return ok_status();
                    },
                    true});
    keys.push_back(
        {"prefix",
         [&](const Field& v) -> Status {
           auto text = scalar(v, "a key prefix such as /xlb/cluster-a");
           if (!text) return text.error();
           const std::string& p = *text;
           if (p.size() < 2 || p.front() != '/' || p.back() == '/' ||
               p.find("//") != std::string::npos || p.size() > 512 ||
               !std::all_of(p.begin(), p.end(), [](char c) { return c > ' ' && c < 127; })) {
             return fail(v.mark(), v.path,
                         "'" + p +
                             "' is not a key prefix (starts with '/', no trailing '/' "
                             "or '//', printable, e.g. /xlb/cluster-a)");
           }
           e.prefix = p;
           return ok_status();
         },
         true});
    keys.push_back({"username", [&](const Field& v) -> Status {
                      auto text = scalar(v, "an etcd user name");
                      if (!text) return text.error();
                      if (text->empty()) return fail(v.mark(), v.path, "empty user name");
                      e.username = *text;
                      return ok_status();
                    }});
    keys.push_back(path_key("password_file", e.password_file));
    keys.push_back(path_key("ca_file", e.ca_file));
    keys.push_back(path_key("cert_file", e.cert_file));
    keys.push_back(path_key("key_file", e.key_file));
    keys.push_back(ms_key("dial_timeout", e.dial_timeout_ms, 60000));
    keys.push_back(ms_key("request_timeout", e.request_timeout_ms, 300000));
    keys.push_back(ms_key("reconnect_max", e.backoff_max_ms, 300000));
  }
  const char* example = out.type == SourceType::kFiles
                            ? "e.g. {name: services, type: files, dir: /etc/xlb/services.d}"
                        : out.type == SourceType::kEtcd
                            ? "e.g. {name: registry, type: etcd, endpoints: "
                              "[\"http://198.18.0.10:2379\"], prefix: /xlb/cluster-a}"
                            : "e.g. {name: webhooks, type: push}";
  XLB_TRY(walk_map(f, keys, example));
  if (out.type == SourceType::kEtcd) {
    const bool tls = e.endpoints[0].starts_with("https://");
    if (!tls && (e.ca_file || e.cert_file || e.key_file)) {
      return fail(etcd_mark, f.path + ".endpoints",
                  "ca_file, cert_file and key_file need https:// endpoints");
    }
    if (e.cert_file.has_value() != e.key_file.has_value()) {
      return fail(f.mark(), f.path, "cert_file and key_file go together (a client certificate)");
    }
    if (e.username.has_value() != e.password_file.has_value()) {
      return fail(f.mark(), f.path, "username and password_file go together");
    }
    e.backoff_initial_ms = std::min(e.backoff_initial_ms, e.backoff_max_ms);
  }
  return ok_status();
}

Result<DiscoveryConfig> Parser::parse(const YAML::Node& node) {
  const Field root{"discovery", YAML::Mark::null_mark(), node};
  XLB_TRY(walk_map(
      root,
      {
          {"debounce",
           [&](const Field& v) -> Status {
             auto ms = duration_ms(v, db::kMaxDebounceMs,
                                   "updates wait at most this long; 0ms applies every change");
             if (!ms) return ms.error();
             config_.debounce_ms = static_cast<uint32_t>(*ms);
             return ok_status();
           }},
          {"sources",
           [&](const Field& v) -> Status {
             if (!v.value.IsSequence()) {
               return fail(v.mark(), v.path,
                           "expected a list of sources, got " + describe(v.value) +
                               " (write '- name: ...' items)");
             }
             if (v.value.size() > db::kMaxSources) {
               return fail(v.mark(), v.path,
                           "more than " + std::to_string(db::kMaxSources) + " sources");
             }
             size_t i = 0;
             for (const auto& item : v.value) {
               SourceConfig s;
               XLB_TRY(parse_source(
                   Field{state::yaml::item(v.path, i++), YAML::Mark::null_mark(), item},
                   s));
               config_.sources.push_back(std::move(s));
             }
             return ok_status();
           }},
      },
      "e.g. discovery: {debounce: 50ms, sources: [...]}"));
  return std::move(config_);
}

}  // namespace

std::string_view to_string(SourceType t) {
  switch (t) {
    case SourceType::kFiles:
      return "files";
    case SourceType::kEtcd:
      return "etcd";
    case SourceType::kPush:
      return "push";
  }
  return "?";
}

int default_priority(SourceType t) {
  // The more deliberate the input, the higher: a push (an operator, a webhook acting now) over
  // a file (configuration management) over a registry's general listing.
  switch (t) {
    case SourceType::kPush:
      return 300;
    case SourceType::kFiles:
      return 200;
    case SourceType::kEtcd:
      return 100;
  }
  return 0;
}

Result<DiscoveryConfig> parse_discovery_config(const YAML::Node& node,
                                               const std::string& source_name) {
  // yaml-cpp signals misuse with exceptions; none may leave this module.
  try {
    return Parser(source_name.empty() ? "<config>" : source_name).parse(node);
  } catch (const YAML::Exception& e) {
    return Error::invalid(source_name +
                          ": discovery: internal error reading the YAML tree: " + e.msg);
  } catch (const std::exception& e) {
    return Error::invalid(source_name + ": discovery: internal error: " + e.what());
  }
}

Result<DiscoveryConfig> parse_discovery_config_text(std::string_view yaml_text,
                                                    const std::string& source_name) {
  YAML::Node node;
  try {
    node = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return Error::invalid(source_name + ":" + std::to_string(e.mark.line + 1) + ":" +
                          std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
  }
  return parse_discovery_config(node, source_name);
}

}  // namespace xlb::discovery
