//! Driver steps made concrete: a [`Job`] is one step of the life-cycle
//! table ([`Step`]) with everything its driver call needs — hosts, driver
//! names, paths, the deploy id, the TM action list — copied from the VM
//! as it stood right after the transition that started it. A job never
//! looks at the VM again, so a later transition (a delete, a resubmit and
//! a new deploy) cannot change what an earlier step does.
//!
//! Paths (spec/CORE.md §2, cloudgate's one-level layout): on a host the
//! VM's directory is `<VM_DIR>/<vid>` with `disk.<i>`, `checkpoint` and
//! `deployment.<seq>`; on the front-end `<var>/<vid>` holds `context.sh`,
//! and a stopped VM's directory goes to `<var>/<vid>/images`.
//!
//! TM action lists (spec/DRIVERS.md §5.1): prolog = per DISK `clone` (CLONE
//! absent or yes), `ln` (CLONE=no), `mkswap` (swap), `mkimage` (fs), then
//! `context` when there is a CONTEXT; epilog = `mv` of each SAVE=yes disk
//! (back to its image's SOURCE, or to the front-end VM directory) and of
//! each SAVE_AS disk (to its new image's file, `SAVE_AS_SOURCE`) then
//! `delete` of the directory; epilog_stop / prolog_resume / prolog_migrate
//! = one `mv` of the directory; epilog_delete* = one `delete`.
//!
//! May use: `crate::template` and the rest of `crate::core`.

use std::path::PathBuf;

use super::record::{History, Vm};
use super::saveas::{self, SAVE_AS_SOURCE};
use super::state::{Record, Step};
use crate::core::context;
use crate::core::ports::{
    DeployRequest, DomainRequest, HostPath, MigrateRequest, RestoreRequest, SaveRequest, ScriptEnv,
    TmAction, VmmTarget,
};
use crate::core::Settings;
use crate::template::{Template, Vector};

/// Why a job runs, which decides what its result becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The step the VM waits for: its result is the VM's next event.
    Awaited,
    /// A fire-and-forget step (delete, resubmit clean-ups): its result is
    /// only logged. `last` marks the last clean-up of its operation, whose
    /// end clears the stored clean-up list.
    Cleanup {
        /// Whether it is the operation's last clean-up step.
        last: bool,
    },
    /// A periodic poll (spec/CORE.md §1.5): its answer is a monitor event,
    /// taken only if the VM did not change state meanwhile.
    Monitor,
    /// The start-up probe of a step caught mid-way by a crash
    /// (spec/CORE.md §8.4): polls decide between success, failure and
    /// running the step again.
    Probe,
}

/// A TM transfer: the actions, and the context CD to prepare first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// The TM driver (the history record's).
    pub driver: String,
    /// The actions, in order; the context action is added when the
    /// context is prepared.
    pub actions: Vec<TmAction>,
    /// Attributes for the scripts.
    pub env: ScriptEnv,
    /// The VM's CONTEXT, to write `context.sh` from and pack into the CD
    /// at `dst` (prolog only).
    pub context: Option<ContextCd>,
}

/// The context CD of a prolog (spec/CORE.md §5.2, DRIVERS.md §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextCd {
    /// The substituted CONTEXT.
    pub context: Vector,
    /// The VM owner's uid (whose FILES rights apply).
    pub owner: u64,
    /// The front-end VM directory, where `context.sh` is written.
    pub fe_dir: PathBuf,
    /// The CD on the host: `<dir>/disk.<number of DISKs>`.
    pub dst: HostPath,
}

/// The driver call of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    /// VMM deploy.
    Deploy(DeployRequest),
    /// VMM restore.
    Restore(RestoreRequest),
    /// VMM save.
    Save(SaveRequest),
    /// VMM migrate (live).
    Migrate(MigrateRequest),
    /// VMM shutdown.
    Shutdown(DomainRequest),
    /// VMM cancel.
    Cancel(DomainRequest),
    /// VMM reboot.
    Reboot(DomainRequest),
    /// VMM reset.
    Reset(DomainRequest),
    /// VMM poll.
    Poll(DomainRequest),
    /// Polls for a probe: of `H`, and of `P` for a migration.
    Probe(Vec<DomainRequest>),
    /// A TM transfer.
    Transfer(Transfer),
    /// The step cannot be built (no history record, no deploy id): it
    /// fails with this message as a driver would.
    Fail(String),
}

/// One step to run for one VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The VM.
    pub vm_id: u64,
    /// The VM's operation number when the job was made.
    pub op: u64,
    /// The table's step.
    pub step: Step,
    /// What its result means.
    pub role: Role,
    /// The call.
    pub work: Work,
}

/// What job building reads besides the VM: the settings and the hosts'
/// templates (for the `DUMMY_*` script attributes).
pub struct Context<'a> {
    /// Paths and the front-end's name.
    pub settings: &'a Settings,
    /// A host's template by id.
    pub host_template: &'a dyn Fn(u64) -> Option<Template>,
}

/// The jobs of a transition's driver steps, in order. `DriverCancel` steps
/// have no driver call (the drivers serialise a VM's actions, so the
/// clean-up simply runs after the action it would cancel) and make no job.
pub fn for_steps(vm: &Vm, op: u64, steps: &[(Step, Role)], ctx: &Context<'_>) -> Vec<Job> {
    steps
        .iter()
        .filter_map(|&(step, role)| build(vm, op, step, role, ctx))
        .collect()
}

/// The job of one step; `None` for steps with no driver call.
pub fn build(vm: &Vm, op: u64, step: Step, role: Role, ctx: &Context<'_>) -> Option<Job> {
    let work = work(vm, step, ctx)?;
    Some(Job {
        vm_id: vm.id,
        op,
        step,
        role,
        work,
    })
}

/// The probe of an awaited VMM step after a restart (spec/CORE.md §8.4):
/// polls of `H` (and `P` for a migration). `None` when nothing can be
/// probed (no deploy id yet, a TM step): the step is simply run again.
pub fn probe(vm: &Vm, op: u64, step: Step, ctx: &Context<'_>) -> Option<Job> {
    let deploy_id = vm.deploy_id.clone()?;
    let records: &[Record] = match step {
        Step::VmmDeploy
        | Step::VmmRestore
        | Step::VmmShutdown
        | Step::VmmCancel
        | Step::VmmSave => &[Record::Current],
        Step::VmmSavePrevious => &[Record::Previous],
        Step::VmmMigrate => &[Record::Current, Record::Previous],
        _ => return None,
    };
    let polls = records
        .iter()
        .map(|&r| {
            let target = target(vm, vm.record(r)?, ctx);
            Some(DomainRequest {
                target,
                deploy_id: deploy_id.clone(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Job {
        vm_id: vm.id,
        op,
        step,
        role: Role::Probe,
        work: Work::Probe(polls),
    })
}

/// The host a step runs on, for the stored pending step; empty when the
/// VM has no such record.
pub fn host_of(vm: &Vm, step: Step) -> String {
    let record = match step {
        Step::VmmSavePrevious
        | Step::VmmCancelPrevious
        | Step::VmmMigrate
        | Step::TmEpilogDeletePrevious => Record::Previous,
        _ => Record::Current,
    };
    vm.record(record)
        .map(|h| h.host.clone())
        .unwrap_or_default()
}

/// The host a job's driver call is about, for messages.
pub fn host_of_job(job: &Job) -> &str {
    match &job.work {
        Work::Deploy(r) => &r.target.host,
        Work::Restore(r) => &r.target.host,
        Work::Save(r) => &r.target.host,
        Work::Migrate(r) => &r.target.host,
        Work::Shutdown(r) | Work::Cancel(r) | Work::Reboot(r) | Work::Reset(r) | Work::Poll(r) => {
            &r.target.host
        }
        Work::Probe(polls) => polls.first().map_or("-", |r| r.target.host.as_str()),
        Work::Transfer(t) => t.actions.first().map_or("-", TmAction::host),
        Work::Fail(_) => "-",
    }
}

fn work(vm: &Vm, step: Step, ctx: &Context<'_>) -> Option<Work> {
    let current = vm.record(Record::Current);
    let previous = vm.record(Record::Previous);
    let missing = |which: &str| Work::Fail(format!("VM {} has no {which} history record", vm.id));
    let on = |record: Option<&History>, which: &str, make: &dyn Fn(&History) -> Work| {
        record.map_or_else(|| missing(which), make)
    };
    let deploy_id = || vm.deploy_id.clone().unwrap_or_else(|| "-".to_string());
    let domain = |h: &History| DomainRequest {
        target: target(vm, h, ctx),
        deploy_id: deploy_id(),
    };
    Some(match step {
        Step::OpenHistory
        | Step::CopyHistory(_)
        | Step::Stamp(..)
        | Step::SetReason(..)
        | Step::ReserveCapacity(_)
        | Step::ReleaseCapacity(_)
        | Step::StoreDeployId
        | Step::SetExitTime
        | Step::ReleaseLeases
        | Step::ReleaseImages
        | Step::TmDriverCancel
        | Step::VmmDriverCancel
        // Replaced by the pending step before jobs are made.
        | Step::RetryPending => return None,
        Step::VmmDeploy => on(current, "current", &|h| {
            Work::Deploy(DeployRequest {
                target: target(vm, h, ctx),
                remote_file: format!("{}/deployment.{}", h.dir(vm.id), h.seq),
                // spec/DRIVERS.md §3: the kvm generator comes with real
                // hosts; until then the deployment file is the template.
                deployment: vm.template.to_string(),
            })
        }),
        Step::VmmRestore => on(current, "current", &|h| {
            Work::Restore(RestoreRequest {
                target: target(vm, h, ctx),
                checkpoint: checkpoint(vm, h),
            })
        }),
        Step::VmmSave => on(current, "current", &|h| save(vm, h, ctx)),
        Step::VmmSavePrevious => on(previous, "previous", &|h| save(vm, h, ctx)),
        Step::VmmShutdown => on(current, "current", &|h| Work::Shutdown(domain(h))),
        Step::VmmCancel => on(current, "current", &|h| Work::Cancel(domain(h))),
        Step::VmmCancelPrevious => on(previous, "previous", &|h| Work::Cancel(domain(h))),
        Step::VmmReboot => on(current, "current", &|h| Work::Reboot(domain(h))),
        Step::VmmReset => on(current, "current", &|h| Work::Reset(domain(h))),
        Step::VmmPoll => on(current, "current", &|h| Work::Poll(domain(h))),
        Step::VmmMigrate => match (previous, current) {
            (Some(p), Some(h)) => Work::Migrate(MigrateRequest {
                target: target(vm, p, ctx),
                deploy_id: deploy_id(),
                destination: h.host.clone(),
                tm_driver: p.tm_mad.clone(),
                dir: p.dir(vm.id),
            }),
            _ => missing("previous"),
        },
        Step::TmProlog => on(current, "current", &|h| prolog(vm, h, ctx)),
        Step::TmPrologResume => on(current, "current", &|h| {
            let src = HostPath::new(&ctx.settings.front_end, fe_images(vm, ctx));
            transfer(vm, h, ctx, vec![TmAction::Mv {
                src,
                dst: HostPath::new(&h.host, h.dir(vm.id)),
            }])
        }),
        Step::TmPrologMigrate => match (previous, current) {
            (Some(p), Some(h)) => transfer(vm, h, ctx, vec![TmAction::Mv {
                src: HostPath::new(&p.host, p.dir(vm.id)),
                dst: HostPath::new(&h.host, h.dir(vm.id)),
            }]),
            _ => missing("previous"),
        },
        Step::TmEpilog => on(current, "current", &|h| epilog(vm, h, ctx)),
        Step::TmEpilogStop => on(current, "current", &|h| {
            let dst = HostPath::new(&ctx.settings.front_end, fe_images(vm, ctx));
            transfer(vm, h, ctx, vec![TmAction::Mv {
                src: HostPath::new(&h.host, h.dir(vm.id)),
                dst,
            }])
        }),
        Step::TmEpilogDelete => on(current, "current", &|h| delete_dir(vm, h, ctx)),
        Step::TmEpilogDeletePrevious => on(previous, "previous", &|h| delete_dir(vm, h, ctx)),
        Step::TmEpilogDeleteStop => on(current, "current", &|h| {
            let path = HostPath::new(&ctx.settings.front_end, fe_images(vm, ctx));
            transfer(vm, h, ctx, vec![TmAction::Delete { path }])
        }),
    })
}

/// The VMM target of a step on record `h`'s host.
fn target(vm: &Vm, h: &History, ctx: &Context<'_>) -> VmmTarget {
    VmmTarget {
        vm_id: vm.id,
        host: h.host.clone(),
        driver: h.vmm_mad.clone(),
        env: env(vm, h, ctx),
    }
}

/// The `DUMMY_*` attributes of the VM and its host, for the scripts.
fn env(vm: &Vm, h: &History, ctx: &Context<'_>) -> ScriptEnv {
    let host = (ctx.host_template)(h.host_id);
    ScriptEnv::from_templates(Some(&vm.template), host.as_ref())
}

fn checkpoint(vm: &Vm, h: &History) -> String {
    format!("{}/checkpoint", h.dir(vm.id))
}

fn save(vm: &Vm, h: &History, ctx: &Context<'_>) -> Work {
    Work::Save(SaveRequest {
        target: target(vm, h, ctx),
        deploy_id: vm.deploy_id.clone().unwrap_or_else(|| "-".to_string()),
        checkpoint: checkpoint(vm, h),
    })
}

/// The front-end VM directory, `<var>/<vid>`.
fn fe_dir(vm: &Vm, ctx: &Context<'_>) -> PathBuf {
    ctx.settings.var_dir.join(vm.id.to_string())
}

/// Where a stopped VM's directory waits on the front-end.
fn fe_images(vm: &Vm, ctx: &Context<'_>) -> String {
    fe_dir(vm, ctx).join("images").display().to_string()
}

fn transfer(vm: &Vm, h: &History, ctx: &Context<'_>, actions: Vec<TmAction>) -> Work {
    Work::Transfer(Transfer {
        driver: h.tm_mad.clone(),
        actions,
        env: env(vm, h, ctx),
        context: None,
    })
}

fn delete_dir(vm: &Vm, h: &History, ctx: &Context<'_>) -> Work {
    transfer(
        vm,
        h,
        ctx,
        vec![TmAction::Delete {
            path: HostPath::new(&h.host, h.dir(vm.id)),
        }],
    )
}

/// `<fe>:<SOURCE>` for a front-end path, the SOURCE itself for a URL
/// (spec/DRIVERS.md §5.1).
fn source_arg(source: &str, ctx: &Context<'_>) -> String {
    if source.contains(':') {
        source.to_string()
    } else {
        format!("{}:{source}", ctx.settings.front_end)
    }
}

fn is_yes(vector: &Vector, key: &str) -> Option<bool> {
    vector
        .get(key)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.eq_ignore_ascii_case("yes"))
}

/// Where the epilog moves disk `i` on the front-end, if anywhere: a
/// save-as disk to its new image's file (unless the VM was cancelled,
/// see `saveas.rs`), a SAVE=yes disk back to its image's SOURCE, or to
/// the front-end VM directory when it has none there.
fn saved_to(vm: &Vm, i: usize, disk: &Vector, ctx: &Context<'_>) -> Option<String> {
    if let Some(target) = disk.get(SAVE_AS_SOURCE) {
        return (!saveas::cancelled(vm)).then(|| target.trim().to_string());
    }
    if is_yes(disk, "SAVE") != Some(true) {
        return None;
    }
    let from_image = disk.get("IMAGE_ID").is_some();
    Some(match disk.get("SOURCE").map(str::trim) {
        Some(source) if from_image && !source.contains(':') => source.to_string(),
        _ => fe_dir(vm, ctx)
            .join(format!("disk.{i}"))
            .display()
            .to_string(),
    })
}

/// The prolog's actions: one per DISK, then the context CD.
fn prolog(vm: &Vm, h: &History, ctx: &Context<'_>) -> Work {
    let dir = h.dir(vm.id);
    let disk_path = |i: usize| HostPath::new(&h.host, format!("{dir}/disk.{i}"));
    let mut actions = Vec::new();
    let disks: Vec<&Vector> = vm.template.vectors("DISK").collect();
    for (i, disk) in disks.iter().enumerate() {
        let kind = disk
            .get("TYPE")
            .map(|t| t.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let size = disk.get("SIZE").and_then(|s| s.trim().parse::<u64>().ok());
        match kind.as_str() {
            "swap" => match size {
                Some(size_mb) => actions.push(TmAction::MkSwap {
                    size_mb,
                    dst: disk_path(i),
                }),
                None => tracing::warn!(
                    vm = vm.id,
                    "VM {}: swap disk {i} has no SIZE; skipped",
                    vm.id
                ),
            },
            "fs" => match (size, disk.get("FORMAT").map(str::trim)) {
                (Some(size_mb), Some(fstype)) if !fstype.is_empty() => {
                    actions.push(TmAction::MkImage {
                        size_mb,
                        fstype: fstype.to_string(),
                        dst: disk_path(i),
                    })
                }
                _ => tracing::warn!(
                    vm = vm.id,
                    "VM {}: fs disk {i} has no SIZE or FORMAT; skipped",
                    vm.id
                ),
            },
            _ => {
                let Some(source) = disk.get("SOURCE").map(str::trim).filter(|s| !s.is_empty())
                else {
                    return Work::Fail(format!(
                        "undefined source disk image in VM template (disk {i})"
                    ));
                };
                let src = source_arg(source, ctx);
                let dst = disk_path(i);
                if is_yes(disk, "CLONE") == Some(false) {
                    actions.push(TmAction::Ln { src, dst });
                } else {
                    actions.push(TmAction::Clone { src, dst });
                }
            }
        }
    }
    let context = vm.template.vector(context::CONTEXT).map(|c| ContextCd {
        context: c.clone(),
        owner: vm.uid,
        fe_dir: fe_dir(vm, ctx),
        dst: disk_path(disks.len()),
    });
    Work::Transfer(Transfer {
        driver: h.tm_mad.clone(),
        actions,
        env: env(vm, h, ctx),
        context,
    })
}

/// The epilog's actions: SAVE=yes disks go back, then the directory goes.
/// A disk of a persistent image goes back to the image's file (its
/// `SOURCE`); any other SAVE=yes disk to the front-end VM directory.
fn epilog(vm: &Vm, h: &History, ctx: &Context<'_>) -> Work {
    let dir = h.dir(vm.id);
    let mut actions = Vec::new();
    for (i, disk) in vm.template.vectors("DISK").enumerate() {
        let Some(dst) = saved_to(vm, i, disk, ctx) else {
            continue;
        };
        actions.push(TmAction::Mv {
            src: HostPath::new(&h.host, format!("{dir}/disk.{i}")),
            dst: HostPath::new(&ctx.settings.front_end, dst),
        });
    }
    actions.push(TmAction::Delete {
        path: HostPath::new(&h.host, dir),
    });
    transfer(vm, h, ctx, actions)
}
