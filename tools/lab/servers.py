# SPDX-License-Identifier: Apache-2.0
"""The lab backends' servers: one kind per process, run inside a backend namespace.

    python3 servers.py http --name be1 [--port 80]
    python3 servers.py tcp-echo --name be1 [--port 7]
    python3 servers.py udp-echo --name be1 [--port 7]

Every server listens on all addresses of the namespace (IPv4 and IPv6), so it answers on the
backend's own address and on the VIPs bound to `lo` alike. It prints one line
"ready KIND PORT" to stdout once it listens (the lab waits for it), then logs to stderr.

HTTP (HTTP/1.1, keep-alive):
  GET /size/N      N bytes (a repeating pattern), for large downloads
  POST/PUT any     reads the body; answers "backend NAME received N bytes sha256 HEX"
  GET anything     "backend NAME" (and a newline); every answer has a header X-Backend: NAME
TCP echo: sends back what it receives until the client closes.
UDP echo: sends back every datagram, from the address it was sent to (DSR: the VIP);
  the datagram b"whoami" is answered with b"backend NAME" and a newline instead.

Standard library only: it runs as a separate process under nsenter.
"""
import argparse
import hashlib
import http.server
import select
import signal
import socket
import socketserver
import struct
import sys

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
MAX_SIZE = 1 << 31  # largest /size/N served
CHUNK = 1 << 16
PATTERN = (bytes(range(256)) * (CHUNK // 256))


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def ready(kind, port):
    sys.stdout.write(f"ready {kind} {port}\n")
    sys.stdout.flush()


class DualStackMixin:
    """Binds [::]:port with IPV6_V6ONLY off: one socket takes IPv4 and IPv6."""

    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class HttpServer(DualStackMixin, http.server.ThreadingHTTPServer):
    backend_name = "?"


class HttpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "xlb-lab"
    sys_version = ""

    def _reply(self, body, code=200):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", self.server.backend_name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        name = self.server.backend_name
        path = self.path.split("?", 1)[0]
        if path.startswith("/size/"):
            try:
                size = int(path[len("/size/"):])
            except ValueError:
                size = -1
            if size < 0 or size > MAX_SIZE:
                self._reply(f"backend {name} bad size\n".encode(), 400)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("X-Backend", name)
            self.end_headers()
            left = size
            while left > 0 and self.command != "HEAD":
                n = min(left, CHUNK)
                self.wfile.write(PATTERN[:n])
                left -= n
            return
        self._reply(f"backend {name}\n".encode())

    do_HEAD = do_GET

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        digest = hashlib.sha256()
        left = length
        while left > 0:
            data = self.rfile.read(min(left, CHUNK))
            if not data:
                break
            digest.update(data)
            left -= len(data)
        got = length - left
        body = f"backend {self.server.backend_name} received {got} bytes sha256 {digest.hexdigest()}\n"
        self._reply(body.encode(), 200 if left == 0 else 400)

    do_PUT = do_POST

    def log_message(self, fmt, *args):
        log(f"http {self.client_address[0]} {fmt % args}")


class EchoServer(DualStackMixin, socketserver.ThreadingTCPServer):
    pass


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        total = 0
        while True:
            data = self.request.recv(CHUNK)
            if not data:
                break
            self.request.sendall(data)
            total += len(data)
        log(f"tcp-echo {self.client_address[0]} {total} bytes")


def serve_http(name, port):
    server = HttpServer(("::", port), HttpHandler)
    server.backend_name = name
    ready("http", port)
    server.serve_forever()


def serve_tcp_echo(port):
    server = EchoServer(("::", port), EchoHandler)
    ready("tcp-echo", port)
    server.serve_forever()


def serve_udp_echo(name, port):
    """Two sockets (IPv4, IPv6-only) with packet info, so that each reply leaves from the
    address the request went to: a VIP on lo, not the backend's own address."""
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v4.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    v4.bind(("0.0.0.0", port))
    socks = [v4]
    if socket.has_ipv6:
        try:
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            v6.bind(("::", port))
            socks.append(v6)
        except OSError as e:  # IPv6 disabled in this namespace
            log(f"udp-echo: no IPv6 socket: {e}")
    ready("udp-echo", port)
    whoami = f"backend {name}\n".encode()
    while True:
        readable, _, _ = select.select(socks, [], [])
        for s in readable:
            data, ancdata, _, peer = s.recvmsg(CHUNK, socket.CMSG_SPACE(64))
            reply = whoami if data == b"whoami" else data
            cmsg = []
            for level, kind, value in ancdata:
                if s.family == socket.AF_INET and level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                    # struct in_pktinfo {ifindex, spec_dst, addr}: answer from addr.
                    _, _, local = struct.unpack("=i4s4s", value[:12])
                    cmsg = [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=i4s4s", 0, local, b"\0" * 4))]
                elif s.family == socket.AF_INET6 and level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO:
                    local = value[:16]
                    cmsg = [(socket.IPPROTO_IPV6, IPV6_PKTINFO, struct.pack("=16si", local, 0))]
            try:
                s.sendmsg([reply], cmsg, 0, peer)
            except OSError as e:
                log(f"udp-echo: reply to {peer[0]} failed: {e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("kind", choices=["http", "tcp-echo", "udp-echo"])
    parser.add_argument("--name", required=True, help="backend name, e.g. be1")
    parser.add_argument("--port", type=int, help="default: 80 for http, 7 for the echoes")
    args = parser.parse_args()
    port = args.port or (80 if args.kind == "http" else 7)
    # SIGTERM (the lab's down) ends the process at once, quietly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log(f"{args.kind} for {args.name} on port {port}")
    try:
        if args.kind == "http":
            serve_http(args.name, port)
        elif args.kind == "tcp-echo":
            serve_tcp_echo(port)
        else:
            serve_udp_echo(args.name, port)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
