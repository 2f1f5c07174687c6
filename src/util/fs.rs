//! Output files written atomically: a reader sees the old file or the new one, never a
//! half-written one, and a crash leaves at most a hidden temporary file behind.

use crate::error::{Error, IoContext, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file beside it (its folder created if
/// missing), fsync, rename over `path`, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let mut tmp = temp_in(dir).at(dir)?;
    tmp.write_all(bytes).at(path)?;
    tmp.as_file().sync_all().at(path)?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    sync_dir(dir);
    Ok(())
}

/// A hidden temporary file in `dir` to be renamed over an output. Created readable by
/// everyone the umask allows (0644 before it), like any output file: tempfile's default
/// 0600 would survive the rename and hide shared caches and reports from other users.
pub fn temp_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(".").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o644));
    }
    b.tempfile_in(dir)
}

/// fsyncs a folder so that renames in it survive a crash (best effort: some file systems
/// refuse to open folders for syncing, which loses nothing but that guarantee).
pub fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Bytes free for an unprivileged user on the file system that holds `path`, or would
/// hold it (its nearest existing ancestor); `None` where that cannot be read.
pub fn free_space(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
        // SAFETY: `c` is a NUL-terminated path and `st` a plain struct statvfs fills.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = existing;
        None
    }
}

/// Refuses to write `bytes` (what `what` would write) under `dir` when its file system
/// has less free space: one line naming both and `fix` ([`Error::Usage`], exit 2).
pub fn check_space(dir: &Path, what: &str, bytes: u128, fix: &str) -> Result<()> {
    let Some(free) = free_space(dir) else {
        return Ok(());
    };
    if bytes <= u128::from(free) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{what} would take up to {} in {}, which has {} free: {fix}",
        super::mem::human(bytes),
        dir.display(),
        super::mem::human(u128::from(free))
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.json"]);
    }

    #[test]
    fn free_space_is_read_for_a_folder_that_does_not_exist_yet() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_space(&dir.path().join("not/yet")).unwrap();
        assert!(free > 0);
        assert!(check_space(dir.path(), "x", 1, "y").is_ok());
        let e = check_space(
            dir.path(),
            "a synthetic build",
            u128::from(free) * 2,
            "use less",
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .starts_with("a synthetic build would take up to "),
            "{e}"
        );
        assert!(e.to_string().ends_with(": use less"), "{e}");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        write_atomic(&path, b"old").unwrap();
        // A folder where the file should be: the rename fails, the old folder stays.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert!(blocked.join("x").is_dir());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }
}
