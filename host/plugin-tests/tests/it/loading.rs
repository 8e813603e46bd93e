//! Start-up checks: world, WIT version, imports and grants; the on-disk
//! compile cache (hits, and files that must not be trusted).

use std::os::unix::fs::PermissionsExt;

use mlb_plugin_host::{
    CompileSource, LoadedPlugin, PluginError, PluginRuntime, PluginSpec, load_plugin,
};
use mlb_plugin_tests::example;

/// A component with `imports` (empty instances) that exports an empty
/// instance under each name of `exports`.
fn component(imports: &[&str], exports: &[&str]) -> Vec<u8> {
    let mut wat = String::from("(component\n");
    for name in imports {
        wat.push_str(&format!("  (import \"{name}\" (instance))\n"));
    }
    for (i, name) in exports.iter().enumerate() {
        wat.push_str(&format!(
            "  (instance $e{i})\n  (export \"{name}\" (instance $e{i}))\n"
        ));
    }
    wat.push(')');
    wat::parse_str(&wat).expect("valid component text")
}

fn load(bytes: &[u8], extra: &str) -> Result<LoadedPlugin, PluginError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugin.wasm");
    std::fs::write(&path, bytes).unwrap();
    let spec: PluginSpec = format!("{}{extra}", path.display()).parse().unwrap();
    let runtime = PluginRuntime::new(None).unwrap();
    load_plugin(&runtime, &spec).map(|(p, _)| p)
}

fn message(r: Result<LoadedPlugin, PluginError>) -> (PluginError, String) {
    let e = r.expect_err("must be refused");
    let m = e.to_string();
    (e, m)
}

const LABEL: &str = "mlb:plugins/label-interpreter@0.2.0";

#[test]
fn a_plugin_built_for_another_version_is_refused() {
    let (e, m) = message(load(
        &component(&[], &["mlb:plugins/label-interpreter@0.1.0"]),
        "",
    ));
    assert!(matches!(e, PluginError::Version { .. }), "{m}");
    assert!(
        m.contains("version 0.1.0") && m.contains("mlb:plugins@0.2.0"),
        "{m}"
    );
    let (e, m) = message(load(
        &component(&["mlb:plugins/host-log@0.3.0"], &[LABEL]),
        "",
    ));
    assert!(matches!(e, PluginError::Version { .. }), "{m}");
}

#[test]
fn a_component_of_another_world_is_refused() {
    let (e, m) = message(load(&component(&[], &["wasi:cli/run@0.2.0"]), ""));
    assert!(matches!(e, PluginError::World { .. }), "{m}");
    assert!(
        m.contains("exports none of") && m.contains("wasi:cli/run@0.2.0"),
        "{m}"
    );
    let (_, m) = message(load(
        &component(&[], &[LABEL, "mlb:plugins/policy@0.2.0"]),
        "",
    ));
    assert!(m.contains("several plugin interfaces"), "{m}");
    // The right export name with the wrong functions inside.
    let (e, m) = message(load(&component(&[], &[LABEL]), ""));
    assert!(matches!(e, PluginError::World { .. }), "{m}");
    assert!(m.contains("not a label plugin"), "{m}");
    let (e, m) = message(load(b"\0asm but not really", ""));
    assert!(matches!(e, PluginError::Load { .. }), "{m}");
}

#[test]
fn capabilities_need_a_grant_or_a_stub() {
    for (import, grant) in [
        ("wasi:clocks/wall-clock@0.2.0", ",allow-clock"),
        ("wasi:filesystem/preopens@0.2.3", ",allow-dir=/tmp"),
        ("wasi:sockets/tcp@0.2.0", ",stub=network"),
        ("wasi:clocks/monotonic-clock@0.2.9", ",stub=clock"),
    ] {
        let bytes = component(&[import], &[LABEL]);
        let (e, m) = message(load(&bytes, ""));
        assert!(matches!(e, PluginError::Capability { .. }), "{import}: {m}");
        assert!(m.contains(import) && m.contains("not granted"), "{m}");
        // Granted: inspection passes and the (empty) export is what fails.
        let (e, m) = message(load(&bytes, grant));
        assert!(
            matches!(e, PluginError::World { .. }),
            "{import}{grant}: {m}"
        );
    }
}

#[test]
fn imports_the_host_does_not_provide_are_refused() {
    for import in [
        "wasi:http/outgoing-handler@0.2.0",
        "example:evil/exfiltrate@1.0.0",
        "wasi:clocks/wall-clock@0.3.0",
        "mlb:plugins/secret-store@0.2.0",
    ] {
        let (e, m) = message(load(&component(&[import], &[LABEL]), ",allow-clock"));
        assert!(matches!(e, PluginError::Import { .. }), "{import}: {m}");
        assert!(m.contains(import), "{m}");
    }
}

fn runtime_in(dir: &std::path::Path) -> PluginRuntime {
    PluginRuntime::new(Some(dir)).unwrap()
}

#[test]
fn the_compile_cache_is_used_and_never_trusted_blindly() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let traefik = std::fs::read(example("mlb_example_traefik_labels")).unwrap();
    let filters = std::fs::read(example("mlb_example_text_filters")).unwrap();

    let first = runtime_in(&cache).compile("t", &traefik).unwrap();
    assert_eq!(first.source, CompileSource::Compiled);
    let warm = runtime_in(&cache).compile("t", &traefik).unwrap();
    assert_eq!(warm.source, CompileSource::Cache);
    assert!(
        warm.elapsed < first.elapsed,
        "{:?} vs {:?}",
        warm.elapsed,
        first.elapsed
    );

    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1);
    let file = &files[0];

    // A flipped byte: recompiled, and the file replaced by a good one.
    let mut bytes = std::fs::read(file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(file, &bytes).unwrap();
    assert_eq!(
        runtime_in(&cache).compile("t", &traefik).unwrap().source,
        CompileSource::Compiled
    );
    assert_eq!(
        runtime_in(&cache).compile("t", &traefik).unwrap().source,
        CompileSource::Cache
    );

    // Writable by others: not trusted.
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(
        runtime_in(&cache).compile("t", &traefik).unwrap().source,
        CompileSource::Compiled
    );

    // Another component's artifact under this component's name: refused
    // (the checksum covers the key).
    runtime_in(&cache).compile("f", &filters).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2);
    let other = names.iter().find(|p| *p != file).unwrap();
    std::fs::copy(other, file).unwrap();
    let again = runtime_in(&cache).compile("t", &traefik).unwrap();
    assert_eq!(again.source, CompileSource::Compiled);

    // A world-writable cache directory disables the cache.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = runtime_in(&cache);
    assert!(r.cache().is_none());
    assert_eq!(
        r.compile("t", &traefik).unwrap().source,
        CompileSource::Compiled
    );
}
