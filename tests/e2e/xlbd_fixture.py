# SPDX-License-Identifier: Apache-2.0
"""Shared pieces of the xlbd end-to-end tests: an xlbd process in a lab's LB namespace (config,
start/stop, API over its unix socket, /metrics) and client traffic (traffic.py) from the lab's
client namespace.

Usage:
    sys.path.insert(0, "<repo>/tools"); sys.path.insert(0, "<repo>/tests/e2e")
    from lab import Lab
    import xlbd_fixture as fx
    fx.BUILD = "/path/to/build"
    with Lab(backends=2, ipv6=True, build_dir=fx.BUILD) as lab:
        xlbd = fx.Xlbd(lab, workdir); xlbd.start(); fx.client(lab, "http", url, 100)
"""
import argparse
import http.client
import json
import os
import signal
import socket
import sys
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, "build")
PYTHON = "/usr/bin/python3"
TRAFFIC = os.path.join(HERE, "traffic.py")
METRICS_PORT = 9475


def vip_path(vip):
    """The API path segment of a VIP ("198.18.200.1:80/tcp" -> "198.18.200.1:80%2Ftcp")."""
    return urllib.parse.quote(vip, safe=":")


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Xlbd:
    """One xlbd process in the lab's LB namespace, with its config and API socket."""

    def __init__(self, lab, workdir, extra_vips=""):
        self.lab = lab
        self.workdir = workdir
        self.config = os.path.join(workdir, "xlbd.yaml")
        self.socket = os.path.join(workdir, "xlbd.sock")
        self.proc = None
        self.write_config(extra_vips)

    def write_config(self, extra_vips=""):
        be = self.lab.backend_addresses
        v4 = "\n".join(f"      - address: {b.v4}" for b in be)
        v6 = "\n".join(f"      - address: {b.v6}" for b in be)
        with open(self.config, "w") as f:
            f.write(f"""# written by xlbd_test.py
interface: {self.lab.lb_iface}
attach_mode: native
next_hop_mac: "{self.lab.router_mac_on_lb_link}"
encap_source_v4: 198.19.0.0/16
encap_source_v6: 2001:db8:ff::/64
hash_seed: 7
limits: {{max_vips: 16, max_backends: 64, flows_per_cpu: 65536}}
api: {{socket: {self.socket}}}
metrics: {{listen: "127.0.0.1:{METRICS_PORT}"}}
vips:
  - vip: 198.18.200.1:80/tcp
    name: web4
    backends:
{v4}
  - vip: 198.18.200.1:7/tcp
    name: echo4
    backends:
{v4}
  - vip: "[2001:db8:200::1]:80/tcp"
    name: web6
    backends:
{v6}
{extra_vips}""")

    def start(self, *flags):
        self.proc = self.lab.popen("lb", [os.path.join(BUILD, "bin", "xlbd"), "--config",
                                          self.config, *flags], log="xlbd.log")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = os.path.join(self.lab.log_dir, "xlbd.log")
                tail = open(log, errors="replace").read()[-2000:] if os.path.exists(log) else ""
                raise AssertionError(f"xlbd exited with {self.proc.returncode}; {log} ends:\n"
                                     f"{tail}")
            try:
                return self.get("/v1/status")
            except OSError:
                time.sleep(0.1)
        raise AssertionError("xlbd's API did not come up within 20 s")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        code = self.proc.returncode if self.proc else 0
        self.proc = None
        return code

    def request(self, method, path, body=None):
        conn = UnixHTTPConnection(self.socket)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read().decode()
            return resp.status, (json.loads(data) if data else None)
        finally:
            conn.close()

    def get(self, path):
        status, body = self.request("GET", path)
        if status != 200:
            raise AssertionError(f"GET {path}: {status} {body}")
        return body

    def metrics(self):
        out = self.lab.run("lb", ["curl", "-sf", f"http://127.0.0.1:{METRICS_PORT}/metrics"])
        return out.stdout

    def metric(self, text, name, **labels):
        """Value of the series `name{labels}` in a /metrics text, or None."""
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return None


def wait_for(predicate, timeout, step=0.005):
    """Seconds until predicate() holds (polled every `step`), or None after `timeout`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def client(lab, *args, timeout=120):
    res = lab.run("cli", [PYTHON, TRAFFIC, *map(str, args)], timeout=timeout)
    return json.loads(res.stdout)


def run_main(test_case, name):
    """The main() of an e2e test file: --build-dir sets BUILD; exits 77 (skipped) unless root;
    runs `test_case` and prints the "N passed, M failed" line ctest reads."""
    global BUILD
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", default=BUILD)
    args, _ = parser.parse_known_args()
    BUILD = os.path.abspath(args.build_dir)
    if os.geteuid() != 0:
        print(f"{name}: skipped: needs root (network namespaces, BPF)")
        sys.exit(77)
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(test_case)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(0 if result.wasSuccessful() else 1)
