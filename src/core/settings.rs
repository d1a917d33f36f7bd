//! The settings the core runs with: the part of the config that is domain
//! policy. The CLI's `serve` fills it from `crate::config::Config`, so the
//! core never reads the config file itself.

use std::path::PathBuf;
use std::time::Duration;

use crate::core::hooks::HookSpec;

/// Domain settings, with OpenNebula's meaning (spec/DRIVERS.md §10.1).
#[derive(Clone, Debug)]
pub struct Settings {
    /// The two leading bytes of generated MAC addresses (`MAC_PREFIX`).
    pub mac_prefix: [u8; 2],
    /// The default size of a ranged network (`NETWORK_SIZE`).
    pub network_size: u32,
    /// The loaded IM drivers (`IM_MAD`): what a host's `im_mad` may name.
    pub im_drivers: Vec<DriverName>,
    /// The loaded VMM drivers (`VM_MAD`).
    pub vmm_drivers: Vec<DriverName>,
    /// The loaded TM drivers (`TM_MAD`).
    pub tm_drivers: Vec<DriverName>,
    /// The fraction of each host's memory never allocated to VMs
    /// (`HYPERVISOR_MEM`, spec/CORE.md §3.4).
    pub hypervisor_mem: f64,
    /// The image repository: `<DATA_DIR>/images` (spec/CORE.md §4.6).
    pub image_dir: PathBuf,
    /// `MANAGER_TIMER`: how often the host monitor looks for hosts to
    /// monitor (spec/CORE.md §3.2).
    pub manager_timer: Duration,
    /// `HOST_MONITORING_INTERVAL`: time between two monitorings of a host.
    pub host_monitoring_interval: Duration,
    /// `HOST_PER_INTERVAL`: hosts sent to monitoring per tick.
    pub host_per_interval: u32,
    /// `SCHED_INTERVAL`: time between two scheduling cycles when nothing
    /// wakes the scheduler earlier (spec/CORE.md §6.5).
    pub sched_interval: Duration,
    /// `MAX_VM`: pending VMs considered per scheduling cycle.
    pub max_vm: u32,
    /// `MAX_DISPATCH`: VMs dispatched per scheduling cycle.
    pub max_dispatch: u32,
    /// `MAX_HOST`: VMs dispatched to one host per scheduling cycle.
    pub max_host: u32,
    /// The RANK expression of `DEFAULT_SCHED`, for VMs without a RANK
    /// (`- RUNNING_VMS`: striping).
    pub default_rank: String,
    /// The front-end directory whose files every user may name in a VM's
    /// `CONTEXT/FILES`; outside it only oneadmin may (`core::context`).
    /// Absolute, as the paths users write are. `None`: only oneadmin may
    /// name files at all.
    pub context_files_dir: Option<PathBuf>,
    /// The configured `VM_HOOK`s (spec/DRIVERS.md §8), in file order.
    pub hooks: Vec<HookSpec>,
    /// `VM_DIR`: the hosts' base directory for VM files; a VM's files are
    /// in `<VM_DIR>/<vid>/` (spec/CORE.md §2, cloudgate's one-level layout).
    pub vm_dir: String,
    /// The front-end's VM directory: `<var_dir>/<vid>/` holds
    /// `context.sh` and a stopped VM's files (spec/CORE.md §2,
    /// `$ONE_LOCATION/var`); cloudgate's data dir.
    pub var_dir: PathBuf,
    /// The front-end's host name, as TM arguments write `<fe>:<path>`
    /// (spec/DRIVERS.md §5.1).
    pub front_end: String,
    /// `VM_POLLING_INTERVAL`: time between two polls of a running VM
    /// (spec/CORE.md §1.5).
    pub vm_polling_interval: Duration,
    /// `VM_PER_INTERVAL`: VMs polled per tick.
    pub vm_per_interval: u32,
    /// `VNC_BASE_PORT`: a VM whose first GRAPHICS (vnc or spice) has no
    /// `PORT` gets this plus its id at creation (spec/DRIVERS.md §3).
    pub vnc_base_port: u16,
    /// How long a DONE VM stays in the pool's memory after it ended, and
    /// its EC2 client token with it; older ones are read from the store
    /// when asked for. At least [`DONE_RETENTION`], and no shorter than
    /// EC2 shows terminated instances.
    pub done_retention: Duration,
}

/// The shortest [`Settings::done_retention`]: AWS keeps a client token
/// valid for at least a day after its instance ends.
pub const DONE_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How a host may refer to a loaded driver: by its `NAME` (`im_kvm`) or by
/// the folder of scripts it runs (`kvm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverName {
    /// The driver's `NAME` in the config, what a host stores.
    pub name: String,
    /// Its folder under `config/remotes/<class>/`.
    pub folder: String,
}

impl DriverName {
    /// Whether `key` names this driver, by name or by folder.
    pub fn answers_to(&self, key: &str) -> bool {
        self.name == key || self.folder == key
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mac_prefix: [0x02, 0x00],
            network_size: 254,
            // No driver loaded: every host create is refused until `serve`
            // fills these from the config.
            im_drivers: Vec::new(),
            vmm_drivers: Vec::new(),
            tm_drivers: Vec::new(),
            hypervisor_mem: 0.1,
            image_dir: PathBuf::from("var/images"),
            // cloudgate's shipped values (spec/DRIVERS.md §10.1).
            manager_timer: Duration::from_secs(15),
            host_monitoring_interval: Duration::from_secs(60),
            host_per_interval: 15,
            sched_interval: Duration::from_secs(5),
            max_vm: 5000,
            max_dispatch: 1000,
            max_host: 100,
            default_rank: "- RUNNING_VMS".to_owned(),
            context_files_dir: None,
            hooks: Vec::new(),
            vm_dir: "/var/lib/one/vms".to_string(),
            var_dir: PathBuf::from("var"),
            front_end: "localhost".to_string(),
            vm_polling_interval: Duration::from_secs(60),
            done_retention: DONE_RETENTION,
            vm_per_interval: 15,
            vnc_base_port: 5900,
        }
    }
}
