// SPDX-License-Identifier: Apache-2.0
// IP addresses and endpoints as the control plane handles them, convertible to and from the
// ABI's network-order struct xlb_addr. Parsing never throws: bad text gives an Error.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "xlb/abi.h"
#include "xlb/core/result.h"

namespace xlb {

enum class Family : uint8_t { kV4 = XLB_FAMILY_V4, kV6 = XLB_FAMILY_V6 };

class IpAddress {
 public:
  IpAddress() = default;

  // "198.18.0.1" or "2001:db8::1" (no brackets, no prefix length).
  static Result<IpAddress> parse(std::string_view text);
  static IpAddress from_abi(const xlb_addr& addr, Family family);
  static IpAddress v4_from_be(uint32_t be);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  bool is_v6() const { return family_ == Family::kV6; }
  // The ABI form: network order, IPv4 in word 0.
  const xlb_addr& abi() const { return addr_; }
  uint8_t abi_family() const { return static_cast<uint8_t>(family_); }
  // 16 bytes for IPv6, the first 4 for IPv4.
  const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(addr_.words); }
  std::string to_string() const;

  friend bool operator==(const IpAddress& a, const IpAddress& b);
  friend std::strong_ordering operator<=>(const IpAddress& a, const IpAddress& b);

 private:
  Family family_ = Family::kV4;
  xlb_addr addr_{};
};

// An IP prefix such as 198.19.0.0/16.
struct IpPrefix {
  IpAddress address;
  uint8_t length = 0;

  static Result<IpPrefix> parse(std::string_view text);
  std::string to_string() const;

  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

// Address plus port: "198.18.1.2:40000" or "[2001:db8::1]:443".
struct Endpoint {
  IpAddress address;
  uint16_t port = 0;  // host order

  static Result<Endpoint> parse(std::string_view text);
  std::string to_string() const;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

}  // namespace xlb
