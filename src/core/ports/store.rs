//! Durable storage as the core sees it: one transaction at a time, one
//! method per pool and change.

use crate::core::host::Host;
use crate::core::image::Image;
use crate::core::keypair::KeyPair;
use crate::core::tag::{Tag, Taggable};
use crate::core::user::User;
use crate::core::vm::{History, Pending, Vm};
use crate::core::vnet::{Lease, VirtualNetwork, VnetInfo};
use crate::core::Result;

/// When a committed transaction is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Before the commit returns: every change someone is told about (an
    /// API answer, a CLI message) and everything at start-up.
    Durable,
    /// With the next durable commit or checkpoint: the core's own
    /// follow-up transitions (driver replies, the scheduler's dispatch,
    /// monitoring figures), which nobody waits for. They are atomic and
    /// ordered like the rest, and a killed server keeps them all (they are
    /// in the operating system's cache); only a power loss can take the
    /// last ones, and then the server restarts as if it had been stopped
    /// just before them, which start-up recovery handles (spec/CORE.md
    /// §8.4). Commits of the API do not wait for the disk behind them.
    Background,
}

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
    /// The virtual machine pool.
    Vms,
    /// The key pair pool (EC2).
    KeyPairs,
}

/// One write transaction. Everything done through it commits together, and
/// durably, when the closure given to [`write`](fn@write) returns `Ok`;
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
    /// Inserts or replaces a VM's row (everything but its history records
    /// and pending step, which have their own methods).
    fn put_vm(&mut self, vm: &Vm) -> Result<()>;
    /// Inserts or replaces one history record of a VM (key: VM id, `seq`).
    fn put_vm_history(&mut self, vm_id: u64, record: &History) -> Result<()>;
    /// Records the driver step a VM waits for, or clears it with `None`
    /// (spec/CORE.md §8.4: written with the state change it belongs to).
    fn set_vm_pending(&mut self, vm_id: u64, pending: Option<&Pending>) -> Result<()>;
    /// Inserts or replaces a key pair (a name its owner already uses is
    /// a `Conflict`).
    fn put_key_pair(&mut self, pair: &KeyPair) -> Result<()>;
    /// Deletes a key pair.
    fn delete_key_pair(&mut self, id: u64) -> Result<()>;
    /// Sets a tag (replacing the value of its key on its object).
    fn put_tag(&mut self, tag: &Tag) -> Result<()>;
    /// Removes one key's tag from an object.
    fn delete_tag(&mut self, target: Taggable, key: &str) -> Result<()>;
}

/// Durable storage of every pool.
pub trait Store: Send + Sync {
    /// Runs `work` in one transaction, committed before returning and on
    /// disk as `durability` says.
    fn write_dyn(
        &self,
        durability: Durability,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>,
    ) -> Result<()>;
    /// Every user, in id order.
    fn load_users(&self) -> Result<Vec<User>>;
    /// Every image, in id order.
    fn load_images(&self) -> Result<Vec<Image>>;
    /// Every host, in id order.
    fn load_hosts(&self) -> Result<Vec<Host>>;
    /// Every virtual network with its leases in use, in id order.
    fn load_vnets(&self) -> Result<Vec<VnetInfo>>;
    /// Every VM with its history records and pending step, in id order,
    /// but for the DONE ones that ended before `done_since` (Unix seconds)
    /// and wait for no driver step.
    fn load_vms(&self, done_since: u64) -> Result<Vec<Vm>>;
    /// VM `id` with its history records and pending step, if it exists.
    /// Must not be called inside [`write_dyn`](Self::write_dyn)'s `work`.
    fn load_vm(&self, id: u64) -> Result<Option<Vm>>;
    /// Every key pair, in id order.
    fn load_key_pairs(&self) -> Result<Vec<KeyPair>>;
    /// Every tag.
    fn load_tags(&self) -> Result<Vec<Tag>>;
}

/// Typed convenience over [`Store::write_dyn`]: runs `work` in one durable
/// transaction and returns its value.
pub fn write<T>(store: &dyn Store, work: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
    write_with(store, Durability::Durable, work)
}

/// [`write`](fn@write) with the given durability.
pub fn write_with<T>(
    store: &dyn Store,
    durability: Durability,
    work: impl FnOnce(&mut dyn Tx) -> Result<T>,
) -> Result<T> {
    let mut work = Some(work);
    let mut out = None;
    store.write_dyn(durability, &mut |tx| {
        let work = work
            .take()
            .ok_or_else(|| crate::core::Error::Internal("transaction body ran twice".into()))?;
        out = Some(work(tx)?);
        Ok(())
    })?;
    out.ok_or_else(|| crate::core::Error::Internal("transaction produced no value".into()))
}
