// SPDX-License-Identifier: Apache-2.0
#include "xlb/discovery/store.h"

#include <algorithm>

#include "xlb/state/config.h"

namespace xlb::discovery {

void Store::set_priority(const std::string& source, int priority) {
  std::set<state::VipKey> touched;
  set_priority_now(source, priority, touched);
}

Store::Owner Store::owner_of(const std::string& source, const std::string& scope) const {
  auto it = priority_.find(source);
  return Owner{it == priority_.end() ? 0 : it->second, source, scope};
}

Status Store::apply_event(const Event& e, OwnerEntries& entries, bool& changed) const {
  changed = false;
  switch (e.kind) {
    case EventKind::kUpsertBackend: {
      if (!e.backend) return rejection(Reject::kMissingBackend, "upsert_backend without backend");
      Entry& entry = entries[e.vip];
      OwnedBackend next{*e.backend, e.metadata};
      auto it = entry.backends.find(e.backend->address);
      if (it == entry.backends.end()) {
        // One source may not fill a VIP beyond what a ring can give 1 % shares to.
        if (entry.backends.size() >= state::config_bounds::kMaxBackendsPerVip) {
          if (entry.empty()) entries.erase(e.vip);
          return rejection(Reject::kTooManyBackends,
                           e.vip.to_string() + ": backend " + e.backend->address.to_string() +
                               " refused: this source already gives the VIP " +
                               std::to_string(state::config_bounds::kMaxBackendsPerVip) +
                               " backends, the most a ring holds");
        }
        entry.backends.emplace(e.backend->address, std::move(next));
        changed = true;
      } else if (!(it->second == next)) {
        it->second = std::move(next);
        changed = true;
      }
      return ok_status();
    }
    case EventKind::kRemoveBackend: {
      if (!e.backend) return rejection(Reject::kMissingBackend, "remove_backend without backend");
      auto vit = entries.find(e.vip);
      if (vit == entries.end()) return ok_status();  // idempotent: nothing of ours to remove
      changed = vit->second.backends.erase(e.backend->address) > 0;
      if (vit->second.empty()) entries.erase(vit);
      return ok_status();
    }
    case EventKind::kUpsertVip: {
      if (!e.vip_spec) return rejection(Reject::kMissingVip, "upsert_vip without settings");
      state::VipSpec spec = *e.vip_spec;
      spec.key = e.vip;
      spec.backends.clear();  // backends are entries of their own
      Entry& entry = entries[e.vip];
      if (!entry.spec || !(*entry.spec == spec)) {
        entry.spec = std::move(spec);
        changed = true;
      }
      return ok_status();
    }
    case EventKind::kRemoveVip:
      changed = entries.erase(e.vip) > 0;
      return ok_status();
  }
  return ok_status();
}

void Store::put_owner(const Owner& owner, OwnerEntries entries, std::set<state::VipKey>& touched) {
  auto it = owners_.find(owner);
  static const OwnerEntries kNone;
  const OwnerEntries& old = it == owners_.end() ? kNone : it->second;
  // Both maps are sorted by VIP: one merge pass finds the VIPs that differ.
  auto a = old.begin();
  auto b = entries.begin();
  while (a != old.end() || b != entries.end()) {
    if (b == entries.end() || (a != old.end() && a->first < b->first)) {
      touched.insert(a->first);
      if (auto v = by_vip_.find(a->first); v != by_vip_.end()) {
        v->second.erase(owner);
        if (v->second.empty()) by_vip_.erase(v);
      }
      ++a;
    } else if (a == old.end() || b->first < a->first) {
      touched.insert(b->first);
      by_vip_[b->first].insert(owner);
      ++b;
    } else {
      if (!(a->second == b->second)) touched.insert(a->first);
      ++a;
      ++b;
    }
  }
  if (entries.empty()) {
    if (it != owners_.end()) owners_.erase(it);
  } else if (it == owners_.end()) {
    owners_.emplace(owner, std::move(entries));
  } else {
    it->second = std::move(entries);
  }
}

void Store::drop_owner(const Owner& owner, std::set<state::VipKey>& touched) {
  put_owner(owner, {}, touched);
}

void Store::set_priority_now(const std::string& source, int priority,
                             std::set<state::VipKey>& touched) {
  auto pit = priority_.find(source);
  if (pit != priority_.end() && pit->second == priority) return;
  priority_[source] = priority;
  // Re-key this source's owners: their place in the precedence order changes.
  std::vector<std::pair<Owner, OwnerEntries>> moved;
  for (auto it = owners_.begin(); it != owners_.end();) {
    if (it->first.source == source) {
      moved.emplace_back(it->first, std::move(it->second));
      for (const auto& [vip, entry] : moved.back().second) {
        touched.insert(vip);
        by_vip_[vip].erase(it->first);
      }
      it = owners_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [old_owner, entries] : moved) {
    Owner owner{priority, old_owner.source, old_owner.scope};
    for (const auto& [vip, entry] : entries) by_vip_[vip].insert(owner);
    owners_.emplace(owner, std::move(entries));
  }
}

Store::Applied Store::apply(const Batch& batch) {
  Applied out;
  switch (batch.mode) {
    case Batch::Mode::kDelta: {
      const Owner owner = owner_of(batch.source, batch.scope);
      OwnerEntries& entries = owners_[owner];
      for (const Event& e : batch.events) {
        bool changed = false;
        if (Status st = apply_event(e, entries, changed); !st) {
          out.rejected.push_back(st.error());
          continue;
        }
        out.accepted++;
        if (!changed) continue;
        out.touched.insert(e.vip);
        if (entries.contains(e.vip)) {
          by_vip_[e.vip].insert(owner);
        } else if (auto v = by_vip_.find(e.vip); v != by_vip_.end()) {
          v->second.erase(owner);
          if (v->second.empty()) by_vip_.erase(v);
        }
      }
      if (entries.empty()) owners_.erase(owner);
      break;
    }
    case Batch::Mode::kReplaceScope: {
      const Owner owner = owner_of(batch.source, batch.scope);
      OwnerEntries entries;
      for (const Event& e : batch.events) {
        bool changed = false;
        if (Status st = apply_event(e, entries, changed); !st) {
          out.rejected.push_back(st.error());
          continue;
        }
        out.accepted++;
      }
      put_owner(owner, std::move(entries), out.touched);
      break;
    }
    case Batch::Mode::kRetainScopes:
    case Batch::Mode::kDropSource: {
      std::vector<Owner> doomed;
      for (const auto& [owner, entries] : owners_) {
        if (owner.source != batch.source) continue;
        if (batch.mode == Batch::Mode::kRetainScopes &&
            std::find(batch.scopes.begin(), batch.scopes.end(), owner.scope) !=
                batch.scopes.end()) {
          continue;
        }
        doomed.push_back(owner);
      }
      for (const auto& owner : doomed) drop_owner(owner, out.touched);
      if (batch.mode == Batch::Mode::kDropSource) priority_.erase(batch.source);
      break;
    }
    case Batch::Mode::kSetPriority:
      set_priority_now(batch.source, batch.priority, out.touched);
      break;
  }
  return out;
}

std::optional<DiscoveredVip> Store::view(const state::VipKey& key) const {
  auto v = by_vip_.find(key);
  if (v == by_vip_.end() || v->second.empty()) return std::nullopt;
  DiscoveredVip out;
  std::map<IpAddress, DiscoveredBackend> backends;
  // Owners iterate in precedence order: the first to name something wins it.
  for (const Owner& owner : v->second) {
    auto o = owners_.find(owner);
    if (o == owners_.end()) continue;
    auto e = o->second.find(key);
    if (e == o->second.end()) continue;
    const Entry& entry = e->second;
    if (entry.spec && !out.spec) {
      out.spec = entry.spec;
      out.spec_owner = owner.name();
    }
    for (const auto& [address, b] : entry.backends) {
      backends.try_emplace(address, DiscoveredBackend{b.spec, owner.name(), b.metadata});
    }
  }
  if (!out.spec && backends.empty()) return std::nullopt;
  out.backends.reserve(backends.size());
  for (auto& [address, b] : backends) out.backends.push_back(std::move(b));
  return out;
}

Snapshot Store::snapshot() const {
  Snapshot s;
  for (const auto& [key, owners] : by_vip_) {
    if (auto v = view(key)) s.vips.emplace(key, std::move(*v));
  }
  return s;
}

size_t Store::entries() const {
  size_t n = 0;
  for (const auto& [owner, entries] : owners_) {
    for (const auto& [vip, entry] : entries) n += (entry.spec ? 1 : 0) + entry.backends.size();
  }
  return n;
}

std::vector<std::string> Store::owners() const {
  std::vector<std::string> out;
  for (const auto& [owner, entries] : owners_) out.push_back(owner.name());
  return out;
}

}  // namespace xlb::discovery
