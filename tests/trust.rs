//! Trust in the gate, one test per class of bad input: the verdict never
//! passes a wrong output (silent pass), the tool never deletes or
//! overwrites a file it does not own (harm to files), no input makes it
//! wait or read without bound (unbounded work), and bad input is a message,
//! never a panic (panics and messages). Then two metamorphic properties: a
//! wrong output never passes, and a changed input is always refused.
//!
//! Through the command line wherever the command line is the contract
//! (exit codes, messages, what happens to files); every command runs with
//! a timeout, so a hang fails the test instead of stalling it. Each class
//! asserts the exact exit code and the key words of the message, and the
//! file-harm classes assert that the user's files are byte-identical
//! afterwards. `docs/bad-input.md` lists the classes for users.

mod common;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read as _;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{reference, rust_implementation, scratch};
use lstm_parity::conformance::gate::{self, CheckOptions, ExportIndex, ExportOptions, GateError};
use lstm_parity::conformance::report::Report;
use lstm_parity::conformance::{self, fsio, npy, Dtype, Filter};
use lstm_parity::dialect::layout::Layout;
use lstm_parity::tensor::Tensor;

const RAND001: &str = "tf1/rand-001-basic-dyn";
const NB003: &str = "tf1/nb003-numpy-vs-static-rnn";
/// A Keras 3 `Bidirectional(LSTM)` with `merge_mode="ave"`, no mask.
const BIDI_AVE: &str = "keras3/grid-046-bidi-ave-bwgiven-asig-nobias-seq-state";

/// How long any command may take before the test calls it a hang.
const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Running the binary.

/// What a command did.
struct Ran {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    what: String,
}

impl Ran {
    fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Assert the exit code, no panic, and that the output holds every
    /// one of `words`.
    #[track_caller]
    fn expect(&self, code: i32, words: &[&str]) -> &Self {
        let t = self.text();
        assert_eq!(
            self.code,
            Some(code),
            "{}: exit {:?} (signal {:?}), expected {code}:\n{t}",
            self.what,
            self.code,
            self.signal
        );
        assert!(!t.contains("panicked"), "{}: panicked:\n{t}", self.what);
        for w in words {
            assert!(t.contains(w), "{}: expected {w:?} in:\n{t}", self.what);
        }
        self
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lstm-parity"))
}

fn describe(cmd: &Command) -> String {
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    format!("lstm-parity {}", args.join(" "))
}

/// Run `cmd` to completion within `timeout` (killed and failed otherwise),
/// its output captured in files (a full pipe cannot stall it).
fn run_cmd(mut cmd: Command, timeout: Duration) -> Ran {
    let what = describe(&cmd);
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("the binary runs");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: did not return within {timeout:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let read = |mut f: fs::File| {
        use std::io::Seek as _;
        f.rewind().unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        String::from_utf8_lossy(&b).into_owned()
    };
    let ran = Ran {
        code: status.code(),
        signal: status.signal(),
        stdout: read(out),
        stderr: read(err),
        elapsed,
        what,
    };
    if std::env::var_os("TRUST_SHOW").is_some() {
        eprintln!(
            "--- {} (exit {:?}, signal {:?}, {:?})\n{}",
            ran.what,
            ran.code,
            ran.signal,
            ran.elapsed,
            ran.text()
        );
    }
    ran
}

fn cli<I, S>(args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = bin();
    cmd.args(args);
    run_cmd(cmd, TIMEOUT)
}

/// [`cli`] in the folder `dir`.
fn cli_in<I, S>(dir: &Path, args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = bin();
    cmd.args(args).current_dir(dir);
    run_cmd(cmd, TIMEOUT)
}

fn os(p: &Path) -> &OsStr {
    p.as_os_str()
}

/// `export --layout LAYOUT --out OUT --reference ROOT EXTRA...` through the
/// command line.
fn export_cli(layout: &str, out: &Path, root: &Path, extra: &[&str]) -> Ran {
    let mut args = vec![
        OsStr::new("export"),
        OsStr::new("--layout"),
        OsStr::new(layout),
        OsStr::new("--out"),
        os(out),
        OsStr::new("--reference"),
        os(root),
    ];
    args.extend(extra.iter().map(OsStr::new));
    cli(args)
}

// ---------------------------------------------------------------------------
// Files.

/// Every entry below `root` (and `root` itself, as ""), with what it is:
/// a folder, a file with the SHA-256 of its bytes, a link with its target.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let Ok(m) = fs::symlink_metadata(p) else {
            out.insert(rel, "absent".into());
            return;
        };
        let t = m.file_type();
        if t.is_symlink() {
            let target = fs::read_link(p).unwrap();
            out.insert(rel, format!("link -> {}", target.display()));
        } else if t.is_dir() {
            out.insert(rel, "folder".into());
            let mut names: Vec<_> = fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            for n in names {
                walk(root, &n, out);
            }
        } else if t.is_file() {
            out.insert(rel, fsio::sha256(&fs::read(p).unwrap()));
        } else {
            out.insert(rel, format!("{:?}", t));
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[track_caller]
fn assert_same(before: &BTreeMap<PathBuf, String>, root: &Path, what: &str) {
    let after = snapshot(root);
    if &after != before {
        let mut diff = Vec::new();
        for (k, v) in before {
            if after.get(k) != Some(v) {
                diff.push(format!("{}: {v} -> {:?}", k.display(), after.get(k)));
            }
        }
        for k in after.keys().filter(|k| !before.contains_key(*k)) {
            diff.push(format!("{}: new", k.display()));
        }
        panic!("{what}: {} changed:\n{}", root.display(), diff.join("\n"));
    }
}

fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        let to = dst.join(e.file_name());
        if t.is_dir() {
            copy_tree(&e.path(), &to);
        } else if t.is_symlink() {
            symlink(fs::read_link(e.path()).unwrap(), &to).unwrap();
        } else {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// A reference root holding copies of the recorded cases `ids`.
fn reference_of(ids: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = scratch();
    let root = tmp.path().join("reference");
    for id in ids {
        copy_tree(&reference().join(id), &root.join(id));
    }
    (tmp, root)
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn read_f32(path: &Path) -> ndarray::ArrayD<f32> {
    match npy::read(path).unwrap() {
        Tensor::F32(a) => a,
        other => panic!("{}: {}", path.display(), other.dtype()),
    }
}

/// Set element `k` (in C order, modulo the size) of a float `.npy` file.
fn set_element(path: &Path, k: usize, mut value: impl FnMut(f64) -> f64) {
    let t = npy::read(path).unwrap();
    let t = match t {
        Tensor::F32(mut a) => {
            let n = a.len();
            let v = a.iter_mut().nth(k % n).unwrap();
            *v = value(f64::from(*v)) as f32;
            Tensor::F32(a)
        }
        Tensor::F64(mut a) => {
            let n = a.len();
            let v = a.iter_mut().nth(k % n).unwrap();
            *v = value(*v);
            Tensor::F64(a)
        }
        other => panic!("{}: {}", path.display(), other.dtype()),
    };
    npy::write(path, &t).unwrap();
}

/// Files (relative paths) below `dir`, sorted.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    snapshot(dir)
        .into_iter()
        .filter(|(_, v)| v.starts_with("sha256:"))
        .map(|(k, _)| k)
        .collect()
}

// ---------------------------------------------------------------------------
// Exports and outputs made with the Rust LSTM.

fn export_lib(
    root: &Path,
    filter: &[&str],
    dir: &Path,
    layout: Layout,
    dtype: Dtype,
) -> ExportIndex {
    let s = conformance::select(root, &Filter::new(filter).unwrap()).unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert!(!s.cases.is_empty(), "{filter:?} selects nothing");
    gate::export(
        root,
        &s.cases,
        dir,
        &ExportOptions {
            selected_by: None,
            layout,
            dtype,
            forget_bias: None,
            interrupt: None,
        },
    )
    .unwrap()
}

fn check_lib(root: &Path, export: &Path, outputs: &Path) -> Result<Report, GateError> {
    gate::check(&CheckOptions {
        export_dir: export,
        outputs_dir: outputs,
        reference: root,
        tolerance: None,
        expectations: None,
        precision: None,
    })
}

/// A passing gate: a copy of the reference cases `ids`, their export in
/// `layout` and the Rust LSTM's outputs.
struct Gate {
    tmp: tempfile::TempDir,
    root: PathBuf,
    export: PathBuf,
    outputs: PathBuf,
}

/// Remove every file of `dir`, returning them to [`put_back`].
fn take_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let saved: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), fs::read(&p).unwrap()))
        .collect();
    for (p, _) in &saved {
        fs::remove_file(p).unwrap();
    }
    saved
}

/// Write back the files [`take_files`] took.
fn put_back(saved: &[(PathBuf, Vec<u8>)]) {
    for (p, bytes) in saved {
        fs::write(p, bytes).unwrap();
    }
}

impl Gate {
    fn new(ids: &[&str], layout: Layout, dtype: Dtype, traces: bool) -> Gate {
        let (tmp, root) = reference_of(ids);
        let export = tmp.path().join("export");
        let outputs = tmp.path().join("outputs");
        export_lib(&root, &[], &export, layout, dtype);
        match dtype {
            Dtype::F32 => rust_implementation::<f32>(&export, &outputs, traces),
            _ => rust_implementation::<f64>(&export, &outputs, traces),
        }
        let g = Gate {
            tmp,
            root,
            export,
            outputs,
        };
        let r = check_lib(&g.root, &g.export, &g.outputs).unwrap();
        assert_eq!(r.exit_code(), 0, "{}", conformance::report::table(&r));
        g
    }

    /// `check` through the command line, with `extra` arguments.
    fn check(&self, extra: &[&OsStr]) -> Ran {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("check"),
            OsStr::new("--outputs"),
            os(&self.outputs),
            OsStr::new("--export"),
            os(&self.export),
            OsStr::new("--reference"),
            os(&self.root),
        ];
        args.extend_from_slice(extra);
        cli(args)
    }

    fn step(&self, id: &str, step: &str) -> PathBuf {
        self.outputs.join(id).join(step)
    }
}

// ===========================================================================
// Silent pass: the verdict lies.

/// A NaN or an infinity in an output is a failure (exit 1), never "not
/// written", never bad input, never a pass; also when a Bidirectional
/// `ave` merge would turn +inf and -inf into something that looks finite.
#[test]
fn silent_pass_non_finite_outputs_fail() {
    for (what, value) in [
        ("+inf", f64::INFINITY),
        ("-inf", f64::NEG_INFINITY),
        ("NaN", f64::NAN),
    ] {
        for traces in [false, true] {
            let g = Gate::new(&[RAND001], Layout::Onnx, Dtype::F32, traces);
            set_element(&g.step(RAND001, "main").join("y.npy"), 5, |_| value);
            let r = g.check(&[]);
            r.expect(1, &["0 passed, 1 failed, 0 errors"]);
            assert!(!r.text().contains("not written"), "{what}: {}", r.text());
        }
    }
    // Keras Bidirectional, merge_mode "ave": forward y all +inf, backward all -inf.
    for layout in [Layout::Keras, Layout::Canonical] {
        let g = Gate::new(&[BIDI_AVE], layout, Dtype::F32, false);
        let index = gate::read_index(&g.export).unwrap();
        let steps: Vec<&str> = index.cases[0]
            .steps
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(steps, ["fw", "bw"], "{layout}");
        for (step, value) in [("fw", f32::INFINITY), ("bw", f32::NEG_INFINITY)] {
            let y = g.step(BIDI_AVE, step).join("y.npy");
            let a = read_f32(&y);
            npy::write(&y, &Tensor::F32(a.mapv(|_| value))).unwrap();
        }
        let r = g.check(&[]);
        r.expect(1, &["0 passed, 1 failed, 0 errors"]);
        assert!(!r.text().contains("not written"), "{layout}: {}", r.text());
    }
}

/// `index.json` edited by hand: refused (exit 2) naming index.json and
/// what changed, whether or not the fingerprint was recomputed to match.
#[test]
fn silent_pass_edited_index_is_refused() {
    let g = Gate::new(&[RAND001, NB003], Layout::Tf1, Dtype::F32, false);
    let index_path = g.export.join("index.json");
    let original = fs::read(&index_path).unwrap();
    let info_path = g.outputs.join("outputs.json");
    let original_info = fs::read(&info_path).unwrap();
    // One flag flipped: the index no longer hashes to its fingerprint.
    edit_json(&index_path, |v| v["cases"][0]["exported"] = false.into());
    g.check(&[]).expect(
        2,
        &["index.json was changed after the export", "export again"],
    );
    // Self-consistent: fingerprint recomputed, copied into outputs.json.
    let mut index: ExportIndex = serde_json::from_slice(&original).unwrap();
    index.cases[0].exported = false;
    index.suite_fingerprint = gate::fingerprint(&index);
    fs::write(&index_path, serde_json::to_string_pretty(&index).unwrap()).unwrap();
    edit_json(&info_path, |v| {
        v["suite_fingerprint"] = index.suite_fingerprint.clone().into()
    });
    g.check(&[]).expect(
        2,
        &[
            "index.json does not match what this reference exports to",
            &format!("case {} has another \"exported\"", index.cases[0].id),
        ],
    );
    // A dropped file hash, made self-consistent the same way.
    let mut index: ExportIndex = serde_json::from_slice(&original).unwrap();
    let first = index.cases[1].files.keys().next().unwrap().clone();
    index.cases[1].files.remove(&first);
    index.suite_fingerprint = gate::fingerprint(&index);
    fs::write(&index_path, serde_json::to_string_pretty(&index).unwrap()).unwrap();
    edit_json(&info_path, |v| {
        v["suite_fingerprint"] = index.suite_fingerprint.clone().into()
    });
    g.check(&[])
        .expect(2, &["index.json does not match", &first]);
    // A whole case dropped, made self-consistent: the export's recorded
    // selection still picks it from the reference.
    let mut index: ExportIndex = serde_json::from_slice(&original).unwrap();
    let dropped = index.cases.remove(0).id;
    index.suite_fingerprint = gate::fingerprint(&index);
    fs::write(&index_path, serde_json::to_string_pretty(&index).unwrap()).unwrap();
    edit_json(&info_path, |v| {
        v["suite_fingerprint"] = index.suite_fingerprint.clone().into()
    });
    g.check(&[]).expect(
        2,
        &[
            &format!("picks case {dropped}"),
            "index.json does not list it",
        ],
    );
    // A case listed twice, or out of order, made self-consistent.
    for twice in [true, false] {
        let mut index: ExportIndex = serde_json::from_slice(&original).unwrap();
        if twice {
            let copy = index.cases[0].clone();
            index.cases.insert(1, copy);
        } else {
            index.cases.reverse();
        }
        index.suite_fingerprint = gate::fingerprint(&index);
        fs::write(&index_path, serde_json::to_string_pretty(&index).unwrap()).unwrap();
        edit_json(&info_path, |v| {
            v["suite_fingerprint"] = index.suite_fingerprint.clone().into()
        });
        g.check(&[]).expect(
            2,
            &[if twice {
                "twice, after"
            } else {
                "out of order, after"
            }],
        );
    }
    // The recorded selection made to claim more cases than the index has.
    let mut index: ExportIndex = serde_json::from_slice(&original).unwrap();
    let first = index.cases[0].id.clone();
    index.selected_by = gate::SelectedBy::Cases(vec![first.clone(), first]);
    index.suite_fingerprint = gate::fingerprint(&index);
    fs::write(&index_path, serde_json::to_string_pretty(&index).unwrap()).unwrap();
    edit_json(&info_path, |v| {
        v["suite_fingerprint"] = index.suite_fingerprint.clone().into()
    });
    g.check(&[])
        .expect(2, &["selected_by lists case ids out of order or twice"]);
    // A duplicate key (serde_json alone would keep the last one).
    let text = String::from_utf8(original.clone()).unwrap();
    let dup = text.replacen("\"format\":", "\"layout\": \"onnx\",\n  \"format\":", 1);
    fs::write(&index_path, dup).unwrap();
    fs::write(&info_path, &original_info).unwrap();
    g.check(&[])
        .expect(2, &["index.json", "duplicate key \"layout\""]);
    // Restored: passes again (the edits, not the folder, were refused).
    fs::write(&index_path, &original).unwrap();
    g.check(&[]).expect(0, &["2 passed, 0 failed"]);
}

/// Write a copy of `RAND001` with 0 rows in every array.
fn zero_row_case(root: &Path) -> &'static str {
    let id = "tf1/rand-001-zero-rows";
    let dir = root.join(id);
    copy_tree(&reference().join(RAND001), &dir);
    let manifest = dir.join("case.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest).unwrap()).unwrap();
    // Every array with its first dimension (the batch) 0.
    let empty = |file: &str, shape: &mut serde_json::Value| {
        shape[0] = 0.into();
        let dims: Vec<usize> = shape
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let p = dir.join(file);
        let t = match npy::read(&p).unwrap() {
            Tensor::F32(_) if file.ends_with(".f16.npy") => {
                // float16 (read widened): a header and no data.
                let shape: Vec<String> = dims.iter().map(ToString::to_string).collect();
                let dict = format!(
                    "{{'descr': '<f2', 'fortran_order': False, 'shape': ({},), }}\n",
                    shape.join(", ")
                );
                let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
                bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
                bytes.extend_from_slice(dict.as_bytes());
                fs::write(&p, bytes).unwrap();
                return;
            }
            Tensor::F32(_) => Tensor::F32(ndarray::ArrayD::zeros(dims)),
            Tensor::F64(_) => Tensor::F64(ndarray::ArrayD::zeros(dims)),
            other => panic!("{}", other.dtype()),
        };
        npy::write(&p, &t).unwrap();
    };
    let inputs = &mut v["inputs"]["inputs"];
    let file = inputs["file"].as_str().unwrap().to_string();
    empty(&file, &mut inputs["shape"]);
    let names: Vec<String> = v["expected"].as_object().unwrap().keys().cloned().collect();
    for name in names {
        let e = &mut v["expected"][&name];
        for key in ["float32", "float64"] {
            let file = e[key].as_str().unwrap().to_string();
            let mut shape = e["shape"].clone();
            empty(&file, &mut shape);
            if key == "float64" {
                e["shape"] = shape;
            }
        }
    }
    // The float16 and bfloat16 runs too.
    let reduced: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("reduced.json")).unwrap()).unwrap();
    for run in reduced["runs"].as_object().unwrap().values() {
        for (name, file) in run["expected"].as_object().unwrap() {
            let mut shape = v["expected"][name]["shape"].clone();
            empty(file.as_str().unwrap(), &mut shape);
        }
    }
    fs::write(&manifest, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    id
}

/// A case whose arrays all have 0 rows compares nothing, and a comparison
/// of nothing is not a pass: `run` and `check` fail it, saying so.
#[test]
fn silent_pass_zero_rows_never_pass() {
    let tmp = scratch();
    let root = tmp.path().join("reference");
    let id = zero_row_case(&root);
    let r = cli([os(Path::new("run")), OsStr::new("--reference"), os(&root)]);
    r.expect(
        1,
        &[id, "nothing to compare", "0 elements", "0 passed, 4 failed"],
    );
    // Through the gate: exported, the Rust LSTM's outputs, still a failure.
    let export = tmp.path().join("export");
    let outputs = tmp.path().join("outputs");
    let index = export_lib(&root, &[], &export, Layout::Onnx, Dtype::F32);
    assert!(index.cases[0].exported, "{:?}", index.cases[0].reason);
    rust_implementation::<f32>(&export, &outputs, true);
    let r = cli([
        os(Path::new("check")),
        OsStr::new("--outputs"),
        os(&outputs),
        OsStr::new("--reference"),
        os(&root),
    ]);
    r.expect(1, &[id, "nothing to compare", "0 passed, 1 failed"]);
}

/// Anything the export vouches for that changed between export and check
/// (an input, a weight, step.json, a reference array or case.json) is
/// refused naming the file; outputs made for another export (another
/// layout, another dtype) are refused as such.
#[test]
fn silent_pass_changed_inputs_or_another_export_are_refused() {
    let g = Gate::new(&[RAND001], Layout::Onnx, Dtype::F32, false);
    let step = g.export.join(RAND001).join("main");
    let weight = fs::read_dir(step.join("layer0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "npy"))
        .unwrap();
    for file in [step.join("x.npy"), weight, step.join("step.json")] {
        let original = fs::read(&file).unwrap();
        let mut changed = original.clone();
        if file.extension().is_some_and(|e| e == "npy") {
            set_element(&file, 1, |v| v + 0.25);
        } else {
            changed.push(b' ');
            fs::write(&file, &changed).unwrap();
        }
        g.check(&[]).expect(
            2,
            &[
                &format!("{} changed since the export", file.display()),
                "export again",
            ],
        );
        fs::write(&file, original).unwrap();
    }
    let case_dir = g.root.join(RAND001);
    for name in [
        "inputs.npy",
        "var.rnn.basic_lstm_cell.kernel.npy",
        "outputs.f64.npy",
        "case.json",
    ] {
        let file = case_dir.join(name);
        let original = fs::read(&file).unwrap();
        if name.ends_with(".npy") {
            set_element(&file, 2, |v| v * 0.5 + 0.125);
        } else {
            edit_json(&file, |v| v["description"] = "edited".into());
        }
        g.check(&[]).expect(
            2,
            &[&format!(
                "the reference file {RAND001}/{name} changed since the export"
            )],
        );
        fs::write(&file, original).unwrap();
    }
    g.check(&[]).expect(0, &["1 passed"]);
    // The same outputs against an export in another layout or dtype.
    for (layout, dtype) in [
        (Layout::OnnxLayout1, Dtype::F32),
        (Layout::Onnx, Dtype::F64),
    ] {
        let other = g.tmp.path().join(format!("export-{layout}-{dtype}"));
        export_lib(&g.root, &[], &other, layout, dtype);
        let r = cli([
            os(Path::new("check")),
            OsStr::new("--outputs"),
            os(&g.outputs),
            OsStr::new("--export"),
            os(&other),
            OsStr::new("--reference"),
            os(&g.root),
        ]);
        r.expect(
            2,
            &[
                "written for suite fingerprint",
                "run the implementation on this export again",
            ],
        );
    }
}

/// Case folders that are not what they seem: a duplicate key in
/// case.json, a case.json that is a folder, a case folder whose name is
/// not UTF-8. Each is an error (exit 2) naming it; no case vanishes.
#[test]
fn silent_pass_malformed_case_folders_are_errors() {
    let run_on = |root: &Path| cli([OsStr::new("run"), OsStr::new("--reference"), os(root)]);
    // Duplicate key: serde_json alone would keep the last value.
    let (_tmp, root) = reference_of(&[RAND001, NB003]);
    let manifest = root.join(RAND001).join("case.json");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replacen(
            "\"tolerance\": \"default\"",
            "\"tolerance\": \"default\", \"tolerance\": \"exact\"",
            1,
        ),
    )
    .unwrap();
    run_on(&root).expect(
        2,
        &[&format!(
            "case {RAND001}: case.json: invalid case.json: duplicate key \"tolerance\""
        )],
    );
    // case.json a folder: the case is there, with an error.
    let (_tmp, root) = reference_of(&[RAND001, NB003]);
    let manifest = root.join(RAND001).join("case.json");
    fs::remove_file(&manifest).unwrap();
    fs::create_dir(&manifest).unwrap();
    let r = run_on(&root);
    r.expect(
        2,
        &[
            &format!("case {RAND001}: case.json: not a regular file (a folder)"),
            "1 errors",
        ],
    );
    // ... also through check: the export cannot be verified.
    let (_tmp2, root2) = reference_of(&[RAND001, NB003]);
    let g_export = _tmp2.path().join("export");
    let g_outputs = _tmp2.path().join("outputs");
    export_lib(&root2, &[], &g_export, Layout::Onnx, Dtype::F32);
    rust_implementation::<f32>(&g_export, &g_outputs, false);
    let r = cli([
        os(Path::new("check")),
        OsStr::new("--outputs"),
        os(&g_outputs),
        OsStr::new("--reference"),
        os(&root),
    ]);
    r.expect(
        2,
        &[&format!(
            "case {RAND001}: case.json: not a regular file (a folder)"
        )],
    );
    // A case folder whose name is not UTF-8.
    let (_tmp, root) = reference_of(&[RAND001]);
    let bad = root.join("tf1").join(OsStr::from_bytes(b"case-\xff\xfe"));
    copy_tree(&reference().join(NB003), &bad);
    run_on(&root).expect(2, &["a folder name that is not UTF-8", "rename it"]);
    // A case inside another case's folder, and a case.json at the root.
    let (_tmp, root) = reference_of(&[RAND001]);
    copy_tree(&reference().join(NB003), &root.join(RAND001).join("nested"));
    run_on(&root).expect(2, &["nested/case.json: a case.json inside the case folder"]);
    let (_tmp, root) = reference_of(&[RAND001]);
    fs::copy(root.join(RAND001).join("case.json"), root.join("case.json")).unwrap();
    run_on(&root).expect(2, &["a case.json at the root of the reference folder"]);
    // A case below a hidden folder.
    let (_tmp, root) = reference_of(&[RAND001]);
    copy_tree(
        &reference().join(NB003),
        &root.join("tf1").join(".hidden").join("c"),
    );
    run_on(&root).expect(2, &[".hidden: a case.json below a hidden folder"]);
    // A case folder (or a suite folder) that is a symbolic link.
    let (_tmp, root) = reference_of(&[RAND001]);
    symlink(root.join(RAND001), root.join("tf1").join("linked-case")).unwrap();
    run_on(&root).expect(2, &["linked-case: a symbolic link in the reference folder"]);
    let (_tmp, root) = reference_of(&[RAND001]);
    symlink(root.join("tf1"), root.join("suite-link")).unwrap();
    run_on(&root).expect(2, &["suite-link: a symbolic link in the reference folder"]);
}

// ===========================================================================
// Harm to files: the tool never deletes or overwrites a file it does not own.

/// Entries beside `dir` that the tool names after it (`.NAME.lstm-parity-*`:
/// staging folders, the lock file).
fn leftovers(dir: &Path) -> Vec<String> {
    let name = dir.file_name().unwrap().to_str().unwrap();
    let prefix = format!(".{name}.lstm-parity");
    fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// `export --out` into the reference folder, a case folder, a folder
/// holding the references, or a folder holding a user's file: refused
/// (exit 2), every file as it was, nothing left beside it.
#[test]
fn harm_export_never_writes_into_or_around_references_or_user_folders() {
    let (tmp, root) = reference_of(&[RAND001, NB003]);
    // A user's file in the reference folder too, and the folder above.
    fs::write(root.join("notes.txt"), "mine").unwrap();
    fs::write(tmp.path().join("mine.txt"), "also mine").unwrap();
    let before = snapshot(tmp.path());
    let export = |out: &Path| export_cli("onnx", out, &root, &[]);
    let case_dir = root.join(RAND001);
    let link = tmp.path().join("link-to-case");
    symlink(&case_dir, &link).unwrap();
    let before_with_link = snapshot(tmp.path());
    for out in [
        root.clone(),
        root.join("tf1"),
        case_dir.clone(),
        case_dir.join("export"),
        link.join("export"),
        tmp.path().to_path_buf(),
        Path::new("/").to_path_buf(),
    ] {
        let r = export(&out);
        r.expect(2, &[]);
        let t = r.text();
        assert!(
            t.contains("inside or around the reference folder")
                || t.contains("needs a folder name"),
            "{}: {t}",
            out.display()
        );
        assert_same(
            &before_with_link,
            tmp.path(),
            &format!("--out {}", out.display()),
        );
    }
    fs::remove_file(&link).unwrap();
    assert_same(&before, tmp.path(), "the reference copy");
    // A folder holding a user's file (and one holding a file whose name is
    // a case id's first part, but no index.json).
    let user = scratch();
    for (name, file) in [("notes", "notes.txt"), ("looks-like-export", "tf1")] {
        let dir = user.path().join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(file), "the user's").unwrap();
        let before = snapshot(user.path());
        let r = export(&dir);
        r.expect(2, &["refusing to replace it"]);
        assert_same(&before, user.path(), &format!("--out {name}"));
        assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    }
    // A file, and a symbolic link to a folder.
    let file = user.path().join("a-file");
    fs::write(&file, "the user's").unwrap();
    let target = user.path().join("target");
    fs::create_dir(&target).unwrap();
    let dir_link = user.path().join("dir-link");
    symlink(&target, &dir_link).unwrap();
    let before = snapshot(user.path());
    export(&file).expect(2, &["a regular file, not a folder; refusing to replace it"]);
    export(&dir_link).expect(2, &["a symbolic link; refusing to replace it"]);
    assert_same(&before, user.path(), "a file and a link");
}

/// An earlier export whose index.json lists `evil/x`, where `evil` is a
/// symbolic link to a folder outside holding a user's file (and
/// index.json itself a link to a user's file): re-exporting into it
/// replaces the links, never what they point to.
#[test]
fn harm_symlinks_in_an_old_export_are_not_followed() {
    let (tmp, root) = reference_of(&[RAND001]);
    let out = tmp.path().join("export");
    export_lib(&root, &[], &out, Layout::Onnx, Dtype::F32);
    let outside = scratch();
    let theirs = outside.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    fs::write(theirs.join("x"), "the user's x").unwrap();
    fs::write(outside.path().join("index-copy.json"), "the user's json").unwrap();
    // The old index, listing evil/x; evil a link out.
    let mut index: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("index.json")).unwrap()).unwrap();
    let mut evil = index["cases"][0].clone();
    evil["id"] = "evil/x".into();
    index["cases"].as_array_mut().unwrap().push(evil);
    let text = serde_json::to_string_pretty(&index).unwrap();
    fs::write(out.join("index.json"), &text).unwrap();
    symlink(&theirs, out.join("evil")).unwrap();
    let before = snapshot(outside.path());
    let r = export_cli("tf1", &out, &root, &[]);
    assert!(matches!(r.code, Some(0 | 2)), "{}", r.text());
    assert!(!r.text().contains("panicked"));
    assert_same(&before, outside.path(), "the folder the link pointed to");
    // Again with index.json itself a link to a user's file holding the index.
    let real_index = outside.path().join("index-copy.json");
    let out2 = tmp.path().join("export2");
    export_lib(&root, &[], &out2, Layout::Onnx, Dtype::F32);
    fs::write(&real_index, &text).unwrap();
    fs::remove_file(out2.join("index.json")).unwrap();
    symlink(&real_index, out2.join("index.json")).unwrap();
    symlink(&theirs, out2.join("evil")).unwrap();
    let before = snapshot(outside.path());
    let r = export_cli("tf1", &out2, &root, &[]);
    assert!(matches!(r.code, Some(0 | 2)), "{}", r.text());
    assert_same(&before, outside.path(), "the files the links pointed to");
    if r.code == Some(0) {
        // Replaced by a real export: no links left in it.
        let s = snapshot(&out2);
        assert!(s.values().all(|v| !v.starts_with("link")), "{s:?}");
        assert!(gate::read_index(&out2).is_ok());
    }
}

/// `--report` only ever writes a regular file that is not an input: not
/// /dev/null, not the expectations file, not inside the outputs (or
/// export, or reference) folder; `-` is standard output.
#[test]
fn harm_reports_go_only_to_regular_non_input_files() {
    let g = Gate::new(&[RAND001], Layout::Onnx, Dtype::F32, false);
    let list = g.tmp.path().join("known.toml");
    fs::write(&list, "# no expected failures\n").unwrap();
    let before = snapshot(g.tmp.path());
    let check = |report: &Path| {
        g.check(&[
            OsStr::new("--expectations"),
            os(&list),
            OsStr::new("--report"),
            os(report),
        ])
    };
    check(Path::new("/dev/null")).expect(2, &["/dev/null: a character device, not a regular file"]);
    assert!(fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    check(&list).expect(
        2,
        &["is ", "an input of this command; refusing to overwrite it"],
    );
    for inside in [
        g.outputs.join("report.xml"),
        g.step(RAND001, "main").join("y.npy"),
        g.export.join("index.json"),
        g.root.join(RAND001).join("report.json"),
    ] {
        check(&inside).expect(
            2,
            &["an input folder of this command; refusing to write there"],
        );
    }
    // Through a link to the outputs folder.
    let link = g.tmp.path().join("out-link");
    symlink(&g.outputs, &link).unwrap();
    check(&link.join("r.json")).expect(2, &["an input folder of this command"]);
    fs::remove_file(&link).unwrap();
    // A FIFO and a link to a user's file.
    let fifo = g.tmp.path().join("pipe");
    mkfifo(&fifo);
    check(&fifo).expect(2, &["a FIFO, not a regular file"]);
    fs::remove_file(&fifo).unwrap();
    assert_same(&before, g.tmp.path(), "refused reports");
    // `-`: the report on standard output, no file named "-".
    let cwd = scratch();
    let mut args: Vec<OsString> = ["check", "--outputs"].map(OsString::from).to_vec();
    args.push(g.outputs.clone().into());
    args.extend([
        "--reference".into(),
        g.root.clone().into(),
        "--format".into(),
        "json".into(),
    ]);
    args.extend(["--report".into(), "-".into()]);
    let r = cli_in(cwd.path(), &args);
    r.expect(0, &["\"kind\": \"check\""]);
    assert!(
        fs::read_dir(cwd.path()).unwrap().next().is_none(),
        "a file was written in the folder"
    );
    // A regular file elsewhere is written (and replaced).
    let report = cwd.path().join("r.xml");
    fs::write(&report, "old").unwrap();
    check(&report).expect(0, &["1 passed"]);
    let xml = fs::read_to_string(&report).unwrap();
    roxmltree::Document::parse(&xml).expect("JUnit");
}

// ===========================================================================
// Unbounded work: no input makes the tool wait, or read without bound.

/// Address space a command may take in the unbounded-work tests: far less
/// than the multi-gigabyte files they are fed, so a command that read one
/// whole would fail to allocate (and abort) instead of passing.
const ADDRESS_SPACE_LIMIT: u64 = 1 << 30;

/// [`cli`] with its address space limited to [`ADDRESS_SPACE_LIMIT`].
fn cli_bounded<I, S>(args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = bin();
    cmd.args(args);
    limit_address_space(&mut cmd, ADDRESS_SPACE_LIMIT);
    run_cmd(cmd, TIMEOUT)
}

/// Run `cmd` with its address space limited to `bytes`.
fn limit_address_space(cmd: &mut Command, bytes: u64) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A sparse file of `bytes` bytes (no disk or memory used).
fn sparse(path: &Path, bytes: u64) {
    let _ = fs::remove_file(path);
    fs::File::create(path).unwrap().set_len(bytes).unwrap();
}

/// A FIFO in place of any file the tool reads (a reference array, an
/// export's index.json, outputs.json, an output, error.txt, the
/// expectations file) is refused at once (exit 2, naming it); one in a
/// case folder that no case references is not even opened.
#[test]
fn unbounded_work_fifos_are_refused_never_waited_on() {
    let g = Gate::new(&[RAND001], Layout::Onnx, Dtype::F32, false);
    let run = |root: &Path| cli([OsStr::new("run"), OsStr::new("--reference"), os(root)]);
    let with_fifo = |path: &Path, f: &dyn Fn() -> Ran, code: i32, words: &[&str]| {
        let saved = fs::read(path).ok();
        let _ = fs::remove_file(path);
        mkfifo(path);
        f().expect(code, words);
        fs::remove_file(path).unwrap();
        if let Some(bytes) = saved {
            fs::write(path, bytes).unwrap();
        }
    };
    let input = g.root.join(RAND001).join("inputs.npy");
    with_fifo(&input, &|| run(&g.root), 2, &["inputs.npy", "a FIFO"]);
    with_fifo(&input, &|| g.check(&[]), 2, &["inputs.npy", "a FIFO"]);
    // Unreferenced: never opened, so the runs pass.
    let unreferenced = g.root.join(RAND001).join("notes.npy");
    with_fifo(&unreferenced, &|| run(&g.root), 0, &["4 passed"]);
    with_fifo(&unreferenced, &|| g.check(&[]), 0, &["1 passed"]);
    for file in [g.export.join("index.json"), g.outputs.join("outputs.json")] {
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        with_fifo(&file, &|| g.check(&[]), 2, &[&name, "FIFO"]);
    }
    let y = g.step(RAND001, "main").join("y.npy");
    with_fifo(&y, &|| g.check(&[]), 2, &["y.npy", "FIFO"]);
    // error.txt in place of the outputs.
    let step = g.step(RAND001, "main");
    let saved = take_files(&step);
    with_fifo(
        &step.join("error.txt"),
        &|| g.check(&[]),
        2,
        &["error.txt", "FIFO"],
    );
    put_back(&saved);
    let expectations = g.tmp.path().join("known.toml");
    mkfifo(&expectations);
    g.check(&[OsStr::new("--expectations"), os(&expectations)])
        .expect(2, &["known.toml", "FIFO"]);
    g.check(&[]).expect(0, &["1 passed"]);
}

/// Multi-gigabyte sparse files (case.json, an array, a variable the model
/// does not use, error.txt, a file no case references), a character
/// device, and four arrays naming one 1 GiB file: each refused before it
/// is read, or never read, within the timeout and a 1 GiB address space.
#[test]
fn unbounded_work_large_files_and_devices_are_refused_before_reading() {
    const HUGE: u64 = 4 << 30;
    let run = |root: &Path| cli_bounded([OsStr::new("run"), OsStr::new("--reference"), os(root)]);
    // The bound leaves room for a normal run.
    let (_t, root) = reference_of(&[RAND001]);
    run(&root).expect(0, &["4 passed"]);
    let dir = root.join(RAND001);
    let manifest = dir.join("case.json");
    let original = fs::read(&manifest).unwrap();
    sparse(&manifest, HUGE);
    run(&root).expect(2, &["case.json", "bytes"]);
    fs::write(&manifest, &original).unwrap();
    let input = dir.join("inputs.npy");
    let input_bytes = fs::read(&input).unwrap();
    sparse(&input, HUGE);
    run(&root).expect(2, &["inputs.npy", "bytes"]);
    fs::write(&input, &input_bytes).unwrap();
    // A variable the model does not use, in a huge file.
    sparse(&dir.join("unused.npy"), HUGE);
    edit_json(&manifest, |v| {
        v["variables"]["unused"] = serde_json::json!({"file": "unused.npy", "shape": [2]})
    });
    run(&root).expect(2, &["unused.npy"]);
    fs::write(&manifest, &original).unwrap();
    // Unreferenced: never read.
    run(&root).expect(0, &["4 passed"]);
    fs::remove_file(dir.join("unused.npy")).unwrap();
    // Four arrays naming one 1 GiB file: the case's declared total is
    // refused before any file is read.
    sparse(&dir.join("big.npy"), 1 << 30);
    edit_json(&manifest, |v| {
        let names: Vec<String> = v["expected"].as_object().unwrap().keys().cloned().collect();
        for name in names.iter().take(2) {
            for key in ["float32", "float64"] {
                v["expected"][name][key] = "big.npy".into();
            }
            v["expected"][name]["shape"] = serde_json::json!([1 << 28]);
        }
    });
    run(&root).expect(2, &["case.json", "a case may hold"]);
    fs::write(&manifest, &original).unwrap();
    fs::remove_file(dir.join("big.npy")).unwrap();
    // A character device (/dev/zero's numbers) in place of an array.
    fs::remove_file(&input).unwrap();
    let c = std::ffi::CString::new(input.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 5)) } == 0;
    if made {
        run(&root).expect(2, &["inputs.npy", "a character device"]);
        fs::remove_file(&input).unwrap();
    } else {
        eprintln!(
            "skipped the character-device part: mknod failed ({}); it needs root",
            std::io::Error::last_os_error()
        );
    }
    fs::write(&input, &input_bytes).unwrap();
    // error.txt of 4 GiB: the first 64 KiB shown, a failure, not a hang.
    let g = Gate::new(&[RAND001], Layout::Onnx, Dtype::F32, false);
    let step = g.step(RAND001, "main");
    for e in fs::read_dir(&step).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    sparse(&step.join("error.txt"), HUGE);
    let mut args: Vec<&OsStr> = vec![OsStr::new("check"), OsStr::new("--outputs")];
    args.extend([os(&g.outputs), OsStr::new("--export"), os(&g.export)]);
    args.extend([OsStr::new("--reference"), os(&g.root)]);
    cli_bounded(&args).expect(
        1,
        &["bytes shown", "0 passed, 0 failed, 0 errors, 1 refused"],
    );
    // A huge file no step references, in the outputs and in the export.
    fs::remove_file(step.join("error.txt")).unwrap();
    rust_implementation::<f32>(&g.export, &g.outputs, false);
    sparse(&g.outputs.join("stray.npy"), HUGE);
    sparse(&g.export.join(RAND001).join("stray.npy"), HUGE);
    cli_bounded(&args).expect(0, &["1 passed"]);
}

// ===========================================================================
// Panics and messages: bad input is a message naming what is wrong, never
// a panic, and every report format is well-formed whatever the names.

/// Every bench argument that cannot be honoured: refused (exit 2).
#[test]
fn panics_none_from_bench_arguments() {
    // Within the fixed estimate but past this process's address space:
    // refused, not aborted on a failed allocation.
    let mut cmd = bin();
    cmd.args([
        "bench",
        "--shapes",
        "B512-T1024-H512",
        "--min-time",
        "0",
        "--repeats",
        "1",
    ]);
    limit_address_space(&mut cmd, 2 << 30);
    run_cmd(cmd, TIMEOUT).expect(2, &["the benchmark allows here"]);
    for (args, words) in [
        (&["--min-time", "NaN"][..], "--min-time"),
        (&["--min-time", "inf"], "--min-time"),
        (&["--min-time=-1"], "--min-time"),
        (
            &["--shapes", "B100000-T100000-H100000"],
            "the benchmark allows here",
        ),
        (&["--shapes", "18446744073709551615-2-2"], "too large"),
        (&["--shapes", "B0-T1-H1"], "bad shape"),
        (&["--threads", "0"], "--threads"),
        (&["--threads", "100000"], "--threads"),
        (&["--repeats=-1"], "--repeats"),
    ] {
        let mut all = vec!["bench"];
        all.extend_from_slice(args);
        cli(&all).expect(2, &[words]);
    }
}

/// `.npy` headers numpy itself reads (double-quoted keys, hexadecimal
/// sizes) are read; ones it does not, or with absurd sizes, are errors
/// naming the file; the real dtype is named; a non-UTF-8 or empty
/// error.txt still gives a message.
#[test]
fn panics_none_and_messages_name_the_file_and_its_real_dtype() {
    let (_t, root) = reference_of(&[RAND001]);
    let run = |root: &Path| cli([OsStr::new("run"), OsStr::new("--reference"), os(root)]);
    let input = root.join(RAND001).join("inputs.npy");
    let original = fs::read(&input).unwrap();
    let Tensor::F32(a) = npy::read(&input).unwrap() else {
        panic!("float32 inputs")
    };
    let data: Vec<u8> = a.iter().flat_map(|v| v.to_le_bytes()).collect();
    let shape = a.shape().to_vec();
    let write_npy = |dict: String, data: &[u8]| {
        let mut header = dict.into_bytes();
        header.push(b'\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(data);
        fs::write(&input, bytes).unwrap();
    };
    let with_header = |dict: String| write_npy(dict, &data);
    let dims =
        |f: &dyn Fn(usize) -> String| shape.iter().map(|&d| f(d)).collect::<Vec<_>>().join(", ");
    with_header(format!(
        r#"{{"descr": "<f4", "fortran_order": False, "shape": ({})}}"#,
        dims(&|d| d.to_string())
    ));
    run(&root).expect(0, &["4 passed"]);
    with_header(format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({})}}",
        dims(&|d| format!("0x{d:x}"))
    ));
    run(&root).expect(0, &["4 passed"]);
    for shape in [
        "(0x100000000, 0x100000000, 0x100000000)",
        "(18446744073709551616,)",
    ] {
        with_header(format!(
            r#"{{"descr": "<f4", "fortran_order": False, "shape": {shape}}}"#
        ));
        run(&root).expect(2, &["inputs.npy", "too large"]);
    }
    with_header(format!(
        "{{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': ({})}}",
        dims(&|d| d.to_string())
    ));
    run(&root).expect(2, &["inputs.npy", "duplicate key \"descr\""]);
    // int64 is named int64, and the message names the .npy.
    let ints: Vec<u8> = a.iter().flat_map(|_| 7i64.to_le_bytes()).collect();
    write_npy(
        format!(
            "{{'descr': '<i8', 'fortran_order': False, 'shape': ({})}}",
            dims(&|d| d.to_string())
        ),
        &ints,
    );
    let r = run(&root);
    r.expect(2, &["inputs.npy: dtype int64"]);
    assert!(!r.text().contains("int32"), "{}", r.text());
    fs::write(&input, &original).unwrap();
    // error.txt that is not UTF-8, or empty.
    let g = Gate::new(&[RAND001], Layout::Onnx, Dtype::F32, false);
    let step = g.step(RAND001, "main");
    for e in fs::read_dir(&step).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    fs::write(step.join("error.txt"), b"unsupported \xff\xfe layout\n").unwrap();
    g.check(&[])
        .expect(1, &["unsupported \u{fffd}\u{fffd} layout"]);
    fs::write(step.join("error.txt"), b"  \n").unwrap();
    g.check(&[]).expect(1, &["error.txt is empty"]);
}

/// Case folder names a report format cannot carry (control characters,
/// U+FFFE) are refused naming the folder; messages holding any character
/// still make well-formed JUnit XML and JSON.
#[test]
fn messages_and_reports_stay_well_formed_whatever_the_names() {
    for name in [
        "case-\u{fffe}",
        "case-\u{1}-bell",
        "case-\nnewline",
        "case-\u{fdd0}",
    ] {
        let (_t, root) = reference_of(&[RAND001]);
        copy_tree(&reference().join(NB003), &root.join("tf1").join(name));
        let r = cli([OsStr::new("run"), OsStr::new("--reference"), os(&root)]);
        r.expect(2, &["a folder name with the character U+", "rename it"]);
    }
    // Messages with control characters and noncharacters (from error.txt).
    let g = Gate::new(&[RAND001, NB003], Layout::Onnx, Dtype::F32, false);
    let step = g.step(RAND001, "main");
    for e in fs::read_dir(&step).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    fs::write(
        step.join("error.txt"),
        "bad \u{1}\u{1b}[31m <x> & \"q\" \u{fffe}\u{ffff} \r\n\t end",
    )
    .unwrap();
    let xml = g.tmp.path().join("r.xml");
    let json = g.tmp.path().join("r.json");
    g.check(&[OsStr::new("--report"), os(&xml)])
        .expect(1, &["1 passed, 0 failed, 0 errors, 1 refused"]);
    g.check(&[OsStr::new("--report"), os(&json)])
        .expect(1, &["1 passed, 0 failed, 0 errors, 1 refused"]);
    let xml = fs::read_to_string(&xml).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit");
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure element");
    assert!(
        failure
            .attribute("message")
            .unwrap()
            .contains("<x> & \"q\""),
        "{xml}"
    );
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v.to_string().contains(r"\\u{0001}"), "{v}");
    // On a terminal: no control character an implementation wrote (in
    // error.txt or its name) reaches the table raw.
    edit_json(&g.outputs.join("outputs.json"), |v| {
        v["implementation"] = "np\u{1b}[8m\rhidden".into()
    });
    let r = g.check(&[]);
    r.expect(
        1,
        &[
            "np\\u{001b}[8m\\u{000d}hidden",
            "bad \\u{0001}\\u{001b}[31m",
        ],
    );
    assert!(
        !r.text().contains('\u{1b}') && !r.text().contains('\r'),
        "{:?}",
        r.text()
    );
}

// ===========================================================================
// Harm to files, continued: interrupted and failing exports.

/// `export --out OUT` of every recorded TF1 case through the command line,
/// started (not waited for).
fn spawn_export(root: &Path, out: &Path, layout: &str) -> Child {
    let mut cmd = bin();
    cmd.args([
        OsStr::new("export"),
        OsStr::new("--layout"),
        OsStr::new(layout),
    ])
    .args([
        OsStr::new("--out"),
        os(out),
        OsStr::new("--reference"),
        os(root),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd.spawn().expect("the binary runs")
}

/// A reference root with a copy of every recorded TF1 case (an export of
/// them takes long enough to be interrupted in the middle).
fn tf1_reference() -> (tempfile::TempDir, PathBuf) {
    let tmp = scratch();
    let root = tmp.path().join("reference");
    copy_tree(&reference().join("tf1"), &root.join("tf1"));
    (tmp, root)
}

/// An export killed at random points (SIGKILL, SIGINT, SIGTERM) while it
/// replaces an earlier one leaves the folder the earlier export whole or
/// the new one whole, never a mix; SIGINT and SIGTERM leave nothing
/// beside it, and the staging folder a SIGKILL leaves is removed by the
/// next export.
#[test]
fn harm_interrupted_exports_leave_the_old_or_the_new_export_whole() {
    let (tmp, root) = tf1_reference();
    let out = tmp.path().join("export");
    let new = tmp.path().join("new");
    // Through the command line, as the runs below (the index records the
    // selection it was made with).
    assert!(spawn_export(&root, &out, "tf1").wait().unwrap().success());
    assert!(spawn_export(&root, &new, "onnx").wait().unwrap().success());
    let old_files = snapshot(&out);
    let new_files = snapshot(&new);
    assert_ne!(old_files, new_files);
    // How long one export takes here, to spread the kills over it.
    let start = Instant::now();
    let status = spawn_export(&root, &new, "onnx").wait().unwrap();
    assert!(status.success());
    let took = start.elapsed().as_micros().max(1000) as u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut outcomes = BTreeMap::new();
    for signal in [libc::SIGKILL, libc::SIGINT, libc::SIGTERM] {
        for _ in 0..4 {
            // Up to a little past the usual end, so that some runs finish.
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let delay = Duration::from_micros((seed >> 33) % (took + took / 4));
            let mut child = spawn_export(&root, &out, "onnx");
            std::thread::sleep(delay);
            // SAFETY: signalling our own child, not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
            let status = child.wait().unwrap();
            let now = snapshot(&out);
            let whole = if now == old_files {
                "old"
            } else if now == new_files {
                "new"
            } else {
                assert_same(
                    &old_files,
                    &out,
                    &format!("after signal {signal} at {delay:?}"),
                );
                unreachable!()
            };
            *outcomes.entry((signal, whole)).or_insert(0) += 1;
            if signal != libc::SIGKILL {
                assert!(
                    leftovers(&out).is_empty(),
                    "signal {signal} at {delay:?} ({status:?}) left {:?}",
                    leftovers(&out)
                );
            }
            // Back to the earlier export, through the command line: it
            // also clears what a killed run left.
            let status = spawn_export(&root, &out, "tf1").wait().unwrap();
            assert!(status.success(), "{status:?}");
            assert_eq!(snapshot(&out), old_files);
            assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
        }
    }
    eprintln!("interrupted exports (signal, folder afterwards): {outcomes:?}");
}

/// Unmounts a file system when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let c = std::ffi::CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A full disk, a name too long for the staging folder, and a second export
/// while one runs: each refused or failed (exit 2) with the earlier export
/// whole and nothing left beside it.
#[test]
fn harm_failing_exports_leave_the_old_export_whole() {
    let (tmp, root) = tf1_reference();
    let export = |out: &Path| export_cli("onnx", out, &root, &[RAND001]);
    let export_all = |out: &Path| export_cli("tf1", out, &root, &[]);
    // A second export while one holds the lock.
    let out = tmp.path().join("export");
    export(&out).expect(0, &["exported 1 of 1"]);
    let before = snapshot(tmp.path());
    let lock_path = tmp.path().join(".export.lstm-parity.lock");
    let lock = fs::File::create(&lock_path).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    export_all(&out).expect(2, &["another export into this folder is running"]);
    drop(lock);
    fs::remove_file(&lock_path).unwrap();
    assert_same(&before, tmp.path(), "a refused concurrent export");
    // Folders and files under the tool's own names that are not the
    // tool's: a "staging" folder of a dead process holding a user's file,
    // a "lock" file with content. Neither is removed.
    let fake_staging = tmp.path().join(".export.lstm-parity-new-434343");
    fs::create_dir(&fake_staging).unwrap();
    fs::write(fake_staging.join("mine.txt"), "the user's").unwrap();
    export(&out).expect(0, &["exported 1 of 1"]);
    assert_eq!(
        fs::read(fake_staging.join("mine.txt")).unwrap(),
        b"the user's"
    );
    // ... also when it holds the staging marker.
    fs::write(fake_staging.join(".lstm-parity-staging"), "").unwrap();
    export(&out).expect(0, &["exported 1 of 1"]);
    assert_eq!(
        fs::read(fake_staging.join("mine.txt")).unwrap(),
        b"the user's"
    );
    fs::remove_dir_all(&fake_staging).unwrap();
    fs::write(&lock_path, "the user's").unwrap();
    export(&out).expect(2, &["not an (empty) lock file of this tool"]);
    assert_eq!(fs::read(&lock_path).unwrap(), b"the user's");
    fs::remove_file(&lock_path).unwrap();
    let before = snapshot(tmp.path());
    // A folder name so long that the staging folder's cannot be made.
    let long = tmp.path().join("x".repeat(250));
    export(&long).expect(2, &[]);
    assert_same(&before, tmp.path(), "a name too long");
    // A full disk: a small tmpfs holding one earlier export.
    let small = tmp.path().join("small");
    fs::create_dir(&small).unwrap();
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let (target, fstype, data) = (c(&small), c(Path::new("tmpfs")), c(Path::new("size=256k")));
    // SAFETY: valid NUL-terminated strings.
    let mounted = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    } == 0;
    if !mounted {
        eprintln!(
            "skipped the full-disk part: mounting a tmpfs failed ({}); it needs root",
            std::io::Error::last_os_error()
        );
        return;
    }
    let _unmount = Mounted(small.clone());
    let out = small.join("export");
    export(&out).expect(0, &["exported 1 of 1"]);
    let before = snapshot(&small);
    export_all(&out).expect(2, &["No space left on device"]);
    assert_same(&before, &small, "an export that filled the disk");
}

// ===========================================================================
// Metamorphic properties over passing gates of the Rust LSTM's own outputs.

/// Passing gates to break: two TF1 cases in `onnx` with traces, a Keras
/// Bidirectional `ave` case in `keras`, and a float64 export in `tf1`.
fn passing_gates() -> Vec<Gate> {
    vec![
        Gate::new(&[RAND001, NB003], Layout::Onnx, Dtype::F32, true),
        Gate::new(&[BIDI_AVE], Layout::Keras, Dtype::F32, false),
        Gate::new(&[RAND001], Layout::Tf1, Dtype::F64, false),
    ]
}

/// A property runner of `cases` draws that keeps no failure file.
fn property_runner(cases: u32) -> proptest::test_runner::TestRunner {
    proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })
}

/// How one output element is made wrong.
#[derive(Clone, Debug)]
enum Wrong {
    Value(f64),
    /// `v + sign * max(|v|, 1) * 2^-exp`: from 2^-8 (far past any tolerance
    /// level a case uses) to 2^4.
    Offset(f64, i32),
}

fn wrong_strategy() -> impl proptest::strategy::Strategy<Value = Wrong> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Wrong::Value(f64::INFINITY)),
        Just(Wrong::Value(f64::NEG_INFINITY)),
        Just(Wrong::Value(f64::NAN)),
        (prop_oneof![Just(1.0), Just(-1.0)], -4i32..=8).prop_map(|(s, e)| Wrong::Offset(s, e)),
    ]
}

/// Take a passing outputs folder, make any one element of any output file
/// wrong (by more than any tolerance, or to ±inf or NaN): the gate never
/// passes.
#[test]
fn metamorphic_one_wrong_element_never_passes() {
    use proptest::prelude::*;
    let gates = passing_gates();
    let mut runner = property_runner(96);
    let strategy = (
        0..gates.len(),
        any::<proptest::sample::Index>(),
        any::<usize>(),
        wrong_strategy(),
    );
    runner
        .run(&strategy, |(g, file, k, wrong)| {
            let g = &gates[g];
            let files: Vec<PathBuf> = files_below(&g.outputs)
                .into_iter()
                .filter(|f| f.extension().is_some_and(|e| e == "npy"))
                .collect();
            let file = file.get(&files);
            let work = scratch();
            let outputs = work.path().join("outputs");
            copy_tree(&g.outputs, &outputs);
            let mut old = 0.0;
            set_element(&outputs.join(file), k, |v| {
                old = v;
                match wrong {
                    Wrong::Value(x) => x,
                    Wrong::Offset(sign, exp) => v + sign * v.abs().max(1.0) * 2f64.powi(-exp),
                }
            });
            let r = check_lib(&g.root, &g.export, &outputs)
                .map_err(|e| TestCaseError::fail(format!("{}: refused: {e}", file.display())))?;
            prop_assert_eq!(
                r.exit_code(),
                1,
                "{} element {} was {} now {:?}: {}",
                file.display(),
                k,
                old,
                wrong,
                conformance::report::table(&r)
            );
            Ok(())
        })
        .unwrap();
}

/// Change any byte of any file of the export or of the reference: `check`
/// refuses (exit 2, never a verdict).
#[test]
fn metamorphic_a_changed_export_or_reference_is_refused() {
    use proptest::prelude::*;
    let gates = passing_gates();
    let mut runner = property_runner(64);
    let strategy = (
        0..gates.len(),
        any::<bool>(),
        any::<proptest::sample::Index>(),
        any::<proptest::sample::Index>(),
        1u8..=255,
    );
    runner
        .run(&strategy, |(g, in_export, file, at, flip)| {
            let g = &gates[g];
            let work = scratch();
            let (root, export) = (work.path().join("reference"), work.path().join("export"));
            copy_tree(&g.root, &root);
            copy_tree(&g.export, &export);
            let dir = if in_export { &export } else { &root };
            let files = files_below(dir);
            let file = dir.join(file.get(&files));
            let mut bytes = fs::read(&file).unwrap();
            let at = at.index(bytes.len());
            bytes[at] ^= flip;
            fs::write(&file, &bytes).unwrap();
            // Refused: the export cannot be verified (an error), or a case
            // cannot be loaded (bad input, exit 2).
            if let Ok(r) = check_lib(&root, &export, &g.outputs) {
                prop_assert!(
                    r.exit_code() == 2 && !r.errors.is_empty(),
                    "{} byte {} ^ {:#x}: not refused: {}",
                    file.display(),
                    at,
                    flip,
                    conformance::report::table(&r)
                );
            }
            Ok(())
        })
        .unwrap();
}

/// `compare` never calls a case fixed that is no longer checked: a failing
/// case skipped or gone in the new report got worse (exit 1). Reports it
/// cannot trust are refused (exit 2): unknown verdicts, a case twice, no
/// case, duplicate keys, reports of different kinds, a FIFO.
#[test]
fn silent_pass_compare_counts_lost_cases_as_worse_and_refuses_bad_reports() {
    let g = Gate::new(&[RAND001, NB003], Layout::Onnx, Dtype::F32, false);
    set_element(&g.step(RAND001, "main").join("y.npy"), 3, |v| v + 1.0);
    let base = g.tmp.path().join("base.json");
    g.check(&[OsStr::new("--report"), os(&base)])
        .expect(1, &["1 passed, 1 failed"]);
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&base).unwrap()).unwrap();
    let failing = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["verdict"] == "fail")
        .unwrap();
    let variant = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = report.clone();
        edit(&mut v);
        let p = g.tmp.path().join(name);
        fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        p
    };
    let compare = |new: &Path| cli([OsStr::new("compare"), os(&base), os(new)]);
    compare(&base).expect(0, &["0 newly failing", "2 unchanged"]);
    // A loosened level is named in the report, not hidden in it.
    g.check(&[OsStr::new("--tolerance"), OsStr::new("abs:2")])
        .expect(0, &["tolerance: abs:2 for every case (--tolerance)"]);
    let skipped = variant("skipped.json", &|v| {
        let c = v["cases"].as_array_mut().unwrap().remove(failing);
        v["skipped"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"id": c["id"], "api": "x", "reason": "not expressible"}));
    });
    compare(&skipped).expect(
        1,
        &["no longer checked (skipped now) (1):", "fail -> skipped"],
    );
    let gone = variant("gone.json", &|v| {
        v["cases"].as_array_mut().unwrap().remove(failing);
    });
    compare(&gone).expect(
        1,
        &["removed (absent now) (1):", "fail -> absent", "0 fixed"],
    );
    for (name, edit, words) in [
        (
            "unknown.json",
            &(|v: &mut serde_json::Value| v["cases"][0]["verdict"] = "passed".into())
                as &dyn Fn(&mut serde_json::Value),
            "unknown variant `passed`",
        ),
        (
            "twice.json",
            &|v: &mut serde_json::Value| {
                let c = v["cases"][0].clone();
                v["cases"].as_array_mut().unwrap().push(c);
            },
            "is listed twice",
        ),
        (
            "empty.json",
            &|v: &mut serde_json::Value| v["cases"] = serde_json::json!([]),
            "lists no case",
        ),
        (
            "run.json",
            &|v: &mut serde_json::Value| v["kind"] = "run".into(),
            "compare reports of one kind",
        ),
        (
            "nokind.json",
            &|v: &mut serde_json::Value| {
                v.as_object_mut().unwrap().remove("kind");
            },
            "missing field `kind`",
        ),
    ] {
        let p = variant(name, edit);
        compare(&p).expect(2, &[name, words]);
    }
    let loosened = variant("loosened.json", &|v| {
        for c in v["cases"].as_array_mut().unwrap() {
            c["tolerance"] = "abs:1".into();
            c["verdict"] = "pass".into();
        }
    });
    compare(&loosened).expect(
        2,
        &["judged at tolerance abs:1", "the same tolerance levels"],
    );
    let layout = variant("layout.json", &|v| {
        v["gate"]["layout"] = "onnx-layout1".into()
    });
    compare(&layout).expect(2, &["layout.json", "compare checks of one layout"]);
    let other = variant("other.json", &|v| {
        v["gate"]["suite_fingerprint"] = "sha256:0".into()
    });
    compare(&other).expect(0, &["note: the two checks are of different exports"]);
    let text = fs::read_to_string(&base).unwrap();
    let dup = g.tmp.path().join("dup.json");
    fs::write(
        &dup,
        text.replacen("\"kind\":", "\"kind\": \"run\", \"kind\":", 1),
    )
    .unwrap();
    compare(&dup).expect(2, &["dup.json", "duplicate key \"kind\""]);
    let fifo = g.tmp.path().join("fifo.json");
    mkfifo(&fifo);
    compare(&fifo).expect(2, &["fifo.json", "FIFO"]);
}

/// Arrays the implementation writes that TensorFlow recorded nothing for
/// (the final state of a Keras layer without `return_state`, `y` of a
/// block op whose per-step states are written) are judged too, against
/// the Rust LSTM's result that the contract defines: NaN, garbage or a
/// faked all-zero state fails the case.
#[test]
fn silent_pass_unrecorded_outputs_are_judged() {
    const KERAS_NO_STATE: &str = "keras3/grid-003-lstm-masking-gaps-rhs-ufb1-drop-seq-back-zero";
    const BLOCK: &str = "block/canary-forget-bias-1";
    let g = Gate::new(
        &[KERAS_NO_STATE, BLOCK],
        Layout::Canonical,
        Dtype::F32,
        true,
    );
    for (id, file) in [
        (KERAS_NO_STATE, "h_n.0.npy"),
        (KERAS_NO_STATE, "c_n.0.npy"),
        (BLOCK, "y.npy"),
        (BLOCK, "h_n.0.npy"),
    ] {
        let path = g.step(id, "main").join(file);
        let original = fs::read(&path).unwrap();
        for value in [f32::NAN, 123.0, 0.0] {
            let a = read_f32(&path);
            npy::write(&path, &Tensor::F32(a.mapv(|_| value))).unwrap();
            let r = g.check(&[]);
            r.expect(
                1,
                &["1 passed, 1 failed", "unrecorded: against the Rust LSTM"],
            );
            assert!(r.text().contains(id), "{id}/{file} = {value}: {}", r.text());
        }
        fs::write(&path, original).unwrap();
    }
    g.check(&[]).expect(0, &["2 passed"]);
    // Final states no recorded output reads are optional: the export says
    // so, and leaving them out passes; a recorded one stays required.
    let step_json = |id: &str| -> serde_json::Value {
        serde_json::from_slice(&fs::read(g.export.join(id).join("main/step.json")).unwrap())
            .unwrap()
    };
    for name in ["h_n/0", "c_n/0"] {
        assert_eq!(
            step_json(KERAS_NO_STATE)["outputs"][name]["required"],
            false,
            "{name}"
        );
        assert_eq!(
            step_json(BLOCK)["outputs"][name]["required"],
            false,
            "{name}"
        );
    }
    assert_eq!(step_json(KERAS_NO_STATE)["outputs"]["y"]["required"], true);
    for file in ["h_n.0.npy", "c_n.0.npy"] {
        fs::remove_file(g.step(KERAS_NO_STATE, "main").join(file)).unwrap();
    }
    g.check(&[]).expect(0, &["2 passed"]);
    const WITH_STATE: &str = "tf1/rand-001-basic-dyn";
    let s = Gate::new(&[WITH_STATE], Layout::Canonical, Dtype::F32, true);
    let json: serde_json::Value = serde_json::from_slice(
        &fs::read(s.export.join(WITH_STATE).join("main/step.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["outputs"]["h_n/0"]["required"], true);
    fs::remove_file(s.step(WITH_STATE, "main").join("h_n.0.npy")).unwrap();
    s.check(&[]).expect(2, &["h_n.0.npy", "missing"]);
    // Parts of an array no recorded output reads: the earlier steps of a
    // layer that returns only its last output, a step hidden by a mask.
    const LAST_ONLY: &str = "keras3/rand-002-lstm-last";
    const MASKED: &str = "tfkeras/grid-052-lstm-masking-right-ahs-zero";
    let g = Gate::new(&[LAST_ONLY, MASKED], Layout::Canonical, Dtype::F32, true);
    for (id, value) in [(LAST_ONLY, 5.0f32), (LAST_ONLY, 1e30), (MASKED, 0.0)] {
        let path = g.step(id, "main").join("y.npy");
        let original = fs::read(&path).unwrap();
        let mut a = read_f32(&path);
        if id == LAST_ONLY {
            // Every step but the last.
            let t = a.shape()[1];
            a.slice_mut(ndarray::s![.., ..t - 1, ..]).fill(value);
        } else {
            a.fill(value);
        }
        npy::write(&path, &Tensor::F32(a)).unwrap();
        let r = g.check(&[]);
        r.expect(
            1,
            &[
                "1 passed, 1 failed",
                "elements unrecorded: against the Rust LSTM",
            ],
        );
        assert!(r.text().contains(id), "{id} = {value}: {}", r.text());
        fs::write(&path, original).unwrap();
    }
    g.check(&[]).expect(0, &["2 passed"]);
}

/// Symbolic links planted under the names of the temporary files that
/// atomic writes use are never followed: the file they point to keeps its
/// bytes, and the write still lands.
#[test]
fn harm_planted_temporary_file_links_are_not_followed() {
    let d = scratch();
    let victim = d.path().join("victim.txt");
    fs::write(&victim, "the user's").unwrap();
    let target = d.path().join("r.json");
    let pid = std::process::id();
    symlink(&victim, d.path().join(format!(".r.json.tmp-{pid}"))).unwrap();
    for n in 0..16 {
        symlink(&victim, d.path().join(format!(".r.json.tmp-{pid}-{n}"))).unwrap();
    }
    npy::write_atomic(&target, b"report").unwrap();
    npy::write_atomic_unsynced(&target, b"report 2").unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"the user's");
    assert_eq!(fs::read(&target).unwrap(), b"report 2");
}

/// Standard output that cannot be written (a full device, a pipe closed
/// early) is a message and exit 2, or the quiet end by SIGPIPE that
/// command-line filters have; never a panic.
#[test]
fn panics_none_when_standard_output_fails() {
    if let Ok(full) = fs::OpenOptions::new().write(true).open("/dev/full") {
        let out = bin()
            .args(["list", "--reference"])
            .arg(reference())
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("cannot write to standard output"), "{err}");
    } else {
        eprintln!("skipped the /dev/full part: it cannot be opened here");
    }
    let mut child = bin()
        .args(["list", "--reference"])
        .arg(reference())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.status.signal() == Some(libc::SIGPIPE) || out.status.code() == Some(2),
        "{:?}: {err}",
        out.status
    );
}

/// An export of nothing (no selected case expressible in the layout) is
/// refused and changes nothing; a report in which no case ran is not a
/// pass, in the table, the exit code and JUnit.
#[test]
fn silent_pass_nothing_exported_or_checked_is_not_a_pass() {
    // A peephole case: the torch layout has no peepholes.
    let (tmp, root) = reference_of(&["tf1/canary-peephole-clipped-c"]);
    let out = tmp.path().join("export");
    fs::create_dir(&out).unwrap();
    let before = snapshot(tmp.path());
    let export = |extra: &str| export_cli("torch", &out, &root, &[extra]);
    export("tf1/*").expect(2, &["nothing to export", "peepholes; torch has none"]);
    export("no-such-case").expect(2, &["no case"]);
    assert_same(&before, tmp.path(), "an export of nothing");
    let g = Gate::new(&[RAND001], Layout::Onnx, Dtype::F32, false);
    let mut report = check_lib(&g.root, &g.export, &g.outputs).unwrap();
    report.runs.clear();
    assert!(report.nothing_checked());
    assert_eq!(report.exit_code(), 1);
    assert!(conformance::report::table(&report).contains("nothing was checked"));
    let xml = lstm_parity::conformance::junit::junit(&report, "t");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert!(
        doc.descendants().any(|n| n.has_tag_name("failure")),
        "{xml}"
    );
}

/// A user's files inside an earlier export (in a step folder, a layer
/// folder, a new folder), an export file the user changed, and a
/// hand-made index.json naming the user's file as a case: re-exporting is
/// refused (exit 2) and every file stays as it was.
#[test]
fn harm_user_files_inside_an_earlier_export_are_never_deleted() {
    let (tmp, root) = reference_of(&[RAND001]);
    let out = tmp.path().join("export");
    let export = || export_cli("onnx", &out, &root, &[]);
    export().expect(0, &["exported 1 of 1"]);
    let step = out.join(RAND001).join("main");
    let layer = fs::read_dir(&step)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a layer folder");
    for (user_file, words) in [
        (
            step.join("notes.txt"),
            "notes.txt\", which its index.json does not list",
        ),
        (
            layer.join("notes.txt"),
            "notes.txt\", which its index.json does not list",
        ),
        (
            out.join("tf1").join("mine").join("f"),
            "tf1/mine\", which its index.json does not list",
        ),
    ] {
        fs::create_dir_all(user_file.parent().unwrap()).unwrap();
        fs::write(&user_file, "the user's").unwrap();
        let before = snapshot(tmp.path());
        export().expect(2, &[words, "refusing to replace it"]);
        assert_same(&before, tmp.path(), &user_file.display().to_string());
        fs::remove_file(&user_file).unwrap();
        let _ = fs::remove_dir(out.join("tf1").join("mine"));
    }
    // An export file the user changed.
    let x = step.join("x.npy");
    let original = fs::read(&x).unwrap();
    set_element(&x, 0, |v| v + 1.0);
    let before = snapshot(tmp.path());
    export().expect(2, &["x.npy changed since that export"]);
    assert_same(&before, tmp.path(), "a changed export file");
    fs::write(&x, original).unwrap();
    // A hand-made index.json listing the user's file as a case id.
    let user = scratch();
    let dir = user.path().join("x");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("user.txt"), "the user's").unwrap();
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    index["cases"][0]["id"] = "user.txt".into();
    fs::write(
        dir.join("index.json"),
        serde_json::to_string(&index).unwrap(),
    )
    .unwrap();
    let before = snapshot(user.path());
    export_cli("onnx", &dir, &root, &[]).expect(2, &["index.json was changed after that export"]);
    assert_same(&before, user.path(), "a hand-made index");
    // Untouched, the earlier export is replaced.
    export().expect(0, &["exported 1 of 1"]);
}

/// The implementation's files are its own: an `error.txt` or an output
/// that is a symbolic link (to a secret, or to a reference array) is
/// refused naming it, and nothing of the linked file reaches the report;
/// a `case.json` linked out of its case folder is refused like an array.
#[test]
fn silent_pass_links_in_outputs_or_to_a_case_json_outside_are_refused() {
    let g = Gate::new(&[RAND001], Layout::Onnx, Dtype::F32, false);
    let secret = g.tmp.path().join("secret.txt");
    fs::write(&secret, "TOP-SECRET-LINE\n").unwrap();
    let step = g.step(RAND001, "main");
    let saved = take_files(&step);
    symlink(&secret, step.join("error.txt")).unwrap();
    let r = g.check(&[]);
    r.expect(2, &["error.txt", "a symbolic link"]);
    assert!(!r.text().contains("TOP-SECRET"), "{}", r.text());
    fs::remove_file(step.join("error.txt")).unwrap();
    put_back(&saved);
    // y.npy a link to a copy of itself: refused all the same.
    let y = step.join("y.npy");
    let copy = g.tmp.path().join("y-copy.npy");
    fs::rename(&y, &copy).unwrap();
    symlink(&copy, &y).unwrap();
    g.check(&[]).expect(2, &["y.npy", "a symbolic link"]);
    fs::remove_file(&y).unwrap();
    fs::rename(&copy, &y).unwrap();
    g.check(&[]).expect(0, &["1 passed"]);
    // case.json a link out of its case folder.
    let (tmp, root) = reference_of(&[RAND001]);
    let manifest = root.join(RAND001).join("case.json");
    let outside = tmp.path().join("case.json");
    fs::rename(&manifest, &outside).unwrap();
    symlink(&outside, &manifest).unwrap();
    cli([OsStr::new("run"), OsStr::new("--reference"), os(&root)])
        .expect(2, &["case.json", "leaves the case folder"]);
}

/// Probing which slices of an array a recorded output reads is bounded:
/// a case of 48 x 48 (batch row, time step) slices, past the 1,024 probed
/// one by one, is probed per time step, checks within the timeout, and its
/// unread steps are still judged.
#[test]
fn unbounded_work_probing_unread_slices_is_bounded() {
    let tmp = scratch();
    let root = tmp.path().join("reference");
    let id = common::keras_last_output_case(&root, 48, 48);
    let export = tmp.path().join("export");
    let outputs = tmp.path().join("outputs");
    export_lib(&root, &[], &export, Layout::Canonical, Dtype::F32);
    rust_implementation::<f32>(&export, &outputs, true);
    let check = || {
        cli([
            OsStr::new("check"),
            OsStr::new("--outputs"),
            os(&outputs),
            OsStr::new("--export"),
            os(&export),
            OsStr::new("--reference"),
            os(&root),
        ])
    };
    check().expect(0, &["1 passed"]);
    let y = outputs.join(&id).join("main").join("y.npy");
    let mut a = read_f32(&y);
    a.slice_mut(ndarray::s![.., 0, ..]).fill(7.0);
    npy::write(&y, &Tensor::F32(a)).unwrap();
    check().expect(
        1,
        &[
            "elements unrecorded: against the Rust LSTM",
            "0 passed, 1 failed",
        ],
    );
}
