//! The scheduler: match-making of pending VMs to hosts (spec/CORE.md §6.5).
//!
//! What lives here: [`plan`], the pure match-making of one cycle — which
//! pending VM goes to which host, and why the others stay pending — with
//! its inputs [`PendingVm`] and [`Limits`] and its answer [`Plan`]. The
//! loop that runs a cycle every `SCHED_INTERVAL` (or when woken) and acts
//! on the plan through the VM pool is in [`runner`].
//!
//! The rules, in cloudgate's reading of §6.5:
//! - candidate hosts are those [`Host::is_schedulable`] accepts (MONITORED,
//!   or MONITORING after a successful monitoring); every user may use every
//!   host (§7.3, `USE` of a host is always allowed), so the VM's owner
//!   plays no part;
//! - a host matches a VM when its REQUIREMENTS hold on the host's
//!   variables ([`Host::lookup`], §6.4) and the VM fits the *allocated*
//!   counters with `HYPERVISOR_MEM` ([`HostShare::fits`], §3.4); a
//!   REQUIREMENTS syntax error excludes every host;
//! - matching hosts are ordered by the VM's RANK, or by the default
//!   policy's when it has none, higher first, ties to the lower host id;
//!   a RANK syntax error ranks every host 0. OpenNebula divides each
//!   policy's scores by the largest absolute score; with one policy per VM
//!   that is a positive scaling, which cannot change the order, so the
//!   truncated integer scores are compared directly (no float rounding can
//!   merge two scores);
//! - the pending VMs are walked in id order (at most `MAX_VM`); each takes
//!   the best matching host that still fits the counters *including the
//!   VMs placed earlier in the cycle* and has received fewer than
//!   `MAX_HOST` VMs in this cycle; the walk stops placing after
//!   `MAX_DISPATCH` VMs. Ranks and REQUIREMENTS are evaluated on the hosts
//!   as they were at the start of the cycle, as OpenNebula does: only the
//!   capacity counters move during a cycle.
//!
//! Several VMs usually share their REQUIREMENTS and RANK texts (they come
//! from the same instance types), so each distinct text is parsed once and
//! evaluated once per host, and each distinct pair is sorted once: the
//! result is the same as evaluating per VM, much cheaper.
//!
//! May use: `crate::core` and `crate::template`.

pub mod runner;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::HashMap;

use super::host::{Host, HostShare, HostState, ShareChange};
use super::settings::Settings;
use crate::template::{Rank, Requirements};

/// A VM waiting for a host, as the VM pool hands it to the scheduler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingVm {
    /// The VM's id; VMs are considered in id order.
    pub id: u64,
    /// Its owner's user id. Unused by the match-making (every user may use
    /// every host), kept for the logs and for a future ACL.
    pub owner: u64,
    /// The CPU it reserves: `CPU × 100`, truncated (spec/CORE.md §3.3); 0
    /// when it reserves nothing.
    pub cpu: i64,
    /// The memory it reserves, KB: `MEMORY × 1024`; 0 when it reserves
    /// nothing (a VM without `MEMORY` or `CPU` reserves neither, §3.4).
    pub memory_kb: i64,
    /// Its REQUIREMENTS, `$` references already substituted; empty when it
    /// has none (every host satisfies it).
    pub requirements: String,
    /// Its RANK; empty when it has none (the default policy ranks).
    pub rank: String,
}

/// The knobs of one cycle (spec/CORE.md §6.5; DRIVERS.md §10.1).
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// `MAX_VM`: pending VMs considered per cycle, the lowest ids first.
    pub max_vm: usize,
    /// `MAX_DISPATCH`: VMs placed per cycle.
    pub max_dispatch: usize,
    /// `MAX_HOST`: VMs placed on one host per cycle.
    pub max_host: usize,
    /// `HYPERVISOR_MEM`: the fraction of a host's memory never given to VMs.
    pub hypervisor_mem: f64,
    /// The RANK expression of `DEFAULT_SCHED`, for VMs without one
    /// (`- RUNNING_VMS` for the default striping policy).
    pub default_rank: String,
}

impl Default for Limits {
    /// cloudgate's shipped defaults: 5000 / 1000 / 100, `HYPERVISOR_MEM`
    /// 0.1, striping.
    fn default() -> Self {
        Limits {
            max_vm: 5000,
            max_dispatch: 1000,
            max_host: 100,
            hypervisor_mem: 0.1,
            default_rank: "- RUNNING_VMS".to_owned(),
        }
    }
}

impl Limits {
    /// The knobs as the core's settings give them.
    pub fn from_settings(settings: &Settings) -> Self {
        let size = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        Limits {
            max_vm: size(settings.max_vm),
            max_dispatch: size(settings.max_dispatch),
            max_host: size(settings.max_host),
            hypervisor_mem: settings.hypervisor_mem,
            default_rank: settings.default_rank.clone(),
        }
    }
}

/// What one cycle decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// `(vm id, host id)` to deploy, in id order of the VMs.
    pub dispatch: Vec<(u64, u64)>,
    /// `(vm id, why)` for the VMs considered that stay pending, in id
    /// order; the reason is for users (`show`).
    pub unplaced: Vec<(u64, String)>,
}

/// One cycle of match-making: see the module header for the rules. Pure:
/// `hosts` is a snapshot (every host, any state; the planner picks the
/// candidates), nothing is changed.
pub fn plan(pending: &[PendingVm], hosts: &[Host], limits: &Limits) -> Plan {
    let mut vms: Vec<&PendingVm> = pending.iter().collect();
    vms.sort_by_key(|vm| vm.id);
    vms.truncate(limits.max_vm);

    let candidates: Vec<&Host> = hosts.iter().filter(|h| h.is_schedulable()).collect();
    if candidates.is_empty() {
        let reason = no_candidate_reason(hosts);
        return Plan {
            dispatch: Vec::new(),
            unplaced: vms.iter().map(|vm| (vm.id, reason.clone())).collect(),
        };
    }

    let mut matcher = Matcher::new(&candidates, limits);
    // The scheduler's copy of the counters, moved by each placement.
    let mut shares: Vec<HostShare> = candidates.iter().map(|h| h.share).collect();
    let mut given = vec![0usize; candidates.len()];
    let mut result = Plan::default();

    for vm in vms {
        if result.dispatch.len() >= limits.max_dispatch {
            result.unplaced.push((
                vm.id,
                format!(
                    "waiting for the next scheduling cycle: this one already placed \
                     MAX_DISPATCH ({}) VMs",
                    limits.max_dispatch
                ),
            ));
            continue;
        }
        let order = match matcher.order(&vm.requirements, &vm.rank) {
            Ok(order) => order,
            Err(reason) => {
                result.unplaced.push((vm.id, reason));
                continue;
            }
        };
        let chosen = order.iter().copied().find(|&i| {
            given[i] < limits.max_host
                && shares[i].fits(vm.cpu, vm.memory_kb, limits.hypervisor_mem)
        });
        match chosen {
            Some(i) => {
                shares[i].apply(&ShareChange {
                    host_id: candidates[i].id,
                    cpu: vm.cpu.max(0),
                    mem_kb: vm.memory_kb.max(0),
                    running_vms: 1,
                });
                given[i] += 1;
                result.dispatch.push((vm.id, candidates[i].id));
            }
            None => {
                let reason = capacity_reason(vm, order, &shares, candidates.len(), limits);
                result.unplaced.push((vm.id, reason));
            }
        }
    }
    result
}

/// A candidate host's expression variables: [`Host::lookup`], remembered
/// per name, since every expression of the cycle asks the same few names
/// of the same hosts.
struct Vars<'a> {
    host: &'a Host,
    known: RefCell<HashMap<String, Option<String>>>,
}

impl<'a> Vars<'a> {
    fn new(host: &'a Host) -> Self {
        Vars {
            host,
            known: RefCell::new(HashMap::new()),
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        if let Some(value) = self.known.borrow().get(name) {
            return value.clone();
        }
        let value = self.host.lookup(name);
        self.known
            .borrow_mut()
            .insert(name.to_owned(), value.clone());
        value
    }
}

/// Evaluates REQUIREMENTS and RANK on the candidates, once per distinct
/// text, and keeps each distinct pair's host order.
struct Matcher<'a> {
    hosts: &'a [&'a Host],
    vars: Vec<Vars<'a>>,
    default_rank: &'a str,
    /// REQUIREMENTS text → the indexes of the hosts satisfying it, or why
    /// none can.
    matching: HashMap<&'a str, Result<Vec<usize>, String>>,
    /// RANK text → its parse (a syntax error ranks every host 0) and the
    /// scores computed so far, by host index.
    ranks: HashMap<&'a str, (Option<Rank>, Vec<Option<i64>>)>,
    /// (REQUIREMENTS, RANK) → matching host indexes, best first.
    orders: HashMap<(&'a str, &'a str), Result<Vec<usize>, String>>,
}

impl<'a> Matcher<'a> {
    fn new(hosts: &'a [&'a Host], limits: &'a Limits) -> Self {
        Matcher {
            hosts,
            vars: hosts.iter().map(|h| Vars::new(h)).collect(),
            default_rank: &limits.default_rank,
            matching: HashMap::new(),
            ranks: HashMap::new(),
            orders: HashMap::new(),
        }
    }

    /// The hosts satisfying `requirements`, best first by `rank` (or the
    /// default policy's when empty); `Err` says why none satisfies them.
    fn order(&mut self, requirements: &'a str, rank: &'a str) -> Result<&[usize], String> {
        let rank = if rank.trim().is_empty() {
            self.default_rank
        } else {
            rank
        };
        if !self.orders.contains_key(&(requirements, rank)) {
            let order = self.compute_order(requirements, rank);
            self.orders.insert((requirements, rank), order);
        }
        match self.orders.get(&(requirements, rank)) {
            Some(Ok(order)) => Ok(order),
            Some(Err(reason)) => Err(reason.clone()),
            None => Err("internal error: scheduler cache".to_owned()),
        }
    }

    fn compute_order(
        &mut self,
        requirements: &'a str,
        rank: &'a str,
    ) -> Result<Vec<usize>, String> {
        let mut order = self.matching(requirements)?;
        let (hosts, vars) = (self.hosts, &self.vars);
        let (parsed, scores) = self.ranks.entry(rank).or_insert_with(|| {
            let parsed = match Rank::parse(rank) {
                Ok(parsed) => Some(parsed),
                Err(e) => {
                    tracing::warn!("scheduler: RANK {rank:?}: {e}; ranking every host 0");
                    None
                }
            };
            (parsed, vec![None; hosts.len()])
        });
        for &i in &order {
            if scores[i].is_none() {
                scores[i] = Some(
                    parsed
                        .as_ref()
                        .map_or(0, |r| r.eval(&|name| vars[i].get(name))),
                );
            }
        }
        // Higher first; the lower id breaks ties (hosts are in id order,
        // but say so rather than rely on it). Keys are unique, so the
        // unstable sort is deterministic.
        let mut keyed: Vec<(Reverse<i64>, u64, usize)> = order
            .iter()
            .map(|&i| (Reverse(scores[i].unwrap_or(0)), hosts[i].id, i))
            .collect();
        keyed.sort_unstable();
        order.clear();
        order.extend(keyed.into_iter().map(|(_, _, i)| i));
        Ok(order)
    }

    fn matching(&mut self, requirements: &'a str) -> Result<Vec<usize>, String> {
        let (hosts, vars) = (self.hosts, &self.vars);
        self.matching
            .entry(requirements)
            .or_insert_with(|| {
                let text = requirements.trim();
                let parsed = Requirements::parse(text).map_err(|e| {
                    format!("REQUIREMENTS cannot be evaluated: {e} (REQUIREMENTS = {text:?})")
                })?;
                let matching: Vec<usize> = (0..hosts.len())
                    .filter(|&i| parsed.eval(&|name| vars[i].get(name)))
                    .collect();
                if matching.is_empty() {
                    return Err(format!(
                        "no host satisfies REQUIREMENTS: {text} ({} monitored {} checked)",
                        hosts.len(),
                        plural(hosts.len(), "host", "hosts")
                    ));
                }
                Ok(matching)
            })
            .clone()
    }
}

/// Why no host can take the VM although some satisfy its REQUIREMENTS:
/// capacity (on the counters as this cycle left them) or `MAX_HOST`.
fn capacity_reason(
    vm: &PendingVm,
    order: &[usize],
    shares: &[HostShare],
    candidates: usize,
    limits: &Limits,
) -> String {
    let hm = limits.hypervisor_mem;
    let among = if order.len() == candidates {
        String::new()
    } else {
        format!(
            " (among the {} {} satisfying REQUIREMENTS)",
            order.len(),
            plural(order.len(), "host", "hosts")
        )
    };
    if order
        .iter()
        .any(|&i| shares[i].fits(vm.cpu, vm.memory_kb, hm))
    {
        return format!(
            "waiting for the next scheduling cycle: every host that can take it already \
             received MAX_HOST ({}) VMs in this one",
            limits.max_host
        );
    }
    let free_mem = |s: &HostShare| s.allocatable_mem(hm) - s.mem_usage;
    let best_cpu = order
        .iter()
        .map(|&i| shares[i].avail_cpu())
        .max()
        .unwrap_or(0);
    let best_mem = order
        .iter()
        .map(|&i| free_mem(&shares[i]))
        .max()
        .unwrap_or(0);
    // An over-committed host (manual deploys) has less than nothing free;
    // "0" reads better than a negative figure.
    let (best_cpu, best_mem) = (best_cpu.max(0), best_mem.max(0));
    let cpu_short = vm.cpu > 0 && best_cpu < vm.cpu;
    let mem_short = vm.memory_kb > 0 && best_mem < vm.memory_kb;
    match (cpu_short, mem_short) {
        (true, false) => format!(
            "not enough free CPU on any host (needs {}, best host has {best_cpu}){among}",
            vm.cpu
        ),
        (false, true) => format!(
            "not enough free memory on any host (needs {} KB, best host has {best_mem} KB){among}",
            vm.memory_kb
        ),
        (true, true) => format!(
            "not enough free CPU and memory on any host (needs CPU {} and {} KB, best hosts \
             have CPU {best_cpu} and {best_mem} KB){among}",
            vm.cpu, vm.memory_kb
        ),
        // Some hosts have the CPU, others the memory, none both.
        (false, false) => format!(
            "no host has enough free CPU and memory at once (needs CPU {} and {} KB){among}",
            vm.cpu, vm.memory_kb
        ),
    }
}

/// Why there is no candidate host at all.
fn no_candidate_reason(hosts: &[Host]) -> String {
    if hosts.is_empty() {
        return "no host is registered".to_owned();
    }
    let (mut waiting, mut failed, mut disabled) = (0, 0, 0);
    for host in hosts {
        match host.state {
            HostState::Disabled => disabled += 1,
            HostState::Error => failed += 1,
            // Re-monitoring a host whose last monitoring failed.
            HostState::Monitoring if host.error.is_some() => failed += 1,
            HostState::Init | HostState::Monitoring | HostState::Monitored => waiting += 1,
        }
    }
    if failed == 0 && disabled == 0 {
        return "no host is monitored yet".to_owned();
    }
    let mut parts = Vec::new();
    if waiting > 0 {
        parts.push(format!("{waiting} waiting for monitoring"));
    }
    if failed > 0 {
        parts.push(format!("{failed} in ERROR"));
    }
    if disabled > 0 {
        parts.push(format!("{disabled} disabled"));
    }
    format!("no host can take VMs: {}", parts.join(", "))
}

fn plural<'s>(n: usize, one: &'s str, many: &'s str) -> &'s str {
    if n == 1 {
        one
    } else {
        many
    }
}
