//! The core's background work: the host monitor and the scheduler, each on
//! its own thread, started by [`Core::start`] once the server is up and
//! stopped by the [`Background`] handle it returns.
//!
//! May use: `crate::core`.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::monitor::{HostBook, Monitor, MonitorConfig};
use super::sched::runner::{self, HostSource, Placement, Scheduler};
use super::sched::Limits;
use super::signal::Signal;
use super::tag::Taggable;
use super::{Core, Error, Result};

/// The running background threads. [`stop`](Self::stop) (or dropping it)
/// ends them: it waits for the loops, not for probes or deploys already
/// running on worker threads, whose results are still recorded.
pub struct Background {
    bells: Vec<Arc<Signal>>,
    threads: Vec<JoinHandle<()>>,
}

impl Background {
    /// Stops the loops and waits for them.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        for bell in &self.bells {
            bell.stop();
        }
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a background thread panicked");
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Starts the monitor, and the scheduler when a VM pool can place VMs.
pub(super) fn start(core: &Arc<Core>) -> Result<Background> {
    let monitor_bell = core.monitor_bell.clone();
    let sched_bell = core.sched_bell.clone();
    let poll_bell = Arc::new(Signal::new());
    monitor_bell.resume();
    sched_bell.resume();
    let mut background = Background {
        bells: vec![monitor_bell.clone(), sched_bell.clone(), poll_bell.clone()],
        threads: Vec::new(),
    };

    // The VM runner first: it recounts capacity and leases and re-drives
    // the VMs a restart caught mid-operation (spec/CORE.md §8.4) before
    // the scheduler places anything. Then VM polling, like the monitor.
    core.vms.start(core.drivers.clone(), VM_RUNNER_THREADS)?;
    let tags_of = core.clone();
    let thread = crate::core::vm::poll::spawn(
        core.vms.clone(),
        core.settings.vm_polling_interval,
        core.settings.vm_per_interval,
        poll_bell,
        move |ids| {
            let targets: Vec<Taggable> = ids.iter().copied().map(Taggable::Vm).collect();
            if let Err(e) = tags_of.tags().forget(&targets) {
                tracing::error!("VM poller: the tags of VMs that left memory: {e}");
            }
        },
    )
    .map_err(|e| Error::Internal(format!("cannot start the VM poller: {e}")))?;
    background.threads.push(thread);

    let book: Arc<dyn HostBook> = core.clone();
    let monitor = Monitor::new(
        book,
        core.drivers.clone(),
        MonitorConfig::from_settings(&core.settings),
        Some(sched_bell.clone()),
    )?;
    let thread = std::thread::Builder::new()
        .name("monitor".into())
        .spawn(move || monitor.run(&monitor_bell))
        .map_err(|e| Error::Internal(format!("cannot start the monitor: {e}")))?;
    background.threads.push(thread);

    match placement(core) {
        Some(placement) => {
            let pool = core.clone();
            let hosts: HostSource = Arc::new(move || pool.hosts().snapshot());
            let scheduler = Scheduler::new(placement, hosts, Limits::from_settings(&core.settings));
            let thread = runner::spawn(scheduler, core.settings.sched_interval, sched_bell)
                .map_err(|e| Error::Internal(format!("cannot start the scheduler: {e}")))?;
            background.threads.push(thread);
        }
        None => tracing::debug!("no VM pool to schedule yet: scheduler not started"),
    }
    Ok(background)
}

/// Worker threads running VM driver steps; each mostly waits for a
/// script, so more than the cores (the drivers cap each driver at `-t`).
const VM_RUNNER_THREADS: usize = 32;

/// What the scheduler places VMs through: the VM pool.
fn placement(core: &Arc<Core>) -> Option<Arc<dyn Placement>> {
    Some(core.vms.clone())
}
