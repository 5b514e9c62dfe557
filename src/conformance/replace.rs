//! Replacing a folder the tool owns without ever harming anything else.
//!
//! An export is written into a staging folder beside its target
//! (`.NAME.lstm-parity-new-PID`) and swapped in only once complete: with
//! one atomic `renameat2(RENAME_EXCHANGE)` on Linux, else two renames. So
//! the target is at every moment either the old export, whole, or the new
//! one, whatever interrupts the process (a signal, a full disk, a path too
//! long); staging folders left by a killed run are removed by the next run.
//! A lock file beside the target (`.NAME.lstm-parity.lock`, held with
//! `flock`, which the kernel releases when the process dies) refuses a
//! second export into the same target while one runs.
//!
//! What is replaced is checked first: only a folder that is empty, or whose
//! every entry its `index.json` accounts for. Removal never follows a
//! symbolic link (`std::fs::remove_dir_all` removes a link, not its target).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};

/// The parent folder of `target` (`.` for a bare name) and its file name.
///
/// # Errors
/// `InvalidInput` when `target` has no final name (`/`, `..`).
pub fn split(target: &Path) -> io::Result<(PathBuf, String)> {
    let name = match target.components().next_back() {
        Some(Component::Normal(n)) => n.to_str().map(str::to_string).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the folder name is not UTF-8")
        })?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "needs a folder name as its last part (not /, . or ..)",
            ))
        }
    };
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// `target` made absolute without requiring it to exist: its longest
/// existing ancestor canonicalized (symlinks resolved), the rest appended.
///
/// # Errors
/// `InvalidInput` for a `..` in the part that does not exist yet.
pub fn absolute(target: &Path) -> io::Result<PathBuf> {
    let mut rest = Vec::new();
    let mut probe = if target.is_absolute() {
        target.to_path_buf()
    } else {
        std::env::current_dir()?.join(target)
    };
    loop {
        if let Ok(real) = probe.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return Ok(out);
        }
        match probe.components().next_back() {
            Some(Component::Normal(n)) => rest.push(n.to_os_string()),
            Some(Component::CurDir) => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a '..' in a part of the path that does not exist",
                ))
            }
        }
        if !probe.pop() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no existing ancestor",
            ));
        }
    }
}

/// An exclusive lock on exporting into one target; released (and its file
/// removed) on drop, and by the kernel if the process dies.
#[derive(Debug)]
pub struct TargetLock {
    file: File,
    path: PathBuf,
}

/// Why a lock cannot be had.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it.
    Busy(PathBuf),
    /// The lock file cannot be made.
    Io(PathBuf, io::Error),
}

impl TargetLock {
    /// Take the lock for `target`.
    ///
    /// # Errors
    /// [`LockError::Busy`] when another export into `target` is running.
    pub fn acquire(target: &Path) -> Result<TargetLock, LockError> {
        let (parent, name) = split(target).map_err(|e| LockError::Io(target.to_path_buf(), e))?;
        let path = parent.join(format!(".{name}.lstm-parity.lock"));
        let io = |e| LockError::Io(path.clone(), e);
        for _ in 0..16 {
            match fs::symlink_metadata(&path) {
                Ok(m) if !m.is_file() => {
                    return Err(LockError::Io(
                        path.clone(),
                        io::Error::other("exists and is not a regular file"),
                    ))
                }
                // The tool's lock files are empty: one with content is
                // someone else's file under that name, never removed.
                Ok(m) if m.len() > 0 => {
                    return Err(LockError::Io(
                        path.clone(),
                        io::Error::other("exists and is not an (empty) lock file of this tool"),
                    ))
                }
                _ => {}
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            if !try_flock(&file).map_err(io)? {
                return Err(LockError::Busy(path));
            }
            // The holder before us may have removed the file after we
            // opened it: the lock is only ours if the path still names the
            // file we locked.
            if same_file(&file, &path) {
                return Ok(TargetLock { file, path });
            }
        }
        Err(LockError::Busy(path))
    }
}

impl Drop for TargetLock {
    fn drop(&mut self) {
        // Remove while holding the lock; `same_file` in `acquire` makes a
        // process that opened the old file try again.
        if same_file(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(unix)]
fn try_flock(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(not(unix))]
fn try_flock(_: &File) -> io::Result<bool> {
    Ok(true)
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

/// The staging folder for `target` in this process.
///
/// # Errors
/// As [`split`].
pub fn staging(target: &Path) -> io::Result<PathBuf> {
    let (parent, name) = split(target)?;
    Ok(parent.join(format!(".{name}.lstm-parity-new-{}", std::process::id())))
}

/// The file an export writes first into its staging folder, and removes
/// just before the folder is swapped in: a folder under a staging name is
/// the tool's to remove only when it holds this file (or is a complete
/// export that vouches for its files, `complete`).
pub const STAGING_MARKER: &str = ".lstm-parity-staging";

/// Remove staging folders of `target` that earlier, killed runs left:
/// folders under the staging name that hold [`STAGING_MARKER`] or that
/// `complete` accepts; any other folder of that name is left alone. Call
/// with the lock held (then none of them is in use).
pub fn remove_stale_staging(target: &Path, complete: &dyn Fn(&Path) -> bool) {
    let Ok((parent, name)) = split(target) else {
        return;
    };
    let prefix = format!(".{name}.lstm-parity-new-");
    let Ok(entries) = fs::read_dir(&parent) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        let Some(n) = n.to_str() else { continue };
        let pid_part = n.strip_prefix(&prefix);
        if pid_part.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
            let dir = e.path();
            let ours = fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir())
                && ((fs::symlink_metadata(dir.join(STAGING_MARKER)).is_ok_and(|m| m.is_file())
                    && only_export_files(&dir))
                    || complete(&dir));
            if ours {
                let _ = fs::remove_dir_all(&dir);
            }
        }
    }
}

/// Whether every entry below `dir` is a folder or a file an export
/// writes (the staging marker, `index.json`, `step.json`, `.npy` arrays and
/// their temporary files), without following links: a staging folder that
/// holds anything else is someone's, and is left alone.
fn only_export_files(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().all(|e| {
        let Ok(kind) = e.file_type() else {
            return false;
        };
        let name = e.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            only_export_files(&e.path())
        } else if kind.is_file() {
            name == STAGING_MARKER
                || name == "index.json"
                || name == "step.json"
                || name.ends_with(".npy")
                || (name.starts_with('.') && name.contains(".tmp-"))
        } else {
            false
        }
    })
}

/// Put the complete folder `staged` in place of `target` (which is absent,
/// or was checked to be replaceable), then remove the old one. On error
/// `target` is as it was.
///
/// # Errors
/// The I/O error of the rename.
pub fn swap_in(staged: &Path, target: &Path) -> io::Result<()> {
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return fs::rename(staged, target),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    if exchange(staged, target)? {
        // `staged` now holds the old folder.
        return remove_marked(staged);
    }
    // No atomic exchange here: move the old one aside, then the new in.
    let aside = PathBuf::from(format!("{}-old", staged.display()));
    fs::rename(target, &aside)?;
    if let Err(e) = fs::rename(staged, target) {
        let _ = fs::rename(&aside, target);
        return Err(e);
    }
    remove_marked(&aside)
}

/// Remove the old export `dir` (moved under a staging name) so that a
/// process killed part way leaves a folder the next export recognises as
/// its own: the staging marker goes in first and comes out last.
fn remove_marked(dir: &Path) -> io::Result<()> {
    let marker = dir.join(STAGING_MARKER);
    fs::write(&marker, b"")?;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_name() == STAGING_MARKER {
            continue;
        }
        if e.file_type()?.is_dir() {
            fs::remove_dir_all(e.path())?;
        } else {
            fs::remove_file(e.path())?;
        }
    }
    fs::remove_file(&marker)?;
    fs::remove_dir(dir)
}

/// Atomically exchange two paths; `Ok(false)` where the system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths relative to the working folder.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_replaces_whole_and_lock_is_exclusive() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("out");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("old"), b"1").unwrap();
        let lock = TargetLock::acquire(&target).unwrap();
        assert!(matches!(
            TargetLock::acquire(&target),
            Err(LockError::Busy(_))
        ));
        let staged = staging(&target).unwrap();
        fs::create_dir(&staged).unwrap();
        fs::write(staged.join("new"), b"2").unwrap();
        swap_in(&staged, &target).unwrap();
        assert!(target.join("new").is_file() && !target.join("old").exists());
        assert!(!staged.exists());
        drop(lock);
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out")]);
        TargetLock::acquire(&target).unwrap();
    }

    #[test]
    fn absolute_paths_of_missing_folders() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().canonicalize().unwrap();
        assert_eq!(absolute(&d.path().join("a/b")).unwrap(), real.join("a/b"));
        assert!(absolute(&d.path().join("a/../b")).is_err());
        assert!(split(Path::new("/")).is_err());
        assert_eq!(
            split(Path::new("x")).unwrap(),
            (PathBuf::from("."), "x".into())
        );
    }
}
