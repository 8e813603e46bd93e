//! Reusing the default rules' output for unchanged apps gives exactly what
//! a full interpretation gives, on every corpus input, across changes —
//! and sends only changed or inter-dependent apps. Likewise, the default
//! plugin split into small batches run two at a time gives what one call
//! gives.

use crate::support;

use mlb_core::{Interpretation, LabelInterpreter, normalize_apps};
use mlb_model::{App, InterpretOptions};
use mlb_plugin_host::{Memoized, NativeLabelRules, PluginLimits, Split};

fn options(groups: &[&str]) -> InterpretOptions {
    InterpretOptions {
        groups: groups.iter().map(|g| g.to_string()).collect(),
        min_serv_port_ip_per_task: 10050,
        max_serv_port_ip_per_task: 10100,
        ..InterpretOptions::default()
    }
}

/// Services and diagnostics in a canonical order.
fn canonical(i: Interpretation) -> (Vec<String>, Vec<String>) {
    let mut s: Vec<String> = i.services.iter().map(|s| format!("{s:?}")).collect();
    let mut d: Vec<String> = i.diagnostics.iter().map(|d| format!("{d:?}")).collect();
    s.sort();
    d.sort();
    (s, d)
}

/// Variations of `apps` a reconcile could see next.
fn changes(apps: &[App]) -> Vec<Vec<App>> {
    let mut out = Vec::new();
    if let Some(first) = apps.first() {
        let mut fewer_tasks = apps.to_vec();
        fewer_tasks[0]
            .tasks
            .truncate(first.tasks.len().saturating_sub(1));
        out.push(fewer_tasks);
        let mut relabelled = apps.to_vec();
        relabelled[0]
            .labels
            .push(("HAPROXY_0_VHOST".into(), "changed.example.com".into()));
        out.push(relabelled);
        out.push(apps[1..].to_vec());
    }
    let mut reversed = apps.to_vec();
    reversed.reverse();
    out.push(reversed);
    out.push(apps.to_vec());
    out
}

/// The apps of every corpus input that normalises.
fn corpus() -> Vec<(std::path::PathBuf, Vec<App>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(support::golden_dir()).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        if let Ok(normalized) = normalize_apps(&body, |h| Some(h.to_owned())) {
            out.push((path, normalized.apps));
        }
    }
    out
}

#[test]
fn reuse_equals_full_interpretation_on_the_corpus() {
    let mut files = 0;
    for (path, apps) in corpus() {
        for opts in [options(&["*"]), options(&["external"])] {
            let mut memo = Memoized::new(NativeLabelRules);
            let mut seen = vec![apps.clone()];
            seen.extend(changes(&apps));
            for (step, input) in seen.iter().enumerate() {
                let reused = canonical(memo.interpret(input, &opts).unwrap());
                let full = canonical(NativeLabelRules.interpret(input, &opts).unwrap());
                assert_eq!(reused, full, "{} step {step}", path.display());
            }
            // The same input again: only inter-dependent apps are sent.
            memo.interpret(&apps, &opts).unwrap();
            memo.interpret(&apps, &opts).unwrap();
            let groups: Vec<String> = apps.iter().filter_map(group).collect();
            let dependent = apps
                .iter()
                .filter(|a| !mlb_label_rules::stands_alone(a) || groups.contains(&a.id))
                .count();
            assert!(
                memo.last_sent() == dependent,
                "{}: sent {} of {} apps ({dependent} dependent)",
                path.display(),
                memo.last_sent(),
                apps.len()
            );
        }
        files += 1;
    }
    assert!(files >= 60, "only {files} corpus inputs");
}

#[test]
fn batches_two_at_a_time_equal_one_call_on_the_corpus() {
    // Batches of 2 apps: every corpus input with more than 2 apps is split,
    // blue/green members and IP-per-task apps included.
    let mut plugin = support::default_plugin(PluginLimits::default())
        .unwrap()
        .split_independent(Split {
            workers: 2,
            batch_apps: 2,
        });
    let mut split_inputs = 0;
    for (path, apps) in corpus() {
        if apps.len() > 2 {
            split_inputs += 1;
        }
        for opts in [options(&["*"]), options(&["external"])] {
            for input in std::iter::once(apps.clone()).chain(changes(&apps)) {
                let one = canonical(plugin.call(&input, &[], &opts).unwrap());
                let split = canonical(plugin.interpret(&input, &opts).unwrap());
                assert_eq!(split, one, "{}", path.display());
            }
        }
    }
    assert!(split_inputs >= 20, "only {split_inputs} inputs were split");
}

/// `interpret_changed` with one app changed gives that app's share of a
/// full interpretation of the changed batch, and the memo stays right for
/// the next full call; it declines (`None`) exactly where the app's result
/// may depend on other apps, and when the options changed.
#[test]
fn changed_apps_alone_equal_their_share_of_a_full_interpretation() {
    let (mut answered, mut declined) = (0, 0);
    for (path, apps) in corpus() {
        let opts = options(&["*"]);
        for i in 0..apps.len() {
            let mut memo = Memoized::new(NativeLabelRules);
            memo.interpret(&apps, &opts).unwrap();
            let mut changed = apps[i].clone();
            changed
                .tasks
                .truncate(changed.tasks.len().saturating_sub(1));
            let mut now = apps.clone();
            now[i] = changed.clone();
            let full = NativeLabelRules.interpret(&now, &opts).unwrap();
            let groups: Vec<String> = apps.iter().filter_map(group).collect();
            let alone = |a: &App| mlb_label_rules::stands_alone(a) && !groups.contains(&a.id);
            match memo.interpret_changed(std::slice::from_ref(&changed), &opts) {
                Some(result) => {
                    assert!(
                        alone(&apps[i]),
                        "{}: app {} depends on others",
                        path.display(),
                        apps[i].id
                    );
                    let share = Interpretation {
                        services: full
                            .services
                            .iter()
                            .filter(|s| s.app_id == changed.id)
                            .cloned()
                            .collect(),
                        diagnostics: full
                            .diagnostics
                            .iter()
                            .filter(|d| d.app_id == changed.id)
                            .cloned()
                            .collect(),
                    };
                    assert_eq!(
                        canonical(result.unwrap()),
                        canonical(share),
                        "{}",
                        path.display()
                    );
                    answered += 1;
                }
                None => {
                    assert!(
                        !alone(&apps[i]),
                        "{}: app {} declined",
                        path.display(),
                        apps[i].id
                    );
                    declined += 1;
                }
            }
            // The memo's next full answer is still the full interpretation.
            let reused = canonical(memo.interpret(&now, &opts).unwrap());
            assert_eq!(reused, canonical(full), "{}", path.display());
            assert!(
                memo.interpret_changed(&now[..1], &options(&["external"]))
                    .is_none()
            );
        }
    }
    assert!(
        answered > 50 && declined > 5,
        "{answered} answered, {declined} declined"
    );
}

/// The id an app's services carry in a deployment group.
fn group(app: &App) -> Option<String> {
    let (_, g) = app
        .labels
        .iter()
        .find(|(k, _)| k == "HAPROXY_DEPLOYMENT_GROUP")?;
    Some(if g.starts_with('/') {
        g.clone()
    } else {
        format!("/{g}")
    })
}
