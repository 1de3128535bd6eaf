/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The flow hash, compiled into both the XDP balancer and the C++ control plane.
 *
 * One definition means the userspace answer to "which backend serves this flow" (xlbctl lookup,
 * tests) cannot drift from what the data plane does. The hash works on 32-bit words exactly as
 * they sit in the packet (network order), mixes each with a MurmurHash3-style block step and ends
 * with its finaliser, so every input bit reaches every output bit. Only the words a family uses
 * are hashed: 4 for IPv4, 10 for IPv6.
 *
 * Ring slot of a flow: xlb_ring_slot(hash, ring_size), a multiply-shift instead of a modulo
 * (uniform for any ring_size, and no division on the packet path).
 */
#pragma once

#include "abi.h"

#ifdef __BPF__
#define XLB_HASH_INLINE static __always_inline
#else
#define XLB_HASH_INLINE static inline
#endif

XLB_HASH_INLINE __u32 xlb_rotl32(__u32 x, __u32 r)
{
	return (x << r) | (x >> (32 - r));
}

XLB_HASH_INLINE __u32 xlb_hash_step(__u32 h, __u32 word)
{
	word *= 0xcc9e2d51U;
	word = xlb_rotl32(word, 15);
	word *= 0x1b873593U;
	h ^= word;
	h = xlb_rotl32(h, 13);
	return h * 5 + 0xe6546b64U;
}

XLB_HASH_INLINE __u32 xlb_hash_final(__u32 h, __u32 len_words)
{
	h ^= len_words * 4;
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

/*
 * Hash of a flow towards a VIP with the VIP's hashing flags applied:
 *  - XLB_VIP_HASH_SRC_ONLY: the source address alone;
 *  - XLB_VIP_HASH_NO_SPORT: the 5-tuple with the source port taken as 0.
 */
XLB_HASH_INLINE __u32 xlb_flow_hash(const struct xlb_flow_key *key, __u32 vip_flags, __u32 seed)
{
	__u32 h = seed;
	__u32 ports = 0;

	if (key->family == XLB_FAMILY_V4) {
		h = xlb_hash_step(h, key->src.words[0]);
		if (vip_flags & XLB_VIP_HASH_SRC_ONLY)
			return xlb_hash_final(h, 1);
		h = xlb_hash_step(h, key->dst.words[0]);
	} else {
		h = xlb_hash_step(h, key->src.words[0]);
		h = xlb_hash_step(h, key->src.words[1]);
		h = xlb_hash_step(h, key->src.words[2]);
		h = xlb_hash_step(h, key->src.words[3]);
		if (vip_flags & XLB_VIP_HASH_SRC_ONLY)
			return xlb_hash_final(h, 4);
		h = xlb_hash_step(h, key->dst.words[0]);
		h = xlb_hash_step(h, key->dst.words[1]);
		h = xlb_hash_step(h, key->dst.words[2]);
		h = xlb_hash_step(h, key->dst.words[3]);
	}
	/* Ports as one word, source port in the high half, in packet byte order. */
	if (!(vip_flags & XLB_VIP_HASH_NO_SPORT))
		ports = (__u32)key->sport << 16;
	ports |= key->dport;
	h = xlb_hash_step(h, ports);
	h = xlb_hash_step(h, key->proto);
	return xlb_hash_final(h, key->family == XLB_FAMILY_V4 ? 4 : 10);
}

/* Slot of a hash in a ring of ring_size slots: floor(hash * ring_size / 2^32). */
XLB_HASH_INLINE __u32 xlb_ring_slot(__u32 hash, __u32 ring_size)
{
	return (__u32)(((__u64)hash * ring_size) >> 32);
}

/*
 * Per-flow bits for the outer headers (source address host bits, GUE source port, IPv6 flow
 * label), so that backend NICs spread tunnelled flows over their queues. Cheaper than the flow
 * hash because it runs on every packet, connection-table hit or not.
 */
XLB_HASH_INLINE __u32 xlb_encap_entropy(const struct xlb_flow_key *key)
{
	__u32 x = key->src.words[0] ^ key->src.words[3] ^ (((__u32)key->sport << 16) | key->dport);

	x *= 0x9e3779b1U;
	return x ^ (x >> 15);
}

/* Outer IPv4 source: configured prefix plus entropy in the host bits (all network order). */
XLB_HASH_INLINE __u32 xlb_encap_src_v4(const struct xlb_config *cfg, __u32 entropy)
{
	return cfg->encap_src_v4 | (entropy & cfg->encap_src_v4_host_mask);
}

/* Last word of the outer IPv6 source (the first three are the configured prefix's). */
XLB_HASH_INLINE __u32 xlb_encap_src_v6_last(const struct xlb_config *cfg, __u32 entropy)
{
	return cfg->encap_src_v6.words[3] | (entropy & cfg->encap_src_v6_host_mask);
}

/* GUE UDP source port, host order: in 49152..65535. */
XLB_HASH_INLINE __u16 xlb_gue_sport(__u32 entropy)
{
	return (__u16)(0xc000 | (entropy >> 18));
}

/* Outer IPv6 flow label, host order, 20 bits. */
XLB_HASH_INLINE __u32 xlb_flow_label(__u32 entropy)
{
	return entropy & 0xfffff;
}
