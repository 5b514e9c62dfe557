//! Names read from the command line and from files: an unknown one is a
//! typed error that lists the names known.

/// A name that is none of the known ones, e.g. `unknown dtype "f16"
/// (dtypes: float32, float64)`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?} ({plural}: {})", known.join(", "))]
pub struct UnknownName {
    /// What was named: `dtype`, `layout`, `tolerance level`, ...
    pub what: &'static str,
    /// Its plural, for the list.
    pub plural: &'static str,
    /// The name given.
    pub given: String,
    /// The names known.
    pub known: Vec<&'static str>,
}

impl UnknownName {
    /// `given` is not one of `known`.
    pub fn new(
        what: &'static str,
        plural: &'static str,
        given: &str,
        known: &[&'static str],
    ) -> Self {
        UnknownName {
            what,
            plural,
            given: given.to_string(),
            known: known.to_vec(),
        }
    }
}
