//! Rolling a deployment back (after a failure, at the deadline, or by hand
//! with `--rollback`): stop killing; scale the old app back to its target
//! and wait until every old task is healthy; then take the new tasks away
//! one at a time, each only after every reachable marathon-lb instance has
//! dropped the previous one (so the instances re-enable old servers before
//! the last new one goes); finally delete the new app.

use std::time::{Duration, Instant};

use super::api::Api;
use super::error::ZddError;
use super::labels::{backend_name, instances};
use super::lbs::Lbs;
use super::progress::Progress;
use super::stats::{servers, task_row};
use super::step::healthy;
use super::swap::{must_app, pause};

/// What a rollback needs.
#[derive(Debug)]
pub struct Rollback<'a> {
    /// The app to keep.
    pub old_id: &'a str,
    /// The app to remove.
    pub new_id: &'a str,
    /// Instances the old app must have again.
    pub target: u64,
    /// Poll period.
    pub step_delay: Duration,
    /// Time allowed for the whole rollback.
    pub budget: Duration,
}

fn task_ids(app: &serde_json::Value) -> Vec<serde_json::Value> {
    app.get("tasks")
        .and_then(|t| t.as_array())
        .cloned()
        .unwrap_or_default()
}

/// Waits until every reachable instance routes no traffic to `gone` (its
/// server row is absent or in maintenance) and has at least the target
/// number of servers UP, so the old servers are back in rotation before the
/// next new task goes.
async fn wait_for_lbs(
    lbs: &Lbs,
    backend: &str,
    r: &Rollback<'_>,
    deadline: Instant,
    gone: Option<&serde_json::Value>,
    progress: &mut Progress,
) -> Result<(), ZddError> {
    let mut said = None;
    loop {
        let mut waiting = Vec::new();
        for (url, view) in lbs.urls.iter().zip(lbs.views().await) {
            let Ok(view) = view else { continue };
            let rows = servers(&view.rows, backend);
            let up = rows.iter().filter(|r| r.is_up()).count() as u64;
            if gone.is_some_and(|t| task_row(&rows, t).is_some_and(|row| !row.is_maint())) {
                waiting.push(format!("{url} to take the removed task out"));
            } else if up < r.target.min(rows.len() as u64) {
                waiting.push(format!("{url} to have {} servers UP (has {up})", r.target));
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        let what = waiting.join(", ");
        if said.as_ref() != Some(&what) {
            progress.event(&format!("rollback: waiting for {what}"));
            said = Some(what.clone());
        }
        pause(r.step_delay, deadline, &what).await?;
    }
}

/// Run the rollback. `Err` leaves both apps in place.
pub async fn rollback(
    api: &mut Api,
    lbs: &Lbs,
    r: &Rollback<'_>,
    progress: &mut Progress,
) -> Result<(), ZddError> {
    let deadline = Instant::now() + r.budget;
    let old = must_app(api, r.old_id).await?;
    if instances(&old) < r.target {
        progress.event(&format!(
            "rollback: scaling {} back to {} instances",
            r.old_id, r.target
        ));
        api.scale(r.old_id, r.target, true).await?;
    }
    loop {
        let old = must_app(api, r.old_id).await?;
        let ok = task_ids(&old).iter().filter(|t| healthy(&old, t)).count() as u64;
        if ok >= r.target {
            break;
        }
        progress.event(&format!(
            "rollback: waiting for {} to be healthy ({ok}/{})",
            r.old_id, r.target
        ));
        pause(r.step_delay, deadline, "the old app to be healthy again").await?;
    }
    let backend = backend_name(&old);
    loop {
        let Some(new) = api.app(r.new_id).await? else {
            break;
        };
        // Tasks already killed (TASK_KILLING) are left to their grace period.
        let Some(task) = task_ids(&new)
            .into_iter()
            .find(|t| t.get("state").and_then(|s| s.as_str()) != Some("TASK_KILLING"))
        else {
            break;
        };
        if let Some(backend) = &backend {
            wait_for_lbs(lbs, backend, r, deadline, None, progress).await?;
        }
        let id = task
            .get("id")
            .and_then(|i| i.as_str())
            .unwrap_or_default()
            .to_owned();
        progress.event(&format!("rollback: removing new task {id}"));
        if !api.kill(std::slice::from_ref(&id), true).await? {
            progress.event(&format!("rollback: new task {id} is gone already"));
            continue;
        }
        if let Some(backend) = &backend {
            wait_for_lbs(lbs, backend, r, deadline, Some(&task), progress).await?;
        }
    }
    progress.event(&format!("rollback: deleting {}", r.new_id));
    if api.app(r.new_id).await?.is_some() {
        api.delete(r.new_id, true).await?;
    }
    progress.event(&format!(
        "rollback done: {} serves with {} instances",
        r.old_id, r.target
    ));
    Ok(())
}
