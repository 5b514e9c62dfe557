//! Shared by the tests: scratch folders, copies of recorded cases to break,
//! and synthetic cases.
//!
//! A synthetic case is written in the case format with its expectations
//! computed by the Rust LSTM (float32 and float64). It stands in for kinds
//! of cases the recorded suite does not hold yet (block ops, Keras
//! `Bidirectional`, masking), to exercise the gate's machinery; it proves
//! nothing about TensorFlow.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use lstm_parity::conformance::expectations::Expectations;
use lstm_parity::conformance::gate::{self, CheckOptions, ExportOptions, GateError};
use lstm_parity::conformance::report::Report;
use lstm_parity::conformance::{npy, Case, Dtype};
use lstm_parity::dialect::layout::{ForgetBias, Layout};
use lstm_parity::dialect::{Model, Runner, RustLstm};
use lstm_parity::lstm::Real;
use lstm_parity::tensor::Tensor;
use ndarray::{ArrayD, Dimension, IxDyn};
use serde_json::{json, Value};

pub fn reference() -> PathBuf {
    lstm_parity::conformance::suite::reference_root(None)
}

/// A reference root holding a copy of one recorded case, to break.
pub fn copy_case(id: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dst = root.path().join(id);
    fs::create_dir_all(&dst).unwrap();
    for entry in fs::read_dir(reference().join(id)).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    (root, dst)
}

/// Edit a case's `case.json` in place (a copy, from [`copy_case`]).
pub fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("case.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// A scratch folder, on a RAM file system where there is one: an export
/// is a thousand small files, and creating them on a slow disk costs
/// seconds per layout.
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

/// Deterministic values in (-1, 1), distinct per element and per `seed`.
pub fn values(shape: &[usize], seed: f64) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        let k = i.slice().iter().fold(0.0, |a, &x| a * 7.0 + x as f64 + 1.0);
        (((k + seed) * 12.9898).sin() * 0.9) as f32
    })
}

/// Write a case folder `root/id` for `dialect`/`model`, with the given
/// variables and inputs; every output the dialect produces is expected,
/// as the Rust LSTM computes it.
pub fn write_case(
    root: &Path,
    id: &str,
    dialect: &str,
    model: Value,
    variables: &[(&str, Tensor)],
    inputs: &[(&str, Tensor)],
) {
    let dir = root.join(id);
    fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, suffix: &str| format!("{}{suffix}.npy", name.replace('/', "."));
    let mut vars = serde_json::Map::new();
    let mut var_tensors = lstm_parity::dialect::Tensors::new();
    for (name, t) in variables {
        let f = file(name, "");
        npy::write(&dir.join(&f), t).unwrap();
        vars.insert(name.to_string(), json!({"file": f, "shape": t.shape()}));
        var_tensors.insert(name.to_string(), t.clone());
    }
    let mut ins = serde_json::Map::new();
    let mut in_tensors = lstm_parity::dialect::Tensors::new();
    for (name, t) in inputs {
        let f = file(name, ".in");
        npy::write(&dir.join(&f), t).unwrap();
        ins.insert(name.to_string(), json!({"file": f, "shape": t.shape()}));
        in_tensors.insert(name.to_string(), t.clone());
    }
    let parsed = Model::parse(dialect, &model).unwrap();
    let f32s = parsed.run::<f32>(&var_tensors, &in_tensors).unwrap();
    let f64s = parsed.run::<f64>(&var_tensors, &in_tensors).unwrap();
    let mut expected = serde_json::Map::new();
    for (name, a) in &f32s {
        let (f, g) = (file(name, ".f32"), file(name, ".f64"));
        npy::write(&dir.join(&f), &Tensor::F32(a.clone())).unwrap();
        npy::write(&dir.join(&g), &Tensor::F64(f64s[name].clone())).unwrap();
        expected.insert(
            name.clone(),
            json!({"shape": a.shape(), "float32": f, "float64": g}),
        );
    }
    let manifest = json!({
        "format_version": 1,
        "description": format!("synthetic {id}: expectations from the Rust LSTM, for testing the gate"),
        "dialect": dialect,
        "model": model,
        "tolerance": "default",
        "variables": vars,
        "inputs": ins,
        "expected": expected,
        "provenance": {
            "script": "tests/common/mod.rs",
            "generator": "synthetic",
            "notebook": null,
            "seed": null,
            "versions": {},
            "notes": "not a TensorFlow recording"
        }
    });
    fs::write(
        dir.join("case.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

fn f32t(a: ArrayD<f32>) -> Tensor {
    Tensor::F32(a)
}

/// A `BlockLSTM` case: forget_bias 1, no clip, peepholes, 5 steps of 3 rows.
pub fn block_case(root: &Path) -> String {
    let (t, b, i, u) = (5, 3, 2, 4);
    let id = "synthetic/block-lstm-peep";
    write_case(
        root,
        id,
        "block",
        json!({"op": "BlockLSTM", "forget_bias": 1.0, "cell_clip": 0.0, "use_peephole": true}),
        &[
            ("w", f32t(values(&[i + u, 4 * u], 1.0))),
            ("b", f32t(values(&[4 * u], 2.0))),
            ("wci", f32t(values(&[u], 3.0))),
            ("wcf", f32t(values(&[u], 4.0))),
            ("wco", f32t(values(&[u], 5.0))),
        ],
        &[
            ("x", f32t(values(&[t, b, i], 6.0))),
            ("cs_prev", f32t(values(&[b, u], 7.0))),
            ("h_prev", f32t(values(&[b, u], 8.0))),
            (
                "seq_len_max",
                Tensor::I32(ArrayD::from_elem(IxDyn(&[]), t as i32)),
            ),
        ],
    );
    id.to_string()
}

fn keras_cell(prefix: &str, units: usize) -> Value {
    json!({"units": units, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": true,
           "variables": {"kernel": format!("{prefix}/kernel"), "recurrent_kernel": format!("{prefix}/recurrent_kernel"), "bias": format!("{prefix}/bias")}})
}

fn keras_vars(prefix: &str, input: usize, units: usize, seed: f64) -> Vec<(String, Tensor)> {
    vec![
        (
            format!("{prefix}/kernel"),
            f32t(values(&[input, 4 * units], seed)),
        ),
        (
            format!("{prefix}/recurrent_kernel"),
            f32t(values(&[units, 4 * units], seed + 1.0)),
        ),
        (
            format!("{prefix}/bias"),
            f32t(values(&[4 * units], seed + 2.0)),
        ),
    ]
}

/// A right-padded `[batch, time]` mask with lengths `[time, 2, 1]`.
fn length_mask(batch: usize, time: usize) -> Tensor {
    let lengths = [time, 2, 1];
    Tensor::Bool(ArrayD::from_shape_fn(IxDyn(&[batch, time]), |i| {
        i[1] < lengths[i[0] % 3]
    }))
}

/// A Keras 3 `LSTM` with a right-padded mask (masked steps repeat the
/// previous output), returning sequences and states.
pub fn keras_masked_case(root: &Path) -> String {
    let (b, t, i, u) = (3, 4, 2, 3);
    let id = "synthetic/keras-lstm-masked";
    let vars = keras_vars("lstm/lstm_cell", i, u, 11.0);
    let vars: Vec<(&str, Tensor)> = vars.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    write_case(
        root,
        id,
        "keras",
        json!({"keras": "3", "layer": "LSTM", "return_sequences": true, "return_state": true, "cells": [keras_cell("lstm/lstm_cell", u)]}),
        &vars,
        &[
            ("inputs", f32t(values(&[b, t, i], 12.0))),
            ("mask", length_mask(b, t)),
        ],
    );
    id.to_string()
}

/// A Keras 3 `LSTM` that returns only its last output, over a batch of
/// `b` rows and `t` steps: every earlier step of its `y` is read by no
/// recorded output.
pub fn keras_last_output_case(root: &Path, b: usize, t: usize) -> String {
    let (i, u) = (2, 3);
    let id = format!("synthetic/keras-lstm-last-b{b}-t{t}");
    let vars = keras_vars("lstm/lstm_cell", i, u, 13.0);
    let vars: Vec<(&str, Tensor)> = vars.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    write_case(
        root,
        &id,
        "keras",
        json!({"keras": "3", "layer": "LSTM", "return_sequences": false, "return_state": false, "cells": [keras_cell("lstm/lstm_cell", u)]}),
        &vars,
        &[("inputs", f32t(values(&[b, t, i], 14.0)))],
    );
    id
}

/// A Keras 3 `Bidirectional(LSTM)` with a right-padded mask, merged by
/// concatenation, returning sequences and states.
pub fn keras_bidirectional_case(root: &Path) -> String {
    let (b, t, i, u) = (3, 4, 2, 3);
    let id = "synthetic/keras-bidirectional-masked";
    let mut vars = keras_vars("fw/lstm_cell", i, u, 21.0);
    vars.extend(keras_vars("bw/lstm_cell", i, u, 31.0));
    let vars: Vec<(&str, Tensor)> = vars.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    write_case(
        root,
        id,
        "keras",
        json!({"keras": "3", "layer": "Bidirectional", "return_sequences": true, "return_state": true,
               "forward": {"go_backwards": false, "cells": [keras_cell("fw/lstm_cell", u)]},
               "backward": {"go_backwards": true, "cells": [keras_cell("bw/lstm_cell", u)]}}),
        &vars,
        &[
            ("inputs", f32t(values(&[b, t, i], 22.0))),
            ("mask", length_mask(b, t)),
        ],
    );
    id.to_string()
}

/// A Keras `Sequential` of two LSTM layers: the second layer's step reads
/// the first one's results, so no layout can export it.
pub fn keras_sequential_case(root: &Path) -> String {
    let (b, t, i, u) = (2, 3, 2, 3);
    let id = "synthetic/keras-sequential";
    let mut vars = keras_vars("l0/lstm_cell", i, u, 41.0);
    vars.extend(keras_vars("l1/lstm_cell", u, u, 51.0));
    let vars: Vec<(&str, Tensor)> = vars.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let layer = |prefix: &str, sequences: bool| json!({"keras": "3", "layer": "LSTM", "return_sequences": sequences, "cells": [keras_cell(prefix, u)]});
    write_case(
        root,
        id,
        "keras",
        json!({"keras": "3", "layer": "Sequential", "layers": [layer("l0/lstm_cell", true), layer("l1/lstm_cell", false)]}),
        &vars,
        &[("inputs", f32t(values(&[b, t, i], 42.0)))],
    );
    id.to_string()
}

/// The Rust LSTM as an external implementation: read each exported step,
/// run it, write its outputs (with traces when `traces`), as an adapter
/// would.
pub fn rust_implementation<T: Real>(export: &Path, outputs: &Path, traces: bool) {
    let index = gate::read_index(export).unwrap();
    for c in index.cases.iter().filter(|c| c.exported) {
        for s in &c.steps {
            let (file, step) = gate::load_step::<T>(export, &s.dir).unwrap();
            let run = RustLstm.run_step(&step).unwrap();
            gate::write_outputs(outputs, &file, &run, traces).unwrap();
        }
    }
    gate::write_outputs_info(outputs, export, &index, "Rust LSTM (tests)").unwrap();
}

/// Export `cases` of the reference folder `root` into `dir` (which must be
/// new, empty or an earlier export).
pub fn export_in(
    root: &Path,
    cases: &[Case],
    dir: &Path,
    layout: Layout,
    dtype: Dtype,
    forget_bias: Option<ForgetBias>,
) -> gate::ExportIndex {
    gate::export(
        root,
        cases,
        dir,
        &ExportOptions {
            selected_by: None,
            layout,
            dtype,
            forget_bias,
            interrupt: None,
        },
    )
    .unwrap()
}

/// Check the outputs in `outputs` of the export `export` of `reference`.
pub fn check_in(
    reference: &Path,
    export: &Path,
    outputs: &Path,
    expectations: Option<&Expectations>,
) -> Result<Report, GateError> {
    gate::check(&CheckOptions {
        export_dir: export,
        outputs_dir: outputs,
        reference,
        tolerance: None,
        expectations,
        precision: None,
    })
}
