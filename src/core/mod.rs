//! The domain: users now, and later hosts, networks, images and VMs with
//! their life cycle (spec/CORE.md).
//!
//! May use: `crate::template` only. Storage reaches the core through
//! [`ports::Store`]; nothing here names SQL, HTTP or processes.

/// An enum of OpenNebula's numbered states: each variant with the number
/// stored and exported (it MUST NOT change) and the upper-case name
/// OpenNebula shows; gives `ALL` in number order, `number()`,
/// `from_number()`, `name()` and `Display` (the name).
macro_rules! numbered {
    (
        $(#[$meta:meta])*
        $vis:vis enum $enum:ident: $repr:ty, from $from:ty {
            $( $(#[$doc:meta])* $variant:ident = $number:literal => $name:literal, )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $enum {
            $( $(#[$doc])* $variant = $number, )+
        }

        impl $enum {
            /// Every value, in number order.
            pub const ALL: [$enum; [$($number),+].len()] = [$($enum::$variant),+];

            /// OpenNebula's number, as stored and exported.
            pub fn number(self) -> $repr {
                self as $repr
            }

            /// The value with this number; `None` for numbers cloudgate
            /// does not know.
            pub fn from_number(number: $from) -> Option<Self> {
                Self::ALL
                    .into_iter()
                    .find(|s| <$from>::from(s.number()) == number)
            }

            /// OpenNebula's upper-case name (`READY`, `PENDING`...).
            pub fn name(self) -> &'static str {
                match self {
                    $( $enum::$variant => $name, )+
                }
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub mod background;
pub mod caller;
pub mod context;
pub mod error;
pub mod hooks;
pub mod host;
pub mod image;
pub mod keypair;
pub mod monitor;
pub mod ports;
pub mod sched;
pub mod settings;
pub mod signal;
pub mod tag;
pub mod user;
pub mod vm;
pub mod vnet;
pub mod writer;

pub use background::Background;
pub use caller::Caller;
pub use error::{Error, Kind, Result};
pub use settings::Settings;

use std::sync::Arc;

/// The core: every pool, behind one handle shared by the fronts.
pub struct Core {
    settings: Settings,
    users: user::UserPool,
    hosts: Arc<host::HostPool>,
    vnets: Arc<vnet::VnetPool>,
    images: Arc<image::ImagePool>,
    vms: Arc<vm::VmPool>,
    /// EC2 key pairs.
    keypairs: Arc<keypair::KeyPairPool>,
    /// Tags on VMs and images.
    tags: tag::TagPool,
    /// The drivers every driver action goes through.
    drivers: Arc<dyn ports::Drivers>,
    /// The VM hooks (`VM_HOOK`), fired by the VM pool.
    hooks: Arc<hooks::HookManager>,
    /// Wakes the host monitor (a host was created or enabled).
    monitor_bell: Arc<signal::Signal>,
    /// Wakes the scheduler (a VM became pending, a host became usable).
    sched_bell: Arc<signal::Signal>,
}

impl Core {
    /// Loads every pool from the store; driver actions will go through
    /// `drivers`. Nothing runs in the background until [`Core::start`].
    pub fn open(
        store: Arc<dyn ports::Store>,
        settings: Settings,
        drivers: Arc<dyn ports::Drivers>,
    ) -> Result<Self> {
        let writer = writer::Writer::new(store);
        let monitor_bell = Arc::new(signal::Signal::new());
        let sched_bell = Arc::new(signal::Signal::new());
        let hosts = host::HostPool::load(writer.clone(), &settings)?;
        hosts.set_monitor_bell(monitor_bell.clone());
        let hosts = Arc::new(hosts);
        let vnets = Arc::new(vnet::VnetPool::load(writer.clone(), settings.clone())?);
        let images = Arc::new(image::ImagePool::load(writer.clone(), &settings.image_dir)?);
        // Before the VM pool, which fires them.
        let hooks = Arc::new(hooks::HookManager::new(
            settings.hooks.clone(),
            drivers.clone(),
        ));
        let vms = Arc::new(vm::VmPool::load(
            writer.clone(),
            settings.clone(),
            hosts.clone(),
            vnets.clone(),
            images.clone(),
        )?);
        vms.set_pending_bell(sched_bell.clone());
        let keypairs = Arc::new(keypair::KeyPairPool::load(writer.clone())?);
        let tags = tag::TagPool::load(
            writer.clone(),
            vms.clone(),
            images.clone(),
            keypairs.clone(),
        )?;
        Ok(Core {
            users: user::UserPool::load(writer.clone())?,
            vnets,
            images,
            vms,
            keypairs,
            tags,
            hosts,
            settings,
            drivers,
            hooks,
            monitor_bell,
            sched_bell,
        })
    }

    /// Starts the host monitor and the scheduler on their own threads
    /// (call it once the server is up); they run until the returned handle
    /// is stopped or dropped.
    pub fn start(self: &Arc<Self>) -> Result<Background> {
        background::start(self)
    }

    /// The drivers, for the pools that run driver actions.
    pub fn drivers(&self) -> &Arc<dyn ports::Drivers> {
        &self.drivers
    }

    /// The VM hooks: the VM pool calls `on_create` and `on_transition`
    /// (see `core::hooks`).
    pub fn hooks(&self) -> &Arc<hooks::HookManager> {
        &self.hooks
    }

    /// Wakes the scheduler for a cycle now (a VM became pending); cheap,
    /// and harmless when it is not running.
    pub fn wake_scheduler(&self) {
        self.sched_bell.ring();
    }

    /// The scheduler's bell, for a pool that must wake it from code
    /// without a `Core` (the VM pool when a VM becomes pending).
    pub fn scheduler_bell(&self) -> &Arc<signal::Signal> {
        &self.sched_bell
    }

    /// The settings the core runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The user pool.
    pub fn users(&self) -> &user::UserPool {
        &self.users
    }

    /// The host pool.
    pub fn hosts(&self) -> &host::HostPool {
        &self.hosts
    }

    /// The virtual network pool (shared, so that the VM pool can plan
    /// leases with it).
    pub fn vnets(&self) -> &Arc<vnet::VnetPool> {
        &self.vnets
    }

    /// The image repository (shared, so that the VM pool can plan image
    /// use with it).
    pub fn images(&self) -> &Arc<image::ImagePool> {
        &self.images
    }

    /// The VM pool (shared with its runner, poller and the scheduler).
    pub fn vms(&self) -> &Arc<vm::VmPool> {
        &self.vms
    }

    /// The key pair pool (EC2).
    pub fn keypairs(&self) -> &keypair::KeyPairPool {
        &self.keypairs
    }

    /// Tags on VMs and images (EC2).
    pub fn tags(&self) -> &tag::TagPool {
        &self.tags
    }
}
