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

numbered! {
    /// The dispatch-manager state (`STATE`, column `state`; CORE.md §1.1).
    /// The numbers are stored and exported in XML and MUST NOT change.
    /// OpenNebula 3.8's `POWEROFF` (8) is not part of cloudgate v1.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum State: u32, from u32 {
        /// 0 `INIT` — being created (never visible for long).
        Init = 0 => "INIT",
        /// 1 `PENDING` — waiting for the scheduler or a manual deploy.
        Pending = 1 => "PENDING",
        /// 2 `HOLD` — pending but not to be scheduled.
        Hold = 2 => "HOLD",
        /// 3 `ACTIVE` — has a host; the details are in [`LcmState`].
        Active = 3 => "ACTIVE",
        /// 4 `STOPPED` — saved; images and checkpoint moved to the front-end.
        Stopped = 4 => "STOPPED",
        /// 5 `SUSPENDED` — saved; the files stay on the host.
        Suspended = 5 => "SUSPENDED",
        /// 6 `DONE` — finished (terminal).
        Done = 6 => "DONE",
        /// 7 `FAILED` — an operation failed (terminal until delete/resubmit).
        Failed = 7 => "FAILED",
    }
}

impl State {
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

numbered! {
    /// The life-cycle-manager state (`LCM_STATE`, column `lcm_state`;
    /// CORE.md §1.1). Meaningful only while [`State::Active`]; `LCM_INIT` in
    /// every other state. 3.8's 17–22 (`HOTPLUG`, `BOOT_*`…) are not in v1.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum LcmState: u32, from u32 {
        /// 0 `LCM_INIT` — not active.
        LcmInit = 0 => "LCM_INIT",
        /// 1 `PROLOG` — the TM is transferring images to the host.
        Prolog = 1 => "PROLOG",
        /// 2 `BOOT` — VMM deploy/restore sent, waiting for the answer.
        Boot = 2 => "BOOT",
        /// 3 `RUNNING` — running; polled periodically.
        Running = 3 => "RUNNING",
        /// 4 `MIGRATE` — live migration in progress.
        Migrate = 4 => "MIGRATE",
        /// 5 `SAVE_STOP` — the VMM is saving the VM for a stop.
        SaveStop = 5 => "SAVE_STOP",
        /// 6 `SAVE_SUSPEND` — the VMM is saving the VM for a suspend.
        SaveSuspend = 6 => "SAVE_SUSPEND",
        /// 7 `SAVE_MIGRATE` — the VMM is saving the VM for a cold migration.
        SaveMigrate = 7 => "SAVE_MIGRATE",
        /// 8 `PROLOG_MIGRATE` — the TM is moving files between hosts.
        PrologMigrate = 8 => "PROLOG_MIGRATE",
        /// 9 `PROLOG_RESUME` — the TM is moving files front-end → host
        /// (deploy of a stopped VM).
        PrologResume = 9 => "PROLOG_RESUME",
        /// 10 `EPILOG_STOP` — the TM is moving files host → front-end (stop).
        EpilogStop = 10 => "EPILOG_STOP",
        /// 11 `EPILOG` — the TM is saving disks and cleaning the host
        /// (shutdown, cancel).
        Epilog = 11 => "EPILOG",
        /// 12 `SHUTDOWN` — VMM shutdown (ACPI) sent.
        Shutdown = 12 => "SHUTDOWN",
        /// 13 `CANCEL` — VMM cancel (destroy) sent.
        Cancel = 13 => "CANCEL",
        /// 14 `FAILURE` — transient in OpenNebula: failure being processed.
        Failure = 14 => "FAILURE",
        /// 15 `CLEANUP` (1.4: `DELETE`) — transient in OpenNebula:
        /// delete/resubmit tearing down an active VM.
        Cleanup = 15 => "CLEANUP",
        /// 16 `UNKNOWN` — the hypervisor no longer reports the VM.
        Unknown = 16 => "UNKNOWN",
    }
}

impl LcmState {
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
