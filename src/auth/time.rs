//! The time window of signed requests (spec/EC2.md §3.4, §9.2 step 2): the
//! timestamp formats clients send, and the check against the server's clock
//! with the configured skew. The clock is a parameter ([`Window::new`]), so
//! tests pick "now" instead of sleeping (STYLE.md §1.10).
//!
//! May use: nothing of the crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Error, Result};

/// Seconds since the Unix epoch (negative before it).
pub type UnixTime = i64;

/// "Now" and how far a request's time may be from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    now: UnixTime,
    /// Zero turns the checks off (old clients with bad clocks).
    skew: u64,
}

impl Window {
    /// A window around `now` of `skew` either side; a zero skew accepts
    /// any time.
    pub fn new(now: SystemTime, skew: Duration) -> Self {
        let now = match now.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
        };
        Window {
            now,
            skew: skew.as_secs(),
        }
    }

    /// Whether the checks are on.
    pub fn enforced(&self) -> bool {
        self.skew > 0
    }

    /// A signing time (`Timestamp`, `X-Amz-Date`) must be within the skew
    /// of now, before or after.
    pub fn check_signed_at(&self, at: UnixTime) -> Result<()> {
        let skew = i64::try_from(self.skew).unwrap_or(i64::MAX);
        if self.enforced() && (at.saturating_sub(self.now).abs() > skew) {
            return Err(Error::Expired);
        }
        Ok(())
    }

    /// An expiry (`Expires`, `X-Amz-Date + X-Amz-Expires`) must not have
    /// passed. It is checked even with a zero skew: the client itself set
    /// the limit.
    pub fn check_expires(&self, expires: UnixTime) -> Result<()> {
        if expires < self.now {
            return Err(Error::Expired);
        }
        Ok(())
    }

    /// A presigned request's signing time may be long past (its own expiry
    /// says how long it lives) but not in the future beyond the skew.
    pub fn check_not_future(&self, at: UnixTime) -> Result<()> {
        let skew = i64::try_from(self.skew).unwrap_or(i64::MAX);
        if self.enforced() && at.saturating_sub(self.now) > skew {
            return Err(Error::Expired);
        }
        Ok(())
    }
}

/// ISO 8601 as EC2 clients send `Timestamp` and `Expires`:
/// `2010-01-15T10:20:30Z`, with optional fractional seconds and an offset
/// (`Z`, `+00:00`, `+0100`, `-05:00`) or none (taken as UTC).
pub fn parse_iso8601(text: &str) -> Result<UnixTime> {
    const BAD: Error =
        Error::Malformed("Timestamp/Expires must be ISO 8601 (2010-01-15T10:20:30Z)");
    let text = text.trim();
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(BAD);
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(BAD);
    }
    let year = digits(&b[0..4]).ok_or(BAD)?;
    let month = digits(&b[5..7]).ok_or(BAD)?;
    let day = digits(&b[8..10]).ok_or(BAD)?;
    let hour = digits(&b[11..13]).ok_or(BAD)?;
    let minute = digits(&b[14..16]).ok_or(BAD)?;
    let second = digits(&b[17..19]).ok_or(BAD)?;
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(BAD);
        }
        rest = &fraction[n..];
    }
    let offset = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let h = digits(&[*h1, *h2]).ok_or(BAD)?;
            let m = digits(&[*m1, *m2]).ok_or(BAD)?;
            if h > 23 || m > 59 {
                return Err(BAD);
            }
            let seconds = i64::from(h * 3600 + m * 60);
            if *sign == b'+' {
                seconds
            } else {
                -seconds
            }
        }
        _ => return Err(BAD),
    };
    let local = civil(year, month, day, hour, minute, second).ok_or(BAD)?;
    Ok(local - offset)
}

/// SigV4's basic format, `20240115T102030Z` (`X-Amz-Date`).
pub fn parse_amz_date(text: &str) -> Result<UnixTime> {
    const BAD: Error = Error::Malformed("X-Amz-Date must look like 20240115T102030Z");
    let b = text.trim().as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return Err(BAD);
    }
    let n = |r: std::ops::Range<usize>| digits(&b[r]).ok_or(BAD);
    civil(
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(9..11)?,
        n(11..13)?,
        n(13..15)?,
    )
    .ok_or(BAD)
}

/// RFC 1123 as in an HTTP `Date` header: `Mon, 15 Jan 2024 10:20:30 GMT`
/// (the weekday is not checked).
pub fn parse_http_date(text: &str) -> Result<UnixTime> {
    const BAD: Error = Error::Malformed("Date must be an RFC 1123 date");
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rest = text.trim().split_once(", ").map_or(text.trim(), |(_, r)| r);
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, clock, zone] = parts.as_slice() else {
        return Err(BAD);
    };
    if *zone != "GMT" && *zone != "UTC" {
        return Err(BAD);
    }
    let month = MONTHS.iter().position(|m| m == month).ok_or(BAD)? as u32 + 1;
    let clock: Vec<&str> = clock.split(':').collect();
    let [h, m, s] = clock.as_slice() else {
        return Err(BAD);
    };
    let num = |t: &str| {
        if t.is_empty() || t.len() > 4 {
            None
        } else {
            digits(t.as_bytes())
        }
    };
    civil(
        num(year).ok_or(BAD)?,
        month,
        num(day).ok_or(BAD)?,
        num(h).ok_or(BAD)?,
        num(m).ok_or(BAD)?,
        num(s).ok_or(BAD)?,
    )
    .ok_or(BAD)
}

/// SigV4's basic format of a time, `20240115T102030Z`.
pub fn format_amz_date(at: UnixTime) -> String {
    let days = at.div_euclid(86_400);
    let secs = at.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// ISO 8601 in UTC with milliseconds, `2010-01-15T10:20:30.000Z`: how
/// EC2 responses write times (`launchTime`, `creationDate`).
pub fn format_iso8601(at: UnixTime) -> String {
    let days = at.div_euclid(86_400);
    let secs = at.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// (year, month, day) of a day count since the epoch (H. Hinnant's
/// algorithm, the inverse of the one in [`civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The value of ASCII decimal digits, or `None` if any byte is not one.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// Seconds since the epoch of a UTC civil time, checking the ranges
/// (a leap second `:60` is taken as the next second).
fn civil(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<UnixTime> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day == 0
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from civil (H. Hinnant's algorithm), March-based years.
    let (y, m, d) = (i64::from(year), i64::from(month), i64::from(day));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2010-01-15T10:20:30Z.
    const T: UnixTime = 1_263_550_830;

    fn at(secs: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after the epoch"))
    }

    #[test]
    fn iso8601_forms_clients_send() {
        for text in [
            "2010-01-15T10:20:30Z",
            "2010-01-15T10:20:30.000Z",
            "2010-01-15T10:20:30.123456z",
            "2010-01-15T10:20:30+00:00",
            "2010-01-15T11:20:30+01:00",
            "2010-01-15T05:20:30-0500",
            "2010-01-15T10:20:30",
        ] {
            assert_eq!(parse_iso8601(text), Ok(T), "{text}");
        }
        for bad in [
            "",
            "2010-01-15",
            "2010-13-15T10:20:30Z",
            "2010-02-30T10:20:30Z",
            "2010-01-15T24:20:30Z",
            "2010-01-15T10:20:30.Z",
            "2010-01-15T10:20:30+1",
            "2010-01-15T10:20:30 GMT",
            "abcd-01-15T10:20:30Z",
        ] {
            assert!(parse_iso8601(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_iso8601("2000-02-29T00:00:00Z"), Ok(951_782_400));
    }

    #[test]
    fn amz_and_http_dates() {
        assert_eq!(parse_amz_date("20100115T102030Z"), Ok(T));
        assert_eq!(format_amz_date(T), "20100115T102030Z");
        assert_eq!(format_amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(format_amz_date(0), "19700101T000000Z");
        assert_eq!(format_iso8601(T), "2010-01-15T10:20:30.000Z");
        assert_eq!(parse_iso8601(&format_iso8601(T)), Ok(T));
        assert!(parse_amz_date("2010-01-15T10:20:30Z").is_err());
        assert!(parse_amz_date("20100115T102030").is_err());
        assert_eq!(parse_http_date("Fri, 15 Jan 2010 10:20:30 GMT"), Ok(T));
        assert!(parse_http_date("Fri, 15 Foo 2010 10:20:30 GMT").is_err());
        assert!(parse_http_date("yesterday").is_err());
    }

    #[test]
    fn window_accepts_within_the_skew_either_side() {
        let w = Window::new(at(T), Duration::from_secs(900));
        assert_eq!(w.check_signed_at(T), Ok(()));
        assert_eq!(w.check_signed_at(T - 900), Ok(()));
        assert_eq!(w.check_signed_at(T + 900), Ok(()));
        assert_eq!(w.check_signed_at(T - 901), Err(Error::Expired));
        assert_eq!(w.check_signed_at(T + 901), Err(Error::Expired));
        assert_eq!(w.check_expires(T), Ok(()));
        assert_eq!(w.check_expires(T - 1), Err(Error::Expired));
        assert_eq!(w.check_not_future(T - 100_000), Ok(()));
        assert_eq!(w.check_not_future(T + 901), Err(Error::Expired));
    }

    #[test]
    fn zero_skew_turns_the_time_check_off_but_not_expiry() {
        let w = Window::new(at(T), Duration::ZERO);
        assert!(!w.enforced());
        assert_eq!(w.check_signed_at(0), Ok(()));
        assert_eq!(w.check_not_future(T + 1_000_000), Ok(()));
        assert_eq!(w.check_expires(T - 1), Err(Error::Expired));
    }
}
