// SPDX-License-Identifier: Apache-2.0
#include "balancer_fixture.h"

#include <arpa/inet.h>
#include <sched.h>

#include <map>

#include "xlb/flow_hash.h"

namespace xlb::test {

static const char* const kCounterNames[] = {
#define XLB_COUNTER_NAME(name, metric, help) metric,
    XLB_COUNTERS(XLB_COUNTER_NAME)
#undef XLB_COUNTER_NAME
};
static const char* const kDecapCounterNames[] = {
#define XLB_DECAP_COUNTER_NAME(name, metric, help) metric,
    XLB_DECAP_COUNTERS(XLB_DECAP_COUNTER_NAME)
#undef XLB_DECAP_COUNTER_NAME
};

Eth eth_in() { return {.src = kPeerMac, .dst = kLbMac}; }

xlb_flow_key flow_of(const Bytes& frame) {
  ParsedPacket p = parse(frame, {.verify_l4_checksums = false});
  xlb_flow_key key{};
  if (const auto* ip4 = p.find<ParsedIpv4>()) {
    key.family = XLB_FAMILY_V4;
    key.src = ip4->src.to_abi();
    key.dst = ip4->dst.to_abi();
    key.proto = ip4->proto;
  } else if (const auto* ip6 = p.find<ParsedIpv6>()) {
    key.family = XLB_FAMILY_V6;
    key.src = ip6->src.to_abi();
    key.dst = ip6->dst.to_abi();
    key.proto = ip6->next_header;
  }
  if (const auto* tcp = p.find<ParsedTcp>()) {
    key.sport = htons(tcp->sport);
    key.dport = htons(tcp->dport);
  } else if (const auto* udp = p.find<ParsedUdp>()) {
    key.sport = htons(udp->sport);
    key.dport = htons(udp->dport);
  }
  return key;
}

void BalancerTest::SetUp() {
  // BPF_PROG_TEST_RUN runs on the calling CPU; with per-CPU flow maps a test that hopped CPUs
  // between two packets would see another table.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(0, &cpus);
  ASSERT_EQ(sched_setaffinity(0, sizeof(cpus), &cpus), 0);
#ifdef XLB_TEST_SHARED_LRU
  const auto layout = dataplane::FlowTable::kSharedPerCpuLru;
#else
  const auto layout = dataplane::FlowTable::kPerCpuMaps;
#endif
  auto lb = dataplane::Balancer::load({.max_vips = 64,
                                       .max_backends = 256,
                                       .flows_per_cpu = 4096,
                                       .flow_table = layout,
                                       .fake_clock = true});
  ASSERT_TRUE(lb.ok()) << lb.error().to_string();
  lb_ = std::move(*lb);
  lb_->set_fake_now(1'000'000'000'000ULL);  // t = 1000 s
  set_config(default_test_config());
}

xlb_config BalancerTest::default_test_config() const {
  xlb_config cfg = dataplane::Balancer::default_config();
  std::copy(kRouterMac.octets.begin(), kRouterMac.octets.end(), cfg.next_hop_mac);
  cfg.gue_port = htons(kGuePort);
  cfg.encap_src_v4 = Ipv4Addr("198.19.0.0").be();
  cfg.encap_src_v4_host_mask = htonl(0x0000ffff);
  cfg.encap_src_v6 = Ipv6Addr("2001:db8:ff::").to_abi();
  cfg.encap_src_v6_host_mask = htonl(0xffffffff);
  cfg.hash_seed = kSeed;
  cfg.new_flows_per_sec = 0;  // the rate guard has its own tests
  return cfg;
}

void BalancerTest::set_config(const xlb_config& cfg) {
  auto st = lb_->set_config(cfg);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  auto now = lb_->config();
  ASSERT_TRUE(now.ok());
  cfg_ = *now;
}

void BalancerTest::add_vip(const char* addr, uint16_t port, uint8_t proto, uint32_t index,
                           uint32_t flags, const std::vector<uint32_t>& ring) {
  auto ip = IpAddress::parse(addr);
  ASSERT_TRUE(ip.ok()) << addr;
  xlb_vip_key key{};
  key.addr = ip->abi();
  key.port = htons(port);
  key.proto = proto;
  key.family = ip->abi_family();
  xlb_vip_meta meta{.vip_index = index, .flags = flags,
                    .ring_size = static_cast<uint32_t>(ring.size())};
  auto st = lb_->set_ring(index, ring);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  st = lb_->put_vip(key, meta);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  auto cfg = lb_->config();
  ASSERT_TRUE(cfg.ok());
  cfg_ = *cfg;
}

void BalancerTest::add_vip_one_backend(const char* addr, uint16_t port, uint8_t proto,
                                       uint32_t index, uint32_t flags, uint32_t backend) {
  add_vip(addr, port, proto, index, flags, std::vector<uint32_t>(13, backend));
}

void BalancerTest::add_backend(uint32_t index, const char* addr) {
  auto ip = IpAddress::parse(addr);
  ASSERT_TRUE(ip.ok()) << addr;
  xlb_backend be{};
  be.addr = ip->abi();
  be.family = ip->abi_family();
  auto st = lb_->put_backend(index, be);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
}

dataplane::TestRunResult BalancerTest::run(const Bytes& frame) {
  auto r = dataplane::test_run(lb_->prog_fd(), frame);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? *r : dataplane::TestRunResult{};
}

xlb_counters BalancerTest::counters() {
  auto c = lb_->counters();
  EXPECT_TRUE(c.ok());
  return c.ok() ? *c : xlb_counters{};
}

xlb_traffic BalancerTest::backend_traffic(uint32_t index) {
  auto t = lb_->backend_traffic(index);
  EXPECT_TRUE(t.ok());
  return t.ok() ? *t : xlb_traffic{};
}

xlb_traffic BalancerTest::vip_traffic(uint32_t index) {
  auto t = lb_->vip_traffic(index);
  EXPECT_TRUE(t.ok());
  return t.ok() ? *t : xlb_traffic{};
}

Bytes BalancerTest::encapsulated(const Bytes& client, const char* backend, bool gue) const {
  ParsedPacket p = parse(client, {.verify_l4_checksums = false});
  const auto* ip4 = p.find<ParsedIpv4>();
  const auto* ip6 = p.find<ParsedIpv6>();
  // The datagram the tunnel carries: the client's bytes from the IP header, without padding.
  size_t l3_len = ip4 ? ip4->tot_len : 40 + ip6->payload_len;
  Bytes l3(client.begin() + kEthHeaderLen, client.begin() + kEthHeaderLen + l3_len);
  uint8_t tos = ip4 ? ip4->tos : ip6->traffic_class;
  uint8_t inner_proto = ip4 ? kProtoIpip : kProtoIpv6;

  xlb_flow_key key = flow_of(client);
  uint32_t entropy = xlb_encap_entropy(&key);
  Packet out;
  out.eth({.src = kLbMac, .dst = kRouterMac});
  std::string be(backend);
  if (be.find(':') == std::string::npos) {
    out.ipv4({.src = Ipv4Addr::from_be(xlb_encap_src_v4(&cfg_, entropy)),
              .dst = be,
              .ttl = XLB_OUTER_TTL,
              .tos = tos,
              .df = true,
              .proto = gue ? std::optional<uint8_t>() : std::optional<uint8_t>(inner_proto)});
  } else {
    xlb_addr src = cfg_.encap_src_v6;
    src.words[3] = xlb_encap_src_v6_last(&cfg_, entropy);
    out.ipv6({.src = Ipv6Addr::from_abi(src),
              .dst = be,
              .hop_limit = XLB_OUTER_TTL,
              .traffic_class = tos,
              .flow_label = xlb_flow_label(entropy),
              .next_header = gue ? std::optional<uint8_t>() : std::optional<uint8_t>(inner_proto)});
  }
  if (gue) out.udp({.sport = xlb_gue_sport(entropy), .dport = kGuePort, .checksum = 0});
  out.payload(l3);
  return out.bytes();
}

namespace {

// Of the `n` counters named `names`, only those in `want` moved, each by its amount.
template <typename Enum>
void expect_moved(const __u64* before, const __u64* after, int n, const char* const* names,
                  std::initializer_list<std::pair<Enum, uint64_t>> moved) {
  std::map<int, uint64_t> want;
  for (auto [c, count] : moved) want[c] = count;
  for (int c = 0; c < n; c++) {
    EXPECT_EQ(after[c] - before[c], want.count(c) ? want[c] : 0) << "counter " << names[c];
  }
}

}  // namespace

void expect_counter_deltas(const xlb_counters& before, const xlb_counters& after,
                           std::initializer_list<std::pair<xlb_counter, uint64_t>> moved) {
  expect_moved(before.c, after.c, XLB_CNT__MAX, kCounterNames, moved);
}

void expect_decap_deltas(const xlb_decap_counters& before, const xlb_decap_counters& after,
                         std::initializer_list<std::pair<xlb_decap_counter, uint64_t>> moved) {
  expect_moved(before.c, after.c, XLB_DCNT__MAX, kDecapCounterNames, moved);
}

}  // namespace xlb::test
