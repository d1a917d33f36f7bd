//! Start-up (spec/CORE.md §8.4, normative): the host counters, the
//! leases and the images' running counts are recounted from the VMs, so
//! that capacity, leases and image states match the VMs whatever happened
//! before; then every VM caught mid-operation is re-driven from its
//! stored pending step:
//! - clean-ups (delete, resubmit) are run again (they only delete);
//! - TM steps are run again (the scripts overwrite);
//! - VMM steps are probed with polls where a poll can tell
//!   ([`decide`]): deploy/restore → the domain runs: success, else run
//!   again; shutdown/cancel/save → the domain is gone: success, else run
//!   again; migrate → the target has it: success, else failure. A step
//!   that cannot be probed (no deploy id yet) is run again.
//!
//! `recover <vid> success|failure|retry` (oneadmin) covers what a probe
//! cannot decide; it goes through the table like any action. `success`
//! is refused (`Invalid`) in BOOT while the VM has no deploy id (a first
//! deploy that never answered): nothing would name its domain, and the
//! core does not guess a driver's naming; `retry` deploys again.
//!
//! May use: `crate::template` and the rest of `crate::core`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::jobs::{Job, Role};
use super::pool::{step_events, Input, Origin, VmPool};
use super::runner::{self, Answer};
use super::state::{State, Step};
use crate::core::caller::{Caller, ADMIN_UID};
use crate::core::hooks::HookManager;
use crate::core::ports::{Drivers, Durability, PollAnswer, PollState};
use crate::core::vnet::{Lease, LeaseRequest, NetworkKey};
use crate::core::Result;

/// What a probe found out about a step caught mid-way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The step had done its work: act as if it succeeded.
    Success,
    /// It cannot have: act as if it failed.
    Failure,
    /// Run it again.
    Rerun,
}

/// Decides from the polls of a probe (`jobs::probe`: `H`, then
/// `P` for a migration) what became of `step` (spec/CORE.md §8.4).
pub fn decide(step: Step, polls: &[Result<PollAnswer>]) -> Decision {
    let state = |i: usize| -> Option<PollState> {
        polls
            .get(i)
            .and_then(|p| p.as_ref().ok())
            .and_then(|a| a.state)
    };
    match step {
        Step::VmmDeploy | Step::VmmRestore => {
            if state(0) == Some(PollState::Active) {
                Decision::Success
            } else {
                Decision::Rerun
            }
        }
        Step::VmmShutdown | Step::VmmCancel | Step::VmmSave | Step::VmmSavePrevious => {
            if state(0) == Some(PollState::Disappeared) {
                Decision::Success
            } else {
                Decision::Rerun
            }
        }
        // The domain on the target: it moved. Anywhere else (the source,
        // nowhere): back to the source, where the failure path polls.
        Step::VmmMigrate => {
            if state(0) == Some(PollState::Active) {
                Decision::Success
            } else {
                Decision::Failure
            }
        }
        _ => Decision::Rerun,
    }
}

impl VmPool {
    /// Starts the pool's life-cycle work: recounts host capacity, leases
    /// and image running counts from the VMs, starts the runner's
    /// `threads` workers on `drivers` (and the hooks on them, unless set
    /// already), then re-drives every VM caught mid-operation
    /// (spec/CORE.md §8.4). Call once, before serving.
    pub fn start(self: &Arc<Self>, drivers: Arc<dyn Drivers>, threads: usize) -> Result<()> {
        self.recount_capacity()?;
        self.recount_leases()?;
        self.recount_images()?;
        if !self.settings.hooks.is_empty() {
            self.set_hooks(Arc::new(HookManager::new(
                self.settings.hooks.clone(),
                drivers.clone(),
            )));
        }
        // No change may slip between forgetting what was queued before
        // the start and queueing it again from the stored pending steps.
        let guard = self.writer.lock()?;
        self.queue.clear();
        self.redrive()?;
        drop(guard);
        runner::start(self, drivers, threads)
            .map_err(|e| crate::core::Error::Internal(format!("cannot start the VM runner: {e}")))
    }

    /// Queues what every VM with a pending step still needs (under the
    /// writer lock).
    fn redrive(&self) -> Result<()> {
        let stuck = self.select(|vm| vm.pending.is_some())?;
        for vm in stuck {
            let Some(pending) = vm.pending.clone() else {
                continue;
            };
            let mut steps: Vec<(Step, Role)> = pending
                .cleanup
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    (
                        s,
                        Role::Cleanup {
                            last: i + 1 == pending.cleanup.len(),
                        },
                    )
                })
                .collect();
            let mut probe = None;
            if let Some(step) = pending.awaited {
                probe = self.probe_job(&vm, pending.op, step);
                if probe.is_none() {
                    steps.push((step, Role::Awaited));
                }
            }
            tracing::info!(
                vm = vm.id,
                "VM {} caught in {}/{} by the restart: re-driving {}{}",
                vm.id,
                vm.state,
                vm.lcm,
                pending
                    .awaited
                    .map_or_else(|| "its clean-up".to_string(), |s| s.to_string()),
                if probe.is_some() {
                    " (probing first)"
                } else {
                    ""
                }
            );
            for job in self.jobs_for(&vm, pending.op, &steps) {
                self.queue.submit(job);
            }
            if let Some(job) = probe {
                self.queue.submit(job);
            }
        }
        Ok(())
    }

    /// A probe's polls ended: success or failure of the awaited step, or
    /// the step again.
    pub(super) fn finish_probe(&self, job: &Job, result: Result<Answer>) -> Result<()> {
        let polls = match result {
            Ok(Answer::Probe(polls)) => polls,
            Ok(_) => Vec::new(),
            Err(e) => vec![Err(e)],
        };
        let decision = decide(job.step, &polls);
        tracing::info!(
            vm = job.vm_id,
            "VM {}: probe of {} after restart: {decision:?}",
            job.vm_id,
            job.step
        );
        let Some((success, failure)) = step_events(job.step) else {
            return Ok(());
        };
        let mut input = Input::new(Origin::Reply(job.op));
        match decision {
            Decision::Success => self
                .apply(job.vm_id, success, input, Durability::Durable)
                .map(drop),
            Decision::Failure => {
                input.error = Some(format!(
                    "{} was interrupted by a restart and the domain is not on the target host",
                    job.step
                ));
                self.apply(job.vm_id, failure, input, Durability::Durable)
                    .map(drop)
            }
            Decision::Rerun => {
                let vm = self.get(job.vm_id)?;
                let still = vm
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.op == job.op && p.awaited == Some(job.step));
                if still {
                    for job in self.jobs_for(&vm, job.op, &[(job.step, Role::Awaited)]) {
                        self.queue.submit(job);
                    }
                }
                Ok(())
            }
        }
    }

    /// Host counters from the VMs (spec/CORE.md §8.4): what the VMs that
    /// hold capacity reserve, per host; differences are logged and fixed.
    fn recount_capacity(&self) -> Result<()> {
        let usage = self.scan(|vms| {
            let mut usage: BTreeMap<u64, (i64, i64, i64)> = BTreeMap::new();
            for vm in vms.filter(|vm| vm.state == State::Active) {
                for host in vm.capacity_hosts() {
                    let slot = usage.entry(host).or_default();
                    slot.0 += vm.reservation.cpu;
                    slot.1 += vm.reservation.mem_kb;
                    slot.2 += 1;
                }
            }
            usage
        })?;
        for fixed in self.hosts.recount_usage(&usage)? {
            tracing::warn!("start-up recount: {fixed}");
        }
        Ok(())
    }

    /// Image running counts from the VMs (spec/CORE.md §4.6, §8.3): every
    /// DISK with an `IMAGE_ID` of a VM that is not DONE uses its image
    /// (like leases, a FAILED VM keeps its images); differences are logged
    /// and fixed.
    fn recount_images(&self) -> Result<()> {
        let users = self.scan(|vms| {
            let mut users: BTreeMap<u64, u32> = BTreeMap::new();
            for vm in vms.filter(|vm| vm.state != State::Done) {
                for disk in vm.template.vectors("DISK") {
                    if let Some(image) = disk.get("IMAGE_ID").and_then(|i| i.trim().parse().ok()) {
                        let count = users.entry(image).or_default();
                        *count = count.saturating_add(1);
                    }
                }
            }
            users
        })?;
        for fixed in self.images.recount_usage(&users)? {
            tracing::warn!("start-up recount: {fixed}");
        }
        Ok(())
    }

    /// Leases from the VMs: every leased NIC of a VM that is not DONE
    /// holds its lease, and nothing else holds one. A lease held for a
    /// VM that is done (or unknown) is given back; a NIC whose lease is
    /// missing gets it again if the address is free.
    fn recount_leases(&self) -> Result<()> {
        let admin = Caller {
            uid: ADMIN_UID,
            name: "oneadmin".into(),
        };
        let mut held: BTreeMap<(u64, Ipv4Addr), Lease> = BTreeMap::new();
        for info in self.vnets.list(&admin)? {
            for lease in info.leases {
                held.insert((lease.vnet_id, lease.ip), lease);
            }
        }
        let wanted = self.scan(|vms| {
            let mut wanted: BTreeMap<(u64, Ipv4Addr), u64> = BTreeMap::new();
            for vm in vms.filter(|vm| vm.state != State::Done) {
                for nic in vm.template.vectors("NIC") {
                    let network = nic
                        .get("NETWORK_ID")
                        .and_then(|n| n.trim().parse::<u64>().ok());
                    let ip = nic
                        .get("IP")
                        .and_then(|i| i.trim().parse::<Ipv4Addr>().ok());
                    if let (Some(network), Some(ip)) = (network, ip) {
                        wanted.insert((network, ip), vm.id);
                    }
                }
            }
            wanted
        })?;
        let stale: Vec<Lease> = held
            .iter()
            .filter(|(key, lease)| wanted.get(key) != Some(&lease.vm_id))
            .map(|(_, lease)| lease.clone())
            .collect();
        let missing: Vec<((u64, Ipv4Addr), u64)> = wanted
            .iter()
            .filter(|(key, _)| !held.contains_key(key))
            .map(|(key, vm)| (*key, *vm))
            .collect();
        if stale.is_empty() && missing.is_empty() {
            return Ok(());
        }
        let guard = self.writer.lock()?;
        let mut restored = Vec::new();
        let stale_keys: BTreeSet<(u64, Ipv4Addr)> =
            stale.iter().map(|l| (l.vnet_id, l.ip)).collect();
        for ((network, ip), vm_id) in &missing {
            let owner = self.get(*vm_id)?.uid;
            let request = LeaseRequest {
                network: NetworkKey::Id(*network),
                ip: Some(*ip),
                mac: None,
            };
            match self.vnets.plan_lease(&guard, owner, &request, *vm_id, &restored) {
                Ok(lease) => restored.push(lease),
                // Taken by a stale lease we are giving back now: take it.
                Err(_) if stale_keys.contains(&(*network, *ip)) => {
                    if let Some(old) = held.get(&(*network, *ip)) {
                        restored.push(Lease {
                            vm_id: *vm_id,
                            ..old.clone()
                        });
                    }
                }
                Err(e) => tracing::error!(
                    vm = vm_id,
                    "start-up recount: VM {vm_id} cannot get its lease {ip} of network {network} back: {e}"
                ),
            }
        }
        guard.commit(|tx| {
            for lease in &stale {
                tx.release_lease(lease)?;
            }
            for lease in &restored {
                tx.put_lease(lease)?;
            }
            Ok(())
        })?;
        self.vnets.apply_release(&guard, &stale)?;
        self.vnets.apply_leases(&guard, &restored)?;
        for lease in &stale {
            tracing::warn!(
                vm = lease.vm_id,
                "start-up recount: lease {} of network {} held for VM {}, which does not use it: released",
                lease.ip,
                lease.vnet_id,
                lease.vm_id
            );
        }
        for lease in &restored {
            tracing::warn!(
                vm = lease.vm_id,
                "start-up recount: VM {} had lost its lease {} of network {}: taken again",
                lease.vm_id,
                lease.ip,
                lease.vnet_id
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Error;

    fn poll(state: PollState) -> Result<PollAnswer> {
        Ok(PollAnswer {
            state: Some(state),
            ..PollAnswer::default()
        })
    }

    fn failed() -> Result<PollAnswer> {
        Err(Error::Driver {
            action: "poll".into(),
            host: "h".into(),
            message: "unreachable".into(),
        })
    }

    #[test]
    fn probes_decide_as_the_spec_says() {
        use PollState::{Active, Disappeared};
        for step in [Step::VmmDeploy, Step::VmmRestore] {
            assert_eq!(decide(step, &[poll(Active)]), Decision::Success);
            assert_eq!(decide(step, &[poll(Disappeared)]), Decision::Rerun);
            assert_eq!(decide(step, &[failed()]), Decision::Rerun);
        }
        for step in [
            Step::VmmShutdown,
            Step::VmmCancel,
            Step::VmmSave,
            Step::VmmSavePrevious,
        ] {
            assert_eq!(
                decide(step, &[poll(Disappeared)]),
                Decision::Success,
                "{step}"
            );
            assert_eq!(decide(step, &[poll(Active)]), Decision::Rerun, "{step}");
            assert_eq!(decide(step, &[failed()]), Decision::Rerun, "{step}");
        }
        // Migrate: H (target) first, then P (source).
        assert_eq!(
            decide(Step::VmmMigrate, &[poll(Active), poll(Disappeared)]),
            Decision::Success
        );
        assert_eq!(
            decide(Step::VmmMigrate, &[poll(Disappeared), poll(Active)]),
            Decision::Failure
        );
        assert_eq!(
            decide(Step::VmmMigrate, &[failed(), failed()]),
            Decision::Failure
        );
        assert_eq!(decide(Step::TmProlog, &[]), Decision::Rerun);
    }
}
