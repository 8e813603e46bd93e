//! Paths of the example plugins, built by `build.rs`, for the tests in
//! `tests/`.
//!
//! The Rust examples (`plugins/examples`, one cargo workspace for
//! `wasm32-wasip2`) are built with a nested cargo; the Python example with
//! `plugins/examples/python-owner-policy/build.sh` (componentize-py). A
//! missing toolchain does not break the build: the affected path is empty
//! and the tests that need it fail with the reason.
//!
//! # Layout
//! - this file: [`example`] and [`python_policy`].
//! - `build.rs`: the two builds.
//! - `tests/`: failure modes, loading and the compile cache, each example.

#![forbid(unsafe_code)]

use std::path::PathBuf;

/// A Rust example (or fixture) component, by crate file stem, e.g.
/// `mlb_example_traefik_labels`.
///
/// # Panics
/// If the examples could not be built (the reason is in the message).
pub fn example(stem: &str) -> PathBuf {
    let dir = env!("MLB_EXAMPLES_DIR");
    assert!(
        !dir.is_empty(),
        "the example plugins were not built: {}",
        env!("MLB_EXAMPLES_ERROR")
    );
    let path = PathBuf::from(dir).join(format!("{stem}.wasm"));
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// The Python policy component.
///
/// # Panics
/// If it could not be built (componentize-py missing, say).
pub fn python_policy() -> PathBuf {
    let path = env!("MLB_PYTHON_POLICY");
    assert!(
        !path.is_empty(),
        "the Python example plugin was not built: {}",
        env!("MLB_PYTHON_ERROR")
    );
    PathBuf::from(path)
}
