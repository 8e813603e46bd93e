//! Logging: `--log-level`, `--log-format` (Python `logging` style, or `json`)
//! and `--syslog-socket`, as one `tracing` layer writing to stderr and,
//! when the socket exists, to syslog.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter::LevelFilter};

/// A bad logging flag.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// Unknown `--log-level`.
    #[error("invalid --log-level {0:?} (CRITICAL, ERROR, WARNING, INFO, DEBUG or NOTSET)")]
    Level(String),
    /// `--log-format` names an attribute we cannot fill.
    #[error("--log-format: unsupported attribute %({0})")]
    Format(String),
}

/// `--log-level` → a tracing filter (case-insensitive, like marathon-lb).
pub fn parse_level(level: &str) -> Result<LevelFilter, LoggingError> {
    Ok(match level.to_ascii_uppercase().as_str() {
        "CRITICAL" | "ERROR" => LevelFilter::ERROR,
        "WARNING" | "WARN" => LevelFilter::WARN,
        "INFO" => LevelFilter::INFO,
        "DEBUG" => LevelFilter::DEBUG,
        "NOTSET" => LevelFilter::TRACE,
        _ => return Err(LoggingError::Level(level.to_owned())),
    })
}

/// One piece of a `--log-format`.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// `%(name)s` with an optional (left-aligned, width) spec.
    Attr {
        /// Attribute name.
        name: String,
        /// Alignment and width.
        width: Option<(bool, usize)>,
    },
}

const ATTRIBUTES: &[&str] = &[
    "asctime",
    "name",
    "levelname",
    "message",
    "process",
    "module",
    "funcName",
    "levelno",
    "created",
];

/// How lines look.
#[derive(Debug, Clone, PartialEq)]
pub enum LineFormat {
    /// A Python `logging` format string, parsed.
    Python(Vec<Piece>),
    /// One JSON object per line.
    Json,
}

/// Parse `--log-format`: `json`, or `%(attr)[-][width]s|d` pieces.
pub fn parse_format(format: &str) -> Result<LineFormat, LoggingError> {
    if format == "json" {
        return Ok(LineFormat::Json);
    }
    let mut pieces = Vec::new();
    let mut rest = format;
    while let Some(i) = rest.find("%(") {
        pieces.push(Piece::Text(rest[..i].to_owned()));
        let after = &rest[i + 2..];
        let close = after
            .find(')')
            .ok_or_else(|| LoggingError::Format(after.to_owned()))?;
        let name = &after[..close];
        if !ATTRIBUTES.contains(&name) {
            return Err(LoggingError::Format(name.to_owned()));
        }
        let spec = &after[close + 1..];
        let conv = spec
            .find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(|| LoggingError::Format(name.to_owned()))?;
        let flags = &spec[..conv];
        let left = flags.starts_with('-');
        let width = flags
            .trim_start_matches('-')
            .parse::<usize>()
            .ok()
            .map(|w| (left, w));
        pieces.push(Piece::Attr {
            name: name.to_owned(),
            width,
        });
        rest = &spec[conv + 1..];
    }
    pieces.push(Piece::Text(rest.to_owned()));
    pieces.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
    Ok(LineFormat::Python(pieces))
}

/// Python's `asctime`: `2021-03-04 09:12:30,551` (UTC here).
fn asctime(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02},{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// An event's message and its other fields (numbers and booleans stay
/// numbers and booleans in JSON lines).
#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(String, serde_json::Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.rest.push((field.name().to_owned(), value.into()));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.rest.push((field.name().to_owned(), value.into()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.rest.push((field.name().to_owned(), value.into()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.rest.push((field.name().to_owned(), value.into()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.rest
                .push((field.name().to_owned(), format!("{value:?}").into()));
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "NOTSET",
    }
}

/// The layer that formats and writes every event.
struct LineLayer {
    format: LineFormat,
    syslog: Option<Mutex<UnixDatagram>>,
}

impl LineLayer {
    fn line(&self, event: &Event<'_>, fields: &Fields) -> String {
        let mut message = fields.message.clone();
        for (k, v) in &fields.rest {
            match v {
                serde_json::Value::String(text) => {
                    let _ = write!(message, " {k}={text}");
                }
                other => {
                    let _ = write!(message, " {k}={other}");
                }
            }
        }
        let level = event.metadata().level();
        match &self.format {
            LineFormat::Json => {
                let mut obj = serde_json::Map::new();
                obj.insert("time".into(), asctime(SystemTime::now()).into());
                obj.insert("level".into(), level_name(level).into());
                obj.insert("target".into(), event.metadata().target().into());
                obj.insert("message".into(), fields.message.clone().into());
                for (k, v) in &fields.rest {
                    obj.insert(k.clone(), v.clone());
                }
                serde_json::Value::Object(obj).to_string()
            }
            LineFormat::Python(pieces) => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Attr { name, width } => {
                            let value = match name.as_str() {
                                "asctime" => asctime(SystemTime::now()),
                                // zdd's own lines under zdd.py's logger name.
                                "name" => match event.metadata().target() {
                                    "zdd" => "zdd".to_owned(),
                                    _ => "marathon_lb".to_owned(),
                                },
                                "levelname" => level_name(level).to_owned(),
                                "levelno" => match *level {
                                    Level::ERROR => "40",
                                    Level::WARN => "30",
                                    Level::INFO => "20",
                                    Level::DEBUG => "10",
                                    Level::TRACE => "0",
                                }
                                .to_owned(),
                                "process" => std::process::id().to_string(),
                                "created" => format!(
                                    "{:.3}",
                                    SystemTime::now()
                                        .duration_since(UNIX_EPOCH)
                                        .unwrap_or_default()
                                        .as_secs_f64()
                                ),
                                "module" | "funcName" => event.metadata().target().to_owned(),
                                _ => message.clone(),
                            };
                            match width {
                                Some((true, w)) => {
                                    let _ = write!(out, "{value:<w$}");
                                }
                                Some((false, w)) => {
                                    let _ = write!(out, "{value:>w$}");
                                }
                                None => out.push_str(&value),
                            }
                        }
                    }
                }
                out
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = self.line(event, &fields);
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        if let Some(sock) = &self.syslog {
            let severity = match *event.metadata().level() {
                Level::ERROR => 3,
                Level::WARN => 4,
                Level::INFO => 6,
                _ => 7,
            };
            // facility user (1) → priority 8 + severity
            let msg = format!("<{}>marathon_lb: {}", 8 + severity, line);
            if let Ok(sock) = sock.lock() {
                let _ = sock.send(msg.as_bytes());
            }
        }
    }
}

/// Install the global subscriber.
pub fn init(level: &str, format: &str, syslog_socket: &Path) -> Result<(), LoggingError> {
    let filter = parse_level(level)?;
    let format = parse_format(format)?;
    let syslog = if syslog_socket == Path::new("/dev/null") {
        None
    } else {
        UnixDatagram::unbound()
            .and_then(|s| s.connect(syslog_socket).map(|()| s))
            .ok()
            .map(Mutex::new)
    };
    let missing_syslog = syslog.is_none() && syslog_socket != Path::new("/dev/null");
    // Dependencies' debug chatter (wasmtime's code loader, HTTP internals,
    // everything bridged from the `log` crate) stays out even at DEBUG.
    let quiet = filter.min(LevelFilter::INFO);
    let targets = tracing_subscriber::filter::Targets::new()
        .with_default(filter)
        .with_targets(
            [
                "log",
                "wasmtime",
                "cranelift",
                "h2",
                "hyper",
                "hyper_util",
                "reqwest",
                "rustls",
            ]
            .map(|t| (t, quiet)),
        );
    tracing_subscriber::registry()
        .with(LineLayer { format, syslog }.with_filter(targets))
        .init();
    if missing_syslog {
        tracing::warn!(socket = %syslog_socket.display(), "syslog socket not available; logging to stderr only");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_format_parses() {
        let f = parse_format("%(asctime)-15s %(name)s: %(message)s").unwrap();
        let LineFormat::Python(p) = f else { panic!() };
        assert_eq!(p.len(), 5);
        assert!(parse_format("%(bogus)s").is_err());
        assert_eq!(parse_format("json").unwrap(), LineFormat::Json);
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("warning").unwrap(), LevelFilter::WARN);
        assert!(parse_level("LOUD").is_err());
    }

    #[test]
    fn asctime_shape() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_614_849_150_551);
        assert_eq!(asctime(t), "2021-03-04 09:12:30,551");
    }
}
