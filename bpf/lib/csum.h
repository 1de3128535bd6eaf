/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Internet checksums (RFC 1071) for headers the programs build themselves. All sums run over a
 * length known at compile time, so clang unrolls them and the verifier sees straight-line code.
 * Convention: *_partial functions return an unfolded 32-bit sum; xlb_csum_fold() finishes it
 * into the 16-bit one's complement value to store (already in network order when the input
 * words were read from network-order memory).
 */
#pragma once

#include "common.h"

static __always_inline __u16 xlb_csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Sum of `words` 16-bit words at p (p must be 2-byte aligned and in bounds). */
static __always_inline __u64 xlb_csum_partial(const void *p, const int words, __u64 sum)
{
	const __u16 *w = p;

#pragma clang loop unroll(full)
	for (int i = 0; i < words; i++)
		sum += w[i];
	return sum;
}

/* Header checksum of a 20-byte IPv4 header; iph->check must be zero when called. */
static __always_inline __u16 xlb_ipv4_csum(const struct iphdr *iph)
{
	return xlb_csum_fold(xlb_csum_partial(iph, sizeof(*iph) / 2, 0));
}
