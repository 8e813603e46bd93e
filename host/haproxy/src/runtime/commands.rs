//! The runtime-API commands a [`Plan`](super::Plan) sends, the exact
//! replies HAProxy 2.6 gives when they succeed, and the parsers of
//! `show servers state` and `show stat`. Pure: no I/O.
//!
//! Never `enabled` on `add server`: on 2.6.12 such a server gets no
//! traffic, and a later `maint` corrupts the backend's counters
//! (haproxy/haproxy#2497). A server is added (in maintenance), its check
//! enabled, then made ready.

use super::config::ServerLine;

/// One command and the reply it must get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command line.
    pub line: String,
    /// The reply (trimmed) that means success.
    pub success: &'static str,
}

impl Command {
    /// Whether `reply` is the success reply.
    pub fn succeeded(&self, reply: &str) -> bool {
        reply.trim() == self.success
    }
}

/// `add server <be>/<name> <addr> <options…>`: the server is created in
/// maintenance, its check (if any) disabled.
pub fn add(backend: &str, server: &ServerLine) -> Command {
    let mut line = format!("add server {backend}/{} {}", server.name, server.addr);
    for option in &server.options {
        line.push(' ');
        line.push_str(option);
    }
    Command {
        line,
        success: "New server registered.",
    }
}

/// `enable health <be>/<name>`: a dynamic server's check starts only then.
pub fn enable_health(backend: &str, name: &str) -> Command {
    Command {
        line: format!("enable health {backend}/{name}"),
        success: "",
    }
}

/// `set server <be>/<name> state ready|maint`.
pub fn set_state(backend: &str, name: &str, ready: bool) -> Command {
    let state = if ready { "ready" } else { "maint" };
    Command {
        line: format!("set server {backend}/{name} state {state}"),
        success: "",
    }
}

/// `del server <be>/<name>` (the server must be in maintenance, with no
/// session, idle connection or queue).
pub fn delete(backend: &str, name: &str) -> Command {
    Command {
        line: format!("del server {backend}/{name}"),
        success: "Server deleted.",
    }
}

/// The reply of `del server` while sessions are attached.
pub const STILL_CONNECTED: &str = "Server still has connections attached to it, cannot remove it.";
/// The reply when the server does not exist (any more).
pub const NO_SUCH_SERVER: &str = "No such server.";

/// The longest command line sent at once: commands are joined with `; `
/// up to this many bytes (HAProxy's CLI reads a line into a buffer of
/// `tune.bufsize`, 16 KB by default; 2.6.12 took 40 KB lines in a test,
/// this stays well below).
pub const MAX_LINE: usize = 4096;

/// `commands` joined into as few lines as [`MAX_LINE`] allows, in order,
/// each command after `prefix` (`@1 ` through the master CLI, which
/// routes every command of a line by its own prefix), with how many
/// commands each line holds. A command longer than the limit gets a line
/// of its own.
pub fn batch_lines(prefix: &str, commands: &[&str]) -> Vec<(String, usize)> {
    let mut lines: Vec<(String, usize)> = Vec::new();
    for command in commands {
        let part = format!("{prefix}{command}");
        match lines.last_mut() {
            Some((line, n)) if line.len() + 2 + part.len() <= MAX_LINE => {
                line.push_str("; ");
                line.push_str(&part);
                *n += 1;
            }
            _ => lines.push((part, 1)),
        }
    }
    lines
}

/// Cut the answer to `n` commands sent on one line into one reply per
/// command. HAProxy ends each command's output with an empty line: an
/// empty reply is `\n`, any other is its lines followed by `\n` (the
/// replies this module expects have no empty line inside). `None` when
/// the answer does not cut into exactly `n` replies.
pub fn split_replies(text: &str, n: usize) -> Option<Vec<&str>> {
    let mut replies = Vec::with_capacity(n);
    let mut rest = text;
    for _ in 0..n {
        if let Some(after) = rest.strip_prefix('\n') {
            replies.push("");
            rest = after;
            continue;
        }
        let end = rest.find("\n\n")?;
        replies.push(&rest[..=end]);
        rest = &rest[end + 2..];
    }
    rest.is_empty().then_some(replies)
}

/// `srv_admin_state` bits: any maintenance (forced, inherited, resolution).
/// `CMAINT` (0x04, "disabled in the config") is only a marker: a server
/// with it and no other bit takes traffic.
const ADMIN_MAINT: u32 = 0x01 | 0x02 | 0x20;
/// `srv_admin_state` bits: forced or inherited drain.
const ADMIN_DRAIN: u32 = 0x08 | 0x10;

/// One server of `show servers state` (format 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// `be_id`: the backend's numeric id.
    pub backend_id: u32,
    /// `srv_id`.
    pub id: u32,
    /// `srv_name`.
    pub name: String,
    /// `srv_addr`.
    pub addr: String,
    /// `srv_admin_state` (bit field).
    pub admin: u32,
    /// `srv_port`.
    pub port: u16,
}

impl ServerState {
    /// In maintenance (takes no new traffic).
    pub fn maint(&self) -> bool {
        self.admin & ADMIN_MAINT != 0
    }

    /// Ready: neither maintenance nor drain.
    pub fn ready(&self) -> bool {
        self.admin & (ADMIN_MAINT | ADMIN_DRAIN) == 0
    }
}

/// The command of [`parse_servers_state`].
pub fn show_servers_state(backend: &str) -> String {
    format!("show servers state {backend}")
}

/// Parse `show servers state <be>`: `None` unless the answer is a format-1
/// dump (first line `1`, a `#` header, then lines of at least 19 fields).
pub fn parse_servers_state(text: &str) -> Option<Vec<ServerState>> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next()? != "1" {
        return None;
    }
    let mut out = Vec::new();
    for line in lines {
        if line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 19 {
            return None;
        }
        out.push(ServerState {
            backend_id: f[0].parse().ok()?,
            id: f[2].parse().ok()?,
            name: f[3].to_owned(),
            addr: f[4].to_owned(),
            admin: f[6].parse().ok()?,
            port: f[18].parse().ok()?,
        });
    }
    Some(out)
}

/// The command of [`parse_sessions`]: the stats of one server, by the
/// numeric ids `show servers state` gives. Not by name: `show stat <name>`
/// takes the first proxy of that name, and marathon-lb names an app's
/// frontend (which comes first) like its backend — the server would never
/// be listed.
pub fn show_stat(backend_id: u32, server_id: u32) -> String {
    format!("show stat {backend_id} 4 {server_id}")
}

/// From `show stat` CSV: the current sessions plus queued requests of
/// server `name` (`None`: not listed, or not a stats answer).
pub fn parse_sessions(text: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines();
    let header = lines.next()?.strip_prefix("# ")?;
    let column = |n: &str| header.split(',').position(|c| c == n);
    let (sv, qcur, scur) = (column("svname")?, column("qcur")?, column("scur")?);
    lines.find_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        if f.get(sv) != Some(&name) {
            return None;
        }
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        Some(n(qcur)? + n(scur)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Measured on 2.6.12 (`@1 show servers state c`).
    const STATE: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
        4 c 5 s1 127.0.0.1 2 0 1 1 17 1 0 2 0 0 0 1 - 18902 - 0 0 - - 0\n\
        4 c 6 s2 127.0.0.1 0 1 1 1 1 1 0 0 2 0 0 1 - 18903 - 0 0 - - 0\n\
        4 c 33 d 127.0.0.1 2 4 1 1 1 1 0 0 8 0 0 1 - 18906 - 0 0 - - 0\n\n";

    #[test]
    fn commands_never_send_enabled() {
        let s =
            ServerLine::parse("server a 10.0.0.1:80 id 7 check inter 2s enabled disabled").unwrap();
        let add = add("be", &s);
        assert_eq!(add.line, "add server be/a 10.0.0.1:80 id 7 check inter 2s");
        assert!(add.succeeded("New server registered.\n\n"));
        assert!(!add.succeeded("'id' : custom id 7 already used at lb.cfg:24 ('server x')."));
        assert!(!add.succeeded("Permission denied\n"));
        let ready = set_state("be", "a", true);
        assert_eq!(ready.line, "set server be/a state ready");
        assert!(ready.succeeded("\n"));
        assert!(!ready.succeeded("No such server.\n"));
        assert_eq!(
            set_state("be", "a", false).line,
            "set server be/a state maint"
        );
        assert_eq!(enable_health("be", "a").line, "enable health be/a");
        let del = delete("be", "a");
        assert!(del.succeeded("Server deleted.\n"));
        assert!(!del.succeeded(STILL_CONNECTED));
    }

    #[test]
    fn batches_of_commands() {
        let lines = batch_lines("@1 ", &["a", "b"]);
        assert_eq!(lines, [("@1 a; @1 b".to_owned(), 2)]);
        let long = "x".repeat(MAX_LINE);
        let lines = batch_lines("", &["a", &long, "b", "c"]);
        assert_eq!(
            lines,
            [
                ("a".to_owned(), 1),
                (long.clone(), 1),
                ("b; c".to_owned(), 2)
            ]
        );
        let many: Vec<String> = (0..1000)
            .map(|i| format!("set server b/s{i} state ready"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let lines = batch_lines("@1 ", &many);
        assert!(lines.len() > 1 && lines.iter().all(|(l, _)| l.len() <= MAX_LINE));
        assert_eq!(lines.iter().map(|(_, n)| n).sum::<usize>(), 1000);
        let joined: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(joined.join("; ").matches("@1 set server").count(), 1000);
    }

    #[test]
    fn replies_of_a_batch() {
        // Measured on 2.6.12 through the master CLI: add; enable health
        // (refused: no check); set state; show servers state.
        let text = format!(
            "New server registered.\n\nHealth check was not configured on this server, cannot enable.\n\n\n{STATE}"
        );
        let replies = split_replies(&text, 4).unwrap();
        assert_eq!(replies[0], "New server registered.\n");
        assert!(replies[1].starts_with("Health check"));
        assert_eq!(replies[2], "");
        assert_eq!(parse_servers_state(replies[3]).unwrap().len(), 3);
        assert_eq!(split_replies(&text, 3), None, "a reply left over");
        assert_eq!(split_replies(&text, 5), None, "a reply missing");
        assert_eq!(split_replies("\n\n", 2), Some(vec!["", ""]));
        assert_eq!(split_replies("", 0), Some(vec![]));
    }

    #[test]
    fn servers_state() {
        let s = parse_servers_state(STATE).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].id, s[0].name.as_str(), s[0].port), (5, "s1", 18902));
        assert!(s[0].ready() && !s[0].maint());
        assert!(s[1].maint() && !s[1].ready());
        // Disabled in the config, then `state ready`: CMAINT stays, serves.
        assert!(s[2].ready());
        assert_eq!(parse_servers_state("1\n# header\n"), Some(vec![]));
        assert_eq!(parse_servers_state("No such backend.\n"), None);
        assert_eq!(parse_servers_state("1\n4 c 5 s1\n"), None);
    }

    #[test]
    fn sessions_from_show_stat() {
        let text = "# pxname,svname,qcur,qmax,scur,smax\nc,s1,0,0,2,3\nc,s2,1,0,0,0\n";
        assert_eq!(parse_sessions(text, "s1"), Some(2));
        assert_eq!(parse_sessions(text, "s2"), Some(1));
        assert_eq!(parse_sessions(text, "s3"), None);
        assert_eq!(parse_sessions("Unknown command", "s1"), None);
    }
}
