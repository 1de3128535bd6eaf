// SPDX-License-Identifier: Apache-2.0
// Unit tests of the reconciler over FakeMapWriter: write order, rings, patch or swap, ring sizes,
// drains and weights, index allocation, exhaustion, rollback at every write, adoption. Random
// inputs use fixed seeds, so failures reproduce.
#include "xlb/state/reconciler.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fake_map_writer.h"
#include "xlb/maglev/maglev.h"

namespace xlb::state {
namespace {

using maglev::kEmptySlot;
using testing::FakeMaps;
using testing::FakeMapWriter;
using testing::Op;

constexpr uint32_t kSeed = 0x5eed;

IpAddress ip(const std::string& text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.ok()) << text;
  return *a;
}

VipKey vkey(const std::string& text) {
  auto k = VipKey::parse(text);
  EXPECT_TRUE(k.ok()) << text;
  return *k;
}

BackendSpec be(const std::string& address, uint32_t weight = 1,
               BackendState state = BackendState::kActive) {
  return BackendSpec{.address = ip(address), .weight = weight, .state = state};
}

// The lab's backend networks (design.md section 4).
std::string backend_address(size_t i) {
  if (i < 250) return "198.18.3." + std::to_string(i + 1);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "2001:db8:3::%zx", i + 1);
  return buf;
}

std::vector<BackendSpec> backends(size_t from, size_t to) {
  std::vector<BackendSpec> out;
  for (size_t i = from; i < to; ++i) out.push_back(be(backend_address(i)));
  return out;
}

void sort_backends(VipSpec& v) {
  std::sort(v.backends.begin(), v.backends.end(),
            [](const BackendSpec& a, const BackendSpec& b) { return a.address < b.address; });
}

VipSpec vip(const std::string& key, std::vector<BackendSpec> bs,
            std::optional<uint32_t> ring_size = std::nullopt) {
  VipSpec v;
  v.key = vkey(key);
  v.backends = std::move(bs);
  v.ring_size = ring_size;
  sort_backends(v);
  return v;
}

DesiredState desired_of(std::vector<VipSpec> vips) {
  DesiredState d;
  for (auto& v : vips) {
    const VipKey k = v.key;
    d.vips[k] = std::move(v);
  }
  return d;
}

VipSpec& at(DesiredState& d, const std::string& key) { return d.vips.at(vkey(key)); }

BackendSpec* find(VipSpec& v, const std::string& address) {
  for (auto& b : v.backends) {
    if (b.address == ip(address)) return &b;
  }
  return nullptr;
}

xlb_config cfg(uint32_t seed = kSeed) {
  xlb_config c{};
  c.gue_port = htons(XLB_DEFAULT_GUE_PORT);
  c.hash_seed = seed;
  c.max_pkt_size = XLB_DEFAULT_MAX_PKT_SIZE;
  c.new_flows_per_sec = XLB_DEFAULT_NEW_FLOWS_PER_SEC;
  c.udp_idle_ns = XLB_DEFAULT_UDP_IDLE_NS;
  return c;
}

std::vector<Op> repeat(Op op, size_t n) { return std::vector<Op>(n, op); }

std::vector<Op> cat(std::initializer_list<std::vector<Op>> parts) {
  std::vector<Op> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string ops_text(const std::vector<Op>& ops) {
  std::string s;
  for (Op op : ops) s += std::string(s.empty() ? "" : " ") + testing::op_name(op);
  return s;
}

// The ring maglev::build makes of a VIP's applied memberships.
std::vector<uint32_t> built_ring(const AppliedVip& v, uint32_t seed = kSeed) {
  std::vector<maglev::Backend> in;
  for (const auto& b : v.backends) {
    if (b.weight > 0) {
      in.push_back({.id = b.address.to_string(), .weight = b.weight, .index = b.index});
    }
  }
  auto ring = maglev::build(in, v.ring_size, seed);
  EXPECT_TRUE(ring.ok());
  return ring.ok() ? *ring : std::vector<uint32_t>{};
}

bool same_applied(const std::map<VipKey, AppliedVip>& a, const std::map<VipKey, AppliedVip>& b,
                  bool compare_weights = true) {
  if (a.size() != b.size()) return false;
  for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j) {
    const AppliedVip &x = i->second, &y = j->second;
    if (!(i->first == j->first) || !(x.key == y.key) || x.index != y.index || x.flags != y.flags ||
        x.ring_size != y.ring_size || x.ring != y.ring || x.backends.size() != y.backends.size()) {
      return false;
    }
    for (size_t k = 0; k < x.backends.size(); ++k) {
      if (!(x.backends[k].address == y.backends[k].address) ||
          x.backends[k].index != y.backends[k].index ||
          (compare_weights && x.backends[k].weight != y.backends[k].weight)) {
        return false;
      }
    }
  }
  return true;
}

// Everything that must hold after a successful apply of `d`: the maps hold exactly the desired
// VIPs, their rings are maglev::build's output, every slot names a backend entry whose address
// is a member of that VIP with a positive weight, no backend entry leaks, no index is shared,
// and no intermediate state was unsafe.
void expect_consistent(const Reconciler& r, const FakeMapWriter& fake, const DesiredState& d,
                       uint32_t seed = kSeed) {
  const FakeMaps& maps = fake.maps();
  EXPECT_TRUE(fake.violations().empty()) << fake.violations().front();
  ASSERT_EQ(r.applied().size(), d.vips.size());
  ASSERT_EQ(maps.vips.size(), d.vips.size());
  ASSERT_EQ(maps.rings.size(), d.vips.size());
  std::set<uint32_t> vip_indices, backend_indices;
  size_t memberships = 0;
  for (const auto& [key, spec] : d.vips) {
    const AppliedVip* v = r.applied_vip(key);
    ASSERT_NE(v, nullptr) << key.to_string();
    EXPECT_TRUE(vip_indices.insert(v->index).second) << "VIP index shared: " << v->index;
    auto meta = maps.vips.find(key.abi());
    ASSERT_NE(meta, maps.vips.end()) << key.to_string();
    EXPECT_EQ(meta->second.vip_index, v->index);
    EXPECT_EQ(meta->second.flags, spec.abi_flags());
    EXPECT_EQ(meta->second.ring_size, v->ring_size);
    auto ring = maps.rings.find(v->index);
    ASSERT_NE(ring, maps.rings.end());
    EXPECT_EQ(ring->second, v->ring) << key.to_string();
    EXPECT_EQ(v->ring, built_ring(*v, seed)) << key.to_string();
    // Memberships mirror the spec.
    ASSERT_EQ(v->backends.size(), spec.backends.size()) << key.to_string();
    std::map<uint32_t, const BackendSpec*> by_index;
    for (const auto& m : v->backends) {
      const BackendSpec* s = nullptr;
      for (const auto& b : spec.backends) {
        if (b.address == m.address) s = &b;
      }
      ASSERT_NE(s, nullptr) << m.address.to_string();
      EXPECT_EQ(m.weight, effective_weight(*s));
      EXPECT_TRUE(backend_indices.insert(m.index).second) << "backend index shared: " << m.index;
      auto entry = maps.backends.find(m.index);
      ASSERT_NE(entry, maps.backends.end()) << "no entry for " << m.address.to_string();
      EXPECT_EQ(IpAddress::from_abi(entry->second.addr, static_cast<Family>(entry->second.family)),
                m.address);
      by_index[m.index] = s;
      ++memberships;
    }
    for (uint32_t slot : ring->second) {
      if (slot == kEmptySlot) continue;
      auto it = by_index.find(slot);
      ASSERT_NE(it, by_index.end()) << key.to_string() << ": slot names non-member " << slot;
      ASSERT_GT(effective_weight(*it->second), 0u) << key.to_string();
    }
  }
  EXPECT_EQ(maps.backends.size(), memberships) << "backend entries leaked";
}

void apply_ok(Reconciler& r, const DesiredState& d, const xlb_config& c = cfg(),
              ReconcileReport* out = nullptr) {
  auto rep = r.apply(d, c);
  ASSERT_TRUE(rep.ok()) << rep.error().to_string();
  if (out) *out = *rep;
}

// ---- Write order -----------------------------------------------------------------------------

TEST(Reconciler, NewVipWritesBackendsRingEntryThenConfig) {
  FakeMapWriter fake;
  Reconciler r(fake);
  auto d = desired_of({vip("198.18.200.1:80/tcp", backends(0, 3), 251)});
  ReconcileReport rep;
  apply_ok(r, d, cfg(), &rep);
  EXPECT_EQ(fake.ops(),
            cat({repeat(Op::kPutBackend, 3), {Op::kSetRing, Op::kPutVip, Op::kSetConfig}}))
      << ops_text(fake.ops());
  expect_consistent(r, fake, d);
  const AppliedVip* v = r.applied_vip(vkey("198.18.200.1:80/tcp"));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->index, 0u);
  EXPECT_EQ(v->ring_size, maglev::choose_ring_size(3, 251)->size);  // 300 > 251: raised
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(v->backends[i].index, i);
  EXPECT_EQ(rep.vips_added, 1u);
  EXPECT_EQ(rep.backends_added, 3u);
  EXPECT_EQ(rep.slots_changed, v->ring_size);
  EXPECT_EQ(rep.rings_swapped, 0u);
  EXPECT_TRUE(rep.config_changed);
  ASSERT_TRUE(r.applied_config().has_value());

  // The same state again: nothing to write.
  fake.clear_calls();
  apply_ok(r, d, cfg(), &rep);
  EXPECT_TRUE(fake.calls().empty()) << ops_text(fake.ops());
  EXPECT_EQ(rep.vips_added + rep.vips_changed + rep.vips_removed + rep.backends_added +
                rep.backends_removed + rep.slots_changed + rep.rings_swapped,
            0u);
  EXPECT_FALSE(rep.config_changed);
}

TEST(Reconciler, AddedBackendIsWrittenBeforeTheRingPatch) {
  FakeMapWriter fake;
  Reconciler r(fake);
  auto d = desired_of({vip("198.18.200.1:80/tcp", backends(0, 10), 2003)});
  apply_ok(r, d);
  const auto ring_before = r.applied_vip(vkey("198.18.200.1:80/tcp"))->ring;
  fake.clear_calls();
  at(d, "198.18.200.1:80/tcp").backends.push_back(be(backend_address(10)));
  ReconcileReport rep;
  apply_ok(r, d, cfg(), &rep);
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kPutBackend, Op::kUpdateRing}))
      << ops_text(fake.ops());
  expect_consistent(r, fake, d);
  const AppliedVip* v = r.applied_vip(vkey("198.18.200.1:80/tcp"));
  EXPECT_EQ(v->ring_size, 2003u);
  EXPECT_EQ(fake.calls()[0].index, 10u);
  size_t changed = 0;
  for (size_t s = 0; s < v->ring.size(); ++s) changed += v->ring[s] != ring_before[s];
  EXPECT_EQ(fake.calls()[1].slots, changed);
  EXPECT_EQ(rep.slots_changed, changed);
  EXPECT_EQ(rep.backends_added, 1u);
  EXPECT_EQ(rep.vips_changed, 1u);
  EXPECT_EQ(rep.rings_swapped, 0u);
}

TEST(Reconciler, RemovedBackendIsClearedAfterTheRingStopsNamingIt) {
  FakeMapWriter fake;
  Reconciler r(fake);
  auto d = desired_of({vip("198.18.200.1:80/tcp", backends(0, 10), 2003)});
  apply_ok(r, d);
  const uint32_t gone = r.applied_vip(vkey("198.18.200.1:80/tcp"))->backends[4].index;
  fake.clear_calls();
  auto& bs = at(d, "198.18.200.1:80/tcp").backends;
  bs.erase(bs.begin() + 4);
  ReconcileReport rep;
  apply_ok(r, d, cfg(), &rep);
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kUpdateRing, Op::kClearBackend}))
      << ops_text(fake.ops());
  EXPECT_EQ(fake.calls()[1].index, gone);
  EXPECT_FALSE(fake.maps().backends.count(gone));
  EXPECT_EQ(rep.backends_removed, 1u);
  expect_consistent(r, fake, d);
}

TEST(Reconciler, RemovedVipEntryThenRingThenBackends) {
  FakeMapWriter fake;
  Reconciler r(fake);
  auto d = desired_of({vip("198.18.200.1:80/tcp", backends(0, 3), 307),
                       vip("[2001:db8:200::1]:443/tcp", backends(250, 254), 401)});
  apply_ok(r, d);
  const auto kept_ring = r.applied_vip(vkey("198.18.200.1:80/tcp"))->ring;
  fake.clear_calls();
  d.vips.erase(vkey("[2001:db8:200::1]:443/tcp"));
  ReconcileReport rep;
  apply_ok(r, d, cfg(), &rep);
  EXPECT_EQ(fake.ops(), cat({{Op::kDeleteVip, Op::kClearRing}, repeat(Op::kClearBackend, 4)}))
      << ops_text(fake.ops());
  EXPECT_EQ(rep.vips_removed, 1u);
  EXPECT_EQ(rep.backends_removed, 4u);
  EXPECT_EQ(r.applied_vip(vkey("198.18.200.1:80/tcp"))->ring, kept_ring);
  expect_consistent(r, fake, d);
}

// The rank of each kind of write in a change without a shrink: must never go down.
int phase(Op op) {
  switch (op) {
    case Op::kPutBackend:
      return 1;
    case Op::kSetRing:
    case Op::kUpdateRing:
      return 2;
    case Op::kPutVip:
      return 3;
    case Op::kDeleteVip:
      return 4;
    case Op::kClearRing:
      return 5;
    case Op::kClearBackend:
      return 6;
    case Op::kSetConfig:
      return 7;
  }
  return 0;
}

TEST(Reconciler, MixedChangeFollowsTheSafeOrder) {
  FakeMapWriter fake;
  Reconciler r(fake);
  auto d = desired_of({vip("198.18.200.1:80/tcp", backends(0, 6), 1009),
                       vip("198.18.200.2:80/tcp", backends(6, 10), 401),
                       vip("198.18.200.3:80/tcp", backends(10, 13), 307)});
  apply_ok(r, d);
  fake.clear_calls();
  auto& a = at(d, "198.18.200.1:80/tcp");
  a.backends.erase(a.backends.begin());
  a.backends.push_back(be(backend_address(20)));
  a.no_lru = true;
  auto& b = at(d, "198.18.200.2:80/tcp");
  for (size_t i = 30; i < 33; ++i) b.backends.push_back(be(backend_address(i)));  // 700 > 401
  d.vips.erase(vkey("198.18.200.3:80/tcp"));
  auto nv = vip("198.18.200.4/udp", backends(40, 42), 211);
  nv.gue = true;
  d.vips[nv.key] = nv;
  auto c = cfg();
  c.max_pkt_size = 1500;
  ReconcileReport rep;
  apply_ok(r, d, c, &rep);
  const auto ops = fake.ops();
  for (size_t i = 1; i < ops.size(); ++i) {
    EXPECT_LE(phase(ops[i - 1]), phase(ops[i])) << ops_text(ops);
  }
  EXPECT_EQ(fake.count(Op::kPutBackend), 6u);
  EXPECT_EQ(fake.count(Op::kPutVip), 3u);  // flags of .1, size of .2, the new VIP
  EXPECT_EQ(fake.count(Op::kClearBackend), 4u);
  EXPECT_EQ(ops.back(), Op::kSetConfig);
  EXPECT_EQ(rep.vips_added, 1u);
  EXPECT_EQ(rep.vips_changed, 2u);
  EXPECT_EQ(rep.vips_removed, 1u);
  EXPECT_EQ(rep.backends_added, 6u);
  EXPECT_EQ(rep.backends_removed, 4u);
  EXPECT_TRUE(rep.config_changed);
  expect_consistent(r, fake, d);
}

TEST(Reconciler, FlagChangeWritesOnlyTheVipEntry) {
  FakeMapWriter fake;
  Reconciler r(fake);
  auto d = desired_of({vip("198.18.200.1:80/tcp", backends(0, 3), 307)});
  apply_ok(r, d);
  fake.clear_calls();
  at(d, "198.18.200.1:80/tcp").hash = HashMode::kSourceOnly;
  at(d, "198.18.200.1:80/tcp").icmp_too_big = true;
  ReconcileReport rep;
  apply_ok(r, d, cfg(), &rep);
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kPutVip}));
  EXPECT_EQ(rep.vips_changed, 1u);
  EXPECT_EQ(r.applied_vip(vkey("198.18.200.1:80/tcp"))->flags,
            uint32_t{XLB_VIP_HASH_SRC_ONLY | XLB_VIP_ICMP_TOO_BIG});
  expect_consistent(r, fake, d);
}

// ---- Patch or swap -------------------------------------------------------------------------

TEST(Reconciler, SwapsTheRingWhenManySlotsChange) {
  ReconcilerOptions opts;
  opts.patch_threshold = 0.01;  // one new backend of 11 moves ~9 % of the slots
  FakeMapWriter fake;
  Reconciler r(fake, opts);
  auto d = desired_of({vip("198.18.200.1:80/tcp", backends(0, 10), 2003)});
  apply_ok(r, d);
  fake.clear_calls();
  at(d, "198.18.200.1:80/tcp").backends.push_back(be(backend_address(10)));
  ReconcileReport rep;
  apply_ok(r, d, cfg(), &rep);
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kPutBackend, Op::kSetRing})) << ops_text(fake.ops());
  EXPECT_EQ(rep.rings_swapped, 1u);
  expect_consistent(r, fake, d);
}

TEST(Reconciler, NewSeedSwapsEveryRingThenWritesConfig) {
  FakeMapWriter fake;
  Reconciler r(fake);
  auto d = desired_of({vip("198.18.200.1:80/tcp", backends(0, 10), 2003),
                       vip("198.18.200.2:80/tcp", backends(10, 20), 2003)});
  apply_ok(r, d);
  fake.clear_calls();
  ReconcileReport rep;
  apply_ok(r, d, cfg(kSeed + 1), &rep);
  // A new seed gives new permutations: nearly every slot moves, more than the threshold.
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kSetRing, Op::kSetRing, Op::kSetConfig}))
      << ops_text(fake.ops());
  EXPECT_EQ(rep.rings_swapped, 2u);
  EXPECT_TRUE(rep.config_changed);
  expect_consistent(r, fake, d, kSeed + 1);
}

// ---- Ring sizes ----------------------------------------------------------------------------

TEST(Reconciler, RingSizeIsStickyGrowsWithBackendsAndFollowsTheOperator) {
  FakeMapWriter fake;
  Reconciler r(fake);
  const std::string key = "198.18.200.1:80/tcp";
  auto d = desired_of({vip(key, backends(0, 10))});
  apply_ok(r, d);
  EXPECT_EQ(r.applied_vip(vkey(key))->ring_size, 65537u);

  // 700 backends want 70000 slots: grown to the next prime, ring before meta.
  fake.clear_calls();
  at(d, key).backends = backends(0, 700);
  ReconcileReport rep;
  apply_ok(r, d, cfg(), &rep);
  EXPECT_GT(rep.duration.count(), 0);  // 690 writes and a 70k-slot build take a while
  EXPECT_EQ(rep.rings_swapped, 1u);
  const uint32_t grown = maglev::next_prime(70000);
  EXPECT_EQ(r.applied_vip(vkey(key))->ring_size, grown);
  EXPECT_EQ(fake.ops(), cat({repeat(Op::kPutBackend, 690), {Op::kSetRing, Op::kPutVip}}))
      << "calls: " << fake.calls().size();
  expect_consistent(r, fake, d);

  // Back to 10 backends: the size stays (no meta write), the ring is rewritten in place.
  fake.clear_calls();
  at(d, key).backends = backends(0, 10);
  apply_ok(r, d);
  EXPECT_EQ(r.applied_vip(vkey(key))->ring_size, grown);
  EXPECT_EQ(fake.count(Op::kPutVip), 0u);
  EXPECT_EQ(fake.count(Op::kSetRing) + fake.count(Op::kUpdateRing), 1u);
  EXPECT_EQ(fake.count(Op::kClearBackend), 690u);
  EXPECT_NE(fake.ops().front(), Op::kClearBackend);
  expect_consistent(r, fake, d);

  // The operator asks for 65537: shrink, meta before ring.
  fake.clear_calls();
  at(d, key).ring_size = 65537;
  apply_ok(r, d);
  EXPECT_EQ(r.applied_vip(vkey(key))->ring_size, 65537u);
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kPutVip, Op::kSetRing})) << ops_text(fake.ops());
  expect_consistent(r, fake, d);

  // ... and for a bigger one: grow, ring before meta.
  fake.clear_calls();
  at(d, key).ring_size = 131071;
  apply_ok(r, d);
  EXPECT_EQ(r.applied_vip(vkey(key))->ring_size, 131071u);
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kSetRing, Op::kPutVip})) << ops_text(fake.ops());
  expect_consistent(r, fake, d);

  // An explicit size too small for the backends is raised.
  fake.clear_calls();
  at(d, key).ring_size = 65537;
  at(d, key).backends = backends(0, 700);
  apply_ok(r, d);
  EXPECT_EQ(r.applied_vip(vkey(key))->ring_size, grown);
  expect_consistent(r, fake, d);
}

TEST(Reconciler, RejectsBadInputWithoutWriting) {
  FakeMapWriter fake;
  Reconciler r(fake);
  auto good = desired_of({vip("198.18.200.1:80/tcp", backends(0, 3), 307)});
  apply_ok(r, good);
  const FakeMaps before = fake.maps();
  fake.clear_calls();

  auto dup = good;
  at(dup, "198.18.200.1:80/tcp").backends.push_back(be(backend_address(0)));
  sort_backends(at(dup, "198.18.200.1:80/tcp"));
  at(dup, "198.18.200.1:80/tcp").backends.push_back(be(backend_address(5)));
  EXPECT_FALSE(r.apply(dup, cfg()).ok());

  auto not_prime = good;
  at(not_prime, "198.18.200.1:80/tcp").ring_size = 1000;
  auto rep = r.apply(not_prime, cfg());
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.error().message.find("198.18.200.1:80/tcp"), std::string::npos)
      << rep.error().message;

  EXPECT_TRUE(fake.calls().empty()) << ops_text(fake.ops());
  EXPECT_TRUE(fake.maps() == before);
  expect_consistent(r, fake, good);
}

// ---- Drain and weights -----------------------------------------------------------------------

TEST(Reconciler, DrainMovesSlotsAwayAndKeepsTheEntry) {
  for (BackendState state : {BackendState::kDraining, BackendState::kDisabled}) {
    FakeMapWriter fake;
    Reconciler r(fake);
    const std::string key = "198.18.200.1:80/tcp";
    auto d = desired_of({vip(key, backends(0, 5), 1009)});
    apply_ok(r, d);
    const auto original = r.applied_vip(vkey(key))->ring;
    const uint32_t drained = r.applied_vip(vkey(key))->backends[2].index;

    fake.clear_calls();
    find(at(d, key), backend_address(2))->state = state;
    apply_ok(r, d);
    EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kUpdateRing})) << ops_text(fake.ops());
    const AppliedVip* v = r.applied_vip(vkey(key));
    EXPECT_EQ(std::count(v->ring.begin(), v->ring.end(), drained), 0);
    EXPECT_EQ(v->backends.size(), 5u);
    EXPECT_EQ(v->backends[2].weight, 0u);
    EXPECT_TRUE(fake.maps().backends.count(drained));  // established flows keep using it
    // Every slot the drained backend owned moved; with Maglev a few others may move too.
    for (size_t s = 0; s < original.size(); ++s) {
      if (original[s] == drained) {
        EXPECT_NE(v->ring[s], drained);
      }
    }
    expect_consistent(r, fake, d);

    // Active again: the very same ring as before (same index, same inputs).
    find(at(d, key), backend_address(2))->state = BackendState::kActive;
    apply_ok(r, d);
    EXPECT_EQ(r.applied_vip(vkey(key))->ring, original);
  }
}

TEST(Reconciler, AllBackendsDownLeavesAnEmptyRing) {
  FakeMapWriter fake;
  Reconciler r(fake);
  const std::string key = "198.18.200.1:80/tcp";
  auto d = desired_of({vip(key, backends(0, 3), 307)});
  apply_ok(r, d);
  fake.clear_calls();
  for (auto& b : at(d, key).backends) b.state = BackendState::kDraining;
  apply_ok(r, d);
  const AppliedVip* v = r.applied_vip(vkey(key));
  // The data plane drops (drop_no_backend) what hashes to an empty slot.
  EXPECT_TRUE(
      std::all_of(v->ring.begin(), v->ring.end(), [](uint32_t s) { return s == kEmptySlot; }));
  EXPECT_EQ(fake.maps().backends.size(), 3u);
  EXPECT_EQ(fake.count(Op::kClearBackend), 0u);
  expect_consistent(r, fake, d);
}

TEST(Reconciler, WeightChangeShiftsShares) {
  FakeMapWriter fake;
  Reconciler r(fake);
  const std::string key = "198.18.200.1:80/tcp";
  auto d = desired_of({vip(key, backends(0, 4), 4001)});
  apply_ok(r, d);
  fake.clear_calls();
  find(at(d, key), backend_address(1))->weight = 3;
  apply_ok(r, d);
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kUpdateRing})) << ops_text(fake.ops());
  const AppliedVip* v = r.applied_vip(vkey(key));
  const auto heavy = std::count(v->ring.begin(), v->ring.end(), v->backends[1].index);
  EXPECT_NEAR(static_cast<double>(heavy) / v->ring.size(), 0.5, 0.01);  // 3 / (1 + 3 + 1 + 1)
  EXPECT_EQ(v->backends[1].weight, 3u);
  expect_consistent(r, fake, d);
}

TEST(Reconciler, ConfigIsWrittenOnlyWhenItChanges) {
  FakeMapWriter fake;
  Reconciler r(fake);
  auto d = desired_of({vip("198.18.200.1:80/tcp", backends(0, 2), 211)});
  apply_ok(r, d);
  EXPECT_EQ(fake.count(Op::kSetConfig), 1u);
  fake.clear_calls();
  apply_ok(r, d);
  EXPECT_EQ(fake.count(Op::kSetConfig), 0u);
  auto c = cfg();
  c.next_hop_mac[5] = 0x42;
  ReconcileReport rep;
  apply_ok(r, d, c, &rep);
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kSetConfig}));
  EXPECT_TRUE(rep.config_changed);
  EXPECT_EQ(fake.maps().config->next_hop_mac[5], 0x42);
  EXPECT_EQ(r.applied_config()->next_hop_mac[5], 0x42);
}

// ---- Indices ---------------------------------------------------------------------------------

TEST(Reconciler, ReleasedIndicesAreReusedLastInReleaseOrder) {
  ReconcilerOptions opts;
  opts.max_backends = 6;
  FakeMapWriter fake;
  Reconciler r(fake, opts);
  const std::string key = "198.18.200.1:80/tcp";
  auto d = desired_of({vip(key, backends(0, 4), 211)});
  apply_ok(r, d);  // indices 0..3
  auto index_of = [&](size_t i) {
    for (const auto& m : r.applied_vip(vkey(key))->backends) {
      if (m.address == ip(backend_address(i))) return m.index;
    }
    return kEmptySlot;
  };
  auto& bs = at(d, key).backends;
  auto remove = [&](size_t i) {
    bs.erase(std::find_if(bs.begin(), bs.end(), [&](const BackendSpec& b) {
      return b.address == ip(backend_address(i));
    }));
  };
  remove(3);
  apply_ok(r, d);  // releases 3
  remove(1);
  apply_ok(r, d);  // releases 1
  auto add = [&](size_t i) {
    bs.push_back(be(backend_address(i)));
    sort_backends(at(d, key));
  };
  // Never-used indices first...
  add(10);
  apply_ok(r, d);
  EXPECT_EQ(index_of(10), 4u);
  add(11);
  apply_ok(r, d);
  EXPECT_EQ(index_of(11), 5u);
  // ... then released ones, first released first.
  add(12);
  apply_ok(r, d);
  EXPECT_EQ(index_of(12), 3u);
  add(13);
  apply_ok(r, d);
  EXPECT_EQ(index_of(13), 1u);
  expect_consistent(r, fake, d);
  // All six in use.
  add(14);
  auto rep = r.apply(d, cfg());
  EXPECT_FALSE(rep.ok());
}

TEST(Reconciler, VipIndicesAreReusedLastToo) {
  ReconcilerOptions opts;
  opts.max_vips = 3;
  FakeMapWriter fake;
  Reconciler r(fake, opts);
  auto d = desired_of({vip("198.18.200.1:80/tcp", backends(0, 1), 211),
                       vip("198.18.200.2:80/tcp", backends(1, 2), 211)});
  apply_ok(r, d);
  d.vips.erase(vkey("198.18.200.1:80/tcp"));
  apply_ok(r, d);  // releases VIP index 0
  auto v3 = vip("198.18.200.3:80/tcp", backends(2, 3), 211);
  d.vips[v3.key] = v3;
  apply_ok(r, d);
  EXPECT_EQ(r.applied_vip(v3.key)->index, 2u);
  auto v4 = vip("198.18.200.4:80/tcp", backends(3, 4), 211);
  d.vips[v4.key] = v4;
  apply_ok(r, d);
  EXPECT_EQ(r.applied_vip(v4.key)->index, 0u);
  expect_consistent(r, fake, d);
}

TEST(Reconciler, ExhaustionFailsWithoutChangingAnything) {
  ReconcilerOptions opts;
  opts.max_vips = 2;
  opts.max_backends = 5;
  FakeMapWriter fake;
  Reconciler r(fake, opts);
  auto d = desired_of({vip("198.18.200.1:80/tcp", backends(0, 3), 307)});
  apply_ok(r, d);
  const FakeMaps maps_before = fake.maps();
  const auto applied_before = r.applied();
  fake.clear_calls();

  // Too many backends: 3 + 3 > 5.
  auto too_many = d;
  auto nv = vip("198.18.200.2:80/tcp", backends(10, 13), 307);
  too_many.vips[nv.key] = nv;
  auto rep = r.apply(too_many, cfg());
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.error().message.find("max_backends"), std::string::npos) << rep.error().message;
  // Too many VIPs.
  auto too_many_vips = d;
  for (int i = 2; i <= 3; ++i) {
    auto v = vip("198.18.200." + std::to_string(i) + ":80/tcp", {}, 211);
    too_many_vips.vips[v.key] = v;
  }
  rep = r.apply(too_many_vips, cfg());
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.error().message.find("max_vips"), std::string::npos) << rep.error().message;
  // A replacement needs new indices before the old ones are free.
  auto replaced = d;
  at(replaced, "198.18.200.1:80/tcp").backends = backends(20, 23);
  EXPECT_FALSE(r.apply(replaced, cfg()).ok());

  EXPECT_TRUE(fake.calls().empty()) << ops_text(fake.ops());
  EXPECT_TRUE(fake.maps() == maps_before);
  EXPECT_TRUE(same_applied(r.applied(), applied_before));

  // The allocators were restored: the next VIP and backends get the indices they would have.
  auto fits = d;
  nv = vip("198.18.200.2:80/tcp", backends(10, 12), 211);
  fits.vips[nv.key] = nv;
  apply_ok(r, fits);
  EXPECT_EQ(r.applied_vip(nv.key)->index, 1u);
  EXPECT_EQ(r.applied_vip(nv.key)->backends[0].index, 3u);
  EXPECT_EQ(r.applied_vip(nv.key)->backends[1].index, 4u);
  expect_consistent(r, fake, fits);

  // In two steps the replacement fits.
  auto half = fits;
  at(half, "198.18.200.1:80/tcp").backends = backends(0, 1);
  apply_ok(r, half);
  at(half, "198.18.200.1:80/tcp").backends = backends(20, 22);
  apply_ok(r, half);
  expect_consistent(r, fake, half);
}

// ---- Property: random operation sequences ----------------------------------------------------

class RandomState {
 public:
  explicit RandomState(uint32_t seed) : rng_(seed) {}

  uint32_t pick(uint32_t n) { return std::uniform_int_distribution<uint32_t>(0, n - 1)(rng_); }

  std::string vip_key(uint32_t i) {
    static const char* keys[] = {"198.18.200.1:80/tcp",   "198.18.200.1:443/tcp",
                                 "198.18.200.2/udp",      "[2001:db8:200::1]:53/udp",
                                 "[2001:db8:200::2]/tcp", "198.18.200.3:8080/tcp"};
    return keys[i % 6];
  }
  std::string address(uint32_t i) {
    return i % 2 ? "198.18.3." + std::to_string(i + 1) : "2001:db8:3::" + std::to_string(i + 1);
  }

  // One random edit of `d`.
  void mutate(DesiredState& d) {
    const uint32_t what = pick(10);
    if (what == 0 || d.vips.empty()) {  // add a VIP
      VipSpec v;
      v.key = vkey(vip_key(pick(6)));
      if (d.vips.count(v.key)) return;
      const uint32_t n = pick(5);
      for (uint32_t i = 0; i < n; ++i) add_backend(v);
      v.ring_size = ring_size();
      d.vips[v.key] = v;
      return;
    }
    auto it = d.vips.begin();
    std::advance(it, pick(d.vips.size()));
    VipSpec& v = it->second;
    switch (what) {
      case 1:
        d.vips.erase(it);
        return;
      case 2:
      case 3:
        add_backend(v);
        return;
      case 4:
        if (!v.backends.empty()) v.backends.erase(v.backends.begin() + pick(v.backends.size()));
        return;
      case 5:
      case 6:
        if (!v.backends.empty()) {
          v.backends[pick(v.backends.size())].state = static_cast<BackendState>(pick(3));
        }
        return;
      case 7:
        if (!v.backends.empty()) v.backends[pick(v.backends.size())].weight = pick(5);
        return;
      case 8:
        v.ring_size = ring_size();
        return;
      default:
        v.no_lru = !v.no_lru;
        return;
    }
  }

 private:
  void add_backend(VipSpec& v) {
    const IpAddress a = ip(address(pick(14)));
    if (v.find_backend(a)) return;
    v.backends.push_back(BackendSpec{.address = a, .weight = 1 + pick(3)});
    sort_backends(v);
  }
  std::optional<uint32_t> ring_size() {
    static const uint32_t sizes[] = {211, 307, 401, 503};
    return sizes[pick(4)];
  }

  std::mt19937 rng_;
};

TEST(Reconciler, RandomOperationsNeverPointASlotAtAForeignBackend) {
  int applied_ok = 0, rejected = 0, injected = 0, restarts = 0;
  for (uint32_t run = 0; run < 25; ++run) {
    RandomState rs(1000 + run);
    ReconcilerOptions opts;
    opts.max_vips = 4;
    opts.max_backends = 24;
    FakeMapWriter fake;
    auto r = std::make_unique<Reconciler>(fake, opts);
    DesiredState d;
    uint32_t seed = kSeed;
    for (int step = 0; step < 60; ++step) {
      DesiredState next = d;
      const int edits = 1 + rs.pick(3);
      for (int e = 0; e < edits; ++e) rs.mutate(next);
      uint32_t next_seed = rs.pick(20) == 0 ? seed + 1 : seed;
      const FakeMaps maps_before = fake.maps();
      const auto applied_before = r->applied();
      fake.clear_calls();
      const bool inject = rs.pick(6) == 0;
      if (inject) fake.fail_nth_call(1 + rs.pick(6));
      auto rep = r->apply(next, cfg(next_seed));
      fake.clear_failures();
      if (rep.ok()) {
        ++applied_ok;
        d = next;
        seed = next_seed;
      } else {
        inject ? ++injected : ++rejected;
        EXPECT_TRUE(fake.maps() == maps_before)
            << "run " << run << " step " << step << ": " << rep.error().message;
        EXPECT_TRUE(same_applied(r->applied(), applied_before))
            << "run " << run << " step " << step;
      }
      expect_consistent(*r, fake, d, seed);
      if (::testing::Test::HasFailure()) {
        ADD_FAILURE() << "run " << run << " step " << step;
        return;
      }
      // Now and then the daemon restarts: adopt the maps and re-apply the same state, which
      // must write no ring and no backend entry.
      if (rs.pick(8) == 0) {
        ++restarts;
        r = std::make_unique<Reconciler>(fake, opts);
        ASSERT_TRUE(r->adopt(fake.snapshot()).ok());
        fake.clear_calls();
        apply_ok(*r, d, cfg(seed));
        EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kSetConfig})) << ops_text(fake.ops());
        expect_consistent(*r, fake, d, seed);
      }
    }
  }
  // The sequences exercise every path.
  EXPECT_GT(applied_ok, 500);
  EXPECT_GT(rejected, 0);
  EXPECT_GT(injected, 50);
  EXPECT_GT(restarts, 50);
}

// ---- Rollback ------------------------------------------------------------------------------

// A change that exercises every kind of write: new, changed (patch, swap, grow, shrink, flags)
// and removed VIPs, new, drained and removed backends, and the config.
DesiredState rollback_before() {
  return desired_of({vip("198.18.200.1:80/tcp", backends(0, 12), 2003),
                     vip("198.18.200.2:443/tcp", backends(6, 10), 401),
                     vip("198.18.200.3/udp", backends(10, 15), 1009),
                     vip("[2001:db8:200::1]:53/udp", backends(250, 253), 307),
                     vip("198.18.200.6:80/tcp", backends(20, 22), 211)});
}

DesiredState rollback_after() {
  DesiredState d = rollback_before();
  auto& a = at(d, "198.18.200.1:80/tcp");  // patch + flags
  a.backends.erase(a.backends.begin() + 11);
  a.backends.push_back(be(backend_address(30)));
  a.backends[1].state = BackendState::kDraining;
  a.backends[2].weight = 2;
  a.no_lru = true;
  sort_backends(a);
  auto& b = at(d, "198.18.200.2:443/tcp");  // grow 401 -> 701
  for (size_t i = 31; i < 34; ++i) b.backends.push_back(be(backend_address(i)));
  sort_backends(b);
  at(d, "198.18.200.3/udp").ring_size = 503;  // shrink 1009 -> 503
  d.vips.erase(vkey("[2001:db8:200::1]:53/udp"));
  at(d, "198.18.200.6:80/tcp").backends = backends(40, 42);  // same size, every slot: swap
  auto nv = vip("198.18.200.5:8080/tcp", backends(35, 38), 307);
  nv.gue = true;
  d.vips[nv.key] = nv;
  return d;
}

xlb_config rollback_config() {
  xlb_config c = cfg();
  c.gue_port = htons(6081);
  return c;
}

TEST(Reconciler, FailureAtAnyWriteRollsBackEverything) {
  for (bool partial : {false, true}) {
    // The successful run: how many writes, and what the maps hold after.
    FakeMapWriter dry;
    Reconciler dry_r(dry);
    apply_ok(dry_r, rollback_before());
    dry.clear_calls();
    apply_ok(dry_r, rollback_after(), rollback_config());
    const size_t writes = dry.calls().size();
    EXPECT_GE(writes, 20u) << ops_text(dry.ops());
    for (Op op : {Op::kPutBackend, Op::kClearBackend, Op::kSetRing, Op::kUpdateRing, Op::kClearRing,
                  Op::kPutVip, Op::kDeleteVip, Op::kSetConfig}) {
      EXPECT_GT(dry.count(op), 0u) << testing::op_name(op);
    }
    const FakeMaps expected = dry.maps();

    for (size_t n = 1; n <= writes; ++n) {
      SCOPED_TRACE("failing write " + std::to_string(n) + " of " + std::to_string(writes) +
                   (partial ? " (partial update_ring)" : ""));
      FakeMapWriter fake;
      fake.set_partial_update_ring(partial);
      Reconciler r(fake);
      apply_ok(r, rollback_before());
      const FakeMaps before = fake.maps();
      const auto applied_before = r.applied();
      const auto config_before = r.applied_config();
      fake.clear_calls();
      fake.fail_nth_call(n);
      auto rep = r.apply(rollback_after(), rollback_config());
      ASSERT_FALSE(rep.ok());
      EXPECT_NE(rep.error().message.find("injected failure"), std::string::npos)
          << rep.error().message;
      EXPECT_EQ(rep.error().message.find("rolling back"), std::string::npos) << rep.error().message;
      // The writes up to the failure, then their inverses: n - 1 of them, or n when the failed
      // write was a patch that may have been partly done.
      const Op failed = fake.calls()[n - 1].op;
      EXPECT_EQ(fake.calls().size(), 2 * n - 1 + (failed == Op::kUpdateRing ? 1 : 0))
          << ops_text(fake.ops());
      EXPECT_TRUE(fake.maps() == before);
      EXPECT_TRUE(fake.violations().empty()) << fake.violations().front();
      EXPECT_TRUE(same_applied(r.applied(), applied_before));
      EXPECT_TRUE(config_before.has_value() && r.applied_config().has_value() &&
                  testing::same_bytes(*config_before, *r.applied_config()));
      expect_consistent(r, fake, rollback_before());

      // The same change, now without failures, lands exactly where the dry run did.
      fake.clear_failures();
      apply_ok(r, rollback_after(), rollback_config());
      EXPECT_TRUE(fake.maps() == expected);
      expect_consistent(r, fake, rollback_after());
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(Reconciler, FailedUndoIsReportedWithTheFailure) {
  FakeMapWriter fake;
  Reconciler r(fake);
  apply_ok(r, rollback_before());
  const auto applied_before = r.applied();
  fake.clear_calls();
  // The first write (a put_backend) succeeds, the second fails, and undoing the first fails.
  fake.fail_nth_call(2);
  fake.fail_op(Op::kClearBackend);
  auto rep = r.apply(rollback_after(), rollback_config());
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.error().message.find("put_backend"), std::string::npos) << rep.error().message;
  EXPECT_NE(rep.error().message.find("rolling back failed"), std::string::npos)
      << rep.error().message;
  EXPECT_NE(rep.error().message.find("undoing put_backend"), std::string::npos)
      << rep.error().message;
  EXPECT_TRUE(same_applied(r.applied(), applied_before));
}

// ---- Adoption ------------------------------------------------------------------------------

DesiredState adoption_state() {
  auto a = vip("198.18.200.1:80/tcp", backends(0, 5), 1009);
  a.backends[1].state = BackendState::kDraining;  // in no ring: an orphan after the restart
  a.backends[2].weight = 3;
  a.backends[3].weight = 0;
  auto b = vip("[2001:db8:200::1]:443/tcp", backends(250, 254));
  b.hash = HashMode::kNoSourcePort;
  auto c = vip("198.18.200.2/udp", backends(0, 3), 401);  // same addresses as in .1: own indices
  c.backends[1].state = BackendState::kDisabled;
  auto down = vip("198.18.200.3:53/udp", backends(10, 12), 211);
  for (auto& x : down.backends) x.state = BackendState::kDraining;
  return desired_of({a, b, c, down});
}

TEST(Reconciler, AdoptedMapsNeedNoWritesForTheSameState) {
  FakeMapWriter fake;
  Reconciler before_restart(fake);
  const DesiredState d = adoption_state();
  apply_ok(before_restart, d);
  const FakeMaps maps = fake.maps();

  Reconciler r(fake);
  ASSERT_TRUE(r.adopt(fake.snapshot()).ok());
  EXPECT_FALSE(r.applied_config().has_value());
  // VIPs, indices, sizes and rings come back; weight-0 members do not (no ring names them).
  ASSERT_EQ(r.applied().size(), before_restart.applied().size());
  for (const auto& [key, v] : before_restart.applied()) {
    const AppliedVip* a = r.applied_vip(key);
    ASSERT_NE(a, nullptr) << key.to_string();
    EXPECT_EQ(a->index, v.index);
    EXPECT_EQ(a->flags, v.flags);
    EXPECT_EQ(a->ring_size, v.ring_size);
    EXPECT_EQ(a->ring, v.ring);
  }

  fake.clear_calls();
  ReconcileReport rep;
  apply_ok(r, d, cfg(), &rep);
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kSetConfig})) << ops_text(fake.ops());
  EXPECT_TRUE(fake.maps() == maps);
  EXPECT_EQ(rep.vips_added + rep.vips_changed + rep.vips_removed + rep.slots_changed +
                rep.backends_added + rep.backends_removed + rep.rings_swapped,
            0u);
  EXPECT_TRUE(rep.config_changed);
  // Drained members got their old entries back: the state is the one before the restart.
  EXPECT_TRUE(same_applied(r.applied(), before_restart.applied()));
  expect_consistent(r, fake, d);

  // A change after the restart makes the minimal writes, with an index nobody uses.
  fake.clear_calls();
  DesiredState changed = d;
  at(changed, "198.18.200.1:80/tcp").backends.push_back(be(backend_address(60)));
  apply_ok(r, changed);
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kPutBackend, Op::kUpdateRing}))
      << ops_text(fake.ops());
  EXPECT_FALSE(maps.backends.count(fake.calls()[0].index));
  expect_consistent(r, fake, changed);
}

TEST(Reconciler, AdoptionKeepsAStickyRingSize) {
  FakeMapWriter fake;
  Reconciler first(fake);
  const std::string key = "198.18.200.1:80/tcp";
  auto d = desired_of({vip(key, backends(0, 700))});
  apply_ok(first, d);
  at(d, key).backends = backends(0, 10);
  apply_ok(first, d);
  ASSERT_EQ(first.applied_vip(vkey(key))->ring_size, maglev::next_prime(70000));

  Reconciler r(fake);
  ASSERT_TRUE(r.adopt(fake.snapshot()).ok());
  fake.clear_calls();
  apply_ok(r, d);
  EXPECT_EQ(fake.ops(), (std::vector<Op>{Op::kSetConfig})) << ops_text(fake.ops());
  EXPECT_EQ(r.applied_vip(vkey(key))->ring_size, maglev::next_prime(70000));
}

TEST(Reconciler, OrphansGoToWeightZeroMembersFirstAndTheRestAreCleared) {
  FakeMapWriter fake;
  Reconciler first(fake);
  // The same drained address in two VIPs: two entries no ring names.
  auto a = vip("198.18.200.1:80/tcp", backends(0, 3), 307);
  a.backends[2].state = BackendState::kDraining;
  auto b = vip("198.18.200.2:80/tcp", backends(2, 5), 307);
  b.backends[0].state = BackendState::kDraining;
  const DesiredState d = desired_of({a, b});
  apply_ok(first, d);
  const uint32_t a_orphan = first.applied_vip(a.key)->backends[2].index;
  const uint32_t b_orphan = first.applied_vip(b.key)->backends[0].index;
  ASSERT_LT(a_orphan, b_orphan);

  // While xlbd was down, the operator removed the drained backend from .2 and added the same
  // address, active, to a new VIP .3, whose key sorts after .2.
  DesiredState changed = d;
  auto& bs = at(changed, "198.18.200.2:80/tcp").backends;
  bs.erase(bs.begin());
  auto c = vip("198.18.200.9:80/tcp", {be(backend_address(2)), be(backend_address(7))}, 211);
  changed.vips[c.key] = c;

  Reconciler r(fake);
  ASSERT_TRUE(r.adopt(fake.snapshot()).ok());
  fake.clear_calls();
  apply_ok(r, changed);
  // .1's drained member claims the lowest orphan; the new VIP's member claims the other one,
  // so the only backend write is .9's second member.
  EXPECT_EQ(r.applied_vip(a.key)->backends[2].index, a_orphan);
  EXPECT_EQ(r.applied_vip(c.key)->backends[0].index, b_orphan);
  EXPECT_EQ(fake.count(Op::kPutBackend), 1u) << ops_text(fake.ops());
  EXPECT_EQ(fake.count(Op::kClearBackend), 0u) << ops_text(fake.ops());
  expect_consistent(r, fake, changed);

  // Without a taker, an orphan is cleared and its index released.
  // Drain .9's members so that their entries become orphans at the next restart.
  for (auto& x : at(changed, "198.18.200.9:80/tcp").backends) x.state = BackendState::kDraining;
  apply_ok(r, changed);
  FakeMapWriter restarted(fake.maps());
  Reconciler r4(restarted);
  ASSERT_TRUE(r4.adopt(restarted.snapshot()).ok());
  DesiredState without = changed;
  without.vips.erase(vkey("198.18.200.9:80/tcp"));
  apply_ok(r4, without);
  EXPECT_EQ(restarted.ops(),
            cat({{Op::kDeleteVip, Op::kClearRing}, repeat(Op::kClearBackend, 2), {Op::kSetConfig}}))
      << ops_text(restarted.ops());
  expect_consistent(r4, restarted, without);
}

TEST(Reconciler, AdoptionResumesIndexAllocationPastUsedIndices) {
  ReconcilerOptions opts;
  opts.max_backends = 8;
  FakeMaps maps;
  // Entries at 0, 2 and 5; the ring names 0 and 5, entry 2 is an orphan.
  auto entry = [](const std::string& a) {
    xlb_backend b{};
    b.addr = ip(a).abi();
    b.family = XLB_FAMILY_V4;
    return b;
  };
  maps.backends[0] = entry("198.18.3.1");
  maps.backends[2] = entry("198.18.3.2");
  maps.backends[5] = entry("198.18.3.3");
  const VipKey key = vkey("198.18.200.1:80/tcp");
  maps.vips[key.abi()] = xlb_vip_meta{.vip_index = 1, .flags = 0, .ring_size = 7, .reserved = 0};
  maps.rings[1] = {0, 5, 0, 5, 0, 5, 0};
  FakeMapWriter fake(maps);
  Reconciler r(fake, opts);
  ASSERT_TRUE(r.adopt(fake.snapshot()).ok());
  ASSERT_NE(r.applied_vip(key), nullptr);
  EXPECT_EQ(r.applied_vip(key)->backends.size(), 2u);

  auto d = desired_of({vip("198.18.200.1:80/tcp",
                           {be("198.18.3.1"), be("198.18.3.3"), be("198.18.3.9"), be("198.18.3.10"),
                            be("198.18.3.11"), be("198.18.3.12"), be("198.18.3.13")},
                           701)});
  apply_ok(r, d);
  std::map<std::string, uint32_t> index;
  for (const auto& m : r.applied_vip(key)->backends) index[m.address.to_string()] = m.index;
  EXPECT_EQ(index["198.18.3.1"], 0u);
  EXPECT_EQ(index["198.18.3.3"], 5u);
  // Fresh indices past the highest used one first, then the holes in ascending order; the
  // orphan (2) was cleared by this apply, so it is free only from the next one.
  EXPECT_EQ(index["198.18.3.9"], 6u);
  EXPECT_EQ(index["198.18.3.10"], 7u);
  EXPECT_EQ(index["198.18.3.11"], 1u);
  EXPECT_EQ(index["198.18.3.12"], 3u);
  EXPECT_EQ(index["198.18.3.13"], 4u);
  EXPECT_FALSE(fake.maps().backends.count(2));
  // A VIP index after the adopted one.
  auto nv = vip("198.18.200.2:80/tcp", {}, 211);
  d.vips[nv.key] = nv;
  apply_ok(r, d);
  EXPECT_EQ(r.applied_vip(nv.key)->index, 2u);
  expect_consistent(r, fake, d);
}

TEST(Reconciler, AdoptionRewritesRingsThatNameMissingEntries) {
  FakeMaps maps;
  xlb_backend b{};
  b.addr = ip("198.18.3.1").abi();
  b.family = XLB_FAMILY_V4;
  maps.backends[0] = b;
  const VipKey key = vkey("198.18.200.1:80/tcp");
  maps.vips[key.abi()] = xlb_vip_meta{.vip_index = 0, .flags = 0, .ring_size = 211, .reserved = 0};
  maps.rings[0] = std::vector<uint32_t>(211, 0);
  maps.rings[0][7] = 3;  // no entry at 3: someone else wrote this
  FakeMapWriter fake(maps);
  fake.set_check_invariants(false);
  Reconciler r(fake);
  ASSERT_TRUE(r.adopt(fake.snapshot()).ok());
  auto d = desired_of({vip("198.18.200.1:80/tcp", {be("198.18.3.1"), be("198.18.3.2")}, 211)});
  apply_ok(r, d);
  // Index 3 is reserved until the ring no longer names it: the new member got a fresh one.
  EXPECT_EQ(r.applied_vip(key)->backends[1].index, 4u);
  expect_consistent(r, fake, d);
}

TEST(Reconciler, AdoptionRejectsMapsItCannotExplain) {
  auto entry = [](const std::string& a) {
    xlb_backend b{};
    b.addr = ip(a).abi();
    b.family = XLB_FAMILY_V4;
    return b;
  };
  DataplaneSnapshot shared;  // two VIPs' rings name one backend index
  shared.backends[0] = entry("198.18.3.1");
  shared.vips.emplace_back(vkey("198.18.200.1:80/tcp").abi(),
                           xlb_vip_meta{.vip_index = 0, .flags = 0, .ring_size = 7, .reserved = 0});
  shared.vips.emplace_back(vkey("198.18.200.2:80/tcp").abi(),
                           xlb_vip_meta{.vip_index = 1, .flags = 0, .ring_size = 7, .reserved = 0});
  shared.rings[0] = std::vector<uint32_t>(7, 0);
  shared.rings[1] = std::vector<uint32_t>(7, 0);

  DataplaneSnapshot same_index = shared;  // two VIPs with one VIP index
  same_index.vips[1].second.vip_index = 0;
  same_index.rings.erase(1);

  DataplaneSnapshot bad_family = shared;
  bad_family.vips.pop_back();
  bad_family.vips[0].first.family = 5;

  DataplaneSnapshot out_of_range = shared;
  out_of_range.vips.pop_back();
  out_of_range.vips[0].second.vip_index = XLB_MAX_VIPS;

  FakeMapWriter fake;
  Reconciler r(fake);
  auto d = desired_of({vip("198.18.200.7:80/tcp", backends(0, 2), 211)});
  apply_ok(r, d);
  const auto applied_before = r.applied();
  for (const auto* s : {&shared, &same_index, &bad_family, &out_of_range}) {
    auto st = r.adopt(*s);
    EXPECT_FALSE(st.ok());
    if (!st.ok()) {
      EXPECT_NE(st.error().message.find("adopt"), std::string::npos);
    }
  }
  EXPECT_TRUE(same_applied(r.applied(), applied_before));
}

}  // namespace
}  // namespace xlb::state
