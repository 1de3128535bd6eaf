// SPDX-License-Identifier: Apache-2.0
#include "handlers.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

#include "xlb/api/client.h"
#include "xlbctl/render.h"
#include "xlbctl/stats.h"
#include "xlbctl/syntax.h"

#ifndef XLBCTL_VERSION
#define XLBCTL_VERSION "dev"
#endif

namespace xlbctl::handlers {
namespace {

using xlb::Error;
using xlb::Result;
using xlb::Status;
using xlb::state::VipKey;

constexpr uint64_t kMaxU32 = std::numeric_limits<uint32_t>::max();

// Pretty-printed like the API's own answers; invalid UTF-8 (never expected) is replaced rather
// than thrown on.
void print_json(Call& c, const Json& j) {
  c.env.out << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
}

template <typename T>
Result<T> as_usage(Result<T> r, std::string_view prefix) {
  if (r) return r;
  return usage_error(std::string(prefix) + r.error().message);
}

std::string backend_path(const VipKey& vip, const xlb::IpAddress& address) {
  return xlb::api::vip_path(vip) + "/backends/" + xlb::api::encode_component(address.to_string());
}

// The state a backend set/plan asks for with --drain / --undrain / --disable, if any.
Result<std::optional<std::string>> state_flag(const ParsedArgs& args, bool allow_disable) {
  std::optional<std::string> state;
  int given = 0;
  for (auto [flag, value] : {std::pair{"drain", "draining"}, std::pair{"undrain", "active"},
                             std::pair{"disable", "disabled"}}) {
    if (!args.has(flag) || (!allow_disable && std::string_view(flag) == "disable")) continue;
    state = value;
    given++;
  }
  if (given > 1) {
    return usage_error(std::string("--drain, --undrain") + (allow_disable ? ", --disable" : "") +
                       ": give one at most");
  }
  return state;
}

Result<uint32_t> weight_flag(const std::string& text) {
  auto w = parse_uint(text, "--weight", 0, kMaxU32);
  if (!w) return w.error();
  return static_cast<uint32_t>(*w);
}

// What the API answers for an unknown VIP, for filters xlbctl applies itself (health).
Error no_vip(const VipKey& key) {
  return Error{std::error_code(404, xlb::api::http_category()), "no VIP " + key.to_string()};
}

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

}  // namespace

Status help(Call& c) {
  const auto& words = c.args.positionals;
  if (words.empty()) {
    c.env.out << general_help();
    return {};
  }
  size_t n = 0;
  const Command* command = find_command(words, &n);
  if (command != nullptr && n == words.size()) {
    c.env.out << command_help(*command);
    return {};
  }
  std::string group = words.size() == 1 ? group_help(words[0]) : "";
  if (group.empty()) {
    std::string all;
    for (const auto& w : words) all += (all.empty() ? "" : " ") + w;
    return usage_error("no command '" + all + "' (xlbctl help lists them)");
  }
  c.env.out << group;
  return {};
}

Status status(Call& c) {
  auto s = c.api.get("/v1/status");
  if (!s) return s.error();
  if (c.options.json) {
    Json out = *s;
    if (out.is_object()) {
      out["xlbctl_version"] = XLBCTL_VERSION;
      out["api"] = c.api.describe();
    }
    print_json(c, out);
  } else {
    c.env.out << render_status(*s, c.api.describe(), XLBCTL_VERSION);
  }
  return {};
}

Status vip_list(Call& c) {
  auto vips = c.api.get("/v1/vips");
  if (!vips) return vips.error();
  if (c.options.json) {
    print_json(c, *vips);
  } else {
    c.env.out << render_vip_list(*vips);
  }
  return {};
}

Status vip_show(Call& c) {
  auto key = parse_vip(c.args.positionals[0]);
  if (!key) return key.error();
  auto vip = c.api.get(xlb::api::vip_path(*key));
  if (!vip) return vip.error();
  if (c.options.json) {
    print_json(c, *vip);
  } else {
    c.env.out << render_vip(*vip);
  }
  return {};
}

Status vip_add(Call& c) {
  auto key = parse_vip(c.args.positionals[0]);
  if (!key) return key.error();
  Json body = {{"vip", key->to_string()}};
  if (auto name = c.args.value("name")) {
    if (name->empty()) return usage_error("--name: empty (leave the flag out for no name)");
    body["name"] = *name;
  }
  if (auto ring = c.args.value("ring-size")) {
    auto n = parse_uint(*ring, "--ring-size", 1, kMaxU32);
    if (!n) return n.error();
    body["ring_size"] = *n;
  }
  if (auto hash = c.args.value("hash")) {
    auto mode = as_usage(xlb::state::parse_hash_mode(*hash), "--hash: ");
    if (!mode) return mode.error();
    body["hash"] = std::string(xlb::state::to_string(*mode));
  }
  if (c.args.has("no-lru")) body["no_lru"] = true;
  if (c.args.has("gue")) body["gue"] = true;
  if (c.args.has("icmp-too-big")) body["icmp_too_big"] = true;
  if (c.args.has("no-rate-guard")) body["no_rate_guard"] = true;
  auto vip = c.api.post("/v1/vips", body);
  if (!vip) return vip.error();
  if (c.options.json) {
    print_json(c, *vip);
  } else {
    c.env.out << "added VIP " << key->to_string() << "\n" << render_vip(*vip);
  }
  return {};
}

Status vip_del(Call& c) {
  auto key = parse_vip(c.args.positionals[0]);
  if (!key) return key.error();
  auto done = c.api.del(xlb::api::vip_path(*key));
  if (!done) return done.error();
  if (c.options.json) {
    print_json(c, *done);
  } else {
    c.env.out << "deleted VIP " << key->to_string() << "\n";
  }
  return {};
}

Status backend_list(Call& c) {
  auto key = parse_vip(c.args.positionals[0]);
  if (!key) return key.error();
  auto backends = c.api.get(xlb::api::vip_path(*key) + "/backends");
  if (!backends) return backends.error();
  if (c.options.json) {
    print_json(c, *backends);
  } else {
    c.env.out << render_backends(*backends);
  }
  return {};
}

Status backend_add(Call& c) {
  auto key = parse_vip(c.args.positionals[0]);
  if (!key) return key.error();
  auto address = parse_backend_address(c.args.positionals[1]);
  if (!address) return address.error();
  Json body = {{"address", address->to_string()}};
  if (auto w = c.args.value("weight")) {
    auto weight = weight_flag(*w);
    if (!weight) return weight.error();
    body["weight"] = *weight;
  }
  if (auto s = c.args.value("state")) {
    auto state = as_usage(xlb::state::parse_backend_state(*s), "--state: ");
    if (!state) return state.error();
    body["state"] = std::string(xlb::state::to_string(*state));
  }
  auto backend = c.api.post(xlb::api::vip_path(*key) + "/backends", body);
  if (!backend) return backend.error();
  if (c.options.json) {
    print_json(c, *backend);
  } else {
    c.env.out << "VIP " << key->to_string() << ": added backend " << address->to_string() << "\n"
              << render_backends(*backend);
  }
  return {};
}

Status backend_del(Call& c) {
  auto key = parse_vip(c.args.positionals[0]);
  if (!key) return key.error();
  auto address = parse_backend_address(c.args.positionals[1]);
  if (!address) return address.error();
  auto done = c.api.del(backend_path(*key, *address));
  if (!done) return done.error();
  if (c.options.json) {
    print_json(c, *done);
  } else {
    c.env.out << "VIP " << key->to_string() << ": deleted backend " << address->to_string() << "\n";
  }
  return {};
}

Status backend_set(Call& c) {
  auto key = parse_vip(c.args.positionals[0]);
  if (!key) return key.error();
  auto address = parse_backend_address(c.args.positionals[1]);
  if (!address) return address.error();
  Json body = Json::object();
  if (auto w = c.args.value("weight")) {
    auto weight = weight_flag(*w);
    if (!weight) return weight.error();
    body["weight"] = *weight;
  }
  auto state = state_flag(c.args, /*allow_disable=*/true);
  if (!state) return state.error();
  if (*state) body["state"] = **state;
  if (body.empty())
    return usage_error("nothing to set: give --weight N, --drain, --undrain or --disable");
  auto backend = c.api.patch(backend_path(*key, *address), body);
  if (!backend) return backend.error();
  if (c.options.json) {
    print_json(c, *backend);
  } else {
    c.env.out << "VIP " << key->to_string() << ": backend " << address->to_string() << " now\n"
              << render_backends(*backend);
  }
  return {};
}

Status stats(Call& c) {
  std::string path = "/v1/stats";
  if (!c.args.positionals.empty()) {
    auto key = parse_vip(c.args.positionals[0]);
    if (!key) return key.error();
    path += "?vip=" + xlb::api::encode_component(key->to_string());
  }
  const bool watch = c.args.has("watch");
  std::chrono::milliseconds interval(1000);
  if (auto text = c.args.value("interval")) {
    auto d = parse_duration(*text, "--interval");
    if (!d) return d.error();
    interval = *d;
  }
  uint64_t count = 0;  // unbounded
  if (auto text = c.args.value("count")) {
    if (!watch) return usage_error("--count goes with --watch");
    auto n = parse_uint(*text, "--count", 1, 1'000'000'000);
    if (!n) return n.error();
    count = *n;
  }
  if (watch && interval.count() == 0) return usage_error("--watch needs an --interval above 0");

  if (watch && c.env.catch_interrupts) c.env.catch_interrupts();
  auto before = c.api.get(path);
  if (!before) return before.error();
  auto before_at = c.env.now();
  if (!watch && interval.count() == 0) {
    Json doc = stats_with_rates(*before, nullptr, 0);
    if (c.options.json) {
      print_json(c, doc);
    } else {
      c.env.out << render_stats(doc, 0);
    }
    return {};
  }
  for (uint64_t i = 1; count == 0 || i <= count; i++) {
    c.env.sleep(interval);
    if (watch && c.env.interrupted()) break;
    auto now = c.api.get(path);
    if (!now) {
      if (watch && c.env.interrupted()) break;  // Ctrl-C cut the request short
      return now.error();
    }
    auto now_at = c.env.now();
    // The measured time, not the nominal interval: requests and scheduling take some.
    double seconds = std::chrono::duration<double>(now_at - before_at).count();
    if (seconds <= 0) seconds = std::chrono::duration<double>(interval).count();
    Json doc = stats_with_rates(*now, &*before, seconds);
    if (!watch) {
      if (c.options.json) {
        print_json(c, doc);
      } else {
        c.env.out << render_stats(doc, 20);
      }
      return {};
    }
    if (c.options.json) {
      // JSON Lines: one complete document per sample, for `| jq` or a log.
      c.env.out << doc.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    } else {
      // Cursor home and clear screen: the new sample replaces the old one in place.
      c.env.out << "\033[H\033[2J"
                << "xlbctl stats: sample " << i << (count ? " of " + std::to_string(count) : "")
                << ", every " << duration_text(interval) << " (Ctrl-C to stop)\n\n"
                << render_stats(doc, 30);
    }
    c.env.out.flush();
    before = std::move(now);
    before_at = now_at;
  }
  return {};
}

Status health(Call& c) {
  std::optional<VipKey> only;
  if (!c.args.positionals.empty()) {
    auto key = parse_vip(c.args.positionals[0]);
    if (!key) return key.error();
    only = *key;
  }
  auto health = c.api.get("/v1/health");
  if (!health) return health.error();
  Json doc = *health;
  // The API lists every VIP; one is picked here.
  if (only && doc.is_object() && doc.contains("vips") && doc["vips"].is_array()) {
    Json kept = Json::array();
    for (const auto& v : doc["vips"]) {
      if (str_field(v, "vip") == only->to_string()) kept.push_back(v);
    }
    if (kept.empty()) return no_vip(*only);
    doc["vips"] = std::move(kept);
  }
  if (c.options.json) {
    print_json(c, doc);
  } else {
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    c.env.out << render_health(doc, now);
  }
  return {};
}

Status plan(Call& c) {
  auto key = parse_vip(c.args.positionals[0]);
  if (!key) return key.error();
  const auto& a = c.args;
  if (!a.has("remove") && !a.has("add") && !a.has("set")) {
    return usage_error("say what to plan: --remove B, --add B or --set B");
  }
  if (a.has("add") && a.has("set")) {
    return usage_error("--add and --set: plan one of them at a time (--weight would be ambiguous)");
  }
  auto state = state_flag(a, /*allow_disable=*/false);
  if (!state) return state.error();
  if (*state && !a.has("set")) return usage_error("--drain and --undrain go with --set B");
  if (a.has("weight") && !a.has("add") && !a.has("set")) {
    return usage_error("--weight goes with --add B or --set B");
  }
  if (a.has("set") && !a.has("weight") && !*state) {
    return usage_error("--set B needs --weight N, --drain or --undrain");
  }
  std::optional<uint32_t> weight;
  if (auto w = a.value("weight")) {
    auto parsed = weight_flag(*w);
    if (!parsed) return parsed.error();
    weight = *parsed;
  }
  Json body = {{"vip", key->to_string()}};
  if (auto b = a.value("remove")) {
    auto address = parse_backend_address(*b);
    if (!address) return address.error();
    body["remove"] = address->to_string();
  }
  for (const char* which : {"add", "set"}) {
    auto b = a.value(which);
    if (!b) continue;
    auto address = parse_backend_address(*b);
    if (!address) return address.error();
    Json entry = {{"address", address->to_string()}};
    if (weight) entry["weight"] = *weight;
    if (*state) entry["state"] = **state;
    body[which] = std::move(entry);
  }
  auto result = c.api.post("/v1/plan", body);
  if (!result) return result.error();
  if (c.options.json) {
    print_json(c, *result);
  } else {
    c.env.out << render_plan(*result);
  }
  return {};
}

Status lookup(Call& c) {
  auto key = parse_vip(c.args.positionals[0]);
  if (!key) return key.error();
  auto from_text = c.args.value("from");
  if (!from_text) return usage_error("--from ADDRESS:PORT is required (the client of the flow)");
  auto from = parse_client_endpoint(*from_text);
  if (!from) return from.error();
  if (from->address.family() != key->address.family()) {
    return usage_error("client " + from->to_string() + " and VIP " + key->to_string() +
                       " are of different address families");
  }
  auto result = c.api.get("/v1/lookup?vip=" + xlb::api::encode_component(key->to_string()) +
                          "&from=" + xlb::api::encode_component(from->to_string()));
  if (!result) return result.error();
  if (c.options.json) {
    print_json(c, *result);
  } else {
    c.env.out << render_lookup(*result);
  }
  return {};
}

Status events_push(Call& c) {
  const std::string& from = c.args.positionals[0];
  std::string text;
  if (from == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(from, std::ios::binary);
    if (!in) return usage_error(from + ": cannot read (" + std::strerror(errno) + ")");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  Json body = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return usage_error(from + ": not JSON (see docs/discovery.md, Push API)");
  // A bare list is the events; an object is the whole body.
  if (body.is_array()) body = Json{{"events", std::move(body)}};
  if (!body.is_object()) return usage_error(from + ": want an object with \"events\", or a list of events");
  if (auto source = c.args.value("source")) {
    if (source->empty()) return usage_error("--source: empty");
    body["source"] = *source;
  }
  if (c.args.has("replace")) body["replace"] = true;
  auto reply = c.api.post("/v1/events", body);
  if (!reply) return reply.error();
  if (c.options.json) {
    print_json(c, *reply);
  } else {
    c.env.out << "queued " << uint_field(*reply, "accepted") << " event(s) for source "
              << str_field(*reply, "source", "?")
              << (bool_field(*reply, "replace") ? " (replacing its content)" : "")
              << "; they reach the data plane within the debounce window\n";
  }
  return {};
}

}  // namespace xlbctl::handlers
