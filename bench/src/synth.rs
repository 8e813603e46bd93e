//! A synthetic, seeded Marathon `/v2/apps?embed=apps.tasks` document.
//!
//! Modelled on `tools/gen_apps.py` (same feature mix and probabilities, not
//! the same bytes: the random generator differs). Agent hosts are IPv4
//! literals, so normalisation never does DNS. The document is written app by
//! app, so generating it costs little more memory than the text itself.
//!
//! Mix per app: networking host 45 % / docker BRIDGE 20 % / Marathon 1.5
//! `container/bridge` 20 % / Marathon 1.5 `container` 13 % / legacy
//! IP-per-task 2 % (at most 10 apps); 1–3 ports (mean 1.35); 1–4 tasks (mean
//! 2.5); `HAPROXY_GROUP` external 85 % / internal 10 % / none 5 %; per port
//! VHOST 50 % (with PATH, REDIRECT_TO_HTTPS, AUTH, ... on some), health checks
//! on 70 % of the apps; ~1 % blue/green pairs.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

/// SplitMix64: small, fast, and the same stream on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn random(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    fn choice<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64 - 1) as usize]
    }

    /// One value of `table`, drawn by weight.
    fn pick<T: Copy>(&mut self, table: &[(u32, T)]) -> T {
        let total: u32 = table.iter().map(|(w, _)| w).sum();
        let mut r = self.random() * f64::from(total);
        for &(w, v) in table {
            r -= f64::from(w);
            if r < 0.0 {
                return v;
            }
        }
        table[table.len() - 1].1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    DockerBridge,
    M15Bridge,
    M15Container,
    LegacyIpPerTask,
}

/// What was generated, besides the text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Apps in the document.
    pub apps: usize,
    /// Service ports over all apps.
    pub ports: usize,
    /// Tasks over all apps.
    pub tasks: usize,
}

struct Gen {
    rng: Rng,
    next_service_port: i64,
    legacy_ippt: usize,
    agents: Vec<String>,
    shared_vhosts: Vec<String>,
    task_seq: u64,
    stats: Stats,
}

/// Generate `n` apps with `seed`. Same `(n, seed)` gives the same bytes.
pub fn generate(n: usize, seed: u64) -> (Vec<u8>, Stats) {
    let agents = (0..(n / 5).max(20))
        .map(|i| format!("10.{}.{}.{}", 1 + i / 65025, (i / 255) % 255, 1 + i % 254))
        .collect();
    let mut g = Gen {
        rng: Rng::new(seed),
        next_service_port: 10000,
        legacy_ippt: 0,
        agents,
        shared_vhosts: (0..(n / 50).max(3))
            .map(|k| format!("shared-{k}.example.test"))
            .collect(),
        task_seq: 0,
        stats: Stats::default(),
    };
    // Compact JSON is about 600 bytes per app.
    let mut out = Vec::with_capacity(n * 700 + 16);
    out.extend_from_slice(b"{\"apps\":[");
    let mut written = 0;
    let mut i = 0;
    while written < n {
        let apps = if n >= 20 && g.rng.random() < 0.01 && written + 2 <= n {
            g.zdd_pair(i)
        } else {
            vec![g.app(i, None, &[], None)]
        };
        for app in apps {
            if written > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, &app).expect("writing to a Vec cannot fail");
            written += 1;
        }
        i += 1;
    }
    out.extend_from_slice(b"]}\n");
    g.stats.apps = written;
    (out, g.stats)
}

fn label(labels: &mut Map<String, Value>, n: usize, key: &str, value: impl Into<String>) {
    labels.insert(format!("HAPROXY_{n}_{key}"), Value::String(value.into()));
}

impl Gen {
    fn service_port(&mut self) -> i64 {
        let mut p = self.next_service_port;
        if (10050..=10100).contains(&p) {
            p = 10101;
        }
        self.next_service_port = p + 1;
        p
    }

    fn health_check(&mut self, nports: usize) -> Vec<Value> {
        let rng = &mut self.rng;
        let proto = rng.pick(&[
            (40, Some("HTTP")),
            (15, Some("TCP")),
            (10, Some("MESOS_HTTP")),
            (5, Some("COMMAND")),
            (30, None),
        ]);
        let Some(proto) = proto else {
            return Vec::new();
        };
        let mut hc = json!({
            "protocol": proto,
            "gracePeriodSeconds": rng.choice(&[10, 30, 60, 300]),
            "intervalSeconds": rng.choice(&[2, 5, 10, 30]),
            "timeoutSeconds": rng.choice(&[2, 5, 10, 20]),
            "maxConsecutiveFailures": rng.choice(&[0, 1, 3, 10]),
        });
        if matches!(proto, "HTTP" | "MESOS_HTTP") {
            hc["path"] = json!(rng.choice(&["/", "/health", "/status", "/ping"]));
        }
        if proto == "COMMAND" {
            hc["command"] = json!({"value": "curl -f http://$HOST:$PORT0/"});
        } else {
            let index = if nports > 1 && rng.random() < 0.2 {
                1
            } else {
                0
            };
            hc["portIndex"] = json!(index);
        }
        vec![hc]
    }

    fn port_labels(
        &mut self,
        labels: &mut Map<String, Value>,
        n: usize,
        name: &str,
        nports: usize,
    ) {
        let rng = &mut self.rng;
        if rng.random() < 0.5 {
            let r = rng.random();
            let vhost = if r < 0.15 {
                label(labels, n, "PATH", format!("/{name}"));
                rng.choice(&self.shared_vhosts).clone()
            } else if r < 0.40 {
                format!("{name}-p{n}.example.test,www.{name}-p{n}.example.test")
            } else {
                format!("{name}-p{n}.example.test")
            };
            label(labels, n, "VHOST", vhost);
            if !labels.contains_key(&format!("HAPROXY_{n}_PATH")) && rng.random() < 0.2 {
                let path = *rng.choice(&["/api", "/v1", "/static", "-i /a /b"]);
                label(labels, n, "PATH", path);
            }
            if rng.random() < 0.15 {
                label(labels, n, "REDIRECT_TO_HTTPS", "true");
            }
            if rng.random() < 0.05 {
                let hash = rng.next_u64() as u32;
                label(
                    labels,
                    n,
                    "AUTH",
                    format!("realm{n}:user{n}:$6$salt${hash:08x}"),
                );
            }
            if rng.random() < 0.05 {
                label(labels, n, "USE_HSTS", "true");
            }
            let r = rng.random();
            if r < 0.02 {
                label(
                    labels,
                    n,
                    "HTTP_BACKEND_PROXYPASS_PATH",
                    format!("/proxy/{name}"),
                );
            } else if r < 0.04 {
                label(
                    labels,
                    n,
                    "HTTP_BACKEND_REVPROXY_PATH",
                    format!("/rev/{name}"),
                );
            } else if r < 0.06 {
                label(labels, n, "HTTP_BACKEND_REDIR", "/home");
            }
        } else if rng.random() < 0.1 {
            label(labels, n, "MODE", "http");
        }
        if rng.random() < 0.10 {
            label(labels, n, "STICKY", "true");
        }
        let r = rng.random();
        if r < 0.10 {
            label(labels, n, "BALANCE", "leastconn");
        } else if r < 0.15 {
            label(labels, n, "BALANCE", "source");
        }
        if rng.random() < 0.05 {
            label(labels, n, "BACKEND_WEIGHT", rng.range(1, 10).to_string());
        }
        if rng.random() < 0.03 {
            label(labels, n, "SSL_CERT", format!("/etc/ssl/{name}.pem"));
        }
        if rng.random() < 0.03 {
            label(labels, n, "BIND_OPTIONS", "accept-proxy");
        }
        if rng.random() < 0.03 {
            label(labels, n, "BIND_ADDR", "0.0.0.0");
        }
        if rng.random() < 0.03 {
            label(
                labels,
                n,
                "BACKEND_NETWORK_ALLOWED_ACL",
                "10.0.0.0/8 192.168.0.0/16",
            );
        }
        let r = rng.random();
        if r < 0.02 {
            label(labels, n, "ENABLED", "false");
        } else if r < 0.32 {
            label(labels, n, "ENABLED", "true");
        }
        if rng.random() < 0.03 {
            let group = *rng.choice(&["external", "internal", "external,internal"]);
            label(labels, n, "GROUP", group);
        }
        if rng.random() < 0.02 {
            label(
                labels,
                n,
                "BACKEND_HEAD",
                "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  timeout server 90s\n",
            );
        }
        if rng.random() < 0.01 {
            label(
                labels,
                n,
                "FRONTEND_HEAD",
                "\nfrontend {backend}\n  bind {bindAddr}:{servicePort}{sslCert}{bindOptions}\n  \
                 mode {mode}\n  maxconn 2000\n",
            );
        }
        if rng.random() < 0.01 {
            label(
                labels,
                n,
                "BACKEND_SERVER_OPTIONS",
                "  server {serverName} {host_ipv4}:{port}{cookieOptions}\
                 {healthCheckOptions}{otherOptions} maxconn 100\n",
            );
        }
        if nports > 1 && n == 0 && rng.random() < 0.1 {
            labels.insert(
                "HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX".into(),
                Value::String("1".into()),
            );
        }
    }

    fn app(
        &mut self,
        i: usize,
        app_id: Option<String>,
        labels_extra: &[(String, String)],
        kind: Option<Kind>,
    ) -> Value {
        let name = format!("svc-{i:05}");
        let app_id = app_id.unwrap_or_else(|| {
            if !i.is_multiple_of(3) {
                format!("/team-{:02}/{name}", i % 23)
            } else {
                format!("/{name}")
            }
        });
        let nports = self.rng.pick(&[(70, 1usize), (25, 2), (5, 3)]);
        let kind = kind.unwrap_or_else(|| {
            let k = self.rng.pick(&[
                (45, Kind::Host),
                (20, Kind::DockerBridge),
                (20, Kind::M15Bridge),
                (13, Kind::M15Container),
                (2, Kind::LegacyIpPerTask),
            ]);
            if k == Kind::LegacyIpPerTask {
                if self.legacy_ippt >= 10 {
                    return Kind::Host;
                }
                self.legacy_ippt += 1;
            }
            k
        });
        let mut labels = Map::new();
        let r = self.rng.random();
        if r < 0.85 {
            labels.insert("HAPROXY_GROUP".into(), json!("external"));
        } else if r < 0.95 {
            labels.insert("HAPROXY_GROUP".into(), json!("internal"));
        }
        for n in 0..nports {
            self.port_labels(&mut labels, n, &name, nports);
        }
        for (k, v) in labels_extra {
            labels.insert(k.clone(), json!(v));
        }
        let sports: Vec<i64> = (0..nports).map(|_| self.service_port()).collect();
        let cports: Vec<i64> = (0..nports as i64).map(|k| 8080 + k).collect();
        let mut app = json!({
            "id": app_id,
            "cmd": format!("run-{name}"),
            "cpus": 0.1,
            "mem": 64,
            "labels": labels,
            "version": "2020-01-01T00:00:00.000Z",
            "versionInfo": {
                "lastScalingAt": format!("2020-01-01T00:{:02}:00.000Z", i % 60),
                "lastConfigChangeAt": "2020-01-01T00:00:00.000Z",
            },
        });
        let named = |k: usize| format!("p{k}");
        match kind {
            Kind::Host => {
                app["portDefinitions"] = sports
                    .iter()
                    .enumerate()
                    .map(|(k, p)| json!({"port": p, "protocol": "tcp", "name": named(k)}))
                    .collect();
            }
            Kind::DockerBridge => {
                let mappings: Vec<Value> = cports
                    .iter()
                    .zip(&sports)
                    .map(|(c, p)| {
                        json!({"containerPort": c, "hostPort": 0, "servicePort": p, "protocol": "tcp"})
                    })
                    .collect();
                app["container"] = json!({"type": "DOCKER", "docker": {
                    "image": format!("example/{name}:1"), "network": "BRIDGE",
                    "portMappings": mappings}});
            }
            Kind::M15Bridge => {
                let mappings: Vec<Value> = cports
                    .iter()
                    .zip(&sports)
                    .enumerate()
                    .map(|(k, (c, p))| {
                        json!({"containerPort": c, "hostPort": 0, "servicePort": p,
                               "protocol": "tcp", "name": named(k)})
                    })
                    .collect();
                app["container"] = json!({"type": "MESOS", "portMappings": mappings});
                app["networks"] = json!([{"mode": "container/bridge"}]);
            }
            Kind::M15Container => {
                let mappings: Vec<Value> = cports
                    .iter()
                    .zip(&sports)
                    .enumerate()
                    .map(|(k, (c, p))| {
                        json!({"containerPort": c, "servicePort": p, "protocol": "tcp",
                               "name": named(k)})
                    })
                    .collect();
                app["container"] = json!({"type": "DOCKER",
                    "docker": {"image": format!("example/{name}:1")},
                    "portMappings": mappings});
                app["networks"] = json!([{"mode": "container", "name": "overlay"}]);
            }
            Kind::LegacyIpPerTask => {
                let ports: Vec<Value> = cports
                    .iter()
                    .enumerate()
                    .map(|(k, c)| json!({"number": c, "name": named(k), "protocol": "tcp"}))
                    .collect();
                app["ipAddress"] = json!({"networkName": "overlay", "discovery": {"ports": ports}});
                app["portDefinitions"] = json!([]);
            }
        }
        let checks = self.health_check(nports);
        let has_checks = !checks.is_empty();
        app["healthChecks"] = Value::Array(checks);
        let ntasks = self.rng.range(1, 4) as usize;
        app["instances"] = json!(ntasks);
        let mut tasks = Vec::with_capacity(ntasks);
        for _ in 0..ntasks {
            self.task_seq += 1;
            let rng = &mut self.rng;
            let host = rng.choice(&self.agents).clone();
            let mut tid = String::new();
            let _ = write!(
                tid,
                "{}.{:08x}-{}",
                app_id[1..].replace('/', "_"),
                rng.next_u64() as u32,
                self.task_seq
            );
            let state = rng.pick(&[
                (90, "TASK_RUNNING"),
                (3, "TASK_STAGING"),
                (3, "TASK_STARTING"),
                (2, "TASK_KILLING"),
                (2, "TASK_UNREACHABLE"),
            ]);
            let mut task = json!({
                "id": tid, "appId": app_id, "host": host,
                "slaveId": format!("agent-{host}"),
                "stagedAt": "2020-01-01T00:00:00.000Z",
                "startedAt": "2020-01-01T00:00:05.000Z",
                "version": "2020-01-01T00:00:00.000Z",
                "state": state,
            });
            task["ports"] = if matches!(kind, Kind::Host | Kind::DockerBridge | Kind::M15Bridge) {
                (0..nports)
                    .map(|_| json!(rng.range(20000, 32000)))
                    .collect()
            } else {
                json!([])
            };
            if kind != Kind::Host {
                let ip = format!(
                    "172.{}.{}.{}",
                    16 + rng.range(0, 15),
                    rng.range(0, 255),
                    rng.range(1, 254)
                );
                task["ipAddresses"] = json!([{"ipAddress": ip, "protocol": "IPv4"}]);
            }
            if has_checks {
                let r = rng.random();
                if r < 0.90 {
                    task["healthCheckResults"] =
                        json!([{"alive": true, "taskId": tid, "consecutiveFailures": 0}]);
                } else if r < 0.95 {
                    task["healthCheckResults"] =
                        json!([{"alive": false, "taskId": tid, "consecutiveFailures": 3}]);
                }
            }
            tasks.push(task);
        }
        self.stats.ports += nports;
        self.stats.tasks += ntasks;
        app["tasks"] = Value::Array(tasks);
        app["deployments"] = json!([]);
        app
    }

    fn zdd_pair(&mut self, i: usize) -> Vec<Value> {
        let group = format!("zdd-{i:05}");
        let port = self.service_port();
        let alt = self.service_port();
        let mut apps = Vec::with_capacity(2);
        for (colour, started, sp) in [
            ("blue", "2020-01-01T00:00:00", port),
            ("green", "2020-01-02T00:00:00", alt),
        ] {
            let extra: Vec<(String, String)> = [
                ("HAPROXY_GROUP", "external".to_owned()),
                ("HAPROXY_DEPLOYMENT_GROUP", group.clone()),
                ("HAPROXY_DEPLOYMENT_ALT_PORT", alt.to_string()),
                ("HAPROXY_DEPLOYMENT_COLOUR", colour.to_owned()),
                ("HAPROXY_DEPLOYMENT_STARTED_AT", started.to_owned()),
                ("HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "3".to_owned()),
                ("HAPROXY_DEPLOYMENT_NEW_INSTANCES", "0".to_owned()),
                ("HAPROXY_0_PORT", port.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            let before = self.stats.ports;
            let mut a = self.app(
                i,
                Some(format!("/{group}-{colour}")),
                &extra,
                Some(Kind::Host),
            );
            // One port with a fixed service port.
            self.stats.ports = before + 1;
            a["portDefinitions"] = json!([{"port": sp, "protocol": "tcp"}]);
            if let Some(tasks) = a["tasks"].as_array_mut() {
                for t in tasks {
                    if let Some(ports) = t["ports"].as_array_mut() {
                        ports.truncate(1);
                    }
                }
            }
            if let Some(labels) = a["labels"].as_object_mut() {
                labels.retain(|k, _| {
                    !(k.starts_with("HAPROXY_1_")
                        || k.starts_with("HAPROXY_2_")
                        || k == "HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX")
                });
            }
            if let Some(checks) = a["healthChecks"].as_array_mut() {
                for hc in checks {
                    if hc["portIndex"].as_i64().unwrap_or(0) > 0 {
                        hc["portIndex"] = json!(0);
                    }
                }
            }
            apps.push(a);
        }
        apps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_readable() {
        let (a, sa) = generate(200, 7);
        let (b, _) = generate(200, 7);
        assert_eq!(a, b);
        assert_eq!(sa.apps, 200);
        let n = mlb_core::normalize_apps(&a, |h| Some(h.to_owned())).expect("valid document");
        assert_eq!(n.apps.len(), 200);
        assert!(n.diagnostics.is_empty(), "{:?}", n.diagnostics);
    }
}
