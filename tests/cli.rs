//! The command-line frontend: outputs and exit codes (0 pass, 1 fail,
//! 2 bad usage or unreadable input), and clear errors for bad input.

mod common;

use common::{copy_case, edit_manifest};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CASE: &str = "tf1/nb001-stacked";

fn lstm_parity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lstm-parity"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_on(root: &Path) -> Output {
    lstm_parity(&["run", "--reference", root.to_str().unwrap()])
}

#[test]
fn run_passes_and_prints_a_summary() {
    let o = lstm_parity(&["run", "nb00"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("case "), "{out}");
    assert!(
        out.contains("tf1/nb003-numpy-vs-static-rnn  float32"),
        "{out}"
    );
    assert!(
        out.trim_end().ends_with("passed, 0 failed, 0 errors"),
        "{out}"
    );
}

#[test]
fn run_json_counts_every_case() {
    let o = lstm_parity(&["run", "nb00", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 20, "10 notebook cases x 2 dtypes");
    assert_eq!(
        v["summary"]["passed"].as_u64().unwrap() as usize,
        cases.len()
    );
    assert_eq!(v["summary"]["failed"], 0);
    assert!(cases
        .iter()
        .all(|c| c["verdict"] == "pass" && c["id"].is_string()));
}

#[test]
fn list_shows_api_and_shapes() {
    let o = lstm_parity(&["list", "nb001"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn a_changed_expected_file_fails_with_output_index_and_step() {
    let (root, dir) = copy_case(CASE);
    // Change one element of the float64 per-step c of layer 1 at step 1.
    let path = dir.join("trace.1.c.f64.npy");
    let lstm_parity::tensor::Tensor::F64(mut a) =
        lstm_parity::conformance::npy::read(&path).unwrap()
    else {
        panic!("float64 file")
    };
    a[[0, 1, 2]] += 0.01;
    lstm_parity::conformance::npy::write(&path, &a.into()).unwrap();
    let o = run_on(root.path());
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("output trace/1/c: 1 of"), "{out}");
    assert!(out.contains("[0, 1, 2] (step 1)"), "{out}");
    assert!(
        out.contains("first divergence: step 1 in trace/1/c (batch 0, unit 2)"),
        "{out}"
    );
    // The float16 and bfloat16 runs stand on the same float64 truth: they fail too.
    assert!(out.contains("0 passed, 4 failed"), "{out}");
}

/// Every kind of bad input: exit 2, an error naming the case and the file.
#[test]
fn bad_input_is_a_clear_error() {
    type Breaker = fn(&Path);
    let breakers: Vec<(&str, Breaker, &str)> = vec![
        (
            "missing npy",
            |d| fs::remove_file(d.join("inputs.npy")).unwrap(),
            "inputs.npy: cannot read",
        ),
        (
            "missing case.json",
            |d| fs::remove_file(d.join("case.json")).unwrap(),
            "",
        ),
        (
            "invalid json",
            |d| fs::write(d.join("case.json"), "{ not json").unwrap(),
            "case.json: invalid case.json",
        ),
        (
            "unknown field",
            |d| edit_manifest(d, |v| v["colour"] = "blue".into()),
            "unknown field `colour`",
        ),
        (
            "newer version",
            |d| edit_manifest(d, |v| v["format_version"] = 2.into()),
            "format_version 2 is not supported",
        ),
        (
            "wrong shape",
            |d| {
                edit_manifest(d, |v| {
                    v["inputs"]["inputs"]["shape"] = serde_json::json!([2, 3, 7])
                })
            },
            "inputs.npy: shape [2, 3, 6] differs from the [2, 3, 7]",
        ),
        (
            "corrupt npy",
            |d| fs::write(d.join("inputs.npy"), b"\x93NUMPY garbage").unwrap(),
            "inputs.npy: not a valid .npy",
        ),
        (
            "truncated npy",
            |d| {
                let b = fs::read(d.join("inputs.npy")).unwrap();
                fs::write(d.join("inputs.npy"), &b[..b.len() - 4]).unwrap()
            },
            "inputs.npy: header says shape [2, 3, 6]",
        ),
        (
            "path leaves the folder",
            |d| {
                edit_manifest(d, |v| {
                    v["inputs"]["inputs"]["file"] = "../inputs.npy".into()
                })
            },
            "path \"../inputs.npy\" leaves the case folder",
        ),
        (
            "absolute path",
            |d| edit_manifest(d, |v| v["inputs"]["inputs"]["file"] = "/etc/passwd".into()),
            "leaves the case folder",
        ),
        (
            "NaN in inputs",
            |d| {
                let p = d.join("inputs.npy");
                let lstm_parity::tensor::Tensor::F32(mut a) =
                    lstm_parity::conformance::npy::read(&p).unwrap()
                else {
                    panic!()
                };
                a[[1, 2, 3]] = f32::NAN;
                lstm_parity::conformance::npy::write(&p, &a.into()).unwrap();
            },
            "inputs.npy: non-finite value NaN at index [1, 2, 3]",
        ),
        (
            "unknown dialect",
            |d| edit_manifest(d, |v| v["dialect"] = "caffe".into()),
            "unknown dialect \"caffe\"",
        ),
        (
            "unknown tolerance",
            |d| edit_manifest(d, |v| v["tolerance"] = "loose".into()),
            "unknown tolerance level \"loose\"",
        ),
    ];
    for (what, brk, message) in breakers {
        let (root, dir) = copy_case(CASE);
        let before: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        brk(&dir);
        let snapshot: Vec<(PathBuf, Vec<u8>)> = before
            .iter()
            .filter(|p| p.exists())
            .map(|p| (p.clone(), fs::read(p).unwrap()))
            .collect();
        let o = run_on(root.path());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        if !message.is_empty() {
            assert!(
                err.contains(&format!("case {CASE}")),
                "{what}: the error names the case: {err}"
            );
            assert!(
                err.contains(message),
                "{what}: expected {message:?} in: {err}"
            );
        }
        // Nothing was written or removed.
        for (p, bytes) in snapshot {
            assert_eq!(
                fs::read(&p).unwrap(),
                bytes,
                "{what}: {} changed",
                p.display()
            );
        }
    }
}

#[test]
fn empty_reference_folder_and_bad_usage_exit_2() {
    let empty = tempfile::tempdir().unwrap();
    let o = run_on(empty.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("holds no case"), "{}", stderr(&o));

    let o = lstm_parity(&["run", "no-such-case-anywhere"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no case"), "{}", stderr(&o));

    let o = lstm_parity(&["run", "--tolerance", "loose"]);
    assert_eq!(o.status.code(), Some(2));
    let o = lstm_parity(&["run", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    let o = lstm_parity(&["run", "--reference", "/no/such/folder"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/no/such/folder"), "{}", stderr(&o));
}

#[test]
fn tolerance_levels_apply() {
    // The Rust float32 LSTM is not bit-identical to TensorFlow's float32 run.
    let o = lstm_parity(&["run", CASE, "--tolerance", "exact", "--dtype", "float32"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let o = lstm_parity(&["run", CASE, "--tolerance", "default"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn list_filters_by_api_and_option() {
    let o = lstm_parity(&["list", "--api", "keras3.*"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        !out.is_empty() && out.lines().all(|l| l.contains(" keras3.")),
        "{out}"
    );
    let o = lstm_parity(&["list", "--api", "tf1.*", "--option", "peepholes"]);
    let out = stdout(&o);
    assert!(
        !out.is_empty()
            && out
                .lines()
                .all(|l| l.contains("tf1.") && l.contains("peepholes")),
        "{out}"
    );
    let o = lstm_parity(&["list", "--api", "[bad"]);
    assert_eq!(o.status.code(), Some(2));
}

/// The whole parity suite passes at the default tolerance with the fast
/// float32 activations and on one thread: both are only ways of running.
#[test]
fn suite_passes_with_fast_activations_and_one_thread() {
    for (var, value) in [
        ("LSTM_PARITY_FAST_ACTIVATIONS", "1"),
        ("LSTM_PARITY_THREADS", "1"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_lstm-parity"))
            .args(["run"])
            .env(var, value)
            .output()
            .expect("the binary runs");
        assert_eq!(
            o.status.code(),
            Some(0),
            "{var}={value}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(stdout(&o).contains(" 0 failed, 0 errors"), "{}", stdout(&o));
    }
}

/// `bench --json` prints one JSON object per line in the peers' format.
#[test]
fn bench_prints_json_lines() {
    let o = lstm_parity(&[
        "bench",
        "--json",
        "--shapes",
        "B2-T3-H8,B1-T2-H16",
        "--repeats",
        "1",
        "--min-time",
        "0",
        "--threads",
        "1",
        "--activations",
        "both",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["impl"], "lstm-parity");
    assert_eq!(lines[1]["impl"], "lstm-parity-fast");
    assert_eq!(lines[0]["shape"], "B2-T3-H8");
    assert_eq!(lines[2]["shape"], "B1-T2-H16");
    for l in &lines {
        assert_eq!(l["dtype"], "float32");
        assert!(l["ms"].as_f64().unwrap() > 0.0 && l["gflops"].as_f64().unwrap() > 0.0);
    }
    let bad = lstm_parity(&["bench", "--shapes", "B2-T3"]);
    assert_eq!(bad.status.code(), Some(2));
}
