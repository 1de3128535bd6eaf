/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The contract between the XDP programs and the C++ control plane.
 *
 * Every struct, flag, limit and counter index that crosses the kernel/user boundary is defined
 * here and only here. Both sides include this file: the BPF programs through clang -target bpf,
 * the C++ code through g++. Fixed-width types only; every struct is padded by hand so that its
 * layout is identical on both sides (static_asserts at the bottom check the sizes).
 *
 * Byte order: addresses and ports are stored in network byte order, exactly as they appear in
 * packets, so the data plane never converts them. Everything else is host order.
 */
#pragma once

#include <linux/types.h>

/* ---- Limits (defaults; the loader may size maps differently before load) ---------------- */

#define XLB_MAX_VIPS 512
#define XLB_MAX_BACKENDS 4096
#define XLB_DEFAULT_RING_SIZE 65537
/* Largest ring a VIP may have: a prime, and 100 x XLB_MAX_BACKENDS fits below it. */
#define XLB_MAX_RING_SIZE 1048573
#define XLB_DEFAULT_FLOWS_PER_CPU (1U << 20)
/* Largest frame (Ethernet header included) the balancer encapsulates. */
#define XLB_DEFAULT_MAX_PKT_SIZE 1514
/* IPv6 extension headers walked before giving up on finding TCP/UDP. */
#define XLB_MAX_IPV6_EXT_HDRS 4
/* Default UDP destination port of GUE encapsulation (the GUE port IANA assigned). */
#define XLB_DEFAULT_GUE_PORT 6080
#define XLB_DEFAULT_UDP_IDLE_NS (30ULL * 1000 * 1000 * 1000)
#define XLB_DEFAULT_NEW_FLOWS_PER_SEC 125000
#define XLB_OUTER_TTL 64

/* ---- Address families (our own values: AF_* differ between headers we include) -------- */

#define XLB_FAMILY_V4 4
#define XLB_FAMILY_V6 6

/* An address of either family. IPv4 uses word 0; words 1..3 are zero. */
struct xlb_addr {
	__u32 words[4];
};

/* ---- VIPs ---------------------------------------------------------------------------- */

/* Key of the `vips` map. port == 0 marks a port-less VIP (all ports of that protocol). */
struct xlb_vip_key {
	struct xlb_addr addr;
	__u16 port; /* network order */
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family; /* XLB_FAMILY_* */
};

enum xlb_vip_flags {
	/* Do not use or fill the connection table: every packet is placed by the ring. */
	XLB_VIP_NO_LRU = 1U << 0,
	/* Hash on the source address only (all flows of a client go to one backend). */
	XLB_VIP_HASH_SRC_ONLY = 1U << 1,
	/* Hash without the source port (address pair and destination port). */
	XLB_VIP_HASH_NO_SPORT = 1U << 2,
	/* Encapsulate in GUE (UDP) instead of IPIP / IP6IP6 / 4in6. */
	XLB_VIP_GUE = 1U << 3,
	/* New flows of this VIP are always inserted, whatever the per-CPU rate guard says. */
	XLB_VIP_NO_RATE_GUARD = 1U << 4,
	/* Answer packets over the size limit with ICMP frag-needed / packet-too-big. */
	XLB_VIP_ICMP_TOO_BIG = 1U << 5,
};
#define XLB_VIP_FLAGS_ALL 0x3fU

struct xlb_vip_meta {
	__u32 vip_index; /* index into vip_stats and rings */
	__u32 flags; /* enum xlb_vip_flags */
	__u32 ring_size; /* slots of this VIP's inner ring map (a prime) */
	__u32 reserved;
};

/* Key of the `vip_addrs` map: every address that carries at least one VIP. Consulted only on
 * rare paths (fragments, IPv4 options, ICMP) to tell VIP traffic from the host's own. */
struct xlb_vip_addr_key {
	struct xlb_addr addr;
	__u32 family;
};

/* ---- Backends ------------------------------------------------------------------------ */

struct xlb_backend {
	struct xlb_addr addr; /* network order */
	__u8 family; /* XLB_FAMILY_*; 0 = unused slot (packets hashed here are dropped) */
	__u8 flags;
	__u16 reserved;
};

/* ---- Connection table ---------------------------------------------------------------- */

/* The 5-tuple of a flow towards a VIP, as seen in the client's packet. */
struct xlb_flow_key {
	struct xlb_addr src;
	struct xlb_addr dst;
	__u16 sport; /* network order */
	__u16 dport; /* network order */
	__u8 proto;
	__u8 family;
	__u16 reserved;
};

/* Connection-table key of an IPv4 flow. IPv4 flows have a table of their own with this 16-byte
 * key: hashing, comparing and the table element are all smaller than with xlb_flow_key. */
struct xlb_flow_key_v4 {
	__u32 src; /* network order */
	__u32 dst; /* network order */
	__u16 sport; /* network order */
	__u16 dport; /* network order */
	__u8 proto;
	__u8 reserved[3];
};

struct xlb_flow {
	__u32 backend_index;
	__u32 reserved;
	__u64 atime_ns; /* last packet, kept for UDP only (idle expiry) */
};

/* Per-CPU state of the new-flow rate guard. */
struct xlb_rate_guard {
	__u64 window_start_ns;
	__u64 new_flows;
};

/* ---- Global configuration (map `config`, one entry) ------------------------------------ */

enum xlb_config_flags {
	/* IPv4/IPv6 fragments to a VIP address: pass to the stack instead of dropping. */
	XLB_CFG_PASS_FRAGMENTS = 1U << 0,
	/* IPv4 packets with options to a VIP address: pass to the stack instead of dropping. */
	XLB_CFG_PASS_IP_OPTIONS = 1U << 1,
	/* At least one port-less VIP exists: look up (addr, 0, proto) after a miss. Kept by the
	 * loader, so that traffic to non-VIPs costs one lookup while no port-less VIP exists. */
	XLB_CFG_PORTLESS_VIPS = 1U << 2,
};

struct xlb_config {
	__u8 next_hop_mac[6]; /* destination MAC of every encapsulated packet */
	__u16 gue_port; /* network order, UDP destination port of GUE */
	/* Outer source: base | (flow hash & host_mask), so backend NICs spread flows (RSS). */
	__u32 encap_src_v4; /* network order */
	__u32 encap_src_v4_host_mask; /* network order */
	struct xlb_addr encap_src_v6; /* network order */
	__u32 encap_src_v6_host_mask; /* network order, applied to the last word */
	__u32 hash_seed;
	__u32 flags; /* enum xlb_config_flags */
	__u32 max_pkt_size; /* largest frame encapsulated, Ethernet header included */
	__u32 new_flows_per_sec; /* per CPU; 0 = no guard */
	__u32 reserved;
	__u64 udp_idle_ns; /* a UDP table entry idle longer than this is re-placed by the ring */
};

/* ---- Counters ------------------------------------------------------------------------ */

struct xlb_traffic {
	__u64 packets;
	__u64 bytes;
};

/*
 * Global per-CPU counters of the balancer, one array of __u64 indexed by enum xlb_counter.
 * X(ENUM_SUFFIX, "metric_name", "help") -- the C++ side turns the same list into names.
 */
#define XLB_COUNTERS(X)                                                                        \
	X(XDP_PASS, "xdp_pass", "packets handed to the kernel stack")                         \
	X(XDP_TX, "xdp_tx", "packets sent back out (encapsulated or ICMP)")                   \
	X(XDP_DROP, "xdp_drop", "packets dropped")                                            \
	X(LRU_HIT, "lru_hit", "VIP packets placed by the connection table")                   \
	X(LRU_MISS, "lru_miss", "VIP packets not found in the connection table")              \
	X(LRU_SKIPPED, "lru_skipped", "VIP packets placed by the ring alone (SYN or no-LRU)") \
	X(UDP_EXPIRED, "udp_expired", "UDP table entries found idle and re-placed")           \
	X(RATE_GUARDED, "rate_guarded", "new flows not inserted: rate guard")                 \
	X(ICMP_STEERED, "icmp_steered", "ICMP errors sent to the backend owning the flow")    \
	X(ICMP_TOO_BIG_SENT, "icmp_too_big_sent", "ICMP too-big answers sent to clients")     \
	X(FRAGMENT, "fragment", "fragments to a VIP address (dropped or passed: policy)")     \
	X(IP_OPTIONS, "ip_options", "IPv4 with options to a VIP address (policy)")            \
	X(DROP_MALFORMED, "drop_malformed", "dropped: truncated or inconsistent headers")      \
	X(DROP_EXT_HDRS, "drop_ext_hdrs", "dropped: too many IPv6 extension headers")         \
	X(DROP_TOO_BIG, "drop_too_big", "dropped: larger than max_pkt_size")                  \
	X(DROP_NO_BACKEND, "drop_no_backend", "dropped: ring slot or backend unusable")       \
	X(DROP_NO_RING, "drop_no_ring", "dropped: VIP has no ring")                           \
	X(DROP_ENCAP, "drop_encap", "dropped: no headroom to encapsulate")                    \
	X(DROP_NO_CONFIG, "drop_no_config", "dropped: configuration map empty")

#define XLB_COUNTER_ENUM(name, metric, help) XLB_CNT_##name,
enum xlb_counter { XLB_COUNTERS(XLB_COUNTER_ENUM) XLB_CNT__MAX };
#undef XLB_COUNTER_ENUM

struct xlb_counters {
	__u64 c[XLB_CNT__MAX];
};

/* ---- Decapsulation (backend side) ------------------------------------------------------ */

struct xlb_decap_config {
	__u32 local_v4; /* network order; 0 = accept no IPv4 outer header */
	__u16 gue_port; /* network order; 0 = no GUE */
	__u16 reserved;
	struct xlb_addr local_v6; /* all zero = accept no IPv6 outer header */
};

#define XLB_DECAP_COUNTERS(X)                                                      \
	X(IPIP, "ipip", "IPv4-in-IPv4 packets decapsulated")                      \
	X(IP6IP6, "ip6ip6", "IPv6-in-IPv6 packets decapsulated")                  \
	X(IP4IN6, "ip4in6", "IPv4-in-IPv6 packets decapsulated")                  \
	X(IP6IN4, "ip6in4", "IPv6-in-IPv4 packets decapsulated")                  \
	X(GUE, "gue", "GUE (UDP) packets decapsulated")                           \
	X(PASS, "pass", "packets not for decapsulation, passed untouched")        \
	X(DROP_MALFORMED, "drop_malformed", "dropped: malformed tunnel packet")   \
	X(DROP_ADJUST, "drop_adjust", "dropped: could not strip the outer header")

#define XLB_DECAP_COUNTER_ENUM(name, metric, help) XLB_DCNT_##name,
enum xlb_decap_counter { XLB_DECAP_COUNTERS(XLB_DECAP_COUNTER_ENUM) XLB_DCNT__MAX };
#undef XLB_DECAP_COUNTER_ENUM

struct xlb_decap_counters {
	__u64 c[XLB_DCNT__MAX];
};

/* ---- Load generator (bpf/pktgen.bpf.c, tools/xlb-pktgen) ------------------------------ */

/* Room for the longest template header: Ethernet + IPv6 + TCP = 74 bytes. */
#define XLB_PKTGEN_MAX_HDR 80
/* Source ports the generator writes: BASE + (client + connection) % SPAN. */
#define XLB_PKTGEN_SPORT_BASE 1024
#define XLB_PKTGEN_SPORT_SPAN 64512

/* Map `pktgen_config` (one entry). Frame number n of a CPU belongs to client n % flows and is
 * that client's connection (n / flows) % ports_per_flow; the client number is added to the last
 * 32-bit word of the template's source address. */
struct xlb_pktgen_config {
	__u8 hdr[XLB_PKTGEN_MAX_HDR]; /* Ethernet, IP and L4 headers of client 0, connection 0 */
	__u32 flows; /* clients, >= 1 */
	__u32 ports_per_flow; /* 1: one connection per client; more: a new source port per frame */
	__u8 family; /* XLB_FAMILY_* */
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 reserved[6];
};

/* Map `pktgen_state`, per CPU: where this CPU's generator thread is in the flow sequence. */
struct xlb_pktgen_state {
	__u64 next; /* frame number of the next frame */
	__u64 stride; /* added after each frame: the number of generator threads */
	__u64 sent; /* frames written */
};

/* ---- Layout checks ------------------------------------------------------------------- */

#ifdef __cplusplus
#define XLB_STATIC_ASSERT static_assert
#else
#define XLB_STATIC_ASSERT _Static_assert
#endif
XLB_STATIC_ASSERT(sizeof(struct xlb_addr) == 16, "xlb_addr layout");
XLB_STATIC_ASSERT(sizeof(struct xlb_vip_key) == 20, "xlb_vip_key layout");
XLB_STATIC_ASSERT(sizeof(struct xlb_vip_meta) == 16, "xlb_vip_meta layout");
XLB_STATIC_ASSERT(sizeof(struct xlb_vip_addr_key) == 20, "xlb_vip_addr_key layout");
XLB_STATIC_ASSERT(sizeof(struct xlb_backend) == 20, "xlb_backend layout");
XLB_STATIC_ASSERT(sizeof(struct xlb_flow_key) == 40, "xlb_flow_key layout");
XLB_STATIC_ASSERT(sizeof(struct xlb_flow_key_v4) == 16, "xlb_flow_key_v4 layout");
XLB_STATIC_ASSERT(sizeof(struct xlb_flow) == 16, "xlb_flow layout");
XLB_STATIC_ASSERT(sizeof(struct xlb_config) == 64, "xlb_config layout");
XLB_STATIC_ASSERT(sizeof(struct xlb_decap_config) == 24, "xlb_decap_config layout");
XLB_STATIC_ASSERT(sizeof(struct xlb_pktgen_config) == 96, "xlb_pktgen_config layout");
XLB_STATIC_ASSERT(sizeof(struct xlb_pktgen_state) == 24, "xlb_pktgen_state layout");
