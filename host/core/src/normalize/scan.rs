//! A fast split of the `/v2/apps` document: only the structure is scanned
//! (strings are skipped with `memchr`), about half of what serde_json's
//! `ignore_value` costs per byte.
//!
//! It checks the structure and white space between the values, the keys of
//! the document (plain strings) and every value that is not an app (with
//! serde_json). It does not check the apps' texts: the caller must, and the
//! typed decode of an app is such a check (an app whose decode fails is
//! checked with `IgnoredAny`). Anything unusual — an escaped or repeated
//! key, no `apps`, a document that is not an object, a structural error —
//! is [`Unusual`]: the caller then uses [`super::split`], which is exact and
//! gives serde_json's errors.

use serde::de::IgnoredAny;

use super::split::{Chunk, Sink};

/// The document needs the exact split (an error or a rare shape).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Unusual;

/// [`super::split::split`] for documents of the usual shape: the same
/// chunks when the apps' texts turn out to be JSON.
pub(super) fn split<'a>(
    body: &'a str,
    size: usize,
    send: impl FnMut(Chunk<'a>),
) -> Result<(), Unusual> {
    let b = body.as_bytes();
    let mut sink = Sink::new(size, send);
    let mut seen = false;
    let mut i = expect(b, space(b, 0), b'{')?;
    loop {
        let key_start = space(b, i);
        let key_end = string_end(b, key_start)?;
        let key = &b[key_start + 1..key_end - 1];
        if key.iter().any(|&c| c < 0x20 || c == b'\\') {
            return Err(Unusual);
        }
        i = space(b, expect(b, space(b, key_end), b':')?);
        if key == b"apps" {
            if seen {
                return Err(Unusual);
            }
            seen = true;
            i = space(b, expect(b, i, b'[')?);
            if b.get(i) == Some(&b']') {
                i += 1;
            } else {
                loop {
                    let end = value_end(b, i)?;
                    sink.push(body.get(i..end).ok_or(Unusual)?);
                    i = space(b, end);
                    match b.get(i) {
                        Some(b',') => i = space(b, i + 1),
                        Some(b']') => {
                            i += 1;
                            break;
                        }
                        _ => return Err(Unusual),
                    }
                }
            }
        } else {
            let end = value_end(b, i)?;
            serde_json::from_str::<IgnoredAny>(body.get(i..end).ok_or(Unusual)?)
                .map_err(|_| Unusual)?;
            i = end;
        }
        i = space(b, i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {
                i += 1;
                break;
            }
            _ => return Err(Unusual),
        }
    }
    if !seen || space(b, i) != b.len() {
        return Err(Unusual);
    }
    sink.flush();
    Ok(())
}

/// The first byte from `i` on that is not JSON white space.
fn space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The position after `byte`, which must be at `i`.
fn expect(b: &[u8], i: usize, byte: u8) -> Result<usize, Unusual> {
    if b.get(i) == Some(&byte) {
        Ok(i + 1)
    } else {
        Err(Unusual)
    }
}

/// The position after the string that starts at `i`.
fn string_end(b: &[u8], i: usize) -> Result<usize, Unusual> {
    let mut j = expect(b, i, b'"')?;
    loop {
        let at = j + memchr::memchr2(b'"', b'\\', b.get(j..).ok_or(Unusual)?).ok_or(Unusual)?;
        if b[at] == b'"' {
            return Ok(at + 1);
        }
        j = at + 2;
    }
}

/// The position after the value that starts at `i` (its brackets counted,
/// not matched: the value is checked by whoever reads it).
fn value_end(b: &[u8], i: usize) -> Result<usize, Unusual> {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err(Unusual)
        }
        Some(_) => {
            let end = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(b.len(), |n| i + n);
            if end == i { Err(Unusual) } else { Ok(end) }
        }
        None => Err(Unusual),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(body: &str, fast: bool) -> Result<Vec<String>, String> {
        let mut apps = Vec::new();
        let mut push = |chunk: Chunk<'_>| apps.extend(chunk.apps.iter().map(|a| (*a).to_owned()));
        if fast {
            split(body, 2, &mut push).map_err(|e| format!("{e:?}"))?;
        } else {
            super::super::split::split(body, 2, &mut push).map_err(|e| e.to_string())?;
        }
        Ok(apps)
    }

    #[test]
    fn usual_documents_split_as_the_exact_split_does() {
        for doc in [
            r#"{"apps": []}"#,
            "\r\n {\t\"apps\" :\n[ ]\n} \n",
            r#"{"x": {"apps": [0]}, "apps": [{"id": "/a\"]}", "n": [1, {"b": "\\"}]}, 2, "s]", null, -1e5], "y": "z"}"#,
            r#"{"apps": [{"a": 1},{"b": [[], {}]}]}"#,
        ] {
            let fast = texts(doc, true).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(Ok(fast), texts(doc, false), "{doc}");
        }
    }

    #[test]
    fn unusual_documents_are_left_to_the_exact_split() {
        for doc in [
            "{}",
            "[]",
            r#"[[1]]"#,
            r#"{"x": 1}"#,
            r#"{"ap\u0070s": []}"#,
            r#"{"apps": [], "apps": []}"#,
            r#"{"apps": [1,]}"#,
            r#"{"apps": [1 2]}"#,
            r#"{"apps": [1],}"#,
            r#"{"apps": [1]} x"#,
            r#"{"apps": [{"a": "b}]}"#,
            r#"{"x": [1,], "apps": []}"#,
            "{\"x\u{1}\": 1, \"apps\": []}",
            r#"{"apps": {}}"#,
            r#"{"apps": null}"#,
        ] {
            assert_eq!(texts(doc, true), Err("Unusual".to_owned()), "{doc}");
        }
    }
}
