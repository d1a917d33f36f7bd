//! `/compute` (spec/OCCI.md §4.1, §4.2, §5.2, §6): the caller's VMs.
//!
//! `POST` turns a COMPUTE document into a VM template — the instance
//! type's `CPU`/`VCPU`/`MEMORY` and template fragment, `INSTANCE_TYPE`
//! (kept so it is shown back), one `DISK` per image, swap or fs disk, one
//! `NIC` per network, `CONTEXT` — and creates the VM through the core.
//! `GET` shows `STATE` as the VM's upper-case dispatch state; `PUT STATE`
//! is a VM action (§6.2); `DELETE` finalizes.
//!
//! libcloud's quirk (§4.1): it asks for the network's own address as the
//! NIC's IP. A requested IP that is the network's address, outside what
//! it hands out, or already leased is dropped (with a warning) so that
//! any free address is leased instead of failing the POST.
//!
//! May use: `super`, `crate::api::common`, `crate::core`,
//! `crate::template`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};

use super::error::OcciError;
use super::xml::{
    invalid_image, ComputeCreate, ComputeDoc, ComputeUpdate, DiskDoc, DiskRequest, DiskSaveAs,
    DiskSource, Element, NicDoc, NicRequest, PoolEntry, PoolKind,
};
use super::{created, deleted, read_body, xml, Ctx, Reply};
use crate::api::common::{blocking_as, AppState, InstanceType};
use crate::core::vm::state::State;
use crate::core::vm::{Action, Filter, Vm, SAVE_AS};
use crate::core::vnet::Addresses;
use crate::core::{Caller, Core, Error, Kind};
use crate::template::{Template, Value, Vector};

/// The file system of an `FS` disk that names none (OpenNebula's
/// `FS_FORMAT` default).
const DEFAULT_FS_FORMAT: &str = "ext3";

/// OpenNebula 2.2's `custom` instance type: `CPU` and `MEMORY` come from
/// the request, these when it gives none.
const CUSTOM: (&str, f64, u64) = ("custom", 1.0, 128);

pub(super) fn scope() -> actix_web::Scope {
    crud_scope!("/compute", list, create, show, update, delete)
}

// ---------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------

/// The COMPUTE document of a VM.
fn doc(ctx: &Ctx, vm: &Vm) -> ComputeDoc {
    let template = &vm.template;
    let disks = template
        .vectors("DISK")
        .enumerate()
        .map(|(i, disk)| disk_doc(ctx, i, disk))
        .collect();
    let nics = template
        .vectors("NIC")
        .filter_map(|nic| {
            let network = value(nic, "NETWORK_ID")?.parse().ok()?;
            Some(NicDoc {
                network,
                href: ctx.hrefs.network(network),
                name: value(nic, "NETWORK").unwrap_or_default().to_string(),
                ip: value(nic, "IP").map(str::to_string),
                mac: value(nic, "MAC").map(str::to_string),
            })
        })
        .collect();
    let context = template
        .vector("CONTEXT")
        .map(|c| {
            c.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    ComputeDoc {
        href: ctx.hrefs.compute(vm.id),
        id: vm.id,
        name: vm.name.clone(),
        cpu: vm.attribute("CPU").and_then(|c| c.parse().ok()),
        memory_mb: vm.attribute("MEMORY").and_then(|m| m.parse().ok()),
        instance_type: vm.attribute("INSTANCE_TYPE").map(str::to_string),
        state: occi_state(vm.state),
        lcm_state: (vm.state == State::Active).then(|| vm.lcm.name()),
        disks,
        nics,
        context,
        volatile_href: ctx.hrefs.no_storage(),
    }
}

/// One disk as the COMPUTE shows it: an image disk, a swap or fs disk, or
/// a disk of the admin's `SOURCE` (shown like a volatile disk: no image).
fn disk_doc(ctx: &Ctx, position: usize, disk: &Vector) -> DiskDoc {
    let index = value(disk, "DISK_ID")
        .and_then(|i| i.parse().ok())
        .unwrap_or(position as u64);
    let kind = value(disk, "TYPE").unwrap_or("disk").to_ascii_lowercase();
    let size = value(disk, "SIZE")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let image = value(disk, "IMAGE_ID").and_then(|i| i.parse::<u64>().ok());
    let source = match (image, kind.as_str()) {
        (Some(id), _) => DiskSource::Image {
            id,
            href: ctx.hrefs.storage(id),
            name: value(disk, "IMAGE").unwrap_or_default().to_string(),
            kind: if kind == "cdrom" { "CDROM" } else { "DISK" },
        },
        (None, "swap") => DiskSource::Swap { size_mb: size },
        (None, "fs") => DiskSource::Fs {
            size_mb: size,
            format: value(disk, "FORMAT")
                .unwrap_or(DEFAULT_FS_FORMAT)
                .to_string(),
        },
        (None, _) => DiskSource::Other,
    };
    DiskDoc {
        index,
        source,
        target: value(disk, "TARGET").map(str::to_string),
        save_as: value(disk, SAVE_AS)
            .and_then(|i| i.parse().ok())
            .map(|id| ctx.hrefs.storage(id)),
    }
}

/// The OCCI `STATE` of a dispatch state (spec/OCCI.md §6.1): its
/// upper-case name; every LCM sub-state of ACTIVE is `ACTIVE`.
fn occi_state(state: State) -> &'static str {
    state.name()
}

/// A vector key's value, trimmed; `None` if absent or empty.
fn value<'v>(vector: &'v Vector, key: &str) -> Option<&'v str> {
    vector.get(key).map(str::trim).filter(|v| !v.is_empty())
}

// ---------------------------------------------------------------------
// PUT STATE
// ---------------------------------------------------------------------

/// What a `PUT` asks of a VM (spec/OCCI.md §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wish {
    /// The state it is in already: a no-op (3.2's behaviour).
    Nothing,
    /// A VM action.
    Act(Action),
}

/// Reads a `STATE` word (any case) for a VM now in `current`: OpenNebula's
/// words, the current state's own name, and the OCCI-spec aliases
/// (`stop`, `suspend`, `start`, `restart`). `None`: not a state word.
fn wish(word: &str, current: State) -> Option<Wish> {
    let word = word.trim().to_ascii_lowercase();
    if word.eq_ignore_ascii_case(current.name()) {
        return Some(Wish::Nothing);
    }
    let action = match word.as_str() {
        "stopped" | "stop" => Action::Stop,
        "suspended" | "suspend" => Action::Suspend,
        "resume" | "start" => Action::Resume,
        "cancel" => Action::Cancel,
        "shutdown" => Action::Shutdown,
        "done" => Action::Delete,
        "reboot" | "restart" => Action::Reboot,
        _ => return None,
    };
    Some(Wish::Act(action))
}

// ---------------------------------------------------------------------
// POST: the VM template
// ---------------------------------------------------------------------

/// The instance type a request names: a configured one, or OpenNebula
/// 2.2's `custom` with the request's `CPU` and `MEMORY`. 400 "Bad instance
/// type" otherwise (1.4's text).
fn instance_type(
    types: &[InstanceType],
    request: &ComputeCreate,
) -> Result<InstanceType, OcciError> {
    let name = request
        .instance_type
        .as_deref()
        .ok_or_else(|| OcciError::bad("Bad instance type: INSTANCE_TYPE is missing"))?;
    let (custom, default_cpu, default_memory) = CUSTOM;
    let mut chosen = match types.iter().find(|t| t.name == name) {
        Some(t) => t.clone(),
        None if name == custom => InstanceType {
            name: custom.to_string(),
            cpu: default_cpu,
            vcpu: None,
            memory_mb: default_memory,
            template: None,
        },
        None => {
            let known: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
            return Err(OcciError::bad(format!(
                "Bad instance type: {name} (one of {})",
                known.join(", ")
            )));
        }
    };
    if chosen.name == custom {
        chosen.cpu = request.cpu.unwrap_or(chosen.cpu);
        chosen.memory_mb = request.memory_mb.unwrap_or(chosen.memory_mb);
    }
    Ok(chosen)
}

/// The VM template of a checked request (spec/OCCI.md §8.1).
fn vm_template(
    request: &ComputeCreate,
    size: &InstanceType,
    nics: &[NicRequest],
) -> Result<Template, OcciError> {
    let mut template = Template::new();
    if let Some(name) = &request.name {
        template.set("NAME", name.clone());
    }
    template.set("CPU", format!("{}", size.cpu));
    if let Some(vcpu) = size.vcpu {
        template.set("VCPU", vcpu.to_string());
    }
    template.set("MEMORY", size.memory_mb.to_string());
    template.set("INSTANCE_TYPE", size.name.clone());
    for disk in &request.disks {
        let mut vector = Vector::new();
        let target = match disk {
            DiskRequest::Image { image, target } => {
                vector.set("IMAGE_ID", image.to_string());
                target
            }
            DiskRequest::Swap { size_mb, target } => {
                vector.set("TYPE", "swap");
                vector.set("SIZE", size_mb.to_string());
                target
            }
            DiskRequest::Fs {
                size_mb,
                format,
                target,
            } => {
                vector.set("TYPE", "fs");
                vector.set("SIZE", size_mb.to_string());
                vector.set("FORMAT", format.as_deref().unwrap_or(DEFAULT_FS_FORMAT));
                target
            }
        };
        if let Some(target) = target {
            vector.set("TARGET", target.clone());
        }
        template.push("DISK", Value::Vector(vector));
    }
    for nic in nics {
        let mut vector = Vector::new();
        vector.set("NETWORK_ID", nic.network.to_string());
        if let Some(ip) = nic.ip {
            vector.set("IP", ip.to_string());
        }
        template.push("NIC", Value::Vector(vector));
    }
    if !request.context.is_empty() {
        let mut context = Vector::new();
        for (name, value) in &request.context {
            context.set(name, value.clone());
        }
        template.push("CONTEXT", Value::Vector(context));
    }
    if let Some(fragment) = &size.template {
        merge_fragment(&mut template, fragment, &size.name)?;
    }
    Ok(template)
}

/// Adds the instance type's template fragment: its vectors (an `OS`, more
/// `DISK`s...) are appended; its single values fill what the request and
/// the type's capacity left unset.
fn merge_fragment(template: &mut Template, fragment: &str, name: &str) -> Result<(), OcciError> {
    let fragment = Template::parse(fragment).map_err(|e| {
        Error::Internal(format!(
            "the TEMPLATE of instance type {name} does not parse: {e}"
        ))
    })?;
    for attribute in fragment.attributes() {
        match &attribute.value {
            Value::Single(text) => {
                if template.get(&attribute.name).is_none() {
                    template.set(&attribute.name, text.clone());
                }
            }
            Value::Vector(_) => template.push(&attribute.name, attribute.value.clone()),
        }
    }
    Ok(())
}

/// Checks the images a request names with the caller's eyes: unknown →
/// 400 "Invalid image (N) referred"; someone else's private image → 403.
fn check_images(core: &Core, caller: &Caller, disks: &[DiskRequest]) -> Result<(), OcciError> {
    for disk in disks {
        if let DiskRequest::Image { image, .. } = disk {
            match core.images().show(caller, &image.to_string()) {
                Ok(_) => {}
                Err(Error::NotFound { .. }) => return Err(invalid_image(image)),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Checks the networks a request names, and drops requested IPs the
/// network cannot give (libcloud's quirk, module header). An unknown
/// network is 400 "Invalid network referred". A network the caller may
/// use but not see (oneadmin's) is left to the core to decide.
fn check_networks(
    core: &Core,
    caller: &Caller,
    nics: &[NicRequest],
) -> Result<Vec<NicRequest>, OcciError> {
    let mut checked = Vec::with_capacity(nics.len());
    for nic in nics {
        let mut nic = nic.clone();
        match core.vnets().show(caller, &nic.network.to_string()) {
            Ok(info) => {
                if let Some(ip) = nic.ip {
                    let leasable = match &info.network.addresses {
                        Addresses::Ranged(range) => {
                            ip != range.address && range.first <= ip && ip <= range.last
                        }
                        Addresses::Fixed(leases) => leases.iter().any(|l| l.ip == ip),
                    } && !info.leases.iter().any(|l| l.ip == ip)
                        && !checked
                            .iter()
                            .any(|c: &NicRequest| c.network == nic.network && c.ip == Some(ip));
                    if !leasable {
                        tracing::warn!(
                            "OCCI: network {} cannot lease the requested {ip}; leasing any free address",
                            info.network.id
                        );
                        nic.ip = None;
                    }
                }
            }
            Err(Error::NotFound { .. }) => {
                return Err(OcciError::bad(format!(
                    "Invalid network referred: network {} not found",
                    nic.network
                )))
            }
            Err(Error::Forbidden { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        checked.push(nic);
    }
    Ok(checked)
}

/// What the core's refusals of a VM template mean in 1.4's words.
fn creation_error(e: Error) -> OcciError {
    match e {
        Error::Invalid { field, reason } if field.starts_with("DISK/IMAGE") => {
            OcciError::bad(format!("Invalid image referred: {reason}"))
        }
        Error::Invalid { field, reason } if field.starts_with("NIC/NETWORK") => {
            OcciError::bad(format!("Invalid network referred: {reason}"))
        }
        other => other.into(),
    }
}

// ---------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    // spec/OCCI.md §2.2: the caller's own VMs, without DONE ones, for
    // oneadmin too; each entry read from its VM in place, none cloned.
    let entries = state
        .core
        .vms()
        .list_map(&ctx.caller, Filter::Mine, |vm| PoolEntry {
            href: ctx.hrefs.compute(vm.id),
            name: vm.name.clone(),
        })?;
    Ok(ctx.pool_reply(PoolKind::Compute, entries))
}

async fn create(req: HttpRequest, state: web::Data<AppState>, body: web::Payload) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let body = read_body(&req, body, state.body_limit).await?;
    let request = ComputeCreate::parse(&Element::parse(&body)?)?;
    let size = instance_type(&state.occi.instance_types, &request)?;
    check_images(&state.core, &ctx.caller, &request.disks)?;
    let nics = check_networks(&state.core, &ctx.caller, &request.nics)?;
    let template = vm_template(&request, &size, &nics)?;
    let vm = blocking_as(&state.core, &ctx.caller, move |core, caller| {
        core.vms().create_from(caller, template)
    })
    .await
    .map_err(creation_error)?;
    let doc = doc(&ctx, &vm);
    Ok(created(&doc.href, doc.render(ctx.dialect(request.shape))))
}

async fn show(req: HttpRequest, state: web::Data<AppState>, id: web::Path<u64>) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let vm = state.core.vms().show(&ctx.caller, *id)?;
    Ok(xml(
        StatusCode::OK,
        doc(&ctx, &vm).render(ctx.dialect(None)),
    ))
}

/// `PUT /compute/{id}`: 202 with the VM re-read after the action (its
/// `STATE` usually not yet changed: clients poll), 200 when it asks for
/// the state the VM is in.
async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<u64>,
    body: web::Payload,
) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let id = *id;
    let body = read_body(&req, body, state.body_limit).await?;
    let update = ComputeUpdate::parse(&Element::parse(&body)?)?;
    let dialect = ctx.dialect(update.shape);
    let vm = state.core.vms().show(&ctx.caller, id)?;
    if let Some(save) = update.save_as.first() {
        if update.state.is_some() || update.save_as.len() > 1 {
            return Err(OcciError::bad(
                "SAVE_AS goes alone: one disk, no STATE change in the same request",
            ));
        }
        let disk = save_as_disk(&vm, save)?;
        let name = save.name.clone();
        let (vm, _) = blocking_as(&state.core, &ctx.caller, move |core, caller| {
            core.vms().save_disk_as(caller, id, disk, &name)
        })
        .await?;
        return Ok(xml(StatusCode::ACCEPTED, doc(&ctx, &vm).render(dialect)));
    }
    let word = update
        .state
        .as_deref()
        .ok_or_else(|| OcciError::bad("State not defined in the OCCI XML"))?;
    let action = match wish(word, vm.state) {
        None => return Err(OcciError::bad(format!("Invalid state: {word}"))),
        Some(Wish::Nothing) => {
            return Ok(xml(StatusCode::OK, doc(&ctx, &vm).render(dialect)));
        }
        Some(Wish::Act(action)) => action,
    };
    let vm = blocking_as(&state.core, &ctx.caller, move |core, caller| {
        core.vms().action(caller, id, action, None)
    })
    .await?;
    Ok(xml(StatusCode::ACCEPTED, doc(&ctx, &vm).render(dialect)))
}

/// The index of the VM disk a `SAVE_AS` names: the disk made from the
/// image of its `STORAGE href` when it has one (libcloud 3.0 sends that
/// image's id as `DISK@id`, spec/OCCI.md §4.2), else `DISK@id`.
fn save_as_disk(vm: &Vm, save: &DiskSaveAs) -> Result<usize, OcciError> {
    let Some(image) = save.image else {
        return save
            .disk_id
            .trim()
            .parse()
            .map_err(|_| OcciError::bad(format!("Invalid disk id: {}", save.disk_id)));
    };
    vm.template
        .vectors("DISK")
        .position(|d| value(d, "IMAGE_ID").and_then(|i| i.parse().ok()) == Some(image))
        .ok_or_else(|| OcciError::bad(format!("No disk of VM {} uses image {image}", vm.id)))
}

/// `DELETE /compute/{id}`: finalize. A VM already DONE is gone for its
/// user: deleting it again succeeds.
async fn delete(req: HttpRequest, state: web::Data<AppState>, id: web::Path<u64>) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let id = *id;
    let vm = state.core.vms().show(&ctx.caller, id)?;
    if vm.state != State::Done {
        match blocking_as(&state.core, &ctx.caller, move |core, caller| {
            core.vms().action(caller, id, Action::Delete, None)
        })
        .await
        {
            Ok(_) => {}
            // It reached DONE in between.
            Err(Error::InvalidState { kind: Kind::Vm, .. })
                if state
                    .core
                    .vms()
                    .get(id)
                    .is_ok_and(|vm| vm.state == State::Done) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(deleted(ctx.dialect(None)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::OcciSettings;

    fn parse(xml: &str) -> ComputeCreate {
        ComputeCreate::parse(&Element::parse(xml.as_bytes()).expect("parses")).expect("valid")
    }

    #[test]
    fn state_words_map_to_actions_in_any_case() {
        for (word, action) in [
            ("stopped", Action::Stop),
            ("STOPPED", Action::Stop),
            ("stop", Action::Stop),
            ("suspended", Action::Suspend),
            ("SUSPENDED", Action::Suspend),
            ("resume", Action::Resume),
            ("RESUME", Action::Resume),
            ("start", Action::Resume),
            ("cancel", Action::Cancel),
            ("SHUTDOWN", Action::Shutdown),
            ("done", Action::Delete),
            ("DONE", Action::Delete),
            ("REBOOT", Action::Reboot),
            ("restart", Action::Reboot),
        ] {
            assert_eq!(wish(word, State::Active), Some(Wish::Act(action)), "{word}");
        }
        assert_eq!(wish("running", State::Active), None);
        assert_eq!(wish("explode", State::Active), None);
    }

    #[test]
    fn the_current_state_is_a_no_op() {
        assert_eq!(wish("ACTIVE", State::Active), Some(Wish::Nothing));
        assert_eq!(wish("stopped", State::Stopped), Some(Wish::Nothing));
        assert_eq!(wish("pending", State::Pending), Some(Wish::Nothing));
        assert_eq!(wish("ACTIVE", State::Pending), None);
    }

    #[test]
    fn every_vm_state_renders_as_one_of_the_eight_names() {
        for state in State::ALL {
            let name = occi_state(state);
            assert!(
                [
                    "INIT",
                    "PENDING",
                    "HOLD",
                    "ACTIVE",
                    "STOPPED",
                    "SUSPENDED",
                    "DONE",
                    "FAILED"
                ]
                .contains(&name),
                "{state:?} → {name}"
            );
        }
    }

    #[test]
    fn instance_types_come_from_the_config_or_are_custom() {
        let types = OcciSettings::default().instance_types;
        let small = instance_type(
            &types,
            &parse("<COMPUTE><INSTANCE_TYPE>small</INSTANCE_TYPE></COMPUTE>"),
        )
        .expect("known");
        assert_eq!((small.cpu, small.memory_mb), (1.0, 1024));
        let custom = instance_type(
            &types,
            &parse("<COMPUTE><INSTANCE_TYPE>custom</INSTANCE_TYPE><MEMORY>256</MEMORY></COMPUTE>"),
        )
        .expect("custom");
        assert_eq!((custom.cpu, custom.memory_mb), (1.0, 256));
        // CPU/MEMORY of the body do not resize a configured type.
        let large = instance_type(
            &types,
            &parse("<COMPUTE><INSTANCE_TYPE>large</INSTANCE_TYPE><MEMORY>1</MEMORY></COMPUTE>"),
        )
        .expect("known");
        assert_eq!(large.memory_mb, 8192);
        for xml in [
            "<COMPUTE/>",
            "<COMPUTE><INSTANCE_TYPE>huge</INSTANCE_TYPE></COMPUTE>",
        ] {
            let Err(OcciError::BadRequest(message)) = instance_type(&types, &parse(xml)) else {
                panic!("{xml} accepted");
            };
            assert!(message.starts_with("Bad instance type"), "{message}");
        }
    }

    #[test]
    fn the_seed_compute_becomes_a_vm_template() {
        let request = parse(
            r#"<COMPUTE><NAME>Web Server</NAME><INSTANCE_TYPE>small</INSTANCE_TYPE>
               <DISKS><DISK image="3" dev="sda1"/><SWAP size="1024" dev="sda2"/><FS size="512" dev="sda3"/></DISKS>
               <NETWORK><NIC network="1" ip="192.168.0.10"/><NIC network="0"/></NETWORK>
               <CONTEXT><HOSTNAME>web</HOSTNAME></CONTEXT></COMPUTE>"#,
        );
        let mut size =
            instance_type(&OcciSettings::default().instance_types, &request).expect("small");
        size.template =
            Some("OS = [ KERNEL = /vmlinuz ]\nCPU = 9\nGRAPHICS = [ TYPE = vnc ]\n".into());
        let template = vm_template(&request, &size, &request.nics).expect("builds");
        let reparsed = Template::parse(&template.to_string()).expect("prints a valid template");
        assert_eq!(reparsed, template);
        assert_eq!(template.get("NAME"), Some("Web Server"));
        assert_eq!(
            template.get("CPU"),
            Some("1"),
            "the type's CPU, not the fragment's"
        );
        assert_eq!(template.get("MEMORY"), Some("1024"));
        assert_eq!(template.get("INSTANCE_TYPE"), Some("small"));
        let disks: Vec<&Vector> = template.vectors("DISK").collect();
        assert_eq!(disks.len(), 3);
        assert_eq!(disks[0].get("IMAGE_ID"), Some("3"));
        assert_eq!(disks[0].get("TARGET"), Some("sda1"));
        assert_eq!(disks[1].get("TYPE"), Some("swap"));
        assert_eq!(disks[1].get("SIZE"), Some("1024"));
        assert_eq!(disks[2].get("FORMAT"), Some("ext3"), "the default format");
        let nics: Vec<&Vector> = template.vectors("NIC").collect();
        assert_eq!(nics[0].get("NETWORK_ID"), Some("1"));
        assert_eq!(nics[0].get("IP"), Some("192.168.0.10"));
        assert_eq!(nics[1].get("NETWORK_ID"), Some("0"));
        assert_eq!(nics[1].get("IP"), None);
        assert_eq!(
            template.vector("CONTEXT").and_then(|c| c.get("HOSTNAME")),
            Some("web")
        );
        assert_eq!(
            template.vector("OS").and_then(|o| o.get("KERNEL")),
            Some("/vmlinuz")
        );
        assert!(template.vector("GRAPHICS").is_some());
        // No NAME: the core names it one-<id>.
        let unnamed = parse("<COMPUTE><NAME/><INSTANCE_TYPE>small</INSTANCE_TYPE></COMPUTE>");
        let template = vm_template(&unnamed, &size, &[]).expect("builds");
        assert_eq!(template.get("NAME"), None);
    }

    #[test]
    fn the_core_s_refusals_keep_1_4_s_words() {
        let image = creation_error(Error::invalid("DISK/IMAGE", "image 9 not found"));
        assert_eq!(
            image.to_string(),
            "Invalid image referred: image 9 not found"
        );
        let network = creation_error(Error::invalid("NIC/NETWORK", "network 9 not found"));
        assert_eq!(
            network.to_string(),
            "Invalid network referred: network 9 not found"
        );
        let other = creation_error(Error::invalid("MEMORY", "too much"));
        assert_eq!(other.to_string(), "MEMORY: too much");
    }
}
