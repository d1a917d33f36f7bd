//! What is known and stored about one VM (spec/CORE.md §1.1, §2, §8.3):
//! the [`Vm`] itself, its [`History`] records, the driver step it waits
//! for ([`Pending`]), its last error and its monitoring figures.
//!
//! Pure data with a few derived views (the host it is on, the hosts it
//! holds capacity on); the pool (`pool.rs`) is what changes it.

use super::state::{short_name, LcmState, Reason, Record, State, Step};
use crate::template::Template;

/// One stay of a VM on a host (spec/CORE.md §2). Times are Unix seconds,
/// 0 = not set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History {
    /// Sequence number, from 0.
    pub seq: u32,
    /// The host's id at the time.
    pub host_id: u64,
    /// The host's name at the time (what the drivers connect to).
    pub host: String,
    /// The host's `VM_DIR`: the VM's files are in `<vm_dir>/<vid>/`.
    pub vm_dir: String,
    /// The host's VMM driver, copied when the record was opened.
    pub vmm_mad: String,
    /// The host's TM driver, copied when the record was opened.
    pub tm_mad: String,
    /// Stay start.
    pub stime: u64,
    /// Stay end.
    pub etime: u64,
    /// Prolog start.
    pub pstime: u64,
    /// Prolog end.
    pub petime: u64,
    /// Running start (VMM command sent).
    pub rstime: u64,
    /// Running end.
    pub retime: u64,
    /// Epilog start.
    pub estime: u64,
    /// Epilog end.
    pub eetime: u64,
    /// Why the stay ended.
    pub reason: Reason,
}

impl History {
    /// A new record for a host, every time and the reason cleared.
    pub fn open(
        seq: u32,
        host_id: u64,
        host: &str,
        vm_dir: &str,
        vmm_mad: &str,
        tm_mad: &str,
    ) -> Self {
        History {
            seq,
            host_id,
            host: host.to_string(),
            vm_dir: vm_dir.to_string(),
            vmm_mad: vmm_mad.to_string(),
            tm_mad: tm_mad.to_string(),
            stime: 0,
            etime: 0,
            pstime: 0,
            petime: 0,
            rstime: 0,
            retime: 0,
            estime: 0,
            eetime: 0,
            reason: Reason::None,
        }
    }

    /// A copy of this record as record `seq`: same host, directory and
    /// drivers, times and reason cleared (resume from SUSPENDED, failed
    /// migration).
    pub fn copy_as(&self, seq: u32) -> Self {
        History::open(
            seq,
            self.host_id,
            &self.host,
            &self.vm_dir,
            &self.vmm_mad,
            &self.tm_mad,
        )
    }

    /// The VM's directory on this record's host: `<VM_DIR>/<vid>`.
    pub fn dir(&self, vm_id: u64) -> String {
        format!("{}/{vm_id}", self.vm_dir.trim_end_matches('/'))
    }
}

/// The driver step a VM waits for, stored with the state change that
/// started it (spec/CORE.md §8.4), and the fire-and-forget steps of that
/// change not known to be done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The VM's operation number when the step was started: a reply counts
    /// only while the VM still waits for this operation, so the late reply
    /// of an operation a delete or a redeploy replaced is never misread.
    pub op: u64,
    /// The step whose reply is the VM's next event, if any.
    pub awaited: Option<Step>,
    /// Clean-up steps (delete, resubmit) started with it and not yet done.
    pub cleanup: Vec<Step>,
    /// The host the awaited step runs on (empty when there is none).
    pub host: String,
    /// When it was started, Unix seconds.
    pub started_at: u64,
}

/// What the last poll reported (spec/DRIVERS.md §2.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// `USEDCPU`: percent of one CPU.
    pub cpu: u64,
    /// `USEDMEMORY`: KB.
    pub memory_kb: u64,
    /// `NETRX`: bytes.
    pub net_rx: u64,
    /// `NETTX`: bytes.
    pub net_tx: u64,
    /// When the VM was last polled, Unix seconds; 0 if never.
    pub last_poll: u64,
}

/// The last thing that went wrong with a VM (3.8's `ERROR` attribute):
/// shown until another failure replaces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmError {
    /// What failed and what the driver said (its stderr tail).
    pub message: String,
    /// When, Unix seconds.
    pub time: u64,
}

/// What a VM reserves on the host it is placed on (spec/CORE.md §3.3-3.4):
/// `CPU × 100` and `MEMORY × 1024` KB, or nothing at all when `MEMORY` is
/// missing or 0 or `CPU` is missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reservation {
    /// CPU, percent of one core.
    pub cpu: i64,
    /// Memory, KB.
    pub mem_kb: i64,
}

impl Reservation {
    /// Whether it reserves anything (a VM that reserves nothing is not
    /// counted in `RUNNING_VMS` either).
    pub fn is_empty(&self) -> bool {
        self.cpu <= 0 && self.mem_kb <= 0
    }
}

/// A virtual machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vm {
    /// Unique, never reused id.
    pub id: u64,
    /// The owner's uid.
    pub uid: u64,
    /// The owner's name when the VM was created (`$UNAME`, the USER
    /// column).
    pub uname: String,
    /// `NAME` (default `one-<id>`).
    pub name: String,
    /// The dispatch-manager state.
    pub state: State,
    /// The life-cycle-manager state (`LCM_INIT` unless ACTIVE).
    pub lcm: LcmState,
    /// What the VMM's deploy answered; `None` before the first deploy.
    pub deploy_id: Option<String>,
    /// The template as rewritten at creation: `VMID`, `NAME`, resolved
    /// `DISK`s, leased `NIC`s, substituted `CONTEXT` and `REQUIREMENTS`,
    /// plus custom monitoring attributes.
    pub template: Template,
    /// What it reserves on its host.
    pub reservation: Reservation,
    /// What the last poll reported.
    pub usage: Usage,
    /// Submission time, Unix seconds.
    pub stime: u64,
    /// Exit time (DONE or FAILED), Unix seconds; 0 while alive.
    pub etime: u64,
    /// Its stays on hosts, `seq` order; the last is `H`, the one before `P`.
    pub history: Vec<History>,
    /// The last failure.
    pub error: Option<VmError>,
    /// The driver step it waits for.
    pub pending: Option<Pending>,
    /// Operation counter: moves at every state change (see [`Pending::op`]).
    pub op: u64,
    /// Why the scheduler did not place it in its last cycle (not stored:
    /// the next cycle says it again).
    pub unplaced: Option<String>,
}

impl Vm {
    /// The CLI's short state (`runn`, `pend`...).
    pub fn short_state(&self) -> &'static str {
        short_name(self.state, self.lcm)
    }

    /// A history record: `H` (the last) or `P` (the one before).
    pub fn record(&self, which: Record) -> Option<&History> {
        let n = self.history.len();
        match which {
            Record::Current => self.history.last(),
            Record::Previous => n.checked_sub(2).and_then(|i| self.history.get(i)),
        }
    }

    /// A history record, for editing.
    pub fn record_mut(&mut self, which: Record) -> Option<&mut History> {
        let n = self.history.len();
        match which {
            Record::Current => self.history.last_mut(),
            Record::Previous => n.checked_sub(2).and_then(|i| self.history.get_mut(i)),
        }
    }

    /// The host the VM is on or was last on (`H`), if it ever had one.
    pub fn host(&self) -> Option<&History> {
        self.record(Record::Current)
    }

    /// Whether the last stay ended with a stop, so that the next deploy
    /// brings the files back and restores the checkpoint (CORE.md §1.4).
    pub fn was_stopped(&self) -> bool {
        self.host().is_some_and(|h| h.reason == Reason::StopResume)
    }

    /// The hosts the VM holds capacity on, derived from its state alone
    /// (spec/CORE.md §1.6): `H` from the deploy until the stay ends, and
    /// also `P` while a migration has not freed it. The start-up recount
    /// checks the host counters against this.
    pub fn capacity_hosts(&self) -> Vec<u64> {
        if self.state != State::Active || self.reservation.is_empty() {
            return Vec::new();
        }
        let current = self.record(Record::Current).map(|h| h.host_id);
        let previous = self.record(Record::Previous).map(|h| h.host_id);
        let hosts = match self.lcm {
            LcmState::Prolog
            | LcmState::PrologResume
            | LcmState::PrologMigrate
            | LcmState::Boot
            | LcmState::Running
            | LcmState::Unknown
            | LcmState::Shutdown
            | LcmState::Cancel
            | LcmState::SaveStop
            | LcmState::SaveSuspend
            | LcmState::Epilog
            | LcmState::EpilogStop => vec![current],
            LcmState::Migrate | LcmState::SaveMigrate => vec![current, previous],
            LcmState::LcmInit | LcmState::Failure | LcmState::Cleanup => vec![],
        };
        hosts.into_iter().flatten().collect()
    }

    /// The value of a single template attribute, trimmed; `None` if absent
    /// or empty.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.template
            .get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}
