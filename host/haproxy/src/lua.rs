//! The Lua services behind marathon-lb's port-9090 endpoints (spec §6),
//! embedded in the binary and installed where the HEAD template's
//! `lua-load` lines point (`/marathon-lb/*.lua` in marathon-lb's image).
//!
//! HAProxy refuses a configuration whose `lua-load` file is missing, so the
//! files must be in place before the first `haproxy -c` or start.

use std::io;
use std::path::Path;

use super::state::write_if_changed;

/// `getpids.lua`: `lua.getpids` (`/_haproxy_getpids`).
pub const GETPIDS: &str = include_str!("../lua/getpids.lua");
/// `getconfig.lua`: `lua.getconfig` (`/_haproxy_getconfig`).
pub const GETCONFIG: &str = include_str!("../lua/getconfig.lua");
/// `getmaps.lua`: `lua.getvhostmap`, `lua.getappmap`.
pub const GETMAPS: &str = include_str!("../lua/getmaps.lua");
/// `signalmlb.lua`: `lua.signalmlbhup`, `lua.signalmlbusr1`.
pub const SIGNALMLB: &str = include_str!("../lua/signalmlb.lua");

/// Every Lua file: (file name, content), in the HEAD's `lua-load` order.
pub const LUA_FILES: [(&str, &str); 4] = [
    ("getpids.lua", GETPIDS),
    ("getconfig.lua", GETCONFIG),
    ("getmaps.lua", GETMAPS),
    ("signalmlb.lua", SIGNALMLB),
];

/// Write the Lua files into `dir` (created if missing). Each file is written
/// atomically (temp file + rename) and only when its content differs, so a
/// running HAProxy never reads a half-written file and an unchanged
/// installation is not touched.
pub fn install_lua(dir: &Path) -> io::Result<()> {
    for (name, content) in LUA_FILES {
        if write_if_changed(&dir.join(name), content.as_bytes())? {
            tracing::debug!(file = %dir.join(name).display(), "installed Lua file");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn inode(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().ino()
    }

    #[test]
    fn installs_and_rewrites_only_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        let lua = dir.path().join("lua");
        install_lua(&lua).unwrap();
        for (name, content) in LUA_FILES {
            assert_eq!(std::fs::read_to_string(lua.join(name)).unwrap(), content);
        }
        let before: Vec<u64> = LUA_FILES.iter().map(|(n, _)| inode(&lua.join(n))).collect();
        std::fs::write(lua.join("getpids.lua"), "-- stale").unwrap();
        install_lua(&lua).unwrap();
        let after: Vec<u64> = LUA_FILES.iter().map(|(n, _)| inode(&lua.join(n))).collect();
        // A rename replaces the inode: only the stale file was rewritten.
        assert_ne!(before[0], after[0]);
        assert_eq!(before[1..], after[1..]);
        assert_eq!(
            std::fs::read_to_string(lua.join("getpids.lua")).unwrap(),
            GETPIDS
        );
    }

    #[test]
    fn registers_the_services_the_head_uses() {
        for service in [
            "\"getpids\"",
            "\"getconfig\"",
            "\"getvhostmap\"",
            "\"getappmap\"",
            "\"signalmlbhup\"",
            "\"signalmlbusr1\"",
        ] {
            assert!(
                LUA_FILES.iter().any(|(_, c)| c.contains(service)),
                "{service} not registered"
            );
        }
    }
}
