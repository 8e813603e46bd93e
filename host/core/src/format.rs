//! marathon-lb's template syntax (Python `str.format`), parsed and translated
//! to minijinja.
//!
//! `{name}` substitutes a variable, `{{` and `}}` are literal braces. Only
//! plain identifiers are accepted as fields: attribute access (`{a.b}`),
//! indexing (`{a[0]}`), conversions (`{a!r}`) and format specs (`{a:>5}`) are
//! rejected, so a template can reach exactly the variables its call site
//! passes and nothing behind them.

use std::fmt::Write;

/// A syntax problem in a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// `{` without a matching `}`.
    #[error("unclosed '{{' at byte {0}")]
    Unclosed(usize),
    /// A `}` that is neither doubled nor closes a field.
    #[error("single '}}' at byte {0} (write '}}}}' for a literal brace)")]
    StrayClose(usize),
    /// A field that is not a plain identifier.
    #[error("unsupported placeholder {{{0}}}: only plain {{name}} fields are allowed")]
    BadField(String),
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text (braces already unescaped).
    Text(String),
    /// A `{name}` field.
    Var(String),
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parse `{name}` template text.
pub fn parse(text: &str) -> Result<Vec<Piece>, FormatError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                literal.push('{');
                i += 2;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                literal.push('}');
                i += 2;
            }
            b'{' => {
                let end = text[i + 1..]
                    .find('}')
                    .map(|e| i + 1 + e)
                    .ok_or(FormatError::Unclosed(i))?;
                let field = &text[i + 1..end];
                if !is_identifier(field) {
                    return Err(FormatError::BadField(field.to_owned()));
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Var(field.to_owned()));
                i = end + 1;
            }
            b'}' => return Err(FormatError::StrayClose(i)),
            _ => {
                // Copy a run of ordinary bytes (UTF-8 safe: braces are ASCII).
                let start = i;
                while i < bytes.len() && bytes[i] != b'{' && bytes[i] != b'}' {
                    i += 1;
                }
                literal.push_str(&text[start..i]);
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// The variable names a parsed template uses.
pub fn variables(pieces: &[Piece]) -> impl Iterator<Item = &str> {
    pieces.iter().filter_map(|p| match p {
        Piece::Var(v) => Some(v.as_str()),
        Piece::Text(_) => None,
    })
}

/// Translate parsed pieces to minijinja source. Literal text that could be
/// mistaken for minijinja syntax is emitted as a quoted string expression.
pub fn to_minijinja(pieces: &[Piece]) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Var(name) => {
                let _ = write!(out, "{{{{ {name} }}}}");
            }
            Piece::Text(text) if !text.contains(['{', '}', '%', '#']) => out.push_str(text),
            Piece::Text(text) => {
                out.push_str("{{ \"");
                for c in text.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if c.is_control() => {
                            let _ = write!(out, "\\u{:04x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push_str("\" }}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_escapes() {
        let p = parse("  use_backend {backend} if {{ ssl_fc_sni {hostname} }}\n").unwrap();
        assert_eq!(
            p,
            vec![
                Piece::Text("  use_backend ".into()),
                Piece::Var("backend".into()),
                Piece::Text(" if { ssl_fc_sni ".into()),
                Piece::Var("hostname".into()),
                Piece::Text(" }\n".into()),
            ]
        );
    }

    #[test]
    fn rejects_what_python_would_reject_or_leak() {
        assert_eq!(parse("{a"), Err(FormatError::Unclosed(0)));
        assert_eq!(parse("a}"), Err(FormatError::StrayClose(1)));
        assert!(matches!(
            parse("{a.__class__}"),
            Err(FormatError::BadField(_))
        ));
        assert!(matches!(parse("{a!r}"), Err(FormatError::BadField(_))));
        assert!(matches!(parse("{0}"), Err(FormatError::BadField(_))));
    }

    #[test]
    fn literal_jinja_syntax_is_quoted() {
        let src = to_minijinja(&parse("{{% x %}} {{#}} \"q\"").unwrap());
        assert!(src.starts_with("{{ \""), "{src}");
    }
}
