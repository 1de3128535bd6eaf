// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * xlb_balancer: the XDP program of an xlb edge host.
 *
 * For each frame: parse Ethernet / IPv4 / IPv6 (walking a bounded number of extension headers)
 * and TCP / UDP ports; anything that is not addressed to a VIP leaves as early as possible with
 * XDP_PASS. A VIP packet's backend comes from the connection table (per-CPU LRU) or, for SYNs,
 * misses and VIPs flagged no-LRU, from the VIP's Maglev ring indexed by the seeded flow hash.
 * The packet is then encapsulated (IPIP / IP6IP6 / 4in6 / GUE) and sent back out (XDP_TX) to
 * the configured next hop. ICMP errors quoting a VIP flow follow that flow to its backend.
 *
 * Policies (counted in `counters`, see abi.h):
 *  - IPv4 with options and fragments (v4 and v6) to a VIP address: dropped, or passed to the
 *    stack when the config says so (XLB_CFG_PASS_IP_OPTIONS / XLB_CFG_PASS_FRAGMENTS). Ports
 *    are unknown in non-first fragments, so they cannot be balanced consistently.
 *  - Truncated or inconsistent IP/L4 headers: dropped (the stack would drop them too).
 *  - More than XLB_MAX_IPV6_EXT_HDRS extension headers to a VIP address: dropped.
 *  - Frames over max_pkt_size: dropped, or answered with ICMP too-big for flagged VIPs.
 *  - Bytes after the IP datagram (Ethernet padding, trailers) are cut before encapsulation.
 */
#include "lib/common.h"
#include "lib/csum.h"
#include "lib/encap.h"
#include "lib/icmp.h"
#include <xlb/flow_hash.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Test seam: a clock the tests set, so UDP expiry and the rate guard are deterministic. */
const volatile __u8 xlb_fake_clock = 0;
__u64 xlb_fake_now_ns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xlb_vip_key);
	__type(value, struct xlb_vip_meta);
	__uint(max_entries, XLB_MAX_VIPS);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xlb_vip_addr_key);
	__type(value, __u32);
	__uint(max_entries, XLB_MAX_VIPS);
} vip_addrs SEC(".maps");

/* One Maglev ring per VIP: slot -> backend index. BPF_F_INNER_MAP lets every VIP have its own
 * ring size, and replacing a VIP's inner map swaps its whole ring atomically. BPF_F_MMAPABLE
 * lets the loader write a ring with memcpy instead of one syscall per slot. */
struct xlb_ring {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, XLB_DEFAULT_RING_SIZE);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, XLB_MAX_VIPS);
	__array(values, struct xlb_ring);
} rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_backend);
	__uint(max_entries, XLB_MAX_BACKENDS);
} backends SEC(".maps");

/*
 * The connection table: one table per address family (IPv4 keys are 16 bytes, IPv6 keys 40),
 * in one of two layouts chosen at load time (xlb_flow_maps_per_cpu):
 *  - flows_v4 / flows_v6: one LRU hash with BPF_F_NO_COMMON_LRU (a shared hash table, an LRU
 *    list per CPU), sized flows-per-CPU x CPUs;
 *  - flows_v4_per_cpu / flows_v6_per_cpu: one plain LRU hash per CPU, picked by the current
 *    CPU id. A flow stays on one CPU (RSS), so no entry is needed twice.
 * xlb-bench xdp measures both (docs/performance.md). The unused layout is sized to its minimum
 * by the loader, which also passes the per-CPU inner templates itself (libbpf 1.1 cannot resize
 * a BTF-declared inner template).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xlb_flow_key_v4);
	__type(value, struct xlb_flow);
	__uint(max_entries, XLB_DEFAULT_FLOWS_PER_CPU);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} flows_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xlb_flow_key);
	__type(value, struct xlb_flow);
	__uint(max_entries, XLB_DEFAULT_FLOWS_PER_CPU);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} flows_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} flows_v4_per_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} flows_v6_per_cpu SEC(".maps");

const volatile __u8 xlb_flow_maps_per_cpu = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_traffic);
	__uint(max_entries, XLB_MAX_VIPS);
} vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_traffic);
	__uint(max_entries, XLB_MAX_BACKENDS);
} backend_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_counters);
	__uint(max_entries, 1);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_rate_guard);
	__uint(max_entries, 1);
} rate_guard SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_config);
	__uint(max_entries, 1);
} config SEC(".maps");

/* What one packet is, once parsed. */
struct xlb_pkt {
	struct xlb_flow_key flow; /* client -> VIP */
	__u32 l3_len; /* IP total length of the packet to encapsulate */
	__u8 tos;
	__u8 tcp_flags;
	__u8 icmp; /* an ICMP error steered by the flow it quotes */
	__u8 remember; /* placed by the ring: insert into the connection table */
	__u64 now; /* clock read while placing, 0 if not read */
	/* Counter events of this packet besides its action (XLB_CNT__MAX = none). */
	__u32 ev1;
	__u32 ev2;
};

/* The IPv4 / IPv6 connection table this CPU uses (NULL only if the loader left a CPU without a
 * map). Separate functions keep one map per call site, which the verifier needs to inline. */
static __always_inline void *xlb_flow_table_v4(void)
{
	__u32 cpu;

	if (!xlb_flow_maps_per_cpu)
		return &flows_v4;
	cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&flows_v4_per_cpu, &cpu);
}

static __always_inline void *xlb_flow_table_v6(void)
{
	__u32 cpu;

	if (!xlb_flow_maps_per_cpu)
		return &flows_v6;
	cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&flows_v6_per_cpu, &cpu);
}

static __always_inline void xlb_flow_key_v4_of(const struct xlb_flow_key *flow,
					       struct xlb_flow_key_v4 *key)
{
	key->src = flow->src.words[0];
	key->dst = flow->dst.words[0];
	key->sport = flow->sport;
	key->dport = flow->dport;
	key->proto = flow->proto;
	key->reserved[0] = key->reserved[1] = key->reserved[2] = 0;
}

static __always_inline struct xlb_flow *xlb_flow_lookup(const struct xlb_pkt *pkt)
{
	struct xlb_flow_key_v4 key4;
	void *table;

	if (pkt->flow.family == XLB_FAMILY_V4) {
		table = xlb_flow_table_v4();
		if (!table)
			return NULL;
		xlb_flow_key_v4_of(&pkt->flow, &key4);
		return bpf_map_lookup_elem(table, &key4);
	}
	table = xlb_flow_table_v6();
	return table ? bpf_map_lookup_elem(table, &pkt->flow) : NULL;
}

static __always_inline void xlb_flow_insert(const struct xlb_pkt *pkt, const struct xlb_flow *f)
{
	struct xlb_flow_key_v4 key4;
	void *table;

	if (pkt->flow.family == XLB_FAMILY_V4) {
		table = xlb_flow_table_v4();
		if (!table)
			return;
		xlb_flow_key_v4_of(&pkt->flow, &key4);
		bpf_map_update_elem(table, &key4, f, BPF_ANY);
		return;
	}
	table = xlb_flow_table_v6();
	if (table)
		bpf_map_update_elem(table, &pkt->flow, f, BPF_ANY);
}

static __always_inline __u64 xlb_now(void)
{
	if (xlb_fake_clock)
		return xlb_fake_now_ns;
	return bpf_ktime_get_ns();
}

static __always_inline int xlb_drop(struct xlb_pkt *pkt, __u32 reason)
{
	pkt->ev1 = reason;
	return XDP_DROP;
}

static __always_inline int xlb_is_vip_addr(const struct xlb_addr *addr, __u32 family)
{
	struct xlb_vip_addr_key key = { .addr = *addr, .family = family };

	return bpf_map_lookup_elem(&vip_addrs, &key) != NULL;
}

/* Fragments and IPv4 options: policy applies to VIP addresses; the host's own traffic passes. */
static __always_inline int xlb_policy(struct xlb_pkt *pkt, const struct xlb_addr *dst,
				      __u32 family, __u32 event, __u32 pass_flag)
{
	__u32 zero = 0;
	struct xlb_config *cfg;

	if (!xlb_is_vip_addr(dst, family))
		return XDP_PASS;
	pkt->ev1 = event;
	cfg = bpf_map_lookup_elem(&config, &zero);
	return cfg && (cfg->flags & pass_flag) ? XDP_PASS : XDP_DROP;
}

static __always_inline struct xlb_vip_meta *xlb_find_vip(struct xlb_pkt *pkt,
							 const struct xlb_config *cfg)
{
	struct xlb_vip_key key = {
		.addr = pkt->flow.dst,
		.port = pkt->flow.dport,
		.proto = pkt->flow.proto,
		.family = pkt->flow.family,
	};
	struct xlb_vip_meta *vip = bpf_map_lookup_elem(&vips, &key);

	if (vip || !(cfg->flags & XLB_CFG_PORTLESS_VIPS))
		return vip;
	key.port = 0;
	return bpf_map_lookup_elem(&vips, &key);
}

/* The new-flow rate guard: at most cfg->new_flows_per_sec table inserts per CPU per second. */
static __always_inline int xlb_rate_guard_allows(const struct xlb_config *cfg, __u64 now)
{
	__u32 zero = 0;
	struct xlb_rate_guard *g = bpf_map_lookup_elem(&rate_guard, &zero);

	if (!g)
		return 1;
	if (now - g->window_start_ns >= 1000000000ULL) {
		g->window_start_ns = now;
		g->new_flows = 0;
	}
	if (g->new_flows >= cfg->new_flows_per_sec)
		return 0;
	g->new_flows++;
	return 1;
}

/* Backend index for the packet's flow: the table first, then the ring. Returns -1 with an event
 * set when there is none. */
static __always_inline int xlb_pick_backend(struct xlb_pkt *pkt, const struct xlb_vip_meta *vip,
					    const struct xlb_config *cfg, __u32 *backend)
{
	int use_table = !(vip->flags & XLB_VIP_NO_LRU);
	int is_udp = pkt->flow.proto == IPPROTO_UDP;
	struct xlb_flow *f;
	__u64 now = 0;
	__u32 *slot_value;
	void *ring;
	__u32 slot;

	if (use_table && !(pkt->tcp_flags & TCP_FLAG_SYN_BIT)) {
		f = xlb_flow_lookup(pkt);
		if (f) {
			if (!is_udp) {
				*backend = f->backend_index;
				pkt->ev1 = XLB_CNT_LRU_HIT;
				return 0;
			}
			now = xlb_now();
			if (now - f->atime_ns <= cfg->udp_idle_ns) {
				f->atime_ns = now;
				*backend = f->backend_index;
				pkt->ev1 = XLB_CNT_LRU_HIT;
				return 0;
			}
			pkt->ev1 = XLB_CNT_UDP_EXPIRED;
		} else {
			pkt->ev1 = XLB_CNT_LRU_MISS;
		}
	} else {
		pkt->ev1 = XLB_CNT_LRU_SKIPPED;
	}

	ring = bpf_map_lookup_elem(&rings, &vip->vip_index);
	if (!ring) {
		pkt->ev2 = XLB_CNT_DROP_NO_RING;
		return -1;
	}
	slot = xlb_ring_slot(xlb_flow_hash(&pkt->flow, vip->flags, cfg->hash_seed), vip->ring_size);
	slot_value = bpf_map_lookup_elem(ring, &slot);
	if (!slot_value) {
		pkt->ev2 = XLB_CNT_DROP_NO_RING;
		return -1;
	}
	*backend = *slot_value;
	/* Remembered once the backend is known to be usable (xlb_remember_flow); ICMP errors
	 * follow existing entries but never create one. */
	pkt->remember = use_table && !pkt->icmp;
	pkt->now = now;
	return 0;
}

/* Inserts a new flow into the connection table, within the per-CPU rate guard. */
static __always_inline void xlb_remember_flow(struct xlb_pkt *pkt, const struct xlb_vip_meta *vip,
					      const struct xlb_config *cfg, __u32 backend)
{
	struct xlb_flow entry = { .backend_index = backend };
	__u64 now = pkt->now;

	if (!now && (pkt->flow.proto == IPPROTO_UDP || cfg->new_flows_per_sec))
		now = xlb_now();
	if (cfg->new_flows_per_sec && !(vip->flags & XLB_VIP_NO_RATE_GUARD) &&
	    !xlb_rate_guard_allows(cfg, now)) {
		pkt->ev2 = XLB_CNT_RATE_GUARDED;
		return;
	}
	entry.atime_ns = now;
	xlb_flow_insert(pkt, &entry);
}

static __always_inline void xlb_add_traffic(void *map, __u32 index, __u32 bytes)
{
	struct xlb_traffic *t = bpf_map_lookup_elem(map, &index);

	if (t) {
		t->packets++;
		t->bytes += bytes;
	}
}

static __always_inline int xlb_too_big(struct xdp_md *ctx, struct xlb_pkt *pkt,
				       const struct xlb_vip_meta *vip,
				       const struct xlb_config *cfg, void *data, void *data_end)
{
	__u32 mtu = cfg->max_pkt_size - sizeof(struct ethhdr);
	struct iphdr *iph;
	int err;

	if (!(vip->flags & XLB_VIP_ICMP_TOO_BIG) || pkt->icmp)
		return xlb_drop(pkt, XLB_CNT_DROP_TOO_BIG);
	if (pkt->flow.family == XLB_FAMILY_V4) {
		/* Without DF a router would fragment; we cannot, and must not ask the client to. */
		iph = XLB_PTR(data, sizeof(struct ethhdr), sizeof(*iph), data_end);
		if (!iph || !(iph->frag_off & bpf_htons(IP_DF)))
			return xlb_drop(pkt, XLB_CNT_DROP_TOO_BIG);
		err = xlb_icmp4_too_big(ctx, mtu);
	} else {
		err = xlb_icmp6_too_big(ctx, mtu);
	}
	if (err)
		return xlb_drop(pkt, XLB_CNT_DROP_TOO_BIG);
	pkt->ev1 = XLB_CNT_ICMP_TOO_BIG_SENT;
	return XDP_TX;
}

/* A VIP packet: pick the backend, count, encapsulate, send. */
static __always_inline int xlb_forward(struct xdp_md *ctx, struct xlb_pkt *pkt,
				       const struct xlb_vip_meta *vip,
				       const struct xlb_config *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 frame_len = data_end - data;
	struct xlb_encap_params params;
	struct xlb_backend *be;
	__u32 backend;
	int err;

	/* The size that matters is what the tunnel will carry, not trailing bytes after it. */
	if (sizeof(struct ethhdr) + pkt->l3_len > cfg->max_pkt_size)
		return xlb_too_big(ctx, pkt, vip, cfg, data, data_end);
	if (xlb_pick_backend(pkt, vip, cfg, &backend))
		return XDP_DROP;
	be = bpf_map_lookup_elem(&backends, &backend);
	if (!be || !be->family) {
		pkt->ev2 = XLB_CNT_DROP_NO_BACKEND;
		return XDP_DROP;
	}

	if (pkt->remember)
		xlb_remember_flow(pkt, vip, cfg, backend);
	xlb_add_traffic(&vip_stats, vip->vip_index, frame_len);
	xlb_add_traffic(&backend_stats, backend, frame_len);

	/* Ethernet padding or trailing bytes after the IP datagram stay behind: the tunnel carries
	 * the datagram only (a minimum-size frame would otherwise carry its padding inside). */
	if (frame_len > sizeof(struct ethhdr) + pkt->l3_len &&
	    bpf_xdp_adjust_tail(ctx, (int)(sizeof(struct ethhdr) + pkt->l3_len) - (int)frame_len)) {
		pkt->ev2 = XLB_CNT_DROP_ENCAP;
		return XDP_DROP;
	}

	params.inner_len = pkt->l3_len;
	params.entropy = xlb_encap_entropy(&pkt->flow);
	params.inner_family = pkt->flow.family;
	params.tos = pkt->tos;
	params.gue = !!(vip->flags & XLB_VIP_GUE);
	if (be->family == XLB_FAMILY_V4)
		err = xlb_encap_v4(ctx, be, cfg, &params);
	else
		err = xlb_encap_v6(ctx, be, cfg, &params);
	if (err) {
		pkt->ev2 = XLB_CNT_DROP_ENCAP;
		return XDP_DROP;
	}
	if (pkt->icmp)
		pkt->ev2 = XLB_CNT_ICMP_STEERED;
	return XDP_TX;
}

/* Ports (and TCP flags) of a TCP/UDP header at l4, which must lie inside the IP length. */
static __always_inline int xlb_parse_l4(struct xlb_pkt *pkt, void *l4, __u32 l4_len,
					void *data_end)
{
	struct udphdr *ports; /* TCP and UDP start with the two ports */
	__u8 *flags;

	if (pkt->flow.proto == IPPROTO_TCP) {
		if (l4_len < sizeof(struct tcphdr))
			return -1;
		flags = XLB_PTR(l4, TCP_FLAGS_OFFSET, 1, data_end);
		if (!flags)
			return -1;
		pkt->tcp_flags = *flags;
	} else if (l4_len < sizeof(struct udphdr)) {
		return -1;
	}
	ports = XLB_PTR(l4, 0, sizeof(*ports), data_end);
	if (!ports)
		return -1;
	pkt->flow.sport = ports->source;
	pkt->flow.dport = ports->dest;
	return 0;
}

static __always_inline int xlb_process_icmp4(struct xdp_md *ctx, struct xlb_pkt *pkt,
					     struct icmphdr *icmp, void *data_end)
{
	struct iphdr *quoted;
	struct udphdr *ports;
	struct xlb_vip_meta *vip;
	struct xlb_config *cfg;
	__u32 zero = 0;

	if (icmp->type != ICMP_DEST_UNREACH)
		return XDP_PASS;
	quoted = XLB_PTR(icmp, sizeof(*icmp), sizeof(*quoted), data_end);
	if (!quoted || quoted->ihl != 5 ||
	    (quoted->protocol != IPPROTO_TCP && quoted->protocol != IPPROTO_UDP))
		return XDP_PASS;
	ports = XLB_PTR(quoted, sizeof(*quoted), sizeof(*ports), data_end);
	if (!ports)
		return XDP_PASS;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return xlb_drop(pkt, XLB_CNT_DROP_NO_CONFIG);
	/* The quoted packet went VIP -> client; the flow, seen from the client, is its reverse. */
	pkt->flow.proto = quoted->protocol;
	pkt->flow.dst.words[0] = quoted->saddr;
	pkt->flow.src.words[0] = quoted->daddr;
	pkt->flow.sport = ports->dest;
	pkt->flow.dport = ports->source;
	pkt->icmp = 1;
	vip = xlb_find_vip(pkt, cfg);
	if (!vip)
		return XDP_PASS;
	return xlb_forward(ctx, pkt, vip, cfg);
}

static __always_inline int xlb_process_ipv4(struct xdp_md *ctx, struct xlb_pkt *pkt,
					    void *data, void *data_end)
{
	struct iphdr *iph = XLB_PTR(data, sizeof(struct ethhdr), sizeof(*iph), data_end);
	struct xlb_vip_meta *vip;
	struct xlb_config *cfg;
	__u32 tot_len, zero = 0;
	void *l4;

	if (!iph || iph->version != 4 || iph->ihl < 5)
		return xlb_drop(pkt, XLB_CNT_DROP_MALFORMED);
	tot_len = bpf_ntohs(iph->tot_len);
	if (tot_len < iph->ihl * 4U || (void *)iph + tot_len > data_end)
		return xlb_drop(pkt, XLB_CNT_DROP_MALFORMED);

	pkt->flow.proto = iph->protocol;
	if (pkt->flow.proto != IPPROTO_TCP && pkt->flow.proto != IPPROTO_UDP &&
	    pkt->flow.proto != IPPROTO_ICMP)
		return XDP_PASS;
	pkt->flow.family = XLB_FAMILY_V4;
	pkt->flow.src.words[0] = iph->saddr;
	pkt->flow.dst.words[0] = iph->daddr;
	pkt->l3_len = tot_len;
	pkt->tos = iph->tos;

	if (iph->ihl != 5)
		return xlb_policy(pkt, &pkt->flow.dst, XLB_FAMILY_V4, XLB_CNT_IP_OPTIONS,
				  XLB_CFG_PASS_IP_OPTIONS);
	if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return xlb_policy(pkt, &pkt->flow.dst, XLB_FAMILY_V4, XLB_CNT_FRAGMENT,
				  XLB_CFG_PASS_FRAGMENTS);

	l4 = (void *)(iph + 1);
	if (pkt->flow.proto == IPPROTO_ICMP) {
		struct icmphdr *icmp = XLB_PTR(l4, 0, sizeof(*icmp), data_end);

		if (!icmp)
			return XDP_PASS;
		return xlb_process_icmp4(ctx, pkt, icmp, data_end);
	}
	if (xlb_parse_l4(pkt, l4, tot_len - sizeof(*iph), data_end))
		return xlb_drop(pkt, XLB_CNT_DROP_MALFORMED);

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return XDP_PASS;
	vip = xlb_find_vip(pkt, cfg);
	if (!vip)
		return XDP_PASS;
	return xlb_forward(ctx, pkt, vip, cfg);
}

static __always_inline int xlb_process_icmp6(struct xdp_md *ctx, struct xlb_pkt *pkt,
					     struct icmp6hdr *icmp, void *data_end)
{
	struct ipv6hdr *quoted;
	struct udphdr *ports;
	struct xlb_vip_meta *vip;
	struct xlb_config *cfg;
	__u32 zero = 0;

	if (icmp->icmp6_type != ICMPV6_DEST_UNREACH && icmp->icmp6_type != ICMPV6_PKT_TOOBIG)
		return XDP_PASS;
	quoted = XLB_PTR(icmp, sizeof(*icmp), sizeof(*quoted), data_end);
	if (!quoted || (quoted->nexthdr != IPPROTO_TCP && quoted->nexthdr != IPPROTO_UDP))
		return XDP_PASS;
	ports = XLB_PTR(quoted, sizeof(*quoted), sizeof(*ports), data_end);
	if (!ports)
		return XDP_PASS;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return xlb_drop(pkt, XLB_CNT_DROP_NO_CONFIG);
	/* As for IPv4: the flow is the quoted packet reversed. */
	pkt->flow.proto = quoted->nexthdr;
	__builtin_memcpy(&pkt->flow.dst, &quoted->saddr, sizeof(pkt->flow.dst));
	__builtin_memcpy(&pkt->flow.src, &quoted->daddr, sizeof(pkt->flow.src));
	pkt->flow.sport = ports->dest;
	pkt->flow.dport = ports->source;
	pkt->icmp = 1;
	vip = xlb_find_vip(pkt, cfg);
	if (!vip)
		return XDP_PASS;
	return xlb_forward(ctx, pkt, vip, cfg);
}

static __always_inline int xlb_process_ipv6(struct xdp_md *ctx, struct xlb_pkt *pkt,
					    void *data, void *data_end)
{
	struct ipv6hdr *ip6h = XLB_PTR(data, sizeof(struct ethhdr), sizeof(*ip6h), data_end);
	struct xlb_vip_meta *vip;
	struct xlb_config *cfg;
	__u32 payload_len, off, zero = 0;
	__u8 nexthdr, *ext;
	void *l4;

	if (!ip6h || ip6h->version != 6)
		return xlb_drop(pkt, XLB_CNT_DROP_MALFORMED);
	payload_len = bpf_ntohs(ip6h->payload_len);
	if ((void *)(ip6h + 1) + payload_len > data_end)
		return xlb_drop(pkt, XLB_CNT_DROP_MALFORMED);

	pkt->flow.family = XLB_FAMILY_V6;
	__builtin_memcpy(&pkt->flow.src, &ip6h->saddr, sizeof(pkt->flow.src));
	__builtin_memcpy(&pkt->flow.dst, &ip6h->daddr, sizeof(pkt->flow.dst));
	pkt->l3_len = sizeof(*ip6h) + payload_len;
	pkt->tos = (ip6h->priority << 4) | (ip6h->flow_lbl[0] >> 4);

	/* Walk extension headers (bounded) to the upper-layer header. */
	nexthdr = ip6h->nexthdr;
	off = 0;
#pragma clang loop unroll(full)
	for (int i = 0; i < XLB_MAX_IPV6_EXT_HDRS; i++) {
		if (nexthdr != NEXTHDR_HOP && nexthdr != NEXTHDR_ROUTING &&
		    nexthdr != NEXTHDR_DEST && nexthdr != NEXTHDR_FRAGMENT)
			break;
		if (nexthdr == NEXTHDR_FRAGMENT) {
			pkt->flow.proto = nexthdr;
			return xlb_policy(pkt, &pkt->flow.dst, XLB_FAMILY_V6, XLB_CNT_FRAGMENT,
					  XLB_CFG_PASS_FRAGMENTS);
		}
		ext = XLB_PTR(ip6h + 1, off, 2, data_end);
		if (!ext)
			return xlb_drop(pkt, XLB_CNT_DROP_MALFORMED);
		nexthdr = ext[0];
		off += (ext[1] + 1) * 8;
	}
	if (off > payload_len)
		return xlb_drop(pkt, XLB_CNT_DROP_MALFORMED);

	pkt->flow.proto = nexthdr;
	if (nexthdr == NEXTHDR_HOP || nexthdr == NEXTHDR_ROUTING || nexthdr == NEXTHDR_DEST ||
	    nexthdr == NEXTHDR_FRAGMENT) {
		if (!xlb_is_vip_addr(&pkt->flow.dst, XLB_FAMILY_V6))
			return XDP_PASS;
		return xlb_drop(pkt, XLB_CNT_DROP_EXT_HDRS);
	}
	l4 = XLB_PTR(ip6h + 1, off, 0, data_end);
	if (!l4)
		return xlb_drop(pkt, XLB_CNT_DROP_MALFORMED);
	if (nexthdr == IPPROTO_ICMPV6) {
		struct icmp6hdr *icmp = XLB_PTR(l4, 0, sizeof(*icmp), data_end);

		if (!icmp)
			return XDP_PASS;
		return xlb_process_icmp6(ctx, pkt, icmp, data_end);
	}
	if (nexthdr != IPPROTO_TCP && nexthdr != IPPROTO_UDP)
		return XDP_PASS;
	if (xlb_parse_l4(pkt, l4, payload_len - off, data_end))
		return xlb_drop(pkt, XLB_CNT_DROP_MALFORMED);

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return XDP_PASS;
	vip = xlb_find_vip(pkt, cfg);
	if (!vip)
		return XDP_PASS;
	return xlb_forward(ctx, pkt, vip, cfg);
}

static __always_inline __u32 xlb_action_counter(int action)
{
	switch (action) {
	case XDP_PASS:
		return XLB_CNT_XDP_PASS;
	case XDP_TX:
		return XLB_CNT_XDP_TX;
	default:
		return XLB_CNT_XDP_DROP;
	}
}

SEC("xdp")
int xlb_balancer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xlb_pkt pkt = { .ev1 = XLB_CNT__MAX, .ev2 = XLB_CNT__MAX };
	struct ethhdr *eth = XLB_PTR(data, 0, sizeof(*eth), data_end);
	struct xlb_counters *c;
	__u32 zero = 0;
	int action;

	if (!eth)
		action = xlb_drop(&pkt, XLB_CNT_DROP_MALFORMED);
	else if (eth->h_proto == bpf_htons(ETH_P_IP))
		action = xlb_process_ipv4(ctx, &pkt, data, data_end);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		action = xlb_process_ipv6(ctx, &pkt, data, data_end);
	else
		action = XDP_PASS;

	c = bpf_map_lookup_elem(&counters, &zero);
	if (c) {
		c->c[xlb_action_counter(action)]++;
		if (pkt.ev1 < XLB_CNT__MAX)
			c->c[pkt.ev1]++;
		if (pkt.ev2 < XLB_CNT__MAX)
			c->c[pkt.ev2]++;
	}
	return action;
}
