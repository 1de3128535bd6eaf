#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Service discovery through a real xlbd, end to end, in a namespace lab (3 backends).

xlbd runs with three discovery sources: a real etcd started by the test on 127.0.0.1 inside the
lab's LB namespace (source "registry"), a watched directory ("services") and push ("hooks").
Every step checks what xlbd serves (API: the reconciler's view of the maps) and, where it
matters, real HTTP traffic from the client namespace:

  1. etcd keys written before start become a VIP; traffic reaches exactly those backends.
  2. put / delete of a backend key: the backend joins / leaves (time to the API is printed).
  3. etcd killed: the source goes stale (status, xlbctl, Prometheus), the VIP keeps serving.
  4. etcd back: the watch resumes from the last revision and follows new puts.
  5. compaction past the watched revision (done while xlbd cannot reach etcd): full resync,
     and the changes made meanwhile are served.
  6. files: a service file renamed into place appears; a broken one is ignored (last good
     content stays, the problem is shown); deleting the file removes its VIP.
  7. push with xlbctl events push; a bad event is refused (exit 1) and changes nothing.
  8. a burst of 1,000 push events is coalesced: far fewer reconciles than events.
  9. SIGHUP with the discovery section removed: discovered VIPs leave in one reconcile, the
     configured ones stay; put back: the etcd source re-reads and its VIP returns.

Run as root: tests/e2e/discovery_xlbd_test.py --build-dir build. Exit 77 = skipped (not root).
"""
import json
import os
import signal
import socket
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
from xlbd_fixture import wait_for  # noqa: E402

ETCD, ETCDCTL = "/usr/bin/etcd", "/usr/bin/etcdctl"
PREFIX = "/xlb/e2e"
ETCD_VIP = "198.18.200.2:80/tcp"   # owned by the etcd source
FILE_VIP = "198.18.200.2:7/tcp"    # owned by the files source (echo)
PUSH_VIP = "198.18.200.2:7/udp"    # owned by the push source
DEBOUNCE_MS = 50


def free_port():
    """A TCP port free on this host's loopback now (the LB namespace has its own loopback, so
    this only lowers the odds of a clash with the test's other listeners)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DiscoveryXlbd(fx.Xlbd):
    """The fixture's xlbd plus a discovery section naming the test's etcd, directory and push."""

    def __init__(self, lab, workdir, etcd_port):
        self.etcd_port = etcd_port
        self.with_discovery = True
        self.services = os.path.join(workdir, "services.d")
        os.makedirs(self.services, exist_ok=True)
        super().__init__(lab, workdir)

    def write_config(self, extra_vips=""):
        super().write_config(extra_vips)
        if not self.with_discovery:
            return
        with open(self.config, "a") as f:
            f.write(f"""discovery:
  debounce: {DEBOUNCE_MS}ms
  sources:
    - name: registry
      type: etcd
      endpoints: ["http://127.0.0.1:{self.etcd_port}"]
      prefix: {PREFIX}
      dial_timeout: 500ms
      request_timeout: 2s
      reconnect_max: 1s
    - name: services
      type: files
      dir: {self.services}
    - name: hooks
      type: push
""")


class Etcd:
    """A real etcd in the lab's LB namespace, on 127.0.0.1, with its data in `data_dir`."""

    def __init__(self, lab, workdir):
        self.lab = lab
        self.data_dir = os.path.join(workdir, "etcd")
        self.port, self.peer = free_port(), free_port()
        self.proc = None

    def start(self, port=None):
        client = f"http://127.0.0.1:{port or self.port}"
        peer = f"http://127.0.0.1:{self.peer}"
        self.proc = self.lab.popen("lb", [
            ETCD, "--name=xlbe2e", f"--data-dir={self.data_dir}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=xlbe2e={peer}", "--initial-cluster-state=new",
            f"--initial-cluster-token=xlb-e2e-{os.getpid()}", "--logger=zap"], log="etcd.log")
        self.endpoint = client
        ok = wait_for(lambda: self.ctl("endpoint", "health", check=False).returncode == 0, 20, 0.1)
        assert ok is not None, f"etcd did not come up on {client}"

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def ctl(self, *args, check=True):
        env = ["env", "ETCDCTL_API=3", ETCDCTL, f"--endpoints={self.endpoint}",
               "--command-timeout=5s", *args]
        return self.lab.run("lb", env, check=check, timeout=15)

    def put(self, key, value):
        self.ctl("put", key, json.dumps(value))

    def revision(self):
        out = self.ctl("get", PREFIX, "--prefix", "--keys-only", "-w", "json").stdout
        return json.loads(out)["header"]["revision"]


def backend_key(vip, address):
    return f"{PREFIX}/vips/{vip}/backends/{address}"


class DiscoveryXlbdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in (ETCD, ETCDCTL):
            if not os.access(tool, os.X_OK):
                raise unittest.SkipTest(f"{tool} missing (tools/install-deps installs etcd)")
        cls.tmp = tempfile.TemporaryDirectory(prefix="xlb-disc-e2e-")
        cls.lab = Lab(backends=3, ipv6=True, build_dir=fx.BUILD)  # the fixture's VIPs need v6
        try:
            cls.lab.up()
            cls.be = cls.lab.backend_addresses
            cls.etcd = Etcd(cls.lab, cls.tmp.name)
            cls.etcd.start()
            # Written before xlbd starts: the initial range read must find them.
            for b in cls.be[:2]:
                cls.etcd.put(backend_key(ETCD_VIP, b.v4), {"weight": 1})
            cls.xlbd = DiscoveryXlbd(cls.lab, cls.tmp.name, cls.etcd.port)
            cls.xlbd.start()
        except BaseException:
            cls.lab.down()
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.xlbd.stop()
        cls.etcd.kill()
        cls.lab.down()
        cls.tmp.cleanup()

    # ---- helpers ------------------------------------------------------------------------

    def served(self, vip):
        """{address: slots} of a VIP as xlbd serves it now, or None when it has no such VIP."""
        status, body = self.xlbd.request("GET", f"/v1/vips/{fx.vip_path(vip)}")
        if status == 404:
            return None
        self.assertEqual(status, 200, body)
        return {b["address"]: b["slots"] for b in body["backends"]}

    def wait_served(self, vip, addresses, timeout=5.0):
        want = None if addresses is None else set(addresses)

        def ok():
            got = self.served(vip)
            return (got is None) if want is None else (got is not None and set(got) == want)
        took = wait_for(ok, timeout)
        self.assertIsNotNone(took, f"{vip}: want {want}, serving {self.served(vip)}")
        return took

    def source(self, name):
        for s in self.xlbd.get("/v1/status")["discovery"]["sources"]:
            if s["name"] == name:
                return s
        raise AssertionError(f"no discovery source {name}")

    def xlbctl(self, *args, check=True, input=None):
        argv = [os.path.join(fx.BUILD, "bin", "xlbctl"), "--socket", self.xlbd.socket, *args]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30, input=input)
        if check and res.returncode != 0:
            raise AssertionError(f"{argv}: exit {res.returncode}: {res.stderr}")
        return res

    def http_backends(self, vip_ip, count=60):
        got = fx.client(self.lab, "http", f"http://{vip_ip}/", count)
        self.assertEqual(got["errors"], 0, got)
        return set(got["backends"])

    def names(self, backends):
        return {f"backend {b.name}" for b in backends}

    # ---- etcd ---------------------------------------------------------------------------

    def test_1_etcd_keys_become_a_served_vip(self):
        self.wait_served(ETCD_VIP, [b.v4 for b in self.be[:2]], timeout=10)
        self.assertEqual(self.http_backends("198.18.200.2"), self.names(self.be[:2]))
        src = self.source("registry")
        self.assertEqual(src["state"], "connected", src)
        self.assertGreater(src["revision"], 0)
        # Configured VIPs are untouched by discovery.
        self.assertEqual(set(self.served("198.18.200.1:80/tcp")), {b.v4 for b in self.be})

    def test_2_put_and_delete_follow_within_the_debounce(self):
        t0 = time.monotonic()
        self.etcd.put(backend_key(ETCD_VIP, self.be[2].v4), {"weight": 2})
        self.wait_served(ETCD_VIP, [b.v4 for b in self.be])
        print(f"etcd put -> served: {1e3 * (time.monotonic() - t0):.0f} ms "
              "(etcdctl process start included)")
        self.assertEqual(self.http_backends("198.18.200.2", 90), self.names(self.be))
        self.etcd.ctl("del", backend_key(ETCD_VIP, self.be[0].v4))
        self.wait_served(ETCD_VIP, [b.v4 for b in self.be[1:]])
        self.assertEqual(self.http_backends("198.18.200.2"), self.names(self.be[1:]))
        # The API changes configured entries; a discovered one is changed at its source.
        res = self.xlbctl("backend", "set", ETCD_VIP, self.be[1].v4, "--drain", check=False)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("comes from service discovery", res.stderr)

    def test_3_etcd_down_keeps_serving_and_marks_the_source_stale(self):
        self.etcd.kill()
        took = wait_for(lambda: self.source("registry")["state"] in ("stale", "error"), 10, 0.05)
        self.assertIsNotNone(took, self.source("registry"))
        # Last good state stays in service.
        self.assertEqual(set(self.served(ETCD_VIP)), {b.v4 for b in self.be[1:]})
        self.assertEqual(self.http_backends("198.18.200.2"), self.names(self.be[1:]))
        table = self.xlbctl("status").stdout
        self.assertRegex(table, r"registry\s+etcd\s+100\s+(stale|error) \(!\)")
        metrics = self.xlbd.metrics()
        self.assertIn('xlb_discovery_source_stale{source="registry"} 1', metrics)
        self.assertIn('xlb_discovery_source_stale{source="hooks"} 0', metrics)

    def test_4_etcd_back_resumes_the_watch(self):
        before = self.source("registry")
        self.etcd.start()
        took = wait_for(lambda: self.source("registry")["state"] == "connected", 15, 0.05)
        self.assertIsNotNone(took, self.source("registry"))
        self.etcd.put(backend_key(ETCD_VIP, self.be[0].v4), {"weight": 1})
        self.wait_served(ETCD_VIP, [b.v4 for b in self.be])
        after = self.source("registry")
        self.assertGreater(after["reconnects_total"], before["reconnects_total"], after)

    def test_5_compaction_past_the_watched_revision_forces_a_full_resync(self):
        before = self.source("registry")
        # Make changes and compact them away where xlbd cannot see: the same data directory
        # served on another port while xlbd's endpoint is down.
        self.etcd.kill()
        self.assertIsNotNone(
            wait_for(lambda: self.source("registry")["state"] in ("stale", "error"), 10, 0.05))
        self.etcd.start(port=free_port())
        self.etcd.ctl("del", backend_key(ETCD_VIP, self.be[1].v4))
        self.etcd.put(backend_key(ETCD_VIP, self.be[2].v4), {"weight": 5})
        self.etcd.ctl("compact", str(self.etcd.revision()))
        self.etcd.kill()
        self.etcd.start()  # xlbd's endpoint again
        self.wait_served(ETCD_VIP, [self.be[0].v4, self.be[2].v4], timeout=15)
        after = self.source("registry")
        self.assertEqual(after["state"], "connected", after)
        self.assertGreater(after["full_resyncs_total"], before["full_resyncs_total"], after)
        self.assertEqual(self.http_backends("198.18.200.2"), self.names([self.be[0], self.be[2]]))

    # ---- files --------------------------------------------------------------------------

    def write_service(self, name, text):
        tmp = os.path.join(self.xlbd.services, name + ".tmp")  # ignored: not .yaml
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.xlbd.services, name))

    def test_6_service_files(self):
        self.write_service("echo.yaml", f"""vip: {FILE_VIP}
name: echo-files
backends:
  - address: {self.be[0].v4}
  - address: {self.be[1].v4}
    weight: 2
""")
        self.wait_served(FILE_VIP, [self.be[0].v4, self.be[1].v4])
        # A broken version is refused and reported; the last good content stays.
        self.write_service("echo.yaml", f"vip: {FILE_VIP}\nbackends: [{{address: 198.18.3.x}}]\n")
        took = wait_for(lambda: self.source("services")["problems"], 5)
        self.assertIsNotNone(took, self.source("services"))
        self.assertIn("echo.yaml", " ".join(self.source("services")["problems"]))
        self.assertEqual(set(self.served(FILE_VIP)), {self.be[0].v4, self.be[1].v4})
        # Removing the file removes its VIP.
        os.unlink(os.path.join(self.xlbd.services, "echo.yaml"))
        self.wait_served(FILE_VIP, None)

    # ---- push ---------------------------------------------------------------------------

    def test_7_push_with_xlbctl(self):
        events = [{"kind": "upsert_backend", "vip": PUSH_VIP,
                   "backend": {"address": self.be[2].v4, "weight": 3}}]
        res = self.xlbctl("events", "push", "-", input=json.dumps(events))
        self.assertIn("queued 1 event(s) for source hooks", res.stdout)
        self.wait_served(PUSH_VIP, [self.be[2].v4])
        # One bad event: the body is refused whole, and nothing served changes.
        bad = [{"kind": "upsert_backend", "vip": PUSH_VIP,
                "backend": {"address": self.be[0].v4}},
               {"kind": "remove_vip", "vip": "198.18.200.2:7"}]
        res = self.xlbctl("events", "push", "-", input=json.dumps(bad), check=False)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("events[1]: bad_vip", res.stderr)
        time.sleep(3 * DEBOUNCE_MS / 1000)
        self.assertEqual(set(self.served(PUSH_VIP)), {self.be[2].v4})
        self.assertGreaterEqual(self.source("hooks")["events_rejected"], 1)

    def test_8_a_burst_of_events_is_coalesced(self):
        before = self.xlbd.get("/v1/status")
        events = []
        for i in range(1000):  # weights of one backend flip 1000 times: the last one wins
            events.append({"kind": "upsert_backend", "vip": PUSH_VIP,
                           "backend": {"address": self.be[2].v4, "weight": 1 + i % 50}})
        t0 = time.monotonic()
        for i in range(0, 1000, 100):  # ten posts, as a webhook relay would send them
            status, body = self.xlbd.request("POST", "/v1/events", {"events": events[i:i + 100]})
            self.assertEqual(status, 202, body)
        posted = time.monotonic() - t0
        want_weight = 1 + 999 % 50

        def settled():
            status, body = self.xlbd.request("GET", f"/v1/vips/{fx.vip_path(PUSH_VIP)}")
            return status == 200 and body["backends"][0]["weight"] == want_weight
        self.assertIsNotNone(wait_for(settled, 5))
        time.sleep(3 * DEBOUNCE_MS / 1000)
        after = self.xlbd.get("/v1/status")
        reconciles = after["reconcile_total"] - before["reconcile_total"]
        updates = after["discovery"]["generation"] - before["discovery"]["generation"]
        windows = int(posted * 1000 / DEBOUNCE_MS) + 2
        print(f"1000 events in 10 posts over {posted * 1e3:.0f} ms: {updates} discovery "
              f"updates, {reconciles} reconciles")
        self.assertLessEqual(updates, windows, "one update per debounce window at most")
        self.assertLess(reconciles, 100)

    def test_9_reload_without_and_with_discovery(self):
        self.xlbd.with_discovery = False
        self.xlbd.write_config()
        self.xlbd.proc.send_signal(signal.SIGHUP)
        self.wait_served(ETCD_VIP, None)
        self.wait_served(PUSH_VIP, None)
        self.assertIsNone(self.xlbd.get("/v1/status")["discovery"])
        self.assertEqual(set(self.served("198.18.200.1:80/tcp")), {b.v4 for b in self.be})
        status, body = self.xlbd.request("POST", "/v1/events", {"events": []})
        self.assertEqual(status, 409, body)

        self.xlbd.with_discovery = True
        self.xlbd.write_config()
        self.xlbd.proc.send_signal(signal.SIGHUP)
        self.wait_served(ETCD_VIP, [self.be[0].v4, self.be[2].v4], timeout=10)
        self.assertEqual(self.source("registry")["state"], "connected")


if __name__ == "__main__":
    fx.run_main(DiscoveryXlbdTest, "discovery_xlbd_test")
