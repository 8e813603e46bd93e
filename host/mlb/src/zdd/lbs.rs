//! The marathon-lb instances behind `--marathon-lb`: every IPv4 address a
//! URL's host resolves to is one instance (as zdd.py), and what zdd reads
//! from each: `/_haproxy_getpids` and `/haproxy?stats;csv`, with a timeout
//! on every request.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::error::ZddError;
use super::stats::{self, Row};

/// One instance's view: its PIDs and its stats rows.
#[derive(Debug, Clone)]
pub struct LbView {
    /// `/_haproxy_getpids`, split on whitespace.
    pub pids: Vec<String>,
    /// When the PIDs were answered.
    pub read_at: Instant,
    /// Every row of the stats CSV.
    pub rows: Vec<Row>,
}

/// How long an instance's PID list must stay the same before a reload
/// counts as settled: `/_haproxy_getpids` caches `pidof` for 1 s, so two
/// readings this far apart come from two different runs.
pub const PIDS_STABLE: Duration = Duration::from_millis(1200);

/// Processes of a settled instance: HAProxy's master and one worker (zdd.py
/// waits while an instance has more: an old worker finishing its sessions,
/// which the new worker's stats do not show).
pub const SETTLED_PIDS: usize = 2;

/// One instance's PID readings: whether its reloads have settled.
#[derive(Debug, Clone, Default)]
pub struct Settle {
    /// The PIDs last read, and since when they have not changed.
    seen: Option<(Vec<String>, Instant)>,
}

impl Settle {
    /// Record a reading taken at `now`; settled when the instance runs at
    /// most [`SETTLED_PIDS`] processes and the list has not changed for
    /// [`PIDS_STABLE`].
    pub fn observe(&mut self, pids: &[String], now: Instant) -> bool {
        match &self.seen {
            Some((seen, _)) if seen.as_slice() == pids => {}
            _ => self.seen = Some((pids.to_vec(), now)),
        }
        let since = self.seen.as_ref().map_or(now, |(_, t)| *t);
        pids.len() <= SETTLED_PIDS && now.saturating_duration_since(since) >= PIDS_STABLE
    }

    /// After a step: the instance must show a stable list again, from `now`.
    pub fn restart(&mut self, now: Instant) {
        if let Some((_, since)) = &mut self.seen {
            *since = now;
        }
    }
}

/// The instances, with an HTTP client.
#[derive(Debug, Clone)]
pub struct Lbs {
    /// One base URL per instance (`http://10.0.0.1:9090`).
    pub urls: Vec<String>,
    http: reqwest::Client,
}

fn bad(url: &str, message: impl Into<String>) -> ZddError {
    ZddError::LbEndpoint {
        url: url.to_owned(),
        message: message.into(),
    }
}

/// Expand each `--marathon-lb` URL into one URL per IPv4 address of its host.
pub async fn expand(urls: &[String]) -> Result<Vec<String>, ZddError> {
    let mut out = Vec::new();
    for raw in urls {
        let url = reqwest::Url::parse(raw)
            .map_err(|e| ZddError::InvalidArgs(format!("--marathon-lb {raw:?}: {e}")))?;
        let host = url
            .host_str()
            .ok_or_else(|| ZddError::InvalidArgs(format!("--marathon-lb {raw:?}: no host")))?
            .trim_matches(['[', ']'])
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(9090);
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| bad(raw, format!("cannot resolve {host}: {e}")))?
                .map(|a| a.ip())
                .filter(IpAddr::is_ipv4)
                .collect(),
        };
        if addrs.is_empty() {
            return Err(bad(raw, format!("{host} has no IPv4 address")));
        }
        let path = url.path().trim_end_matches('/');
        for ip in addrs {
            let host = match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            let one = format!("{}://{host}:{port}{path}", url.scheme());
            if !out.contains(&one) {
                out.push(one);
            }
        }
    }
    Ok(out)
}

impl Lbs {
    /// Instances at `urls`, every request limited to `timeout`.
    pub fn new(urls: Vec<String>, timeout: Duration) -> Result<Self, ZddError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent("marathon-lb-zdd")
            .build()
            .map_err(|e| ZddError::Unexpected(format!("HTTP client: {e}")))?;
        Ok(Self { urls, http })
    }

    async fn text(&self, url: &str, path: &str) -> Result<String, ZddError> {
        let resp = self
            .http
            .get(format!("{url}{path}"))
            .send()
            .await
            .map_err(|e| bad(url, format!("{path}: {}", e.without_url())))?;
        if !resp.status().is_success() {
            return Err(bad(url, format!("{path} answered {}", resp.status())));
        }
        resp.text()
            .await
            .map_err(|e| bad(url, format!("{path}: {}", e.without_url())))
    }

    /// PIDs and stats of one instance.
    pub async fn view(&self, url: &str) -> Result<LbView, ZddError> {
        let pids = self.text(url, "/_haproxy_getpids").await?;
        let read_at = Instant::now();
        let csv = self.text(url, "/haproxy?stats;csv").await?;
        let rows = stats::parse(&csv).map_err(|e| bad(url, e))?;
        Ok(LbView {
            pids: pids.split_whitespace().map(str::to_owned).collect(),
            read_at,
            rows,
        })
    }

    /// Every instance's view, in `urls` order.
    pub async fn views(&self) -> Vec<Result<LbView, ZddError>> {
        let mut out = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            out.push(self.view(url).await);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pids(p: &str) -> Vec<String> {
        p.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn settled_only_after_a_stable_window_with_one_worker() {
        let t0 = Instant::now();
        let mut s = Settle::default();
        assert!(!s.observe(&pids("1 2"), t0), "first reading");
        assert!(
            !s.observe(&pids("1 2"), t0 + Duration::from_millis(500)),
            "within the cache window"
        );
        assert!(s.observe(&pids("1 2"), t0 + PIDS_STABLE));
        // A reload: an old worker left (3 processes), then it exits.
        let t1 = t0 + PIDS_STABLE * 2;
        assert!(!s.observe(&pids("1 2 3"), t1));
        assert!(
            !s.observe(&pids("1 2 3"), t1 + PIDS_STABLE * 5),
            "old worker still there"
        );
        assert!(!s.observe(&pids("1 3"), t1 + PIDS_STABLE * 6));
        assert!(s.observe(&pids("1 3"), t1 + PIDS_STABLE * 7));
        // After a step the window starts again.
        s.restart(t1 + PIDS_STABLE * 8);
        assert!(!s.observe(&pids("1 3"), t1 + PIDS_STABLE * 8));
        assert!(s.observe(&pids("1 3"), t1 + PIDS_STABLE * 9));
    }
}
