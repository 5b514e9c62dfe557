#!/usr/bin/env python3
"""Turn benchmark JSON lines (lstm-parity bench --json, bench_peers.py --json)
into one Markdown table: per shape, every implementation's ms and GFLOP/s,
and for each lstm-parity variant the ratio best peer time / its time
(> 1: lstm-parity is faster).

    scripts/bench_table.py RESULTS.jsonl
"""

import json
import sys

OURS = ("lstm-parity", "lstm-parity-fast")


def main() -> int:
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip().startswith("{")]
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    print("| shape | implementation | ms | GFLOP/s | best peer / this |")
    print("|---|---|---:|---:|---:|")
    for shape in shapes:
        here = [r for r in rows if r["shape"] == shape and r["dtype"] == "float32"]
        peers = [r for r in here if r["impl"] not in OURS]
        best = min(peers, key=lambda r: r["ms"]) if peers else None
        for r in sorted(here, key=lambda r: (r["impl"] not in OURS, r["ms"])):
            ratio = ""
            if r["impl"] in OURS and best:
                ratio = f"{best['ms'] / r['ms']:.2f}x (vs {best['impl']})"
            print(f"| {shape} | {r['impl']} | {r['ms']:.2f} | {r['gflops']:.1f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
