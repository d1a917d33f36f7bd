//! What a transition asks the runner to do, in order: history records
//! (CORE.md §2), host capacity (§1.6), the VM's own columns and leases,
//! then driver operations (DRIVERS.md §2 VMM, §5 TM). Steps are
//! instructions, not data: the host a step names is always the one of
//! the record it names, as that record stands when the step runs.

use std::fmt;

/// Which history record a step is about (CORE.md §1.4 notation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Record {
    /// `H`, the current (last) record.
    Current,
    /// `P`, the one before it.
    Previous,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Record::Current => "H",
            Record::Previous => "P",
        })
    }
}

/// A time field of a history record (CORE.md §2), set to "now".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stamp {
    /// `stime`: stay start.
    Stime,
    /// `etime`: stay end.
    Etime,
    /// `pstime`: prolog start.
    Pstime,
    /// `petime`: prolog end.
    Petime,
    /// `rstime`: running start (VMM command sent).
    Rstime,
    /// `retime`: running end.
    Retime,
    /// `estime`: epilog start.
    Estime,
    /// `eetime`: epilog end.
    Eetime,
}

impl Stamp {
    /// The column / field name (`pstime`).
    pub fn name(self) -> &'static str {
        match self {
            Stamp::Stime => "stime",
            Stamp::Etime => "etime",
            Stamp::Pstime => "pstime",
            Stamp::Petime => "petime",
            Stamp::Rstime => "rstime",
            Stamp::Retime => "retime",
            Stamp::Estime => "estime",
            Stamp::Eetime => "eetime",
        }
    }
}

/// Why a host stay ended (history `reason`, CORE.md §2). The numbers are
/// stored and MUST NOT change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// 0 `NONE`: normal end (e.g. shutdown), or not ended.
    None = 0,
    /// 1 `ERROR`: an operation failed.
    Error = 1,
    /// 2 `STOP_RESUME`: stop or suspend.
    StopResume = 2,
    /// 3 `USER`: migration or delete.
    User = 3,
    /// 4 `CANCEL`: cancel.
    Cancel = 4,
}

impl Reason {
    /// OpenNebula's number for this reason.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// The upper-case name (`STOP_RESUME`).
    pub fn name(self) -> &'static str {
        match self {
            Reason::None => "NONE",
            Reason::Error => "ERROR",
            Reason::StopResume => "STOP_RESUME",
            Reason::User => "USER",
            Reason::Cancel => "CANCEL",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing for the runner to do. Bookkeeping steps come first in every
/// transition and are written with the new state in one transaction
/// (CORE.md §1.8); driver steps follow and are started after the commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    // ---- history (CORE.md §2) ----
    /// Append a record for the host the request chose (deploy, migrate,
    /// livemigrate), with that host's VM_DIR and driver names: it becomes
    /// `H`, the old `H` becomes `P`.
    OpenHistory,
    /// Append a copy of a record (same host, VM_DIR, drivers; times and
    /// reason cleared): of `H` on resume from SUSPENDED, of `P` after a
    /// failed migration so that the source host is current again.
    CopyHistory(Record),
    /// Set a time field of a record to now.
    Stamp(Record, Stamp),
    /// Set the reason of a record.
    SetReason(Record, Reason),

    // ---- capacity (CORE.md §1.6, §3.4) ----
    /// `+cap`: reserve the VM's CPU and memory on the record's host and
    /// count it in the host's RUNNING_VMS (never refused: the scheduler
    /// or the request checked beforehand, or, for resume, nobody does).
    ReserveCapacity(Record),
    /// `−cap`: give the record's host the VM's CPU and memory back.
    ReleaseCapacity(Record),

    // ---- the VM itself ----
    /// Store the deploy id the VMM `DEPLOY` reply carried (a `RESTORE` or
    /// `MIGRATE` reply carries none: keep the one stored; `recover`
    /// takes it from a poll).
    StoreDeployId,
    /// Set the VM's exit time (`etime` column) to now.
    SetExitTime,
    /// Give the VM's network leases back.
    ReleaseLeases,
    /// Give the VM's disk images back (running counts, 2.x+).
    ReleaseImages,

    // ---- TM operations (DRIVERS.md §5) ----
    /// TM prolog: images to `H.host`.
    TmProlog,
    /// TM prolog_resume: the VM directory front-end → `H.host`.
    TmPrologResume,
    /// TM prolog_migrate: the VM directory `P.host` → `H.host`.
    TmPrologMigrate,
    /// TM epilog: save disks, clean `H.host`.
    TmEpilog,
    /// TM epilog_stop: the VM directory `H.host` → front-end.
    TmEpilogStop,
    /// TM epilog_delete: remove the VM directory on `H.host`.
    TmEpilogDelete,
    /// TM epilog_delete_previous: remove the VM directory on `P.host`.
    TmEpilogDeletePrevious,
    /// TM epilog_delete_stop: remove the front-end copy of a stopped VM
    /// (3.8 behaviour, CORE.md §1.4 delete).
    TmEpilogDeleteStop,
    /// TM driver_cancel: kill the TM script still running for the VM.
    TmDriverCancel,

    // ---- VMM operations (DRIVERS.md §2) ----
    /// VMM deploy on `H.host` (the deployment file).
    VmmDeploy,
    /// VMM restore of the checkpoint on `H.host`.
    VmmRestore,
    /// VMM save to the checkpoint on `H.host` (stop, suspend).
    VmmSave,
    /// VMM save on `P.host` (cold migration: `H` is already the target).
    VmmSavePrevious,
    /// VMM shutdown on `H.host`.
    VmmShutdown,
    /// VMM cancel (destroy) on `H.host`.
    VmmCancel,
    /// VMM cancel on `P.host`.
    VmmCancelPrevious,
    /// VMM migrate (live), run on `P.host` with `H.host` as target.
    VmmMigrate,
    /// VMM reboot on `H.host`.
    VmmReboot,
    /// VMM reset on `H.host`.
    VmmReset,
    /// VMM poll on `H.host`, now (after a failed save/shutdown/cancel/
    /// migration, "assuming the VM is still running").
    VmmPoll,
    /// VMM driver_cancel: kill the VMM script still running for the VM.
    VmmDriverCancel,

    // ---- recovery (CORE.md §8.4) ----
    /// Start again the driver operation the VM is waiting for, exactly as
    /// recorded in its pending step (the table cannot tell, e.g., a BOOT
    /// after deploy from a BOOT after restore).
    RetryPending,
}

impl Step {
    /// Whether this step starts a driver operation (after the commit)
    /// rather than being bookkeeping (in the transaction).
    pub fn is_driver(self) -> bool {
        match self {
            Step::OpenHistory
            | Step::CopyHistory(_)
            | Step::Stamp(..)
            | Step::SetReason(..)
            | Step::ReserveCapacity(_)
            | Step::ReleaseCapacity(_)
            | Step::StoreDeployId
            | Step::SetExitTime
            | Step::ReleaseLeases
            | Step::ReleaseImages => false,
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
            | Step::RetryPending => true,
        }
    }
}

/// Renders in CORE.md §1.4's notation where it has one (`H.stime=now`,
/// `+cap(H)`, `P.reason=USER`), snake_case otherwise (`tm_prolog`).
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Stamp(record, stamp) => write!(f, "{record}.{}=now", stamp.name()),
            Step::SetReason(record, reason) => write!(f, "{record}.reason={reason}"),
            Step::ReserveCapacity(record) => write!(f, "+cap({record})"),
            Step::ReleaseCapacity(record) => write!(f, "-cap({record})"),
            Step::CopyHistory(record) => write!(f, "copy_history({record})"),
            Step::OpenHistory => f.write_str("open_history"),
            Step::StoreDeployId => f.write_str("store_deploy_id"),
            Step::SetExitTime => f.write_str("set_exit_time"),
            Step::ReleaseLeases => f.write_str("release_leases"),
            Step::ReleaseImages => f.write_str("release_images"),
            Step::TmProlog => f.write_str("tm_prolog"),
            Step::TmPrologResume => f.write_str("tm_prolog_resume"),
            Step::TmPrologMigrate => f.write_str("tm_prolog_migrate"),
            Step::TmEpilog => f.write_str("tm_epilog"),
            Step::TmEpilogStop => f.write_str("tm_epilog_stop"),
            Step::TmEpilogDelete => f.write_str("tm_epilog_delete"),
            Step::TmEpilogDeletePrevious => f.write_str("tm_epilog_delete_previous"),
            Step::TmEpilogDeleteStop => f.write_str("tm_epilog_delete_stop"),
            Step::TmDriverCancel => f.write_str("tm_driver_cancel"),
            Step::VmmDeploy => f.write_str("vmm_deploy"),
            Step::VmmRestore => f.write_str("vmm_restore"),
            Step::VmmSave => f.write_str("vmm_save"),
            Step::VmmSavePrevious => f.write_str("vmm_save_previous"),
            Step::VmmShutdown => f.write_str("vmm_shutdown"),
            Step::VmmCancel => f.write_str("vmm_cancel"),
            Step::VmmCancelPrevious => f.write_str("vmm_cancel_previous"),
            Step::VmmMigrate => f.write_str("vmm_migrate"),
            Step::VmmReboot => f.write_str("vmm_reboot"),
            Step::VmmReset => f.write_str("vmm_reset"),
            Step::VmmPoll => f.write_str("vmm_poll"),
            Step::VmmDriverCancel => f.write_str("vmm_driver_cancel"),
            Step::RetryPending => f.write_str("retry_pending"),
        }
    }
}
