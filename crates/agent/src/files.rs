//! Files in the agent's data directory: the directory is 0700, secret files 0600, and every
//! file is written atomically (temporary file, fsync, rename, fsync of the directory), so a
//! crash leaves either the old or the new content, never a torn file.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the private key file.
pub(crate) const SECRET_FILE_MODE: u32 = 0o600;
/// Mode of files anyone on the host may read (the certificate, the host state).
pub(crate) const PUBLIC_FILE_MODE: u32 = 0o644;
/// Mode of the data directory when the agent creates it.
const DIRECTORY_MODE: u32 = 0o700;

/// Creates `dir` (and its parents) with mode 0700 unless it exists.
pub(crate) fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIRECTORY_MODE).create(dir)
}

/// Replaces `path` with `contents` in a file of exactly `mode`, whatever the umask.
pub(crate) fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut temporary_name = path.file_name().unwrap_or_default().to_os_string();
    temporary_name.push(".tmp");
    let temporary = path.with_file_name(temporary_name);
    match fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&temporary)?;
    file.set_permissions(Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Whether `path` is readable by anyone but its owner.
pub(crate) fn readable_by_others(path: &Path) -> io::Result<bool> {
    Ok(fs::metadata(path)?.permissions().mode() & 0o077 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_the_mode_and_replaces_the_content() {
        let dir = std::env::temp_dir().join(format!("agent-files-{}", std::process::id()));
        ensure_private_dir(&dir).unwrap();
        let path = dir.join("secret.key");
        write_atomically(&path, b"one", SECRET_FILE_MODE).unwrap();
        write_atomically(&path, b"two", SECRET_FILE_MODE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!readable_by_others(&path).unwrap());
        assert!(!dir.join("secret.key.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
