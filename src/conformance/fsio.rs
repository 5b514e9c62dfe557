//! Bounded reads of regular files.
//!
//! Everything the tool reads from a user goes through here: a file is
//! opened without blocking (a FIFO or a device in place of a file must not
//! hang the process), checked to be a regular file on the open descriptor
//! (so it cannot be swapped between a check and the read), and refused
//! before reading when it is larger than the limit for its kind. The read
//! itself stops at the limit, so a file that grows while it is read cannot
//! exhaust memory either.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest JSON file read (`case.json`, `index.json`, `step.json`,
/// `outputs.json`, reports, expected-failure lists): 16 MiB. The committed
/// ones are under 64 KiB; reports of the whole suite are about 10 MiB.
pub const MAX_JSON_BYTES: u64 = 16 << 20;

/// The most of an `error.txt` that is read (and shown trimmed): 64 KiB.
pub const MAX_MESSAGE_BYTES: u64 = 64 << 10;

/// `sha256:<hex>` of `bytes`: how the gate fingerprints every file it
/// reads or writes.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Why a file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// Not a regular file (a folder, a FIFO, a device, a socket).
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    /// Larger than the limit for its kind.
    #[error("file is {size} bytes, more than the {limit} bytes allowed for {what}")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
        /// What kind of file it is.
        what: &'static str,
    },
}

/// What a file that is not regular is, for messages.
pub fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a file"
    }
}

/// Open `path` for reading if it is a regular file, without blocking on a
/// FIFO or a device. Symbolic links are followed (callers that must not
/// follow them check first).
///
/// # Errors
/// [`ReadError::NotRegular`] or the I/O error.
pub fn open_regular(path: &Path) -> Result<File, ReadError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    Ok(file)
}

/// [`open_regular`] that refuses a symbolic link at `path` itself
/// (`O_NOFOLLOW`): for files an implementation writes, which must be its
/// own files and never a way to read another one (a link to a reference
/// array, or to a system file whose text would land in a report).
///
/// # Errors
/// [`ReadError::NotRegular`] (a symbolic link included) or the I/O error.
pub fn open_regular_nofollow(path: &Path) -> Result<File, ReadError> {
    if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(ReadError::NotRegular("a symbolic link"));
    }
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    Ok(file)
}

/// [`read_limited`] through [`open_regular_nofollow`].
///
/// # Errors
/// As [`read_limited`]; a symbolic link is refused.
pub fn read_limited_nofollow(
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, ReadError> {
    read_from(open_regular_nofollow(path)?, limit, what)
}

/// `text` with every control character other than a line break or a tab
/// written as a `\u{..}` escape, so that text an implementation or a user
/// supplies (an `error.txt`, an implementation's name, a filter) cannot
/// move the cursor, hide the rest of a report or rewrite a line on a
/// terminal.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The bytes of the regular file `path`, refused when larger than `limit`.
///
/// # Errors
/// A [`ReadError`]; nothing larger than `limit` is ever read into memory.
pub fn read_limited(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    read_from(open_regular(path)?, limit, what)
}

fn read_from(file: File, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let size = file.metadata()?.len();
    if size > limit {
        return Err(ReadError::TooLarge { size, limit, what });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            limit,
            what,
        });
    }
    Ok(bytes)
}

/// A JSON file as text: at most [`MAX_JSON_BYTES`], UTF-8.
///
/// # Errors
/// A [`ReadError`], or [`ReadError::Io`] with `InvalidData` for bytes that
/// are not UTF-8.
pub fn read_json_text(path: &Path) -> Result<String, ReadError> {
    let bytes = read_limited(path, MAX_JSON_BYTES, "a JSON file")?;
    String::from_utf8(bytes).map_err(|e| {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text: {e}"),
        ))
    })
}

/// The start of a message file (`error.txt`): at most `limit` bytes, any
/// bytes that are not UTF-8 shown as U+FFFD, trimmed; the flag says whether
/// the file was longer.
///
/// # Errors
/// A [`ReadError`] when it is not a regular file or cannot be read.
pub fn read_message(path: &Path, limit: u64) -> Result<(String, bool), ReadError> {
    let file = open_regular_nofollow(path)?;
    let size = file.metadata()?.len();
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    Ok((text, size > limit))
}

/// Why a report was not written. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum WriteReportError {
    /// The path is a symbolic link.
    #[error("{}: a symbolic link; refusing to replace it (name a regular file, or - for standard output)", .0.display())]
    SymbolicLink(PathBuf),
    /// The path is a folder, a device or a FIFO.
    #[error("{}: {kind}, not a regular file; refusing to write the report there (use - for standard output)", path.display())]
    NotAFile {
        /// The report's path.
        path: PathBuf,
        /// What is there.
        kind: &'static str,
    },
    /// The path is one of the command's input files.
    #[error("{}: is {}, an input of this command; refusing to overwrite it", path.display(), input.display())]
    IsAnInput {
        /// The report's path.
        path: PathBuf,
        /// The input it would overwrite.
        input: PathBuf,
    },
    /// The path is inside one of the command's input folders.
    #[error("{}: inside {}, an input folder of this command; refusing to write there", path.display(), dir.display())]
    InsideAnInput {
        /// The report's path.
        path: PathBuf,
        /// The input folder.
        dir: PathBuf,
    },
    /// Writing failed.
    #[error("{}: cannot write the report: {message}", path.display())]
    Io {
        /// The report's path (`-`: standard output).
        path: PathBuf,
        /// The system's message.
        message: String,
    },
}

/// Write a report to `path`: only to a regular file (a new one, or one
/// replaced atomically), never over a symbolic link, a device or a FIFO,
/// never over one of the command's `input_files`, and never inside one of
/// its `input_dirs`. `-` is standard output.
///
/// # Errors
/// A [`WriteReportError`] saying why `path` is refused or cannot be written.
pub fn write_report(
    path: &Path,
    bytes: &[u8],
    input_files: &[&Path],
    input_dirs: &[&Path],
) -> Result<(), WriteReportError> {
    use std::io::Write as _;
    let io = |e: &dyn std::fmt::Display| WriteReportError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if path.as_os_str() == "-" {
        return std::io::stdout().write_all(bytes).map_err(|e| io(&e));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(WriteReportError::SymbolicLink(path.to_path_buf()))
        }
        Ok(m) if !m.is_file() => {
            return Err(WriteReportError::NotAFile {
                path: path.to_path_buf(),
                kind: kind_of(&m),
            })
        }
        _ => {}
    }
    let target = super::replace::absolute(path).map_err(|e| io(&e))?;
    for input in input_files {
        if input.canonicalize().is_ok_and(|i| i == target) {
            return Err(WriteReportError::IsAnInput {
                path: path.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
    }
    for dir in input_dirs {
        if dir.canonicalize().is_ok_and(|d| target.starts_with(d)) {
            return Err(WriteReportError::InsideAnInput {
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
            });
        }
    }
    super::npy::write_atomic(path, bytes).map_err(|e| io(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_large_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_limited(dir.path(), 10, "x"),
            Err(ReadError::NotRegular("a folder"))
        ));
        let f = dir.path().join("f");
        std::fs::write(&f, b"0123456789ab").unwrap();
        assert!(matches!(
            read_limited(&f, 10, "x"),
            Err(ReadError::TooLarge { size: 12, .. })
        ));
        assert_eq!(read_limited(&f, 12, "x").unwrap(), b"0123456789ab");
        let (text, more) = read_message(&f, 4).unwrap();
        assert_eq!((text.as_str(), more), ("0123", true));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_limited(&fifo, 10, "x"),
            Err(ReadError::NotRegular("a FIFO"))
        ));
        assert!(matches!(
            read_limited(Path::new("/dev/zero"), 10, "x"),
            Err(ReadError::NotRegular("a character device"))
        ));
    }
}
