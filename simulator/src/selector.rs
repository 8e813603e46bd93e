//! The `label` selector of `GET /v2/apps` (`env==prod,tier!=db`, `canary`, `tier in (web, api)`,
//! `tier notin (db)`). Every selector in the comma-separated list must match. Backslash escapes (`\,`)
//! are honoured in names and values.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Exists(String),
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Vec<Term>);

impl Selector {
    /// Parses a selector; `None` when it is malformed.
    pub fn parse(s: &str) -> Option<Self> {
        split_top(s)
            .iter()
            .map(|t| parse_term(t.trim()))
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    /// Whether the app's `labels` satisfy every term.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|t| match t {
            Term::Exists(k) => get(k).is_some(),
            Term::Eq(k, v) => get(k) == Some(v.as_str()),
            Term::Ne(k, v) => get(k) != Some(v.as_str()),
            Term::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Term::NotIn(k, vs) => get(k).is_some_and(|x| vs.iter().all(|v| v != x)),
        })
    }
}

/// Splits on commas outside parentheses, keeping escapes for the term parser.
fn split_top(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0u32;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        let cur = out.last_mut().expect("non-empty");
        match c {
            '\\' => {
                cur.push(c);
                cur.extend(chars.next());
            }
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            ',' if depth == 0 => out.push(String::new()),
            _ => cur.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_term(t: &str) -> Option<Term> {
    if t.is_empty() {
        return None;
    }
    if let Some((k, v)) = t.split_once("==") {
        return Some(Term::Eq(unescape(k.trim()), unescape(v.trim())));
    }
    if let Some((k, v)) = t.split_once("!=") {
        return Some(Term::Ne(unescape(k.trim()), unescape(v.trim())));
    }
    for (op, notin) in [(" notin ", true), (" in ", false)] {
        if let Some((k, rest)) = t.split_once(op) {
            let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            let vs = split_top(inner)
                .iter()
                .map(|v| unescape(v.trim()))
                .collect();
            let k = unescape(k.trim());
            return Some(if notin {
                Term::NotIn(k, vs)
            } else {
                Term::In(k, vs)
            });
        }
    }
    Some(Term::Exists(unescape(t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_match_labels() {
        let labels = json!({"env": "prod", "tier": "web", "a,b": "x"});
        let l = labels.as_object();
        let ok = |s: &str| Selector::parse(s).expect("parses").matches(l);
        assert!(ok("env==prod"));
        assert!(ok("env==prod,tier!=db"));
        assert!(!ok("env==dev"));
        assert!(ok("tier"));
        assert!(!ok("missing"));
        assert!(ok("tier in (api, web)"));
        assert!(!ok("tier notin (api, web)"));
        assert!(ok("a\\,b==x"));
        assert!(Selector::parse("").is_none());
    }
}
