//! What a reconcile changed, for its one log line, and which diagnostics are
//! new (a rejected app's reason is logged when it first appears or changes,
//! not on every reconcile; the `mlb_rejected_services` gauge counts them).
//!
//! # Layout
//! - [`Changes`]: the state carried from one reconcile to the next.
//! - [`summary`]: the change list as one short phrase.

use std::collections::{BTreeMap, BTreeSet};

use mlb_model::{Diagnostic, Service};

/// How many changes the line names before "… and N more".
const SHOWN: usize = 6;

/// Backends and their servers (address, port).
pub type Snapshot = BTreeMap<String, BTreeSet<(String, i64)>>;

/// Backends, their servers and the diagnostics of the last reconcile.
#[derive(Debug, Default)]
pub struct Changes {
    backends: Option<Snapshot>,
    diagnostics: BTreeMap<(String, Option<String>), String>,
    /// The apps with at least one error (warnings alone reject nothing).
    rejected: BTreeSet<String>,
}

fn servers_of(services: &[Service]) -> Snapshot {
    let mut out = Snapshot::new();
    for s in services {
        out.entry(s.backend.clone())
            .or_default()
            .extend(s.servers.iter().map(|v| (v.ip.clone(), v.port)));
    }
    out
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

impl Changes {
    /// The changes from the last [`commit`](Self::commit)ted snapshot to
    /// `services`: backends added or removed, servers added or removed per
    /// backend (the first time: the backends found), and the new snapshot.
    pub fn services(&self, services: &[Service]) -> (Vec<String>, Snapshot) {
        let now = servers_of(services);
        let changes = self.describe(&now);
        (changes, now)
    }

    /// Take `snapshot` as what HAProxy now serves.
    pub fn commit(&mut self, snapshot: Snapshot) {
        self.backends = Some(snapshot);
    }

    fn describe(&self, now: &Snapshot) -> Vec<String> {
        let Some(before) = &self.backends else {
            let servers: usize = now.values().map(BTreeSet::len).sum();
            return vec![format!(
                "{} with {}",
                plural(now.len(), "backend"),
                plural(servers, "server")
            )];
        };
        let mut out = Vec::new();
        for (backend, servers) in now {
            match before.get(backend) {
                None => out.push(format!(
                    "+backend {backend} ({})",
                    plural(servers.len(), "server")
                )),
                Some(old) => {
                    let added = servers.difference(old).count();
                    let removed = old.difference(servers).count();
                    if added > 0 {
                        out.push(format!("+{} in {backend}", plural(added, "server")));
                    }
                    if removed > 0 {
                        out.push(format!("-{} in {backend}", plural(removed, "server")));
                    }
                }
            }
        }
        out.extend(
            before
                .keys()
                .filter(|b| !now.contains_key(*b))
                .map(|b| format!("-backend {b}")),
        );
        out
    }

    /// The diagnostics that are new or changed since the last call, and
    /// the changes they make to the list: "app /x rejected" and "app /x no
    /// longer rejected".
    pub fn diagnostics<'d>(
        &mut self,
        diagnostics: &'d [Diagnostic],
    ) -> (Vec<&'d Diagnostic>, Vec<String>) {
        let now: BTreeMap<(String, Option<String>), String> = diagnostics
            .iter()
            .map(|d| ((d.app_id.clone(), d.label.clone()), d.message.clone()))
            .collect();
        let fresh: Vec<&Diagnostic> = diagnostics
            .iter()
            .filter(|d| {
                self.diagnostics.get(&(d.app_id.clone(), d.label.clone())) != Some(&d.message)
            })
            .collect();
        let rejected: BTreeSet<String> = diagnostics
            .iter()
            .filter(|d| d.severity == mlb_model::Severity::Error)
            .map(|d| d.app_id.clone())
            .collect();
        let mut changes: Vec<String> = fresh
            .iter()
            .filter(|d| d.severity == mlb_model::Severity::Error)
            .map(|d| d.app_id.clone())
            .chain(rejected.difference(&self.rejected).cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|app| format!("app {app} rejected"))
            .collect();
        changes.extend(
            self.rejected
                .difference(&rejected)
                .map(|app| format!("app {app} no longer rejected")),
        );
        self.rejected = rejected;
        self.diagnostics = now;
        (fresh, changes)
    }
}

/// `changes` as one phrase: the first few, then "… and N more"; "no change"
/// when empty.
pub fn summary(changes: &[String]) -> String {
    if changes.is_empty() {
        return "no change".to_owned();
    }
    let mut text = changes[..changes.len().min(SHOWN)].join(", ");
    if changes.len() > SHOWN {
        text.push_str(&format!(" … and {} more", changes.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlb_model::Server;

    fn service(backend: &str, ports: &[i64]) -> Service {
        Service {
            app_id: format!("/{backend}"),
            backend: backend.into(),
            servers: ports
                .iter()
                .map(|p| Server {
                    ip: "127.0.0.1".into(),
                    port: *p,
                    ..Server::default()
                })
                .collect(),
            ..Service::default()
        }
    }

    fn diagnostic(app: &str, message: &str) -> Diagnostic {
        Diagnostic::error(app, Some("HAPROXY_0_PORT"), message)
    }

    #[test]
    fn servers_and_backends_that_come_and_go() {
        let mut c = Changes::default();
        let mut step = |services: &[Service]| {
            let (changes, snapshot) = c.services(services);
            c.commit(snapshot);
            changes
        };
        assert_eq!(
            step(&[service("web_10001", &[1])]),
            ["1 backend with 1 server"]
        );
        assert!(step(&[service("web_10001", &[1])]).is_empty());
        assert_eq!(
            step(&[service("web_10001", &[2, 3]), service("api_10002", &[4])]),
            [
                "+backend api_10002 (1 server)",
                "+2 servers in web_10001",
                "-1 server in web_10001"
            ]
        );
        assert_eq!(
            step(&[service("web_10001", &[2, 3])]),
            ["-backend api_10002"]
        );
        // Not committed: the next diff is still against the last commit.
        let (changes, _) = c.services(&[]);
        assert_eq!(changes, ["-backend web_10001"]);
        assert_eq!(c.services(&[]).0, ["-backend web_10001"]);
    }

    #[test]
    fn a_diagnostic_is_new_once_and_again_when_it_changes() {
        let mut c = Changes::default();
        let first = [diagnostic("/x", "not an integer")];
        let (fresh, changes) = c.diagnostics(&first);
        assert_eq!(fresh.len(), 1);
        assert_eq!(changes, ["app /x rejected"]);
        let (fresh, changes) = c.diagnostics(&first);
        assert!(fresh.is_empty() && changes.is_empty());
        let changed = [diagnostic("/x", "out of range")];
        let (fresh, _) = c.diagnostics(&changed);
        assert_eq!(fresh.len(), 1);
        let (fresh, changes) = c.diagnostics(&[]);
        assert!(fresh.is_empty());
        assert_eq!(changes, ["app /x no longer rejected"]);
    }

    #[test]
    fn only_errors_reject_an_app() {
        let mut c = Changes::default();
        let warning = |app| Diagnostic::warning(app, Some("HAPROXY_0_VHOST"), "ignored");
        // A warning alone rejects nothing, and its going away is no change.
        let only_w = [warning("/w")];
        let (fresh, changes) = c.diagnostics(&only_w);
        assert_eq!(fresh.len(), 1);
        assert!(changes.is_empty(), "{changes:?}");
        let (_, changes) = c.diagnostics(&[]);
        assert!(changes.is_empty(), "{changes:?}");
        // From an error to a warning only: no longer rejected.
        let (_, changes) = c.diagnostics(&[diagnostic("/x", "bad"), warning("/x")]);
        assert_eq!(changes, ["app /x rejected"]);
        let only_x = [warning("/x")];
        let (fresh, changes) = c.diagnostics(&only_x);
        assert!(fresh.is_empty());
        assert_eq!(changes, ["app /x no longer rejected"]);
        // And back: rejected again.
        let (_, changes) = c.diagnostics(&[diagnostic("/x", "bad"), warning("/x")]);
        assert_eq!(changes, ["app /x rejected"]);
    }

    #[test]
    fn long_lists_are_cut() {
        let changes: Vec<String> = (0..9).map(|i| format!("c{i}")).collect();
        assert_eq!(summary(&changes), "c0, c1, c2, c3, c4, c5 … and 3 more");
        assert_eq!(summary(&[]), "no change");
    }
}
