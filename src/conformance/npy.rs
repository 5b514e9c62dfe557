//! `.npy` in and out, through `npyz`.
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
    #[error("unsupported dtype {0} (supported: float32, float64, int32, int64, bool)")]
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
    check_shape_fits(&bytes[..header_len])?;
    let header =
        npyz::NpyHeader::from_reader(bytes).map_err(|e| NpyError::Header(e.to_string()))?;
    let npyz::DType::Plain(type_str) = header.dtype() else {
        return Err(NpyError::DType(format!("{:?}", header.dtype())));
    };
    let item_bytes = type_str
        .num_bytes()
        .ok_or_else(|| NpyError::DType(type_str.to_string()))? as u64;
    let shape: Vec<u64> = header.shape().to_vec();
    let count = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let expected = count.and_then(|c| c.checked_mul(item_bytes));
    let got = (bytes.len() - header_len) as u64;
    if expected != Some(got) {
        return Err(NpyError::Size {
            shape,
            expected: expected.unwrap_or(u64::MAX),
            got,
        });
    }
    let fortran = matches!(header.order(), npyz::Order::Fortran);
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let data = &bytes[header_len..];
    let file = npyz::NpyFile::with_header(header.clone(), data);
    let kind = (type_str.type_char(), type_str.size_field());
    use npyz::TypeChar::{Bool, Float, Int};
    let io = |e: std::io::Error| NpyError::Header(e.to_string());
    Ok(match kind {
        (Float, 4) => (
            Tensor::F32(shaped(file.into_vec::<f32>().map_err(io)?, &dims, fortran)),
            "float32",
        ),
        (Float, 8) => (
            Tensor::F64(shaped(file.into_vec::<f64>().map_err(io)?, &dims, fortran)),
            "float64",
        ),
        (Int, 4) => (
            Tensor::I32(shaped(file.into_vec::<i32>().map_err(io)?, &dims, fortran)),
            "int32",
        ),
        (Int, 8) => {
            let wide = file.into_vec::<i64>().map_err(io)?;
            let narrow = wide
                .into_iter()
                .map(|v| i32::try_from(v).map_err(|_| NpyError::IntRange(v)))
                .collect::<Result<Vec<_>, _>>()?;
            (Tensor::I32(shaped(narrow, &dims, fortran)), "int64")
        }
        (Bool, 1) => (
            Tensor::Bool(shaped(file.into_vec::<bool>().map_err(io)?, &dims, fortran)),
            "bool",
        ),
        _ => return Err(NpyError::DType(type_str.to_string())),
    })
}

/// Refuse a header whose shape's element count overflows `u64`, before
/// `npyz` multiplies it out (which overflows).
fn check_shape_fits(header: &[u8]) -> Result<(), NpyError> {
    let text = String::from_utf8_lossy(header);
    let Some(start) = text
        .find("'shape'")
        .and_then(|k| text[k..].find('(').map(|p| k + p + 1))
    else {
        return Ok(()); // npyz reports the malformed header
    };
    let Some(len) = text[start..].find(')') else {
        return Ok(());
    };
    let mut count: u64 = 1;
    for dim in text[start..start + len]
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let Ok(d) = dim.parse::<u64>() else {
            return Ok(());
        };
        count = count
            .checked_mul(d)
            .and_then(|c| c.checked_mul(16))
            .map(|c| c / 16)
            .ok_or_else(|| {
                NpyError::Header(format!(
                    "shape {} is too large",
                    &text[start - 1..=start + len]
                ))
            })?;
    }
    Ok(())
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
    if len > bytes.len() {
        return Err(bad());
    }
    Ok(len)
}

fn shaped<T>(data: Vec<T>, dims: &[usize], fortran: bool) -> ArrayD<T> {
    let shape = IxDyn(dims);
    let array = if fortran {
        ArrayD::from_shape_vec(shape.f(), data)
    } else {
        ArrayD::from_shape_vec(shape, data)
    };
    array.expect("element count checked against the header")
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
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
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
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
