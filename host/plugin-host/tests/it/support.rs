//! Helpers shared by the plugin host's tests: the corpus location and the
//! default plugin compiled once per test binary.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use mlb_plugin_host::{
    DEFAULT_LABEL_PLUGIN, PluginError, PluginLimits, PluginRuntime, WasmLabelPlugin,
};

/// `tests/golden` at the workspace root.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

/// One engine for every test, with its compile cache in the target's
/// scratch directory: the default plugin is compiled by the first test that
/// needs it (or an earlier run) and loaded from the cache by every other.
fn runtime() -> &'static PluginRuntime {
    static RUNTIME: LazyLock<PluginRuntime> = LazyLock::new(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache");
        PluginRuntime::new(Some(&dir)).expect("plugin runtime")
    });
    &RUNTIME
}

/// The embedded default plugin with `limits`, as
/// [`WasmLabelPlugin::default_plugin`] makes it, on the shared runtime.
pub fn default_plugin(limits: PluginLimits) -> Result<WasmLabelPlugin, PluginError> {
    WasmLabelPlugin::with_runtime(runtime(), "default-label", DEFAULT_LABEL_PLUGIN, limits)
}
