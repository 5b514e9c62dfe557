//! Find cases under a reference root, sorted by id, filtered.

use std::path::{Path, PathBuf};

/// A case found on disk, not yet loaded.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CaseRef {
    /// Path relative to the root, `/`-separated.
    pub id: String,
    /// The case folder.
    pub dir: PathBuf,
}

/// Why a suite cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The root is missing or unreadable.
    #[error("reference folder {path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A folder name that is not UTF-8 (it has no id that could not
    /// collide with another), or that holds a character no report format
    /// can carry as it is: a control character or a Unicode noncharacter.
    #[error("{}: {why}; rename it (case ids are UTF-8 paths of printable characters)", path.display())]
    BadName {
        /// The folder.
        path: PathBuf,
        /// What is wrong with its name.
        why: String,
    },
    /// A symbolic link in the case tree: a case behind it would vanish
    /// from the suite, or be found twice.
    #[error("{}: a symbolic link in the reference folder; case trees are plain folders (copy the case instead)", .0.display())]
    Link(PathBuf),
    /// A `case.json` where no case can be: at the root of the reference
    /// folder, or in a folder inside a case folder (a case would vanish).
    #[error("{}: a case.json {where_}; cases are plain folders below the reference folder, never inside another case or a hidden folder", path.display())]
    Misplaced {
        /// The misplaced case.json.
        path: PathBuf,
        /// Where it is.
        where_: &'static str,
    },
    /// The root holds no case at all.
    #[error("reference folder {0} holds no case (no */case.json below it)")]
    Empty(PathBuf),
    /// A filter pattern that is not a valid glob.
    #[error("bad filter {0:?}: {1}")]
    Filter(String, String),
}

/// Every folder below `root` that holds a `case.json`, sorted by id.
/// Folders whose name starts with `.` are skipped; one that holds a case is
/// an error (a case must not vanish), except `scripts/regenerate`'s
/// `.regenerate.*` staging folders.
///
/// # Errors
/// [`SuiteError::Io`] when a folder cannot be read, [`SuiteError::Empty`]
/// when there is no case.
pub fn discover(root: &Path) -> Result<Vec<CaseRef>, SuiteError> {
    if std::fs::symlink_metadata(root.join("case.json")).is_ok() {
        return Err(SuiteError::Misplaced {
            path: root.join("case.json"),
            where_: "at the root of the reference folder",
        });
    }
    let mut found = Vec::new();
    walk(root, root, &mut found)?;
    if found.is_empty() {
        return Err(SuiteError::Empty(root.to_path_buf()));
    }
    found.sort();
    Ok(found)
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<CaseRef>) -> Result<(), SuiteError> {
    let io = |source| SuiteError::Io {
        path: dir.to_path_buf(),
        source,
    };
    // A folder holding anything named case.json is a case: one that is not
    // a regular file fails to load with a message, instead of the case
    // silently vanishing from the suite.
    if dir != root && std::fs::symlink_metadata(dir.join("case.json")).is_ok() {
        let rel = dir.strip_prefix(root).unwrap_or(dir);
        let parts = rel
            .components()
            .map(|c| name_part(dir, c.as_os_str()))
            .collect::<Result<Vec<_>, _>>()?;
        let id = parts.join("/");
        nested_cases(dir)?;
        found.push(CaseRef {
            id,
            dir: dir.to_path_buf(),
        });
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let shown = name.to_string_lossy();
        if shown.starts_with('.') {
            // Hidden folders are not cases (scripts/regenerate records into
            // `.regenerate.*` here), but one that holds a case would hide
            // it: an error, except the recorder's own staging folder.
            if !shown.starts_with(".regenerate.")
                && entry.file_type().map_err(io)?.is_dir()
                && holds_a_case(&entry.path())
            {
                return Err(SuiteError::Misplaced {
                    path: entry.path(),
                    where_: "below a hidden folder (its name starts with '.')",
                });
            }
            continue;
        }
        // Follow no symlinks: a case tree is plain folders.
        let kind = entry.file_type().map_err(io)?;
        if kind.is_symlink() {
            return Err(SuiteError::Link(entry.path()));
        }
        if kind.is_dir() {
            name_part(&entry.path(), &name)?;
            walk(root, &entry.path(), found)?;
        }
    }
    Ok(())
}

/// Whether `dir` or a folder below it holds a `case.json` (links are not
/// followed).
fn holds_a_case(dir: &Path) -> bool {
    if std::fs::symlink_metadata(dir.join("case.json")).is_ok() {
        return true;
    }
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_type().is_ok_and(|t| t.is_dir()) && holds_a_case(&e.path()))
    })
}

/// Refuse a `case.json` in any folder below the case folder `dir`.
fn nested_cases(dir: &Path) -> Result<(), SuiteError> {
    let io = |source| SuiteError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if !entry.file_type().map_err(io)?.is_dir() {
            continue;
        }
        let sub = entry.path();
        if std::fs::symlink_metadata(sub.join("case.json")).is_ok() {
            return Err(SuiteError::Misplaced {
                path: sub.join("case.json"),
                where_: "inside the case folder",
            });
        }
        nested_cases(&sub)?;
    }
    Ok(())
}

/// One folder name of a case id, refused unless it is UTF-8 without
/// control characters or Unicode noncharacters (U+FDD0..U+FDEF, U+xFFFE,
/// U+xFFFF), which JUnit's XML cannot hold and a terminal would act on.
fn name_part(dir: &Path, name: &std::ffi::OsStr) -> Result<String, SuiteError> {
    let bad = |why: String| SuiteError::BadName {
        path: dir.to_path_buf(),
        why,
    };
    let name = name
        .to_str()
        .ok_or_else(|| bad("a folder name that is not UTF-8".into()))?;
    let noncharacter = |c: char| {
        let u = c as u32;
        (0xFDD0..=0xFDEF).contains(&u) || u & 0xFFFE == 0xFFFE
    };
    if let Some(c) = name.chars().find(|&c| c.is_control() || noncharacter(c)) {
        return Err(bad(format!(
            "a folder name with the character U+{:04X}",
            c as u32
        )));
    }
    Ok(name.to_string())
}

/// A case filter: a glob (`tf1/*`, `*nb00?*`) when the pattern has glob
/// characters, else a substring of the id.
#[derive(Clone, Debug)]
pub struct Filter {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug)]
enum Pattern {
    Glob(glob::Pattern),
    Substring(String),
}

impl Filter {
    /// A filter matching ids that match any of `patterns` (all ids when empty).
    ///
    /// # Errors
    /// [`SuiteError::Filter`] for an invalid glob.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Filter, SuiteError> {
        let patterns = patterns
            .iter()
            .map(|p| {
                let p = p.as_ref();
                if p.contains(['*', '?', '[']) {
                    glob::Pattern::new(p)
                        .map(Pattern::Glob)
                        .map_err(|e| SuiteError::Filter(p.to_string(), e.to_string()))
                } else {
                    Ok(Pattern::Substring(p.to_string()))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Filter { patterns })
    }

    /// Whether `id` passes.
    pub fn matches(&self, id: &str) -> bool {
        self.patterns.is_empty()
            || self.patterns.iter().any(|p| match p {
                Pattern::Glob(g) => g.matches(id),
                Pattern::Substring(s) => id.contains(s.as_str()),
            })
    }
}

/// Narrows loaded cases by API (a glob on `tf1.dynamic_rnn`,
/// `keras3.Bidirectional`, `block.BlockLSTM`...) and by option (a word of
/// the model summary: `peepholes`, `cell_clip`, `go_backwards`, ...).
#[derive(Clone, Debug, Default)]
pub struct ModelFilter {
    api: Option<glob::Pattern>,
    option: Option<String>,
}

impl ModelFilter {
    /// A filter; `None` fields match everything.
    ///
    /// # Errors
    /// [`SuiteError::Filter`] for an invalid API glob.
    pub fn new(api: Option<&str>, option: Option<&str>) -> Result<ModelFilter, SuiteError> {
        let api = api
            .map(|a| {
                glob::Pattern::new(a).map_err(|e| SuiteError::Filter(a.to_string(), e.to_string()))
            })
            .transpose()?;
        Ok(ModelFilter {
            api,
            option: option.map(str::to_string),
        })
    }

    /// Whether a case with this API name and model summary passes.
    pub fn matches(&self, api: &str, summary: &str) -> bool {
        self.api.as_ref().is_none_or(|p| p.matches(api))
            && self
                .option
                .as_ref()
                .is_none_or(|o| summary.contains(o.as_str()))
    }
}

/// The environment variable naming the reference folder, for the CLI and
/// the test harnesses alike.
pub const REFERENCE_ENV: &str = "LSTM_PARITY_REFERENCE";

/// The reference folder, by one rule everywhere: the folder `given`
/// (`--reference`), else `$LSTM_PARITY_REFERENCE`, else `./reference`
/// when it exists, else the one beside this crate's sources.
pub fn reference_root(given: Option<&Path>) -> PathBuf {
    if let Some(dir) = given {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os(REFERENCE_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let here = PathBuf::from("reference");
    if here.is_dir() {
        here
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference")
    }
}
