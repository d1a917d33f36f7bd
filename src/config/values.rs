//! Parsers for single configuration values (numbers, durations, sizes, MAC
//! prefixes, addresses, URLs, paths) and the small enums they produce.
//!
//! Each parser takes the text as written in the file and returns either the
//! typed value or what was *expected*, as a phrase; the caller adds the
//! attribute name, the position and the value found, so every message reads
//! `NAME must be <expected>, found "<value>"`. Pure functions, no I/O.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What a value should have looked like (the `<expected>` of a message).
pub(crate) type Expected = String;

/// What [`whole`] expects, for messages.
fn whole_expected(min: u64, max: u64) -> Expected {
    match (min, max) {
        (0, u64::MAX) => "a whole number".to_owned(),
        (min, u64::MAX) => format!("a whole number, at least {min}"),
        (min, max) => format!("a whole number from {min} to {max}"),
    }
}

/// A whole number in `min..=max`.
pub(crate) fn whole(text: &str, min: u64, max: u64) -> Result<u64, Expected> {
    let t = text.trim();
    // `u64::from_str` accepts a leading `+`; OpenNebula's strtol would too,
    // but a digits-only rule gives clearer errors for "-5" and "1e3".
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(whole_expected(min, max));
    }
    match t.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(whole_expected(min, max)),
    }
}

/// A whole number in `min..=max` that fits a `u32`; `max == u32::MAX`
/// leaves the bound out of the message (nobody means 4294967295).
pub(crate) fn whole_u32(text: &str, min: u32, max: u32) -> Result<u32, Expected> {
    let upper = if max == u32::MAX {
        u64::MAX
    } else {
        u64::from(max)
    };
    let n = whole(text, u64::from(min), upper)?;
    u32::try_from(n).map_err(|_| whole_expected(u64::from(min), upper))
}

/// A count of things per tick or cycle: a whole number, at least 1.
pub(crate) fn count(text: &str) -> Result<u32, Expected> {
    whole_u32(text, 1, u32::MAX)
}

/// A period or timeout of whole seconds that must not be zero.
pub(crate) fn interval(text: &str) -> Result<Duration, Expected> {
    seconds(text, 1)
}

/// A duration written as a whole number of seconds, at least `min`.
pub(crate) fn seconds(text: &str, min: u64) -> Result<Duration, Expected> {
    whole(text, min, u64::MAX)
        .map(Duration::from_secs)
        .map_err(|_| {
            if min == 0 {
                "a whole number of seconds".to_owned()
            } else {
                format!("a whole number of seconds, at least {min}")
            }
        })
}

/// A size in bytes: digits with an optional binary suffix `K`, `M`, `G` or
/// `T` (any case, optionally followed by `B`, e.g. `512K`, `1M`, `10GB`),
/// at least one byte.
pub(crate) fn size(text: &str) -> Result<u64, Expected> {
    const EXPECTED: &str = "a size in bytes with an optional K, M or G suffix like \"1M\"";
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(digits_end);
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(EXPECTED.to_owned()),
    };
    let n: u64 = digits.parse().map_err(|_| EXPECTED.to_owned())?;
    match n.checked_mul(1u64 << shift) {
        Some(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(EXPECTED.to_owned()),
    }
}

/// A decimal number strictly greater than 0 (CPU shares: `0.2`, `1`, `4`).
pub(crate) fn positive_number(text: &str) -> Result<f64, Expected> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err("a number greater than 0 like \"0.5\"".to_owned()),
    }
}

/// A fraction in `[0, 1)`, e.g. `HYPERVISOR_MEM = 0.1`.
pub(crate) fn fraction(text: &str) -> Result<f64, Expected> {
    match text.trim().parse::<f64>() {
        Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
        _ => Err("a fraction from 0 up to (not including) 1 like \"0.1\"".to_owned()),
    }
}

/// Two hex bytes separated by `:`, e.g. `02:00`.
pub(crate) fn mac_prefix(text: &str) -> Result<[u8; 2], Expected> {
    let expected = || "two hex bytes like \"02:00\"".to_owned();
    let (a, b) = text.trim().split_once(':').ok_or_else(expected)?;
    let byte = |s: &str| {
        if s.len() == 2 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
            u8::from_str_radix(s, 16).ok()
        } else {
            None
        }
    };
    match (byte(a), byte(b)) {
        (Some(a), Some(b)) => Ok([a, b]),
        _ => Err(expected()),
    }
}

/// `yes` or `no`, any case.
pub(crate) fn yes_no(text: &str) -> Result<bool, Expected> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("yes or no".to_owned()),
    }
}

/// An IP address and a port, e.g. `127.0.0.1:4567` or `[::1]:4567`.
pub(crate) fn socket_addr(text: &str) -> Result<SocketAddr, Expected> {
    text.trim()
        .parse()
        .map_err(|_| "an IP address and port like \"127.0.0.1:4567\"".to_owned())
}

/// The public base URL used in hrefs: `http://` or `https://`, a host, an
/// optional path; the trailing `/` is removed. OCCI clients (libcloud) take
/// the id after the first `/compute/`, `/network/` or `/storage/` of an
/// href, so the base must not contain those (OCCI.md 1.1).
pub(crate) fn public_url(text: &str) -> Result<String, Expected> {
    let t = text.trim().trim_end_matches('/');
    let rest = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"));
    let host_ok = rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or("");
        !host.is_empty() && !host.contains(char::is_whitespace)
    });
    if !host_ok {
        return Err(
            "an http:// or https:// URL like \"https://cloud.example.org:4567\"".to_owned(),
        );
    }
    let path = rest
        .and_then(|r| r.find('/').map(|i| &r[i..]))
        .unwrap_or("");
    let lower = format!("{}/", path.to_ascii_lowercase());
    if ["/compute/", "/network/", "/storage/"]
        .iter()
        .any(|p| lower.contains(p))
    {
        return Err(
            "a base URL whose path has no /compute, /network or /storage segment".to_owned(),
        );
    }
    Ok(t.to_owned())
}

/// A non-empty path.
pub(crate) fn path(text: &str) -> Result<PathBuf, Expected> {
    let t = text.trim();
    if t.is_empty() {
        Err("a path".to_owned())
    } else {
        Ok(PathBuf::from(t))
    }
}

/// An absolute path (for directories on the hosts, where there is no
/// meaningful working directory to resolve a relative one against).
pub(crate) fn absolute_path(text: &str) -> Result<PathBuf, Expected> {
    let t = text.trim();
    if t.starts_with('/') {
        Ok(PathBuf::from(t))
    } else {
        Err("an absolute path like \"/var/tmp/one\"".to_owned())
    }
}

/// A URL path prefix: starts with `/`; trailing `/` removed except for `/`
/// itself, so `"/ec2/"` and `"/ec2"` mean the same.
pub(crate) fn path_prefix(text: &str) -> Result<String, Expected> {
    let t = text.trim();
    if !t.starts_with('/') || t.contains(char::is_whitespace) || t.contains(['?', '#']) {
        return Err("a URL path starting with \"/\" like \"/\" or \"/ec2\"".to_owned());
    }
    let trimmed = t.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
}

/// A non-empty word or string.
pub(crate) fn non_empty(text: &str) -> Result<String, Expected> {
    let t = text.trim();
    if t.is_empty() {
        Err("a non-empty value".to_owned())
    } else {
        Ok(t.to_owned())
    }
}

/// Log verbosity, OpenNebula's `DEBUG_LEVEL` 0..=3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DebugLevel {
    /// 0: errors only.
    Error,
    /// 1: errors and warnings.
    Warning,
    /// 2: informational messages too (cloudgate's default).
    Info,
    /// 3: everything, including each driver action.
    Debug,
}

impl DebugLevel {
    /// Parse OpenNebula's numeric level.
    pub(crate) fn parse(text: &str) -> Result<Self, Expected> {
        Ok(
            match whole(text, 0, 3)
                .map_err(|_| "0 (ERROR), 1 (WARNING), 2 (INFO) or 3 (DEBUG)".to_owned())?
            {
                0 => DebugLevel::Error,
                1 => DebugLevel::Warning,
                2 => DebugLevel::Info,
                _ => DebugLevel::Debug,
            },
        )
    }

    /// The `tracing` level that shows the same messages.
    pub fn tracing_level(self) -> tracing::Level {
        match self {
            DebugLevel::Error => tracing::Level::ERROR,
            DebugLevel::Warning => tracing::Level::WARN,
            DebugLevel::Info => tracing::Level::INFO,
            DebugLevel::Debug => tracing::Level::DEBUG,
        }
    }
}

/// Which OCCI response dialect to render (OCCI.md 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcciDialect {
    /// Choose per request from the User-Agent and the body shape, else 1.4.
    Auto,
    /// Always the OpenNebula 1.4 documents (DELETE answers 200).
    V1_4,
    /// Always the 2.x documents (DELETE answers 204).
    V2,
}

impl OcciDialect {
    /// Parse `auto`, `1.4` or `2.x` (any case).
    pub(crate) fn parse(text: &str) -> Result<Self, Expected> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(OcciDialect::Auto),
            "1.4" => Ok(OcciDialect::V1_4),
            "2.x" => Ok(OcciDialect::V2),
            _ => Err("auto, 1.4 or 2.x".to_owned()),
        }
    }

    /// The word used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            OcciDialect::Auto => "auto",
            OcciDialect::V1_4 => "1.4",
            OcciDialect::V2 => "2.x",
        }
    }
}

impl fmt::Display for OcciDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What ssh does with an unknown or changed host key: the value passed as
/// `-o StrictHostKeyChecking=<value>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SshHostKeyPolicy {
    /// Record keys of new hosts, refuse changed keys.
    AcceptNew,
    /// Only hosts already in `known_hosts`.
    Yes,
    /// Accept any key (test rigs only).
    No,
}

impl SshHostKeyPolicy {
    /// Parse `accept-new`, `yes` or `no` (any case).
    pub(crate) fn parse(text: &str) -> Result<Self, Expected> {
        match text.trim().to_ascii_lowercase().as_str() {
            "accept-new" => Ok(SshHostKeyPolicy::AcceptNew),
            "yes" => Ok(SshHostKeyPolicy::Yes),
            "no" => Ok(SshHostKeyPolicy::No),
            _ => Err("accept-new, yes or no".to_owned()),
        }
    }

    /// The `StrictHostKeyChecking` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SshHostKeyPolicy::AcceptNew => "accept-new",
            SshHostKeyPolicy::Yes => "yes",
            SshHostKeyPolicy::No => "no",
        }
    }
}

impl fmt::Display for SshHostKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_and_ranges() {
        assert_eq!(whole("254", 1, u64::MAX), Ok(254));
        assert_eq!(whole(" 7 ", 0, u64::MAX), Ok(7));
        assert_eq!(
            whole("-5", 1, u64::MAX),
            Err("a whole number, at least 1".into())
        );
        assert_eq!(whole("ten", 0, u64::MAX), Err("a whole number".into()));
        assert_eq!(whole("+3", 0, u64::MAX), Err("a whole number".into()));
        assert_eq!(whole("7", 0, 3), Err("a whole number from 0 to 3".into()));
        assert_eq!(
            whole("99999999999999999999999", 0, u64::MAX),
            Err("a whole number".into())
        );
        assert_eq!(whole_u32("65535", 1, 65535), Ok(65535));
        assert!(whole_u32("65536", 1, 65535).is_err());
    }

    #[test]
    fn seconds_reject_negative_and_zero_when_asked() {
        assert_eq!(seconds("60", 1), Ok(Duration::from_secs(60)));
        assert_eq!(seconds("0", 0), Ok(Duration::ZERO));
        assert_eq!(
            seconds("0", 1),
            Err("a whole number of seconds, at least 1".into())
        );
        assert_eq!(seconds("-10", 0), Err("a whole number of seconds".into()));
        assert_eq!(seconds("1.5", 0), Err("a whole number of seconds".into()));
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(size("1048576"), Ok(1 << 20));
        assert_eq!(size("512K"), Ok(512 << 10));
        assert_eq!(size("512k"), Ok(512 << 10));
        assert_eq!(size("1M"), Ok(1 << 20));
        assert_eq!(size("10G"), Ok(10 << 30));
        assert_eq!(size("10GB"), Ok(10 << 30));
        assert_eq!(size("2T"), Ok(2 << 40));
        assert_eq!(size("100B"), Ok(100));
        for bad in [
            "",
            "M",
            "1.5M",
            "10X",
            "-1K",
            "0",
            "0K",
            "1 M0",
            "99999999999T",
        ] {
            assert!(size(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn mac_prefix_is_two_hex_bytes() {
        assert_eq!(mac_prefix("02:00"), Ok([0x02, 0x00]));
        assert_eq!(mac_prefix("00:50"), Ok([0x00, 0x50]));
        assert_eq!(mac_prefix("aB:fF"), Ok([0xab, 0xff]));
        for bad in ["zz", "02", "02:0", "02:00:00", "2:00", "+2:00", "g0:00", ""] {
            assert_eq!(
                mac_prefix(bad),
                Err("two hex bytes like \"02:00\"".into()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn numbers_fractions_and_words() {
        assert_eq!(positive_number("0.2"), Ok(0.2));
        assert!(positive_number("0").is_err());
        assert!(positive_number("NaN").is_err());
        assert!(positive_number("inf").is_err());
        assert_eq!(fraction("0.1"), Ok(0.1));
        assert_eq!(fraction("0"), Ok(0.0));
        assert!(fraction("1").is_err());
        assert!(fraction("-0.1").is_err());
        assert_eq!(yes_no("YES"), Ok(true));
        assert_eq!(yes_no("no"), Ok(false));
        assert!(yes_no("maybe").is_err());
        assert_eq!(non_empty(" x "), Ok("x".into()));
        assert!(non_empty("  ").is_err());
    }

    #[test]
    fn addresses_and_urls() {
        assert_eq!(socket_addr("127.0.0.1:4567").map(|a| a.port()), Ok(4567));
        assert!(socket_addr("[::1]:80").is_ok());
        assert!(socket_addr("localhost:4567").is_err());
        assert!(socket_addr("127.0.0.1").is_err());
        assert_eq!(
            public_url("https://cloud.example.org/"),
            Ok("https://cloud.example.org".into())
        );
        assert_eq!(
            public_url("http://h:4567/one"),
            Ok("http://h:4567/one".into())
        );
        assert!(public_url("ftp://h").is_err());
        assert!(public_url("http://").is_err());
        assert!(public_url("cloud.example.org").is_err());
        assert_eq!(
            public_url("http://h/api/compute"),
            Err("a base URL whose path has no /compute, /network or /storage segment".into())
        );
        // A host that merely contains the word is fine.
        assert!(public_url("http://compute.example.org").is_ok());
    }

    #[test]
    fn paths_and_prefixes() {
        assert_eq!(path("./var"), Ok(PathBuf::from("./var")));
        assert!(path("").is_err());
        assert_eq!(
            absolute_path("/var/tmp/one"),
            Ok(PathBuf::from("/var/tmp/one"))
        );
        assert!(absolute_path("var/tmp").is_err());
        assert_eq!(path_prefix("/"), Ok("/".into()));
        assert_eq!(path_prefix("//"), Ok("/".into()));
        assert_eq!(path_prefix("/ec2/"), Ok("/ec2".into()));
        assert!(path_prefix("ec2").is_err());
        assert!(path_prefix("/a b").is_err());
    }

    #[test]
    fn enums_parse_any_case() {
        assert_eq!(DebugLevel::parse("2"), Ok(DebugLevel::Info));
        assert_eq!(DebugLevel::parse("3"), Ok(DebugLevel::Debug));
        assert!(DebugLevel::parse("7").is_err());
        assert_eq!(DebugLevel::Warning.tracing_level(), tracing::Level::WARN);
        assert_eq!(OcciDialect::parse("AUTO"), Ok(OcciDialect::Auto));
        assert_eq!(OcciDialect::parse("1.4"), Ok(OcciDialect::V1_4));
        assert_eq!(OcciDialect::parse("2.X"), Ok(OcciDialect::V2));
        assert_eq!(OcciDialect::parse("3.0"), Err("auto, 1.4 or 2.x".into()));
        assert_eq!(OcciDialect::V2.to_string(), "2.x");
        assert_eq!(
            SshHostKeyPolicy::parse("Accept-New"),
            Ok(SshHostKeyPolicy::AcceptNew)
        );
        assert_eq!(SshHostKeyPolicy::No.as_str(), "no");
        assert!(SshHostKeyPolicy::parse("ask").is_err());
    }
}
