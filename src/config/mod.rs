//! The daemon configuration: `config/cloudgate.conf`, or an existing
//! OpenNebula `oned.conf`, read into a typed [`Config`].
//!
//! The file uses the OpenNebula template syntax (CORE.md 5.1) and is parsed
//! by `crate::template`, the only module this one uses. It accepts
//! OpenNebula's daemon, scheduler and driver attributes (DRIVERS.md 10,
//! CORE.md 6.5) and cloudgate's own (listen address, data directory, OCCI and
//! EC2 settings, limits and timeouts).
//!
//! The shipped `config/cloudgate.conf` is embedded in the binary and *is*
//! the defaults: [`Config::default`] parses it, and every file read with
//! [`Config::from_text`] or [`Config::load`] overrides it attribute by
//! attribute. A vector kind that may repeat (`IM_MAD`, `VM_MAD`, `TM_MAD`,
//! `VM_HOOK`, `*_INSTANCE_TYPE`) is replaced as a whole when the file gives
//! at least one.
//!
//! Errors and warnings point at the attribute: `FILE:line:col: message`.
//! Unknown attributes are warnings, so an OpenNebula 1.4 `oned.conf` loads
//! unchanged; a known attribute with a value of the wrong shape is an error.

mod drivers;
mod error;
mod instance;
mod load;
mod sched;
mod values;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

pub use drivers::{DriverClass, DriverDef, Hook, HookEvent, HookManagerDef, LocalAction};
pub use error::{ConfigError, ConfigWarning, Location};
pub use instance::InstanceType;
pub use sched::{SchedPolicy, SchedulerConfig};
pub use values::{DebugLevel, OcciDialect, SshHostKeyPolicy};

/// The shipped configuration file, which holds every default.
pub const BUILT_IN_TEXT: &str = include_str!("../../config/cloudgate.conf");

/// How the embedded file is named in messages and driver locations.
pub const BUILT_IN_SOURCE: &str = "<built-in cloudgate.conf>";

/// Everything the daemon reads from its configuration file.
///
/// Field docs name the attribute; defaults are those of the shipped
/// `config/cloudgate.conf`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    // ----- OpenNebula daemon attributes (DRIVERS.md 10.1) -----
    /// `MANAGER_TIMER`: period of the core's periodic checks (15 s).
    pub manager_timer: Duration,
    /// `HOST_MONITORING_INTERVAL`: time between two monitorings of a host (60 s).
    pub host_monitoring_interval: Duration,
    /// `HOST_PER_INTERVAL`: hosts monitored per tick (15).
    pub host_per_interval: u32,
    /// `VM_POLLING_INTERVAL`: time between two polls of a VM (60 s).
    pub vm_polling_interval: Duration,
    /// `VM_PER_INTERVAL`: VMs polled per tick (15).
    pub vm_per_interval: u32,
    /// `VM_DIR`: directory on the hosts holding each VM's files
    /// (`/var/lib/one/vms`); absolute.
    pub vm_dir: PathBuf,
    /// `SCRIPTS_REMOTE_DIR`: where the driver scripts are copied on the hosts
    /// (`/var/tmp/one`); absolute.
    pub scripts_remote_dir: PathBuf,
    /// `MAC_PREFIX`: the two leading bytes of generated MAC addresses (`02:00`).
    pub mac_prefix: [u8; 2],
    /// `NETWORK_SIZE`: default number of leases of a ranged network (254).
    pub network_size: u32,
    /// `PORT`: OpenNebula's XML-RPC port. Read so that `oned.conf` files
    /// load, but unused: cloudgate serves HTTP on [`listen`](Self::listen).
    pub port: Option<u16>,
    /// `DEBUG_LEVEL`: log verbosity 0..=3 (2, INFO).
    pub debug_level: DebugLevel,
    /// `VNC_BASE_PORT`: a VM's VNC port is this plus its id when its
    /// `GRAPHICS` gives none (5900).
    pub vnc_base_port: u16,
    /// Scheduler knobs: `SCHED_INTERVAL`, `MAX_VM`, `MAX_DISPATCH`,
    /// `MAX_HOST`, `HYPERVISOR_MEM`, `DEFAULT_SCHED`. (`DB` is also
    /// accepted, but only with the `sqlite` backend, so it has no field.)
    pub scheduler: SchedulerConfig,

    // ----- drivers and hooks (DRIVERS.md 8, 10.2) -----
    /// `IM_MAD` vectors, in file order (`im_dummy`, `im_kvm`).
    pub im_drivers: Vec<DriverDef>,
    /// `VM_MAD` vectors, in file order (`vmm_dummy`, `vmm_kvm`).
    pub vmm_drivers: Vec<DriverDef>,
    /// `TM_MAD` vectors, in file order (`tm_dummy`, `tm_ssh`, `tm_shared`).
    pub tm_drivers: Vec<DriverDef>,
    /// `HM_MAD`: kept as read; cloudgate runs hooks itself.
    pub hook_manager: Option<HookManagerDef>,
    /// `VM_HOOK` vectors that can fire, in file order (none).
    pub hooks: Vec<Hook>,

    // ----- cloudgate's own -----
    /// `LISTEN`: address and port of the HTTP server (`127.0.0.1:4567`).
    pub listen: SocketAddr,
    /// `PUBLIC_URL`: base of the hrefs in responses, without trailing `/`
    /// (unset: built from the request's `Host`, OCCI.md 1.1).
    pub public_url: Option<String>,
    /// `DATA_DIR`: SQLite database, image repository and logs (`./var`).
    pub data_dir: PathBuf,
    /// `REMOTES_DIR`: the local driver scripts, `<class>/<folder>/<action>`
    /// (`config/remotes`).
    pub remotes_dir: PathBuf,
    /// `OCCI_DIALECT`: which OCCI documents to answer with (`auto`).
    pub occi_dialect: OcciDialect,
    /// `OCCI_INSTANCE_TYPE` vectors (`small`, `medium`, `large`).
    pub occi_instance_types: Vec<InstanceType>,
    /// `EC2_INSTANCE_TYPE` vectors (`m1.small` ... `t2.medium`).
    pub ec2_instance_types: Vec<InstanceType>,
    /// `EC2_DEFAULT_INSTANCE_TYPE`: used when RunInstances gives no
    /// `InstanceType`; always one of `ec2_instance_types` (`m1.small`).
    pub ec2_default_instance_type: String,
    /// `EC2_PATH_PREFIX`: URL path the EC2 Query API answers on, no trailing
    /// `/` except for `/` itself (`/`).
    pub ec2_path_prefix: String,
    /// `EC2_TERMINATED_VISIBLE`: how long DescribeInstances still lists a
    /// terminated instance (900 s).
    pub ec2_terminated_visible: Duration,
    /// `BODY_LIMIT`: largest request body other than an image upload, in
    /// bytes (1M).
    pub body_limit: u64,
    /// `UPLOAD_LIMIT`: largest uploaded image, in bytes (10G).
    pub upload_limit: u64,
    /// `SIGNATURE_SKEW`: largest accepted distance between an EC2 request's
    /// timestamp and the server clock; zero turns the check off (900 s).
    pub signature_skew: Duration,
    /// `DRIVER_TIMEOUT`: timeout of a driver action that has no timeout of
    /// its own (300 s).
    pub driver_timeout: Duration,
    /// `SHUTDOWN_TIMEOUT`: how long the kvm driver waits for an ACPI
    /// shutdown before reporting failure (300 s).
    pub shutdown_timeout: Duration,
    /// `SSH_CONNECT_TIMEOUT`: ssh's `ConnectTimeout` to hosts (10 s).
    pub ssh_connect_timeout: Duration,
    /// `SSH_HOST_KEY_POLICY`: ssh's `StrictHostKeyChecking` (`accept-new`).
    pub ssh_host_key_policy: SshHostKeyPolicy,
    /// `HOST_ACTION_LIMIT`: driver actions run at once on one host (8).
    pub host_action_limit: u32,
}

impl Default for Config {
    /// The shipped `config/cloudgate.conf`, parsed once and cloned.
    fn default() -> Self {
        static BUILT_IN: OnceLock<Config> = OnceLock::new();
        BUILT_IN
            .get_or_init(|| {
                let mut config = load::blank();
                load::apply(&mut config, BUILT_IN_TEXT, BUILT_IN_SOURCE)
                    .expect("the shipped config/cloudgate.conf is valid (unit-tested)");
                config
            })
            .clone()
    }
}

impl Config {
    /// Parse a file's text; `source` names it in messages. Starts from the
    /// embedded defaults and overrides what the file sets.
    pub fn from_text(
        text: &str,
        source: &str,
    ) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
        let mut config = Config::default();
        let warnings = load::apply(&mut config, text, source)?;
        Ok((config, warnings))
    }

    /// Read and parse the file at `path` (named by its path in messages).
    pub fn load(path: &Path) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::file(&source, format!("cannot read: {e}")))?;
        Config::from_text(&text, &source)
    }

    /// One line for `cloudgate config check`, e.g. `2 IM, 2 VMM, 3 TM
    /// drivers, 1 hook, listen 127.0.0.1:4567, data dir ./var`.
    pub fn summary(&self) -> String {
        let hooks = match self.hooks.len() {
            1 => "1 hook".to_owned(),
            n => format!("{n} hooks"),
        };
        format!(
            "{} IM, {} VMM, {} TM drivers, {hooks}, listen {}, data dir {}",
            self.im_drivers.len(),
            self.vmm_drivers.len(),
            self.tm_drivers.len(),
            self.listen,
            self.data_dir.display()
        )
    }

    /// The drivers of one class, in file order.
    pub fn drivers(&self, class: DriverClass) -> &[DriverDef] {
        match class {
            DriverClass::Im => &self.im_drivers,
            DriverClass::Vmm => &self.vmm_drivers,
            DriverClass::Tm => &self.tm_drivers,
        }
    }

    /// The driver of `class` a host refers to as `key`: a driver whose name
    /// is `key`, else the first whose folder is `key` (`im_kvm` or `kvm`).
    pub fn driver(&self, class: DriverClass, key: &str) -> Option<&DriverDef> {
        let list = self.drivers(class);
        list.iter()
            .find(|d| d.name == key)
            .or_else(|| list.iter().find(|d| d.answers_to(key)))
    }

    /// The OCCI instance type called `name`.
    pub fn occi_instance_type(&self, name: &str) -> Option<&InstanceType> {
        self.occi_instance_types.iter().find(|t| t.name == name)
    }

    /// The EC2 instance type called `name`.
    pub fn ec2_instance_type(&self, name: &str) -> Option<&InstanceType> {
        self.ec2_instance_types.iter().find(|t| t.name == name)
    }
}
