//! Progress on stderr: one line per state change (old/new instances,
//! healthy, per marathon-lb instance: rows, new UP, old in maintenance and
//! drained; what zdd waits for), through the log setup, so
//! `--log-format json` gives JSON lines with the same fields.

use super::step::LbCounts;

/// Emits a line only when the state changed.
#[derive(Debug)]
pub struct Progress {
    last: String,
    /// JSON lines: the counts also as fields (plain lines carry them in
    /// the text only).
    json: bool,
}

/// One state of the swap.
#[derive(Debug)]
pub struct State<'a> {
    /// Old app id.
    pub old_id: &'a str,
    /// Old app: instances, healthy.
    pub old: (u64, u64),
    /// New app id.
    pub new_id: &'a str,
    /// New app: instances, healthy.
    pub new: (u64, u64),
    /// Per marathon-lb instance (URL, counts); `None` = unreachable.
    pub lbs: Vec<(&'a str, Option<LbCounts>)>,
    /// What zdd does or waits for.
    pub doing: &'a str,
}

impl Progress {
    /// A reporter; `json` for `--log-format json`.
    pub fn new(json: bool) -> Self {
        Self {
            last: String::new(),
            json,
        }
    }

    /// Report `state` if it differs from the last one.
    pub fn state(&mut self, s: &State<'_>) {
        let lbs: Vec<String> = s
            .lbs
            .iter()
            .map(|(url, c)| match c {
                Some(c) => format!(
                    "{url} rows={} new_up={} old_maint={} old_drained={}",
                    c.rows, c.new_up, c.old_maint, c.old_drained
                ),
                None => format!("{url} unreachable"),
            })
            .collect();
        let line = format!(
            "old {} instances={} healthy={}; new {} instances={} healthy={}; lb [{}]; {}",
            s.old_id,
            s.old.0,
            s.old.1,
            s.new_id,
            s.new.0,
            s.new.1,
            lbs.join("; "),
            s.doing
        );
        if line == self.last {
            return;
        }
        if !self.json {
            tracing::info!(target: "zdd", "{line}");
            self.last = line;
            return;
        }
        tracing::info!(
            target: "zdd",
            old_app = s.old_id,
            old_instances = s.old.0,
            old_healthy = s.old.1,
            new_app = s.new_id,
            new_instances = s.new.0,
            new_healthy = s.new.1,
            lbs = lbs.join("; ").as_str(),
            doing = s.doing,
            "{line}"
        );
        self.last = line;
    }

    /// A one-off event (kill, scale, delete, rollback step).
    pub fn event(&mut self, what: &str) {
        if self.json {
            tracing::info!(target: "zdd", event = what, "{what}");
        } else {
            tracing::info!(target: "zdd", "{what}");
        }
        self.last.clear();
    }
}
