//! DC/OS service-account auth end to end: the real binary runs one-shot
//! against the loopback DC/OS login endpoint and Marathon of
//! `host/marathon/tests/it/dcos_server.rs` (the event-stream follower and
//! the REST client are tested in process in mlb-marathon's tests).

use std::process::Output;

use serde_json::json;

use crate::dcos_server::{Answer, Login, Marathon, PKCS1, PKCS8, UID, token_only};
use crate::support;

/// How the binary gets the credentials.
enum Creds {
    Flag(String),
    Env(String),
}

/// What one one-shot run of the binary did.
struct Run {
    output: Output,
    log: String,
    config: Option<String>,
}

fn run_binary(marathon: &str, creds: Creds, extra: &[&str]) -> Run {
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("haproxy.cfg");
    let mut cmd = support::command();
    cmd.current_dir(work.path())
        .env_remove("DCOS_SERVICE_ACCOUNT_CREDENTIAL")
        .args(["--marathon", marathon, "--haproxy-config"])
        .arg(&cfg)
        .args([
            "--group",
            "*",
            "--skip-validation",
            "--command",
            "true",
            // Another test's HAProxy may be running: do not wait for a new one.
            "--max-reload-retries",
            "0",
            "--reload-interval",
            "0",
            "--syslog-socket",
            "/dev/null",
            "--log-level",
            "DEBUG",
        ])
        .args(extra);
    for (k, _) in std::env::vars() {
        if k.starts_with("HAPROXY_") || k == "FRAMEWORK_NAME" {
            cmd.env_remove(k);
        }
    }
    match creds {
        Creds::Flag(json) => {
            cmd.arg("--dcos-auth-credentials").arg(json);
        }
        Creds::Env(json) => {
            cmd.env("DCOS_SERVICE_ACCOUNT_CREDENTIAL", json);
        }
    }
    let output = cmd.output().unwrap();
    Run {
        log: String::from_utf8_lossy(&output.stderr).into_owned(),
        config: std::fs::read_to_string(&cfg).ok(),
        output,
    }
}

/// The log quotes neither the key nor a token.
fn assert_no_secrets(log: &str) {
    for secret in ["PRIVATE KEY", "tok-1", "tok-2", "eyJ"] {
        assert!(!log.contains(secret), "log shows {secret:?}:\n{log}");
    }
    for line in PKCS1.lines().chain(PKCS8.lines()) {
        if let Some(start) = line.get(..20).filter(|_| !line.starts_with("-----")) {
            assert!(!log.contains(start), "log shows key material:\n{log}");
        }
    }
}

fn assert_config(run: &Run) {
    assert!(
        run.output.status.success(),
        "exit {}; log:\n{}",
        run.output.status,
        run.log
    );
    let config = run.config.as_deref().expect("config written");
    assert!(config.contains("backend dcosapp_10001"), "{config}");
    assert!(config.contains("10.0.0.1:31001"), "{config}");
}

#[test]
fn oneshot_logs_in_and_sends_the_token() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Json).await,
            Marathon::start(token_only("tok-1")).await,
        )
    });
    let run = run_binary(&marathon.url, Creds::Flag(login.credentials(PKCS1)), &[]);
    assert_config(&run);
    assert_eq!(login.rejected(), Vec::<String>::new());
    assert_eq!(login.logins(), 1);
    assert_eq!(
        marathon.auth_of("/v2/apps"),
        vec![Some("token=tok-1".to_owned())]
    );
    assert!(run.log.contains("logged in to DC/OS"), "{}", run.log);
    assert_no_secrets(&run.log);
}

#[test]
fn env_credentials_pkcs8_key_and_cookie_answer() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Cookie).await,
            Marathon::start(token_only("tok-1")).await,
        )
    });
    let run = run_binary(&marathon.url, Creds::Env(login.credentials(PKCS8)), &[]);
    assert_config(&run);
    assert_eq!(login.rejected(), Vec::<String>::new());
    assert_eq!(login.logins(), 1);
    assert_no_secrets(&run.log);
}

#[test]
fn refused_token_is_renewed_once() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Json).await,
            Marathon::start(token_only("tok-2")).await,
        )
    });
    let run = run_binary(&marathon.url, Creds::Flag(login.credentials(PKCS1)), &[]);
    assert_config(&run);
    assert_eq!(login.logins(), 2);
    assert_eq!(
        marathon.auth_of("/v2/apps"),
        vec![
            Some("token=tok-1".to_owned()),
            Some("token=tok-2".to_owned())
        ]
    );
    assert_no_secrets(&run.log);
}

#[test]
fn persistent_401_fails_after_one_renewal() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Json).await,
            Marathon::start(token_only("none")).await,
        )
    });
    let run = run_binary(&marathon.url, Creds::Flag(login.credentials(PKCS1)), &[]);
    assert!(!run.output.status.success(), "{}", run.log);
    assert!(run.config.is_none());
    assert_eq!(login.logins(), 2, "one login, one renewal, no loop");
    assert_eq!(marathon.auth_of("/v2/apps").len(), 2);
    assert!(run.log.contains("401"), "{}", run.log);
    assert_no_secrets(&run.log);
}

#[test]
fn refused_login_is_reported() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Refuse).await,
            Marathon::start(|_| true).await,
        )
    });
    let run = run_binary(&marathon.url, Creds::Env(login.credentials(PKCS1)), &[]);
    assert!(!run.output.status.success(), "{}", run.log);
    assert!(run.log.contains("DC/OS login at"), "{}", run.log);
    assert!(run.log.contains("Invalid credentials"), "{}", run.log);
    assert!(
        marathon.auth_of("/").is_empty(),
        "no request without a token"
    );
    assert_no_secrets(&run.log);
}

#[test]
fn basic_credentials_beat_dcos() {
    let rt = support::runtime();
    let (login, marathon) = rt.block_on(async {
        (
            Login::start(Answer::Json).await,
            Marathon::start(|a| a.starts_with("Basic ")).await,
        )
    });
    let run = run_binary(
        &marathon.url,
        Creds::Env(login.credentials(PKCS1)),
        &["--auth-credentials", "bob:s3cret"],
    );
    assert_config(&run);
    assert_eq!(login.logins(), 0);
    assert_eq!(
        marathon.auth_of("/v2/apps"),
        vec![Some("Basic Ym9iOnMzY3JldA==".to_owned())]
    );
}

#[test]
fn bad_credentials_stop_at_start() {
    let run = run_binary(
        "http://127.0.0.1:9",
        Creds::Flag(
            json!({"uid": UID, "private_key": "nope", "login_endpoint": "http://127.0.0.1:9/x"})
                .to_string(),
        ),
        &[],
    );
    assert!(!run.output.status.success());
    assert!(
        run.log.contains("DC/OS credentials: private_key"),
        "{}",
        run.log
    );
    assert!(!run.log.contains("not supported"), "{}", run.log);
}
