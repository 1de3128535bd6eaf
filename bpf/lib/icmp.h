/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * ICMP "too big" answers for client packets over the size limit (VIPs flagged
 * XLB_VIP_ICMP_TOO_BIG): IPv4 destination unreachable / fragmentation needed (RFC 1191) and
 * ICMPv6 packet too big (RFC 8201), sent back out the way the packet came (XDP_TX).
 *
 * The answer quotes the client's IP header and the first 8 bytes after it, enough for the
 * client to find its socket. The frame is rebuilt in place: the head grows by the new IP + ICMP
 * headers, the tail is cut after the quote. Functions return 0, or -1 when the frame could not
 * be reshaped (caller drops and counts).
 */
#pragma once

#include "common.h"
#include "csum.h"

#define XLB_ICMP_QUOTE_L4 8
#define XLB_ICMP4_QUOTE (sizeof(struct iphdr) + XLB_ICMP_QUOTE_L4)
#define XLB_ICMP6_QUOTE (sizeof(struct ipv6hdr) + XLB_ICMP_QUOTE_L4)
#define XLB_ICMP6_MIN_MTU 1280

/* Grows the head by `grow`, cuts the frame to `total` bytes, and swaps the Ethernet addresses
 * into the new header so the answer goes back to the hop that sent the packet. */
static __always_inline int xlb_icmp_reshape(struct xdp_md *ctx, int grow, int total, __u16 proto)
{
	void *data, *data_end;
	struct ethhdr *eth, *old;

	if (bpf_xdp_adjust_head(ctx, -grow))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (bpf_xdp_adjust_tail(ctx, total - (int)(data_end - data)))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	old = XLB_PTR(data, grow, sizeof(*old), data_end);
	if (!old)
		return -1;
	xlb_copy_mac(eth->h_dest, old->h_source);
	xlb_copy_mac(eth->h_source, old->h_dest);
	eth->h_proto = proto;
	return 0;
}

static __always_inline int xlb_icmp4_too_big(struct xdp_md *ctx, __u16 mtu)
{
	const int grow = sizeof(struct iphdr) + sizeof(struct icmphdr);
	const int total = sizeof(struct ethhdr) + grow + XLB_ICMP4_QUOTE;
	void *data, *data_end;
	struct iphdr *iph, *orig;
	struct icmphdr *icmp;

	if (xlb_icmp_reshape(ctx, grow, total, bpf_htons(ETH_P_IP)))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	iph = XLB_PTR(data, sizeof(struct ethhdr), total - sizeof(struct ethhdr), data_end);
	if (!iph)
		return -1;
	icmp = (void *)(iph + 1);
	orig = (void *)(icmp + 1);

	iph->version = 4;
	iph->ihl = 5;
	iph->tos = 0;
	iph->tot_len = bpf_htons(total - sizeof(struct ethhdr));
	iph->id = 0;
	iph->frag_off = bpf_htons(IP_DF);
	iph->ttl = XLB_OUTER_TTL;
	iph->protocol = IPPROTO_ICMP;
	iph->saddr = orig->daddr;
	iph->daddr = orig->saddr;
	iph->check = 0;
	iph->check = xlb_ipv4_csum(iph);

	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_FRAG_NEEDED;
	icmp->checksum = 0;
	icmp->un.frag.__unused = 0;
	icmp->un.frag.mtu = bpf_htons(mtu);
	icmp->checksum = xlb_csum_fold(
		xlb_csum_partial(icmp, (sizeof(*icmp) + XLB_ICMP4_QUOTE) / 2, 0));
	return 0;
}

static __always_inline int xlb_icmp6_too_big(struct xdp_md *ctx, __u32 mtu)
{
	const int grow = sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr);
	const int total = sizeof(struct ethhdr) + grow + XLB_ICMP6_QUOTE;
	const __u32 icmp_len = sizeof(struct icmp6hdr) + XLB_ICMP6_QUOTE;
	void *data, *data_end;
	struct ipv6hdr *ip6h, *orig;
	struct icmp6hdr *icmp;
	__u64 sum;

	if (xlb_icmp_reshape(ctx, grow, total, bpf_htons(ETH_P_IPV6)))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	ip6h = XLB_PTR(data, sizeof(struct ethhdr), total - sizeof(struct ethhdr), data_end);
	if (!ip6h)
		return -1;
	icmp = (void *)(ip6h + 1);
	orig = (void *)(icmp + 1);

	*(__be32 *)ip6h = bpf_htonl(6U << 28);
	ip6h->payload_len = bpf_htons(icmp_len);
	ip6h->nexthdr = IPPROTO_ICMPV6;
	ip6h->hop_limit = XLB_OUTER_TTL;
	ip6h->saddr = orig->daddr;
	ip6h->daddr = orig->saddr;

	icmp->icmp6_type = ICMPV6_PKT_TOOBIG;
	icmp->icmp6_code = 0;
	icmp->icmp6_cksum = 0;
	icmp->icmp6_mtu = bpf_htonl(mtu < XLB_ICMP6_MIN_MTU ? XLB_ICMP6_MIN_MTU : mtu);
	/* Pseudo-header: addresses, upper-layer length, next header; then the message. */
	sum = xlb_csum_partial(&ip6h->saddr, 16, 0);
	sum += bpf_htonl(icmp_len) >> 16;
	sum += bpf_htonl(icmp_len) & 0xffff;
	sum += bpf_htons(IPPROTO_ICMPV6);
	sum = xlb_csum_partial(icmp, icmp_len / 2, sum);
	icmp->icmp6_cksum = xlb_csum_fold(sum);
	return 0;
}
