#!/usr/bin/env bash
# Every check and every test of the project (what CI runs after installing
# prerequisites): formatting, clippy with warnings denied, then all tests,
# including the golden corpus and the end-to-end tests with a real HAProxy.
#
# It first checks what the tests need and installs what it safely can
# (`rustup target add`, `rustup component add`, `pip install -r` of the
# Python example's pinned requirements); anything else stops the run at once
# with one line saying what to install — never a partial run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing() {
    echo "scripts/test.sh: $*" >&2
    exit 1
}

command -v cargo >/dev/null 2>&1 ||
    missing "cargo not found: install a Rust toolchain (https://rustup.rs) and re-run"
command -v haproxy >/dev/null 2>&1 ||
    missing "haproxy not found (the end-to-end tests run a real HAProxy): apt-get install haproxy, then re-run"
command -v tini >/dev/null 2>&1 ||
    missing "tini not found (the container entrypoint test runs it as the image does): apt-get install tini, then re-run"
command -v openssl >/dev/null 2>&1 ||
    missing "openssl not found (the container and TLS tests make certificates with it): apt-get install openssl, then re-run"

# The example plugins (host/plugin-tests) are built for wasm32-wasip2.
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
        echo "scripts/test.sh: installing the wasm32-wasip2 target (rustup target add wasm32-wasip2)" >&2
        rustup target add wasm32-wasip2 >&2 ||
            missing "the wasm32-wasip2 target is missing and rustup could not add it: rustup target add wasm32-wasip2"
    fi
    for component in rustfmt clippy; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
            rustup component add "$component" >&2 ||
                missing "$component is missing: rustup component add $component"
        fi
    done
else
    sysroot="$(rustc --print sysroot 2>/dev/null || true)"
    [ -d "$sysroot/lib/rustlib/wasm32-wasip2" ] ||
        missing "the wasm32-wasip2 target is missing (no rustup here to add it): install the Rust target wasm32-wasip2"
fi

# The Python example plugin is built with componentize-py (pinned in
# requirements.txt), found on PATH or beside python3's scripts as build.sh
# looks for it.
requirements=plugins/examples/python-owner-policy/requirements.txt
find_componentize_py() {
    if [ -n "${COMPONENTIZE_PY:-}" ]; then
        command -v "$COMPONENTIZE_PY" >/dev/null 2>&1
        return
    fi
    command -v componentize-py >/dev/null 2>&1 && return 0
    command -v python3 >/dev/null 2>&1 || return 1
    local scripts
    scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
    [ -n "$scripts" ] && [ -x "$scripts/componentize-py" ]
}
if ! find_componentize_py; then
    command -v python3 >/dev/null 2>&1 ||
        missing "componentize-py and python3 not found: apt-get install python3 python3-pip, then pip install -r $requirements"
    echo "scripts/test.sh: installing componentize-py (python3 -m pip install -r $requirements)" >&2
    python3 -m pip install --quiet -r "$requirements" >&2 ||
        missing "componentize-py is missing and pip could not install it: pip install -r $requirements (in a venv or with --user), then re-run"
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
    find_componentize_py ||
        missing "pip installed componentize-py but it is not on PATH: add python3's scripts directory to PATH, or set COMPONENTIZE_PY"
fi

cargo fmt --all -- --check
# Clippy lints every workspace crate (lib, bins, tests, build scripts) while
# the test build compiles it: clippy-driver is the workspace's rustc wrapper
# with warnings denied (what `cargo clippy --workspace --all-targets -- -D
# warnings` checks), so the workspace is compiled once instead of a check
# pass followed by a build.
clippy_driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
[ -n "$clippy_driver" ] ||
    missing "clippy-driver not found: rustup component add clippy"
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# --no-fail-fast: a failing test binary must not hide the results of the
# others. --show-output: the load and latency tests print their figures
# (requests, failures, latencies).
cargo test --workspace --locked --no-fail-fast -- --show-output
