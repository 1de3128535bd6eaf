# SPDX-License-Identifier: Apache-2.0
"""SVG charts of one run (matplotlib, Debian's python3-matplotlib).

Deterministic output: a fixed svg.hashsalt (element ids), no date in the metadata and text
kept as text, so a regenerated chart differs from the committed one only when a number does.
Each chart function returns the path it wrote, or None when the run has nothing to draw; the
caller removes a stale file in that case.
"""
import os

from . import tables
from .records import number, verdict

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # reported by available(); tables are still rendered
    plt = None

FLOOR = "#b0b0b0"
XLB = "#1f77b4"
REFERENCE = "#d62728"
TARGET = "#000000"


def available():
    return plt is not None


def _style():
    plt.rcParams.update({
        "svg.hashsalt": "xlb-benchreport",
        "svg.fonttype": "none",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    })


def _once(label):
    """A legend label for the first call only (one legend entry per kind of mark)."""
    left = [label]
    return lambda: left.pop() if left else None


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return path


def xdp(results, path):
    """ns per packet of each data path: the floor of its run plus the case's delta."""
    cases = [r for r in tables.xdp_cases(results) if "floor_ns" in r]
    if not cases:
        return None
    cases = list(reversed(cases))  # first case on top
    labels = [r["case"] for r in cases]
    floors = [r["floor_ns"] for r in cases]
    deltas = [r["value"] for r in cases]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(cases) + 1.6))
    y = range(len(cases))
    ax.barh(list(y), floors, color=FLOOR, label="XDP_TX floor (same run)")
    ax.barh(list(y), deltas, left=floors, color=XLB, label="xlb: Δ over the floor")
    label = _once("floor + target Δ")
    for i, r in enumerate(cases):
        end = r["floor_ns"] + r["value"]
        ax.text(end + 5, i, f"Δ {number(r['value'], 'ns')}", va="center", fontsize=8)
        if "target" in r:
            t = r["floor_ns"] + r["target"]
            ax.plot([t, t], [i - 0.4, i + 0.4], color=TARGET, lw=1.5, label=label())
    ax.set_yticks(list(y), labels)
    ax.set_xlabel("ns per packet (BPF_PROG_TEST_RUN, kernel run-time stats)")
    ax.set_xlim(0, max(f + max(d, r.get("target", 0)) for f, d, r in zip(floors, deltas, cases))
                * 1.15)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    ax.set_title("Data path cost per packet against the XDP_TX floor")
    return _save(fig, path)


def lab(results, path):
    """Mpps forwarded by xlb and by the XDP_TX reflector, per lab case, one panel per core count."""
    rows = [r for r in tables.lab_rows(results) if "xlb_mpps" in r and "floor_mpps" in r]
    if not rows:
        return None
    cores = sorted({r.get("cores", 0) for r in rows})
    longest = max(sum(1 for r in rows if r.get("cores", 0) == c) for c in cores)
    fig, axes = plt.subplots(1, len(cores), figsize=(4.2 * len(cores) + 1.5, 0.32 * longest + 1.4),
                             squeeze=False, sharey=False)
    top = max(max(r["xlb_mpps"]["value"], r["floor_mpps"]["value"]) for r in rows) * 1.3
    for ax, c in zip(axes[0], cores):
        panel = list(reversed([r for r in rows if r.get("cores", 0) == c]))
        y = range(len(panel))
        floor = [r["floor_mpps"]["value"] for r in panel]
        xlb = [r["xlb_mpps"]["value"] for r in panel]
        ax.barh([i + 0.2 for i in y], floor, height=0.4, color=FLOOR, label="XDP_TX reflector")
        ax.barh([i - 0.2 for i in y], xlb, height=0.4, color=XLB, label="xlb")
        for i, r in enumerate(panel):
            ratio = r.get("ratio_to_floor")
            if ratio:
                ax.text(max(floor[i], xlb[i]) + top * 0.01, i, f"{ratio['value']:.2f}×",
                        va="center", fontsize=7,
                        color=REFERENCE if verdict(ratio) == "FAIL" else TARGET)
        ax.set_yticks(list(y), [_lab_label(r) for r in panel], fontsize=7)
        ax.set_xlim(0, top)
        ax.set_xlabel("Mpps")
        ax.set_title(f"{c} core{'s' if c != 1 else ''}")
    axes[0][0].legend(loc="lower right", frameon=False, fontsize=7)
    fig.suptitle("Lab throughput: xlb against the XDP_TX floor (ratio at each bar, red: "
                 "below target)")
    return _save(fig, path)


def _lab_label(row):
    flows = row.get("flows")
    flows = f", {flows:,} flow{'s' if flows != 1 else ''}" if isinstance(flows, int) else ""
    return f"{row.get('path', row['case'])} {row.get('family', '')}{flows}"


def maglev(results, path):
    """Disruption (moved slots / slots of the removed backend) against the backend count."""
    sweep = tables.maglev_sweep_records(results)
    if not sweep:
        return None
    n = [r["backends"] for r in sweep]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.plot(n, [r["value"] for r in sweep], "o-", color=XLB, label="xlb (banded race), mean")
    ax.plot(n, [r.get("worst", r["value"]) for r in sweep], "v", color=XLB, alpha=0.6,
            label="xlb, worst of the trials")
    if all("maglev_turns" in r for r in sweep):
        ax.plot(n, [r["maglev_turns"] for r in sweep], "s--", color=REFERENCE,
                label="classic Maglev, mean")
    target = sweep[0].get("target")
    if target:
        ax.axhline(target, color=TARGET, ls=":", lw=1, label=f"target ≤ {target:g}")
    ax.axhline(1.0, color=FLOOR, lw=1, label="ideal (only the removed backend's flows move)")
    ax.set_xscale("log")
    ax.set_xticks(n, [str(x) for x in n])
    ax.minorticks_off()
    ax.set_xlabel("backends N (ring size as xlb picks it: ≥ 65537, ≥ 100·N)")
    ax.set_ylabel("slots moved / slots of removed backend")
    ax.set_ylim(bottom=0.9)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Maglev disruption when one of N backends is removed")
    return _save(fig, path)


def _reaction_panel(ax, records, whisker_keys, whisker_label, budget_label, title):
    records = list(reversed(records))
    y = range(len(records))
    values = [r["value"] for r in records]
    ax.barh(list(y), values, color=XLB, height=0.5, label="median")
    spread, budget = _once(whisker_label), _once(budget_label)
    for i, r in enumerate(records):
        hi = next((r[k] for k in whisker_keys if k in r), None)
        if hi is not None:
            ax.plot([r.get("min", r["value"]), hi], [i, i], color=TARGET, lw=1, label=spread())
        if "target" in r:
            ax.plot([r["target"]] * 2, [i - 0.35, i + 0.35], color=REFERENCE, lw=2,
                    label=budget())
    ax.set_yticks(list(y), [r["case"] for r in records])
    ax.set_xlabel("ms")
    ax.set_xlim(left=0)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))


def reaction(results, path):
    """Health: failure → ring without the backend; discovery: etcd put → change in the maps."""
    health = results.suite("health", "detect_to_map_ms")
    disc = results.suite("discovery", "etcd_event_to_map_ms")
    panels = [p for p in ((health, ("max",), "min – max", "budget:\nfall × interval + 50 ms",
                           "Health: backend fails → the ring in the BPF map no longer names it"),
                          (disc, ("p99", "max"), "median – p99", "target",
                           "Discovery: etcd put → change reconciled into the BPF maps")) if p[0]]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 1.7 * len(panels) + 0.6),
                             squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        _reaction_panel(ax, *panel)
    return _save(fig, path)


CHARTS = (
    ("xdp", xdp, "ns/packet per data path against the XDP_TX floor"),
    ("lab", lab, "Mpps of xlb against the XDP_TX floor per lab case"),
    ("maglev", maglev, "Maglev disruption against N"),
    ("reaction", reaction, "reaction times of health checks and discovery"),
)


def draw_all(results, out_dir):
    """{name: file path or None}; stale files of charts with nothing to draw are removed."""
    drawn = {}
    if not available():
        return {name: None for name, _, _ in CHARTS}
    _style()
    os.makedirs(out_dir, exist_ok=True)
    for name, fn, _ in CHARTS:
        path = os.path.join(out_dir, f"{name}.svg")
        drawn[name] = fn(results, path)
        if drawn[name] is None and os.path.exists(path):
            os.remove(path)
    return drawn
