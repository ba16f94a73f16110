//! Files readable by their owner only: the log, the views and the keyring hold the audit
//! trail and the org's configuration, and token and env files hold secrets, which no other
//! local user may read.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates the file at `path` with mode 0600 before a store opens it, or tightens an existing
/// one (written by an older build) to 0600.
pub fn owner_only_file(path: &Path) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    tighten(&file.metadata()?.permissions(), 0o600, |p| {
        file.set_permissions(p)
    })
}

/// Replaces the contents of the file at `path` with `bytes`, durably, the file readable by
/// its owner only: created 0600, or tightened to 0600 before a byte is written.
pub fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    owner_only_file(path)?;
    let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates the directory at `path` (and its parents) with mode 0700, or tightens an existing
/// one to 0700.
pub fn owner_only_dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    tighten(&std::fs::metadata(path)?.permissions(), 0o700, |p| {
        std::fs::set_permissions(path, p)
    })
}

fn tighten(
    current: &Permissions,
    mode: u32,
    set: impl FnOnce(Permissions) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if current.mode() & 0o077 == 0 {
        return Ok(());
    }
    set(Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn new_and_loose_files_and_dirs_become_owner_only() {
        let root = tempfile::tempdir().expect("dir");
        let dir = root.path().join("a/b");
        owner_only_dir(&dir).expect("dir");
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("log.redb");
        owner_only_file(&file).expect("file");
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).expect("loosen");
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).expect("loosen");
        owner_only_file(&file).expect("file");
        owner_only_dir(&dir).expect("dir");
        assert_eq!((mode(&file), mode(&dir)), (0o600, 0o700));
        // Written whole over a loose file, which is tightened first.
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).expect("loosen");
        write_owner_only(&file, b"token\n").expect("write");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).expect("read"), b"token\n");
    }
}
