# SPDX-License-Identifier: Apache-2.0
"""xlb-lab: brings the namespace lab up and down (see lab.py for the topology).

    xlb-lab up [--backends N] [--ipv6] [--name NAME] [--build-dir build] [--vips A,B,..]
    xlb-lab down [--name NAME | --all]
    xlb-lab status [--name NAME] [--json]
    xlb-lab run --name NAME ROLE -- COMMAND...     (ROLE: cli, rtr, lb, be1..)
"""
import argparse
import json
import os
import signal
import sys

from .lab import DEFAULT_VIPS, REPO_ROOT, Lab, list_labs, state_path
from .proc import LabError


def _build_dir(arg):
    if arg is None:
        return None
    if os.path.isdir(arg) or os.path.isabs(arg):
        return os.path.abspath(arg)
    return os.path.join(REPO_ROOT, arg)


def _pick(name, all_labs=False):
    """The labs a down/status/run is about: the named one, else the only one (or all)."""
    if name:
        return [name]
    labs = list_labs()
    if all_labs or len(labs) <= 1:
        return labs
    raise LabError(f"several labs are up ({', '.join(labs)}): pass --name (or --all)")


def cmd_up(args):
    vips = [v for v in args.vips.split(",") if v] if args.vips else list(DEFAULT_VIPS)
    lab = Lab(name=args.name, backends=args.backends, ipv6=args.ipv6,
              build_dir=_build_dir(args.build_dir), vips=vips, verbose=True)
    lab.up()
    print(f"lab {lab.name} is up: namespaces {', '.join(lab.ns(r) for r in lab.roles)}")
    print(f"  lb interface {lab.lb_iface} (ns {lab.ns('lb')}), next hop MAC "
          f"{lab.router_mac_on_lb_link}")
    for b in lab.backend_addresses:
        print(f"  {b.name}: {b.v4}{' ' + b.v6 if b.v6 else ''} decap pins {b.pin_dir}")
    print(f"  VIPs on the backends' lo: {', '.join(lab.vips)}; logs {lab.log_dir}")
    print(f"  try: nsenter --net=/run/netns/{lab.ns('cli')} curl "
          f"http://{lab.backend_addresses[0].v4}/")
    print(f"  remove: xlb-lab down --name {lab.name}")
    return 0


def cmd_down(args):
    names = _pick(args.name, args.all)
    if not names:
        print("xlb-lab: no lab is up")
        return 0
    rc = 0
    for name in names:
        lab = Lab.load(name, _build_dir(args.build_dir))
        if lab is None:
            print(f"xlb-lab: no lab {name} ({state_path(name)} absent): nothing to do")
            continue
        lab.verbose = True
        lab.keep_logs = args.keep_logs
        try:
            lab.down()
        except LabError as e:
            print(f"xlb-lab: {e}", file=sys.stderr)
            rc = 1
    return rc


def cmd_status(args):
    names = _pick(args.name, all_labs=True)
    if not names:
        print("xlb-lab: no lab is up")
        return 0 if not args.name else 1
    out = []
    for name in names:
        lab = Lab.load(name)
        if lab is None:
            print(f"xlb-lab: no lab {name}")
            return 1
        out.append(lab.status())
    if args.json:
        print(json.dumps(out if len(out) > 1 else out[0], indent=1))
        return 0
    for s in out:
        print(f"lab {s['name']}: {s['status']}, {s['backends']} backends, "
              f"ipv6 {'on' if s['ipv6'] else 'off'}")
        for ns, e in s["namespaces"].items():
            if not e["exists"]:
                print(f"  {ns}: MISSING")
                continue
            links = ", ".join(f"{n} mtu {l['mtu']}{' xdp ' + l['xdp'] if l['xdp'] else ''}"
                              for n, l in e["links"].items() if n != "lo")
            print(f"  {ns}: {links}")
        for d, pins in s["pins"].items():
            print(f"  pins {d}: {', '.join(pins) if pins is not None else 'MISSING'}")
        for p in s["processes"]:
            print(f"  pid {p['pid']} {p['kind'] or 'process'} in {p['ns']}: "
                  f"{'running' if p['alive'] else 'GONE'}")
    return 0


def cmd_run(args):
    names = _pick(args.name)
    if len(names) != 1:
        raise LabError("no lab is up" if not names else "pass --name")
    lab = Lab.load(names[0])
    if lab is None:
        raise LabError(f"no lab {names[0]}")
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        raise LabError("run: no command")
    res = lab.run(args.role, cmd, check=False, timeout=args.timeout, capture=False)
    return res.returncode


def main(argv=None):
    parser = argparse.ArgumentParser(prog="xlb-lab", description="xlb's namespace lab")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up", help="build a lab")
    p.add_argument("--backends", type=int, default=2)
    p.add_argument("--ipv6", action="store_true", help="IPv6 addresses, routes and VIPs too")
    p.add_argument("--name", help="lab name, 1-8 chars [a-z0-9] (default: xl + 4 hex)")
    p.add_argument("--build-dir", help="where bin/xlb-xdp is (default: <repo>/build)")
    p.add_argument("--vips", help="comma-separated VIPs put on the backends' lo "
                   f"(default {','.join(DEFAULT_VIPS)}; IPv6 ones only with --ipv6)")
    p.set_defaults(fn=cmd_up)
    p = sub.add_parser("down", help="remove a lab (a missing lab is fine)")
    p.add_argument("--name")
    p.add_argument("--all", action="store_true", help="every lab with a state file")
    p.add_argument("--keep-logs", action="store_true")
    p.add_argument("--build-dir")
    p.set_defaults(fn=cmd_down)
    p = sub.add_parser("status", help="what exists of a lab")
    p.add_argument("--name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_status)
    p = sub.add_parser("run", help="run a command in a lab namespace")
    p.add_argument("--name")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("role")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_run)
    args = parser.parse_args(argv)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    # Also when started with SIGINT ignored (a background job of a script): Ctrl-C cleans up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.fn(args)
    except LabError as e:
        print(f"xlb-lab: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("xlb-lab: interrupted", file=sys.stderr)
        return 130
