//! The file-system edge: what the target is (file, symbolic link, missing) and replacing it
//! so that a reader never sees a half-written resolv.conf.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// resolv.conf's usual mode when there is no existing file to copy it from: every local
/// program must read it.
pub const DEFAULT_MODE: u32 = 0o644;

/// What is at a path, without following a final symbolic link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Missing,
    /// A symbolic link, with its content as written (possibly relative).
    Symlink(PathBuf),
    File,
}

pub fn entry(path: &Path) -> io::Result<Entry> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Ok(Entry::Symlink(fs::read_link(path)?)),
        Ok(_) => Ok(Entry::File),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Entry::Missing),
        Err(e) => Err(e),
    }
}

/// The file's text, `None` when it (or a symbolic link's destination) does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A symbolic link's destination as a path usable from anywhere (relative links are relative
/// to the link's directory).
pub fn link_destination(link: &Path, content: &Path) -> PathBuf {
    if content.is_absolute() {
        content.to_path_buf()
    } else {
        link.parent()
            .unwrap_or_else(|| Path::new("/"))
            .join(content)
    }
}

/// How a file was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Temporary file + rename(2): readers see the old or the new file, never a mix.
    Atomically,
    /// The path is a mount point (a bind-mounted /etc/resolv.conf in a container, or systemd's
    /// `ReadWritePaths=` on the single file): rename(2) fails with EBUSY there, so the file
    /// was truncated and rewritten in place. A reader may see it empty for an instant.
    InPlace,
}

/// Replaces `path` by a regular file holding `content`.
///
/// A symbolic link at `path` is replaced itself, never written through: the link usually
/// points at a file another program owns (NetworkManager's or systemd-resolved's), often
/// the very file vipd reads its upstreams from. The mode and owner of the existing file (or
/// of the link's destination) are kept; without one, 0644.
pub fn replace(path: &Path, content: &str) -> io::Result<Written> {
    let existing = fs::metadata(path).ok();
    let mode = existing
        .as_ref()
        .map_or(DEFAULT_MODE, |m| m.permissions().mode() & 0o7777);
    let tmp = temporary_path(path);
    let result = write_new(&tmp, content, mode, existing.as_ref());
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    match fs::rename(&tmp, path) {
        Ok(()) => {
            sync_parent(path);
            Ok(Written::Atomically)
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
            let _ = fs::remove_file(&tmp);
            if matches!(entry(path)?, Entry::Symlink(_)) {
                return Err(e);
            }
            let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
            file.write_all(content.as_bytes())?;
            file.sync_all()?;
            Ok(Written::InPlace)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Puts a symbolic link back at `path` (replacing whatever is there) in one rename.
pub fn replace_with_symlink(path: &Path, destination: &Path) -> io::Result<()> {
    let tmp = temporary_path(path);
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(destination, &tmp)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_parent(path);
    Ok(())
}

/// Writes `content` to `path` atomically, creating its directory (0755) if needed; for the
/// upstream copy under /run/vipd.
pub fn write_private_copy(path: &Path, content: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    replace(path, content).map(|_| ())
}

fn write_new(tmp: &Path, content: &str, mode: u32, like: Option<&fs::Metadata>) -> io::Result<()> {
    let _ = fs::remove_file(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)?;
    // The umask may have cleared bits of the requested mode.
    file.set_permissions(Permissions::from_mode(mode))?;
    if let Some(m) = like {
        keep_owner(&file, m);
    }
    file.write_all(content.as_bytes())?;
    file.sync_all()
}

/// Gives the new file the old one's owner when vipd may (root or CAP_CHOWN); otherwise it
/// stays owned by vipd's user, which changes nothing for readers of a 0644 file.
fn keep_owner(file: &File, like: &fs::Metadata) {
    if let Ok(ours) = file.metadata() {
        if ours.uid() != like.uid() || ours.gid() != like.gid() {
            let _ = std::os::unix::fs::fchown(file, Some(like.uid()), Some(like.gid()));
        }
    }
}

/// Makes the rename durable across a power cut; failure only loses durability, not safety.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// `.<name>.vipd-tmp` next to `path`: same directory, so rename(2) stays on one file system.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "resolv.conf".to_owned());
    path.with_file_name(format!(".{name}.vipd-tmp"))
}
