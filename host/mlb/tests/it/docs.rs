//! `docs/longhelp.md` is the output of `marathon-lb --longhelp`; this test
//! keeps it in sync (`MLB_BLESS=1` rewrites it on purpose).

use std::path::Path;

#[test]
fn longhelp_doc_is_in_sync() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/longhelp.md");
    let text = marathon_lb::longhelp::text();
    if std::env::var("MLB_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "docs/longhelp.md is stale: run `MLB_BLESS=1 cargo test -p marathon-lb --test it docs`"
    );
}

#[test]
fn longhelp_covers_every_template_and_label() {
    let text = marathon_lb::longhelp::text();
    for name in mlb_core::templates::TEMPLATE_NAMES {
        assert!(text.contains(&format!("### `HAPROXY_{name}`")), "{name}");
    }
    for label in [
        "HAPROXY_{n}_VHOST",
        "HAPROXY_GROUP",
        "HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX",
    ] {
        assert!(text.contains(label), "{label}");
    }
}

/// The README's test command checks its prerequisites first: on a machine
/// without HAProxy (or without cargo) it stops at once with one line saying
/// what to install, before building anything.
#[test]
fn the_test_command_stops_with_one_line_when_a_prerequisite_is_missing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = tempfile::tempdir().unwrap();
    let link = |name: &str, target: &str| {
        std::os::unix::fs::symlink(target, bin.path().join(name)).unwrap();
    };
    let dirname = ["/usr/bin/dirname", "/bin/dirname"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("dirname");
    link("dirname", dirname);
    let run = || {
        std::process::Command::new("/bin/bash")
            .arg(root.join("scripts/test.sh"))
            .env("PATH", bin.path())
            .output()
            .unwrap()
    };
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("scripts/test.sh: cargo not found"), "{err}");
    // cargo "present" (a stand-in that is never run), HAProxy missing.
    link("cargo", "/bin/false");
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("scripts/test.sh: haproxy not found")
            && err.contains("apt-get install haproxy"),
        "{err}"
    );
}
