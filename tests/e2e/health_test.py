#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Health checks end to end (issue "health"), in a namespace lab with a real xlbd:

  1. a backend's server dies -> it leaves the ring within fall x interval + 100 ms, and no new
     connection goes to it;
  2. the server comes back -> the backend returns after `rise` good checks;
  3. a flapping server (up/down every 300 ms) flaps the ring no faster than rise/fall allow.

Run as root: tests/e2e/health_test.py --build-dir build. Exit 77 = skipped (not root).
"""
import os
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
from xlbd_fixture import wait_for  # noqa: E402

INTERVAL_S, RISE, FALL = 0.1, 2, 3
VIP = "198.18.200.1:80/tcp"


class HealthXlbd(fx.Xlbd):
    """xlbd with an HTTP health check on the web VIP and one table for all CPUs."""

    def write_config(self, extra_vips=""):
        be = self.lab.backend_addresses
        backends = "\n".join(f"      - address: {b.v4}" for b in be)
        with open(self.config, "w") as f:
            f.write(f"""interface: {self.lab.lb_iface}
next_hop_mac: "{self.lab.router_mac_on_lb_link}"
encap_source_v4: 198.19.0.0/16
flow_table: shared
limits: {{max_vips: 4, max_backends: 16, flows_per_cpu: 65536}}
api: {{socket: {self.socket}}}
metrics: {{listen: "127.0.0.1:{fx.METRICS_PORT}"}}
vips:
  - vip: {VIP}
    health: {{type: http, interval: {int(INTERVAL_S * 1000)}ms, timeout: 50ms, rise: {RISE}, fall: {FALL}}}
    backends:
{backends}
""")


def backend_view(xlbd, address):
    for v in xlbd.get("/v1/vips"):
        if v["vip"] == VIP:
            for b in v["backends"]:
                if b["address"] == address:
                    return b
    raise AssertionError(f"{address} not in {VIP}")


def health_of(xlbd, address):
    for v in xlbd.get("/v1/health")["vips"]:
        if v["vip"] == VIP:
            for b in v["backends"]:
                if b["address"] == address:
                    return b
    raise AssertionError(f"{address} not in /v1/health")


class HealthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="xlb-health-e2e-")
        cls.lab = Lab(backends=3, ipv6=False, build_dir=fx.BUILD)
        cls.lab.up()
        cls.xlbd = HealthXlbd(cls.lab, cls.tmp.name)
        cls.xlbd.start()
        cls.victim = cls.lab.backend_addresses[1]  # be2
        # Every backend healthy and in the ring before the tests start.
        ok = wait_for(lambda: all(backend_view(cls.xlbd, b.v4)["slots"] > 0
                                  for b in cls.lab.backend_addresses), 10)
        assert ok is not None, "backends did not all come up"

    @classmethod
    def tearDownClass(cls):
        cls.xlbd.stop()
        cls.lab.down()
        cls.tmp.cleanup()

    def test_1_dead_backend_leaves_the_ring_within_budget(self):
        budget = FALL * INTERVAL_S + 0.1
        self.lab.stop_server(self.victim.name, "http")
        took = wait_for(lambda: backend_view(self.xlbd, self.victim.v4)["slots"] == 0,
                        budget + 2)
        self.assertIsNotNone(took, "the dead backend never left the ring")
        # stop_server returns once the process is gone; polling adds at most a few ms.
        self.assertLessEqual(took, budget, f"left the ring after {took:.3f}s, "
                             f"budget {budget:.3f}s = fall {FALL} x {INTERVAL_S}s + 100 ms")
        got = fx.client(self.lab, "http", "http://198.18.200.1/", 300)
        self.assertEqual(got["errors"], 0, got)
        self.assertNotIn(f"backend {self.victim.name}", got["backends"], got)
        self.assertEqual(health_of(self.xlbd, self.victim.v4)["health"], "down")

    def test_2_recovered_backend_returns_after_rise(self):
        self.lab.start_server(self.victim.name, "http")
        took = wait_for(lambda: backend_view(self.xlbd, self.victim.v4)["slots"] > 0,
                        RISE * INTERVAL_S + 2)
        self.assertIsNotNone(took, "the backend never came back")
        # rise good checks at fastinter (= interval here); not before the first of them.
        self.assertLessEqual(took, RISE * INTERVAL_S + INTERVAL_S + 0.1, took)
        got = fx.client(self.lab, "http", "http://198.18.200.1/", 300)
        self.assertEqual(got["errors"], 0, got)
        self.assertGreater(got["backends"].get(f"backend {self.victim.name}", 0), 50, got)

    def test_3_flapping_backend_does_not_flap_the_ring(self):
        before = health_of(self.xlbd, self.victim.v4)["transitions"]
        changes, last, seen_at = 0, True, []
        t_end = time.monotonic() + 3.0
        server_up = True
        next_flip = time.monotonic() + 0.3
        while time.monotonic() < t_end:
            if time.monotonic() >= next_flip:
                if server_up:
                    self.lab.stop_server(self.victim.name, "http")
                else:
                    self.lab.start_server(self.victim.name, "http")
                server_up = not server_up
                next_flip += 0.3
            in_ring = backend_view(self.xlbd, self.victim.v4)["slots"] > 0
            if in_ring != last:
                changes += 1
                seen_at.append(time.monotonic())
                last = in_ring
            time.sleep(0.01)
        if not server_up:
            self.lab.start_server(self.victim.name, "http")
        transitions = health_of(self.xlbd, self.victim.v4)["transitions"] - before
        # A change needs FALL failures (down) or RISE successes (up) in a row: at most one
        # change per min(RISE, FALL) intervals; 3 s of flapping allows at most this many.
        allowed = int(3.0 / (min(RISE, FALL) * INTERVAL_S)) + 1
        self.assertLessEqual(changes, allowed, changes)
        self.assertLessEqual(transitions, allowed, transitions)
        gaps = [round(b - a, 3) for a, b in zip(seen_at, seen_at[1:])]
        # For information only: the gaps between observed ring changes. They are coarse: this
        # loop blocks while a server restarts (start_server waits until it listens), so a change
        # made meanwhile is seen late and the next gap looks shorter than it was.
        print(f"flapping: {changes} ring changes, {transitions} transitions, gaps {gaps}")
        # And it settles back in the ring once the server stays up.
        self.assertIsNotNone(wait_for(
            lambda: backend_view(self.xlbd, self.victim.v4)["slots"] > 0, 3))


if __name__ == "__main__":
    fx.run_main(HealthTest, "health_test")
