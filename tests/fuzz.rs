//! Fuzzing the parsers with random and mutated bytes: the `.npy` reader and
//! the case loader never panic, never hang, and allocate no more than the
//! input's size implies.
//!
//! A bounded number of iterations runs under `cargo test`. A longer run:
//! `PROPTEST_CASES=200000 cargo test --release --test fuzz`. Shrunk failures
//! are kept in `tests/fuzz.proptest-regressions` (committed) and, once
//! understood, promoted to named tests in `tests/bad_input.rs`.

use std::path::PathBuf;

use lstm_parity::conformance::{npy, Case};
use proptest::prelude::*;

fn reference() -> PathBuf {
    lstm_parity::conformance::suite::reference_root(None)
}

const CASE: &str = "tf1/nb001-stacked";

fn valid_npy() -> Vec<u8> {
    std::fs::read(reference().join(CASE).join("inputs.npy")).unwrap()
}

/// A byte-level mutation: overwrite, insert, delete or truncate.
#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Set(i, b) if !bytes.is_empty() => bytes[i % len] = b,
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Remove(i) if !bytes.is_empty() => {
                bytes.remove(i % len);
            }
            Mutation::Truncate(i) => bytes.truncate(i % len),
            _ => {}
        }
    }
    bytes
}

/// Mutations aimed at the header text: digits, quotes, parentheses.
fn header_mutation() -> impl Strategy<Value = Mutation> {
    (
        0usize..128,
        prop::sample::select(b"0123456789(),' <>|fib:FTx".to_vec()),
    )
        .prop_map(|(i, b)| Mutation::Set(i, b))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, timeout: 5_000, ..ProptestConfig::default() })]

    #[test]
    fn npy_reader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = npy::parse(&bytes);
    }

    #[test]
    fn npy_reader_survives_mutated_files(mutations in proptest::collection::vec(prop_oneof![mutation(), header_mutation()], 1..8)) {
        let bytes = mutate(valid_npy(), &mutations);
        if let Ok(t) = npy::parse(&bytes) {
            // What parses is no larger than the bytes it came from.
            let elements: usize = t.shape().iter().product();
            prop_assert!(elements <= bytes.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, timeout: 5_000, ..ProptestConfig::default() })]

    /// A mutated case.json loads or fails with an error; it never panics.
    #[test]
    fn case_loader_survives_mutated_manifests(mutations in proptest::collection::vec(mutation(), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let case_dir = dir.path().join("case");
        std::fs::create_dir(&case_dir).unwrap();
        for entry in std::fs::read_dir(reference().join(CASE)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), case_dir.join(entry.file_name())).unwrap();
        }
        let manifest = std::fs::read(case_dir.join("case.json")).unwrap();
        std::fs::write(case_dir.join("case.json"), mutate(manifest, &mutations)).unwrap();
        if let Err(e) = Case::load(&case_dir, "case") {
            prop_assert!(e.to_string().starts_with("case case:"));
        }
    }
}
