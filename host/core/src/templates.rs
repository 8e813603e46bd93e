//! The 53 marathon-lb templates: defaults, global overrides, HEAD.
//!
//! Precedence for each template, highest first: environment variable
//! `HAPROXY_<NAME>` (non-empty; the two characters `\\n` become a newline),
//! file `HAPROXY_<NAME>` in the templates directory, the built-in default from
//! `templates/` (embedded at build time). Per-service overrides come from app
//! labels and are applied by the renderer.

use std::collections::BTreeMap;

/// Every template name (without the `HAPROXY_` prefix), in marathon-lb's order.
pub const TEMPLATE_NAMES: [&str; 53] = [
    "HEAD",
    "USERLIST_HEAD",
    "HTTP_FRONTEND_HEAD",
    "HTTP_FRONTEND_APPID_HEAD",
    "HTTPS_FRONTEND_HEAD",
    "HTTPS_GROUPED_FRONTEND_HEAD",
    "HTTPS_GROUPED_VHOST_FRONTEND_HEAD",
    "HTTPS_GROUPED_VHOST_BACKEND_HEAD",
    "HTTPS_GROUPED_VHOST_FRONTEND_ACL",
    "FRONTEND_HEAD",
    "BACKEND_HEAD",
    "BACKEND_REDIRECT_HTTP_TO_HTTPS",
    "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH",
    "BACKEND_HSTS_OPTIONS",
    "HTTP_FRONTEND_ACL",
    "MAP_HTTP_FRONTEND_ACL",
    "HTTP_FRONTEND_ACL_WITH_AUTH",
    "HTTP_FRONTEND_ACL_ONLY",
    "MAP_HTTP_FRONTEND_ACL_ONLY",
    "HTTP_FRONTEND_ROUTING_ONLY",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH",
    "HTTP_FRONTEND_ACL_WITH_PATH",
    "HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH",
    "HTTP_FRONTEND_ACL_ONLY_WITH_PATH",
    "HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH",
    "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
    "HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
    "HTTP_FRONTEND_APPID_ACL",
    "MAP_HTTP_FRONTEND_APPID_ACL",
    "HTTPS_FRONTEND_ACL",
    "MAP_HTTPS_FRONTEND_ACL",
    "HTTPS_FRONTEND_ACL_WITH_AUTH",
    "HTTPS_FRONTEND_AUTH_ACL_ONLY",
    "HTTPS_FRONTEND_AUTH_REQUEST_ONLY",
    "HTTPS_FRONTEND_ACL_WITH_PATH",
    "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH",
    "BACKEND_HTTP_OPTIONS",
    "HTTP_BACKEND_PROXYPASS_GLUE",
    "HTTP_BACKEND_REVPROXY_GLUE",
    "HTTP_BACKEND_REDIR",
    "BACKEND_HTTP_HEALTHCHECK_OPTIONS",
    "BACKEND_TCP_HEALTHCHECK_OPTIONS",
    "BACKEND_STICKY_OPTIONS",
    "BACKEND_SERVER_OPTIONS",
    "BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS",
    "BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS",
    "FRONTEND_BACKEND_GLUE",
    "HTTP_BACKEND_NETWORK_ALLOWED_ACL",
    "HTTP_BACKEND_ACL_ALLOW_DENY",
    "TCP_BACKEND_NETWORK_ALLOWED_ACL",
    "TCP_BACKEND_ACL_ALLOW_DENY",
];

const DEFAULTS: [&str; 53] = [
    include_str!("../../../templates/HAPROXY_HEAD"),
    include_str!("../../../templates/HAPROXY_USERLIST_HEAD"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_HEAD"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_APPID_HEAD"),
    include_str!("../../../templates/HAPROXY_HTTPS_FRONTEND_HEAD"),
    include_str!("../../../templates/HAPROXY_HTTPS_GROUPED_FRONTEND_HEAD"),
    include_str!("../../../templates/HAPROXY_HTTPS_GROUPED_VHOST_FRONTEND_HEAD"),
    include_str!("../../../templates/HAPROXY_HTTPS_GROUPED_VHOST_BACKEND_HEAD"),
    include_str!("../../../templates/HAPROXY_HTTPS_GROUPED_VHOST_FRONTEND_ACL"),
    include_str!("../../../templates/HAPROXY_FRONTEND_HEAD"),
    include_str!("../../../templates/HAPROXY_BACKEND_HEAD"),
    include_str!("../../../templates/HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS"),
    include_str!("../../../templates/HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH"),
    include_str!("../../../templates/HAPROXY_BACKEND_HSTS_OPTIONS"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_ACL"),
    include_str!("../../../templates/HAPROXY_MAP_HTTP_FRONTEND_ACL"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_ACL_WITH_AUTH"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_ACL_ONLY"),
    include_str!("../../../templates/HAPROXY_MAP_HTTP_FRONTEND_ACL_ONLY"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_ROUTING_ONLY"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_ACL_WITH_PATH"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH"),
    include_str!("../../../templates/HAPROXY_HTTPS_FRONTEND_ACL_ONLY_WITH_PATH"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH"),
    include_str!("../../../templates/HAPROXY_HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH"),
    include_str!("../../../templates/HAPROXY_HTTP_FRONTEND_APPID_ACL"),
    include_str!("../../../templates/HAPROXY_MAP_HTTP_FRONTEND_APPID_ACL"),
    include_str!("../../../templates/HAPROXY_HTTPS_FRONTEND_ACL"),
    include_str!("../../../templates/HAPROXY_MAP_HTTPS_FRONTEND_ACL"),
    include_str!("../../../templates/HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH"),
    include_str!("../../../templates/HAPROXY_HTTPS_FRONTEND_AUTH_ACL_ONLY"),
    include_str!("../../../templates/HAPROXY_HTTPS_FRONTEND_AUTH_REQUEST_ONLY"),
    include_str!("../../../templates/HAPROXY_HTTPS_FRONTEND_ACL_WITH_PATH"),
    include_str!("../../../templates/HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH"),
    include_str!("../../../templates/HAPROXY_BACKEND_HTTP_OPTIONS"),
    include_str!("../../../templates/HAPROXY_HTTP_BACKEND_PROXYPASS_GLUE"),
    include_str!("../../../templates/HAPROXY_HTTP_BACKEND_REVPROXY_GLUE"),
    include_str!("../../../templates/HAPROXY_HTTP_BACKEND_REDIR"),
    include_str!("../../../templates/HAPROXY_BACKEND_HTTP_HEALTHCHECK_OPTIONS"),
    include_str!("../../../templates/HAPROXY_BACKEND_TCP_HEALTHCHECK_OPTIONS"),
    include_str!("../../../templates/HAPROXY_BACKEND_STICKY_OPTIONS"),
    include_str!("../../../templates/HAPROXY_BACKEND_SERVER_OPTIONS"),
    include_str!("../../../templates/HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS"),
    include_str!("../../../templates/HAPROXY_BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS"),
    include_str!("../../../templates/HAPROXY_FRONTEND_BACKEND_GLUE"),
    include_str!("../../../templates/HAPROXY_HTTP_BACKEND_NETWORK_ALLOWED_ACL"),
    include_str!("../../../templates/HAPROXY_HTTP_BACKEND_ACL_ALLOW_DENY"),
    include_str!("../../../templates/HAPROXY_TCP_BACKEND_NETWORK_ALLOWED_ACL"),
    include_str!("../../../templates/HAPROXY_TCP_BACKEND_ACL_ALLOW_DENY"),
];

/// Where the option lines go in the default HEAD.
const OPTIONS_MARKER: &str = "@@HAPROXY_GLOBAL_DEFAULT_OPTIONS@@\n";

/// `text` with the option-lines marker (a whole line) replaced by the
/// option lines of `options`. The shipped `templates/HAPROXY_HEAD` carries
/// the marker, so a copy of it used as an override (file or environment)
/// gets the same lines as the default instead of an `unknown keyword
/// '@@HAPROXY_GLOBAL_DEFAULT_OPTIONS@@'` config. marathon-lb has no marker,
/// so no marathon-lb template is changed by this.
fn splice_options(text: &str, options: &str) -> String {
    let marker = OPTIONS_MARKER.trim_end();
    if !text.contains(marker) {
        return text.to_owned();
    }
    let lines = global_option_lines(options);
    text.replace(OPTIONS_MARKER, &lines)
        .replace(marker, lines.trim_end_matches('\n'))
}

/// Whether `text` is exactly the built-in default of template `name` as
/// shipped in `templates/` (for HEAD: with the marker). Such a file in a
/// templates directory — the repository's own `templates/` when the binary
/// runs from the repository root — is not an override.
pub fn is_shipped_default(name: &str, text: &str) -> bool {
    TEMPLATE_NAMES
        .iter()
        .position(|n| *n == name)
        .is_some_and(|i| DEFAULTS[i] == text)
}

/// `HAPROXY_GLOBAL_DEFAULT_OPTIONS` when unset.
pub const DEFAULT_GLOBAL_OPTIONS: &str = "redispatch,http-server-close,dontlognull";

/// Templates that are appended verbatim (never formatted).
pub const RAW_TEMPLATES: &[&str] = &[
    "HEAD",
    "HTTP_FRONTEND_HEAD",
    "HTTP_FRONTEND_APPID_HEAD",
    "HTTPS_GROUPED_FRONTEND_HEAD",
    "BACKEND_HSTS_OPTIONS",
    "BACKEND_HTTP_OPTIONS",
    "BACKEND_STICKY_OPTIONS",
    "HTTP_BACKEND_ACL_ALLOW_DENY",
    "TCP_BACKEND_ACL_ALLOW_DENY",
];

/// A global template set that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A custom HEAD still has `daemon` or lacks `expose-fd listeners`.
    #[error(
        "custom HAPROXY_HEAD template: since marathon-lb 1.12 the HEAD must not contain \
         \"daemon\" and must contain \"stats socket /var/run/haproxy/socket expose-fd listeners\""
    )]
    HeadNeedsUpgrade,
    /// An override names a template that does not exist.
    #[error("unknown template HAPROXY_{0}")]
    Unknown(String),
}

/// The option lines of the default HEAD: each entry stripped, de-duplicated
/// and sorted as whole lines.
pub fn global_option_lines(options: &str) -> String {
    let mut lines: Vec<String> = options
        .split(',')
        .map(|o| format!("  option            {}\n", o.trim()))
        .collect();
    lines.sort();
    lines.dedup();
    lines.concat()
}

/// The resolved global templates.
#[derive(Debug, Clone)]
pub struct Templates {
    values: Vec<String>,
    /// (name, position in `values`), sorted by name.
    index: Vec<(&'static str, usize)>,
}

/// Where the overrides for a template set come from (read by the caller).
#[derive(Debug, Clone, Default)]
pub struct TemplateSources {
    /// `HAPROXY_GLOBAL_DEFAULT_OPTIONS` (None = unset).
    pub global_default_options: Option<String>,
    /// Environment variables `HAPROXY_<NAME>` by template name.
    pub env: BTreeMap<String, String>,
    /// Files `HAPROXY_<NAME>` of the templates directory by template name.
    pub files: BTreeMap<String, String>,
}

impl Templates {
    /// The built-in defaults (with the default option lines).
    pub fn defaults() -> Self {
        Self::resolve(&TemplateSources::default()).expect("default templates are valid")
    }

    /// Apply environment and file overrides over the defaults.
    pub fn resolve(sources: &TemplateSources) -> Result<Self, TemplateError> {
        for name in sources.env.keys().chain(sources.files.keys()) {
            if !TEMPLATE_NAMES.contains(&name.as_str()) {
                return Err(TemplateError::Unknown(name.clone()));
            }
        }
        let options = sources
            .global_default_options
            .as_deref()
            .unwrap_or(DEFAULT_GLOBAL_OPTIONS);
        let values = TEMPLATE_NAMES
            .iter()
            .zip(DEFAULTS)
            .map(|(name, default)| {
                let value = if let Some(v) = sources.env.get(*name).filter(|v| !v.is_empty()) {
                    v.replace("\\n", "\n")
                } else if let Some(v) = sources.files.get(*name) {
                    v.clone()
                } else {
                    (*default).to_owned()
                };
                if *name == "HEAD" {
                    splice_options(&value, options)
                } else {
                    value
                }
            })
            .collect::<Vec<_>>();
        let head = &values[0];
        if head.split_whitespace().any(|t| t == "daemon") || !head.contains("expose-fd listeners") {
            return Err(TemplateError::HeadNeedsUpgrade);
        }
        let mut index: Vec<(&'static str, usize)> = TEMPLATE_NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i))
            .collect();
        index.sort_unstable();
        Ok(Self { values, index })
    }

    /// The text of global template `name`.
    ///
    /// # Panics
    /// When `name` is not one of [`TEMPLATE_NAMES`] (a programming error).
    pub fn get(&self, name: &str) -> &str {
        let i = self
            .index
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .map(|found| self.index[found].1)
            .unwrap_or_else(|_| panic!("unknown template name {name}"));
        &self.values[i]
    }

    /// The built-in default of `name` (HEAD with the default option lines).
    pub fn default_text(name: &str) -> Option<String> {
        let i = TEMPLATE_NAMES.iter().position(|n| *n == name)?;
        Some(if name == "HEAD" {
            DEFAULTS[i].replace(OPTIONS_MARKER, &global_option_lines(DEFAULT_GLOBAL_OPTIONS))
        } else {
            DEFAULTS[i].to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_default_has_sorted_options() {
        let t = Templates::defaults();
        assert!(t.get("HEAD").contains(
            "  option            dontlognull\n  option            http-server-close\n  option            redispatch\nlisten stats\n"
        ));
        assert!(!t.get("HEAD").contains("@@"));
    }

    #[test]
    fn option_lines_are_trimmed_deduplicated_sorted() {
        assert_eq!(
            global_option_lines(" redispatch,httplog , dontlognull,httplog"),
            "  option            dontlognull\n  option            httplog\n  option            redispatch\n"
        );
    }

    #[test]
    fn env_beats_file_and_unescapes_newlines() {
        let mut s = TemplateSources::default();
        s.env.insert("BACKEND_HEAD".into(), "a\\nb".into());
        s.files.insert("BACKEND_HEAD".into(), "file".into());
        s.files.insert("FRONTEND_HEAD".into(), "f\\n".into());
        let t = Templates::resolve(&s).unwrap();
        assert_eq!(t.get("BACKEND_HEAD"), "a\nb");
        assert_eq!(t.get("FRONTEND_HEAD"), "f\\n");
    }

    #[test]
    fn the_marker_is_resolved_in_a_head_override_too() {
        let shipped = include_str!("../../../templates/HAPROXY_HEAD");
        let mut s = TemplateSources::default();
        s.files.insert("HEAD".into(), shipped.to_owned());
        assert_eq!(
            Templates::resolve(&s).unwrap().get("HEAD"),
            Templates::defaults().get("HEAD")
        );
        // An edited copy (lower maxconn) with other options.
        s.files.insert(
            "HEAD".into(),
            shipped.replace("maxconn 50000", "maxconn 1000"),
        );
        s.global_default_options = Some("httplog".into());
        let head = Templates::resolve(&s).unwrap().get("HEAD").to_owned();
        assert!(!head.contains("@@"), "{head}");
        assert!(head.contains("maxconn 1000\n"));
        assert!(head.contains("60s\n  option            httplog\nlisten stats\n"));
        // A marker written without its newline (last line of a file).
        assert_eq!(
            splice_options("a\n@@HAPROXY_GLOBAL_DEFAULT_OPTIONS@@", "x"),
            "a\n  option            x"
        );
        assert!(is_shipped_default("HEAD", shipped));
        assert!(!is_shipped_default("HEAD", &head));
    }

    #[test]
    fn head_with_daemon_is_refused() {
        let mut s = TemplateSources::default();
        s.env.insert(
            "HEAD".into(),
            "global\n  daemon\n  stats socket /x expose-fd listeners\n".into(),
        );
        assert_eq!(
            Templates::resolve(&s).unwrap_err(),
            TemplateError::HeadNeedsUpgrade
        );
    }
}
