#!/usr/bin/env python3
"""Turn benchmark JSON lines (lstm-parity bench --json, bench_peers.py --json)
into one Markdown table: per shape, every implementation's ms and GFLOP/s,
and for each lstm-parity variant the ratio best peer time / its time
(> 1: lstm-parity is faster).

    scripts/bench_table.py RESULTS.jsonl

The file may hold several rounds (scripts/bench_all --rounds N): the k-th
line of an implementation at a shape belongs to round k. ms and GFLOP/s are
then medians over the rounds, and the ratio column gives the median of the
per-round ratios (each round's best peer against ours in that round) and
their range. The last column compares fastest rounds: the best peer's
fastest round against our fastest round (on a shared machine, the least
disturbed run of each; the same rule for every implementation).
"""

import json
import statistics
import sys

OURS = ("lstm-parity", "lstm-parity-fast")


def rounds_of(rows):
    """{(shape, impl): [ms of round 1, ms of round 2, ...]} for float32."""
    out = {}
    for r in rows:
        if r["dtype"] == "float32":
            out.setdefault((r["shape"], r["impl"]), []).append(r["ms"])
    return out


def ratio_text(ours, peers):
    """Median and range of the per-round best-peer / ours ratios, and the
    peer that was fastest most often."""
    n = min([len(ours)] + [len(v) for v in peers.values()])
    ratios, winners = [], []
    for k in range(n):
        name, best = min(((p, v[k]) for p, v in peers.items()), key=lambda x: x[1])
        ratios.append(best / ours[k])
        winners.append(name)
    if not ratios:
        return ""
    winner = max(set(winners), key=winners.count)
    text = f"{statistics.median(ratios):.2f}x"
    if len(ratios) > 1:
        text += f" ({min(ratios):.2f}-{max(ratios):.2f})"
    return f"{text} vs {winner}"


def fastest_text(ours, peers):
    """The fastest round of the fastest peer / our fastest round."""
    if not ours or not peers:
        return ""
    name, best = min(((p, min(v)) for p, v in peers.items() if v), key=lambda x: x[1])
    return f"{best / min(ours):.2f}x vs {name}"


def main() -> int:
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip().startswith("{")]
    table = rounds_of(rows)
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    rounds = max((len(v) for v in table.values()), default=0)
    print(f"| shape | implementation | ms | GFLOP/s | best peer / this{' (range over ' + str(rounds) + ' rounds)' if rounds > 1 else ''} | fastest rounds: best peer / this |")
    print("|---|---|---:|---:|---:|---:|")
    for shape in shapes:
        here = {impl: ms for (s, impl), ms in table.items() if s == shape}
        peers = {impl: ms for impl, ms in here.items() if impl not in OURS}
        gflops = {r["impl"]: r["gflops"] * r["ms"] for r in rows if r["shape"] == shape}
        order = sorted(here, key=lambda i: (i not in OURS, statistics.median(here[i])))
        for impl in order:
            ms = statistics.median(here[impl])
            # GFLOP/s from the median time (gflops * ms is the shape's work).
            rate = gflops[impl] / ms
            ratio = ratio_text(here[impl], peers) if impl in OURS and peers else ""
            fastest = fastest_text(here[impl], peers) if impl in OURS and peers else ""
            print(f"| {shape} | {impl} | {ms:.2f} | {rate:.1f} | {ratio} | {fastest} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
