//! The 53 marathon-lb templates: defaults, global overrides, HEAD.
//!
//! Precedence for each template, highest first: environment variable
//! `HAPROXY_<NAME>` (non-empty; the two characters `\\n` become a newline),
//! file `HAPROXY_<NAME>` in the templates directory, the built-in default from
//! `templates/` (embedded at build time). Per-service overrides come from app
//! labels and are applied by the renderer.

use std::collections::BTreeMap;

/// Declares [`TemplateName`] and everything derived from the list of names:
/// the list is written once, in marathon-lb's order (the order of
/// `templates/manifest.txt`, which a test checks).
macro_rules! template_names {
    ($($name:ident),* $(,)?) => {
        /// A global template, named as in marathon-lb without the `HAPROXY_`
        /// prefix (`TemplateName::BACKEND_HEAD` is `HAPROXY_BACKEND_HEAD`).
        /// Names from outside (environment, files, labels) become one through
        /// [`str::parse`].
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, missing_docs)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum TemplateName {
            $($name),*
        }

        impl TemplateName {
            /// Every template, in marathon-lb's order.
            pub const ALL: [TemplateName; [$(stringify!($name)),*].len()] =
                [$(TemplateName::$name),*];

            /// The name without the `HAPROXY_` prefix, e.g. `"BACKEND_HEAD"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(TemplateName::$name => stringify!($name)),*
                }
            }
        }

        /// The built-in texts, in the order of [`TemplateName::ALL`].
        const DEFAULTS: [&str; TemplateName::ALL.len()] = [
            $(include_str!(concat!("../../../templates/HAPROXY_", stringify!($name)))),*
        ];
    };
}

template_names! {
    HEAD,
    USERLIST_HEAD,
    HTTP_FRONTEND_HEAD,
    HTTP_FRONTEND_APPID_HEAD,
    HTTPS_FRONTEND_HEAD,
    HTTPS_GROUPED_FRONTEND_HEAD,
    HTTPS_GROUPED_VHOST_FRONTEND_HEAD,
    HTTPS_GROUPED_VHOST_BACKEND_HEAD,
    HTTPS_GROUPED_VHOST_FRONTEND_ACL,
    FRONTEND_HEAD,
    BACKEND_HEAD,
    BACKEND_REDIRECT_HTTP_TO_HTTPS,
    BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH,
    BACKEND_HSTS_OPTIONS,
    HTTP_FRONTEND_ACL,
    MAP_HTTP_FRONTEND_ACL,
    HTTP_FRONTEND_ACL_WITH_AUTH,
    HTTP_FRONTEND_ACL_ONLY,
    MAP_HTTP_FRONTEND_ACL_ONLY,
    HTTP_FRONTEND_ROUTING_ONLY,
    HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH,
    HTTP_FRONTEND_ACL_WITH_PATH,
    HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH,
    HTTP_FRONTEND_ACL_ONLY_WITH_PATH,
    HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH,
    HTTPS_FRONTEND_ACL_ONLY_WITH_PATH,
    HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH,
    HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH,
    HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH,
    HTTP_FRONTEND_APPID_ACL,
    MAP_HTTP_FRONTEND_APPID_ACL,
    HTTPS_FRONTEND_ACL,
    MAP_HTTPS_FRONTEND_ACL,
    HTTPS_FRONTEND_ACL_WITH_AUTH,
    HTTPS_FRONTEND_AUTH_ACL_ONLY,
    HTTPS_FRONTEND_AUTH_REQUEST_ONLY,
    HTTPS_FRONTEND_ACL_WITH_PATH,
    HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH,
    BACKEND_HTTP_OPTIONS,
    HTTP_BACKEND_PROXYPASS_GLUE,
    HTTP_BACKEND_REVPROXY_GLUE,
    HTTP_BACKEND_REDIR,
    BACKEND_HTTP_HEALTHCHECK_OPTIONS,
    BACKEND_TCP_HEALTHCHECK_OPTIONS,
    BACKEND_STICKY_OPTIONS,
    BACKEND_SERVER_OPTIONS,
    BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS,
    BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS,
    FRONTEND_BACKEND_GLUE,
    HTTP_BACKEND_NETWORK_ALLOWED_ACL,
    HTTP_BACKEND_ACL_ALLOW_DENY,
    TCP_BACKEND_NETWORK_ALLOWED_ACL,
    TCP_BACKEND_ACL_ALLOW_DENY,
}

/// Every template name (without the `HAPROXY_` prefix), in marathon-lb's
/// order: the string view of [`TemplateName::ALL`].
pub const TEMPLATE_NAMES: [&str; TemplateName::ALL.len()] = {
    let mut names = [""; TemplateName::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = TemplateName::ALL[i].as_str();
        i += 1;
    }
    names
};

/// A name that is not one of [`TEMPLATE_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown template HAPROXY_{0} (the template names are listed by --longhelp)")]
pub struct UnknownTemplate(pub String);

impl std::str::FromStr for TemplateName {
    type Err = UnknownTemplate;

    /// Parse a name without the `HAPROXY_` prefix (`"BACKEND_HEAD"`).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        TemplateName::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or_else(|| UnknownTemplate(name.to_owned()))
    }
}

impl std::fmt::Display for TemplateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TemplateName {
    /// Position in [`TemplateName::ALL`].
    const fn index(self) -> usize {
        self as usize
    }

    /// The name of the per-service label that overrides this template
    /// (`HAPROXY_{n}_<name>`): its own, except that marathon-lb's map-mode
    /// variants are overridden by the label of the template they replace.
    pub const fn label(self) -> TemplateName {
        match self {
            TemplateName::MAP_HTTP_FRONTEND_ACL => TemplateName::HTTP_FRONTEND_ACL,
            TemplateName::MAP_HTTP_FRONTEND_ACL_ONLY => TemplateName::HTTP_FRONTEND_ACL_ONLY,
            TemplateName::MAP_HTTP_FRONTEND_APPID_ACL => TemplateName::HTTP_FRONTEND_APPID_ACL,
            TemplateName::MAP_HTTPS_FRONTEND_ACL => TemplateName::HTTPS_FRONTEND_ACL,
            other => other,
        }
    }
}

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
    name.parse::<TemplateName>()
        .is_ok_and(|t| DEFAULTS[t.index()] == text)
}

/// `HAPROXY_GLOBAL_DEFAULT_OPTIONS` when unset.
pub const DEFAULT_GLOBAL_OPTIONS: &str = "redispatch,http-server-close,dontlognull";

/// Templates that are appended verbatim (never formatted).
pub const RAW_TEMPLATES: &[&str] = &[
    TemplateName::HEAD.as_str(),
    TemplateName::HTTP_FRONTEND_HEAD.as_str(),
    TemplateName::HTTP_FRONTEND_APPID_HEAD.as_str(),
    TemplateName::HTTPS_GROUPED_FRONTEND_HEAD.as_str(),
    TemplateName::BACKEND_HSTS_OPTIONS.as_str(),
    TemplateName::BACKEND_HTTP_OPTIONS.as_str(),
    TemplateName::BACKEND_STICKY_OPTIONS.as_str(),
    TemplateName::HTTP_BACKEND_ACL_ALLOW_DENY.as_str(),
    TemplateName::TCP_BACKEND_ACL_ALLOW_DENY.as_str(),
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
    #[error(transparent)]
    Unknown(#[from] UnknownTemplate),
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
    /// The texts, in the order of [`TemplateName::ALL`].
    values: Vec<String>,
}

/// Where the overrides for a template set come from (read by the caller).
#[derive(Debug, Clone, Default)]
pub struct TemplateSources {
    /// `HAPROXY_GLOBAL_DEFAULT_OPTIONS` (None = unset).
    pub global_default_options: Option<String>,
    /// Environment variables `HAPROXY_<NAME>` by template name (checked
    /// against [`TemplateName`] by [`Templates::resolve`]).
    pub env: BTreeMap<String, String>,
    /// Files `HAPROXY_<NAME>` of the templates directory by template name
    /// (checked like `env`).
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
            name.parse::<TemplateName>()?;
        }
        let options = sources
            .global_default_options
            .as_deref()
            .unwrap_or(DEFAULT_GLOBAL_OPTIONS);
        let values = TemplateName::ALL
            .into_iter()
            .zip(DEFAULTS)
            .map(|(name, default)| {
                let name_str = name.as_str();
                let value = if let Some(v) = sources.env.get(name_str).filter(|v| !v.is_empty()) {
                    v.replace("\\n", "\n")
                } else if let Some(v) = sources.files.get(name_str) {
                    v.clone()
                } else {
                    default.to_owned()
                };
                if name == TemplateName::HEAD {
                    splice_options(&value, options)
                } else {
                    value
                }
            })
            .collect::<Vec<_>>();
        let head = &values[TemplateName::HEAD.index()];
        if head.split_whitespace().any(|t| t == "daemon") || !head.contains("expose-fd listeners") {
            return Err(TemplateError::HeadNeedsUpgrade);
        }
        Ok(Self { values })
    }

    /// The text of global template `name`.
    pub fn get(&self, name: TemplateName) -> &str {
        &self.values[name.index()]
    }

    /// The built-in default of `name` (HEAD with the default option lines);
    /// `None` when `name` is not a template name.
    pub fn default_text(name: &str) -> Option<String> {
        let name = name.parse::<TemplateName>().ok()?;
        let default = DEFAULTS[name.index()];
        Some(if name == TemplateName::HEAD {
            default.replace(OPTIONS_MARKER, &global_option_lines(DEFAULT_GLOBAL_OPTIONS))
        } else {
            default.to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one list of names is `templates/manifest.txt`, in its order, and
    /// every name round-trips through its string.
    #[test]
    fn names_are_the_manifest_in_order() {
        let manifest: Vec<&str> = include_str!("../../../templates/manifest.txt")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(TEMPLATE_NAMES.as_slice(), manifest.as_slice());
        let listed: Vec<&str> = TemplateName::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(listed, manifest);
        for (i, name) in TemplateName::ALL.into_iter().enumerate() {
            assert_eq!(name.index(), i);
            assert_eq!(name.as_str().parse::<TemplateName>(), Ok(name));
            assert_eq!(name.to_string(), name.as_str());
        }
        for name in RAW_TEMPLATES {
            assert!(name.parse::<TemplateName>().is_ok(), "{name}");
        }
    }

    #[test]
    fn unknown_names_are_refused_at_the_boundary() {
        let err = "BACKEND_HEDA".parse::<TemplateName>().unwrap_err();
        assert_eq!(err, UnknownTemplate("BACKEND_HEDA".into()));
        assert!(err.to_string().contains("HAPROXY_BACKEND_HEDA"), "{err}");
        assert!("backend_head".parse::<TemplateName>().is_err());
        assert!("HAPROXY_BACKEND_HEAD".parse::<TemplateName>().is_err());
        for (env, files) in [(true, false), (false, true)] {
            let mut s = TemplateSources::default();
            if env {
                s.env.insert("NOPE".into(), "x".into());
            }
            if files {
                s.files.insert("NOPE".into(), "x".into());
            }
            assert_eq!(
                Templates::resolve(&s).unwrap_err(),
                TemplateError::Unknown(UnknownTemplate("NOPE".into()))
            );
        }
        assert_eq!(Templates::default_text("NOPE"), None);
        assert!(!is_shipped_default("NOPE", ""));
    }

    #[test]
    fn map_templates_are_overridden_by_the_label_they_replace() {
        use TemplateName as T;
        assert_eq!(T::MAP_HTTPS_FRONTEND_ACL.label(), T::HTTPS_FRONTEND_ACL);
        assert_eq!(T::MAP_HTTP_FRONTEND_ACL.label(), T::HTTP_FRONTEND_ACL);
        assert_eq!(
            T::MAP_HTTP_FRONTEND_ACL_ONLY.label(),
            T::HTTP_FRONTEND_ACL_ONLY
        );
        assert_eq!(
            T::MAP_HTTP_FRONTEND_APPID_ACL.label(),
            T::HTTP_FRONTEND_APPID_ACL
        );
        let mapped = T::ALL.into_iter().filter(|t| t.label() != *t).count();
        assert_eq!(mapped, 4);
        assert_eq!(T::BACKEND_HEAD.label(), T::BACKEND_HEAD);
    }

    #[test]
    fn head_default_has_sorted_options() {
        let t = Templates::defaults();
        assert!(t.get(TemplateName::HEAD).contains(
            "  option            dontlognull\n\
             \x20 option            http-server-close\n\
             \x20 option            redispatch\n\
             listen stats\n"
        ));
        assert!(!t.get(TemplateName::HEAD).contains("@@"));
    }

    #[test]
    fn option_lines_are_trimmed_deduplicated_sorted() {
        assert_eq!(
            global_option_lines(" redispatch,httplog , dontlognull,httplog"),
            "  option            dontlognull\n\
             \x20 option            httplog\n\
             \x20 option            redispatch\n"
        );
    }

    #[test]
    fn env_beats_file_and_unescapes_newlines() {
        let mut s = TemplateSources::default();
        s.env.insert("BACKEND_HEAD".into(), "a\\nb".into());
        s.files.insert("BACKEND_HEAD".into(), "file".into());
        s.files.insert("FRONTEND_HEAD".into(), "f\\n".into());
        let t = Templates::resolve(&s).unwrap();
        assert_eq!(t.get(TemplateName::BACKEND_HEAD), "a\nb");
        assert_eq!(t.get(TemplateName::FRONTEND_HEAD), "f\\n");
    }

    #[test]
    fn the_marker_is_resolved_in_a_head_override_too() {
        let shipped = include_str!("../../../templates/HAPROXY_HEAD");
        let mut s = TemplateSources::default();
        s.files.insert("HEAD".into(), shipped.to_owned());
        assert_eq!(
            Templates::resolve(&s).unwrap().get(TemplateName::HEAD),
            Templates::defaults().get(TemplateName::HEAD)
        );
        // An edited copy (lower maxconn) with other options.
        s.files.insert(
            "HEAD".into(),
            shipped.replace("maxconn 50000", "maxconn 1000"),
        );
        s.global_default_options = Some("httplog".into());
        let head = Templates::resolve(&s)
            .unwrap()
            .get(TemplateName::HEAD)
            .to_owned();
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
