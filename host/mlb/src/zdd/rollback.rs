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
        let Some(task) = task_ids(&new).into_iter().next() else {
            break;
        };
        let id = task
            .get("id")
            .and_then(|i| i.as_str())
            .unwrap_or_default()
            .to_owned();
        progress.event(&format!("rollback: removing new task {id}"));
        api.kill(std::slice::from_ref(&id), true).await?;
        // Wait until every reachable instance has dropped it.
        while let Some(backend) = &backend {
            let listed = lbs.views().await.iter().flatten().any(|v| {
                let rows = servers(&v.rows, backend);
                task_row(&rows, &task).is_some()
            });
            if !listed {
                break;
            }
            pause(r.step_delay, deadline, "marathon-lb to drop a new task").await?;
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
