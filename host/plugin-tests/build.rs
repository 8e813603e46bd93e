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
    // Re-run when a tool this script looks for appears or changes: the
    // wasm32-wasip2 target (rustup rewrites the toolchain's `components`
    // list when a target is added) and componentize-py (its path when found;
    // while it is missing, the paths where it would appear, which do not
    // exist, so cargo re-runs this script on every build until it does).
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-env-changed=COMPONENTIZE_PY");
    if let Some(components) = toolchain_components() {
        println!("cargo:rerun-if-changed={}", components.display());
    }
    for path in componentize_py_probes() {
        println!("cargo:rerun-if-changed={}", path.display());
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
    cmd
}

/// The toolchain's list of installed components and targets.
fn toolchain_components() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let path = Path::new(&sysroot).join("lib/rustlib/components");
    path.is_file().then_some(path)
}

/// Where `build.sh` looks for componentize-py: `$COMPONENTIZE_PY`, every
/// `PATH` directory, python3's scripts directory. The one found, or all of
/// them when none exists.
fn componentize_py_probes() -> Vec<PathBuf> {
    if let Ok(explicit) = std::env::var("COMPONENTIZE_PY")
        && explicit.contains('/')
    {
        return vec![PathBuf::from(explicit)];
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
    {
        let scripts = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !scripts.is_empty() {
            dirs.push(PathBuf::from(scripts));
        }
    }
    let candidates: Vec<PathBuf> = dirs
        .into_iter()
        .filter(|d| d.is_absolute())
        .map(|d| d.join("componentize-py"))
        .collect();
    match candidates.iter().find(|c| c.is_file()) {
        Some(found) => vec![found.clone()],
        None => candidates,
    }
}

/// The lines of a failed tool's output that say why: those with `error`,
/// else the last few, joined on one line.
fn cause(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("error") || l.contains(": error"))
        .take(3)
        .collect();
    let picked = if errors.is_empty() {
        &lines[lines.len().saturating_sub(3)..]
    } else {
        &errors[..]
    };
    if picked.is_empty() {
        "no output".to_owned()
    } else {
        picked.join(" | ")
    }
}

fn build_examples(root: &Path) -> Result<PathBuf, String> {
    let target_dir = root.join("target/wasm-examples");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = scrubbed(&cargo)
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
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build --target wasm32-wasip2 of plugins/examples failed: {} \
             (is the target installed? rustup target add wasm32-wasip2)",
            cause(&output.stderr)
        ));
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
        // build.sh says what is wrong in full lines ("componentize-py not
        // found; install it with:" then the command): keep all of them.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let said = if said.is_empty() {
            "no output".to_owned()
        } else {
            said[said.len().saturating_sub(6)..].join(" ")
        };
        let hint = if said.contains("pip install") {
            ""
        } else {
            " (pip install -r plugins/examples/python-owner-policy/requirements.txt)"
        };
        return Err(format!("{} failed: {said}{hint}", script.display()));
    }
    Ok(())
}
