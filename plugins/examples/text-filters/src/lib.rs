//! Example filter plugin: three text filters for templates (world
//! `filter-plugin` of `wit/mlb-plugins.wit`), used as `{name|slug}`,
//! `{name|truncate(20)}` or `{name|suffix}`.
//!
//! - `slug` — lowercase, then every run of characters outside `[a-z0-9]`
//!   becomes one `-`; leading and trailing `-` are trimmed
//!   (`/Shop/Web API` → `shop-web-api`). No arguments.
//! - `truncate(n)` — the first `n` characters (Unicode scalar values) of the
//!   value. Exactly one argument, a non-negative integer.
//! - `suffix` — the value followed by the configured `suffix`. No arguments.
//!
//! An unknown filter name, a wrong argument or a missing `suffix` setting
//! is an error, which leaves out the service whose template used the filter.
//!
//! # Configuration
//!
//! - `suffix=TEXT` — appended by the `suffix` filter (at most once; no
//!   control characters). Optional: without it `suffix` fails when applied.
//!
//! Any other key makes `filters` return an error, which refuses the plugin
//! at start-up.
//!
//! # Layout
//!
//! - this file: WIT bindings, the exported `filters`/`apply`, and the filters
//!   themselves as plain functions (`check_config`, `apply`, `slug`,
//!   `truncate`, `suffix`) with their unit tests.

wit_bindgen::generate!({
    world: "filter-plugin",
    path: "../../../wit",
});

use exports::mlb::plugins::template_filter::Guest;
use mlb::plugins::types::Config;

/// Names of the filters provided.
pub const FILTERS: [&str; 3] = ["slug", "truncate", "suffix"];

struct TextFilters;

impl Guest for TextFilters {
    fn filters(config: Config) -> Result<Vec<String>, String> {
        check_config(&config)?;
        Ok(FILTERS.iter().map(|f| f.to_string()).collect())
    }

    fn apply(
        name: String,
        value: String,
        args: Vec<String>,
        config: Config,
    ) -> Result<String, String> {
        apply(&name, &value, &args, &config)
    }
}

export!(TextFilters);

/// Validate the configuration: only `suffix`, at most once, without control
/// characters.
pub fn check_config(config: &[(String, String)]) -> Result<(), String> {
    let mut seen = false;
    for (key, value) in config {
        if key != "suffix" {
            return Err(format!("unknown config key `{key}` (known: suffix)"));
        }
        if seen {
            return Err("config key `suffix` is given more than once".to_string());
        }
        seen = true;
        if value.chars().any(char::is_control) {
            return Err("config `suffix` contains control characters".to_string());
        }
    }
    Ok(())
}

/// Apply filter `name`.
pub fn apply(
    name: &str,
    value: &str,
    args: &[String],
    config: &[(String, String)],
) -> Result<String, String> {
    match name {
        "slug" => {
            no_args(name, args)?;
            Ok(slug(value))
        }
        "truncate" => {
            let [n] = args else {
                return Err(format!(
                    "truncate takes exactly one argument, the length (got {})",
                    args.len()
                ));
            };
            let n: usize = n
                .trim()
                .parse()
                .map_err(|_| format!("truncate: the length {n:?} is not a non-negative integer"))?;
            Ok(truncate(value, n))
        }
        "suffix" => {
            no_args(name, args)?;
            let suffix_text = config
                .iter()
                .find(|(k, _)| k == "suffix")
                .map(|(_, v)| v.as_str())
                .ok_or("suffix: the plugin configuration has no `suffix` key")?;
            Ok(suffix(value, suffix_text))
        }
        other => Err(format!(
            "unknown filter `{other}` (this plugin provides: {})",
            FILTERS.join(", ")
        )),
    }
}

fn no_args(name: &str, args: &[String]) -> Result<(), String> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(format!("{name} takes no arguments (got {})", args.len()))
    }
}

/// Lowercase; each run of chars outside `[a-z0-9]` → one `-`; no `-` at
/// either end.
pub fn slug(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut pending_dash = false;
    for c in value.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
        } else {
            pending_dash = true;
        }
    }
    out
}

/// The first `n` chars of `value`.
pub fn truncate(value: &str, n: usize) -> String {
    match value.char_indices().nth(n) {
        Some((at, _)) => value[..at].to_string(),
        None => value.to_string(),
    }
}

/// `value` followed by `suffix`.
pub fn suffix(value: &str, suffix: &str) -> String {
    let mut out = String::with_capacity(value.len() + suffix.len());
    out.push_str(value);
    out.push_str(suffix);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("/Shop/Web API"), "shop-web-api");
        assert_eq!(slug("--a__b--"), "a-b");
        assert_eq!(slug("a1.B2"), "a1-b2");
        assert_eq!(slug("Ünïcode ÄPP"), "n-code-pp");
        assert_eq!(slug("***"), "");
        assert_eq!(slug(""), "");
        assert_eq!(slug("already-fine"), "already-fine");
    }

    #[test]
    fn truncates_by_chars() {
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("äöü", 2), "äö");
    }

    #[test]
    fn apply_dispatches_and_checks_args() {
        let none = cfg(&[]);
        assert_eq!(apply("slug", "A B", &[], &none).unwrap(), "a-b");
        assert_eq!(
            apply("truncate", "abcdef", &args(&["4"]), &none).unwrap(),
            "abcd"
        );
        assert!(apply("truncate", "abc", &[], &none).is_err());
        assert!(apply("truncate", "abc", &args(&["x"]), &none).is_err());
        assert!(apply("truncate", "abc", &args(&["-1"]), &none).is_err());
        assert!(apply("truncate", "abc", &args(&["1", "2"]), &none).is_err());
        assert!(apply("slug", "abc", &args(&["1"]), &none).is_err());
        let err = apply("upper", "abc", &[], &none).unwrap_err();
        assert!(err.contains("unknown filter `upper`"), "{err}");
    }

    #[test]
    fn suffix_needs_config() {
        let err = apply("suffix", "web", &[], &cfg(&[])).unwrap_err();
        assert!(err.contains("no `suffix` key"), "{err}");
        assert_eq!(
            apply("suffix", "web", &[], &cfg(&[("suffix", ".internal")])).unwrap(),
            "web.internal"
        );
    }

    #[test]
    fn config_keys() {
        assert!(check_config(&cfg(&[])).is_ok());
        assert!(check_config(&cfg(&[("suffix", "-x")])).is_ok());
        let err = check_config(&cfg(&[("sufix", "-x")])).unwrap_err();
        assert!(err.contains("unknown config key `sufix`"), "{err}");
        assert!(check_config(&cfg(&[("suffix", "a"), ("suffix", "b")])).is_err());
        assert!(check_config(&cfg(&[("suffix", "a\nb")])).is_err());
    }
}
