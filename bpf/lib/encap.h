/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Encapsulation of a client packet towards a backend: IPIP, IP6IP6, 4in6 and GUE (variant 1:
 * the inner IP header follows the UDP header directly; its version nibble tells the family).
 *
 * Each function grows the head of the frame by the outer headers, writes a new Ethernet header
 * (destination: the configured next hop; source: the MAC the frame arrived on) and the outer
 * headers, and returns 0, or -1 when the head could not grow (caller drops and counts).
 * The inner packet (client bytes from the IP header on) is never touched.
 *
 * Outer IPv4 headers carry DF: a backend's XDP decap cannot reassemble fragments, so a path
 * that cannot carry the packet must say so rather than fragment it.
 */
#pragma once

#include "common.h"
#include "csum.h"
#include <xlb/flow_hash.h>

struct xlb_encap_params {
	__u32 inner_len; /* IP total length of the client packet */
	__u32 entropy; /* xlb_encap_entropy() of the flow */
	__u8 inner_family; /* XLB_FAMILY_* of the client packet */
	__u8 tos; /* IPv4 TOS / IPv6 traffic class of the client packet, copied outwards */
	__u8 gue;
};

/* Writes the Ethernet header of an encapsulated frame; the old header sits `grown` bytes in. */
static __always_inline int xlb_encap_eth(void *data, void *data_end, int grown,
					 const struct xlb_config *cfg, __u16 proto)
{
	struct ethhdr *eth = data;
	struct ethhdr *old = XLB_PTR(data, grown, sizeof(*old), data_end);

	if (!old)
		return -1;
	xlb_copy_mac(eth->h_source, old->h_dest);
	xlb_copy_mac(eth->h_dest, cfg->next_hop_mac);
	eth->h_proto = proto;
	return 0;
}

static __always_inline void xlb_encap_udp(struct udphdr *udp, const struct xlb_config *cfg,
					  const struct xlb_encap_params *p)
{
	udp->source = bpf_htons(xlb_gue_sport(p->entropy));
	udp->dest = cfg->gue_port;
	udp->len = bpf_htons(p->inner_len + sizeof(*udp));
	/* Zero: allowed for IPv4, and for IPv6 tunnels by RFC 6935; the decap side is XDP. */
	udp->check = 0;
}

/* Outer IPv4 (IPIP, or GUE when p->gue) towards a v4 backend. */
static __always_inline int xlb_encap_v4(struct xdp_md *ctx, const struct xlb_backend *be,
					const struct xlb_config *cfg,
					const struct xlb_encap_params *p)
{
	int grow = sizeof(struct iphdr) + (p->gue ? sizeof(struct udphdr) : 0);
	void *data, *data_end;
	struct iphdr *iph;

	if (bpf_xdp_adjust_head(ctx, -grow))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	iph = XLB_PTR(data, sizeof(struct ethhdr), sizeof(*iph) + sizeof(struct udphdr), data_end);
	if (!iph || xlb_encap_eth(data, data_end, grow, cfg, bpf_htons(ETH_P_IP)))
		return -1;

	iph->version = 4;
	iph->ihl = 5;
	iph->tos = p->tos;
	iph->tot_len = bpf_htons(p->inner_len + grow);
	iph->id = 0;
	iph->frag_off = bpf_htons(IP_DF);
	iph->ttl = XLB_OUTER_TTL;
	iph->saddr = xlb_encap_src_v4(cfg, p->entropy);
	iph->daddr = be->addr.words[0];
	iph->check = 0;
	if (p->gue) {
		iph->protocol = IPPROTO_UDP;
		xlb_encap_udp((void *)(iph + 1), cfg, p);
	} else {
		iph->protocol = p->inner_family == XLB_FAMILY_V4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	}
	iph->check = xlb_ipv4_csum(iph);
	return 0;
}

/* Outer IPv6 (IP6IP6, 4in6, or GUE when p->gue) towards a v6 backend. */
static __always_inline int xlb_encap_v6(struct xdp_md *ctx, const struct xlb_backend *be,
					const struct xlb_config *cfg,
					const struct xlb_encap_params *p)
{
	int grow = sizeof(struct ipv6hdr) + (p->gue ? sizeof(struct udphdr) : 0);
	void *data, *data_end;
	struct ipv6hdr *ip6h;
	__u32 payload = p->inner_len + (p->gue ? sizeof(struct udphdr) : 0);

	if (bpf_xdp_adjust_head(ctx, -grow))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	ip6h = XLB_PTR(data, sizeof(struct ethhdr), sizeof(*ip6h) + sizeof(struct udphdr),
		       data_end);
	if (!ip6h || xlb_encap_eth(data, data_end, grow, cfg, bpf_htons(ETH_P_IPV6)))
		return -1;

	/* version 6 | traffic class | flow label, in one network-order word */
	*(__be32 *)ip6h = bpf_htonl((6U << 28) | ((__u32)p->tos << 20) | xlb_flow_label(p->entropy));
	ip6h->payload_len = bpf_htons(payload);
	ip6h->hop_limit = XLB_OUTER_TTL;
	ip6h->saddr.in6_u.u6_addr32[0] = cfg->encap_src_v6.words[0];
	ip6h->saddr.in6_u.u6_addr32[1] = cfg->encap_src_v6.words[1];
	ip6h->saddr.in6_u.u6_addr32[2] = cfg->encap_src_v6.words[2];
	ip6h->saddr.in6_u.u6_addr32[3] = xlb_encap_src_v6_last(cfg, p->entropy);
	ip6h->daddr.in6_u.u6_addr32[0] = be->addr.words[0];
	ip6h->daddr.in6_u.u6_addr32[1] = be->addr.words[1];
	ip6h->daddr.in6_u.u6_addr32[2] = be->addr.words[2];
	ip6h->daddr.in6_u.u6_addr32[3] = be->addr.words[3];
	if (p->gue) {
		ip6h->nexthdr = IPPROTO_UDP;
		xlb_encap_udp((void *)(ip6h + 1), cfg, p);
	} else {
		ip6h->nexthdr = p->inner_family == XLB_FAMILY_V4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	}
	return 0;
}
