// SPDX-License-Identifier: Apache-2.0
// The configuration file, walked node by node over yaml-cpp's document tree.
//
// Every map of the schema is a table of keys (walk_map), so unknown keys, keys given twice and
// missing required keys are handled in one place, and every value is read by a typed helper
// that knows where the value was written. Scalars are read as text and converted here rather
// than with yaml-cpp's as<T>(), whose conversions throw without a location and accept YAML 1.1
// spellings (yes/no/on/off, 0x numbers) that the documentation does not promise.
//
// The file is walked in document order and the first problem is returned, so an operator fixes
// errors top to bottom. Checks that need the whole file (counts against limits, outer-source
// prefixes for the backend families present) run after the walk and point at the entry that
// breaks the rule.
#include "xlb/state/config.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "xlb/dataplane/attach.h"
#include "xlb/dataplane/balancer.h"
#include "xlb/maglev/maglev.h"
#include "xlb/state/yaml_walk.h"

namespace xlb::state {
namespace {

namespace cb = config_bounds;
using yaml::describe;
using yaml::Field;
using yaml::item;
using yaml::join;
using yaml::Key;
using yaml::line_of;

// Health-check bounds (xlb::health enforces the same numbers for specs from the API; the state
// module cannot include it, health depends on state).
namespace health_bounds {
// Below 10 ms a check is barely done before the next one: the backend sees a flood, and a
// network hiccup of a few ms takes it out.
inline constexpr uint64_t kMinCheckIntervalMs = 10;
inline constexpr uint64_t kMaxCheckMs = 3600 * 1000;
inline constexpr uint64_t kMaxRiseFall = 100;
inline constexpr size_t kMaxHttpPathLength = 1024;
inline constexpr size_t kMaxHttpHostLength = 255;
// A check reads at most 64 KiB of a response; the string must be well within it.
inline constexpr size_t kMaxBodyNeedleLength = 1024;
}  // namespace health_bounds
namespace hb = health_bounds;

// "100ms", "30s", "5m", "24h": the largest unit that divides the value.
std::string format_ms(uint64_t ms) {
  if (ms != 0 && ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms != 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}


Result<dataplane::FlowTable> parse_flow_table(std::string_view text) {
  if (text == "per-cpu-maps") return dataplane::FlowTable::kPerCpuMaps;
  if (text == "shared") return dataplane::FlowTable::kSharedPerCpuLru;
  return Error::invalid("flow table '" + std::string(text) + "': want per-cpu-maps or shared");
}

// Stores a parsed value, or passes its error on.
template <typename T, typename U>
Status assign(T& target, Result<U> parsed) {
  if (!parsed) return parsed.error();
  target = static_cast<T>(std::move(*parsed));
  return ok_status();
}

class ConfigParser : private yaml::Walker {
 public:
  explicit ConfigParser(std::string source) : Walker(std::move(source)) {}

  Result<Config> parse(std::string_view text);

 private:
  // Where each key of a health map was written ("timeout" -> mark), for the checks that need
  // the whole map and the VIP's port.
  using HealthMarks = std::map<std::string, YAML::Mark, std::less<>>;
  // A backend's health override as written, checked once its VIP is complete.
  struct HealthOverrideSite {
    Field field;
    HealthMarks marks;
    IpAddress address;
  };

  // A backend as written, for checks that run after the walk.
  struct BackendSite {
    std::string path;
    YAML::Mark mark;
    Family family;
  };

  Status parse_document(const YAML::Node& root);
  Status parse_limits(const Field& f);
  Status parse_api(const Field& f);
  Status parse_metrics(const Field& f);
  Status parse_vips(const Field& f);
  Status parse_vip(const Field& f);
  Result<std::vector<BackendSpec>> parse_backends(const Field& f);
  // `type_required`: a VIP's map must name the type, a backend's override need not.
  Status parse_health(const Field& f, HealthCheckSpec& h, HealthMarks& marks, bool type_required);
  // The checks of a whole spec (`h`: the VIP's, or a backend's with its override applied) that
  // the keys alone cannot make. Errors point at the keys in `marks`; values not written there
  // are called `unwritten` ("the default", "the VIP's").
  Status check_health(const Field& f, const VipKey& key, const HealthCheckSpec& h,
                      const HealthMarks& marks, std::string_view unwritten);
  Status check_whole_file();

  // Typed readers: each returns the value or an error located at the field.
  Result<std::string> scalar(const Field& f, std::string_view expected);
  Result<bool> boolean(const Field& f);
  Result<uint64_t> integer(const Field& f, uint64_t min, uint64_t max, std::string_view why);
  template <typename Parse>
  auto choice(const Field& f, Parse parse) -> decltype(parse(std::string_view{}));
  Result<uint64_t> duration_ms(const Field& f, uint64_t min_ms, uint64_t max_ms,
                               std::string_view why);
  Result<std::array<uint8_t, 6>> mac(const Field& f);
  Result<IpPrefix> encap_prefix(const Field& f, Family family, uint8_t min_length);
  Result<std::string> interface_name(const Field& f);
  Result<std::string> absolute_path(const Field& f, size_t max_length);
  // ADDRESS:PORT, or "" for none.
  Result<std::string> listen_endpoint(const Field& f);
  Result<std::string> vip_name(const Field& f);
  Result<uint32_t> ring_size(const Field& f);

  Config config_;
  YAML::Mark vips_mark_ = YAML::Mark::null_mark();
  YAML::Mark max_packet_size_mark_ = YAML::Mark::null_mark();
  std::vector<std::pair<std::string, YAML::Mark>> vip_sites_;  // path and mark of each VIP
  std::vector<BackendSite> backend_sites_;                     // every backend, in file order
  std::map<VipKey, int> vip_lines_;                            // first line of each VIP
  std::map<std::string, int> name_lines_;                      // first line of each VIP name
  std::vector<HealthOverrideSite> health_overrides_;  // of the VIP being parsed
};

// ---- Typed readers ------------------------------------------------------------------------

Result<std::string> ConfigParser::scalar(const Field& f, std::string_view expected) {
  if (f.value.IsScalar()) return f.value.Scalar();
  std::string hint;
  if (f.value.IsNull()) hint = " (give a value or leave the key out for the default)";
  // Unquoted "[2001:db8::1]" is a YAML list of one string, not a bracketed address.
  if (f.value.IsSequence() && f.value.size() == 1 && f.value.begin()->IsScalar() &&
      f.value.begin()->Scalar().find(':') != std::string::npos) {
    hint = " (quote an IPv6 address in brackets: \"[2001:db8::1]:443/tcp\")";
  }
  return fail(f.mark(), f.path,
              "expected " + std::string(expected) + ", got " + describe(f.value) + hint);
}

Result<bool> ConfigParser::boolean(const Field& f) {
  auto text = scalar(f, "true or false");
  if (!text) return text.error();
  if (*text == "true" || *text == "True" || *text == "TRUE") return true;
  if (*text == "false" || *text == "False" || *text == "FALSE") return false;
  return fail(f.mark(), f.path, "expected true or false, got '" + *text + "'");
}

Result<uint64_t> ConfigParser::integer(const Field& f, uint64_t min, uint64_t max,
                                       std::string_view why) {
  const std::string range = std::to_string(min) + ".." + std::to_string(max);
  auto text = scalar(f, "an integer " + range);
  if (!text) return text.error();
  std::string_view s = *text;
  const bool negative = !s.empty() && s.front() == '-';
  std::string_view digits = negative ? s.substr(1) : s;
  if (!is_digits(digits)) {
    return fail(f.mark(), f.path, "expected an integer " + range + ", got '" + *text + "'");
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (negative || ec != std::errc() || v < min || v > max) {
    return fail(
        f.mark(), f.path,
        *text + " is out of range " + range + (why.empty() ? "" : " (" + std::string(why) + ")"));
  }
  return v;
}

template <typename Parse>
auto ConfigParser::choice(const Field& f, Parse parse) -> decltype(parse(std::string_view{})) {
  auto text = scalar(f, "a word");
  if (!text) return text.error();
  auto value = parse(*text);
  if (!value) return fail(f.mark(), f.path, value.error().message);
  return value;
}

Result<uint64_t> ConfigParser::duration_ms(const Field& f, uint64_t min_ms, uint64_t max_ms,
                                           std::string_view why) {
  auto text = scalar(f, "a duration such as 30s");
  if (!text) return text.error();
  auto ms = parse_duration_ms(*text);
  if (!ms) return fail(f.mark(), f.path, ms.error().message);
  if (*ms < min_ms || *ms > max_ms) {
    return fail(f.mark(), f.path,
                *text + " is out of range " + format_ms(min_ms) + ".." + format_ms(max_ms) + " (" +
                    std::string(why) + ")");
  }
  return ms;
}

Result<std::array<uint8_t, 6>> ConfigParser::mac(const Field& f) {
  auto text = scalar(f, "a MAC address such as 02:00:00:00:02:fe");
  if (!text) return text.error();
  auto mac = parse_mac(*text);
  if (!mac) return fail(f.mark(), f.path, mac.error().message);
  if ((*mac)[0] & 1) {
    return fail(
        f.mark(), f.path,
        *text + " is a multicast or broadcast MAC (the next hop is a router's unicast MAC)");
  }
  if (std::all_of(mac->begin(), mac->end(), [](uint8_t b) { return b == 0; })) {
    return fail(f.mark(), f.path,
                "00:00:00:00:00:00 is no MAC (leave the key out to use the default route's "
                "neighbour)");
  }
  return mac;
}

Result<IpPrefix> ConfigParser::encap_prefix(const Field& f, Family family, uint8_t min_length) {
  const bool v4 = family == Family::kV4;
  const std::string example = v4 ? "198.19.0.0/16" : "2001:db8:ff::/64";
  auto text = scalar(f, "a prefix such as " + example);
  if (!text) return text.error();
  auto prefix = IpPrefix::parse(*text);
  if (!prefix) {
    std::string what = prefix.error().message;
    if (what.find('(') == std::string::npos) what += " (write e.g. " + example + ")";
    return fail(f.mark(), f.path, what);
  }
  if (prefix->address.family() != family) {
    return fail(
        f.mark(), f.path,
        "'" + *text + "' is not an " + (v4 ? "IPv4" : "IPv6") + " prefix (e.g. " + example + ")");
  }
  const unsigned max_length = v4 ? 32 : 128;
  if (prefix->length < min_length) {
    return fail(f.mark(), f.path,
                "prefix length /" + std::to_string(prefix->length) + " is too short (use /" +
                    std::to_string(min_length) + "../" + std::to_string(max_length) +
                    ": a range reserved for this load balancer's outer sources)");
  }
  // The host bits of the outer source carry per-flow hash bits; written-in host bits would be
  // overwritten silently, so a prefix that sets them is most likely a typo.
  xlb_addr masked = prefix->address.abi();
  auto* bytes = reinterpret_cast<uint8_t*>(masked.words);
  for (unsigned bit = prefix->length; bit < max_length; bit++) {
    bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  IpPrefix network{IpAddress::from_abi(masked, family), prefix->length};
  if (!(network.address == prefix->address)) {
    return fail(f.mark(), f.path,
                "'" + *text + "' has host bits set (did you mean " + network.to_string() + "?)");
  }
  return prefix;
}

Result<std::string> ConfigParser::interface_name(const Field& f) {
  auto text = scalar(f, "an interface name such as eth0");
  if (!text) return text.error();
  // The kernel's rules for device names (dev_valid_name): 1..15 bytes, no '/', ':' or space.
  const std::string& n = *text;
  if (n.empty()) return fail(f.mark(), f.path, "empty (name the NIC xlb attaches to, e.g. eth0)");
  if (n.size() > 15 || n == "." || n == ".." || n.find_first_of("/: \t\n") != std::string::npos) {
    return fail(f.mark(), f.path,
                "'" + n +
                    "' is not a valid interface name (1..15 characters, no '/', ':' or "
                    "spaces)");
  }
  return text;
}

Result<std::string> ConfigParser::absolute_path(const Field& f, size_t max_length) {
  auto text = scalar(f, "an absolute path");
  if (!text) return text.error();
  if (text->empty() || text->front() != '/') {
    return fail(f.mark(), f.path, "'" + *text + "' is not an absolute path (start it with '/')");
  }
  if (text->size() > max_length) {
    return fail(f.mark(), f.path,
                "path is " + std::to_string(text->size()) + " bytes, the limit is " +
                    std::to_string(max_length) + " (choose a shorter path)");
  }
  return text;
}

Result<std::string> ConfigParser::listen_endpoint(const Field& f) {
  auto text = scalar(f, "ADDRESS:PORT");
  if (!text) return text.error();
  if (text->empty()) return text;
  auto ep = Endpoint::parse(*text);
  if (!ep || ep->port == 0) {
    return fail(f.mark(), f.path,
                "'" + *text +
                    "' is not ADDRESS:PORT with a port 1..65535 (e.g. 127.0.0.1:9476 or "
                    "\"[::1]:9476\"; \"\" turns it off)");
  }
  return text;
}

Result<std::string> ConfigParser::vip_name(const Field& f) {
  auto text = scalar(f, "a name");
  if (!text) return text.error();
  // Names become metric labels and CLI arguments: keep them to a portable alphabet.
  const std::string& n = *text;
  const bool ok =
      !n.empty() && n.size() <= 63 && std::isalnum(static_cast<unsigned char>(n[0])) &&
      std::all_of(n.begin(), n.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      });
  if (!ok) {
    return fail(f.mark(), f.path,
                "'" + n +
                    "' is not a valid name (1..63 letters, digits, '-', '_' or '.', "
                    "starting with a letter or digit)");
  }
  if (auto [first, fresh] = name_lines_.emplace(n, line_of(f.mark())); !fresh) {
    return fail(f.mark(), f.path,
                "name '" + n + "' is already used by the VIP on line " +
                    std::to_string(first->second) + " (names are unique)");
  }
  return text;
}

Result<uint32_t> ConfigParser::ring_size(const Field& f) {
  auto size =
      integer(f, maglev::kMinRingSize, maglev::kMaxRingSize, "the Maglev ring sizes xlb supports");
  if (!size) return size.error();
  if (!maglev::is_prime(*size)) {
    uint64_t below = *size - 1;
    while (!maglev::is_prime(below)) below--;
    return fail(f.mark(), f.path,
                std::to_string(*size) + " is not prime (Maglev needs a prime; nearest: " +
                    std::to_string(below) + " or " +
                    std::to_string(maglev::next_prime(static_cast<uint32_t>(*size))) + ")");
  }
  return static_cast<uint32_t>(*size);
}

// ---- The schema ---------------------------------------------------------------------------

Result<Config> ConfigParser::parse(std::string_view text) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return fail(e.mark, "",
                "YAML syntax error: " + e.msg +
                    " (check indentation and quoting here and on "
                    "the line above)");
  }
  if (docs.empty() || docs[0].IsNull()) {
    return fail(YAML::Mark::null_mark(), "",
                "no configuration in the file (it needs at least 'interface:'; see "
                "docs/config.md)");
  }
  if (docs.size() > 1) {
    return fail(docs[1].Mark(), "",
                "a second YAML document (the file holds one: remove the '---' line)");
  }
  // Reading the tree can still throw (yaml-cpp signals misuse with exceptions); none may leave
  // this module.
  try {
    XLB_TRY(parse_document(docs[0]));
    XLB_TRY(check_whole_file());
  } catch (const YAML::Exception& e) {
    return fail(e.mark, "", std::string("internal error reading the YAML tree: ") + e.msg);
  } catch (const std::exception& e) {
    return fail(YAML::Mark::null_mark(), "", std::string("internal error: ") + e.what());
  }
  return std::move(config_);
}

Status ConfigParser::parse_document(const YAML::Node& root) {
  GlobalConfig& g = config_.global;
  const std::vector<Key> keys = {
      {"interface", [&](const Field& f) { return assign(g.interface, interface_name(f)); }, true},
      {"attach_mode",
       [&](const Field& f) {
         return assign(g.attach_mode, choice(f, dataplane::parse_attach_mode));
       }},
      {"next_hop_mac", [&](const Field& f) { return assign(g.next_hop_mac, mac(f)); }},
      {"encap_source_v4",
       [&](const Field& f) {
         return assign(g.encap_source_v4, encap_prefix(f, Family::kV4, cb::kMinEncapPrefixV4));
       }},
      {"encap_source_v6",
       [&](const Field& f) {
         return assign(g.encap_source_v6, encap_prefix(f, Family::kV6, cb::kMinEncapPrefixV6));
       }},
      {"hash_seed",
       [&](const Field& f) {
         return assign(g.hash_seed,
                       integer(f, 0, UINT32_MAX, "a 32-bit seed, the same on every xlb host"));
       }},
      {"gue_port",
       [&](const Field& f) {
         return assign(g.gue_port, integer(f, 1, 65535, "a UDP destination port"));
       }},
      {"max_packet_size",
       [&](const Field& f) {
         max_packet_size_mark_ = f.mark();
         return assign(g.max_packet_size,
                       integer(f, cb::kMinPacketSize, cb::kMaxPacketSize,
                               "bytes of Ethernet frame: 68 is the smallest MTU IPv4 allows, "
                               "9216 the largest jumbo frame common NICs accept"));
       }},
      {"udp_idle_timeout",
       [&](const Field& f) {
         return assign(g.udp_idle_timeout_ms,
                       duration_ms(f, cb::kMinUdpIdleMs, cb::kMaxUdpIdleMs,
                                   "shorter re-places nearly every packet: set no_lru on the "
                                   "VIP instead; longer keeps dead entries"));
       }},
      {"new_flows_per_second",
       [&](const Field& f) {
         return assign(g.new_flows_per_second,
                       integer(f, 0, UINT32_MAX, "new flows per second per CPU; 0 = no guard"));
       }},
      {"pass_fragments", [&](const Field& f) { return assign(g.pass_fragments, boolean(f)); }},
      {"pass_ip_options", [&](const Field& f) { return assign(g.pass_ip_options, boolean(f)); }},
      {"flow_table",
       [&](const Field& f) { return assign(g.flow_table, choice(f, parse_flow_table)); }},
      {"limits", [&](const Field& f) { return parse_limits(f); }},
      {"pin_root", [&](const Field& f) { return assign(g.pin_root, absolute_path(f, 4000)); }},
      {"api", [&](const Field& f) { return parse_api(f); }},
      {"metrics", [&](const Field& f) { return parse_metrics(f); }},
      {"vips", [&](const Field& f) { return parse_vips(f); }},
      {"discovery",
       [&](const Field& f) -> Status {
         config_.discovery = std::make_shared<const YAML::Node>(f.value);
         return {};
       }},
  };
  return walk_map(Field{"", YAML::Mark::null_mark(), root}, keys,
                  "the file is a map: interface, vips and the settings in docs/config.md");
}

Status ConfigParser::parse_limits(const Field& f) {
  Limits& l = config_.global.limits;
  return walk_map(
      f,
      {
          {"max_vips",
           [&](const Field& v) {
             return assign(l.max_vips,
                           integer(v, 1, cb::kMaxVips,
                                   "each VIP owns a ring of at least 65537 slots, 256 KiB of "
                                   "kernel memory"));
           }},
          {"max_backends",
           [&](const Field& v) {
             return assign(l.max_backends,
                           integer(v, 1, cb::kMaxBackends,
                                   "VIP x backend memberships, each with per-CPU counters"));
           }},
          {"flows_per_cpu",
           [&](const Field& v) {
             return assign(l.flows_per_cpu,
                           integer(v, cb::kMinFlowsPerCpu, cb::kMaxFlowsPerCpu,
                                   "connection-table entries per CPU, preallocated at about "
                                   "100 bytes each"));
           }},
      },
      "e.g. limits: {max_vips: 512, max_backends: 4096, flows_per_cpu: 1048576}");
}

Status ConfigParser::parse_api(const Field& f) {
  GlobalConfig& g = config_.global;
  YAML::Mark tcp_mark = YAML::Mark::null_mark();
  XLB_TRY(walk_map(
      f,
      {
          {"socket",
           [&](const Field& v) {
             // sun_path holds 108 bytes with the terminating NUL.
             return assign(g.api_socket, absolute_path(v, 107));
           }},
          {"tcp_listen",
           [&](const Field& v) -> Status {
             auto ep = listen_endpoint(v);
             if (!ep) return ep.error();
             tcp_mark = v.mark();
             if (ep->empty()) {
               g.api_tcp_listen.reset();
             } else {
               g.api_tcp_listen = *ep;
             }
             return ok_status();
           }},
          {"token_file",
           [&](const Field& v) { return assign(g.api_token_file, absolute_path(v, 4000)); }},
      },
      "e.g. api: {socket: /run/xlb/xlbd.sock}"));
  // A TCP listener is reachable by every local user and possibly the network: never without a
  // token.
  if (g.api_tcp_listen && !g.api_token_file) {
    return fail(tcp_mark, join(f.path, "tcp_listen"),
                "needs api.token_file (add token_file: /etc/xlb/token, a file holding the "
                "bearer token clients must send)");
  }
  return ok_status();
}

Status ConfigParser::parse_metrics(const Field& f) {
  return walk_map(f,
                  {
                      {"listen",
                       [&](const Field& v) {
                         return assign(config_.global.metrics_listen, listen_endpoint(v));
                       }},
                  },
                  "e.g. metrics: {listen: \"127.0.0.1:9475\"}");
}

Status ConfigParser::parse_vips(const Field& f) {
  vips_mark_ = f.key_mark;
  if (!f.value.IsSequence()) {
    return fail(f.mark(), f.path,
                "expected a list of VIPs, got " + describe(f.value) +
                    " (write '- vip: 198.18.200.1:80/tcp' items, or vips: [] for none)");
  }
  size_t index = 0;
  for (const auto& node : f.value) {
    XLB_TRY(parse_vip(Field{item(f.path, index), YAML::Mark::null_mark(), node}));
    index++;
  }
  return ok_status();
}

Status ConfigParser::parse_vip(const Field& f) {
  VipSpec vip;
  std::optional<Field> health_field;
  HealthMarks health_marks;
  health_overrides_.clear();
  XLB_TRY(walk_map(
      f,
      {
          {"vip",
           [&](const Field& v) -> Status {
             auto text = scalar(v, "a VIP such as 198.18.200.1:80/tcp");
             if (!text) return text.error();
             auto key = VipKey::parse(*text);
             if (!key) {
               std::string what = key.error().message;
               if (what.find("e.g.") == std::string::npos &&
                   what.find("port 0") == std::string::npos) {
                 what +=
                     " (e.g. 198.18.200.1:80/tcp, 198.18.200.2/udp or "
                     "\"[2001:db8:200::1]:443/tcp\")";
               }
               return fail(v.mark(), v.path, what);
             }
             if (auto why = unusable_address(key->address, "a VIP")) {
               return fail(v.mark(), v.path, *why);
             }
             if (auto [first, fresh] = vip_lines_.emplace(*key, line_of(v.mark())); !fresh) {
               return fail(v.mark(), v.path,
                           key->to_string() + " is already defined on line " +
                               std::to_string(first->second) + " (merge the two entries)");
             }
             vip.key = *key;
             return ok_status();
           },
           true},
          {"name", [&](const Field& v) { return assign(vip.name, vip_name(v)); }},
          {"no_lru", [&](const Field& v) { return assign(vip.no_lru, boolean(v)); }},
          {"hash", [&](const Field& v) { return assign(vip.hash, choice(v, parse_hash_mode)); }},
          {"gue", [&](const Field& v) { return assign(vip.gue, boolean(v)); }},
          {"icmp_too_big", [&](const Field& v) { return assign(vip.icmp_too_big, boolean(v)); }},
          {"no_rate_guard", [&](const Field& v) { return assign(vip.no_rate_guard, boolean(v)); }},
          {"ring_size", [&](const Field& v) { return assign(vip.ring_size, ring_size(v)); }},
          {"backends", [&](const Field& v) { return assign(vip.backends, parse_backends(v)); }},
          {"health",
           [&](const Field& v) {
             health_field = v;
             return parse_health(v, vip.health, health_marks, /*type_required=*/true);
           }},
          {"all_down",
           [&](const Field& v) { return assign(vip.all_down, choice(v, parse_all_down_policy)); }},
      },
      "e.g. - vip: 198.18.200.1:80/tcp"));
  // Needs the VIP's port, which may be written after the health map.
  if (health_field) {
    XLB_TRY(check_health(*health_field, vip.key, vip.health, health_marks, "the default"));
  }
  // A backend's override is checked as the spec it makes with the VIP's health, which may be
  // written after the backends.
  for (const auto& site : health_overrides_) {
    const BackendSpec* b = vip.find_backend(site.address);
    XLB_TRY(check_health(site.field, vip.key, vip.health_for(*b), site.marks, "the VIP's"));
  }
  // Rings are built over backends sorted by address (VipSpec's invariant), whatever the file's
  // order, so every host derives the same ring from the same set.
  std::sort(vip.backends.begin(), vip.backends.end(),
            [](const BackendSpec& a, const BackendSpec& b) { return a.address < b.address; });
  vip_sites_.emplace_back(f.path, f.mark());
  config_.state.vips.emplace(vip.key, std::move(vip));
  return ok_status();
}

// ---- Health checks (docs/health.md) -------------------------------------------------------

Status ConfigParser::parse_health(const Field& f, HealthCheckSpec& h, HealthMarks& marks,
                                  bool type_required) {
  // Records where each key's value was written, then reads it.
  auto at = [&](const Field& v, auto read) -> Status {
    const auto dot = v.path.rfind('.');
    marks[v.path.substr(dot + 1)] = v.mark();
    return read(v);
  };
  auto text = [&](const Field& v, std::string& out, size_t max_length,
                  std::string_view what) -> Status {
    auto t = scalar(v, what);
    if (!t) return t.error();
    if (t->empty() || t->size() > max_length) {
      return fail(v.mark(), v.path,
                  "expected " + std::string(what) + " of 1.." + std::to_string(max_length) +
                      " bytes, got " + std::to_string(t->size()));
    }
    // Request lines and headers end at control characters; a space would split the request
    // line. None of them belongs in a path or a host name.
    for (char c : *t) {
      auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u == 0x7f) {
        return fail(v.mark(), v.path,
                    "'" + *t + "' holds a space or a control character (not allowed here)");
      }
    }
    out = *t;
    return ok_status();
  };
  const std::string check_range = "checks need at least 10ms between them, and 1h is the most";
  return walk_map(
      f,
      {
          {"type",
           [&](const Field& v) {
             return at(v,
                       [&](const Field& x) { return assign(h.type, choice(x, parse_check_type)); });
           },
           type_required},
          {"interval",
           [&](const Field& v) {
             return at(v, [&](const Field& x) {
               return assign(h.interval_ms,
                             duration_ms(x, hb::kMinCheckIntervalMs, hb::kMaxCheckMs, check_range));
             });
           }},
          {"timeout",
           [&](const Field& v) {
             return at(v, [&](const Field& x) {
               return assign(h.timeout_ms,
                             duration_ms(x, 1, hb::kMaxCheckMs, "below the interval, above 0"));
             });
           }},
          {"fastinter",
           [&](const Field& v) {
             return at(v, [&](const Field& x) {
               return assign(h.fastinter_ms,
                             duration_ms(x, hb::kMinCheckIntervalMs, hb::kMaxCheckMs, check_range));
             });
           }},
          {"downinter",
           [&](const Field& v) {
             return at(v, [&](const Field& x) {
               return assign(h.downinter_ms,
                             duration_ms(x, hb::kMinCheckIntervalMs, hb::kMaxCheckMs, check_range));
             });
           }},
          {"rise",
           [&](const Field& v) {
             return at(v, [&](const Field& x) {
               return assign(h.rise, integer(x, 1, hb::kMaxRiseFall,
                                             "good checks in a row that bring a backend back"));
             });
           }},
          {"fall",
           [&](const Field& v) {
             return at(v, [&](const Field& x) {
               return assign(h.fall, integer(x, 1, hb::kMaxRiseFall,
                                             "failed checks in a row that take a backend out"));
             });
           }},
          {"port",
           [&](const Field& v) {
             return at(v, [&](const Field& x) {
               return assign(h.port, integer(x, 1, 65535, "the port checks go to"));
             });
           }},
          {"address",
           [&](const Field& v) {
             return at(v, [&](const Field& x) -> Status {
               auto t = scalar(x, "an IP address");
               if (!t) return t.error();
               auto a = IpAddress::parse(*t);
               if (!a) {
                 return fail(x.mark(), x.path,
                             a.error().message + " (write a bare address, e.g. 198.18.3.11)");
               }
               if (auto why = unusable_address(*a, "a check target")) {
                 return fail(x.mark(), x.path, *why);
               }
               h.address = *a;
               return ok_status();
             });
           }},
          {"http_path",
           [&](const Field& v) {
             return at(v, [&](const Field& x) -> Status {
               XLB_TRY(text(x, h.http_path, hb::kMaxHttpPathLength, "a path such as /healthz"));
               if (h.http_path.front() != '/') {
                 return fail(x.mark(), x.path,
                             "'" + h.http_path + "' must start with '/' (e.g. /healthz)");
               }
               return ok_status();
             });
           }},
          {"http_host",
           [&](const Field& v) {
             return at(v, [&](const Field& x) {
               return text(x, h.http_host, hb::kMaxHttpHostLength, "a host name");
             });
           }},
          {"http_status",
           [&](const Field& v) {
             return at(v, [&](const Field& x) -> Status {
               auto t = scalar(x, "a status or a range such as 200-399");
               if (!t) return t.error();
               std::string_view s = *t;
               auto dash = s.find('-');
               std::string_view lo = s.substr(0, dash);
               std::string_view hi = dash == std::string_view::npos ? lo : s.substr(dash + 1);
               uint16_t min = 0, max = 0;
               auto number = [](std::string_view d, uint16_t& out) {
                 return d.size() == 3 && is_digits(d) &&
                        std::from_chars(d.data(), d.data() + 3, out).ec == std::errc();
               };
               if (!number(lo, min) || !number(hi, max) || min < 100 || max > 599 || min > max) {
                 return fail(x.mark(), x.path,
                             "'" + *t +
                                 "' is not a status or a range of statuses within 100-599 (e.g. "
                                 "200, or 200-399)");
               }
               h.http_status_min = min;
               h.http_status_max = max;
               return ok_status();
             });
           }},
          {"http_body_contains",
           [&](const Field& v) {
             return at(v, [&](const Field& x) -> Status {
               auto t = scalar(x, "a string");
               if (!t) return t.error();
               if (t->empty() || t->size() > hb::kMaxBodyNeedleLength) {
                 return fail(x.mark(), x.path,
                             "expected 1.." + std::to_string(hb::kMaxBodyNeedleLength) +
                                 " bytes (the string the response body must hold)");
               }
               h.http_body_contains = *t;
               return ok_status();
             });
           }},
          {"dns_query_name",
           [&](const Field& v) {
             return at(v, [&](const Field& x) -> Status {
               auto t = scalar(x, "a DNS name");
               if (!t) return t.error();
               // Length-prefixed labels of 1..63 bytes, 255 bytes in all (RFC 1035).
               std::string_view name = *t;
               bool ok = true;
               if (name != ".") {
                 if (!name.empty() && name.back() == '.') name.remove_suffix(1);
                 ok = name.size() <= 253;
                 size_t start = 0;
                 while (ok && start <= name.size()) {
                   size_t dot = name.find('.', start);
                   size_t end = dot == std::string_view::npos ? name.size() : dot;
                   ok = end > start && end - start <= 63;
                   if (dot == std::string_view::npos) break;
                   start = dot + 1;
                 }
               }
               if (!ok) {
                 return fail(x.mark(), x.path,
                             "'" + *t +
                                 "' is not a DNS name (labels of 1..63 bytes separated by dots, "
                                 "e.g. health.example.com; \".\" is the root)");
               }
               h.dns_query_name = *t;
               return ok_status();
             });
           }},
          {"exec_command",
           [&](const Field& v) {
             return at(v, [&](const Field& x) -> Status {
               const std::string example = " (e.g. [/usr/local/bin/check-db, --quick])";
               if (!x.value.IsSequence() || x.value.size() == 0) {
                 return fail(x.mark(), x.path,
                             "expected the program and its arguments as a list, got " +
                                 describe(x.value) + example);
               }
               h.exec_command.clear();
               size_t i = 0;
               for (const auto& node : x.value) {
                 auto arg =
                     scalar(Field{item(x.path, i), YAML::Mark::null_mark(), node}, "a string");
                 if (!arg) return arg.error();
                 if (i == 0 && arg->empty()) {
                   return fail(node.Mark(), item(x.path, 0), "the program name is empty" + example);
                 }
                 h.exec_command.push_back(*arg);
                 i++;
               }
               return ok_status();
             });
           }},
          {"slow_start",
           [&](const Field& v) {
             return at(v, [&](const Field& x) {
               return assign(h.slow_start_ms,
                             duration_ms(x, 0, hb::kMaxCheckMs,
                                         "0s turns it off; a ramp over an hour would leave a "
                                         "backend under-used for that long"));
             });
           }},
      },
      "e.g. health: {type: tcp, interval: 2s, timeout: 1s}");
}

Status ConfigParser::check_health(const Field& f, const VipKey& key, const HealthCheckSpec& h,
                                  const HealthMarks& marks, std::string_view unwritten) {
  auto mark_of = [&](std::string_view name) {
    auto it = marks.find(name);
    return it == marks.end() ? f.mark() : it->second;
  };
  auto path_of = [&](std::string_view name) { return join(f.path, name); };
  const std::string type(to_string(h.type));
  // Keys that only one kind of check reads: given with another, the type is most likely wrong.
  // With type none (checks off) every key may stay, for when a type is set again.
  struct Only {
    std::string_view key;
    std::initializer_list<CheckType> types;
    std::string_view which;
  };
  const Only only[] = {
      {"http_path", {CheckType::kHttp, CheckType::kHttps}, "http and https checks"},
      {"http_host", {CheckType::kHttp, CheckType::kHttps}, "http and https checks"},
      {"http_status", {CheckType::kHttp, CheckType::kHttps}, "http and https checks"},
      {"http_body_contains", {CheckType::kHttp, CheckType::kHttps}, "http and https checks"},
      {"dns_query_name", {CheckType::kUdpDns}, "udp-dns checks"},
      {"exec_command", {CheckType::kExec}, "exec checks"},
  };
  if (h.type == CheckType::kNone) return ok_status();
  for (const auto& o : only) {
    if (!marks.contains(o.key)) continue;
    if (std::find(o.types.begin(), o.types.end(), h.type) != o.types.end()) continue;
    return fail(mark_of(o.key), path_of(o.key),
                "applies to " + std::string(o.which) + " only, and this check is " + type +
                    " (fix the type or remove the key)");
  }
  if (h.timeout_ms >= h.interval_ms) {
    const bool timeout_written = marks.contains("timeout");
    const bool interval_written = marks.contains("interval");
    // Points at the key that made the pair wrong (the map itself when neither is written here).
    const std::string_view culprit = timeout_written || !interval_written ? "timeout" : "interval";
    const std::string aside = ", " + std::string(unwritten);
    return fail(mark_of(culprit), timeout_written || interval_written ? path_of(culprit) : f.path,
                "the timeout (" + format_ms(h.timeout_ms) + (timeout_written ? "" : aside) +
                    ") must be below the interval (" + format_ms(h.interval_ms) +
                    (interval_written ? "" : aside) +
                    "): a check must end before the next one starts");
  }
  const bool needs_port = h.type == CheckType::kTcp || h.type == CheckType::kHttp ||
                          h.type == CheckType::kHttps || h.type == CheckType::kUdpDns;
  if (needs_port && !h.port && key.port == 0) {
    return fail(mark_of("type"), path_of("type"),
                "a " + type + " check of the port-less VIP " + key.to_string() +
                    " needs a port (add health.port: the port the backends answer checks on)");
  }
  if (h.type == CheckType::kExec && h.exec_command.empty()) {
    return fail(mark_of("type"), path_of("type"),
                "an exec check needs exec_command (e.g. exec_command: "
                "[/usr/local/bin/check-db, --quick])");
  }
  return ok_status();
}

// The keys written in a health map (`marks`), with the values `parsed` holds for them.
HealthCheckOverride override_of(const HealthCheckSpec& parsed,
                                const std::map<std::string, YAML::Mark, std::less<>>& marks) {
  HealthCheckOverride o;
  auto take = [&](std::string_view key, auto& field, const auto& value) {
    if (marks.contains(key)) field = value;
  };
  take("type", o.type, parsed.type);
  take("interval", o.interval_ms, parsed.interval_ms);
  take("timeout", o.timeout_ms, parsed.timeout_ms);
  take("fastinter", o.fastinter_ms, parsed.fastinter_ms);
  take("downinter", o.downinter_ms, parsed.downinter_ms);
  take("rise", o.rise, parsed.rise);
  take("fall", o.fall, parsed.fall);
  take("port", o.port, parsed.port);
  take("address", o.address, parsed.address);
  take("http_path", o.http_path, parsed.http_path);
  take("http_host", o.http_host, parsed.http_host);
  take("http_status", o.http_status_min, parsed.http_status_min);
  take("http_status", o.http_status_max, parsed.http_status_max);
  take("http_body_contains", o.http_body_contains, parsed.http_body_contains);
  take("dns_query_name", o.dns_query_name, parsed.dns_query_name);
  take("exec_command", o.exec_command, parsed.exec_command);
  take("slow_start", o.slow_start_ms, parsed.slow_start_ms);
  return o;
}

Result<std::vector<BackendSpec>> ConfigParser::parse_backends(const Field& f) {
  if (!f.value.IsSequence()) {
    return fail(f.mark(), f.path,
                "expected a list of backends, got " + describe(f.value) +
                    " (write '- address: 198.18.3.11' items, or backends: [] for none)");
  }
  std::vector<BackendSpec> backends;
  std::map<IpAddress, int> lines;  // address -> line, to name the first of a duplicate
  for (const auto& node : f.value) {
    const Field entry{item(f.path, backends.size()), YAML::Mark::null_mark(), node};
    if (backends.size() >= cb::kMaxBackendsPerVip) {
      return fail(entry.mark(), entry.path,
                  "a VIP takes at most " + std::to_string(cb::kMaxBackendsPerVip) +
                      " backends (beyond, even the largest ring gives each fewer than 100 "
                      "slots; split the service over more VIPs)");
    }
    BackendSpec b;
    YAML::Mark address_mark;
    std::optional<Field> health_field;
    HealthMarks health_marks;
    XLB_TRY(walk_map(
        entry,
        {
            {"address",
             [&](const Field& v) -> Status {
               auto text = scalar(v, "an IP address");
               if (!text) return text.error();
               auto address = IpAddress::parse(*text);
               if (!address) {
                 // The data plane keeps the VIP's destination port (DSR), so a backend is an
                 // address alone; say so when the text looks like an endpoint or a prefix.
                 std::string hint = " (write a bare address, e.g. 198.18.3.11 or 2001:db8:3::11)";
                 if (Endpoint::parse(*text)) {
                   hint =
                       " (a backend is an address without a port: packets keep the VIP's "
                       "destination port)";
                 } else if (text->find('/') != std::string::npos) {
                   hint = " (a backend is one address, not a prefix)";
                 }
                 return fail(v.mark(), v.path, address.error().message + hint);
               }
               if (auto why = unusable_address(*address, "a backend")) {
                 return fail(v.mark(), v.path, *why);
               }
               if (auto [first, fresh] = lines.emplace(*address, line_of(v.mark())); !fresh) {
                 return fail(v.mark(), v.path,
                             address->to_string() + " is already a backend of this VIP, on line " +
                                 std::to_string(first->second) + " (list it once)");
               }
               b.address = *address;
               address_mark = v.mark();
               return ok_status();
             },
             true},
            {"weight",
             [&](const Field& v) {
               return assign(b.weight, integer(v, 0, cb::kMaxWeight,
                                               "a relative share; 0 takes no new flows"));
             }},
            {"state",
             [&](const Field& v) { return assign(b.state, choice(v, parse_backend_state)); }},
            {"health",
             [&](const Field& v) -> Status {
               // The VIP's parser reads the keys; those written become the override.
               HealthCheckSpec parsed;
               HealthMarks marks;
               XLB_TRY(parse_health(v, parsed, marks, /*type_required=*/false));
               b.health = override_of(parsed, marks);
               health_field = v;
               health_marks = std::move(marks);
               return ok_status();
             }},
        },
        "write '- address: 198.18.3.11', optionally with weight, state and health"));
    // Checked with the VIP's health once the VIP is read (parse_vip).
    if (health_field) {
      health_overrides_.push_back({*health_field, std::move(health_marks), b.address});
    }
    backend_sites_.push_back({join(entry.path, "address"), address_mark, b.address.family()});
    backends.push_back(b);
  }
  return backends;
}

Status ConfigParser::check_whole_file() {
  const GlobalConfig& g = config_.global;
  if (vip_sites_.size() > g.limits.max_vips) {
    const auto& [path, mark] = vip_sites_[g.limits.max_vips];
    return fail(mark, path,
                "more VIPs than limits.max_vips = " + std::to_string(g.limits.max_vips) +
                    " (raise limits.max_vips, up to " + std::to_string(cb::kMaxVips) + ")");
  }
  if (backend_sites_.size() > g.limits.max_backends) {
    const auto& site = backend_sites_[g.limits.max_backends];
    return fail(site.mark, site.path,
                "more VIP backends in all than limits.max_backends = " +
                    std::to_string(g.limits.max_backends) + " (raise limits.max_backends, up to " +
                    std::to_string(cb::kMaxBackends) + ")");
  }
  // IPv6 promises every link carries 1280-byte packets, and clients do not go below that
  // whatever a packet-too-big says (RFC 8201): a smaller limit black-holes IPv6 VIPs.
  const uint32_t min_v6_frame = 1280 + 14;
  if (g.max_packet_size < min_v6_frame) {
    for (const auto& [key, vip] : config_.state.vips) {
      if (key.address.is_v6()) {
        return fail(max_packet_size_mark_, "max_packet_size",
                    std::to_string(g.max_packet_size) + " is below " +
                        std::to_string(min_v6_frame) + " while IPv6 VIP " + key.to_string() +
                        " exists (IPv6 needs 1280-byte packets plus 14 bytes of Ethernet "
                        "header; raise it)");
      }
    }
  }
  // The outer header of an encapsulated packet has the backend's family, and its source comes
  // from that family's prefix.
  for (const auto& site : backend_sites_) {
    const bool v4 = site.family == Family::kV4;
    if (v4 && !g.encap_source_v4) {
      return fail(site.mark, site.path,
                  "an IPv4 backend needs encap_source_v4 (add e.g. encap_source_v4: "
                  "198.19.0.0/16, the prefix of outer source addresses)");
    }
    if (!v4 && !g.encap_source_v6) {
      return fail(site.mark, site.path,
                  "an IPv6 backend needs encap_source_v6 (add e.g. encap_source_v6: "
                  "2001:db8:ff::/64, the prefix of outer source addresses)");
    }
  }
  // The model's own invariants; the walk above should have caught every one of them, so this
  // is a safety net pointing at the whole list.
  if (Status s = validate(config_.state, g.limits.max_vips, g.limits.max_backends); !s) {
    return fail(vips_mark_, "vips", s.error().message);
  }
  return ok_status();
}

}  // namespace

// ---- Public API ---------------------------------------------------------------------------

Result<Config> parse_config(std::string_view yaml_text, const std::string& source_name) {
  return ConfigParser(source_name.empty() ? "<config>" : source_name).parse(yaml_text);
}

Result<Config> load_config(const std::string& path) {
  // A config file is a few MB at the very most (65536 backends); anything larger is the wrong
  // file, and reading it whole would only waste memory.
  constexpr size_t kMaxFileSize = 64 << 20;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error::from_errno(errno, path + ": cannot open the configuration file (check the path)");
  }
  std::string text;
  char buf[65536];
  int err = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileSize) {
      ::close(fd);
      return Error::invalid(path + ": larger than 64 MiB, not a configuration file");
    }
  }
  ::close(fd);
  if (err != 0) {
    return Error::from_errno(err, path + ": cannot read the configuration file");
  }
  return parse_config(text, path);
}

Result<std::array<uint8_t, 6>> parse_mac(std::string_view text) {
  auto bad = [&] {
    return Error::invalid("'" + std::string(text) +
                          "' is not a MAC address (want six hex octets separated by ':', e.g. "
                          "02:00:00:00:02:fe)");
  };
  if (text.size() != 17) return bad();
  std::array<uint8_t, 6> mac{};
  for (size_t i = 0; i < 6; i++) {
    if (i > 0 && text[i * 3 - 1] != ':') return bad();
    const char* first = text.data() + i * 3;
    auto [end, ec] = std::from_chars(first, first + 2, mac[i], 16);
    if (ec != std::errc() || end != first + 2) return bad();
  }
  return mac;
}

std::string format_mac(const std::array<uint8_t, 6>& mac) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

Result<uint64_t> parse_duration_ms(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') digits++;
  std::string_view number = text.substr(0, digits);
  std::string_view unit = text.substr(digits);
  uint64_t scale = 0;
  if (unit == "ms") scale = 1;
  if (unit == "s") scale = 1000;
  if (unit == "m") scale = 60 * 1000;
  if (unit == "h") scale = 3600 * 1000;
  if (!number.empty() && unit.empty()) {
    return Error::invalid("'" + std::string(text) + "' has no unit (write " + std::string(text) +
                          "s or " + std::string(text) + "ms)");
  }
  if (number.empty() || scale == 0) {
    return Error::invalid("'" + std::string(text) +
                          "' is not a duration (an integer and one unit: ms, s, m or h, e.g. 30s "
                          "or 500ms)");
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || value > UINT64_MAX / scale) {
    return Error::invalid("'" + std::string(text) + "' is too long a duration");
  }
  return value * scale;
}

}  // namespace xlb::state
