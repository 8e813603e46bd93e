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
//! 10,000 apps renders ~150,000 templates.

use std::borrow::Cow;
use std::collections::HashMap;
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
    /// minijinja failed.
    #[error("template engine: {0}")]
    Engine(String),
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
struct JinjaVars(Vec<(&'static str, Value)>);

impl Object for JinjaVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.0
            .iter()
            .find(|(n, _)| *n == key)
            .map(|(_, v)| v.clone())
    }
}

/// FNV-1a: template texts are short and looked up ~150,000 times per
/// generation of 10,000 apps; SipHash's DoS resistance buys nothing here.
#[derive(Debug, Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<V> = HashMap<String, V, std::hash::BuildHasherDefault<Fnv>>;

/// A cache from template text to its parsed form, plus the minijinja
/// environment the translated templates live in.
#[derive(Debug)]
pub struct Engine {
    env: Environment<'static>,
    compiled: FnvMap<Compiled>,
    jinja_names: HashMap<String, String>,
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
            compiled: FnvMap::default(),
            jinja_names: HashMap::new(),
        }
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
            Compiled::Pieces(pieces) => check_vars(&pieces, allowed),
        }
    }

    /// Render `text` with `vars`, appending to `out`. Nothing is appended on
    /// error.
    pub fn render_into(
        &mut self,
        out: &mut String,
        text: &str,
        vars: &Vars<'_>,
    ) -> Result<(), EngineError> {
        let pieces = match self.compile(text) {
            Compiled::Invalid(e) => return Err(e.into()),
            Compiled::Pieces(pieces) => pieces,
        };
        let names: Vec<&str> = vars.iter().map(|(n, _)| *n).collect();
        check_vars(&pieces, &names)?;
        for piece in pieces.iter() {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(name) => {
                    if let Some((_, v)) = vars.iter().find(|(n, _)| n == name) {
                        out.push_str(v);
                    }
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
        let pieces = match self.compile(text) {
            Compiled::Invalid(e) => return Err(e.into()),
            Compiled::Pieces(pieces) => pieces,
        };
        let names: Vec<&str> = vars.iter().map(|(n, _)| *n).collect();
        check_vars(&pieces, &names)?;
        let name = match self.jinja_names.get(text) {
            Some(n) => n.clone(),
            None => {
                let name = format!("t{}", self.jinja_names.len());
                self.env
                    .add_template_owned(name.clone(), format::to_minijinja(&pieces))
                    .map_err(|e| EngineError::Engine(e.to_string()))?;
                self.jinja_names.insert(text.to_owned(), name.clone());
                name
            }
        };
        let values = vars
            .iter()
            .map(|(n, v)| (*n, Value::from(v.as_ref())))
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
    use crate::templates::{TEMPLATE_NAMES, Templates};

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

    /// Direct substitution and the minijinja translation agree on every
    /// default template, with values that look like template syntax.
    #[test]
    fn direct_substitution_equals_minijinja() {
        let templates = Templates::defaults();
        let mut e = Engine::new();
        for name in TEMPLATE_NAMES {
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
