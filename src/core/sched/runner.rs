//! The scheduler loop (spec/CORE.md §6.5): every `SCHED_INTERVAL`, or at
//! once when rung (a VM became pending, a host became usable), it takes the
//! pending VMs and the hosts, asks `plan` where they go, and
//! acts on the answer through [`Placement`].
//!
//! What lives here: the [`Placement`] trait the VM pool implements (the
//! scheduler never touches VMs itself), [`Scheduler`] (one cycle, callable
//! directly by tests) and [`spawn`] (the loop on its own thread, ended by
//! [`Signal::stop`]).
//!
//! May use: `crate::core` and `crate::template`.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{plan, Limits, PendingVm, Plan};
use crate::core::host::Host;
use crate::core::signal::{Signal, Wake};
use crate::core::Result;

/// What the scheduler needs from the VM pool.
pub trait Placement: Send + Sync {
    /// The pending VMs (DM state PENDING, not HOLD), lowest ids first, at
    /// most `limit` of them.
    fn pending(&self, limit: usize) -> Vec<PendingVm>;

    /// Deploys a pending VM on a host, acting as oneadmin (spec/CORE.md
    /// §7.3: the scheduler may deploy anywhere). Clears any reason left by
    /// [`unplaced`](Self::unplaced). An error (the VM left PENDING
    /// meanwhile, the host was deleted) is logged and the VM skipped.
    fn deploy(&self, vm_id: u64, host_id: u64) -> Result<()>;

    /// Records why pending VMs were not placed in this cycle, for `show`:
    /// once per cycle, for all of them (thousands may wait). A VM that is
    /// no longer pending ignores its reason.
    fn unplaced(&self, reasons: &[(u64, String)]);
}

/// Where the scheduler reads the hosts from: a snapshot of the host pool.
pub type HostSource = Arc<dyn Fn() -> Result<Vec<Host>> + Send + Sync>;

/// One scheduler: the VM pool, the hosts and the knobs.
pub struct Scheduler {
    placement: Arc<dyn Placement>,
    hosts: HostSource,
    limits: Limits,
}

impl Scheduler {
    /// A scheduler placing `placement`'s VMs on the hosts `hosts` returns.
    pub fn new(placement: Arc<dyn Placement>, hosts: HostSource, limits: Limits) -> Self {
        Scheduler {
            placement,
            hosts,
            limits,
        }
    }

    /// Runs one cycle: plans, deploys what the plan dispatches (in VM id
    /// order) and records why the others wait. Returns the plan with
    /// `dispatch` holding only the deploys that succeeded; a failed deploy
    /// is logged and its VM recorded as unplaced with the error. The
    /// capacity a failed deploy would have taken stays counted until the
    /// next cycle (the plan is made before acting): at worst a VM waits
    /// one cycle more.
    pub fn cycle(&self) -> Result<Plan> {
        let pending = self.placement.pending(self.limits.max_vm);
        if pending.is_empty() {
            return Ok(Plan::default());
        }
        let hosts = (self.hosts)()?;
        let planned = plan(&pending, &hosts, &self.limits);
        let mut done = Plan {
            dispatch: Vec::with_capacity(planned.dispatch.len()),
            unplaced: planned.unplaced,
        };
        for (vm_id, host_id) in planned.dispatch {
            match self.placement.deploy(vm_id, host_id) {
                Ok(()) => {
                    tracing::info!(
                        vm = vm_id,
                        "scheduler: VM {vm_id} dispatched to host {host_id}"
                    );
                    done.dispatch.push((vm_id, host_id));
                }
                Err(e) => {
                    tracing::warn!(
                        vm = vm_id,
                        "scheduler: deploying VM {vm_id} on host {host_id}: {e}"
                    );
                    done.unplaced
                        .push((vm_id, format!("deploy on host {host_id} failed: {e}")));
                }
            }
        }
        done.unplaced.sort_by_key(|(id, _)| *id);
        for (vm_id, reason) in &done.unplaced {
            tracing::debug!("scheduler: VM {vm_id} stays pending: {reason}");
        }
        if !done.unplaced.is_empty() {
            self.placement.unplaced(&done.unplaced);
        }
        Ok(done)
    }
}

/// How long a ring waits for more before the cycle it asks for: a burst
/// of creates (a RunInstances loop, a script) is placed in one cycle,
/// not one cycle per VM, for a delay nobody notices.
const GATHER: Duration = Duration::from_millis(10);

/// How long a ring waits before the cycle it asks for, after a cycle
/// that took `last`: at least [`GATHER`], and at least as long as that
/// cycle. Thousands of VMs waiting for a host make a cycle cost tens of
/// milliseconds; rung by every create, back-to-back cycles would take a
/// whole CPU from the requests doing the creating. This way the
/// scheduler takes at most about half of one.
fn ring_pause(last: Duration) -> Duration {
    GATHER.max(last)
}

/// Runs `scheduler` on a thread named `scheduler`: a cycle at once, then
/// one every `interval` or shortly after `bell` rings (`ring_pause`),
/// until `bell` is stopped.
pub fn spawn(
    scheduler: Scheduler,
    interval: Duration,
    bell: Arc<Signal>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || loop {
            if bell.is_stopped() {
                return;
            }
            let started = Instant::now();
            if let Err(e) = scheduler.cycle() {
                tracing::error!("scheduler: cycle failed: {e}");
            }
            let took = started.elapsed();
            match bell.wait(interval) {
                Wake::Stopped => return,
                Wake::Timeout => {}
                Wake::Rung => {
                    thread::sleep(ring_pause(took));
                    // The rings of the VMs gathered meanwhile are answered
                    // by this cycle.
                    if bell.wait(Duration::ZERO) == Wake::Stopped {
                        return;
                    }
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::host::HostState;
    use crate::core::Error;
    use crate::template::Template;
    use std::sync::Mutex;

    /// A VM pool: pending VMs, a deploy that can be told to fail, and what
    /// the scheduler did.
    #[derive(Default)]
    struct FakePool {
        pending: Mutex<Vec<PendingVm>>,
        refuse: Mutex<Vec<u64>>,
        deployed: Mutex<Vec<(u64, u64)>>,
        reasons: Mutex<Vec<(u64, String)>>,
        asked_limit: Mutex<Vec<usize>>,
    }

    impl Placement for FakePool {
        fn pending(&self, limit: usize) -> Vec<PendingVm> {
            self.asked_limit.lock().expect("lock").push(limit);
            let pending = self.pending.lock().expect("lock");
            pending.iter().take(limit).cloned().collect()
        }

        fn deploy(&self, vm_id: u64, host_id: u64) -> Result<()> {
            if self.refuse.lock().expect("lock").contains(&vm_id) {
                return Err(Error::InvalidState {
                    kind: crate::core::Kind::Vm,
                    id: vm_id.to_string(),
                    state: "hold".into(),
                    action: "deploy".into(),
                });
            }
            self.pending
                .lock()
                .expect("lock")
                .retain(|vm| vm.id != vm_id);
            self.deployed.lock().expect("lock").push((vm_id, host_id));
            Ok(())
        }

        fn unplaced(&self, reasons: &[(u64, String)]) {
            self.reasons
                .lock()
                .expect("lock")
                .extend(reasons.iter().cloned());
        }
    }

    fn vm(id: u64, cpu: i64) -> PendingVm {
        PendingVm {
            id,
            owner: 1,
            cpu,
            memory_kb: 0,
            requirements: String::new(),
            rank: String::new(),
        }
    }

    fn monitored(id: u64, cpu: i64) -> Host {
        let mut host = Host::new(id, &format!("h{id}"), "im_dummy", "vmm_dummy", "tm_dummy");
        host.monitored(
            &Template::parse(&format!("TOTALCPU = {cpu}\nTOTALMEMORY = 1000000")).expect("t"),
            1,
        );
        assert_eq!(host.state, HostState::Monitored);
        host
    }

    fn scheduler(pool: &Arc<FakePool>, hosts: Vec<Host>, limits: Limits) -> Scheduler {
        let hosts = Arc::new(Mutex::new(hosts));
        Scheduler::new(
            pool.clone(),
            Arc::new(move || Ok(hosts.lock().expect("lock").clone())),
            limits,
        )
    }

    #[test]
    fn a_cycle_deploys_the_plan_and_records_the_reasons() {
        let pool = Arc::new(FakePool::default());
        *pool.pending.lock().expect("lock") = vec![vm(1, 100), vm(2, 100), vm(3, 900), vm(4, 50)];
        pool.refuse.lock().expect("lock").push(2);
        let limits = Limits {
            max_vm: 3,
            ..Limits::default()
        };
        let s = scheduler(&pool, vec![monitored(0, 400), monitored(1, 400)], limits);
        let done = s.cycle().expect("cycle");
        assert_eq!(
            *pool.asked_limit.lock().expect("lock"),
            [3],
            "MAX_VM is asked"
        );
        assert_eq!(done.dispatch, [(1, 0)]);
        assert_eq!(*pool.deployed.lock().expect("lock"), [(1, 0)]);
        let reasons = pool.reasons.lock().expect("lock").clone();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!(reasons[0].0, 2);
        assert!(
            reasons[0].1.starts_with("deploy on host ") && reasons[0].1.contains("hold"),
            "{reasons:?}"
        );
        assert_eq!(
            reasons[1],
            (
                3,
                "not enough free CPU on any host (needs 900, best host has 400)".to_owned()
            )
        );
        assert_eq!(done.unplaced, reasons);
    }

    #[test]
    fn nothing_pending_reads_no_hosts() {
        let pool = Arc::new(FakePool::default());
        let s = Scheduler::new(
            pool.clone(),
            Arc::new(|| Err(Error::Internal("hosts must not be read".into()))),
            Limits::default(),
        );
        assert_eq!(s.cycle().expect("cycle"), Plan::default());
    }

    #[test]
    fn a_ring_waits_at_least_as_long_as_the_last_cycle_took() {
        assert_eq!(ring_pause(Duration::ZERO), GATHER);
        assert_eq!(ring_pause(GATHER / 2), GATHER);
        let slow = Duration::from_millis(40);
        assert_eq!(ring_pause(slow), slow);
    }

    #[test]
    fn the_loop_runs_at_once_wakes_when_rung_and_stops() {
        let pool = Arc::new(FakePool::default());
        *pool.pending.lock().expect("lock") = vec![vm(1, 100)];
        let s = scheduler(&pool, vec![monitored(0, 800)], Limits::default());
        let bell = Arc::new(Signal::new());
        // An hour between cycles: only the first cycle and the bell can
        // place anything within the test's deadline.
        let handle = spawn(s, Duration::from_secs(3600), bell.clone()).expect("spawn");
        let wait_for = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while pool.deployed.lock().expect("lock").len() < n {
                assert!(Instant::now() < deadline, "no cycle ran");
                thread::sleep(Duration::from_millis(5));
            }
        };
        wait_for(1);
        pool.pending.lock().expect("lock").push(vm(2, 100));
        bell.ring();
        wait_for(2);
        assert_eq!(*pool.deployed.lock().expect("lock"), [(1, 0), (2, 0)]);
        bell.stop();
        handle.join().expect("the loop ends");
    }
}
