//! VM hooks (spec/DRIVERS.md §8): the configured `VM_HOOK`s as
//! [`HookSpec`]s, and the [`HookManager`] that fires them when a VM is
//! created or its `(state, LCM state)` pair changes to one of the pairs of
//! [`HookOn`].
//!
//! Firing substitutes the hook's `arguments` against the VM ([`VmView`],
//! CORE.md §5.2) on the caller's thread, so the VM can be released at once,
//! then runs the command through [`Drivers::hook`] on a background thread:
//! on the front-end, or on the VM's host for `remote = yes`. Hooks of one
//! VM run one after the other in the order fired (a "running" hook ends
//! before the "done" hook of the same VM starts); hooks of different VMs
//! run side by side. A hook's result never reaches the VM: a failure, or a
//! hook that cannot run at all, is only logged (tracing, target
//! `cloudgate::core::hooks`), with OpenNebula's words.
//!
//! How the VM pool calls it: [`HookManager::on_create`] once the VM is
//! allocated and stored, and [`HookManager::on_transition`] with the
//! persisted previous pair and the new pair after every state change is
//! committed (also when the change comes from a driver reply or from
//! monitoring).
//!
//! May use: `crate::template` and the rest of `crate::core` (the
//! [`Drivers`] port runs the commands; no process is started here).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::core::caller::ADMIN_UID;
use crate::core::context::{NoObjects, NoVms, ObjectLookup, VmLookup, VmResolver};
use crate::core::ports::{Drivers, HookRequest, HookSite, ScriptEnv};
use crate::core::vm::state::{LcmState, State};
use crate::core::Caller;
use crate::template::{substitute, Template};

/// When a hook fires (`on`, DRIVERS.md §8): at allocation, or when the
/// VM's pair changes *to* the one named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookOn {
    /// The VM was allocated; always runs on the front-end.
    Create,
    /// `(ACTIVE, PROLOG)` (3.x).
    Prolog,
    /// `(ACTIVE, RUNNING)`: also after a migration, a resume, or UNKNOWN.
    Running,
    /// `(ACTIVE, EPILOG)`: shutdown, and cancel (which runs the epilog).
    Shutdown,
    /// `(STOPPED, LCM_INIT)`.
    Stop,
    /// `(DONE, LCM_INIT)`: shutdown, cancel and delete.
    Done,
    /// `(FAILED, LCM_INIT)` (3.x).
    Failed,
    /// `(ACTIVE, UNKNOWN)` (3.x).
    Unknown,
}

impl HookOn {
    /// Every event, in life-cycle order.
    pub const ALL: [HookOn; 8] = [
        HookOn::Create,
        HookOn::Prolog,
        HookOn::Running,
        HookOn::Shutdown,
        HookOn::Stop,
        HookOn::Done,
        HookOn::Failed,
        HookOn::Unknown,
    ];

    /// The upper-case name written in `on = ...`.
    pub fn name(self) -> &'static str {
        match self {
            HookOn::Create => "CREATE",
            HookOn::Prolog => "PROLOG",
            HookOn::Running => "RUNNING",
            HookOn::Shutdown => "SHUTDOWN",
            HookOn::Stop => "STOP",
            HookOn::Done => "DONE",
            HookOn::Failed => "FAILED",
            HookOn::Unknown => "UNKNOWN",
        }
    }

    /// The event of entering `(state, lcm)`, if any. Only the exact pairs
    /// of DRIVERS.md §8: `PROLOG_MIGRATE` and `PROLOG_RESUME` are not
    /// `PROLOG`, `EPILOG_STOP` is not `SHUTDOWN` (the stop fires `STOP`).
    pub fn entered(state: State, lcm: LcmState) -> Option<HookOn> {
        match (state, lcm) {
            (State::Active, LcmState::Prolog) => Some(HookOn::Prolog),
            (State::Active, LcmState::Running) => Some(HookOn::Running),
            (State::Active, LcmState::Epilog) => Some(HookOn::Shutdown),
            (State::Active, LcmState::Unknown) => Some(HookOn::Unknown),
            (State::Stopped, _) => Some(HookOn::Stop),
            (State::Done, _) => Some(HookOn::Done),
            (State::Failed, _) => Some(HookOn::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for HookOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One configured `VM_HOOK`, as the core takes it from the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookSpec {
    /// Label for logs (the config defaults it to the command).
    pub name: String,
    /// When it fires.
    pub on: HookOn,
    /// An absolute path, or a path under the remotes' `hooks/`.
    pub command: String,
    /// Argument text with `$` references; empty for none.
    pub arguments: String,
    /// Run on the VM's host (`remote = yes`) instead of the front-end.
    pub remote: bool,
}

/// The VM a hook fires for, as much as substitution and placement need.
/// Borrowed: everything is read while firing, nothing is kept.
pub struct VmView<'a> {
    /// The VM's id (`$VMID`, `$ID`).
    pub id: u64,
    /// The owner's uid (`$UID`).
    pub uid: u64,
    /// The owner's name (`$UNAME`).
    pub uname: &'a str,
    /// The VM's template: `$NAME`, `$NIC[MAC]`, `$CONTEXT[...]`...
    pub template: &'a Template,
    /// The host the VM is on, for remote hooks; `None` before its first
    /// deploy (a remote hook is then skipped).
    pub host: Option<&'a str>,
    /// Other VMs, for `$<vmid>.NAME` (hooks are the administrator's, so
    /// every VM is visible).
    pub others: &'a dyn VmLookup,
    /// Networks and images, for `$NETWORK[...]` and `$IMAGE[...]`: looked
    /// up as the VM's owner sees them, as in its CONTEXT.
    pub objects: &'a dyn ObjectLookup,
}

impl<'a> VmView<'a> {
    /// A VM owned by oneadmin (uid 0, empty `$UNAME`) with no host, no
    /// neighbours, no network and no image; set the rest with the builder
    /// methods or the fields.
    pub fn new(id: u64, template: &'a Template) -> Self {
        VmView {
            id,
            uid: ADMIN_UID,
            uname: "",
            template,
            host: None,
            others: &NoVms,
            objects: &NoObjects,
        }
    }

    /// Sets the owner.
    pub fn owner(mut self, uid: u64, uname: &'a str) -> Self {
        self.uid = uid;
        self.uname = uname;
        self
    }

    /// Sets the host the VM is on.
    pub fn host(mut self, host: &'a str) -> Self {
        self.host = Some(host);
        self
    }

    /// Sets where other VMs are found.
    pub fn others(mut self, others: &'a dyn VmLookup) -> Self {
        self.others = others;
        self
    }

    /// Sets where networks and images are found.
    pub fn objects(mut self, objects: &'a dyn ObjectLookup) -> Self {
        self.objects = objects;
        self
    }
}

/// How long a hook of a VM may wait behind the VM's earlier hooks before
/// the queue is reported as stuck in the log. Only a warning: the
/// driver's own timeout (60 s) ends each hook.
const SLOW_QUEUE: Duration = Duration::from_secs(300);

/// Fires the configured hooks. Shared by the pools (`Send + Sync`).
pub struct HookManager {
    hooks: Vec<HookSpec>,
    drivers: Arc<dyn Drivers>,
    queues: Arc<Queues>,
}

/// The hooks waiting per VM. A VM has an entry exactly while a runner
/// thread works for it.
#[derive(Default)]
struct Queues {
    waiting: Mutex<HashMap<u64, VecDeque<(HookRequest, Instant)>>>,
    emptied: Condvar,
}

impl Queues {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, VecDeque<(HookRequest, Instant)>>> {
        // A runner that panicked leaves the map itself consistent.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HookManager {
    /// The manager of `hooks`, running them through `drivers`. Arguments
    /// that cannot be substituted are reported now, once, as warnings; such
    /// a hook is skipped each time it fires.
    pub fn new(hooks: Vec<HookSpec>, drivers: Arc<dyn Drivers>) -> Self {
        let probe = Template::new();
        let view = VmView::new(0, &probe);
        for hook in &hooks {
            if let Err(e) = arguments(hook, &view) {
                tracing::warn!("VM_HOOK {}: {e}; the hook will not run", hook.name);
            }
        }
        HookManager {
            hooks,
            drivers,
            queues: Arc::default(),
        }
    }

    /// The configured hooks.
    pub fn hooks(&self) -> &[HookSpec] {
        &self.hooks
    }

    /// Fires the `CREATE` hooks of a VM just allocated. Call it once the VM
    /// is stored, after its CONTEXT was substituted.
    pub fn on_create(&self, vm: &VmView<'_>) {
        self.fire(vm, HookOn::Create);
    }

    /// Fires the hooks of the pair `to` if it differs from `from` (both as
    /// persisted: `from` is the pair before the committed change). Call it
    /// after every committed state change of a VM, whatever caused it;
    /// pairs that are no hook event fire nothing.
    pub fn on_transition(&self, vm: &VmView<'_>, from: (State, LcmState), to: (State, LcmState)) {
        if from == to {
            return;
        }
        if let Some(on) = HookOn::entered(to.0, to.1) {
            self.fire(vm, on);
        }
    }

    /// Fires every hook with `on = on` for `vm`: substitutes now, runs in
    /// the background, never fails (problems are logged).
    pub fn fire(&self, vm: &VmView<'_>, on: HookOn) {
        for request in self.requests(vm, on) {
            self.enqueue(request);
        }
    }

    /// What [`fire`](Self::fire) would run, in configuration order: the
    /// hooks with `on = on` whose arguments substitute and which have
    /// somewhere to run (skipped ones are logged).
    pub fn requests(&self, vm: &VmView<'_>, on: HookOn) -> Vec<HookRequest> {
        let mut out = Vec::new();
        for hook in self.hooks.iter().filter(|h| h.on == on) {
            let args = match arguments(hook, vm) {
                Ok(args) => args,
                Err(e) => {
                    tracing::warn!(vm = vm.id, "Error executing Hook: {}: {e}", hook.name);
                    continue;
                }
            };
            // CREATE hooks run on the front-end: a new VM has no host.
            let site = match (hook.remote && on != HookOn::Create, vm.host) {
                (false, _) => HookSite::FrontEnd,
                (true, Some(host)) => HookSite::Host(host.to_owned()),
                (true, None) => {
                    tracing::warn!(
                        vm = vm.id,
                        "Hook {} skipped: remote, and the VM has no host",
                        hook.name
                    );
                    continue;
                }
            };
            out.push(HookRequest {
                vm_id: vm.id,
                // Blanks broke OpenNebula's driver messages; kept out of
                // ours, where the name also labels the action in errors.
                name: hook.name.replace([' ', '\t'], "_"),
                command: hook.command.clone(),
                args,
                site,
                env: ScriptEnv::new(),
            });
        }
        out
    }

    /// Waits until every hook fired so far has ended, at most `timeout`;
    /// whether they all did. For an orderly shutdown and for tests.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut waiting = self.queues.lock();
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            waiting = self
                .queues
                .emptied
                .wait_timeout(waiting, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Queues `request` behind the VM's earlier hooks, starting a runner
    /// for the VM when none works for it.
    fn enqueue(&self, request: HookRequest) {
        let vm_id = request.vm_id;
        let mut waiting = self.queues.lock();
        if let Some(queue) = waiting.get_mut(&vm_id) {
            queue.push_back((request, Instant::now()));
            return;
        }
        waiting.insert(vm_id, VecDeque::from([(request, Instant::now())]));
        drop(waiting);
        let drivers = Arc::clone(&self.drivers);
        let queues = Arc::clone(&self.queues);
        let spawned = thread::Builder::new()
            .name(format!("hooks-vm{vm_id}"))
            .spawn(move || run_queue(vm_id, drivers.as_ref(), &queues));
        if let Err(e) = spawned {
            let dropped = self.queues.lock().remove(&vm_id).map_or(0, |q| q.len());
            self.queues.emptied.notify_all();
            tracing::error!(
                vm = vm_id,
                "cannot start a hook thread ({e}); {dropped} hooks not run"
            );
        }
    }
}

/// A runner: runs the VM's queued hooks in order until the queue is
/// empty, then removes it (under the lock, so a hook queued meanwhile
/// either is seen here or starts a new runner).
fn run_queue(vm_id: u64, drivers: &dyn Drivers, queues: &Queues) {
    loop {
        let next = {
            let mut waiting = queues.lock();
            let next = waiting.get_mut(&vm_id).and_then(VecDeque::pop_front);
            if next.is_none() {
                waiting.remove(&vm_id);
                queues.emptied.notify_all();
            }
            next
        };
        let Some((request, queued)) = next else {
            return;
        };
        let waited = queued.elapsed();
        if waited > SLOW_QUEUE {
            tracing::warn!(
                vm = vm_id,
                "Hook {} started {} s after it fired (earlier hooks of the VM were slow)",
                request.name,
                waited.as_secs()
            );
        }
        // A panicking driver must not leave the VM's queue without a
        // runner: later hooks of the VM would wait forever.
        let result = panic::catch_unwind(AssertUnwindSafe(|| drivers.hook(&request)));
        // OpenNebula's VM log lines (DRIVERS.md §8).
        match result {
            Ok(Ok(_)) => tracing::info!(vm = vm_id, "Hook {} successfully executed.", request.name),
            Ok(Err(e)) => tracing::warn!(vm = vm_id, "Error executing Hook: {}. {e}", request.name),
            Err(_) => tracing::error!(
                vm = vm_id,
                "Error executing Hook: {}. The driver panicked.",
                request.name
            ),
        }
    }
}

/// The hook's arguments for `vm`: the text split on blanks *before*
/// substitution (DRIVERS.md §8, cloudgate), so that a value with blanks
/// stays one argument, then each piece substituted; a missing value is an
/// empty argument, keeping the positions the command expects.
fn arguments(hook: &HookSpec, vm: &VmView<'_>) -> Result<Vec<String>, String> {
    // Hooks are written by the administrator: every VM is visible.
    let admin = Caller {
        uid: ADMIN_UID,
        name: "oneadmin".to_owned(),
    };
    let resolver = VmResolver {
        id: vm.id,
        uid: vm.uid,
        uname: vm.uname,
        template: vm.template,
        viewer: &admin,
        others: vm.others,
        objects: vm.objects,
    };
    split_arguments(&hook.arguments)
        .into_iter()
        .map(|piece| substitute(piece, &resolver).map_err(|e| format!("ARGUMENTS {piece:?}, {e}")))
        .collect()
}

/// Splits argument text on blanks, except blanks inside `[...]` or
/// `"..."`, which belong to a reference such as
/// `$NIC[MAC, NETWORK="Public LAN"]`. Quotes are kept: they are part of the
/// reference's syntax, and elsewhere they are plain characters (no shell
/// reads these arguments).
fn split_arguments(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = None;
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        let blank = c.is_whitespace() && depth == 0 && !quoted;
        match (blank, start) {
            (true, Some(s)) => {
                pieces.push(&text[s..i]);
                start = None;
                continue;
            }
            (true, None) => continue,
            (false, None) => start = Some(i),
            (false, Some(_)) => {}
        }
        match c {
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if let Some(s) = start {
        pieces.push(&text[s..]);
    }
    pieces
}

#[cfg(test)]
mod tests;
