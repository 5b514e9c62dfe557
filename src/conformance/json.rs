//! Strict JSON: every JSON file the tool reads goes through
//! [`from_str_strict`], which refuses a key that appears twice in one
//! object (serde_json would keep the last one silently) before
//! deserializing.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Deserialize `text`, refusing duplicate keys at any depth.
///
/// # Errors
/// The parse error, or `duplicate key "k" in an object (line L, column C)`.
pub fn from_str_strict<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    check_no_duplicate_keys(text)?;
    serde_json::from_str(text)
}

/// Refuse `text` when an object in it has the same key twice.
///
/// # Errors
/// The parse error, or which key is duplicated and where.
pub fn check_no_duplicate_keys(text: &str) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    Unique.deserialize(&mut de)?;
    de.end()
}

/// Visits any JSON value, failing on a duplicate key.
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Unique)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {key:?} in an object"
                )));
            }
            map.next_value_seed(Unique)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_any_depth() {
        assert!(check_no_duplicate_keys(r#"{"a": 1, "b": {"c": [1, {"d": 2}]}}"#).is_ok());
        let e = check_no_duplicate_keys(r#"{"a": 1, "a": 2}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate key \"a\""), "{e}");
        let e = check_no_duplicate_keys(r#"{"a": [{"x": 1, "y": 2, "x": 3}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("duplicate key \"x\"") && e.contains("line 1"),
            "{e}"
        );
        // Escapes that spell the same key are the same key.
        assert!(check_no_duplicate_keys(r#"{"a": 1, "\u0061": 2}"#).is_err());
        assert!(check_no_duplicate_keys(r#"{"a": 1} trailing"#).is_err());
    }
}
