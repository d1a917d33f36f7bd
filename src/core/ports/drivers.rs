//! The drivers as the core sees them (spec/DRIVERS.md §2, §4, §5, §8): one
//! blocking method per IM, VMM and TM action and for hooks, each taking a
//! typed request of plain data (ids, host and driver names, paths, text) and
//! answering a typed reply or a [`Error::Driver`].
//!
//! What lives here: the [`Drivers`] trait, its request and reply types, and
//! [`ScriptEnv`], the template attributes handed to driver scripts. The core
//! calls these from its own worker threads; an implementation may block for
//! as long as the action's timeout. The `drivers` module implements it by
//! running the scripts under `config/remotes/`; tests plug in fakes.
//!
//! May use: `crate::core` and `crate::template` only. Nothing here knows VM
//! or host pools: the core copies what an action needs into the request.

use std::fmt;

use crate::core::{Error, Result};
use crate::template::Template;

/// Environment variables handed to a driver script, `NAME=value` pairs.
///
/// The core fills it with [`ScriptEnv::from_templates`], which forwards the
/// `DUMMY_*` attributes of the VM and host templates: the `dummy` drivers
/// read them to inject failures and delays in tests (`DUMMY_FAIL = "deploy"`
/// makes deploy fail, `DUMMY_SLEEP = "5"` makes every action take 5 s; see
/// `config/remotes/vmm/dummy/dummyrc`). Other drivers ignore them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptEnv {
    vars: Vec<(String, String)>,
}

impl ScriptEnv {
    /// The prefix of the template attributes [`from_templates`](Self::from_templates)
    /// forwards.
    pub const FORWARDED_PREFIX: &'static str = "DUMMY_";

    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// The single `DUMMY_*` attributes of the VM and of its host. Where both
    /// set one, the VM's wins, except `DUMMY_FAIL`, whose comma-separated
    /// action lists are joined: a failure asked for on the host or on the VM
    /// happens either way.
    pub fn from_templates(vm: Option<&Template>, host: Option<&Template>) -> Self {
        let mut env = ScriptEnv::new();
        // The host first, so that the VM's value replaces it.
        for template in [host, vm].into_iter().flatten() {
            for attribute in template.attributes() {
                let Some(value) = attribute.value.as_single() else {
                    continue;
                };
                if !attribute.name.starts_with(Self::FORWARDED_PREFIX) {
                    continue;
                }
                let value = match (attribute.name.as_str(), env.get(&attribute.name)) {
                    ("DUMMY_FAIL", Some(earlier)) if !earlier.is_empty() => {
                        format!("{earlier},{value}")
                    }
                    _ => value.to_owned(),
                };
                env.set(&attribute.name, value);
            }
        }
        env
    }

    /// Sets `name` (replacing an earlier value).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name.to_owned(), value)),
        }
    }

    /// Builder form of [`set`](Self::set).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in the order first set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A host and a path on it, written `host:path` on a TM script's command
/// line (DRIVERS.md §5.2 splits it at the first `:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPath {
    /// The host name.
    pub host: String,
    /// An absolute path on that host.
    pub path: String,
}

impl HostPath {
    /// `host:path`.
    pub fn new(host: impl Into<String>, path: impl Into<String>) -> Self {
        HostPath {
            host: host.into(),
            path: path.into(),
        }
    }
}

impl fmt::Display for HostPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.path)
    }
}

/// `MONITOR`: run a host's IM probes (DRIVERS.md §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorRequest {
    /// The host's id.
    pub host_id: u64,
    /// The host's name (what ssh connects to).
    pub host: String,
    /// The host's IM driver, by name or folder (`im_dummy` or `dummy`).
    pub driver: String,
    /// Attributes for the probes (the host's `DUMMY_*`).
    pub env: ScriptEnv,
}

/// The VM and host every VMM action is about, and the driver to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmmTarget {
    /// The VM's id.
    pub vm_id: u64,
    /// The host the action runs on (for migrate, the source).
    pub host: String,
    /// The VMM driver of that host, by name or folder (`vmm_kvm` or `kvm`).
    pub driver: String,
    /// Attributes for the script ([`ScriptEnv::from_templates`]).
    pub env: ScriptEnv,
}

/// `DEPLOY`: create and start the domain (DRIVERS.md §2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployRequest {
    /// VM, host and driver.
    pub target: VmmTarget,
    /// Where the script writes the deployment file on the host
    /// (`<VM_DIR>/<vid>/deployment.<seq>`).
    pub remote_file: String,
    /// The deployment file's text (libvirt XML for kvm, the VM template for
    /// `xml` drivers such as dummy); the script gets it on stdin.
    pub deployment: String,
}

/// `SHUTDOWN`, `CANCEL`, `POLL`, `REBOOT`, `RESET`: an action on a running
/// domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainRequest {
    /// VM, host and driver.
    pub target: VmmTarget,
    /// What deploy answered ([`Drivers::deploy`]).
    pub deploy_id: String,
}

/// `SAVE`: suspend the domain to a file; it is gone afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveRequest {
    /// VM, host and driver.
    pub target: VmmTarget,
    /// What deploy answered.
    pub deploy_id: String,
    /// The checkpoint file on the host (`<VM_DIR>/<vid>/checkpoint`).
    pub checkpoint: String,
}

/// `RESTORE`: start the domain again from a checkpoint, same deploy id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreRequest {
    /// VM, host and driver.
    pub target: VmmTarget,
    /// The checkpoint file on the host.
    pub checkpoint: String,
}

/// `MIGRATE`: live-migrate the domain; runs on the source host
/// (`target.host`), same deploy id afterwards. The VM's storage follows
/// through its TM driver's `premigrate`, `postmigrate` and, when the move
/// fails, `failmigrate` (DRIVERS.md §2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateRequest {
    /// VM, source host and its driver.
    pub target: VmmTarget,
    /// What deploy answered.
    pub deploy_id: String,
    /// The host the domain moves to.
    pub destination: String,
    /// The TM driver of the source host, by name or folder.
    pub tm_driver: String,
    /// The VM's directory (`<VM_DIR>/<vid>`), the same path on both hosts.
    pub dir: String,
}

/// The state letter of a poll answer (DRIVERS.md §2.4, CORE.md §1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollState {
    /// `a`: running, blocked, booting or shutting down.
    Active,
    /// `p`: paused.
    Paused,
    /// `e`: crashed or in error.
    Error,
    /// `d`: the hypervisor does not know the domain.
    Disappeared,
    /// `-`: unknown; the core does nothing.
    Unknown,
}

impl PollState {
    /// The state of a letter; `None` for anything else.
    pub fn from_letter(letter: &str) -> Option<Self> {
        Some(match letter {
            "a" => PollState::Active,
            "p" => PollState::Paused,
            "e" => PollState::Error,
            "d" => PollState::Disappeared,
            "-" => PollState::Unknown,
            _ => return None,
        })
    }

    /// The protocol's letter.
    pub fn letter(self) -> char {
        match self {
            PollState::Active => 'a',
            PollState::Paused => 'p',
            PollState::Error => 'e',
            PollState::Disappeared => 'd',
            PollState::Unknown => '-',
        }
    }
}

/// A successful `POLL` answer (DRIVERS.md §2.4). Figures the driver did
/// not report are `None`; the core keeps the previous values then.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollAnswer {
    /// `STATE`; `None` when absent (the core does nothing, as for `-`).
    pub state: Option<PollState>,
    /// `USEDCPU`: percent of one CPU, truncated to an integer.
    pub used_cpu: Option<u64>,
    /// `USEDMEMORY`: KB.
    pub used_memory: Option<u64>,
    /// `NETRX`: bytes received.
    pub net_rx: Option<u64>,
    /// `NETTX`: bytes sent.
    pub net_tx: Option<u64>,
    /// Every other `KEY=VALUE`, for the VM template ("custom monitoring
    /// attributes").
    pub extra: Template,
}

/// One TM action (DRIVERS.md §5.1, the 1.4 lines). The script gets the
/// arguments shown, then `<vid> 0` (DRIVERS.md §5.1, cloudgate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TmAction {
    /// `clone <src> <host>:<path>`: copy an image to the host.
    Clone {
        /// `<fe>:<SOURCE>` for a front-end path, else `SOURCE` verbatim
        /// (a URL).
        src: String,
        /// The disk on the host.
        dst: HostPath,
    },
    /// `ln <src> <host>:<path>`: link (or copy where links cannot cross
    /// hosts) an image.
    Ln {
        /// As for [`TmAction::Clone`].
        src: String,
        /// The disk on the host.
        dst: HostPath,
    },
    /// `mkswap <size_mb> <host>:<path>`: a swap disk.
    MkSwap {
        /// Size in MB.
        size_mb: u64,
        /// The disk on the host.
        dst: HostPath,
    },
    /// `mkimage <size_mb> <fstype> <host>:<path>`: an empty formatted disk.
    MkImage {
        /// Size in MB.
        size_mb: u64,
        /// File-system type for `mkfs -t`.
        fstype: String,
        /// The disk on the host.
        dst: HostPath,
    },
    /// `context <file>... <host>:<path>`: an ISO with the context files.
    Context {
        /// Front-end paths, `context.sh` first.
        files: Vec<String>,
        /// The ISO on the host.
        dst: HostPath,
    },
    /// `mv <src> <dst>`: move a disk or a VM directory between hosts.
    Mv {
        /// Where it is.
        src: HostPath,
        /// Where it goes.
        dst: HostPath,
    },
    /// `delete <host>:<path>`: remove a disk or a VM directory.
    Delete {
        /// What to remove.
        path: HostPath,
    },
    /// `premigrate|postmigrate|failmigrate <src host> <dst host> <dir>`
    /// (OpenNebula 4.x+): the VM's storage around a live migration.
    Migration {
        /// Before, after, or after a failed move.
        phase: MigrationPhase,
        /// The host the domain leaves.
        from: String,
        /// The host the domain goes to.
        to: String,
        /// The VM's directory, the same path on both hosts.
        dir: String,
    },
}

/// When a [`TmAction::Migration`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPhase {
    /// `premigrate`: ready the destination (copy the directory there
    /// unless the storage is shared).
    Before,
    /// `postmigrate`: the domain runs on the destination; clean the source.
    After,
    /// `failmigrate`: the move failed; undo what `premigrate` did.
    Failed,
}

impl TmAction {
    /// The action's script name (`clone`, `ln`, `mkswap`, `mkimage`,
    /// `context`, `mv`, `delete`, `premigrate`, `postmigrate`,
    /// `failmigrate`).
    pub fn name(&self) -> &'static str {
        match self {
            TmAction::Clone { .. } => "clone",
            TmAction::Ln { .. } => "ln",
            TmAction::MkSwap { .. } => "mkswap",
            TmAction::MkImage { .. } => "mkimage",
            TmAction::Context { .. } => "context",
            TmAction::Mv { .. } => "mv",
            TmAction::Delete { .. } => "delete",
            TmAction::Migration { phase, .. } => match phase {
                MigrationPhase::Before => "premigrate",
                MigrationPhase::After => "postmigrate",
                MigrationPhase::Failed => "failmigrate",
            },
        }
    }

    /// The script's arguments before the trailing `<vid> 0`.
    pub fn args(&self) -> Vec<String> {
        match self {
            TmAction::Clone { src, dst } | TmAction::Ln { src, dst } => {
                vec![src.clone(), dst.to_string()]
            }
            TmAction::MkSwap { size_mb, dst } => vec![size_mb.to_string(), dst.to_string()],
            TmAction::MkImage {
                size_mb,
                fstype,
                dst,
            } => vec![size_mb.to_string(), fstype.clone(), dst.to_string()],
            TmAction::Context { files, dst } => {
                let mut args = files.clone();
                args.push(dst.to_string());
                args
            }
            TmAction::Mv { src, dst } => vec![src.to_string(), dst.to_string()],
            TmAction::Delete { path } => vec![path.to_string()],
            TmAction::Migration { from, to, dir, .. } => {
                vec![from.clone(), to.clone(), dir.clone()]
            }
        }
    }

    /// The host the action is for (its destination), for error messages.
    pub fn host(&self) -> &str {
        match self {
            TmAction::Clone { dst, .. }
            | TmAction::Ln { dst, .. }
            | TmAction::MkSwap { dst, .. }
            | TmAction::MkImage { dst, .. }
            | TmAction::Context { dst, .. }
            | TmAction::Mv { dst, .. } => &dst.host,
            TmAction::Delete { path } => &path.host,
            TmAction::Migration { to, .. } => to,
        }
    }
}

/// One TM action for a VM, run on the front-end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRequest {
    /// The VM's id.
    pub vm_id: u64,
    /// The TM driver, by name or folder (`tm_ssh` or `ssh`).
    pub driver: String,
    /// What to do.
    pub action: TmAction,
    /// Attributes for the script ([`ScriptEnv::from_templates`]).
    pub env: ScriptEnv,
}

/// Where a hook runs (DRIVERS.md §8 `remote`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookSite {
    /// On the front-end (`remote = no`).
    FrontEnd,
    /// On the VM's host (`remote = yes`).
    Host(String),
}

/// A hook to run (DRIVERS.md §8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRequest {
    /// The VM whose state change fired it.
    pub vm_id: u64,
    /// The hook's name, for logs and errors.
    pub name: String,
    /// An absolute path, or a path relative to the remotes' `hooks/`.
    pub command: String,
    /// Arguments after `$` substitution, one per element (no shell
    /// re-splitting, no `-` placeholder).
    pub args: Vec<String>,
    /// Where it runs.
    pub site: HookSite,
    /// Extra environment.
    pub env: ScriptEnv,
}

/// What the core asks of the drivers. Every method blocks until the action
/// ends (its timeout included) and is called from the core's worker threads;
/// implementations serialise the actions of one VM and run the others
/// concurrently. A failed action is [`Error::Driver`], or
/// [`Error::Unreachable`] when the host itself cannot be reached (a VM poll
/// failing so makes the VM UNKNOWN); an action the implementation does not
/// provide is [`Error::Unsupported`] (the default).
pub trait Drivers: Send + Sync {
    /// Runs the host's IM probes; their `KEY=VALUE` output (comma- or
    /// blank-separated) as a template (DRIVERS.md §4).
    fn monitor(&self, request: &MonitorRequest) -> Result<Template> {
        let _ = request;
        Err(Error::Unsupported("IM monitor".into()))
    }

    /// Creates and starts the domain; answers its deploy id (DRIVERS.md §2.5).
    fn deploy(&self, request: &DeployRequest) -> Result<String> {
        let _ = request;
        Err(Error::Unsupported("VMM deploy".into()))
    }

    /// Shuts the domain down gracefully; returns once it is gone.
    fn shutdown(&self, request: &DomainRequest) -> Result<()> {
        let _ = request;
        Err(Error::Unsupported("VMM shutdown".into()))
    }

    /// Destroys the domain at once.
    fn cancel(&self, request: &DomainRequest) -> Result<()> {
        let _ = request;
        Err(Error::Unsupported("VMM cancel".into()))
    }

    /// Suspends the domain to its checkpoint file.
    fn save(&self, request: &SaveRequest) -> Result<()> {
        let _ = request;
        Err(Error::Unsupported("VMM save".into()))
    }

    /// Restarts the domain from its checkpoint file.
    fn restore(&self, request: &RestoreRequest) -> Result<()> {
        let _ = request;
        Err(Error::Unsupported("VMM restore".into()))
    }

    /// Live-migrates the domain to another host.
    fn migrate(&self, request: &MigrateRequest) -> Result<()> {
        let _ = request;
        Err(Error::Unsupported("VMM migrate".into()))
    }

    /// Asks for the domain's state and usage (DRIVERS.md §2.4). An answer
    /// that does not parse is an [`Error::Driver`] (3.x: "Error parsing
    /// monitoring str").
    fn poll(&self, request: &DomainRequest) -> Result<PollAnswer> {
        let _ = request;
        Err(Error::Unsupported("VMM poll".into()))
    }

    /// Reboots the guest (ACPI).
    fn reboot(&self, request: &DomainRequest) -> Result<()> {
        let _ = request;
        Err(Error::Unsupported("VMM reboot".into()))
    }

    /// Resets the domain (hard).
    fn reset(&self, request: &DomainRequest) -> Result<()> {
        let _ = request;
        Err(Error::Unsupported("VMM reset".into()))
    }

    /// Runs one TM action on the front-end (DRIVERS.md §5).
    fn transfer(&self, request: &TransferRequest) -> Result<()> {
        Err(Error::Unsupported(format!("TM {}", request.action.name())))
    }

    /// Runs the actions of one transfer in order, stopping at the first
    /// failure, as a TM driver runs a transfer file (DRIVERS.md §5.1).
    fn transfer_all(
        &self,
        vm_id: u64,
        driver: &str,
        actions: &[TmAction],
        env: &ScriptEnv,
    ) -> Result<()> {
        for action in actions {
            self.transfer(&TransferRequest {
                vm_id,
                driver: driver.to_owned(),
                action: action.clone(),
                env: env.clone(),
            })?;
        }
        Ok(())
    }

    /// Runs a hook; its standard output on success (DRIVERS.md §8).
    fn hook(&self, request: &HookRequest) -> Result<String> {
        let _ = request;
        Err(Error::Unsupported("hooks".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;
    impl Drivers for Nothing {}

    fn target() -> VmmTarget {
        VmmTarget {
            vm_id: 7,
            host: "node1".into(),
            driver: "dummy".into(),
            env: ScriptEnv::new(),
        }
    }

    #[test]
    fn default_methods_answer_unsupported() {
        let request = DomainRequest {
            target: target(),
            deploy_id: "one-7".into(),
        };
        let err = Nothing.reboot(&request).expect_err("unsupported");
        assert!(
            matches!(&err, Error::Unsupported(what) if what == "VMM reboot"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "VMM reboot is not supported");
        let err = Nothing
            .transfer_all(
                7,
                "dummy",
                &[TmAction::Delete {
                    path: HostPath::new("n", "/d"),
                }],
                &ScriptEnv::new(),
            )
            .expect_err("unsupported");
        assert_eq!(err.to_string(), "TM delete is not supported");
    }

    #[test]
    fn env_forwards_dummy_attributes_vm_first_and_joins_fail_lists() {
        let vm = Template::parse("NAME = x\nDUMMY_FAIL = poll\nDUMMY_SLEEP = 2\nMEMORY = 64")
            .expect("vm template");
        let host = Template::parse("DUMMY_FAIL = \"deploy\"\nDUMMY_SLEEP = 9\nDUMMY_X = [ A = 1 ]")
            .expect("host template");
        let env = ScriptEnv::from_templates(Some(&vm), Some(&host));
        let pairs: Vec<_> = env.iter().collect();
        assert_eq!(pairs, [("DUMMY_FAIL", "deploy,poll"), ("DUMMY_SLEEP", "2")]);

        let env = ScriptEnv::from_templates(None, Some(&host));
        assert_eq!(env.get("DUMMY_FAIL"), Some("deploy"));
        assert_eq!(env.get("MEMORY"), None);
    }

    #[test]
    fn tm_actions_print_their_arguments() {
        let dst = HostPath::new("node1", "/vms/7/disk.0");
        let clone = TmAction::Clone {
            src: "fe:/images/a.img".into(),
            dst: dst.clone(),
        };
        assert_eq!(clone.name(), "clone");
        assert_eq!(clone.args(), ["fe:/images/a.img", "node1:/vms/7/disk.0"]);
        let mkimage = TmAction::MkImage {
            size_mb: 512,
            fstype: "ext3".into(),
            dst: dst.clone(),
        };
        assert_eq!(mkimage.args(), ["512", "ext3", "node1:/vms/7/disk.0"]);
        let context = TmAction::Context {
            files: vec!["/var/7/context.sh".into(), "/etc/motd".into()],
            dst,
        };
        assert_eq!(
            context.args(),
            ["/var/7/context.sh", "/etc/motd", "node1:/vms/7/disk.0"]
        );
        let mv = TmAction::Mv {
            src: HostPath::new("node1", "/vms/7"),
            dst: HostPath::new("node2", "/vms/7"),
        };
        assert_eq!(mv.host(), "node2");
        assert_eq!(mv.args(), ["node1:/vms/7", "node2:/vms/7"]);
    }

    #[test]
    fn poll_state_letters_round_trip() {
        for letter in ["a", "p", "e", "d", "-"] {
            let state = PollState::from_letter(letter).expect("known letter");
            assert_eq!(state.letter().to_string(), letter);
        }
        assert_eq!(PollState::from_letter("x"), None);
    }
}
