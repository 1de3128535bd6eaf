// SPDX-License-Identifier: Apache-2.0
// The lab bench's topology: two anonymous network namespaces joined by a veth pair.
//
//   generator ns: g0 ──veth── l0 :LB ns
//   g0 runs xlb_pktgen_sink (counts and drops what l0 sends back); l0 runs the program under
//   test (xlb_balancer, or the XDP_TX reflector for the floor), swapped atomically on its
//   bpf_link. The generator injects on g0 (live frames), so frames arrive at l0 as from a NIC.
//
// Both ends have MTU 1600 (encapsulated frames are 20/40 bytes larger) and `queues` RX/TX
// queues; IPv6 is off on g0 and l0 generates no addresses, so neither stack sends frames of
// its own that the sink would count. The namespaces are anonymous: they exist only through
// this object's file descriptors, so everything (namespaces, veth, XDP links) disappears with
// the process, also on Ctrl-C or a crash; nothing appears in `ip netns list` or on bpffs.
#pragma once

#include <memory>
#include <optional>

#include "xlb/core/result.h"
#include "xlb/dataplane/attach.h"
#include "xlb/dataplane/fd.h"
#include "xlb/pktgen/frames.h"

namespace xlb::bench {

class LabTopology {
 public:
  // `sink_fd` goes on g0, `lb_fd` on l0.
  static Result<std::unique_ptr<LabTopology>> create(int queues, int sink_fd, int lb_fd);

  int gen_netns() const { return gen_ns_.get(); }
  int g0_ifindex() const { return g0_ifindex_; }
  int queues() const { return queues_; }
  // Atomically replaces the program on l0.
  Status set_lb_program(int prog_fd) { return lb_->replace_program(prog_fd); }

  static const test::Mac& g0_mac();
  static const test::Mac& l0_mac();

 private:
  LabTopology() = default;
  // Declared first: destroyed last, after the links on their interfaces.
  dataplane::UniqueFd gen_ns_, lb_ns_;
  std::optional<dataplane::XdpAttachment> sink_, lb_;
  int g0_ifindex_ = 0;
  int queues_ = 1;
};

}  // namespace xlb::bench
