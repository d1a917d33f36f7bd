//! Durable storage as the core sees it: one transaction at a time, one
//! method per pool and change.

use crate::core::host::Host;
use crate::core::image::Image;
use crate::core::user::User;
use crate::core::vnet::{Lease, VirtualNetwork, VnetInfo};
use crate::core::Result;

/// The pools whose ids come from one counter each; ids are never reused,
/// even after a delete (spec/CORE.md §8.2 `pool_control`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// The user pool.
    Users,
    /// The image pool.
    Images,
    /// The host pool.
    Hosts,
    /// The virtual network pool.
    Vnets,
}

/// One write transaction. Everything done through it commits together, and
/// durably, when the closure given to [`Store::write`] returns `Ok`;
/// nothing of it remains when it returns `Err`.
pub trait Tx {
    /// The next id of a pool (one above the highest ever given).
    fn next_id(&mut self, pool: Pool) -> Result<u64>;
    /// Inserts or replaces a user.
    fn put_user(&mut self, user: &User) -> Result<()>;
    /// Deletes a user.
    fn delete_user(&mut self, id: u64) -> Result<()>;
    /// Inserts or replaces an image (a name its owner already uses is a
    /// `Conflict`).
    fn put_image(&mut self, image: &Image) -> Result<()>;
    /// Deletes an image's row.
    fn delete_image(&mut self, id: u64) -> Result<()>;
    /// Inserts or replaces a host (a taken name is a `Conflict`).
    fn put_host(&mut self, host: &Host) -> Result<()>;
    /// Deletes a host.
    fn delete_host(&mut self, id: u64) -> Result<()>;
    /// Inserts or replaces a virtual network's definition (a name its
    /// owner already uses is a `Conflict`).
    fn put_vnet(&mut self, vnet: &VirtualNetwork) -> Result<()>;
    /// Deletes a virtual network (and any lease rows left on it).
    fn delete_vnet(&mut self, id: u64) -> Result<()>;
    /// Records a lease in use (an address already leased is a `Conflict`;
    /// the VM must already be stored, in this transaction or before).
    fn put_lease(&mut self, lease: &Lease) -> Result<()>;
    /// Gives a lease back: its address is free again.
    fn release_lease(&mut self, lease: &Lease) -> Result<()>;
}

/// Durable storage of every pool.
pub trait Store: Send + Sync {
    /// Runs `work` in one transaction, committed (durably) before returning.
    fn write_dyn(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()>;
    /// Every user, in id order.
    fn load_users(&self) -> Result<Vec<User>>;
    /// Every image, in id order.
    fn load_images(&self) -> Result<Vec<Image>>;
    /// Every host, in id order.
    fn load_hosts(&self) -> Result<Vec<Host>>;
    /// Every virtual network with its leases in use, in id order.
    fn load_vnets(&self) -> Result<Vec<VnetInfo>>;
}

/// Typed convenience over [`Store::write_dyn`]: runs `work` in one
/// transaction and returns its value.
pub fn write<T>(store: &dyn Store, work: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
    let mut work = Some(work);
    let mut out = None;
    store.write_dyn(&mut |tx| {
        let work = work
            .take()
            .ok_or_else(|| crate::core::Error::Internal("transaction body ran twice".into()))?;
        out = Some(work(tx)?);
        Ok(())
    })?;
    out.ok_or_else(|| crate::core::Error::Internal("transaction produced no value".into()))
}
