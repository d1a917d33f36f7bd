//! Leases (spec/CORE.md §4.4–4.5): the MAC rule, a lease held by a VM, and
//! what a VM's `NIC` asks for.
//!
//! May use: `crate::template` and the core's error type. Pure values; the
//! pool (`super`) decides which lease a request gets.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::range::parse_ip;
use crate::core::{Error, Result};
use crate::template::Vector;

/// A MAC address. Displayed lower-case and colon separated, as OpenNebula
/// writes it (`02:00:c0:a8:00:05`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// The MAC of `ip` under the MAC rule: the two prefix bytes
    /// (`MAC_PREFIX`) followed by the four bytes of the IP, so that a guest
    /// can derive its IP from its MAC (spec/CORE.md §4.4).
    pub fn from_ip(prefix: [u8; 2], ip: Ipv4Addr) -> Mac {
        let [a, b, c, d] = ip.octets();
        Mac([prefix[0], prefix[1], a, b, c, d])
    }

    /// The two leading bytes.
    pub fn prefix(&self) -> [u8; 2] {
        [self.0[0], self.0[1]]
    }

    /// The IP the MAC rule puts in the four trailing bytes.
    pub fn ip_part(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.0[2], self.0[3], self.0[4], self.0[5])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

/// Why a text is not a MAC.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address (six hex bytes separated by ':')")]
pub struct BadMac(pub String);

impl FromStr for Mac {
    type Err = BadMac;

    /// Six two-digit hex bytes separated by `:`, any case.
    fn from_str(text: &str) -> Result<Mac, BadMac> {
        let bad = || BadMac(text.to_string());
        let mut bytes = [0u8; 6];
        let mut parts = text.trim().split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(bytes))
    }
}

/// A MAC attribute read from a template; errors name `field`.
pub fn parse_mac(field: &str, text: &str) -> Result<Mac> {
    text.parse()
        .map_err(|e: BadMac| Error::invalid(field, e.to_string()))
}

/// An address of a network given to one VM. Only leases in use exist: a
/// released lease is gone (a FIXED network's free addresses are its
/// definition's, spec/CORE.md §4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The network's id.
    pub vnet_id: u64,
    /// The address.
    pub ip: Ipv4Addr,
    /// Its MAC: the MAC rule's for a RANGED network, the defined one for a
    /// FIXED network.
    pub mac: Mac,
    /// The VM holding it.
    pub vm_id: u64,
}

/// How a `NIC` names its network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkKey {
    /// `NETWORK_ID` (3.x).
    Id(u64),
    /// `NETWORK` (a name; names are unique per owner).
    Name(String),
}

impl NetworkKey {
    /// A key as the API takes it: digits are an id (network names are
    /// never all digits), anything else a name.
    pub fn parse(key: &str) -> NetworkKey {
        match key.parse() {
            Ok(id) => NetworkKey::Id(id),
            Err(_) => NetworkKey::Name(key.to_string()),
        }
    }
}

impl fmt::Display for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkKey::Id(id) => write!(f, "{id}"),
            NetworkKey::Name(name) => f.write_str(name),
        }
    }
}

/// What one `NIC` asks for: a network, and maybe one address of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRequest {
    /// The network.
    pub network: NetworkKey,
    /// `NIC/IP`: exactly this address, which must be free.
    pub ip: Option<Ipv4Addr>,
    /// `NIC/MAC` without `IP`: the address with this MAC. (With `IP` the
    /// user's MAC is ignored, as 1.4 drops it.)
    pub mac: Option<Mac>,
}

impl LeaseRequest {
    /// The next free address of a network.
    pub fn any(network: NetworkKey) -> Self {
        LeaseRequest {
            network,
            ip: None,
            mac: None,
        }
    }

    /// Reads a VM's `NIC` vector: `NETWORK_ID` (3.x) or else `NETWORK`,
    /// and `IP` / `MAC`. `None` when the NIC names no network: such a NIC
    /// is left as the user wrote it (spec/CORE.md §4.5). Errors name
    /// `NIC/<key>`.
    pub fn from_nic(nic: &Vector) -> Result<Option<LeaseRequest>> {
        let value = |key: &str| nic.get(key).map(str::trim).filter(|v| !v.is_empty());
        let network = match (value("NETWORK_ID"), value("NETWORK")) {
            (Some(id), _) => NetworkKey::Id(id.parse().map_err(|_| {
                Error::invalid("NIC/NETWORK_ID", format!("{id:?} is not a network id"))
            })?),
            (None, Some(name)) => NetworkKey::Name(name.to_string()),
            (None, None) => return Ok(None),
        };
        let ip = value("IP").map(|ip| parse_ip("NIC/IP", ip)).transpose()?;
        let mac = match ip {
            Some(_) => None,
            None => value("MAC")
                .map(|mac| parse_mac("NIC/MAC", mac))
                .transpose()?,
        };
        Ok(Some(LeaseRequest { network, ip, mac }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().expect("ip")
    }

    #[test]
    fn mac_rule_is_prefix_then_the_ip_bytes() {
        // spec/CORE.md §4.4's example.
        let mac = Mac::from_ip([0x02, 0x00], ip("192.168.0.5"));
        assert_eq!(mac.to_string(), "02:00:c0:a8:00:05");
        assert_eq!(mac.ip_part(), ip("192.168.0.5"));
        assert_eq!(mac.prefix(), [0x02, 0x00]);
        assert_eq!(
            Mac::from_ip([0x00, 0x01], ip("10.255.0.171")).to_string(),
            "00:01:0a:ff:00:ab"
        );
    }

    #[test]
    fn macs_parse_in_any_case_and_print_lower_case() {
        let mac: Mac = "02:00:0A:00:00:05".parse().expect("mac");
        assert_eq!(mac.to_string(), "02:00:0a:00:00:05");
        for bad in [
            "",
            "02:00:0a:00:00",
            "02:00:0a:00:00:05:06",
            "02-00-0a-00-00-05",
            "2:00:0a:00:00:05",
            "zz:00:0a:00:00:05",
        ] {
            assert_eq!(bad.parse::<Mac>(), Err(BadMac(bad.into())), "{bad:?}");
        }
    }

    #[test]
    fn nic_requests_read_network_ip_and_mac() {
        let nic = |text: &str| {
            let t =
                crate::template::Template::parse(&format!("NIC = [ {text} ]")).expect("template");
            LeaseRequest::from_nic(t.vector("NIC").expect("nic"))
        };
        assert_eq!(
            nic("NETWORK = lan").expect("ok"),
            Some(LeaseRequest::any(NetworkKey::Name("lan".into())))
        );
        assert_eq!(
            nic("NETWORK = lan, NETWORK_ID = 4, IP = 10.0.0.9, MAC = 02:00:00:00:00:01")
                .expect("ok"),
            Some(LeaseRequest {
                network: NetworkKey::Id(4),
                ip: Some(ip("10.0.0.9")),
                mac: None
            })
        );
        assert_eq!(
            nic("NETWORK = lan, MAC = 02:00:0A:00:00:09").expect("ok"),
            Some(LeaseRequest {
                network: NetworkKey::Name("lan".into()),
                ip: None,
                mac: Some(Mac([2, 0, 10, 0, 0, 9]))
            })
        );
        assert_eq!(
            nic("BRIDGE = br0, MAC = 00:11:22:33:44:55").expect("ok"),
            None
        );
        for (text, field) in [
            ("NETWORK = lan, IP = 10.0.0", "NIC/IP"),
            ("NETWORK = lan, MAC = 10.0.0.1", "NIC/MAC"),
            ("NETWORK_ID = lan", "NIC/NETWORK_ID"),
        ] {
            match nic(text) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn keys_of_digits_are_ids() {
        assert_eq!(NetworkKey::parse("12"), NetworkKey::Id(12));
        assert_eq!(
            NetworkKey::parse("lan-12"),
            NetworkKey::Name("lan-12".into())
        );
    }
}
