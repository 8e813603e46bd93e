//! Marathon-style timestamps and opaque IDs, without a date or UUID crate.
//!
//! Marathon writes UTC timestamps with exactly three fractional digits (`2020-05-04T10:00:00.000Z`), and
//! task/instance IDs that embed a UUID. Clients must treat IDs as opaque, so a random v4-shaped UUID is enough.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as a Marathon timestamp.
pub fn now() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    format_millis(ms)
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Generates random, v4-shaped UUID strings.
#[derive(Debug)]
pub struct UuidGen {
    seed: RandomState,
    counter: AtomicU64,
}

impl Default for UuidGen {
    fn default() -> Self {
        Self {
            seed: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }
}

impl UuidGen {
    /// A fresh UUID such as `9f0c4d2e-8e1a-41ea-9c4b-0242ac110002`.
    pub fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let word = |salt: u64| {
            let mut h = self.seed.build_hasher();
            h.write_u64(n);
            h.write_u64(salt);
            h.finish()
        };
        let hi = word(1);
        let lo = word(2);
        let hi = (hi & !0xF000) | 0x4000; // version 4
        let lo = (lo & !(0xC << 60)) | (0x8 << 60); // RFC 4122 variant
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_known_dates() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(1_588_586_400_007), "2020-05-04T10:00:00.007Z");
        assert_eq!(format_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn uuids_are_distinct_and_well_formed() {
        let g = UuidGen::default();
        let a = g.next();
        let b = g.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
}
