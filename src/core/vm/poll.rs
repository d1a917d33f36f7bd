//! VM polling (spec/CORE.md §1.5): every tick, the running and unknown VMs
//! not polled for `VM_POLLING_INTERVAL` are polled through the VMM, at
//! most `VM_PER_INTERVAL` of them, those polled longest ago first. The
//! polls are jobs of the VM runner, so they queue behind a VM's other
//! driver steps; their answers come back as monitor events (`a`, `p`,
//! `e`, `d`) and usage figures, taken only if the VM did not change state
//! while the poll ran.
//!
//! Started like the host monitor: [`spawn`] puts the loop on its own
//! thread, ended by [`Signal::stop`].
//!
//! May use: `crate::template` and the rest of `crate::core`.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::jobs::Role;
use super::pool::{now, VmPool};
use super::state::{LcmState, State, Step};
use crate::core::signal::{Signal, Wake};
use crate::core::Result;

/// The longest pause between two ticks: a long polling interval still
/// spreads its polls over several ticks.
const MAX_TICK: Duration = Duration::from_secs(15);

impl VmPool {
    /// One tick: queues the polls of up to `per_tick` VMs in RUNNING or
    /// UNKNOWN whose last poll is `interval` old or more; answers how many.
    pub fn poll_tick(&self, interval: Duration, per_tick: usize) -> Result<usize> {
        let time = now();
        let due = |last: u64| time.saturating_sub(last) >= interval.as_secs();
        // Chosen by id first, so that only the VMs polled are cloned.
        let mut due_ids: Vec<(u64, u64)> = self.scan(|vms| {
            vms.filter(|vm| {
                vm.state == State::Active
                    && matches!(vm.lcm, LcmState::Running | LcmState::Unknown)
                    && due(vm.usage.last_poll)
            })
            .map(|vm| (vm.usage.last_poll, vm.id))
            .collect()
        })?;
        due_ids.sort_unstable();
        due_ids.truncate(per_tick);
        let candidates: Vec<_> = due_ids
            .iter()
            .filter_map(|&(_, id)| self.get(id).ok())
            .collect();
        let count = candidates.len();
        for vm in candidates {
            self.mark_polled(vm.id, time);
            for job in self.jobs_for(&vm, vm.op, &[(Step::VmmPoll, Role::Monitor)]) {
                self.queue.submit(job);
            }
        }
        Ok(count)
    }
}

/// Runs the poller of `pool` on a thread named `vm-poller`: a tick every
/// `interval` (at most every 15 s), until `stop` is stopped. Each tick
/// also drops the VMs that ended long ago from memory
/// ([`VmPool::forget_done`]) and hands their ids to `forgotten`, for what
/// is kept beside them.
pub fn spawn(
    pool: Arc<VmPool>,
    interval: Duration,
    per_tick: u32,
    stop: Arc<Signal>,
    forgotten: impl Fn(&[u64]) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let tick = interval.clamp(Duration::from_millis(100), MAX_TICK);
    let per_tick = usize::try_from(per_tick).unwrap_or(usize::MAX).max(1);
    thread::Builder::new()
        .name("vm-poller".into())
        .spawn(move || loop {
            if stop.wait(tick) == Wake::Stopped {
                return;
            }
            if let Err(e) = pool.poll_tick(interval, per_tick) {
                tracing::error!("VM poller: {e}");
            }
            match pool.forget_done(now()) {
                Ok(ids) if ids.is_empty() => {}
                Ok(ids) => {
                    tracing::debug!("{} VMs ended long ago left memory", ids.len());
                    forgotten(&ids);
                }
                Err(e) => tracing::error!("VM poller: {e}"),
            }
        })
}
