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

/// More changed backends than this in a reconcile whose backends stay
/// where they were: compare every backend instead of each changed one
/// against the whole list.
const FEW: usize = 32;

/// The servers (address, port) of each service, as given, in service
/// order, with its backend.
type Kept = Vec<(String, Vec<(String, i64)>)>;

/// What [`Changes::services`] found, for [`Changes::commit`].
#[derive(Debug)]
pub enum Snapshot {
    /// The servers of the services at these indices changed (the
    /// backends stayed where they were): one service copied per change,
    /// not 5,000.
    Servers(Vec<(usize, Vec<(String, i64)>)>),
    /// Everything, anew.
    All(Kept),
}

/// Backends, their servers and the diagnostics of the last reconcile.
#[derive(Debug, Default)]
pub struct Changes {
    backends: Option<Kept>,
    /// The diagnostics of the last call, as given (most reconciles give
    /// the same ones again: then nothing else is looked at).
    last: Vec<Diagnostic>,
    diagnostics: BTreeMap<(String, Option<String>), String>,
    /// The apps with at least one error (warnings alone reject nothing).
    rejected: BTreeSet<String>,
}

/// The servers of a service, owned.
fn owned(s: &Service) -> Vec<(String, i64)> {
    s.servers.iter().map(|v| (v.ip.clone(), v.port)).collect()
}

fn kept_of(services: &[Service]) -> Kept {
    services
        .iter()
        .map(|s| (s.backend.clone(), owned(s)))
        .collect()
}

/// Whether a kept service has the servers `s` has now.
fn same_servers(kept: &[(String, i64)], s: &Service) -> bool {
    kept.len() == s.servers.len()
        && kept
            .iter()
            .zip(&s.servers)
            .all(|(k, v)| k.0 == v.ip && k.1 == v.port)
}

/// Backends and their server sets, borrowed.
type Sets<'a> = BTreeMap<&'a str, BTreeSet<(&'a str, i64)>>;

fn kept_sets(kept: &Kept) -> Sets<'_> {
    let mut out = Sets::new();
    for (backend, servers) in kept {
        out.entry(backend.as_str())
            .or_default()
            .extend(servers.iter().map(|(ip, port)| (ip.as_str(), *port)));
    }
    out
}

fn service_sets<'a>(services: impl IntoIterator<Item = &'a Service>) -> Sets<'a> {
    let mut out = Sets::new();
    for s in services {
        out.entry(s.backend.as_str())
            .or_default()
            .extend(s.servers.iter().map(|v| (v.ip.as_str(), v.port)));
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

/// The change list from `before` to `now`: per backend of `now` (sorted)
/// added backends and added / removed servers, then removed backends.
fn describe(before: &Sets<'_>, now: &Sets<'_>) -> Vec<String> {
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

impl Changes {
    /// The changes from the last [`commit`](Self::commit)ted snapshot to
    /// `services`: backends added or removed, servers added or removed per
    /// backend (the first time: the backends found), and what to commit.
    ///
    /// When every service has the backend it had at the same index (a
    /// membership change), each service is compared where it is — no
    /// copy, no map — and only the backends of the services that changed
    /// are described: at 5,000 services a few string comparisons each.
    pub fn services(&self, services: &[Service]) -> (Vec<String>, Snapshot) {
        let Some(before) = &self.backends else {
            let now = service_sets(services);
            let servers: usize = now.values().map(BTreeSet::len).sum();
            let changes = vec![format!(
                "{} with {}",
                plural(now.len(), "backend"),
                plural(servers, "server")
            )];
            return (changes, Snapshot::All(kept_of(services)));
        };
        let aligned = before.len() == services.len()
            && before.iter().zip(services).all(|(k, s)| k.0 == s.backend);
        if aligned {
            let changed: Vec<usize> = (before.iter().zip(services).enumerate())
                .filter(|(_, (k, s))| !same_servers(&k.1, s))
                .map(|(i, _)| i)
                .collect();
            let mut backends: Vec<&str> = changed
                .iter()
                .map(|&i| services[i].backend.as_str())
                .collect();
            backends.sort_unstable();
            backends.dedup();
            if backends.len() <= FEW {
                let old: Kept = before
                    .iter()
                    .filter(|k| backends.contains(&k.0.as_str()))
                    .cloned()
                    .collect();
                let now = service_sets(
                    services
                        .iter()
                        .filter(|s| backends.contains(&s.backend.as_str())),
                );
                let changes = describe(&kept_sets(&old), &now);
                let updates = changed.iter().map(|&i| (i, owned(&services[i]))).collect();
                return (changes, Snapshot::Servers(updates));
            }
        }
        let changes = describe(&kept_sets(before), &service_sets(services));
        (changes, Snapshot::All(kept_of(services)))
    }

    /// Take `snapshot` as what HAProxy now serves.
    pub fn commit(&mut self, snapshot: Snapshot) {
        match snapshot {
            Snapshot::All(kept) => self.backends = Some(kept),
            Snapshot::Servers(updates) => {
                if let Some(kept) = &mut self.backends {
                    for (i, servers) in updates {
                        if let Some(k) = kept.get_mut(i) {
                            k.1 = servers;
                        }
                    }
                }
            }
        }
    }

    /// The diagnostics that are new or changed since the last call, and
    /// the changes they make to the list: "app /x rejected" and "app /x no
    /// longer rejected". The same diagnostics as last time cost one
    /// comparison.
    pub fn diagnostics<'d>(
        &mut self,
        diagnostics: &'d [Diagnostic],
    ) -> (Vec<&'d Diagnostic>, Vec<String>) {
        if self.last == diagnostics {
            return (Vec::new(), Vec::new());
        }
        self.last = diagnostics.to_vec();
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

    /// The change list as it was computed before (a whole snapshot per
    /// reconcile): the reference of the incremental one.
    fn reference(before: Option<&[Service]>, now: &[Service]) -> Vec<String> {
        type Full = BTreeMap<String, BTreeSet<(String, i64)>>;
        let full = |services: &[Service]| {
            let mut out = Full::new();
            for s in services {
                out.entry(s.backend.clone())
                    .or_default()
                    .extend(s.servers.iter().map(|v| (v.ip.clone(), v.port)));
            }
            out
        };
        let now = full(now);
        let Some(before) = before.map(full) else {
            let servers: usize = now.values().map(BTreeSet::len).sum();
            return vec![format!(
                "{} with {}",
                plural(now.len(), "backend"),
                plural(servers, "server")
            )];
        };
        let mut out = Vec::new();
        for (backend, servers) in &now {
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

    #[test]
    fn the_change_list_is_the_one_of_whole_snapshots() {
        // Random steps over 6 backends (two services may share one, ports
        // repeat), each compared with the reference.
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut c = Changes::default();
        let mut before: Option<Vec<Service>> = None;
        let mut aligned = 0;
        for _ in 0..600 {
            let mut now: Vec<Service> = (0..next(7))
                .map(|_| {
                    let ports: Vec<i64> = (0..next(4)).map(|_| next(5) as i64).collect();
                    service(&format!("b{}", next(6)), &ports)
                })
                .collect();
            // Half of the time a membership change of the last services:
            // the same backends at the same places.
            if let Some(last) = before.as_ref().filter(|l| !l.is_empty() && next(2) == 0) {
                now = last.clone();
                let i = next(now.len() as u64) as usize;
                let ports: Vec<i64> = (0..next(4)).map(|_| next(5) as i64).collect();
                now[i] = service(&now[i].backend.clone(), &ports);
                aligned += 1;
            }
            let (changes, snapshot) = c.services(&now);
            assert_eq!(changes, reference(before.as_deref(), &now), "{now:?}");
            if next(4) > 0 {
                c.commit(snapshot);
                before = Some(now);
            }
        }
        assert!(aligned > 100, "{aligned}");
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
