//! What a node's disk holds and has left: for the soak benchmark's figures and the
//! migration precheck (`GET /control/v1/node`).

use std::path::Path;

/// Bytes the files under `path` occupy on disk (allocated blocks, as `du` counts). A file
/// removed while the tree is walked is simply not counted.
pub fn disk_usage(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut pending = vec![path.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory)?.flatten() {
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                total += metadata.blocks() * 512;
            }
        }
    }
    Ok(total)
}

/// Bytes an unprivileged process can still write on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    space(path).map(|(free, _)| free)
}

/// Bytes an unprivileged process can still write on the file system holding `path`, and
/// that file system's size.
pub fn space(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `stats` a writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The field types differ between targets (32 bits on some).
    #[allow(clippy::useless_conversion)]
    let block = u64::from(stats.f_frsize);
    #[allow(clippy::useless_conversion)]
    Ok((
        u64::from(stats.f_bavail).saturating_mul(block),
        u64::from(stats.f_blocks).saturating_mul(block),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_what_is_written_and_free_space_is_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("inner")).unwrap();
        std::fs::write(dir.path().join("inner/file"), vec![1u8; 64 * 1024]).unwrap();
        let used = disk_usage(dir.path()).unwrap();
        assert!(used >= 64 * 1024, "{used}");
        assert!(free_bytes(dir.path()).unwrap() > 0);
        let (free, total) = space(dir.path()).unwrap();
        assert!(free > 0 && total >= free, "{free} of {total}");
        assert!(free_bytes(Path::new("/no/such/dir")).is_err());
    }
}
