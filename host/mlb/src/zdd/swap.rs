//! The swap loop: every `--step-delay`, read both apps from Marathon and
//! every marathon-lb instance, wait for HAProxy reloads to settle (at most a
//! master and one worker, the PID list unchanged for
//! [`super::lbs::PIDS_STABLE`]: see [`Settle`]), let [`step::decide`] choose, then
//! run the pre-kill hook, kill, scale — until the old app can be deleted.
//! Every wait is bounded by `--deadline`; an instance that stays
//! unreachable for three rounds stops the deployment.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::api::Api;
use super::error::ZddError;
use super::labels::{backend_name, instances};
use super::lbs::{LbView, Lbs, Settle};
use super::progress::{Progress, State};
use super::pyjson;
use super::stats::{Row, servers};
use super::step::{self, Decision, LbCounts, View};

/// Rounds an instance may be unreachable before the deployment stops.
const LB_FAILURES: u32 = 3;

/// How the swap runs.
#[derive(Debug, Clone)]
pub struct SwapSettings {
    /// `--step-delay`.
    pub step_delay: Duration,
    /// `--max-wait` (per drain wait).
    pub max_wait: Duration,
    /// `--deadline`, from the start.
    pub deadline: Instant,
    /// `--linear-increase`.
    pub linear: u64,
    /// Hybrid / canary.
    pub hybrid: bool,
    /// `--force` (else prompt before kills and the delete).
    pub force: bool,
    /// `--pre-kill-hook`.
    pub pre_kill_hook: Option<PathBuf>,
}

/// How a swap ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Done (old app deleted, or hybrid target reached).
    Done,
    /// The operator said no at a prompt.
    Declined,
}

/// Fetch an app that must exist.
pub async fn must_app(api: &mut Api, id: &str) -> Result<Value, ZddError> {
    api.app(id)
        .await?
        .ok_or_else(|| ZddError::Marathon(format!("app {id} does not exist (any more)")))
}

/// Sleep one step, or fail if the deadline passed.
pub async fn pause(delay: Duration, deadline: Instant, what: &str) -> Result<(), ZddError> {
    let now = Instant::now();
    if now >= deadline {
        return Err(ZddError::Unexpected(format!(
            "--deadline reached while waiting for {what}"
        )));
    }
    tokio::time::sleep(delay.min(deadline - now)).await;
    Ok(())
}

fn healthy_count(app: &Value) -> u64 {
    app.get("tasks")
        .and_then(Value::as_array)
        .map(|ts| ts.iter().filter(|t| step::healthy(app, t)).count() as u64)
        .unwrap_or(0)
}

/// Ask on stdout, read a line from stdin; Enter means yes.
pub fn confirm(question: &str) -> bool {
    use std::io::Write;
    loop {
        print!("{question} [Y/n] ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "" | "y" | "ye" | "yes" => return true,
            "n" | "no" => return false,
            _ => println!("Please respond with 'yes' or 'no' (or 'y' or 'n')."),
        }
    }
}

/// `hook old_app_json tasks_json new_app_json`, as zdd.py calls it; killed
/// at the deadline.
async fn pre_kill_hook(
    hook: &PathBuf,
    (old, ids, new): (&Value, &[String], &Value),
    deadline: Instant,
) -> Result<(), ZddError> {
    let failed =
        |what: String| ZddError::Unexpected(format!("pre-kill hook {}: {what}", hook.display()));
    let mut child = tokio::process::Command::new(hook)
        .arg(pyjson::compact(old))
        .arg(pyjson::compact(&serde_json::json!(ids)))
        .arg(pyjson::compact(new))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    let left = deadline.saturating_duration_since(Instant::now());
    let status = match tokio::time::timeout(left, child.wait()).await {
        Ok(status) => status.map_err(|e| failed(e.to_string()))?,
        Err(_) => return Err(failed("still running at the --deadline".into())),
    };
    if !status.success() {
        return Err(failed(format!("exited with {status}; stopping")));
    }
    Ok(())
}

/// Run the swap of `old_id` → `new_id` to its end.
pub async fn swap(
    api: &mut Api,
    lbs: &Lbs,
    s: &SwapSettings,
    progress: &mut Progress,
    new_id: &str,
    old_id: &str,
) -> Result<Ended, ZddError> {
    let mut settle: Vec<Settle> = vec![Settle::default(); lbs.urls.len()];
    let mut lb_failures = vec![0u32; lbs.urls.len()];
    let mut drain_wait_since: Option<Instant> = None;
    loop {
        let old = must_app(api, old_id).await?;
        let new = must_app(api, new_id).await?;
        let backend = backend_name(&old).ok_or_else(|| {
            ZddError::missing(
                "HAPROXY_0_PORT",
                format!("app {old_id} has no HAPROXY_DEPLOYMENT_GROUP / HAPROXY_0_PORT labels"),
            )
        })?;
        let views = lbs.views().await;
        let mut settled = true;
        for (i, v) in views.iter().enumerate() {
            match v {
                Ok(view) => {
                    lb_failures[i] = 0;
                    settled &= settle[i].observe(&view.pids, view.read_at);
                }
                Err(e) => {
                    lb_failures[i] += 1;
                    tracing::warn!(target: "zdd", "{e}");
                    if lb_failures[i] >= LB_FAILURES {
                        return Err(ZddError::LbEndpoint {
                            url: lbs.urls[i].clone(),
                            message: format!("unreachable {LB_FAILURES} times in a row ({e})"),
                        });
                    }
                }
            }
        }
        let ok_views: Vec<&LbView> = views.iter().filter_map(|v| v.as_ref().ok()).collect();
        let rows: Vec<Vec<&Row>> = ok_views
            .iter()
            .map(|v| servers(&v.rows, &backend))
            .collect();
        let view = View {
            old: &old,
            new: &new,
            lbs: &rows,
            hybrid: s.hybrid,
            drain_timed_out: drain_wait_since.is_some_and(|t| t.elapsed() >= s.max_wait),
            linear: s.linear,
        };
        let all_ok = ok_views.len() == lbs.urls.len();
        let decision = match step::decide(&view) {
            fail @ Decision::Fail(_) => fail,
            _ if !all_ok => Decision::Wait("every marathon-lb instance to answer".into()),
            _ if !settled => Decision::Wait("HAProxy reloads to settle".into()),
            decision => decision,
        };
        let counts = step::counts(&view);
        let mut counts = counts.into_iter();
        let lb_state: Vec<(&str, Option<LbCounts>)> = views
            .iter()
            .zip(&lbs.urls)
            .map(|(v, url)| (url.as_str(), v.as_ref().ok().and_then(|_| counts.next())))
            .collect();
        let doing = match &decision {
            Decision::Wait(w) => format!("waiting for {w}"),
            Decision::Step { kill, scale } => format!(
                "killing {} drained old task(s){}",
                kill.len(),
                scale
                    .map(|n| format!(", scaling new to {n}"))
                    .unwrap_or_default()
            ),
            Decision::Complete => "complete".to_owned(),
            Decision::Fail(why) => format!("failing: {why}"),
        };
        progress.state(&State {
            old_id,
            old: (instances(&old), healthy_count(&old)),
            new_id,
            new: (instances(&new), healthy_count(&new)),
            lbs: lb_state,
            doing: &doing,
        });
        match decision {
            Decision::Fail(why) => return Err(ZddError::Unexpected(why)),
            Decision::Wait(w) => {
                if w.starts_with("old tasks to drain") {
                    drain_wait_since.get_or_insert_with(Instant::now);
                }
                pause(s.step_delay, s.deadline, &w).await?;
                continue;
            }
            Decision::Complete if s.hybrid => {
                progress.event("hybrid deployment complete; both apps keep running");
                return Ok(Ended::Done);
            }
            Decision::Complete => {
                progress.event(&format!("deleting old app {old_id}"));
                if !s.force && !confirm("Continue?") {
                    return Ok(Ended::Declined);
                }
                api.delete(old_id, false).await?;
                progress.event(&format!("deleted {old_id}; {new_id} serves"));
                return Ok(Ended::Done);
            }
            Decision::Step { kill, scale } => {
                drain_wait_since = None;
                if !kill.is_empty() {
                    if let Some(hook) = &s.pre_kill_hook {
                        progress.event(&format!("calling pre-kill hook {}", hook.display()));
                        pre_kill_hook(hook, (&old, &kill, &new), s.deadline).await?;
                    }
                    progress.event(&format!("killing drained old tasks: {}", kill.join(", ")));
                    if !s.force && !confirm("Continue?") {
                        return Ok(Ended::Declined);
                    }
                    if !api.kill(&kill, false).await? {
                        // One of them died meanwhile: nothing was killed;
                        // the next round sees what Marathon did about it.
                        progress.event("an old task is gone already; nothing killed");
                    }
                }
                if let Some(n) = scale {
                    progress.event(&format!("scaling {new_id} to {n} instances"));
                    api.scale(new_id, n, false).await?;
                }
                // New state: the instances must show settled PIDs again.
                let now = Instant::now();
                settle.iter_mut().for_each(|p| p.restart(now));
                pause(s.step_delay, s.deadline, "the next step").await?;
            }
        }
    }
}
