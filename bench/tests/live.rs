//! The live scale test at CI size: `mlb-bench --live` with 200 other apps,
//! four membership changes of the loaded app and a rolling restart of a
//! 4-task app under load, through the real binary, a real HAProxy and the
//! simulator. No request may fail and no membership change may reload
//! HAProxy; the figures are printed (the 5,000-app figures are in the
//! README).

use std::process::Command;

/// Column `n` (0-based, after the leading `|`) of the table row starting
/// with `prefix`.
fn column(out: &str, prefix: &str, n: usize) -> String {
    let row = out
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no row {prefix:?} in:\n{out}"));
    row.split('|')
        .nth(n + 1)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn membership_changes_and_a_rolling_restart_fail_no_request() {
    let out = Command::new(env!("CARGO_BIN_EXE_mlb-bench"))
        .args(["--live", "--apps", "200", "--changes", "4"])
        .output()
        .expect("mlb-bench runs");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(column(&text, "| 201 |", 6), "0", "failed requests:\n{text}");
    assert_eq!(
        column(&text, "| 201 |", 2),
        "0",
        "membership changes reloaded HAProxy:\n{text}"
    );
    assert_ne!(
        column(&text, "| 201 |", 5),
        "0",
        "no request was made:\n{text}"
    );
    assert_eq!(
        column(&text, "| 4 tasks", 3),
        "0",
        "failed requests during the restart:\n{text}"
    );
    assert_ne!(
        column(&text, "| 4 tasks", 2),
        "0",
        "no request was made:\n{text}"
    );
    assert_eq!(
        column(&text, "| 4 tasks", 4),
        "0",
        "the rolling restart reloaded HAProxy:\n{text}"
    );
}
