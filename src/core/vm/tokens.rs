//! EC2 client tokens (spec/EC2.md §6.4): which VMs each (owner, token)
//! launched, from the VMs' `EC2_CLIENT_TOKEN` attribute, and one gate per
//! (owner, token), so that a launch's "was this token seen?" and its
//! creations are one step for that token alone: launches with other
//! tokens never wait for it.
//!
//! A token is noted when its VM is created and when the pool is loaded, so
//! the index is as durable as the VMs; it is forgotten with a VM the pool
//! stops keeping, a day or more after the VM ended (AWS keeps a token
//! valid for at least a day after its instance ends).
//!
//! May use: the rest of `crate::core::vm`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::record::Vm;

/// The template attribute that carries a VM's client token.
pub(super) const ATTRIBUTE: &str = "EC2_CLIENT_TOKEN";

/// (owner uid, token).
type Key = (u64, String);

/// The index and the gates.
#[derive(Default)]
pub(super) struct Tokens {
    /// The VMs of each (owner, token), in creation order.
    ids: Mutex<HashMap<Key, Vec<u64>>>,
    /// The launches in progress, by (owner, token); an entry lives while
    /// some launch holds or waits for it.
    gates: Mutex<HashMap<Key, Arc<Mutex<()>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tokens {
    /// Notes a VM that carries a client token (creation, load).
    pub(super) fn note(&self, vm: &Vm) {
        if let Some(token) = vm.attribute(ATTRIBUTE) {
            lock(&self.ids)
                .entry((vm.uid, token.to_string()))
                .or_default()
                .push(vm.id);
        }
    }

    /// Forgets a VM the pool no longer keeps: a launch with its token
    /// makes new VMs again.
    pub(super) fn forget(&self, vm: &Vm) {
        if let Some(token) = vm.attribute(ATTRIBUTE) {
            let key = (vm.uid, token.to_string());
            let mut ids = lock(&self.ids);
            if let Some(list) = ids.get_mut(&key) {
                list.retain(|&id| id != vm.id);
                if list.is_empty() {
                    ids.remove(&key);
                }
            }
        }
    }

    /// The ids of the VMs owner `uid` made with `token`, in id order.
    pub(super) fn ids(&self, uid: u64, token: &str) -> Vec<u64> {
        let mut ids = lock(&self.ids)
            .get(&(uid, token.to_string()))
            .cloned()
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    /// Runs `work` holding the gate of (`uid`, `token`): one at a time per
    /// token, any number at once across tokens.
    pub(super) fn gated<T>(&self, uid: u64, token: &str, work: impl FnOnce() -> T) -> T {
        let key = (uid, token.to_string());
        let gate = lock(&self.gates).entry(key.clone()).or_default().clone();
        let result = {
            let _held = lock(&gate);
            work()
        };
        let mut gates = lock(&self.gates);
        // Clones are taken under `gates` only: two (the map's and ours)
        // means nobody else waits, so the entry can go.
        if Arc::strong_count(&gate) == 2 {
            gates.remove(&key);
        }
        result
    }

    /// How many gates are open (for tests: none once launches are done).
    #[cfg(test)]
    pub(super) fn open_gates(&self) -> usize {
        lock(&self.gates).len()
    }
}
