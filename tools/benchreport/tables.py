# SPDX-License-Identifier: Apache-2.0
"""Markdown tables of one run's records, one builder per suite and a generic one for the rest.

Every builder takes a Results and returns markdown; records it shows are marked shown, so the
"other records" table can list whatever no builder knew (a new case, a new suite).
"""
from .records import NOT_MEASURED, bound, number, verdict, with_unit

# What each data-path case sends through xlb_balancer ({field} = the record's extra field).
XDP_CASES = {
    "pass_non_vip": "parse, one VIP lookup, XDP_PASS",
    "lru_hit_v4": "VIP, connection-table hit, IPIP, XDP_TX",
    "lru_hit_v6": "the same over IPv6, IP6IP6",
    "ring_v4": "VIP flagged no-LRU: hash + Maglev ring, IPIP",
    "new_flow_v4": "SYN of a new flow (new source every call), table holding {table_flows:,} "
                   "flows: ring + insert",
    "new_flow_v4_midstream": "non-SYN packet of an unknown flow: lookup miss + ring + insert",
    "new_flow_v4_full": "as `new_flow_v4`, but this CPU's LRU list is full: every insert evicts",
}
PER_CPU_MAPS = "_per_cpu_maps"
LAB_PATHS = ("established", "new_flow", "pass_non_vip")
LAB_METRICS = ("floor_mpps", "xlb_mpps", "ratio_to_floor")

# Extra fields worth a word in a table's "details" column, in this order.
DETAILS = (
    ("backends", "N={}"), ("ring_size", "M={}"), ("worst", "worst {}"),
    ("min_over_mean", "min/mean {}"), ("min", "min {}"), ("max", "max {}"),
    ("p99", "p99 {}"), ("runs", "{} runs"), ("samples", "{} samples"),
    ("to_change_ms", "monitor callback {} ms"), ("checks_per_s", "{} checks/s"),
    ("failed_checks", "{} failed checks"), ("floor_cpu_pct", "kernel floor {} %"),
    ("over_floor_pct", "{} % over the floor"),
    ("slots_changed", "{} slots changed"), ("changes", "{} slots changed"),
    ("reason", "{}"),
)


def md_table(header, rows, align):
    """A markdown table; align is one 'l' or 'r' per column."""
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def result_cell(record):
    v = verdict(record)
    return {"pass": "pass", "FAIL": "**FAIL**", None: "—"}[v]


def details(record):
    parts = []
    for key, fmt in DETAILS:
        if key in record:
            value = record[key]
            unit = record.get("unit", "") if key in ("worst", "min", "max", "p99") else ""
            parts.append(fmt.format(number(value, unit) if isinstance(value, float) else value))
    return ", ".join(parts)


def not_measured(results, suite):
    status, detail = results.suite_status(suite)
    why = detail or status
    return f"_{NOT_MEASURED.capitalize()} in this run ({why})._"


def generic(results, records):
    """case | metric | value | target | result | details."""
    results.show(records)
    rows = [(f"`{r['case']}`", r["metric"], with_unit(r["value"], r.get("unit", "")),
             bound(r), result_cell(r), details(r)) for r in records]
    return md_table(("case", "metric", "value", "target", "result", "details"), rows,
                    "llrrll")


def suite_table(results, suite, records=None):
    records = results.suite(suite) if records is None else records
    if not records:
        return not_measured(results, suite)
    return generic(results, records)


def xdp_cases(results):
    """Delta records of the default connection-table layout, in run order."""
    return [r for r in results.suite("xdp", "delta_ns") if not r["case"].endswith(PER_CPU_MAPS)]


def xdp(results):
    cases = xdp_cases(results)
    if not cases:
        return not_measured(results, "xdp")
    results.show(cases)
    rows = []
    for r in cases:
        desc = XDP_CASES.get(r["case"], "")
        try:
            desc = desc.format_map(r)
        except (KeyError, ValueError):
            desc = desc.split(",")[0]
        katran = r.get("katran_ns")
        rows.append((f"`{r['case']}`", desc, number(r["value"], "ns"), bound(r), result_cell(r),
                     number(r["floor_ns"], "ns") if "floor_ns" in r else "",
                     number(r["abs_ns"], "ns") if "abs_ns" in r else "",
                     number(katran, "ns") if katran else "—"))
    table = md_table(("case", "what the packet does", "Δ ns", "target Δ", "result", "floor ns",
                      "case ns", "Katran Δ, same method"), rows, "llrrlrrr")
    floor = results.get("xdp", "floor", "floor_ns")
    if floor:
        results.show([floor])
        table += (f"\n\nXDP_TX floor (`xlb_floor_tx`), median of every case's floor runs: "
                  f"**{number(floor['value'], 'ns')} ns** "
                  f"({floor.get('calls', '?'):,} calls × {floor.get('runs', '?')} runs per case).")
    return table


def xdp_layout(results):
    shared = {r["case"]: r for r in xdp_cases(results)}
    rows = []
    for r in results.suite("xdp", "delta_ns"):
        if not r["case"].endswith(PER_CPU_MAPS):
            continue
        base = r["case"][: -len(PER_CPU_MAPS)]
        results.show([r])
        s = shared.get(base)
        rows.append((f"`{base}`", number(s["value"], "ns") if s else NOT_MEASURED,
                     number(r["value"], "ns")))
    if not rows:
        return not_measured(results, "xdp")
    return md_table(("case", "Δ ns, one hash with per-CPU LRU lists (`shared`, default)",
                     "Δ ns, one LRU hash per CPU (`per-cpu-maps`)"), rows, "lrr")


def maglev_sweep_records(results):
    return sorted((r for r in results.suite("maglev", "disruption_ratio")
                   if r.get("sweep") == "remove_one_vs_n"), key=lambda r: r.get("backends", 0))


def maglev(results):
    records = [r for r in results.suite("maglev")
               if r.get("sweep") is None and not r["metric"].startswith("push_")]
    return suite_table(results, "maglev", records)


def maglev_sweep(results):
    sweep = results.show(maglev_sweep_records(results))
    if not sweep:
        return not_measured(results, "maglev")
    rows = [(r.get("backends", "?"), r.get("ring_size", "?"),
             number(r["gain_per_change"]) if "gain_per_change" in r else "",
             number(r["value"], "ratio"), number(r.get("worst", float("nan")), "ratio"),
             number(r["maglev_turns"], "ratio") if "maglev_turns" in r else "—",
             number(r["maglev_turns_worst"], "ratio") if "maglev_turns_worst" in r else "—",
             bound(r), result_cell(r)) for r in sweep]
    return md_table(("N", "M", "g = M/N²", "xlb mean", "xlb worst", "classic Maglev mean",
                     "classic worst", "target", "result"), rows, "rrrrrrrrl")


def maglev_push(results):
    push = [r for r in results.suite("maglev") if r["metric"].startswith("push_")]
    if not push:
        return not_measured(results, "maglev")
    return generic(results, push)


def lab_rows(results):
    """One dict per lab case: path, family, flows, cores and its three metrics."""
    by_case = {}
    for r in results.suite("lab"):
        if r["metric"] not in LAB_METRICS:
            continue  # e.g. a "skipped" note: shown in "other records" with its reason
        row = by_case.setdefault(r["case"], {"case": r["case"]})
        for key in ("path", "family", "flows", "cores", "frame_size"):
            if key in r:
                row[key] = r[key]
        row[r["metric"]] = r
    order = {p: i for i, p in enumerate(LAB_PATHS)}
    return sorted(by_case.values(),
                  key=lambda x: (order.get(x.get("path"), 99), str(x.get("family", "")),
                                 x.get("flows", 0), x.get("cores", 0), x["case"]))


def lab(results):
    rows = []
    for row in lab_rows(results):
        cells = []
        for metric in LAB_METRICS:
            r = row.get(metric)
            if r:
                results.show([r])
            cells.append(number(r["value"], r.get("unit", "")) if r else NOT_MEASURED)
        ratio = row.get("ratio_to_floor")
        extra = ratio.get("xlb_extra_ns_per_core") if ratio else None
        rows.append((row.get("path", row["case"]), row.get("family", ""), row.get("flows", ""),
                     row.get("cores", ""), *cells, bound(ratio) if ratio else "",
                     result_cell(ratio) if ratio else "—",
                     number(extra, "ns") if isinstance(extra, (int, float)) else ""))
    if not rows:
        return not_measured(results, "lab")
    return md_table(("path", "family", "flows", "cores", "floor Mpps", "xlb Mpps",
                     "xlb / floor", "target", "result", "xlb extra ns/packet/core"), rows,
                    "llrrrrrrlr")


def failures(results):
    if not results.failures:
        return "Every suite of the run produced its results."
    rows = [(f"`{f.get('suite', '?')}`", f.get("status", "failed"), f.get("detail", ""))
            for f in results.failures]
    return md_table(("suite", "status", "detail"), rows, "lll")


def other(results):
    rest = results.unshown()
    if not rest:
        return "None: every record of the run is in a table above."
    return generic(results, rest)


def summary_rows(results):
    """(suite/case, metric, value, target, result) for the terminal summary, every record."""
    rows = []
    for r in results.records:
        rows.append((f"{r['suite']}/{r['case']}", r["metric"],
                     with_unit(r["value"], r.get("unit", "")), bound(r), verdict(r) or "-"))
    return rows


def text_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
