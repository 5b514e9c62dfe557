//! `.npy` in and out: a strict reader of its own (the header dict parsed
//! as the Python literal it is, the data decoded in either byte order),
//! and writing through `npyz`.
//!
//! Reading checks the header against the bytes before allocating, so a
//! header that claims a huge shape is an error, not an allocation. Writing
//! goes to a temporary file in the same folder that is renamed into place,
//! so an interrupted write leaves no half-written file.

use std::fs;
use std::io::Write;
use std::path::Path;

use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use npyz::WriterBuilder;

use crate::conformance::fsio;
use crate::tensor::Tensor;

/// The largest `.npy` file read: 1 GiB. Reference arrays are far smaller.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// The largest header accepted (magic, version, length field and the
/// header dict with its padding): 64 KiB. numpy writes 128 bytes for any
/// array a case holds, and itself refuses headers over 10,000 bytes.
pub const MAX_HEADER_BYTES: u64 = 1 << 16;

/// Why an `.npy` file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file cannot be opened or read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The file cannot be read: not a regular file, larger than the limit
    /// the caller gave, or an I/O error (see [`fsio::read_limited`]).
    #[error("{0}")]
    Read(#[from] fsio::ReadError),
    /// The file cannot be written.
    #[error("cannot write: {0}")]
    Write(std::io::Error),
    /// The header is not a valid `.npy` header.
    #[error("not a valid .npy file: {0}")]
    Header(String),
    /// The dtype is not one a case may hold.
    #[error("unsupported dtype {0} (supported: float16, float32, float64, int32, int64, bool)")]
    DType(String),
    /// The data is shorter or longer than the header says.
    #[error(
        "header says shape {shape:?} ({expected} bytes of data), file has {got} bytes of data"
    )]
    Size {
        /// Shape from the header.
        shape: Vec<u64>,
        /// Bytes the header implies.
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("file is {0} bytes, more than the {MAX_FILE_BYTES} bytes a case array may have")]
    TooLarge(u64),
    /// An int64 value does not fit in int32.
    #[error("int64 value {0} does not fit in int32")]
    IntRange(i64),
}

/// Read an `.npy` file into a [`Tensor`].
///
/// Supported dtypes: float32, float64, int32, bool, either byte order, C or
/// Fortran order; int64 is read as int32 when every value fits.
///
/// # Errors
/// An [`NpyError`] saying what is wrong with the file.
pub fn read(path: &Path) -> Result<Tensor, NpyError> {
    read_with_dtype(path, MAX_FILE_BYTES).map(|(t, _)| t)
}

/// Read an `.npy` file of at most `max_bytes` bytes into a [`Tensor`], with
/// the file's own element type as numpy names it: `"float32"`, `"float64"`,
/// `"int32"`, `"int64"` or `"bool"`. int64 data comes back as
/// [`Tensor::I32`] when every value fits, but the name says `"int64"`.
///
/// The file is read through [`fsio::read_limited`]: only a regular file,
/// never blocking on a FIFO or a device, and refused before reading when
/// larger than `max_bytes` ([`NpyError::TooLarge`] when `max_bytes` is
/// [`MAX_FILE_BYTES`], otherwise [`NpyError::Read`]).
///
/// # Errors
/// An [`NpyError`] saying what is wrong with the file.
pub fn read_with_dtype(path: &Path, max_bytes: u64) -> Result<(Tensor, &'static str), NpyError> {
    let bytes = match fsio::read_limited(path, max_bytes, "an .npy array") {
        Ok(bytes) => bytes,
        Err(fsio::ReadError::TooLarge { size, limit, .. }) if limit == MAX_FILE_BYTES => {
            return Err(NpyError::TooLarge(size))
        }
        Err(e) => return Err(e.into()),
    };
    parse_with_dtype(&bytes)
}

/// Parse the bytes of an `.npy` file. See [`read`].
///
/// # Errors
/// An [`NpyError`] saying what is wrong with the bytes.
pub fn parse(bytes: &[u8]) -> Result<Tensor, NpyError> {
    parse_with_dtype(bytes).map(|(t, _)| t)
}

/// Parse the bytes of an `.npy` file, with the file's own dtype name. See
/// [`read_with_dtype`].
///
/// # Errors
/// An [`NpyError`] saying what is wrong with the bytes.
pub fn parse_with_dtype(bytes: &[u8]) -> Result<(Tensor, &'static str), NpyError> {
    let header_len = header_length(bytes)?;
    let header = Header::parse(&bytes[header_prefix(bytes)..header_len])?;
    let item_bytes = header.kind.item_bytes();
    let count = header
        .shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let expected = count.and_then(|c| c.checked_mul(item_bytes));
    let got = (bytes.len() - header_len) as u64;
    let Some(expected) = expected else {
        return Err(NpyError::Header(format!(
            "shape {:?} is too large",
            header.shape
        )));
    };
    if expected != got {
        return Err(NpyError::Size {
            shape: header.shape,
            expected,
            got,
        });
    }
    let dims = header
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| NpyError::Header(format!("shape {:?} is too large", header.shape)))?;
    let data = &bytes[header_len..];
    let big = header.big_endian;
    let fortran = header.fortran_order;
    Ok(match header.kind {
        Kind::F16 => {
            // Widened to float32, exactly: the reduced-precision runs'
            // expectations are compared as float32 values.
            let v = decode(data, big, u16::from_le_bytes, u16::from_be_bytes)
                .into_iter()
                .map(|bits| half::f16::from_bits(bits).to_f32())
                .collect();
            (Tensor::F32(shaped(v, &dims, fortran)?), "float16")
        }
        Kind::F32 => {
            let v = decode(data, big, f32::from_le_bytes, f32::from_be_bytes);
            (Tensor::F32(shaped(v, &dims, fortran)?), "float32")
        }
        Kind::F64 => {
            let v = decode(data, big, f64::from_le_bytes, f64::from_be_bytes);
            (Tensor::F64(shaped(v, &dims, fortran)?), "float64")
        }
        Kind::I32 => {
            let v = decode(data, big, i32::from_le_bytes, i32::from_be_bytes);
            (Tensor::I32(shaped(v, &dims, fortran)?), "int32")
        }
        Kind::I64 => {
            let v = decode(data, big, i64::from_le_bytes, i64::from_be_bytes)
                .into_iter()
                .map(|v| i32::try_from(v).map_err(|_| NpyError::IntRange(v)))
                .collect::<Result<Vec<_>, _>>()?;
            (Tensor::I32(shaped(v, &dims, fortran)?), "int64")
        }
        Kind::Bool => {
            let v = data
                .iter()
                .map(|&b| match b {
                    0 => Ok(false),
                    1 => Ok(true),
                    b => Err(NpyError::Header(format!(
                        "bool data holds the byte {b}, not 0 or 1"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            (Tensor::Bool(shaped(v, &dims, fortran)?), "bool")
        }
    })
}

/// The values of `data`, `N` bytes each, in the file's byte order.
fn decode<const N: usize, V>(
    data: &[u8],
    big_endian: bool,
    from_le: fn([u8; N]) -> V,
    from_be: fn([u8; N]) -> V,
) -> Vec<V> {
    let from = if big_endian { from_be } else { from_le };
    data.chunks_exact(N)
        .map(|w| from(w.try_into().expect("chunks of N bytes")))
        .collect()
}

/// The element types a case may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    F16,
    F32,
    F64,
    I32,
    I64,
    Bool,
}

impl Kind {
    fn item_bytes(self) -> u64 {
        match self {
            Kind::F16 => 2,
            Kind::F32 | Kind::I32 => 4,
            Kind::F64 | Kind::I64 => 8,
            Kind::Bool => 1,
        }
    }
}

/// The header dict of an `.npy` file, parsed as the Python literal it is
/// (`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`): either
/// quote, decimal or `0x`/`0o`/`0b` integers with `_` separators, as
/// numpy's own reader (`ast.literal_eval`) takes them. Exactly the three
/// keys, each once.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    kind: Kind,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<u64>,
}

/// One value of the header dict.
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

/// A cursor over the header's text.
struct Lexer<'a> {
    text: &'a [u8],
    at: usize,
}

impl Lexer<'_> {
    fn error(&self, what: &str) -> NpyError {
        NpyError::Header(format!("header dict: {what} at byte {}", self.at))
    }

    fn skip_space(&mut self) {
        while self.at < self.text.len()
            && matches!(self.text[self.at], b' ' | b'\t' | b'\n' | b'\r')
        {
            self.at += 1;
        }
    }

    /// Skip space, then take `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        if self.text.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), NpyError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {:?}", c as char)))
        }
    }

    /// A string in single or double quotes, without escapes.
    fn string(&mut self) -> Result<String, NpyError> {
        self.skip_space();
        let quote = match self.text.get(self.at) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(self.error("expected a quoted string")),
        };
        let start = self.at + 1;
        let len = self.text[start..]
            .iter()
            .position(|&c| c == quote || c == b'\\' || c == b'\n')
            .ok_or_else(|| self.error("unterminated string"))?;
        if self.text[start + len] != quote {
            return Err(self.error("escape or line break in a string"));
        }
        self.at = start + len + 1;
        String::from_utf8(self.text[start..start + len].to_vec())
            .map_err(|_| self.error("a string that is not UTF-8"))
    }

    /// A non-negative Python integer literal.
    fn integer(&mut self) -> Result<u64, NpyError> {
        self.skip_space();
        let start = self.at;
        while self.at < self.text.len()
            && (self.text[self.at].is_ascii_alphanumeric() || self.text[self.at] == b'_')
        {
            self.at += 1;
        }
        let word = std::str::from_utf8(&self.text[start..self.at]).expect("ASCII");
        let lower = word.to_ascii_lowercase();
        let (digits, radix) = match lower.get(..2) {
            Some("0x") => (&lower[2..], 16),
            Some("0o") => (&lower[2..], 8),
            Some("0b") => (&lower[2..], 2),
            _ => (lower.as_str(), 10),
        };
        // Python's rules: a prefix may be followed by one `_`, digits are
        // separated by single `_`, and a decimal other than zero has no
        // leading zero.
        let digits = if radix == 10 {
            digits
        } else {
            digits.strip_prefix('_').unwrap_or(digits)
        };
        let separators_ok =
            !digits.starts_with('_') && !digits.ends_with('_') && !digits.contains("__");
        let leading_zero =
            radix == 10 && digits.starts_with('0') && digits.chars().any(|c| c != '0' && c != '_');
        if digits.is_empty() || !separators_ok || leading_zero {
            return Err(self.at_word(start, word));
        }
        u64::from_str_radix(&digits.replace('_', ""), radix).map_err(|e| {
            if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
                NpyError::Header(format!("shape dimension {word} is too large"))
            } else {
                self.at_word(start, word)
            }
        })
    }

    fn at_word(&self, start: usize, word: &str) -> NpyError {
        NpyError::Header(format!(
            "header dict: {word:?} at byte {start} is not a non-negative integer"
        ))
    }

    fn value(&mut self) -> Result<Value, NpyError> {
        self.skip_space();
        match self.text.get(self.at) {
            Some(b'\'' | b'"') => self.string().map(Value::Str),
            Some(b'(') => {
                self.at += 1;
                let mut dims = Vec::new();
                loop {
                    if self.eat(b')') {
                        break;
                    }
                    dims.push(self.integer()?);
                    if self.eat(b',') {
                        continue;
                    }
                    self.expect(b')')?;
                    // `(2)` is the integer 2, not a tuple.
                    if dims.len() == 1 {
                        return Err(self.error("a shape of one dimension needs a comma, as (2,)"));
                    }
                    break;
                }
                Ok(Value::Tuple(dims))
            }
            _ => {
                for (word, v) in [("True", true), ("False", false)] {
                    if self.text[self.at..].starts_with(word.as_bytes())
                        && !self
                            .text
                            .get(self.at + word.len())
                            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    {
                        self.at += word.len();
                        return Ok(Value::Bool(v));
                    }
                }
                Err(self.error("expected a string, True, False or a tuple"))
            }
        }
    }
}

impl Header {
    /// Parse the header dict (the bytes after the length field).
    fn parse(text: &[u8]) -> Result<Header, NpyError> {
        let mut lx = Lexer { text, at: 0 };
        lx.expect(b'{')?;
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        loop {
            if lx.eat(b'}') {
                break;
            }
            let key_at = lx.at;
            let key = lx.string()?;
            if !matches!(key.as_str(), "descr" | "fortran_order" | "shape") {
                return Err(NpyError::Header(format!(
                    "header dict: unknown key {key:?} at byte {key_at} (only descr, fortran_order, shape)"
                )));
            }
            lx.expect(b':')?;
            let value = lx.value()?;
            let slot_taken = match (key.as_str(), value) {
                ("descr", Value::Str(v)) => descr.replace(v).is_some(),
                ("fortran_order", Value::Bool(v)) => fortran.replace(v).is_some(),
                ("shape", Value::Tuple(v)) => shape.replace(v).is_some(),
                _ => {
                    return Err(NpyError::Header(format!(
                        "header dict: {key:?} has a value of the wrong type"
                    )))
                }
            };
            if slot_taken {
                return Err(NpyError::Header(format!(
                    "header dict: duplicate key {key:?}"
                )));
            }
            if lx.eat(b',') {
                continue;
            }
            lx.expect(b'}')?;
            break;
        }
        lx.skip_space();
        if lx.at != text.len() {
            return Err(lx.error("text after the header dict"));
        }
        let missing = |k: &str| NpyError::Header(format!("header dict: no {k:?} key"));
        let descr = descr.ok_or_else(|| missing("descr"))?;
        let fortran_order = fortran.ok_or_else(|| missing("fortran_order"))?;
        let shape = shape.ok_or_else(|| missing("shape"))?;
        let (order, code) = match descr.as_bytes().first() {
            Some(b'<' | b'>' | b'|' | b'=') => (&descr[..1], &descr[1..]),
            _ => ("|", descr.as_str()),
        };
        let kind = match code {
            "f2" => Kind::F16,
            "f4" => Kind::F32,
            "f8" => Kind::F64,
            "i4" => Kind::I32,
            "i8" => Kind::I64,
            "b1" | "?" => Kind::Bool,
            _ => return Err(NpyError::DType(descr.clone())),
        };
        // `|` and no order mark are for one-byte types; `=` is native order.
        let big_endian = match order {
            ">" => true,
            "<" => false,
            "=" => cfg!(target_endian = "big"),
            _ if kind == Kind::Bool => false,
            _ => return Err(NpyError::DType(descr.clone())),
        };
        Ok(Header {
            kind,
            big_endian,
            fortran_order,
            shape,
        })
    }
}

/// The length of magic, version and length field: 10 bytes for version 1,
/// 12 for versions 2 and 3 (checked by [`header_length`] first).
fn header_prefix(bytes: &[u8]) -> usize {
    if bytes[6] == 1 {
        10
    } else {
        12
    }
}

/// The number of bytes before the data: magic, version, header length, header.
fn header_length(bytes: &[u8]) -> Result<usize, NpyError> {
    let bad = || NpyError::Header("truncated header".into());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(NpyError::Header("missing the \\x93NUMPY magic".into()));
    }
    let len = match bytes[6] {
        1 => 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize,
        2 | 3 => {
            let b = bytes.get(8..12).ok_or_else(bad)?;
            12 + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        }
        v => return Err(NpyError::Header(format!("unknown .npy version {v}"))),
    };
    if len as u64 > MAX_HEADER_BYTES {
        return Err(NpyError::Header(format!(
            "header of {len} bytes, more than the {MAX_HEADER_BYTES} allowed"
        )));
    }
    if len > bytes.len() {
        return Err(bad());
    }
    Ok(len)
}

fn shaped<T>(data: Vec<T>, dims: &[usize], fortran: bool) -> Result<ArrayD<T>, NpyError> {
    let shape = IxDyn(dims);
    let array = if fortran {
        ArrayD::from_shape_vec(shape.f(), data)
    } else {
        ArrayD::from_shape_vec(shape, data)
    };
    // The element count matches the data; ndarray still refuses a shape
    // whose dimensions other than zero multiply past isize::MAX.
    array.map_err(|_| NpyError::Header(format!("shape {dims:?} is too large")))
}

/// Write a tensor as `.npy` (little-endian, C order), atomically: the data
/// goes to a temporary file beside `path` that is renamed over it.
///
/// # Errors
/// An [`NpyError::Write`] when the file cannot be written.
pub fn write(path: &Path, tensor: &Tensor) -> Result<(), NpyError> {
    write_atomic(path, &to_bytes(tensor)?).map_err(NpyError::Write)
}

fn write_array<T: npyz::AutoSerialize + Clone>(
    out: &mut Vec<u8>,
    a: &ArrayD<T>,
) -> std::io::Result<()> {
    let shape: Vec<u64> = a.shape().iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(out)
        .begin_nd()?;
    writer.extend(a.iter().cloned())?;
    writer.finish()
}

/// Write `bytes` to `path` through a temporary file in the same folder and
/// a rename, so readers never see a partial file.
///
/// # Errors
/// The I/O error; the temporary file is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_with(path, bytes, true)
}

/// A new temporary file beside `path` (`.NAME.tmp-PID-N`), created with
/// `O_EXCL`: never an existing file, and never through a symbolic link
/// that someone placed under that name.
fn create_temp_beside(path: &Path) -> std::io::Result<(std::path::PathBuf, fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut last = None;
    for _ in 0..64 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("64 tries"))
}

fn replace_with(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let (tmp, mut f) = create_temp_beside(path)?;
    let result = (|| {
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A tensor as the bytes of an `.npy` file (little-endian, C order).
///
/// # Errors
/// An [`NpyError::Write`] when encoding fails.
pub fn to_bytes(tensor: &Tensor) -> Result<Vec<u8>, NpyError> {
    let mut bytes = Vec::new();
    match tensor {
        Tensor::F32(a) => write_array(&mut bytes, a),
        Tensor::F64(a) => write_array(&mut bytes, a),
        Tensor::I32(a) => write_array(&mut bytes, a),
        Tensor::Bool(a) => write_array(&mut bytes, a),
    }
    .map_err(NpyError::Write)?;
    Ok(bytes)
}

/// [`write_atomic`] without flushing to disk before the rename: readers
/// still never see a partial file, but a crash may lose it. For files that
/// are regenerated rather than kept (gate exports and outputs), where one
/// `fsync` per file would cost seconds per export.
///
/// # Errors
/// The I/O error; the temporary file is removed on failure.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_with(path, bytes, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `.npy` file of version 1 with this header dict and data.
    fn file(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.as_bytes().to_vec();
        header.push(b'\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(data);
        bytes
    }

    fn header(dict: &str) -> Result<Header, NpyError> {
        Header::parse(dict.as_bytes())
    }

    #[test]
    fn header_dicts_numpy_accepts_are_read() {
        let want = Header {
            kind: Kind::F32,
            big_endian: false,
            fortran_order: false,
            shape: vec![2, 3],
        };
        for dict in [
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            r#"{"descr": "<f4", "fortran_order": False, "shape": (2, 3)}"#,
            "{'shape': (0x2, 0o3), 'fortran_order': False, 'descr': '<f4'}",
            "{ 'descr' : '<f4' ,\n'fortran_order':False,'shape':(0b10,3,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (0x_2, 3)}",
        ] {
            assert_eq!(header(dict).unwrap(), want, "{dict}");
        }
        let h = header("{'descr': '|b1', 'fortran_order': True, 'shape': ()}").unwrap();
        assert_eq!(
            (h.kind, h.fortran_order, h.shape),
            (Kind::Bool, true, vec![])
        );
        let h = header("{'descr': '>i8', 'fortran_order': False, 'shape': (1_000,)}").unwrap();
        assert_eq!(
            (h.kind, h.big_endian, h.shape),
            (Kind::I64, true, vec![1000])
        );
    }

    #[test]
    fn header_dicts_that_are_not_numpy_headers_are_refused() {
        for (dict, words) in [
            (
                "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}",
                "duplicate key \"descr\"",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
                "unknown key \"x\"",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False}",
                "no \"shape\" key",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
                "expected a string, True, False or a tuple",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}",
                "needs a comma",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
                "not a non-negative integer",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (02,)}",
                "not a non-negative integer",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2__0,)}",
                "not a non-negative integer",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}",
                "expected ')'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (0x1_0000_0000_0000_0000,)}",
                "too large",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x",
                "text after the header dict",
            ),
            (
                "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,)}",
                "expected a string",
            ),
            (
                "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}",
                "escape",
            ),
            (
                "{'descr': 'f4', 'fortran_order': False, 'shape': (2,)}",
                "unsupported dtype f4",
            ),
            (
                "{'descr': '<c8', 'fortran_order': False, 'shape': (2,)}",
                "unsupported dtype <c8",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': 'x'}",
                "wrong type",
            ),
        ] {
            let e = header(dict).expect_err(dict).to_string();
            assert!(e.contains(words), "{dict}: {e}");
        }
    }

    #[test]
    fn shapes_past_the_address_space_are_errors_not_allocations() {
        let big = format!("({}, {})", u64::MAX, u64::MAX);
        for shape in [
            big.as_str(),
            "(0x100000000, 0x100000000)",
            "(0, 0x7fffffffffffffff, 16)",
        ] {
            let bytes = file(
                &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}}}"),
                &[],
            );
            let e = parse(&bytes).expect_err(shape).to_string();
            assert!(
                e.contains("too large") || e.contains("header says shape"),
                "{shape}: {e}"
            );
        }
    }

    #[test]
    fn data_is_decoded_in_either_byte_order() {
        let le = file(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
            &1.5f64.to_le_bytes(),
        );
        let be = file(
            "{'descr': '>f8', 'fortran_order': False, 'shape': (1,)}",
            &1.5f64.to_be_bytes(),
        );
        for bytes in [le, be] {
            let (Tensor::F64(a), "float64") = parse_with_dtype(&bytes).unwrap() else {
                panic!("not float64")
            };
            assert_eq!(a.as_slice().unwrap(), &[1.5]);
        }
        let wide = file(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (1,)}",
            &(1i64 << 40).to_le_bytes(),
        );
        assert!(matches!(parse(&wide), Err(NpyError::IntRange(v)) if v == 1 << 40));
        let bools = file(
            "{'descr': '|b1', 'fortran_order': False, 'shape': (2,)}",
            &[1, 2],
        );
        assert!(parse(&bools).unwrap_err().to_string().contains("byte 2"));
    }

    #[test]
    fn written_files_read_back() {
        let a = ArrayD::from_shape_vec(
            IxDyn(&[2, 3]),
            vec![1.0f32, -2.0, 3.5, 0.0, f32::MAX, f32::MIN_POSITIVE],
        )
        .unwrap();
        let t = Tensor::F32(a.clone());
        let (Tensor::F32(b), _) = parse_with_dtype(&to_bytes(&t).unwrap()).unwrap() else {
            panic!("not float32")
        };
        assert_eq!(a, b);
    }
}
