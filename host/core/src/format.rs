//! marathon-lb's template syntax (Python `str.format`), parsed and translated
//! to minijinja.
//!
//! `{name}` substitutes a variable, `{{` and `}}` are literal braces. Only
//! plain identifiers are accepted as fields: attribute access (`{a.b}`),
//! indexing (`{a[0]}`), conversions (`{a!r}`) and format specs (`{a:>5}`) are
//! rejected, so a template can reach exactly the variables its call site
//! passes and nothing behind them.
//!
//! One extension over Python: filters from filter plugins,
//! `{name|filter}`, `{name|filter("text", 3)|other}` — arguments are string
//! literals (double quotes, `\"` and `\\` escapes) or integers. Python would
//! reject such a field, so no valid marathon-lb template changes meaning.

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
    /// A `{name|filter…}` field that does not parse.
    #[error("bad filter in placeholder {{{field}}}: {reason}")]
    BadFilter {
        /// The whole field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text (braces already unescaped).
    Text(String),
    /// A `{name}` field.
    Var(String),
    /// A `{name|filter(args)|…}` field.
    Filtered {
        /// The variable.
        name: String,
        /// Filters, applied left to right.
        filters: Vec<FilterCall>,
    },
}

/// One filter of a `{name|filter(args)}` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterCall {
    /// Filter name.
    pub name: String,
    /// Literal arguments.
    pub args: Vec<FilterArg>,
}

/// A literal filter argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterArg {
    /// `"text"`.
    Str(String),
    /// `42`.
    Int(i64),
}

impl FilterArg {
    /// The argument as the text a filter plugin receives.
    pub fn as_text(&self) -> String {
        match self {
            Self::Str(s) => s.clone(),
            Self::Int(i) => i.to_string(),
        }
    }
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
                let end = field_end(text, i + 1).ok_or(FormatError::Unclosed(i))?;
                let field = &text[i + 1..end];
                let piece = parse_field(field)?;
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(piece);
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

/// The index of the `}` closing the field that starts at `start` (a `}`
/// inside a quoted filter argument does not close it).
fn field_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut quoted = false;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'}' if !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_field(field: &str) -> Result<Piece, FormatError> {
    let Some((name, rest)) = field.split_once('|') else {
        return if is_identifier(field) {
            Ok(Piece::Var(field.to_owned()))
        } else {
            Err(FormatError::BadField(field.to_owned()))
        };
    };
    let bad = |reason: &str| FormatError::BadFilter {
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    let name = name.trim();
    if !is_identifier(name) {
        return Err(FormatError::BadField(field.to_owned()));
    }
    let mut filters = Vec::new();
    let mut cursor = FilterCursor { s: rest, pos: 0 };
    loop {
        cursor.skip_spaces();
        let filter = cursor
            .identifier()
            .ok_or_else(|| bad("expected a filter name"))?;
        cursor.skip_spaces();
        let args = if cursor.eat('(') {
            cursor.arguments().map_err(|r| bad(&r))?
        } else {
            Vec::new()
        };
        filters.push(FilterCall {
            name: filter.to_owned(),
            args,
        });
        cursor.skip_spaces();
        if cursor.at_end() {
            break;
        }
        if !cursor.eat('|') {
            return Err(bad("expected '|' or the end of the placeholder"));
        }
    }
    Ok(Piece::Filtered {
        name: name.to_owned(),
        filters,
    })
}

/// A position in the filter part of a field.
struct FilterCursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> FilterCursor<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos == self.s.len()
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches(' ').len();
    }

    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn identifier(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let ident = &rest[..len];
        is_identifier(ident).then(|| {
            self.pos += len;
            ident
        })
    }

    /// Arguments after `(`, through the closing `)`.
    fn arguments(&mut self) -> Result<Vec<FilterArg>, String> {
        let mut args = Vec::new();
        self.skip_spaces();
        if self.eat(')') {
            return Ok(args);
        }
        loop {
            self.skip_spaces();
            args.push(self.argument()?);
            self.skip_spaces();
            if self.eat(')') {
                return Ok(args);
            }
            if !self.eat(',') {
                return Err("expected ',' or ')' after an argument".to_owned());
            }
        }
    }

    fn argument(&mut self) -> Result<FilterArg, String> {
        if self.eat('"') {
            let mut value = String::new();
            let mut chars = self.rest().char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.pos += i + 1;
                        return Ok(FilterArg::Str(value));
                    }
                    '\\' => match chars.next() {
                        Some((_, e @ ('"' | '\\'))) => value.push(e),
                        _ => return Err("only \\\" and \\\\ escapes are allowed".to_owned()),
                    },
                    c if c.is_control() => {
                        return Err("control character in a string argument".to_owned());
                    }
                    c => value.push(c),
                }
            }
            return Err("unterminated string argument".to_owned());
        }
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
            .map_or(rest.len(), |(i, _)| i);
        let value = rest[..len]
            .parse::<i64>()
            .map_err(|_| "arguments are \"strings\" or integers".to_owned())?;
        self.pos += len;
        Ok(FilterArg::Int(value))
    }
}

/// The variable names a parsed template uses.
pub fn variables(pieces: &[Piece]) -> impl Iterator<Item = &str> {
    pieces.iter().filter_map(|p| match p {
        Piece::Var(v) | Piece::Filtered { name: v, .. } => Some(v.as_str()),
        Piece::Text(_) => None,
    })
}

/// The filter names a parsed template uses.
pub fn filter_names(pieces: &[Piece]) -> impl Iterator<Item = &str> {
    pieces
        .iter()
        .flat_map(|p| match p {
            Piece::Filtered { filters, .. } => filters.as_slice(),
            _ => &[],
        })
        .map(|f| f.name.as_str())
}

/// Whether any field uses a filter.
pub fn uses_filters(pieces: &[Piece]) -> bool {
    pieces.iter().any(|p| matches!(p, Piece::Filtered { .. }))
}

/// `text` as a minijinja string literal.
fn push_string_literal(out: &mut String, text: &str) {
    out.push('"');
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
    out.push('"');
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
            Piece::Filtered { name, filters } => {
                let _ = write!(out, "{{{{ {name}");
                for filter in filters {
                    let _ = write!(out, "|{}", filter.name);
                    if !filter.args.is_empty() {
                        out.push('(');
                        for (i, arg) in filter.args.iter().enumerate() {
                            if i > 0 {
                                out.push_str(", ");
                            }
                            match arg {
                                FilterArg::Str(s) => push_string_literal(&mut out, s),
                                FilterArg::Int(n) => {
                                    let _ = write!(out, "{n}");
                                }
                            }
                        }
                        out.push(')');
                    }
                }
                out.push_str(" }}");
            }
            Piece::Text(text) if !text.contains(['{', '}', '%', '#']) => out.push_str(text),
            Piece::Text(text) => {
                out.push_str("{{ ");
                push_string_literal(&mut out, text);
                out.push_str(" }}");
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
    fn filters_parse_with_arguments() {
        let p = parse(r#"x{backend|slug|truncate(5, "a}b\"c")}y"#).unwrap();
        assert_eq!(
            p[1],
            Piece::Filtered {
                name: "backend".into(),
                filters: vec![
                    FilterCall {
                        name: "slug".into(),
                        args: vec![]
                    },
                    FilterCall {
                        name: "truncate".into(),
                        args: vec![FilterArg::Int(5), FilterArg::Str("a}b\"c".into())]
                    },
                ]
            }
        );
        assert_eq!(p[2], Piece::Text("y".into()));
        assert_eq!(
            to_minijinja(&p),
            r#"x{{ backend|slug|truncate(5, "a}b\"c") }}y"#
        );
        for bad in [
            "{a|}",
            "{a|f(}",
            "{a|f(x)}",
            "{a|f g}",
            "{a|f(\"u)}",
            "{a|1f}",
        ] {
            assert!(
                matches!(
                    parse(bad),
                    Err(FormatError::BadFilter { .. } | FormatError::Unclosed(_))
                ),
                "{bad}: {:?}",
                parse(bad)
            );
        }
        assert!(matches!(parse("{a.b|f}"), Err(FormatError::BadField(_))));
    }

    #[test]
    fn literal_jinja_syntax_is_quoted() {
        let src = to_minijinja(&parse("{{% x %}} {{#}} \"q\"").unwrap());
        assert!(src.starts_with("{{ \""), "{src}");
    }
}
