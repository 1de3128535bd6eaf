#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Raw packets for the e2e scenarios (scenarios_test.py), run inside a lab namespace.
Standard library only; every mode is bounded in count and time; addresses are the lab's.

  rawpkt.py capture IFACE SECONDS STOPFILE VIP[,VIP..] CLIENT[,CLIENT..]
      Counts the frames on IFACE (AF_PACKET, both directions) until SECONDS pass or STOPFILE
      appears: prints "ready" once listening, then one JSON object: plain packets to a VIP,
      packets from a VIP or to a client (the reply direction), tunnel packets (IPIP, IP6IP6,
      4in6, 6in4) and what their inner packets are, and everything else.
  rawpkt.py garbage IFACE SRC_MAC DST_MAC COUNT SECONDS SRC4 VIP4 SRC6 VIP6 SEED
      Sends COUNT malformed frames out of IFACE (AF_PACKET) within about SECONDS, cycling
      through the kinds in KINDS (truncated TCP/UDP headers, fragments, IPv4 options, long
      IPv6 extension-header chains, bad versions, bad lengths, bad checksums, random bytes).
      Prints {"sent": N, "kinds": {kind: count}, "lb_outcome": {counter: count}, "seconds"}:
      lb_outcome is what the balancer should count for the frames the router forwards to it.
  rawpkt.py icmp4 VIP CLIENT CLIENT_PORT VIP_PORT MTU [SEQ]
      Sends one ICMP fragmentation-needed to VIP quoting a TCP segment VIP:VIP_PORT ->
      CLIENT:CLIENT_PORT with sequence number SEQ (random if absent), as a router on the
      client's path would, from a raw socket. The server's TCP acts on it only when SEQ is its
      oldest unacknowledged one (else it counts TcpExtOutOfWindowIcmps).
  rawpkt.py icmp6 VIP CLIENT CLIENT_PORT VIP_PORT MTU [SEQ]
      The same with an ICMPv6 packet-too-big.
"""
import json
import os
import random
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_header(src, dst, proto, payload_len, ihl=5, options=b"", frag=0x4000, ttl=64,
                version=4, tot_len=None, good_csum=True):
    tot = 4 * ihl + payload_len if tot_len is None else tot_len
    hdr = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, tot & 0xFFFF,
                      random.getrandbits(16), frag, ttl, proto, 0, socket.inet_aton(src),
                      socket.inet_aton(dst)) + options
    c = csum(hdr)
    if not good_csum:
        c ^= 0x5A5A
    return hdr[:10] + struct.pack("!H", c) + hdr[12:]


def ipv6_header(src, dst, nexthdr, payload_len, version=6, hop=64):
    return struct.pack("!IHBB", version << 28, payload_len & 0xFFFF, nexthdr, hop) + \
        socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)


# ---- capture ------------------------------------------------------------------------------

def capture(iface, seconds, stopfile, vips, clients):
    vips4 = {socket.inet_aton(v) for v in vips if ":" not in v}
    vips6 = {socket.inet_pton(socket.AF_INET6, v) for v in vips if ":" in v}
    cli4 = {socket.inet_aton(c) for c in clients if ":" not in c}
    cli6 = {socket.inet_pton(socket.AF_INET6, c) for c in clients if ":" in c}
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((iface, 0))
    s.settimeout(0.2)
    stats = {"frames": 0, "to_vip": 0, "to_vip_bytes": 0, "reply": 0, "reply_bytes": 0,
             "tunnel": 0, "tunnel_bytes": 0, "tunnel_inner_to_vip": 0,
             "tunnel_inner_reply": 0, "other": 0, "by_direction": {"out": 0, "in": 0}}

    def addrs(frame, off):
        """(family, proto, src, dst, header length) of an IP header at off, or None."""
        if len(frame) < off + 20:
            return None
        v = frame[off] >> 4
        if v == 4:
            return 4, frame[off + 9], frame[off + 12:off + 16], frame[off + 16:off + 20], \
                (frame[off] & 15) * 4
        if v == 6 and len(frame) >= off + 40:
            return 6, frame[off + 6], frame[off + 8:off + 24], frame[off + 24:off + 40], 40
        return None

    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not os.path.exists(stopfile):
        try:
            frame, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        stats["frames"] += 1
        stats["by_direction"]["out" if addr[2] == socket.PACKET_OUTGOING else "in"] += 1
        etype = struct.unpack("!H", frame[12:14])[0] if len(frame) >= 14 else 0
        ip = addrs(frame, 14) if etype in (ETH_P_IP, ETH_P_IPV6) else None
        if ip is None:
            stats["other"] += 1
            continue
        fam, proto, src, dst, hlen = ip
        if proto in (4, 41):  # IPIP / IP6IP6 / 4in6 / 6in4: what xlb sends to a backend
            stats["tunnel"] += 1
            stats["tunnel_bytes"] += len(frame)
            inner = addrs(frame, 14 + hlen)
            if inner:
                _, _, isrc, idst, _ = inner
                if idst in vips4 | vips6:
                    stats["tunnel_inner_to_vip"] += 1
                if isrc in vips4 | vips6 or idst in cli4 | cli6:
                    stats["tunnel_inner_reply"] += 1
            continue
        if src in vips4 | vips6 or dst in cli4 | cli6:
            stats["reply"] += 1
            stats["reply_bytes"] += len(frame)
        elif dst in vips4 | vips6:
            stats["to_vip"] += 1
            stats["to_vip_bytes"] += len(frame)
        else:
            stats["other"] += 1
    s.close()
    print(json.dumps(stats), flush=True)
    return 0


# ---- garbage ------------------------------------------------------------------------------

# kind -> what the balancer counts when the router forwards the frame to it (None: the router
# drops it first, or it is no IP packet for a VIP).
KINDS = {
    "v4_tcp_truncated": "drop_malformed",   # TCP header cut short inside a valid IP packet
    "v4_udp_truncated": "drop_malformed",
    "v4_fragment": "fragment",              # MF or offset set: xlb cannot place it
    "v4_options": "ip_options",             # IHL > 5
    "v4_bad_version": None,                 # 0x0800 frame with version != 4
    "v4_bad_checksum": None,
    "v4_bad_length": None,                  # total length beyond the frame / below the header
    "v4_short_ihl": None,                   # IHL < 5
    "v4_random": None,                      # random header bytes (lab addresses kept)
    "v6_tcp_truncated": "drop_malformed",
    "v6_udp_truncated": "drop_malformed",
    "v6_ext_chain": "drop_ext_hdrs",        # more extension headers than xlb walks
    "v6_ext_overrun": "drop_malformed",     # an extension header longer than the payload
    "v6_fragment": "fragment",
    "v6_bad_version": None,
    "v6_bad_length": None,                  # payload length beyond the frame
    "v6_random": None,
    "runt": None,                           # Ethernet header and a few bytes
    "random_ethertype": None,
}


def make_frame(kind, rnd, eth4, eth6, src4, vip4, src6, vip6):
    rb = rnd.randbytes
    if kind == "v4_tcp_truncated":
        n = rnd.randrange(0, 20)
        return eth4 + ipv4_header(src4, vip4, 6, n) + rb(n)
    if kind == "v4_udp_truncated":
        n = rnd.randrange(0, 8)
        return eth4 + ipv4_header(src4, vip4, 17, n) + rb(n)
    if kind == "v4_fragment":
        frag = rnd.choice([0x2000, 0x2000 | rnd.randrange(1, 0x1FFF), rnd.randrange(1, 0x1FFF)])
        n = rnd.randrange(8, 64)
        return eth4 + ipv4_header(src4, vip4, rnd.choice([6, 17]), n, frag=frag) + rb(n)
    if kind == "v4_options":
        ihl = rnd.randrange(6, 16)
        opts = b"\x01" * (4 * (ihl - 5) - 1) + b"\x00"  # NOPs, end of list
        n = rnd.randrange(20, 40)
        return eth4 + ipv4_header(src4, vip4, 6, n, ihl=ihl, options=opts) + rb(n)
    if kind == "v4_bad_version":
        n = 20
        return eth4 + ipv4_header(src4, vip4, 6, n, version=rnd.choice([0, 5, 6, 7, 15])) + rb(n)
    if kind == "v4_bad_checksum":
        n = 20
        return eth4 + ipv4_header(src4, vip4, 6, n, good_csum=False) + rb(n)
    if kind == "v4_bad_length":
        n = 20
        tot = rnd.choice([rnd.randrange(61, 1500), rnd.randrange(0, 20)])
        return eth4 + ipv4_header(src4, vip4, 6, n, tot_len=tot) + rb(n)
    if kind == "v4_short_ihl":
        hdr = bytearray(ipv4_header(src4, vip4, 6, 20))
        hdr[0] = 0x40 | rnd.randrange(0, 5)
        return eth4 + bytes(hdr) + rb(20)
    if kind == "v4_random":
        hdr = bytearray(rb(rnd.randrange(20, 60)))
        hdr[12:20] = socket.inet_aton(src4) + socket.inet_aton(vip4)
        return eth4 + bytes(hdr)
    if kind == "v6_tcp_truncated":
        n = rnd.randrange(0, 20)
        return eth6 + ipv6_header(src6, vip6, 6, n) + rb(n)
    if kind == "v6_udp_truncated":
        n = rnd.randrange(0, 8)
        return eth6 + ipv6_header(src6, vip6, 17, n) + rb(n)
    if kind == "v6_ext_chain":
        k = rnd.randrange(5, 9)  # destination options headers, 8 bytes each (PadN)
        ext = b"".join(bytes([60 if i < k - 1 else 6, 0, 1, 4, 0, 0, 0, 0]) for i in range(k))
        body = ext + rb(20)
        return eth6 + ipv6_header(src6, vip6, 60, len(body)) + body
    if kind == "v6_ext_overrun":
        body = bytes([6, rnd.randrange(8, 256), 1, 4, 0, 0, 0, 0]) + rb(rnd.randrange(0, 40))
        return eth6 + ipv6_header(src6, vip6, 60, len(body)) + body
    if kind == "v6_fragment":
        off_flags = rnd.choice([1, rnd.randrange(1, 0x1FFF) << 3])
        body = struct.pack("!BBHI", 6, 0, off_flags, rnd.getrandbits(32)) + rb(rnd.randrange(8, 64))
        return eth6 + ipv6_header(src6, vip6, 44, len(body)) + body
    if kind == "v6_bad_version":
        return eth6 + ipv6_header(src6, vip6, 6, 20, version=rnd.choice([0, 4, 5, 7, 15])) + rb(20)
    if kind == "v6_bad_length":
        n = rnd.randrange(0, 20)
        return eth6 + ipv6_header(src6, vip6, 6, rnd.randrange(n + 1, 1500)) + rb(n)
    if kind == "v6_random":
        hdr = bytearray(rb(rnd.randrange(40, 80)))
        hdr[8:40] = socket.inet_pton(socket.AF_INET6, src6) + socket.inet_pton(socket.AF_INET6, vip6)
        return eth6 + bytes(hdr)
    if kind == "runt":
        return rnd.choice([eth4, eth6]) + rb(rnd.randrange(0, 8))
    if kind == "random_ethertype":
        etype = rnd.choice([0x0000, 0x0001, 0x1234, 0x88B5, 0x88B6, 0xFFFF])
        return eth4[:12] + struct.pack("!H", etype) + rb(rnd.randrange(1, 100))
    raise ValueError(kind)


def garbage(iface, src_mac, dst_mac, count, seconds, src4, vip4, src6, vip6, seed):
    rnd = random.Random(seed)
    random.seed(seed)
    mac = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", ""))
    eth4, eth6 = mac + struct.pack("!H", ETH_P_IP), mac + struct.pack("!H", ETH_P_IPV6)
    kinds = list(KINDS)
    # A pool of frames, sent round robin: random content without paying for it per frame.
    pool = []
    for i in range(min(count, 8 * 1024)):
        kind = kinds[i % len(kinds)]
        pool.append((kind, make_frame(kind, rnd, eth4, eth6, src4, vip4, src6, vip6)))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    sent = {k: 0 for k in kinds}
    batch = 200
    per_batch = seconds / max(1, count / batch)
    t0 = time.monotonic()
    deadline = t0 + seconds * 3  # bounded even if the machine is slow
    n = 0
    errors = 0
    while n < count and time.monotonic() < deadline:
        start = time.monotonic()
        for _ in range(min(batch, count - n)):
            kind, frame = pool[n % len(pool)]
            try:
                s.send(frame)
                sent[kind] += 1
            except OSError:
                errors += 1
            n += 1
        pause = per_batch - (time.monotonic() - start)
        if pause > 0:
            time.sleep(pause)
    s.close()
    outcome = {}
    for kind, c in sent.items():
        if KINDS[kind]:
            outcome[KINDS[kind]] = outcome.get(KINDS[kind], 0) + c
    print(json.dumps({"sent": sum(sent.values()), "send_errors": errors, "kinds": sent,
                      "lb_outcome": outcome, "seconds": round(time.monotonic() - t0, 2)}))
    return 0


# ---- ICMP errors --------------------------------------------------------------------------

def icmp4(vip, client, cport, vport, mtu, seq=None):
    tcp = struct.pack("!HHI", vport, cport, random.getrandbits(32) if seq is None else seq)
    quoted = ipv4_header(vip, client, 6, 1480, frag=0x4000) + tcp  # a full-size DF segment
    body = struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + quoted
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.sendto(body, (vip, 0))
    s.close()
    print(json.dumps({"sent": "icmp frag-needed", "bytes": len(body), "mtu": mtu}))
    return 0


def icmp6(vip, client, cport, vport, mtu, seq=None):
    tcp = struct.pack("!HHI", vport, cport, random.getrandbits(32) if seq is None else seq)
    quoted = ipv6_header(vip, client, 6, 1440) + tcp
    body = struct.pack("!BBHI", 2, 0, 0, mtu) + quoted  # the kernel fills in the checksum
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.sendto(body, (vip, 0))
    s.close()
    print(json.dumps({"sent": "icmpv6 packet-too-big", "bytes": len(body), "mtu": mtu}))
    return 0


def main(argv):
    if len(argv) >= 6 and argv[0] == "capture":
        return capture(argv[1], float(argv[2]), argv[3], argv[4].split(","), argv[5].split(","))
    if len(argv) >= 11 and argv[0] == "garbage":
        return garbage(argv[1], argv[2], argv[3], int(argv[4]), float(argv[5]), argv[6],
                       argv[7], argv[8], argv[9], int(argv[10]))
    if len(argv) >= 6 and argv[0] in ("icmp4", "icmp6"):
        fn = icmp4 if argv[0] == "icmp4" else icmp6
        return fn(argv[1], argv[2], int(argv[3]), int(argv[4]), int(argv[5]),
                  int(argv[6]) if len(argv) > 6 else None)
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
