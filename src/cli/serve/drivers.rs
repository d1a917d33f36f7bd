//! The drivers `serve` hands to the core: the config's `IM_MAD`, `VM_MAD`
//! and `TM_MAD` as a [`ScriptDrivers`] running the scripts of the remotes
//! directory (spec/DRIVERS.md §10.2) through the SSH transport, which runs
//! front-end actions locally (`real.rs` says which run where), and
//! where that directory is.
//!
//! Where the driver scripts are ([`remotes_dir`]), first found wins:
//! 1. `$CLOUDGATE_REMOTES` when set (taken as given: an explicit choice);
//! 2. `REMOTES_DIR` when absolute, or when it exists relative to the
//!    working directory (`serve` run from a checkout finds
//!    `config/remotes`);
//! 3. a relative `REMOTES_DIR` under the directory of the executable or
//!    one of its ancestors: `<checkout>/target/debug/cloudgate` finds
//!    `<checkout>/config/remotes` from anywhere (the integration tests run
//!    the binary from a temporary directory), `<prefix>/bin/cloudgate`
//!    finds `<prefix>/config/remotes`;
//! 4. otherwise `REMOTES_DIR` relative to the working directory, with a
//!    warning: every action then fails with "not found" and hosts go to
//!    ERROR saying so.
//!
//! May use: everything (it is the CLI's wiring).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, DriverClass, DriverDef};
use crate::core::ports::Drivers;
use crate::drivers::{
    Class, Deployment, DriverSpec, LocalAction, Registry, ScriptDrivers, Timeouts,
};

mod real;

/// The environment variable that names the remotes directory, over the
/// config's `REMOTES_DIR`.
pub const REMOTES_ENV: &str = "CLOUDGATE_REMOTES";

/// The folder, under the data dir, where the dummy VMM keeps its domain
/// table (`DUMMY_STATE_DIR`), so dummy VMs survive a restart like real
/// ones.
pub const DUMMY_STATE_DIR: &str = "dummy";

/// The drivers of `config`, run locally from [`remotes_dir`]. Drivers the
/// registry refuses, and drivers with no folder of scripts, are logged as
/// warnings (a config may name drivers cloudgate does not ship).
pub fn build_drivers(config: &Config) -> Arc<dyn Drivers> {
    let remotes = remotes_dir(config);
    let mut registry = Registry::new();
    for (class, kind) in [
        (Class::Im, DriverClass::Im),
        (Class::Vmm, DriverClass::Vmm),
        (Class::Tm, DriverClass::Tm),
    ] {
        for def in config.drivers(kind) {
            let mut spec = driver_spec(class, def);
            if class == Class::Vmm && real::is_kvm(def) {
                spec.deployment = Deployment::Kvm(real::kvm_defaults(def, &remotes));
            }
            if let Err(e) = registry.add(spec) {
                tracing::warn!("{e}");
            }
        }
    }
    for missing in registry.missing_folders(&remotes) {
        tracing::warn!("{missing}");
    }
    tracing::info!("driver scripts in {}", remotes.display());
    let state_dir = config.data_dir.join(DUMMY_STATE_DIR);
    let state_dir = std::path::absolute(&state_dir).unwrap_or(state_dir);
    Arc::new(
        ScriptDrivers::new(registry, real::transport(config, &remotes))
            .timeouts(
                Timeouts::new(config.driver_timeout).set(
                    "shutdown",
                    (config.shutdown_timeout + std::time::Duration::from_secs(60))
                        .max(std::time::Duration::from_secs(360)),
                ),
            )
            .vnc_base_port(config.vnc_base_port)
            .env("DUMMY_STATE_DIR", state_dir.display().to_string())
            // The kvm shutdown script's wait; its action timeout is longer.
            .env(
                "SHUTDOWN_TIMEOUT",
                config.shutdown_timeout.as_secs().to_string(),
            ),
    )
}

/// One `*_MAD` vector as the drivers module takes it.
fn driver_spec(class: Class, def: &DriverDef) -> DriverSpec {
    let mut spec = DriverSpec::new(class, &def.name, def.folder());
    spec.threads = def.threads;
    spec.retries = def.retries.unwrap_or(0);
    spec.local_actions = def
        .local_actions
        .iter()
        .map(|l| LocalAction {
            action: l.action.clone(),
            script: l.script.clone(),
        })
        .collect();
    // The dummy drivers' hosts are not machines: run everything here.
    spec.front_end = def.folder() == "dummy";
    spec
}

/// Where the driver scripts are: see the module header. Absolute, so that
/// nothing depends on the working directory afterwards.
pub fn remotes_dir(config: &Config) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let exe = std::env::current_exe().ok();
    let (dir, warning) = resolve_remotes(
        &config.remotes_dir,
        std::env::var_os(REMOTES_ENV),
        &cwd,
        exe.as_deref(),
    );
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    dir
}

/// [`remotes_dir`] with its inputs given: the configured `REMOTES_DIR`,
/// `$CLOUDGATE_REMOTES`, the working directory and the executable's path.
/// Returns the directory and a warning when none was found.
fn resolve_remotes(
    configured: &Path,
    env: Option<OsString>,
    cwd: &Path,
    exe: Option<&Path>,
) -> (PathBuf, Option<String>) {
    if let Some(dir) = env.filter(|d| !d.is_empty()) {
        return (cwd.join(dir), None);
    }
    let here = cwd.join(configured);
    if configured.is_absolute() || here.is_dir() {
        return (here, None);
    }
    let beside_exe = exe
        .and_then(Path::parent)
        .into_iter()
        .flat_map(Path::ancestors)
        .map(|base| base.join(configured))
        .find(|dir| dir.is_dir());
    if let Some(dir) = beside_exe {
        return (dir, None);
    }
    let warning = format!(
        "no driver scripts: {} does not exist (set REMOTES_DIR or {REMOTES_ENV}); driver \
         actions will fail",
        here.display()
    );
    (here, Some(warning))
}

#[cfg(test)]
mod tests;
