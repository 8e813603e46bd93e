//! Coalescing triggers into reconciles: after the first trigger the loop
//! waits a short debounce — 10 ms when it is a Marathon event (membership
//! changes should reach HAProxy in milliseconds; the other events of the
//! same Marathon operation join it), 50 ms otherwise — and at least until
//! `--min-reload-interval` has passed since the last reload; everything that arrives meanwhile (or while the
//! previous reconcile ran) joins the same reconcile, and a `Reset` beats a
//! `Reload`. A burst of a thousand events during a deployment becomes a
//! handful of reconciles. The Marathon events of a batch are kept, in
//! order, for the state kept from events.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::reconcile::Work;
use crate::trigger::{Cause, Event, Trigger};

/// How long the loop waits after a Marathon event for the others of the
/// same operation (a deleted app's last `status_update_event` and its
/// `app_terminated_event` come milliseconds apart).
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

/// Waits for the next trigger, then for the debounce and until
/// `min_interval` after `last_reload`, and takes every trigger queued by
/// then. `None` when the channel is closed and empty.
pub async fn next_batch(
    rx: &mut mpsc::Receiver<Trigger>,
    last_reload: Option<Instant>,
    min_interval: Duration,
) -> Option<Batch> {
    let first = rx.recv().await?;
    let debounce = match first {
        Trigger::Apply(_) => EVENT_DEBOUNCE,
        _ => DEBOUNCE,
    };
    let mut ready = Instant::now() + debounce;
    if let Some(last) = last_reload {
        ready = ready.max(last + min_interval);
    }
    tokio::time::sleep_until(ready).await;
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
        let start = Instant::now();
        send_at(&tx, &[(0, EVENT), (10, EVENT), (40, EVENT), (49, USR1)]);
        let batch = next_batch(&mut rx, None, Duration::ZERO).await.unwrap();
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
        let next = next_batch(&mut rx, None, Duration::ZERO).await.unwrap();
        assert_eq!(next.cause, Cause::Resync);
        assert!(rx.try_recv().is_err(), "every trigger was taken");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_beats_a_reload_that_came_first() {
        let (tx, mut rx) = mpsc::channel(16);
        send_at(&tx, &[(0, USR1), (20, Trigger::Reset(Cause::Hup))]);
        let batch = next_batch(&mut rx, None, Duration::ZERO).await.unwrap();
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
        let batch = next_batch(&mut rx, None, Duration::ZERO).await.unwrap();
        assert_eq!(batch.work, Work::Revalidate);
        assert_eq!(batch.cause, Cause::Usr1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_minimum_reload_interval_holds_the_batch_and_gathers_more() {
        let (tx, mut rx) = mpsc::channel(16);
        let last_reload = Instant::now();
        let min = Duration::from_secs(5);
        send_at(&tx, &[(100, USR1), (3_000, EVENT), (4_900, EVENT)]);
        let batch = next_batch(&mut rx, Some(last_reload), min).await.unwrap();
        assert_eq!(last_reload.elapsed(), min);
        assert_eq!(batch.work, Work::Refetch);
        // Long after the last reload only the debounce is waited.
        send_at(&tx, &[(0, EVENT)]);
        let before = Instant::now();
        next_batch(&mut rx, Some(last_reload), min).await.unwrap();
        assert_eq!(before.elapsed(), DEBOUNCE);
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
        // An event waits only the event debounce, and takes what came
        // before the loop looked (the reconcile before it was running).
        let start = Instant::now();
        for n in 1..=3 {
            tx.send(apply(n)).await.unwrap();
        }
        let batch = next_batch(&mut rx, None, Duration::ZERO).await.unwrap();
        assert_eq!(
            start.elapsed(),
            EVENT_DEBOUNCE,
            "a short debounce for events"
        );
        let Work::Apply(events) = &batch.work else {
            panic!("{batch:?}");
        };
        let order: Vec<u64> = events
            .iter()
            .map(|e| e.payload["n"].as_u64().unwrap())
            .collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(batch.cause, Cause::Event);
        // Events within the event debounce join; a later one makes the
        // next batch.
        send_at(&tx, &[(0, apply(4)), (5, apply(5)), (30, apply(8))]);
        let batch = next_batch(&mut rx, None, Duration::ZERO).await.unwrap();
        assert!(
            matches!(&batch.work, Work::Apply(e) if e.len() == 2),
            "{batch:?}"
        );
        let batch = next_batch(&mut rx, None, Duration::ZERO).await.unwrap();
        assert!(
            matches!(&batch.work, Work::Apply(e) if e.len() == 1),
            "{batch:?}"
        );
        // A reset makes them moot: the full fetch covers them.
        send_at(&tx, &[(0, EVENT), (10, apply(6))]);
        let batch = next_batch(&mut rx, None, Duration::ZERO).await.unwrap();
        assert_eq!(batch.work, Work::Refetch);
        assert_eq!(batch.events_received.len(), 1, "its latency still counts");
        // A revalidation runs first, then a refetch covers the events.
        send_at(&tx, &[(0, USR1), (10, apply(7))]);
        let batch = next_batch(&mut rx, None, Duration::ZERO).await.unwrap();
        assert_eq!(batch.work, Work::Revalidate);
        assert!(batch.refetch_after);
        // The periodic resync is a refetch with a drift check.
        send_at(&tx, &[(0, Trigger::Reset(Cause::Resync))]);
        let batch = next_batch(&mut rx, None, Duration::ZERO).await.unwrap();
        assert_eq!(batch.work, Work::Resync);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_channel_ends_the_loop() {
        let (tx, mut rx) = mpsc::channel(1);
        drop(tx);
        assert_eq!(next_batch(&mut rx, None, Duration::ZERO).await, None);
    }
}
