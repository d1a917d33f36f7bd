//! The drivers: cloudgate's implementation of
//! [`core::ports::Drivers`](crate::core::ports::Drivers) by running
//! OpenNebula "exec driver" scripts (spec/DRIVERS.md; STYLE.md §1.8).
//!
//! What lives here:
//! - `transport.rs`: runs one command somewhere ([`Local`]); knows nothing
//!   of VMs.
//! - `ssh.rs`: [`Ssh`], the transport to real hosts (one master connection
//!   per host, remotes synced by content hash, retry on exit 42).
//! - `action.rs`: the action protocol (script paths, arguments, exit code,
//!   stdout answer, stderr error text, timeout).
//! - `reply.rs`: parsing of deploy ids, poll answers and probe output.
//! - `registry.rs`: the loaded drivers (name → folder, threads, retries,
//!   local actions) and the per-action timeouts.
//! - `locks.rs`: one action per VM at a time, `-t` actions per driver.
//! - `spawner.rs`: starts every driver process below the server's CPU
//!   priority.
//! - this file: [`ScriptDrivers`], which puts them together.
//!
//! Script layout under the remotes directory (`REMOTES_DIR`):
//! `vmm/<folder>/<action>`, `tm/<folder>/<action>`, `hooks/<command>`, and
//! for monitoring `im/run_probes <folder> <hid> <host>`, which runs every
//! executable probe of `im/<folder>/` (DRIVERS.md §4).
//!
//! May use: `crate::core` (ports and errors) and `crate::template` only.

mod action;
pub mod kvm;
mod locks;
mod registry;
mod reply;
mod spawner;
mod ssh;
mod transport;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::core::ports::{
    DeployRequest, DomainRequest, Drivers, HookRequest, HookSite, MigrateRequest, MigrationPhase,
    MonitorRequest, PollAnswer, RestoreRequest, SaveRequest, ScriptEnv, TmAction, TransferRequest,
    VmmTarget,
};
use crate::core::{Error, Result};
use crate::template::Template;

pub use action::{check_name, error_message, ERROR_BEGIN, ERROR_END, SCRIPT_LOG_TARGET};
pub use registry::{Class, Deployment, DriverSpec, LocalAction, Registry, Timeouts};
pub use ssh::{sh_quote, Ssh, SshOptions};
pub use transport::{Command, Exit, Local, Output, Program, Site, Transport, TransportError};

use action::Invocation;
use locks::VmLocks;
use registry::Entry;

/// The drivers, run as scripts through a [`Transport`].
///
/// Actions of one VM (VMM and TM alike) run one at a time in arrival order;
/// actions of different VMs run concurrently, up to each driver's `-t`.
/// Monitoring and hooks take no VM turn. A failed action is re-run up to
/// the driver's `-r` times, 1 s apart.
///
/// Wiring (in the CLI, which may read the configuration):
///
/// ```ignore
/// let mut registry = Registry::new();
/// for (class, defs) in [(Class::Im, &config.im_drivers), (Class::Vmm, &config.vmm_drivers),
///                       (Class::Tm, &config.tm_drivers)] {
///     for d in defs {
///         let mut spec = DriverSpec::new(class, &d.name, d.folder());
///         spec.threads = d.threads;
///         spec.retries = d.retries.unwrap_or(0);
///         spec.local_actions = d.local_actions.iter()
///             .map(|l| LocalAction { action: l.action.clone(), script: l.script.clone() })
///             .collect();
///         spec.front_end = d.folder() == "dummy"; // dummy hosts are not machines
///         if let Err(e) = registry.add(spec) { warn!("{e}") }
///     }
/// }
/// let drivers = ScriptDrivers::new(registry, Arc::new(Local::new(&config.remotes_dir)))
///     .timeouts(Timeouts::new(config.driver_timeout))
///     .env("DUMMY_STATE_DIR", config.data_dir.join("dummy").display().to_string());
/// ```
pub struct ScriptDrivers {
    registry: Registry,
    transport: Arc<dyn Transport>,
    timeouts: Timeouts,
    env: Vec<(String, String)>,
    vm_locks: VmLocks,
    retry_delay: Duration,
    vnc_base_port: u16,
}

impl ScriptDrivers {
    /// The drivers of `registry`, run through `transport`, with the default
    /// timeouts.
    pub fn new(registry: Registry, transport: Arc<dyn Transport>) -> Self {
        ScriptDrivers {
            registry,
            transport,
            timeouts: Timeouts::default(),
            env: Vec::new(),
            vm_locks: VmLocks::default(),
            retry_delay: Duration::from_secs(1),
            vnc_base_port: 5900,
        }
    }

    /// Sets `VNC_BASE_PORT`: a kvm VM's VNC console without `PORT` listens
    /// on this plus the VM id (5900).
    pub fn vnc_base_port(mut self, port: u16) -> Self {
        self.vnc_base_port = port;
        self
    }

    /// The deployment file of `request` for `driver`: the core's text as it
    /// is, or for a kvm driver the libvirt domain XML generated from it
    /// (text that already is XML is left alone).
    fn deployment(&self, request: &DeployRequest, deployment: &Deployment) -> Result<String> {
        let host = &request.target.host;
        let Deployment::Kvm(defaults) = deployment else {
            return Ok(request.deployment.clone());
        };
        if request.deployment.trim_start().starts_with('<') {
            return Ok(request.deployment.clone());
        }
        let template = Template::parse(&request.deployment).map_err(|e| {
            driver_error("deploy", host, format!("cannot read the VM template: {e}"))
        })?;
        // The deployment file lives in the VM's directory on the host
        // (`<VM_DIR>/<vid>/deployment.<seq>`), beside its disks.
        let vm_dir = Path::new(&request.remote_file)
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let domain = kvm::domain_xml(&kvm::DomainInput {
            vm_id: request.target.vm_id,
            template: &template,
            defaults,
            vm_dir: &vm_dir,
            vnc_base_port: self.vnc_base_port,
        })
        .map_err(|message| driver_error("deploy", host, message))?;
        for warning in &domain.warnings {
            tracing::warn!(vm = request.target.vm_id, "deploy: {warning}");
        }
        Ok(domain.xml)
    }

    /// Sets the per-action timeouts.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Adds an environment variable every script gets (a request's
    /// [`ScriptEnv`] may override it). The `dummy` drivers keep their
    /// domain table in `DUMMY_STATE_DIR` when it is set.
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the pause between a failure and its retry (1 s, DRIVERS.md §1.4).
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// The loaded drivers.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The driver `key` of `class`, or "driver X is not loaded".
    fn entry(&self, class: Class, key: &str, action: &str, host: &str) -> Result<&Entry> {
        self.registry
            .entry(class, key)
            .ok_or_else(|| Error::Driver {
                action: action.to_owned(),
                host: host.to_owned(),
                message: format!("driver {key} is not loaded"),
            })
    }

    /// The base environment, then the request's (names that cannot be
    /// environment variables are dropped).
    fn environment(&self, extra: &ScriptEnv) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        for (name, value) in extra.iter() {
            if !is_env_name(name) {
                tracing::warn!("driver environment: ignoring invalid name {name:?}");
                continue;
            }
            env.retain(|(n, _)| n != name);
            env.push((name.to_owned(), value.to_owned()));
        }
        env
    }

    /// Runs `invocation` for a driver: takes one of its slots, and re-runs
    /// a failure up to its retries.
    fn run(&self, entry: &Entry, invocation: &Invocation) -> Result<String> {
        let _slot = entry.slots.take();
        let mut attempt = 0;
        loop {
            tracing::debug!(
                action = %invocation.action,
                host = %invocation.host,
                attempt,
                "running {} {}",
                invocation.program,
                invocation.args.join(" ")
            );
            match action::run(self.transport.as_ref(), invocation) {
                Err(e) if attempt < entry.spec.retries => {
                    tracing::info!(vm = invocation.vm_id, "{e}; retrying");
                    attempt += 1;
                    thread::sleep(self.retry_delay);
                }
                other => return other,
            }
        }
    }

    /// A VMM action: `<action> <args> <host> <vid> <host>` (DRIVERS.md
    /// §2.2), in the VM's turn.
    fn vmm(
        &self,
        target: &VmmTarget,
        action: &str,
        mut args: Vec<String>,
        stdin: Option<Vec<u8>>,
    ) -> Result<String> {
        let host = &target.host;
        let entry = self.entry(Class::Vmm, &target.driver, action, host)?;
        let (local, script) = entry.spec.placement(action);
        let program = action::script_path(Class::Vmm.dir(), &entry.spec.folder, script)
            .map(Program::Script)
            .map_err(|message| driver_error(action, host, message))?;
        args.extend([host.clone(), target.vm_id.to_string(), host.clone()]);
        let invocation = Invocation {
            action: action.to_owned(),
            host: host.clone(),
            vm_id: Some(target.vm_id),
            site: site(local, host),
            program,
            args,
            stdin,
            env: self.environment(&target.env),
            timeout: entry
                .spec
                .timeout
                .unwrap_or_else(|| self.timeouts.get(action)),
        };
        let _turn = self.vm_locks.lock(target.vm_id);
        self.run(entry, &invocation)
    }

    /// A VMM action whose answer is only success.
    fn vmm_unit(&self, target: &VmmTarget, action: &str, args: Vec<String>) -> Result<()> {
        self.vmm(target, action, args, None).map(|_| ())
    }
}

impl Drivers for ScriptDrivers {
    fn monitor(&self, request: &MonitorRequest) -> Result<Template> {
        const ACTION: &str = "monitor";
        let host = &request.host;
        let entry = self.entry(Class::Im, &request.driver, ACTION, host)?;
        let (local, _) = entry.spec.placement(ACTION);
        // One helper runs every probe of the folder (checked when the
        // driver was registered), so a host needs one command, not one per
        // probe.
        let program = Program::Script(Path::new(Class::Im.dir()).join("run_probes"));
        let invocation = Invocation {
            action: ACTION.to_owned(),
            host: host.clone(),
            // Host monitoring: its lines are the server's, not a VM's.
            vm_id: None,
            site: site(local, host),
            program,
            args: vec![
                entry.spec.folder.clone(),
                request.host_id.to_string(),
                host.clone(),
            ],
            stdin: None,
            env: self.environment(&request.env),
            timeout: entry
                .spec
                .timeout
                .unwrap_or_else(|| self.timeouts.get(ACTION)),
        };
        let stdout = self.run(entry, &invocation)?;
        reply::monitor(&stdout).map_err(|message| invocation.error(message))
    }

    fn deploy(&self, request: &DeployRequest) -> Result<String> {
        let host = &request.target.host;
        let entry = self.entry(Class::Vmm, &request.target.driver, "deploy", host)?;
        let deployment = self.deployment(request, &entry.spec.deployment)?;
        let stdout = self.vmm(
            &request.target,
            "deploy",
            vec![request.remote_file.clone()],
            Some(deployment.into_bytes()),
        )?;
        reply::deploy_id(&stdout).map_err(|m| driver_error("deploy", &request.target.host, m))
    }

    fn shutdown(&self, request: &DomainRequest) -> Result<()> {
        self.vmm_unit(&request.target, "shutdown", vec![request.deploy_id.clone()])
    }

    fn cancel(&self, request: &DomainRequest) -> Result<()> {
        self.vmm_unit(&request.target, "cancel", vec![request.deploy_id.clone()])
    }

    fn save(&self, request: &SaveRequest) -> Result<()> {
        let args = vec![request.deploy_id.clone(), request.checkpoint.clone()];
        self.vmm_unit(&request.target, "save", args)
    }

    fn restore(&self, request: &RestoreRequest) -> Result<()> {
        self.vmm_unit(&request.target, "restore", vec![request.checkpoint.clone()])
    }

    /// TM `premigrate`, VMM `migrate`, TM `postmigrate` (DRIVERS.md §2.3;
    /// the VNM steps are no-ops for the network drivers cloudgate has).
    /// A failed move runs TM `failmigrate` to undo `premigrate` and fails.
    /// A failed `postmigrate` does not fail the migration: the domain
    /// already runs on the destination, only the source keeps a copy.
    fn migrate(&self, request: &MigrateRequest) -> Result<()> {
        let storage = |phase| TransferRequest {
            vm_id: request.target.vm_id,
            driver: request.tm_driver.clone(),
            action: TmAction::Migration {
                phase,
                from: request.target.host.clone(),
                to: request.destination.clone(),
                dir: request.dir.clone(),
            },
            env: request.target.env.clone(),
        };
        self.transfer(&storage(MigrationPhase::Before))?;
        let args = vec![request.deploy_id.clone(), request.destination.clone()];
        if let Err(e) = self.vmm_unit(&request.target, "migrate", args) {
            if let Err(undo) = self.transfer(&storage(MigrationPhase::Failed)) {
                tracing::warn!(
                    vm = request.target.vm_id,
                    "after a failed migration: {undo}"
                );
            }
            return Err(e);
        }
        if let Err(e) = self.transfer(&storage(MigrationPhase::After)) {
            tracing::warn!(
                vm = request.target.vm_id,
                "migrated to {}, but the source keeps its copy: {e}",
                request.destination
            );
        }
        Ok(())
    }

    fn poll(&self, request: &DomainRequest) -> Result<PollAnswer> {
        let stdout = self.vmm(
            &request.target,
            "poll",
            vec![request.deploy_id.clone()],
            None,
        )?;
        reply::poll(&stdout).map_err(|m| driver_error("poll", &request.target.host, m))
    }

    fn reboot(&self, request: &DomainRequest) -> Result<()> {
        self.vmm_unit(&request.target, "reboot", vec![request.deploy_id.clone()])
    }

    fn reset(&self, request: &DomainRequest) -> Result<()> {
        self.vmm_unit(&request.target, "reset", vec![request.deploy_id.clone()])
    }

    fn transfer(&self, request: &TransferRequest) -> Result<()> {
        let action = request.action.name();
        let host = request.action.host();
        let entry = self.entry(Class::Tm, &request.driver, action, host)?;
        let (_, script) = entry.spec.placement(action);
        let program = action::script_path(Class::Tm.dir(), &entry.spec.folder, script)
            .map(Program::Script)
            .map_err(|message| driver_error(action, host, message))?;
        let mut args = request.action.args();
        // 3.4+ trailing `<vid> <dsid>`; cloudgate has one datastore, 0.
        args.extend([request.vm_id.to_string(), "0".to_owned()]);
        let invocation = Invocation {
            action: action.to_owned(),
            host: host.to_owned(),
            vm_id: Some(request.vm_id),
            // TM scripts run on the front-end and reach hosts themselves.
            site: Site::FrontEnd,
            program,
            args,
            stdin: None,
            env: self.environment(&request.env),
            timeout: entry
                .spec
                .timeout
                .unwrap_or_else(|| self.timeouts.get(action)),
        };
        let _turn = self.vm_locks.lock(request.vm_id);
        self.run(entry, &invocation).map(|_| ())
    }

    fn hook(&self, request: &HookRequest) -> Result<String> {
        let (site, host) = match &request.site {
            HookSite::FrontEnd => (Site::FrontEnd, "front-end".to_owned()),
            HookSite::Host(host) => (Site::Host(host.clone()), host.clone()),
        };
        let action = format!("hook {}", request.name);
        let program = action::hook_program(&request.command)
            .map_err(|message| driver_error(&action, &host, message))?;
        let invocation = Invocation {
            action,
            host,
            vm_id: Some(request.vm_id),
            site,
            program,
            args: request.args.clone(),
            stdin: None,
            env: self.environment(&request.env),
            timeout: self.timeouts.get("hook"),
        };
        action::run(self.transport.as_ref(), &invocation)
    }
}

/// The site of an action: the front-end when it runs locally.
fn site(local: bool, host: &str) -> Site {
    if local {
        Site::FrontEnd
    } else {
        Site::Host(host.to_owned())
    }
}

/// A [`Error::Driver`].
fn driver_error(action: &str, host: &str, message: impl Into<String>) -> Error {
    Error::Driver {
        action: action.to_owned(),
        host: host.to_owned(),
        message: message.into(),
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what a shell accepts as a variable name.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
