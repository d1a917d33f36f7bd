//! What real hosts add to the drivers `serve` builds: the SSH transport
//! (spec/DRIVERS.md §0 "Transport"), the kvm driver's deployment-file
//! defaults (§3) and the settings the real scripts read from their
//! environment.
//!
//! Where an action runs (the rule, decided per driver in `driver_spec`):
//! TM actions, the actions a driver lists with `-l` and every action of a
//! `dummy` driver (its hosts are not machines, so a host called
//! `localhost` on the dummy drivers stays local) run on this machine; every
//! other IM and VMM action (kvm) runs on its host through ssh, whatever the
//! host's name.
//!
//! May use: everything (it is the CLI's wiring).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, DriverDef};
use crate::drivers::{kvm, Local, Ssh, SshOptions, Transport};
use crate::template::Template;

/// The folder, under the data dir, of the master connections' sockets and
/// of the `ssh` wrapper the TM scripts use.
pub const SSH_DIR: &str = "ssh";

/// The SSH options of `config`: sockets in `<DATA_DIR>/ssh`,
/// `SCRIPTS_REMOTE_DIR`, `SSH_CONNECT_TIMEOUT`, `SSH_HOST_KEY_POLICY`,
/// `HOST_ACTION_LIMIT`, and the ssh config file of `CLOUDGATE_SSH_CONFIG`.
pub fn ssh_options(config: &Config) -> SshOptions {
    let dir = config.data_dir.join(SSH_DIR);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let mut options = SshOptions::new(dir, config.scripts_remote_dir.display().to_string());
    options.connect_timeout = config.ssh_connect_timeout;
    options.host_key_policy = config.ssh_host_key_policy.as_str().to_owned();
    options.host_action_limit = config.host_action_limit;
    options
}

/// The transport of every driver action: ssh to hosts, this machine for
/// the front-end. Falls back to running everything here (with an error in
/// the log) if the ssh directory cannot be made.
pub fn transport(config: &Config, remotes: &Path) -> Arc<dyn Transport> {
    let local = Local::new(remotes);
    match Ssh::new(local.clone(), ssh_options(config)) {
        Ok(ssh) => Arc::new(ssh),
        Err(e) => {
            tracing::error!(
                "cannot prepare the ssh transport in {}: {e}; every driver action runs on \
                 this machine",
                config.data_dir.join(SSH_DIR).display()
            );
            Arc::new(local)
        }
    }
}

/// The default values of a kvm `VM_MAD`: its `default` file, found beside
/// the config file that names it, else in the config folder above the
/// remotes; the shipped defaults when it names none or the file is absent.
pub fn kvm_defaults(def: &DriverDef, remotes: &Path) -> Template {
    let Some(file) = def.default.as_deref() else {
        return kvm::built_in_defaults();
    };
    let mut candidates: Vec<PathBuf> = Vec::new();
    let source = Path::new(&def.location.source);
    if Path::new(file).is_absolute() {
        candidates.push(PathBuf::from(file));
    } else {
        if let Some(dir) = source.parent().filter(|_| source.is_file()) {
            candidates.push(dir.join(file));
        }
        if let Some(config_dir) = remotes.parent() {
            candidates.push(config_dir.join(file));
        }
    }
    for path in candidates {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        match Template::parse(&text) {
            Ok(template) => return template,
            Err(e) => {
                tracing::warn!(
                    "VM_MAD {}: default file {}: {e}; using the shipped defaults",
                    def.name,
                    path.display()
                );
                return kvm::built_in_defaults();
            }
        }
    }
    tracing::info!(
        "VM_MAD {}: default file {file} not found; using the shipped defaults",
        def.name
    );
    kvm::built_in_defaults()
}

/// Whether a `VM_MAD` builds libvirt domains (`type = "kvm"`).
pub fn is_kvm(def: &DriverDef) -> bool {
    def.driver_type
        .as_deref()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("kvm"))
}
