// SPDX-License-Identifier: Apache-2.0
// The userspace answer to "which backend serves this flow" must be the program's answer
// (design.md section 5): Balancer::flow_to_backend() and the pure dataplane::ring_backend()
// against the backend an XDP_TX'd SYN is actually tunnelled to, for 10k+ random flows per family
// over 120 weighted backends, every hash variant, the connection table and a ring change.
#include <arpa/inet.h>
#include <linux/bpf.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "balancer_fixture.h"
#include "xlb/dataplane/flow.h"
#include "xlb/maglev/maglev.h"

namespace xlb::test {
namespace {

constexpr uint32_t kRingSize = XLB_DEFAULT_RING_SIZE;  // 65537
constexpr uint32_t kBackendsPerFamily = 120;
constexpr size_t kFlowsPerFamily = 10'000;

// One VIP of the family under test; all share the family's backends and ring.
struct VipSpec {
  std::string addr;
  uint16_t port;  // 0: port-less, so the flows' destination ports vary too
  uint8_t proto;
  uint32_t flags;
};

// A random flow and what the program did with its first packet.
struct Flow {
  const VipSpec* vip;
  uint32_t vip_index;
  std::string client;
  uint16_t sport;
  uint16_t dport;
  xlb_flow_key key;
  uint32_t backend;
};

class AgreementTest : public BalancerTest {
 protected:
  void SetUp() override {
    BalancerTest::SetUp();
    if (HasFatalFailure()) return;
    // The fixture's table (4096 flows per CPU) suits golden tests; here 10k flows must stay
    // established at once, and an LRU map starts evicting before it is full. Same options
    // otherwise, on the CPU the fixture pinned us to.
    lb_.reset();
    auto lb = dataplane::Balancer::load({.max_vips = 64,
                                         .max_backends = 256,
                                         .flows_per_cpu = 1U << 16,
                                         .flow_table = dataplane::FlowTable::kPerCpuMaps,
                                         .fake_clock = true});
    ASSERT_TRUE(lb.ok()) << lb.error().to_string();
    lb_ = std::move(*lb);
    lb_->set_fake_now(1'000'000'000'000ULL);
    set_config(default_test_config());
  }

  // 120 backends of one family with weights 1..5, installed in the backends map.
  void add_backends(bool v6) {
    for (uint32_t i = 0; i < kBackendsPerFamily; i++) {
      std::string addr = v6 ? "2001:db8:3::" + std::to_string(i + 0x10)
                            : (i < 100 ? "198.18.3." + std::to_string(i + 10)
                                       : "198.18.4." + std::to_string(i - 100 + 10));
      uint32_t index = (v6 ? 121 : 1) + i;
      add_backend(index, addr.c_str());
      if (HasFatalFailure()) return;
      // A spread of weights that is not a simple cycle of the index.
      backends_.push_back({.id = addr, .weight = 1 + (i * 7 + i / 5) % 5, .index = index});
      addr_to_index_[canonical(addr)] = index;
    }
  }

  static std::string canonical(const std::string& addr) {
    auto ip = IpAddress::parse(addr);
    return ip.ok() ? ip->to_string() : addr;
  }

  std::vector<uint32_t> build_ring(const std::vector<maglev::Backend>& backends) {
    auto ring = maglev::build(backends, kRingSize, cfg_.hash_seed);
    EXPECT_TRUE(ring.ok()) << ring.error().to_string();
    return ring.ok() ? *ring : std::vector<uint32_t>{};
  }

  static Bytes frame(const Flow& f, bool v6, uint8_t tcp_flags) {
    Packet p;
    p.eth(eth_in());
    if (v6) {
      p.ipv6({.src = f.client, .dst = f.vip->addr});
    } else {
      p.ipv4({.src = f.client, .dst = f.vip->addr, .df = true});
    }
    if (f.vip->proto == kProtoTcp) {
      p.tcp({.sport = f.sport, .dport = f.dport, .flags = tcp_flags, .seq = 1});
    } else {
      p.udp({.sport = f.sport, .dport = f.dport});
    }
    return p.payload("x").bytes();
  }

  // Backend index the program tunnelled `in` to, or UINT32_MAX (with a failure) if it did not.
  uint32_t program_backend(const Bytes& in) {
    auto r = dataplane::test_run(lb_->prog_fd(), in);
    if (!r.ok()) {
      ADD_FAILURE() << r.error().to_string();
      return UINT32_MAX;
    }
    if (r->action != XDP_TX) {
      ADD_FAILURE() << "action " << r->action << " for\n" << hexdump(in);
      return UINT32_MAX;
    }
    ParsedPacket p = parse(r->out, {.verify_l4_checksums = false});
    std::string dst;
    if (const auto* ip4 = p.find<ParsedIpv4>(0)) {
      dst = ip4->dst.to_string();
    } else if (const auto* ip6 = p.find<ParsedIpv6>(0)) {
      dst = ip6->dst.to_string();
    }
    auto it = addr_to_index_.find(dst);
    if (it == addr_to_index_.end()) {
      ADD_FAILURE() << "tunnelled to unknown address '" << dst << "': " << p.to_string();
      return UINT32_MAX;
    }
    return it->second;
  }

  dataplane::FlowPlacement placement(const xlb_flow_key& key, bool new_connection) {
    auto pl = lb_->flow_to_backend(key, new_connection);
    if (!pl.ok()) {
      ADD_FAILURE() << pl.error().to_string();
      return {.backend_index = UINT32_MAX};
    }
    return *pl;
  }

  // The whole agreement check for one family; see the file comment.
  void run_family(bool v6) {
    const auto t0 = std::chrono::steady_clock::now();
    add_backends(v6);
    if (HasFatalFailure()) return;
    const std::vector<uint32_t> ring = build_ring(backends_);
    ASSERT_EQ(ring.size(), kRingSize);

    // TCP with the three hash variants, and UDP (whose first packet is placed like a SYN).
    const std::string base = v6 ? "2001:db8:200::" : "198.18.200.";
    const std::vector<VipSpec> vips = {
        {base + "10", 80, kProtoTcp, 0},
        {base + "11", 443, kProtoTcp, XLB_VIP_HASH_SRC_ONLY},
        {base + "12", 0, kProtoTcp, XLB_VIP_HASH_NO_SPORT},
        {base + "13", 53, kProtoUdp, 0},
    };
    for (uint32_t i = 0; i < vips.size(); i++) {
      add_vip(vips[i].addr.c_str(), vips[i].port, vips[i].proto, i, vips[i].flags, ring);
      if (HasFatalFailure()) return;
    }

    // Clients only from the lab's test ranges: 198.18.0.0/15 and 2001:db8::/32.
    std::mt19937 rng(v6 ? 0x6a9e : 0x4a9e);
    auto client = [&]() -> std::string {
      if (!v6) {
        uint32_t host = rng() & 0x1ffff;
        return "198." + std::to_string(18 + (host >> 16)) + "." +
               std::to_string((host >> 8) & 0xff) + "." + std::to_string(host & 0xff);
      }
      // One draw per group, in order (argument evaluation order is unspecified).
      std::string addr = "2001:db8";
      for (int group = 0; group < 6; group++) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), ":%x", static_cast<unsigned>(rng() & 0xffff));
        addr += hex;
      }
      return addr;
    };
    auto port = [&]() { return static_cast<uint16_t>(1 + rng() % 65535); };

    // ---- New flows: program, flow_to_backend(new) and ring_backend() agree.
    std::vector<Flow> flows;
    flows.reserve(kFlowsPerFamily);
    std::map<uint32_t, size_t> per_backend;
    for (size_t n = 0; n < kFlowsPerFamily; n++) {
      Flow f{};
      f.vip_index = static_cast<uint32_t>(rng() % vips.size());
      f.vip = &vips[f.vip_index];
      f.client = client();
      f.sport = port();
      f.dport = f.vip->port ? f.vip->port : port();
      f.key = dataplane::make_flow_key(*IpAddress::parse(f.client), f.sport,
                                       *IpAddress::parse(f.vip->addr), f.dport, f.vip->proto);
      const xlb_vip_meta meta{
          .vip_index = f.vip_index, .flags = f.vip->flags, .ring_size = kRingSize};
      const uint32_t pure = dataplane::ring_backend(f.key, meta, cfg_.hash_seed, ring);
      const auto told = placement(f.key, /*new_connection=*/true);
      f.backend = program_backend(frame(f, v6, kSyn));
      ASSERT_EQ(f.backend, pure) << "flow " << n << " " << f.client << ":" << f.sport << " > "
                                 << f.vip->addr << ":" << f.dport;
      ASSERT_EQ(told.backend_index, pure) << "flow " << n;
      EXPECT_FALSE(told.from_table);
      // The first packet inserted the flow: from now on the table answers, and agrees.
      const auto known = placement(f.key, false);
      ASSERT_EQ(known.backend_index, f.backend) << "flow " << n;
      EXPECT_TRUE(known.from_table) << "flow " << n;
      ASSERT_EQ(program_backend(frame(f, v6, kAck)), f.backend) << "flow " << n;
      per_backend[f.backend]++;
      flows.push_back(f);
    }

    // Every backend got flows, in proportion to its weight (binomial noise: ~4 sigma slack).
    std::map<uint32_t, double> per_weight_unit;
    double weight_sum = 0;
    for (const auto& b : backends_) {
      EXPECT_GT(per_backend[b.index], 0u) << "backend " << b.id << " got no flow";
      per_weight_unit[b.weight] += per_backend[b.index];
      weight_sum += b.weight;
    }
    std::map<uint32_t, uint32_t> weight_count;
    for (const auto& b : backends_) weight_count[b.weight]++;
    for (auto [w, got] : per_weight_unit) {
      const double want = kFlowsPerFamily * w * weight_count[w] / weight_sum;
      EXPECT_NEAR(got, want, 0.15 * want) << "flows on weight-" << w << " backends";
    }

    // ---- Ring change: one backend leaves the ring (not the backends map).
    const maglev::Backend gone = backends_[17];
    std::vector<maglev::Backend> fewer;
    for (const auto& b : backends_) {
      if (b.index != gone.index) fewer.push_back(b);
    }
    const std::vector<uint32_t> ring2 = build_ring(fewer);
    ASSERT_EQ(ring2.size(), kRingSize);
    for (uint32_t i = 0; i < vips.size(); i++) ASSERT_TRUE(lb_->set_ring(i, ring2).ok());

    size_t moved = 0, tcp_flows = 0;
    for (size_t n = 0; n < flows.size(); n++) {
      const Flow& f = flows[n];
      const xlb_vip_meta meta{
          .vip_index = f.vip_index, .flags = f.vip->flags, .ring_size = kRingSize};
      const uint32_t now = dataplane::ring_backend(f.key, meta, cfg_.hash_seed, ring2);
      ASSERT_NE(now, gone.index);
      if (f.backend == gone.index) {
        ASSERT_NE(now, f.backend);
      }
      moved += now != f.backend;
      // Established: the table keeps the backend, for userspace and program alike.
      const auto kept = placement(f.key, false);
      ASSERT_EQ(kept.backend_index, f.backend) << "flow " << n;
      EXPECT_TRUE(kept.from_table);
      ASSERT_EQ(program_backend(frame(f, v6, kAck)), f.backend) << "flow " << n;
      // A new connection follows the new ring.
      const auto fresh = placement(f.key, true);
      ASSERT_EQ(fresh.backend_index, now) << "flow " << n;
      EXPECT_FALSE(fresh.from_table);
      if (f.vip->proto != kProtoTcp) continue;
      tcp_flows++;
      ASSERT_EQ(program_backend(frame(f, v6, kSyn)), now) << "flow " << n;
      ASSERT_EQ(placement(f.key, false).backend_index, now) << "flow " << n;
    }
    // At least the removed backend's flows moved; Maglev moves little more than those.
    EXPECT_GE(moved, per_backend[gone.index]);
    EXPECT_LT(moved, 4 * per_backend[gone.index] + 20);

    // UDP entries idle past the limit are placed by the ring again, in both views.
    lb_->set_fake_now(lb_->now_ns() + cfg_.udp_idle_ns + 1);
    size_t udp_flows = 0;
    for (size_t n = 0; n < flows.size(); n++) {
      const Flow& f = flows[n];
      if (f.vip->proto != kProtoUdp) continue;
      udp_flows++;
      const xlb_vip_meta meta{.vip_index = f.vip_index, .flags = 0, .ring_size = kRingSize};
      const uint32_t now = dataplane::ring_backend(f.key, meta, cfg_.hash_seed, ring2);
      const auto expired = placement(f.key, false);
      ASSERT_EQ(expired.backend_index, now) << "flow " << n;
      EXPECT_FALSE(expired.from_table);
      ASSERT_EQ(program_backend(frame(f, v6, 0)), now) << "flow " << n;
    }

    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << (v6 ? "v6" : "v4") << ": " << flows.size() << " flows (" << tcp_flows << " TCP, "
              << udp_flows << " UDP) over " << backends_.size() << " backends, " << moved
              << " moved by the ring change (" << per_backend[gone.index]
              << " on the removed backend), " << secs << " s\n";
  }

  std::vector<maglev::Backend> backends_;
  std::map<std::string, uint32_t> addr_to_index_;
};

TEST_F(AgreementTest, V4) { run_family(false); }

TEST_F(AgreementTest, V6) { run_family(true); }

}  // namespace
}  // namespace xlb::test
