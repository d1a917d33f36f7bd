//! The address range of a RANGED network (spec/CORE.md §4.2, the 3.x rule
//! cloudgate follows): `NETWORK_ADDRESS` is the network's base, its size
//! comes from `NETWORK_SIZE` (a number or a class letter), `NETWORK_MASK`
//! or a `/prefix` on the address, and the assignable addresses run from
//! base+1 to the last address before the broadcast unless `IP_START` /
//! `IP_END` narrow them.
//!
//! May use: `crate::template` (through the parent module) and the core's
//! error type. Pure functions over numbers; nothing here keeps state.

use std::net::Ipv4Addr;

use crate::core::{Error, Result};
use crate::template::Template;

/// The smallest network accepted (`/30`: two assignable addresses); a
/// `/31` or `/32` has no address between the base and the broadcast.
pub const MIN_HOST_BITS: u32 = 2;
/// The largest network accepted (`/8`, class A). Larger networks are
/// almost surely a typo, and their lease scans would be long.
pub const MAX_HOST_BITS: u32 = 24;

/// The addresses a RANGED network hands out. Built by
/// [`Range::from_template`], which checks every invariant below; the store
/// gives back what it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// The network's base address (host bits zero).
    pub address: Ipv4Addr,
    /// The mask length (`/24` is 24); 8 to 30.
    pub prefix: u8,
    /// The first assignable address (`IP_START`, default base+1).
    pub first: Ipv4Addr,
    /// The last assignable address (`IP_END`, default broadcast−1).
    pub last: Ipv4Addr,
    /// `NETWORK_SIZE` as the template wrote it (`C`, `254`), if it did: the
    /// OCCI `SIZE` shows it as configured (spec/OCCI.md §5.3).
    pub size: Option<String>,
}

impl Range {
    /// Reads the range from a network template, `default_size` standing for
    /// a missing or zero `NETWORK_SIZE` (oned.conf's `NETWORK_SIZE`).
    /// Errors name the attribute at fault.
    pub fn from_template(template: &Template, default_size: u32) -> Result<Range> {
        let text = template
            .get("NETWORK_ADDRESS")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::invalid(
                    "NETWORK_ADDRESS",
                    "a ranged network needs it (e.g. NETWORK_ADDRESS = 192.168.0.0)",
                )
            })?;
        let (address, cidr) = parse_address(text)?;

        // Each way of giving the size is read on its own; they must agree.
        let mut given: Vec<(&str, u32)> = Vec::new();
        if let Some(prefix) = cidr {
            given.push(("NETWORK_ADDRESS", 32 - u32::from(prefix)));
        }
        let size_text = template
            .get("NETWORK_SIZE")
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if let Some(size) = size_text {
            let bits = match size_host_bits(size)? {
                Some(bits) => bits,
                None => count_host_bits("NETWORK_SIZE", default_size)?,
            };
            given.push(("NETWORK_SIZE", bits));
        }
        if let Some(mask) = template
            .get("NETWORK_MASK")
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            given.push(("NETWORK_MASK", mask_host_bits(mask)?));
        }
        let host_bits = match given.as_slice() {
            [] => count_host_bits("NETWORK_SIZE", default_size)?,
            [(_, bits), rest @ ..] => {
                if let Some((field, other)) = rest.iter().find(|(_, b)| b != bits) {
                    return Err(Error::invalid(
                        *field,
                        format!(
                            "gives a /{} network but {} gives a /{}; give one of them, or make them agree",
                            32 - other,
                            given[0].0,
                            32 - bits
                        ),
                    ));
                }
                *bits
            }
        };
        if !(MIN_HOST_BITS..=MAX_HOST_BITS).contains(&host_bits) {
            let field = given.first().map_or("NETWORK_SIZE", |(f, _)| *f);
            return Err(Error::invalid(
                field,
                format!(
                    "gives a /{} network; cloudgate takes /{} (class A) to /{}",
                    32 - host_bits,
                    32 - MAX_HOST_BITS,
                    32 - MIN_HOST_BITS
                ),
            ));
        }

        let base = u32::from(address);
        let host_mask = (1u32 << host_bits) - 1;
        if base & host_mask != 0 {
            return Err(Error::invalid(
                "NETWORK_ADDRESS",
                format!(
                    "{address} is not the base of its /{} network (that would be {})",
                    32 - host_bits,
                    Ipv4Addr::from(base & !host_mask)
                ),
            ));
        }
        let lowest = base + 1;
        let highest = base + host_mask - 1;
        let bound = |field: &str, default: u32| -> Result<u32> {
            match template.get(field).map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(default),
                Some(text) => {
                    let ip = parse_ip(field, text)?;
                    let n = u32::from(ip);
                    if (lowest..=highest).contains(&n) {
                        Ok(n)
                    } else {
                        Err(Error::invalid(
                            field,
                            format!(
                                "{ip} is outside the network's assignable addresses {} - {}",
                                Ipv4Addr::from(lowest),
                                Ipv4Addr::from(highest)
                            ),
                        ))
                    }
                }
            }
        };
        let first = bound("IP_START", lowest)?;
        let last = bound("IP_END", highest)?;
        if first > last {
            return Err(Error::invalid(
                "IP_END",
                format!(
                    "{} comes before IP_START {}",
                    Ipv4Addr::from(last),
                    Ipv4Addr::from(first)
                ),
            ));
        }
        Ok(Range {
            address,
            // host_bits is 2..=24, so this is 8..=30.
            prefix: (32 - host_bits) as u8,
            first: Ipv4Addr::from(first),
            last: Ipv4Addr::from(last),
            size: size_text.map(str::to_string),
        })
    }

    /// The network mask, dotted (`255.255.255.0`).
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX << (32 - u32::from(self.prefix)))
    }

    /// How many addresses the range hands out.
    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.last)) - u64::from(u32::from(self.first)) + 1
    }

    /// Never true: a range holds at least one address. (Here because
    /// clippy pairs `len` with it.)
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `ip` is one of the addresses handed out.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&ip)
    }
}

/// An IPv4 address in dotted form; errors name `field`.
pub fn parse_ip(field: &str, text: &str) -> Result<Ipv4Addr> {
    text.trim()
        .parse()
        .map_err(|_| Error::invalid(field, format!("{text:?} is not an IPv4 address (a.b.c.d)")))
}

/// `a.b.c.d` or `a.b.c.d/prefix`.
fn parse_address(text: &str) -> Result<(Ipv4Addr, Option<u8>)> {
    match text.split_once('/') {
        None => Ok((parse_ip("NETWORK_ADDRESS", text)?, None)),
        Some((ip, prefix)) => {
            let ip = parse_ip("NETWORK_ADDRESS", ip)?;
            let prefix = prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 32)
                .ok_or_else(|| {
                    Error::invalid(
                        "NETWORK_ADDRESS",
                        format!("{text:?}: the prefix after '/' must be a number from 0 to 32"),
                    )
                })?;
            Ok((ip, Some(prefix)))
        }
    }
}

/// `NETWORK_SIZE`: a class letter, or a number of hosts (0 meaning the
/// default, as in 1.4: `None`).
fn size_host_bits(text: &str) -> Result<Option<u32>> {
    match text.to_ascii_uppercase().as_str() {
        "A" => Ok(Some(24)),
        "B" => Ok(Some(16)),
        "C" => Ok(Some(8)),
        _ => {
            let count: u32 = text.parse().map_err(|_| {
                Error::invalid(
                    "NETWORK_SIZE",
                    format!("{text:?} is neither a number of addresses nor A, B or C"),
                )
            })?;
            if count == 0 {
                Ok(None)
            } else {
                count_host_bits("NETWORK_SIZE", count).map(Some)
            }
        }
    }
}

/// The host bits of a network holding `count` hosts plus its base and
/// broadcast addresses: `ceil(log2(count + 2))`.
fn count_host_bits(field: &str, count: u32) -> Result<u32> {
    if count == 0 {
        return Err(Error::invalid(field, "the default network size is 0"));
    }
    let total = u64::from(count) + 2;
    // 2^bits >= total; count fits u32, so bits <= 33 and never overflows.
    let bits = 64 - (total - 1).leading_zeros();
    Ok(bits)
}

/// A dotted network mask: ones then zeros.
fn mask_host_bits(text: &str) -> Result<u32> {
    let mask = u32::from(parse_ip("NETWORK_MASK", text)?);
    let host_bits = mask.trailing_zeros();
    // Contiguous: inverting gives 2^host_bits − 1.
    if host_bits < 32 && !mask != (1u32 << host_bits) - 1 {
        return Err(Error::invalid(
            "NETWORK_MASK",
            format!("{text} is not a network mask (ones followed by zeros)"),
        ));
    }
    Ok(host_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> Result<Range> {
        Range::from_template(&Template::parse(text).expect("template"), 254)
    }

    fn bounds(text: &str) -> (String, String, u8) {
        let r = range(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (r.first.to_string(), r.last.to_string(), r.prefix)
    }

    fn field_of(text: &str) -> String {
        match range(text) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{text}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn class_letters_give_8_16_24_host_bits() {
        assert_eq!(
            bounds("NETWORK_ADDRESS = 192.168.0.0\nNETWORK_SIZE = C"),
            ("192.168.0.1".into(), "192.168.0.254".into(), 24)
        );
        assert_eq!(
            bounds("NETWORK_ADDRESS = 172.16.0.0\nNETWORK_SIZE = b"),
            ("172.16.0.1".into(), "172.16.255.254".into(), 16)
        );
        assert_eq!(
            bounds("NETWORK_ADDRESS = 10.0.0.0\nNETWORK_SIZE = A"),
            ("10.0.0.1".into(), "10.255.255.254".into(), 8)
        );
        let b = range("NETWORK_ADDRESS = 172.16.0.0\nNETWORK_SIZE = B").expect("B");
        assert_eq!(b.len(), 65534);
        assert_eq!(b.size.as_deref(), Some("B"));
    }

    #[test]
    fn a_number_rounds_up_to_a_whole_subnet_3x_rule() {
        // spec/CORE.md §4.2: NETWORK_SIZE = 100 gives .1-.126 under 3.x.
        assert_eq!(
            bounds("NETWORK_ADDRESS = 10.1.2.0\nNETWORK_SIZE = 100"),
            ("10.1.2.1".into(), "10.1.2.126".into(), 25)
        );
        assert_eq!(
            bounds("NETWORK_ADDRESS = 10.1.2.0\nNETWORK_SIZE = 254"),
            ("10.1.2.1".into(), "10.1.2.254".into(), 24)
        );
        // 255 hosts + base + broadcast need 9 bits.
        assert_eq!(
            bounds("NETWORK_ADDRESS = 10.1.0.0\nNETWORK_SIZE = 255"),
            ("10.1.0.1".into(), "10.1.1.254".into(), 23)
        );
        assert_eq!(
            bounds("NETWORK_ADDRESS = 10.1.2.4\nNETWORK_SIZE = 1"),
            ("10.1.2.5".into(), "10.1.2.6".into(), 30)
        );
        assert_eq!(
            range("NETWORK_ADDRESS = 10.1.0.0\nNETWORK_SIZE = 65534")
                .expect("range")
                .prefix,
            16
        );
    }

    #[test]
    fn no_size_or_zero_means_the_default_254() {
        let r = range("NETWORK_ADDRESS = 192.168.7.0").expect("range");
        assert_eq!(
            (r.first.to_string(), r.last.to_string()),
            ("192.168.7.1".into(), "192.168.7.254".into())
        );
        assert_eq!(r.len(), 254);
        assert_eq!(r.size, None);
        let zero = range("NETWORK_ADDRESS = 192.168.7.0\nNETWORK_SIZE = 0").expect("range");
        assert_eq!(zero.len(), 254);
        // The configured default applies, whatever it is.
        let t = Template::parse("NETWORK_ADDRESS = 192.168.7.0").expect("template");
        assert_eq!(Range::from_template(&t, 30).expect("range").prefix, 27);
    }

    #[test]
    fn mask_and_cidr_give_the_size_too() {
        assert_eq!(
            bounds("NETWORK_ADDRESS = 10.0.0.0\nNETWORK_MASK = 255.255.252.0"),
            ("10.0.0.1".into(), "10.0.3.254".into(), 22)
        );
        assert_eq!(
            bounds("NETWORK_ADDRESS = 10.0.0.0/28"),
            ("10.0.0.1".into(), "10.0.0.14".into(), 28)
        );
        // Ways that agree are fine (a shown template reads back).
        assert_eq!(
            bounds("NETWORK_ADDRESS = 10.0.0.0/24\nNETWORK_SIZE = C\nNETWORK_MASK = 255.255.255.0")
                .2,
            24
        );
        let r = range("NETWORK_ADDRESS = 10.0.0.0/20").expect("range");
        assert_eq!(r.mask().to_string(), "255.255.240.0");
    }

    #[test]
    fn ip_start_and_end_narrow_the_range() {
        let r = range("NETWORK_ADDRESS = 10.0.0.0/24\nIP_START = 10.0.0.100\nIP_END = 10.0.0.109")
            .expect("range");
        assert_eq!(r.len(), 10);
        assert!(r.contains("10.0.0.100".parse().expect("ip")));
        assert!(!r.contains("10.0.0.99".parse().expect("ip")));
        assert!(!r.contains("10.0.0.110".parse().expect("ip")));
    }

    #[test]
    fn every_bad_value_names_its_attribute() {
        assert_eq!(field_of("NETWORK_SIZE = C"), "NETWORK_ADDRESS");
        assert_eq!(field_of("NETWORK_ADDRESS = 300.1.1.0"), "NETWORK_ADDRESS");
        assert_eq!(field_of("NETWORK_ADDRESS = 10.0.0.0/33"), "NETWORK_ADDRESS");
        assert_eq!(field_of("NETWORK_ADDRESS = 10.0.0.0/x"), "NETWORK_ADDRESS");
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.5\nNETWORK_SIZE = C"),
            "NETWORK_ADDRESS"
        );
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.0\nNETWORK_SIZE = D"),
            "NETWORK_SIZE"
        );
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.0\nNETWORK_SIZE = -4"),
            "NETWORK_SIZE"
        );
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.0\nNETWORK_SIZE = 4000000000"),
            "NETWORK_SIZE"
        );
        assert_eq!(field_of("NETWORK_ADDRESS = 0.0.0.0/0"), "NETWORK_ADDRESS");
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.0\nNETWORK_MASK = 255.0.255.0"),
            "NETWORK_MASK"
        );
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.0\nNETWORK_MASK = 255.255.255.255"),
            "NETWORK_MASK"
        );
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.0/24\nNETWORK_SIZE = B"),
            "NETWORK_SIZE"
        );
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.0\nNETWORK_SIZE = C\nNETWORK_MASK = 255.255.0.0"),
            "NETWORK_MASK"
        );
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.0/24\nIP_START = 10.0.1.1"),
            "IP_START"
        );
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.0/24\nIP_END = 10.0.0.255"),
            "IP_END"
        );
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.0/24\nIP_START = nope"),
            "IP_START"
        );
        assert_eq!(
            field_of("NETWORK_ADDRESS = 10.0.0.0/24\nIP_START = 10.0.0.9\nIP_END = 10.0.0.8"),
            "IP_END"
        );
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let e = range("NETWORK_ADDRESS = 192.168.0.5\nNETWORK_SIZE = C").expect_err("not a base");
        assert_eq!(
            e.to_string(),
            "NETWORK_ADDRESS: 192.168.0.5 is not the base of its /24 network (that would be 192.168.0.0)"
        );
        let e = range("NETWORK_ADDRESS = 10.0.0.0/24\nNETWORK_SIZE = B").expect_err("disagree");
        assert_eq!(
            e.to_string(),
            "NETWORK_SIZE: gives a /16 network but NETWORK_ADDRESS gives a /24; give one of them, or make them agree"
        );
    }
}
