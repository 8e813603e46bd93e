//! Marathon's `/v2/apps?embed=apps.tasks` document → [`App`] records.
//!
//! `null` values count as absent (marathon-lb's `cleanup_json` drops every key
//! whose value is null). Each app is decoded on its own, so a malformed app
//! becomes a diagnostic naming it while every other app is kept. A document
//! that is not JSON, or has no `apps` list, is an error for the whole fetch.
//!
//! Bytes that are not UTF-8 cost only the app whose definition holds them
//! (they are replaced by `?` to parse the document, and that app is left
//! out). The Marathon values this module passes on are checked against the
//! allow-list ([`mlb_model::allowlist`]): an app id or a health check that does
//! not fit leaves the app out, a task host or address that does not fit
//! leaves that task out (the app's other tasks keep serving).
//!
//! # Layout
//! - this file: [`normalize_apps`] (two threads), each app's typed decode
//!   and conversion.
//! - `split`: the document split into chunks of apps while it is scanned
//!   (exact: serde_json's checks and errors).
//! - `scan`: the same, faster, for documents of the usual shape.

mod scan;
mod split;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};

use mlb_model::allowlist::{self, Class};
use mlb_model::{App, Diagnostic, HealthCheck, PortMapping, Task};
use serde::Deserialize;

/// Why the whole document was unusable.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// Not JSON, truncated, or not of the shape `{"apps": [...]}`.
    #[error("response is not a Marathon apps document: {0}")]
    Document(#[from] serde_json::Error),
}

/// Apps that could be read, and what was wrong with the others.
#[derive(Debug, Default)]
pub struct Normalized {
    /// Apps in document order.
    pub apps: Vec<App>,
    /// One entry per app or task that was left out.
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawApp {
    id: Option<String>,
    labels: Option<BTreeMap<String, Option<String>>>,
    instances: Option<i64>,
    ports: Option<Vec<Option<i64>>>,
    port_definitions: Option<Vec<Option<RawPortDefinition>>>,
    container: Option<RawContainer>,
    networks: Option<Vec<Option<RawNetwork>>>,
    ip_address: Option<serde_json::Value>,
    health_checks: Option<Vec<RawHealthCheck>>,
    version_info: Option<RawVersionInfo>,
    tasks: Option<Vec<RawTask>>,
}

#[derive(Deserialize)]
struct RawPortDefinition {
    port: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContainer {
    docker: Option<RawDocker>,
    port_mappings: Option<Vec<RawPortMapping>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocker {
    network: Option<String>,
    port_mappings: Option<Vec<RawPortMapping>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPortMapping {
    container_port: Option<i64>,
    host_port: Option<i64>,
    service_port: Option<i64>,
}

#[derive(Deserialize)]
struct RawNetwork {
    mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHealthCheck {
    protocol: Option<String>,
    path: Option<String>,
    port_index: Option<i64>,
    port: Option<i64>,
    timeout_seconds: Option<i64>,
    interval_seconds: Option<i64>,
    grace_period_seconds: Option<i64>,
    max_consecutive_failures: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawVersionInfo {
    last_scaling_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTask {
    id: Option<String>,
    host: Option<String>,
    state: Option<String>,
    ip_addresses: Option<Vec<RawIpAddress>>,
    ports: Option<Vec<Option<i64>>>,
    health_check_results: Option<Vec<RawHealthResult>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIpAddress {
    ip_address: Option<String>,
}

#[derive(Deserialize)]
struct RawHealthResult {
    alive: Option<bool>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: Option<String>,
}

/// `body` with every byte that is not part of valid UTF-8 replaced by `?`
/// (so offsets do not move), and the offsets replaced.
fn repair_utf8(body: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let mut out = body.to_vec();
    let mut bad = Vec::new();
    let mut at = 0;
    while at < out.len() {
        match std::str::from_utf8(&out[at..]) {
            Ok(_) => break,
            Err(e) => {
                let start = at + e.valid_up_to();
                let len = e.error_len().unwrap_or(out.len() - start);
                out[start..start + len].fill(b'?');
                bad.extend(start..start + len);
                at = start + len;
            }
        }
    }
    (out, bad)
}

/// A value that is neither valid nor safely printable is shown escaped.
fn shown(id: &str) -> String {
    id.escape_debug().to_string()
}

/// Decode a `/v2/apps` document. `resolve` maps an agent host name to an IPv4
/// address (the caller does the DNS; `None` when it cannot be resolved).
pub fn normalize_apps(
    body: &[u8],
    resolve: impl FnMut(&str) -> Option<String>,
) -> Result<Normalized, NormalizeError> {
    normalize_with(body, resolve, THREADS)
}

/// How [`normalize_apps`] splits the document and shares the work between
/// two threads.
#[derive(Debug, Clone, Copy)]
struct Threads {
    /// Documents of at least this many bytes are decoded on two threads.
    from_bytes: usize,
    /// Apps handed out at a time.
    chunk: usize,
    /// Try the fast split ([`scan`]) first.
    fast: bool,
}

/// 1 MiB is ~500 apps of a typical document.
const THREADS: Threads = Threads {
    from_bytes: 1 << 20,
    chunk: 64,
    fast: true,
};

/// [`normalize_apps`], sharing the work as `threads` says.
///
/// The document is split into its apps on this thread, chunk by chunk; a
/// helper thread decodes chunks as soon as they are split, and this thread
/// joins in once the split is done. The fast split ([`scan`]) checks all
/// but the apps' texts, which their decode checks; when it finds the
/// document unusual, or an app's text is not JSON, everything is done again
/// with the exact split (a full JSON check, serde_json's errors). The
/// agent-host resolution, which may do I/O through `resolve`, stays on this
/// thread, in document order, after every app is decoded.
fn normalize_with(
    body: &[u8],
    mut resolve: impl FnMut(&str) -> Option<String>,
    threads: Threads,
) -> Result<Normalized, NormalizeError> {
    let repaired;
    let (text, bad_bytes) = match std::str::from_utf8(body) {
        Ok(text) => (text, Vec::new()),
        Err(_) => {
            let (fixed, bad) = repair_utf8(body);
            repaired = String::from_utf8(fixed).expect("repaired to UTF-8");
            (repaired.as_str(), bad)
        }
    };
    let fast = threads
        .fast
        .then(|| {
            decode_all(text, &bad_bytes, threads, |send| {
                scan::split(text, threads.chunk, send)
            })
        })
        .and_then(Result::ok)
        .filter(|chunks| !chunks.iter().flat_map(|(_, d)| d).any(|d| d.not_json));
    let decoded = match fast {
        Some(decoded) => decoded,
        None => decode_all(text, &bad_bytes, threads, |send| {
            split::split(text, threads.chunk, send)
        })?,
    };
    let mut out = Normalized {
        apps: Vec::with_capacity(decoded.iter().map(|(_, d)| d.len()).sum()),
        diagnostics: Vec::new(),
    };
    // Chunk by chunk: no second vector of every decoded app.
    for one in decoded.into_iter().flat_map(|(_, decoded)| decoded) {
        out.diagnostics.extend(one.diagnostics);
        if let Some(mut app) = one.app {
            for task in &mut app.tasks {
                if !task.host.is_empty() {
                    task.host_ip = resolve(&task.host);
                }
            }
            out.apps.push(app);
        }
    }
    Ok(out)
}

/// Every app of `text` as `split` hands them out, decoded on one or two
/// threads: chunks in document order, each with its first app's position.
fn decode_all<'a, E>(
    text: &'a str,
    bad_bytes: &[usize],
    threads: Threads,
    split: impl FnOnce(&mut dyn FnMut(split::Chunk<'a>)) -> Result<(), E>,
) -> Result<Vec<(usize, Vec<Decoded>)>, E> {
    let body = text.as_bytes();
    let (send, queue) = mpsc::channel::<split::Chunk<'_>>();
    let queue = Mutex::new(queue);
    let failed = AtomicBool::new(false);
    // Decode chunks until the split is over and none is left. The lock is
    // held while waiting: only one thread waits for the next chunk.
    let work = || {
        let mut done = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
            let Ok(chunk) = next else {
                return done;
            };
            if failed.load(Ordering::Relaxed) {
                continue;
            }
            let decoded: Vec<Decoded> = (chunk.first..)
                .zip(&chunk.apps)
                .map(|(position, raw)| decode_app(position, raw, body, bad_bytes))
                .collect();
            done.push((chunk.first, decoded));
        }
    };
    let (split, mut done) = std::thread::scope(|scope| {
        let helper = (body.len() >= threads.from_bytes).then(|| scope.spawn(work));
        let split = split(&mut |chunk| {
            // The receiver lives until both threads are done.
            let _ = send.send(chunk);
        });
        drop(send);
        if split.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        let mut done = work();
        if let Some(helper) = helper {
            done.extend(
                helper
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            );
        }
        (split, done)
    });
    split?;
    done.sort_unstable_by_key(|(first, _)| *first);
    Ok(done)
}

/// One app decoded (its tasks' `host_ip` not resolved yet), and what was
/// wrong with it or its tasks.
struct Decoded {
    app: Option<App>,
    diagnostics: Vec<Diagnostic>,
    /// The app's text is not JSON (the whole document is not).
    not_json: bool,
}

/// Decode the app at `position` of the document `body` (`bad_bytes`: the
/// offsets that were not UTF-8).
fn decode_app(position: usize, raw: &str, body: &[u8], bad_bytes: &[usize]) -> Decoded {
    let not_json = || serde_json::from_str::<serde::de::IgnoredAny>(raw).is_err();
    let id_of = || {
        serde_json::from_str::<IdOnly>(raw)
            .ok()
            .and_then(|i| i.id)
            .map_or_else(|| format!("#{position}"), |id| shown(&id))
    };
    let mut diagnostics = Vec::new();
    let start = raw.as_ptr() as usize - body.as_ptr() as usize;
    let span = start..start + raw.len();
    if let Some(at) = bad_bytes.iter().find(|b| span.contains(b)) {
        diagnostics.push(Diagnostic::error(
            &id_of(),
            None,
            format!(
                "app definition holds bytes that are not UTF-8 (at byte {at} of the \
                 response); app left out until Marathon sends valid text"
            ),
        ));
        return Decoded {
            app: None,
            diagnostics,
            not_json: not_json(),
        };
    }
    let mut broken = false;
    let app = match serde_json::from_str::<RawApp>(raw) {
        Ok(app) => match convert_app(app, &mut diagnostics) {
            Ok(app) => Some(app),
            Err(diag) => {
                diagnostics.push(diag);
                None
            }
        },
        Err(err) => {
            broken = err.is_syntax() || err.is_eof() || not_json();
            diagnostics.push(Diagnostic::error(
                &id_of(),
                None,
                format!("app definition cannot be read ({err}); app left out"),
            ));
            None
        }
    };
    Decoded {
        app,
        diagnostics,
        not_json: broken,
    }
}

/// `raw` as an [`App`]; its tasks' `host_ip` are left for the caller to
/// resolve.
fn convert_app(raw: RawApp, diagnostics: &mut Vec<Diagnostic>) -> Result<App, Diagnostic> {
    let Some(id) = raw.id else {
        return Err(Diagnostic::error(
            "(no id)",
            Some("id"),
            "app has no id; left out",
        ));
    };
    if let Err(refusal) = allowlist::check(Class::AppId, &id) {
        return Err(Diagnostic::error(
            &shown(&id),
            Some("id"),
            format!("app id {refusal}; app left out"),
        ));
    }
    let Some(labels) = raw.labels else {
        return Err(Diagnostic::error(
            &id,
            Some("labels"),
            "app has no labels object; left out",
        ));
    };
    let Some(raw_tasks) = raw.tasks else {
        return Err(Diagnostic::error(
            &id,
            Some("tasks"),
            "app has no tasks list (was embed=apps.tasks honoured?); left out",
        ));
    };
    let health_checks = raw
        .health_checks
        .unwrap_or_default()
        .into_iter()
        .map(|c| convert_health_check(&id, c))
        .collect::<Result<Vec<_>, _>>()?;

    let container = raw.container;
    let (docker_network, docker_mappings, container_mappings) = match container {
        Some(c) => {
            let (net, dm) = match c.docker {
                Some(d) => (d.network, d.port_mappings.unwrap_or_default()),
                None => (None, Vec::new()),
            };
            (net, dm, c.port_mappings.unwrap_or_default())
        }
        None => (None, Vec::new(), Vec::new()),
    };
    let mappings = if docker_mappings.is_empty() {
        container_mappings
    } else {
        docker_mappings
    };
    let (has_ip_address, discovery_ports) = ip_address(raw.ip_address.as_ref());

    let mut tasks = Vec::with_capacity(raw_tasks.len());
    for t in raw_tasks {
        let Some(task_id) = t.id else {
            diagnostics.push(Diagnostic::warning(
                &id,
                Some("tasks[].id"),
                "task without id; skipped",
            ));
            continue;
        };
        let Some(host) = t.host else {
            diagnostics.push(Diagnostic::warning(
                &id,
                Some("tasks[].host"),
                format!("task {task_id} has no host; skipped"),
            ));
            continue;
        };
        if let Some((field, refusal)) = std::iter::once(("tasks[].host", host.as_str()))
            .chain(
                t.ip_addresses
                    .iter()
                    .flatten()
                    .filter_map(|a| a.ip_address.as_deref())
                    .map(|a| ("tasks[].ipAddresses[].ipAddress", a)),
            )
            .find_map(|(field, v)| {
                allowlist::check(Class::Address, v)
                    .err()
                    .map(|r| (field, r))
            })
        {
            diagnostics.push(Diagnostic::warning(
                &id,
                Some(field),
                format!("task {} skipped: the address {refusal}", shown(&task_id)),
            ));
            continue;
        }
        tasks.push(Task {
            id: task_id,
            host,
            host_ip: None,
            state: t.state,
            ip_addresses: t
                .ip_addresses
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.ip_address.unwrap_or_default())
                .collect(),
            ports: t.ports.unwrap_or_default().into_iter().flatten().collect(),
            health_results: t
                .health_check_results
                .map(|r| r.into_iter().map(|h| h.alive.unwrap_or(false)).collect()),
            draining: false,
        });
    }

    Ok(App {
        labels: labels
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
        instances: raw.instances,
        ports: raw
            .ports
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect(),
        port_definitions: raw
            .port_definitions
            .map(|defs| defs.into_iter().map(|d| d.and_then(|d| d.port)).collect()),
        port_mappings: mappings
            .into_iter()
            .map(|m| PortMapping {
                container_port: m.container_port,
                host_port: m.host_port,
                service_port: m.service_port,
            })
            .collect(),
        docker_network,
        network_modes: raw
            .networks
            .unwrap_or_default()
            .into_iter()
            .map(|n| n.and_then(|n| n.mode))
            .collect(),
        has_ip_address,
        discovery_ports,
        health_checks,
        last_scaling_at: raw.version_info.and_then(|v| v.last_scaling_at),
        tasks,
        id,
    })
}

fn convert_health_check(app_id: &str, c: RawHealthCheck) -> Result<HealthCheck, Diagnostic> {
    let need = |v: Option<i64>, field: &str| {
        v.ok_or_else(|| {
            Diagnostic::error(
                app_id,
                Some(&format!("healthChecks[].{field}")),
                "health check lacks this field; app left out",
            )
        })
    };
    for (field, value) in [("protocol", &c.protocol), ("path", &c.path)] {
        if let Some(Err(refusal)) = value.as_deref().map(|v| allowlist::check(Class::Word, v)) {
            return Err(Diagnostic::error(
                app_id,
                Some(&format!("healthChecks[].{field}")),
                format!("health check {field} {refusal}; app left out"),
            ));
        }
    }
    Ok(HealthCheck {
        protocol: c.protocol.ok_or_else(|| {
            Diagnostic::error(
                app_id,
                Some("healthChecks[].protocol"),
                "health check lacks a protocol; app left out",
            )
        })?,
        path: c.path,
        port_index: c.port_index,
        port: c.port,
        timeout_seconds: need(c.timeout_seconds, "timeoutSeconds")?,
        interval_seconds: need(c.interval_seconds, "intervalSeconds")?,
        grace_period_seconds: need(c.grace_period_seconds, "gracePeriodSeconds")?,
        max_consecutive_failures: need(c.max_consecutive_failures, "maxConsecutiveFailures")?,
    })
}

/// Whether `ipAddress` is a non-empty object once nulls are dropped, and its
/// discovery port numbers.
fn ip_address(value: Option<&serde_json::Value>) -> (bool, Vec<i64>) {
    let Some(serde_json::Value::Object(map)) = value else {
        return (false, Vec::new());
    };
    if !map.values().any(|v| !v.is_null()) {
        return (false, Vec::new());
    }
    let ports = map
        .get("discovery")
        .and_then(|d| d.get("ports"))
        .and_then(|p| p.as_array())
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("number"))
                .filter_map(|n| n.as_i64().or_else(|| n.as_str()?.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    (true, ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(host: &str) -> Option<String> {
        Some(host.to_owned())
    }

    #[test]
    fn nulls_are_absent_and_bad_apps_cost_only_themselves() {
        let doc = br#"{"apps": [
            {"id": "/ok", "labels": {"A": "1", "B": null}, "tasks": [
                {"id": "t1", "host": "10.0.0.1", "ports": [31000], "state": null}]},
            {"id": "/nolabels", "tasks": []},
            {"id": "/notasks", "labels": {}},
            {"id": "/badtype", "labels": {"A": 1}, "tasks": []}
        ]}"#;
        let n = normalize_apps(doc, ip).unwrap();
        assert_eq!(n.apps.len(), 1);
        assert_eq!(n.apps[0].labels, vec![("A".to_string(), "1".to_string())]);
        assert_eq!(n.apps[0].tasks[0].host_ip.as_deref(), Some("10.0.0.1"));
        let ids: Vec<_> = n.diagnostics.iter().map(|d| d.app_id.as_str()).collect();
        assert_eq!(ids, vec!["/nolabels", "/notasks", "/badtype"]);
    }

    #[test]
    fn task_without_host_is_skipped_with_a_diagnostic() {
        let doc = br#"{"apps": [{"id": "/a", "labels": {}, "tasks": [{"id": "t"}]}]}"#;
        let n = normalize_apps(doc, ip).unwrap();
        assert!(n.apps[0].tasks.is_empty());
        assert_eq!(n.diagnostics[0].label.as_deref(), Some("tasks[].host"));
    }

    #[test]
    fn invalid_utf8_costs_only_the_app_that_holds_it() {
        let mut doc = br#"{"apps": [
            {"id": "/bad", "labels": {"A": "x?y"}, "tasks": []},
            {"id": "/good", "labels": {"A": "caf\u00e9 ok"}, "tasks": []}
        ]}"#
        .to_vec();
        let at = doc.iter().position(|b| *b == b'?').unwrap();
        doc[at] = 0xff;
        assert!(std::str::from_utf8(&doc).is_err());
        let n = normalize_apps(&doc, ip).unwrap();
        let ids: Vec<_> = n.apps.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, vec!["/good"]);
        assert_eq!(n.apps[0].labels[0].1, "caf\u{e9} ok");
        assert_eq!(n.diagnostics.len(), 1);
        assert_eq!(n.diagnostics[0].app_id, "/bad");
        assert!(
            n.diagnostics[0].message.contains("not UTF-8"),
            "{}",
            n.diagnostics[0]
        );
        // Outside any app the document is still unreadable as a whole.
        let mut broken = br#"{"apps": [] }"#.to_vec();
        broken[11] = 0xfe;
        assert!(normalize_apps(&broken, ip).is_err());
    }

    #[test]
    fn values_outside_the_allow_list_cost_their_app_or_task() {
        let doc = br#"{"apps": [
            {"id": "/a\n  http-request deny", "labels": {}, "tasks": []},
            {"id": "/hc", "labels": {}, "tasks": [], "healthChecks": [{"protocol": "HTTP",
              "path": "/h\n  http-request deny", "timeoutSeconds": 1, "intervalSeconds": 1,
              "gracePeriodSeconds": 1, "maxConsecutiveFailures": 1}]},
            {"id": "/ok", "labels": {}, "tasks": [
              {"id": "t1", "host": "10.0.0.1", "ipAddresses": [{"ipAddress": "10.1.0.1\nbackend x"}]},
              {"id": "t2", "host": "agent\u2028x"},
              {"id": "t3", "host": "10.0.0.3", "ipAddresses": [{"ipAddress": "fd00::3"}]}]}
        ]}"#;
        let n = normalize_apps(doc, ip).unwrap();
        assert_eq!(n.apps.len(), 1);
        let tasks: Vec<_> = n.apps[0].tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(tasks, vec!["t3"]);
        let fields: Vec<_> = n
            .diagnostics
            .iter()
            .map(|d| (d.app_id.as_str(), d.label.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("/a\\n  http-request deny", "id"),
                ("/hc", "healthChecks[].path"),
                ("/ok", "tasks[].ipAddresses[].ipAddress"),
                ("/ok", "tasks[].host"),
            ]
        );
    }

    #[test]
    fn truncated_documents_are_errors() {
        assert!(normalize_apps(br#"{"apps": [{"id": "/a""#, ip).is_err());
        assert!(normalize_apps(b"<html>", ip).is_err());
    }

    #[test]
    fn docker_mappings_win_when_not_empty() {
        let doc = br#"{"apps": [{"id": "/a", "labels": {}, "tasks": [],
            "container": {"docker": {"network": "BRIDGE", "portMappings": []},
                          "portMappings": [{"containerPort": 80, "servicePort": 10000}]}}]}"#;
        let n = normalize_apps(doc, ip).unwrap();
        assert_eq!(n.apps[0].docker_network.as_deref(), Some("BRIDGE"));
        assert_eq!(n.apps[0].port_mappings[0].service_port, Some(10000));
    }

    #[test]
    fn the_fast_split_decodes_exactly_what_the_exact_one_does() {
        let outcome = |doc: &[u8], fast| {
            let threads = Threads {
                from_bytes: usize::MAX,
                chunk: 2,
                fast,
            };
            normalize_with(doc, ip, threads)
                .map(|n| (n.apps, n.diagnostics))
                .map_err(|e| e.to_string())
        };
        let base: &[u8] = br#" {"x": {"a": "]}\"["}, "apps": [ {"id": "/a", "labels": {"K\"": "v\\", "B": null},
            "tasks": [{"id": "t", "host": "h", "ports": [1, 2]}]}, {"id": "/b", "labels": {}, "tasks": []},
            1, {"id": "/c", "labels": {"A": "\ud83d\ude00"}, "tasks": [], "instances": 2} ], "y": [null, true, -1.5e3]}
"#;
        assert!(outcome(base, true).is_ok_and(|(apps, _)| apps.len() == 3));
        let mut docs = vec![base.to_vec()];
        for at in 0..base.len() {
            let mut cut = base.to_vec();
            cut.remove(at);
            docs.push(cut);
            for c in *b"\"\\]},x {0" {
                let mut changed = base.to_vec();
                changed[at] = c;
                docs.push(changed);
            }
        }
        for doc in [
            &br#"{"ap\u0070s": [{"id": "/a", "labels": {}, "tasks": []}]}"#[..],
            br#"{"apps": [{"id": "/a", "labels": {"A": "\ud800"}, "tasks": []}]}"#,
            br#"{"apps": [{"id": "/a", "labels": 1, "x": [}, "tasks": []}]}"#,
            br#"{"apps": [{"id": "/a", "id": "/b", "labels": {}, "tasks": []}]}"#,
            br#"{"apps": [], "apps": []}"#,
            br#"[[{"id": "/a", "labels": {}, "tasks": []}]]"#,
            b"{\"apps\": [{\"id\": \"/a\x01\", \"labels\": {}, \"tasks\": []}]}",
            b"{\"apps\": [{\"id\": \"/a\", \"labels\": {\"A\": \"x\xffy\"}, \"tasks\": []}, tru]}",
            b"{\"apps\": [{\"id\": \"/a\", \"labels\": {\"A\": \"x\xffy\"}, \"tasks\": []}, 2]}",
            b"{\"apps\": [{\"id\": \"/a\", \"labels\": {\"A\": \"x\xffy\"}, \"tasks\": [1 2]}]}",
        ] {
            docs.push(doc.to_vec());
        }
        for doc in &docs {
            assert_eq!(
                outcome(doc, true),
                outcome(doc, false),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    #[test]
    fn two_threads_decode_exactly_what_one_does() {
        let mut doc = String::from(r#"{"apps": ["#);
        for i in 0..40 {
            let app = match i % 8 {
                0 => r#"{"labels": {}, "tasks": []}"#.to_owned(),
                1 => format!(r#"{{"id": "/bad{i}", "labels": {{"A": 1}}, "tasks": []}}"#),
                2 => format!(r#"{{"id": "/nohost{i}", "labels": {{}}, "tasks": [{{"id": "t"}}]}}"#),
                3 => format!(r#"{{"id": "/utf{i}", "labels": {{"A": "x?y"}}, "tasks": []}}"#),
                _ => format!(
                    r#"{{"id": "/a{i}", "labels": {{"HAPROXY_GROUP": "external"}}, "tasks": [
                        {{"id": "t{i}", "host": "agent{}", "ports": [{}]}}, {{"id": "u{i}", "host": ""}}]}}"#,
                    i % 3,
                    31000 + i
                ),
            };
            if i > 0 {
                doc.push(',');
            }
            doc.push_str(&app);
        }
        doc.push_str("]}");
        let mut doc = doc.into_bytes();
        for byte in &mut doc {
            if *byte == b'?' {
                *byte = 0xff;
            }
        }
        let run = |threads| {
            let mut asked = Vec::new();
            let n = normalize_with(
                &doc,
                |h: &str| {
                    asked.push(h.to_owned());
                    Some(format!("ip-of-{h}"))
                },
                threads,
            )
            .unwrap();
            (n.apps, n.diagnostics, asked)
        };
        let one = run(Threads {
            from_bytes: usize::MAX,
            chunk: 64,
            fast: false,
        });
        assert_eq!(one.0.len(), 25);
        assert!(one.1.len() >= 20, "{:?}", one.1);
        for chunk in [1, 3, 7, 64] {
            let two = Threads {
                from_bytes: 0,
                chunk,
                fast: chunk % 2 == 1,
            };
            assert_eq!(run(two), one, "chunks of {chunk}");
            // An error after chunks went to the helper: the whole document fails.
            let cut = &doc[..doc.len() - 2];
            assert!(normalize_with(cut, ip, two).is_err());
        }
    }
}
