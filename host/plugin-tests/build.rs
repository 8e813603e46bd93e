//! Builds the example plugins for the tests (see `src/lib.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let root = manifest
        .join("../..")
        .canonicalize()
        .expect("workspace root");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets this"));
    for dir in [
        "plugins/examples/Cargo.toml",
        "plugins/examples/Cargo.lock",
        "plugins/examples/traefik-labels",
        "plugins/examples/text-filters",
        "plugins/examples/policy-vhost-domains",
        "plugins/examples/policy-template-prefixes",
        "plugins/examples/fixtures",
        "plugins/examples/python-owner-policy/app.py",
        "plugins/examples/python-owner-policy/build.sh",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }

    match build_examples(&root) {
        Ok(dir) => {
            println!("cargo:rustc-env=MLB_EXAMPLES_DIR={}", dir.display());
            println!("cargo:rustc-env=MLB_EXAMPLES_ERROR=");
        }
        Err(e) => {
            println!("cargo:warning=example plugins not built: {e}");
            println!("cargo:rustc-env=MLB_EXAMPLES_DIR=");
            println!("cargo:rustc-env=MLB_EXAMPLES_ERROR={e}");
        }
    }
    let python = out_dir.join("python_owner_policy.wasm");
    match build_python(&root, &python) {
        Ok(()) => {
            println!("cargo:rustc-env=MLB_PYTHON_POLICY={}", python.display());
            println!("cargo:rustc-env=MLB_PYTHON_ERROR=");
        }
        Err(e) => {
            println!("cargo:warning=Python example plugin not built: {e}");
            println!("cargo:rustc-env=MLB_PYTHON_POLICY=");
            println!("cargo:rustc-env=MLB_PYTHON_ERROR={e}");
        }
    }
}

/// A command without the outer cargo build's settings (they must not leak
/// into a nested build for another target).
fn scrubbed(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars() {
        let keep = key == "CARGO_HOME"
            || key.starts_with("CARGO_NET_")
            || key.starts_with("CARGO_HTTP_")
            || key.starts_with("CARGO_REGISTRIES_");
        if (key.starts_with("CARGO_") && !keep)
            || key == "RUSTFLAGS"
            || key == "MAKEFLAGS"
            || key == "MFLAGS"
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

fn build_examples(root: &Path) -> Result<PathBuf, String> {
    let target_dir = root.join("target/wasm-examples");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = scrubbed(&cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("plugins/examples/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(
            "cargo build --target wasm32-wasip2 of plugins/examples failed (is the target \
             installed? rustup target add wasm32-wasip2)"
                .to_owned(),
        );
    }
    Ok(target_dir.join("wasm32-wasip2/release"))
}

fn build_python(root: &Path, out: &Path) -> Result<(), String> {
    let script = root.join("plugins/examples/python-owner-policy/build.sh");
    let output = scrubbed("bash")
        .arg(&script)
        .arg(out)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .last()
            .unwrap_or("no output")
            .trim()
            .to_owned();
        return Err(format!(
            "{} failed: {last} (pip install -r plugins/examples/python-owner-policy/requirements.txt)",
            script.display()
        ));
    }
    Ok(())
}
