//! Coalescing triggers into reconciles. A Marathon event that finds the
//! loop idle — no batch taken in the last 10 ms — is applied at once
//! (membership changes should reach HAProxy in milliseconds, and a lone
//! event has nothing to wait for); later events wait until 10 ms after the
//! previous batch was taken, so a burst is applied at most every 10 ms,
//! each batch taking everything that came meanwhile (the other events of
//! the operation, those that came while the previous reconcile ran). Other
//! triggers wait a 50 ms debounce. Every batch waits at least until
//! `--min-reload-interval` has passed since the last reload, and a `Reset`
//! beats a `Reload`. A burst of a thousand events during a deployment
//! becomes a handful of reconciles. The Marathon events of a batch are
//! kept, in order, for the state kept from events.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::reconcile::Work;
use crate::trigger::{Cause, Event, Trigger};

/// The shortest time between two batches that start with a Marathon event:
/// the events of one operation that come within it (a deleted app's last
/// `status_update_event` and its `app_terminated_event` come milliseconds
/// apart) share the second batch.
pub const EVENT_DEBOUNCE: Duration = Duration::from_millis(10);

/// How long the loop waits after a trigger other than an event for more to
/// arrive (a refetch is costly: a stream reconnect and the events around
/// it should share one).
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// One reconcile's worth of triggers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Refetch (a resync: with a drift check) if any trigger asked for
    /// it, else revalidate, else apply the events.
    pub work: Work,
    /// The first refetch's cause, else the first revalidation's, else
    /// [`Cause::Event`].
    pub cause: Cause,
    /// A revalidation took the place of events: refetch after it (the
    /// events are not applied; the full fetch covers them).
    pub refetch_after: bool,
    /// When the events this batch applies (by themselves or by a refetch)
    /// arrived.
    pub events_received: Vec<Instant>,
}

/// When the loop took its batches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pacing {
    /// When HAProxy was last reloaded.
    pub last_reload: Option<Instant>,
    /// `--min-reload-interval`.
    pub min_interval: Duration,
    /// When the previous batch was taken.
    pub last_batch: Option<Instant>,
}

/// Waits for the next trigger, then for the debounce (an event: only
/// until [`EVENT_DEBOUNCE`] after the previous batch) and until
/// `min_interval` after `last_reload`, and takes every trigger queued by
/// then; the batch's time is recorded in `pacing`. `None` when the channel
/// is closed and empty.
pub async fn next_batch(rx: &mut mpsc::Receiver<Trigger>, pacing: &mut Pacing) -> Option<Batch> {
    let first = rx.recv().await?;
    let now = Instant::now();
    let mut ready = match first {
        Trigger::Apply(_) => pacing
            .last_batch
            .map_or(now, |last| (last + EVENT_DEBOUNCE).max(now)),
        _ => now + DEBOUNCE,
    };
    if let Some(last) = pacing.last_reload {
        ready = ready.max(last + pacing.min_interval);
    }
    tokio::time::sleep_until(ready).await;
    pacing.last_batch = Some(Instant::now());
    let (mut refetch, mut revalidate, mut events) = (None, None, Vec::<Event>::new());
    for trigger in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
        match trigger {
            Trigger::Reset(c) => refetch = refetch.or(Some(c)),
            Trigger::Reload(c) => revalidate = revalidate.or(Some(c)),
            Trigger::Apply(e) => events.push(e),
        }
    }
    let received: Vec<Instant> = events.iter().map(|e| e.received).collect();
    Some(match (refetch, revalidate) {
        (Some(cause), _) => Batch {
            work: if cause == Cause::Resync {
                Work::Resync
            } else {
                Work::Refetch
            },
            cause,
            refetch_after: false,
            events_received: received,
        },
        (None, Some(cause)) => Batch {
            work: Work::Revalidate,
            cause,
            refetch_after: !events.is_empty(),
            events_received: Vec::new(),
        },
        (None, None) => Batch {
            work: Work::Apply(events),
            cause: Cause::Event,
            refetch_after: false,
            events_received: received,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: Trigger = Trigger::Reset(Cause::Event);
    const USR1: Trigger = Trigger::Reload(Cause::Usr1);

    /// Sends `triggers` at their offsets from now, in the background.
    fn send_at(tx: &mpsc::Sender<Trigger>, triggers: &[(u64, Trigger)]) {
        let start = Instant::now();
        for (ms, t) in triggers.iter().cloned() {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(start + Duration::from_millis(ms)).await;
                tx.send(t).await.unwrap();
            });
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_within_the_debounce_is_one_reconcile() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut pacing = Pacing::default();
        let start = Instant::now();
        send_at(&tx, &[(0, EVENT), (10, EVENT), (40, EVENT), (49, USR1)]);
        let batch = next_batch(&mut rx, &mut pacing).await.unwrap();
        assert_eq!(
            batch,
            Batch {
                work: Work::Refetch,
                cause: Cause::Event,
                refetch_after: false,
                events_received: Vec::new(),
            }
        );
        assert_eq!(start.elapsed(), DEBOUNCE);
        // A trigger after the debounce is the next batch's.
        send_at(&tx, &[(100, Trigger::Reset(Cause::Resync))]);
        let next = next_batch(&mut rx, &mut pacing).await.unwrap();
        assert_eq!(next.cause, Cause::Resync);
        assert!(rx.try_recv().is_err(), "every trigger was taken");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_beats_a_reload_that_came_first() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut pacing = Pacing::default();
        send_at(&tx, &[(0, USR1), (20, Trigger::Reset(Cause::Hup))]);
        let batch = next_batch(&mut rx, &mut pacing).await.unwrap();
        assert_eq!(
            batch,
            Batch {
                work: Work::Refetch,
                cause: Cause::Hup,
                refetch_after: false,
                events_received: Vec::new(),
            }
        );
        send_at(&tx, &[(0, USR1)]);
        let batch = next_batch(&mut rx, &mut pacing).await.unwrap();
        assert_eq!(batch.work, Work::Revalidate);
        assert_eq!(batch.cause, Cause::Usr1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_minimum_reload_interval_holds_the_batch_and_gathers_more() {
        let (tx, mut rx) = mpsc::channel(16);
        let last_reload = Instant::now();
        let min = Duration::from_secs(5);
        let mut pacing = Pacing {
            last_reload: Some(last_reload),
            min_interval: min,
            last_batch: None,
        };
        send_at(&tx, &[(100, USR1), (3_000, EVENT), (4_900, EVENT)]);
        let batch = next_batch(&mut rx, &mut pacing).await.unwrap();
        assert_eq!(last_reload.elapsed(), min);
        assert_eq!(batch.work, Work::Refetch);
        // Long after the last reload only the debounce is waited.
        send_at(&tx, &[(0, EVENT)]);
        let before = Instant::now();
        next_batch(&mut rx, &mut pacing).await.unwrap();
        assert_eq!(before.elapsed(), DEBOUNCE);
        // So does an event: the interval holds it too.
        let mut pacing = Pacing {
            last_reload: Some(Instant::now()),
            min_interval: min,
            last_batch: None,
        };
        send_at(&tx, &[(0, apply(1))]);
        let before = Instant::now();
        next_batch(&mut rx, &mut pacing).await.unwrap();
        assert_eq!(before.elapsed(), min);
    }

    fn apply(n: u64) -> Trigger {
        Trigger::Apply(Event {
            event_type: "status_update_event".into(),
            payload: std::sync::Arc::new(serde_json::json!({ "n": n })),
            received: Instant::now(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn events_are_applied_in_order_unless_a_reset_or_reload_comes_with_them() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut pacing = Pacing::default();
        // Events that find the loop idle are taken at once, with what came
        // before the loop looked (the reconcile before it was running).
        let start = Instant::now();
        for n in 1..=3 {
            tx.send(apply(n)).await.unwrap();
        }
        let batch = next_batch(&mut rx, &mut pacing).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO, "no wait on an idle loop");
        let Work::Apply(events) = &batch.work else {
            panic!("{batch:?}");
        };
        let order: Vec<u64> = events
            .iter()
            .map(|e| e.payload["n"].as_u64().unwrap())
            .collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(batch.cause, Cause::Event);
        // An event right after a batch waits until the event debounce
        // has passed since that batch, and those coming meanwhile join it;
        // one that finds the loop idle again goes at once.
        send_at(&tx, &[(0, apply(4)), (5, apply(5)), (30, apply(8))]);
        let batch = next_batch(&mut rx, &mut pacing).await.unwrap();
        assert!(
            matches!(&batch.work, Work::Apply(e) if e.len() == 2),
            "{batch:?}"
        );
        assert_eq!(start.elapsed(), EVENT_DEBOUNCE);
        let batch = next_batch(&mut rx, &mut pacing).await.unwrap();
        assert!(
            matches!(&batch.work, Work::Apply(e) if e.len() == 1),
            "{batch:?}"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(30));
        // A reset makes them moot: the full fetch covers them.
        send_at(&tx, &[(0, EVENT), (10, apply(6))]);
        let batch = next_batch(&mut rx, &mut pacing).await.unwrap();
        assert_eq!(batch.work, Work::Refetch);
        assert_eq!(batch.events_received.len(), 1, "its latency still counts");
        // A revalidation runs first, then a refetch covers the events.
        send_at(&tx, &[(0, USR1), (10, apply(7))]);
        let batch = next_batch(&mut rx, &mut pacing).await.unwrap();
        assert_eq!(batch.work, Work::Revalidate);
        assert!(batch.refetch_after);
        // The periodic resync is a refetch with a drift check.
        send_at(&tx, &[(0, Trigger::Reset(Cause::Resync))]);
        let batch = next_batch(&mut rx, &mut pacing).await.unwrap();
        assert_eq!(batch.work, Work::Resync);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_channel_ends_the_loop() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut pacing = Pacing::default();
        drop(tx);
        assert_eq!(next_batch(&mut rx, &mut pacing).await, None);
    }
}
