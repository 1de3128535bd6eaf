# SPDX-License-Identifier: Apache-2.0
"""benchreport: runs xlb-bench suites for tools/bench, records the results with the machine
they ran on (bench-results/DATE.json) and renders docs/performance.md and docs/perf/*.svg.

    python3 -m benchreport run [--suites xdp,maglev] [--scale X] [--runs N] [--out DIR] ...
    python3 -m benchreport render RESULTS.json [--docs-dir DIR]

Modules: runner (suites, timeouts), machine (what the results were measured on), records
(targets, pass/fail, number formatting), tables (markdown), charts (matplotlib SVG), render
(the template performance.md.in filled in).
"""
