//! Making renamed files durable off the critical path.
//!
//! A runtime change renames its files into place unsynced
//! ([`apply::replace`]), loads the change into HAProxy, and hands the files
//! to the [`Syncer`]: one background thread that fsyncs them. It keeps only
//! the newest files waiting — a config renamed over before its sync is no
//! longer anybody's file, so syncing it would only cost the disk — and the
//! disk therefore sees at most one sync in flight and one waiting, however
//! fast changes come. The files replaced (old configs under temp names)
//! are removed by the thread too, superseded ones included: freeing a file
//! of megabytes takes milliseconds.

use std::sync::{Arc, Condvar, Mutex};

use crate::apply::Unsynced;

/// What the thread and its owner share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The newest files not synced yet.
    waiting: Option<Unsynced>,
    /// Superseded files, to be dropped (their replaced files removed).
    discard: Vec<Unsynced>,
    /// A sync is running.
    busy: bool,
    /// The owner is gone: sync what waits, then end.
    closing: bool,
    /// Syncs done (successful or not), and superseded files skipped.
    synced: u64,
    skipped: u64,
}

/// The background fsync of renamed files (see the module documentation).
pub struct Syncer {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (synced, skipped) = self.counts();
        f.debug_struct("Syncer")
            .field("synced", &synced)
            .field("skipped", &skipped)
            .finish()
    }
}

impl Default for Syncer {
    fn default() -> Self {
        Self::new()
    }
}

impl Syncer {
    /// A syncer; its thread starts with the first files.
    pub fn new() -> Self {
        Self {
            shared: Arc::default(),
            thread: Mutex::new(None),
        }
    }

    /// Sync `files` in the background; files still waiting are left
    /// unsynced (these replace them) and dropped by the thread.
    pub fn submit(&self, files: Unsynced) {
        if files.is_empty() {
            return;
        }
        {
            let Ok(mut state) = self.shared.state.lock() else {
                return;
            };
            if let Some(superseded) = state.waiting.replace(files) {
                state.skipped += 1;
                state.discard.push(superseded);
            }
        }
        self.shared.changed.notify_all();
        let Ok(mut thread) = self.thread.lock() else {
            return;
        };
        if thread.is_none() {
            let shared = self.shared.clone();
            *thread = std::thread::Builder::new()
                .name("mlb-fsync".into())
                .spawn(move || run(&shared))
                .map_err(|e| tracing::warn!(error = %e, "cannot start the fsync thread"))
                .ok();
        }
    }

    /// Wait until nothing waits and no sync runs.
    pub fn flush(&self) {
        let running = self.thread.lock().is_ok_and(|t| t.is_some());
        let Ok(mut state) = self.shared.state.lock() else {
            return;
        };
        while running && (state.waiting.is_some() || !state.discard.is_empty() || state.busy) {
            state = match self.shared.changed.wait(state) {
                Ok(s) => s,
                Err(_) => return,
            };
        }
    }

    /// (syncs done, superseded files skipped).
    pub fn counts(&self) -> (u64, u64) {
        self.shared
            .state
            .lock()
            .map(|s| (s.synced, s.skipped))
            .unwrap_or_default()
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.closing = true;
        }
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.get_mut().ok().and_then(Option::take) {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared) {
    loop {
        let (files, discard) = {
            let Ok(mut state) = shared.state.lock() else {
                return;
            };
            loop {
                let discard = std::mem::take(&mut state.discard);
                let files = state.waiting.take();
                if files.is_some() || !discard.is_empty() {
                    state.busy = true;
                    break (files, discard);
                }
                if state.closing {
                    return;
                }
                state = match shared.changed.wait(state) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
        };
        // Superseded files: their replaced files are removed, nothing synced.
        drop(discard);
        let synced = files.is_some();
        if let Some(Err(e)) = files.map(Unsynced::sync) {
            tracing::warn!(error = %e, "cannot sync the config written at run time (it is in place)");
        }
        if let Ok(mut state) = shared.state.lock() {
            state.busy = false;
            state.synced += u64::from(synced);
        }
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{self, ApplyOptions, Outcome};
    use mlb_core::Rendered;

    fn rendered(config: &str) -> Rendered {
        Rendered {
            config: config.to_owned(),
            ..Rendered::default()
        }
    }

    fn opts() -> ApplyOptions {
        ApplyOptions {
            skip_validation: true,
            command: None,
            archive_versions: 0,
            max_reload_retries: 0,
            reload_interval: std::time::Duration::from_millis(10),
        }
    }

    #[test]
    fn replaced_files_are_in_place_before_the_sync_and_synced_by_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        let syncer = Syncer::new();
        for n in 0..20 {
            let text = format!("version {n}\n");
            let (outcome, files) = apply::replace(&cfg, &rendered(&text), false, &opts()).unwrap();
            assert_eq!(outcome, Outcome::Written);
            assert!(!files.is_empty());
            // The first write renames; later ones exchange with the file
            // in place, which waits under a temp name until its sync.
            assert_eq!(files.replaced.len(), usize::from(n > 0));
            // Readers see the new file at once, synced or not.
            assert_eq!(std::fs::read_to_string(&cfg).unwrap(), text);
            syncer.submit(files);
        }
        syncer.flush();
        let (synced, skipped) = syncer.counts();
        // Every submission was synced or superseded, at least the last one
        // synced.
        assert_eq!(synced + skipped, 20);
        assert!(synced >= 1);
        drop(syncer);
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "version 19\n");
        // The files replaced (exchanged out under temp names) are gone.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["haproxy.cfg"]);
    }

    #[test]
    fn dropping_the_syncer_syncs_what_waits() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        let shared = {
            let syncer = Syncer::new();
            let (_, files) = apply::replace(&cfg, &rendered("x\n"), false, &opts()).unwrap();
            syncer.submit(files);
            let shared = syncer.shared.clone();
            drop(syncer);
            shared
        };
        let state = shared.state.lock().unwrap();
        assert_eq!(state.synced + state.skipped, 1);
        assert_eq!(state.synced, 1);
        assert!(state.waiting.is_none());
    }

    #[test]
    fn a_sync_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        let (_, files) = apply::replace(&cfg, &rendered("x\n"), false, &opts()).unwrap();
        std::fs::remove_dir_all(dir.path()).unwrap();
        // The file handle still syncs; the removed directory cannot be
        // opened, and the error says which.
        let e = files.sync().unwrap_err().to_string();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
    }
}
