//! The settings the core runs with: the part of the config that is domain
//! policy. The CLI's `serve` fills it from `crate::config::Config`, so the
//! core never reads the config file itself.

use std::path::PathBuf;

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
}

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
        }
    }
}
