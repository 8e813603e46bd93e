//! When `haproxy -c` of a runtime change provably cannot fail, so the
//! change is written without it (the check costs ≥ 35 ms of CPU even for an
//! empty config, more than everything else a membership change costs).
//! Pure: no I/O.
//!
//! A runtime [`Plan`] already means that every section, and every line of
//! a touched backend other than its `server` lines, is byte-for-byte what
//! HAProxy runs — and HAProxy validated that when it loaded it (or took
//! its `server` lines through `add server`, which parses them with the
//! same keyword parsers, and this rule held for them then). So only the
//! changed `server` lines can fail. The check is skipped when, in every
//! backend of the plan:
//!
//! 1. **Added lines look like running ones.** Every `server` line of the
//!    new backend that is not, verbatim, a line HAProxy runs in that
//!    backend is *shape-equal* to one that is: the same number of words,
//!    every word equal except
//!    - the server name (word 2), made of `A-Z a-z 0-9 _ . : -` only (the
//!      characters HAProxy allows in a name);
//!    - the address (word 3): an IP literal and a port as
//!      [`ServerLine`] parses them, the port in decimal without a leading
//!      zero and not 0, the address not `0.0.0.0` or `::`, in the same form
//!      as the running line's (IPv4, or IPv6 with or without brackets);
//!    - the value after the one `id` keyword (walked with the keyword
//!      arities of `add server`), in decimal without a leading zero, from
//!      1 to 2³¹ − 1 (HAProxy refuses 0 and stores an `int`).
//!
//!    and both lines are plain words: printable ASCII without `"` `'` `\`
//!    `#` `$`, separated by spaces and tabs, so HAProxy cuts them into the
//!    same words as this module does.
//! 2. **Names and ids stay unique.** No two `server` lines of the new
//!    backend have the same name or the same `id` (HAProxy refuses both).
//! 3. **Removed servers are referenced nowhere.** The name of every server
//!    the plan removes does not occur as a whole word (between characters
//!    that cannot be part of a name) anywhere in the new config: no
//!    `use-server`, `track` or sample fetch can be left pointing at it.
//!
//! Anything else — a new keyword or value, a first server in an empty
//! backend, a quoted word — keeps the check.

use std::collections::BTreeSet;

use super::config::ServerLine;
use super::diff::{BackendPlan, Plan, RUNTIME_KEYWORDS};

/// More removed servers than this: check instead of searching the config
/// for each name (each search reads the whole config).
const MAX_SEARCHES: usize = 16;

/// Why `haproxy -c` must run for `plan` into `config` (the new config
/// text); `None`: it cannot fail (see the module documentation).
pub fn check_needed(plan: &Plan, config: &str) -> Option<String> {
    let removed: usize = plan.backends.iter().map(|b| b.remove.len()).sum();
    if removed > MAX_SEARCHES {
        return Some(format!("{removed} servers removed"));
    }
    plan.backends
        .iter()
        .find_map(|b| backend_check_needed(b, config).map(|why| format!("{}: {why}", b.backend)))
}

fn backend_check_needed(b: &BackendPlan, config: &str) -> Option<String> {
    let mut names = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for s in &b.expected {
        if !names.insert(s.name.as_str()) {
            return Some(format!("server name {} twice", s.name));
        }
        if let Some(id) = s.id
            && !ids.insert(id)
        {
            return Some(format!("id {id} twice"));
        }
    }
    for line in &b.lines.new {
        if b.lines.running.contains(line) {
            continue;
        }
        if !b.lines.running.iter().any(|r| shape_equal(r, line)) {
            return Some(format!("`{line}` is shaped like no running server line"));
        }
    }
    for s in &b.remove {
        if occurs_as_name(config, &s.name) {
            return Some(format!("removed server {} is named in the config", s.name));
        }
    }
    None
}

/// Whether `new` is `running` with only the name, the address and the `id`
/// value changed, within the bounds of the module documentation.
pub fn shape_equal(running: &str, new: &str) -> bool {
    let (Some(old), Some(words)) = (plain_words(running), plain_words(new)) else {
        return false;
    };
    if old.len() != words.len() || old.len() < 3 || old[0] != "server" || words[0] != "server" {
        return false;
    }
    let Some(id_value) = id_value_index(&old) else {
        return false;
    };
    if id_value_index(&words) != Some(id_value) {
        return false;
    }
    let (Some(old_addr), Some(new_addr)) = (address_form(old[2]), address_form(words[2])) else {
        return false;
    };
    old_addr == new_addr
        && name_ok(words[1])
        && id_value.is_none_or(|i| id_ok(words[i]))
        && (3..words.len())
            .filter(|i| Some(*i) != id_value)
            .all(|i| old[i] == words[i])
}

/// The words of `line` when HAProxy cuts it the same way: printable ASCII
/// without quotes, backslashes, `#` or `$`, separated by spaces and tabs.
fn plain_words(line: &str) -> Option<Vec<&str>> {
    let plain = line
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || (b.is_ascii_graphic() && !b"\"'\\#$".contains(&b)));
    plain.then(|| line.split([' ', '\t']).filter(|w| !w.is_empty()).collect())
}

/// `Some(None)`: no `id` keyword; `Some(Some(i))`: the index of the value of
/// the one `id`; `None`: `id` twice, or a keyword `add server` does not take
/// (the walk cannot tell arguments from keywords then).
fn id_value_index(words: &[&str]) -> Option<Option<usize>> {
    let mut found = None;
    let mut i = 3;
    while i < words.len() {
        let arity = match words[i] {
            "disabled" | "enabled" => 0,
            keyword => RUNTIME_KEYWORDS.iter().find(|(k, _)| *k == keyword)?.1,
        };
        if words[i] == "id" {
            if found.is_some() || i + 1 >= words.len() {
                return None;
            }
            found = Some(i + 1);
        }
        i += 1 + arity;
    }
    Some(found)
}

/// A character HAProxy allows in a name (`invalid_char()`).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

fn name_ok(name: &str) -> bool {
    !name.is_empty() && name.chars().all(name_char)
}

/// Decimal without a leading zero.
fn decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0')
}

fn id_ok(value: &str) -> bool {
    decimal(value) && value.parse::<i32>().is_ok_and(|id| id > 0)
}

/// The form of an address HAProxy surely parses: (IPv6, bracketed), or
/// `None` when it is not an IP literal with a plain decimal port.
fn address_form(addr: &str) -> Option<(bool, bool)> {
    let line = format!("server x {addr}");
    let (ip, port) = ServerLine::parse(&line)?.socket?;
    let (_, port_text) = addr.rsplit_once(':')?;
    // 0.0.0.0 and :: mean "the client's destination" to HAProxy, with its
    // own rules (checks need an address): not a plain address.
    if !decimal(port_text) || port == 0 || ip.is_unspecified() {
        return None;
    }
    Some((ip.is_ipv6(), addr.starts_with('[')))
}

/// Whether `name` occurs in `config` as a whole word: not preceded or
/// followed by a character that can be part of a name.
fn occurs_as_name(config: &str, name: &str) -> bool {
    let finder = memchr::memmem::Finder::new(name.as_bytes());
    finder.find_iter(config.as_bytes()).any(|i| {
        let before = config[..i].chars().next_back();
        let after = config[i + name.len()..].chars().next();
        !before.is_some_and(name_char) && !after.is_some_and(name_char)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::diff::{Decision, decide};

    const RUNNING: &str = "server 10_0_0_1_31000 10.0.0.1:31000 id 1234 check inter 2s fall 3";

    #[test]
    fn name_address_and_id_may_change() {
        let new = "server 10_0_0_2_31001 10.0.0.2:31001 id 77 check inter 2s fall 3";
        assert!(shape_equal(RUNNING, new));
        assert!(shape_equal(RUNNING, RUNNING));
        // Blanks between words do not matter.
        assert!(shape_equal(RUNNING, &new.replace(' ', " \t ")));
        assert!(shape_equal(
            "server a [::1]:80 id 1",
            "server b [fe80::1]:8080 id 2"
        ));
        assert!(shape_equal("server a 1.2.3.4:80", "server b 1.2.3.5:81"));
    }

    #[test]
    fn anything_else_keeps_the_check() {
        let cases = [
            // A new keyword, a new value, a word dropped.
            "server 10_0_0_2_31001 10.0.0.2:31001 id 77 check inter 2s fall 3 backup",
            "server 10_0_0_2_31001 10.0.0.2:31001 id 77 check inter abc fall 3",
            "server 10_0_0_2_31001 10.0.0.2:31001 id 77 check inter 2s fall",
            "server 10_0_0_2_31001 10.0.0.2:31001 id 77 check inter 2s rise 3",
            // Bad ids.
            "server 10_0_0_2_31001 10.0.0.2:31001 id 0 check inter 2s fall 3",
            "server 10_0_0_2_31001 10.0.0.2:31001 id 077 check inter 2s fall 3",
            "server 10_0_0_2_31001 10.0.0.2:31001 id 2147483648 check inter 2s fall 3",
            "server 10_0_0_2_31001 10.0.0.2:31001 id x check inter 2s fall 3",
            // Bad names.
            "server a/b 10.0.0.2:31001 id 77 check inter 2s fall 3",
            "server é 10.0.0.2:31001 id 77 check inter 2s fall 3",
            // Addresses: a host name, another family, odd ports.
            "server a host.example:31001 id 77 check inter 2s fall 3",
            "server a [::1]:31001 id 77 check inter 2s fall 3",
            "server a 10.0.0.2:031001 id 77 check inter 2s fall 3",
            "server a 10.0.0.2:0 id 77 check inter 2s fall 3",
            "server a 10.0.0.2:+80 id 77 check inter 2s fall 3",
            "server a 10.0.0.2 id 77 check inter 2s fall 3",
            "server a 0.0.0.0:31001 id 77 check inter 2s fall 3",
            // Words HAProxy cuts differently.
            "server a 10.0.0.2:31001 id 77 check inter \"2s\" fall 3",
            "server a 10.0.0.2:31001 id 77 check inter 2s fall 3 #x",
            "server a 10.0.0.2:31001 id 77 check inter 2s fall\u{a0}3",
        ];
        for new in cases {
            assert!(!shape_equal(RUNNING, new), "{new}");
        }
        // Where the id is depends on the keywords before it.
        assert!(!shape_equal(
            "server a 1.2.3.4:80 agent-send id check",
            "server b 1.2.3.5:80 agent-send id 5"
        ));
        assert!(!shape_equal(
            "server a 1.2.3.4:80 id 1 id 2",
            "server b 1.2.3.5:80 id 1 id 3"
        ));
        // A running line HAProxy cuts differently is no model either.
        assert!(!shape_equal(
            "server a 1.2.3.4:80 agent-send \"x y\"",
            "server b 1.2.3.5:80 agent-send \"x y\""
        ));
    }

    fn backend(servers: &[&str], tail: &str) -> String {
        let mut text = String::from(
            "global\n  maxconn 10\ndefaults\n  mode http\nfrontend web_10000\n  bind :80\n  default_backend web_10000\nbackend web_10000\n  balance roundrobin\n",
        );
        for s in servers {
            text.push_str(&format!("  {s}\n"));
        }
        text.push_str(tail);
        text
    }

    fn check(old: &[&str], new: &[&str], tail: &str) -> Option<String> {
        let new_text = backend(new, tail);
        match decide(&backend(old, tail), &new_text, |_| Vec::new()) {
            Decision::Runtime(plan) => check_needed(&plan, &new_text),
            other => panic!("{other:?}"),
        }
    }

    const A: &str = "server 10_0_0_1_31000 10.0.0.1:31000 id 1 check inter 2s";
    const B: &str = "server 10_0_0_2_31001 10.0.0.2:31001 id 2 check inter 2s";
    const C: &str = "server 10_0_0_3_31002 10.0.0.3:31002 id 3 check inter 2s";

    #[test]
    fn plans_of_shape_equal_lines_skip_the_check() {
        assert_eq!(check(&[A], &[A, B], ""), None);
        assert_eq!(check(&[A, B], &[B], ""), None);
        assert_eq!(check(&[A, B], &[B, C], ""), None);
        // A toggle to `disabled` is a new shape, back again is not.
        let a_disabled = format!("{A} disabled");
        assert!(check(&[A, B], &[&a_disabled, B], "").is_some());
        assert_eq!(check(&[&a_disabled, B], &[&a_disabled, B, C], ""), None);
    }

    #[test]
    fn plans_that_can_fail_keep_the_check() {
        // The first server of an empty backend: nothing to compare with.
        assert!(check(&[], &[A], "").is_some());
        // The same id twice, the same name twice.
        // (the plan refuses an id a running server holds, not two new
        // servers sharing one).
        let c_id_2 = C.replace("id 3", "id 2");
        let why = check(&[A], &[A, B, &c_id_2], "").unwrap();
        assert!(why.contains("id 2 twice"), "{why}");
        let c_named_b = C.replace("10_0_0_3_31002", "10_0_0_2_31001");
        let why = check(&[A], &[A, B, &c_named_b], "").unwrap();
        assert!(why.contains("name 10_0_0_2_31001 twice"), "{why}");
        // A removed server named elsewhere (a `use-server`, a `track`).
        let tail = "backend other\n  server x 10.0.0.8:1 track web_10000/10_0_0_1_31000\n";
        let why = check(&[A, B], &[B], tail).unwrap();
        assert!(why.contains("removed server 10_0_0_1_31000"), "{why}");
        // Part of a longer name is no reference.
        let tail = "backend other\n  server 110_0_0_1_31000 10.0.0.8:1\n";
        assert_eq!(check(&[A, B], &[B], tail), None);
    }

    #[test]
    fn whole_words_only() {
        let text = "use-server s1 if x\n  server s10 1.2.3.4:1\n  track b/s2\n";
        assert!(occurs_as_name(text, "s1"));
        assert!(occurs_as_name(text, "s2"));
        assert!(!occurs_as_name(text, "s"));
        assert!(!occurs_as_name(text, "s3"));
        assert!(!occurs_as_name(text, "1.2.3"));
    }
}
