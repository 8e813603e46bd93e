//! The committed default plugin (`plugins/prebuilt/`, used where the
//! `wasm32-wasip2` target is missing) must be built from the current
//! sources: a hash of every input is stamped next to it.
//!
//! `MLB_BLESS=1 cargo test -p mlb-plugin-host --test it prebuilt_plugin` refreshes the
//! component and its stamp from a build that compiled the plugin from source.

use std::path::Path;

const ORIGIN: &str = env!("MLB_DEFAULT_LABEL_ORIGIN");
const SOURCE_HASH: &str = env!("MLB_PLUGIN_SOURCE_HASH");

#[test]
fn prebuilt_default_plugin_matches_its_sources() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/prebuilt");
    let stamp = dir.join("mlb_default_label.sources.sha256");
    if std::env::var("MLB_BLESS").is_ok_and(|v| v == "1") {
        assert_eq!(
            ORIGIN, "built",
            "blessing needs a build that compiled the plugin (install wasm32-wasip2)"
        );
        std::fs::copy(
            env!("MLB_FRESH_PLUGIN_WASM"),
            dir.join("mlb_default_label.wasm"),
        )
        .unwrap();
        std::fs::write(&stamp, format!("{SOURCE_HASH}\n")).unwrap();
    }
    let recorded = std::fs::read_to_string(&stamp).unwrap_or_default();
    assert_eq!(
        recorded.trim(),
        SOURCE_HASH,
        "plugins/prebuilt/mlb_default_label.wasm is stale: run `MLB_BLESS=1 cargo test -p mlb-plugin-host --test it prebuilt_plugin` and commit the result"
    );
}
