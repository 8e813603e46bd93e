//! Builds the default label plugin (a `wasm32-wasip2` component) and hands
//! its path to the crate as `MLB_DEFAULT_LABEL_WASM`, so the binary embeds it.
//!
//! Where the `wasm32-wasip2` target is not installed (or with
//! `MLB_USE_PREBUILT_PLUGIN=1`), the committed component in
//! `plugins/prebuilt/` is used instead; `tests/it/prebuilt_plugin.rs` proves that
//! copy was built from the current sources (a hash of them is stamped next to
//! it) and `MLB_BLESS=1` refreshes it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const WASM_NAME: &str = "mlb_default_label.wasm";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let root = manifest
        .join("../..")
        .canonicalize()
        .expect("workspace root");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets this"));
    let inputs = source_inputs(&root);
    for input in &inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    for dir in [
        "plugins/default-label/src",
        "plugins/label-rules/src",
        "host/model/src",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let prebuilt = root.join("plugins/prebuilt").join(WASM_NAME);
    println!("cargo:rerun-if-changed={}", prebuilt.display());
    println!("cargo:rerun-if-env-changed=MLB_USE_PREBUILT_PLUGIN");
    // `rustup target add` rewrites the toolchain's component list: re-run
    // then, so a build that fell back to the prebuilt plugin compiles it
    // from source once the target is there.
    if let Some(components) = sysroot().map(|s| s.join("lib/rustlib/components"))
        && components.is_file()
    {
        println!("cargo:rerun-if-changed={}", components.display());
    }

    let hash = source_hash(&root, &inputs);
    println!("cargo:rustc-env=MLB_PLUGIN_SOURCE_HASH={hash}");

    let use_prebuilt = std::env::var("MLB_USE_PREBUILT_PLUGIN").is_ok_and(|v| v == "1");
    let (wasm, origin) = if !use_prebuilt && wasm_target_installed() {
        (build_plugin(&root), "built")
    } else {
        println!(
            "cargo:warning=wasm32-wasip2 target not available (or MLB_USE_PREBUILT_PLUGIN=1): \
             embedding the prebuilt default plugin from plugins/prebuilt/"
        );
        (prebuilt, "prebuilt")
    };
    let embedded = out_dir.join(WASM_NAME);
    fs::copy(&wasm, &embedded).unwrap_or_else(|e| {
        panic!(
            "cannot copy {} to {}: {e}",
            wasm.display(),
            embedded.display()
        )
    });
    println!(
        "cargo:rustc-env=MLB_DEFAULT_LABEL_WASM={}",
        embedded.display()
    );
    println!("cargo:rustc-env=MLB_DEFAULT_LABEL_ORIGIN={origin}");
    println!("cargo:rustc-env=MLB_FRESH_PLUGIN_WASM={}", wasm.display());
}

/// Every file whose content decides the plugin's behaviour.
fn source_inputs(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![
        root.join("plugins/default-label/Cargo.toml"),
        root.join("plugins/default-label/Cargo.lock"),
        root.join("plugins/label-rules/Cargo.toml"),
        root.join("host/model/Cargo.toml"),
    ];
    for dir in [
        "plugins/default-label/src",
        "plugins/label-rules/src",
        "host/model/src",
        "wit",
    ] {
        collect(&root.join(dir), &mut files);
    }
    files.retain(|f| f.exists());
    files.sort();
    files
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn source_hash(root: &Path, inputs: &[PathBuf]) -> String {
    let mut h = Sha256::new();
    for file in inputs {
        let rel = file.strip_prefix(root).unwrap_or(file);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(fs::read(file).unwrap_or_default());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn sysroot() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    Some(PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    ))
}

fn wasm_target_installed() -> bool {
    sysroot().is_some_and(|s| s.join("lib/rustlib/wasm32-wasip2").is_dir())
}

fn build_plugin(root: &Path) -> PathBuf {
    let target_dir = root.join("target/wasm-plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(root.join("plugins/default-label/Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir);
    // The outer build's settings must not leak into the guest build.
    for (key, _) in std::env::vars() {
        let keep = key == "CARGO_HOME"
            || key.starts_with("CARGO_NET_")
            || key.starts_with("CARGO_HTTP_")
            || key.starts_with("CARGO_REGISTRIES_");
        if (key.starts_with("CARGO_") && !keep)
            || key == "RUSTFLAGS"
            // scripts/test.sh lints the workspace with clippy-driver as the
            // rustc wrapper; the guest build is another workspace.
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key == "CLIPPY_ARGS"
            || key == "MAKEFLAGS"
            || key == "MFLAGS"
        {
            cmd.env_remove(&key);
        }
    }
    let status = cmd
        .status()
        .expect("cannot run cargo to build the default plugin");
    assert!(
        status.success(),
        "building the default label plugin for wasm32-wasip2 failed: the nested cargo's errors are \
         above (MLB_USE_PREBUILT_PLUGIN=1 embeds the committed plugins/prebuilt/ copy instead)"
    );
    target_dir.join("wasm32-wasip2/release").join(WASM_NAME)
}
