// SPDX-License-Identifier: Apache-2.0
#include "lab_topology.h"

#include <string>

#include "xlb/pktgen/netns.h"

namespace xlb::bench {

using pktgen::run_command;

const test::Mac& LabTopology::g0_mac() {
  static const test::Mac m = test::mac("02:00:00:00:01:fe");
  return m;
}

const test::Mac& LabTopology::l0_mac() {
  static const test::Mac m = test::mac("02:00:00:00:02:01");
  return m;
}

Result<std::unique_ptr<LabTopology>> LabTopology::create(int queues, int sink_fd, int lb_fd) {
  std::unique_ptr<LabTopology> t(new LabTopology());
  t->queues_ = queues;
  auto gen = pktgen::create_netns();
  if (!gen) return gen.error();
  t->gen_ns_ = std::move(*gen);
  auto lb = pktgen::create_netns();
  if (!lb) return lb.error();
  t->lb_ns_ = std::move(*lb);
  const int g = t->gen_ns_.get(), l = t->lb_ns_.get();

  const std::string q = std::to_string(queues);
  const std::string end = " mtu 1600 numtxqueues " + q + " numrxqueues " + q;
  XLB_TRY(run_command("ip link add g0 address " + g0_mac().to_string() + end +
                          " type veth peer name l0 address " + l0_mac().to_string() + end +
                          " netns " + pktgen::fd_path(l),
                      g));
  XLB_TRY(run_command("sysctl -qw net.ipv6.conf.g0.disable_ipv6=1", g));
  XLB_TRY(run_command("ip link set l0 addrgenmode none", l));
  XLB_TRY(run_command("ip link set g0 up", g));
  XLB_TRY(run_command("ip link set l0 up", l));
  auto ifindex = pktgen::ifindex_in(g, "g0");
  if (!ifindex) return ifindex.error();
  t->g0_ifindex_ = *ifindex;

  // Native XDP on both ends: a veth delivers XDP_TX/redirected frames only to a peer that
  // runs an XDP program.
  auto sink = pktgen::run_in_netns(g, [&] {
    return dataplane::XdpAttachment::attach(sink_fd, "g0", dataplane::AttachMode::kNative, false);
  });
  if (!sink) return sink.error();
  t->sink_.emplace(std::move(*sink));
  auto att = pktgen::run_in_netns(l, [&] {
    return dataplane::XdpAttachment::attach(lb_fd, "l0", dataplane::AttachMode::kNative, false);
  });
  if (!att) return att.error();
  t->lb_.emplace(std::move(*att));
  return t;
}

}  // namespace xlb::bench
