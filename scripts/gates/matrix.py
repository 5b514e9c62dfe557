#!/usr/bin/env python3
"""Compatibility matrix of the gate, as Markdown, from committed results.

    matrix.py [--into docs/compatibility.md] [--index EXPORT_DIR ...] REPORT.json ...

REPORT.json are `lstm-parity check --report X.json` reports (one per
implementation and layout). Each case carries the features it exercises
(`features`, from the canonical steps: peepholes, reverse,
sequence_lengths, ...). The first table has one row per feature and one
column per report: cases passed / cases checked, expected failures, and
cases the layout could not express (not exported).

With --index, the export folders of any layouts (their index.json) give a
second table: per layout, how many cases with each feature the layout can
express, whatever the implementation.

With --into FILE, the tables replace the text between the lines
`<!-- gate-matrix:begin -->` and `<!-- gate-matrix:end -->`; otherwise
they are printed.
"""

import argparse
import json
import os
import sys

BEGIN = "<!-- gate-matrix:begin -->"
END = "<!-- gate-matrix:end -->"

# Row order; features not listed here follow alphabetically.
ORDER = [
    "plain",
    "forget_bias",
    "peepholes",
    "cell_clip",
    "projection",
    "proj_clip",
    "activations",
    "stacked",
    "reverse",
    "bidirectional",
    "initial_state",
    "sequence_lengths",
    "zero_length",
    "mask",
    "masked_repeat",
    "one_step",
    "chained_steps",
]


def rows_of(features):
    known = [f for f in ORDER if f in features]
    return ["all cases"] + known + sorted(f for f in features if f not in ORDER)


def load(path):
    with open(path) as f:
        return json.load(f)


def report_table(reports):
    columns = []
    features = set()
    for path in reports:
        r = load(path)
        gate = r.get("gate") or {}
        implementation = gate.get("implementation", "?").split(" (")[0]
        # The report's name (IMPL.layout.json) tells two columns of one
        # runtime apart (litert and litert-dynamic).
        impl = os.path.basename(path).split(".")[0]
        title = f"**{impl}**<br>{implementation}<br>`{gate.get('layout', '?')}` {gate.get('dtype', '')}"
        cases = [(c["features"], c["verdict"]) for c in r["cases"]]
        skipped = [k["features"] for k in r.get("skipped", [])]
        errors = len(r.get("errors", []))
        for fs, _ in cases:
            features.update(fs)
        for fs in skipped:
            features.update(fs)
        columns.append((title, cases, skipped, errors))
    lines = ["| feature | " + " | ".join(c[0] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows_of(features):
        cells = []
        for _, cases, skipped, _ in columns:
            has = (lambda fs: True) if row == "all cases" else (lambda fs, row=row: row in fs)
            checked = [v for fs, v in cases if has(fs)]
            passed = sum(v == "pass" for v in checked)
            xfail = sum(v == "xfail" for v in checked)
            failed = len(checked) - passed - xfail
            not_exported = sum(has(fs) for fs in skipped)
            if not checked and not not_exported:
                cells.append("")
                continue
            if not checked:
                cell = "not expressible"
            else:
                mark = "✅" if passed == len(checked) else ("❌" if passed == 0 else "⚠️")
                cell = f"{mark} {passed}/{len(checked)}"
                extra = []
                if xfail:
                    extra.append(f"{xfail} expected failure{'s' if xfail > 1 else ''}")
                if failed:
                    extra.append(f"{failed} FAILED")
                if extra:
                    cell += " (" + ", ".join(extra) + ")"
            if not_exported:
                cell += f"; {not_exported} not exported"
            cells.append(cell)
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def layout_table(index_dirs):
    columns = []
    features = set()
    for d in index_dirs:
        index = load(os.path.join(d, "index.json"))
        cases = [(c["features"], c["exported"]) for c in index["cases"]]
        for fs, _ in cases:
            features.update(fs)
        columns.append((f"`{index['layout']}`", cases))
    lines = ["| feature | " + " | ".join(c[0] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows_of(features):
        cells = []
        for _, cases in columns:
            rel = [e for fs, e in cases if row == "all cases" or row in fs]
            if not rel:
                cells.append("")
                continue
            n = sum(rel)
            cells.append(f"{n}/{len(rel)}" if n else f"0/{len(rel)}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+")
    p.add_argument("--into")
    p.add_argument("--index", nargs="*", default=[])
    a = p.parse_args()
    text = "Results (cases passed / checked):\n\n" + report_table(a.reports) + "\n"
    if a.index:
        text += "\nWhat each layout can express (cases exported / cases with the feature):\n\n" + layout_table(a.index) + "\n"
    if not a.into:
        print(text, end="")
        return
    with open(a.into) as f:
        readme = f.read()
    if BEGIN not in readme or END not in readme:
        sys.exit(f"matrix.py: {a.into} has no {BEGIN} ... {END} section")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{text}{END}{tail}"
    tmp = a.into + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, a.into)


if __name__ == "__main__":
    main()
