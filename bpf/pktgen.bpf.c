// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The two programs of the load generator xlb-pktgen (tools/xlb-pktgen):
 *
 *  - xlb_pktgen_tx runs under BPF_PROG_TEST_RUN in live-frame mode
 *    (BPF_F_TEST_XDP_LIVE_FRAMES) with the generator's interface as ingress device. The kernel
 *    hands it frames from a page pool initialised once from one template frame; the program
 *    makes each frame the next one of its flow sequence and returns XDP_TX, which live mode
 *    turns into a transmission out of that interface (to the veth peer).
 *    It writes the whole template header over every frame, not only the fields that vary:
 *    pages come back through the page pool after the receiver changed them in place (xlb
 *    encapsulates in front of the IP header and overwrites the old Ethernet header).
 *  - xlb_pktgen_sink is attached to the generator's interface: it counts the frames the peer
 *    sends back (XDP_TX of the program under test) and drops them.
 *
 * Flow sequence (struct xlb_pktgen_config in abi.h): frame n of a CPU is client n % flows,
 * connection (n / flows) % ports_per_flow; the source address is the template's plus the
 * client number (last 32-bit word), the source port XLB_PKTGEN_SPORT_BASE + (client +
 * connection) % XLB_PKTGEN_SPORT_SPAN. Checksums are updated from the template's (RFC 1624),
 * so a frame is valid whatever the page held before.
 */
#include "lib/common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_pktgen_config);
	__uint(max_entries, 1);
} pktgen_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_pktgen_state);
	__uint(max_entries, 1);
} pktgen_state SEC(".maps");

/* Frames the sink saw, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} pktgen_sink SEC(".maps");

/* RFC 1624 eqn. 3: the checksum `check` after the 16-bit words from[] became to[]. */
static __always_inline __u16 xlb_pktgen_csum_replace(__u16 check, const __u16 *from,
						      const __u16 *to, const int words)
{
	__u32 sum = (__u16)~check;

#pragma clang loop unroll(full)
	for (int i = 0; i < words; i++)
		sum += (__u16)~from[i] + to[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Writes frame `client`/`sport` of one layout (constant arguments: the offsets fold). */
static __always_inline int xlb_pktgen_write(struct xdp_md *ctx, const struct xlb_pktgen_config *cfg,
					    const int v6, const int tcp, __u32 client, __u16 sport)
{
	const int l4 = ETH_HLEN + (v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr));
	const int hdr_len = l4 + (tcp ? sizeof(struct tcphdr) : sizeof(struct udphdr));
	/* The source address's last 32-bit word (all of it for IPv4). */
	const int src_last = v6 ? ETH_HLEN + 8 + 12 : ETH_HLEN + 12;
	const int l4_check = l4 + (tcp ? 16 : 6);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u16 from[3], to[3];
	__u32 src;

	if (data + hdr_len > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, cfg->hdr, hdr_len);

	__builtin_memcpy(from, cfg->hdr + src_last, 4);
	__builtin_memcpy(&from[2], cfg->hdr + l4, 2);
	__builtin_memcpy(&src, from, 4);
	src = bpf_htonl(bpf_ntohl(src) + client);
	__builtin_memcpy(to, &src, 4);
	to[2] = bpf_htons(sport);
	__builtin_memcpy(data + src_last, to, 4);
	__builtin_memcpy(data + l4, &to[2], 2);

	if (!v6) {
		struct iphdr *iph = data + ETH_HLEN;

		iph->check = xlb_pktgen_csum_replace(iph->check, from, to, 2);
	}
	__u16 *check = data + l4_check;
	__u16 old = *check;

	/* UDP checksum 0 means none; a computed 0 is sent as 0xffff (RFC 768). */
	if (tcp || old) {
		*check = xlb_pktgen_csum_replace(old, from, to, 3);
		if (!tcp && !*check)
			*check = 0xffff;
	}
	return XDP_TX;
}

SEC("xdp")
int xlb_pktgen_tx(struct xdp_md *ctx)
{
	const struct xlb_pktgen_config *cfg;
	struct xlb_pktgen_state *st;
	__u32 zero = 0, client, conn;
	__u16 sport;
	__u64 n;

	cfg = bpf_map_lookup_elem(&pktgen_config, &zero);
	st = bpf_map_lookup_elem(&pktgen_state, &zero);
	if (!cfg || !st || !cfg->flows || !cfg->ports_per_flow)
		return XDP_ABORTED;
	n = st->next;
	st->next = n + st->stride;
	st->sent++;
	client = n % cfg->flows;
	conn = (n / cfg->flows) % cfg->ports_per_flow;
	sport = XLB_PKTGEN_SPORT_BASE + (client + conn) % XLB_PKTGEN_SPORT_SPAN;

	if (cfg->family == XLB_FAMILY_V4)
		return cfg->proto == IPPROTO_TCP ? xlb_pktgen_write(ctx, cfg, 0, 1, client, sport)
						 : xlb_pktgen_write(ctx, cfg, 0, 0, client, sport);
	return cfg->proto == IPPROTO_TCP ? xlb_pktgen_write(ctx, cfg, 1, 1, client, sport)
					 : xlb_pktgen_write(ctx, cfg, 1, 0, client, sport);
}

SEC("xdp")
int xlb_pktgen_sink(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *frames = bpf_map_lookup_elem(&pktgen_sink, &zero);

	if (frames)
		(*frames)++;
	return XDP_DROP;
}
