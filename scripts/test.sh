#!/usr/bin/env bash
# Every check and every test of the project (what CI runs after installing
# prerequisites): formatting, clippy with warnings denied, then all tests,
# including the golden corpus and the end-to-end tests with a real HAProxy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# --show-output: the load and latency tests print their figures (requests, failures, latencies).
cargo test --workspace --locked -- --show-output
