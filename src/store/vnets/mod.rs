//! The `vnets` and `leases` tables (spec/CORE.md §8.2–8.3).
//!
//! A network's row keeps owner, name and `public` as columns (what the
//! `UNIQUE (name, uid)` constraint needs) and everything else in `body`, a
//! JSON object: the address range or fixed list as parsed, and the
//! normalised template text. Loading takes the parsed values back as they
//! were written instead of parsing the template again, so a later change
//! of the template rules or of `MAC_PREFIX` / `NETWORK_SIZE` never changes
//! or refuses a stored network.
//!
//! A `leases` row exists only while its address is in use (by `vm_id`,
//! which references `vms(id)`: the VM's row must be written first).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::{constraint, db_error, delete_by_id, execute, sql_id};
use crate::core::vnet::{Addresses, FixedLease, Lease, Mac, Range, VirtualNetwork, VnetInfo};
use crate::core::{Error, Result};
use crate::template::Template;

/// What `body` holds.
#[derive(Serialize, Deserialize)]
struct Body {
    bridge: String,
    addresses: AddressesBody,
    template: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
enum AddressesBody {
    Ranged {
        address: Ipv4Addr,
        prefix: u8,
        first: Ipv4Addr,
        last: Ipv4Addr,
        size: Option<String>,
    },
    Fixed {
        leases: Vec<FixedBody>,
    },
}

#[derive(Serialize, Deserialize)]
struct FixedBody {
    ip: Ipv4Addr,
    mac: String,
}

pub(super) fn load(conn: &Connection) -> Result<Vec<VnetInfo>> {
    let mut stmt = conn
        .prepare("SELECT id, uid, name, public, body FROM vnets ORDER BY id")
        .map_err(db_error)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, bool>(3)?,
                row.get::<_, String>(4)?,
            ))
        })
        .map_err(db_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_error)?;
    let mut leases: BTreeMap<u64, Vec<Lease>> = BTreeMap::new();
    for lease in load_leases(conn)? {
        leases.entry(lease.vnet_id).or_default().push(lease);
    }
    rows.into_iter()
        .map(|(id, uid, name, public, body)| {
            let network = from_row(id as u64, uid as u64, name, public, &body)?;
            let mut held = leases.remove(&network.id).unwrap_or_default();
            held.sort_by_key(|l| l.ip);
            Ok(VnetInfo {
                network,
                leases: held,
            })
        })
        .collect()
}

fn from_row(id: u64, uid: u64, name: String, public: bool, body: &str) -> Result<VirtualNetwork> {
    let corrupt = |what: String| Error::Internal(format!("network {id} in the database: {what}"));
    let body: Body = serde_json::from_str(body).map_err(|e| corrupt(e.to_string()))?;
    let addresses = match body.addresses {
        AddressesBody::Ranged {
            address,
            prefix,
            first,
            last,
            size,
        } => Addresses::Ranged(Range {
            address,
            prefix,
            first,
            last,
            size,
        }),
        AddressesBody::Fixed { leases } => Addresses::Fixed(
            leases
                .into_iter()
                .map(|l| {
                    Ok(FixedLease {
                        ip: l.ip,
                        mac: parse_mac(&l.mac).map_err(corrupt)?,
                    })
                })
                .collect::<Result<_>>()?,
        ),
    };
    let template = Template::parse(&body.template).map_err(|e| corrupt(e.to_string()))?;
    Ok(VirtualNetwork {
        id,
        uid,
        name,
        bridge: body.bridge,
        public,
        addresses,
        template,
    })
}

fn load_leases(conn: &Connection) -> Result<Vec<Lease>> {
    let mut stmt = conn
        .prepare("SELECT vnet_id, ip, mac, vm_id FROM leases WHERE vm_id IS NOT NULL")
        .map_err(db_error)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })
        .map_err(db_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_error)?;
    rows.into_iter()
        .map(|(vnet_id, ip, mac, vm_id)| {
            let corrupt =
                |what: String| Error::Internal(format!("lease {ip} of network {vnet_id}: {what}"));
            Ok(Lease {
                vnet_id: vnet_id as u64,
                ip: ip.parse().map_err(|_| corrupt("bad IP".into()))?,
                mac: parse_mac(&mac).map_err(corrupt)?,
                vm_id: vm_id as u64,
            })
        })
        .collect()
}

fn parse_mac(text: &str) -> std::result::Result<Mac, String> {
    text.parse()
        .map_err(|e: crate::core::vnet::lease::BadMac| e.to_string())
}

pub(super) fn put(conn: &Connection, vnet: &VirtualNetwork) -> Result<()> {
    let addresses = match &vnet.addresses {
        Addresses::Ranged(r) => AddressesBody::Ranged {
            address: r.address,
            prefix: r.prefix,
            first: r.first,
            last: r.last,
            size: r.size.clone(),
        },
        Addresses::Fixed(leases) => AddressesBody::Fixed {
            leases: leases
                .iter()
                .map(|l| FixedBody {
                    ip: l.ip,
                    mac: l.mac.to_string(),
                })
                .collect(),
        },
    };
    let body = serde_json::to_string(&Body {
        bridge: vnet.bridge.clone(),
        addresses,
        template: vnet.template.to_string(),
    })
    .map_err(|e| Error::Internal(format!("network {}: {e}", vnet.id)))?;
    execute(
        conn,
        "INSERT INTO vnets (id, uid, name, public, body) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO UPDATE SET uid = excluded.uid, name = excluded.name,
             public = excluded.public, body = excluded.body",
        params![
            sql_id(vnet.id)?,
            sql_id(vnet.uid)?,
            vnet.name,
            vnet.public,
            body
        ],
    )
    .map_err(|e| match constraint(&e) {
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => Error::Internal(format!(
            "network {}: owner {} is not stored",
            vnet.id, vnet.uid
        )),
        Some(_) => Error::Conflict(format!("network {} already exists", vnet.name)),
        None => db_error(e),
    })?;
    Ok(())
}

pub(super) fn delete(conn: &Connection, id: u64) -> Result<()> {
    delete_by_id(conn, "vnets", id)
}

pub(super) fn put_lease(conn: &Connection, lease: &Lease) -> Result<()> {
    execute(
        conn,
        "INSERT INTO leases (vnet_id, ip, mac, vm_id) VALUES (?1, ?2, ?3, ?4)",
        params![
            sql_id(lease.vnet_id)?,
            lease.ip.to_string(),
            lease.mac.to_string(),
            sql_id(lease.vm_id)?
        ],
    )
    .map_err(|e| match constraint(&e) {
        // The pool plans against memory under the writer lock, so this is
        // a bug, not a user's mistake: say so in the log.
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => Error::Internal(format!(
            "lease {} of network {}: network or VM {} is not stored",
            lease.ip, lease.vnet_id, lease.vm_id
        )),
        Some(_) => Error::Conflict(format!(
            "IP {} of network {} is already in use",
            lease.ip, lease.vnet_id
        )),
        None => db_error(e),
    })?;
    Ok(())
}

pub(super) fn release_lease(conn: &Connection, lease: &Lease) -> Result<()> {
    execute(
        conn,
        "DELETE FROM leases WHERE vnet_id = ?1 AND ip = ?2",
        params![sql_id(lease.vnet_id)?, lease.ip.to_string()],
    )
    .map_err(db_error)?;
    Ok(())
}

#[cfg(test)]
mod tests;
