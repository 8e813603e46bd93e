//! Just enough of HAProxy's config syntax for the runtime diff: the text cut
//! into sections (a line at column 0 opens one, indented lines belong to
//! it), the `server` lines of a backend, and the few backend settings the
//! runtime API cares about (`balance`, `hash-type`, `default-server`,
//! `timeout connect`, `retries`). Pure: no I/O.

use std::net::IpAddr;
use std::time::Duration;

/// One section: its opening line (`backend app_10000`) and the lines under
/// it, verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    /// The line at column 0 (empty for the lines before the first section).
    pub header: &'a str,
    /// The indented (or blank, or comment) lines after it.
    pub lines: Vec<&'a str>,
}

impl<'a> Section<'a> {
    /// The section keyword (`backend`, `defaults`, …).
    pub fn keyword(&self) -> &'a str {
        self.header.split_whitespace().next().unwrap_or_default()
    }

    /// The name after the keyword (`app_10000`), if any.
    pub fn name(&self) -> Option<&'a str> {
        self.header.split_whitespace().nth(1)
    }

    /// The value of the first line whose first word is `directive`, i.e.
    /// the rest of that line (`balance roundrobin` → `roundrobin`).
    pub fn directive(&self, directive: &str) -> Option<&'a str> {
        self.lines.iter().find_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix(directive)?;
            (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim())
        })
    }

    /// Whether this is a backend `server` line.
    pub fn is_server_line(line: &str) -> bool {
        line.trim_start().starts_with("server ")
    }
}

/// Whether the line starting `rest` opens a section: its first character
/// is neither whitespace nor `#`.
fn opens(rest: &str) -> bool {
    rest.chars()
        .next()
        .is_some_and(|c| !c.is_whitespace() && c != '#')
}

/// The texts of the sections of `text`, in order, verbatim: the first is
/// what comes before the first section (possibly empty), each other one
/// runs from its opening line to the next opening line. Only the first
/// character of each line is looked at (the newlines are found with
/// `memchr`), nothing is copied: at 5,000 backends two 4 MB configs are
/// cut in about a millisecond, and only the sections whose texts differ
/// need [`Section::parse`].
pub fn section_texts(text: &str) -> Vec<&str> {
    let mut starts = vec![0];
    if opens(text) {
        starts.push(0);
    }
    starts.extend(
        memchr::memchr_iter(b'\n', text.as_bytes())
            .map(|i| i + 1)
            .filter(|&i| opens(&text[i..])),
    );
    let ends = starts.iter().skip(1).copied().chain([text.len()]);
    starts.iter().zip(ends).map(|(&s, e)| &text[s..e]).collect()
}

/// The sections of two configs that can differ, when that is provable
/// from their common beginning and end ([`changed_sections`]).
#[derive(Debug)]
pub struct Changed<'o, 'n> {
    /// The sections of the old text from the first one that may differ to
    /// the last one, in order (none of them the text before the first
    /// section).
    pub old: Vec<&'o str>,
    /// The same span of the new text: as many sections.
    pub new: Vec<&'n str>,
    /// The last `defaults` section before them (the same in both).
    pub defaults: Option<&'o str>,
}

/// Bytes `a` and `b` have in common at their start.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 4096;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + BLOCK <= n && a[i..i + BLOCK] == b[i..i + BLOCK] {
        i += BLOCK;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Bytes `a` and `b` have in common at their end, at most `max`.
fn common_suffix(a: &[u8], b: &[u8], max: usize) -> usize {
    const BLOCK: usize = 4096;
    let n = a.len().min(b.len()).min(max);
    let mut i = 0;
    while i + BLOCK <= n
        && a[a.len() - i - BLOCK..a.len() - i] == b[b.len() - i - BLOCK..b.len() - i]
    {
        i += BLOCK;
    }
    while i < n && a[a.len() - i - 1] == b[b.len() - i - 1] {
        i += 1;
    }
    i
}

/// The start of the line before the one starting at `line` (which is > 0).
fn previous_line(text: &[u8], line: usize) -> usize {
    memchr::memrchr(b'\n', &text[..line - 1]).map_or(0, |i| i + 1)
}

/// The sections of `old` and `new` that may differ, found from the bytes
/// they share at their start and end: every section before them is the
/// same text in both, and so is every section after them, at the same
/// index. Costs a comparison of the texts and a look at the lines around
/// the difference, whatever the size of the configs. `None` when that
/// cannot be shown cheaply — the text before the first section or the
/// first section differs, or the span has a different number of sections
/// in the two texts — and the caller cuts both texts whole
/// ([`section_texts`]).
pub fn changed_sections<'o, 'n>(old: &'o str, new: &'n str) -> Option<Changed<'o, 'n>> {
    let (a, b) = (old.as_bytes(), new.as_bytes());
    let prefix = common_prefix(a, b);
    let suffix = common_suffix(a, b, a.len().min(b.len()) - prefix);
    // The line holding the first difference starts after the last newline
    // before it; the lines before it are whole in the common part, so they
    // open sections in both texts alike. The span starts at the last of
    // those that opens one.
    let mut start = memchr::memrchr(b'\n', &a[..prefix]).map_or(0, |i| i + 1);
    loop {
        if start == 0 {
            return None;
        }
        start = previous_line(a, start);
        if start > 0 && opens(&old[start..]) {
            break;
        }
    }
    // The span ends where a line opens a section with the newline before
    // it inside the common end: from there on both texts are the same.
    let end = |text: &str, common_from: usize| {
        memchr::memchr_iter(b'\n', &text.as_bytes()[common_from..])
            .map(|i| common_from + i + 1)
            .find(|&i| opens(&text[i..]))
            .unwrap_or(text.len())
    };
    let old_end = end(old, a.len() - suffix);
    let new_end = old_end - (a.len() - suffix) + (b.len() - suffix);
    // Each span starts with a section: its text before the first one is
    // empty.
    let old_span = section_texts(&old[start..old_end]).split_off(1);
    let new_span = section_texts(&new[start..new_end]).split_off(1);
    if old_span.len() != new_span.len() {
        return None;
    }
    Some(Changed {
        old: old_span,
        new: new_span,
        defaults: defaults_before(old, start),
    })
}

/// The last section before `end` whose keyword is `defaults`.
fn defaults_before(text: &str, end: usize) -> Option<&str> {
    let bytes = &text.as_bytes()[..end];
    let keyword = |at: usize| {
        text[at..]
            .strip_prefix("defaults")
            .is_some_and(|rest| rest.chars().next().is_none_or(char::is_whitespace))
    };
    // Searched forwards (the vectorised direction: a reverse search of the
    // megabytes before a changed backend cost ~2 ms at 5,000 apps), keeping
    // the last match.
    let at = memchr::memmem::find_iter(bytes, b"\ndefaults")
        .map(|i| i + 1)
        .filter(|&i| keyword(i))
        .last()
        .or_else(|| keyword(0).then_some(0))?;
    let next = memchr::memchr_iter(b'\n', &bytes[at..])
        .map(|i| at + i + 1)
        .find(|&i| opens(&text[i..]))
        .unwrap_or(end);
    Some(&text[at..next])
}

/// The header of a section text of [`section_texts`]: its first line,
/// without trailing whitespace (`first`: the text before the first
/// section, which has none).
pub fn header_of(text: &str, first: bool) -> &str {
    if first {
        return "";
    }
    text.lines().next().unwrap_or_default().trim_end()
}

impl<'a> Section<'a> {
    /// A section text of [`section_texts`] cut into its header and lines
    /// (`first`: the text before the first section, all lines).
    pub fn parse(text: &'a str, first: bool) -> Section<'a> {
        let mut lines = text.lines();
        let header = if first {
            ""
        } else {
            lines.next().unwrap_or_default().trim_end()
        };
        Section {
            header,
            lines: lines.collect(),
        }
    }
}

/// Cut `text` into sections. Lines before the first section make a section
/// with an empty header.
pub fn sections(text: &str) -> Vec<Section<'_>> {
    section_texts(text)
        .into_iter()
        .enumerate()
        .map(|(i, t)| Section::parse(t, i == 0))
        .collect()
}

/// The part of `text` that `haproxy -c` needs to check the server lines of
/// `backends`: every section but the frontends, `listen`s and the other
/// backends, plus a frontend of its own (HAProxy refuses a config without a
/// listener). When only those backends' server lines changed, the rest is
/// what HAProxy already runs, so checking this excerpt is checking the
/// change — at a fraction of the cost of the whole config.
pub fn excerpt(text: &str, backends: &[&str]) -> String {
    let mut out = String::with_capacity(4096);
    for (i, t) in section_texts(text).into_iter().enumerate() {
        let header = header_of(t, i == 0);
        let mut words = header.split_whitespace();
        let keep = match words.next().unwrap_or_default() {
            "frontend" | "listen" => false,
            "backend" => words.next().is_some_and(|n| backends.contains(&n)),
            _ => true,
        };
        if keep {
            let s = Section::parse(t, i == 0);
            if !s.header.is_empty() {
                out.push_str(s.header);
                out.push('\n');
            }
            for line in &s.lines {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str("\nfrontend mlb_runtime_check\n  bind 127.0.0.1:1\n");
    out
}

/// A parsed `server <name> <ip>:<port> [options…]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    /// The server name.
    pub name: String,
    /// The address as written (`10.0.0.1:31000`).
    pub addr: String,
    /// The address, parsed (`None`: not an IP literal with a port).
    pub socket: Option<(IpAddr, u16)>,
    /// The `id N` option.
    pub id: Option<u32>,
    /// Whether the line says `disabled` (marathon-lb: a draining ZDD task).
    pub disabled: bool,
    /// The options after the address, minus `disabled` and `enabled`, in
    /// order (what `add server` gets).
    pub options: Vec<String>,
}

impl ServerLine {
    /// Parse a `server` line; `None` when it has no name or address.
    pub fn parse(line: &str) -> Option<ServerLine> {
        let mut words = line.split_whitespace();
        if words.next() != Some("server") {
            return None;
        }
        let name = words.next()?.to_owned();
        let addr = words.next()?.to_owned();
        let rest: Vec<&str> = words.collect();
        let id = rest
            .iter()
            .position(|w| *w == "id")
            .and_then(|i| rest.get(i + 1))
            .and_then(|v| v.parse().ok());
        Some(ServerLine {
            socket: parse_socket(&addr),
            name,
            addr,
            id,
            disabled: rest.contains(&"disabled"),
            options: rest
                .iter()
                .filter(|w| !matches!(**w, "disabled" | "enabled"))
                .map(|w| (*w).to_owned())
                .collect(),
        })
    }

    /// Whether the options start a health check (`check`).
    pub fn checked(&self) -> bool {
        self.options.iter().any(|o| o == "check")
    }
}

/// `1.2.3.4:80` or `[::1]:80` → the address and port.
fn parse_socket(addr: &str) -> Option<(IpAddr, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host.parse().ok()?, port.parse().ok()?))
}

/// An HAProxy time (`3s`, `500ms`, `2m`, `1h`, `1d`, `5000` = ms).
pub fn parse_time(value: &str) -> Option<Duration> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (n, unit) = value.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "" | "ms" => n,
        "us" => return Some(Duration::from_micros(n)),
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_directives() {
        let text = "global\n  maxconn 10\ndefaults\n  balance leastconn\n  timeout connect  3s\n\nbackend b\n  balance roundrobin\n  server s 1.2.3.4:80 id 7\n";
        let s = sections(text);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].header, "");
        assert_eq!(s[2].directive("timeout connect"), Some("3s"));
        assert_eq!(s[2].directive("balance"), Some("leastconn"));
        assert_eq!((s[3].keyword(), s[3].name()), ("backend", Some("b")));
        assert_eq!(s[3].directive("balance"), Some("roundrobin"));
        assert_eq!(s[3].directive("bal"), None);
        assert_eq!(s[2].lines.last(), Some(&""));
    }

    /// The line-by-line cut the runtime diff used before
    /// [`section_texts`]: the reference it must agree with.
    fn sections_by_lines(text: &str) -> Vec<Section<'_>> {
        let mut out = vec![Section {
            header: "",
            lines: Vec::new(),
        }];
        for line in text.lines() {
            if line
                .chars()
                .next()
                .is_some_and(|c| !c.is_whitespace() && c != '#')
            {
                out.push(Section {
                    header: line.trim_end(),
                    lines: Vec::new(),
                });
            } else if let Some(last) = out.last_mut() {
                last.lines.push(line);
            }
        }
        out
    }

    #[test]
    fn section_texts_cut_like_lines_do() {
        let texts = [
            "",
            "\n",
            "global\n",
            "global",
            "  indented first\nglobal\n  x\n",
            "# comment\nglobal \t\r\n  a\r\n\r\n#c\n\tb\nbackend b\n  server s 1.2.3.4:80",
            "a\nb\nc\n\n",
            // Non-ASCII whitespace indents; other non-ASCII opens.
            "global\n\u{a0}x\n\u{2028}y\n\u{e9}t\u{e9}\n  z\n",
            "global\n\r\nbackend x\r\n  server a 1.2.3.4:1\r\n\x0bv\n\x0cf\n",
        ];
        for text in texts {
            let cut = section_texts(text);
            assert_eq!(cut.concat(), text, "{text:?}");
            assert_eq!(sections(text), sections_by_lines(text), "{text:?}");
            for (i, t) in cut.iter().enumerate() {
                assert_eq!(header_of(t, i == 0), sections(text)[i].header);
            }
        }
    }

    #[test]
    fn server_lines() {
        let s = ServerLine::parse(
            "  server 10_0_0_1_31000 10.0.0.1:31000 id 42 check inter 2s disabled",
        )
        .unwrap();
        assert_eq!(s.name, "10_0_0_1_31000");
        assert_eq!(s.socket, Some(("10.0.0.1".parse().unwrap(), 31000)));
        assert_eq!(s.id, Some(42));
        assert!(s.disabled && s.checked());
        assert_eq!(s.options, ["id", "42", "check", "inter", "2s"]);
        let v6 = ServerLine::parse("server a [::1]:80").unwrap();
        assert_eq!(v6.socket, Some(("::1".parse().unwrap(), 80)));
        assert_eq!(v6.id, None);
        assert_eq!(
            ServerLine::parse("server a host.example:80")
                .unwrap()
                .socket,
            None
        );
        assert_eq!(ServerLine::parse("server a"), None);
        assert_eq!(ServerLine::parse("  balance x"), None);
    }

    #[test]
    fn excerpt_keeps_what_the_backends_need() {
        let text = "# head\nglobal\n  maxconn 10\ndefaults\n  mode http\nuserlist u\n  user a password x\n\
                    frontend f\n  bind :80\nlisten stats\n  bind :9090\nbackend a\n  server s 1.2.3.4:80\nbackend b\n  balance first\n";
        assert_eq!(
            excerpt(text, &["b"]),
            "# head\nglobal\n  maxconn 10\ndefaults\n  mode http\nuserlist u\n  user a password x\n\
             backend b\n  balance first\n\nfrontend mlb_runtime_check\n  bind 127.0.0.1:1\n"
        );
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse_time("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_time("5000"), Some(Duration::from_secs(5)));
        assert_eq!(parse_time("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_time("x"), None);
    }
}
