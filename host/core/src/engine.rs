//! Renders marathon-lb-syntax templates.
//!
//! Each distinct template text is parsed and checked once. A render passes
//! exactly the variables of its call site; a template naming any other
//! variable is an error (marathon-lb raises `KeyError`).
//!
//! Templates are translated to minijinja ([`format::to_minijinja`]); a
//! template made only of text and plain `{name}` fields — every template the
//! accepted syntax can express today — is rendered by direct substitution,
//! which gives the same bytes as the minijinja template (a test checks this
//! for every default template) at a fraction of the cost: the generation of
//! 10,000 apps renders ~150,000 templates. A template that uses filters
//! (`{name|filter}`) is rendered by minijinja, where the filters of filter
//! plugins are registered ([`Engine::add_filter`]).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use minijinja::value::{Object, Value};
use minijinja::{Environment, UndefinedBehavior};

use crate::format::{self, FormatError, Piece};

/// The variables of one render: names and values.
pub type Vars<'a> = Vec<(&'static str, Cow<'a, str>)>;

/// Why a template could not be rendered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The text is not valid template syntax.
    #[error(transparent)]
    Syntax(#[from] FormatError),
    /// The template names a variable its call site does not provide.
    #[error("unknown placeholder {{{name}}} (available here: {available})")]
    UnknownVariable {
        /// The offending name.
        name: String,
        /// What the call site offers, comma-separated.
        available: String,
    },
    /// The template uses a filter no filter plugin provides.
    #[error("unknown filter '{name}' (available: {available})")]
    UnknownFilter {
        /// The offending name.
        name: String,
        /// Registered filters, comma-separated (or `none`).
        available: String,
    },
    /// A plugin variable has the name of one the call site provides.
    #[error("plugin variable {{{0}}} shadows a built-in variable of this template")]
    ShadowedVariable(String),
    /// The rendered text would open a section it may not open.
    #[error("{0}")]
    Structure(String),
    /// minijinja failed (including a filter that returned an error).
    #[error("template engine: {0}")]
    Engine(String),
}

/// The implementation behind one or more filters (a filter plugin).
pub trait TemplateFilter: Send + Sync + std::fmt::Debug {
    /// Apply filter `filter` to `value` with literal arguments `args`.
    fn apply(&self, filter: &str, value: &str, args: &[String]) -> Result<String, String>;
}

/// A parsed template.
#[derive(Debug, Clone)]
enum Compiled {
    /// Text and plain fields.
    Pieces(Arc<[Piece]>),
    /// Broken text (remembered so it is reported, not re-parsed, every time).
    Invalid(FormatError),
}

/// minijinja's view of one render's variables.
#[derive(Debug)]
struct JinjaVars(Vec<(Cow<'static, str>, Value)>);

impl Object for JinjaVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.0
            .iter()
            .find(|(n, _)| n == key)
            .map(|(_, v)| v.clone())
    }
}

/// The Fx hash (rustc's), eight bytes a step: template texts are looked up
/// ~150,000 times per generation of 10,000 apps, whole texts of a few
/// hundred bytes each time; SipHash's DoS resistance buys nothing here
/// (the texts are the operator's templates), and FNV-1a's byte a step cost
/// ~5 % of a render.
#[derive(Debug, Default)]
struct Fx(u64);

impl Fx {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.add(u64::from_le_bytes(w));
        }
        for b in words.remainder() {
            self.add(u64::from(*b));
        }
    }
}

type TextMap<V> = HashMap<String, V, std::hash::BuildHasherDefault<Fx>>;

/// A cache from template text to its parsed form, plus the minijinja
/// environment the translated templates live in.
#[derive(Debug)]
pub struct Engine {
    env: Environment<'static>,
    compiled: TextMap<Compiled>,
    jinja_names: HashMap<String, String>,
    filters: BTreeSet<String>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// An empty engine (no autoescaping, trailing newlines kept).
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        Self {
            env,
            compiled: TextMap::default(),
            jinja_names: HashMap::new(),
            filters: BTreeSet::new(),
        }
    }

    /// Make filter `name` available to templates as `{var|name(args)}`,
    /// implemented by `provider`. A later registration of the same name
    /// replaces the earlier one.
    pub fn add_filter(&mut self, name: &str, provider: Arc<dyn TemplateFilter>) {
        let filter = name.to_owned();
        self.env.add_filter(
            name.to_owned(),
            move |value: Value, args: minijinja::value::Rest<Value>| {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                let args: Vec<String> = args
                    .iter()
                    .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_owned))
                    .collect();
                provider.apply(&filter, &value, &args).map_err(|message| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("filter {filter}: {message}"),
                    )
                })
            },
        );
        self.filters.insert(name.to_owned());
    }

    /// Names of the registered filters.
    pub fn filters(&self) -> impl Iterator<Item = &str> {
        self.filters.iter().map(String::as_str)
    }

    fn compile(&mut self, text: &str) -> Compiled {
        if let Some(c) = self.compiled.get(text) {
            return c.clone();
        }
        let compiled = match format::parse(text) {
            Ok(pieces) => Compiled::Pieces(pieces.into()),
            Err(e) => Compiled::Invalid(e),
        };
        self.compiled.insert(text.to_owned(), compiled.clone());
        compiled
    }

    /// Check that `text` parses and uses only `allowed` variables.
    pub fn check(&mut self, text: &str, allowed: &[&str]) -> Result<(), EngineError> {
        match self.compile(text) {
            Compiled::Invalid(e) => Err(e.into()),
            Compiled::Pieces(pieces) => {
                check_vars(&pieces, allowed)?;
                self.check_filters(&pieces)
            }
        }
    }

    fn check_filters(&self, pieces: &[Piece]) -> Result<(), EngineError> {
        match format::filter_names(pieces).find(|f| !self.filters.contains(*f)) {
            Some(name) => Err(EngineError::UnknownFilter {
                name: name.to_owned(),
                available: if self.filters.is_empty() {
                    "none: no filter plugin is loaded".to_owned()
                } else {
                    self.filters.iter().cloned().collect::<Vec<_>>().join(", ")
                },
            }),
            None => Ok(()),
        }
    }

    /// Parse `text` and check it against the call site's `vars` and a
    /// plugin's `extra` variables.
    fn prepare(
        &mut self,
        text: &str,
        vars: &Vars<'_>,
        extra: &[(String, String)],
    ) -> Result<Arc<[Piece]>, EngineError> {
        let pieces = match self.compile(text) {
            Compiled::Invalid(e) => return Err(e.into()),
            Compiled::Pieces(pieces) => pieces,
        };
        // Runs for every template of every service: no list of names is
        // built unless a check fails.
        let known = |name: &str| {
            vars.iter().any(|(n, _)| *n == name) || extra.iter().any(|(n, _)| n == name)
        };
        if let Some((shadowed, _)) = extra.iter().find(|(e, _)| vars.iter().any(|(n, _)| n == e)) {
            return Err(EngineError::ShadowedVariable(shadowed.clone()));
        }
        if format::variables(&pieces).any(|u| !known(u)) {
            let mut names: Vec<&str> = vars.iter().map(|(n, _)| *n).collect();
            names.extend(extra.iter().map(|(n, _)| n.as_str()));
            check_vars(&pieces, &names)?;
        }
        self.check_filters(&pieces)?;
        Ok(pieces)
    }

    /// Render `text` with `vars`, appending to `out`. Nothing is appended on
    /// error.
    pub fn render_into(
        &mut self,
        out: &mut String,
        text: &str,
        vars: &Vars<'_>,
    ) -> Result<(), EngineError> {
        self.render_into_with(out, text, vars, &[])
    }

    /// [`Engine::render_into`] with extra variables set by a label plugin
    /// (they may not shadow the call site's).
    pub fn render_into_with(
        &mut self,
        out: &mut String,
        text: &str,
        vars: &Vars<'_>,
        extra: &[(String, String)],
    ) -> Result<(), EngineError> {
        let pieces = self.prepare(text, vars, extra)?;
        if format::uses_filters(&pieces) {
            let rendered = self.render_jinja(text, &pieces, vars, extra)?;
            out.push_str(&rendered);
            return Ok(());
        }
        for piece in pieces.iter() {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(name) => {
                    if let Some((_, v)) = vars.iter().find(|(n, _)| n == name) {
                        out.push_str(v);
                    } else if let Some((_, v)) = extra.iter().find(|(n, _)| n == name) {
                        out.push_str(v);
                    }
                }
                Piece::Filtered { .. } => {
                    unreachable!("templates with filters go through minijinja")
                }
            }
        }
        Ok(())
    }

    /// Render `text` with `vars` into a new string.
    pub fn render(&mut self, text: &str, vars: &Vars<'_>) -> Result<String, EngineError> {
        let mut out = String::new();
        self.render_into(&mut out, text, vars)?;
        Ok(out)
    }

    /// Render `text` through its minijinja translation (the general path,
    /// used for templates beyond plain fields and to cross-check the direct
    /// substitution).
    pub fn render_minijinja(&mut self, text: &str, vars: &Vars<'_>) -> Result<String, EngineError> {
        let pieces = self.prepare(text, vars, &[])?;
        self.render_jinja(text, &pieces, vars, &[])
    }

    fn render_jinja(
        &mut self,
        text: &str,
        pieces: &[Piece],
        vars: &Vars<'_>,
        extra: &[(String, String)],
    ) -> Result<String, EngineError> {
        let name = match self.jinja_names.get(text) {
            Some(n) => n.clone(),
            None => {
                let name = format!("t{}", self.jinja_names.len());
                self.env
                    .add_template_owned(name.clone(), format::to_minijinja(pieces))
                    .map_err(|e| EngineError::Engine(e.to_string()))?;
                self.jinja_names.insert(text.to_owned(), name.clone());
                name
            }
        };
        let values = vars
            .iter()
            .map(|(n, v)| (Cow::Borrowed(*n), Value::from(v.as_ref())))
            .chain(
                extra
                    .iter()
                    .map(|(n, v)| (Cow::Owned(n.clone()), Value::from(v.as_str()))),
            )
            .collect();
        self.env
            .get_template(&name)
            .and_then(|t| t.render(Value::from_object(JinjaVars(values))))
            .map_err(|e| EngineError::Engine(e.to_string()))
    }
}

fn check_vars(pieces: &[Piece], allowed: &[&str]) -> Result<(), EngineError> {
    match format::variables(pieces).find(|u| !allowed.contains(u)) {
        Some(name) => Err(EngineError::UnknownVariable {
            name: name.to_owned(),
            available: allowed.join(", "),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::{TemplateName, Templates};

    fn vars<'a>(pairs: &[(&'static str, &'a str)]) -> Vars<'a> {
        pairs.iter().map(|(n, v)| (*n, Cow::Borrowed(*v))).collect()
    }

    #[test]
    fn renders_and_checks_variables() {
        let mut e = Engine::new();
        let text = "  use_backend {backend} if {{ ssl_fc_sni {hostname} }}\n";
        let out = e
            .render(text, &vars(&[("backend", "b_1"), ("hostname", "a.test")]))
            .unwrap();
        assert_eq!(out, "  use_backend b_1 if { ssl_fc_sni a.test }\n");
        let err = e.render("{nope}", &vars(&[("backend", "x")])).unwrap_err();
        assert!(matches!(err, EngineError::UnknownVariable { .. }));
    }

    #[test]
    fn literal_text_passes_through_untouched() {
        let mut e = Engine::new();
        let text = "{{% raw %}} {{{{ x }}}}\n\n";
        assert_eq!(e.render(text, &vars(&[])).unwrap(), "{% raw %} {{ x }}\n\n");
        assert_eq!(
            e.render_minijinja(text, &vars(&[])).unwrap(),
            "{% raw %} {{ x }}\n\n"
        );
    }

    #[derive(Debug)]
    struct Upper;

    impl TemplateFilter for Upper {
        fn apply(&self, filter: &str, value: &str, args: &[String]) -> Result<String, String> {
            match filter {
                "shout" => Ok(format!("{}{}", value.to_uppercase(), args.concat())),
                _ => Err(format!("no filter {filter}")),
            }
        }
    }

    #[test]
    fn filters_are_registered_checked_and_applied() {
        let mut e = Engine::new();
        let err = e
            .render("{backend|shout}", &vars(&[("backend", "b")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("no filter plugin is loaded"),
            "{err}"
        );
        e.add_filter("shout", Arc::new(Upper));
        e.add_filter("broken", Arc::new(Upper));
        let out = e
            .render(
                "x {backend|shout(\"!\", 2)} {{y}}\n",
                &vars(&[("backend", "b_1")]),
            )
            .unwrap();
        assert_eq!(out, "x B_1!2 {y}\n");
        let err = e
            .render("{backend|nope}", &vars(&[("backend", "b")]))
            .unwrap_err();
        assert!(matches!(err, EngineError::UnknownFilter { .. }), "{err}");
        let err = e
            .render("{backend|broken}", &vars(&[("backend", "b")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("filter broken: no filter broken"),
            "{err}"
        );
        let err = e
            .render("{other|shout}", &vars(&[("backend", "b")]))
            .unwrap_err();
        assert!(matches!(err, EngineError::UnknownVariable { .. }), "{err}");
    }

    #[test]
    fn plugin_variables_are_reachable_but_never_shadow() {
        let mut e = Engine::new();
        let extra = vec![("team".to_owned(), "blue".to_owned())];
        let mut out = String::new();
        e.render_into_with(
            &mut out,
            "{backend}:{team}",
            &vars(&[("backend", "b")]),
            &extra,
        )
        .unwrap();
        assert_eq!(out, "b:blue");
        let shadow = vec![("backend".to_owned(), "evil".to_owned())];
        let err = e
            .render_into_with(&mut out, "{backend}", &vars(&[("backend", "b")]), &shadow)
            .unwrap_err();
        assert!(matches!(err, EngineError::ShadowedVariable(_)), "{err}");
        e.add_filter("shout", Arc::new(Upper));
        let mut out = String::new();
        e.render_into_with(&mut out, "{team|shout}", &vars(&[]), &extra)
            .unwrap();
        assert_eq!(out, "BLUE");
    }

    /// Direct substitution and the minijinja translation agree on every
    /// default template, with values that look like template syntax.
    #[test]
    fn direct_substitution_equals_minijinja() {
        let templates = Templates::defaults();
        let mut e = Engine::new();
        for name in TemplateName::ALL {
            let text = templates.get(name);
            let Ok(pieces) = format::parse(text) else {
                continue;
            };
            let names: Vec<&'static str> = format::variables(&pieces)
                .map(|v| &*Box::leak(v.to_owned().into_boxed_str()))
                .collect();
            let values: Vars<'_> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, Cow::Owned(format!("{{{{ v{i} }}}} %}}}} \"q\" \\ \n"))))
                .collect();
            assert_eq!(
                e.render(text, &values).unwrap(),
                e.render_minijinja(text, &values).unwrap(),
                "{name}"
            );
        }
    }
}
