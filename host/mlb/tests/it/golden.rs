//! The golden corpus (`tests/golden/`, marathon-lb 1.15's own output for each
//! input) run through the real `marathon-lb` binary against the Marathon
//! simulator, compared byte for byte.
//!
//! Comparison rules (the corpus README explains them):
//! - `NAME.expected.cfg` (and `NAME.expected.<map>.map`): identical bytes;
//!   `NAME.sort-servers` allows tied `server` lines in any order;
//!   `NAME.known-divergence` allows the listed sections to differ where the
//!   original emits directives HAProxy ≥ 2.1 rejects.
//! - `NAME.expect-reject`: the offending app is gone (`absent:` strings), every
//!   section of `NAME.expected-others.cfg` is present with the same body.

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use support::{golden_dir, run_case};

const SECTION: &str = r"^(global|defaults|listen|frontend|backend|userlist|peers|resolvers|cache|program|http-errors|ring|mailers)\b";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn marker_values(marker: &str, key: &str) -> Vec<String> {
    marker
        .lines()
        .filter_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_owned())
        .collect()
}

fn sort_server_runs(text: &str) -> String {
    let mut out = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.starts_with("  server ") {
            run.push(line);
            continue;
        }
        run.sort_unstable();
        out.append(&mut run);
        out.push(line);
    }
    run.sort_unstable();
    out.append(&mut run);
    out.concat()
}

/// Sections as (head, body lines).
fn sections(text: &str, skip_blank_and_comments: bool) -> Vec<(String, Vec<String>)> {
    let head = Regex::new(SECTION).unwrap();
    let mut out = vec![(String::new(), Vec::new())];
    for line in text.lines() {
        if skip_blank_and_comments && (line.trim().is_empty() || line.trim().starts_with('#')) {
            continue;
        }
        if head.is_match(line) {
            out.push((line.trim_end().to_owned(), Vec::new()));
        } else {
            out.last_mut().unwrap().1.push(line.to_owned());
        }
    }
    out
}

fn check_divergence(expected: &str, got: &str, marker: &str) -> Result<(), String> {
    let forbid = marker_values(marker, "forbid:")
        .first()
        .map(|f| Regex::new(f).unwrap());
    let allowed = marker_values(marker, "section:");
    let (e, g) = (sections(expected, false), sections(got, false));
    let heads = |s: &[(String, Vec<String>)]| s.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>();
    if heads(&e) != heads(&g) {
        return Err("section list differs".into());
    }
    let forbidden = |l: &str| forbid.as_ref().is_some_and(|f| f.is_match(l));
    for ((h, eb), (_, gb)) in e.iter().zip(&g) {
        if !allowed.contains(h) {
            if eb != gb {
                return Err(format!("section {h:?} differs"));
            }
            continue;
        }
        let gl: Vec<&String> = gb.iter().filter(|l| !l.trim().is_empty()).collect();
        if let Some(bad) = gl.iter().find(|l| forbidden(l)) {
            return Err(format!("{h:?} still uses a removed directive: {bad}"));
        }
        let mut it = gl.iter();
        for l in eb.iter().filter(|l| !l.trim().is_empty() && !forbidden(l)) {
            if !it.any(|g| *g == l) {
                return Err(format!("{h:?} lost or reordered line {l:?}"));
            }
        }
    }
    Ok(())
}

fn check_reject(case: &Path, marker: &str, got: &str) -> Result<(), String> {
    for absent in marker_values(marker, "absent:") {
        if !absent.is_empty() && got.contains(&absent) {
            return Err(format!("rejected content still present: {absent:?}"));
        }
    }
    let others = read(&case.with_extension("expected-others.cfg"));
    let have: BTreeMap<String, Vec<String>> = sections(got, true).into_iter().collect();
    for (head, body) in sections(&others, true).into_iter().skip(1) {
        match have.get(&head) {
            None => return Err(format!("missing section {head:?}")),
            Some(b) if *b != body => {
                return Err(format!("section {head:?} differs from expected-others"));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn check_case(json: &Path) -> Result<(), String> {
    let name = json.file_stem().unwrap().to_string_lossy().into_owned();
    let dir = json.parent().unwrap();
    let file = |suffix: &str| dir.join(format!("{name}.{suffix}"));
    let out = run_case(dir, &name)?;
    let reject = file("expect-reject");
    if reject.exists() {
        check_reject(&dir.join(&name), &read(&reject), &out.config)?;
        for map in ["domain2backend", "app2backend"] {
            let expected = file(&format!("expected-others.{map}.map"));
            if expected.exists() && read(&expected) != out.map(map) {
                return Err(format!("{map}.map differs from expected-others"));
            }
        }
        return Ok(());
    }
    let mut expected = read(&file("expected.cfg"));
    let mut got = out.config.clone();
    if file("sort-servers").exists() {
        expected = sort_server_runs(&expected);
        got = sort_server_runs(&got);
    }
    if expected != got {
        let divergence = file("known-divergence");
        if !divergence.exists() {
            return Err(format!(
                "config differs:\n{}",
                support::diff(&expected, &got)
            ));
        }
        check_divergence(&expected, &got, &read(&divergence))?;
    }
    for map in ["domain2backend", "app2backend"] {
        let expected = file(&format!("expected.{map}.map"));
        if expected.exists() && read(&expected) != out.map(map) {
            return Err(format!("{map}.map differs"));
        }
    }
    Ok(())
}

#[test]
fn golden_corpus_matches_marathon_lb() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 60,
        "golden corpus missing? found {} cases",
        cases.len()
    );
    // MLB_GOLDEN_ONLY=substring narrows the run while developing.
    let only = std::env::var("MLB_GOLDEN_ONLY").unwrap_or_default();
    cases.retain(|c| c.to_string_lossy().contains(&only));
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = check_case(case) {
            failures.push(format!(
                "FAIL {}: {why}",
                case.file_stem().unwrap().to_string_lossy()
            ));
        }
    }
    println!(
        "golden corpus: {} passed, {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn comparison_rules_catch_differences() {
    // The harness itself must be able to fail.
    let exp = "global\n  a\nbackend x\n  server b\n  server a\n";
    assert_eq!(
        sort_server_runs(exp),
        "global\n  a\nbackend x\n  server a\n  server b\n"
    );
    let marker = "forbid: ^\\s*rspadd\\b\nsection: backend x\n";
    assert!(
        check_divergence(
            exp,
            "global\n  a\nbackend x\n  server b\n  server a\n  rspadd y\n",
            marker
        )
        .is_err()
    );
    assert!(
        check_divergence(
            exp,
            "global\n  a\nbackend x\n  server b\n  extra\n  server a\n",
            marker
        )
        .is_ok()
    );
    assert!(
        check_divergence(
            exp,
            "global\n  b\nbackend x\n  server b\n  server a\n",
            marker
        )
        .is_err()
    );
}
