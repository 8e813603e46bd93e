//! What a component is: its world (from its exports), the `mlb:plugins`
//! version it was built against, and what it imports — checked against the
//! plugin's grants before anything is instantiated.

use std::collections::BTreeSet;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::PluginError;
use super::spec::{Capability, Grants};

/// The WIT package plugins are built against.
pub const WIT_PACKAGE: &str = "mlb:plugins";
/// The version of it this host speaks.
pub const WIT_VERSION: &str = "0.2.0";

/// The kind of a plugin, by the interface it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// Exports `label-interpreter`.
    Label,
    /// Exports `template-filter`.
    Filter,
    /// Exports `policy`.
    Policy,
}

impl World {
    /// The WIT world name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Label => "label-plugin",
            Self::Filter => "filter-plugin",
            Self::Policy => "policy-plugin",
        }
    }

    fn from_interface(interface: &str) -> Option<Self> {
        match interface {
            "label-interpreter" => Some(Self::Label),
            "template-filter" => Some(Self::Filter),
            "policy" => Some(Self::Policy),
            _ => None,
        }
    }
}

/// The result of inspecting a component.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// Its world.
    pub world: World,
    /// Every import name, sorted.
    pub imports: Vec<String>,
    /// Every export name, sorted.
    pub exports: Vec<String>,
    /// WASI capabilities it imports.
    pub capabilities: BTreeSet<Capability>,
}

/// `namespace:package/interface@version` split into its parts.
fn split_name(name: &str) -> Option<(&str, &str, &str)> {
    let (package, rest) = name.split_once('/')?;
    let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
    Some((package, interface, version))
}

/// How the host treats one import.
enum ImportClass {
    /// Linked and harmless (streams, exit, random, an empty environment).
    Inert,
    /// Linked; gives access only if granted.
    Capability(Capability),
    /// Our own package.
    Mlb,
    /// Not provided.
    Unknown,
}

fn classify(package: &str, interface: &str) -> ImportClass {
    match package {
        "wasi:io" | "wasi:random" => ImportClass::Inert,
        "wasi:cli" => match interface {
            "environment" | "exit" | "stdin" | "stdout" | "stderr" | "terminal-input"
            | "terminal-output" | "terminal-stdin" | "terminal-stdout" | "terminal-stderr" => {
                ImportClass::Inert
            }
            _ => ImportClass::Unknown,
        },
        "wasi:clocks" => ImportClass::Capability(Capability::Clock),
        "wasi:filesystem" => ImportClass::Capability(Capability::Files),
        "wasi:sockets" => ImportClass::Capability(Capability::Network),
        p if p == WIT_PACKAGE => ImportClass::Mlb,
        _ => ImportClass::Unknown,
    }
}

fn granted(grants: &Grants, cap: Capability) -> bool {
    grants.stubs.contains(&cap)
        || match cap {
            Capability::Clock => grants.clock,
            Capability::Files => !grants.dirs.is_empty(),
            Capability::Network => false,
        }
}

fn version_error(plugin: &str, name: &str, found: &str) -> PluginError {
    PluginError::Version {
        plugin: plugin.to_owned(),
        interface: name.to_owned(),
        found: if found.is_empty() { "(none)" } else { found }.to_owned(),
    }
}

/// Inspect `component` and check it against `grants`.
pub fn inspect(
    plugin: &str,
    engine: &Engine,
    component: &Component,
    grants: &Grants,
) -> Result<Inspection, PluginError> {
    let ty = component.component_type();
    let mut imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
    let mut exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    imports.sort();
    exports.sort();

    let mut worlds = Vec::new();
    for name in &exports {
        let Some((package, interface, version)) = split_name(name) else {
            continue;
        };
        if package != WIT_PACKAGE {
            continue;
        }
        if version != WIT_VERSION {
            return Err(version_error(plugin, name, version));
        }
        if let Some(world) = World::from_interface(interface) {
            worlds.push(world);
        }
    }
    let world = match worlds.as_slice() {
        [world] => *world,
        [] => {
            return Err(PluginError::World {
                plugin: plugin.to_owned(),
                message: format!(
                    "exports none of {WIT_PACKAGE}/label-interpreter, template-filter or policy \
                     @{WIT_VERSION} (it exports: {})",
                    if exports.is_empty() {
                        "nothing".to_owned()
                    } else {
                        exports.join(", ")
                    }
                ),
                source: None,
            });
        }
        _ => {
            return Err(PluginError::World {
                plugin: plugin.to_owned(),
                message: format!(
                    "exports several plugin interfaces ({}); build one world per plugin",
                    exports.join(", ")
                ),
                source: None,
            });
        }
    };

    let mut capabilities = BTreeSet::new();
    for name in &imports {
        let Some((package, interface, version)) = split_name(name) else {
            return Err(PluginError::Import {
                plugin: plugin.to_owned(),
                import: name.clone(),
                reason: "marathon-lb provides no such import to plugins".into(),
            });
        };
        match classify(package, interface) {
            ImportClass::Mlb => {
                if version != WIT_VERSION {
                    return Err(version_error(plugin, name, version));
                }
                if interface != "host-log" && interface != "types" {
                    return Err(PluginError::Import {
                        plugin: plugin.to_owned(),
                        import: name.clone(),
                        reason: "plugins may import only host-log from mlb:plugins".into(),
                    });
                }
            }
            ImportClass::Unknown => {
                return Err(PluginError::Import {
                    plugin: plugin.to_owned(),
                    import: name.clone(),
                    reason: "marathon-lb provides no such import to plugins".into(),
                });
            }
            class @ (ImportClass::Inert | ImportClass::Capability(_)) => {
                if !version.starts_with("0.2.") {
                    return Err(PluginError::Import {
                        plugin: plugin.to_owned(),
                        import: name.clone(),
                        reason: "only WASI 0.2 (preview 2) interfaces are provided".into(),
                    });
                }
                if let ImportClass::Capability(cap) = class {
                    if !granted(grants, cap) {
                        return Err(PluginError::Capability {
                            plugin: plugin.to_owned(),
                            import: name.clone(),
                            capability: cap,
                        });
                    }
                    capabilities.insert(cap);
                }
            }
        }
    }
    Ok(Inspection {
        world,
        imports,
        exports,
        capabilities,
    })
}
