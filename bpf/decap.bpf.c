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
 * use): the balancer sets DF and never adds options, so neither comes from xlb.
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

/*
 * Removes `outer` bytes after the Ethernet header: the Ethernet header moves forward over them
 * and takes the inner packet's ethertype. The inner header must start with the version nibble
 * `inner_version`. Returns the counter event for the result.
 */
static __always_inline __u32 xlb_strip(struct xdp_md *ctx, __u32 outer, __u8 inner_version,
				       __u32 event)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr eth, *new_eth;
	__u8 *inner;

	if (outer > 64)
		return XLB_DCNT_DROP_MALFORMED;
	inner = XLB_PTR(data, sizeof(struct ethhdr) + outer, 1, data_end);
	if (!inner || (*inner >> 4) != inner_version)
		return XLB_DCNT_DROP_MALFORMED;
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

/* GUE variant 1: the version nibble of the first payload byte tells the inner family. */
static __always_inline __u32 xlb_strip_gue(struct xdp_md *ctx, __u32 outer_ip, void *udp_ptr,
					   void *data_end, const struct xlb_decap_config *cfg)
{
	struct udphdr *udp = XLB_PTR(udp_ptr, 0, sizeof(*udp) + 1, data_end);
	__u8 version;

	if (!udp)
		return XLB_DCNT_PASS;
	if (!cfg->gue_port || udp->dest != cfg->gue_port)
		return XLB_DCNT_PASS;
	version = *(__u8 *)(udp + 1) >> 4;
	if (version != 4 && version != 6)
		return XLB_DCNT_DROP_MALFORMED;
	return xlb_strip(ctx, outer_ip + sizeof(*udp), version, XLB_DCNT_GUE);
}

static __always_inline __u32 xlb_decap_v4(struct xdp_md *ctx, void *data, void *data_end,
					  const struct xlb_decap_config *cfg)
{
	struct iphdr *iph = XLB_PTR(data, sizeof(struct ethhdr), sizeof(*iph), data_end);

	if (!iph || !cfg->local_v4 || iph->daddr != cfg->local_v4)
		return XLB_DCNT_PASS;
	if (iph->version != 4 || iph->ihl != 5 || (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return XLB_DCNT_PASS;
	switch (iph->protocol) {
	case IPPROTO_IPIP:
		return xlb_strip(ctx, sizeof(*iph), 4, XLB_DCNT_IPIP);
	case IPPROTO_IPV6:
		return xlb_strip(ctx, sizeof(*iph), 6, XLB_DCNT_IP6IN4);
	case IPPROTO_UDP:
		return xlb_strip_gue(ctx, sizeof(*iph), iph + 1, data_end, cfg);
	default:
		return XLB_DCNT_PASS;
	}
}

static __always_inline __u32 xlb_decap_v6(struct xdp_md *ctx, void *data, void *data_end,
					  const struct xlb_decap_config *cfg)
{
	struct ipv6hdr *ip6h = XLB_PTR(data, sizeof(struct ethhdr), sizeof(*ip6h), data_end);
	const __u32 *dst;

	if (!ip6h)
		return XLB_DCNT_PASS;
	dst = ip6h->daddr.in6_u.u6_addr32;
	if (dst[0] != cfg->local_v6.words[0] || dst[1] != cfg->local_v6.words[1] ||
	    dst[2] != cfg->local_v6.words[2] || dst[3] != cfg->local_v6.words[3])
		return XLB_DCNT_PASS;
	if (!(dst[0] | dst[1] | dst[2] | dst[3]))
		return XLB_DCNT_PASS;
	switch (ip6h->nexthdr) {
	case IPPROTO_IPV6:
		return xlb_strip(ctx, sizeof(*ip6h), 6, XLB_DCNT_IP6IP6);
	case IPPROTO_IPIP:
		return xlb_strip(ctx, sizeof(*ip6h), 4, XLB_DCNT_IP4IN6);
	case IPPROTO_UDP:
		return xlb_strip_gue(ctx, sizeof(*ip6h), ip6h + 1, data_end, cfg);
	default:
		return XLB_DCNT_PASS;
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
