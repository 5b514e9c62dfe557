"""Compare a fresh recording with the committed references (used by `regenerate --check`).

Usage: check_recording.py REFERENCE_ROOT NEW_ROOT [--suites tf1 keras3 block tfkeras]

For every suite recorded under NEW_ROOT (default: the suites present there),
it fails, naming the case and the file, when:
  * the set of case ids differs, or a case folder holds a different set of files;
  * a case.json differs in anything but `provenance.versions`;
  * a variable or input .npy (or any other array the manifest references outside
    `expected`, such as notebook_printed) differs in any bit: dtype, shape, bytes;
  * a reduced-precision sidecar (reduced.json) differs in anything but
    `provenance.versions`, or one of its arrays (`*.f16.npy`, `*.bf16.npy`)
    differs in any bit (TF's float16/bfloat16 results are compared exactly);
  * an expected output differs beyond
        float32: |a - b| <= 1e-6  * max(1, |b|)
        float64: |a - b| <= 1e-12 * max(1, |b|)
    elementwise (b = committed value); NaN must meet NaN and inf the same inf.
Exit status 0 when everything matches, 1 otherwise (every difference is listed).
"""

import argparse
import json
import pathlib
import sys

import numpy as np

RELATIVE_TOLERANCE = {np.dtype("<f4"): 1e-6, np.dtype("<f8"): 1e-12}


def case_ids(suite_dir):
    return sorted(str(p.parent.relative_to(suite_dir)) for p in suite_dir.rglob("case.json")
                  if not any(part.startswith(".") for part in p.relative_to(suite_dir).parts))


def without_versions(manifest):
    manifest = json.loads(json.dumps(manifest))
    manifest.get("provenance", {}).pop("versions", None)
    return manifest


def compare_expected(old, new):
    """None if `new` is within tolerance of `old`, else a short reason."""
    if old.dtype != new.dtype or old.shape != new.shape:
        return f"dtype/shape {new.dtype}{new.shape} != {old.dtype}{old.shape}"
    if old.dtype not in RELATIVE_TOLERANCE:
        return None if np.array_equal(old, new) else "differs"
    old64, new64 = old.astype(np.float64), new.astype(np.float64)
    nan_old, nan_new = np.isnan(old64), np.isnan(new64)
    if not np.array_equal(nan_old, nan_new):
        return "NaN positions differ"
    inf = np.isinf(old64) | np.isinf(new64)
    if not np.array_equal(old64[inf], new64[inf]):
        return "inf values differ"
    finite = ~(nan_old | inf)
    limit = RELATIVE_TOLERANCE[old.dtype] * np.maximum(1.0, np.abs(old64))
    excess = np.where(finite, np.abs(new64 - old64) - limit, -np.inf)
    if excess.size and excess.max() > 0:
        index = np.unravel_index(int(np.argmax(excess)), excess.shape)
        return (f"{int(np.sum(excess > 0))} element(s) beyond tolerance; worst at {list(map(int, index))}: "
                f"new {float(new64[index])!r}, committed {float(old64[index])!r}")
    return None


def bit_equal(old_path, new_path):
    old, new = np.load(old_path, allow_pickle=False), np.load(new_path, allow_pickle=False)
    return old.dtype == new.dtype and old.shape == new.shape and old.tobytes() == new.tobytes()


def check_case(case_id, old_dir, new_dir):
    problems = []
    old_files = sorted(p.name for p in old_dir.iterdir())
    new_files = sorted(p.name for p in new_dir.iterdir())
    if old_files != new_files:
        problems.append(f"{case_id}: files differ: only committed {sorted(set(old_files) - set(new_files))}, "
                        f"only new {sorted(set(new_files) - set(old_files))}")
        return problems
    old_manifest = json.loads((old_dir / "case.json").read_text(encoding="utf-8"))
    new_manifest = json.loads((new_dir / "case.json").read_text(encoding="utf-8"))
    if without_versions(old_manifest) != without_versions(new_manifest):
        problems.append(f"{case_id}: case.json differs (beyond provenance.versions)")
        return problems
    sidecar_files = set()
    if "reduced.json" in new_files:
        old_sidecar = json.loads((old_dir / "reduced.json").read_text(encoding="utf-8"))
        new_sidecar = json.loads((new_dir / "reduced.json").read_text(encoding="utf-8"))
        if without_versions(old_sidecar) != without_versions(new_sidecar):
            problems.append(f"{case_id}: reduced.json differs (beyond provenance.versions)")
            return problems
        sidecar_files = {file for run in new_sidecar["runs"].values() for file in run["expected"].values()}
    expected_files = {entry[dtype] for entry in new_manifest["expected"].values()
                      for dtype in ("float32", "float64") if entry.get(dtype)}
    for name in new_files:
        if not name.endswith(".npy"):
            continue
        if name in expected_files:
            reason = compare_expected(np.load(old_dir / name, allow_pickle=False),
                                      np.load(new_dir / name, allow_pickle=False))
            if reason:
                problems.append(f"{case_id}: {name}: expected output differs: {reason}")
        elif name in sidecar_files:
            if not bit_equal(old_dir / name, new_dir / name):
                problems.append(f"{case_id}: {name}: reduced-precision result differs (must be bit-identical)")
        elif not bit_equal(old_dir / name, new_dir / name):
            problems.append(f"{case_id}: {name}: variable/input array differs (must be bit-identical)")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=pathlib.Path)
    parser.add_argument("new", type=pathlib.Path)
    parser.add_argument("--suites", nargs="+", help="suites to compare (default: those under NEW)")
    args = parser.parse_args()
    suites = args.suites or sorted(p.name for p in args.new.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not suites:
        sys.exit(f"no suites under {args.new}")
    problems, compared = [], 0
    for suite in suites:
        old_suite, new_suite = args.reference / suite, args.new / suite
        if not old_suite.is_dir():
            problems.append(f"{suite}: no committed suite at {old_suite}")
            continue
        old_ids, new_ids = case_ids(old_suite), case_ids(new_suite)
        for case in sorted(set(old_ids) - set(new_ids)):
            problems.append(f"{suite}/{case}: committed but not recorded any more")
        for case in sorted(set(new_ids) - set(old_ids)):
            problems.append(f"{suite}/{case}: recorded but not committed")
        for case in sorted(set(old_ids) & set(new_ids)):
            problems.extend(check_case(f"{suite}/{case}", old_suite / case, new_suite / case))
            compared += 1
    for problem in problems:
        print(f"MISMATCH {problem}", file=sys.stderr)
    if problems:
        print(f"check_recording: {len(problems)} difference(s) in suites {', '.join(suites)}", file=sys.stderr)
        sys.exit(1)
    print(f"check_recording: {compared} cases in suites {', '.join(suites)} match the committed references")


if __name__ == "__main__":
    main()
