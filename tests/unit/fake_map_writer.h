// SPDX-License-Identifier: Apache-2.0
// FakeMapWriter: the reconciler's MapWriter for unit tests, with no kernel. It keeps the maps'
// contents in memory, records every call in order, fails calls on demand, and checks after
// every successful write the invariants the data plane relies on, so a test sees an unsafe
// intermediate state even when the final one is right:
//  - every ring slot names kEmptySlot or a backend entry that exists;
//  - every VIP entry has a ring with at least meta.ring_size slots (packets index it modulo
//    that size);
//  - put_backend never gives an index that a ring names to another address.
#pragma once

#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "xlb/abi.h"
#include "xlb/core/result.h"
#include "xlb/maglev/maglev.h"
#include "xlb/state/reconciler.h"

namespace xlb::state::testing {

enum class Op {
  kPutBackend,
  kClearBackend,
  kSetRing,
  kUpdateRing,
  kClearRing,
  kPutVip,
  kDeleteVip,
  kSetConfig
};

inline const char* op_name(Op op) {
  switch (op) {
    case Op::kPutBackend:
      return "put_backend";
    case Op::kClearBackend:
      return "clear_backend";
    case Op::kSetRing:
      return "set_ring";
    case Op::kUpdateRing:
      return "update_ring";
    case Op::kClearRing:
      return "clear_ring";
    case Op::kPutVip:
      return "put_vip";
    case Op::kDeleteVip:
      return "delete_vip";
    case Op::kSetConfig:
      return "set_config";
  }
  return "?";
}

// Map keys and values are ABI structs padded by hand (abi.h): bytes compare as fields.
template <typename T>
bool same_bytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

struct AbiKeyLess {
  bool operator()(const xlb_vip_key& a, const xlb_vip_key& b) const {
    return std::memcmp(&a, &b, sizeof(a)) < 0;
  }
};

struct FakeMaps {
  std::map<xlb_vip_key, xlb_vip_meta, AbiKeyLess> vips;
  std::map<uint32_t, std::vector<uint32_t>> rings;
  std::map<uint32_t, xlb_backend> backends;  // entries with family != 0 only
  std::optional<xlb_config> config;

  friend bool operator==(const FakeMaps& a, const FakeMaps& b) {
    auto same_vips = [&] {
      if (a.vips.size() != b.vips.size()) return false;
      for (auto i = a.vips.begin(), j = b.vips.begin(); i != a.vips.end(); ++i, ++j) {
        if (!same_bytes(i->first, j->first) || !same_bytes(i->second, j->second)) return false;
      }
      return true;
    };
    auto same_backends = [&] {
      if (a.backends.size() != b.backends.size()) return false;
      for (auto i = a.backends.begin(), j = b.backends.begin(); i != a.backends.end(); ++i, ++j) {
        if (i->first != j->first || !same_bytes(i->second, j->second)) return false;
      }
      return true;
    };
    const bool same_config = a.config.has_value() == b.config.has_value() &&
                             (!a.config || same_bytes(*a.config, *b.config));
    return same_vips() && a.rings == b.rings && same_backends() && same_config;
  }
};

struct Call {
  Op op;
  uint32_t index = 0;  // backend or VIP index; 0 for put_vip / delete_vip / set_config
  size_t slots = 0;    // set_ring / update_ring: slots written
  bool ok = true;
};

class FakeMapWriter : public MapWriter {
 public:
  FakeMapWriter() = default;
  explicit FakeMapWriter(FakeMaps maps) : maps_(std::move(maps)) {}

  // ---- Failure injection -------------------------------------------------------------------
  // The n-th call from now (1-based) fails; 0 = none.
  void fail_nth_call(size_t n) { fail_at_ = n == 0 ? 0 : calls_.size() + n; }
  // Every call of this kind fails (until cleared).
  void fail_op(Op op) { failing_ops_.push_back(op); }
  void clear_failures() {
    fail_at_ = 0;
    failing_ops_.clear();
  }
  // A failing update_ring writes its first half before it fails (a real patch is slot by slot).
  void set_partial_update_ring(bool on) { partial_update_ring_ = on; }
  // Invariant checks are on by default; tests of adopting inconsistent maps turn them off.
  void set_check_invariants(bool on) { check_invariants_ = on; }

  // ---- Inspection --------------------------------------------------------------------------
  const FakeMaps& maps() const { return maps_; }
  const std::vector<Call>& calls() const { return calls_; }
  void clear_calls() { calls_.clear(); }
  std::vector<Op> ops() const {
    std::vector<Op> out;
    for (const auto& c : calls_) out.push_back(c.op);
    return out;
  }
  size_t count(Op op) const {
    size_t n = 0;
    for (const auto& c : calls_) n += c.op == op;
    return n;
  }
  const std::vector<std::string>& violations() const { return violations_; }

  DataplaneSnapshot snapshot() const {
    DataplaneSnapshot s;
    for (const auto& [k, v] : maps_.vips) s.vips.emplace_back(k, v);
    s.rings = maps_.rings;
    s.backends = maps_.backends;
    return s;
  }

  // ---- MapWriter ---------------------------------------------------------------------------
  Status put_backend(uint32_t index, const xlb_backend& backend) override {
    if (auto st = begin(Op::kPutBackend, index); !st.ok()) return st;
    if (backend.family != XLB_FAMILY_V4 && backend.family != XLB_FAMILY_V6) {
      return fail_last("put_backend: bad family");
    }
    if (auto it = maps_.backends.find(index);
        it != maps_.backends.end() && !same_bytes(it->second, backend) && ring_names(index)) {
      violations_.push_back("put_backend " + std::to_string(index) +
                            " changes an entry a ring names");
    }
    maps_.backends[index] = backend;
    return end();
  }
  Status clear_backend(uint32_t index) override {
    if (auto st = begin(Op::kClearBackend, index); !st.ok()) return st;
    maps_.backends.erase(index);
    return end();
  }
  Status set_ring(uint32_t vip_index, std::span<const uint32_t> slots) override {
    if (auto st = begin(Op::kSetRing, vip_index, slots.size()); !st.ok()) return st;
    if (slots.empty()) return fail_last("set_ring: empty ring");
    maps_.rings[vip_index].assign(slots.begin(), slots.end());
    return end();
  }
  Status update_ring(uint32_t vip_index,
                     std::span<const std::pair<uint32_t, uint32_t>> slots) override {
    const bool injected = should_fail(Op::kUpdateRing);
    calls_.push_back(Call{.op = Op::kUpdateRing, .index = vip_index, .slots = slots.size()});
    auto it = maps_.rings.find(vip_index);
    if (it == maps_.rings.end()) return fail_last("update_ring: no ring");
    for (auto [slot, value] : slots) {
      if (slot >= it->second.size()) return fail_last("update_ring: slot out of range");
    }
    const size_t n = injected ? (partial_update_ring_ ? slots.size() / 2 : 0) : slots.size();
    for (size_t i = 0; i < n; ++i) it->second[slots[i].first] = slots[i].second;
    if (injected) return fail_last("injected failure");
    return end();
  }
  Status clear_ring(uint32_t vip_index) override {
    if (auto st = begin(Op::kClearRing, vip_index); !st.ok()) return st;
    maps_.rings.erase(vip_index);  // like the real map: clearing a missing ring is no error
    return end();
  }
  Status put_vip(const xlb_vip_key& key, const xlb_vip_meta& meta) override {
    if (auto st = begin(Op::kPutVip, meta.vip_index); !st.ok()) return st;
    maps_.vips[key] = meta;
    return end();
  }
  Status delete_vip(const xlb_vip_key& key) override {
    if (auto st = begin(Op::kDeleteVip, 0); !st.ok()) return st;
    maps_.vips.erase(key);
    return end();
  }
  Status set_config(const xlb_config& config) override {
    if (auto st = begin(Op::kSetConfig, 0); !st.ok()) return st;
    maps_.config = config;
    return end();
  }

 private:
  bool should_fail(Op op) const {
    if (fail_at_ != 0 && calls_.size() + 1 == fail_at_) return true;
    for (Op f : failing_ops_) {
      if (f == op) return true;
    }
    return false;
  }
  Status begin(Op op, uint32_t index, size_t slots = 0) {
    const bool fail = should_fail(op);
    calls_.push_back(Call{.op = op, .index = index, .slots = slots});
    if (fail) return fail_last("injected failure");
    return {};
  }
  Status fail_last(const std::string& why) {
    calls_.back().ok = false;
    return Error{
        std::make_error_code(std::errc::io_error),
        std::string(op_name(calls_.back().op)) + " #" + std::to_string(calls_.size()) + ": " + why};
  }
  bool ring_names(uint32_t backend_index) const {
    for (const auto& [vi, ring] : maps_.rings) {
      for (uint32_t s : ring) {
        if (s == backend_index) return true;
      }
    }
    return false;
  }
  Status end() {
    if (check_invariants_) check();
    return {};
  }
  void check() {
    const std::string after =
        " (after call #" + std::to_string(calls_.size()) + " " + op_name(calls_.back().op) + ")";
    // A flat table: this runs after every write, over every slot.
    std::vector<char> present(maps_.backends.empty() ? 0 : maps_.backends.rbegin()->first + 1);
    for (const auto& [index, entry] : maps_.backends) present[index] = 1;
    for (const auto& [vi, ring] : maps_.rings) {
      for (size_t s = 0; s < ring.size(); ++s) {
        if (ring[s] != maglev::kEmptySlot && (ring[s] >= present.size() || !present[ring[s]])) {
          violations_.push_back("ring " + std::to_string(vi) + " slot " + std::to_string(s) +
                                " names missing backend " + std::to_string(ring[s]) + after);
          break;
        }
      }
    }
    for (const auto& [key, meta] : maps_.vips) {
      auto ring = maps_.rings.find(meta.vip_index);
      if (ring == maps_.rings.end()) {
        violations_.push_back("VIP index " + std::to_string(meta.vip_index) + " has no ring" +
                              after);
      } else if (ring->second.size() < meta.ring_size) {
        violations_.push_back("VIP index " + std::to_string(meta.vip_index) + " meta size " +
                              std::to_string(meta.ring_size) + " > ring size " +
                              std::to_string(ring->second.size()) + after);
      }
    }
  }

  FakeMaps maps_;
  std::vector<Call> calls_;
  std::vector<std::string> violations_;
  size_t fail_at_ = 0;  // 1-based position in calls_ of the call to fail
  std::vector<Op> failing_ops_;
  bool partial_update_ring_ = false;
  bool check_invariants_ = true;
};

}  // namespace xlb::state::testing
