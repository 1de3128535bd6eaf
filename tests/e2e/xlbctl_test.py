#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""xlbctl end to end, against a real xlbd in a namespace lab (3 backends, IPv4 and IPv6).

Every command runs with -j (the JSON parsed and checked) and at least once as a table. Traffic
checks: `lookup` names the backend that really served each of 80 connections made from known
source ports (50 IPv4, 30 IPv6), both before the connection (the ring) and after it (the
connection table); after `backend set --drain`, 30 established TCP connections keep working
without an error while new HTTP connections avoid the drained backend; `plan` changes nothing;
exit codes 1, 2, 3 for refused, usage and unreachable.

Run as root: tests/e2e/xlbctl_test.py --build-dir build. Exit 77 = skipped (not root).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, HERE)
from lab import Lab  # noqa: E402
import xlbd_fixture as fx  # noqa: E402
from xlbd_fixture import PYTHON, TRAFFIC, Xlbd, client  # noqa: E402

COMPLETION = os.path.join(REPO, "tools", "completion", "xlbctl.bash")
WEB4 = "198.18.200.1:80/tcp"  # from xlbd_fixture's config, like ECHO4 and WEB6
ECHO4 = "198.18.200.1:7/tcp"
WEB6 = "[2001:db8:200::1]:80/tcp"
ANY = "198.18.200.2/tcp"  # port-less, made by the tests: HTTP on 80 and echo on 7
CLEAR = "\x1b[H\x1b[2J"

# Runs in the client namespace: one HTTP request per source port, each from a socket bound to
# that port, so that xlbctl lookup can be asked about exactly that flow. Prints
# [[port, "backend beN" or "error: ..."], ...].
PORT_CLIENT = r"""
import json, socket, sys
src, vip, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
family = socket.AF_INET6 if ":" in src else socket.AF_INET
out = []
for port in range(first, first + count):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(3)
    try:
        s.bind((src, port))
        s.connect((vip, 80))
        s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        out.append([port, data.split(b"\r\n\r\n", 1)[1].decode().strip()])
    except (OSError, IndexError) as e:
        out.append([port, "error: %s" % e])
    finally:
        s.close()
print(json.dumps(out))
"""


class SharedTableXlbd(Xlbd):
    """xlbd with one connection table for all CPUs (flow_table: shared).

    With the default per-CPU tables a flow is remembered only on the CPUs that have seen it.
    On a NIC, RSS keeps a flow on one CPU; on the lab's veths a flow's packets are processed on
    whichever CPU sent them, which changes as threads migrate. A packet of an established flow
    seen first on another CPU after a ring change (the drain) would be placed by the new ring
    and reset: true of the lab, not of xlbctl, so the drain test takes it out."""

    def write_config(self, extra_vips=""):
        super().write_config(extra_vips)
        with open(self.config, "a") as f:
            f.write("flow_table: shared\n")


class XlbctlTest(unittest.TestCase):
    lab = None
    xlbd = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="xlbctl-e2e-")
        cls.xlbctl = os.path.join(fx.BUILD, "bin", "xlbctl")
        cls.lab = Lab(backends=3, ipv6=True, build_dir=fx.BUILD)
        cls.lab.up()
        try:
            cls.xlbd = SharedTableXlbd(cls.lab, cls.tmp.name)
            cls.xlbd.start()
        except BaseException:
            cls.lab.down()
            raise
        be = cls.lab.backend_addresses
        cls.v4 = {f"backend {b.name}": b.v4 for b in be}
        cls.v6 = {f"backend {b.name}": b.v6 for b in be}

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.xlbd:
                cls.xlbd.stop()
        finally:
            if cls.lab:
                cls.lab.down()
            cls.tmp.cleanup()

    # ---- helpers --------------------------------------------------------------------------

    def run_ctl(self, *args, socket=None, timeout=60):
        argv = [self.xlbctl, "--socket", socket or self.xlbd.socket, *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def ctl(self, *args, expect=0):
        """Runs xlbctl -j ARGS, checks the exit status, returns the parsed JSON."""
        res = self.run_ctl("-j", *args)
        self.assertEqual(res.returncode, expect, f"xlbctl -j {args}: {res.stderr}")
        return json.loads(res.stdout)

    def table(self, *args, expect=0):
        """Runs xlbctl ARGS (table output), checks the exit status, returns stdout."""
        res = self.run_ctl(*args)
        self.assertEqual(res.returncode, expect, f"xlbctl {args}: {res.stderr}")
        self.assertEqual(res.stderr, "")
        return res.stdout

    def fails(self, expect, *args, socket=None):
        """Runs xlbctl ARGS expecting exit status `expect`; returns stderr."""
        res = self.run_ctl(*args, socket=socket)
        self.assertEqual(res.returncode, expect, f"xlbctl {args}: {res.stdout} {res.stderr}")
        self.assertEqual(res.stdout, "")
        return res.stderr

    def backend(self, vip, address):
        return next(b for b in self.ctl("backend", "list", vip) if b["address"] == address)

    def vip_packets(self, vip, address):
        stats = self.ctl("stats", vip, "--interval", "0")
        return next(b["packets"] for b in stats["vips"][0]["backends"] if b["address"] == address)

    def port_client(self, src, vip_address, first, count):
        res = self.lab.run("cli", [PYTHON, "-c", PORT_CLIENT, src, vip_address, first, count],
                           timeout=120)
        return json.loads(res.stdout)

    def ensure_any_vip(self):
        """The port-less VIP with the three backends (test_03 creates it without any)."""
        vips = {v["vip"]: v for v in self.ctl("vip", "list")}
        if ANY not in vips:
            self.ctl("vip", "add", ANY, "--name", "any")
        have = {b["address"] for b in vips.get(ANY, {}).get("backends", [])}
        for b in self.lab.backend_addresses:
            if b.v4 not in have:
                self.ctl("backend", "add", ANY, b.v4)

    # ---- the commands ---------------------------------------------------------------------

    def test_01_status(self):
        s = self.ctl("status")
        self.assertEqual(s["interface"], self.lab.lb_iface)
        self.assertEqual(s["attach_mode"], "native")
        self.assertGreater(s["prog_id"], 0)
        self.assertEqual(s["version"], s["xlbctl_version"])
        self.assertEqual(s["api"], "unix:" + self.xlbd.socket)
        self.assertEqual(s["reconcile_errors"], 0)
        out = self.table("status")
        self.assertIn(f"interface   {self.lab.lb_iface}\n", out)
        self.assertIn(f"attach      native, bpf_link, program {s['prog_id']}\n", out)

    def test_02_vip_list_and_show(self):
        vips = self.ctl("vip", "list")
        self.assertEqual([v["vip"] for v in vips], [ECHO4, WEB4, WEB6])
        self.assertEqual([v["name"] for v in vips], ["echo4", "web4", "web6"])
        for v in vips:
            self.assertEqual(len(v["backends"]), 3)
            self.assertEqual(sum(b["slots"] for b in v["backends"]), v["ring_size"])
            for key in ("hash", "no_lru", "gue", "ring_size_requested", "index", "packets",
                        "bytes"):
                self.assertIn(key, v)
        out = self.table("vip", "list")
        self.assertRegex(out, r"^VIP +NAME +HASH +FLAGS +RING +BACKENDS +ACTIVE +PACKETS +BYTES\n")
        self.assertRegex(out, r"\n198\.18\.200\.1:80/tcp +web4 +5tuple +- +\d+ +3 +3 ")
        one = self.ctl("vip", "show", WEB6)
        self.assertEqual(one["name"], "web6")
        self.assertEqual(sorted(b["address"] for b in one["backends"]), sorted(self.v6.values()))
        out = self.table("vip", "show", WEB6)
        self.assertIn("name       web6\n", out)
        self.assertIn("2001:db8:3::12", out)

    def test_03_vip_add_del(self):
        made = self.ctl("vip", "add", "198.18.200.2:443/udp", "--name", "u", "--ring-size", "1009",
                        "--no-lru", "--hash", "src", "--gue")
        self.assertEqual(made["vip"], "198.18.200.2:443/udp")
        self.assertEqual(made["name"], "u")
        self.assertEqual(made["ring_size_requested"], 1009)
        self.assertTrue(made["no_lru"])
        self.assertTrue(made["gue"])
        self.assertEqual(made["hash"], "src")
        self.assertEqual(made["backends"], [])
        v6 = self.ctl("vip", "add", "[2001:db8:200::1]:443/udp")
        self.assertEqual(v6["vip"], "[2001:db8:200::1]:443/udp")
        self.assertEqual(v6["hash"], "5tuple")
        added = self.ctl("backend", "add", "[2001:db8:200::1]:443/udp", "2001:db8:3::11")
        self.assertEqual(added["address"], "2001:db8:3::11")
        out = self.table("vip", "add", ANY, "--name", "any")
        self.assertIn(f"added VIP {ANY}\n", out)
        self.assertIn("name       any\n", out)
        self.assertIn("no backends\n", out)
        listed = [v["vip"] for v in self.ctl("vip", "list")]
        for vip in ("198.18.200.2:443/udp", "[2001:db8:200::1]:443/udp", ANY):
            self.assertIn(vip, listed)

        self.assertEqual(self.ctl("vip", "del", "198.18.200.2:443/udp"),
                         {"deleted": "198.18.200.2:443/udp"})
        self.assertEqual(self.table("vip", "del", "[2001:db8:200::1]:443/udp"),
                         "deleted VIP [2001:db8:200::1]:443/udp\n")
        listed = [v["vip"] for v in self.ctl("vip", "list")]
        self.assertEqual(listed, [ECHO4, WEB4, ANY, WEB6])

    def test_04_backends(self):
        self.ensure_any_vip()
        be = self.lab.backend_addresses
        # Weights and a deletion on a backend that takes no traffic.
        b = self.ctl("backend", "add", ANY, "198.18.3.99", "--weight", "3")
        self.assertEqual((b["address"], b["weight"], b["state"]), ("198.18.3.99", 3, "active"))
        self.assertEqual(self.backend(ANY, "198.18.3.99")["effective_weight"], 3)
        b = self.ctl("backend", "set", ANY, "198.18.3.99", "--weight", "2")
        self.assertEqual(b["weight"], 2)
        out = self.table("backend", "set", ANY, "198.18.3.99", "--disable")
        self.assertRegex(out, r"198\.18\.3\.99 +2 +disabled +0 +0 ")
        self.assertEqual(self.ctl("backend", "del", ANY, "198.18.3.99"),
                         {"vip": ANY, "deleted": "198.18.3.99"})
        out = self.table("backend", "add", ANY, "198.18.3.98")
        self.assertIn(f"VIP {ANY}: added backend 198.18.3.98\n", out)
        self.assertEqual(self.table("backend", "del", ANY, "198.18.3.98"),
                         f"VIP {ANY}: deleted backend 198.18.3.98\n")

        listed = self.ctl("backend", "list", ANY)
        self.assertEqual([b["address"] for b in listed], [b.v4 for b in be])
        self.assertTrue(all(b["state"] == "active" and b["weight"] == 1 for b in listed))
        ring = self.ctl("vip", "show", ANY)["ring_size"]
        self.assertEqual(sum(b["slots"] for b in listed), ring)
        out = self.table("backend", "list", ANY)
        self.assertRegex(out, r"^ADDRESS +WEIGHT +STATE +EFFECTIVE +SLOTS +RING SHARE +PACKETS +BYTES\n")
        self.assertEqual(len(out.splitlines()), 4)
        self.assertIn("33.3%", out)

    def test_05_health(self):
        self.ensure_any_vip()
        h = self.ctl("health")
        self.assertEqual([v["vip"] for v in h["vips"]], [ECHO4, WEB4, ANY, WEB6])
        one = self.ctl("health", WEB4)
        self.assertEqual(len(one["vips"]), 1)
        self.assertEqual(one["vips"][0]["check"], "none")  # the fixture configures no checks
        for b in one["vips"][0]["backends"]:
            self.assertEqual((b["state"], b["health"], b["effective_weight"]),
                             ("active", "unchecked", 1))
            for key in ("last_result", "since", "rise_progress", "rise", "fall_progress",
                        "fall"):
                self.assertIn(key, b)
        self.assertEqual({b["address"] for b in one["vips"][0]["backends"]},
                         set(self.v4.values()))
        out = self.table("health", WEB6)
        self.assertRegex(out, r"^VIP \[2001:db8:200::1\]:80/tcp \(web6\): check none, all down: ")
        self.assertRegex(out, r"\n  BACKEND +STATE +HEALTH +WEIGHT +EFFECTIVE +RISE +FALL +CHECKS "
                              r"+FAILED +SINCE +LAST RESULT\n")
        self.assertRegex(out, r"\n  2001:db8:3::11 +active +unchecked +1 +1 ")
        self.assertIn("no VIP 198.18.200.9:80/tcp", self.fails(1, "health", "198.18.200.9:80/tcp"))

    def test_06_plan_changes_nothing(self):
        be = self.lab.backend_addresses

        def snapshot():
            return [{k: v[k] for k in ("vip", "ring_size", "index")} |
                    {"backends": [{k: b[k] for k in ("address", "weight", "state", "slots",
                                                      "index")} for b in v["backends"]]}
                    for v in self.ctl("vip", "list")]

        before = snapshot()
        p = self.ctl("plan", WEB4, "--remove", be[1].v4)
        self.assertEqual(p["vip"], WEB4)
        self.assertGreater(p["moved_fraction"], 0.25)
        self.assertLess(p["moved_fraction"], 0.42)
        self.assertAlmostEqual(p["moved_fraction"], p["slots_changed"] / p["ring_size"], places=6)
        gone = next(b for b in p["backends"] if b["address"] == be[1].v4)
        self.assertEqual(gone["slots_after"], 0)
        self.assertEqual(gone["slots_lost"], gone["slots_before"])
        p = self.ctl("plan", WEB4, "--add", "198.18.3.14", "--weight", "2")
        new = next(b for b in p["backends"] if b["address"] == "198.18.3.14")
        self.assertEqual(new["slots_before"], 0)
        self.assertAlmostEqual(new["slots_after"] / p["ring_size"], 0.4, delta=0.05)
        p = self.ctl("plan", WEB4, "--set", be[2].v4, "--weight", "3")
        self.assertGreater(next(b for b in p["backends"] if b["address"] == be[2].v4)
                           ["slots_gained"], 0)
        p = self.ctl("plan", WEB6, "--set", be[0].v6, "--drain")
        self.assertEqual(next(b for b in p["backends"] if b["address"] == be[0].v6)
                         ["slots_after"], 0)
        out = self.table("plan", WEB4, "--remove", be[0].v4)
        self.assertRegex(out, r"^plan for VIP 198\.18\.200\.1:80/tcp, ring of \d+ slots "
                              r"\(nothing was changed\)\nBACKEND +SLOTS NOW +SLOTS AFTER +GAINED +LOST\n")
        self.assertRegex(out, r"\n\d+\.\d\d% of new flows would move to another backend")
        self.assertIn("has no backend 198.18.3.77",
                      self.fails(1, "plan", WEB4, "--remove", "198.18.3.77"))
        self.assertEqual(snapshot(), before)

    def check_lookups(self, vip, src, vip_address, first, count, addresses):
        """Asks lookup about `count` flows from src:first.., makes them, asks again; the
        backend named must be the one that answered, every time."""
        before = {}
        for port in range(first, first + count):
            ep = f"[{src}]:{port}" if ":" in src else f"{src}:{port}"
            before[port] = self.ctl("lookup", vip, "--from", ep)
            self.assertFalse(before[port]["from_table"])  # a flow nobody made yet
        served = self.port_client(src, vip_address, first, count)
        self.assertEqual(len(served), count)
        used = set()
        for port, answer in served:
            self.assertIn(answer, addresses, f"source port {port}: {answer}")
            actual = addresses[answer]
            used.add(actual)
            ep = f"[{src}]:{port}" if ":" in src else f"{src}:{port}"
            after = self.ctl("lookup", vip, "--from", ep)
            self.assertEqual(before[port]["backend"], actual, f"ring lookup of {ep}")
            self.assertEqual(after["backend"], actual, f"lookup of {ep} after the connection")
            self.assertEqual(after["from"], ep)
            self.assertEqual(after["vip"], vip)
        self.assertEqual(len(used), 3, "80 flows over 3 backends should reach all of them")

    def test_07_lookup_matches_real_connections(self):
        self.check_lookups(WEB4, self.lab.client_v4, "198.18.200.1", 20000, 50, self.v4)
        self.check_lookups(WEB6, self.lab.client_v6, "2001:db8:200::1", 20100, 30, self.v6)
        # A port-less VIP: asked with the flow's destination port, as the data plane hashes it.
        self.ensure_any_vip()
        self.check_lookups("198.18.200.2:80/tcp", self.lab.client_v4, "198.18.200.2", 20200, 30,
                           self.v4)
        self.assertIn("ask with the destination port",
                      self.fails(1, "lookup", ANY, "--from", f"{self.lab.client_v4}:20200"))
        out = self.table("lookup", WEB4, "--from", f"{self.lab.client_v4}:20000")
        self.assertRegex(out, r"backend     198\.18\.3\.1[123]\n")
        self.assertIn("decided by  the ", out)

    def test_08_stats(self):
        got = client(self.lab, "http", "http://198.18.200.1/", 30)
        self.assertEqual(got["errors"], 0)
        s = self.ctl("stats", "--interval", "0")
        self.assertIsNone(s["interval_seconds"])
        self.assertIn("xdp_tx", s["counters"])
        web = next(v for v in s["vips"] if v["vip"] == WEB4)
        self.assertGreater(web["packets"], 0)
        # A VIP's packets include the ones it dropped, so the backends' add up to at most that.
        self.assertLessEqual(sum(b["packets"] for b in web["backends"]), web["packets"])
        self.assertLessEqual(sum(b["share"] for b in web["backends"]), 1.0 + 1e-9)
        for b in web["backends"]:
            self.assertIsNone(b["packets_per_second"])

        one = self.ctl("stats", WEB4, "--interval", "300ms")
        self.assertEqual([v["vip"] for v in one["vips"]], [WEB4])
        self.assertGreater(one["interval_seconds"], 0.25)
        for b in one["vips"][0]["backends"]:
            for key in ("packets", "bytes", "share", "packets_per_second", "bytes_per_second",
                        "rate_share"):
                self.assertIn(key, b)
            self.assertIsInstance(b["packets_per_second"], float)
        out = self.table("stats", WEB4, "--interval", "0")
        self.assertRegex(out, r"^VIP 198\.18\.200\.1:80/tcp \(web4\): \d+ packets")
        # Without a second sample there are no rates, hence no rate bars.
        self.assertRegex(out, r"\n  BACKEND +PACKETS +BYTES +SHARE +PPS +BIT/S\n  198\.18\.3\.11 +\d+ ")

        # --watch while echo traffic flows: rates and bars from successive samples.
        stopfile = os.path.join(self.tmp.name, "stop-watch")
        traffic = self.lab.popen("cli", [PYTHON, TRAFFIC, "steady", "198.18.200.1", 7, 6, 15,
                                         stopfile], stdout=subprocess.PIPE)
        try:
            time.sleep(1)
            res = self.run_ctl("-j", "stats", ECHO4, "--watch", "--count", "3", "--interval",
                               "400ms")
            self.assertEqual(res.returncode, 0, res.stderr)
            docs = [json.loads(line) for line in res.stdout.splitlines()]
            self.assertEqual(len(docs), 3)
            for d in docs:
                vip = d["vips"][0]
                self.assertGreater(vip["packets_per_second"], 0)
                shares = [b["rate_share"] for b in vip["backends"] if b["rate_share"]]
                self.assertTrue(shares)
            out = self.table("stats", ECHO4, "--watch", "--count", "2", "--interval", "400ms")
            self.assertEqual(out.count(CLEAR), 2)
            self.assertTrue(out.startswith(CLEAR))
            self.assertIn("sample 2 of 2, every 400ms", out)
            self.assertRegex(out, r"#+\.*\n")
        finally:
            open(stopfile, "w").close()
            stats = json.loads(traffic.communicate(timeout=30)[0])
        self.assertEqual(stats["errors"], 0, stats)

    def test_09_drain_keeps_connections_and_avoids_new_ones(self):
        self.ensure_any_vip()
        be1 = self.lab.backend_addresses[0]
        stopfile = os.path.join(self.tmp.name, "stop-drain")
        traffic = self.lab.popen("cli", [PYTHON, TRAFFIC, "steady", "198.18.200.2", 7, 30, 25,
                                         stopfile], stdout=subprocess.PIPE)
        try:
            time.sleep(2)
            before = self.vip_packets(ANY, be1.v4)
            self.assertGreater(before, 0, "no steady connection landed on be1")
            b = self.ctl("backend", "set", ANY, be1.v4, "--drain")
            self.assertEqual((b["state"], b["effective_weight"], b["slots"]), ("draining", 0, 0))
            got = client(self.lab, "http", "http://198.18.200.2/", 60)
            self.assertEqual(got["errors"], 0, got)
            self.assertNotIn("backend be1", got["backends"], got)
            self.assertEqual(set(got["backends"]), {"backend be2", "backend be3"}, got)
            time.sleep(1)
            # The established connections on be1 still go there.
            self.assertGreater(self.vip_packets(ANY, be1.v4), before)
            self.assertEqual(self.ctl("health", ANY)["vips"][0]["backends"][0]["state"],
                             "draining")
        finally:
            open(stopfile, "w").close()
            stats = json.loads(traffic.communicate(timeout=40)[0])
        self.assertEqual(stats["connections"], 30, stats)
        self.assertEqual(stats["errors"], 0, stats)
        self.assertGreater(stats["messages"], 30 * 20, stats)
        out = self.table("backend", "set", ANY, be1.v4, "--undrain")
        self.assertRegex(out, rf"{be1.v4} +1 +active +1 +\d+")
        got = client(self.lab, "http", "http://198.18.200.2/", 60)
        self.assertIn("backend be1", got["backends"], got)

    def test_10_errors_and_exit_codes(self):
        missing = os.path.join(self.tmp.name, "nothing-here.sock")
        err = self.fails(3, "status", socket=missing)
        self.assertIn("cannot reach xlbd", err)
        self.assertIn("hint: is xlbd running? is --socket right? are you root?", err)
        self.fails(3, "-j", "vip", "list", socket=missing)
        token = os.path.join(self.tmp.name, "token")
        with open(token, "w") as f:
            f.write("0123456789abcdef0123\n")
        # The TCP listener is off: nothing answers on the client namespace's own loopback.
        res = self.lab.run("cli", [self.xlbctl, "--tcp", "127.0.0.1:9476", "--token-file", token,
                                   "status"], check=False)
        self.assertEqual(res.returncode, 3, res.stderr)
        self.assertIn("does xlbd listen on TCP", res.stderr)
        self.assertIn("VIP '198.18.200.1:80': the protocol is missing",
                      self.fails(2, "vip", "add", "198.18.200.1:80"))
        self.assertIn("a backend has no port", self.fails(2, "backend", "add", WEB4,
                                                          "198.18.3.11:80"))
        self.fails(2, "lookup", WEB4, "--from", "[2001:db8:1::2]:4000")
        self.fails(2, "frobnicate")
        self.fails(2, "--tcp", "127.0.0.1:9", "status")  # no --token-file
        err = self.fails(1, "backend", "del", WEB4, "198.18.3.77")
        self.assertIn("refused by xlbd (HTTP 404 Not Found): VIP 198.18.200.1:80/tcp has no "
                      "backend 198.18.3.77", err)
        self.assertIn("exists already", self.fails(1, "vip", "add", WEB4))
        self.assertIn("no VIP 198.18.200.9:80/tcp",
                      self.fails(1, "backend", "list", "198.18.200.9:80/tcp"))
        self.assertIn("is not prime",
                      self.fails(1, "vip", "add", "198.18.200.2:9/udp", "--ring-size", "1000"))

    def test_11_help_and_completion(self):
        out = self.table("help")
        for name in ("status", "vip list", "vip add", "backend set", "stats", "plan", "lookup"):
            self.assertIn(f"\n  {name}", out)
        self.assertIn("usage: xlbctl backend set VIP ADDRESS", self.table("backend", "set", "-h"))
        self.ensure_any_vip()
        script = (f"source {COMPLETION}\n"
                  "COMP_LINE=\"xlbctl --socket $1 vip show \"; COMP_POINT=${#COMP_LINE}\n"
                  "COMP_WORDS=(xlbctl --socket \"$1\" vip show ''); COMP_CWORD=5\n"
                  "_xlbctl; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
        env = dict(os.environ, PATH=os.path.dirname(self.xlbctl) + ":" + os.environ["PATH"])
        res = subprocess.run(["bash", "-c", script, "bash", self.xlbd.socket], env=env,
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.split(), [ECHO4, WEB4, ANY, WEB6])


if __name__ == "__main__":
    fx.run_main(XlbctlTest, "xlbctl_test")
