# SPDX-License-Identifier: Apache-2.0
"""Command line of benchreport (tools/bench runs `run`; `render` redraws docs from a file)."""
import argparse
import datetime
import json
import os
import re
import shlex
import sys
import time

from . import machine, render, runner, tables
from .records import Results, verdict

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def results_path(out_dir, now):
    """bench-results/YYYY-MM-DD.json; a second run that day gets -HHMM (then -HHMMSS), so an
    earlier file of the same day is never overwritten."""
    day = now.strftime("%Y-%m-%d")
    for name in (day, f"{day}-{now:%H%M}", f"{day}-{now:%H%M%S}"):
        path = os.path.join(out_dir, name + ".json")
        if not os.path.exists(path):
            return path
    raise SystemExit(f"bench: {path} exists already; wait a second and run again")


def dump(doc):
    """Meta indented, one record per line: readable and diff-friendly."""
    meta = json.dumps(doc["meta"], indent=2).replace("\n", "\n  ")
    parts = [f'  "meta": {meta}']
    for key in ("results", "failures"):
        items = ",\n".join("    " + json.dumps(x, sort_keys=True) for x in doc[key])
        parts.append(f'  "{key}": [\n{items}\n  ]' if doc[key] else f'  "{key}": []')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def write_json(path, doc):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(dump(doc))
    os.replace(tmp, path)


def print_summary(doc, out=None):
    out = out or sys.stdout
    results = Results(doc)
    print(tables.text_table(("suite/case", "metric", "value", "target", "result"),
                            tables.summary_rows(results)), file=out)
    judged = [verdict(r) for r in results.records if verdict(r)]
    print(f"\ntargets: {judged.count('pass')} met, {judged.count('FAIL')} missed", file=out)
    for name, info in doc["meta"].get("suites", {}).items():
        detail = f": {info['detail']}" if info.get("detail") else ""
        print(f"suite {name}: {info['status']}, {info['duration_s']:.0f} s, "
              f"{info['records']} records{detail}", file=out)


def _show(path):
    """A path as the user wants to read it: relative below the working directory."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def parse_suites(text):
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [n for n in names if not re.fullmatch(r"[a-z0-9_]+", n)]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"suite names are [a-z0-9_]+, comma separated: {text!r}")
    known = {s.name: s for s in runner.SUITES}
    return [known.get(n, runner.Suite(n)) for n in names]


def cmd_run(args):
    binary = args.xlb_bench or os.path.join(REPO, "build", "bin", "xlb-bench")
    if not os.access(binary, os.X_OK):
        print(f"bench: {binary} is missing; build first (tools/bench builds it)", file=sys.stderr)
        return 2
    suites = args.suites or list(runner.SUITES)
    full = {s.name for s in suites} >= {s.name for s in runner.SUITES}
    write_docs = args.docs if args.docs is not None else full
    meta = machine.describe(REPO, os.path.dirname(os.path.dirname(binary)))
    meta["command"] = args.command_line or "python3 -m benchreport " + shlex.join(args.argv)
    started = time.monotonic()
    runs = []
    for s in suites:
        scale = args.scale if args.scale is not None else s.scale
        nruns = args.runs if args.runs is not None else s.runs
        limit = args.timeout or s.timeout_s
        print(f"bench: suite {s.name} (--scale {scale:g} --runs {nruns}, limit {limit} s)",
              file=sys.stderr, flush=True)
        run = runner.run_suite(binary, s, scale, nruns, limit)
        print(f"bench: suite {s.name}: {run.status} in {run.duration_s:.0f} s"
              + (f" ({run.detail})" if run.detail else ""), file=sys.stderr, flush=True)
        runs.append(run)
    meta["suites"] = {r.name: r.meta() for r in runs}
    meta["duration_s"] = round(time.monotonic() - started, 1)
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    doc = {"meta": meta,
           "results": [rec for r in runs for rec in r.records],
           "failures": [f for f in (r.failure() for r in runs) if f]}
    path = results_path(args.out, datetime.datetime.now())
    write_json(path, doc)
    print_summary(doc)
    print(f"\nbench: results in {_show(path)} ({meta['duration_s']:.0f} s of suites)")
    if write_docs:
        md, drawn = render.render(doc, path, args.docs_dir)
        charts = ", ".join(_show(p) for p in drawn.values() if p) or "none"
        print(f"bench: regenerated {_show(md)}; charts: {charts}")
    else:
        print("bench: docs left as they are (--no-docs, or only some suites ran: --docs forces)")
    return 1 if any(r.status in ("failed", "timeout") for r in runs) else 0


def cmd_render(args):
    with open(args.results, encoding="utf-8") as f:
        doc = json.load(f)
    md, drawn = render.render(doc, args.results, args.docs_dir, args.template)
    print(f"bench: rendered {md}; charts: "
          + (", ".join(p for p in drawn.values() if p) or "none"))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", prog="tools/bench", help="run the suites (tools/bench)",
                         description="Runs the xlb-bench suites, writes a results file, prints a "
                         "summary and regenerates docs/performance.md. `tools/bench render FILE` "
                         "regenerates the docs from an earlier results file.")
    run.add_argument("--suites", type=parse_suites,
                     help="comma-separated suites (default: "
                          + ",".join(s.name for s in runner.SUITES) + ")")
    run.add_argument("--scale", type=float, help="xlb-bench --scale for every suite (default 1)")
    run.add_argument("--runs", type=int, help="xlb-bench --runs for every suite (default 3)")
    run.add_argument("--timeout", type=int, help="time limit per suite, seconds "
                     "(default per suite: " + ", ".join(f"{s.name} {s.timeout_s}"
                                                         for s in runner.SUITES) + ")")
    run.add_argument("--out", default=os.path.join(REPO, "bench-results"),
                     help="directory of the results files (default bench-results/)")
    docs = run.add_mutually_exclusive_group()
    docs.add_argument("--no-docs", dest="docs", action="store_false", default=None,
                      help="do not touch docs/performance.md and docs/perf/")
    docs.add_argument("--docs", dest="docs", action="store_true", default=None,
                      help="regenerate the docs even when only some suites ran")
    run.add_argument("--docs-dir", default=os.path.join(REPO, "docs"),
                     help="where performance.md and perf/ go (default docs/)")
    run.add_argument("--xlb-bench", help="the xlb-bench binary (default build/bin/xlb-bench)")
    run.add_argument("--command-line", help=argparse.SUPPRESS)  # as the user typed it
    ren = sub.add_parser("render", prog="tools/bench render",
                         help="regenerate the docs from a results file")
    ren.add_argument("results")
    ren.add_argument("--docs-dir", default=os.path.join(REPO, "docs"))
    ren.add_argument("--template", default=render.TEMPLATE)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command == "run":
        if args.scale is not None and args.scale <= 0:
            p.error("--scale must be > 0")
        if args.runs is not None and args.runs < 1:
            p.error("--runs must be >= 1")
        if args.timeout is not None and args.timeout < 1:
            p.error("--timeout must be >= 1")
        return cmd_run(args)
    return cmd_render(args)


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.exit(main())
