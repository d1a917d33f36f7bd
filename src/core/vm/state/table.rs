//! The transition table: [`next`] (CORE.md §1.8, with the details of
//! §1.4 actions, §1.5 monitoring, §1.6 capacity, §2 history and the
//! 3.0+ column of §1.7). User actions are allowed or [`Refused`]; driver
//! and monitor replies apply or are [`Ignore`]d, never refused.
//!
//! `H` and `P` in comments and steps are the current and previous
//! history records, as in CORE.md §1.4.

use std::fmt;

use super::step::Record::{Current as H, Previous as P};
use super::step::Stamp::{Eetime, Estime, Etime, Petime, Pstime, Retime, Rstime, Stime};
use super::{short_name, Event, LcmState, Reason, Recovery, Stamp, State, Step};
use crate::core::error::{Error, Kind};

/// Where a VM goes and what the runner does to get it there: write
/// `state`, `lcm` and the bookkeeping steps in one transaction, then
/// start the driver steps, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The new DM state.
    pub state: State,
    /// The new LCM state (`LCM_INIT` unless `state` is ACTIVE).
    pub lcm: LcmState,
    /// What to do, bookkeeping first, then driver operations.
    pub steps: Vec<Step>,
}

impl Transition {
    /// The driver step whose reply is the VM's next event, i.e. the one
    /// to persist as the pending step (CORE.md §8.4): the last step of a
    /// transition that stays ACTIVE, if it is a driver step. The driver
    /// steps of a transition that leaves ACTIVE (clean-ups on delete and
    /// resubmit) are fire-and-forget: their replies find the VM in
    /// `LCM_INIT` and are ignored.
    pub fn awaited(&self) -> Option<Step> {
        if self.state != State::Active {
            return None;
        }
        self.steps.last().copied().filter(|step| step.is_driver())
    }
}

/// `ACTIVE/PROLOG [open_history, H.stime=now, …]`.
impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} [", self.state, self.lcm)?;
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{step}")?;
        }
        f.write_str("]")
    }
}

/// Why a driver or monitor reply changed nothing. The runner logs it
/// ("Ignored: …", CORE.md §1.2) and drops the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignore {
    /// The VM waits for no driver: not ACTIVE, or ACTIVE in `LCM_INIT`,
    /// `CLEANUP` or `FAILURE`. Late replies of cancelled operations land
    /// here, which is what makes delete during an operation safe.
    DeadState,
    /// The VM is alive but not in a state this reply is for ("VM in a
    /// wrong state"): a duplicated, late or misrouted reply.
    WrongState,
}

impl fmt::Display for Ignore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ignore::DeadState => "ignored (dead state)",
            Ignore::WrongState => "ignored (wrong state)",
        })
    }
}

/// What an allowed or applicable event leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Go there (possibly the same pair) and follow the steps.
    Transition(Transition),
    /// A reply that does not apply; nothing changes.
    Ignored(Ignore),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Transition(t) => t.fmt(f),
            Outcome::Ignored(why) => why.fmt(f),
        }
    }
}

/// A user action the VM's state does not allow (OpenNebula's "Wrong state
/// to perform action"). Becomes [`Error::InvalidState`] with
/// [`Refused::into_error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The VM's DM state.
    pub state: State,
    /// The VM's LCM state.
    pub lcm: LcmState,
    /// The refused action.
    pub event: Event,
}

impl Refused {
    /// The core error for VM `id`: "cannot suspend virtual machine 7 in
    /// state pend", naming the state as the CLI shows it.
    pub fn into_error(self, id: impl fmt::Display) -> Error {
        Error::InvalidState {
            kind: Kind::Vm,
            id: id.to_string(),
            state: short_name(self.state, self.lcm).to_string(),
            action: self.action().to_string(),
        }
    }

    fn action(&self) -> &'static str {
        // Only user actions are refused; the name is a fallback.
        self.event.action().unwrap_or(self.event.name())
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} a virtual machine in state {}",
            self.action(),
            short_name(self.state, self.lcm)
        )
    }
}

impl std::error::Error for Refused {}

/// Whether only oneadmin may ask for this (CORE.md §1.3, §8.4): actions
/// that pick a host (deploy, migrate, livemigrate) and `recover`. Driver
/// replies are not asked for by anyone: `false`.
pub fn admin_only(event: Event) -> bool {
    match event {
        Event::Deploy { .. } | Event::LiveMigrate | Event::Migrate | Event::Recover(_) => true,
        Event::Shutdown
        | Event::Cancel
        | Event::Hold
        | Event::Release
        | Event::Stop
        | Event::Suspend
        | Event::Resume
        | Event::Delete
        | Event::Restart
        | Event::Resubmit
        | Event::Reboot
        | Event::Reset
        | Event::PrologSuccess
        | Event::PrologFailure
        | Event::DeploySuccess
        | Event::DeployFailure
        | Event::SaveSuccess
        | Event::SaveFailure
        | Event::ShutdownSuccess
        | Event::ShutdownFailure
        | Event::CancelSuccess
        | Event::CancelFailure
        | Event::EpilogSuccess
        | Event::EpilogFailure
        | Event::RebootSuccess
        | Event::RebootFailure
        | Event::ResetSuccess
        | Event::ResetFailure
        | Event::MonitorAlive
        | Event::MonitorSuspend
        | Event::MonitorFailure
        | Event::MonitorDone => false,
    }
}

/// The life-cycle table. A user action gives a [`Transition`] or
/// [`Refused`]; a reply gives a [`Transition`] or [`Outcome::Ignored`].
///
/// Outside ACTIVE the LCM state is not consulted (it must be `LCM_INIT`
/// there, CORE.md §1.1): a stored pair like `PENDING/RUNNING` behaves as
/// `PENDING`, as OpenNebula's dispatch manager would treat it.
pub fn next(state: State, lcm: LcmState, event: Event) -> Result<Outcome, Refused> {
    let refused = Refused { state, lcm, event };
    let lcm = if state == State::Active {
        lcm
    } else {
        LcmState::LcmInit
    };
    let running = state == State::Active && lcm == LcmState::Running;
    let allow = |transition: Option<Transition>| transition.map(Outcome::Transition).ok_or(refused);
    match event {
        Event::Deploy { resume } => allow((state == State::Pending).then(|| deploy(resume))),
        Event::Shutdown => {
            allow(running.then(|| active(LcmState::Shutdown, vec![Step::VmmShutdown])))
        }
        Event::Cancel => allow(running.then(|| active(LcmState::Cancel, vec![Step::VmmCancel]))),
        Event::LiveMigrate => allow(running.then(live_migrate)),
        Event::Migrate => allow(running.then(migrate)),
        Event::Hold => allow((state == State::Pending).then(|| dm(State::Hold, vec![]))),
        Event::Release => allow((state == State::Hold).then(|| dm(State::Pending, vec![]))),
        Event::Stop => allow(running.then(|| active(LcmState::SaveStop, vec![Step::VmmSave]))),
        Event::Suspend => {
            allow(running.then(|| active(LcmState::SaveSuspend, vec![Step::VmmSave])))
        }
        Event::Resume => allow(resume(state)),
        Event::Delete => allow(Some(delete(state, lcm))),
        Event::Restart => allow(restart(state, lcm)),
        Event::Resubmit => allow(resubmit(state, lcm)),
        Event::Reboot => allow(running.then(|| active(LcmState::Running, vec![Step::VmmReboot]))),
        Event::Reset => allow(running.then(|| active(LcmState::Running, vec![Step::VmmReset]))),
        Event::Recover(how) => allow(recover(state, lcm, how)),
        Event::PrologSuccess => Ok(reply(state, lcm, prolog_success)),
        Event::PrologFailure => Ok(reply(state, lcm, prolog_failure)),
        Event::DeploySuccess => Ok(reply(state, lcm, deploy_success)),
        Event::DeployFailure => Ok(reply(state, lcm, deploy_failure)),
        Event::SaveSuccess => Ok(reply(state, lcm, save_success)),
        Event::SaveFailure => Ok(reply(state, lcm, save_failure)),
        Event::ShutdownSuccess => Ok(reply(state, lcm, shutdown_success)),
        Event::ShutdownFailure => Ok(reply(state, lcm, shutdown_failure)),
        Event::CancelSuccess => Ok(reply(state, lcm, cancel_success)),
        Event::CancelFailure => Ok(reply(state, lcm, cancel_failure)),
        Event::EpilogSuccess => Ok(reply(state, lcm, epilog_success)),
        Event::EpilogFailure => Ok(reply(state, lcm, epilog_failure)),
        Event::RebootSuccess | Event::RebootFailure | Event::ResetSuccess | Event::ResetFailure => {
            Ok(reply(state, lcm, reboot_or_reset_done))
        }
        Event::MonitorAlive => Ok(reply(state, lcm, monitor_alive)),
        Event::MonitorSuspend => Ok(reply(state, lcm, monitor_suspend)),
        Event::MonitorFailure => Ok(reply(state, lcm, monitor_failure)),
        Event::MonitorDone => Ok(reply(state, lcm, monitor_done)),
    }
}

// ---------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------

/// To `ACTIVE/lcm`.
fn active(lcm: LcmState, steps: Vec<Step>) -> Transition {
    Transition {
        state: State::Active,
        lcm,
        steps,
    }
}

/// To a DM state other than ACTIVE (LCM state `LCM_INIT`).
fn dm(state: State, steps: Vec<Step>) -> Transition {
    Transition {
        state,
        lcm: LcmState::LcmInit,
        steps,
    }
}

/// The failure path (CORE.md §1.4, 3.0 flavour): `phase` is the history
/// time that closes the phase which failed. Host files stay for
/// inspection (removed on delete/resubmit), leases until delete.
fn fail(phase: Stamp) -> Transition {
    dm(
        State::Failed,
        vec![
            Step::Stamp(H, phase),
            Step::Stamp(H, Etime),
            Step::SetReason(H, Reason::Error),
            Step::ReleaseCapacity(H),
            Step::SetExitTime,
        ],
    )
}

/// DONE: exit time, leases and images back (CORE.md §1.4, §1.7), after
/// the `before` bookkeeping; then the fire-and-forget `drivers`.
fn done(before: Vec<Step>, drivers: Vec<Step>) -> Transition {
    let mut steps = before;
    steps.extend([Step::SetExitTime, Step::ReleaseLeases, Step::ReleaseImages]);
    steps.extend(drivers);
    dm(State::Done, steps)
}

/// The stay on `P` ends because the VM moved (migration success, or the
/// bookkeeping of a failed one).
const CLOSE_PREVIOUS: [Step; 3] = [
    Step::Stamp(P, Etime),
    Step::Stamp(P, Retime),
    Step::SetReason(P, Reason::User),
];

/// SUSPENDED after a save for suspend or a poll that found the VM paused:
/// files stay on the host, capacity does not (CORE.md §1.4 suspend).
fn suspended() -> Transition {
    dm(
        State::Suspended,
        vec![
            Step::Stamp(H, Retime),
            Step::Stamp(H, Etime),
            Step::SetReason(H, Reason::StopResume),
            Step::ReleaseCapacity(H),
        ],
    )
}

/// A failed save for migrate or a failed live migration: back to RUNNING
/// on the source. The target's record closes with ERROR and gives its
/// capacity back, the source's closes with USER, and a copy of it makes
/// the source current again; then poll (CORE.md §1.4 livemigrate).
fn migration_failed() -> Transition {
    let mut steps = vec![Step::Stamp(H, Etime), Step::SetReason(H, Reason::Error)];
    steps.extend(CLOSE_PREVIOUS);
    steps.extend([
        Step::ReleaseCapacity(H),
        Step::CopyHistory(P),
        Step::Stamp(H, Stime),
        Step::Stamp(H, Rstime),
        Step::VmmPoll,
    ]);
    active(LcmState::Running, steps)
}

/// The LCM clean-up of an ACTIVE VM on delete or resubmit (CORE.md §1.4
/// delete table): bookkeeping, then fire-and-forget driver steps.
fn clean_up(lcm: LcmState) -> (Vec<Step>, Vec<Step>) {
    let end_stay = |phase| {
        vec![
            Step::Stamp(H, Etime),
            Step::SetReason(H, Reason::User),
            Step::ReleaseCapacity(H),
            Step::Stamp(H, phase),
        ]
    };
    // A migration in flight holds capacity on both hosts (§1.6).
    let end_both_stays = || {
        let mut steps = end_stay(Retime);
        steps.extend(CLOSE_PREVIOUS);
        steps.push(Step::ReleaseCapacity(P));
        steps
    };
    match lcm {
        LcmState::Prolog | LcmState::PrologResume => (
            end_stay(Petime),
            vec![Step::TmDriverCancel, Step::TmEpilogDelete],
        ),
        LcmState::Boot
        | LcmState::Running
        | LcmState::Unknown
        | LcmState::Shutdown
        | LcmState::Cancel
        | LcmState::SaveStop
        | LcmState::SaveSuspend => (
            end_stay(Retime),
            vec![Step::VmmDriverCancel, Step::VmmCancel, Step::TmEpilogDelete],
        ),
        LcmState::Migrate => (
            end_both_stays(),
            vec![
                Step::VmmDriverCancel,
                Step::VmmCancel,
                Step::VmmCancelPrevious,
                Step::TmEpilogDelete,
            ],
        ),
        // Nothing reached the target yet: only the source is cleaned.
        LcmState::SaveMigrate => (
            end_both_stays(),
            vec![
                Step::VmmDriverCancel,
                Step::VmmCancelPrevious,
                Step::TmEpilogDeletePrevious,
            ],
        ),
        // P was closed and its capacity freed when the save succeeded.
        LcmState::PrologMigrate => (
            end_stay(Petime),
            vec![
                Step::TmDriverCancel,
                Step::TmEpilogDelete,
                Step::TmEpilogDeletePrevious,
            ],
        ),
        LcmState::Epilog | LcmState::EpilogStop => (
            end_stay(Eetime),
            vec![Step::TmDriverCancel, Step::TmEpilogDelete],
        ),
        // The failure path already closed H and freed the capacity
        // (OpenNebula 3.0 frees it a second time here; we do not).
        LcmState::Failure => (vec![], vec![Step::TmEpilogDelete]),
        // Nothing to tear down: in LCM_INIT nothing was reserved yet, in
        // CLEANUP it was already given back.
        LcmState::LcmInit | LcmState::Cleanup => (vec![], vec![]),
    }
}

// ---------------------------------------------------------------------
// User actions (CORE.md §1.3, §1.4)
// ---------------------------------------------------------------------

/// PENDING → PROLOG, or PROLOG_RESUME for a VM that was stopped.
fn deploy(resume: bool) -> Transition {
    let (lcm, prolog) = if resume {
        (LcmState::PrologResume, Step::TmPrologResume)
    } else {
        (LcmState::Prolog, Step::TmProlog)
    };
    active(
        lcm,
        vec![
            Step::OpenHistory,
            Step::Stamp(H, Stime),
            Step::Stamp(H, Pstime),
            Step::ReserveCapacity(H),
            prolog,
        ],
    )
}

/// RUNNING → MIGRATE: the target's record opens and reserves; the
/// migrate runs on the source (`P`).
fn live_migrate() -> Transition {
    active(
        LcmState::Migrate,
        vec![
            Step::OpenHistory,
            Step::Stamp(H, Stime),
            Step::ReserveCapacity(H),
            Step::VmmMigrate,
        ],
    )
}

/// RUNNING → SAVE_MIGRATE: the target's record opens and reserves; the
/// save runs on the source (`P`).
fn migrate() -> Transition {
    active(
        LcmState::SaveMigrate,
        vec![
            Step::OpenHistory,
            Step::Stamp(H, Stime),
            Step::ReserveCapacity(H),
            Step::VmmSavePrevious,
        ],
    )
}

/// STOPPED → PENDING (the next deploy takes the PROLOG_RESUME branch);
/// SUSPENDED → BOOT on the same host, reserving without checking.
fn resume(state: State) -> Option<Transition> {
    match state {
        State::Stopped => Some(dm(State::Pending, vec![])),
        State::Suspended => Some(active(
            LcmState::Boot,
            vec![
                Step::CopyHistory(H),
                Step::Stamp(H, Stime),
                Step::Stamp(H, Rstime),
                Step::ReserveCapacity(H),
                Step::VmmRestore,
            ],
        )),
        State::Init
        | State::Pending
        | State::Hold
        | State::Active
        | State::Done
        | State::Failed => None,
    }
}

/// Re-send the deploy, same host, same file; from UNKNOWN or BOOT. No
/// history or capacity change.
fn restart(state: State, lcm: LcmState) -> Option<Transition> {
    let stuck = state == State::Active && matches!(lcm, LcmState::Unknown | LcmState::Boot);
    stuck.then(|| active(LcmState::Boot, vec![Step::VmmDeploy]))
}

/// DONE from anywhere; a no-op in DONE.
fn delete(state: State, lcm: LcmState) -> Transition {
    match state {
        State::Init | State::Pending | State::Hold => done(vec![], vec![]),
        // cloudgate removes the front-end copy (3.8), unlike 1.4.
        State::Stopped => done(vec![], vec![Step::TmEpilogDeleteStop]),
        // 3.0+: a FAILED VM's host files were kept for inspection.
        State::Suspended | State::Failed => done(vec![], vec![Step::TmEpilogDelete]),
        State::Active => {
            let (before, drivers) = clean_up(lcm);
            done(before, drivers)
        }
        State::Done => dm(State::Done, vec![]),
    }
}

/// Back to PENDING, keeping leases (2.2+); refused in SUSPENDED ("resume
/// it first") and DONE; nothing to do in INIT and PENDING.
fn resubmit(state: State, lcm: LcmState) -> Option<Transition> {
    match state {
        State::Suspended | State::Done => None,
        State::Init | State::Pending => Some(dm(state, vec![])),
        State::Hold | State::Stopped => Some(dm(State::Pending, vec![])),
        State::Failed => Some(dm(State::Pending, vec![Step::TmEpilogDelete])),
        State::Active => {
            let (mut steps, drivers) = clean_up(lcm);
            steps.extend(drivers);
            Some(dm(State::Pending, steps))
        }
    }
}

/// Admin `recover` (CORE.md §8.4) of a VM waiting for a driver reply:
/// success and failure act as that reply would; retry starts the awaited
/// operation again and stays.
fn recover(state: State, lcm: LcmState, how: Recovery) -> Option<Transition> {
    if state != State::Active {
        return None;
    }
    let (success, failure) = awaited_replies(lcm)?;
    let reply = match how {
        Recovery::Success => success,
        Recovery::Failure => failure,
        Recovery::Retry => return Some(active(lcm, vec![Step::RetryPending])),
    };
    match next(state, lcm, reply) {
        Ok(Outcome::Transition(transition)) => Some(transition),
        // Cannot happen: awaited_replies names replies this state takes.
        Ok(Outcome::Ignored(_)) | Err(_) => None,
    }
}

/// The success and failure replies an LCM state is waiting for; `None`
/// where it waits for none.
fn awaited_replies(lcm: LcmState) -> Option<(Event, Event)> {
    match lcm {
        LcmState::Prolog | LcmState::PrologResume | LcmState::PrologMigrate => {
            Some((Event::PrologSuccess, Event::PrologFailure))
        }
        LcmState::Boot | LcmState::Migrate => Some((Event::DeploySuccess, Event::DeployFailure)),
        LcmState::SaveStop | LcmState::SaveSuspend | LcmState::SaveMigrate => {
            Some((Event::SaveSuccess, Event::SaveFailure))
        }
        LcmState::Shutdown => Some((Event::ShutdownSuccess, Event::ShutdownFailure)),
        LcmState::Cancel => Some((Event::CancelSuccess, Event::CancelFailure)),
        LcmState::Epilog | LcmState::EpilogStop => {
            Some((Event::EpilogSuccess, Event::EpilogFailure))
        }
        LcmState::LcmInit
        | LcmState::Running
        | LcmState::Failure
        | LcmState::Cleanup
        | LcmState::Unknown => None,
    }
}

// ---------------------------------------------------------------------
// Driver and monitor replies (CORE.md §1.2, §1.4, §1.5)
// ---------------------------------------------------------------------

/// Dead states first (ignored, CORE.md §1.2), then the handler, which
/// answers `None` for a live state it is not for.
fn reply(state: State, lcm: LcmState, handler: fn(LcmState) -> Option<Transition>) -> Outcome {
    let dead = state != State::Active
        || matches!(
            lcm,
            LcmState::LcmInit | LcmState::Cleanup | LcmState::Failure
        );
    if dead {
        return Outcome::Ignored(Ignore::DeadState);
    }
    handler(lcm).map_or(Outcome::Ignored(Ignore::WrongState), Outcome::Transition)
}

fn prolog_success(lcm: LcmState) -> Option<Transition> {
    let boot = match lcm {
        LcmState::Prolog => Step::VmmDeploy,
        // The checkpoint came along: from the front-end or the old host.
        LcmState::PrologResume | LcmState::PrologMigrate => Step::VmmRestore,
        _ => return None,
    };
    Some(active(
        LcmState::Boot,
        vec![Step::Stamp(H, Petime), Step::Stamp(H, Rstime), boot],
    ))
}

fn prolog_failure(lcm: LcmState) -> Option<Transition> {
    matches!(
        lcm,
        LcmState::Prolog | LcmState::PrologResume | LcmState::PrologMigrate
    )
    .then(|| fail(Petime))
}

fn deploy_success(lcm: LcmState) -> Option<Transition> {
    match lcm {
        LcmState::Boot => Some(active(LcmState::Running, vec![Step::StoreDeployId])),
        // Live migration done: the source's stay ends and frees.
        LcmState::Migrate => {
            let mut steps = vec![Step::Stamp(H, Rstime)];
            steps.extend(CLOSE_PREVIOUS);
            steps.push(Step::ReleaseCapacity(P));
            Some(active(LcmState::Running, steps))
        }
        _ => None,
    }
}

fn deploy_failure(lcm: LcmState) -> Option<Transition> {
    match lcm {
        LcmState::Boot => Some(fail(Retime)),
        LcmState::Migrate => Some(migration_failed()),
        _ => None,
    }
}

fn save_success(lcm: LcmState) -> Option<Transition> {
    match lcm {
        LcmState::SaveStop => Some(active(
            LcmState::EpilogStop,
            vec![
                Step::Stamp(H, Estime),
                Step::Stamp(H, Retime),
                Step::SetReason(H, Reason::StopResume),
                Step::TmEpilogStop,
            ],
        )),
        LcmState::SaveSuspend => Some(suspended()),
        // Saved on the source: its stay ends and frees; move the files.
        LcmState::SaveMigrate => {
            let mut steps = CLOSE_PREVIOUS.to_vec();
            steps.extend([
                Step::Stamp(H, Pstime),
                Step::ReleaseCapacity(P),
                Step::TmPrologMigrate,
            ]);
            Some(active(LcmState::PrologMigrate, steps))
        }
        _ => None,
    }
}

fn save_failure(lcm: LcmState) -> Option<Transition> {
    match lcm {
        // "Assuming the VM is still running": poll to find out.
        LcmState::SaveStop | LcmState::SaveSuspend => {
            Some(active(LcmState::Running, vec![Step::VmmPoll]))
        }
        LcmState::SaveMigrate => Some(migration_failed()),
        _ => None,
    }
}

/// The VM is gone from the host: save the disks and clean it.
fn to_epilog(reason: Option<Reason>) -> Transition {
    let mut steps: Vec<Step> = reason.map(|r| Step::SetReason(H, r)).into_iter().collect();
    steps.extend([
        Step::Stamp(H, Estime),
        Step::Stamp(H, Retime),
        Step::TmEpilog,
    ]);
    active(LcmState::Epilog, steps)
}

fn shutdown_success(lcm: LcmState) -> Option<Transition> {
    (lcm == LcmState::Shutdown).then(|| to_epilog(None))
}

fn shutdown_failure(lcm: LcmState) -> Option<Transition> {
    (lcm == LcmState::Shutdown).then(|| active(LcmState::Running, vec![Step::VmmPoll]))
}

/// 3.0+: a cancel runs the epilog like a shutdown (CORE.md §1.7).
fn cancel_success(lcm: LcmState) -> Option<Transition> {
    (lcm == LcmState::Cancel).then(|| to_epilog(Some(Reason::Cancel)))
}

fn cancel_failure(lcm: LcmState) -> Option<Transition> {
    (lcm == LcmState::Cancel).then(|| active(LcmState::Running, vec![Step::VmmPoll]))
}

fn epilog_success(lcm: LcmState) -> Option<Transition> {
    let close = vec![
        Step::Stamp(H, Eetime),
        Step::Stamp(H, Etime),
        Step::ReleaseCapacity(H),
    ];
    match lcm {
        LcmState::Epilog => Some(done(close, vec![])),
        LcmState::EpilogStop => Some(dm(State::Stopped, close)),
        _ => None,
    }
}

fn epilog_failure(lcm: LcmState) -> Option<Transition> {
    matches!(lcm, LcmState::Epilog | LcmState::EpilogStop).then(|| fail(Eetime))
}

/// Reboot and reset change no state in either outcome (CORE.md §1.4);
/// the reply only clears the pending step.
fn reboot_or_reset_done(lcm: LcmState) -> Option<Transition> {
    (lcm == LcmState::Running).then(|| active(LcmState::Running, vec![]))
}

/// `a`: nothing in RUNNING (the runner stores the figures); UNKNOWN →
/// RUNNING ("VM was now found").
fn monitor_alive(lcm: LcmState) -> Option<Transition> {
    matches!(lcm, LcmState::Running | LcmState::Unknown).then(|| active(LcmState::Running, vec![]))
}

/// `p`: in RUNNING or UNKNOWN, like a suspend that succeeded.
fn monitor_suspend(lcm: LcmState) -> Option<Transition> {
    matches!(lcm, LcmState::Running | LcmState::Unknown).then(suspended)
}

/// `e`: in RUNNING or UNKNOWN, the failure path.
fn monitor_failure(lcm: LcmState) -> Option<Transition> {
    matches!(lcm, LcmState::Running | LcmState::Unknown).then(|| fail(Retime))
}

/// `d`: RUNNING → UNKNOWN, keeping the capacity (restart or delete are
/// the ways out); nothing more in UNKNOWN.
fn monitor_done(lcm: LcmState) -> Option<Transition> {
    matches!(lcm, LcmState::Running | LcmState::Unknown).then(|| active(LcmState::Unknown, vec![]))
}
