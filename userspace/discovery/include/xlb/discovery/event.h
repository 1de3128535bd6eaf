// SPDX-License-Identifier: Apache-2.0
// The discovery event model: what every source (watched files, etcd, the push API) turns its
// input into, and the validation that stands between outside input and the desired state.
//
// Every malformed input is rejected with a reason (Reject, one stable snake_case name each, used
// as a counter label) and a message that says where and what:
//   ORIGIN[:LINE:COL]: PATH: what is wrong (what to do)
// ORIGIN is a file, an etcd key or "events[3]" of a push body; LINE:COL only for YAML files.
// A rejected event changes nothing: the entry it would have changed keeps its last good value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "xlb/core/result.h"
#include "xlb/state/types.h"

namespace xlb::discovery {

enum class EventKind : uint8_t {
  kUpsertBackend,  // add or update one backend of a VIP
  kRemoveBackend,  // remove one backend (only the source's own entry)
  kUpsertVip,      // set the VIP's settings (name, hash, flags, ring size; no backends)
  kRemoveVip,      // remove everything this source says about the VIP: settings and backends
};
std::string_view to_string(EventKind k);  // upsert_backend, remove_backend, ...
Result<EventKind> parse_event_kind(std::string_view text);

struct Event {
  std::string source;  // the configured source that owns what the event says
  std::string scope;   // part of the source: a file's name for files sources, else ""
  EventKind kind = EventKind::kUpsertBackend;
  state::VipKey vip;
  // upsert_backend: the whole entry; remove_backend: the address (weight and state unused).
  std::optional<state::BackendSpec> backend;
  // upsert_vip: the settings; `key` equals `vip` and `backends` is empty.
  std::optional<state::VipSpec> vip_spec;
  // upsert_backend: the registry's metadata object as compact JSON, or "". Shown, not used.
  std::string metadata;

  friend bool operator==(const Event&, const Event&) = default;
};

// Why an input was rejected. Append only: the names are metric labels.
enum class Reject : uint8_t {
  kSyntax = 1,       // not JSON / YAML, bad base64
  kEmpty,            // empty body, file or value
  kTooLarge,         // body, file, value or metadata over its size limit
  kNotObject,        // an event or value that is not a JSON object / YAML map
  kUnknownField,     // a field the schema does not have (typos)
  kDuplicateField,   // a field given twice in one object
  kWrongType,        // e.g. a weight written as a string, a flag as a number
  kFieldNotAllowed,  // a field that does not belong to this kind of event or key
  kMissingKind,
  kUnknownKind,
  kMissingVip,
  kBadVip,          // not ADDRESS[:PORT]/PROTOCOL
  kVipNotUnicast,   // unspecified, multicast, broadcast or IPv4-mapped VIP address
  kMissingBackend,  // a backend event without its backend
  kMissingAddress,
  kBadAddress,
  kAddressWithPort,  // "198.18.3.11:80": a backend is an address, packets keep the VIP's port
  kBackendNotUnicast,
  kBadWeight,  // outside 0..65535
  kBadState,   // not active / draining / disabled
  kBadName,    // VIP name outside the portable alphabet
  kBadHash,
  kBadRingSize,  // out of range or not prime
  kBadAllDown,
  kBadMetadata,       // metadata that is not an object
  kKeyMismatch,       // a value naming another VIP or backend than its etcd key
  kBadKey,            // an etcd key under the prefix that fits no part of the layout
  kDuplicateVip,      // a VIP twice in one file
  kDuplicateBackend,  // a backend twice in one VIP of one file
  kTooManyBackends,   // more backends for one VIP from one source than a ring can hold
  kUnknownSource,     // a push naming no configured push source
};
inline constexpr int kRejectKinds = static_cast<int>(Reject::kUnknownSource);
std::string_view to_string(Reject r);  // "bad_weight"

// Rejections travel as xlb::Error whose code is in this category.
const std::error_category& reject_category();
std::error_code make_error_code(Reject r);
Error rejection(Reject r, std::string message);
// The reason of an Error made by rejection(); nullopt for any other error.
std::optional<Reject> reject_of(const Error& e);

// Size limits of outside input (why: a registry or webhook gone wrong must not exhaust memory).
inline constexpr size_t kMaxValueBytes = 64 * 1024;        // one etcd value
inline constexpr size_t kMaxMetadataBytes = 4 * 1024;      // one backend's metadata
inline constexpr size_t kMaxFileBytes = 16 * 1024 * 1024;  // one service file
inline constexpr size_t kMaxPushEvents = 100000;           // one push body

// Where an input came from, for messages. `marks` maps a field path ("backends[1].weight") to
// its 1-based line and column, when the input was YAML.
struct Origin {
  std::string name;
  const std::map<std::string, std::pair<int, int>>* marks = nullptr;

  // "ORIGIN:LINE:COL: PATH: " (or without LINE:COL / PATH when unknown / empty).
  std::string at(const std::string& path) const;
};

// ---- Push API ---------------------------------------------------------------------------------
//
// POST /v1/events body:
//   {"source": "webhooks",      optional when exactly one push source is configured
//    "replace": false,          true: the events are the source's whole content (full sync)
//    "events": [
//      {"kind": "upsert_backend", "vip": "198.18.200.1:80/tcp",
//       "backend": {"address": "198.18.3.11", "weight": 2, "state": "active", "metadata": {}}},
//      {"kind": "remove_backend", "vip": "198.18.200.1:80/tcp", "backend": {"address": "..."}},
//      {"kind": "upsert_vip", "vip": "198.18.200.1:80/tcp", "spec": {"name": "web", ...}},
//      {"kind": "remove_vip", "vip": "198.18.200.1:80/tcp"}]}
struct PushBody {
  std::optional<std::string> source;
  bool replace = false;
  std::vector<Event> events;  // source and scope not yet set
};

// One rejected event of a push body: its index in "events" and why.
struct PushRejection {
  size_t index = 0;
  Reject reason = Reject::kSyntax;
  std::string message;
};

// Parses a push body. A body-level problem (not JSON, not an object, no events list, unknown
// field) is the Error; per-event problems are collected in `rejected` so the caller can report
// every bad event at once. With any rejection, the caller must apply none of the events.
Result<PushBody> parse_push_body(std::string_view json_text, std::vector<PushRejection>& rejected);

// One event in its JSON form (as in the push body). `origin` names it in messages.
Result<Event> parse_event_json(std::string_view json_text, const Origin& origin);

// The JSON form of an event (what parse_event_json reads back).
std::string to_json(const Event& e);

}  // namespace xlb::discovery

namespace std {
template <>
struct is_error_code_enum<xlb::discovery::Reject> : true_type {};
}  // namespace std
