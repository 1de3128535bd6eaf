/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Includes and small definitions every xlb BPF program needs. Only uapi headers are used (no
 * vmlinux.h): XDP programs touch packet bytes and maps, never kernel structs, so nothing needs
 * CO-RE relocation.
 */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include <xlb/abi.h>

/* Not in every uapi version of the headers. */
#ifndef IP_MF
#define IP_MF 0x2000
#endif
#ifndef IP_DF
#define IP_DF 0x4000
#endif
#ifndef IP_OFFSET
#define IP_OFFSET 0x1fff
#endif
#ifndef NEXTHDR_HOP
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60
#endif

/* <linux/icmp.h> pulls in libc socket headers that do not build for -target bpf. */
#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	union {
		struct {
			__be16 id;
			__be16 sequence;
		} echo;
		__be32 gateway;
		struct {
			__be16 __unused;
			__be16 mtu;
		} frag;
	} un;
};

#define TCP_FLAG_SYN_BIT 0x02
/* Offset of the flags byte in the TCP header. */
#define TCP_FLAGS_OFFSET 13

/* Points at packet data `off` bytes after `base`, or NULL when `len` bytes are not there. */
#define XLB_PTR(base, off, len, end)                                                           \
	(((void *)(base) + (off) + (len) > (void *)(end)) ? NULL : (void *)(base) + (off))

static __always_inline void xlb_copy_mac(__u8 *dst, const __u8 *src)
{
	__builtin_memcpy(dst, src, ETH_ALEN);
}
