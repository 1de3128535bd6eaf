#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Client flows for the e2e scenarios (scenarios_test.py), run inside the lab's client
namespace. Standard library only; every mode is bounded in count and time.

  flows.py steady HOST PORT CONNS SECONDS STOPFILE
      CONNS long-lived TCP connections to an echo service, each sending a message every 100 ms
      and checking the echo, until SECONDS pass or STOPFILE appears. Prints one JSON line
      {"ports": [...]} once every connection is up (the local ports, in connection order), and
      at the end one JSON line {"connections": [{"port", "messages", "error", "error_at"}],
      "messages", "errors"}: which connection broke, when and why.
  flows.py http URL COUNT
      COUNT short HTTP requests, a new connection each (as traffic.py http); prints
      {"backends": {answer: n}, "errors": N, "error_samples": [the first failures]}.
  flows.py udp HOST PORT SPORT COUNT INTERVAL
      COUNT datagrams "whoami" from the fixed source port SPORT, one every INTERVAL seconds;
      the lab's UDP echo answers "backend beN" from the VIP. Prints {"answers": [...],
      "sources": [...], "errors": N}.
  flows.py hold URL SECONDS [IFACE]
      One HTTP/1.1 keep-alive connection: a GET, then the connection stays open (idle) until
      SECONDS pass or stdin closes. Prints {"port", "backend", "server_seq"} after the GET:
      server_seq is the server's next unacknowledged sequence number, learnt from the SYN-ACK
      captured on IFACE (null without IFACE), for an ICMP error the server will accept.
"""
import json
import os
import re
import select
import socket
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request

from traffic import echo_roundtrip  # same directory: the script dir is on sys.path


def steady(host, port, conns, seconds, stopfile):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    t0 = time.monotonic()
    deadline = t0 + seconds
    socks = []
    for i in range(conns):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(3)
        try:
            s.connect((host, port))
        except OSError as e:
            print(json.dumps({"error": f"connect {i}: {e}"}), flush=True)
            for t in socks:
                t.close()
            s.close()
            return 1
        socks.append(s)
    results = [{"port": s.getsockname()[1], "messages": 0, "error": "", "error_at": None}
               for s in socks]
    print(json.dumps({"ports": [r["port"] for r in results]}), flush=True)

    def one(i, s):
        r = results[i]
        try:
            while time.monotonic() < deadline and not os.path.exists(stopfile):
                echo_roundtrip(s, f"conn {i} msg {r['messages']}\n".encode())
                r["messages"] += 1
                time.sleep(0.1)
        except OSError as e:
            r["error"] = str(e) or type(e).__name__
            r["error_at"] = round(time.monotonic() - t0, 2)
        finally:
            s.close()

    threads = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(socks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 10)
    print(json.dumps({"connections": results,
                      "messages": sum(r["messages"] for r in results),
                      "errors": sum(1 for r in results if r["error"])}), flush=True)
    return 0


def http(url, count):
    """COUNT short HTTP requests, each on a new connection (like traffic.py http), with the
    reasons of the first failures."""
    backends, errors, samples = {}, 0, []
    t0 = time.monotonic()
    for _ in range(count):
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                name = r.read().decode().strip()
                backends[name] = backends.get(name, 0) + 1
        except Exception as e:  # noqa: BLE001 - every failure is counted, none is fatal
            errors += 1
            if len(samples) < 5:
                samples.append(f"+{time.monotonic() - t0:.2f}s {type(e).__name__}: {e}")
    print(json.dumps({"backends": backends, "errors": errors, "error_samples": samples}))
    return 0


def udp(host, port, sport, count, interval):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", sport))
    s.settimeout(2)
    answers, sources, errors = [], [], 0
    for n in range(count):
        if n:
            time.sleep(interval)
        try:
            s.sendto(b"whoami", (host, port))
            data, peer = s.recvfrom(2048)
            answers.append(data.decode(errors="replace").strip())
            sources.append(peer[0])
        except OSError as e:
            errors += 1
            answers.append(f"error: {e}")
    s.close()
    print(json.dumps({"answers": answers, "sources": sorted(set(sources)), "errors": errors}))
    return 0


def _syn_ack_seq(cap, port, deadline):
    """The sequence number of the SYN-ACK to local `port` seen on the AF_PACKET socket."""
    while time.monotonic() < deadline:
        cap.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            frame = cap.recv(65535)
        except socket.timeout:
            break
        etype = struct.unpack("!H", frame[12:14])[0]
        if etype == 0x0800 and len(frame) >= 34 and frame[23] == 6:
            l4 = 14 + (frame[14] & 15) * 4
        elif etype == 0x86DD and len(frame) >= 54 and frame[20] == 6:
            l4 = 54
        else:
            continue
        if len(frame) < l4 + 14:
            continue
        sport, dport, seq = struct.unpack("!HHI", frame[l4:l4 + 8])
        flags = frame[l4 + 13]
        if dport == port and flags & 0x12 == 0x12:
            return seq
    return None


def hold(url, seconds, iface=None):
    u = urllib.parse.urlsplit(url)
    host = u.hostname
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    cap = None
    if iface:  # to learn the server's sequence numbers (a valid ICMP error quotes one)
        cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        cap.bind((iface, 0))
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((host, u.port or 80))
    port = s.getsockname()[1]
    isn = _syn_ack_seq(cap, port, time.monotonic() + 2) if cap else None
    if cap:
        cap.close()
    hosthdr = f"[{host}]" if ":" in host else host
    s.sendall(f"GET {u.path or '/'} HTTP/1.1\r\nHost: {hosthdr}\r\n\r\n".encode())
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if m and len(body) >= int(m.group(1)):
                break
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    body = body.decode(errors="replace").strip()
    # What the server has sent and the client acknowledged: its snd_una once the ACK is out.
    server_una = (isn + 1 + len(data)) & 0xFFFFFFFF if isn is not None else None
    print(json.dumps({"port": port, "backend": body, "server_seq": server_una}), flush=True)
    # Idle until told (stdin closes) or the time is up; the connection stays established.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r, _, _ = select.select([sys.stdin], [], [], max(0.0, deadline - time.monotonic()))
        if r and not sys.stdin.buffer.read1(1):
            break
    s.close()
    return 0


def main(argv):
    if len(argv) >= 6 and argv[0] == "steady":
        return steady(argv[1], int(argv[2]), int(argv[3]), float(argv[4]), argv[5])
    if len(argv) >= 3 and argv[0] == "http":
        return http(argv[1], int(argv[2]))
    if len(argv) >= 6 and argv[0] == "udp":
        return udp(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), float(argv[5]))
    if len(argv) >= 3 and argv[0] == "hold":
        return hold(argv[1], float(argv[2]), argv[3] if len(argv) > 3 else None)
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
