//! One run at a time per output: an exclusive `flock` on a lock file
//! beside OUTPUT (`.{name}.h5salvage-lock`), held for the whole run.
//!
//! The kernel releases a `flock` when its holder exits, however it exits
//! (SIGKILL included), so a lock left by a dead run is never in the way:
//! the file may remain, its lock does not. The holder removes the file
//! before it lets go; a waiter that locked a file removed meanwhile sees
//! that its descriptor no longer names the path and starts again, so two
//! runs can never both believe they hold the lock.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{io_err, WriteError};

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another run held it for the whole wait.
    Busy {
        lock_file: PathBuf,
        /// Process id the holder wrote into the lock file, if readable.
        holder: Option<u32>,
        waited: Duration,
    },
    /// The lock file could not be created or locked.
    Io(WriteError),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Busy {
                lock_file,
                holder,
                waited,
            } => {
                let who = holder.map_or(String::new(), |p| format!(" (pid {p})"));
                write!(
                    f,
                    "output is in use by another h5salvage run{who}: gave up after waiting {} s for {}",
                    waited.as_secs(),
                    lock_file.display()
                )
            }
            LockError::Io(e) => write!(f, "cannot lock output: {e}"),
        }
    }
}

impl std::error::Error for LockError {}

/// The lock on one output, released (and its file removed) when dropped.
pub struct OutputLock {
    file: File,
    path: PathBuf,
    /// False on a file system without `flock` (the run goes on unlocked;
    /// `merge` still refuses to replace an OUTPUT changed since it was
    /// copied).
    held: bool,
}

/// `.{file_name}.h5salvage-lock` in the directory of `output`.
pub fn lock_path_for(output: &Path) -> Result<PathBuf, WriteError> {
    super::beside(output, ".h5salvage-lock")
}

impl OutputLock {
    /// Takes the lock for `output`, waiting up to `wait` for another run to
    /// finish; `on_wait` is called once (with a one-line message) when the
    /// lock is held by another run (or when the file system has no locks:
    /// the run then goes on without it).
    pub fn acquire(
        output: &Path,
        wait: Duration,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<OutputLock, LockError> {
        let path = lock_path_for(output).map_err(LockError::Io)?;
        let started = Instant::now();
        let mut told = false;
        let mut replaced = 0u32;
        loop {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| LockError::Io(io_err(&path, "create lock file", e)))?;
            // SAFETY: flock on a descriptor we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                if !names_path(&file, &path) {
                    // Removed by the run that held it: lock the new one.
                    replaced = replaced.saturating_add(1);
                    if replaced > 1000 {
                        return Err(LockError::Io(WriteError::new(
                            &path.display().to_string(),
                            "lock",
                            "the lock file keeps being replaced",
                        )));
                    }
                    continue;
                }
                // Who holds it, for the message of a run that waits.
                let pid = std::process::id().to_string();
                let _ = file
                    .set_len(0)
                    .and_then(|()| file.write_all(pid.as_bytes()));
                return Ok(OutputLock {
                    file,
                    path,
                    held: true,
                });
            }
            let e = std::io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::ENOLCK | libc::EOPNOTSUPP)) {
                on_wait(&format!(
                    "{}: file locks are not supported here ({e}): running without the lock",
                    output.display()
                ));
                return Ok(OutputLock {
                    file,
                    path,
                    held: false,
                });
            }
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(LockError::Io(io_err(&path, "lock", e)));
            }
            let holder = holder_of(&mut file);
            let waited = started.elapsed();
            if waited >= wait {
                return Err(LockError::Busy {
                    lock_file: path,
                    holder,
                    waited,
                });
            }
            if !told {
                told = true;
                let who = holder.map_or(String::new(), |p| format!(" (pid {p})"));
                on_wait(&format!(
                    "{}: in use by another h5salvage run{who}; waiting up to {} s for it to finish",
                    output.display(),
                    wait.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50).min(wait.saturating_sub(waited)));
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock is really held (false where file locks are unsupported).
    pub fn held(&self) -> bool {
        self.held
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still locked; closing the descriptor releases it.
        if self.held && names_path(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The open `file` is what `path` names now (same device and inode).
fn names_path(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The process id written into the lock file by its holder.
fn holder_of(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.take(16).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_gives_up_and_lock_file_goes() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.h5");
        let first = OutputLock::acquire(&out, Duration::ZERO, &mut |_| {}).unwrap();
        assert!(first.path().exists() && first.held());
        let mut said = Vec::new();
        let e = OutputLock::acquire(&out, Duration::from_millis(200), &mut |m| {
            said.push(m.to_string())
        })
        .err()
        .unwrap();
        assert!(matches!(e, LockError::Busy { holder: Some(p), .. } if p == std::process::id()));
        assert_eq!(said.len(), 1, "{said:?}");
        drop(first);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let again = OutputLock::acquire(&out, Duration::ZERO, &mut |_| {}).unwrap();
        drop(again);
    }
}
