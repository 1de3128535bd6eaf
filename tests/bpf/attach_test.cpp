// SPDX-License-Identifier: Apache-2.0
// Attaching, pinning, adopting and replacing programs on a real veth, in a private netns.
#include <gtest/gtest.h>
#include <net/if.h>

#include <filesystem>

#include "sandbox.h"
#include "xlb/dataplane/attach.h"
#include "xlb/dataplane/balancer.h"
#include "xlb/dataplane/decap.h"

namespace xlb::dataplane {
namespace {

class AttachTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    netns_error_ = test::enter_private_netns();
    if (netns_error_.empty() &&
        test::run("ip link add xlbt0 type veth peer name xlbt1 && ip link set xlbt0 up && "
                  "ip link set xlbt1 up") != 0) {
      netns_error_ = "could not create a veth pair (CONFIG_VETH missing?)";
    }
  }
  void SetUp() override {
    if (!netns_error_.empty()) GTEST_FAIL() << netns_error_;
  }
  static std::string netns_error_;
};
std::string AttachTest::netns_error_;

TEST_F(AttachTest, AttachesNativeAndReportsProgram) {
  auto lb = Balancer::load({.flows_per_cpu = 1024});
  ASSERT_TRUE(lb.ok()) << lb.error().to_string();
  auto a = XdpAttachment::attach((*lb)->prog_fd(), "xlbt0", AttachMode::kAuto);
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->mode(), AttachMode::kNative);  // veth has native XDP
  EXPECT_EQ(a->ifindex(), static_cast<int>(if_nametoindex("xlbt0")));
  auto id = a->prog_id();
  ASSERT_TRUE(id.ok());
  EXPECT_GT(*id, 0u);
  EXPECT_EQ(test::run("ip link show xlbt0 | grep -q 'xdp'"), 0);
  ASSERT_TRUE(a->detach().ok());
  EXPECT_NE(test::run("ip link show xlbt0 | grep -q 'prog/xdp'"), 0);
}

TEST_F(AttachTest, GenericModeWorks) {
  auto helpers = HelperPrograms::load();
  ASSERT_TRUE(helpers.ok()) << helpers.error().to_string();
  auto a = XdpAttachment::attach((*helpers)->pass_fd(), "xlbt1", AttachMode::kGeneric);
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->mode(), AttachMode::kGeneric);
  EXPECT_EQ(test::run("ip link show xlbt1 | grep -q 'xdpgeneric'"), 0);
}

TEST_F(AttachTest, UnknownInterfaceIsAClearError) {
  auto helpers = HelperPrograms::load();
  ASSERT_TRUE(helpers.ok());
  auto a = XdpAttachment::attach((*helpers)->pass_fd(), "xlb-no-such0", AttachMode::kAuto);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("xlb-no-such0"), std::string::npos);
}

TEST_F(AttachTest, PinnedLinkSurvivesAndProgramIsReplacedAtomically) {
  test::PinDir pins;
  auto lb = Balancer::load({.flows_per_cpu = 1024});
  ASSERT_TRUE(lb.ok());
  auto helpers = HelperPrograms::load();
  ASSERT_TRUE(helpers.ok());
  std::string link_path = pins.path() + "/link";
  {
    auto a = XdpAttachment::attach((*lb)->prog_fd(), "xlbt0", AttachMode::kNative,
                                   /*allow_dispatcher=*/false);
    ASSERT_TRUE(a.ok()) << a.error().to_string();
    EXPECT_EQ(a->method(), AttachMethod::kLink);
    ASSERT_TRUE(a->pin(link_path).ok());
  }  // the object is gone; the pinned link keeps the program attached
  EXPECT_EQ(test::run("ip link show xlbt0 | grep -q 'prog/xdp'"), 0);

  auto adopted = XdpAttachment::open_pinned(link_path);
  ASSERT_TRUE(adopted.ok()) << adopted.error().to_string();
  auto before = adopted->prog_id();
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(adopted->replace_program((*helpers)->pass_fd()).ok());
  auto after = adopted->prog_id();
  ASSERT_TRUE(after.ok());
  EXPECT_NE(*before, *after);
  ASSERT_TRUE(adopted->detach().ok());
  std::filesystem::remove(link_path);
  EXPECT_NE(test::run("ip link show xlbt0 | grep -q 'prog/xdp'"), 0);
}

TEST_F(AttachTest, RestartedBalancerAdoptsPinnedMaps) {
  test::PinDir pins;
  xlb_flow_key key{};
  key.src.words[0] = 0x010212c6;  // 198.18.2.1
  key.dst.words[0] = 0x01c812c6;  // 198.18.200.1
  key.sport = 1234;
  key.dport = 80;
  key.proto = 6;
  key.family = XLB_FAMILY_V4;
  {
    auto first = Balancer::load({.flows_per_cpu = 1024, .pin_dir = pins.path()});
    ASSERT_TRUE(first.ok()) << first.error().to_string();
    ASSERT_TRUE((*first)->put_flow(key, {.backend_index = 7}).ok());
    std::vector<uint32_t> ring(13, 7);
    ASSERT_TRUE((*first)->set_ring(3, ring).ok());
  }
  auto second = Balancer::load({.flows_per_cpu = 1024, .pin_dir = pins.path()});
  ASSERT_TRUE(second.ok()) << second.error().to_string();
  auto flow = (*second)->flow(key);
  ASSERT_TRUE(flow.ok());
  ASSERT_TRUE(flow->has_value());
  EXPECT_EQ((*flow)->backend_index, 7u);
  auto ring = (*second)->ring(3);
  ASSERT_TRUE(ring.ok());
  EXPECT_EQ(ring->size(), 13u);

  // A different layout (other table size) is refused, not silently replaced.
  auto other = Balancer::load({.flows_per_cpu = 2048, .pin_dir = pins.path()});
  EXPECT_FALSE(other.ok());
}

// Both connection-table layouts survive a restart (sizes as the kernel rounds them included).
TEST_F(AttachTest, BothTableLayoutsAreAdoptedAfterRestart) {
  for (auto layout : {FlowTable::kSharedPerCpuLru, FlowTable::kPerCpuMaps}) {
    test::PinDir pins;
    xlb_flow_key key{};
    key.src.words[0] = 0x010212c6;
    key.dst.words[0] = 0x01c812c6;
    key.sport = 4321;
    key.dport = 80;
    key.proto = 6;
    key.family = XLB_FAMILY_V4;
    {
      auto first = Balancer::load({.flows_per_cpu = 1024, .flow_table = layout,
                                   .pin_dir = pins.path()});
      ASSERT_TRUE(first.ok()) << first.error().to_string();
      ASSERT_TRUE((*first)->put_flow(key, {.backend_index = 9}).ok());
    }
    auto second = Balancer::load({.flows_per_cpu = 1024, .flow_table = layout,
                                  .pin_dir = pins.path()});
    ASSERT_TRUE(second.ok()) << second.error().to_string();
    auto flow = (*second)->flow(key);
    ASSERT_TRUE(flow.ok() && flow->has_value());
    EXPECT_EQ((*flow)->backend_index, 9u);
  }
}

}  // namespace
}  // namespace xlb::dataplane
