//! `option` lines added to every HTTP-mode `frontend` and `listen` section of
//! a rendered config, whatever template produced the section (default
//! templates, a custom HEAD from the environment or `templates/`, per-app
//! label overrides): supervised mode needs `idle-close-on-response` in each
//! of them for keep-alive clients to survive reloads.
//!
//! A section is in HTTP mode when its last `mode` line says `http`, or —
//! without a `mode` line of its own — when the `defaults` section it
//! inherits from does (the last `defaults` before it, or the named one of
//! `from <name>`; a `defaults` section without `from` starts afresh);
//! HAProxy's own default is TCP. The option is left out of
//! a section that sets or negates it, or that inherits it from its
//! `defaults`.

use std::collections::HashMap;

/// What a section inherits from a `defaults` section.
#[derive(Debug, Clone, Default)]
struct Inherited {
    mode: Option<String>,
    /// Options set (or negated) there.
    options: Vec<String>,
}

/// The words of a config line, up to a `#` comment.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace()
        .take_while(|w| !w.starts_with('#'))
        .collect()
}

fn is_header(line: &str) -> bool {
    line.starts_with(|c: char| c.is_ascii_alphabetic())
}

/// The `mode` and the options a section body sets, over what it inherits.
fn read(body: &[&str], base: &Inherited) -> Inherited {
    let mut own = base.clone();
    for l in body {
        match words(l).as_slice() {
            ["mode", m, ..] => own.mode = Some((*m).to_owned()),
            ["option", o, ..] | ["no", "option", o, ..] => own.options.push((*o).to_owned()),
            _ => {}
        }
    }
    own
}

/// `config` with `  option <name>` added to every HTTP-mode `frontend` and
/// `listen` section that lacks it: right after its `mode http` line, or
/// after its header when the mode is inherited. Also returns how many
/// sections got an option.
pub(crate) fn add(config: &str, options: &[String]) -> (String, usize) {
    let mut out = String::with_capacity(config.len() + 256);
    let mut changed = 0;
    let mut last_defaults = Inherited::default();
    let mut named: HashMap<String, Inherited> = HashMap::new();
    let mut lines = config.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        if !is_header(line) {
            out.push_str(line);
            continue;
        }
        // The whole section: up to the next header line.
        let mut body = Vec::new();
        while let Some(next) = lines.peek() {
            if is_header(next) {
                break;
            }
            body.push(*next);
            lines.next();
        }
        let head = words(line);
        let from = head
            .iter()
            .position(|w| *w == "from")
            .and_then(|i| head.get(i + 1))
            .and_then(|name| named.get(*name));
        let kind = head.first().copied();
        // A `defaults` section starts afresh unless it names one `from`.
        let fresh = Inherited::default();
        let base = match (from, kind) {
            (Some(named), _) => named,
            (None, Some("defaults")) => &fresh,
            (None, _) => &last_defaults,
        };
        let section = read(&body, base);
        match kind {
            Some("defaults") => {
                if let Some(name) = head.get(1).filter(|w| **w != "from") {
                    named.insert((*name).to_owned(), section.clone());
                }
                last_defaults = section;
            }
            Some("frontend" | "listen") if section.mode.as_deref() == Some("http") => {
                let missing: Vec<&String> = options
                    .iter()
                    .filter(|o| !section.options.contains(o))
                    .collect();
                if !missing.is_empty() {
                    changed += 1;
                    let own_mode = body.iter().any(|l| words(l).first() == Some(&"mode"));
                    let lines = std::iter::once(line).chain(body.iter().copied());
                    for (i, l) in lines.enumerate() {
                        out.push_str(l);
                        let after = if own_mode {
                            words(l) == ["mode", "http"]
                        } else {
                            i == 0
                        };
                        if after {
                            if !l.ends_with('\n') {
                                out.push('\n');
                            }
                            for option in &missing {
                                out.push_str("  option ");
                                out.push_str(option);
                                out.push('\n');
                            }
                        }
                    }
                    continue;
                }
            }
            _ => {}
        }
        out.push_str(line);
        body.iter().for_each(|l| out.push_str(l));
    }
    (out, changed)
}
