//! Finding the apps that make a plugin fail, by re-running on halves.
//!
//! A batch that fails is split in two and each half is run again, down to
//! single apps, within a budget of calls: k bad apps out of n cost about
//! 2·k·log2(n) calls. Apps still unresolved when the budget runs out are
//! reported as such (the caller treats them like failed ones).

/// How much isolation may cost: calls, and a time after which no new call
/// starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Most calls.
    pub calls: usize,
    /// No call starts after this.
    pub until: std::time::Instant,
}

impl Budget {
    /// `calls` calls within `time` from now.
    pub(crate) fn new(calls: usize, time: std::time::Duration) -> Self {
        Self {
            calls,
            until: std::time::Instant::now() + time,
        }
    }
}

/// The outcome of running a batch with isolation.
#[derive(Debug)]
pub(crate) struct Isolation<T, E> {
    /// Batches (item indices) that succeeded, with their results.
    pub ok: Vec<(Vec<usize>, T)>,
    /// Single items that failed on their own, with the error.
    pub failed: Vec<(usize, E)>,
    /// Items left when the call budget ran out, with the last error seen.
    pub unresolved: Vec<(usize, E)>,
    /// Calls made.
    pub calls: usize,
    /// Calls that failed.
    pub failed_calls: usize,
}

/// Run `run` on `items`; on failure, on halves of it, down to single items,
/// making at most `budget.calls` calls (at least one) and none after
/// `budget.until`.
#[cfg(test)]
pub(crate) fn isolate<T, E: Clone>(
    items: Vec<usize>,
    budget: Budget,
    run: impl FnMut(&[usize]) -> Result<T, E>,
) -> Isolation<T, E> {
    isolate_batches(vec![(items, None)], budget, run)
}

/// Split `items`, whose batch already failed with `error`, in halves and
/// isolate within them.
pub(crate) fn isolate_after<T, E: Clone>(
    mut items: Vec<usize>,
    error: E,
    budget: Budget,
    run: impl FnMut(&[usize]) -> Result<T, E>,
) -> Isolation<T, E> {
    if items.len() <= 1 {
        return Isolation {
            ok: Vec::new(),
            failed: items.into_iter().map(|i| (i, error.clone())).collect(),
            unresolved: Vec::new(),
            calls: 0,
            failed_calls: 0,
        };
    }
    let second = items.split_off(items.len() / 2);
    isolate_batches(
        vec![(second, Some(error.clone())), (items, Some(error))],
        budget,
        run,
    )
}

fn isolate_batches<T, E: Clone>(
    mut stack: Vec<(Vec<usize>, Option<E>)>,
    budget: Budget,
    mut run: impl FnMut(&[usize]) -> Result<T, E>,
) -> Isolation<T, E> {
    let mut out = Isolation {
        ok: Vec::new(),
        failed: Vec::new(),
        unresolved: Vec::new(),
        calls: 0,
        failed_calls: 0,
    };
    // (batch, error of the batch it was split from)
    while let Some((batch, parent_error)) = stack.pop() {
        let spent = out.calls >= budget.calls.max(1)
            || (out.calls > 0 && std::time::Instant::now() >= budget.until);
        if spent {
            if let Some(e) = parent_error {
                out.unresolved
                    .extend(batch.into_iter().map(|i| (i, e.clone())));
            }
            continue;
        }
        out.calls += 1;
        let result = run(&batch);
        if result.is_err() {
            out.failed_calls += 1;
        }
        match result {
            Ok(t) => out.ok.push((batch, t)),
            Err(e) if batch.len() <= 1 => {
                out.failed.extend(batch.into_iter().map(|i| (i, e.clone())))
            }
            Err(e) => {
                let mut first = batch;
                let second = first.split_off(first.len() / 2);
                stack.push((second, Some(e.clone())));
                stack.push((first, Some(e)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn finds_the_bad_items_in_few_calls() {
        let bad = [7usize, 40];
        let iso = isolate(
            (0..64).collect(),
            Budget::new(64, Duration::from_secs(60)),
            |batch| match batch.iter().find(|i| bad.contains(i)) {
                Some(i) => Err(format!("bad {i}")),
                None => Ok(batch.len()),
            },
        );
        let mut failed: Vec<usize> = iso.failed.iter().map(|(i, _)| *i).collect();
        failed.sort();
        assert_eq!(failed, bad);
        assert_eq!(iso.ok.iter().map(|(_, n)| n).sum::<usize>(), 62);
        assert!(iso.unresolved.is_empty());
        assert!(iso.calls <= 2 * 2 * 6 + 1, "{} calls", iso.calls);
    }

    #[test]
    fn a_budget_leaves_the_rest_unresolved() {
        let iso = isolate::<(), String>(
            (0..16).collect(),
            Budget::new(3, Duration::from_secs(60)),
            |_| Err("always".into()),
        );
        assert_eq!(iso.calls, 3);
        assert_eq!(iso.failed_calls, 3);
        assert_eq!(iso.failed.len() + iso.unresolved.len(), 16);
        assert!(iso.ok.is_empty());
    }

    #[test]
    fn a_time_budget_stops_new_calls() {
        let iso = isolate::<(), String>((0..16).collect(), Budget::new(64, Duration::ZERO), |_| {
            Err("slow".into())
        });
        assert_eq!(iso.calls, 1);
        assert_eq!(iso.unresolved.len(), 16);
    }

    #[test]
    fn a_good_batch_costs_one_call() {
        let iso = isolate::<usize, String>(
            (0..1000).collect(),
            Budget::new(64, Duration::from_secs(60)),
            |b| Ok(b.len()),
        );
        assert_eq!(iso.calls, 1);
        assert_eq!(iso.ok[0].1, 1000);
    }
}
