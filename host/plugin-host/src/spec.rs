//! `--plugin PATH.wasm[,key=value…]`: which plugin, its configuration, its
//! limits and what it is granted.
//!
//! Keys the host understands (`memory-mib`, `timeout-ms`, `name`,
//! `allow-clock`, `allow-dir`, `allow-env`, `stub`) are taken out; every
//! other `key=value` is passed to the plugin in order. A segment without
//! `=` continues the previous value, so `owners=team-a,team-b` is one value.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::PluginLimits;

/// What a plugin may reach beyond computing on its inputs. Everything is
/// denied unless listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Read the real clocks (otherwise they read as the Unix epoch).
    pub clock: bool,
    /// Host directories mounted read-only at the same path.
    pub dirs: Vec<PathBuf>,
    /// Environment variables passed through (name; value read at start-up).
    pub env: Vec<String>,
    /// Capabilities the plugin may import but that give it nothing
    /// (toolchains such as componentize-py import all of WASI).
    pub stubs: BTreeSet<Capability>,
}

/// A WASI capability a plugin can import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// `wasi:filesystem/*`.
    Files,
    /// `wasi:clocks/*`.
    Clock,
    /// `wasi:sockets/*`.
    Network,
}

impl Capability {
    /// The word used in `stub=` and in messages.
    pub fn word(self) -> &'static str {
        match self {
            Self::Files => "files",
            Self::Clock => "clock",
            Self::Network => "network",
        }
    }

    fn from_word(word: &str) -> Option<Self> {
        [Self::Files, Self::Clock, Self::Network]
            .into_iter()
            .find(|c| c.word() == word)
    }
}

/// One `--plugin` flag, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// The component file.
    pub path: PathBuf,
    /// Name in logs and diagnostics (default: the file stem).
    pub name: String,
    /// Configuration passed to the plugin.
    pub config: Vec<(String, String)>,
    /// Memory cap and time per call.
    pub limits: PluginLimits,
    /// What the plugin is granted.
    pub grants: Grants,
}

/// A `--plugin` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--plugin {spec}: {reason}")]
pub struct SpecError {
    /// The flag's value.
    pub spec: String,
    /// What is wrong.
    pub reason: String,
}

/// Limits of a custom plugin unless its flag sets them.
pub const CUSTOM_LIMITS: PluginLimits = PluginLimits {
    memory_bytes: 256 << 20,
    deadline: Duration::from_secs(2),
};

impl std::str::FromStr for PluginSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let err = |reason: String| SpecError {
            spec: spec.to_owned(),
            reason,
        };
        let mut segments = spec.split(',');
        let path = segments.next().unwrap_or_default().trim();
        if path.is_empty() {
            return Err(err("no plugin file given".into()));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for segment in segments {
            match segment.split_once('=') {
                Some((key, value)) if !key.trim().is_empty() => {
                    pairs.push((key.trim().to_owned(), value.to_owned()));
                }
                // The one host key that needs no value, wherever it stands.
                _ if segment.trim() == "allow-clock" => {
                    pairs.push(("allow-clock".into(), "true".into()));
                }
                _ => match pairs.last_mut() {
                    Some((_, value)) => {
                        value.push(',');
                        value.push_str(segment);
                    }
                    None => return Err(err(format!("'{segment}' is not key=value"))),
                },
            }
        }
        let path = PathBuf::from(path);
        let mut out = PluginSpec {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "plugin".to_owned()),
            path,
            config: Vec::new(),
            limits: CUSTOM_LIMITS,
            grants: Grants::default(),
        };
        for (key, value) in pairs {
            match key.as_str() {
                "name" if value.is_empty() => return Err(err("name= needs a value".into())),
                "name" => out.name = value,
                "memory-mib" => {
                    let mib: usize = value
                        .parse()
                        .ok()
                        .filter(|m| (1..=4096).contains(m))
                        .ok_or_else(|| err(format!("memory-mib={value}: expected 1..4096")))?;
                    out.limits.memory_bytes = mib << 20;
                }
                "timeout-ms" => {
                    let ms: u64 = value
                        .parse()
                        .ok()
                        .filter(|m| (1..=600_000).contains(m))
                        .ok_or_else(|| err(format!("timeout-ms={value}: expected 1..600000")))?;
                    out.limits.deadline = Duration::from_millis(ms);
                }
                "allow-clock" => {
                    out.grants.clock = parse_bool(&value).ok_or_else(|| {
                        err(format!("allow-clock={value}: expected true or false"))
                    })?;
                }
                "allow-dir" => {
                    let dir = PathBuf::from(&value);
                    if !dir.is_absolute() {
                        return Err(err(format!("allow-dir={value}: must be an absolute path")));
                    }
                    out.grants.dirs.push(dir);
                }
                "allow-env" => out.grants.env.extend(
                    value
                        .split(',')
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned),
                ),
                "allow-network" => {
                    return Err(err(
                        "network access cannot be granted to plugins (use stub=network to link \
                         a network that refuses every connection)"
                            .into(),
                    ));
                }
                "stub" => {
                    for word in value.split(',').filter(|w| !w.is_empty()) {
                        let cap = Capability::from_word(word).ok_or_else(|| {
                            err(format!("stub={word}: expected files, clock or network"))
                        })?;
                        out.grants.stubs.insert(cap);
                    }
                }
                _ => out.config.push((key, value)),
            }
        }
        Ok(out)
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "yes" | "1" | "" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys_are_taken_out_and_commas_continue_values() {
        let spec: PluginSpec =
            "/p/vhost.wasm,group.external=example.com,example.org,timeout-ms=250,memory-mib=64,\
             allow-env=HOME,stub=clock,files,mode=strict"
                .parse()
                .unwrap();
        assert_eq!(spec.name, "vhost");
        assert_eq!(
            spec.config,
            vec![
                (
                    "group.external".to_owned(),
                    "example.com,example.org".to_owned()
                ),
                ("mode".to_owned(), "strict".to_owned()),
            ]
        );
        assert_eq!(spec.limits.deadline, Duration::from_millis(250));
        assert_eq!(spec.limits.memory_bytes, 64 << 20);
        assert_eq!(spec.grants.env, vec!["HOME".to_owned()]);
        assert!(!spec.grants.clock);
        let late: PluginSpec = "/p/a.wasm,owners=a,b,allow-clock".parse().unwrap();
        assert!(late.grants.clock);
        assert_eq!(late.config, vec![("owners".to_owned(), "a,b".to_owned())]);
        assert_eq!(
            spec.grants.stubs.iter().copied().collect::<Vec<_>>(),
            vec![Capability::Files, Capability::Clock]
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        for (spec, needle) in [
            ("", "no plugin file"),
            ("a.wasm,memory-mib=0", "memory-mib=0"),
            ("a.wasm,timeout-ms=x", "timeout-ms=x"),
            ("a.wasm,allow-dir=rel", "absolute"),
            ("a.wasm,allow-network=yes", "cannot be granted"),
            ("a.wasm,stub=gpu", "stub=gpu"),
            ("a.wasm,oops", "not key=value"),
            ("a.wasm,name=", "name= needs a value"),
        ] {
            let e = spec.parse::<PluginSpec>().unwrap_err();
            assert!(e.to_string().contains(needle), "{spec}: {e}");
        }
    }
}
