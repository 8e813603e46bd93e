//! One zdd run: load and check the app JSON, find the group's previous
//! deploys, then a new deploy (print the app JSON, preflight, `POST`, swap),
//! a resume (`--resume`, `--complete-cur`, `--complete-prev`) or a
//! `--rollback`. A failed swap is rolled back.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::api::Api;
use super::cli::ZddArgs;
use super::error::ZddError;
use super::labels::{self, Counts, app_id, group, instances, target_instances};
use super::lbs::{self, Lbs};
use super::progress::Progress;
use super::rollback::{Rollback, rollback};
use super::swap::{Ended, SwapSettings, confirm, swap};
use super::{preflight, pyjson};
use mlb_marathon::MarathonClient;
use crate::settings::{MarathonAccess, client_config};

fn secs(v: f64, flag: &str) -> Result<Duration, ZddError> {
    Duration::try_from_secs_f64(v).map_err(|_| {
        ZddError::InvalidArgs(format!("{flag} must be a non-negative number of seconds"))
    })
}

fn load(args: &ZddArgs) -> Result<Value, ZddError> {
    let path = args.json.as_ref().expect("checked by main");
    let text = std::fs::read_to_string(path)
        .map_err(|e| ZddError::InvalidArgs(format!("--json {}: {e}", path.display())))?;
    let mut app: Value = serde_json::from_str(&text)
        .map_err(|e| ZddError::InvalidArgs(format!("--json {}: not JSON: {e}", path.display())))?;
    labels::drop_nulls(&mut app);
    labels::validate(&app)?;
    Ok(app)
}

/// Run zdd; `Ended::Declined` is exit 1.
pub async fn run(args: &ZddArgs, out: &mut dyn std::io::Write) -> Result<Ended, ZddError> {
    let started = Instant::now();
    let deadline = started + secs(args.deadline, "--deadline")?;
    let request_timeout = secs(args.request_timeout, "--request-timeout")?;
    if args.complete_cur && args.complete_prev {
        return Err(ZddError::InvalidArgs(
            "--complete-cur and --complete-prev exclude each other".into(),
        ));
    }
    let app = load(args)?;
    let mut config = client_config(
        args.marathon.clone(),
        &MarathonAccess {
            credential_file: args.marathon_auth_credential_file.as_deref(),
            auth_credentials: args.auth_credentials.as_deref(),
            dcos_auth_credentials: args.dcos_auth_credentials.as_deref(),
            ca_cert: args.marathon_ca_cert.as_deref(),
            insecure: args.marathon_insecure,
        },
    )
    .map_err(|e| ZddError::InvalidArgs(e.to_string()))?;
    config.request_timeout = request_timeout;
    config.connect_timeout = request_timeout.min(config.connect_timeout);
    let client = MarathonClient::new(config).map_err(|e| ZddError::InvalidArgs(e.to_string()))?;
    let mut api = Api::new(client, args.dry_run);
    let mut progress = Progress::new(args.log_format == "json");

    let all = api.apps().await?;
    let mut previous: Vec<Value> = all
        .iter()
        .filter(|a| group(a) == group(&app))
        .cloned()
        .collect();
    labels::sort_deploys(&mut previous);
    let ids: Vec<&str> = previous.iter().map(app_id).collect();
    tracing::info!(target: "zdd", "deployment group {}: {} app(s) {ids:?}", group(&app).unwrap_or(""), previous.len());

    let settings = |hybrid: bool| SwapSettings {
        step_delay: secs(args.step_delay, "--step-delay").unwrap_or(Duration::from_secs(5)),
        max_wait: secs(args.max_wait, "--max-wait").unwrap_or(Duration::from_secs(300)),
        deadline,
        linear: args.linear_increase,
        hybrid,
        force: args.force,
        pre_kill_hook: args.pre_kill_hook.clone(),
    };
    secs(args.step_delay, "--step-delay")?;
    secs(args.max_wait, "--max-wait")?;

    if args.rollback {
        let [.., old, new] = &previous[..] else {
            return Err(ZddError::InvalidArgs(format!(
                "--rollback: deployment group {} has {} app(s); there is no half-done deployment to roll back",
                group(&app).unwrap_or(""),
                previous.len()
            )));
        };
        let plan = json!({"action": "rollback", "keep": app_id(old), "remove": app_id(new),
                          "instances": target_instances(new)});
        writeln!(out, "{}", pyjson::dumps(&plan)).ok();
        if args.dry_run {
            return Ok(Ended::Done);
        }
        if !args.force && !confirm("Roll back?") {
            return Ok(Ended::Declined);
        }
        let lbs = Lbs::new(lbs::expand(&args.marathon_lb).await?, request_timeout)?;
        let r = Rollback {
            old_id: app_id(old),
            new_id: app_id(new),
            target: target_instances(new),
            step_delay: settings(false).step_delay,
            budget: deadline.saturating_duration_since(Instant::now()),
        };
        rollback(&mut api, &lbs, &r, &mut progress).await?;
        return Ok(Ended::Done);
    }

    if previous.len() > 1 {
        let (a, b) = (&previous[previous.len() - 1], &previous[previous.len() - 2]);
        let (new, old, what) = if args.complete_cur {
            (a, b, "complete-cur")
        } else if args.complete_prev {
            (b, a, "complete-prev")
        } else if args.resume {
            (a, b, "resume")
        } else {
            return Err(ZddError::Unexpected(format!(
                "There appears to be an existing deployment in progress: deployment group {} has {} apps ({}); use --resume, --complete-cur, --complete-prev or --rollback",
                group(&app).unwrap_or(""),
                previous.len(),
                ids.join(", ")
            )));
        };
        let plan = json!({"action": what, "new": app_id(new), "old": app_id(old),
                          "target": target_instances(new)});
        writeln!(out, "{}", pyjson::dumps(&plan)).ok();
        if args.dry_run {
            return Ok(Ended::Done);
        }
        let lbs = Lbs::new(lbs::expand(&args.marathon_lb).await?, request_timeout)?;
        preflight::check(&mut api, &lbs, &all, Some(old), None).await?;
        let hybrid = labels::new_instance_count(new) != 0 && what == "resume";
        let (new_id, old_id) = (app_id(new).to_owned(), app_id(old).to_owned());
        return guarded(
            &mut api,
            &lbs,
            &settings(hybrid),
            &mut progress,
            &new_id,
            &old_id,
            target_instances(new),
        )
        .await;
    }
    if args.complete_cur || args.complete_prev {
        return Err(ZddError::InvalidArgs(
            "Cannot use --complete-cur, --complete-prev flags when config is not hybrid".into(),
        ));
    }
    let counts = Counts {
        initial_instances: args.initial_instances,
        new_instances: args.new_instances,
    };
    let new_app = labels::prepare(
        app,
        &previous,
        counts,
        &labels::started_at(SystemTime::now()),
    )?;
    tracing::info!(target: "zdd", "Final app definition:");
    writeln!(out, "{}", pyjson::dumps(&new_app)).ok();
    if args.dry_run {
        return Ok(Ended::Done);
    }
    let lbs = if previous.is_empty() {
        Lbs::new(Vec::new(), request_timeout)?
    } else {
        Lbs::new(lbs::expand(&args.marathon_lb).await?, request_timeout)?
    };
    preflight::check(&mut api, &lbs, &all, previous.last(), Some(&new_app)).await?;
    if !args.force && !confirm("Continue with deployment?") {
        return Ok(Ended::Declined);
    }
    api.create(&new_app).await?;
    progress.event(&format!(
        "created {} with {} instance(s)",
        app_id(&new_app),
        instances(&new_app)
    ));
    let Some(old) = previous.last() else {
        return Ok(Ended::Done);
    };
    let hybrid = labels::new_instance_count(&new_app) != 0;
    let target = target_instances(&new_app);
    guarded(
        &mut api,
        &lbs,
        &settings(hybrid),
        &mut progress,
        app_id(&new_app),
        app_id(old),
        target,
    )
    .await
}

/// The swap, rolled back if it fails (except a failed final DELETE: the
/// new app then serves alone already, and a prompt answered no).
async fn guarded(
    api: &mut Api,
    lbs: &Lbs,
    s: &SwapSettings,
    progress: &mut Progress,
    new_id: &str,
    old_id: &str,
    target: u64,
) -> Result<Ended, ZddError> {
    let cause = match swap(api, lbs, s, progress, new_id, old_id).await {
        Ok(ended) => return Ok(ended),
        Err(e @ ZddError::Delete(_)) => return Err(e),
        Err(e) => e,
    };
    tracing::error!(target: "zdd", "{cause}; rolling back");
    let r = Rollback {
        old_id,
        new_id,
        target,
        step_delay: s.step_delay,
        // The rollback gets its own time: the deadline may be what failed.
        budget: s.max_wait.max(Duration::from_secs(60)),
    };
    match rollback(api, lbs, &r, progress).await {
        Ok(()) => Err(ZddError::RolledBack(cause.to_string())),
        Err(e) => Err(ZddError::RollbackFailed {
            cause: cause.to_string(),
            rollback: e.to_string(),
        }),
    }
}
