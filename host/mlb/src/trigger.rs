//! What makes the long-running mode regenerate or reload.
//!
//! Triggers travel over one channel to the reconcile loop, which coalesces
//! them: any number of `Reset`s while a reconcile runs cause one more
//! reconcile; `Reset` beats `Reload` when both are pending; the Marathon
//! events of one batch (`Apply`) are applied in order to the state kept
//! from events (a `Reset` in the same batch makes them moot).

use std::sync::Arc;

/// A request to the reconcile loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Refetch apps from Marathon, regenerate, apply if changed (relevant
    /// events, (re)connects of the event stream, SIGHUP, periodic resync).
    Reset(Cause),
    /// Re-validate the config file on disk and reload HAProxy (SIGUSR1).
    Reload(Cause),
    /// Apply a relevant Marathon event to the state kept from events
    /// (without a fetch when the event proves the change).
    Apply(Event),
}

/// One relevant Marathon event, as the stream gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its `eventType`.
    pub event_type: String,
    /// The JSON document.
    pub payload: Arc<serde_json::Value>,
    /// When the stream gave it (for `mlb_event_to_applied_seconds`).
    pub received: tokio::time::Instant,
}

/// Why a trigger was sent (a metrics label and a log field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// Process start.
    Start,
    /// A relevant Marathon event (`api_post_event`, `status_update_event`,
    /// `health_status_changed_event`).
    Event,
    /// The event stream (re)connected: events may have been missed.
    StreamConnected,
    /// The periodic full resync.
    Resync,
    /// SIGHUP or `/_mlb_signal/hup`.
    Hup,
    /// SIGUSR1 or `/_mlb_signal/usr1`.
    Usr1,
    /// Another try after a failed reconcile (with backoff).
    Retry,
}

impl Cause {
    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Start => "start",
            Cause::Event => "event",
            Cause::StreamConnected => "stream_connected",
            Cause::Resync => "resync",
            Cause::Hup => "sighup",
            Cause::Usr1 => "sigusr1",
            Cause::Retry => "retry",
        }
    }
}
