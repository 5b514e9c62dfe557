//! Strict expectation lists: cases an implementation is known to get
//! wrong, and tolerance levels stated for it, each with the reason.
//!
//! Every listed case still runs. A listed case that passes is an error (the
//! entry is stale: remove it), and so is an entry that matches no checked
//! case. The file is TOML or JSON (by its extension):
//!
//! ```toml
//! [[expected_failure]]
//! case = "tf1/rand-023-*"          # a case id, or a glob over case ids
//! reason = "onnxruntime returns zeros in Y_h/Y_c for sequence_lens 0 instead of initial_h/initial_c"
//! layouts = ["onnx"]               # optional: only when checking these layouts
//! dtypes = ["float32"]             # optional: only for these dtypes
//!
//! [[tolerance]]
//! case = "*"                       # the cases this implementation is judged at another level
//! level = "abs:0.02"               # any level `--tolerance` takes
//! reason = "weights quantized to int8 per channel: ..."
//! layouts = ["keras"]              # optional, as above
//! dtypes = ["float32"]             # optional, as above
//! ```
//!
//! A stated tolerance judges the cases it matches (the first entry that
//! matches a case wins; `check --tolerance` overrides every entry); the
//! report names the level and the reason per case. It is as strict as an
//! expected failure: an entry that matches no checked case, or whose
//! cases all pass at their own level anyway, is reported as stale.
//!
//! JSON: `{"expected_failure": [{"case": ..., "reason": ..., ...}], "tolerance": [...]}`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::check::CaseRun;
use super::tolerance::Tolerance;
use crate::dialect::layout::Layout;
use crate::parse::UnknownName;

/// An expected-failure list.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// The entries, in file order.
    #[serde(default, rename = "expected_failure")]
    pub entries: Vec<Entry>,
    /// Stated tolerance levels, in file order.
    #[serde(default, rename = "tolerance")]
    pub tolerances: Vec<StatedTolerance>,
}

/// A tolerance level stated for some cases of one implementation.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatedTolerance {
    /// A case id or a glob over case ids.
    pub case: String,
    /// The level, as `--tolerance` takes it.
    pub level: String,
    /// Why this level: required, from measurements.
    pub reason: String,
    /// Only when checking these layouts (all when absent).
    #[serde(default, deserialize_with = "non_empty")]
    pub layouts: Vec<String>,
    /// Only for these dtypes (all when absent).
    #[serde(default, deserialize_with = "non_empty")]
    pub dtypes: Vec<String>,
}

impl StatedTolerance {
    fn as_entry(&self) -> Entry {
        Entry {
            case: self.case.clone(),
            reason: self.reason.clone(),
            layouts: self.layouts.clone(),
            dtypes: self.dtypes.clone(),
        }
    }

    /// The parsed level (validated when the list was loaded).
    pub fn tolerance(&self) -> Tolerance {
        self.level.parse().unwrap_or(Tolerance::Exact)
    }
}

/// One expected failure.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// A case id or a glob over case ids.
    pub case: String,
    /// Why it fails: required, one line.
    pub reason: String,
    /// Only when checking these layouts (all when the field is absent;
    /// an empty list is refused, as it reads as "none").
    #[serde(default, deserialize_with = "non_empty")]
    pub layouts: Vec<String>,
    /// Only for these dtypes (all when absent; an empty list is refused).
    #[serde(default, deserialize_with = "non_empty")]
    pub dtypes: Vec<String>,
}

/// A list that, when it is given, names something.
fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom(
            "an empty list: leave the field out to mean every one",
        ));
    }
    Ok(v)
}

/// A list that cannot be read or is malformed.
#[derive(Debug, thiserror::Error)]
#[error("expected-failure list {}: {message}", path.display())]
pub struct ExpectationsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// What is wrong with one entry of a list. `entry` names it: `entry 3
/// ("tf1/x")` or `tolerance entry 1 ("keras3/*")`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntryError {
    /// No case.
    #[error("{entry}: empty case")]
    EmptyCase {
        /// The entry.
        entry: String,
    },
    /// No reason.
    #[error("{entry}: a reason is required")]
    NoReason {
        /// The entry.
        entry: String,
    },
    /// A case glob that does not parse.
    #[error("{entry}: bad glob: {message}")]
    BadGlob {
        /// The entry.
        entry: String,
        /// The glob's error.
        message: String,
    },
    /// A name that is not a layout, dtype or level.
    #[error("{entry}: {name}")]
    Unknown {
        /// The entry.
        entry: String,
        /// The unknown name.
        name: UnknownName,
    },
    /// The same case, layouts and dtypes as an earlier entry.
    #[error("{entry} repeats {earlier} (the same case, layouts and dtypes)")]
    Repeats {
        /// The entry.
        entry: String,
        /// The earlier one.
        earlier: String,
    },
}

impl Entry {
    fn matches_id(&self, id: &str) -> bool {
        if self.case.contains(['*', '?', '[']) {
            glob::Pattern::new(&self.case).is_ok_and(|p| p.matches(id))
        } else {
            self.case == id
        }
    }

    fn applies(&self, layout: Option<&str>) -> bool {
        match layout {
            None => self.layouts.is_empty(),
            Some(l) => self.layouts.is_empty() || self.layouts.iter().any(|x| x == l),
        }
    }

    fn applies_to_dtype(&self, dtype: &str) -> bool {
        self.dtypes.is_empty() || self.dtypes.iter().any(|d| d == dtype)
    }
}

impl Expectations {
    /// Read a `.toml` or `.json` list.
    ///
    /// # Errors
    /// An [`ExpectationsError`] naming the file: unreadable, unknown
    /// extension, not the format, an empty reason, a bad glob, an unknown
    /// layout or dtype.
    pub fn load(path: &Path) -> Result<Expectations, ExpectationsError> {
        let err = |message: String| ExpectationsError {
            path: path.to_path_buf(),
            message,
        };
        // Bounded, regular files only; duplicate keys are refused in both
        // formats (TOML refuses them by its grammar).
        let text = super::fsio::read_json_text(path).map_err(|e| err(e.to_string()))?;
        let list: Expectations = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => toml::from_str(&text).map_err(|e| err(e.to_string()))?,
            Some("json") => super::json::from_str_strict(&text).map_err(|e| err(e.to_string()))?,
            _ => return Err(err("the file name must end in .toml or .json".into())),
        };
        list.validate().map_err(|e| err(e.to_string()))?;
        Ok(list)
    }

    /// Check every entry's fields.
    ///
    /// # Errors
    /// The first problem, naming the entry.
    pub fn validate(&self) -> Result<(), EntryError> {
        validate_entries("entry", &self.entries)?;
        let stated: Vec<Entry> = self
            .tolerances
            .iter()
            .map(StatedTolerance::as_entry)
            .collect();
        validate_entries("tolerance entry", &stated)?;
        for (k, t) in self.tolerances.iter().enumerate() {
            t.level
                .parse::<Tolerance>()
                .map_err(|name| EntryError::Unknown {
                    entry: format!("tolerance entry {} ({:?})", k + 1, t.case),
                    name,
                })?;
        }
        Ok(())
    }

    /// The level stated for one case (the first matching entry), with its reason.
    pub fn stated_tolerance(
        &self,
        id: &str,
        layout: Option<&str>,
        dtype: &str,
    ) -> Option<&StatedTolerance> {
        self.tolerances.iter().find(|t| {
            let e = t.as_entry();
            e.applies(layout) && e.applies_to_dtype(dtype) && e.matches_id(id)
        })
    }

    /// The stale stated tolerances: an entry that matches no checked run,
    /// or whose runs all pass at their own level too. `passes_own_level`
    /// says, for a run judged at a stated level, whether it also passes at
    /// the case's own level.
    pub fn stale_tolerances(
        &self,
        runs: &[CaseRun],
        layout: Option<&str>,
        passes_own_level: &dyn Fn(&CaseRun) -> bool,
    ) -> Vec<String> {
        let mut stale = Vec::new();
        for t in &self.tolerances {
            let e = t.as_entry();
            if !e.applies(layout) {
                continue;
            }
            let judged: Vec<&CaseRun> = runs
                .iter()
                .filter(|r| {
                    self.stated_tolerance(&r.id, layout, &r.dtype.to_string())
                        .is_some_and(|x| std::ptr::eq(x, t))
                })
                .collect();
            if judged.is_empty() {
                stale.push(format!(
                    "the tolerance {:?} stated for {:?} judges no checked case: remove it from the list",
                    t.level, t.case
                ));
            } else if judged.iter().all(|r| passes_own_level(r)) {
                stale.push(format!(
                    "the tolerance {:?} stated for {:?} is not needed: its {} case run(s) pass at their own level: remove it from the list",
                    t.level,
                    t.case,
                    judged.len()
                ));
            }
        }
        stale
    }

    /// Mark the runs this list expects to fail (setting
    /// [`CaseRun::expected_failure`]) and return the list's stale entries:
    /// a listed case that passed, an entry that matches no run. `layout`
    /// is the gate layout checked (`None` for the Rust LSTM's own run);
    /// `unchecked` are case ids known but not run (not exported), named in
    /// the message when an entry matches only those.
    pub fn apply(
        &self,
        runs: &mut [CaseRun],
        layout: Option<&str>,
        unchecked: &[String],
    ) -> Vec<String> {
        let mut stale = Vec::new();
        for entry in self.entries.iter().filter(|e| e.applies(layout)) {
            let mut matched = 0;
            for run in runs.iter_mut() {
                if !entry.matches_id(&run.id) || !entry.applies_to_dtype(&run.dtype.to_string()) {
                    continue;
                }
                matched += 1;
                if run.passed() {
                    stale.push(format!(
                        "{} [{}] is listed as expected to fail ({:?}: {}) but passed: remove it from the list",
                        run.id, run.dtype, entry.case, entry.reason
                    ));
                } else if run.expected_failure.is_none() {
                    run.expected_failure = Some(entry.reason.clone());
                }
            }
            if matched == 0 {
                let only_unchecked = unchecked.iter().any(|id| entry.matches_id(id));
                stale.push(if only_unchecked {
                    format!(
                        "{:?} matches only cases that were not checked (not exported): remove it from the list",
                        entry.case
                    )
                } else {
                    format!("{:?} matches no case: remove it from the list", entry.case)
                });
            }
        }
        stale
    }
}

/// Check a list of entries' fields; `what` names them in messages.
fn validate_entries(what: &str, entries: &[Entry]) -> Result<(), EntryError> {
    for (k, e) in entries.iter().enumerate() {
        let entry = format!("{what} {} ({:?})", k + 1, e.case);
        if e.case.trim().is_empty() {
            return Err(EntryError::EmptyCase {
                entry: format!("{what} {}", k + 1),
            });
        }
        if e.reason.trim().is_empty() {
            return Err(EntryError::NoReason { entry });
        }
        if e.case.contains(['*', '?', '[']) {
            if let Err(x) = glob::Pattern::new(&e.case) {
                let message = x.to_string();
                return Err(EntryError::BadGlob { entry, message });
            }
        }
        let unknown = |name: UnknownName| EntryError::Unknown {
            entry: entry.clone(),
            name,
        };
        for l in &e.layouts {
            l.parse::<Layout>().map_err(unknown)?;
        }
        let key = |x: &Entry| {
            let mut l = x.layouts.clone();
            let mut d = x.dtypes.clone();
            l.sort();
            d.sort();
            (x.case.clone(), l, d)
        };
        if let Some(j) = entries[..k].iter().position(|x| key(x) == key(e)) {
            let earlier = format!("{what} {}", j + 1);
            return Err(EntryError::Repeats { entry, earlier });
        }
        for d in &e.dtypes {
            d.parse::<super::check::Dtype>().map_err(unknown)?;
        }
    }
    Ok(())
}
