//! OpenNebula's number ranges, expanded wherever a command takes a list of
//! ids (spec/CLI.md, "Number ranges"): `[9-11]` is 9 10 11, `[8+3]` is 8 9
//! 10, and a leading 0 on the start (`[09-11]`, `[08+3]`) pads every number
//! with zeros. Anything else (an id, a name) passes through unchanged.
//!
//! May use: nothing from the crate; pure text in, text out.

/// How many ids one range may produce: a typo such as `[1-1000000]` should
/// be refused rather than send a million requests.
pub const MAX_IDS: u64 = 10_000;

/// A bracketed argument that is not a valid range.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad range {range}: {reason} (expected [START-END] or [START+COUNT])")]
pub struct Error {
    /// The argument as given.
    pub range: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Expands every argument in order: ranges into their ids, other
/// arguments as they are.
pub fn expand_all<S: AsRef<str>>(args: &[S]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for arg in args {
        out.extend(expand(arg.as_ref())?);
    }
    Ok(out)
}

/// Expands one argument. An argument in brackets must be a valid range;
/// any other argument is returned as it is.
pub fn expand(arg: &str) -> Result<Vec<String>, Error> {
    let Some(inner) = arg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return Ok(vec![arg.to_string()]);
    };
    let bad = |reason| Error {
        range: arg.to_string(),
        reason,
    };
    let (start, first, last, end_width) = if let Some((start, end)) = inner.split_once('-') {
        let first = number(start).ok_or(bad("START is not a number"))?;
        let last = number(end).ok_or(bad("END is not a number"))?;
        if last < first {
            return Err(bad("END is before START"));
        }
        (start, first, last, end.len())
    } else if let Some((start, count)) = inner.split_once('+') {
        let first = number(start).ok_or(bad("START is not a number"))?;
        let count = number(count).ok_or(bad("COUNT is not a number"))?;
        if count == 0 {
            return Err(bad("COUNT must be at least 1"));
        }
        let last = first
            .checked_add(count - 1)
            .ok_or(bad("the range is too large"))?;
        (start, first, last, 0)
    } else {
        return Err(bad("no '-' or '+'"));
    };
    if last - first >= MAX_IDS {
        return Err(bad("the range is too large"));
    }
    // `[09-11]`: the leading 0 asks for padding to the width of the last
    // number; a wider start or end as written (`[008-10]`) keeps its width.
    let width = if start.len() > 1 && start.starts_with('0') {
        start.len().max(end_width).max(last.to_string().len())
    } else {
        0
    };
    Ok((first..=last).map(|n| format!("{n:0width$}")).collect())
}

/// Digits only (no sign, no blanks), as a number.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(arg: &str) -> Vec<String> {
        expand(arg).unwrap_or_else(|e| panic!("{arg}: {e}"))
    }

    #[test]
    fn dash_range_is_inclusive() {
        assert_eq!(ids("[9-11]"), ["9", "10", "11"]);
    }

    #[test]
    fn dash_range_with_leading_zero_pads_to_the_last() {
        assert_eq!(ids("[09-11]"), ["09", "10", "11"]);
    }

    #[test]
    fn plus_range_counts_from_the_start() {
        assert_eq!(ids("[8+3]"), ["8", "9", "10"]);
    }

    #[test]
    fn plus_range_with_leading_zero_pads() {
        assert_eq!(ids("[08+3]"), ["08", "09", "10"]);
    }

    #[test]
    fn padding_keeps_a_wider_start_or_end() {
        assert_eq!(ids("[008-010]"), ["008", "009", "010"]);
        assert_eq!(ids("[008-10]"), ["008", "009", "010"]);
    }

    #[test]
    fn single_number_ranges() {
        assert_eq!(ids("[5-5]"), ["5"]);
        assert_eq!(ids("[5+1]"), ["5"]);
        assert_eq!(ids("[0-2]"), ["0", "1", "2"]);
    }

    #[test]
    fn plain_ids_and_names_pass_through() {
        assert_eq!(ids("42"), ["42"]);
        assert_eq!(ids("alice"), ["alice"]);
        assert_eq!(ids("a[1-2]"), ["a[1-2]"]);
        assert_eq!(ids("[1-2"), ["[1-2"]);
    }

    #[test]
    fn expand_all_keeps_the_order() {
        let args = ["alice", "[3-4]", "1"];
        assert_eq!(
            expand_all(&args),
            Ok(vec!["alice".into(), "3".into(), "4".into(), "1".into()])
        );
    }

    #[test]
    fn bad_ranges_are_refused_with_their_reason() {
        for (arg, reason) in [
            ("[]", "no '-' or '+'"),
            ("[abc]", "no '-' or '+'"),
            ("[a-3]", "START is not a number"),
            ("[1-b]", "END is not a number"),
            ("[-3]", "START is not a number"),
            ("[1--3]", "END is not a number"),
            ("[1- 3]", "END is not a number"),
            ("[11-9]", "END is before START"),
            ("[8+0]", "COUNT must be at least 1"),
            ("[8+x]", "COUNT is not a number"),
            ("[1-100000]", "the range is too large"),
            ("[18446744073709551615+2]", "the range is too large"),
            ("[99999999999999999999-1]", "START is not a number"),
        ] {
            assert_eq!(
                expand(arg),
                Err(Error {
                    range: arg.to_string(),
                    reason
                }),
                "{arg}"
            );
        }
    }

    #[test]
    fn the_message_names_the_range_and_the_forms() {
        let e = expand("[3-1]").expect_err("refused");
        assert_eq!(
            e.to_string(),
            "bad range [3-1]: END is before START (expected [START-END] or [START+COUNT])"
        );
    }
}
