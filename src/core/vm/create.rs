//! A VM's template at creation: [`check`] validates every section of the
//! reference guide's VM definition (NAME, MEMORY, CPU, VCPU, OS, DISK, NIC,
//! INPUT, GRAPHICS, REQUIREMENTS, RANK, CONTEXT, RAW) before anything is
//! planned, and [`rewrite`] turns the checked template into the stored one
//! (spec/CORE.md §4.5, §4.6, §5.1 "attributes the core itself adds",
//! §5.2): `VMID`, default `NAME`, `DISK`s resolved against the image
//! repository, `NIC`s leased, `CONTEXT` and `REQUIREMENTS` substituted.
//!
//! Errors are [`Error::Invalid`] naming the attribute (`DISK/SIZE`) and
//! saying why; leases and images refuse with their own errors (a taken IP
//! is a `Conflict`, a network of someone else a `Forbidden`).
//!
//! May use: `crate::template` and the rest of `crate::core`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::record::Reservation;
use super::saveas::{SAVE_AS, SAVE_AS_SOURCE};
use crate::core::caller::Caller;
use crate::core::context::{self, ObjectKey, ObjectLookup, VmLookup, VmResolver};
use crate::core::image::{ImageChanges, ImagePool, ImageType};
use crate::core::vnet::{Lease, LeaseRequest, VnetPool};
use crate::core::writer::WriteGuard;
use crate::core::{Error, Kind, Result, Settings};
use crate::template::{substitute, Attribute, Rank, Requirements, Template, Value, Vector};

/// The largest `MEMORY` taken, in MB (16 TiB): reservations are kept in KB
/// in 64-bit counters, and no host is larger.
const MAX_MEMORY_MB: u64 = 16 << 20;

/// The largest `CPU` taken, in cores.
const MAX_CPU: f64 = 100_000.0;

/// Checks a template as its creator wrote it; answers what the VM will
/// reserve on its host. Pure. `caller` matters for `DISK/SOURCE`: naming
/// a front-end file is reading it with the server's rights, which only
/// oneadmin may (others register an image).
pub(super) fn check(template: &Template, caller: &Caller) -> Result<Reservation> {
    if let Some(name) = single(template, "NAME")? {
        check_name(name)?;
    }
    let memory = match single(template, "MEMORY")? {
        None => None,
        Some(text) => Some(whole("MEMORY", text, 0, MAX_MEMORY_MB, "megabytes")?),
    };
    let cpu = match single(template, "CPU")? {
        None => None,
        Some(text) => Some(cpu_share(text)?),
    };
    if let Some(text) = single(template, "VCPU")? {
        whole("VCPU", text, 1, 1024, "virtual CPUs")?;
    }
    for os in vectors(template, "OS")? {
        check_os(os)?;
    }
    check_disks(template, caller)?;
    for nic in vectors(template, "NIC")? {
        check_nic(nic)?;
    }
    for input in vectors(template, "INPUT")? {
        one_of("INPUT/TYPE", input.get("TYPE"), &["mouse", "tablet"])?;
        one_of("INPUT/BUS", input.get("BUS"), &["usb", "ps2", "xen"])?;
    }
    for graphics in vectors(template, "GRAPHICS")? {
        check_graphics(graphics)?;
    }
    // REQUIREMENTS and RANK are parsed after substitution ([`rewrite`]);
    // here only their shape.
    single(template, "REQUIREMENTS")?;
    if let Some(rank) = single(template, "RANK")? {
        Rank::parse(rank).map_err(|e| Error::invalid("RANK", format!("does not parse: {e}")))?;
    }
    vectors(template, context::CONTEXT)?;
    for raw in vectors(template, "RAW")? {
        match raw.get("TYPE").map(str::trim) {
            Some(t) if is_word(t) => {}
            Some(t) => {
                return Err(Error::invalid(
                    "RAW/TYPE",
                    format!("{t:?} is not a hypervisor name"),
                ))
            }
            None => {
                return Err(Error::invalid(
                    "RAW/TYPE",
                    "missing: the hypervisor the DATA is for (kvm)",
                ))
            }
        }
        if raw.get("DATA").map_or(true, |d| d.trim().is_empty()) {
            return Err(Error::invalid(
                "RAW/DATA",
                "missing: the text to pass to the hypervisor",
            ));
        }
    }
    // CORE.md §3.4: MEMORY missing or 0, or CPU missing, reserves nothing.
    Ok(match (memory, cpu) {
        (Some(memory), Some(cpu)) if memory > 0 => Reservation {
            cpu,
            mem_kb: i64::try_from(memory * 1024).unwrap_or(i64::MAX),
        },
        _ => Reservation::default(),
    })
}

/// What creating a VM takes from the other pools, planned with the
/// rewritten template: written in the creation's transaction, applied
/// after it.
pub(super) struct Taken {
    /// The leases of its NICs, in NIC order.
    pub leases: Vec<Lease>,
    /// The images its DISKs use.
    pub images: ImageChanges,
}

/// The other pools and settings [`rewrite`] reads.
pub(super) struct Pools<'a> {
    pub vnets: &'a VnetPool,
    pub images: &'a ImagePool,
    pub settings: &'a Settings,
    pub others: &'a dyn VmLookup,
}

/// Rewrites a checked template for VM `id` of `owner` (spec/CORE.md §4.5,
/// §4.6, §5.2), planning its leases and image uses under `guard`. Pure
/// apart from reading the pools: nothing is taken until the caller writes
/// and applies [`Taken`].
pub(super) fn rewrite(
    guard: &WriteGuard<'_>,
    id: u64,
    owner: &Caller,
    template: &mut Template,
    pools: &Pools<'_>,
) -> Result<Taken> {
    template.set("VMID", id.to_string());
    let named = template.get("NAME").is_some_and(|n| !n.trim().is_empty());
    if named {
        let name = template.get("NAME").unwrap_or_default().trim().to_string();
        template.set("NAME", name);
    } else {
        template.set("NAME", format!("one-{id}"));
    }
    graphics_port(template, id, pools.settings.vnc_base_port);
    let images = resolve_disks(template, owner, pools.images)?;
    let leases = lease_nics(guard, id, owner, template, pools.vnets)?;
    let objects = PoolObjects {
        vnets: pools.vnets,
        images: pools.images,
    };
    context::substitute_context(template, id, owner, pools.others, &objects, pools.settings)?;
    if let Some(text) = template.get("REQUIREMENTS").map(str::to_owned) {
        let resolver = VmResolver {
            id,
            uid: owner.uid,
            uname: &owner.name,
            template,
            viewer: owner,
            others: pools.others,
            objects: &objects,
        };
        let resolved = substitute(&text, &resolver)
            .map_err(|e| Error::invalid("REQUIREMENTS", format!("at {e}")))?;
        Requirements::parse(&resolved)
            .map_err(|e| Error::invalid("REQUIREMENTS", format!("does not parse: {e}")))?;
        template.set("REQUIREMENTS", resolved);
    }
    Ok(Taken { leases, images })
}

/// Networks and images for `$NETWORK[...]` and `$IMAGE[...]`
/// (spec/CORE.md §5.2), read from the pools: the VM pool's answer to
/// [`ObjectLookup`], at creation and for hooks.
pub(super) struct PoolObjects<'a> {
    pub vnets: &'a VnetPool,
    pub images: &'a ImagePool,
}

impl ObjectLookup for PoolObjects<'_> {
    /// The network as `show` finds it for the owner: the same name rule as
    /// a NIC's `NETWORK` (the owner's own first, then the ones it may see;
    /// an ambiguous name is nothing), visible to its owner, to everybody
    /// when public, to oneadmin always. Its normalised template plus `ID`,
    /// `UID`, `NAME`, `BRIDGE`.
    fn network(&self, owner: u64, key: ObjectKey<'_>) -> Option<Template> {
        let network = self
            .vnets
            .show(&as_user(owner), &key_text(key)?)
            .ok()?
            .network;
        let mut attributes = network.template;
        attributes.set("ID", network.id.to_string());
        attributes.set("UID", network.uid.to_string());
        attributes.set("NAME", network.name);
        attributes.set("BRIDGE", network.bridge);
        Some(attributes)
    }

    /// The image as `show` finds it for the owner (the rule of a DISK's
    /// `IMAGE`; owner, public, or oneadmin): its template plus `ID`, `UID`,
    /// `NAME`, `TYPE`, `STATE`, `SIZE` (MB), `PUBLIC`, `PERSISTENT`. Not
    /// `SOURCE`: the path in the repository is the server's business.
    fn image(&self, owner: u64, key: ObjectKey<'_>) -> Option<Template> {
        let image = self.images.show(&as_user(owner), &key_text(key)?).ok()?;
        let mut attributes = Template::new();
        for (name, value) in &image.template {
            attributes.set(name, value.clone());
        }
        let yes_no = |b: bool| if b { "YES" } else { "NO" };
        attributes.set("ID", image.id.to_string());
        attributes.set("UID", image.owner.to_string());
        attributes.set("NAME", image.name);
        attributes.set("TYPE", image.image_type.name());
        attributes.set("STATE", image.state.name());
        attributes.set("SIZE", image.size_mb.to_string());
        attributes.set("PUBLIC", yes_no(image.public));
        attributes.set("PERSISTENT", yes_no(image.persistent));
        Some(attributes)
    }
}

/// The pools' `show` takes a caller; only its uid matters there.
fn as_user(uid: u64) -> Caller {
    Caller {
        uid,
        name: String::new(),
    }
}

/// A key as the pools' `show` reads it (digits are an id). Names are never
/// all digits, so a name that is would wrongly read as an id: nothing.
fn key_text(key: ObjectKey<'_>) -> Option<String> {
    match key {
        ObjectKey::Id(id) => Some(id.to_string()),
        ObjectKey::Name(name) if name.parse::<u64>().is_ok() => None,
        ObjectKey::Name(name) => Some(name.to_owned()),
    }
}

// ---------------------------------------------------------------------
// Rewriting
// ---------------------------------------------------------------------

/// DISKs naming an image get `IMAGE`, `IMAGE_ID`, `SOURCE`, `CLONE`,
/// `SAVE`, `TYPE`, `READONLY` (CD-ROMs) and a `TARGET` from the image's
/// `DEV_PREFIX` when none was given (spec/CORE.md §4.6); every DISK gets
/// its `DISK_ID` (2.x+).
fn resolve_disks(
    template: &mut Template,
    owner: &Caller,
    images: &ImagePool,
) -> Result<ImageChanges> {
    let mut changes = ImageChanges::default();
    let mut datablocks = 0u8;
    for (i, disk) in template.vectors_mut("DISK").enumerate() {
        disk.set("DISK_ID", i.to_string());
        let key = match (value(disk, "IMAGE_ID"), value(disk, "IMAGE")) {
            (Some(id), _) => id.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => continue,
        };
        let used = images
            .plan_use(&mut changes, owner.uid, &key)
            .map_err(|e| match e {
                Error::NotFound { .. } => {
                    Error::invalid("DISK/IMAGE", format!("image {key} not found"))
                }
                other => other,
            })?;
        let image = &used.image;
        disk.set("IMAGE", image.name.clone());
        disk.set("IMAGE_ID", image.id.to_string());
        disk.set("SOURCE", used.source.display().to_string());
        let (clone, save) = if image.persistent {
            ("NO", "YES")
        } else {
            ("YES", "NO")
        };
        disk.set("CLONE", clone);
        disk.set("SAVE", save);
        let prefix = image
            .template
            .get("DEV_PREFIX")
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "hd".to_string());
        let target = match image.image_type {
            ImageType::Os => {
                disk.set("TYPE", "DISK");
                format!("{prefix}a")
            }
            ImageType::Cdrom => {
                disk.set("TYPE", "CDROM");
                disk.set("READONLY", "YES");
                format!("{prefix}c")
            }
            ImageType::Datablock => {
                disk.set("TYPE", "DISK");
                // e, f, ... (b is the context CD's, c the CD-ROM's).
                let letter = char::from(b'e' + datablocks.min(21));
                datablocks = datablocks.saturating_add(1);
                format!("{prefix}{letter}")
            }
        };
        if value(disk, "TARGET").is_none() {
            disk.set("TARGET", target);
        }
    }
    Ok(changes)
}

/// The first GRAPHICS, if it is a VNC (or SPICE) console without `PORT`,
/// gets `PORT = VNC_BASE_PORT + id` (spec/DRIVERS.md §3, OpenNebula 2.x+),
/// so that the template shows the port the domain listens on and the
/// deployment file gets it. A sum past the last TCP port is not set.
fn graphics_port(template: &mut Template, id: u64, base: u16) {
    let Some(graphics) = template.vectors_mut("GRAPHICS").next() else {
        return;
    };
    let console = value(graphics, "TYPE")
        .is_some_and(|t| t.eq_ignore_ascii_case("vnc") || t.eq_ignore_ascii_case("spice"));
    if !console || value(graphics, "PORT").is_some() {
        return;
    }
    if let Some(port) = u64::from(base).checked_add(id).filter(|p| *p <= 65535) {
        graphics.set("PORT", port.to_string());
    }
}

/// NICs naming a network get a lease, all or nothing, and are rewritten to
/// `NETWORK, NETWORK_ID, VNID, BRIDGE, IP, MAC`, keeping `TARGET`,
/// `SCRIPT` and `MODEL` (spec/CORE.md §4.5). NICs without a network are
/// left as written.
fn lease_nics(
    guard: &WriteGuard<'_>,
    id: u64,
    owner: &Caller,
    template: &mut Template,
    vnets: &VnetPool,
) -> Result<Vec<Lease>> {
    let mut requests = Vec::new();
    for nic in template.vectors("NIC") {
        if let Some(request) = LeaseRequest::from_nic(nic)? {
            requests.push(request);
        }
    }
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let leases = vnets
        .plan_leases(guard, owner.uid, &requests, id)
        .map_err(|e| match e {
            Error::NotFound {
                kind: Kind::Network,
                id,
            } => Error::invalid("NIC/NETWORK", format!("network {id} not found")),
            other => other,
        })?;
    let mut leased = leases.iter();
    for nic in template.vectors_mut("NIC") {
        if LeaseRequest::from_nic(nic)?.is_none() {
            continue;
        }
        let lease = leased
            .next()
            .ok_or_else(|| Error::Internal("a NIC got no lease".into()))?;
        let mut rewritten = Vector::new();
        for key in ["TARGET", "SCRIPT", "MODEL"] {
            if let Some(v) = value(nic, key) {
                rewritten.set(key, v.to_string());
            }
        }
        vnets.fill_nic(lease, &mut rewritten)?;
        *nic = rewritten;
    }
    Ok(leases)
}

// ---------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------

/// The single value `name`, if given; a vector there is an error.
fn single<'t>(template: &'t Template, name: &str) -> Result<Option<&'t str>> {
    match first(template, name) {
        None => Ok(None),
        Some(Value::Single(text)) => Ok(Some(text.trim())),
        Some(Value::Vector(_)) => Err(Error::invalid(
            name,
            format!("must be a single value ({name} = value), not a vector"),
        )),
    }
}

/// Every vector `name`; a single value of that name is an error.
fn vectors<'t>(template: &'t Template, name: &str) -> Result<Vec<&'t Vector>> {
    template
        .attributes()
        .iter()
        .filter(|a| a.name == name)
        .map(|a: &Attribute| match &a.value {
            Value::Vector(v) => Ok(v),
            Value::Single(_) => Err(Error::invalid(
                name,
                format!("must be a vector: {name} = [ KEY = value, ... ]"),
            )),
        })
        .collect()
}

fn first<'t>(template: &'t Template, name: &str) -> Option<&'t Value> {
    template
        .attributes()
        .iter()
        .find(|a| a.name == name)
        .map(|a| &a.value)
}

/// A vector key's value, trimmed; `None` if absent or empty.
fn value<'v>(vector: &'v Vector, key: &str) -> Option<&'v str> {
    vector.get(key).map(str::trim).filter(|v| !v.is_empty())
}

fn check_name(name: &str) -> Result<()> {
    if name.chars().count() > 128 {
        Err(Error::invalid("NAME", "must be at most 128 characters"))
    } else if name.chars().any(char::is_control) {
        Err(Error::invalid(
            "NAME",
            "must not contain control characters",
        ))
    } else {
        Ok(())
    }
}

/// A whole number in `min..=max`.
fn whole(field: &str, text: &str, min: u64, max: u64, unit: &str) -> Result<u64> {
    let n: u64 = text.parse().map_err(|_| {
        Error::invalid(
            field,
            format!("must be a whole number of {unit}, not {text:?}"),
        )
    })?;
    if n < min || n > max {
        return Err(Error::invalid(
            field,
            format!("must be between {min} and {max} {unit}, not {n}"),
        ));
    }
    Ok(n)
}

/// `CPU` (a fraction of cores, `0.5`) as the reservation's percent of one
/// core, truncated (spec/CORE.md §3.3).
fn cpu_share(text: &str) -> Result<i64> {
    let cpu: f64 = text
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite())
        .ok_or_else(|| {
            Error::invalid(
                "CPU",
                format!("must be a number of cores (0.5, 2), not {text:?}"),
            )
        })?;
    if !(0.0..=MAX_CPU).contains(&cpu) {
        return Err(Error::invalid(
            "CPU",
            format!("must be between 0 and {MAX_CPU} cores, not {text}"),
        ));
    }
    Ok((cpu * 100.0) as i64)
}

/// A value, if given, among `allowed` (any case).
fn one_of(field: &str, given: Option<&str>, allowed: &[&str]) -> Result<()> {
    match given.map(str::trim) {
        None | Some("") => Ok(()),
        Some(v) if allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) => Ok(()),
        Some(v) => Err(Error::invalid(
            field,
            format!("must be one of {}, not {v:?}", allowed.join(", ")),
        )),
    }
}

/// `yes` or `no`, any case, if given.
fn yes_no(field: &str, given: Option<&str>) -> Result<()> {
    one_of(field, given, &["yes", "no"])
}

/// A word: letters, digits, `_`, `-`, `.`; what goes unquoted on a
/// driver's command line or into a domain file.
fn is_word(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn word(field: &str, given: Option<&str>, what: &str) -> Result<()> {
    match given.map(str::trim) {
        None | Some("") => Ok(()),
        Some(v) if is_word(v) => Ok(()),
        Some(v) => Err(Error::invalid(
            field,
            format!("{v:?} is not {what} (letters, digits, '_', '-', '.')"),
        )),
    }
}

fn check_os(os: &Vector) -> Result<()> {
    if let Some(boot) = value(os, "BOOT") {
        for device in boot.split(',') {
            one_of("OS/BOOT", Some(device), &["hd", "fd", "cdrom", "network"])?;
        }
    }
    word("OS/ARCH", os.get("ARCH"), "an architecture")?;
    word("OS/ROOT", os.get("ROOT"), "a device name")?;
    for key in ["KERNEL", "INITRD", "BOOTLOADER"] {
        if let Some(path) = value(os, key) {
            if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
                return Err(Error::invalid(
                    format!("OS/{key}"),
                    format!("must be an absolute path without blanks, not {path:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// DISK types (the reference guide's, plus 3.x's `block`).
const DISK_TYPES: &[&str] = &["disk", "floppy", "cdrom", "swap", "fs", "block"];

fn check_disks(template: &Template, caller: &Caller) -> Result<()> {
    let mut targets = BTreeSet::new();
    for disk in vectors(template, "DISK")? {
        // The save-as bookkeeping names a front-end file the epilog writes
        // and an image it finishes: only `save_disk_as` may set it.
        for reserved in [SAVE_AS, SAVE_AS_SOURCE] {
            if disk.get(reserved).is_some() {
                return Err(Error::invalid(
                    format!("DISK/{reserved}"),
                    "set by saving the disk as an image, not by a template",
                ));
            }
        }
        one_of("DISK/TYPE", disk.get("TYPE"), DISK_TYPES)?;
        let kind = value(disk, "TYPE").unwrap_or("disk").to_ascii_lowercase();
        let image = value(disk, "IMAGE").is_some() || value(disk, "IMAGE_ID").is_some();
        let source = value(disk, "SOURCE");
        if let Some(id) = value(disk, "IMAGE_ID") {
            if id.parse::<u64>().is_err() {
                return Err(Error::invalid(
                    "DISK/IMAGE_ID",
                    format!("{id:?} is not an image id"),
                ));
            }
        }
        if image && source.is_some() {
            return Err(Error::invalid(
                "DISK/SOURCE",
                "give IMAGE (or IMAGE_ID) or SOURCE, not both",
            ));
        }
        let size = match value(disk, "SIZE") {
            None => None,
            Some(text) => Some(whole(
                "DISK/SIZE",
                text,
                1,
                MAX_MEMORY_MB * 64,
                "megabytes",
            )?),
        };
        match kind.as_str() {
            "swap" if size.is_none() => {
                return Err(Error::invalid(
                    "DISK/SIZE",
                    "missing: a swap disk needs its SIZE in MB",
                ));
            }
            "swap" => {}
            "fs" => {
                if size.is_none() {
                    return Err(Error::invalid(
                        "DISK/SIZE",
                        "missing: an fs disk needs its SIZE in MB",
                    ));
                }
                match value(disk, "FORMAT") {
                    None => {
                        return Err(Error::invalid(
                            "DISK/FORMAT",
                            "missing: an fs disk needs the file system to make (ext3)",
                        ))
                    }
                    Some(format) => word("DISK/FORMAT", Some(format), "a file-system type")?,
                }
            }
            _ if !image && source.is_none() => return Err(Error::invalid(
                "DISK/IMAGE",
                "missing: a disk needs IMAGE (or IMAGE_ID) or SOURCE, or TYPE swap or fs with SIZE",
            )),
            _ => {}
        }
        if let Some(source) = source {
            check_source(source, caller)?;
        }
        if let Some(target) = value(disk, "TARGET") {
            let ok = target.len() <= 16
                && target.starts_with(|c: char| c.is_ascii_lowercase())
                && target
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            if !ok {
                return Err(Error::invalid(
                    "DISK/TARGET",
                    format!("{target:?} is not a device name (hda, sdb, vda)"),
                ));
            }
            if !targets.insert(target.to_string()) {
                return Err(Error::invalid(
                    "DISK/TARGET",
                    format!("{target} is given to two disks"),
                ));
            }
        }
        yes_no("DISK/CLONE", disk.get("CLONE"))?;
        yes_no("DISK/SAVE", disk.get("SAVE"))?;
        yes_no("DISK/READONLY", disk.get("READONLY"))?;
        one_of(
            "DISK/BUS",
            disk.get("BUS"),
            &["ide", "scsi", "virtio", "xen", "usb", "sata", "sd"],
        )?;
    }
    Ok(())
}

/// `DISK/SOURCE`: a front-end path or a URL, with no blanks (it is one
/// argument of the TM scripts). Only oneadmin may name one: the TM copies
/// it with the server's rights (a path) or fetches it from inside the
/// network (a URL); other users register an image instead.
fn check_source(source: &str, caller: &Caller) -> Result<()> {
    if source.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            "DISK/SOURCE",
            format!("{source:?} must not contain blanks"),
        ));
    }
    let url = source.contains("://");
    if !url && !source.starts_with('/') {
        return Err(Error::invalid(
            "DISK/SOURCE",
            format!("{source:?} must be an absolute front-end path or a URL"),
        ));
    }
    if !caller.is_admin() {
        return Err(Error::invalid(
            "DISK/SOURCE",
            "only oneadmin may name a front-end file or URL; register it as an image and use IMAGE",
        ));
    }
    Ok(())
}

fn check_nic(nic: &Vector) -> Result<()> {
    // NETWORK_ID, IP and MAC of a NIC on a network are read (and refused)
    // the way leasing reads them.
    let on_network = LeaseRequest::from_nic(nic)?.is_some();
    if !on_network {
        if let Some(ip) = value(nic, "IP") {
            ip.parse::<Ipv4Addr>()
                .map_err(|_| Error::invalid("NIC/IP", format!("{ip:?} is not an IPv4 address")))?;
        }
        if let Some(mac) = value(nic, "MAC") {
            crate::core::vnet::lease::parse_mac("NIC/MAC", mac)?;
        }
    }
    if let Some(bridge) = value(nic, "BRIDGE") {
        let ok = bridge.len() <= 15
            && bridge
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(Error::invalid(
                "NIC/BRIDGE",
                format!("{bridge:?} is not an interface name"),
            ));
        }
    }
    word("NIC/TARGET", nic.get("TARGET"), "an interface name")?;
    word("NIC/MODEL", nic.get("MODEL"), "a NIC model")?;
    if let Some(script) = value(nic, "SCRIPT") {
        if !script.starts_with('/') || script.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "NIC/SCRIPT",
                format!("must be an absolute path without blanks, not {script:?}"),
            ));
        }
    }
    Ok(())
}

fn check_graphics(graphics: &Vector) -> Result<()> {
    one_of(
        "GRAPHICS/TYPE",
        graphics.get("TYPE"),
        &["vnc", "sdl", "spice"],
    )?;
    if let Some(listen) = value(graphics, "LISTEN") {
        listen.parse::<Ipv4Addr>().map_err(|_| {
            Error::invalid(
                "GRAPHICS/LISTEN",
                format!("{listen:?} is not an IPv4 address"),
            )
        })?;
    }
    if let Some(port) = value(graphics, "PORT") {
        whole("GRAPHICS/PORT", port, 0, 65535, "(a TCP port)")?;
    }
    word("GRAPHICS/KEYMAP", graphics.get("KEYMAP"), "a keymap")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> Caller {
        Caller {
            uid: 0,
            name: "oneadmin".into(),
        }
    }

    fn user() -> Caller {
        Caller {
            uid: 5,
            name: "alice".into(),
        }
    }

    fn checked(text: &str) -> Result<Reservation> {
        check(&Template::parse(text).expect("template"), &admin())
    }

    fn field_of(text: &str) -> String {
        match checked(text) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{text}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn reservation_is_cpu_times_100_and_memory_in_kb() {
        assert_eq!(
            checked("CPU = 0.5\nMEMORY = 512").expect("ok"),
            Reservation {
                cpu: 50,
                mem_kb: 524_288
            }
        );
        // CORE.md §3.4: nothing at all without MEMORY, with MEMORY 0, or
        // without CPU.
        for text in ["CPU = 1", "MEMORY = 0\nCPU = 1", "MEMORY = 64", ""] {
            assert!(checked(text).expect(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn the_reference_guide_example_is_valid() {
        let text = "NAME = \"web 1\"\nCPU = 0.5\nMEMORY = 512\nVCPU = 2\n\
            OS = [ KERNEL = /vmlinuz, INITRD = /initrd.img, ROOT = sda1, KERNEL_CMD = \"ro xencons=tty\", BOOT = hd ]\n\
            DISK = [ SOURCE = \"/srv/images/ttylinux.img\", TARGET = hda, CLONE = yes, SAVE = no, READONLY = no, BUS = ide ]\n\
            DISK = [ TYPE = swap, SIZE = 1024, TARGET = hdb ]\n\
            DISK = [ TYPE = fs, SIZE = 4096, FORMAT = ext3, TARGET = hdc ]\n\
            NIC = [ NETWORK = \"Public LAN\", IP = 192.168.0.5, TARGET = vnet0, MODEL = virtio ]\n\
            NIC = [ BRIDGE = br0, MAC = 00:16:3e:00:00:01, SCRIPT = /etc/qemu-ifup ]\n\
            INPUT = [ TYPE = tablet, BUS = usb ]\n\
            GRAPHICS = [ TYPE = vnc, LISTEN = 127.0.0.1, PORT = 5901, KEYMAP = en-us ]\n\
            CONTEXT = [ hostname = \"$NAME\", files = \"/srv/ctx/init.sh\", target = hdd ]\n\
            REQUIREMENTS = \"HYPERVISOR = \\\"kvm\\\" & FREECPU > 50\"\n\
            RANK = FREECPU\n\
            RAW = [ TYPE = kvm, DATA = \"<devices/>\" ]";
        checked(text).expect("valid");
    }

    #[test]
    fn every_error_names_its_attribute() {
        let cases = [
            ("NAME = [ A = 1 ]", "NAME"),
            ("MEMORY = lots", "MEMORY"),
            ("MEMORY = -1", "MEMORY"),
            ("MEMORY = [ X = 1 ]", "MEMORY"),
            ("CPU = x", "CPU"),
            ("CPU = -0.5", "CPU"),
            ("VCPU = 0", "VCPU"),
            ("OS = hd", "OS"),
            ("OS = [ BOOT = usb ]", "OS/BOOT"),
            ("OS = [ KERNEL = vmlinuz ]", "OS/KERNEL"),
            ("DISK = [ TARGET = hda ]", "DISK/IMAGE"),
            ("DISK = [ TYPE = tape, SOURCE = /a ]", "DISK/TYPE"),
            ("DISK = [ TYPE = swap ]", "DISK/SIZE"),
            ("DISK = [ TYPE = swap, SIZE = big ]", "DISK/SIZE"),
            ("DISK = [ TYPE = fs, SIZE = 10 ]", "DISK/FORMAT"),
            ("DISK = [ IMAGE = a, SOURCE = /b ]", "DISK/SOURCE"),
            ("DISK = [ IMAGE_ID = x ]", "DISK/IMAGE_ID"),
            ("DISK = [ SOURCE = relative.img ]", "DISK/SOURCE"),
            ("DISK = [ SOURCE = /a, TARGET = \"hd a\" ]", "DISK/TARGET"),
            (
                "DISK = [ SOURCE = /a, TARGET = hda ]\nDISK = [ SOURCE = /b, TARGET = hda ]",
                "DISK/TARGET",
            ),
            ("DISK = [ SOURCE = /a, CLONE = maybe ]", "DISK/CLONE"),
            ("DISK = [ SOURCE = /a, SAVE = 1 ]", "DISK/SAVE"),
            ("DISK = [ SOURCE = /a, SAVE_AS = 3 ]", "DISK/SAVE_AS"),
            (
                "DISK = [ SOURCE = /a, save_as_source = /etc/passwd ]",
                "DISK/SAVE_AS_SOURCE",
            ),
            ("DISK = [ SOURCE = /a, READONLY = y ]", "DISK/READONLY"),
            ("DISK = [ SOURCE = /a, BUS = pci ]", "DISK/BUS"),
            ("NIC = [ NETWORK = lan, IP = 10.0.0 ]", "NIC/IP"),
            ("NIC = [ NETWORK_ID = lan ]", "NIC/NETWORK_ID"),
            ("NIC = [ BRIDGE = br0, MAC = xx ]", "NIC/MAC"),
            ("NIC = [ BRIDGE = \"br 0\" ]", "NIC/BRIDGE"),
            ("NIC = [ BRIDGE = br0, SCRIPT = ifup ]", "NIC/SCRIPT"),
            ("NIC = [ BRIDGE = br0, MODEL = \"a b\" ]", "NIC/MODEL"),
            ("INPUT = [ TYPE = joystick ]", "INPUT/TYPE"),
            ("INPUT = [ TYPE = mouse, BUS = pci ]", "INPUT/BUS"),
            ("GRAPHICS = [ TYPE = rdp ]", "GRAPHICS/TYPE"),
            ("GRAPHICS = [ TYPE = vnc, PORT = 70000 ]", "GRAPHICS/PORT"),
            (
                "GRAPHICS = [ TYPE = vnc, LISTEN = anywhere ]",
                "GRAPHICS/LISTEN",
            ),
            ("REQUIREMENTS = [ A = 1 ]", "REQUIREMENTS"),
            ("RANK = \"FREECPU +\"", "RANK"),
            ("CONTEXT = hostname", "CONTEXT"),
            ("RAW = [ DATA = x ]", "RAW/TYPE"),
            ("RAW = [ TYPE = kvm ]", "RAW/DATA"),
        ];
        for (text, field) in cases {
            assert_eq!(field_of(text), field, "{text}");
        }
    }

    #[test]
    fn only_oneadmin_names_front_end_files() {
        let t = Template::parse("DISK = [ SOURCE = /etc/shadow ]").expect("t");
        assert!(check(&t, &admin()).is_ok());
        match check(&t, &user()) {
            Err(Error::Invalid { field, reason }) => {
                assert_eq!(field, "DISK/SOURCE");
                assert!(reason.contains("register it as an image"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Images and swap need no SOURCE.
        let t = Template::parse("DISK = [ IMAGE = ubuntu ]\nDISK = [ TYPE = swap, SIZE = 64 ]")
            .expect("t");
        assert!(check(&t, &user()).is_ok());
    }

    #[test]
    fn a_vnc_console_without_port_gets_the_base_plus_the_id() {
        let port = |text: &str, id: u64, base: u16| {
            let mut t = Template::parse(text).expect("t");
            graphics_port(&mut t, id, base);
            t.vectors("GRAPHICS")
                .map(|g| g.get("PORT").map(str::to_string))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            port("GRAPHICS = [ TYPE = vnc, LISTEN = 0.0.0.0 ]", 7, 5900),
            [Some("5907".to_string())]
        );
        assert_eq!(
            port("GRAPHICS = [ TYPE = VNC ]", 3, 6000),
            [Some("6003".to_string())]
        );
        assert_eq!(
            port("GRAPHICS = [ TYPE = spice ]", 3, 5900),
            [Some("5903".to_string())]
        );
        // A PORT given stays; only the first GRAPHICS counts; sdl has no
        // port; a sum past 65535 is not set.
        assert_eq!(
            port("GRAPHICS = [ TYPE = vnc, PORT = 5999 ]", 7, 5900),
            [Some("5999".to_string())]
        );
        assert_eq!(
            port(
                "GRAPHICS = [ TYPE = sdl ]\nGRAPHICS = [ TYPE = vnc ]",
                7,
                5900
            ),
            [None, None]
        );
        assert_eq!(port("GRAPHICS = [ TYPE = vnc ]", 60_000, 5900), [None]);
        assert_eq!(port("MEMORY = 64", 7, 5900), Vec::<Option<String>>::new());
    }
}
