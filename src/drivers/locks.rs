//! The concurrency rules of spec/DRIVERS.md §0: at most one action per VM
//! at a time, the others queued in arrival order ([`VmLocks`]), and at most
//! `-t` actions per driver ([`Slots`]).
//!
//! Blocking (std `Mutex` + `Condvar`): the core calls the drivers from its
//! own worker threads. May use: std only.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Locks a mutex whose data stays consistent even if a holder panicked
/// (plain counters, never left half-updated).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One queue per VM that has actions running or waiting.
#[derive(Default)]
struct Queue {
    /// The ticket the next arrival takes.
    next: u64,
    /// The ticket whose action may run.
    serving: u64,
}

/// Serialises the actions of each VM, first come first served (a ticket
/// lock per VM), while different VMs proceed in parallel.
#[derive(Default)]
pub(super) struct VmLocks {
    queues: Mutex<HashMap<u64, Queue>>,
    turn: Condvar,
}

/// The right to run an action for a VM, until dropped.
pub(super) struct VmTurn<'a> {
    locks: &'a VmLocks,
    vm: u64,
}

impl VmLocks {
    /// Waits until every earlier action of `vm` is done.
    pub(super) fn lock(&self, vm: u64) -> VmTurn<'_> {
        let mut queues = lock(&self.queues);
        let queue = queues.entry(vm).or_default();
        let ticket = queue.next;
        queue.next += 1;
        while queues.get(&vm).is_some_and(|q| q.serving != ticket) {
            queues = self
                .turn
                .wait(queues)
                .unwrap_or_else(PoisonError::into_inner);
        }
        VmTurn { locks: self, vm }
    }

    /// How many VMs have queues (for tests: queues do not leak).
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.queues).len()
    }
}

impl Drop for VmTurn<'_> {
    fn drop(&mut self) {
        let mut queues = lock(&self.locks.queues);
        if let Some(queue) = queues.get_mut(&self.vm) {
            queue.serving += 1;
            if queue.serving == queue.next {
                // Nobody waits: forget the VM so the map does not grow.
                queues.remove(&self.vm);
            }
        }
        drop(queues);
        self.locks.turn.notify_all();
    }
}

/// A counting semaphore: at most `n` holders at once.
pub(super) struct Slots {
    free: Mutex<u32>,
    freed: Condvar,
}

/// One taken slot, given back when dropped.
pub(super) struct Slot<'a>(&'a Slots);

impl Slots {
    /// `n` free slots.
    pub(super) fn new(n: u32) -> Self {
        Slots {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free slot and takes it.
    pub(super) fn take(&self) -> Slot<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn one_vm_runs_in_arrival_order_and_queues_are_forgotten() {
        let locks = Arc::new(VmLocks::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = locks.lock(1);
        let mut waiters = Vec::new();
        for i in 0..4 {
            let (mine, order) = (Arc::clone(&locks), Arc::clone(&order));
            waiters.push(thread::spawn(move || {
                let _turn = mine.lock(1);
                lock(&order).push(i);
            }));
            // Let each waiter take its ticket before the next one starts.
            while lock(&locks.queues).get(&1).map_or(0, |q| q.next) < i + 2 {
                thread::yield_now();
            }
        }
        // Another VM is not held up by VM 1.
        drop(locks.lock(2));
        drop(first);
        for waiter in waiters {
            waiter.join().expect("waiter");
        }
        assert_eq!(*lock(&order), [0, 1, 2, 3]);
        assert_eq!(locks.len(), 0);
    }

    #[test]
    fn slots_bound_concurrency() {
        let slots = Arc::new(Slots::new(2));
        let running = Arc::new(AtomicU32::new(0));
        let peak = Arc::new(AtomicU32::new(0));
        let workers: Vec<_> = (0..6)
            .map(|_| {
                let (slots, running, peak) =
                    (Arc::clone(&slots), Arc::clone(&running), Arc::clone(&peak));
                thread::spawn(move || {
                    let _slot = slots.take();
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("worker");
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
        assert_eq!(*lock(&slots.free), 2);
    }
}
