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
        "docs/longhelp.md is stale: run `MLB_BLESS=1 cargo test -p marathon-lb --test docs`"
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
