# SPDX-License-Identifier: Apache-2.0
"""The results of one tools/bench run and what a record means.

A record is one xlb-bench JSON line (design.md section 6):
    {"suite", "case", "metric", "value", "unit", optional "target", extra fields...}
A target is an upper bound, except for the metrics in HIGHER_IS_BETTER, where it is a lower one.
"""
import math

# Metrics where more is better: the target is a minimum.
HIGHER_IS_BETTER = {"ratio_to_floor", "xlb_mpps", "floor_mpps", "events_per_s"}

NOT_MEASURED = "not measured"


def is_record(obj):
    """True for a well-formed result record (anything else on stdout is progress)."""
    return (isinstance(obj, dict) and isinstance(obj.get("suite"), str)
            and isinstance(obj.get("case"), str) and isinstance(obj.get("metric"), str)
            and isinstance(obj.get("value"), (int, float)) and not isinstance(obj["value"], bool))


def verdict(record):
    """'pass' or 'FAIL' against the record's target; None when it has none."""
    target = record.get("target")
    if not isinstance(target, (int, float)):
        return None
    value = record["value"]
    if not math.isfinite(value):
        return "FAIL"
    ok = value >= target if record["metric"] in HIGHER_IS_BETTER else value <= target
    return "pass" if ok else "FAIL"


def bound(record):
    """The target as a reader sees it: '≤ 141' or '≥ 0.9'; '' without one."""
    target = record.get("target")
    if not isinstance(target, (int, float)):
        return ""
    sign = "≥" if record["metric"] in HIGHER_IS_BETTER else "≤"
    return f"{sign} {target:g}"


def number(value, unit=""):
    """A value with as many digits as the measurement deserves."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if unit == "ratio":
        return f"{value:.3f}"
    if unit == "Mpps":
        return f"{value:.2f}"
    mag = abs(value)
    if mag >= 1000:
        return f"{value:,.0f}"
    if mag >= 100:
        return f"{value:.0f}"
    if mag >= 10:
        return f"{value:.1f}"
    if mag >= 1 or value == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def with_unit(value, unit):
    text = number(value, unit)
    if unit in ("", "ratio"):
        return text
    if unit == "%":
        return text + " %"
    return f"{text} {unit}"


class Results:
    """A results document ({"meta", "results", "failures"}) with lookups.

    Lookups remember which records were shown, so the report can list the rest instead of
    dropping them silently.
    """

    def __init__(self, doc):
        self.meta = doc.get("meta", {})
        self.records = [r for r in doc.get("results", []) if is_record(r)]
        self.failures = doc.get("failures", [])
        self._shown = set()

    def suite(self, name, metric=None):
        return [r for r in self.records
                if r["suite"] == name and (metric is None or r["metric"] == metric)]

    def get(self, suite, case, metric):
        for r in self.records:
            if r["suite"] == suite and r["case"] == case and r["metric"] == metric:
                return r
        return None

    def show(self, records):
        """Marks records as shown (in a table or chart) and returns them."""
        for r in records:
            self._shown.add(id(r))
        return records

    def unshown(self):
        return [r for r in self.records if id(r) not in self._shown]

    def suite_status(self, name):
        """(status, detail): status is 'ok', 'missing', 'timeout', 'failed' or 'not run'."""
        info = self.meta.get("suites", {}).get(name)
        if info is None:
            if self.suite(name):
                return "ok", ""
            return "not run", "not part of this run"
        return info.get("status", "ok"), info.get("detail", "")

    def suites(self):
        """Suite names in run order, then any that only appear in records."""
        names = list(self.meta.get("suites", {}))
        for r in self.records:
            if r["suite"] not in names:
                names.append(r["suite"])
        return names
