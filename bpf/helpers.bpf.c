// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Two trivial XDP programs the tools need:
 *  - xlb_floor_tx: sends every frame back out unchanged. The benchmarks' floor: the cost of
 *    XDP_TX itself, subtracted from every measured path.
 *  - xlb_pass: passes every frame. On a veth, XDP_TX/redirect towards a peer is only delivered
 *    when the peer has an XDP program attached; the lab puts this one there.
 */
#include "lib/common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int xlb_floor_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("xdp")
int xlb_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
