// SPDX-License-Identifier: Apache-2.0
// The generator's program and rules: every frame it writes is the frame the packet builder
// makes for that flow (byte for byte, valid checksums), also when the page held something else
// before (live-frame pages come back changed by the receiver); the sink counts and drops;
// specs outside the test ranges are refused; the initial namespace is recognised.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sched.h>

#include <tuple>

#include "packet.h"
#include "xlb/dataplane/test_run.h"
#include "xlb/pktgen/frames.h"
#include "xlb/pktgen/generator.h"
#include "xlb/pktgen/netns.h"

namespace xlb::pktgen {
namespace {

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

class GeneratorTest : public ::testing::TestWithParam<std::tuple<Family, Proto, bool>> {
 protected:
  void SetUp() override {
    // The sequence state is per CPU: stay on one.
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(0, &cpus);
    ASSERT_EQ(sched_setaffinity(0, sizeof(cpus), &cpus), 0);
    auto g = Generator::load();
    ASSERT_TRUE(g.ok()) << g.error().to_string();
    gen_ = std::move(*g);
  }
  std::unique_ptr<Generator> gen_;
};

TEST_P(GeneratorTest, WritesEveryFrameOfTheSequence) {
  auto [family, proto, new_connections] = GetParam();
  FrameSpec spec = default_spec(family);
  spec.proto = proto;
  spec.flows = 3;
  spec.new_connections = new_connections;
  spec.size = 128;
  ASSERT_TRUE(gen_->configure(spec).ok());
  const int cpu0[] = {0};
  ASSERT_TRUE(gen_->start_sequence(cpu0).ok());

  test::Bytes frame = template_frame(spec);
  // A page as the receiver may leave it: the first 40 bytes overwritten.
  test::Bytes dirty = frame;
  for (size_t i = 0; i < 40; i++) dirty[i] = uint8_t(0xa5 ^ i);
  for (uint64_t n = 0; n < 8; n++) {
    auto r = dataplane::test_run(gen_->tx_fd(), n % 2 ? dirty : frame);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->action, uint32_t{XDP_TX});
    test::Bytes want = flow_frame(spec, n);
    EXPECT_TRUE(r->out == want) << "frame " << n << "\n" << test::hexdump_diff(want, r->out);
    auto parsed = test::parse(r->out);
    EXPECT_TRUE(parsed.ok()) << parsed.to_string();
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, GeneratorTest,
                         ::testing::Combine(::testing::Values(Family::kV4, Family::kV6),
                                            ::testing::Values(Proto::kTcpSyn, Proto::kTcpAck,
                                                              Proto::kUdp),
                                            ::testing::Bool()));

TEST(Generator, ThreadsSplitTheSequence) {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(0, &cpus);
  ASSERT_EQ(sched_setaffinity(0, sizeof(cpus), &cpus), 0);
  auto gen = Generator::load();
  ASSERT_TRUE(gen.ok());
  FrameSpec spec = default_spec(Family::kV4);
  spec.flows = 10;
  ASSERT_TRUE((*gen)->configure(spec).ok());
  // As the second of two threads, CPU 0 sends frames 1, 3, 5, ...
  const int two[] = {1, 0};
  if (dataplane::possible_cpus() < 2) GTEST_SKIP() << "needs two CPUs";
  ASSERT_TRUE((*gen)->start_sequence(two).ok());
  test::Bytes frame = template_frame(spec);
  for (uint64_t n = 1; n < 8; n += 2) {
    auto r = dataplane::test_run((*gen)->tx_fd(), frame);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->out == flow_frame(spec, n)) << test::hexdump_diff(flow_frame(spec, n), r->out);
  }
}

TEST(Generator, SinkCountsAndDrops) {
  auto gen = Generator::load();
  ASSERT_TRUE(gen.ok());
  test::Bytes frame = template_frame(default_spec(Family::kV6));
  for (int i = 0; i < 3; i++) {
    auto r = dataplane::test_run((*gen)->sink_fd(), frame);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->action, uint32_t{XDP_DROP});
  }
  auto sink = (*gen)->sink();
  ASSERT_TRUE(sink.ok());
  EXPECT_EQ(*sink, 3u);
}

TEST(Generator, InjectRefusesTheInitialNamespace) {
  auto gen = Generator::load();
  ASSERT_TRUE(gen.ok());
  ASSERT_TRUE((*gen)->configure(default_spec(Family::kV4)).ok());
  auto self = open_netns("/proc/self/ns/net");
  ASSERT_TRUE(self.ok());
  auto initial = is_initial_netns(self->get());
  ASSERT_TRUE(initial.ok()) << initial.error().to_string();
  if (!*initial) GTEST_SKIP() << "the test itself runs outside the initial namespace";
  auto r = (*gen)->inject({.netns_fd = self->get(), .ifindex = 1, .count = 1, .cpus = {0}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("initial network namespace"), std::string::npos);
  auto sink = (*gen)->sink();
  ASSERT_TRUE(sink.ok());
  EXPECT_EQ(*sink, 0u);
}

TEST(Netns, CreatedNamespacesAreNotTheInitialOne) {
  auto ns = create_netns();
  ASSERT_TRUE(ns.ok()) << ns.error().to_string();
  auto initial = is_initial_netns(ns->get());
  ASSERT_TRUE(initial.ok());
  EXPECT_FALSE(*initial);
  auto inside = run_in_netns(ns->get(), [] { return thread_in_initial_netns(); });
  ASSERT_TRUE(inside.ok());
  EXPECT_FALSE(*inside);
  auto lo = ifindex_in(ns->get(), "lo");
  ASSERT_TRUE(lo.ok());
  EXPECT_EQ(*lo, 1);
  EXPECT_FALSE(ifindex_in(ns->get(), "eth0").ok());
  auto bad = run_command({"ip", "link", "set", "nonexistent0", "up"}, ns->get());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("nonexistent0"), std::string::npos);
}

TEST(FrameSpec, RefusesAddressesOutsideTheTestRanges) {
  FrameSpec spec = default_spec(Family::kV4);
  EXPECT_TRUE(validate(spec).ok());
  spec.dst = ip("127.0.0.1");  // loopback: outside the test ranges (never sent)
  EXPECT_FALSE(validate(spec).ok());
  spec = default_spec(Family::kV4);
  spec.src = ip("127.0.0.2");
  EXPECT_FALSE(validate(spec).ok());
  // 198.19.255.250 + 10 clients leaves 198.18.0.0/15.
  spec = default_spec(Family::kV4);
  spec.src = ip("198.19.255.250");
  spec.flows = 6;
  EXPECT_TRUE(validate(spec).ok());
  spec.flows = 7;
  EXPECT_FALSE(validate(spec).ok());
  spec = default_spec(Family::kV6);
  EXPECT_TRUE(validate(spec).ok());
  spec.dst = ip("::1");
  EXPECT_FALSE(validate(spec).ok());
  spec = default_spec(Family::kV6);
  spec.dst = ip("198.18.200.1");  // wrong family
  EXPECT_FALSE(validate(spec).ok());
}

TEST(FrameSpec, SizesAndFlows) {
  FrameSpec spec = default_spec(Family::kV6);
  spec.proto = Proto::kTcpAck;
  spec.size = 73;
  EXPECT_FALSE(validate(spec).ok());
  spec.size = 74;
  EXPECT_TRUE(validate(spec).ok());
  EXPECT_EQ(default_frame_size(Family::kV6, Proto::kTcpAck), 74u);
  EXPECT_EQ(default_frame_size(Family::kV4, Proto::kTcpAck), 64u);
  spec.size = kMaxFrameSize + 1;
  EXPECT_FALSE(validate(spec).ok());
  spec.size = kMaxFrameSize;
  EXPECT_TRUE(validate(spec).ok());
  spec.flows = 0;
  EXPECT_FALSE(validate(spec).ok());
  EXPECT_FALSE(parse_proto("tcp").ok());
  EXPECT_EQ(*parse_proto("tcp-syn"), Proto::kTcpSyn);
}

}  // namespace
}  // namespace xlb::pktgen
