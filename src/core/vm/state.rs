//! The VM life cycle as one pure table (spec/CORE.md §1.8, normative).
//!
//! A VM has two state variables with OpenNebula's numbering (§1.1): the
//! dispatch-manager [`State`] and the life-cycle-manager [`LcmState`], the
//! latter meaningful only while the former is `ACTIVE`. [`next`] takes
//! both and an [`Event`] — a user action (§1.3) or a driver/monitor reply
//! (§1.2, §1.5) — and answers with the new pair plus the [`Step`]s a
//! runner must perform, in order: bookkeeping first (history §2,
//! capacity §1.6, leases), written in one transaction, then the driver
//! operations (DRIVERS.md §2, §5). The runner follows the steps blindly;
//! every decision lives here, so every decision is in the checked-in
//! matrix `tests/data/vm_state_matrix.txt`.
//!
//! Files: `event.rs` (what can happen), `step.rs` (what to do about it),
//! `table.rs` (the table itself), `tests.rs` (the matrix and focused tests).
//!
//! May use: std and `crate::core`'s error types. No I/O, no clock: times
//! are written by the runner as "now" where a step says so.

mod event;
mod step;
mod table;

#[cfg(test)]
mod tests;

pub use event::{Event, Recovery};
pub use step::{Reason, Record, Stamp, Step};
pub use table::{admin_only, next, Ignore, Outcome, Refused, Transition};

use std::fmt;

/// The dispatch-manager state (`STATE`, column `state`; CORE.md §1.1).
/// The numbers are stored and exported in XML and MUST NOT change.
/// OpenNebula 3.8's `POWEROFF` (8) is not part of cloudgate v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// 0 `INIT` — being created (never visible for long).
    Init = 0,
    /// 1 `PENDING` — waiting for the scheduler or a manual deploy.
    Pending = 1,
    /// 2 `HOLD` — pending but not to be scheduled.
    Hold = 2,
    /// 3 `ACTIVE` — has a host; the details are in [`LcmState`].
    Active = 3,
    /// 4 `STOPPED` — saved; images and checkpoint moved to the front-end.
    Stopped = 4,
    /// 5 `SUSPENDED` — saved; the files stay on the host.
    Suspended = 5,
    /// 6 `DONE` — finished (terminal).
    Done = 6,
    /// 7 `FAILED` — an operation failed (terminal until delete/resubmit).
    Failed = 7,
}

impl State {
    /// Every state, in number order.
    pub const ALL: [State; 8] = [
        State::Init,
        State::Pending,
        State::Hold,
        State::Active,
        State::Stopped,
        State::Suspended,
        State::Done,
        State::Failed,
    ];

    /// OpenNebula's number for this state.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// The state with this number; `None` for numbers cloudgate does not
    /// know (including 3.8's `POWEROFF`, 8).
    pub fn from_number(number: u32) -> Option<State> {
        State::ALL.into_iter().find(|s| s.number() == number)
    }

    /// The upper-case name (`PENDING`), as in OpenNebula's XML and logs.
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Pending => "PENDING",
            State::Hold => "HOLD",
            State::Active => "ACTIVE",
            State::Stopped => "STOPPED",
            State::Suspended => "SUSPENDED",
            State::Done => "DONE",
            State::Failed => "FAILED",
        }
    }

    /// The 1.4 CLI's short name of the DM state alone; `ACTIVE` is `actv`,
    /// which users only see for the transient `ACTIVE/LCM_INIT` (see
    /// [`short_name`]).
    fn short(self) -> &'static str {
        match self {
            State::Init => "init",
            State::Pending => "pend",
            State::Hold => "hold",
            State::Active => "actv",
            State::Stopped => "stop",
            State::Suspended => "susp",
            State::Done => "done",
            State::Failed => "fail",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The life-cycle-manager state (`LCM_STATE`, column `lcm_state`;
/// CORE.md §1.1). Meaningful only while [`State::Active`]; `LCM_INIT` in
/// every other state. 3.8's 17–22 (`HOTPLUG`, `BOOT_*`…) are not in v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LcmState {
    /// 0 `LCM_INIT` — not active.
    LcmInit = 0,
    /// 1 `PROLOG` — the TM is transferring images to the host.
    Prolog = 1,
    /// 2 `BOOT` — VMM deploy/restore sent, waiting for the answer.
    Boot = 2,
    /// 3 `RUNNING` — running; polled periodically.
    Running = 3,
    /// 4 `MIGRATE` — live migration in progress.
    Migrate = 4,
    /// 5 `SAVE_STOP` — the VMM is saving the VM for a stop.
    SaveStop = 5,
    /// 6 `SAVE_SUSPEND` — the VMM is saving the VM for a suspend.
    SaveSuspend = 6,
    /// 7 `SAVE_MIGRATE` — the VMM is saving the VM for a cold migration.
    SaveMigrate = 7,
    /// 8 `PROLOG_MIGRATE` — the TM is moving files between hosts.
    PrologMigrate = 8,
    /// 9 `PROLOG_RESUME` — the TM is moving files front-end → host
    /// (deploy of a stopped VM).
    PrologResume = 9,
    /// 10 `EPILOG_STOP` — the TM is moving files host → front-end (stop).
    EpilogStop = 10,
    /// 11 `EPILOG` — the TM is saving disks and cleaning the host
    /// (shutdown, cancel).
    Epilog = 11,
    /// 12 `SHUTDOWN` — VMM shutdown (ACPI) sent.
    Shutdown = 12,
    /// 13 `CANCEL` — VMM cancel (destroy) sent.
    Cancel = 13,
    /// 14 `FAILURE` — transient in OpenNebula: failure being processed.
    Failure = 14,
    /// 15 `CLEANUP` (1.4: `DELETE`) — transient in OpenNebula:
    /// delete/resubmit tearing down an active VM.
    Cleanup = 15,
    /// 16 `UNKNOWN` — the hypervisor no longer reports the VM.
    Unknown = 16,
}

impl LcmState {
    /// Every LCM state, in number order.
    pub const ALL: [LcmState; 17] = [
        LcmState::LcmInit,
        LcmState::Prolog,
        LcmState::Boot,
        LcmState::Running,
        LcmState::Migrate,
        LcmState::SaveStop,
        LcmState::SaveSuspend,
        LcmState::SaveMigrate,
        LcmState::PrologMigrate,
        LcmState::PrologResume,
        LcmState::EpilogStop,
        LcmState::Epilog,
        LcmState::Shutdown,
        LcmState::Cancel,
        LcmState::Failure,
        LcmState::Cleanup,
        LcmState::Unknown,
    ];

    /// OpenNebula's number for this LCM state.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// The LCM state with this number; `None` for numbers cloudgate does
    /// not know (3.8's 17–22 and above).
    pub fn from_number(number: u32) -> Option<LcmState> {
        LcmState::ALL.into_iter().find(|s| s.number() == number)
    }

    /// The upper-case name (`SAVE_MIGRATE`); 15 is `CLEANUP` (2.x+).
    pub fn name(self) -> &'static str {
        match self {
            LcmState::LcmInit => "LCM_INIT",
            LcmState::Prolog => "PROLOG",
            LcmState::Boot => "BOOT",
            LcmState::Running => "RUNNING",
            LcmState::Migrate => "MIGRATE",
            LcmState::SaveStop => "SAVE_STOP",
            LcmState::SaveSuspend => "SAVE_SUSPEND",
            LcmState::SaveMigrate => "SAVE_MIGRATE",
            LcmState::PrologMigrate => "PROLOG_MIGRATE",
            LcmState::PrologResume => "PROLOG_RESUME",
            LcmState::EpilogStop => "EPILOG_STOP",
            LcmState::Epilog => "EPILOG",
            LcmState::Shutdown => "SHUTDOWN",
            LcmState::Cancel => "CANCEL",
            LcmState::Failure => "FAILURE",
            LcmState::Cleanup => "CLEANUP",
            LcmState::Unknown => "UNKNOWN",
        }
    }

    /// The short name shown for an `ACTIVE` VM in this LCM state; `None`
    /// for `LCM_INIT`, which has none ("—" in CORE.md §1.1).
    fn short(self) -> Option<&'static str> {
        match self {
            LcmState::LcmInit => None,
            LcmState::Prolog | LcmState::PrologResume => Some("prol"),
            LcmState::Boot => Some("boot"),
            LcmState::Running => Some("runn"),
            LcmState::Migrate | LcmState::PrologMigrate => Some("migr"),
            LcmState::SaveStop | LcmState::SaveSuspend | LcmState::SaveMigrate => Some("save"),
            LcmState::EpilogStop | LcmState::Epilog => Some("epil"),
            LcmState::Shutdown | LcmState::Cancel => Some("shut"),
            LcmState::Failure => Some("fail"),
            LcmState::Cleanup => Some("clea"),
            LcmState::Unknown => Some("unkn"),
        }
    }
}

impl fmt::Display for LcmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The CLI's `STAT` column (CORE.md §1.1): the DM short name, except for
/// `ACTIVE`, where the LCM short name is shown. `ACTIVE/LCM_INIT` has no
/// LCM short name (OpenNebula shows nothing); we show the DM's own `actv`
/// so that the column is never empty.
pub fn short_name(state: State, lcm: LcmState) -> &'static str {
    match (state, lcm.short()) {
        (State::Active, Some(short)) => short,
        _ => state.short(),
    }
}

/// Whether the pair can be stored: `LCM_STATE` is `LCM_INIT` in every DM
/// state but `ACTIVE` (CORE.md §1.1). [`next`] reads any other pair as its
/// DM state alone, as OpenNebula's dispatch manager does.
pub fn pair_exists(state: State, lcm: LcmState) -> bool {
    state == State::Active || lcm == LcmState::LcmInit
}
