// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "xlb/core/address.h"

namespace xlb {
namespace {

TEST(IpAddress, ParsesV4AndV6) {
  auto v4 = IpAddress::parse("198.18.200.1");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->to_string(), "198.18.200.1");
  EXPECT_EQ(v4->abi().words[1], 0u);
  auto v6 = IpAddress::parse("2001:db8:200::1");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->is_v6());
  EXPECT_EQ(v6->to_string(), "2001:db8:200::1");
}

TEST(IpAddress, RejectsGarbage) {
  for (const char* bad : {"", "198.18.0", "198.18.0.256", "2001:db8:::1", "[2001:db8::1]",
                          "198.18.0.1/24", "host.example", " 198.18.0.1"}) {
    auto r = IpAddress::parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_FALSE(r.error().message.empty());
    }
  }
}

TEST(IpAddress, OrdersByFamilyThenBytes) {
  auto a = *IpAddress::parse("198.18.0.1");
  auto b = *IpAddress::parse("198.18.0.2");
  auto c = *IpAddress::parse("2001:db8::1");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(a, *IpAddress::parse("198.18.0.1"));
}

TEST(Endpoint, ParsesBothFamilies) {
  auto e4 = Endpoint::parse("198.18.1.2:40000");
  ASSERT_TRUE(e4.ok());
  EXPECT_EQ(e4->port, 40000);
  EXPECT_EQ(e4->to_string(), "198.18.1.2:40000");
  auto e6 = Endpoint::parse("[2001:db8:1::2]:443");
  ASSERT_TRUE(e6.ok());
  EXPECT_EQ(e6->port, 443);
  EXPECT_EQ(e6->to_string(), "[2001:db8:1::2]:443");
}

TEST(Endpoint, RejectsBadSyntax) {
  for (const char* bad : {"198.18.1.2", "198.18.1.2:", "198.18.1.2:65536", "2001:db8::1:80",
                          "[2001:db8::1]", "[2001:db8::1]80", ":80", "198.18.1.2:8o"}) {
    EXPECT_FALSE(Endpoint::parse(bad).ok()) << bad;
  }
}

TEST(IpPrefix, ParsesAndBoundsLength) {
  auto p = IpPrefix::parse("198.19.0.0/16");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->length, 16);
  EXPECT_EQ(p->to_string(), "198.19.0.0/16");
  EXPECT_TRUE(IpPrefix::parse("2001:db8:ff::/64").ok());
  EXPECT_FALSE(IpPrefix::parse("198.19.0.0/33").ok());
  EXPECT_FALSE(IpPrefix::parse("198.19.0.0").ok());
  EXPECT_FALSE(IpPrefix::parse("2001:db8::/129").ok());
}

}  // namespace
}  // namespace xlb
