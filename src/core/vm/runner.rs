//! The life-cycle runner: worker threads that run the VM pool's [`Job`]s
//! through [`Drivers`] and hand each result back to the pool
//! ([`VmPool::finish`]), which turns it into the table's next event.
//!
//! Ordering: the jobs of one VM run one at a time, in the order they were
//! queued (the pool queues them under the writer lock, so in commit
//! order); jobs of different VMs run side by side, up to the number of
//! workers (the drivers add their own per-driver limits). A VM's queue is
//! a FIFO and a VM is never given to two workers at once.
//!
//! May use: `crate::template` and the rest of `crate::core`; threads, not
//! processes (the drivers start those).

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;

use super::jobs::{Job, Transfer, Work};
use super::pool::VmPool;
use crate::core::context;
use crate::core::ports::{Drivers, PollAnswer, TmAction};
use crate::core::{Result, Settings};

/// What a driver call answered.
#[derive(Debug)]
pub enum Answer {
    /// Success, nothing to say.
    Done,
    /// Deploy's deploy id.
    DeployId(String),
    /// A poll's answer.
    Poll(PollAnswer),
    /// A probe's polls, in the job's order (each may have failed).
    Probe(Vec<Result<PollAnswer>>),
}

/// The jobs waiting, per VM, and which VMs a worker is busy with.
#[derive(Default)]
pub struct Queue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

#[derive(Default)]
struct QueueState {
    /// Each VM's jobs, in order; a VM has an entry while it has jobs or a
    /// worker on it.
    jobs: HashMap<u64, VecDeque<Job>>,
    /// VMs with jobs and no worker, in the order they became so.
    ready: VecDeque<u64>,
    /// VMs a worker runs a job of.
    busy: HashSet<u64>,
    /// No more work: workers end.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // The state stays consistent even if a worker panicked while
        // holding the lock (every change is a few container operations).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a job behind the VM's earlier ones.
    pub fn submit(&self, job: Job) {
        let vm_id = job.vm_id;
        let mut state = self.lock();
        let queue = state.jobs.entry(vm_id).or_default();
        queue.push_back(job);
        let first = queue.len() == 1;
        if first && !state.busy.contains(&vm_id) {
            state.ready.push_back(vm_id);
            drop(state);
            self.wake.notify_one();
        }
    }

    /// The next job of a VM nobody works on, marking the VM busy; `None`
    /// once the queue is closed.
    fn take(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(vm_id) = state.ready.pop_front() {
                let job = state.jobs.get_mut(&vm_id).and_then(VecDeque::pop_front);
                if let Some(job) = job {
                    state.busy.insert(vm_id);
                    return Some(job);
                }
                state.jobs.remove(&vm_id);
                continue;
            }
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// A worker ended a job of `vm_id`: the VM's next job, if it has one,
    /// is the worker's next (the VM stays busy), else the worker takes
    /// the next ready job as [`take`](Self::take) does. Handing another
    /// worker the VM's next job instead would wake it while this one goes
    /// to sleep: two context switches per driver step for nothing.
    fn done_then_take(&self, vm_id: u64) -> Option<Job> {
        let mut state = self.lock();
        if !state.closed {
            if let Some(job) = state.jobs.get_mut(&vm_id).and_then(VecDeque::pop_front) {
                return Some(job);
            }
        }
        state.busy.remove(&vm_id);
        state.jobs.remove(&vm_id);
        drop(state);
        self.take()
    }

    /// Drops every queued job (none may be running): at start, before the
    /// stored pending steps are re-driven, so that a job queued before
    /// the workers started does not run twice.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.jobs.clear();
        state.ready.clear();
    }

    /// Ends the workers (queued jobs are dropped: their VMs keep their
    /// pending steps, which the next start re-drives).
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// Whether no job is queued or running.
    pub fn is_idle(&self) -> bool {
        let state = self.lock();
        state.jobs.is_empty() && state.busy.is_empty()
    }
}

/// Starts `threads` workers running `pool`'s jobs through `drivers`. They
/// hold the pool weakly and end when it is dropped (its queue closes).
pub fn start(pool: &Arc<VmPool>, drivers: Arc<dyn Drivers>, threads: usize) -> std::io::Result<()> {
    for i in 0..threads.max(1) {
        let weak: Weak<VmPool> = Arc::downgrade(pool);
        let queue = pool.queue.clone();
        let drivers = drivers.clone();
        thread::Builder::new()
            .name(format!("vm-runner-{i}"))
            .spawn(move || work(&weak, &queue, drivers.as_ref()))?;
    }
    Ok(())
}

fn work(pool: &Weak<VmPool>, queue: &Queue, drivers: &dyn Drivers) {
    let mut next = queue.take();
    while let Some(job) = next {
        let Some(pool) = pool.upgrade() else {
            return;
        };
        // A bug in one job must not take the worker, or the VM's turn,
        // with it.
        let ran = panic::catch_unwind(AssertUnwindSafe(|| {
            let result = execute(drivers, &pool.settings, &job);
            pool.finish(&job, result);
        }));
        if ran.is_err() {
            tracing::error!(vm = job.vm_id, "VM {}: {} panicked", job.vm_id, job.step);
        }
        drop(pool);
        next = queue.done_then_take(job.vm_id);
    }
}

/// Runs one job's driver call.
pub fn execute(drivers: &dyn Drivers, settings: &Settings, job: &Job) -> Result<Answer> {
    match &job.work {
        Work::Deploy(r) => drivers.deploy(r).map(Answer::DeployId),
        Work::Restore(r) => drivers.restore(r).map(|()| Answer::Done),
        Work::Save(r) => drivers.save(r).map(|()| Answer::Done),
        Work::Migrate(r) => drivers.migrate(r).map(|()| Answer::Done),
        Work::Shutdown(r) => drivers.shutdown(r).map(|()| Answer::Done),
        Work::Cancel(r) => drivers.cancel(r).map(|()| Answer::Done),
        Work::Reboot(r) => drivers.reboot(r).map(|()| Answer::Done),
        Work::Reset(r) => drivers.reset(r).map(|()| Answer::Done),
        Work::Poll(r) => drivers.poll(r).map(Answer::Poll),
        Work::Probe(polls) => Ok(Answer::Probe(
            polls.iter().map(|r| drivers.poll(r)).collect(),
        )),
        Work::Transfer(t) => transfer(drivers, settings, job.vm_id, t).map(|()| Answer::Done),
        Work::Fail(message) => Err(crate::core::Error::Driver {
            action: job.step.to_string(),
            host: "-".to_string(),
            message: message.clone(),
        }),
    }
}

/// A TM transfer: the context CD is prepared first (`context.sh` written,
/// FILES checked on disk), then the actions run in order.
fn transfer(drivers: &dyn Drivers, settings: &Settings, vm_id: u64, t: &Transfer) -> Result<()> {
    let mut actions = t.actions.clone();
    if let Some(cd) = &t.context {
        let files = context::prepare_prolog(&cd.context, cd.owner, settings, &cd.fe_dir)?;
        actions.push(TmAction::Context {
            files,
            dst: cd.dst.clone(),
        });
    }
    if actions.is_empty() {
        return Ok(());
    }
    drivers.transfer_all(vm_id, &t.driver, &actions, &t.env)
}
