//! A byte-level server-sent-events decoder (no I/O) and the Marathon payload
//! decoding on top of it.
//!
//! [`SseDecoder`] follows the WHATWG event-stream rules: lines end with
//! `\r\n`, `\n` or `\r` (a `\r\n` split across two chunks counts once),
//! `data:` lines are joined with `\n`, `event:` sets the type, lines starting
//! with `:` are comments, `id:`/`retry:`/unknown fields are ignored, one
//! space after the colon is dropped, a leading UTF-8 BOM is skipped, and an
//! empty line dispatches the event (nothing when no data was collected:
//! Marathon's bare-CRLF keep-alive is such an empty line).
//!
//! One Marathon quirk on top: marathon-lb splits a `data` payload on `\r\n`
//! because Marathon sometimes packs several JSON documents into one event.
//! Once split into lines, the second document would be a line without a
//! `data:` prefix, so a line starting with `{` inside an event that already
//! has data is taken as more data (no SSE field name starts with `{`).
//! [`marathon_events`] then decodes every JSON document of the data.

use serde_json::Value;

/// Largest event (data plus the line being read) accepted, in bytes.
/// Marathon's light events are a few kB; full deployment plans can be MBs.
pub const MAX_EVENT_BYTES: usize = 64 << 20;

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (`message` when absent).
    pub event: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// The stream broke the decoder's limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An event or line longer than [`MAX_EVENT_BYTES`].
    #[error("event larger than {0} bytes")]
    TooLarge(usize),
}

/// Incremental SSE decoder: feed it chunks as they arrive, in order.
#[derive(Debug)]
pub struct SseDecoder {
    /// The line read so far (without its terminator).
    line: Vec<u8>,
    /// The last byte seen was `\r`: a `\n` right after it ends nothing.
    after_cr: bool,
    /// Whether the stream start (BOM check) is behind us.
    started: bool,
    /// The `event:` field of the event being collected.
    event: Option<String>,
    /// The data of the event being collected (each line followed by `\n`).
    data: String,
    /// Whether any `data` line was seen for this event.
    has_data: bool,
    max: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::with_limit(MAX_EVENT_BYTES)
    }

    /// A decoder accepting events up to `max` bytes.
    pub fn with_limit(max: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            started: false,
            event: None,
            data: String::new(),
            has_data: false,
            max,
        }
    }

    /// Decodes `chunk`, appending the events it completes to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), DecodeError> {
        if !self.started {
            // The BOM may itself arrive split; wait for three bytes.
            let have = self.line.len() + chunk.len();
            if have < 3 && b"\xEF\xBB\xBF".starts_with(&[&self.line[..], chunk].concat()) {
                self.line.extend_from_slice(chunk);
                return Ok(());
            }
            self.started = true;
            let mut head = std::mem::take(&mut self.line);
            head.extend_from_slice(chunk);
            let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
            return self.feed_lines(body, out);
        }
        if chunk.is_empty() {
            return Ok(());
        }
        if self.after_cr && chunk[0] == b'\n' {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        self.feed_lines(chunk, out)
    }

    fn feed_lines(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), DecodeError> {
        while let Some(pos) = chunk.iter().position(|&b| b == b'\r' || b == b'\n') {
            self.line.extend_from_slice(&chunk[..pos]);
            self.check_size()?;
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out);
            self.line = line;
            self.line.clear();
            if chunk[pos] == b'\r' {
                match chunk.get(pos + 1) {
                    Some(b'\n') => chunk = &chunk[pos + 2..],
                    Some(_) => chunk = &chunk[pos + 1..],
                    None => {
                        self.after_cr = true;
                        return Ok(());
                    }
                }
            } else {
                chunk = &chunk[pos + 1..];
            }
        }
        self.line.extend_from_slice(chunk);
        self.check_size()
    }

    fn check_size(&mut self) -> Result<(), DecodeError> {
        if self.line.len() + self.data.len() > self.max {
            self.line.clear();
            self.reset_event();
            return Err(DecodeError::TooLarge(self.max));
        }
        Ok(())
    }

    fn reset_event(&mut self) {
        self.event = None;
        self.data.clear();
        self.has_data = false;
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                let mut data = std::mem::take(&mut self.data);
                data.pop(); // the `\n` after the last line
                out.push(SseEvent {
                    event: self.event.take().unwrap_or_else(|| "message".to_owned()),
                    data,
                });
            }
            self.reset_event();
            return;
        }
        if line[0] == b':' {
            return;
        }
        if self.has_data && line[0] == b'{' {
            self.push_data(line);
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => self.push_data(value),
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {} // id, retry, unknown fields
        }
    }

    fn push_data(&mut self, value: &[u8]) {
        self.data.push_str(&String::from_utf8_lossy(value));
        self.data.push('\n');
        self.has_data = true;
    }
}

/// One Marathon event decoded from an SSE event's data.
#[derive(Debug, Clone, PartialEq)]
pub struct MarathonEvent {
    /// The payload's `eventType`, else the SSE `event:` name.
    pub event_type: String,
    /// The JSON document (`Null` when the data was not JSON).
    pub payload: Value,
}

/// The Marathon events in `ev`: each JSON document of its data (documents
/// separated by line breaks or other whitespace). Data that is not JSON gives
/// one event typed by the SSE name with a `Null` payload; what was decoded
/// before a syntax error is kept.
pub fn marathon_events(ev: &SseEvent) -> Vec<MarathonEvent> {
    let mut out = Vec::new();
    let docs = serde_json::Deserializer::from_str(&ev.data).into_iter::<Value>();
    let mut broken = false;
    for doc in docs {
        match doc {
            Ok(payload) => {
                let event_type = payload
                    .get("eventType")
                    .and_then(Value::as_str)
                    .unwrap_or(&ev.event)
                    .to_owned();
                out.push(MarathonEvent {
                    event_type,
                    payload,
                });
            }
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    if out.is_empty() && (broken || ev.data.trim().is_empty()) {
        out.push(MarathonEvent {
            event_type: ev.event.clone(),
            payload: Value::Null,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn marathon_framing_with_keepalives() {
        let got = decode_chunks(&[
            b"\r",
            b"\n",
            b"event: status_update_event\r\ndata: {\"eventType\":\"status_update_event\"}\r\n\r\n",
            b"\r\n\r\n",
            b"event: api_post_event\r\ndata: {\"a\":1}\r\n\r\n",
        ]);
        assert_eq!(
            got,
            vec![
                ev(
                    "status_update_event",
                    "{\"eventType\":\"status_update_event\"}"
                ),
                ev("api_post_event", "{\"a\":1}"),
            ]
        );
    }

    #[test]
    fn all_line_endings() {
        for sep in ["\r\n", "\n", "\r"] {
            let text = format!("event: x{sep}data: 1{sep}{sep}data: 2{sep}{sep}");
            assert_eq!(
                decode_chunks(&[text.as_bytes()]),
                vec![ev("x", "1"), ev("message", "2")],
                "{sep:?}"
            );
        }
    }

    #[test]
    fn multi_line_data_comments_and_fields() {
        let got = decode_chunks(&[
            b": a comment\n",
            b"id: 7\nretry: 100\ndata\ndata:no-space\ndata:  two-spaces\n",
            b"bogus: x\n\n",
        ]);
        assert_eq!(got, vec![ev("message", "\nno-space\n two-spaces")]);
    }

    #[test]
    fn event_without_data_is_not_dispatched_and_type_resets() {
        let got = decode_chunks(&[b"event: lonely\n\ndata: d\n\n"]);
        assert_eq!(got, vec![ev("message", "d")]);
    }

    #[test]
    fn incomplete_event_is_held_back() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(b"data: {\"x\"", &mut out).unwrap();
        d.feed(b":1}\r\n", &mut out).unwrap();
        assert!(out.is_empty());
        d.feed(b"\r\n", &mut out).unwrap();
        assert_eq!(out, vec![ev("message", "{\"x\":1}")]);
    }

    #[test]
    fn bom_is_skipped_even_split() {
        assert_eq!(
            decode_chunks(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]),
            vec![ev("message", "a")]
        );
        // A broken BOM makes the first line's field name unknown.
        assert!(decode_chunks(&[b"\xEFdata: a\n\n"]).is_empty());
    }

    #[test]
    fn packed_json_documents() {
        // One data field holding two documents separated by CRLF.
        let got = decode_chunks(&[
            b"event: status_update_event\r\ndata: {\"eventType\":\"a\"}\r\n{\"eventType\":\"b\"}\r\n\r\n",
        ]);
        assert_eq!(got.len(), 1);
        let types: Vec<_> = marathon_events(&got[0])
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(types, ["a", "b"]);
        // The same as two data lines.
        let got = decode_chunks(&[b"data: {\"eventType\":\"a\"}\ndata: {\"eventType\":\"b\"}\n\n"]);
        assert_eq!(marathon_events(&got[0]).len(), 2);
    }

    #[test]
    fn event_type_falls_back_to_the_sse_name() {
        let e = marathon_events(&ev("status_update_event", "{\"taskId\":\"t\"}"));
        assert_eq!(e[0].event_type, "status_update_event");
        assert_eq!(e[0].payload["taskId"], "t");
        let e = marathon_events(&ev("deployment_info", "not json"));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_type, "deployment_info");
        assert!(e[0].payload.is_null());
        let e = marathon_events(&ev("x", "{\"eventType\":\"api_post_event\"} garbage"));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_type, "api_post_event");
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut d = SseDecoder::with_limit(16);
        let mut out = Vec::new();
        assert!(d.feed(b"data: 0123456789", &mut out).is_ok());
        assert_eq!(
            d.feed(b"0123456789", &mut out),
            Err(DecodeError::TooLarge(16))
        );
        let mut d = SseDecoder::with_limit(16);
        d.feed(b"data: 0123456789\n", &mut out).unwrap();
        assert!(d.feed(b"data: 0123456789\n", &mut out).is_err());
    }

    /// A Marathon-like stream: events with CRLF framing, keep-alives,
    /// comments, mixed line ends.
    fn stream_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<SseEvent>)> {
        let piece = prop_oneof![
            // An event.
            (
                "[a-z_]{1,12}",
                proptest::collection::vec("[ -~]{0,20}", 1..4),
                prop_oneof![Just("\r\n"), Just("\n"), Just("\r")],
            )
                .prop_map(|(name, lines, eol)| {
                    let mut text = format!("event: {name}{eol}");
                    for l in &lines {
                        text.push_str(&format!("data: {l}{eol}"));
                    }
                    text.push_str(eol);
                    (text, Some(ev(&name, &lines.join("\n"))))
                }),
            // A keep-alive.
            Just(("\r\n".to_owned(), None)),
            // A comment.
            "[ -~]{0,10}".prop_map(|c| (format!(":{c}\n"), None)),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| {
            let mut bytes = Vec::new();
            let mut events = Vec::new();
            for (text, e) in pieces {
                bytes.extend_from_slice(text.as_bytes());
                events.extend(e);
            }
            (bytes, events)
        })
    }

    proptest! {
        #[test]
        fn chunking_does_not_matter(
            (bytes, events) in stream_strategy(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            at.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for c in at {
                chunks.push(&bytes[prev..c]);
                prev = c;
            }
            chunks.push(&bytes[prev..]);
            prop_assert_eq!(decode_chunks(&chunks), events.clone());
            // Byte by byte as well.
            let singles: Vec<&[u8]> = bytes.chunks(1).collect();
            prop_assert_eq!(decode_chunks(&singles), events);
        }

        #[test]
        fn never_panics_on_garbage(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
        ) {
            let mut d = SseDecoder::with_limit(64);
            let mut out = Vec::new();
            for c in &chunks {
                let _ = d.feed(c, &mut out);
            }
            for e in &out {
                let _ = marathon_events(e);
            }
        }
    }
}
