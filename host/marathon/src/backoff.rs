//! Jittered exponential backoff between failed attempts (reconnecting the
//! event stream, retrying Marathon).
//!
//! marathon-lb's event loop sleeps `random() * wait` after an error, where
//! `wait` starts at 3 s and grows ×1.5 per failure up to `--max-backoff`, and
//! goes back to 3 s once a stream has lived longer than 600 s.
//! [`Backoff::marathon_lb`] is exactly that; [`Backoff::new`] takes every
//! number as a parameter, and [`Jitter`] chooses how the wait is randomised.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How a wait is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the current wait.
    None,
    /// Uniform in `[0.5, 1.0] × wait` ("equal jitter": never much shorter).
    Half,
    /// Uniform in `[0, 1.0] × wait` (marathon-lb's `random() * wait`).
    Full,
}

/// A jittered exponential backoff.
///
/// Each [`next_delay`](Self::next_delay) returns the current wait (jittered)
/// and then multiplies it by the factor, up to the cap.
/// [`lived`](Self::lived) resets it when whatever was retried stayed up long
/// enough.
#[derive(Debug, Clone)]
pub struct Backoff {
    start: Duration,
    factor: f64,
    cap: Duration,
    jitter: Jitter,
    reset_after: Duration,
    current: Duration,
    rng: u64,
}

impl Backoff {
    /// A backoff starting at `start` (capped at `cap`), growing by `factor`
    /// (values below 1 are treated as 1) up to `cap`, randomised by
    /// `jitter`, reset by [`lived`](Self::lived) beyond `reset_after`.
    pub fn new(
        start: Duration,
        factor: f64,
        cap: Duration,
        jitter: Jitter,
        reset_after: Duration,
    ) -> Self {
        let start = start.min(cap);
        Self {
            start,
            factor: if factor.is_finite() && factor > 1.0 {
                factor
            } else {
                1.0
            },
            cap,
            jitter,
            reset_after,
            current: start,
            rng: seed(),
        }
    }

    /// marathon-lb's reconnect backoff: 3 s, ×1.5, capped at `max_backoff`,
    /// full jitter, reset after a stream lived more than 600 s.
    pub fn marathon_lb(max_backoff: Duration) -> Self {
        Self::new(
            Duration::from_secs(3),
            1.5,
            max_backoff,
            Jitter::Full,
            Duration::from_secs(600),
        )
    }

    /// The same backoff with a fixed random seed (reproducible jitter).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = seed | 1;
        self
    }

    /// The wait before jitter that the next [`next_delay`](Self::next_delay)
    /// is based on.
    pub fn current(&self) -> Duration {
        self.current
    }

    /// The delay to wait now; grows the backoff for next time.
    pub fn next_delay(&mut self) -> Duration {
        let wait = self.current;
        self.current = wait.mul_f64(self.factor).min(self.cap);
        match self.jitter {
            Jitter::None => wait,
            Jitter::Half => wait.mul_f64(0.5 + 0.5 * self.random()),
            Jitter::Full => wait.mul_f64(self.random()),
        }
    }

    /// Sleeps for [`next_delay`](Self::next_delay) (tokio time).
    pub async fn wait(&mut self) {
        let delay = self.next_delay();
        tokio::time::sleep(delay).await;
    }

    /// Back to the start value.
    pub fn reset(&mut self) {
        self.current = self.start;
    }

    /// Reports how long the last attempt stayed up; resets the backoff and
    /// returns `true` when that was longer than `reset_after`.
    pub fn lived(&mut self, lifetime: Duration) -> bool {
        let long = lifetime > self.reset_after;
        if long {
            self.reset();
        }
        long
    }

    /// Uniform in `[0, 1)` (xorshift64*; jitter needs no better).
    fn random(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (r >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A per-instance seed from the standard library's randomly keyed hasher.
fn seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish() | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn grows_by_the_factor_up_to_the_cap() {
        let mut b = Backoff::new(secs(3.0), 1.5, secs(10.0), Jitter::None, secs(600.0));
        let got: Vec<f64> = (0..6).map(|_| b.next_delay().as_secs_f64()).collect();
        let want = [3.0, 4.5, 6.75, 10.0, 10.0, 10.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{got:?}");
        }
    }

    #[test]
    fn start_above_the_cap_is_capped() {
        let mut b = Backoff::new(secs(3.0), 1.5, secs(1.0), Jitter::None, secs(600.0));
        assert_eq!(b.next_delay(), secs(1.0));
        assert_eq!(b.next_delay(), secs(1.0));
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_wait() {
        let mut b = Backoff::marathon_lb(secs(300.0)).with_seed(42);
        let mut below_half = false;
        for _ in 0..200 {
            let wait = b.current();
            let d = b.next_delay();
            assert!(d <= wait, "{d:?} > {wait:?}");
            below_half |= d < wait / 2;
            b.reset();
        }
        assert!(below_half, "full jitter should sometimes go below half");
    }

    #[test]
    fn half_jitter_stays_within_half_and_the_wait() {
        let mut b = Backoff::new(secs(3.0), 1.5, secs(300.0), Jitter::Half, secs(600.0));
        for _ in 0..30 {
            let wait = b.current();
            let d = b.next_delay();
            assert!(d >= wait / 2 && d <= wait, "{d:?} vs {wait:?}");
        }
        assert_eq!(b.current(), secs(300.0));
    }

    #[test]
    fn seeded_jitter_is_reproducible_and_varies() {
        let run = |seed| {
            let mut b = Backoff::marathon_lb(secs(300.0)).with_seed(seed);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn a_long_lived_attempt_resets_the_wait() {
        let mut b = Backoff::marathon_lb(secs(300.0));
        for _ in 0..5 {
            b.next_delay();
        }
        assert!(b.current() > secs(3.0));
        assert!(!b.lived(secs(600.0)), "exactly 600 s is not longer");
        assert!(b.current() > secs(3.0));
        assert!(b.lived(secs(601.0)));
        assert_eq!(b.current(), secs(3.0));
    }

    #[test]
    fn a_factor_below_one_never_shrinks() {
        let mut b = Backoff::new(secs(2.0), 0.5, secs(10.0), Jitter::None, secs(1.0));
        assert_eq!(b.next_delay(), secs(2.0));
        assert_eq!(b.next_delay(), secs(2.0));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_sleeps_the_delay() {
        // Paused time: the clock moves only when every task waits, by
        // exactly the sleeps, so the schedule is checked to the nanosecond
        // without waiting for it.
        let mut b = Backoff::new(
            Duration::from_millis(40),
            2.0,
            Duration::from_secs(1),
            Jitter::None,
            Duration::from_secs(1),
        );
        let t = tokio::time::Instant::now();
        b.wait().await;
        assert_eq!(t.elapsed(), Duration::from_millis(40));
        b.wait().await;
        assert_eq!(t.elapsed(), Duration::from_millis(120));
        for _ in 0..6 {
            b.wait().await;
        }
        // 40, 80, 160, 320, 640, then the 1 s cap three times.
        assert_eq!(t.elapsed(), Duration::from_millis(4240));
    }
}
