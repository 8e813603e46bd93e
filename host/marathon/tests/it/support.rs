//! Helpers shared by the follower tests: a runtime, test logs, and a
//! [`Follower`] that records every [`StreamEvent`] it is sent.

use std::time::Duration;

use mlb_marathon::sse::{SseConfig, StreamEvent, follow};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

/// A tokio runtime for the simulator and the follower.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Logs to the test's output (`RUST_LOG` filters).
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Whether `e` asks the controller for a full refetch (a (re)connect or a
/// relevant Marathon event).
pub fn is_reset(e: &StreamEvent) -> bool {
    matches!(
        e,
        StreamEvent::Connected { .. } | StreamEvent::Event { relevant: true, .. }
    )
}

pub fn connected(e: &StreamEvent) -> bool {
    matches!(e, StreamEvent::Connected { .. })
}

pub fn relevant_event(e: &StreamEvent) -> bool {
    matches!(e, StreamEvent::Event { relevant: true, .. })
}

/// A running [`follow`] and every event it sent so far.
pub struct Follower {
    rx: mpsc::Receiver<StreamEvent>,
    task: JoinHandle<()>,
    /// Every event received, in order.
    pub seen: Vec<StreamEvent>,
}

/// Starts following with `config`.
pub fn start(config: SseConfig) -> Follower {
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(follow(config, tx));
    Follower {
        rx,
        task,
        seen: Vec::new(),
    }
}

impl Follower {
    /// Waits for an event matching `want` (recording the ones before it).
    pub async fn expect(&mut self, what: &str, want: fn(&StreamEvent) -> bool, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => {
                    let hit = want(&e);
                    self.seen.push(e);
                    if hit {
                        return;
                    }
                }
                Ok(None) => panic!("event channel closed"),
                Err(_) => panic!("no {what} within {within:?}; seen:\n{:#?}", self.summary()),
            }
        }
    }

    /// No reset (connect or relevant event) arrives for `quiet`; other
    /// events (activity, failures) are recorded.
    pub async fn expect_no_reset(&mut self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        while let Ok(e) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            let Some(e) = e else { return };
            assert!(!is_reset(&e), "unexpected {e:?}");
            self.seen.push(e);
        }
    }

    /// Records what is queued now.
    pub fn drain(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            self.seen.push(e);
        }
    }

    /// How many recorded events match `which` (after draining the queue).
    pub fn count(&mut self, which: fn(&StreamEvent) -> bool) -> usize {
        self.drain();
        self.seen.iter().filter(|e| which(e)).count()
    }

    /// Successful (re)connects so far.
    pub fn connects(&mut self) -> usize {
        self.count(connected)
    }

    /// Watchdog reconnects so far.
    pub fn silences(&mut self) -> usize {
        self.count(|e| matches!(e, StreamEvent::Silent { .. }))
    }

    /// Recorded events without the (many) keep-alive activities.
    pub fn summary(&self) -> Vec<&StreamEvent> {
        self.seen
            .iter()
            .filter(|e| **e != StreamEvent::Activity)
            .collect()
    }

    /// Closes the channel; the follower must stop.
    pub async fn stop(self) {
        drop(self.rx);
        timeout(Duration::from_secs(3), self.task)
            .await
            .expect("follow stops when the channel closes")
            .unwrap();
    }
}
