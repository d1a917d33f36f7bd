//! The domain: users now, and later hosts, networks, images and VMs with
//! their life cycle (spec/CORE.md).
//!
//! May use: `crate::template` only. Storage reaches the core through
//! [`ports::Store`]; nothing here names SQL, HTTP or processes.

pub mod caller;
pub mod error;
pub mod host;
pub mod image;
pub mod ports;
pub mod settings;
pub mod user;
pub mod vm;
pub mod vnet;
pub mod writer;

pub use caller::Caller;
pub use error::{Error, Kind, Result};
pub use settings::Settings;

use std::sync::Arc;

/// The core: every pool, behind one handle shared by the fronts.
pub struct Core {
    settings: Settings,
    users: user::UserPool,
    hosts: host::HostPool,
    vnets: Arc<vnet::VnetPool>,
    images: Arc<image::ImagePool>,
}

impl Core {
    /// Loads every pool from the store.
    pub fn open(store: Arc<dyn ports::Store>, settings: Settings) -> Result<Self> {
        let writer = writer::Writer::new(store);
        Ok(Core {
            users: user::UserPool::load(writer.clone())?,
            vnets: Arc::new(vnet::VnetPool::load(writer.clone(), settings.clone())?),
            images: Arc::new(image::ImagePool::load(writer.clone(), &settings.image_dir)?),
            hosts: host::HostPool::load(writer, &settings)?,
            settings,
        })
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
}
