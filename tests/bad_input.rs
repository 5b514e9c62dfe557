//! The bad-input catalogue: every malformed input gives a clear error that
//! names the case and the file, never a panic, never a pass by accident.
//! (Exit codes of the same errors through the CLI: tests/cli.rs.)
//!
//! Each test builds its fixture from a recorded case copied to a temporary
//! folder, or from bytes written here.

mod common;

use common::{copy_case, edit_manifest, reference};
use std::fs;
use std::path::Path;

use lstm_parity::conformance::npy::{self, NpyError};
use lstm_parity::conformance::{self, Case, CaseErrorKind, Dtype, Filter};
use lstm_parity::tensor::Tensor;
use ndarray::{ArrayD, IxDyn};

const CASE: &str = "tf1/nb001-stacked";

fn load(dir: &Path) -> Result<Case, lstm_parity::conformance::CaseError> {
    Case::load(dir, CASE)
}

/// The header of a `.npy` file with this dtype descriptor and shape text.
fn npy_header(descr: &str, fortran: bool, shape: &str) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    out
}

#[test]
fn missing_field_is_named() {
    let (_root, dir) = copy_case(CASE);
    edit_manifest(&dir, |v| {
        v.as_object_mut().unwrap().remove("tolerance");
    });
    let e = load(&dir).unwrap_err();
    assert_eq!(e.file.as_deref(), Some("case.json"));
    assert!(e.to_string().contains("missing field `tolerance`"), "{e}");
}

#[test]
fn unknown_field_in_the_model_is_named() {
    let (_root, dir) = copy_case(CASE);
    edit_manifest(&dir, |v| {
        v["model"]["cell"]["cells"][0]["colour"] = "blue".into()
    });
    let e = load(&dir).unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
}

#[test]
fn wrong_dtype_is_refused() {
    let (_root, dir) = copy_case(CASE);
    // An expected float32 file that holds float64.
    let name = "outputs.f32.npy";
    let Tensor::F32(a) = npy::read(&dir.join(name)).unwrap() else {
        panic!()
    };
    npy::write(&dir.join(name), &Tensor::F64(a.mapv(f64::from))).unwrap();
    let e = load(&dir).unwrap_err();
    assert_eq!(e.file.as_deref(), Some(name));
    assert!(
        matches!(
            e.kind,
            CaseErrorKind::DType {
                expected: "float32",
                got: "float64"
            }
        ),
        "{e}"
    );
    // An int32 array where the weights must be floats.
    let (_root, dir) = copy_case(CASE);
    let v = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("kernel"))
        .unwrap();
    let shape = npy::read(&v).unwrap().shape().to_vec();
    let name = v.file_name().unwrap().to_string_lossy().into_owned();
    npy::write(&v, &Tensor::I32(ArrayD::zeros(IxDyn(&shape)))).unwrap();
    let e = load(&dir).unwrap_err();
    assert_eq!(e.file.as_deref(), Some(name.as_str()), "{e}");
    assert!(
        e.to_string().contains(&format!(
            "{name}: dtype int32 where float32 or float64 is required"
        )),
        "{e}"
    );
    // An int64 file is named as int64 (it is read as int32 where it fits).
    let mut bytes = fs::read(&v).unwrap();
    let at = bytes.windows(3).position(|w| w == b"<i4").unwrap();
    bytes[at..at + 3].copy_from_slice(b"<i8");
    let data_start = bytes.len() - shape.iter().product::<usize>() * 4;
    let mut wide = bytes[..data_start].to_vec();
    wide.extend(std::iter::repeat_n(
        0u8,
        shape.iter().product::<usize>() * 8,
    ));
    fs::write(&v, wide).unwrap();
    let e = load(&dir).unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "{name}: dtype int64 where float32 or float64 is required"
        )),
        "{e}"
    );
}

#[test]
fn wrong_rank_is_refused() {
    let (_root, dir) = copy_case(CASE);
    let Tensor::F32(a) = npy::read(&dir.join("inputs.npy")).unwrap() else {
        panic!()
    };
    let flat = a.into_shape_with_order(IxDyn(&[6, 6])).unwrap();
    npy::write(&dir.join("inputs.npy"), &Tensor::F32(flat)).unwrap();
    edit_manifest(&dir, |v| {
        v["inputs"]["inputs"]["shape"] = serde_json::json!([6, 6])
    });
    let e = load(&dir).unwrap_err();
    assert!(e.to_string().contains("inputs (rank 3)"), "{e}");
}

#[test]
fn huge_shape_in_a_header_allocates_nothing() {
    let mut bytes = npy_header("<f4", false, "(1099511627776, 1099511627776)");
    bytes.extend_from_slice(&[0u8; 16]);
    match npy::parse(&bytes) {
        Err(NpyError::Header(m)) if m.contains("too large") => {}
        other => panic!("{other:?}"),
    }
    // Large but countable: refused by comparing with the bytes present.
    let mut bytes = npy_header("<f4", false, "(1073741824, 1048576)");
    bytes.extend_from_slice(&[0u8; 16]);
    match npy::parse(&bytes) {
        Err(NpyError::Size { got: 16, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn fortran_order_and_big_endian_are_read_correctly() {
    // [[1, 2, 3], [4, 5, 6]] stored column by column, big-endian float64.
    let mut bytes = npy_header(">f8", true, "(2, 3)");
    for v in [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0] {
        bytes.extend_from_slice(&v.to_be_bytes());
    }
    let Tensor::F64(a) = npy::parse(&bytes).unwrap() else {
        panic!()
    };
    let expected =
        ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    assert_eq!(a, expected);
}

#[test]
fn unsupported_dtypes_are_refused() {
    for descr in ["<c8", "|S4", "<u2", "<i2"] {
        let mut bytes = npy_header(descr, false, "(1,)");
        bytes.extend_from_slice(&[0u8; 8][..descr[2..].parse::<usize>().unwrap()]);
        let e = npy::parse(&bytes).unwrap_err();
        assert!(e.to_string().contains("dtype"), "{descr}: {e}");
    }
}

#[test]
fn symlink_out_of_the_case_folder_is_refused() {
    let (root, dir) = copy_case(CASE);
    let outside = root.path().join("outside.npy");
    fs::rename(dir.join("inputs.npy"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("inputs.npy")).unwrap();
    let e = load(&dir).unwrap_err();
    assert!(matches!(e.kind, CaseErrorKind::PathEscape(_)), "{e}");
    assert_eq!(e.file.as_deref(), Some("inputs.npy"));
}

#[test]
fn infinite_weights_are_refused() {
    let (_root, dir) = copy_case(CASE);
    let v = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("bias"))
        .unwrap();
    let Tensor::F32(mut a) = npy::read(&v).unwrap() else {
        panic!()
    };
    a[[0]] = f32::INFINITY;
    npy::write(&v, &Tensor::F32(a)).unwrap();
    let e = load(&dir).unwrap_err();
    assert!(
        e.to_string().contains("non-finite value inf at index [0]"),
        "{e}"
    );
}

/// NaN never passes by comparison: NaN expected against a number fails,
/// a number expected against NaN fails, NaN against NaN matches.
#[test]
fn nan_is_compared_nan_aware() {
    let case = conformance::select(&reference(), &Filter::new(&[CASE]).unwrap())
        .unwrap()
        .cases
        .remove(0);
    let mut nan_expected = case.clone();
    let e = nan_expected.expected.get_mut("state/1/h").unwrap();
    e.float64.as_mut().unwrap()[[0, 0]] = f64::NAN;
    e.float32[[0, 0]] = f32::NAN;
    for dtype in Dtype::ALL {
        let run = conformance::run_case(&nan_expected, dtype, None);
        assert!(
            !run.passed(),
            "{dtype}: NaN expected, number computed, must fail"
        );
        let c = run
            .comparisons
            .iter()
            .find(|c| c.output == "state/1/h")
            .unwrap();
        assert_eq!(c.nan_mismatches, 1);
    }
    // A NaN the implementation computes where a number is expected.
    let mut outputs = case
        .model
        .run::<f64>(&case.variables, &case.inputs)
        .unwrap();
    outputs.get_mut("outputs").unwrap()[[1, 2, 3]] = f64::NAN;
    let run = conformance::check_outputs(&case, &outputs, Dtype::F64, None);
    assert!(!run.passed());
    // NaN against NaN matches.
    let mut both = nan_expected
        .model
        .run::<f64>(&nan_expected.variables, &nan_expected.inputs)
        .unwrap();
    both.get_mut("state/1/h").unwrap()[[0, 0]] = f64::NAN;
    let run = conformance::check_outputs(&nan_expected, &both, Dtype::F64, None);
    let c = run
        .comparisons
        .iter()
        .find(|c| c.output == "state/1/h")
        .unwrap();
    assert_eq!(c.nan_mismatches, 0);
}

/// Case ids are the case folders' paths relative to the root, so two cases
/// cannot share an id; discovery returns them sorted and unique.
#[test]
fn case_ids_are_unique_and_sorted() {
    let refs = conformance::discover(&reference()).unwrap();
    let ids: Vec<&str> = refs.iter().map(|r| r.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted);
}

/// An interrupted write leaves no half-written file: data goes to a
/// temporary file that is renamed over the target, and a failed write
/// removes its temporary file and leaves the old target intact.
#[test]
fn writes_are_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a.npy");
    npy::write(&target, &Tensor::F32(ArrayD::zeros(IxDyn(&[2])))).unwrap();
    let before = fs::read(&target).unwrap();
    // Writing into a folder that does not exist fails without a trace.
    let missing = dir.path().join("no-such-folder").join("b.npy");
    assert!(npy::write(&missing, &Tensor::F32(ArrayD::zeros(IxDyn(&[2])))).is_err());
    assert_eq!(fs::read(&target).unwrap(), before);
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("a.npy")]);
}

/// Edit a case's `reduced.json` in place.
fn edit_reduced(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("reduced.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn malformed_reduced_precision_runs_are_refused_naming_case_and_file() {
    type Edit = fn(&mut serde_json::Value);
    let edits: Vec<(&str, Edit, &str)> = vec![
        (
            "unknown field",
            |v| v["runs"]["float16"]["note"] = "x".into(),
            "unknown field",
        ),
        (
            "unknown precision",
            |v| {
                let run = v["runs"]["float16"].clone();
                v["runs"]["float8"] = run;
            },
            "unknown precision \"float8\"",
        ),
        (
            "unknown output",
            |v| {
                v["runs"]["float16"]["expected"]["nope"] = "outputs.f16.npy".into();
            },
            "expected output \"nope\"",
        ),
        (
            "path leaving the folder",
            |v| {
                v["runs"]["float16"]["expected"]["outputs"] = "../x.f16.npy".into();
            },
            "leaves the case folder",
        ),
        (
            "a float32 file as float16",
            |v| {
                v["runs"]["float16"]["expected"]["outputs"] = "outputs.f32.npy".into();
            },
            "dtype float32 where float16 is required",
        ),
        (
            "a float32 value as bfloat16",
            |v| {
                v["runs"]["bfloat16"]["expected"]["outputs"] = "outputs.f32.npy".into();
            },
            "is not a bfloat16 value",
        ),
        (
            "another format",
            |v| v["version"] = 2.into(),
            "version 1 is required",
        ),
    ];
    for (what, edit, needle) in edits {
        let (_root, dir) = copy_case(CASE);
        edit_reduced(&dir, edit);
        let e = load(&dir).expect_err(what);
        let text = e.to_string();
        assert!(text.contains(CASE), "{what}: {text}");
        assert!(text.contains(needle), "{what}: {text}");
    }
}

#[test]
fn a_reduced_run_far_from_the_truth_fails_instead_of_widening_its_level() {
    let (_root, dir) = copy_case(CASE);
    let path = dir.join("outputs.f16.npy");
    let Tensor::F32(mut a) = npy::read(&path).unwrap() else {
        panic!("float16 widened")
    };
    a[[0, 0, 0]] += 0.5;
    let bytes = npy_f16(&a);
    fs::write(&path, bytes).unwrap();
    let case = load(&dir).unwrap();
    let run = conformance::run_case(&case, Dtype::F16, None);
    assert!(!run.passed());
    let e = run.error.unwrap_or_default();
    assert!(
        e.contains("the recording is inconsistent: the float16 run of outputs"),
        "{e}"
    );
}

/// A float16 `.npy` of `a` (whose values are float16 values).
fn npy_f16(a: &ArrayD<f32>) -> Vec<u8> {
    let shape: Vec<String> = a.shape().iter().map(ToString::to_string).collect();
    let mut bytes = npy_header("<f2", false, &format!("({},)", shape.join(", ")));
    for v in a.iter() {
        bytes.extend_from_slice(&half::f16::from_f32(*v).to_bits().to_le_bytes());
    }
    bytes
}
