//! Virtual networks and their leases (spec/CORE.md §4.1–4.5, authorization
//! §7.3): a network is parsed from its template (RANGED with the 3.x range
//! rule in `range.rs`, or FIXED with its `LEASES`), owned by its creator,
//! visible to its owner, to everyone when `PUBLIC`, and to oneadmin.
//!
//! Leases are the VM pool's to take and give back, in the writer's style
//! (`super::writer`): under the writer lock it *plans* with
//! [`VnetPool::plan_leases`] / [`VnetPool::plan_release`] (pure: memory is
//! read, nothing written), writes the planned leases in its own transaction
//! with [`Tx::put_lease`] / [`Tx::release_lease`] beside the VM, and after
//! the commit *applies* them with [`VnetPool::apply_leases`] /
//! [`VnetPool::apply_release`]. One lock and memory changed only after a
//! durable commit is what makes "a lease is never given twice" hold.
//!
//! May use: `crate::template` and the rest of `crate::core`.
//!
//! [`Tx::put_lease`]: super::ports::Tx::put_lease
//! [`Tx::release_lease`]: super::ports::Tx::release_lease

pub mod lease;
pub mod range;

pub use lease::{Lease, LeaseRequest, Mac, NetworkKey};
pub use range::Range;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::caller::{Caller, ADMIN_UID};
use super::ports::Pool;
use super::writer::{WriteGuard, Writer};
use super::{Error, Kind, Result, Settings};
use crate::template::{Template, Value, Vector};

/// RANGED or FIXED (spec/CORE.md §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkType {
    /// Addresses from a range (`NETWORK_ADDRESS` + size).
    Ranged,
    /// Addresses from the `LEASES` list.
    Fixed,
}

impl NetworkType {
    /// The template word (`RANGED`, `FIXED`).
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkType::Ranged => "RANGED",
            NetworkType::Fixed => "FIXED",
        }
    }

    /// OpenNebula's number (the 1.4 CLI's TYPE column): 0 ranged, 1 fixed.
    pub fn number(self) -> u8 {
        match self {
            NetworkType::Ranged => 0,
            NetworkType::Fixed => 1,
        }
    }
}

/// One address of a FIXED network's definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedLease {
    /// The address.
    pub ip: Ipv4Addr,
    /// Its MAC: as the template gave it, else the MAC rule's.
    pub mac: Mac,
}

/// Where a network's addresses come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// A range.
    Ranged(Range),
    /// A list, in IP order, without repeated IPs or MACs.
    Fixed(Vec<FixedLease>),
}

/// A virtual network as defined; its leases in use are kept beside it
/// ([`VnetInfo`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualNetwork {
    /// Unique, never reused id.
    pub id: u64,
    /// The owner's uid.
    pub uid: u64,
    /// Unique per owner; never all digits (it would read as an id).
    pub name: String,
    /// The host bridge its NICs attach to.
    pub bridge: String,
    /// Usable and visible by every user.
    pub public: bool,
    /// The range or the fixed list.
    pub addresses: Addresses,
    /// The template, normalised: `TYPE` and `PUBLIC` spelt out, a RANGED
    /// network's `NETWORK_ADDRESS` as its base and `NETWORK_MASK` added, a
    /// FIXED network's `LEASES` with their MACs.
    pub template: Template,
}

impl VirtualNetwork {
    /// Parses and checks a network template for owner `uid` (the id is
    /// given when it is stored). Errors name the attribute and say why.
    pub fn from_template(uid: u64, mut template: Template, settings: &Settings) -> Result<Self> {
        let name = template
            .get("NAME")
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        validate_name(&name)?;
        let bridge = template
            .get("BRIDGE")
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        validate_bridge(&bridge)?;
        let public = match template.get("PUBLIC").map(str::trim) {
            None | Some("") => false,
            Some(v) if v.eq_ignore_ascii_case("YES") => true,
            Some(v) if v.eq_ignore_ascii_case("NO") => false,
            Some(v) => {
                return Err(Error::invalid(
                    "PUBLIC",
                    format!("must be YES or NO, not {v:?}"),
                ))
            }
        };
        let has = |attr: &str| template.attributes().iter().any(|a| a.name == attr);
        let kind = network_type(&template)?;
        let addresses = match kind {
            NetworkType::Ranged => {
                if has("LEASES") {
                    return Err(Error::invalid(
                        "LEASES",
                        "only FIXED networks take LEASES; a RANGED network takes NETWORK_ADDRESS and NETWORK_SIZE",
                    ));
                }
                let range = Range::from_template(&template, settings.network_size)?;
                template.set("NETWORK_ADDRESS", range.address.to_string());
                template.set("NETWORK_MASK", range.mask().to_string());
                Addresses::Ranged(range)
            }
            NetworkType::Fixed => {
                if has("NETWORK_ADDRESS") {
                    return Err(Error::invalid(
                        "NETWORK_ADDRESS",
                        "only RANGED networks take NETWORK_ADDRESS; a FIXED network lists LEASES",
                    ));
                }
                let leases = fixed_leases(&template, settings.mac_prefix)?;
                template.remove("LEASES");
                for lease in &leases {
                    let mut vector = Vector::new();
                    vector.set("IP", lease.ip.to_string());
                    vector.set("MAC", lease.mac.to_string());
                    template.push("LEASES", Value::Vector(vector));
                }
                Addresses::Fixed(leases)
            }
        };
        template.set("NAME", name.clone());
        template.set("TYPE", kind.as_str());
        template.set("BRIDGE", bridge.clone());
        template.set("PUBLIC", if public { "YES" } else { "NO" });
        Ok(VirtualNetwork {
            id: 0,
            uid,
            name,
            bridge,
            public,
            addresses,
            template,
        })
    }

    /// RANGED or FIXED.
    pub fn kind(&self) -> NetworkType {
        match self.addresses {
            Addresses::Ranged(_) => NetworkType::Ranged,
            Addresses::Fixed(_) => NetworkType::Fixed,
        }
    }

    /// How many addresses it can hand out.
    pub fn size(&self) -> u64 {
        match &self.addresses {
            Addresses::Ranged(range) => range.len(),
            Addresses::Fixed(leases) => leases.len() as u64,
        }
    }

    /// Whether a VM of user `uid` may take a lease here: its owner,
    /// oneadmin, anyone on a public network or on one of oneadmin's
    /// (spec/CORE.md §0 "Authorization", §4.5).
    pub fn usable_by(&self, uid: u64) -> bool {
        uid == ADMIN_UID || self.uid == uid || self.public || self.uid == ADMIN_UID
    }

    /// Whether `caller` may see it: owner, public, or oneadmin (§7.3).
    pub fn visible_to(&self, caller: &Caller) -> bool {
        caller.owns_or_admin(self.uid) || self.public
    }
}

/// A network with the leases it has in use, in IP order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VnetInfo {
    /// The definition.
    pub network: VirtualNetwork,
    /// The leases in use.
    pub leases: Vec<Lease>,
}

/// A network in memory: its definition, leases in use, and the next-fit
/// cursor (spec/CORE.md §4.2: not persisted, at the first address after a
/// start, then at the last address given so that addresses are not
/// reused at once).
struct Net {
    network: VirtualNetwork,
    leases: BTreeMap<Ipv4Addr, Lease>,
    /// Offset in the range, or index in the fixed list.
    cursor: u64,
}

impl Net {
    fn info(&self) -> VnetInfo {
        VnetInfo {
            network: self.network.clone(),
            leases: self.leases.values().cloned().collect(),
        }
    }

    /// The `i`-th address it hands out, with its MAC.
    fn nth(&self, i: u64, prefix: [u8; 2]) -> Option<(Ipv4Addr, Mac)> {
        match &self.network.addresses {
            Addresses::Ranged(range) => {
                let ip = u64::from(u32::from(range.first)) + i;
                let ip = Ipv4Addr::from(u32::try_from(ip).ok()?);
                range.contains(ip).then(|| (ip, Mac::from_ip(prefix, ip)))
            }
            Addresses::Fixed(leases) => {
                let lease = leases.get(usize::try_from(i).ok()?)?;
                Some((lease.ip, lease.mac))
            }
        }
    }

    /// The position of `ip` in what it hands out.
    fn offset_of(&self, ip: Ipv4Addr) -> Option<u64> {
        match &self.network.addresses {
            Addresses::Ranged(range) => range
                .contains(ip)
                .then(|| u64::from(u32::from(ip)) - u64::from(u32::from(range.first))),
            Addresses::Fixed(leases) => leases.iter().position(|l| l.ip == ip).map(|i| i as u64),
        }
    }
}

/// The network pool: every network and lease in memory, every change
/// written to the store before it is visible.
pub struct VnetPool {
    writer: Arc<Writer>,
    settings: Settings,
    nets: RwLock<BTreeMap<u64, Net>>,
}

impl VnetPool {
    /// Loads the pool, leases included, from the store.
    pub fn load(writer: Arc<Writer>, settings: Settings) -> Result<Self> {
        let nets = writer
            .store()
            .load_vnets()?
            .into_iter()
            .map(|info| {
                let net = Net {
                    leases: info.leases.into_iter().map(|l| (l.ip, l)).collect(),
                    network: info.network,
                    cursor: 0,
                };
                (net.network.id, net)
            })
            .collect();
        Ok(VnetPool {
            writer,
            settings,
            nets: RwLock::new(nets),
        })
    }

    /// Creates a network from template text; any user may, and owns it.
    /// A refused template creates nothing.
    pub fn create(&self, caller: &Caller, text: &str) -> Result<VnetInfo> {
        let template =
            Template::parse(text).map_err(|e| Error::invalid("template", e.to_string()))?;
        self.create_from(caller, template)
    }

    /// Creates a network from a parsed template (for fronts that build one,
    /// like OCCI's `POST /network`).
    pub fn create_from(&self, caller: &Caller, template: Template) -> Result<VnetInfo> {
        let mut network = VirtualNetwork::from_template(caller.uid, template, &self.settings)?;
        let guard = self.writer.lock()?;
        if self
            .read()?
            .values()
            .any(|n| n.network.uid == caller.uid && n.network.name == network.name)
        {
            return Err(Error::Conflict(format!(
                "network {} already exists",
                network.name
            )));
        }
        let network = guard.commit(|tx| {
            network.id = tx.next_id(Pool::Vnets)?;
            tx.put_vnet(&network)?;
            Ok(network)
        })?;
        let net = Net {
            network,
            leases: BTreeMap::new(),
            cursor: 0,
        };
        let info = net.info();
        self.write_map()?.insert(info.network.id, net);
        Ok(info)
    }

    /// Deletes a network (its owner or oneadmin), refused while any of its
    /// leases is in use.
    pub fn delete(&self, caller: &Caller, key: &str) -> Result<VirtualNetwork> {
        let guard = self.writer.lock()?;
        let network = {
            let nets = self.read()?;
            let net = resolve(
                &nets,
                caller.uid,
                &NetworkKey::parse(key),
                |n| caller.owns_or_admin(n.uid),
                "delete",
                "network",
            )?;
            if !net.leases.is_empty() {
                return Err(Error::Conflict(format!(
                    "network {} has {} leases in use",
                    net.network.name,
                    net.leases.len()
                )));
            }
            net.network.clone()
        };
        guard.commit(|tx| tx.delete_vnet(network.id))?;
        self.write_map()?.remove(&network.id);
        Ok(network)
    }

    /// Publishes (`public`) or unpublishes a network: its owner or oneadmin
    /// (MANAGE, spec/CORE.md §7.3). `PUBLIC` in its template follows. The
    /// leases already taken stay: unpublishing stops new ones only. A
    /// refused or failed request changes nothing.
    pub fn set_public(&self, caller: &Caller, key: &str, public: bool) -> Result<VirtualNetwork> {
        let action = if public { "publish" } else { "unpublish" };
        let guard = self.writer.lock()?;
        let mut network = {
            let nets = self.read()?;
            resolve(
                &nets,
                caller.uid,
                &NetworkKey::parse(key),
                |n| caller.owns_or_admin(n.uid),
                action,
                "network",
            )?
            .network
            .clone()
        };
        network.public = public;
        network
            .template
            .set("PUBLIC", if public { "YES" } else { "NO" });
        guard.commit(|tx| tx.put_vnet(&network))?;
        let mut nets = self.write_map()?;
        let net = nets.get_mut(&network.id).ok_or_else(|| {
            Error::Internal(format!("network {} vanished under the lock", network.id))
        })?;
        net.network = network.clone();
        Ok(network)
    }

    /// The networks `caller` may see: its own and the public ones, or all
    /// for oneadmin; in id order.
    pub fn list(&self, caller: &Caller) -> Result<Vec<VnetInfo>> {
        Ok(self
            .read()?
            .values()
            .filter(|n| n.network.visible_to(caller))
            .map(Net::info)
            .collect())
    }

    /// One network by id or name: its owner's, a public one, or any for
    /// oneadmin; else `Forbidden`.
    pub fn show(&self, caller: &Caller, key: &str) -> Result<VnetInfo> {
        let nets = self.read()?;
        let net = resolve(
            &nets,
            caller.uid,
            &NetworkKey::parse(key),
            |n| n.visible_to(caller),
            "show",
            "network",
        )?;
        Ok(net.info())
    }

    /// Plans the leases of one VM's NICs, all or nothing: the VM of user
    /// `owner` (its id `vm_id`) asks for `requests`, in NIC order. Pure:
    /// nothing is written. Each request accounts for the ones planned
    /// before it, so two NICs on one network get two addresses.
    pub fn plan_leases(
        &self,
        held: &WriteGuard<'_>,
        owner: u64,
        requests: &[LeaseRequest],
        vm_id: u64,
    ) -> Result<Vec<Lease>> {
        let mut planned = Vec::with_capacity(requests.len());
        for request in requests {
            let lease = self.plan_lease(held, owner, request, vm_id, &planned)?;
            planned.push(lease);
        }
        Ok(planned)
    }

    /// Plans one lease for VM `vm_id` of user `owner`, as if `planned` were
    /// taken already: the requested address if it is free, else the next
    /// free one (next-fit from the network's cursor). Refuses an unknown
    /// network (`NotFound`), one the owner may not use (`Forbidden`), an
    /// address outside the range or not in the fixed list (`Invalid` on
    /// `NIC/IP` or `NIC/MAC`), a taken address or a full network
    /// (`Conflict`). Pure: nothing is written.
    pub fn plan_lease(
        &self,
        held: &WriteGuard<'_>,
        owner: u64,
        request: &LeaseRequest,
        vm_id: u64,
        planned: &[Lease],
    ) -> Result<Lease> {
        self.check_guard(held)?;
        let nets = self.read()?;
        let net = resolve(
            &nets,
            owner,
            &request.network,
            |n| n.usable_by(owner),
            "use",
            "NIC/NETWORK",
        )?;
        let network = &net.network;
        let prefix = self.settings.mac_prefix;
        let taken = |ip: Ipv4Addr| {
            net.leases.contains_key(&ip)
                || planned
                    .iter()
                    .any(|l| l.vnet_id == network.id && l.ip == ip)
        };
        let lease = |(ip, mac): (Ipv4Addr, Mac)| Lease {
            vnet_id: network.id,
            ip,
            mac,
            vm_id,
        };
        let wanted = match (request.ip, request.mac) {
            (Some(ip), _) => Some(self.requested_ip(net, ip)?),
            (None, Some(mac)) => Some(self.requested_mac(net, mac)?),
            (None, None) => None,
        };
        if let Some(found @ (ip, _)) = wanted {
            if taken(ip) {
                return Err(Error::Conflict(format!(
                    "IP {ip} of network {} is already in use",
                    network.name
                )));
            }
            return Ok(lease(found));
        }
        let size = network.size();
        let used = net.leases.len() as u64
            + planned.iter().filter(|l| l.vnet_id == network.id).count() as u64;
        if used >= size {
            return Err(Error::Conflict(format!(
                "network {} has no free address: all {size} are in use",
                network.name
            )));
        }
        // Some address is free, so this finds one within used + 1 steps.
        (0..size)
            .map(|i| (net.cursor + i) % size)
            .filter_map(|i| net.nth(i, prefix))
            .find(|(ip, _)| !taken(*ip))
            .map(lease)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "network {} counted a free address it has not",
                    network.id
                ))
            })
    }

    /// The leases VM `vm_id` holds, to give back when it reaches DONE or is
    /// deleted (spec/CORE.md §4.5). Pure: nothing is written.
    pub fn plan_release(&self, held: &WriteGuard<'_>, vm_id: u64) -> Result<Vec<Lease>> {
        self.check_guard(held)?;
        Ok(self
            .read()?
            .values()
            .flat_map(|n| n.leases.values())
            .filter(|l| l.vm_id == vm_id)
            .cloned()
            .collect())
    }

    /// Makes committed leases visible, and moves each network's cursor to
    /// the last address it gave. Call after the commit that wrote them,
    /// still holding the guard.
    pub fn apply_leases(&self, held: &WriteGuard<'_>, leases: &[Lease]) -> Result<()> {
        self.check_guard(held)?;
        let mut nets = self.write_map()?;
        for lease in leases {
            let net = nets.get_mut(&lease.vnet_id).ok_or_else(|| {
                Error::Internal(format!("lease on network {} which is gone", lease.vnet_id))
            })?;
            if let Some(offset) = net.offset_of(lease.ip) {
                net.cursor = offset;
            }
            net.leases.insert(lease.ip, lease.clone());
        }
        Ok(())
    }

    /// Forgets committed releases. Call after the commit that deleted them,
    /// still holding the guard.
    pub fn apply_release(&self, held: &WriteGuard<'_>, leases: &[Lease]) -> Result<()> {
        self.check_guard(held)?;
        let mut nets = self.write_map()?;
        for lease in leases {
            if let Some(net) = nets.get_mut(&lease.vnet_id) {
                net.leases.remove(&lease.ip);
            }
        }
        Ok(())
    }

    /// Rewrites a VM's `NIC` for a lease (spec/CORE.md §4.5): `NETWORK`,
    /// `NETWORK_ID` and 1.4's `VNID`, `BRIDGE`, `IP`, `MAC`. Other keys
    /// (`MODEL`, `TARGET`, `SCRIPT`) are the VM pool's to keep or drop.
    pub fn fill_nic(&self, lease: &Lease, nic: &mut Vector) -> Result<()> {
        let nets = self.read()?;
        let network = &nets
            .get(&lease.vnet_id)
            .ok_or_else(|| Error::not_found(Kind::Network, lease.vnet_id))?
            .network;
        nic.set("NETWORK", network.name.clone());
        nic.set("NETWORK_ID", network.id.to_string());
        nic.set("VNID", network.id.to_string());
        nic.set("BRIDGE", network.bridge.clone());
        nic.set("IP", lease.ip.to_string());
        nic.set("MAC", lease.mac.to_string());
        Ok(())
    }

    /// What a requested IP gets, if it is one of the network's addresses.
    fn requested_ip(&self, net: &Net, ip: Ipv4Addr) -> Result<(Ipv4Addr, Mac)> {
        let found = net
            .offset_of(ip)
            .and_then(|i| net.nth(i, self.settings.mac_prefix));
        found.ok_or_else(|| {
            let network = &net.network;
            let reason = match &network.addresses {
                Addresses::Ranged(r) => format!(
                    "{ip} is outside network {} ({} - {})",
                    network.name, r.first, r.last
                ),
                Addresses::Fixed(_) => format!(
                    "{ip} is not one of the leases of fixed network {}",
                    network.name
                ),
            };
            Error::invalid("NIC/IP", reason)
        })
    }

    /// What a requested MAC gets, if it is the MAC of one of the network's
    /// addresses.
    fn requested_mac(&self, net: &Net, mac: Mac) -> Result<(Ipv4Addr, Mac)> {
        let network = &net.network;
        let prefix = self.settings.mac_prefix;
        let found = match &network.addresses {
            Addresses::Ranged(range) => (mac.prefix() == prefix && range.contains(mac.ip_part()))
                .then(|| (mac.ip_part(), mac)),
            Addresses::Fixed(leases) => leases.iter().find(|l| l.mac == mac).map(|l| (l.ip, l.mac)),
        };
        found.ok_or_else(|| {
            Error::invalid(
                "NIC/MAC",
                format!(
                    "{mac} is not the MAC of an address of network {}",
                    network.name
                ),
            )
        })
    }

    fn check_guard(&self, held: &WriteGuard<'_>) -> Result<()> {
        if held.is_of(&self.writer) {
            Ok(())
        } else {
            Err(Error::Internal(
                "lease planned without the network pool's writer lock".into(),
            ))
        }
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, BTreeMap<u64, Net>>> {
        self.nets
            .read()
            .map_err(|_| Error::Internal("network pool lock poisoned".into()))
    }

    fn write_map(&self) -> Result<RwLockWriteGuard<'_, BTreeMap<u64, Net>>> {
        self.nets
            .write()
            .map_err(|_| Error::Internal("network pool lock poisoned".into()))
    }
}

/// Finds a network by id or name for user `uid`, who may act on it when
/// `allowed`. A name is looked for among `uid`'s own networks first, then
/// among the ones it may act on; a name shared by several of those is
/// refused (`Invalid` on `field`) rather than guessed. A network that
/// exists but is not allowed is `Forbidden`.
fn resolve<'a>(
    nets: &'a BTreeMap<u64, Net>,
    uid: u64,
    key: &NetworkKey,
    allowed: impl Fn(&VirtualNetwork) -> bool,
    action: &str,
    field: &str,
) -> Result<&'a Net> {
    let forbidden = || Error::Forbidden {
        kind: Kind::Network,
        id: key.to_string(),
        action: action.to_string(),
    };
    match key {
        NetworkKey::Id(id) => {
            let net = nets
                .get(id)
                .ok_or_else(|| Error::not_found(Kind::Network, id))?;
            if allowed(&net.network) {
                Ok(net)
            } else {
                Err(forbidden())
            }
        }
        NetworkKey::Name(name) => {
            let named: Vec<&Net> = nets.values().filter(|n| n.network.name == *name).collect();
            if named.is_empty() {
                return Err(Error::not_found(Kind::Network, name));
            }
            if let Some(own) = named.iter().find(|n| n.network.uid == uid) {
                return if allowed(&own.network) {
                    Ok(own)
                } else {
                    Err(forbidden())
                };
            }
            let usable: Vec<&Net> = named.into_iter().filter(|n| allowed(&n.network)).collect();
            match usable.as_slice() {
                [] => Err(forbidden()),
                [one] => Ok(one),
                several => Err(Error::invalid(
                    field,
                    format!(
                        "the name {name} is used by networks {} of different owners; give the id",
                        several
                            .iter()
                            .map(|n| n.network.id.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
    }
}

/// `TYPE`, case-insensitive; when absent, what the template's attributes
/// imply (spec/CORE.md §4.1, cloudgate's rule).
fn network_type(template: &Template) -> Result<NetworkType> {
    let has = |attr: &str| template.attributes().iter().any(|a| a.name == attr);
    match template.get("TYPE").map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("RANGED") => Ok(NetworkType::Ranged),
        Some(t) if t.eq_ignore_ascii_case("FIXED") => Ok(NetworkType::Fixed),
        Some(t) if !t.is_empty() => Err(Error::invalid(
            "TYPE",
            format!("must be RANGED or FIXED, not {t:?}"),
        )),
        _ if has("NETWORK_ADDRESS") => Ok(NetworkType::Ranged),
        _ if has("LEASES") => Ok(NetworkType::Fixed),
        _ => Err(Error::invalid(
            "TYPE",
            "missing: give TYPE = RANGED with NETWORK_ADDRESS, or TYPE = FIXED with LEASES",
        )),
    }
}

/// Network names are shown in tables and used as keys in URLs: not empty,
/// no control characters, and not all digits (a key of digits is an id).
fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "missing: every network needs a NAME"
    } else if name.len() > 128 {
        "must be at most 128 bytes"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters"
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        "must not be all digits (it would read as a network id)"
    } else {
        return Ok(());
    };
    Err(Error::invalid("NAME", reason))
}

/// A bridge name reaches driver scripts and libvirt XML: an interface name
/// of letters, digits and `-_.:` only.
fn validate_bridge(bridge: &str) -> Result<()> {
    if bridge.is_empty() {
        return Err(Error::invalid(
            "BRIDGE",
            "missing: name the host bridge the NICs attach to (e.g. BRIDGE = br0)",
        ));
    }
    if bridge.len() > 64
        || !bridge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(Error::invalid(
            "BRIDGE",
            format!("{bridge:?} is not an interface name (letters, digits, '-', '_', '.', ':')"),
        ));
    }
    Ok(())
}

/// A FIXED network's `LEASES`, in IP order, every MAC filled in.
fn fixed_leases(template: &Template, prefix: [u8; 2]) -> Result<Vec<FixedLease>> {
    let mut leases: Vec<FixedLease> = Vec::new();
    for attribute in template.attributes().iter().filter(|a| a.name == "LEASES") {
        let vector = attribute.value.as_vector().ok_or_else(|| {
            Error::invalid(
                "LEASES",
                "must be a vector: LEASES = [ IP = 10.0.0.5, MAC = 02:00:0a:00:00:05 ]",
            )
        })?;
        let ip = vector
            .get("IP")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::invalid("LEASES/IP", "every lease needs an IP"))?;
        let ip = range::parse_ip("LEASES/IP", ip)?;
        let mac = match vector.get("MAC").map(str::trim).filter(|t| !t.is_empty()) {
            Some(mac) => lease::parse_mac("LEASES/MAC", mac)?,
            None => Mac::from_ip(prefix, ip),
        };
        if leases.iter().any(|l| l.ip == ip) {
            return Err(Error::invalid("LEASES/IP", format!("{ip} is listed twice")));
        }
        if let Some(other) = leases.iter().find(|l| l.mac == mac) {
            return Err(Error::invalid(
                "LEASES/MAC",
                format!("{mac} is given to both {} and {ip}", other.ip),
            ));
        }
        leases.push(FixedLease { ip, mac });
    }
    if leases.is_empty() {
        return Err(Error::invalid(
            "LEASES",
            "a FIXED network needs at least one LEASES = [ IP = ... ]",
        ));
    }
    leases.sort_by_key(|l| l.ip);
    Ok(leases)
}

#[cfg(test)]
mod tests;
