// SPDX-License-Identifier: Apache-2.0
// Store: what every source says, kept apart per owner, and the one deterministic view of it.
//
// Ownership. An entry (a VIP's settings, or one backend of a VIP) belongs to the owner that
// wrote it: a source, or a scope inside a source (each file of a files source is its own
// scope). An owner changes and removes only its own entries, so a removal by one source never
// removes what another source says about the same backend.
//
// Precedence. When several owners name the same backend (or set the same VIP's settings), the
// owner first in this order wins the whole entry: higher source priority, then source name,
// then scope name (both in byte order). Nothing depends on arrival order, so every xlb host fed
// the same inputs computes the same view, and two sources never flap a backend between them.
// A VIP exists in the view while any owner has settings or a backend for it; without settings
// from anybody it gets the defaults.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "xlb/core/result.h"
#include "xlb/discovery/event.h"
#include "xlb/state/types.h"

namespace xlb::discovery {

// A batch of events from one source, applied as a unit: no update ever shows half a batch.
struct Batch {
  enum class Mode : uint8_t {
    kDelta,         // apply `events` in order
    kReplaceScope,  // `events` are the whole content of (source, scope): the rest is removed
    kRetainScopes,  // remove every scope of `source` not in `scopes` (no events)
    kDropSource,    // remove everything `source` owns
    kSetPriority,   // re-rank `source` with `priority` (no events)
  };
  Mode mode = Mode::kDelta;
  std::string source;
  std::string scope;                // kReplaceScope
  std::vector<std::string> scopes;  // kRetainScopes
  int priority = 0;                 // kSetPriority
  std::vector<Event> events;        // their source/scope are set from the batch
};

struct DiscoveredBackend {
  state::BackendSpec spec;
  std::string owner;     // "source" or "source/scope" of the winning entry
  std::string metadata;  // the winner's metadata (compact JSON) or ""

  friend bool operator==(const DiscoveredBackend&, const DiscoveredBackend&) = default;
};

struct DiscoveredVip {
  // The winning settings (key set, backends empty), or nullopt: nobody set any.
  std::optional<state::VipSpec> spec;
  std::string spec_owner;
  std::vector<DiscoveredBackend> backends;  // one per address, sorted by address

  friend bool operator==(const DiscoveredVip&, const DiscoveredVip&) = default;
};

// Everything discovery holds, after precedence.
struct Snapshot {
  std::map<state::VipKey, DiscoveredVip> vips;

  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

class Store {
 public:
  struct Applied {
    std::set<state::VipKey> touched;  // VIPs whose entries changed (the view may still be equal)
    size_t accepted = 0;              // events applied
    std::vector<Error> rejected;      // events refused by the store (kTooManyBackends)
  };

  // Priority of a source (default 0). Ranks are fixed when an owner first writes; changing
  // them goes through a kSetPriority batch so that views are recomputed.
  void set_priority(const std::string& source, int priority);

  Applied apply(const Batch& batch);

  std::optional<DiscoveredVip> view(const state::VipKey& key) const;
  Snapshot snapshot() const;

  size_t entries() const;  // settings + backends over all owners
  // Owners (source or source/scope) with at least one entry.
  std::vector<std::string> owners() const;

 private:
  // Precedence order: the winner sorts first.
  struct Owner {
    int priority = 0;
    std::string source;
    std::string scope;

    std::string name() const { return scope.empty() ? source : source + "/" + scope; }
    friend bool operator<(const Owner& a, const Owner& b) {
      if (a.priority != b.priority) return a.priority > b.priority;
      if (a.source != b.source) return a.source < b.source;
      return a.scope < b.scope;
    }
  };
  struct OwnedBackend {
    state::BackendSpec spec;
    std::string metadata;
    friend bool operator==(const OwnedBackend&, const OwnedBackend&) = default;
  };
  struct Entry {
    std::optional<state::VipSpec> spec;
    std::map<IpAddress, OwnedBackend> backends;
    bool empty() const { return !spec && backends.empty(); }
    friend bool operator==(const Entry&, const Entry&) = default;
  };
  using OwnerEntries = std::map<state::VipKey, Entry>;

  Owner owner_of(const std::string& source, const std::string& scope) const;
  // Applies one event to `entries` (one owner's); returns whether anything changed.
  Status apply_event(const Event& e, OwnerEntries& entries, bool& changed) const;
  // Replaces what `owner` holds by `entries`; adds the VIPs that differ to `touched`.
  void put_owner(const Owner& owner, OwnerEntries entries, std::set<state::VipKey>& touched);
  void drop_owner(const Owner& owner, std::set<state::VipKey>& touched);
  void set_priority_now(const std::string& source, int priority, std::set<state::VipKey>& touched);

  std::map<std::string, int> priority_;
  // Per owner, per VIP: the owner's entries. `by_vip_` indexes the same data by VIP.
  std::map<Owner, OwnerEntries> owners_;
  std::map<state::VipKey, std::set<Owner>> by_vip_;
};

}  // namespace xlb::discovery
