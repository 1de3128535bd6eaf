# SPDX-License-Identifier: Apache-2.0
"""The xlb lab: network namespaces wired as in docs (design.md section 4, "Lab topology").

    cli ──veth(1500)── rtr ──veth(1600, XDP_PASS on rtr's end)── lb (xlb's "NIC")
                        │
                        └─ bridge(1600) ──veth(1600)── be1..beN (xlb_decap XDP, VIPs on lo,
                                                                 HTTP :80, TCP/UDP echo :7)

  client  198.18.1.2/24   2001:db8:1::2/64      router 198.18.1.1 / 2001:db8:1::1
  lb      198.18.2.2/24   2001:db8:2::2/64      router 198.18.2.1 / 2001:db8:2::1
  beN     198.18.3.(10+N) 2001:db8:3::(10+N)    router 198.18.3.1 / 2001:db8:3::1 (bridge)
  The router sends the VIP prefixes (198.18.200.0/24, 2001:db8:200::/64) and the encap
  outer-source prefixes (198.19.0.0/16, 2001:db8:ff::/64) to the LB. Backends answer clients
  directly through the router (DSR).

Everything a lab makes (namespaces, bpffs pins, processes, logs) is recorded in
/run/xlb-lab/NAME.json as it is made, so `down` removes exactly that, also after a crash,
a failed `up` or Ctrl-C. Names: namespaces NAME-ROLE, interfaces NAME-SUFFIX (<= 15 chars,
unique per lab, so xlbd's pin directory /sys/fs/bpf/xlb/<ifname> is unique too).
"""
import dataclasses
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time

from .proc import LabError, NETNS_DIR, end_processes, in_netns, netns_pids, run, start_time, alive

STATE_DIR = "/run/xlb-lab"
BPFFS = "/sys/fs/bpf"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVERS_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers.py")

# ---- Topology (design.md section 4) ---------------------------------------------------------
CLIENT_V4, CLIENT_V6 = "198.18.1.2", "2001:db8:1::2"
RTR_CLI_V4, RTR_CLI_V6 = "198.18.1.1", "2001:db8:1::1"
LB_V4, LB_V6 = "198.18.2.2", "2001:db8:2::2"
RTR_LB_V4, RTR_LB_V6 = "198.18.2.1", "2001:db8:2::1"
RTR_BE_V4, RTR_BE_V6 = "198.18.3.1", "2001:db8:3::1"
VIP_PREFIX_V4, VIP_PREFIX_V6 = "198.18.200.0/24", "2001:db8:200::/64"
ENCAP_PREFIX_V4, ENCAP_PREFIX_V6 = "198.19.0.0/16", "2001:db8:ff::/64"
DEFAULT_VIPS = ("198.18.200.1", "198.18.200.2", "2001:db8:200::1")
CLIENT_MTU = 1500
# Encapsulation adds 20..48 bytes: everything behind the client runs a larger MTU.
INNER_MTU = 1600
GUE_PORT = 6080
MAX_BACKENDS = 99
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
SERVER_KINDS = (("http", 80), ("tcp-echo", 7), ("udp-echo", 7))


def backend_v4(i):
    return f"198.18.3.{10 + i}"


def backend_v6(i):
    return f"2001:db8:3::{10 + i}"


@dataclasses.dataclass(frozen=True)
class Backend:
    """One backend host of the lab."""

    name: str  # "be1"
    ns: str  # its namespace, "NAME-be1"
    iface: str  # its veth (decap XDP attached), in ns
    v4: str  # its own address: tunnel destination and health-check target
    v6: str | None  # set when the lab has IPv6
    pin_dir: str  # bpffs directory of its decap link and maps
    index: int  # 1..N


def state_path(name):
    return os.path.join(STATE_DIR, f"{name}.json")


def list_labs():
    """Names of the labs that have a state file."""
    try:
        entries = os.listdir(STATE_DIR)
    except FileNotFoundError:
        return []
    return sorted(e[:-5] for e in entries if e.endswith(".json"))


def _netns_exists(ns):
    return os.path.exists(os.path.join(NETNS_DIR, ns))


def _bpffs_mounted():
    try:
        with open("/proc/self/mounts") as f:
            return any(line.split()[1:3] == [BPFFS, "bpf"] for line in f)
    except OSError:
        return False


def _remove_tree(path):
    """Removes a directory tree (bpffs pins included); missing is fine."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        for entry in os.listdir(path):
            _remove_tree(os.path.join(path, entry))
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class Lab:
    """A namespace lab. `with Lab(backends=2) as lab:` brings it up and always tears it down.

    Attributes after up(): lb_iface, router_mac_on_lb_link, backend_addresses (list of
    Backend), vips, ipv6, name. Methods: ns(role), run(ns, args), popen(ns, args),
    decap_stats(backend), status(), down()."""

    def __init__(self, name=None, backends=2, ipv6=False, build_dir=None, vips=DEFAULT_VIPS,
                 keep_logs=False, verbose=False):
        if name is None:
            name = self._fresh_name()
        if not NAME_RE.match(name):
            raise LabError(f"lab name '{name}': want 1-8 chars [a-z0-9], starting with a letter "
                           "(interface names derive from it and must stay within 15 chars)")
        if not 1 <= int(backends) <= MAX_BACKENDS:
            raise LabError(f"--backends must be 1..{MAX_BACKENDS}")
        self.name = name
        self.n_backends = int(backends)
        self.ipv6 = bool(ipv6)
        build_dir = build_dir or os.path.join(REPO_ROOT, "build")
        self.build_dir = os.path.abspath(build_dir)
        self.vips = [v for v in vips if self.ipv6 or ":" not in v]
        self.keep_logs = keep_logs
        self.verbose = verbose
        self.state = None  # set by up() or load()
        self._popens = []
        self._lock = threading.Lock()

    # ---- naming -----------------------------------------------------------------------------

    @staticmethod
    def _fresh_name():
        for _ in range(100):
            name = "xl" + secrets.token_hex(2)
            if not os.path.exists(state_path(name)) and not _netns_exists(f"{name}-rtr"):
                return name
        raise LabError("could not find an unused lab name")

    @property
    def roles(self):
        return ["cli", "rtr", "lb"] + [f"be{i}" for i in range(1, self.n_backends + 1)]

    def ns(self, role):
        """The namespace of a role: 'cli', 'rtr', 'lb', 'be1'..; a full name passes through."""
        if role in self.roles:
            return f"{self.name}-{role}"
        if isinstance(role, str) and role.startswith(self.name + "-") and \
                role[len(self.name) + 1:] in self.roles:
            return role
        raise LabError(f"lab {self.name} has no namespace '{role}' (roles: {', '.join(self.roles)})")

    def iface(self, what):
        """Interface names: 'cli' (client's veth), 'rtr-cli', 'lb' (the LB's veth), 'rtr-lb',
        'bridge' (in rtr), 'beN' (backend's veth), 'rtr-beN' (its bridge port)."""
        p = self.name
        if what == "bridge":
            return f"{p}-br"
        if what.startswith("rtr-"):
            return f"{p}-r{what[4:]}"
        return f"{p}-{what}"

    @property
    def lb_iface(self):
        """The LB's veth, in ns('lb'): where xlb attaches."""
        return self.iface("lb")

    @property
    def router_lb_iface(self):
        return self.iface("rtr-lb")

    @property
    def client_iface(self):
        return self.iface("cli")

    @property
    def router_mac_on_lb_link(self):
        """The MAC of the router's end of the LB link: xlb's next hop."""
        self._need_state()
        return self.state["router_mac_on_lb_link"]

    @property
    def lb_mac(self):
        self._need_state()
        return self.state["lb_mac"]

    @property
    def pin_root(self):
        return os.path.join(BPFFS, f"xlb-lab-{self.name}")

    @property
    def log_dir(self):
        return os.path.join(STATE_DIR, self.name)

    @property
    def xlb_xdp(self):
        return os.path.join(self.build_dir, "bin", "xlb-xdp")

    @property
    def backend_addresses(self):
        """The backends, in order: Backend(name, ns, iface, v4, v6, pin_dir, index)."""
        return [Backend(name=f"be{i}", ns=self.ns(f"be{i}"), iface=self.iface(f"be{i}"),
                        v4=backend_v4(i), v6=backend_v6(i) if self.ipv6 else None,
                        pin_dir=os.path.join(self.pin_root, f"be{i}"), index=i)
                for i in range(1, self.n_backends + 1)]

    client_v4, client_v6 = CLIENT_V4, CLIENT_V6
    lb_v4, lb_v6 = LB_V4, LB_V6
    encap_prefix_v4, encap_prefix_v6 = ENCAP_PREFIX_V4, ENCAP_PREFIX_V6
    vip_prefix_v4, vip_prefix_v6 = VIP_PREFIX_V4, VIP_PREFIX_V6

    # ---- running things ---------------------------------------------------------------------

    def run(self, ns, args, check=True, timeout=30, input=None, capture=True):
        """Runs `args` (list or string) in a lab namespace via nsenter --net, bounded by
        `timeout` s. Returns subprocess.CompletedProcess (text); LabError on failure if check."""
        return run(args, ns=self.ns(ns), check=check, timeout=timeout, input=input,
                   capture=capture)

    def popen(self, ns, args, log=None, **kwargs):
        """Starts a long-running process in a lab namespace; down() ends it. `log`: a file name
        in the lab's log dir for stdout+stderr (default: inherit, or what kwargs say)."""
        self._need_state()
        argv = in_netns(self.ns(ns), args)
        log_file = None
        if log is not None:
            os.makedirs(self.log_dir, exist_ok=True)
            log_file = open(os.path.join(self.log_dir, log), "ab")
            kwargs.setdefault("stdout", log_file)
            kwargs.setdefault("stderr", subprocess.STDOUT)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("start_new_session", True)
        try:
            proc = subprocess.Popen(argv, **kwargs)
        finally:
            if log_file:
                log_file.close()
        with self._lock:
            self._popens.append(proc)
            self.state["processes"].append({
                "pid": proc.pid, "start": start_time(proc.pid), "ns": self.ns(ns),
                "argv": argv, "log": os.path.join(self.log_dir, log) if log else None})
            self._save()
        return proc

    def decap_stats(self, backend):
        """The decap counters of a backend ('be1' or a Backend) as a dict."""
        name = backend.name if isinstance(backend, Backend) else backend
        pin_dir = os.path.join(self.pin_root, name)
        res = self.run(name, [self.xlb_xdp, "stats", "--pin-dir", pin_dir, "--json"])
        return json.loads(res.stdout)

    def server_processes(self, backend=None, kind=None):
        """Recorded server processes [{pid, start, ns, role, kind, ...}] (filtered)."""
        self._need_state()
        return [p for p in self.state["processes"] if p.get("kind")
                and (backend is None or p.get("role") == backend)
                and (kind is None or p["kind"] == kind)]

    def stop_server(self, backend, kind):
        """Stops one server of a backend ('be1', 'http'|'tcp-echo'|'udp-echo')."""
        procs = self.server_processes(backend, kind)
        end_processes([(p["pid"], p["start"]) for p in procs])
        self._reap()

    def start_server(self, backend, kind):
        """(Re)starts one server of a backend; returns once it listens."""
        port = dict(SERVER_KINDS)[kind]
        self._start_server(backend, kind, port)

    # ---- lifecycle --------------------------------------------------------------------------

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    @classmethod
    def load(cls, name, build_dir=None):
        """The lab recorded under `name`, or None when there is none."""
        try:
            with open(state_path(name)) as f:
                state = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise LabError(f"unreadable state file {state_path(name)}: {e}") from e
        lab = cls(name=name, backends=state.get("backends", 1), ipv6=state.get("ipv6", False),
                  build_dir=build_dir or state.get("build_dir"),
                  vips=state.get("vips", DEFAULT_VIPS))
        lab.state = state
        return lab

    def _need_state(self):
        if self.state is None:
            raise LabError(f"lab {self.name} is not up")

    def _say(self, msg):
        if self.verbose:
            print(f"xlb-lab[{self.name}]: {msg}", flush=True)

    def _save(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        tmp = state_path(self.name) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=1)
        os.replace(tmp, state_path(self.name))

    def up(self):
        """Builds the lab. On any failure (Ctrl-C included) removes what it made and raises."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root (namespaces, XDP)")
        if not _bpffs_mounted():
            raise LabError(f"bpffs is not mounted at {BPFFS}: mount -t bpf bpf {BPFFS}")
        if not os.access(self.xlb_xdp, os.X_OK):
            raise LabError(f"{self.xlb_xdp} not found: build it (cmake --build "
                           f"{self.build_dir} --target xlb-xdp) or pass --build-dir")
        os.makedirs(STATE_DIR, exist_ok=True)
        # Claiming the state file is what makes a name ours: a second `up` stops here.
        try:
            fd = os.open(state_path(self.name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            raise LabError(f"lab {self.name} is already up ({state_path(self.name)}); "
                           f"`xlb-lab down --name {self.name}` first") from None
        os.close(fd)
        self.state = {
            "version": 1, "name": self.name, "backends": self.n_backends, "ipv6": self.ipv6,
            "vips": self.vips, "build_dir": self.build_dir, "created": time.time(),
            "status": "building", "namespaces": [], "pin_root": None, "pin_dirs": [],
            "processes": [], "log_dir": self.log_dir,
        }
        self._save()
        try:
            taken = [self.ns(r) for r in self.roles if _netns_exists(self.ns(r))]
            if taken:
                raise LabError(f"namespaces already exist (not this lab's): {', '.join(taken)}")
            self._build()
        except BaseException:
            self._say("failed: cleaning up")
            with _no_interrupts():
                self.down()
            raise
        self.state["status"] = "up"
        self._save()
        self._say("up")
        return self

    def _build(self):
        t0 = time.monotonic()
        for role in self.roles:
            # Recorded before it exists, so an interrupt right after `ip netns add` cannot leak
            # it (up() checked that none of these names existed).
            ns = self.ns(role)
            self.state["namespaces"].append(ns)
            self._save()
            run(["ip", "netns", "add", ns])
        self._sysctls()
        self._links()
        self._addresses()
        self._xdp()
        self._servers()
        mac = json.loads(self.run("rtr", ["ip", "-j", "link", "show", self.router_lb_iface]).stdout)
        self.state["router_mac_on_lb_link"] = mac[0]["address"]
        mac = json.loads(self.run("lb", ["ip", "-j", "link", "show", self.lb_iface]).stdout)
        self.state["lb_mac"] = mac[0]["address"]
        self.state["ifaces"] = {"lb": self.lb_iface, "rtr_lb": self.router_lb_iface,
                                "cli": self.client_iface, "bridge": self.iface("bridge")}
        self._say(f"built in {time.monotonic() - t0:.1f}s")

    def _sysctls(self):
        # Defaults first, so that devices created afterwards inherit them.
        common = ["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                  "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]
        for role in self.roles:
            extra = []
            if role == "rtr":
                extra = ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]
            elif role.startswith("be"):
                # VIPs on lo: never answer ARP for them on the wire (classic DSR settings).
                extra = ["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"]
            self.run(role, ["sysctl", "-q", "-w"] + common + extra)

    def _links(self):
        rtr = self.ns("rtr")
        run(["ip", "-n", rtr, "link", "add", self.iface("rtr-cli"), "type", "veth", "peer",
             "name", self.client_iface, "netns", self.ns("cli")])
        run(["ip", "-n", rtr, "link", "add", self.router_lb_iface, "type", "veth", "peer",
             "name", self.lb_iface, "netns", self.ns("lb")])
        run(["ip", "-n", rtr, "link", "add", self.iface("bridge"), "type", "bridge",
             "mcast_snooping", "0"])
        for b in self.backend_addresses:
            run(["ip", "-n", rtr, "link", "add", self.iface(f"rtr-{b.name}"), "type", "veth",
                 "peer", "name", b.iface, "netns", b.ns])
        # veth hands on packets with partial checksums, which turn invalid once XDP on the LB
        # has rebuilt the skb: the client computes full checksums instead (design.md 4).
        self.run("cli", ["ethtool", "-K", self.client_iface, "tx", "off"])

    def _batch(self, role, lines):
        self.run(role, ["ip", "-batch", "-"], input="\n".join(lines) + "\n")

    def _addresses(self):
        v6 = self.ipv6
        cli = self.client_iface
        lines = ["link set lo up", f"link set {cli} mtu {CLIENT_MTU} up",
                 f"addr add {CLIENT_V4}/24 dev {cli}", f"route add default via {RTR_CLI_V4}"]
        if v6:
            lines += [f"addr add {CLIENT_V6}/64 dev {cli} nodad",
                      f"route add ::/0 via {RTR_CLI_V6}"]
        self._batch("cli", lines)

        rcli, rlb, br = self.iface("rtr-cli"), self.router_lb_iface, self.iface("bridge")
        lines = ["link set lo up",
                 f"link set {rcli} mtu {CLIENT_MTU} up", f"addr add {RTR_CLI_V4}/24 dev {rcli}",
                 f"link set {rlb} mtu {INNER_MTU} up", f"addr add {RTR_LB_V4}/24 dev {rlb}"]
        for b in self.backend_addresses:
            port = self.iface(f"rtr-{b.name}")
            lines += [f"link set {port} mtu {INNER_MTU} master {br} up"]
        lines += [f"link set {br} mtu {INNER_MTU} up", f"addr add {RTR_BE_V4}/24 dev {br}",
                  f"route add {VIP_PREFIX_V4} via {LB_V4}",
                  f"route add {ENCAP_PREFIX_V4} via {LB_V4}"]
        if v6:
            lines += [f"addr add {RTR_CLI_V6}/64 dev {rcli} nodad",
                      f"addr add {RTR_LB_V6}/64 dev {rlb} nodad",
                      f"addr add {RTR_BE_V6}/64 dev {br} nodad",
                      f"route add {VIP_PREFIX_V6} via {LB_V6}",
                      f"route add {ENCAP_PREFIX_V6} via {LB_V6}"]
        self._batch("rtr", lines)

        lb = self.lb_iface
        lines = ["link set lo up", f"link set {lb} mtu {INNER_MTU} up",
                 f"addr add {LB_V4}/24 dev {lb}", f"route add default via {RTR_LB_V4}"]
        if v6:
            lines += [f"addr add {LB_V6}/64 dev {lb} nodad", f"route add ::/0 via {RTR_LB_V6}"]
        self._batch("lb", lines)

        for b in self.backend_addresses:
            lines = ["link set lo up"]
            for vip in self.vips:
                lines.append(f"addr add {vip}/{128 if ':' in vip else 32} dev lo")
            lines += [f"link set {b.iface} mtu {INNER_MTU} up",
                      f"addr add {b.v4}/24 dev {b.iface}",
                      f"route add default via {RTR_BE_V4}"]
            if v6:
                lines += [f"addr add {b.v6}/64 dev {b.iface} nodad",
                          f"route add ::/0 via {RTR_BE_V6}"]
            self._batch(b.name, lines)

    def _xdp(self):
        os.makedirs(self.pin_root, exist_ok=False)
        self.state["pin_root"] = self.pin_root
        self._save()
        # The router's end of the LB link needs an XDP program, or frames the LB sends with
        # XDP_TX are not delivered (veth).
        rtr_pins = os.path.join(self.pin_root, "rtr")
        self.state["pin_dirs"].append(rtr_pins)
        self._save()
        self.run("rtr", [self.xlb_xdp, "pass", self.router_lb_iface, "--pin-dir", rtr_pins])
        for b in self.backend_addresses:
            self.state["pin_dirs"].append(b.pin_dir)
            self._save()
            args = [self.xlb_xdp, "decap", b.iface, "--local-v4", b.v4,
                    "--gue-port", str(GUE_PORT), "--pin-dir", b.pin_dir]
            if b.v6:
                args += ["--local-v6", b.v6]
            self.run(b.name, args)

    def _start_server(self, backend, kind, port, wait=True):
        log = f"{backend}-{kind}.log"
        path = os.path.join(self.log_dir, log)
        offset = os.path.getsize(path) if os.path.exists(path) else 0
        proc = self.popen(backend, [sys.executable, "-u", SERVERS_PY, kind, "--name", backend,
                                    "--port", str(port)], log=log)
        with self._lock:
            self.state["processes"][-1].update({"role": backend, "kind": kind, "port": port})
            self._save()
        if wait:
            self._wait_ready([(proc, path, offset)])
        return proc, path, offset

    def _servers(self):
        pending = []
        for b in self.backend_addresses:
            for kind, port in SERVER_KINDS:
                pending.append(self._start_server(b.name, kind, port, wait=False))
        self._wait_ready(pending)

    def _wait_ready(self, pending, timeout=15.0):
        deadline = time.monotonic() + timeout
        while pending:
            left = []
            for proc, path, offset in pending:
                with open(path, "rb") as f:
                    f.seek(offset)
                    text = f.read().decode(errors="replace")
                if "ready " in text:
                    continue
                if proc.poll() is not None:
                    raise LabError(f"server exited with {proc.returncode}, see {path}: "
                                   f"{text.strip()[-500:]}")
                left.append((proc, path, offset))
            pending = left
            if pending:
                if time.monotonic() > deadline:
                    raise LabError("servers not ready in time: " +
                                   ", ".join(p for _, p, _ in pending))
                time.sleep(0.05)

    def _reap(self):
        for p in self._popens:
            try:
                p.wait(timeout=0)
            except subprocess.TimeoutExpired:
                pass

    def down(self):
        """Removes everything the lab recorded. Safe to call repeatedly and on a partial lab.
        Raises LabError listing what could not be removed (after trying everything)."""
        if self.state is None:
            loaded = Lab.load(self.name, self.build_dir)
            if loaded is None:
                return
            self.state = loaded.state
        problems = []
        st = self.state
        # 1. Processes the lab started, then anything else still inside its namespaces
        #    (a tool a test left running would keep a namespace alive).
        left = end_processes([(p["pid"], p.get("start")) for p in st.get("processes", [])])
        self._reap()
        problems += [f"process {pid} survived SIGKILL" for pid in left]
        for ns in st.get("namespaces", []):
            strays = [(pid, start_time(pid)) for pid in netns_pids(ns) if pid != os.getpid()]
            if strays:
                self._say(f"ending processes left in {ns}: {[p for p, _ in strays]}")
                problems += [f"process {pid} in {ns} survived SIGKILL"
                             for pid in end_processes(strays)]
        # 2. XDP: detach through the pinned links (the program goes even if a pin lingers).
        for d in st.get("pin_dirs", []):
            if os.path.exists(d) and os.access(self.xlb_xdp, os.X_OK):
                run([self.xlb_xdp, "detach", "--pin-dir", d], check=False, timeout=30)
        # 3. Namespaces (their links, bridge and addresses go with them).
        for ns in reversed(st.get("namespaces", [])):
            if _netns_exists(ns):
                res = run(["ip", "netns", "del", ns], check=False, timeout=30)
                if res.returncode != 0:
                    problems.append(f"ip netns del {ns}: {res.stderr.strip()}")
        # 4. Pins: what detach left, the lab's pin root, and xlbd's pin directory of the LB
        #    interface (its name is unique to this lab).
        roots = [st.get("pin_root"), os.path.join(BPFFS, "xlb", self.lb_iface)]
        for d in st.get("pin_dirs", []) + [r for r in roots if r]:
            try:
                _remove_tree(d)
            except OSError as e:
                problems.append(f"removing {d}: {e}")
        # 5. Logs and the state file.
        if not self.keep_logs:
            _remove_tree(self.log_dir)
        if problems:
            self._save()
            raise LabError(f"lab {self.name}: could not remove everything: " + "; ".join(problems))
        try:
            os.unlink(state_path(self.name))
        except FileNotFoundError:
            pass
        self.state = None
        self._say("down")

    # ---- inspection -------------------------------------------------------------------------

    def status(self):
        """What exists of this lab now: {namespaces: {ns: {exists, links}}, pins, processes}."""
        st = self.state or {}
        out = {"name": self.name, "recorded": self.state is not None,
               "status": st.get("status"), "backends": self.n_backends, "ipv6": self.ipv6,
               "namespaces": {}, "pins": {}, "processes": []}
        for role in self.roles:
            ns = self.ns(role)
            entry = {"exists": _netns_exists(ns), "links": {}}
            if entry["exists"]:
                res = run(["ip", "-n", ns, "-j", "-d", "link", "show"], check=False)
                if res.returncode == 0:
                    for link in json.loads(res.stdout or "[]"):
                        xdp = link.get("xdp") or {}
                        prog = xdp.get("prog") or {}
                        entry["links"][link["ifname"]] = {
                            "mtu": link.get("mtu"), "state": link.get("operstate"),
                            "xdp": prog.get("name") or (f"id {prog['id']}" if "id" in prog else None)}
            out["namespaces"][ns] = entry
        for d in st.get("pin_dirs", []):
            out["pins"][d] = sorted(os.listdir(d)) if os.path.isdir(d) else None
        for p in st.get("processes", []):
            out["processes"].append({"pid": p["pid"], "ns": p["ns"], "kind": p.get("kind"),
                                     "alive": alive(p["pid"], p.get("start")),
                                     "log": p.get("log")})
        return out


class _no_interrupts:
    """Holds off SIGINT/SIGTERM while cleaning up (main thread only), so a second Ctrl-C does
    not leave half a lab behind."""

    def __enter__(self):
        self.saved = None
        if threading.current_thread() is threading.main_thread():
            self.saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        if self.saved:
            for s, h in self.saved.items():
                signal.signal(s, h)
        return False
