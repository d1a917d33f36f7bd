//! Instances are VMs (spec/EC2.md §5, §6.4–6.7, §8.2): RunInstances,
//! DescribeInstances, TerminateInstances, StartInstances, StopInstances
//! and RebootInstances.
//!
//! A launch builds the VM template from the instance type (capacity, NIC
//! on the type's network, its template fragment), the image as a DISK,
//! and a CONTEXT with the user data, the key name and the public key
//! (`EC2_USER_DATA`, `EC2_KEYNAME`, `SSH_PUBLIC_KEY`); the VM records
//! `IMAGE_ID`, `INSTANCE_TYPE`, `EC2_CLIENT_TOKEN`, `EC2_KEYNAME`,
//! `EC2_RESERVATION_ID` and `EC2_LAUNCH_INDEX`, read back when it is
//! described. A `ClientToken` seen before answers the earlier launch
//! (botocore retries RunInstances with the same token).
//!
//! Actions on several instances check them all (visible, and in a state
//! the action allows) before acting on any. Another user's instance
//! answers as one that does not exist. Terminated instances stay visible
//! for `EC2_TERMINATED_VISIBLE`.
//!
//! May use: `crate::api::common`, `crate::core`, `crate::template`, `super`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::HttpResponse;
use rand::Rng;

use super::error::Ec2Error;
use super::ids::{self, parse_image, parse_instance};
use super::params::{Filter, Params};
use super::regions::ZONE;
use super::tags;
use super::xml::{
    Instance, InstanceState, InstancesResponse, Reservation, ReturnResponse, RunResponse,
    StateChange, StateChangesResponse,
};
use super::{Action, Ctx};
use crate::api::common::{blocking, blocking_as, Ec2InstanceType};
use crate::core::tag::Taggable;
use crate::core::vm::state::{LcmState, State};
use crate::core::vm::{Action as VmAction, Vm};
use crate::core::{self, Caller, Core, Kind};
use crate::template::{Template, Value, Vector};

/// Most instances one RunInstances launches; a larger `MaxCount` launches
/// this many, as AWS launches "as many as allowed".
pub const MAX_LAUNCH: u64 = 100;

/// Most instances one DescribeInstances page holds with `MaxResults`.
const MAX_RESULTS: u64 = 1000;

/// The EC2 state of a VM (§5, cloudgate's column). Never fails: a pair
/// the table does not name is `pending`.
pub fn instance_state(state: State, lcm: LcmState) -> InstanceState {
    match state {
        State::Init | State::Pending | State::Hold => InstanceState::Pending,
        State::Stopped | State::Suspended => InstanceState::Stopped,
        State::Done | State::Failed => InstanceState::Terminated,
        State::Active => match lcm {
            LcmState::LcmInit | LcmState::Prolog | LcmState::PrologResume => InstanceState::Pending,
            LcmState::Boot | LcmState::Running | LcmState::Migrate | LcmState::PrologMigrate => {
                InstanceState::Running
            }
            LcmState::SaveStop
            | LcmState::SaveSuspend
            | LcmState::SaveMigrate
            | LcmState::EpilogStop => InstanceState::Stopping,
            LcmState::Epilog | LcmState::Shutdown | LcmState::Cancel => InstanceState::ShuttingDown,
            LcmState::Failure | LcmState::Cleanup | LcmState::Unknown => InstanceState::Terminated,
        },
    }
}

fn state_of(vm: &Vm) -> InstanceState {
    instance_state(vm.state, vm.lcm)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a VM is still shown: alive, or terminated less than
/// `EC2_TERMINATED_VISIBLE` ago.
fn visible(ctx: &Ctx<'_>, vm: &Vm) -> bool {
    vm.state != State::Done || vm.etime >= done_since(ctx)
}

fn done_since(ctx: &Ctx<'_>) -> u64 {
    now().saturating_sub(ctx.state.ec2.terminated_visible.as_secs())
}

/// `InstanceId.N` as VM ids, at least one.
fn instance_ids(params: &Params) -> Result<Vec<u64>, Ec2Error> {
    let ids = params.list("InstanceId");
    if ids.is_empty() {
        return Err(Ec2Error::missing("InstanceId.1"));
    }
    ids.into_iter().map(parse_instance).collect()
}

/// The caller's VM `id` while it is shown; else `InvalidInstanceID.NotFound`
/// (also for another user's VM).
fn find(ctx: &Ctx<'_>, id: u64) -> Result<Vm, Ec2Error> {
    let vm = ctx.state.core.vms().show(&ctx.caller, id)?;
    if visible(ctx, &vm) {
        Ok(vm)
    } else {
        Err(core::Error::not_found(Kind::Vm, id).into())
    }
}

/// An instance as EC2 shows it.
fn instance(core: &Core, vm: &Vm) -> Result<Instance, Ec2Error> {
    let attr = |name: &str| vm.attribute(name).map(str::to_string);
    let image_id = attr("IMAGE_ID")
        .filter(|i| i.starts_with("ami-"))
        .or_else(|| {
            vm.template
                .vectors("DISK")
                .find_map(|d| d.get("IMAGE_ID"))
                .and_then(|id| id.trim().parse::<u64>().ok())
                .map(ids::image_id)
        })
        .unwrap_or_default();
    let ip = vm
        .template
        .vectors("NIC")
        .find_map(|n| n.get("IP"))
        .map(|ip| ip.trim().to_string())
        .unwrap_or_default();
    let tags = tags::tag_set(core, Taggable::Vm(vm.id))?;
    Ok(Instance {
        id: vm.id,
        image_id,
        state: state_of(vm),
        ip,
        key_name: attr("EC2_KEYNAME"),
        launch_index: attr("EC2_LAUNCH_INDEX")
            .and_then(|i| i.parse().ok())
            .unwrap_or(0),
        instance_type: attr("INSTANCE_TYPE").unwrap_or_default(),
        launch_time: i64::try_from(vm.stime).unwrap_or(i64::MAX),
        zone: ZONE.to_string(),
        client_token: attr("EC2_CLIENT_TOKEN"),
        reason: String::new(),
        tags,
    })
}

/// The reservation a VM belongs to: its launch's, or `default` for VMs
/// not launched through EC2.
fn reservation_of(vm: &Vm) -> String {
    vm.attribute("EC2_RESERVATION_ID")
        .unwrap_or("default")
        .to_string()
}

/// Groups instances into reservations (by launch and owner), in order of
/// their first instance.
fn reservations(
    core: &Core,
    vms: &[Vm],
    one_group: Option<&str>,
) -> Result<Vec<Reservation>, Ec2Error> {
    let mut out: Vec<Reservation> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    for vm in vms {
        let key = match one_group {
            Some(owner) => ("default".to_string(), owner.to_string()),
            None => (reservation_of(vm), vm.uname.clone()),
        };
        let i = *index.entry(key.clone()).or_insert_with(|| {
            out.push(Reservation {
                id: key.0.clone(),
                owner: key.1.clone(),
                instances: Vec::new(),
            });
            out.len() - 1
        });
        out[i].instances.push(instance(core, vm)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------
// RunInstances
// ---------------------------------------------------------------------

/// What a RunInstances asks for, parsed.
#[derive(Clone, Debug, PartialEq)]
struct Launch {
    image: u64,
    min: u64,
    max: u64,
    instance_type: Ec2InstanceType,
    user_data: Option<String>,
    key_name: Option<String>,
    client_token: Option<String>,
    tags: Vec<(String, String)>,
}

fn parse_launch(ctx: &Ctx<'_>, params: &Params) -> Result<Launch, Ec2Error> {
    let image_text = params.required("ImageId")?;
    let image = parse_image(image_text)?;
    let min = params.number("MinCount")?.unwrap_or(1);
    let max = params.number("MaxCount")?.unwrap_or(min);
    if min == 0 || max == 0 {
        return Err(Ec2Error::invalid_value(
            "MinCount and MaxCount must be at least 1",
        ));
    }
    if min > max {
        return Err(Ec2Error::invalid_value(format!(
            "MinCount ({min}) is larger than MaxCount ({max})"
        )));
    }
    if min > MAX_LAUNCH {
        return Err(Ec2Error::invalid_value(format!(
            "at most {MAX_LAUNCH} instances are launched at once; MinCount is {min}"
        )));
    }
    let settings = &ctx.state.ec2;
    let type_name = params
        .get("InstanceType")
        .filter(|t| !t.is_empty())
        .unwrap_or(&settings.default_instance_type);
    let instance_type = settings
        .instance_types
        .iter()
        .find(|t| t.size.name == type_name)
        .cloned()
        .ok_or_else(|| {
            Ec2Error::invalid_value(format!("Invalid value '{type_name}' for InstanceType"))
        })?;
    // Only the one zone, `default`: what DescribeAvailabilityZones lists,
    // in whichever region the client names (regions.rs), so libcloud's
    // `create_node(location=…)` sends it too.
    if let Some(zone) = params
        .get("Placement.AvailabilityZone")
        .filter(|z| !z.is_empty())
    {
        if zone != ZONE {
            return Err(Ec2Error::invalid_value(format!(
                "Invalid availability zone: [{zone}]"
            )));
        }
    }
    // Tags at launch (botocore's TagSpecifications) for the instances.
    let tags = tags::specified(params, "instance", tags::OtherTypes::Skip)?;
    Ok(Launch {
        image,
        min,
        max: max.min(MAX_LAUNCH),
        instance_type,
        user_data: params
            .get("UserData")
            .filter(|u| !u.is_empty())
            .map(str::to_string),
        key_name: params
            .get("KeyName")
            .filter(|k| !k.is_empty())
            .map(str::to_string),
        client_token: params
            .get("ClientToken")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        tags,
    })
}

/// The VM template of instance `index` of a launch (§8.2).
fn template(
    launch: &Launch,
    reservation: &str,
    index: u64,
    public_key: Option<&str>,
) -> core::Result<Template> {
    let size = &launch.instance_type.size;
    let mut t = match &size.template {
        Some(text) => Template::parse(text).map_err(|e| {
            core::Error::Internal(format!(
                "the template of instance type {} does not parse: {e}",
                size.name
            ))
        })?,
        None => Template::new(),
    };
    t.set("CPU", size.cpu.to_string());
    if let Some(vcpu) = size.vcpu {
        t.set("VCPU", vcpu.to_string());
    }
    t.set("MEMORY", size.memory_mb.to_string());
    let mut disk = Vector::new();
    disk.set("IMAGE_ID", launch.image.to_string());
    t.push("DISK", Value::Vector(disk));
    if let Some(network) = &launch.instance_type.network {
        let mut nic = Vector::new();
        if !network.is_empty() && network.bytes().all(|b| b.is_ascii_digit()) {
            nic.set("NETWORK_ID", network.clone());
        } else {
            nic.set("NETWORK", network.clone());
        }
        t.push("NIC", Value::Vector(nic));
    }
    let mut context: Vec<(&str, &str)> = Vec::new();
    if let Some(data) = &launch.user_data {
        context.push(("EC2_USER_DATA", data));
    }
    if let Some(key) = &launch.key_name {
        context.push(("EC2_KEYNAME", key));
    }
    if let Some(public) = public_key {
        context.push(("SSH_PUBLIC_KEY", public));
        context.push(("EC2_PUBLIC_KEY", public));
    }
    if !context.is_empty() {
        // Into the fragment's CONTEXT when it has one, else a new one.
        match t.vector_mut("CONTEXT") {
            Some(existing) => {
                for (k, v) in context {
                    existing.set(k, v);
                }
            }
            None => {
                let mut v = Vector::new();
                for (k, value) in context {
                    v.set(k, value);
                }
                t.push("CONTEXT", Value::Vector(v));
            }
        }
    }
    t.set("IMAGE_ID", ids::image_id(launch.image));
    t.set("INSTANCE_TYPE", size.name.clone());
    t.set("EC2_RESERVATION_ID", reservation);
    t.set("EC2_LAUNCH_INDEX", index.to_string());
    if let Some(token) = &launch.client_token {
        t.set("EC2_CLIENT_TOKEN", token.clone());
    }
    if let Some(key) = &launch.key_name {
        t.set("EC2_KEYNAME", key.clone());
    }
    Ok(t)
}

/// Launches `launch` (or finds the launch its token already made): the
/// VMs, in launch order. A token's check and launch are one step for
/// that (owner, token) in the VM pool (a retry racing its first attempt
/// finds it), found through the pool's index, not a scan.
fn launch_vms(core: &Core, caller: &Caller, launch: &Launch) -> core::Result<Vec<Vm>> {
    match &launch.client_token {
        Some(token) => core
            .vms()
            .launch_once(caller, token, || launch_new(core, caller, launch)),
        None => launch_new(core, caller, launch),
    }
}

/// Launches `launch`. Fewer than `MaxCount` is fine as long as
/// `MinCount` were made; else the ones made are deleted again.
fn launch_new(core: &Core, caller: &Caller, launch: &Launch) -> core::Result<Vec<Vm>> {
    let public_key = match &launch.key_name {
        Some(name) => Some(core.keypairs().show(caller, name)?.public_key),
        None => None,
    };
    let reservation = ids::reservation_id(u64::from(rand::thread_rng().gen::<u32>()));
    let mut made: Vec<Vm> = Vec::new();
    for index in 0..launch.max {
        let t = template(launch, &reservation, index, public_key.as_deref())?;
        match core.vms().create_from(caller, t) {
            Ok(vm) => made.push(vm),
            Err(e) if (made.len() as u64) >= launch.min => {
                tracing::info!(
                    "RunInstances: launched {} of {} instances: {e}",
                    made.len(),
                    launch.max
                );
                break;
            }
            Err(e) => {
                undo_launch(core, caller, &made);
                return Err(e);
            }
        }
    }
    if !launch.tags.is_empty() {
        let targets: Vec<Taggable> = made.iter().map(|vm| Taggable::Vm(vm.id)).collect();
        // The tags were checked; only the store can still refuse them.
        if let Err(e) = core.tags().create(caller, &targets, &launch.tags) {
            undo_launch(core, caller, &made);
            return Err(e);
        }
    }
    Ok(made)
}

/// Deletes the VMs of a launch that failed, so that it leaves nothing.
fn undo_launch(core: &Core, caller: &Caller, made: &[Vm]) {
    for vm in made {
        if let Err(undo) = core.vms().action(caller, vm.id, VmAction::Delete, None) {
            tracing::error!(
                vm = vm.id,
                "RunInstances: VM {} of a failed launch stays: {undo}",
                vm.id
            );
        }
    }
}

/// `RunInstances`.
pub(super) async fn run(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let launch = parse_launch(ctx, params)?;
    let core = &ctx.state.core;
    // The image must be one the caller may use; someone else's private
    // image answers as a missing one.
    core.images().show(&ctx.caller, &launch.image.to_string())?;
    if let Some(name) = &launch.key_name {
        core.keypairs().show(&ctx.caller, name)?;
    }
    if params.flag("DryRun")? {
        return Err(Ec2Error::DryRun);
    }
    let (shared, caller, request) = (ctx.state.core.clone(), ctx.caller.clone(), launch.clone());
    let vms = blocking(move || launch_vms(&shared, &caller, &request))
        .await
        .map_err(|e| match e {
            // A DISK naming an image the core cannot use reads as the AMI.
            core::Error::Invalid { field, .. } if field.starts_with("DISK") => {
                core::Error::not_found(Kind::Image, launch.image).into()
            }
            other => Ec2Error::from(other),
        })?;
    let first = vms
        .first()
        .ok_or_else(|| core::Error::Internal("a launch made no instance".into()))?;
    let reservation = Reservation {
        id: reservation_of(first),
        owner: first.uname.clone(),
        instances: vms
            .iter()
            .map(|vm| instance(core, vm))
            .collect::<Result<_, _>>()?,
    };
    Ok(ctx.reply(&RunResponse { reservation }))
}

// ---------------------------------------------------------------------
// DescribeInstances
// ---------------------------------------------------------------------

/// Whether an instance passes one filter; unknown filter names pass.
fn filter_matches(filter: &Filter, vm: &Vm, i: &Instance) -> bool {
    match filter.name.as_str() {
        "instance-id" => filter.matches(&ids::instance_id(i.id)),
        "instance-state-name" => filter.matches(i.state.name()),
        "instance-state-code" => filter.matches(&i.state.code().to_string()),
        "image-id" => filter.matches(&i.image_id),
        "instance-type" => filter.matches(&i.instance_type),
        "key-name" => i.key_name.as_deref().is_some_and(|k| filter.matches(k)),
        "reservation-id" => filter.matches(&reservation_of(vm)),
        "availability-zone" => filter.matches(&i.zone),
        "private-ip-address" | "ip-address" => filter.matches(&i.ip),
        "client-token" => i.client_token.as_deref().is_some_and(|t| filter.matches(t)),
        "owner-id" => filter.matches(&vm.uname),
        _ => tags::filter_matches(filter, &i.tags).unwrap_or(true),
    }
}

/// `DescribeInstances` with `InstanceId.N` (any unknown id fails the
/// request, which botocore's `instance_exists` waiter relies on),
/// `Filter.N`, and `MaxResults` / `NextToken` paging in id order.
pub(super) fn describe(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let core = &ctx.state.core;
    let wanted: Vec<u64> = params
        .list("InstanceId")
        .into_iter()
        .map(parse_instance)
        .collect::<Result<_, _>>()?;
    let filters = params.filters()?;
    let max = params.number("MaxResults")?;
    if max.is_some_and(|m| m == 0 || m > MAX_RESULTS) {
        return Err(Ec2Error::invalid_value(format!(
            "MaxResults must be between 1 and {MAX_RESULTS}"
        )));
    }
    let after = match params.get("NextToken").filter(|t| !t.is_empty()) {
        Some(token) => Some(
            token
                .parse::<u64>()
                .map_err(|_| Ec2Error::invalid_value("NextToken is not one this server gave"))?,
        ),
        None => None,
    };
    let mut vms: Vec<Vm> = if wanted.is_empty() {
        core.vms().list_with_done(&ctx.caller, done_since(ctx))?
    } else {
        let mut found = Vec::with_capacity(wanted.len());
        for id in &wanted {
            let vm = find(ctx, *id)?;
            if !found.iter().any(|v: &Vm| v.id == vm.id) {
                found.push(vm);
            }
        }
        found.sort_by_key(|vm| vm.id);
        found
    };
    if let Some(after) = after {
        vms.retain(|vm| vm.id > after);
    }
    let mut kept = Vec::new();
    let mut next_token = None;
    for vm in vms {
        if !filters.is_empty() {
            let i = instance(core, &vm)?;
            if !filters.iter().all(|f| filter_matches(f, &vm, &i)) {
                continue;
            }
        }
        if max.is_some_and(|m| kept.len() as u64 >= m) {
            next_token = kept.last().map(|v: &Vm| v.id.to_string());
            break;
        }
        kept.push(vm);
    }
    let legacy_owner = ctx.ns.is_legacy().then_some(ctx.caller.name.as_str());
    let mut reservations = reservations(core, &kept, legacy_owner)?;
    // econe's own tools index the first reservation without checking it
    // is there (§6.5).
    if reservations.is_empty() && ctx.ns.is_legacy() {
        reservations.push(Reservation {
            id: "default".into(),
            owner: ctx.caller.name.clone(),
            instances: Vec::new(),
        });
    }
    Ok(ctx.reply(&InstancesResponse {
        reservations,
        next_token,
    }))
}

// ---------------------------------------------------------------------
// Terminate, start, stop, reboot
// ---------------------------------------------------------------------

/// The caller's shown VMs named by `InstanceId.N`, each once, in request
/// order; all checked before any is acted on.
fn targets(ctx: &Ctx<'_>, params: &Params) -> Result<Vec<Vm>, Ec2Error> {
    let mut vms: Vec<Vm> = Vec::new();
    for id in instance_ids(params)? {
        let vm = find(ctx, id)?;
        if !vms.iter().any(|v| v.id == vm.id) {
            vms.push(vm);
        }
    }
    Ok(vms)
}

/// What an instance action does to one VM: a core action, or nothing
/// (already where the action leads).
type Plan = Option<VmAction>;

/// Refuses the action for a VM in a state it cannot take it from.
fn incorrect(vm: &Vm, action: &str) -> Ec2Error {
    core::Error::InvalidState {
        kind: Kind::Vm,
        id: vm.id.to_string(),
        state: state_of(vm).name().to_string(),
        action: action.to_string(),
    }
    .into()
}

fn running(vm: &Vm) -> bool {
    vm.state == State::Active && vm.lcm == LcmState::Running
}

/// Shown as `running` (§5) but not yet able to take a stop or a reboot:
/// booting or migrating. Such a VM is waited for (see [`SETTLE`]).
fn settling(vm: &Vm) -> bool {
    vm.state == State::Active
        && matches!(
            vm.lcm,
            LcmState::Boot | LcmState::Migrate | LcmState::PrologMigrate
        )
}

/// How long a stop or reboot waits for a VM shown as `running` to leave
/// BOOT or MIGRATE: a client that saw `running` (botocore's
/// `instance_running` waiter) expects it to take the action.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits (off the async workers) until VM `id` is no longer
/// [`settling`], or [`SETTLE`] has passed; answers it as it is then.
fn settle(core: &Core, id: u64) -> core::Result<Vm> {
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let vm = core.vms().get(id)?;
        if !settling(&vm) || std::time::Instant::now() >= deadline {
            return Ok(vm);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs the plans of an action on their VMs, in order; answers each VM's
/// state change.
async fn act(ctx: &Ctx<'_>, plans: Vec<(Vm, Plan)>) -> Result<Vec<StateChange>, Ec2Error> {
    let changes = blocking_as(&ctx.state.core, &ctx.caller, move |core, caller| {
        let mut changes = Vec::with_capacity(plans.len());
        for (vm, plan) in plans {
            let previous = state_of(&vm);
            let after = match plan {
                Some(action @ (VmAction::Stop | VmAction::Reboot)) if settling(&vm) => {
                    settle(core, vm.id)?;
                    core.vms().action(caller, vm.id, action, None)?
                }
                Some(action) => core.vms().action(caller, vm.id, action, None)?,
                None => vm,
            };
            changes.push(StateChange {
                id: after.id,
                current: state_of(&after),
                previous,
            });
        }
        Ok(changes)
    })
    .await?;
    Ok(changes)
}

/// `TerminateInstances`: a running VM is shut down (gracefully, through
/// SHUTDOWN and EPILOG to DONE); any other is deleted at once; a
/// terminated one is reported as it is (AWS is idempotent here).
pub(super) async fn terminate(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let vms = targets(ctx, params)?;
    if params.flag("DryRun")? {
        return Err(Ec2Error::DryRun);
    }
    let plans = vms
        .into_iter()
        .map(|vm| {
            let plan = if vm.state == State::Done {
                None
            } else if running(&vm) {
                Some(VmAction::Shutdown)
            } else {
                Some(VmAction::Delete)
            };
            (vm, plan)
        })
        .collect();
    let changes = act(ctx, plans).await?;
    Ok(ctx.reply(&StateChangesResponse {
        action: Action::TerminateInstances,
        changes,
    }))
}

/// `StartInstances`: a stopped (or suspended) VM is resumed; a running or
/// pending one is left as it is; any other state is refused.
pub(super) async fn start(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let vms = targets(ctx, params)?;
    let plans: Vec<(Vm, Plan)> = vms
        .into_iter()
        .map(|vm| match state_of(&vm) {
            InstanceState::Stopped => Ok((vm, Some(VmAction::Resume))),
            InstanceState::Running | InstanceState::Pending => Ok((vm, None)),
            InstanceState::ShuttingDown | InstanceState::Terminated | InstanceState::Stopping => {
                Err(incorrect(&vm, "start"))
            }
        })
        .collect::<Result<_, _>>()?;
    if params.flag("DryRun")? {
        return Err(Ec2Error::DryRun);
    }
    let changes = act(ctx, plans).await?;
    Ok(ctx.reply(&StateChangesResponse {
        action: Action::StartInstances,
        changes,
    }))
}

/// `StopInstances` (`Force` ignored): a running VM is stopped (saved to
/// the front-end); a stopped or stopping one is left as it is; any other
/// state is refused.
pub(super) async fn stop(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let vms = targets(ctx, params)?;
    let plans: Vec<(Vm, Plan)> = vms
        .into_iter()
        .map(|vm| {
            if running(&vm) || settling(&vm) {
                return Ok((vm, Some(VmAction::Stop)));
            }
            match state_of(&vm) {
                InstanceState::Stopped | InstanceState::Stopping => Ok((vm, None)),
                InstanceState::Running
                | InstanceState::Pending
                | InstanceState::ShuttingDown
                | InstanceState::Terminated => Err(incorrect(&vm, "stop")),
            }
        })
        .collect::<Result<_, _>>()?;
    if params.flag("DryRun")? {
        return Err(Ec2Error::DryRun);
    }
    let changes = act(ctx, plans).await?;
    Ok(ctx.reply(&StateChangesResponse {
        action: Action::StopInstances,
        changes,
    }))
}

/// `RebootInstances`: every VM must be running.
pub(super) async fn reboot(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let vms = targets(ctx, params)?;
    let plans: Vec<(Vm, Plan)> = vms
        .into_iter()
        .map(|vm| {
            if running(&vm) || settling(&vm) {
                Ok((vm, Some(VmAction::Reboot)))
            } else {
                Err(incorrect(&vm, "reboot"))
            }
        })
        .collect::<Result<_, _>>()?;
    if params.flag("DryRun")? {
        return Err(Ec2Error::DryRun);
    }
    act(ctx, plans).await?;
    Ok(ctx.reply(&ReturnResponse {
        action: Action::RebootInstances,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (state, LCM state) pair maps, as §5's cloudgate column says.
    #[test]
    fn state_table_of_section_5() {
        use InstanceState as I;
        let expect = |state, lcm, want: InstanceState| {
            assert_eq!(instance_state(state, lcm), want, "{state:?}/{lcm:?}");
        };
        for s in [State::Init, State::Pending, State::Hold] {
            expect(s, LcmState::LcmInit, I::Pending);
        }
        expect(State::Stopped, LcmState::LcmInit, I::Stopped);
        expect(State::Suspended, LcmState::LcmInit, I::Stopped);
        expect(State::Done, LcmState::LcmInit, I::Terminated);
        expect(State::Failed, LcmState::LcmInit, I::Terminated);
        let active = [
            (LcmState::LcmInit, I::Pending),
            (LcmState::Prolog, I::Pending),
            (LcmState::PrologResume, I::Pending),
            (LcmState::Boot, I::Running),
            (LcmState::Running, I::Running),
            (LcmState::Migrate, I::Running),
            (LcmState::PrologMigrate, I::Running),
            (LcmState::SaveStop, I::Stopping),
            (LcmState::SaveSuspend, I::Stopping),
            (LcmState::SaveMigrate, I::Stopping),
            (LcmState::EpilogStop, I::Stopping),
            (LcmState::Epilog, I::ShuttingDown),
            (LcmState::Shutdown, I::ShuttingDown),
            (LcmState::Cancel, I::ShuttingDown),
            (LcmState::Failure, I::Terminated),
            (LcmState::Cleanup, I::Terminated),
            (LcmState::Unknown, I::Terminated),
        ];
        assert_eq!(active.len(), LcmState::ALL.len());
        for (lcm, want) in active {
            expect(State::Active, lcm, want);
        }
        // Whatever pair is stored, rendering never fails.
        for s in State::ALL {
            for l in LcmState::ALL {
                let _ = instance_state(s, l).code();
            }
        }
    }
}
