//! Files only their owner may read: how Gavel creates what it writes.
//!
//! Backups, node configurations (they hold tokens and the cluster secret), snapshots,
//! the archive and the spool's files hold bidders' records and the cluster's secrets, so
//! every file Gavel creates is mode 0600, opened with `O_NOFOLLOW` (a symbolic link put
//! in its place is refused, not followed) and, where Gavel names a new file,
//! `O_EXCL` (an existing file or link is refused, not overwritten).
//!
//! Files that libraries create (sled's) are covered by the node's umask instead:
//! `restrict_umask` sets 0077 when a node starts, so whatever it creates is its own.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Mode of every file Gavel creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path`, which must not exist (not even as a link), mode 0600, for writing.
pub fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Opens an existing regular file for reading, refusing a symbolic link.
pub fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Writes `bytes` to `path` through a new hidden file beside it (created 0600 with
/// `O_EXCL`, a stale one from a crash removed first), synced, then renamed over `path`;
/// the directory is synced too, so the rename survives a crash.
pub fn write_aside_then_rename(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = path.with_file_name(format!(".{name}.partial"));
    match std::fs::remove_file(&aside) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut file = create_new(&aside)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&aside, path)?;
    sync_parent(path)
}

/// Syncs the directory holding `path`, so a file created, renamed or removed in it
/// stays so after a crash.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => File::open(parent)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

/// Takes every permission of group and others off the files and directories under
/// `root` (a data directory written by an older release, before the umask); symbolic
/// links are left alone. How many it changed.
pub fn restrict_tree(root: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::PermissionsExt;
    let mut changed = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        if metadata.file_type().is_symlink() {
            continue;
        }
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7700))?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Sets the process's umask to 0077: every file and directory it creates from now on,
/// its libraries' included, is its owner's alone. A node calls it first thing.
pub fn restrict_umask() {
    // SAFETY: umask only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_files_are_0600_and_never_replace_a_file_or_follow_a_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("backup");
        create_new(&path).expect("created");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            create_new(&path).is_err(),
            "an existing file is not replaced"
        );
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"x").expect("target");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("link");
        assert!(create_new(&link).is_err());
        assert!(open_no_follow(&link).is_err(), "a link is not followed");
        assert!(open_no_follow(&target).is_ok());
    }

    #[test]
    fn a_tree_written_before_the_umask_is_made_private() {
        let dir = tempfile::tempdir().expect("temp dir");
        let inner = dir.path().join("raft");
        std::fs::create_dir(&inner).expect("dir");
        std::fs::write(inner.join("db"), b"x").expect("file");
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(inner.join("db"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        assert!(restrict_tree(dir.path()).expect("restricted") >= 2);
        for path in [inner.clone(), inner.join("db")] {
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "{}", path.display());
        }
        assert_eq!(
            restrict_tree(&dir.path().join("absent")).expect("absent"),
            0
        );
    }

    #[test]
    fn written_aside_files_replace_the_old_one_with_mode_0600() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, b"old").expect("old");
        std::fs::write(dir.path().join(".out.jsonl.partial"), b"stale").expect("stale");
        write_aside_then_rename(&path, b"new").expect("written");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
