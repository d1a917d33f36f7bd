//! The VM pool: every VM in memory, every change through the core's one
//! write path (`core::writer`): plan against memory, commit one
//! transaction, apply to memory, then hand the driver steps to the runner.
//!
//! One function decides a VM's change, `VmPool::plan`: a user action, a
//! driver reply, a poll answer or a recovery all come in as an [`Event`]
//! of the life-cycle table ([`next`]), and the table's transition is
//! followed blindly. Its bookkeeping steps become, in the same
//! transaction as the new state: history records, host capacity
//! ([`HostPool::plan_charge`] / [`HostPool::plan_release`]), leases and
//! images given back, and the pending driver step with the VM's new
//! operation number (spec/CORE.md §8.4). Its driver steps become
//! [`Job`]s for the runner once the commit is done.
//!
//! Group commit: driver replies and poll answers that arrive together
//! ([`VmPool::apply_grouped`]) are planned one after the other under one
//! writer lock and committed in one transaction, so that one fsync serves
//! many VMs. VMs are independent, and what they take from or give to
//! hosts, networks and images are deltas that add up, so planning each
//! against memory before any is applied gives what one at a time would.
//!
//! Authorization (spec/CORE.md §7.3): everybody creates VMs; the owner and
//! oneadmin see and act on a VM; deploy, migrate, livemigrate and recover
//! are oneadmin's.
//!
//! May use: `crate::template` and the rest of `crate::core`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard,
    RwLockWriteGuard,
};
use std::time::{SystemTime, UNIX_EPOCH};

use super::create::{self, Pools};
use super::jobs::{self, Job, Role};
use super::record::{History, Pending, Usage, Vm, VmError};
use super::runner::{Answer, Queue};
use super::saveas;
use super::state::{next, Event, LcmState, Outcome, Reason, Record, Recovery, Stamp, State, Step};
use super::tokens::Tokens;
use crate::core::caller::{Caller, ADMIN_UID};
use crate::core::context::{ObjectKey, ObjectLookup, OtherVm, VmLookup};
use crate::core::hooks::{HookManager, VmView};
use crate::core::host::{Host, HostPool, HostState, ShareChange};
use crate::core::image::{ImageChanges, ImagePool};
use crate::core::ports::{Durability, PollAnswer, PollState, Pool};
use crate::core::sched::runner::Placement;
use crate::core::sched::PendingVm;
use crate::core::signal::Signal;
use crate::core::vnet::{Lease, VnetPool};
use crate::core::writer::{WriteGuard, Writer};
use crate::core::{Error, Kind, Result, Settings};
use crate::template::Template;

/// A user action on a VM (spec/CORE.md §1.3; `recover`, §8.4), by its
/// `one.vm.action` word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `deploy` on a host (oneadmin).
    Deploy,
    /// `shutdown`.
    Shutdown,
    /// `cancel`.
    Cancel,
    /// `livemigrate` to a host (oneadmin).
    LiveMigrate,
    /// `migrate` to a host (oneadmin).
    Migrate,
    /// `hold`.
    Hold,
    /// `release`.
    Release,
    /// `stop`.
    Stop,
    /// `suspend`.
    Suspend,
    /// `resume`.
    Resume,
    /// `delete`.
    Delete,
    /// `restart`.
    Restart,
    /// `resubmit`.
    Resubmit,
    /// `reboot`.
    Reboot,
    /// `reset`.
    Reset,
    /// `recover` (oneadmin).
    Recover(Recovery),
}

impl Action {
    /// Every action word (`recover` once).
    pub const WORDS: [&'static str; 16] = [
        "deploy",
        "shutdown",
        "cancel",
        "livemigrate",
        "migrate",
        "hold",
        "release",
        "stop",
        "suspend",
        "resume",
        "delete",
        "restart",
        "resubmit",
        "reboot",
        "reset",
        "recover",
    ];

    /// The action for a word; `recover` needs `mode` (`success`,
    /// `failure` or `retry`).
    pub fn parse(word: &str, mode: Option<&str>) -> Result<Action> {
        Ok(match word.to_ascii_lowercase().as_str() {
            "deploy" => Action::Deploy,
            "shutdown" => Action::Shutdown,
            "cancel" => Action::Cancel,
            "livemigrate" => Action::LiveMigrate,
            "migrate" => Action::Migrate,
            "hold" => Action::Hold,
            "release" => Action::Release,
            "stop" => Action::Stop,
            "suspend" => Action::Suspend,
            "resume" => Action::Resume,
            "delete" => Action::Delete,
            "restart" => Action::Restart,
            "resubmit" => Action::Resubmit,
            "reboot" => Action::Reboot,
            "reset" => Action::Reset,
            "recover" => Action::Recover(match mode.map(str::to_ascii_lowercase).as_deref() {
                Some("success") => Recovery::Success,
                Some("failure") => Recovery::Failure,
                Some("retry") => Recovery::Retry,
                Some(other) => {
                    return Err(Error::invalid(
                        "mode",
                        format!("must be success, failure or retry, not {other:?}"),
                    ))
                }
                None => {
                    return Err(Error::invalid(
                        "mode",
                        "missing: recover needs success, failure or retry",
                    ))
                }
            }),
            other => {
                return Err(Error::invalid(
                    "action",
                    format!(
                        "unknown action {other:?}; one of {}",
                        Action::WORDS.join(", ")
                    ),
                ))
            }
        })
    }

    /// Whether the action takes a host (deploy, migrate, livemigrate).
    pub fn needs_host(self) -> bool {
        matches!(self, Action::Deploy | Action::Migrate | Action::LiveMigrate)
    }

    /// The table's event; deploy's `resume` is the VM's to say.
    fn event(self, vm: &Vm) -> Event {
        match self {
            Action::Deploy => Event::Deploy {
                resume: vm.was_stopped(),
            },
            Action::Shutdown => Event::Shutdown,
            Action::Cancel => Event::Cancel,
            Action::LiveMigrate => Event::LiveMigrate,
            Action::Migrate => Event::Migrate,
            Action::Hold => Event::Hold,
            Action::Release => Event::Release,
            Action::Stop => Event::Stop,
            Action::Suspend => Event::Suspend,
            Action::Resume => Event::Resume,
            Action::Delete => Event::Delete,
            Action::Restart => Event::Restart,
            Action::Resubmit => Event::Resubmit,
            Action::Reboot => Event::Reboot,
            Action::Reset => Event::Reset,
            Action::Recover(how) => Event::Recover(how),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self {
            Action::Deploy => "deploy",
            Action::Shutdown => "shutdown",
            Action::Cancel => "cancel",
            Action::LiveMigrate => "livemigrate",
            Action::Migrate => "migrate",
            Action::Hold => "hold",
            Action::Release => "release",
            Action::Stop => "stop",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::Delete => "delete",
            Action::Restart => "restart",
            Action::Resubmit => "resubmit",
            Action::Reboot => "reboot",
            Action::Reset => "reset",
            Action::Recover(Recovery::Success) => "recover success",
            Action::Recover(Recovery::Failure) => "recover failure",
            Action::Recover(Recovery::Retry) => "recover retry",
        };
        f.write_str(word)
    }
}

impl FromStr for Action {
    type Err = Error;

    /// A word, with `recover` written `recover-success` etc. too.
    fn from_str(text: &str) -> Result<Action> {
        match text.split_once(['-', ' ']) {
            Some((word, mode)) => Action::parse(word, Some(mode)),
            None => Action::parse(text, None),
        }
    }
}

/// Whose VMs a listing shows (1.4's `vmpool.info` filter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Every VM the caller may see: all for oneadmin, its own otherwise.
    All,
    /// The caller's own.
    Mine,
    /// The VMs of this user (oneadmin, or the user itself).
    User(u64),
}

/// Where an event comes from, which decides whether it still counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// A user (or the scheduler, or a recovery decided now).
    User,
    /// The reply to the awaited step of operation `op`: taken only while
    /// the VM still waits for it.
    Reply(u64),
    /// A periodic poll sent at operation `op`: taken only if the VM did
    /// not change state since.
    Monitor(u64),
}

/// What comes with an event besides its name.
#[derive(Debug)]
pub(super) struct Input {
    pub origin: Origin,
    /// The host a deploy or migration goes to (`open_history`).
    pub host: Option<Host>,
    /// What deploy answered (`store_deploy_id`).
    pub deploy_id: Option<String>,
    /// What went wrong, for the VM's error.
    pub error: Option<String>,
    /// A poll's figures.
    pub poll: Option<PollAnswer>,
}

impl Input {
    pub(super) fn new(origin: Origin) -> Self {
        Input {
            origin,
            host: None,
            deploy_id: None,
            error: None,
            poll: None,
        }
    }
}

/// What a transition's bookkeeping takes from and gives to other pools,
/// written in its transaction and applied after.
#[derive(Default)]
struct Effects {
    shares: Vec<ShareChange>,
    leases: Vec<Lease>,
    /// Images given back (their ids; planned when the batch is written).
    images: Vec<u64>,
    /// Indexes of the history records written.
    touched: BTreeSet<usize>,
}

/// One VM's change, planned under the writer lock and written with the
/// others of its batch.
struct Planned {
    /// The VM as it will be.
    vm: Vm,
    /// Whether its row is written (memory-only changes are not).
    store: bool,
    /// Its history records to write.
    touched: BTreeSet<usize>,
    /// Whether its pending step changed.
    pending_changed: bool,
    /// The driver steps to queue once committed.
    jobs: Vec<Job>,
    /// The pair it left and the event, for a transition (log, hooks).
    moved: Option<((State, LcmState), Event)>,
}

/// Changes committed in one transaction, and what they take from and give
/// to the other pools.
#[derive(Default)]
struct Batch {
    plans: Vec<Planned>,
    shares: Vec<ShareChange>,
    leases: Vec<Lease>,
    images: Vec<u64>,
    /// Save-as images whose VM ended, and whether its epilog saved them.
    saved: Vec<(u64, bool)>,
}

/// The queue of [`VmPool::apply_grouped`]: events waiting for a leader
/// to commit them, and the results it left.
#[derive(Default)]
struct Group {
    state: Mutex<GroupState>,
    done: Condvar,
}

/// A queued event: its ticket, VM, event and input.
type Queued = (u64, u64, Event, Input);

#[derive(Default)]
struct GroupState {
    next: u64,
    leading: bool,
    queue: Vec<Queued>,
    results: HashMap<u64, Result<()>>,
}

/// Held by the leader of a group commit while it applies the batch;
/// dropping it hands the results to the waiting callers and lets the
/// next leader in. If applying panicked, the callers get an error
/// instead of waiting for ever.
struct Lead<'a> {
    group: &'a Group,
    tickets: Vec<u64>,
    results: Option<Vec<Result<()>>>,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let mut state = self.group.lock();
        let tickets = std::mem::take(&mut self.tickets);
        match self.results.take() {
            Some(results) => state.results.extend(tickets.into_iter().zip(results)),
            None => {
                for ticket in tickets {
                    let panicked = Error::Internal("applying the batch panicked".into());
                    state.results.insert(ticket, Err(panicked));
                }
            }
        }
        state.leading = false;
        self.group.done.notify_all();
    }
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, state: MutexGuard<'a, GroupState>) -> MutexGuard<'a, GroupState> {
        self.done
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What becomes of `vm`'s save-as images when `event` takes it to
/// `to`: nothing until it ends; saved (`true`) when a shutdown's epilog
/// took it to DONE; never to be saved when it reaches DONE any other way
/// or FAILED (from which it can only be deleted or resubmitted; a
/// resubmitted VM's next epilog saves them after all).
fn saved_outcomes(vm: &Vm, event: Event, to: State) -> Vec<(u64, bool)> {
    if to == vm.state || !matches!(to, State::Done | State::Failed) {
        return Vec::new();
    }
    let saved = to == State::Done && saveas::disks_saved(vm, event);
    saveas::save_as_images(vm)
        .into_iter()
        .map(|id| (id, saved))
        .collect()
}

/// A reply of the awaited step that leads nowhere (a poll answering
/// nothing, a reply the table ignores): the VM waits no more.
fn settled(mut vm: Vm, error: Option<String>) -> Planned {
    if let Some(pending) = &mut vm.pending {
        pending.awaited = None;
    }
    if vm.pending.as_ref().is_some_and(|p| p.cleanup.is_empty()) {
        vm.pending = None;
    }
    if let Some(message) = error {
        vm.error = Some(VmError {
            message,
            time: now(),
        });
    }
    Planned {
        vm,
        store: true,
        touched: BTreeSet::new(),
        pending_changed: true,
        jobs: Vec::new(),
        moved: None,
    }
}

/// A poll's figures (spec/CORE.md §1.5): stored when they changed; the
/// time of the poll is kept in memory only.
fn figures(mut vm: Vm, poll: Option<&PollAnswer>) -> Option<Planned> {
    let poll = poll?;
    let before = (vm.usage.clone(), vm.template.clone());
    record_figures(&mut vm, poll, now());
    let changed = Usage {
        last_poll: before.0.last_poll,
        ..vm.usage.clone()
    } != before.0
        || vm.template != before.1;
    Some(Planned {
        vm,
        store: changed,
        touched: BTreeSet::new(),
        pending_changed: false,
        jobs: Vec::new(),
        moved: None,
    })
}

/// The VM pool.
pub struct VmPool {
    pub(super) writer: Arc<Writer>,
    pub(super) settings: Settings,
    pub(super) hosts: Arc<HostPool>,
    pub(super) vnets: Arc<VnetPool>,
    pub(super) images: Arc<ImagePool>,
    vms: RwLock<BTreeMap<u64, Vm>>,
    pub(super) queue: Arc<Queue>,
    hooks: OnceLock<Arc<HookManager>>,
    bell: OnceLock<Arc<Signal>>,
    group: Group,
    /// EC2 client tokens: the VMs of each (owner, token), and the gates
    /// of the launches in progress.
    tokens: Tokens,
}

/// `recover success` refused in BOOT without a deploy id (spec/CORE.md
/// §8.4): the first deploy never answered, so nothing names the domain
/// to poll, shut down or migrate, and the core does not guess a driver's
/// naming (kvm's `one-<vid>`, dummy's `dummy-<vid>`). `retry` runs the
/// deploy again and stores the id it prints; `failure` gives up.
fn no_deploy_id(id: u64) -> Error {
    Error::invalid(
        "recover",
        format!(
            "VM {id} has no deploy id: its first deploy never answered, so success \
             cannot tell which domain to manage; use `recover {id} retry` to deploy it \
             again (or `recover {id} failure`)"
        ),
    )
}

/// Now, in Unix seconds.
pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl VmPool {
    /// Loads the VMs from the store, with their history and pending steps:
    /// all but those DONE for longer than `settings.done_retention` (see
    /// [`forget_done`](Self::forget_done)). Nothing runs until
    /// [`start`](Self::start).
    pub fn load(
        writer: Arc<Writer>,
        settings: Settings,
        hosts: Arc<HostPool>,
        vnets: Arc<VnetPool>,
        images: Arc<ImagePool>,
    ) -> Result<Self> {
        let tokens = Tokens::default();
        let done_since = now().saturating_sub(settings.done_retention.as_secs());
        let vms = writer
            .store()
            .load_vms(done_since)?
            .into_iter()
            .map(|vm| {
                tokens.note(&vm);
                (vm.id, vm)
            })
            .collect();
        Ok(VmPool {
            writer,
            settings,
            hosts,
            vnets,
            images,
            vms: RwLock::new(vms),
            queue: Arc::new(Queue::default()),
            hooks: OnceLock::new(),
            bell: OnceLock::new(),
            group: Group::default(),
            tokens,
        })
    }

    /// Fires the configured hooks through `hooks` from now on.
    pub fn set_hooks(&self, hooks: Arc<HookManager>) {
        if self.hooks.set(hooks).is_err() {
            tracing::warn!("VM hooks were set twice; keeping the first");
        }
    }

    /// Rings `bell` whenever a VM becomes pending (the scheduler's).
    pub fn set_pending_bell(&self, bell: Arc<Signal>) {
        if self.bell.set(bell).is_err() {
            tracing::warn!("the scheduler's bell was set twice; keeping the first");
        }
    }

    // -----------------------------------------------------------------
    // Reading
    // -----------------------------------------------------------------

    /// One VM, for its owner or oneadmin; DONE VMs included.
    pub fn show(&self, caller: &Caller, id: u64) -> Result<Vm> {
        let vm = self.get(id)?;
        if !caller.owns_or_admin(vm.uid) {
            return Err(Error::Forbidden {
                kind: Kind::Vm,
                id: id.to_string(),
                action: "show".to_string(),
            });
        }
        Ok(vm)
    }

    /// The end of a VM's log (`var/<vid>/vm.log`, [`super::log`]): its
    /// last [`TAIL_BYTES`](super::log::TAIL_BYTES) in whole lines, empty
    /// when nothing was logged yet; for whoever may [`show`](Self::show)
    /// the VM.
    pub fn log(&self, caller: &Caller, id: u64) -> Result<String> {
        self.show(caller, id)?;
        let path = super::log::path(&self.settings.var_dir, id);
        super::log::tail(&path, super::log::TAIL_BYTES)
            .map_err(|e| Error::Internal(format!("cannot read {}: {e}", path.display())))
    }

    /// The VMs of `filter` the caller may see, in id order, without the
    /// DONE ones (as `onevm list`).
    pub fn list(&self, caller: &Caller, filter: Filter) -> Result<Vec<Vm>> {
        self.list_map(caller, filter, Vm::clone)
    }

    /// What [`list`](Self::list) lists, each VM read through `read` under
    /// the pool's lock instead of cloned: a pool document needs a VM's id
    /// and name, not its template and history. `read` must not call back
    /// into the pools.
    pub fn list_map<T>(
        &self,
        caller: &Caller,
        filter: Filter,
        read: impl FnMut(&Vm) -> T,
    ) -> Result<Vec<T>> {
        let wanted = |vm: &&Vm| {
            vm.state != State::Done
                && match filter {
                    Filter::All => caller.owns_or_admin(vm.uid),
                    Filter::Mine => vm.uid == caller.uid,
                    Filter::User(uid) => vm.uid == uid && caller.owns_or_admin(uid),
                }
        };
        Ok(self.read()?.values().filter(wanted).map(read).collect())
    }

    /// The VMs the caller may see (all for oneadmin), in id order, with
    /// the DONE ones that ended at or after `done_since` (Unix seconds):
    /// EC2 keeps terminated instances visible for a while (spec/EC2.md §5).
    pub fn list_with_done(&self, caller: &Caller, done_since: u64) -> Result<Vec<Vm>> {
        Ok(self
            .read()?
            .values()
            .filter(|vm| {
                caller.owns_or_admin(vm.uid) && (vm.state != State::Done || vm.etime >= done_since)
            })
            .cloned()
            .collect())
    }

    /// The caller's own VMs (not oneadmin's view of others') whose
    /// `EC2_CLIENT_TOKEN` is `token`, DONE ones included, in id order: an
    /// index lookup, not a scan.
    pub fn by_client_token(&self, caller: &Caller, token: &str) -> Result<Vec<Vm>> {
        let ids = self.tokens.ids(caller.uid, token);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let vms = self.read()?;
        Ok(ids.iter().filter_map(|id| vms.get(id).cloned()).collect())
    }

    /// An idempotent launch (EC2's `ClientToken`): the caller's VMs of
    /// `token` if there are any, else what `launch` creates. The check and
    /// `launch` are one step for this (owner, token): a second launch with
    /// the same token waits and then finds the first one's VMs; launches
    /// with other tokens do not wait. `launch` must create VMs carrying
    /// `EC2_CLIENT_TOKEN = token` for a later launch to find them.
    pub fn launch_once(
        &self,
        caller: &Caller,
        token: &str,
        launch: impl FnOnce() -> Result<Vec<Vm>>,
    ) -> Result<Vec<Vm>> {
        self.tokens.gated(caller.uid, token, || {
            let earlier = self.by_client_token(caller, token)?;
            if earlier.is_empty() {
                launch()
            } else {
                Ok(earlier)
            }
        })
    }

    /// How many (owner, token) launch gates are open (tests: none once
    /// every launch returned).
    #[cfg(test)]
    pub fn open_launch_gates(&self) -> usize {
        self.tokens.open_gates()
    }

    /// One VM by id, for the core's own workers (no caller). A VM DONE
    /// for longer than the pool keeps them comes from the store.
    pub fn get(&self, id: u64) -> Result<Vm> {
        if let Some(vm) = self.read()?.get(&id) {
            return Ok(vm.clone());
        }
        self.writer
            .store()
            .load_vm(id)?
            .ok_or_else(|| Error::not_found(Kind::Vm, id))
    }

    /// The owner of VM `id` if the pool keeps it in memory (every VM but
    /// those DONE for longer than `done_retention`), without cloning it:
    /// for listings of what belongs to live and recently ended VMs.
    pub fn kept_owner(&self, id: u64) -> Option<u64> {
        self.read().ok()?.get(&id).map(|vm| vm.uid)
    }

    /// Drops from memory the DONE VMs that ended before `time` less
    /// `done_retention` and wait for no driver step, with their client
    /// tokens; [`get`](Self::get) still finds them in the store. Answers
    /// the ids of those that went. Memory and every scan of the pool then
    /// follow the VMs alive (and recently ended), not every VM ever
    /// created.
    pub fn forget_done(&self, time: u64) -> Result<Vec<u64>> {
        let before = time.saturating_sub(self.settings.done_retention.as_secs());
        let old = |vm: &Vm| vm.state == State::Done && vm.etime < before && vm.pending.is_none();
        // Found under the read lock: most ticks find none, and readers
        // never wait for the scan.
        let ids: Vec<u64> = self.scan(|vms| vms.filter(|vm| old(vm)).map(|vm| vm.id).collect())?;
        if ids.is_empty() {
            return Ok(ids);
        }
        let mut vms = self.write_map()?;
        let mut gone = Vec::with_capacity(ids.len());
        for id in ids {
            // Re-checked: an action may have put a fresh copy back since.
            if vms.get(&id).is_some_and(&old) {
                if let Some(vm) = vms.remove(&id) {
                    self.tokens.forget(&vm);
                    gone.push(id);
                }
            }
        }
        Ok(gone)
    }

    /// How many VMs the pool holds in memory: every VM but those DONE
    /// for longer than `done_retention`.
    pub fn len(&self) -> usize {
        self.read().map_or(0, |vms| vms.len())
    }

    /// Whether the pool holds no VM at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether no driver step is queued or running, for tests and
    /// benchmarks that wait for the pool to settle.
    pub fn is_idle(&self) -> bool {
        self.queue.is_idle()
    }

    // -----------------------------------------------------------------
    // Creating
    // -----------------------------------------------------------------

    /// Creates a VM from template text; any user may, and owns it. A
    /// refused template creates nothing and takes no lease or image.
    pub fn create(&self, caller: &Caller, text: &str) -> Result<Vm> {
        let template =
            Template::parse(text).map_err(|e| Error::invalid("template", e.to_string()))?;
        self.create_from(caller, template)
    }

    /// Creates a VM from a parsed template (for fronts that build one).
    pub fn create_from(&self, caller: &Caller, mut template: Template) -> Result<Vm> {
        let reservation = create::check(&template, caller)?;
        let guard = self.writer.lock()?;
        let time = now();
        let (vm, taken) = guard.commit(|tx| {
            let id = tx.next_id(Pool::Vms)?;
            let vms = self.read()?;
            let others = MapLookup(&vms);
            let pools = Pools {
                vnets: &self.vnets,
                images: &self.images,
                settings: &self.settings,
                others: &others,
            };
            let taken = create::rewrite(&guard, id, caller, &mut template, &pools)?;
            let vm = Vm {
                id,
                uid: caller.uid,
                uname: caller.name.clone(),
                name: template.get("NAME").unwrap_or_default().to_string(),
                state: State::Pending,
                lcm: LcmState::LcmInit,
                deploy_id: None,
                template: std::mem::take(&mut template),
                reservation,
                usage: Usage::default(),
                stime: time,
                etime: 0,
                history: Vec::new(),
                error: None,
                pending: None,
                op: 0,
                unplaced: None,
            };
            tx.put_vm(&vm)?;
            for lease in &taken.leases {
                tx.put_lease(lease)?;
            }
            taken.images.write(tx)?;
            Ok((vm, taken))
        })?;
        self.vnets.apply_leases(&guard, &taken.leases)?;
        self.images.apply(taken.images)?;
        self.write_map()?.insert(vm.id, vm.clone());
        self.tokens.note(&vm);
        if let Some(hooks) = self.hooks.get() {
            hooks.on_create(&self.view(&vm));
        }
        self.ring();
        drop(guard);
        tracing::info!(
            vm = vm.id,
            "VM {} ({}) created by {}",
            vm.id,
            vm.name,
            caller.name
        );
        Ok(vm)
    }

    // -----------------------------------------------------------------
    // Acting
    // -----------------------------------------------------------------

    /// A user action on VM `id`: the owner or oneadmin, and for deploy,
    /// migrate, livemigrate and recover oneadmin alone; `host` (an id or a
    /// name) for the actions that take one. Refused where the life-cycle
    /// table does not allow it, with `InvalidState` naming the state.
    pub fn action(
        &self,
        caller: &Caller,
        id: u64,
        action: Action,
        host: Option<&str>,
    ) -> Result<Vm> {
        self.act(caller, id, action, host, Durability::Durable)
    }

    /// [`action`](Self::action), committed as `durability` says.
    fn act(
        &self,
        caller: &Caller,
        id: u64,
        action: Action,
        host: Option<&str>,
        durability: Durability,
    ) -> Result<Vm> {
        let vm = self.get(id)?;
        let forbidden = || Error::Forbidden {
            kind: Kind::Vm,
            id: id.to_string(),
            action: action.to_string(),
        };
        if !caller.owns_or_admin(vm.uid) {
            return Err(forbidden());
        }
        let event = action.event(&vm);
        if super::state::admin_only(event) && !caller.is_admin() {
            return Err(forbidden());
        }
        if action == Action::Recover(Recovery::Success)
            && (vm.state, vm.lcm) == (State::Active, LcmState::Boot)
            && vm.deploy_id.is_none()
        {
            return Err(no_deploy_id(id));
        }
        let mut input = Input::new(Origin::User);
        if action.needs_host() {
            let key = host
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .ok_or_else(|| Error::invalid("host", format!("missing: {action} needs a host")))?;
            let target = self.hosts.show(caller, key)?;
            if action != Action::Deploy && vm.host().is_some_and(|h| h.host_id == target.id) {
                return Err(Error::invalid(
                    "host",
                    format!("VM {id} is already on host {}", target.name),
                ));
            }
            input.host = Some(target);
        }
        self.apply(id, event, input, durability)?;
        self.get(id)
    }

    /// Deploys a pending VM on host `host_id` as oneadmin: the
    /// scheduler's deploy (spec/CORE.md §6.5), a background commit (no one
    /// waits for it, and a pending VM is placed again after a power loss).
    pub fn deploy_on(&self, vm_id: u64, host_id: u64) -> Result<Vm> {
        let admin = Caller {
            uid: ADMIN_UID,
            name: "oneadmin".to_string(),
        };
        let host = host_id.to_string();
        self.act(
            &admin,
            vm_id,
            Action::Deploy,
            Some(&host),
            Durability::Background,
        )
    }

    /// Records why the scheduler left pending VMs where they are: one
    /// write lock for the whole cycle, and a reason copied only when it
    /// changed (readers wait on that lock, and thousands of VMs may wait
    /// for a host, each cycle again).
    pub fn set_unplaced(&self, reasons: &[(u64, String)]) {
        if let Ok(mut vms) = self.write_map() {
            for (vm_id, reason) in reasons {
                if let Some(vm) = vms.get_mut(vm_id) {
                    if vm.state == State::Pending && vm.unplaced.as_ref() != Some(reason) {
                        vm.unplaced = Some(reason.clone());
                    }
                }
            }
        }
    }

    /// Applies `event` to VM `id` (the one path of every state change):
    /// checks the origin still counts, asks the table, and for a
    /// transition commits the new state with its bookkeeping and pending
    /// step, applies it to memory and queues its driver steps, all under
    /// the writer lock (so the jobs of two transitions of one VM queue in
    /// commit order). Answers the VM as changed, or `None` when the event
    /// did not count or changed nothing but figures.
    pub(super) fn apply(
        &self,
        id: u64,
        event: Event,
        input: Input,
        durability: Durability,
    ) -> Result<Option<Vm>> {
        let guard = self.writer.lock()?;
        let vm = self.get(id)?;
        let mut batch = Batch::default();
        let planned = self.plan(&guard, vm, event, input, &mut batch)?;
        let moved = planned.as_ref().and_then(|p| p.moved.map(|_| p.vm.clone()));
        if let Some(planned) = planned {
            batch.plans.push(planned);
        }
        self.write(&guard, batch, durability)?;
        drop(guard);
        Ok(moved)
    }

    /// Applies driver replies and poll answers of many VMs in one
    /// transaction (group commit): each is planned against memory as
    /// [`apply`](Self::apply) plans it — VMs are independent, and what
    /// they take from the host, network and image pools are deltas that
    /// add up — then all are committed at once and applied to memory.
    /// Answers one result per event, in order; a VM named twice has its
    /// second event applied in a second transaction.
    fn apply_many(&self, events: Vec<(u64, Event, Input)>) -> Vec<Result<()>> {
        let mut results: Vec<Option<Result<()>>> = events.iter().map(|_| None).collect();
        let mut rest: Vec<(usize, u64, Event, Input)> = events
            .into_iter()
            .enumerate()
            .map(|(i, (id, event, input))| (i, id, event, input))
            .collect();
        while !rest.is_empty() {
            let guard = match self.writer.lock() {
                Ok(guard) => guard,
                Err(e) => {
                    let message = e.to_string();
                    for (i, ..) in rest {
                        results[i] = Some(Err(Error::Internal(message.clone())));
                    }
                    break;
                }
            };
            let mut batch = Batch::default();
            let mut seen = BTreeSet::new();
            let mut later = Vec::new();
            let mut in_batch = Vec::new();
            for (i, id, event, input) in rest {
                if !seen.insert(id) {
                    later.push((i, id, event, input));
                    continue;
                }
                let planned = self
                    .get(id)
                    .and_then(|vm| self.plan(&guard, vm, event, input, &mut batch));
                match planned {
                    Ok(Some(planned)) => {
                        batch.plans.push(planned);
                        in_batch.push(i);
                    }
                    Ok(None) => results[i] = Some(Ok(())),
                    Err(e) => results[i] = Some(Err(e)),
                }
            }
            match self.write(&guard, batch, Durability::Background) {
                Ok(()) => in_batch.iter().for_each(|&i| results[i] = Some(Ok(()))),
                Err(e) => {
                    let message = e.to_string();
                    for &i in &in_batch {
                        results[i] = Some(Err(Error::Internal(message.clone())));
                    }
                }
            }
            drop(guard);
            rest = later;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Internal("event not applied".into()))))
            .collect()
    }

    /// Applies a driver reply or a poll answer, committed together with
    /// those of other VMs that arrive meanwhile: the first caller leads,
    /// applying everything queued in one transaction while the others
    /// wait for their result. One fsync serves many VMs when many
    /// actions end at once.
    pub(super) fn apply_grouped(&self, id: u64, event: Event, input: Input) -> Result<()> {
        let group = &self.group;
        let mut state = group.lock();
        let ticket = state.next;
        state.next += 1;
        state.queue.push((ticket, id, event, input));
        loop {
            if let Some(result) = state.results.remove(&ticket) {
                return result;
            }
            if state.leading {
                state = group.wait(state);
                continue;
            }
            state.leading = true;
            let queued = std::mem::take(&mut state.queue);
            drop(state);
            let (tickets, events): (Vec<u64>, Vec<_>) = queued
                .into_iter()
                .map(|(t, id, event, input)| (t, (id, event, input)))
                .unzip();
            let mut lead = Lead {
                group,
                tickets,
                results: None,
            };
            lead.results = Some(self.apply_many(events));
            // Dropping it hands the results out and lets the next lead.
            drop(lead);
            state = group.lock();
        }
    }

    /// Plans `event` on `vm` under the writer lock: what the VM becomes,
    /// what to write, the jobs; the other pools' deltas go to `batch`.
    /// `None` when the event does not count or changes nothing.
    fn plan(
        &self,
        guard: &WriteGuard<'_>,
        vm: Vm,
        event: Event,
        input: Input,
        batch: &mut Batch,
    ) -> Result<Option<Planned>> {
        let id = vm.id;
        match input.origin {
            Origin::Reply(op) => {
                let awaited = vm
                    .pending
                    .as_ref()
                    .filter(|p| p.op == op && p.awaited.is_some());
                if awaited.is_none() {
                    tracing::debug!("VM {id}: late reply {event} of operation {op} ignored");
                    return Ok(None);
                }
            }
            Origin::Monitor(op) if vm.op != op => {
                tracing::debug!("VM {id}: poll answer of an earlier state ignored");
                return Ok(None);
            }
            Origin::Monitor(_) | Origin::User => {}
        }
        let transition = match next(vm.state, vm.lcm, event).map_err(|r| r.into_error(id))? {
            Outcome::Transition(t) => t,
            Outcome::Ignored(why) => {
                tracing::info!(vm = id, "VM {id} ({}): {event} {why}", vm.short_state());
                return Ok(match input.origin {
                    Origin::Reply(_) => Some(settled(vm, input.error)),
                    Origin::Monitor(_) => figures(vm, input.poll.as_ref()),
                    Origin::User => None,
                });
            }
        };
        let same = transition.state == vm.state && transition.lcm == vm.lcm;
        if matches!(input.origin, Origin::Monitor(_)) && same && transition.steps.is_empty() {
            return Ok(figures(vm, input.poll.as_ref()));
        }

        let time = now();
        let from = (vm.state, vm.lcm);
        let mut changed = vm.clone();
        let mut effects = Effects::default();
        self.bookkeeping(
            guard,
            &mut changed,
            &transition.steps,
            &input,
            time,
            &mut effects,
        )?;
        changed.state = transition.state;
        changed.lcm = transition.lcm;
        changed.op = vm.op + 1;
        if let Some(message) = input.error {
            changed.error = Some(VmError { message, time });
        }
        if let Some(poll) = &input.poll {
            record_figures(&mut changed, poll, time);
        }
        if changed.state != State::Pending {
            changed.unplaced = None;
        }

        // The awaited step and the fire-and-forget ones (CORE.md §8.4).
        let awaited = match transition.awaited() {
            Some(Step::RetryPending) => vm
                .pending
                .as_ref()
                .and_then(|p| p.awaited)
                .or_else(|| default_awaited(&vm)),
            other => other,
        };
        let cleanup: Vec<Step> = transition
            .steps
            .iter()
            .copied()
            .filter(|s| {
                s.is_driver()
                    && Some(*s) != transition.awaited()
                    && !matches!(
                        s,
                        Step::TmDriverCancel | Step::VmmDriverCancel | Step::RetryPending
                    )
            })
            .collect();
        changed.pending = (awaited.is_some() || !cleanup.is_empty()).then(|| Pending {
            op: changed.op,
            awaited,
            host: awaited
                .map(|s| jobs::host_of(&changed, s))
                .unwrap_or_default(),
            cleanup: cleanup.clone(),
            started_at: time,
        });
        let mut roles: Vec<(Step, Role)> = cleanup
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                (
                    s,
                    Role::Cleanup {
                        last: i + 1 == cleanup.len(),
                    },
                )
            })
            .collect();
        roles.extend(awaited.map(|s| (s, Role::Awaited)));
        let jobs = self.jobs_for(&changed, changed.op, &roles);

        batch.shares.extend(effects.shares);
        batch.leases.extend(effects.leases);
        batch.images.extend(effects.images);
        batch
            .saved
            .extend(saved_outcomes(&vm, event, transition.state));
        Ok(Some(Planned {
            pending_changed: changed.pending != vm.pending,
            touched: effects.touched,
            store: true,
            jobs,
            moved: Some((from, event)),
            vm: changed,
        }))
    }

    /// Commits the planned changes of a batch in one transaction, then
    /// applies them to memory, queues their jobs and fires their hooks.
    fn write(&self, guard: &WriteGuard<'_>, batch: Batch, durability: Durability) -> Result<()> {
        let Batch {
            plans,
            shares,
            leases,
            images: image_ids,
            saved,
        } = batch;
        // Image releases are planned here, one after the other, so that
        // two VMs giving back one image both count.
        let mut images = ImageChanges::default();
        for image in image_ids {
            self.images.plan_release(&mut images, image)?;
        }
        for (image, was_saved) in saved {
            self.images.plan_saved(&mut images, image, was_saved)?;
        }
        if plans.iter().any(|p| p.store) || !shares.is_empty() || !leases.is_empty() {
            guard.commit_with(durability, |tx| {
                for plan in plans.iter().filter(|p| p.store) {
                    let vm = &plan.vm;
                    tx.put_vm(vm)?;
                    for &i in &plan.touched {
                        if let Some(record) = vm.history.get(i) {
                            tx.put_vm_history(vm.id, record)?;
                        }
                    }
                    if plan.pending_changed {
                        tx.set_vm_pending(vm.id, vm.pending.as_ref())?;
                    }
                }
                self.hosts.write_shares(tx, &shares)?;
                for lease in &leases {
                    tx.release_lease(lease)?;
                }
                images.write(tx)
            })?;
        }
        self.hosts.apply_shares(guard, &shares)?;
        self.vnets.apply_release(guard, &leases)?;
        self.images.apply(images)?;
        {
            let mut vms = self.write_map()?;
            for plan in &plans {
                vms.insert(plan.vm.id, plan.vm.clone());
            }
        }
        for plan in plans {
            let vm = &plan.vm;
            for job in plan.jobs {
                self.queue.submit(job);
            }
            let Some((from, event)) = plan.moved else {
                continue;
            };
            tracing::info!(
                vm = vm.id,
                "VM {}: New state is {}/{} ({} -> {}) after {event}",
                vm.id,
                vm.state,
                vm.lcm,
                super::state::short_name(from.0, from.1),
                vm.short_state()
            );
            let to = (vm.state, vm.lcm);
            if to != from {
                if let Some(hooks) = self.hooks.get() {
                    hooks.on_transition(&self.view(vm), from, to);
                }
                if vm.state == State::Pending {
                    self.ring();
                }
            }
        }
        Ok(())
    }

    /// The bookkeeping steps of a transition, in order, on `vm`; driver
    /// steps are skipped (they become jobs).
    fn bookkeeping(
        &self,
        guard: &WriteGuard<'_>,
        vm: &mut Vm,
        steps: &[Step],
        input: &Input,
        time: u64,
        fx: &mut Effects,
    ) -> Result<()> {
        for &step in steps {
            match step {
                Step::OpenHistory => {
                    let host = input.host.as_ref().ok_or_else(|| {
                        Error::Internal(format!("VM {}: a new stay without a host", vm.id))
                    })?;
                    let seq = vm.history.len();
                    vm.history.push(History::open(
                        seq_number(seq),
                        host.id,
                        &host.name,
                        &self.settings.vm_dir,
                        &host.vmm_mad,
                        &host.tm_mad,
                    ));
                    fx.touched.insert(seq);
                }
                Step::CopyHistory(which) => {
                    let seq = vm.history.len();
                    match vm.record(which) {
                        Some(record) => {
                            let copy = record.copy_as(seq_number(seq));
                            vm.history.push(copy);
                            fx.touched.insert(seq);
                        }
                        None => missing_record(vm.id, step),
                    }
                }
                Step::Stamp(which, stamp) => match record_index(vm, which) {
                    Some(i) => {
                        set_stamp(&mut vm.history[i], stamp, time);
                        fx.touched.insert(i);
                    }
                    None => missing_record(vm.id, step),
                },
                Step::SetReason(which, reason) => match record_index(vm, which) {
                    Some(i) => {
                        vm.history[i].reason = reason;
                        fx.touched.insert(i);
                    }
                    None => missing_record(vm.id, step),
                },
                Step::ReserveCapacity(which) | Step::ReleaseCapacity(which) => {
                    if vm.reservation.is_empty() {
                        continue;
                    }
                    let Some(host_id) = vm.record(which).map(|h| h.host_id) else {
                        missing_record(vm.id, step);
                        continue;
                    };
                    let r = vm.reservation;
                    let planned = if matches!(step, Step::ReserveCapacity(_)) {
                        self.hosts.plan_charge(guard, host_id, r.cpu, r.mem_kb)
                    } else {
                        self.hosts.plan_release(guard, host_id, r.cpu, r.mem_kb)
                    };
                    match planned {
                        Ok(change) => fx.shares.push(change),
                        // A host deleted by hand: nothing to give back.
                        Err(Error::NotFound { .. }) => {
                            tracing::warn!(
                                vm = vm.id,
                                "VM {}: {step}: host {host_id} is gone",
                                vm.id
                            )
                        }
                        Err(e) => return Err(e),
                    }
                }
                Step::StoreDeployId => {
                    if let Some(deploy_id) = &input.deploy_id {
                        vm.deploy_id = Some(deploy_id.clone());
                    }
                }
                Step::SetExitTime => vm.etime = time,
                Step::ReleaseLeases => fx.leases = self.vnets.plan_release(guard, vm.id)?,
                Step::ReleaseImages => {
                    for disk in vm.template.vectors("DISK") {
                        if let Some(image) =
                            disk.get("IMAGE_ID").and_then(|i| i.trim().parse().ok())
                        {
                            fx.images.push(image);
                        }
                    }
                }
                Step::TmProlog
                | Step::TmPrologResume
                | Step::TmPrologMigrate
                | Step::TmEpilog
                | Step::TmEpilogStop
                | Step::TmEpilogDelete
                | Step::TmEpilogDeletePrevious
                | Step::TmEpilogDeleteStop
                | Step::TmDriverCancel
                | Step::VmmDeploy
                | Step::VmmRestore
                | Step::VmmSave
                | Step::VmmSavePrevious
                | Step::VmmShutdown
                | Step::VmmCancel
                | Step::VmmCancelPrevious
                | Step::VmmMigrate
                | Step::VmmReboot
                | Step::VmmReset
                | Step::VmmPoll
                | Step::VmmDriverCancel
                | Step::RetryPending => {}
            }
        }
        Ok(())
    }

    /// The jobs of `steps` for `vm` at operation `op`.
    pub(super) fn jobs_for(&self, vm: &Vm, op: u64, steps: &[(Step, Role)]) -> Vec<Job> {
        let host_template = |id: u64| self.hosts.get(id).ok().flatten().map(|h| h.template);
        let ctx = jobs::Context {
            settings: &self.settings,
            host_template: &host_template,
        };
        jobs::for_steps(vm, op, steps, &ctx)
    }

    /// The probe of an awaited step after a restart, if it can be probed.
    pub(super) fn probe_job(&self, vm: &Vm, op: u64, step: Step) -> Option<Job> {
        let host_template = |id: u64| self.hosts.get(id).ok().flatten().map(|h| h.template);
        let ctx = jobs::Context {
            settings: &self.settings,
            host_template: &host_template,
        };
        jobs::probe(vm, op, step, &ctx)
    }

    // -----------------------------------------------------------------
    // Driver results
    // -----------------------------------------------------------------

    /// What the runner calls when a job ends: its result becomes the VM's
    /// next event (awaited steps, polls, probes) or a log line (clean-ups).
    pub(super) fn finish(&self, job: &Job, result: Result<Answer>) {
        let outcome = match job.role {
            Role::Awaited => self.finish_awaited(job, result),
            Role::Cleanup { last } => {
                if let Err(e) = &result {
                    tracing::warn!(
                        vm = job.vm_id,
                        "VM {}: clean-up {}: {e}",
                        job.vm_id,
                        job.step
                    );
                }
                if last {
                    self.settle_cleanup(job.vm_id, job.op)
                } else {
                    Ok(())
                }
            }
            Role::Monitor => match result {
                Ok(Answer::Poll(answer)) => match monitor_event(&answer) {
                    Some(event) => {
                        let mut input = Input::new(Origin::Monitor(job.op));
                        input.poll = Some(answer);
                        if event == Event::MonitorFailure {
                            input.error = Some(format!(
                                "poll on {}: the hypervisor reports the VM in error (STATE=e)",
                                jobs::host_of_job(job)
                            ));
                        }
                        self.apply_grouped(job.vm_id, event, input)
                    }
                    None => self.store_figures(job.vm_id, job.op, &answer),
                },
                Ok(_) => Ok(()),
                Err(e) => self.poll_failed(job, &e),
            },
            Role::Probe => self.finish_probe(job, result),
        };
        if let Err(e) = outcome {
            tracing::error!(vm = job.vm_id, "VM {}: after {}: {e}", job.vm_id, job.step);
        }
    }

    /// A periodic poll failed. Its host cannot be reached (ssh's own
    /// failure), or is in ERROR: the VM's fate is unknown, so a RUNNING VM
    /// becomes UNKNOWN as on poll `d` (capacity and leases kept; it is
    /// still polled, and poll `a` brings it back to RUNNING once the host
    /// answers). Any other failure only logs ("Error monitoring VM",
    /// spec/CORE.md §1.5).
    fn poll_failed(&self, job: &Job, error: &Error) -> Result<()> {
        let vm = self.get(job.vm_id)?;
        let host_down = matches!(error, Error::Unreachable { .. })
            || vm.host().is_some_and(|h| {
                self.hosts
                    .get(h.host_id)
                    .ok()
                    .flatten()
                    .is_some_and(|host| host.state == HostState::Error)
            });
        if !host_down || vm.op != job.op || vm.lcm != LcmState::Running {
            tracing::warn!(
                vm = job.vm_id,
                "VM {}: Error monitoring VM: {error}",
                job.vm_id
            );
            return Ok(());
        }
        tracing::warn!(
            vm = job.vm_id,
            "VM {}: host unreachable, VM state unknown: {error}",
            job.vm_id
        );
        let mut input = Input::new(Origin::Monitor(job.op));
        input.error = Some(error.to_string());
        self.apply_grouped(job.vm_id, Event::MonitorDone, input)
    }

    fn finish_awaited(&self, job: &Job, result: Result<Answer>) -> Result<()> {
        let mut input = Input::new(Origin::Reply(job.op));
        let event = match (&result, reply_events(job.step)) {
            (_, None) => None,
            (Ok(answer), Some((success, _))) => {
                match answer {
                    Answer::DeployId(id) => input.deploy_id = Some(id.clone()),
                    Answer::Poll(poll) => input.poll = Some(poll.clone()),
                    Answer::Done | Answer::Probe(_) => {}
                }
                match success {
                    // An awaited poll: its letter is the event.
                    Event::MonitorAlive => input.poll.as_ref().and_then(monitor_event),
                    other => Some(other),
                }
            }
            (Err(e), Some((_, failure))) => {
                tracing::warn!(vm = job.vm_id, "VM {}: {e}", job.vm_id);
                match failure {
                    // A failed poll only logs ("Error monitoring VM").
                    Event::MonitorAlive => None,
                    other => {
                        input.error = Some(e.to_string());
                        Some(other)
                    }
                }
            }
        };
        match event {
            Some(event) => self.apply_grouped(job.vm_id, event, input),
            None => self.settle(job.vm_id, job.op),
        }
    }

    /// The awaited step of operation `op` ended without an event.
    fn settle(&self, vm_id: u64, op: u64) -> Result<()> {
        let guard = self.writer.lock()?;
        let vm = self.get(vm_id)?;
        if vm
            .pending
            .as_ref()
            .is_some_and(|p| p.op == op && p.awaited.is_some())
        {
            let batch = Batch {
                plans: vec![settled(vm, None)],
                ..Batch::default()
            };
            self.write(&guard, batch, Durability::Background)?;
        }
        Ok(())
    }

    /// The clean-ups of operation `op` ended: forget them.
    fn settle_cleanup(&self, vm_id: u64, op: u64) -> Result<()> {
        let guard = self.writer.lock()?;
        let mut vm = self.get(vm_id)?;
        let Some(pending) = vm.pending.as_mut().filter(|p| p.op == op) else {
            return Ok(());
        };
        pending.cleanup.clear();
        if pending.awaited.is_none() {
            vm.pending = None;
        }
        guard.commit_with(Durability::Background, |tx| {
            tx.set_vm_pending(vm_id, vm.pending.as_ref())
        })?;
        self.write_map()?.insert(vm_id, vm);
        Ok(())
    }

    /// A poll answer with no event: only its figures.
    fn store_figures(&self, vm_id: u64, op: u64, answer: &PollAnswer) -> Result<()> {
        let guard = self.writer.lock()?;
        let vm = self.get(vm_id)?;
        if vm.op == op {
            let batch = Batch {
                plans: figures(vm, Some(answer)).into_iter().collect(),
                ..Batch::default()
            };
            self.write(&guard, batch, Durability::Background)?;
        }
        Ok(())
    }

    /// Marks a VM as polled now, so that the next tick picks others
    /// (memory only).
    pub(super) fn mark_polled(&self, vm_id: u64, time: u64) {
        if let Ok(mut vms) = self.write_map() {
            if let Some(vm) = vms.get_mut(&vm_id) {
                vm.usage.last_poll = time;
            }
        }
    }

    // -----------------------------------------------------------------
    // Internals
    // -----------------------------------------------------------------

    /// The VMs matching `keep`, without cloning the others.
    pub(super) fn select(&self, keep: impl Fn(&Vm) -> bool) -> Result<Vec<Vm>> {
        Ok(self
            .read()?
            .values()
            .filter(|vm| keep(vm))
            .cloned()
            .collect())
    }

    /// Runs `look` over every VM under the read lock, cloning nothing
    /// (start-up counts, the poller's choice among many VMs).
    pub(super) fn scan<T>(
        &self,
        look: impl FnOnce(&mut dyn Iterator<Item = &Vm>) -> T,
    ) -> Result<T> {
        let vms = self.read()?;
        Ok(look(&mut vms.values()))
    }

    /// A VM as the hooks see it.
    fn view<'a>(&'a self, vm: &'a Vm) -> VmView<'a> {
        let mut view = VmView::new(vm.id, &vm.template)
            .owner(vm.uid, &vm.uname)
            .others(self)
            .objects(self);
        if let Some(h) = vm.host() {
            view = view.host(&h.host);
        }
        view
    }

    fn ring(&self) {
        if let Some(bell) = self.bell.get() {
            bell.ring();
        }
    }

    pub(super) fn read(&self) -> Result<RwLockReadGuard<'_, BTreeMap<u64, Vm>>> {
        self.vms
            .read()
            .map_err(|_| Error::Internal("VM pool lock poisoned".into()))
    }

    pub(super) fn write_map(&self) -> Result<RwLockWriteGuard<'_, BTreeMap<u64, Vm>>> {
        self.vms
            .write()
            .map_err(|_| Error::Internal("VM pool lock poisoned".into()))
    }
}

impl Drop for VmPool {
    fn drop(&mut self) {
        // The runner's threads end once the queue is closed.
        self.queue.close();
    }
}

/// Other VMs for `$<vmid>.NAME` (spec/CORE.md §5.2) and the hooks.
impl VmLookup for VmPool {
    fn vm(&self, vmid: u64) -> Option<OtherVm> {
        self.read().ok()?.get(&vmid).map(|vm| OtherVm {
            owner: vm.uid,
            template: vm.template.clone(),
        })
    }
}

/// Networks and images for `$NETWORK[...]` and `$IMAGE[...]` in hook
/// arguments (creation builds its own `create::PoolObjects`).
impl ObjectLookup for VmPool {
    fn network(&self, owner: u64, key: ObjectKey<'_>) -> Option<Template> {
        self.objects().network(owner, key)
    }

    fn image(&self, owner: u64, key: ObjectKey<'_>) -> Option<Template> {
        self.objects().image(owner, key)
    }
}

impl VmPool {
    fn objects(&self) -> create::PoolObjects<'_> {
        create::PoolObjects {
            vnets: &self.vnets,
            images: &self.images,
        }
    }
}

/// The pool's map, already read-locked, as a [`VmLookup`] (creation holds
/// the lock while it substitutes).
struct MapLookup<'a>(&'a BTreeMap<u64, Vm>);

impl VmLookup for MapLookup<'_> {
    fn vm(&self, vmid: u64) -> Option<OtherVm> {
        self.0.get(&vmid).map(|vm| OtherVm {
            owner: vm.uid,
            template: vm.template.clone(),
        })
    }
}

/// The scheduler's view of the pool (`core::sched`).
impl Placement for VmPool {
    fn pending(&self, limit: usize) -> Vec<PendingVm> {
        let Ok(vms) = self.read() else {
            return Vec::new();
        };
        vms.values()
            .filter(|vm| vm.state == State::Pending)
            .take(limit)
            .map(|vm| PendingVm {
                id: vm.id,
                owner: vm.uid,
                cpu: vm.reservation.cpu,
                memory_kb: vm.reservation.mem_kb,
                requirements: vm.attribute("REQUIREMENTS").unwrap_or_default().to_string(),
                rank: vm.attribute("RANK").unwrap_or_default().to_string(),
            })
            .collect()
    }

    fn deploy(&self, vm_id: u64, host_id: u64) -> Result<()> {
        self.deploy_on(vm_id, host_id).map(drop)
    }

    fn unplaced(&self, reasons: &[(u64, String)]) {
        self.set_unplaced(reasons);
    }
}

/// The success and failure events of an awaited step's reply; polls
/// answer with their letter (`MonitorAlive` stands for "by the letter").
fn reply_events(step: Step) -> Option<(Event, Event)> {
    Some(match step {
        Step::TmProlog | Step::TmPrologResume | Step::TmPrologMigrate => {
            (Event::PrologSuccess, Event::PrologFailure)
        }
        Step::TmEpilog | Step::TmEpilogStop => (Event::EpilogSuccess, Event::EpilogFailure),
        Step::VmmDeploy | Step::VmmRestore | Step::VmmMigrate => {
            (Event::DeploySuccess, Event::DeployFailure)
        }
        Step::VmmSave | Step::VmmSavePrevious => (Event::SaveSuccess, Event::SaveFailure),
        Step::VmmShutdown => (Event::ShutdownSuccess, Event::ShutdownFailure),
        Step::VmmCancel => (Event::CancelSuccess, Event::CancelFailure),
        Step::VmmReboot => (Event::RebootSuccess, Event::RebootFailure),
        Step::VmmReset => (Event::ResetSuccess, Event::ResetFailure),
        Step::VmmPoll => (Event::MonitorAlive, Event::MonitorAlive),
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
        | Step::TmEpilogDelete
        | Step::TmEpilogDeletePrevious
        | Step::TmEpilogDeleteStop
        | Step::TmDriverCancel
        | Step::VmmCancelPrevious
        | Step::VmmDriverCancel
        | Step::RetryPending => return None,
    })
}

/// The success and failure events of an awaited step, for recovery.
pub(super) fn step_events(step: Step) -> Option<(Event, Event)> {
    reply_events(step).filter(|(s, _)| *s != Event::MonitorAlive)
}

/// The monitor event of a poll's state letter (spec/CORE.md §1.5);
/// `None` for `-` or no letter.
pub(super) fn monitor_event(answer: &PollAnswer) -> Option<Event> {
    match answer.state? {
        PollState::Active => Some(Event::MonitorAlive),
        PollState::Paused => Some(Event::MonitorSuspend),
        PollState::Error => Some(Event::MonitorFailure),
        PollState::Disappeared => Some(Event::MonitorDone),
        PollState::Unknown => None,
    }
}

/// The step a VM in an LCM state waits for, when its stored pending step
/// was lost (for `recover retry`).
fn default_awaited(vm: &Vm) -> Option<Step> {
    Some(match vm.lcm {
        LcmState::Prolog => Step::TmProlog,
        LcmState::PrologResume => Step::TmPrologResume,
        LcmState::PrologMigrate => Step::TmPrologMigrate,
        LcmState::Boot if vm.deploy_id.is_some() && vm.was_stopped() => Step::VmmRestore,
        LcmState::Boot => Step::VmmDeploy,
        LcmState::Migrate => Step::VmmMigrate,
        LcmState::SaveStop | LcmState::SaveSuspend => Step::VmmSave,
        LcmState::SaveMigrate => Step::VmmSavePrevious,
        LcmState::Shutdown => Step::VmmShutdown,
        LcmState::Cancel => Step::VmmCancel,
        LcmState::Epilog => Step::TmEpilog,
        LcmState::EpilogStop => Step::TmEpilogStop,
        LcmState::LcmInit
        | LcmState::Running
        | LcmState::Failure
        | LcmState::Cleanup
        | LcmState::Unknown => return None,
    })
}

/// Stores a poll's figures and custom attributes (spec/CORE.md §1.5).
/// Custom attributes never replace what the VM's definition says.
fn record_figures(vm: &mut Vm, poll: &PollAnswer, time: u64) {
    const DEFINITION: &[&str] = &[
        "NAME",
        "VMID",
        "MEMORY",
        "CPU",
        "VCPU",
        "OS",
        "DISK",
        "NIC",
        "INPUT",
        "GRAPHICS",
        "REQUIREMENTS",
        "RANK",
        "CONTEXT",
        "RAW",
    ];
    let usage = &mut vm.usage;
    usage.cpu = poll.used_cpu.unwrap_or(usage.cpu);
    usage.memory_kb = poll.used_memory.unwrap_or(usage.memory_kb);
    usage.net_rx = poll.net_rx.unwrap_or(usage.net_rx);
    usage.net_tx = poll.net_tx.unwrap_or(usage.net_tx);
    usage.last_poll = time;
    for attribute in poll.extra.attributes() {
        let Some(value) = attribute.value.as_single() else {
            continue;
        };
        let name = attribute.name.as_str();
        if DEFINITION.contains(&name) || vm.template.vector(name).is_some() {
            continue;
        }
        if vm.template.get(name) != Some(value) {
            vm.template.set(name, value);
        }
    }
}

fn seq_number(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

fn record_index(vm: &Vm, which: Record) -> Option<usize> {
    let n = vm.history.len();
    match which {
        Record::Current => n.checked_sub(1),
        Record::Previous => n.checked_sub(2),
    }
}

fn missing_record(vm_id: u64, step: Step) {
    tracing::warn!(
        vm = vm_id,
        "VM {vm_id}: {step}: no such history record; skipped"
    );
}

fn set_stamp(record: &mut History, stamp: Stamp, time: u64) {
    let field = match stamp {
        Stamp::Stime => &mut record.stime,
        Stamp::Etime => &mut record.etime,
        Stamp::Pstime => &mut record.pstime,
        Stamp::Petime => &mut record.petime,
        Stamp::Rstime => &mut record.rstime,
        Stamp::Retime => &mut record.retime,
        Stamp::Estime => &mut record.estime,
        Stamp::Eetime => &mut record.eetime,
    };
    *field = time;
}

/// The reason's short form in `history` listings (spec/CORE.md §2).
pub fn reason_short(reason: Reason) -> &'static str {
    match reason {
        Reason::None => "none",
        Reason::Error => "erro",
        Reason::StopResume => "stop",
        Reason::User => "user",
        Reason::Cancel => "canc",
    }
}
