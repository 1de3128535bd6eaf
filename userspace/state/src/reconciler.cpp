// SPDX-License-Identifier: Apache-2.0
// The reconciler: plans a whole change before writing anything, then writes in the safe order of
// design.md section 3, logging the inverse of every write so that a failure can be rolled back.
//
// Choices made here beyond the header:
//  - Index allocation takes never-used indices first and free-list indices (FIFO) only when
//    the never-used ones are exhausted. A released index may still be named by connection-table
//    entries of flows to the removed backend; taking it last gives those entries the most time
//    to age out, which is what "reused last" in the header asks for.
//  - Indices released by an apply() become free only when it succeeds, so one apply() never
//    reuses an index that a ring referred to when it began (its put_backend would come before
//    the ring rewrite that stops using it).
//  - A ring is rebuilt only when its inputs (positive-weight memberships, size, seed) changed
//    or nothing proves the applied ring is the built one (after adopt()); otherwise it is kept.
//    A build costs time in proportion to the ring (64k+ slots), for every VIP, and weights
//    will change often (design.md section 7).
//  - Orphans (backend entries found by adopt() that no ring refers to, e.g. a backend that was
//    draining at the restart): the maps do not say which VIP they belonged to, so the next
//    apply() hands each to a new membership with the same address, in this deterministic
//    order: first weight-0 memberships of VIPs that were already applied (a drained backend
//    most likely belonged to one of those), then every other new membership; within each pass
//    VIPs in key order, and the orphan with the lowest index first. An orphan claimed that way
//    needs no write: its entry already holds the address. Orphans nobody claims are cleared in
//    step (5) and their indices released, so entries no ring uses do not leak.
#include "xlb/state/reconciler.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <utility>

#include "xlb/maglev/maglev.h"

namespace xlb::state {
namespace {

xlb_backend backend_entry(const IpAddress& address) {
  xlb_backend b{};
  b.addr = address.abi();
  b.family = address.abi_family();
  return b;
}

xlb_vip_meta vip_meta(const AppliedVip& v) {
  xlb_vip_meta m{};
  m.vip_index = v.index;
  m.flags = v.flags;
  m.ring_size = v.ring_size;
  return m;
}

bool same_meta(const AppliedVip& a, const AppliedVip& b) {
  return a.index == b.index && a.flags == b.flags && a.ring_size == b.ring_size;
}

// xlb_config is padded by hand (abi.h), so comparing bytes compares fields.
bool same_config(const xlb_config& a, const xlb_config& b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

bool usable_ring_size(uint32_t n) {
  return n >= maglev::kMinRingSize && n <= maglev::kMaxRingSize && maglev::is_prime(n);
}

// Never-used indices first, then released ones in release order (see the file comment).
std::optional<uint32_t> allocate(std::deque<uint32_t>& free_list, uint32_t& next, uint32_t limit) {
  if (next < limit) return next++;
  if (free_list.empty()) return std::nullopt;
  uint32_t index = free_list.front();
  free_list.pop_front();
  return index;
}

// Marks `used` as taken: the next fresh index is past the highest one, and the holes below it
// are free. Their release order is unknown; ascending is as good as any.
void rebuild_allocator(const std::set<uint32_t>& used, std::deque<uint32_t>& free_list,
                       uint32_t& next) {
  free_list.clear();
  next = used.empty() ? 0 : *used.rbegin() + 1;
  for (uint32_t i = 0; i < next; ++i) {
    if (!used.count(i)) free_list.push_back(i);
  }
}

// Memberships with a positive weight, as maglev::build wants them.
std::vector<maglev::Backend> ring_inputs(const std::vector<AppliedBackend>& backends) {
  std::vector<maglev::Backend> out;
  for (const auto& b : backends) {
    if (b.weight > 0) {
      out.push_back(
          maglev::Backend{.id = b.address.to_string(), .weight = b.weight, .index = b.index});
    }
  }
  return out;
}

bool same_ring_inputs(const std::vector<AppliedBackend>& a, const std::vector<AppliedBackend>& b) {
  auto next_weighted = [](const std::vector<AppliedBackend>& v, size_t i) {
    while (i < v.size() && v[i].weight == 0) ++i;
    return i;
  };
  size_t i = next_weighted(a, 0), j = next_weighted(b, 0);
  while (i < a.size() && j < b.size()) {
    if (!(a[i].address == b[j].address) || a[i].index != b[j].index || a[i].weight != b[j].weight) {
      return false;
    }
    i = next_weighted(a, i + 1);
    j = next_weighted(b, j + 1);
  }
  return i == a.size() && j == b.size();
}

// Memberships are kept sorted by address.
const AppliedBackend* find_member(const std::vector<AppliedBackend>& members,
                                  const IpAddress& address) {
  auto it =
      std::lower_bound(members.begin(), members.end(), address,
                       [](const AppliedBackend& m, const IpAddress& a) { return m.address < a; });
  return it != members.end() && it->address == address ? &*it : nullptr;
}

Error annotate(const Error& e, const std::string& what) {
  return Error{e.code, what + ": " + e.message};
}

}  // namespace

Reconciler::Reconciler(MapWriter& writer, ReconcilerOptions opts) : writer_(writer), opts_(opts) {}

const AppliedVip* Reconciler::applied_vip(const VipKey& key) const {
  auto it = applied_.find(key);
  return it == applied_.end() ? nullptr : &it->second;
}

Status Reconciler::adopt(const DataplaneSnapshot& snapshot) {
  // Built aside and committed at the end: a snapshot we reject leaves the reconciler as it was.
  std::map<VipKey, AppliedVip> vips;
  std::set<uint32_t> vip_indices;
  std::map<uint32_t, std::string> ring_owner;  // backend index -> VIP whose ring names it
  std::map<uint32_t, xlb_backend> orphans;

  auto backend_at = [&](uint32_t index) -> const xlb_backend* {
    auto it = snapshot.backends.find(index);
    return it == snapshot.backends.end() || it->second.family == 0 ? nullptr : &it->second;
  };
  for (const auto& [index, entry] : snapshot.backends) {
    if (entry.family == 0) continue;
    if (index >= opts_.max_backends) {
      return Error::invalid("adopt: backend index " + std::to_string(index) + " >= max_backends " +
                            std::to_string(opts_.max_backends));
    }
    if (entry.family != XLB_FAMILY_V4 && entry.family != XLB_FAMILY_V6) {
      return Error::invalid("adopt: backend index " + std::to_string(index) + " has family " +
                            std::to_string(entry.family));
    }
  }

  for (const auto& [abi_key, meta] : snapshot.vips) {
    if (abi_key.family != XLB_FAMILY_V4 && abi_key.family != XLB_FAMILY_V6) {
      return Error::invalid("adopt: VIP entry with family " + std::to_string(abi_key.family));
    }
    if (abi_key.proto != static_cast<uint8_t>(Protocol::kTcp) &&
        abi_key.proto != static_cast<uint8_t>(Protocol::kUdp)) {
      return Error::invalid("adopt: VIP entry with protocol " + std::to_string(abi_key.proto));
    }
    AppliedVip v;
    v.key.address = IpAddress::from_abi(abi_key.addr, static_cast<Family>(abi_key.family));
    v.key.port = ntohs(abi_key.port);
    v.key.protocol = static_cast<Protocol>(abi_key.proto);
    v.index = meta.vip_index;
    v.flags = meta.flags;
    v.ring_size = meta.ring_size;
    const std::string name = "adopt: VIP " + v.key.to_string();
    if (v.index >= opts_.max_vips) {
      return Error::invalid(name + ": index " + std::to_string(v.index) + " >= max_vips " +
                            std::to_string(opts_.max_vips));
    }
    if (!vip_indices.insert(v.index).second) {
      return Error::invalid(name + ": index " + std::to_string(v.index) +
                            " is used by another VIP too");
    }
    if (auto ring = snapshot.rings.find(v.index); ring != snapshot.rings.end()) {
      v.ring = ring->second;
    }
    // A VIP without a ring keeps an empty one: the next apply() installs it.
    std::set<uint32_t> named(v.ring.begin(), v.ring.end());
    named.erase(maglev::kEmptySlot);
    for (uint32_t index : named) {
      if (index >= opts_.max_backends) {
        return Error::invalid(name + ": ring names backend index " + std::to_string(index) +
                              " >= max_backends " + std::to_string(opts_.max_backends));
      }
      if (auto [it, fresh] = ring_owner.emplace(index, v.key.to_string()); !fresh) {
        // Each membership has its own index; a shared one means someone else wrote the maps.
        return Error::invalid(name + ": ring names backend index " + std::to_string(index) +
                              ", which VIP " + it->second + "'s ring names too");
      }
      const xlb_backend* entry = backend_at(index);
      if (!entry) {
        // The data plane drops flows on this slot. The index stays reserved until the next
        // apply() has rewritten the ring (it is not a membership: there is no address).
        orphans[index] = xlb_backend{};
        continue;
      }
      // The weight is not stored in the maps; 1 marks "has slots". The next apply() rebuilds
      // the ring from the desired weights (and writes nothing if it comes out the same).
      v.backends.push_back(AppliedBackend{
          .address = IpAddress::from_abi(entry->addr, static_cast<Family>(entry->family)),
          .index = index,
          .weight = 1});
    }
    std::sort(
        v.backends.begin(), v.backends.end(),
        [](const AppliedBackend& a, const AppliedBackend& b) { return a.address < b.address; });
    for (size_t i = 1; i < v.backends.size(); ++i) {
      if (v.backends[i].address == v.backends[i - 1].address) {
        return Error::invalid(name + ": ring names backend " + v.backends[i].address.to_string() +
                              " under two indices");
      }
    }
    const VipKey key = v.key;
    if (!vips.emplace(key, std::move(v)).second) {
      return Error::invalid(name + ": listed twice");
    }
  }

  std::set<uint32_t> backend_indices;
  for (const auto& [index, owner] : ring_owner) backend_indices.insert(index);
  for (const auto& [index, entry] : snapshot.backends) {
    if (entry.family == 0) continue;
    backend_indices.insert(index);
    if (!ring_owner.count(index)) orphans[index] = entry;
  }

  applied_ = std::move(vips);
  // The config map is not part of the snapshot: the next apply() writes it.
  config_.reset();
  orphans_ = std::move(orphans);
  rebuild_allocator(vip_indices, free_vip_indices_, next_vip_index_);
  rebuild_allocator(backend_indices, free_backend_indices_, next_backend_index_);
  return {};
}

Result<ReconcileReport> Reconciler::apply(const DesiredState& desired, const xlb_config& config) {
  const auto started = std::chrono::steady_clock::now();
  ReconcileReport report;

  // Everything apply() changes in place, for the rollback. applied_ itself is replaced only on
  // success, so it needs no copy (copying every ring would cost more than the apply).
  const auto saved_free_vips = free_vip_indices_;
  const auto saved_free_backends = free_backend_indices_;
  const uint32_t saved_next_vip = next_vip_index_;
  const uint32_t saved_next_backend = next_backend_index_;
  auto restore_allocators = [&] {
    free_vip_indices_ = saved_free_vips;
    free_backend_indices_ = saved_free_backends;
    next_vip_index_ = saved_next_vip;
    next_backend_index_ = saved_next_backend;
  };

  // ---- Plan: computed whole before the first write, so its errors change nothing. ----------

  enum class RingWrite { kNone, kPatch, kSwap };
  struct Planned {
    AppliedVip* old = nullptr;  // in applied_; nullptr for a new VIP
    const VipSpec* spec = nullptr;
    AppliedVip next;  // next.ring is filled only when `rebuilt`
    bool rebuilt = false;
    RingWrite ring_write = RingWrite::kNone;
    bool meta_write = false;        // the VIP entry changes (flags or ring size)
    bool meta_before_ring = false;  // shrink: the data plane must stop using the high slots first
    bool entries_changed = false;   // a membership gets a new entry or loses its entry
    std::vector<std::pair<uint32_t, uint32_t>> patch, unpatch;  // (slot, value) new / old
  };
  std::vector<Planned> plans;
  plans.reserve(desired.vips.size());  // the writes below keep pointers into it

  for (const auto& [key, spec] : desired.vips) {
    Planned p;
    p.spec = &spec;
    if (auto it = applied_.find(key); it != applied_.end()) p.old = &it->second;
    p.next.key = key;
    p.next.flags = spec.abi_flags();
    std::vector<const BackendSpec*> sorted;
    for (const auto& b : spec.backends) sorted.push_back(&b);
    std::sort(sorted.begin(), sorted.end(),
              [](const BackendSpec* a, const BackendSpec* b) { return a->address < b->address; });
    for (size_t i = 0; i < sorted.size(); ++i) {
      if (i > 0 && sorted[i]->address == sorted[i - 1]->address) {
        restore_allocators();
        return Error::invalid("VIP " + key.to_string() + ": backend " +
                              sorted[i]->address.to_string() + " listed twice");
      }
      AppliedBackend m{.address = sorted[i]->address,
                       .index = maglev::kEmptySlot,  // kEmptySlot: not assigned yet
                       .weight = effective_weight(*sorted[i])};
      if (p.old) {
        if (const AppliedBackend* ob = find_member(p.old->backends, m.address)) {
          m.index = ob->index;
        }
      }
      p.next.backends.push_back(m);
    }
    plans.push_back(std::move(p));
  }

  // Orphans: handed to new memberships with their address (rule in the file comment).
  std::map<IpAddress, std::deque<uint32_t>> orphans_by_address;  // indices ascending
  for (const auto& [index, entry] : orphans_) {
    if (entry.family != 0) {
      orphans_by_address[IpAddress::from_abi(entry.addr, static_cast<Family>(entry.family))]
          .push_back(index);
    }
  }
  std::set<uint32_t> claimed;
  for (int pass = 0; pass < 2 && !orphans_by_address.empty(); ++pass) {
    for (auto& p : plans) {
      if (pass == 0 && !p.old) continue;
      for (auto& m : p.next.backends) {
        if (m.index != maglev::kEmptySlot || (pass == 0 && m.weight != 0)) continue;
        auto it = orphans_by_address.find(m.address);
        if (it == orphans_by_address.end() || it->second.empty()) continue;
        m.index = it->second.front();
        it->second.pop_front();
        claimed.insert(m.index);
      }
    }
  }

  // Indices: VIPs first, then memberships, both in key / address order (deterministic).
  std::vector<std::pair<uint32_t, IpAddress>> new_entries;  // written in step (1)
  for (auto& p : plans) {
    if (p.old) {
      p.next.index = p.old->index;
      continue;
    }
    auto index = allocate(free_vip_indices_, next_vip_index_, opts_.max_vips);
    if (!index) {
      restore_allocators();
      return Error::invalid("VIP " + p.next.key.to_string() + ": no free VIP index (max_vips " +
                            std::to_string(opts_.max_vips) + ")");
    }
    p.next.index = *index;
  }
  for (auto& p : plans) {
    for (auto& m : p.next.backends) {
      if (m.index != maglev::kEmptySlot) continue;
      auto index = allocate(free_backend_indices_, next_backend_index_, opts_.max_backends);
      if (!index) {
        restore_allocators();
        return Error::invalid(
            "VIP " + p.next.key.to_string() + ", backend " + m.address.to_string() +
            ": no free backend index (max_backends " + std::to_string(opts_.max_backends) +
            "; indices of backends this change removes become free only once it is applied, "
            "so a large replacement may need two steps)");
      }
      m.index = *index;
      new_entries.emplace_back(m.index, m.address);
      p.entries_changed = true;
    }
  }

  // Rings.
  const bool same_seed = config_ && config_->hash_seed == config.hash_seed;
  for (auto& p : plans) {
    const std::vector<maglev::Backend> inputs = ring_inputs(p.next.backends);
    auto required = maglev::choose_ring_size(inputs.size(), p.spec->ring_size);
    if (!required) {
      restore_allocators();
      return annotate(required.error(), "VIP " + p.next.key.to_string());
    }
    // Sticky: keep the applied size while it suffices, unless the operator asks for another.
    uint32_t size = required->size;
    if (p.old && usable_ring_size(p.old->ring_size) && p.old->ring_size >= required->size &&
        !(p.spec->ring_size && required->size != p.old->ring_size)) {
      size = p.old->ring_size;
    }
    p.next.ring_size = size;

    const bool same_shape = p.old && p.old->ring_size == size && p.old->ring.size() == size;
    if (same_shape && same_seed && same_ring_inputs(p.old->backends, p.next.backends)) {
      continue;  // the applied ring is this build's output already
    }
    auto ring = maglev::build(inputs, size, config.hash_seed);
    if (!ring) {
      restore_allocators();
      return annotate(ring.error(), "VIP " + p.next.key.to_string());
    }
    p.rebuilt = true;
    p.next.ring = std::move(*ring);

    if (!p.old) continue;  // installed in step (2), announced in step (3)
    if (same_shape) {
      maglev::RingDiff d = maglev::diff(p.old->ring, p.next.ring);
      if (d.changes.empty()) continue;
      report.slots_changed += static_cast<uint32_t>(d.changes.size());
      if (static_cast<double>(d.changes.size()) <=
          opts_.patch_threshold * static_cast<double>(size)) {
        p.ring_write = RingWrite::kPatch;
        p.patch.reserve(d.changes.size());
        p.unpatch.reserve(d.changes.size());
        for (const auto& c : d.changes) {
          p.patch.emplace_back(c.slot, c.new_value);
          p.unpatch.emplace_back(c.slot, c.old_value);
        }
      } else {
        p.ring_write = RingWrite::kSwap;
      }
    } else {
      p.ring_write = RingWrite::kSwap;
      p.meta_before_ring = size < p.old->ring_size;
    }
  }
  for (auto& p : plans) {
    if (!p.old) {
      // Every slot of a new ring is new.
      report.slots_changed += static_cast<uint32_t>(p.next.ring.size());
      report.vips_added++;
      continue;
    }
    if (p.ring_write == RingWrite::kSwap && p.old->ring.size() != p.next.ring.size()) {
      // Resized (or missing) ring: positions whose value differs, new positions included.
      for (size_t s = 0; s < p.next.ring.size(); ++s) {
        if (s >= p.old->ring.size() || p.old->ring[s] != p.next.ring[s]) report.slots_changed++;
      }
    }
    p.meta_write = !same_meta(*p.old, p.next);
  }

  // What goes: VIPs no longer desired, memberships no longer listed, unclaimed orphans.
  std::vector<AppliedVip*> removed_vips;
  for (auto& [key, vip] : applied_) {
    if (!desired.vips.count(key)) removed_vips.push_back(&vip);
  }
  struct Cleared {
    uint32_t index;
    xlb_backend entry;  // family 0: nothing to clear, only the index to release
  };
  std::vector<Cleared> cleared;
  for (auto& p : plans) {
    if (!p.old) continue;
    for (const auto& ob : p.old->backends) {
      if (!find_member(p.next.backends, ob.address)) {
        cleared.push_back({ob.index, backend_entry(ob.address)});
        p.entries_changed = true;
      }
    }
  }
  for (const AppliedVip* v : removed_vips) {
    for (const auto& ob : v->backends) cleared.push_back({ob.index, backend_entry(ob.address)});
  }
  for (const auto& [index, entry] : orphans_) {
    if (!claimed.count(index)) cleared.push_back({index, entry});
  }

  // ---- Write, logging the inverse of every write that succeeded. ---------------------------

  struct Undo {
    std::string what;
    std::function<Status()> run;
  };
  std::vector<Undo> undo_log;
  // `inverse` restores what `op` overwrote. `partial`: a failed `op` may have written part of
  // its change (update_ring patches slot by slot), so its inverse runs on failure too; it
  // rewrites old values only, which is harmless where nothing was written.
  auto write = [&](std::string what, const std::function<Status()>& op,
                   std::function<Status()> inverse, bool partial = false) -> Status {
    Status st = op();
    if (st.ok() || partial) undo_log.push_back(Undo{what, std::move(inverse)});
    if (!st.ok()) return annotate(st.error(), what);
    return {};
  };
  auto roll_back = [&](Error err) -> Error {
    std::string undo_errors;
    for (auto it = undo_log.rbegin(); it != undo_log.rend(); ++it) {
      Status st = it->run();
      if (!st.ok()) {
        undo_errors += (undo_errors.empty() ? "" : "; ") +
                       ("undoing " + it->what + ": " + st.error().to_string());
      }
    }
    restore_allocators();
    if (!undo_errors.empty()) {
      err.message +=
          "; rolling back failed too, so the maps may differ from the applied "
          "state (re-read them and adopt() to resynchronise): " +
          undo_errors;
    }
    return err;
  };
  MapWriter& w = writer_;

  // (1) New backend entries: before any ring names them. Fresh and released indices are empty.
  for (const auto& [index, address] : new_entries) {
    const xlb_backend entry = backend_entry(address);
    const uint32_t i = index;
    Status st = write(
        "put_backend " + std::to_string(i) + " (" + address.to_string() + ")",
        [&] { return w.put_backend(i, entry); }, [&w, i] { return w.clear_backend(i); });
    if (!st.ok()) return roll_back(st.error());
    report.backends_added++;
  }

  // Shorthands for the VIP and ring writes of steps (2) to (4).
  auto put_meta = [&](const AppliedVip& next, const AppliedVip* old) -> Status {
    const xlb_vip_key key = next.key.abi();
    const xlb_vip_meta meta = vip_meta(next);
    std::function<Status()> inverse;
    if (old) {
      const xlb_vip_meta before = vip_meta(*old);
      inverse = [&w, key, before] { return w.put_vip(key, before); };
    } else {
      inverse = [&w, key] { return w.delete_vip(key); };
    }
    return write(
        "put_vip " + next.key.to_string(), [&] { return w.put_vip(key, meta); },
        std::move(inverse));
  };
  // Puts `old`'s ring back whole, or removes the ring when there was none.
  auto restore_ring = [&w](uint32_t vip_index, const AppliedVip* old) -> std::function<Status()> {
    if (old && !old->ring.empty()) {
      std::span<const uint32_t> before(old->ring);  // applied_ is untouched until commit
      return [&w, vip_index, before] { return w.set_ring(vip_index, before); };
    }
    return [&w, vip_index] { return w.clear_ring(vip_index); };
  };
  auto swap_ring = [&](const Planned& p) -> Status {
    const uint32_t vi = p.next.index;
    return write(
        "set_ring " + p.next.key.to_string() + " (" + std::to_string(p.next.ring.size()) +
            " slots)",
        [&] { return w.set_ring(vi, p.next.ring); }, restore_ring(vi, p.old));
  };

  // (2) Rings. A new VIP's ring goes in before its entry (step 3) exists. Same size: patched in
  // place when few slots change, else swapped whole (atomic). Resized: the data plane indexes
  // the ring modulo the meta's ring_size, so a bigger ring goes in before the bigger size
  // (step 3), and a smaller size goes in before the smaller ring (here).
  for (auto& p : plans) {
    Status st;
    if (!p.old) {
      st = swap_ring(p);
    } else if (p.ring_write == RingWrite::kPatch) {
      const uint32_t vi = p.next.index;
      st = write(
          "update_ring " + p.next.key.to_string() + " (" + std::to_string(p.patch.size()) +
              " slots)",
          [&] { return w.update_ring(vi, p.patch); },
          [&w, vi, &p] { return w.update_ring(vi, p.unpatch); }, /*partial=*/true);
    } else if (p.ring_write == RingWrite::kSwap) {
      if (p.meta_before_ring) st = put_meta(p.next, p.old);
      if (st.ok()) st = swap_ring(p);
      if (st.ok()) report.rings_swapped++;
    }
    if (!st.ok()) return roll_back(st.error());
  }

  // (3) New VIP entries, grown ring sizes, changed flags.
  for (auto& p : plans) {
    if (p.old && (!p.meta_write || p.meta_before_ring)) continue;
    Status st = put_meta(p.next, p.old);
    if (!st.ok()) return roll_back(st.error());
  }
  // Changed: some write concerned the VIP. (Orphans claimed after adopt() write nothing.)
  for (const auto& p : plans) {
    if (p.old && (p.ring_write != RingWrite::kNone || p.meta_write || p.entries_changed)) {
      report.vips_changed++;
    }
  }

  // (4) Removed VIPs: the entry first (no new packets look for the ring), then the ring.
  for (const AppliedVip* v : removed_vips) {
    const xlb_vip_key key = v->key.abi();
    const xlb_vip_meta before = vip_meta(*v);
    Status st = write(
        "delete_vip " + v->key.to_string(), [&] { return w.delete_vip(key); },
        [&w, key, before] { return w.put_vip(key, before); });
    if (st.ok() && !v->ring.empty()) {
      const uint32_t vi = v->index;
      st = write(
          "clear_ring " + v->key.to_string(), [&] { return w.clear_ring(vi); },
          restore_ring(vi, v));
    }
    if (!st.ok()) return roll_back(st.error());
    report.vips_removed++;
  }

  // (5) Backend entries no ring refers to any more: every ring has been rewritten above.
  for (const auto& c : cleared) {
    if (c.entry.family == 0) continue;  // adopted dangling reference: no entry to clear
    const uint32_t i = c.index;
    const xlb_backend before = c.entry;
    Status st = write(
        "clear_backend " + std::to_string(i), [&] { return w.clear_backend(i); },
        [&w, i, before] { return w.put_backend(i, before); });
    if (!st.ok()) return roll_back(st.error());
    report.backends_removed++;
  }

  // (6) The global configuration, when it changed (always on the first apply: the map's
  // content is not known before).
  if (!config_ || !same_config(*config_, config)) {
    Status st = w.set_config(config);
    // Nothing follows this write, so it never needs undoing.
    if (!st.ok()) return roll_back(annotate(st.error(), "set_config"));
    report.config_changed = true;
  }

  // ---- Commit. -----------------------------------------------------------------------------
  std::map<VipKey, AppliedVip> next_applied;
  for (auto& p : plans) {
    if (!p.rebuilt) p.next.ring = std::move(p.old->ring);
    const VipKey key = p.next.key;
    next_applied.emplace(key, std::move(p.next));
  }
  for (const AppliedVip* v : removed_vips) free_vip_indices_.push_back(v->index);
  for (const auto& c : cleared) free_backend_indices_.push_back(c.index);
  applied_ = std::move(next_applied);
  config_ = config;
  orphans_.clear();

  report.duration = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  return report;
}

}  // namespace xlb::state
