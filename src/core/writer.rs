//! The one write path of the core. Every mutation, whatever pools it
//! touches, runs under one writer lock: it plans against the in-memory
//! pools, writes the change to the store in one transaction, and only after
//! the commit applies it to memory. Readers never see a change that is not
//! committed, a change anyone is told about is on disk first, and a change
//! spanning pools (a VM, its leases, its host's capacity) is
//! all-or-nothing. The core's own follow-up transitions commit without
//! waiting for the disk ([`Durability::Background`]).

use std::sync::{Arc, Mutex, MutexGuard};

use super::ports::{self, Durability, Store, Tx};
use super::{Error, Result};

/// The store plus the lock that serialises writers; shared by every pool.
pub struct Writer {
    store: Arc<dyn Store>,
    lock: Mutex<()>,
}

/// Held while a mutation plans, commits and applies; dropping it lets the
/// next writer in.
pub struct WriteGuard<'a> {
    writer: &'a Writer,
    _held: MutexGuard<'a, ()>,
}

impl Writer {
    /// A writer over this store.
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Writer {
            store,
            lock: Mutex::new(()),
        })
    }

    /// The store, for loading pools at start.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Takes the writer lock.
    pub fn lock(&self) -> Result<WriteGuard<'_>> {
        let held = self
            .lock
            .lock()
            .map_err(|_| Error::Internal("writer lock poisoned".into()))?;
        Ok(WriteGuard {
            writer: self,
            _held: held,
        })
    }
}

impl WriteGuard<'_> {
    /// Runs `work` in one durable transaction. Apply the change to memory
    /// after this returns `Ok`, while still holding the guard.
    pub fn commit<T>(&self, work: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        self.commit_with(Durability::Durable, work)
    }

    /// [`commit`](Self::commit) with the given durability.
    pub fn commit_with<T>(
        &self,
        durability: Durability,
        work: impl FnOnce(&mut dyn Tx) -> Result<T>,
    ) -> Result<T> {
        ports::write_with(self.writer.store.as_ref(), durability, work)
    }

    /// Whether this guard holds `writer`'s lock: pools that plan under a
    /// guard their caller took check that it is theirs.
    pub fn is_of(&self, writer: &Writer) -> bool {
        std::ptr::eq(self.writer, writer)
    }
}
