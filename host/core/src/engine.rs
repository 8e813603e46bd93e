//! Renders marathon-lb-syntax templates through minijinja.
//!
//! Each distinct template text is parsed, checked and compiled once; a render
//! passes exactly the variables of its call site, and a template naming any
//! other variable is an error (marathon-lb raises `KeyError`).

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::value::{Object, Value};
use minijinja::{Environment, UndefinedBehavior};

use crate::format::{self, FormatError, Piece};

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
    /// minijinja failed (should not happen for translated templates).
    #[error("template engine: {0}")]
    Engine(String),
}

#[derive(Debug, Clone)]
enum Compiled {
    /// No variables: the text itself.
    Literal(Arc<str>),
    /// A minijinja template registered under `name`, using `vars`.
    Template { name: String, vars: Vec<String> },
    /// Broken text (remembered so it is reported, not re-parsed, every time).
    Invalid(FormatError),
}

/// Variables of one render: a fixed list of names and string values.
#[derive(Debug)]
struct Vars(Vec<(&'static str, Value)>);

impl Object for Vars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.0
            .iter()
            .find(|(n, _)| *n == key)
            .map(|(_, v)| v.clone())
    }
}

/// A minijinja environment plus a cache from template text to compiled form.
#[derive(Debug)]
pub struct Engine {
    env: Environment<'static>,
    compiled: HashMap<String, Compiled>,
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
            compiled: HashMap::new(),
        }
    }

    fn compile(&mut self, text: &str) -> Compiled {
        if let Some(c) = self.compiled.get(text) {
            return c.clone();
        }
        let compiled = match format::parse(text) {
            Err(e) => Compiled::Invalid(e),
            Ok(pieces) => {
                let vars: Vec<String> = format::variables(&pieces).map(str::to_owned).collect();
                if vars.is_empty() {
                    let literal: String = pieces
                        .iter()
                        .map(|p| match p {
                            Piece::Text(t) => t.as_str(),
                            Piece::Var(_) => "",
                        })
                        .collect();
                    Compiled::Literal(literal.into())
                } else {
                    let name = format!("t{}", self.compiled.len());
                    match self
                        .env
                        .add_template_owned(name.clone(), format::to_minijinja(&pieces))
                    {
                        Ok(()) => Compiled::Template { name, vars },
                        Err(e) => Compiled::Invalid(FormatError::BadField(e.to_string())),
                    }
                }
            }
        };
        self.compiled.insert(text.to_owned(), compiled.clone());
        compiled
    }

    /// Check that `text` parses and uses only `allowed` variables.
    pub fn check(&mut self, text: &str, allowed: &[&str]) -> Result<(), EngineError> {
        match self.compile(text) {
            Compiled::Invalid(e) => Err(e.into()),
            Compiled::Literal(_) => Ok(()),
            Compiled::Template { vars, .. } => check_vars(&vars, allowed),
        }
    }

    /// Render `text` with `vars`, appending to `out`.
    pub fn render_into(
        &mut self,
        out: &mut String,
        text: &str,
        vars: Vec<(&'static str, Value)>,
    ) -> Result<(), EngineError> {
        match self.compile(text) {
            Compiled::Invalid(e) => Err(e.into()),
            Compiled::Literal(s) => {
                out.push_str(&s);
                Ok(())
            }
            Compiled::Template { name, vars: used } => {
                let names: Vec<&str> = vars.iter().map(|(n, _)| *n).collect();
                check_vars(&used, &names)?;
                let tmpl = self
                    .env
                    .get_template(&name)
                    .map_err(|e| EngineError::Engine(e.to_string()))?;
                let rendered = tmpl
                    .render(Value::from_object(Vars(vars)))
                    .map_err(|e| EngineError::Engine(e.to_string()))?;
                out.push_str(&rendered);
                Ok(())
            }
        }
    }

    /// Render `text` with `vars` into a new string.
    pub fn render(
        &mut self,
        text: &str,
        vars: Vec<(&'static str, Value)>,
    ) -> Result<String, EngineError> {
        let mut out = String::new();
        self.render_into(&mut out, text, vars)?;
        Ok(out)
    }
}

fn check_vars(used: &[String], allowed: &[&str]) -> Result<(), EngineError> {
    match used.iter().find(|u| !allowed.contains(&u.as_str())) {
        Some(name) => Err(EngineError::UnknownVariable {
            name: name.clone(),
            available: allowed.join(", "),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_checks_variables() {
        let mut e = Engine::new();
        let text = "  use_backend {backend} if {{ ssl_fc_sni {hostname} }}\n";
        let out = e
            .render(
                text,
                vec![
                    ("backend", Value::from("b_1")),
                    ("hostname", Value::from("a.test")),
                ],
            )
            .unwrap();
        assert_eq!(out, "  use_backend b_1 if { ssl_fc_sni a.test }\n");
        let err = e
            .render("{nope}", vec![("backend", Value::from("x"))])
            .unwrap_err();
        assert!(matches!(err, EngineError::UnknownVariable { .. }));
    }

    #[test]
    fn literal_text_passes_through_untouched() {
        let mut e = Engine::new();
        let text = "{{% raw %}} {{{{ x }}}}\n\n";
        assert_eq!(e.render(text, vec![]).unwrap(), "{% raw %} {{ x }}\n\n");
    }
}
