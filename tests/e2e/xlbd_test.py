#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""xlbd end to end, in a namespace lab (tools/lab): the daemon attaches to the LB's veth,
client traffic reaches the backends (DSR), shows in /metrics and in a real Prometheus; xlbd
restarts and upgrades its program under steady TCP traffic without resetting a connection;
SIGHUP reloads the configuration; --detach-on-exit removes everything.

Run as root: tests/e2e/xlbd_test.py --build-dir build. Exit 77 = skipped (not root).
"""
import json
import os
import signal
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
from xlbd_fixture import PYTHON, TRAFFIC, METRICS_PORT, Xlbd, client  # noqa: E402

PROMETHEUS_PORT = 9490


class XlbdTest(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="xlbd-e2e-")
        cls.lab = Lab(backends=2, ipv6=True, build_dir=fx.BUILD)
        cls.lab.up()

    @classmethod
    def tearDownClass(cls):
        if cls.lab:
            cls.lab.down()
        cls.tmp.cleanup()

    def setUp(self):
        self.xlbd = Xlbd(self.lab, self.tmp.name)

    def tearDown(self):
        self.xlbd.stop()

    def test_1_traffic_reaches_backends_and_prometheus(self):
        status = self.xlbd.start()
        self.assertEqual(status["interface"], self.lab.lb_iface)
        for url in ("http://198.18.200.1/", "http://[2001:db8:200::1]/"):
            got = client(self.lab, "http", url, 300)
            self.assertEqual(got["errors"], 0, got)
            self.assertEqual(set(got["backends"]), {"backend be1", "backend be2"}, got)
            for n in got["backends"].values():
                self.assertGreater(n, 90, got)  # 300 over 2: far from one-sided
        text = self.xlbd.metrics()
        self.assertEqual(self.xlbd.metric(text, "xlb_up"), 1.0)
        total = 0
        for b in self.lab.backend_addresses:
            v = self.xlbd.metric(text, "xlb_backend_packets_total", vip="198.18.200.1:80/tcp",
                                 backend=b.v4)
            self.assertIsNotNone(v, f"no series for {b.v4}")
            self.assertGreater(v, 0)
            total += v
        self.assertEqual(total, self.xlbd.metric(text, "xlb_vip_packets_total",
                                                 vip="198.18.200.1:80/tcp"))

        # A real Prometheus scrapes the endpoint; PromQL returns the per-backend counter.
        prom_dir = os.path.join(self.tmp.name, "prometheus")
        os.makedirs(prom_dir, exist_ok=True)
        with open(os.path.join(prom_dir, "prometheus.yml"), "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "scrape_configs:\n  - job_name: xlb\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{METRICS_PORT}']\n")
        prom = self.lab.popen("lb", ["prometheus", f"--config.file={prom_dir}/prometheus.yml",
                                     f"--storage.tsdb.path={prom_dir}/data",
                                     f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"],
                              log="prometheus.log")
        try:
            query = ('xlb_backend_packets_total{vip="198.18.200.1:80/tcp",'
                     f'backend="{self.lab.backend_addresses[0].v4}"}}')
            deadline = time.monotonic() + 60
            result = None
            while time.monotonic() < deadline:
                res = self.lab.run("lb", ["curl", "-sf", "--get",
                                          f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query",
                                          "--data-urlencode", f"query={query}"], check=False)
                if res.returncode == 0:
                    body = json.loads(res.stdout)
                    if body.get("data", {}).get("result"):
                        result = body["data"]["result"]
                        break
                time.sleep(0.5)
            self.assertIsNotNone(result, "Prometheus returned no series within 60 s")
            self.assertGreater(float(result[0]["value"][1]), 0)
        finally:
            prom.terminate()
            prom.wait(timeout=15)

    def test_2_restart_and_upgrade_keep_connections(self):
        first = self.xlbd.start()
        stopfile = os.path.join(self.tmp.name, "stop-steady")
        if os.path.exists(stopfile):
            os.remove(stopfile)
        traffic = self.lab.popen("cli", [PYTHON, TRAFFIC, "steady", "198.18.200.1", 7, 40, 30,
                                         stopfile], stdout=subprocess.PIPE)
        time.sleep(2)
        before = self.xlbd.metrics()
        packets_before = self.xlbd.metric(before, "xlb_vip_packets_total",
                                          vip="198.18.200.1:7/tcp")
        self.assertGreater(packets_before, 0)
        # Restart: the new xlbd adopts the pinned maps and swaps its program into the link.
        self.assertEqual(self.xlbd.stop(), 0)
        time.sleep(1)  # the data plane forwards on its own meanwhile
        second = self.xlbd.start()
        self.assertTrue(second["adopted"])
        self.assertNotEqual(second["prog_id"], first["prog_id"])
        time.sleep(2)
        # And once more, an upgrade of the running program in place.
        self.assertEqual(self.xlbd.stop(), 0)
        third = self.xlbd.start()
        self.assertNotEqual(third["prog_id"], second["prog_id"])
        time.sleep(2)
        open(stopfile, "w").close()
        out, _ = traffic.communicate(timeout=40)
        stats = json.loads(out)
        self.assertEqual(stats["connections"], 40, stats)
        self.assertEqual(stats["errors"], 0, stats)
        self.assertGreater(stats["messages"], 40 * 40, stats)  # ~7 s at 10 per second each
        after = self.xlbd.metrics()
        packets_after = self.xlbd.metric(after, "xlb_vip_packets_total",
                                         vip="198.18.200.1:7/tcp")
        self.assertGreater(packets_after, packets_before)  # counters survived and kept counting

    def test_3_sighup_reloads(self):
        self.xlbd.start()
        b = self.lab.backend_addresses[0]
        self.xlbd.write_config(f"""  - vip: 198.18.200.2:80/tcp
    name: extra
    backends:
      - address: {b.v4}
""")
        self.xlbd.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        names = []
        while time.monotonic() < deadline:
            names = [v.get("name") for v in self.xlbd.get("/v1/vips")]
            if "extra" in names:
                break
            time.sleep(0.2)
        self.assertIn("extra", names)
        got = client(self.lab, "http", "http://198.18.200.2/", 50)
        self.assertEqual(got, {"backends": {"backend be1": 50}, "errors": 0})
        # A broken file is refused and the running state stays.
        with open(self.xlbd.config, "a") as f:
            f.write("bogus_key: 1\n")
        self.xlbd.proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        self.assertIsNone(self.xlbd.proc.poll())
        self.assertIn("extra", [v.get("name") for v in self.xlbd.get("/v1/vips")])
        self.xlbd.write_config()

    def test_4_detach_on_exit_removes_everything(self):
        self.xlbd.start("--detach-on-exit")
        self.assertEqual(self.xlbd.stop(), 0)
        link = self.lab.run("lb", ["ip", "link", "show", self.lab.lb_iface]).stdout
        self.assertNotIn("prog/xdp", link)
        self.assertFalse(os.path.exists(f"/sys/fs/bpf/xlb/{self.lab.lb_iface}"))
        # The client's traffic to the VIP no longer reaches a backend.
        got = client(self.lab, "http", "http://198.18.200.1/", 2, timeout=30)
        self.assertEqual(got["errors"], 2)


if __name__ == "__main__":
    fx.run_main(XlbdTest, "xlbd_test")
