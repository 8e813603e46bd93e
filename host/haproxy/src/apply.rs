//! Putting a generated config in place: compare with what is on disk, write
//! temp files beside the targets, validate with `haproxy -c`, rename
//! atomically, archive, reload. A config that fails validation never replaces
//! the existing file.
//!
//! With `--haproxy-map` the maps and the config are a pair: every file is
//! written to a temp file first, and only when all of them are written (a
//! full disk fails here, and the temps are removed) are they renamed, maps
//! then config, so a reload never sees new maps beside the old config. The
//! archive copy is written after the pair is in place and is best effort.
//! Temp files left by a killed run (`.<target>.XXXXXX.tmp`) are removed at
//! start ([`remove_stale_temps`]).
//!
//! Every file's data is fsynced before its rename, except in [`replace`]
//! (the runtime path): there the rename comes first and the data is synced
//! afterwards, off the critical path ([`Unsynced`], [`crate::durable`]).
//! Readers see the old or the new file either way; only a power loss between
//! the rename and the sync (the runtime update, and any sync still running)
//! could leave a short file. In supervised mode the controller writes the
//! whole config again when it starts, before HAProxy starts.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mlb_core::Rendered;

use crate::HaproxyError;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Do not run `haproxy -c`.
    pub skip_validation: bool,
    /// Reload command (`None`: detect upstart / systemd / sysvinit, else none).
    pub command: Option<String>,
    /// Previous versions kept as `<file>.1 .. <file>.N`.
    pub archive_versions: u32,
    /// Reload re-runs while no new HAProxy process appears (-1: forever).
    pub max_reload_retries: i64,
    /// Time between reload re-runs.
    pub reload_interval: Duration,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The files on disk already match.
    Unchanged,
    /// New files are in place (not yet loaded by HAProxy: reloading is
    /// [`HaproxyControl`](crate::control::HaproxyControl)'s decision).
    Written,
}

/// Why applying failed. The files on disk are the previous ones in every
/// case, except after [`ApplyError::Reload`] and [`ApplyError::Supervisor`]
/// (the new config is in place but may not be loaded).
///
/// Match on the variant, or use [`ApplyError::kind`] as a metric label.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Reading or writing a file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// Why (also the `source()`).
        #[source]
        error: std::io::Error,
    },
    /// `haproxy -c` rejected the new config.
    #[error("haproxy -c rejected the new config (the config file is unchanged): {output}")]
    Invalid {
        /// HAProxy's output.
        output: String,
    },
    /// `haproxy -c` rejects the config even without any app: a global
    /// template or setting is at fault, not an app.
    #[error(
        "haproxy -c rejects the config even without any app, so the fault is global (HAPROXY_HEAD, a global template, --ssl-certs), not an app's; the config on disk is unchanged: {output}"
    )]
    Global {
        /// HAProxy's output.
        output: String,
    },
    /// The reload command failed (the new config is in place).
    #[error("reload command `{command}` failed: {message}")]
    Reload {
        /// The command.
        command: String,
        /// Why.
        message: String,
    },
    /// Starting or reloading the supervised HAProxy failed (the new config
    /// is in place). [`HaproxyError::ReloadRejected`] and
    /// [`HaproxyError::ReloadTimeout`] stay matchable through it.
    #[error("{0}")]
    Supervisor(#[from] HaproxyError),
}

impl ApplyError {
    /// A short stable label of the variant, for metrics and logs:
    /// `io`, `validation` (`haproxy -c` refused the config, for an app or
    /// globally), `command` (the external reload command failed), or for
    /// [`ApplyError::Supervisor`] the supervisor's [`HaproxyError::kind`]
    /// (`rejected`, `timeout`, `not_running`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Invalid { .. } | Self::Global { .. } => "validation",
            Self::Reload { .. } => "command",
            Self::Supervisor(e) => e.kind(),
        }
    }

    /// The supervisor's error, if this is one (reload rejected, timed out,
    /// HAProxy not running, ...).
    pub fn supervisor(&self) -> Option<&HaproxyError> {
        match self {
            Self::Supervisor(e) => Some(e),
            _ => None,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ApplyError + '_ {
    move |error| ApplyError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The map files that live beside `config`.
pub fn map_paths(config: &Path) -> (PathBuf, PathBuf) {
    let dir = config.parent().unwrap_or(Path::new("."));
    (dir.join("domain2backend.map"), dir.join("app2backend.map"))
}

fn read_or_empty(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Whether `path` surely holds other bytes than `content`: its size says
/// so without reading it (a missing file is read as empty).
fn other_size(path: &Path, content: &str) -> bool {
    fs::metadata(path).is_ok_and(|m| m.len() != content.len() as u64)
}

/// Whether the generated files differ from those on disk. A file whose size
/// differs is not read (most changes change the size of a config of
/// megabytes).
pub fn differs(config: &Path, rendered: &Rendered, haproxy_map: bool) -> bool {
    if other_size(config, &rendered.config) || read_or_empty(config) != rendered.config {
        return true;
    }
    if haproxy_map {
        let (domain, app) = map_paths(config);
        return read_or_empty(&domain) != rendered.domain_map
            || read_or_empty(&app) != rendered.app_map;
    }
    false
}

/// Temp files are `.<target name>.<TEMP_RAND_LEN random>.tmp`.
const TEMP_SUFFIX: &str = ".tmp";
const TEMP_RAND_LEN: usize = 6;

/// Whether `name` is one of our temp files for a target in `targets`
/// (a target, or an archive copy `<target>.<n>`).
fn is_our_temp(name: &str, targets: &[&str]) -> bool {
    let Some(inner) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
    else {
        return false;
    };
    let Some((target, random)) = inner.rsplit_once('.') else {
        return false;
    };
    if random.len() != TEMP_RAND_LEN || !random.chars().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    targets.iter().any(|t| {
        target == *t
            || target
                .strip_prefix(t)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    })
}

/// Remove the temp files a killed run left beside `config` and its maps
/// (only our own pattern, only regular files, only in the config's
/// directory); returns how many were removed.
pub fn remove_stale_temps(config: &Path) -> usize {
    let dir = dir_of(config);
    let (domain, app) = map_paths(config);
    let names: Vec<String> = [config, domain.as_path(), app.as_path()]
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    let targets: Vec<&str> = names.iter().map(String::as_str).collect();
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_our_temp(name, &targets) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => {
                removed += 1;
                tracing::info!(file = %entry.path().display(), "removed a temp file left by an earlier run");
            }
            Err(e) => {
                tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove a stale temp file");
            }
        }
    }
    removed
}

/// Test-only write failures: the n-th temp file written on this thread
/// fails, as on a full disk.
#[cfg(test)]
mod fail_point {
    use std::cell::Cell;

    thread_local! {
        static COUNTDOWN: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Make the `n`-th (1-based) following temp write fail.
    pub fn fail_nth(n: usize) {
        COUNTDOWN.with(|c| c.set(Some(n)));
    }

    pub fn check() -> std::io::Result<()> {
        COUNTDOWN.with(|c| match c.get() {
            Some(1) => {
                c.set(None);
                Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
            }
            Some(n) => {
                c.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        })
    }
}

/// A temp file beside `target` holding `content`, with `target`'s permissions
/// (0644 for a new file).
fn temp_beside(target: &Path, content: &str) -> Result<tempfile::NamedTempFile, ApplyError> {
    temp_beside_with(target, content, Sync::BeforeRename)
}

/// When a written file's data is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// fsync, then rename: every path but the runtime one.
    BeforeRename,
    /// Rename first; [`Unsynced::sync`] later.
    AfterRename,
}

/// [`temp_beside`], fsynced only for [`Sync::BeforeRename`].
fn temp_beside_with(
    target: &Path,
    content: &str,
    sync: Sync,
) -> Result<tempfile::NamedTempFile, ApplyError> {
    let dir = dir_of(target);
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(TEMP_SUFFIX)
        .rand_bytes(TEMP_RAND_LEN)
        .tempfile_in(dir)
        .map_err(io(target))?;
    #[cfg(test)]
    fail_point::check().map_err(io(target))?;
    tmp.write_all(content.as_bytes()).map_err(io(target))?;
    if sync == Sync::BeforeRename {
        tmp.as_file().sync_all().map_err(io(target))?;
    }
    let mode = fs::metadata(target)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(io(target))?;
    Ok(tmp)
}

/// HAProxy's `[ALERT]` lines on one line, without the `[ALERT] (pid) :` prefix
/// (everything, trimmed, when there are none).
fn condense(output: &str) -> String {
    let alerts: Vec<&str> = output
        .lines()
        .filter(|l| l.starts_with("[ALERT]"))
        .map(|l| l.splitn(3, " : ").nth(2).unwrap_or(l).trim())
        .filter(|l| !l.starts_with("Error(s) found") && !l.starts_with("Fatal errors found"))
        .collect();
    if alerts.is_empty() {
        output.trim().to_owned()
    } else {
        alerts.join("; ")
    }
}

/// Run `haproxy -f <file> -c`.
pub fn validate(file: &Path) -> Result<(), ApplyError> {
    let out = Command::new("haproxy")
        .arg("-f")
        .arg(file)
        .arg("-c")
        .output()
        .map_err(|e| ApplyError::Invalid {
            output: format!("cannot run haproxy: {e}"),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(ApplyError::Invalid {
        output: condense(&output),
    })
}

/// Keep the new content as `<target>.1`, shifting older copies up to `.N`.
/// `<target>.1` is a hard link to the file just put in place (each write
/// renames a new file over `target`, so the link keeps this version): no
/// second copy of a config of megabytes is written; a copy only where
/// links fail. With `defer_removal` the oldest copy is only renamed aside
/// (under a temp name, removed when the returned path is dropped): freeing a
/// file of megabytes took 2–3 ms.
fn archive(
    target: &Path,
    content: &str,
    versions: u32,
    defer_removal: bool,
) -> Result<Option<tempfile::TempPath>, ApplyError> {
    if versions == 0 {
        return Ok(None);
    }
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", target.display()));
    // The oldest goes first, so no rename replaces a file (on ext4 that
    // would flush the renamed file's data first).
    let oldest = numbered(versions);
    let displaced = defer_removal.then(|| set_aside(&oldest)).flatten();
    if displaced.is_none() {
        let _ = fs::remove_file(&oldest);
    }
    for n in (1..versions).rev() {
        if numbered(n).exists() {
            fs::rename(numbered(n), numbered(n + 1)).map_err(io(target))?;
        }
    }
    let _ = fs::remove_file(numbered(1));
    if fs::hard_link(target, numbered(1)).is_ok() {
        return Ok(displaced);
    }
    let tmp = temp_beside(&numbered(1), content)?;
    tmp.persist(numbered(1)).map_err(|e| ApplyError::Io {
        path: numbered(1).display().to_string(),
        error: e.error,
    })?;
    Ok(displaced)
}

/// Rename `path` to a new temp name beside it (never over another file);
/// `None` when it cannot be (no such file, no `renameat2`).
fn set_aside(path: &Path) -> Option<tempfile::TempPath> {
    let dir = dir_of(path);
    let name = path.file_name()?.to_str()?;
    let cwd = rustix::fs::CWD;
    let flags = rustix::fs::RenameFlags::NOREPLACE;
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(TEMP_SUFFIX)
        .rand_bytes(TEMP_RAND_LEN)
        .make_in(dir, |aside| {
            rustix::fs::renameat_with(cwd, path, cwd, aside, flags).map_err(std::io::Error::from)
        })
        .ok()
        .map(tempfile::NamedTempFile::into_temp_path)
}

/// Temp files beside the targets: the maps, and a config copy that points at
/// the temp maps (so `haproxy -c` checks the new maps too).
struct Staged {
    maps: Option<(tempfile::NamedTempFile, tempfile::NamedTempFile)>,
    checked: tempfile::NamedTempFile,
}

fn stage(config: &Path, rendered: &Rendered, haproxy_map: bool) -> Result<Staged, ApplyError> {
    let (domain_path, app_path) = map_paths(config);
    let maps = if haproxy_map {
        Some((
            temp_beside(&domain_path, &rendered.domain_map)?,
            temp_beside(&app_path, &rendered.app_map)?,
        ))
    } else {
        None
    };
    // Borrowed unless the map paths are rewritten (no copy of a config of
    // megabytes in the common case).
    let checked: std::borrow::Cow<'_, str> = match &maps {
        Some((d, a)) => rendered
            .config
            .replace(
                &domain_path.display().to_string(),
                &d.path().display().to_string(),
            )
            .replace(
                &app_path.display().to_string(),
                &a.path().display().to_string(),
            )
            .into(),
        None => rendered.config.as_str().into(),
    };
    Ok(Staged {
        maps,
        checked: temp_beside(config, &checked)?,
    })
}

/// Validate `rendered` as it would be written for `config`, without touching
/// the files in place (temp files are removed again).
pub fn check(config: &Path, rendered: &Rendered, haproxy_map: bool) -> Result<(), ApplyError> {
    let staged = stage(config, rendered, haproxy_map)?;
    validate(staged.checked.path())
}

/// Write, validate and move the files into place (no reload), unless they
/// are what is on disk already.
pub fn apply(
    config: &Path,
    rendered: &Rendered,
    haproxy_map: bool,
    opts: &ApplyOptions,
) -> Result<Outcome, ApplyError> {
    prepare(config, haproxy_map)?;
    if !differs(config, rendered, haproxy_map) {
        return Ok(Outcome::Unchanged);
    }
    put_in_place(config, rendered, haproxy_map, opts)
}

/// [`apply`] without comparing with the files on disk first: for a caller
/// that knows the new config differs from what HAProxy runs (writing what
/// the disk may already hold costs one write; loading it is what matters).
/// The files are renamed into place before their data is synced: the
/// caller makes them durable with the [`Unsynced`] it gets back, once what
/// waits on the write (the runtime update) is done — at 10,000 backends the
/// fsync of the 8 MB config took 11–36 ms.
pub fn replace(
    config: &Path,
    rendered: &Rendered,
    haproxy_map: bool,
    opts: &ApplyOptions,
) -> Result<(Outcome, Unsynced), ApplyError> {
    let staged = stage_replacement(config, rendered, haproxy_map)?;
    put_replacement(staged, config, rendered, opts)
}

/// The first step of [`replace`]: the files written beside their targets
/// (unsynced, never validated), nothing in place yet; dropped, they are
/// removed. Lets a caller decide whether to use them while they are written.
#[derive(Debug)]
pub struct Replacement {
    maps: Option<(tempfile::NamedTempFile, tempfile::NamedTempFile)>,
    config: tempfile::NamedTempFile,
}

/// Write `rendered`'s files beside their targets ([`Replacement`]).
pub fn stage_replacement(
    config: &Path,
    rendered: &Rendered,
    haproxy_map: bool,
) -> Result<Replacement, ApplyError> {
    prepare(config, haproxy_map)?;
    let (domain_path, app_path) = map_paths(config);
    let maps = if haproxy_map {
        Some((
            temp_beside_with(&domain_path, &rendered.domain_map, Sync::AfterRename)?,
            temp_beside_with(&app_path, &rendered.app_map, Sync::AfterRename)?,
        ))
    } else {
        None
    };
    let config = temp_beside_with(config, &rendered.config, Sync::AfterRename)?;
    Ok(Replacement { maps, config })
}

/// The second step of [`replace`]: the staged files put in place (maps,
/// then config), archived; the files to sync.
pub fn put_replacement(
    staged: Replacement,
    config: &Path,
    rendered: &Rendered,
    opts: &ApplyOptions,
) -> Result<(Outcome, Unsynced), ApplyError> {
    let (domain_path, app_path) = map_paths(config);
    let mut unsynced = Unsynced::default();
    let mut swap = |tmp: tempfile::NamedTempFile, path: &Path| {
        let (file, replaced) = swap_into_place(tmp, path)?;
        unsynced.files.push((path.to_path_buf(), file));
        unsynced.replaced.extend(replaced);
        Ok::<_, ApplyError>(())
    };
    if let Some((d, a)) = staged.maps {
        swap(d, &domain_path)?;
        swap(a, &app_path)?;
    }
    swap(staged.config, config)?;
    match archive(config, &rendered.config, opts.archive_versions, true) {
        Ok(displaced) => unsynced.replaced.extend(displaced),
        Err(e) => tracing::warn!(error = %e, "cannot archive the new config (it is in place)"),
    }
    Ok((Outcome::Written, unsynced))
}

/// Files renamed into place whose data may not be on disk yet, and the
/// files they replaced (removed once synced, or when dropped).
#[derive(Debug, Default)]
#[must_use = "the files are durable only once synced"]
pub struct Unsynced {
    files: Vec<(PathBuf, fs::File)>,
    pub(crate) replaced: Vec<tempfile::TempPath>,
}

impl Unsynced {
    /// fsync every file, then the directories their names are in (the
    /// renames). The first error, naming its file.
    pub fn sync(self) -> Result<(), ApplyError> {
        let mut dirs: Vec<&Path> = Vec::new();
        for (path, file) in &self.files {
            file.sync_data().map_err(io(path))?;
            let dir = dir_of(path);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        for dir in dirs {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    }

    /// Nothing to sync.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// The config's directory exists; without maps, stale map files are
/// emptied (as marathon-lb does).
fn prepare(config: &Path, haproxy_map: bool) -> Result<(), ApplyError> {
    if let Some(dir) = config.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    if !haproxy_map {
        let (domain_path, app_path) = map_paths(config);
        for map in [&domain_path, &app_path] {
            if map.is_file() && fs::metadata(map).map(|m| m.len() > 0).unwrap_or(false) {
                fs::write(map, "").map_err(io(map))?;
            }
        }
    }
    Ok(())
}

/// Temp files (fsynced), validation unless skipped, renames, archive.
fn put_in_place(
    config: &Path,
    rendered: &Rendered,
    haproxy_map: bool,
    opts: &ApplyOptions,
) -> Result<Outcome, ApplyError> {
    let (domain_path, app_path) = map_paths(config);
    let Staged {
        maps,
        checked: tmp_config,
    } = stage(config, rendered, haproxy_map)?;
    if !opts.skip_validation {
        validate(tmp_config.path())?;
    }
    // Every file is written before anything is renamed.
    let final_config = if maps.is_some() {
        temp_beside(config, &rendered.config)?
    } else {
        tmp_config
    };
    let persist = |tmp: tempfile::NamedTempFile, path: &Path| {
        tmp.persist(path).map_err(|e| ApplyError::Io {
            path: path.display().to_string(),
            error: e.error,
        })
    };
    if let Some((d, a)) = maps {
        persist(d, &domain_path)?;
        persist(a, &app_path)?;
    }
    persist(final_config, config)?;
    if let Err(e) = archive(config, &rendered.config, opts.archive_versions, false) {
        tracing::warn!(error = %e, "cannot archive the new config (it is in place)");
    }
    Ok(Outcome::Written)
}

/// Put an unsynced temp file in place of `target` by exchanging the two
/// (`renameat2` with `RENAME_EXCHANGE`): as atomic as a rename, but ext4
/// does not flush the new file's data at the exchange, as it does when a
/// rename replaces a file (`auto_da_alloc`: 8–10 ms for an 8 MB config,
/// measured). The old file comes back under the temp name, to be removed
/// later. Where the exchange is impossible (no `target` yet, a file system
/// without it) this is a plain rename.
fn swap_into_place(
    tmp: tempfile::NamedTempFile,
    target: &Path,
) -> Result<(fs::File, Option<tempfile::TempPath>), ApplyError> {
    let (file, temp_path) = tmp.into_parts();
    let cwd = rustix::fs::CWD;
    let flags = rustix::fs::RenameFlags::EXCHANGE;
    match rustix::fs::renameat_with(cwd, &*temp_path, cwd, target, flags) {
        Ok(()) => Ok((file, Some(temp_path))),
        Err(_) => {
            temp_path.persist(target).map_err(|e| ApplyError::Io {
                path: target.display().to_string(),
                error: e.error,
            })?;
            Ok((file, None))
        }
    }
}

/// The reload command: `--command`, else what the init system offers.
fn reload_command(opts: &ApplyOptions) -> Option<Vec<String>> {
    if let Some(cmd) = &opts.command {
        return shlex::split(cmd);
    }
    let exists = |p: &str| Path::new(p).is_file();
    if exists("/etc/init/haproxy.conf") {
        Some(vec!["reload".into(), "haproxy".into()])
    } else if [
        "/usr/lib/systemd/system/haproxy.service",
        "/lib/systemd/system/haproxy.service",
        "/etc/systemd/system/haproxy.service",
    ]
    .iter()
    .any(|p| exists(p))
    {
        Some(vec!["systemctl".into(), "reload".into(), "haproxy".into()])
    } else if exists("/etc/init.d/haproxy") {
        Some(vec!["/etc/init.d/haproxy".into(), "reload".into()])
    } else {
        None
    }
}

/// PIDs of processes named `haproxy` (marathon-lb uses `pidof haproxy`).
pub fn haproxy_pids() -> HashSet<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return HashSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "haproxy")
        })
        .collect()
}

fn run(argv: &[String]) -> Result<(), ApplyError> {
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .map_err(|e| ApplyError::Reload {
            command: argv.join(" "),
            message: e.to_string(),
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(ApplyError::Reload {
            command: argv.join(" "),
            message: format!("exited with {status}"),
        })
    }
}

/// Run the reload command and wait for a new HAProxy process, re-running the
/// command every `reload_interval` up to `max_reload_retries` times. Unlike
/// marathon-lb, nothing is awaited when no HAProxy was running before (there
/// is no process to be replaced), and `0` retries waits one interval, not
/// forever.
pub fn reload(opts: &ApplyOptions) -> Result<bool, ApplyError> {
    let Some(argv) = reload_command(opts).filter(|a| !a.is_empty()) else {
        tracing::debug!("no reload command; HAProxy not reloaded");
        return Ok(false);
    };
    tracing::info!(command = %argv.join(" "), "reloading HAProxy");
    let before = haproxy_pids();
    let start = Instant::now();
    run(&argv)?;
    if before.is_empty() {
        return Ok(true);
    }
    let mut retries = opts.max_reload_retries;
    let mut checkpoint = Instant::now();
    loop {
        if haproxy_pids().difference(&before).next().is_some() {
            tracing::debug!(
                elapsed_ms = start.elapsed().as_millis() as u64,
                "reload finished"
            );
            return Ok(true);
        }
        if checkpoint.elapsed() >= opts.reload_interval {
            checkpoint = Instant::now();
            if retries == 0 {
                tracing::warn!("no new HAProxy process after the reload; giving up");
                return Ok(true);
            }
            if retries > 0 {
                retries -= 1;
            }
            tracing::warn!("no new HAProxy process yet; running the reload command again");
            run(&argv)?;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ApplyOptions {
        ApplyOptions {
            skip_validation: true,
            command: Some("true".into()),
            archive_versions: 2,
            max_reload_retries: 0,
            reload_interval: Duration::from_millis(10),
        }
    }

    fn rendered(config: &str) -> Rendered {
        Rendered {
            config: config.into(),
            ..Rendered::default()
        }
    }

    #[test]
    fn writes_only_on_change_and_archives() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        assert_eq!(
            apply(&cfg, &rendered("a\n"), false, &opts()).unwrap(),
            Outcome::Written
        );
        assert_eq!(
            apply(&cfg, &rendered("a\n"), false, &opts()).unwrap(),
            Outcome::Unchanged
        );
        apply(&cfg, &rendered("b\n"), false, &opts()).unwrap();
        apply(&cfg, &rendered("c\n"), false, &opts()).unwrap();
        assert_eq!(fs::read_to_string(&cfg).unwrap(), "c\n");
        assert_eq!(
            fs::read_to_string(dir.path().join("haproxy.cfg.1")).unwrap(),
            "c\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("haproxy.cfg.2")).unwrap(),
            "b\n"
        );
        assert!(!dir.path().join("haproxy.cfg.3").exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn replace_sets_the_oldest_archive_aside_until_its_files_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        let o = opts(); // two archived versions
        let names = || {
            let mut n: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            n.sort();
            n
        };
        let mut pending = Vec::new();
        for v in 0..4 {
            let (_, files) = replace(&cfg, &rendered(&format!("v{v}\n")), false, &o).unwrap();
            pending.push(files);
        }
        let read = |p: &str| fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(
            (
                read("haproxy.cfg"),
                read("haproxy.cfg.1"),
                read("haproxy.cfg.2")
            ),
            ("v3\n".into(), "v3\n".into(), "v2\n".into())
        );
        // v0 and v1 were archived as .2 and set aside (not removed) by the
        // third and fourth writes; the configs exchanged out wait too.
        let aside = names()
            .iter()
            .filter(|n| n.starts_with(".haproxy.cfg.2."))
            .count();
        assert_eq!(aside, 2, "{:?}", names());
        assert!(names().len() > 3);
        drop(pending);
        assert_eq!(names(), ["haproxy.cfg", "haproxy.cfg.1", "haproxy.cfg.2"]);
    }

    #[test]
    fn replace_writes_without_reading_and_differs_trusts_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        let mut o = opts();
        o.archive_versions = 0;
        apply(&cfg, &rendered("same\n"), false, &o).unwrap();
        // What is on disk already is written again (a new file renamed over
        // it): the caller knows HAProxy runs something else.
        use std::os::unix::fs::MetadataExt as _;
        let inode = || fs::metadata(&cfg).unwrap().ino();
        let before = inode();
        let (outcome, files) = replace(&cfg, &rendered("same\n"), false, &o).unwrap();
        assert_eq!(outcome, Outcome::Written);
        files.sync().unwrap();
        assert_ne!(inode(), before);
        let (outcome, files) = replace(&cfg, &rendered("longer\n"), false, &o).unwrap();
        assert_eq!(outcome, Outcome::Written);
        files.sync().unwrap();
        assert_eq!(fs::read_to_string(&cfg).unwrap(), "longer\n");
        // Another size differs without a read; the same size is compared.
        assert!(differs(&cfg, &rendered("x\n"), false));
        assert!(differs(&cfg, &rendered("LONGER\n"), false));
        assert!(!differs(&cfg, &rendered("longer\n"), false));
        assert!(differs(
            &dir.path().join("missing.cfg"),
            &rendered("x"),
            false
        ));
        assert!(!differs(
            &dir.path().join("missing.cfg"),
            &rendered(""),
            false
        ));
    }

    #[test]
    fn a_failed_write_keeps_the_old_map_and_config_pair() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        let (domain, app) = map_paths(&cfg);
        let pair = |tag: &str| Rendered {
            config: format!("config {tag}\n"),
            domain_map: format!("domain {tag}\n"),
            app_map: format!("app {tag}\n"),
            ..Rendered::default()
        };
        let on_disk = || [&cfg, &domain, &app].map(|p| fs::read_to_string(p).unwrap_or_default());
        let expect = |r: &Rendered| [r.config.clone(), r.domain_map.clone(), r.app_map.clone()];
        let old = pair("old");
        apply(&cfg, &old, true, &opts()).unwrap();
        assert_eq!(on_disk(), expect(&old));
        // Temp writes of one apply: domain map, app map, checked config,
        // final config, then the archive copy (after the pair is in place).
        for n in 1..=4 {
            fail_point::fail_nth(n);
            let err = apply(&cfg, &pair("new"), true, &opts()).unwrap_err();
            assert!(err.to_string().contains("No space left"), "{err}");
            assert_eq!(on_disk(), expect(&old), "write {n} failed");
            let temps: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                .collect();
            assert!(temps.is_empty(), "temps left after write {n} failed");
        }
        fail_point::fail_nth(5);
        let new = pair("new");
        apply(&cfg, &new, true, &opts()).unwrap();
        assert_eq!(
            on_disk(),
            expect(&new),
            "a failed archive keeps the new pair"
        );
    }

    #[test]
    fn stale_temps_of_ours_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        let ours = [
            ".haproxy.cfg.a1B2c3.tmp",
            ".haproxy.cfg.3.Zz9900.tmp",
            ".domain2backend.map.abcdef.tmp",
            ".app2backend.map.000000.tmp",
        ];
        let others = [
            ".haproxy.cfg.tmp",
            ".haproxy.cfg.abc.tmp",
            ".other.cfg.a1B2c3.tmp",
            "haproxy.cfg.a1B2c3.tmp",
            ".haproxy.cfg.x.a1B2c3.tmp",
            "haproxy.cfg",
        ];
        for name in ours.iter().chain(&others) {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        fs::create_dir(dir.path().join(".app2backend.map.dirdir.tmp")).unwrap();
        assert_eq!(remove_stale_temps(&cfg), ours.len());
        for name in ours {
            assert!(!dir.path().join(name).exists(), "{name}");
        }
        for name in others {
            assert!(dir.path().join(name).exists(), "{name}");
        }
        assert!(dir.path().join(".app2backend.map.dirdir.tmp").is_dir());
    }

    #[test]
    fn supervisor_errors_stay_matchable_with_their_labels() {
        let rejected: ApplyError = HaproxyError::ReloadRejected("[ALERT] bad bind".into()).into();
        assert!(matches!(
            rejected.supervisor(),
            Some(HaproxyError::ReloadRejected(alerts)) if alerts == "[ALERT] bad bind"
        ));
        assert_eq!(rejected.kind(), "rejected");
        assert_eq!(
            rejected.to_string(),
            "HAProxy rejected the new config (previous config keeps serving): [ALERT] bad bind"
        );
        let timeout = ApplyError::from(HaproxyError::ReloadTimeout(Duration::from_secs(30)));
        assert_eq!(timeout.kind(), "timeout");
        assert_eq!(
            ApplyError::from(HaproxyError::NotRunning).kind(),
            "not_running"
        );
        let invalid = ApplyError::Invalid {
            output: String::new(),
        };
        assert_eq!(invalid.kind(), "validation");
        assert!(invalid.supervisor().is_none());
    }

    #[test]
    fn io_errors_keep_their_source() {
        use std::error::Error as _;
        let dir = tempfile::tempdir().unwrap();
        // The config's directory is a file: the temp file cannot be created.
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, "x").unwrap();
        let err = apply(
            &blocker.join("haproxy.cfg"),
            &rendered("x\n"),
            false,
            &opts(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), "io", "{err}");
        assert!(
            err.source().is_some_and(|s| s.is::<std::io::Error>()),
            "{err:?}"
        );
        let spawn: ApplyError = HaproxyError::Spawn {
            haproxy: "haproxy".into(),
            error: std::io::ErrorKind::NotFound.into(),
        }
        .into();
        assert_eq!(spawn.kind(), "spawn");
        let cause = spawn.source().expect("the supervisor's error");
        assert!(cause.is::<HaproxyError>());
        assert!(cause.source().is_some_and(|s| s.is::<std::io::Error>()));
    }

    #[test]
    fn failing_reload_command_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        let mut o = opts();
        o.command = Some("false".into());
        assert_eq!(
            apply(&cfg, &rendered("x\n"), false, &o).unwrap(),
            Outcome::Written
        );
        assert!(matches!(reload(&o), Err(ApplyError::Reload { .. })));
    }
}
