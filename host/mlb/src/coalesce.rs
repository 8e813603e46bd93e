//! Coalescing triggers into reconciles: after the first trigger the loop
//! waits a short debounce, and at least until `--min-reload-interval` has
//! passed since the last reload; everything that arrives meanwhile joins
//! the same reconcile, and a `Reset` beats a `Reload`. A burst of a thousand
//! events during a deployment becomes a handful of reconciles.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::reconcile::Work;
use crate::trigger::{Cause, Trigger};

/// How long the loop waits after a trigger for more to arrive.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// One reconcile's worth of triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Refetch if any trigger asked for it, else revalidate.
    pub work: Work,
    /// The first refetch's cause, else the first revalidation's.
    pub cause: Cause,
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
    let mut ready = Instant::now() + DEBOUNCE;
    if let Some(last) = last_reload {
        ready = ready.max(last + min_interval);
    }
    tokio::time::sleep_until(ready).await;
    let first_cause = match first {
        Trigger::Reset(c) | Trigger::Reload(c) => c,
    };
    let mut refetch = None;
    for trigger in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
        if let Trigger::Reset(c) = trigger {
            refetch = refetch.or(Some(c));
        }
    }
    Some(match refetch {
        Some(cause) => Batch {
            work: Work::Refetch,
            cause,
        },
        None => Batch {
            work: Work::Revalidate,
            cause: first_cause,
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
                cause: Cause::Event
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
                cause: Cause::Hup
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

    #[tokio::test(start_paused = true)]
    async fn a_closed_channel_ends_the_loop() {
        let (tx, mut rx) = mpsc::channel(1);
        drop(tx);
        assert_eq!(next_batch(&mut rx, None, Duration::ZERO).await, None);
    }
}
