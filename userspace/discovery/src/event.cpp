// SPDX-License-Identifier: Apache-2.0
#include "xlb/discovery/event.h"

#include <array>

#include "fields.h"

namespace xlb::discovery {
namespace {

using detail::json;

constexpr std::array<std::string_view, kRejectKinds> kRejectNames = {
    "syntax",
    "empty",
    "too_large",
    "not_object",
    "unknown_field",
    "duplicate_field",
    "wrong_type",
    "field_not_allowed",
    "missing_kind",
    "unknown_kind",
    "missing_vip",
    "bad_vip",
    "vip_not_unicast",
    "missing_backend",
    "missing_address",
    "bad_address",
    "address_with_port",
    "backend_not_unicast",
    "bad_weight",
    "bad_state",
    "bad_name",
    "bad_hash",
    "bad_ring_size",
    "bad_all_down",
    "bad_metadata",
    "key_mismatch",
    "bad_key",
    "duplicate_vip",
    "duplicate_backend",
    "too_many_backends",
    "unknown_source",
};

class RejectCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "xlb-discovery-reject"; }
  std::string message(int value) const override {
    if (value < 1 || value > kRejectKinds) return "unknown rejection";
    return std::string(kRejectNames[static_cast<size_t>(value - 1)]);
  }
};

Result<Event> read_event(const json& v, const Origin& origin, const std::string& path) {
  detail::ObjectReader r(v, origin, path);
  XLB_TRY(r.check({"kind", "vip", "backend", "spec"},
                  "e.g. {\"kind\": \"upsert_backend\", \"vip\": \"198.18.200.1:80/tcp\", "
                  "\"backend\": {\"address\": \"198.18.3.11\"}}"));
  Event e;
  auto kind_text = r.string("kind");
  if (!kind_text) return kind_text.error();
  if (!*kind_text) {
    return r.fail(Reject::kMissingKind, "kind",
                  "required (upsert_backend, remove_backend, upsert_vip or remove_vip)");
  }
  auto kind = parse_event_kind(**kind_text);
  if (!kind) return r.fail(Reject::kUnknownKind, "kind", kind.error().message);
  e.kind = *kind;

  auto vip_text = r.string("vip");
  if (!vip_text) return vip_text.error();
  if (!*vip_text) {
    return r.fail(Reject::kMissingVip, "vip", "required (e.g. \"198.18.200.1:80/tcp\")");
  }
  auto vip = detail::read_vip_text(**vip_text, origin, r.path("vip"));
  if (!vip) return vip.error();
  e.vip = *vip;

  const bool backend_event =
      e.kind == EventKind::kUpsertBackend || e.kind == EventKind::kRemoveBackend;
  const std::string kind_name(to_string(e.kind));
  if (r.has("spec") && e.kind != EventKind::kUpsertVip) {
    return r.fail(Reject::kFieldNotAllowed, "spec",
                  "only upsert_vip carries VIP settings, not " + kind_name);
  }
  if (r.has("backend") && !backend_event) {
    return r.fail(Reject::kFieldNotAllowed, "backend",
                  kind_name + " takes no backend (use upsert_backend / remove_backend)");
  }
  if (backend_event && !r.has("backend")) {
    return r.fail(Reject::kMissingBackend, "backend",
                  "required for " + kind_name + " (e.g. {\"address\": \"198.18.3.11\"})");
  }
  switch (e.kind) {
    case EventKind::kUpsertBackend: {
      auto b = detail::read_backend(*r.get("backend"), origin, r.path("backend"), true);
      if (!b) return b.error();
      e.backend = b->spec;
      e.metadata = std::move(b->metadata);
      break;
    }
    case EventKind::kRemoveBackend: {
      const json& bv = *r.get("backend");
      if (bv.is_object()) {
        for (const auto& item : bv.items()) {
          if (item.key() != "address") {
            return rejection(Reject::kFieldNotAllowed,
                             origin.at(detail::join_path(r.path("backend"), item.key())) +
                                 "remove_backend takes the address only");
          }
        }
      }
      auto b = detail::read_backend(bv, origin, r.path("backend"), true);
      if (!b) return b.error();
      e.backend = state::BackendSpec{.address = b->spec.address};
      break;
    }
    case EventKind::kUpsertVip: {
      state::VipSpec spec;
      spec.key = e.vip;
      if (const json* sv = r.get("spec")) {
        detail::ObjectReader sr(*sv, origin, r.path("spec"));
        XLB_TRY(sr.check(detail::vip_setting_keys({}),
                         "the VIP's settings, e.g. {\"name\": \"web\", \"hash\": \"src\"}; "
                         "backends are events of their own"));
        XLB_TRY(detail::read_vip_settings(sr, spec));
      }
      e.vip_spec = std::move(spec);
      break;
    }
    case EventKind::kRemoveVip:
      break;
  }
  return e;
}

}  // namespace

std::string_view to_string(EventKind k) {
  switch (k) {
    case EventKind::kUpsertBackend:
      return "upsert_backend";
    case EventKind::kRemoveBackend:
      return "remove_backend";
    case EventKind::kUpsertVip:
      return "upsert_vip";
    case EventKind::kRemoveVip:
      return "remove_vip";
  }
  return "?";
}

Result<EventKind> parse_event_kind(std::string_view text) {
  for (auto k : {EventKind::kUpsertBackend, EventKind::kRemoveBackend, EventKind::kUpsertVip,
                 EventKind::kRemoveVip}) {
    if (text == to_string(k)) return k;
  }
  return Error::invalid("'" + std::string(text) +
                        "' is not an event kind (upsert_backend, remove_backend, upsert_vip or "
                        "remove_vip)");
}

std::string_view to_string(Reject r) {
  const int i = static_cast<int>(r);
  if (i < 1 || i > kRejectKinds) return "unknown";
  return kRejectNames[static_cast<size_t>(i - 1)];
}

const std::error_category& reject_category() {
  static const RejectCategory category;
  return category;
}

std::error_code make_error_code(Reject r) { return {static_cast<int>(r), reject_category()}; }

Error rejection(Reject r, std::string message) {
  return Error{make_error_code(r), std::move(message)};
}

std::optional<Reject> reject_of(const Error& e) {
  if (e.code.category() != reject_category()) return std::nullopt;
  return static_cast<Reject>(e.code.value());
}

std::string Origin::at(const std::string& path) const {
  std::string out = name;
  if (marks != nullptr) {
    if (auto it = marks->find(path); it != marks->end()) {
      out += ":" + std::to_string(it->second.first) + ":" + std::to_string(it->second.second);
    }
  }
  out += ": ";
  if (!path.empty()) out += path + ": ";
  return out;
}

Result<PushBody> parse_push_body(std::string_view json_text, std::vector<PushRejection>& rejected) {
  const Origin origin{"push"};
  auto doc = detail::parse_json_text(json_text, origin);
  if (!doc) return doc.error();
  detail::ObjectReader r(*doc, origin, "");
  XLB_TRY(
      r.check({"source", "replace", "events"}, "{\"source\": \"webhooks\", \"events\": [...]}"));
  PushBody body;
  auto source = r.string("source");
  if (!source) return source.error();
  body.source = *source;
  auto replace = r.boolean("replace");
  if (!replace) return replace.error();
  body.replace = replace->value_or(false);
  const json* events = r.get("events");
  if (events == nullptr) {
    return r.fail(Reject::kEmpty, "events", "required (a list of events, [] for none)");
  }
  if (!events->is_array()) {
    return r.fail(Reject::kWrongType, "events", "want a list, got " + detail::type_name(*events));
  }
  if (events->size() > kMaxPushEvents) {
    return r.fail(Reject::kTooLarge, "events",
                  std::to_string(events->size()) + " events, the limit is " +
                      std::to_string(kMaxPushEvents) + " per request (split the push)");
  }
  body.events.reserve(events->size());
  for (size_t i = 0; i < events->size(); i++) {
    auto e = read_event((*events)[i], origin, detail::index_path("events", i));
    if (!e) {
      rejected.push_back({i, reject_of(e.error()).value_or(Reject::kSyntax), e.error().message});
      continue;
    }
    body.events.push_back(std::move(*e));
  }
  return body;
}

Result<Event> parse_event_json(std::string_view json_text, const Origin& origin) {
  auto doc = detail::parse_json_text(json_text, origin);
  if (!doc) return doc.error();
  return read_event(*doc, origin, "");
}

std::string to_json(const Event& e) {
  json j = {{"kind", to_string(e.kind)}, {"vip", e.vip.to_string()}};
  if (e.backend && e.kind == EventKind::kUpsertBackend) {
    j["backend"] = {{"address", e.backend->address.to_string()},
                    {"weight", e.backend->weight},
                    {"state", state::to_string(e.backend->state)}};
    if (!e.metadata.empty()) {
      j["backend"]["metadata"] = json::parse(e.metadata, nullptr, /*allow_exceptions=*/false);
    }
  } else if (e.backend) {
    j["backend"] = {{"address", e.backend->address.to_string()}};
  }
  if (e.vip_spec && e.kind == EventKind::kUpsertVip) {
    const state::VipSpec& s = *e.vip_spec;
    json spec = json::object();
    if (!s.name.empty()) spec["name"] = s.name;
    spec["no_lru"] = s.no_lru;
    spec["hash"] = state::to_string(s.hash);
    spec["gue"] = s.gue;
    spec["icmp_too_big"] = s.icmp_too_big;
    spec["no_rate_guard"] = s.no_rate_guard;
    if (s.ring_size) spec["ring_size"] = *s.ring_size;
    spec["all_down"] = state::to_string(s.all_down);
    j["spec"] = std::move(spec);
  }
  return j.dump();
}

}  // namespace xlb::discovery
