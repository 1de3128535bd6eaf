#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Traffic for the e2e tests, run inside the lab's client namespace. Bounded in count and time.

  traffic.py http URL COUNT              COUNT short HTTP requests; prints {"backends": {...},
                                         "errors": N}
  traffic.py steady HOST PORT CONNS SECONDS STOPFILE
                                         CONNS long-lived TCP connections to an echo service,
                                         each sending a message every 100 ms and checking the
                                         echo, until SECONDS pass or STOPFILE appears; prints
                                         {"connections", "messages", "errors", "first_error"}
"""
import json
import os
import socket
import sys
import threading
import time
import urllib.request


def http(url, count):
    backends, errors = {}, 0
    for _ in range(count):
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                name = r.read().decode().strip()
                backends[name] = backends.get(name, 0) + 1
        except Exception:  # noqa: BLE001 - every failure is counted, none is fatal
            errors += 1
    print(json.dumps({"backends": backends, "errors": errors}))


def echo_roundtrip(s, msg):
    """Sends `msg` on the connected socket `s` and reads back exactly its echo (OSError if the
    connection ends or the echo differs)."""
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(len(msg) - len(got))
        if not chunk:
            raise OSError("connection closed by peer")
        got += chunk
    if got != msg:
        raise OSError("echo mismatch")


def steady(host, port, conns, seconds, stopfile):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    stats = {"connections": 0, "messages": 0, "errors": 0, "first_error": ""}

    def fail(what):
        with lock:
            stats["errors"] += 1
            if not stats["first_error"]:
                stats["first_error"] = what

    def one(i):
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(3)
            s.connect((host, port))
        except OSError as e:
            fail(f"connect {i}: {e}")
            return
        with lock:
            stats["connections"] += 1
        n = 0
        try:
            while time.monotonic() < deadline and not os.path.exists(stopfile):
                echo_roundtrip(s, f"conn {i} msg {n}\n".encode())
                n += 1
                with lock:
                    stats["messages"] += 1
                time.sleep(0.1)
        except OSError as e:
            fail(f"conn {i} after {n} messages: {e}")
        finally:
            s.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 10)
    print(json.dumps(stats))


if __name__ == "__main__":
    if sys.argv[1] == "http":
        http(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "steady":
        steady(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    else:
        sys.exit("usage: traffic.py http URL COUNT | steady HOST PORT CONNS SECONDS STOPFILE")
