# SPDX-License-Identifier: Apache-2.0
"""docs/performance.md from the template performance.md.in and one results file.

The template is prose with placeholders, each `{{ name }}` or `{{ name: argument }}`:
    {{ run }}                    what was measured on what (machine, kernel, compilers, commit)
    {{ table: NAME }}            a table (tables.BUILDERS, or any suite name: generic table)
    {{ chart: NAME }}            a chart of charts.CHARTS, drawn into perf/NAME.svg
    {{ value: SUITE/CASE/METRIC }}  one value with its unit ("not measured" if absent)
    {{ table: other }}           records no other table showed (filled in last)
An unknown placeholder is an error: a typo must not silently drop a table.
"""
import os
import re

from . import charts, tables
from .records import NOT_MEASURED, Results, verdict, with_unit

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "performance.md.in")
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*(?::\s*([^}]*?))?\s*\}\}")

BUILDERS = {
    "xdp": tables.xdp,
    "xdp_layout": tables.xdp_layout,
    "maglev": tables.maglev,
    "maglev_sweep": tables.maglev_sweep,
    "maglev_push": tables.maglev_push,
    "lab": tables.lab,
    "failures": tables.failures,
}


class TemplateError(ValueError):
    pass


def _seconds(value):
    if not isinstance(value, (int, float)):
        return "for an unknown time"
    return f"{value / 60:.1f} minutes" if value >= 120 else f"{value:.0f} s"


def _virtualization(meta):
    virt = meta.get("virtualization", {})
    parts = []
    if virt.get("hypervisor"):
        parts.append("virtual machine")
    if virt.get("detect_virt") not in (None, "none", "unknown"):
        parts.append(f"container/virt: {virt['detect_virt']}")
    return ", ".join(parts) or "bare metal (no hypervisor flag)"


def run_block(results, results_link, results_name):
    m = results.meta
    git = m.get("git", {})
    commit = str(git.get("commit", "unknown"))[:12]
    dirty = (f" plus uncommitted changes in {git.get('changed_files', '?')} tracked files"
             if git.get("dirty") else "")
    comp = m.get("compilers", {})
    date = str(m.get("date", "unknown")).replace("T", " ")
    load = lambda k: "/".join(f"{x:.1f}" for x in m.get(k, [])) or "?"
    lines = [
        f"Results: [`{results_name}`]({results_link}), measured {date} on `{m.get('host', '?')}`: "
        f"{m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gib', '?')} GiB, "
        f"{_virtualization(m)}; {m.get('os', '?')}, kernel {m.get('kernel', '?')}; "
        f"BPF built by {comp.get('bpf', '?')}, userspace by {comp.get('cxx', '?')} "
        f"({m.get('build_type', '?')}); libbpf {m.get('libbpf', '?')}; "
        f"commit `{commit}`{dirty}. Suites ran {_seconds(m.get('duration_s'))}; load average (1/5/15 min) at start {load('loadavg_start')}, "
        f"at end {load('loadavg_end')}. Command: `{m.get('command', '?')}`.",
        "",
    ]
    rows = []
    for name in results.suites():
        info = m.get("suites", {}).get(name, {})
        status, _ = results.suite_status(name)
        dur = info.get("duration_s")
        rows.append((f"`{name}`", status, f"{dur:.0f} s" if isinstance(dur, (int, float)) else "",
                     len(results.suite(name)), " ".join(info.get("args", [])[1:])))
    lines.append(tables.md_table(("suite", "status", "wall time", "records", "arguments"), rows,
                                 "llrrl"))
    with_target = [r for r in results.records if verdict(r)]
    missed = [r for r in with_target if verdict(r) == "FAIL"]
    lines += ["", f"Targets: {len(with_target) - len(missed)} of {len(with_target)} met"
              + (f"; missed: {_missed(missed)}" if missed else "") + "."]
    return "\n".join(lines)


def _missed(records, listed=3):
    """Missed targets by suite and metric: the cases when few, else how many."""
    groups = {}
    for r in records:
        groups.setdefault((r["suite"], r["metric"]), []).append(r["case"])
    parts = []
    for (suite, metric), cases in groups.items():
        if len(cases) <= listed:
            parts += [f"`{suite}/{c}` {metric}" for c in cases]
        else:
            parts.append(f"{metric} of {len(cases)} `{suite}` cases (see its table)")
    return ", ".join(parts)


def chart_block(name, drawn, docs_dir):
    title = next((t for n, _, t in charts.CHARTS if n == name), None)
    if title is None:
        raise TemplateError(f"unknown chart '{name}'")
    if not charts.available():
        return f"_Chart of {title} not drawn: python3-matplotlib is not installed " \
               f"(`tools/install-deps`)._"
    path = drawn.get(name)
    if path is None:
        return f"_Chart of {title}: {NOT_MEASURED} in this run._"
    rel = os.path.relpath(path, docs_dir)
    return f"![{title}]({rel})"


def value_block(results, arg):
    parts = arg.split("/")
    if len(parts) != 3:
        raise TemplateError(f"value placeholder needs SUITE/CASE/METRIC, got '{arg}'")
    r = results.get(*parts)
    return with_unit(r["value"], r.get("unit", "")) if r else NOT_MEASURED


def fill(template, results, drawn, docs_dir, results_link, results_name):
    def one(match, last_pass):
        name, arg = match.group(1), (match.group(2) or "").strip()
        if name == "table" and arg == "other":
            return tables.other(results) if last_pass else match.group(0)
        if last_pass:
            return match.group(0)
        if name == "run":
            return run_block(results, results_link, results_name)
        if name == "table":
            if arg in BUILDERS:
                return BUILDERS[arg](results)
            if re.fullmatch(r"[a-z0-9_]+", arg):
                return tables.suite_table(results, arg)
            raise TemplateError(f"bad table name '{arg}'")
        if name == "chart":
            return chart_block(arg, drawn, docs_dir)
        if name == "value":
            return value_block(results, arg)
        raise TemplateError(f"unknown placeholder '{match.group(0)}'")

    text = PLACEHOLDER.sub(lambda m: one(m, False), template)
    return PLACEHOLDER.sub(lambda m: one(m, True), text)


def render(doc, results_path, docs_dir, template_path=TEMPLATE):
    """Writes DOCS/performance.md and DOCS/perf/*.svg; returns (markdown path, charts drawn)."""
    results = Results(doc)
    with open(template_path, encoding="utf-8") as f:
        template = f.read()
    drawn = charts.draw_all(results, os.path.join(docs_dir, "perf"))
    results_link = os.path.relpath(results_path, docs_dir)
    repo_root = os.path.dirname(os.path.abspath(docs_dir))
    results_name = os.path.relpath(os.path.abspath(results_path), repo_root)
    body = fill(template, results, drawn, docs_dir, results_link, results_name)
    header = (f"<!-- Generated by tools/bench from {results_name}. Edit the prose in "
              f"tools/benchreport/performance.md.in; numbers come from the results file. -->\n")
    out = os.path.join(docs_dir, "performance.md")
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(header + body)
    os.replace(tmp, out)
    return out, drawn
