// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "xlb/daemon/daemon.h"

namespace xlb::daemon {
namespace {

// The default route's IPv4 gateway on `ifname` (network order), from /proc/net/route.
Result<uint32_t> default_gateway(const std::string& ifname) {
  std::ifstream in("/proc/net/route");
  if (!in) return Error::from_errno(errno, "reading /proc/net/route");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string iface, dest, gateway;
    f >> iface >> dest >> gateway;
    if (iface == ifname && dest == "00000000") {
      // The kernel prints the raw network-order word in host (little-endian) hex.
      uint32_t gw = static_cast<uint32_t>(std::stoul(gateway, nullptr, 16));
      if (gw != 0) return gw;
    }
  }
  return Error::invalid("no IPv4 default route via a gateway on " + ifname +
                        ": set next_hop_mac in the config");
}

std::optional<std::array<uint8_t, 6>> arp_entry(uint32_t gateway, const std::string& ifname) {
  std::ifstream in("/proc/net/arp");
  std::string line;
  std::getline(in, line);  // header
  char want[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &gateway, want, sizeof(want));
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string ip, hwtype, flags, mac, mask, dev;
    f >> ip >> hwtype >> flags >> mac >> mask >> dev;
    if (ip != want || dev != ifname || (std::stoul(flags, nullptr, 16) & 0x2) == 0) continue;
    std::array<uint8_t, 6> out{};
    unsigned b[6];
    if (std::sscanf(mac.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) ==
        6) {
      for (int i = 0; i < 6; i++) out[i] = static_cast<uint8_t>(b[i]);
      return out;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<std::array<uint8_t, 6>> resolve_next_hop_mac(const std::string& ifname) {
  auto gw = default_gateway(ifname);
  if (!gw) return gw.error();
  for (int attempt = 0; attempt < 20; attempt++) {
    if (auto mac = arp_entry(*gw, ifname)) return *mac;
    if (attempt == 0) {
      // Make the kernel resolve the gateway: one datagram to its discard port.
      int fd = socket(AF_INET, SOCK_DGRAM, 0);
      if (fd >= 0) {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(9);
        to.sin_addr.s_addr = *gw;
        sendto(fd, "", 0, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
        close(fd);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  char text[INET_ADDRSTRLEN] = {};
  uint32_t g = *gw;
  inet_ntop(AF_INET, &g, text, sizeof(text));
  return Error::invalid(std::string("the gateway ") + text + " on " + ifname +
                        " did not resolve to a MAC within 2 s: set next_hop_mac in the config");
}

}  // namespace xlb::daemon
