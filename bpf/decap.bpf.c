// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * xlb_decap: the XDP program of a backend host.
 *
 * Strips the outer headers xlb_balancer put on (IPIP, IP6IP6, 4in6, 6in4 and GUE variant 1)
 * from packets addressed to this host's configured tunnel address, and hands the client's
 * packet to the stack (XDP_PASS), which then sees it as if it had arrived directly: the
 * backend answers the client straight away (DSR). Everything else passes untouched.
 *
 * Outer fragments and outer IPv4 options are passed untouched (the stack drops what it cannot
 * use): the balancer sets DF and never adds options, so neither comes from xlb. A tunnel packet
 * whose outer length disagrees with the frame, or whose inner header is incomplete, is dropped
 * and counted. Congestion marks (ECN CE) on the outer header are copied inwards (RFC 6040).
 */
#include "lib/common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_decap_config);
	__uint(max_entries, 1);
} decap_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_decap_counters);
	__uint(max_entries, 1);
} decap_counters SEC(".maps");

/* ECN field of an IPv4 TOS byte or IPv6 traffic class. */
#define XLB_ECN_MASK 0x03
#define XLB_ECN_CE 0x03

/*
 * RFC 6040 (normal mode): congestion marked on the outer header while crossing the tunnel
 * reaches the inner packet, provided the inner packet is ECN-capable; a Not-ECT inner packet
 * stays as it is. The inner IPv4 header checksum is updated incrementally (RFC 1624).
 */
static __always_inline void xlb_propagate_ce(__u8 *inner, void *data_end, __u8 outer_ecn)
{
	if (outer_ecn != XLB_ECN_CE)
		return;
	if ((*inner >> 4) == 4) {
		struct iphdr *iph = XLB_PTR(inner, 0, sizeof(*iph), data_end);
		__u16 old_word, new_word;
		__u32 sum;

		if (!iph || !(iph->tos & XLB_ECN_MASK) || (iph->tos & XLB_ECN_MASK) == XLB_ECN_CE)
			return;
		old_word = *(__u16 *)iph;
		iph->tos |= XLB_ECN_CE;
		new_word = *(__u16 *)iph;
		sum = (__u16)~iph->check + (__u16)~old_word + new_word;
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		iph->check = (__u16)~sum;
	} else {
		struct ipv6hdr *ip6h = XLB_PTR(inner, 0, sizeof(*ip6h), data_end);
		__u8 ecn;

		if (!ip6h)
			return;
		/* Traffic class straddles bytes 0 and 1: ECN is bits 4-5 of byte 1. */
		ecn = (ip6h->flow_lbl[0] >> 4) & XLB_ECN_MASK;
		if (!ecn || ecn == XLB_ECN_CE)
			return;
		ip6h->flow_lbl[0] |= XLB_ECN_CE << 4;
	}
}

/*
 * Removes `outer` bytes after the Ethernet header: the Ethernet header moves forward over them
 * and takes the inner packet's ethertype. The inner header must be complete, start with the
 * version nibble `inner_version` and fit in the `carried` bytes the outer header says follow
 * it. Returns the counter event for the result.
 */
static __always_inline __u32 xlb_strip(struct xdp_md *ctx, __u32 outer, __u8 inner_version,
				       __u32 carried, __u8 outer_ecn, __u32 event)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 inner_hdr = inner_version == 4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	struct ethhdr eth, *new_eth;
	__u8 *inner;

	if (outer > 64 || carried < inner_hdr)
		return XLB_DCNT_DROP_MALFORMED;
	inner = XLB_PTR(data, sizeof(struct ethhdr) + outer, inner_hdr, data_end);
	if (!inner || (*inner >> 4) != inner_version)
		return XLB_DCNT_DROP_MALFORMED;
	xlb_propagate_ce(inner, data_end, outer_ecn);
	__builtin_memcpy(&eth, data, sizeof(eth));
	eth.h_proto = bpf_htons(inner_version == 4 ? ETH_P_IP : ETH_P_IPV6);
	if (bpf_xdp_adjust_head(ctx, outer))
		return XLB_DCNT_DROP_ADJUST;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	new_eth = XLB_PTR(data, 0, sizeof(*new_eth), data_end);
	if (!new_eth)
		return XLB_DCNT_DROP_ADJUST;
	__builtin_memcpy(new_eth, &eth, sizeof(eth));
	return event;
}

/* GUE variant 1: the version nibble of the first payload byte tells the inner family. The UDP
 * length must agree with what the outer header carries. */
static __always_inline __u32 xlb_strip_gue(struct xdp_md *ctx, __u32 outer_ip, void *udp_ptr,
					   void *data_end, const struct xlb_decap_config *cfg,
					   __u32 carried, __u8 outer_ecn)
{
	struct udphdr *udp = XLB_PTR(udp_ptr, 0, sizeof(*udp), data_end);
	__u8 *first;
	__u8 version;

	if (!udp || !cfg->gue_port || udp->dest != cfg->gue_port)
		return XLB_DCNT_PASS;
	if (bpf_ntohs(udp->len) != carried)
		return XLB_DCNT_DROP_MALFORMED;
	first = XLB_PTR(udp, sizeof(*udp), 1, data_end);
	if (!first)
		return XLB_DCNT_DROP_MALFORMED;
	version = *first >> 4;
	if (version != 4 && version != 6)
		return XLB_DCNT_DROP_MALFORMED;
	return xlb_strip(ctx, outer_ip + sizeof(*udp), version, carried - sizeof(*udp), outer_ecn,
			 XLB_DCNT_GUE);
}

static __always_inline __u32 xlb_decap_v4(struct xdp_md *ctx, void *data, void *data_end,
					  const struct xlb_decap_config *cfg)
{
	struct iphdr *iph = XLB_PTR(data, sizeof(struct ethhdr), sizeof(*iph), data_end);
	__u32 tot_len, carried;
	__u8 ecn;

	if (!iph || !cfg->local_v4 || iph->daddr != cfg->local_v4)
		return XLB_DCNT_PASS;
	if (iph->version != 4 || iph->ihl != 5 || (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return XLB_DCNT_PASS;
	if (iph->protocol != IPPROTO_IPIP && iph->protocol != IPPROTO_IPV6 &&
	    iph->protocol != IPPROTO_UDP)
		return XLB_DCNT_PASS;
	/* The outer length must cover the outer header and lie within the frame. */
	tot_len = bpf_ntohs(iph->tot_len);
	if (tot_len < sizeof(*iph) || (void *)iph + tot_len > data_end)
		return XLB_DCNT_DROP_MALFORMED;
	carried = tot_len - sizeof(*iph);
	ecn = iph->tos & XLB_ECN_MASK;
	switch (iph->protocol) {
	case IPPROTO_IPIP:
		return xlb_strip(ctx, sizeof(*iph), 4, carried, ecn, XLB_DCNT_IPIP);
	case IPPROTO_IPV6:
		return xlb_strip(ctx, sizeof(*iph), 6, carried, ecn, XLB_DCNT_IP6IN4);
	default:
		return xlb_strip_gue(ctx, sizeof(*iph), iph + 1, data_end, cfg, carried, ecn);
	}
}

static __always_inline __u32 xlb_decap_v6(struct xdp_md *ctx, void *data, void *data_end,
					  const struct xlb_decap_config *cfg)
{
	struct ipv6hdr *ip6h = XLB_PTR(data, sizeof(struct ethhdr), sizeof(*ip6h), data_end);
	const __u32 *dst;
	__u32 carried;
	__u8 ecn;

	if (!ip6h)
		return XLB_DCNT_PASS;
	dst = ip6h->daddr.in6_u.u6_addr32;
	if (dst[0] != cfg->local_v6.words[0] || dst[1] != cfg->local_v6.words[1] ||
	    dst[2] != cfg->local_v6.words[2] || dst[3] != cfg->local_v6.words[3])
		return XLB_DCNT_PASS;
	if (!(dst[0] | dst[1] | dst[2] | dst[3]))
		return XLB_DCNT_PASS;
	if (ip6h->nexthdr != IPPROTO_IPV6 && ip6h->nexthdr != IPPROTO_IPIP &&
	    ip6h->nexthdr != IPPROTO_UDP)
		return XLB_DCNT_PASS;
	carried = bpf_ntohs(ip6h->payload_len);
	if ((void *)(ip6h + 1) + carried > data_end)
		return XLB_DCNT_DROP_MALFORMED;
	ecn = (ip6h->flow_lbl[0] >> 4) & XLB_ECN_MASK;
	switch (ip6h->nexthdr) {
	case IPPROTO_IPV6:
		return xlb_strip(ctx, sizeof(*ip6h), 6, carried, ecn, XLB_DCNT_IP6IP6);
	case IPPROTO_IPIP:
		return xlb_strip(ctx, sizeof(*ip6h), 4, carried, ecn, XLB_DCNT_IP4IN6);
	default:
		return xlb_strip_gue(ctx, sizeof(*ip6h), ip6h + 1, data_end, cfg, carried, ecn);
	}
}

SEC("xdp")
int xlb_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = XLB_PTR(data, 0, sizeof(*eth), data_end);
	struct xlb_decap_config *cfg;
	struct xlb_decap_counters *c;
	__u32 zero = 0, event = XLB_DCNT_PASS;

	cfg = bpf_map_lookup_elem(&decap_config, &zero);
	if (eth && cfg) {
		if (eth->h_proto == bpf_htons(ETH_P_IP))
			event = xlb_decap_v4(ctx, data, data_end, cfg);
		else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
			event = xlb_decap_v6(ctx, data, data_end, cfg);
	}
	c = bpf_map_lookup_elem(&decap_counters, &zero);
	if (c && event < XLB_DCNT__MAX)
		c->c[event]++;
	return event == XLB_DCNT_DROP_MALFORMED || event == XLB_DCNT_DROP_ADJUST ? XDP_DROP
										   : XDP_PASS;
}
