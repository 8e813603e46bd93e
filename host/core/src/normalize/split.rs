//! The `/v2/apps` document split into its apps' JSON texts, handed out in
//! chunks *while* the document is scanned, so that another thread can decode
//! the first apps while this one still reads the last (the scan is about a
//! third of the parse's work at 10,000 apps).
//!
//! Accepts and refuses exactly what `#[derive(Deserialize)] struct Document
//! { apps: Vec<&RawValue> }` does, with the same errors (a test compares
//! them): other keys are skipped, a missing or repeated `apps` is an error,
//! and the scan is a full JSON check of the document.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Consecutive apps of the document.
pub(super) struct Chunk<'a> {
    /// Position of the first one in the document's `apps` list.
    pub(super) first: usize,
    /// Their JSON texts.
    pub(super) apps: Vec<&'a str>,
}

/// Scan `body` as `{"apps": [...]}`, giving every `size` apps (and the
/// rest at the end) to `send` as soon as they are scanned. On an error,
/// some chunks may have been sent already. (A `str`: serde_json checks the
/// UTF-8 of every app's text again when it scans bytes.)
pub(super) fn split<'a>(
    body: &'a str,
    size: usize,
    send: impl FnMut(Chunk<'a>),
) -> Result<(), serde_json::Error> {
    let mut sink = Sink::new(size, send);
    let mut de = serde_json::Deserializer::from_str(body);
    de.deserialize_struct("Document", &["apps"], DocumentVisitor(&mut sink))?;
    de.end()?;
    sink.flush();
    Ok(())
}

/// Apps scanned and not sent yet.
pub(super) struct Sink<'a, F> {
    size: usize,
    first: usize,
    apps: Vec<&'a str>,
    send: F,
}

impl<'a, F: FnMut(Chunk<'a>)> Sink<'a, F> {
    /// Sending chunks of `size` apps to `send`.
    pub(super) fn new(size: usize, send: F) -> Self {
        Self {
            size: size.max(1),
            first: 0,
            apps: Vec::new(),
            send,
        }
    }

    /// One more app's text.
    pub(super) fn push(&mut self, raw: &'a str) {
        if self.apps.is_empty() {
            self.apps.reserve_exact(self.size);
        }
        self.apps.push(raw);
        if self.apps.len() == self.size {
            self.flush();
        }
    }

    /// Send what is left.
    pub(super) fn flush(&mut self) {
        if self.apps.is_empty() {
            return;
        }
        let apps = std::mem::take(&mut self.apps);
        let first = self.first;
        self.first += apps.len();
        (self.send)(Chunk { first, apps });
    }
}

/// The document: `{"apps": [...], ...}` (or, as serde's derive accepts,
/// `[[...]]`).
struct DocumentVisitor<'s, 'a, F>(&'s mut Sink<'a, F>);

impl<'a, F: FnMut(Chunk<'a>)> Visitor<'a> for DocumentVisitor<'_, 'a, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct Document")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        match seq.next_element_seed(Apps(self.0))? {
            Some(()) => Ok(()),
            None => Err(de::Error::invalid_length(
                0,
                &"struct Document with 1 element",
            )),
        }
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Apps if seen => return Err(de::Error::duplicate_field("apps")),
                Key::Apps => {
                    seen = true;
                    map.next_value_seed(Apps(&mut *self.0))?;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if seen {
            Ok(())
        } else {
            Err(de::Error::missing_field("apps"))
        }
    }
}

/// A key of the document.
enum Key {
    Apps,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("field identifier")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(if v == "apps" { Key::Apps } else { Key::Other })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// The `apps` list, each element pushed to the sink as it is scanned.
struct Apps<'s, 'a, F>(&'s mut Sink<'a, F>);

impl<'a, F: FnMut(Chunk<'a>)> DeserializeSeed<'a> for Apps<'_, 'a, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'a, F: FnMut(Chunk<'a>)> Visitor<'a> for Apps<'_, 'a, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<&'a RawValue>()? {
            self.0.push(raw.get());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Document<'a> {
        #[serde(borrow)]
        apps: Vec<&'a RawValue>,
    }

    /// What `split` gives: the apps' texts and the chunks' starts, or the
    /// error's text.
    fn split_all(body: &str, size: usize) -> Result<(Vec<String>, Vec<usize>), String> {
        let mut apps = Vec::new();
        let mut firsts = Vec::new();
        split(body, size, |chunk| {
            assert_eq!(chunk.first, apps.len());
            assert!(!chunk.apps.is_empty() && chunk.apps.len() <= size.max(1));
            firsts.push(chunk.first);
            apps.extend(chunk.apps.iter().map(|r| (*r).to_owned()));
        })
        .map_err(|e| e.to_string())?;
        Ok((apps, firsts))
    }

    #[test]
    fn the_split_is_the_derived_document_with_its_errors() {
        let docs: &[&str] = &[
            r#"{"apps": []}"#,
            r#"{"apps": [1, {"a": [2, "]"]}, "x\"", null, true]}"#,
            r#" {"x": 1, "apps": [{}, {}, {}, {}], "y": [1, {"apps": 2}]} "#,
            r#"{"ap\u0070s": [1, 2, 3]}"#,
            r#"[[{"id": "/a"}, 2]]"#,
            r#"{}"#,
            r#"{"x": []}"#,
            r#"{"apps": null}"#,
            r#"{"apps": {}}"#,
            r#"{"apps": "x"}"#,
            r#"{"apps": [1], "apps": [2]}"#,
            r#"[]"#,
            r#"[[1], 2]"#,
            r#""apps""#,
            "<html>",
            "",
            r#"{"apps": [1,]}"#,
            r#"{"apps": [1]} x"#,
            r#"{"apps": [1]}{}"#,
            r#"{"apps": [{"id": "/a""#,
            r#"{"apps": [{"id": "/a"}, {"id": "/b}]}"#,
            r#"{"apps": [1 2]}"#,
            r#"{"apps": [01]}"#,
            r#"{apps: []}"#,
        ];
        for doc in docs {
            let derived = serde_json::from_str::<Document<'_>>(doc)
                .map(|d| {
                    d.apps
                        .iter()
                        .map(|r| r.get().to_owned())
                        .collect::<Vec<_>>()
                })
                .map_err(|e| e.to_string());
            for size in [1, 2, 3, 64] {
                let got = split_all(doc, size).map(|(apps, _)| apps);
                assert_eq!(got, derived, "{doc} (chunks of {size})");
            }
        }
    }

    #[test]
    fn chunks_are_sent_as_soon_as_they_are_full() {
        let (apps, firsts) = split_all(r#"{"apps": [1, 2, 3, 4, 5, 6, 7]}"#, 3).unwrap();
        assert_eq!(apps.len(), 7);
        assert_eq!(firsts, [0, 3, 6]);
        // Before an error: what was scanned went out, the error follows.
        let mut sent = 0;
        let e = split(r#"{"apps": [1, 2, 3, 4, x]}"#, 2, |c| sent += c.apps.len());
        assert!(e.is_err());
        assert_eq!(sent, 4);
    }
}
