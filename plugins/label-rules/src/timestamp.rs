//! Just enough ISO-8601 to order `HAPROXY_DEPLOYMENT_STARTED_AT` and
//! `versionInfo.lastScalingAt` values (`2021-03-01T08:00:00.000000`,
//! `2021-03-01T08:00:05.000Z`, `2021-03-01 08:00:00+02:00`).

/// Seconds since 0000-03-01 (proleptic Gregorian, UTC) and nanoseconds.
pub(crate) type Instant = (i64, u32);

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

/// Parse a date or date-time; a value without offset is taken as UTC.
pub(crate) fn parse(value: &str) -> Option<Instant> {
    let v = value.trim();
    let (date, rest) = match v.find(['T', ' ']) {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, ""),
    };
    let mut dp = date.split('-');
    let (y, m, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (time, offset) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (clock, frac) = match time.split_once('.') {
        Some((c, f)) => (c, f),
        None => (time, ""),
    };
    let mut secs = 0;
    if !clock.is_empty() {
        let mut tp = clock.split(':');
        let h = num(tp.next()?)?;
        let mi = tp.next().map(num).unwrap_or(Some(0))?;
        let s = tp.next().map(num).unwrap_or(Some(0))?;
        secs = h * 3600 + mi * 60 + s;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        let n = num(&digits)?;
        (n * 10_i64.pow(9 - digits.len() as u32)) as u32
    };
    let offset_secs = match offset {
        "" | "Z" | "z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let body = o[1..].replace(':', "");
            if body.len() < 2 {
                return None;
            }
            let h = num(&body[..2])?;
            let mi = if body.len() >= 4 {
                num(&body[2..4])?
            } else {
                0
            };
            sign * (h * 3600 + mi * 60)
        }
    };
    Some((
        days_from_civil(y, m, d) * 86_400 + secs - offset_secs,
        nanos,
    ))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn orders_common_shapes() {
        let a = parse("2021-03-01T08:00:00.000000").unwrap();
        let b = parse("2021-03-02T08:00:00").unwrap();
        assert!(a < b);
        assert_eq!(
            parse("2021-03-01T10:00:00+02:00"),
            parse("2021-03-01T08:00:00Z")
        );
        assert_eq!(
            parse("2021-03-01T08:00:05.000Z"),
            parse("2021-03-01T08:00:05Z")
        );
        assert!(parse("2021-03-01T08:00:05.5Z") > parse("2021-03-01T08:00:05Z"));
        assert_eq!(parse("yesterday"), None);
    }
}
