//! Why a plugin cannot be loaded: [`PluginError`] (which plugin, and what
//! is wrong with it) and [`LoadError`] (which loading step failed, and
//! why), with wasmtime's errors kept as sources through [`WasmError`].
//!
//! # Display and `source()`
//! Each `Display` is the whole one-line story (the cause included, as the
//! messages have always read); `source()` exposes the typed cause as well
//! (`std::io::Error`, wasmtime's error chain, the plugin's own error) for
//! matching and downcasting. A printer that walks the chain should skip a
//! cause whose text its parent already shows.

use std::path::PathBuf;

use crate::inspect;
use crate::spec::Capability;

/// A cause without a nameable type, or a plain message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A plugin that cannot be loaded. Fatal at start-up.
///
/// Every variant names the plugin; [`PluginError::Load`] says what failed
/// and keeps why as its `source()` ([`LoadError`]).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Reading, compiling, linking or starting the plugin failed, or it
    /// refused its configuration.
    #[error("plugin {plugin}: {cause}")]
    Load {
        /// Which plugin.
        plugin: String,
        /// What failed and why (also the `source()`).
        #[source]
        cause: LoadError,
    },
    /// Built against another version of the WIT package.
    #[error(
        "plugin {plugin}: built for {interface} (version {found}), but this marathon-lb speaks \
         mlb:plugins@{expected}; rebuild it against wit/mlb-plugins.wit",
        expected = inspect::WIT_VERSION
    )]
    Version {
        /// Which plugin.
        plugin: String,
        /// The interface carrying the version.
        interface: String,
        /// Its version.
        found: String,
    },
    /// Not one of the three worlds.
    #[error("plugin {plugin}: {message}")]
    World {
        /// Which plugin.
        plugin: String,
        /// What it is instead.
        message: String,
        /// wasmtime's error, when its exports do not match the world's
        /// bindings.
        #[source]
        source: Option<WasmError>,
    },
    /// Imports something the host does not provide.
    #[error("plugin {plugin}: imports {import}: {reason}")]
    Import {
        /// Which plugin.
        plugin: String,
        /// The import.
        import: String,
        /// Why it is refused.
        reason: String,
    },
    /// Imports a capability it was not granted.
    #[error(
        "plugin {plugin}: imports {import} ({cap}) but was not granted it; grant it with {hint} \
         or link an inert stub with stub={cap}",
        cap = capability.word(),
        hint = match capability {
            Capability::Clock => "allow-clock",
            Capability::Files => "allow-dir=/path",
            Capability::Network => "nothing (network is never granted)",
        }
    )]
    Capability {
        /// Which plugin.
        plugin: String,
        /// The import.
        import: String,
        /// What it would reach.
        capability: Capability,
    },
}

impl PluginError {
    /// The plugin the error is about (`(engine)` when the shared engine
    /// itself could not be set up).
    pub fn plugin(&self) -> &str {
        match self {
            Self::Load { plugin, .. }
            | Self::Version { plugin, .. }
            | Self::World { plugin, .. }
            | Self::Import { plugin, .. }
            | Self::Capability { plugin, .. } => plugin,
        }
    }

    /// A [`PluginError::Load`] of `plugin`.
    pub fn load(plugin: impl Into<String>, cause: LoadError) -> Self {
        Self::Load {
            plugin: plugin.into(),
            cause,
        }
    }
}

/// Which step of loading a plugin failed, and why.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The plugin file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not a valid WASM component.
    #[error("not a valid component: {0}")]
    Compile(#[source] WasmError),
    /// Linking against the host's imports failed.
    #[error("{0}")]
    Link(#[source] WasmError),
    /// A granted directory (`allow-dir=`) is not a directory.
    #[error("allow-dir={}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The first instance (a filter plugin's, to ask for its filters) could
    /// not be created.
    #[error("{0}")]
    Instantiate(String),
    /// The plugin trapped (panic, out of memory, deadline) while loading.
    #[error("{message}")]
    Trap {
        /// The trap, with what the guest printed.
        message: String,
        /// wasmtime's error.
        #[source]
        trap: WasmError,
    },
    /// The plugin returned an error for its configuration.
    #[error("refused its configuration: {0}")]
    RefusedConfig(String),
    /// A filter plugin offers a filter name that is not an identifier.
    #[error("filter name '{0}' is not an identifier")]
    FilterName(String),
    /// A filter plugin offers a filter another plugin already provides.
    #[error("filter '{filter}' is already provided by plugin {other}")]
    FilterClash {
        /// The filter.
        filter: String,
        /// The plugin loaded earlier that provides it.
        other: String,
    },
    /// A label or policy plugin fails on an empty batch: its configuration
    /// is probably wrong.
    #[error("fails on an empty batch (bad configuration?): {0}")]
    EmptyBatch(#[source] BoxError),
    /// A call made to check the plugin failed.
    #[error("{0}")]
    Call(#[source] BoxError),
    /// The shared engine could not be set up.
    #[error("{0}")]
    Engine(#[source] BoxError),
}

/// A wasmtime error (an `anyhow::Error`, which is no `std::error::Error`)
/// as a `std::error::Error`: shown with its context chain on one line
/// (`{:#}`); `source()` is the chain below its top error. The original is
/// `.0` (e.g. to downcast to [`wasmtime::Trap`]).
#[derive(Debug)]
pub struct WasmError(pub wasmtime::Error);

impl std::fmt::Display for WasmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for WasmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<wasmtime::Error> for WasmError {
    fn from(e: wasmtime::Error) -> Self {
        Self(e)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::{PluginLimits, PluginRuntime, PluginSpec, load_plugin, load_plugin_bytes};

    #[test]
    fn an_unreadable_file_names_the_plugin_the_file_and_the_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.wasm");
        let spec: PluginSpec = path.to_str().unwrap().parse().unwrap();
        let runtime = PluginRuntime::new(None).unwrap();
        let e = load_plugin(&runtime, &spec).unwrap_err();
        assert_eq!(e.plugin(), "missing");
        assert!(
            matches!(&e, PluginError::Load { cause: LoadError::Read { path: p, .. }, .. } if *p == path),
            "{e:?}"
        );
        let io = e
            .source()
            .and_then(|s| s.source())
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound)
        );
        assert!(
            e.to_string()
                .starts_with(&format!("plugin missing: cannot read {}: ", path.display())),
            "{e}"
        );
    }

    #[test]
    fn bytes_that_are_no_component_keep_wasmtimes_error() {
        let spec: PluginSpec = "/p/broken.wasm".parse().unwrap();
        let runtime = PluginRuntime::new(None).unwrap();
        let e = load_plugin_bytes(&runtime, &spec, b"not wasm").unwrap_err();
        let PluginError::Load {
            cause: LoadError::Compile(wasm),
            ..
        } = &e
        else {
            panic!("{e:?}");
        };
        assert!(!wasm.to_string().is_empty());
        assert!(
            e.source().is_some_and(|s| s.is::<LoadError>()),
            "the cause is the typed step"
        );
        assert!(
            e.to_string()
                .starts_with("plugin broken: not a valid component: "),
            "{e}"
        );
    }

    #[test]
    fn a_granted_path_that_is_no_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let grants = crate::Grants {
            dirs: vec![file.clone()],
            ..Default::default()
        };
        let e = crate::sandbox::Sandbox::new("p", PluginLimits::default(), &grants).unwrap_err();
        assert!(
            matches!(&e, PluginError::Load { cause: LoadError::NotADirectory(d), .. } if *d == file),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("plugin p: allow-dir={}: not a directory", file.display())
        );
    }

    #[test]
    fn wasm_errors_show_their_context_and_keep_the_chain() {
        let e = WasmError(wasmtime::Error::msg("inner cause").context("outer step"));
        assert_eq!(e.to_string(), "outer step: inner cause");
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("inner cause")
        );
    }
}
