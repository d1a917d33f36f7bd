//! What successful actions print, parsed: the deploy id (spec/DRIVERS.md
//! §2.5), the poll answer (§2.4) and the IM probes' output (§4).
//!
//! Pure functions on the stripped stdout; each error is the message of the
//! action's [`Error::Driver`](crate::core::Error::Driver).
//!
//! May use: `crate::core::ports` (the reply types) and `crate::template`.

use crate::core::ports::{PollAnswer, PollState};
use crate::template::Template;

/// The deploy id: the first word of deploy's stdout.
pub fn deploy_id(stdout: &str) -> Result<String, String> {
    stdout
        .split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| "deploy printed no deploy id".to_owned())
}

/// The probes' `KEY=VALUE` items, separated by commas (1.4, dummy), blanks
/// (2.x+) or newlines, as a template. Commas outside quotes and `[...]`
/// become newlines first, as the core did (CORE.md §3.2), so a quoted value
/// keeps its commas.
pub fn monitor(stdout: &str) -> Result<Template, String> {
    let template = Template::parse(&commas_to_newlines(stdout))
        .map_err(|e| format!("Error parsing monitoring information: {e}"))?;
    if template.attributes().is_empty() {
        return Err("the probes printed no monitoring information".to_owned());
    }
    Ok(template)
}

/// The poll answer: `STATE`, `USEDCPU`, `USEDMEMORY`, `NETRX`, `NETTX` into
/// their fields (numbers truncated at the dot), everything else into
/// `extra`. Like 3.x, one malformed item discards the whole answer.
pub fn poll(stdout: &str) -> Result<PollAnswer, String> {
    let template = Template::parse(&commas_to_newlines(stdout))
        .map_err(|e| format!("Error parsing monitoring str: {e}"))?;
    let mut answer = PollAnswer::default();
    for attribute in template.attributes() {
        let name = attribute.name.as_str();
        let single = || {
            attribute
                .value
                .as_single()
                .ok_or_else(|| format!("Error parsing monitoring str: {name} is a vector"))
        };
        match name {
            "STATE" => {
                let letter = single()?;
                answer.state = Some(PollState::from_letter(letter).ok_or_else(|| {
                    format!("Error parsing monitoring str: unknown STATE {letter:?}")
                })?);
            }
            "USEDCPU" => answer.used_cpu = Some(number(name, single()?)?),
            "USEDMEMORY" => answer.used_memory = Some(number(name, single()?)?),
            "NETRX" => answer.net_rx = Some(number(name, single()?)?),
            "NETTX" => answer.net_tx = Some(number(name, single()?)?),
            _ => answer.extra.push(name, attribute.value.clone()),
        }
    }
    Ok(answer)
}

/// A non-negative figure, truncated at the dot (`12.5` → 12).
fn number(name: &str, text: &str) -> Result<u64, String> {
    let whole = text.split('.').next().unwrap_or("");
    let whole = if whole.is_empty() && text.starts_with('.') {
        "0"
    } else {
        whole
    };
    whole
        .parse()
        .map_err(|_| format!("Error parsing monitoring str: {name}={text} is not a number"))
}

/// Replaces the commas that separate items (outside `"..."` and `[...]`)
/// by newlines.
fn commas_to_newlines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    let mut depth = 0usize;
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                out.push('\n');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_id_is_the_first_word() {
        assert_eq!(deploy_id("one-7\n"), Ok("one-7".to_owned()));
        assert_eq!(deploy_id("dummy-3 extra words"), Ok("dummy-3".to_owned()));
        assert!(deploy_id("  \n").is_err());
    }

    #[test]
    fn poll_fills_the_known_keys_and_keeps_the_rest() {
        let answer =
            poll("STATE=a USEDCPU=12.5 USEDMEMORY=524288 NETRX=1180 NETTX=846 GUEST_IP=10.0.0.7")
                .expect("parses");
        assert_eq!(answer.state, Some(PollState::Active));
        assert_eq!(answer.used_cpu, Some(12));
        assert_eq!(answer.used_memory, Some(524288));
        assert_eq!(answer.net_rx, Some(1180));
        assert_eq!(answer.net_tx, Some(846));
        assert_eq!(answer.extra.get("GUEST_IP"), Some("10.0.0.7"));
        assert_eq!(answer.extra.attributes().len(), 1);
    }

    #[test]
    fn poll_accepts_partial_answers_and_vectors() {
        let answer = poll("STATE=d").expect("parses");
        assert_eq!(answer.state, Some(PollState::Disappeared));
        assert_eq!(answer.used_cpu, None);
        let answer = poll("USEDCPU=.5 DISK_SIZE=[ID=0,SIZE=10]").expect("parses");
        assert_eq!(answer.state, None);
        assert_eq!(answer.used_cpu, Some(0));
        let disk = answer.extra.vector("DISK_SIZE").expect("vector kept");
        assert_eq!(disk.get("SIZE"), Some("10"));
        assert_eq!(poll("").expect("empty answer"), PollAnswer::default());
    }

    #[test]
    fn poll_rejects_malformed_answers_whole() {
        for bad in [
            "STATE=a garbage",
            "STATE=x",
            "STATE=a USEDCPU=lots",
            "USEDMEMORY=-5",
            "STATE=[A=1]",
        ] {
            let err = poll(bad).expect_err(bad);
            assert!(
                err.starts_with("Error parsing monitoring str"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn monitor_accepts_commas_blanks_and_lines() {
        let t = monitor(
            "HYPERVISOR=dummy,HOSTNAME=node1,TOTALCPU=800\n\
             MODELNAME=\"Xeon, 8 cores\" CPUSPEED=2200\nDISKS=[A=1,B=2]",
        )
        .expect("parses");
        assert_eq!(t.get("HOSTNAME"), Some("node1"));
        assert_eq!(t.get("TOTALCPU"), Some("800"));
        assert_eq!(t.get("MODELNAME"), Some("Xeon, 8 cores"));
        assert_eq!(t.get("CPUSPEED"), Some("2200"));
        let disks = t.vector("DISKS").expect("vector");
        assert_eq!(disks.get("B"), Some("2"));
        let first = t.attributes().first().expect("attributes");
        assert_eq!(first.value.as_single(), Some("dummy"));
    }

    #[test]
    fn monitor_rejects_empty_or_malformed_output() {
        assert!(monitor("").is_err());
        assert!(monitor("TOTALCPU").is_err());
    }
}
