//! What can happen to a VM: the user actions of CORE.md §1.3 (plus the
//! admin `recover` of §8.4) and the driver/monitor replies of §1.2 and
//! §1.5, each with a stable snake_case name used in the matrix file and
//! in logs.

use std::fmt;

/// How an admin's `recover` settles a VM stuck waiting for a driver reply
/// (CORE.md §8.4, modern OpenNebula's `onevm recover`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recovery {
    /// Act as if the awaited operation had succeeded.
    Success,
    /// Act as if the awaited operation had failed.
    Failure,
    /// Run the awaited operation again.
    Retry,
}

/// An input of the life-cycle table: a user action or a driver/monitor
/// reply.
///
/// Replies are one event per LCM event of CORE.md §1.2: the VMM's
/// `DEPLOY`, `RESTORE` and `MIGRATE` replies are all `deploy_success` /
/// `deploy_failure`, and a TM `TRANSFER` reply is `prolog_*` or
/// `epilog_*` after the step that was started. Replies that only log —
/// poll `FAILURE`, poll `STATE=-` or without `STATE` — are not events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    // ---- user actions (CORE.md §1.3) ----
    /// `deploy` to a chosen host (admin or scheduler). `resume` is true
    /// when the last history record ended with reason `STOP_RESUME`
    /// (the VM was stopped), which makes the prolog a `PROLOG_RESUME`.
    Deploy {
        /// The VM was stopped: bring its files back from the front-end
        /// and restore the checkpoint instead of booting afresh.
        resume: bool,
    },
    /// `shutdown`: graceful (ACPI) shutdown, then epilog.
    Shutdown,
    /// `cancel`: hard destroy, then epilog (3.0+).
    Cancel,
    /// `livemigrate` to a chosen host (admin).
    LiveMigrate,
    /// `migrate` (cold: save, move, restore) to a chosen host (admin).
    Migrate,
    /// `hold`: keep a pending VM away from the scheduler.
    Hold,
    /// `release`: give a held VM back to the scheduler.
    Release,
    /// `stop`: save and move the files back to the front-end.
    Stop,
    /// `suspend`: save, files stay on the host.
    Suspend,
    /// `resume` a stopped or suspended VM.
    Resume,
    /// `delete` (`finalize`): remove the VM whatever its state.
    Delete,
    /// `restart`: re-send the VMM deploy of a VM in BOOT or UNKNOWN.
    Restart,
    /// `resubmit` (2.2+): clean up and put the VM back to PENDING.
    Resubmit,
    /// `reboot` (3.4+): ACPI reboot of a running VM.
    Reboot,
    /// `reset` (3.8+): hard reset of a running VM.
    Reset,
    /// `recover` (admin, CORE.md §8.4): settle a VM stuck waiting for a
    /// driver reply.
    Recover(Recovery),

    // ---- driver replies (CORE.md §1.2, DRIVERS.md §2.1, §5.1) ----
    /// TM `TRANSFER SUCCESS` for a prolog, prolog_resume or prolog_migrate.
    PrologSuccess,
    /// TM `TRANSFER FAILURE` for a prolog step.
    PrologFailure,
    /// VMM `DEPLOY`, `RESTORE` or `MIGRATE` `SUCCESS` (one LCM event).
    DeploySuccess,
    /// VMM `DEPLOY`, `RESTORE` or `MIGRATE` `FAILURE`.
    DeployFailure,
    /// VMM `SAVE SUCCESS`.
    SaveSuccess,
    /// VMM `SAVE FAILURE`.
    SaveFailure,
    /// VMM `SHUTDOWN SUCCESS`.
    ShutdownSuccess,
    /// VMM `SHUTDOWN FAILURE`.
    ShutdownFailure,
    /// VMM `CANCEL SUCCESS`.
    CancelSuccess,
    /// VMM `CANCEL FAILURE`.
    CancelFailure,
    /// TM `TRANSFER SUCCESS` for an epilog or epilog_stop.
    EpilogSuccess,
    /// TM `TRANSFER FAILURE` for an epilog step.
    EpilogFailure,
    /// VMM `REBOOT SUCCESS` (logged only).
    RebootSuccess,
    /// VMM `REBOOT FAILURE` (logged only).
    RebootFailure,
    /// VMM `RESET SUCCESS` (logged only).
    ResetSuccess,
    /// VMM `RESET FAILURE` (logged only).
    ResetFailure,

    // ---- monitoring (CORE.md §1.5, DRIVERS.md §2.4) ----
    /// Poll `STATE=a`: the domain is alive.
    MonitorAlive,
    /// Poll `STATE=p`: the domain is paused (monitor_suspend).
    MonitorSuspend,
    /// Poll `STATE=e`: the domain crashed (monitor_failure).
    MonitorFailure,
    /// Poll `STATE=d`: the hypervisor does not know the domain
    /// (monitor_done).
    MonitorDone,
}

impl Event {
    /// Every event, user actions first, in declaration order.
    pub const ALL: [Event; 39] = [
        Event::Deploy { resume: false },
        Event::Deploy { resume: true },
        Event::Shutdown,
        Event::Cancel,
        Event::LiveMigrate,
        Event::Migrate,
        Event::Hold,
        Event::Release,
        Event::Stop,
        Event::Suspend,
        Event::Resume,
        Event::Delete,
        Event::Restart,
        Event::Resubmit,
        Event::Reboot,
        Event::Reset,
        Event::Recover(Recovery::Success),
        Event::Recover(Recovery::Failure),
        Event::Recover(Recovery::Retry),
        Event::PrologSuccess,
        Event::PrologFailure,
        Event::DeploySuccess,
        Event::DeployFailure,
        Event::SaveSuccess,
        Event::SaveFailure,
        Event::ShutdownSuccess,
        Event::ShutdownFailure,
        Event::CancelSuccess,
        Event::CancelFailure,
        Event::EpilogSuccess,
        Event::EpilogFailure,
        Event::RebootSuccess,
        Event::RebootFailure,
        Event::ResetSuccess,
        Event::ResetFailure,
        Event::MonitorAlive,
        Event::MonitorSuspend,
        Event::MonitorFailure,
        Event::MonitorDone,
    ];

    /// The stable snake_case name, distinct for every event (matrix file,
    /// logs). User actions use OpenNebula's action word (`livemigrate`).
    pub fn name(self) -> &'static str {
        match self {
            Event::Deploy { resume: false } => "deploy",
            Event::Deploy { resume: true } => "deploy_resume",
            Event::Shutdown => "shutdown",
            Event::Cancel => "cancel",
            Event::LiveMigrate => "livemigrate",
            Event::Migrate => "migrate",
            Event::Hold => "hold",
            Event::Release => "release",
            Event::Stop => "stop",
            Event::Suspend => "suspend",
            Event::Resume => "resume",
            Event::Delete => "delete",
            Event::Restart => "restart",
            Event::Resubmit => "resubmit",
            Event::Reboot => "reboot",
            Event::Reset => "reset",
            Event::Recover(Recovery::Success) => "recover_success",
            Event::Recover(Recovery::Failure) => "recover_failure",
            Event::Recover(Recovery::Retry) => "recover_retry",
            Event::PrologSuccess => "prolog_success",
            Event::PrologFailure => "prolog_failure",
            Event::DeploySuccess => "deploy_success",
            Event::DeployFailure => "deploy_failure",
            Event::SaveSuccess => "save_success",
            Event::SaveFailure => "save_failure",
            Event::ShutdownSuccess => "shutdown_success",
            Event::ShutdownFailure => "shutdown_failure",
            Event::CancelSuccess => "cancel_success",
            Event::CancelFailure => "cancel_failure",
            Event::EpilogSuccess => "epilog_success",
            Event::EpilogFailure => "epilog_failure",
            Event::RebootSuccess => "reboot_success",
            Event::RebootFailure => "reboot_failure",
            Event::ResetSuccess => "reset_success",
            Event::ResetFailure => "reset_failure",
            Event::MonitorAlive => "monitor_alive",
            Event::MonitorSuspend => "monitor_suspend",
            Event::MonitorFailure => "monitor_failure",
            Event::MonitorDone => "monitor_done",
        }
    }

    /// The user action word (`one.vm.action` / CLI), for user actions;
    /// `None` for driver and monitor replies. This is what an
    /// `InvalidState` error names.
    pub fn action(self) -> Option<&'static str> {
        match self {
            Event::Deploy { .. } => Some("deploy"),
            Event::Shutdown => Some("shutdown"),
            Event::Cancel => Some("cancel"),
            Event::LiveMigrate => Some("livemigrate"),
            Event::Migrate => Some("migrate"),
            Event::Hold => Some("hold"),
            Event::Release => Some("release"),
            Event::Stop => Some("stop"),
            Event::Suspend => Some("suspend"),
            Event::Resume => Some("resume"),
            Event::Delete => Some("delete"),
            Event::Restart => Some("restart"),
            Event::Resubmit => Some("resubmit"),
            Event::Reboot => Some("reboot"),
            Event::Reset => Some("reset"),
            Event::Recover(_) => Some("recover"),
            Event::PrologSuccess
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
            | Event::MonitorDone => None,
        }
    }

    /// Whether a user asks for this (refused with `InvalidState` where
    /// not allowed) rather than a driver answering it (ignored where it
    /// does not apply).
    pub fn is_user_action(self) -> bool {
        self.action().is_some()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
