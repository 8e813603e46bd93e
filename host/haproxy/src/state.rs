//! Files the supervisor writes: the server-state file saved before every
//! reload, and an atomic write helper (temp file beside the target, fsync,
//! rename) shared with the Lua installer.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Write `content` to `path` atomically: a temp file in the same directory
/// (created if missing), synced, mode 0644, renamed over `path`. Readers see
/// the old or the new content, never a partial file.
pub fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(content)?;
    tmp.as_file().sync_all()?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Write `content` atomically unless `path` already holds exactly it.
/// Returns whether the file was written.
pub fn write_if_changed(path: &Path, content: &[u8]) -> io::Result<bool> {
    if fs::read(path).is_ok_and(|current| current == content) {
        return Ok(false);
    }
    write_atomic(path, content)?;
    Ok(true)
}

/// A server-state file without servers (format version 1). Written at start
/// when the file is missing, so HAProxy does not warn that it cannot open it.
pub const EMPTY_SERVER_STATE: &str = "1\n";

/// Whether `text` is a `show servers state` dump HAProxy can load again: a
/// format version line (`1`) followed by the `# be_id ...` header. Anything
/// else (an error message, an empty answer from a worker that is going away)
/// must not replace the last good state file.
pub fn is_server_state(text: &str) -> bool {
    let mut lines = text.lines();
    let version = lines.next().map(str::trim).unwrap_or_default();
    let header = lines.next().unwrap_or_default();
    !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
        && header.starts_with("# be_id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_state_dumps() {
        assert!(is_server_state(
            "1\n# be_id be_name srv_id srv_name srv_addr\n3 app 1 s1 127.0.0.1 2 0 1 1 5 6 3 4 6 0 0 0 - 8080 - 0 0 - - 0\n\n"
        ));
        assert!(is_server_state("1\n# be_id be_name srv_id\n"));
        assert!(!is_server_state("Unknown command.\n"));
        assert!(!is_server_state(""));
        assert!(!is_server_state("1\n"));
    }

    #[test]
    fn writes_atomically_and_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state");
        assert!(write_if_changed(&path, b"a").unwrap());
        assert!(!write_if_changed(&path, b"a").unwrap());
        assert!(write_if_changed(&path, b"b").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"b");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let leftovers = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
    }
}
