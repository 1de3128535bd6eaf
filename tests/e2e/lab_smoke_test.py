#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Smoke test of the namespace lab (tools/lab), without xlbd.

Brings a 2-backend dual-stack lab up under a unique name and checks that every namespace,
link, MTU, route, sysctl, XDP attachment, pin and server is there: the client reaches each
backend over HTTP, TCP and UDP through the router, and a tunnel packet (IPIP, IP6IP6) sent from
the router to a backend is decapsulated by xlb_decap and answered by the backend straight to
the client (the DSR return path). Then tears the lab down and checks that nothing of it is
left: namespaces, links, pins, processes, state and logs.

    lab_smoke_test.py [--build-dir DIR]        (root; exit 77 = skipped)

Prints one line per check and a final "N passed, M failed".
Helper modes (run inside lab namespaces by the test itself):
    lab_smoke_test.py send-tunnel FAMILY OUTER_DST INNER_SRC INNER_DST SPORT PAYLOAD
    lab_smoke_test.py udp-listen ADDR PORT TIMEOUT
"""
import argparse
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawpkt  # noqa: E402  (tests/e2e/rawpkt.py: checksums)

DEADLINE_S = 240  # ctest's timeout is 300: leave time to clean up


# ---- helper modes -------------------------------------------------------------------------

def _inner_udp(family, src, dst, sport, dport, payload):
    """An IPv4 or IPv6 header plus UDP, as a client would send it to a VIP."""
    udp_len = 8 + len(payload)
    if family == 4:
        udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload  # checksum optional
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64,
                          socket.IPPROTO_UDP, 0, socket.inet_aton(src), socket.inet_aton(dst))
        return hdr[:10] + struct.pack("!H", rawpkt.csum(hdr)) + hdr[12:] + udp
    s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    pseudo = s6 + d6 + struct.pack("!I3xB", udp_len, socket.IPPROTO_UDP)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    c = rawpkt.csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    hdr = struct.pack("!IHBB", 6 << 28, udp_len, socket.IPPROTO_UDP, 64) + s6 + d6
    return hdr + udp


def helper_send_tunnel(family, outer_dst, inner_src, inner_dst, sport, payload):
    """Sends inner UDP (to port 7) tunnelled in IPv4 (IPIP) or IPv6 (IP6IP6) to outer_dst."""
    family = int(family)
    pkt = _inner_udp(family, inner_src, inner_dst, int(sport), 7, payload.encode())
    if family == 4:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IPIP)
    else:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_IPV6)
    s.sendto(pkt, (outer_dst, 0))
    return 0


def helper_udp_listen(addr, port, timeout):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    s.settimeout(float(timeout))
    print("bound", flush=True)
    try:
        data, peer = s.recvfrom(2048)
        print(f"got {data.decode(errors='replace').strip()} from {peer[0]}", flush=True)
    except socket.timeout:
        print("timeout", flush=True)
    return 0


# ---- checks -------------------------------------------------------------------------------

class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}{': ' + str(detail) if detail else ''}", flush=True)
        return ok


def links_of(lab, role):
    res = lab.run(role, ["ip", "-j", "-d", "link", "show"])
    return {l["ifname"]: l for l in json.loads(res.stdout)}


def check_topology(lab, c):
    for role in lab.roles:
        c.check(f"namespace {lab.ns(role)} exists", os.path.exists(f"/run/netns/{lab.ns(role)}"))
    expect = {  # role -> {iface: (mtu, master, xdp program)}
        "cli": {lab.client_iface: (1500, None, None)},
        "rtr": {lab.iface("rtr-cli"): (1500, None, None),
                lab.router_lb_iface: (1600, None, "xlb_pass"),
                lab.iface("bridge"): (1600, None, None)},
        "lb": {lab.lb_iface: (1600, None, None)},
    }
    for b in lab.backend_addresses:
        expect["rtr"][lab.iface(f"rtr-{b.name}")] = (1600, lab.iface("bridge"), None)
        expect[b.name] = {b.iface: (1600, None, "xlb_decap")}
    for role, ifaces in expect.items():
        links = links_of(lab, role)
        for name, (mtu, master, prog) in ifaces.items():
            link = links.get(name)
            if not c.check(f"{role}: link {name} exists", link is not None, sorted(links)):
                continue
            c.check(f"{role}: {name} is up", "UP" in link.get("flags", []), link.get("flags"))
            c.check(f"{role}: {name} mtu {mtu}", link.get("mtu") == mtu, link.get("mtu"))
            if master:
                c.check(f"{role}: {name} in bridge {master}", link.get("master") == master,
                        link.get("master"))
            xdp = ((link.get("xdp") or {}).get("prog") or {}).get("name")
            c.check(f"{role}: {name} xdp {prog or 'none'}", xdp == prog, xdp)
    c.check("lb_iface is the LB's veth", lab.lb_iface in links_of(lab, "lb"))
    rlb = links_of(lab, "rtr")[lab.router_lb_iface]
    c.check("router_mac_on_lb_link is the router's veth MAC",
            lab.router_mac_on_lb_link == rlb.get("address"), rlb.get("address"))

    out = lab.run("cli", ["ethtool", "-k", lab.client_iface]).stdout
    c.check("client veth tx checksum offload off", "tx-checksumming: off" in out,
            [l for l in out.splitlines() if "tx-checksumming" in l])

    def sysctl(role, key):
        return lab.run(role, ["sysctl", "-n", key]).stdout.strip()
    c.check("rtr ip_forward=1", sysctl("rtr", "net.ipv4.ip_forward") == "1")
    c.check("rtr ipv6 forwarding=1", sysctl("rtr", "net.ipv6.conf.all.forwarding") == "1")
    for role in lab.roles:
        c.check(f"{role} rp_filter 0", sysctl(role, "net.ipv4.conf.all.rp_filter") == "0")
        c.check(f"{role} accept_dad 0", sysctl(role, "net.ipv6.conf.default.accept_dad") == "0")

    routes4 = lab.run("rtr", ["ip", "-4", "route", "show"]).stdout
    routes6 = lab.run("rtr", ["ip", "-6", "route", "show"]).stdout
    for prefix, via, table in ((lab.vip_prefix_v4, lab.lb_v4, routes4),
                               (lab.encap_prefix_v4, lab.lb_v4, routes4),
                               (lab.vip_prefix_v6, lab.lb_v6, routes6),
                               (lab.encap_prefix_v6, lab.lb_v6, routes6)):
        c.check(f"rtr routes {prefix} via {via}", f"{prefix} via {via} " in table, table)
    for role, gw in (("cli", "198.18.1.1"), ("lb", "198.18.2.1"), ("be1", "198.18.3.1")):
        r = lab.run(role, ["ip", "route", "show", "default"]).stdout
        c.check(f"{role} default via {gw}", f"via {gw} " in r, r)

    for b in lab.backend_addresses:
        addrs = lab.run(b.name, ["ip", "-o", "addr", "show", "dev", "lo"]).stdout
        for vip in lab.vips:
            c.check(f"{b.name}: VIP {vip} on lo", f" {vip}/" in addrs)
        pins = sorted(os.listdir(b.pin_dir)) if os.path.isdir(b.pin_dir) else []
        c.check(f"{b.name}: decap pins", pins == ["decap_config", "decap_counters", "link"], pins)
        stats = lab.decap_stats(b)
        c.check(f"{b.name}: decap counters readable", "ipip" in stats and "pass" in stats, stats)
    rtr_pins = os.path.join(lab.pin_root, "rtr")
    c.check("rtr: pass link pinned", os.path.exists(os.path.join(rtr_pins, "link")))


def check_servers(lab, c):
    for p in lab.server_processes():
        c.check(f"server {p['kind']} of {p['role']} (pid {p['pid']}) runs",
                os.path.exists(f"/proc/{p['pid']}"))
    c.check("3 servers per backend", len(lab.server_processes()) == 3 * lab.n_backends)
    for b in lab.backend_addresses:
        before = lab.decap_stats(b)["pass"]
        for addr in (b.v4, f"[{b.v6}]"):
            r = lab.run("cli", ["curl", "-sS", "-m", "5", f"http://{addr}/"], check=False)
            c.check(f"client -> {b.name} http {addr}", r.stdout == f"backend {b.name}\n",
                    r.stdout + r.stderr)
        r = lab.run("cli", ["curl", "-sS", "-m", "10", "-o", "/dev/null", "-w",
                            "%{size_download}", f"http://{b.v4}/size/1000000"], check=False)
        c.check(f"client -> {b.name} 1 MB download", r.stdout == "1000000", r.stdout + r.stderr)
        code = ("import socket,sys\n"
                "a=sys.argv[1]; f=socket.AF_INET6 if ':' in a else socket.AF_INET\n"
                "t=socket.create_connection((a,7),timeout=3); t.sendall(b'ping'); "
                "print(t.recv(10).decode())\n"
                "u=socket.socket(f,socket.SOCK_DGRAM); u.settimeout(3); "
                "u.sendto(b'whoami',(a,7)); print(u.recv(100).decode().strip())\n")
        for addr in (b.v4, b.v6):
            r = lab.run("cli", [sys.executable, "-c", code, addr], check=False, timeout=15)
            c.check(f"client -> {b.name} tcp+udp echo {addr}",
                    r.stdout == f"ping\nbackend {b.name}\n", r.stdout + r.stderr)
        c.check(f"{b.name}: decap program sees the traffic (pass counter grew)",
                lab.decap_stats(b)["pass"] > before)


def check_tunnel(lab, c, b, family):
    """A tunnel packet from the router to backend b: decapsulated, answered to the client."""
    name = "ipip" if family == 4 else "ip6ip6"
    client = lab.client_v4 if family == 4 else lab.client_v6
    vip = next(v for v in lab.vips if (":" in v) == (family == 6))
    outer = b.v4 if family == 4 else b.v6
    before = lab.decap_stats(b)[name]
    port = 40000 + family
    listener = lab.popen("cli", [sys.executable, __file__, "udp-listen", client, port, "5"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    got = ""
    try:
        first = listener.stdout.readline().strip()
        if c.check(f"{name}: client listener bound", first == "bound", first):
            lab.run("rtr", [sys.executable, __file__, "send-tunnel", family, outer, client, vip,
                            port, "whoami"])
            got = listener.stdout.readline().strip()
    finally:
        try:
            listener.wait(timeout=10)
        except subprocess.TimeoutExpired:
            listener.kill()
            listener.wait()
        listener.stdout.close()
    c.check(f"{name} to {b.name}: DSR answer from VIP {vip} reaches the client",
            got == f"got backend {b.name} from {vip}", got)
    c.check(f"{name} to {b.name}: decap counter {name} grew", lab.decap_stats(b)[name] > before)


def check_gone(recorded, name, c):
    st = recorded
    for ns in st["namespaces"]:
        c.check(f"after down: namespace {ns} gone", not os.path.exists(f"/run/netns/{ns}"))
    c.check("after down: pin root gone", not os.path.exists(st["pin_root"]))
    c.check("after down: state file gone", not os.path.exists(f"/run/xlb-lab/{name}.json"))
    c.check("after down: log dir gone", not os.path.exists(st["log_dir"]))
    for p in st["processes"]:
        alive = False
        try:
            with open(f"/proc/{p['pid']}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            alive = fields[0] != "Z" and int(fields[19]) == p["start"]
        except OSError:
            pass
        c.check(f"after down: pid {p['pid']} ({p.get('kind') or p['argv'][3]}) gone", not alive)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    c.check("after down: no link of the lab in the host namespace", f"{name}-" not in links)
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    c.check("after down: no namespace of the lab", f"{name}-" not in left, left)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "send-tunnel":
        return helper_send_tunnel(*sys.argv[2:8])
    if len(sys.argv) > 1 and sys.argv[1] == "udp-listen":
        return helper_udp_listen(*sys.argv[2:5])
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root (namespaces, XDP)\n0 passed, 0 failed")
        return 77

    from lab import Lab, LabError, arm_deadline

    arm_deadline(DEADLINE_S, "lab smoke test")

    c = Checks()
    name = "e2e" + secrets.token_hex(2)
    lab = Lab(name=name, backends=2, ipv6=True, build_dir=args.build_dir, keep_logs=True)
    recorded = None
    t0 = time.monotonic()
    try:
        lab.up()
        recorded = json.loads(json.dumps(lab.state))
        c.check(f"lab {name} up in {time.monotonic() - t0:.1f}s", True)
        try:
            Lab(name=name, backends=2, build_dir=args.build_dir).up()
            c.check("second up of the same name refused", False, "it succeeded")
        except LabError as e:
            c.check("second up of the same name refused", "already up" in str(e), e)
        check_topology(lab, c)
        check_servers(lab, c)
        for b in lab.backend_addresses:
            check_tunnel(lab, c, b, 4)
            check_tunnel(lab, c, b, 6)
        # A test-started process is tracked and ended by down().
        lab.popen("cli", ["sleep", "300"])
        recorded = json.loads(json.dumps(lab.state))
    except BaseException as e:  # noqa: B902 -- report, then always clean up
        c.check("no unexpected error", False, "".join(traceback.format_exception(e)))
    finally:
        if c.failed and os.path.isdir(lab.log_dir):
            for f in sorted(os.listdir(lab.log_dir)):
                with open(os.path.join(lab.log_dir, f), errors="replace") as fh:
                    print(f"--- {f} (tail)\n" + "".join(fh.readlines()[-15:]))
        lab.keep_logs = False
        try:
            lab.down()
            c.check("down", True)
        except Exception as e:  # noqa: BLE001
            c.check("down", False, e)
    signal.alarm(0)
    if recorded:
        check_gone(recorded, name, c)
        try:
            Lab(name=name, build_dir=args.build_dir).down()
            c.check("down of a missing lab is a no-op", True)
        except Exception as e:  # noqa: BLE001
            c.check("down of a missing lab is a no-op", False, e)
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
