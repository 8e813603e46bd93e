//! The blue/green deployment-group merge (`HAPROXY_DEPLOYMENT_*`, zdd).
//!
//! Apps sharing `HAPROXY_DEPLOYMENT_GROUP=g` become one app `/g`: the *old*
//! app (earlier `HAPROXY_DEPLOYMENT_STARTED_AT`) with the tasks of both, where
//! as many old tasks as the new app has healthy instances (bounded by the
//! target instance count) are marked draining.

use std::borrow::Cow;

use mlb_model::allowlist::{self, Class};
use mlb_model::{App, Diagnostic};

use crate::timestamp::{self, Instant};

use crate::labels::app_label;
use crate::reference::{
    DEPLOYMENT_GROUP as GROUP, DEPLOYMENT_NEW_INSTANCES as NEW_INSTANCES,
    DEPLOYMENT_STARTED_AT as STARTED_AT, DEPLOYMENT_TARGET_INSTANCES as TARGET_INSTANCES,
};

/// Apps in marathon-lb's processing order: apps outside any deployment group
/// in input order, then one merged app per group in first-seen order.
pub(crate) fn merge_deployment_groups<'a>(
    apps: &'a [App],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Cow<'a, App>> {
    let mut plain = Vec::with_capacity(apps.len());
    let mut groups: Vec<(String, App)> = Vec::new();
    for app in apps {
        let Some(group) = app_label(app, GROUP) else {
            plain.push(Cow::Borrowed(app));
            continue;
        };
        // The group becomes the app id: it lands in ACLs and the app map.
        if let Err(refusal) = allowlist::check(Class::AppId, group) {
            diagnostics.push(Diagnostic::error(
                &app.id,
                Some(GROUP),
                format!("value {refusal}; fix the label (the app is left out meanwhile)"),
            ));
            continue;
        }
        let id = if group.starts_with('/') {
            group.to_owned()
        } else {
            format!("/{group}")
        };
        let mut cur = app.clone();
        cur.id = id.clone();
        match groups.iter_mut().find(|(g, _)| *g == id) {
            None => groups.push((id, cur)),
            Some((_, prev)) => match merge_pair(prev, cur) {
                Ok(merged) => *prev = merged,
                Err(message) => diagnostics.push(Diagnostic::error(
                    &app.id,
                    Some(GROUP),
                    format!("cannot merge into deployment group {id}: {message}; app left out"),
                )),
            },
        }
    }
    plain.extend(groups.into_iter().map(|(_, app)| Cow::Owned(app)));
    plain
}

fn started_at(app: &App) -> Result<Option<Instant>, String> {
    match app_label(app, STARTED_AT) {
        None => Ok(None),
        Some(v) => timestamp::parse(v)
            .map(Some)
            .ok_or_else(|| format!("{STARTED_AT}={v:?} is not a date")),
    }
}

fn last_scaling_at(app: &App) -> Result<Instant, String> {
    let v = app
        .last_scaling_at
        .as_deref()
        .ok_or_else(|| format!("app {} has no versionInfo.lastScalingAt", app.id))?;
    timestamp::parse(v).ok_or_else(|| format!("lastScalingAt {v:?} is not a date"))
}

fn merge_pair(prev: &App, cur: App) -> Result<App, String> {
    // A missing date sorts first (datetime.min); on a tie the earlier-seen app is new.
    let (mut old, mut new) = if started_at(prev)? < started_at(&cur)? {
        (prev.clone(), cur.clone())
    } else {
        (cur.clone(), prev.clone())
    };
    let target = if app_label(&new, NEW_INSTANCES).is_some() {
        if last_scaling_at(&old)? > last_scaling_at(&new)? {
            std::mem::swap(&mut old, &mut new);
        }
        let raw = app_label(&new, TARGET_INSTANCES)
            .ok_or_else(|| format!("{TARGET_INSTANCES} is missing"))?;
        raw.trim()
            .parse::<i64>()
            .map_err(|_| format!("{TARGET_INSTANCES}={raw:?} is not an integer"))?
    } else {
        1
    };
    // marathon-lb tests the health checks of the app being added (`cur`), not of `new`.
    let healthy_new = if cur.health_checks.is_empty() {
        new.instances.unwrap_or(0)
    } else {
        new.tasks
            .iter()
            .filter(|t| {
                t.health_results
                    .as_ref()
                    .is_some_and(|r| r.iter().any(|a| *a))
            })
            .count() as i64
    };
    let drainable = (healthy_new + old.instances.unwrap_or(0) - target).max(0);
    let mut old_tasks = std::mem::take(&mut old.tasks);
    old_tasks.sort_by(|a, b| a.id.cmp(&b.id));
    let drain = (old_tasks.len() as i64)
        .min(healthy_new)
        .min(drainable)
        .max(0) as usize;
    for task in &mut old_tasks[..drain] {
        task.draining = true;
    }
    old_tasks.extend(new.tasks);
    old.tasks = old_tasks;
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlb_model::Task;

    fn app(id: &str, started: &str, instances: i64, tasks: &[&str]) -> App {
        App {
            id: id.into(),
            instances: Some(instances),
            labels: vec![
                (GROUP.into(), "g".into()),
                (STARTED_AT.into(), started.into()),
            ],
            tasks: tasks
                .iter()
                .map(|t| Task {
                    id: (*t).into(),
                    ..Task::default()
                })
                .collect(),
            ..App::default()
        }
    }

    #[test]
    fn a_group_that_would_inject_lines_costs_only_its_app() {
        let mut evil = app("/evil", "2021-01-01T00:00:00", 1, &["e1"]);
        evil.labels[0].1 = "g\n  http-request deny".into();
        let apps = vec![evil, app("/blue", "2021-01-01T00:00:00", 1, &["b1"])];
        let mut diags = Vec::new();
        let merged = merge_deployment_groups(&apps, &mut diags);
        let ids: Vec<&str> = merged.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, vec!["/g"]);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].app_id, "/evil");
        assert_eq!(diags[0].label.as_deref(), Some(GROUP));
    }

    #[test]
    fn old_tasks_drain_as_new_instances_arrive() {
        let apps = vec![
            app("/blue", "2021-01-01T00:00:00", 2, &["b2", "b1"]),
            app("/green", "2021-01-02T00:00:00", 1, &["g1"]),
        ];
        let mut diags = Vec::new();
        let merged = merge_deployment_groups(&apps, &mut diags);
        assert!(diags.is_empty());
        assert_eq!(merged.len(), 1);
        let m = &merged[0];
        assert_eq!(m.id, "/g");
        let drained: Vec<_> = m
            .tasks
            .iter()
            .map(|t| (t.id.as_str(), t.draining))
            .collect();
        assert_eq!(drained, vec![("b1", true), ("b2", false), ("g1", false)]);
    }
}
