//! Hosts (spec/CORE.md §3): the machines VMs run on, what their probes
//! reported, and the capacity VMs hold on them.
//!
//! What lives here: [`Host`] with its [`HostState`] (OpenNebula's numbers
//! and names) and [`HostShare`] (the `HOST_SHARE` counters), the pure rules
//! on them (state transitions, monitoring merge, `test_capacity`, the
//! expression variable lookup of §6.4), and [`HostPool`]:
//! - oneadmin's create / delete / enable / disable / list / show (§7.3);
//! - the monitor's calls (§3.2): [`HostPool::set_monitoring`],
//!   [`HostPool::record_monitoring`], [`HostPool::record_failure`],
//!   [`HostPool::reset_monitoring`];
//! - capacity bookkeeping for the VM pool (§1.6, §3.4) in the writer's
//!   plan → commit → apply style: [`HostPool::plan_reserve`] (checks),
//!   [`HostPool::plan_charge`] (over-commits), [`HostPool::plan_release`],
//!   then [`HostPool::write_shares`] inside the transaction and
//!   [`HostPool::apply_shares`] after it;
//! - [`HostPool::snapshot`] for the scheduler.
//!
//! May use: `crate::template` (and `crate::core`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::{Deserialize, Serialize};

use super::caller::Caller;
use super::ports::{Durability, Pool, Tx};
use super::settings::{DriverName, Settings};
use super::signal::Signal;
use super::writer::{WriteGuard, Writer};
use super::{Error, Kind, Result};
use crate::template::{self, Template};

numbered! {
    /// A host's state, with OpenNebula 1.4's numbers (spec/CORE.md §3.1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum HostState: u8, from i64 {
        /// 0: enabled, not (recently) monitored.
        Init = 0 => "INIT",
        /// 1: a `MONITOR` request is out.
        Monitoring = 1 => "MONITORING",
        /// 2: the last monitoring succeeded.
        Monitored = 2 => "MONITORED",
        /// 3: the last monitoring failed.
        Error = 3 => "ERROR",
        /// 4: neither monitored nor used by the scheduler; its VMs keep running.
        Disabled = 4 => "DISABLED",
    }
}

impl HostState {
    /// The state with this name (upper case, as [`HostState::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The 1.4 CLI's short name: `on`, `err` or `off` (the `STAT` column).
    pub fn short(self) -> &'static str {
        match self {
            HostState::Init | HostState::Monitoring | HostState::Monitored => "on",
            HostState::Error => "err",
            HostState::Disabled => "off",
        }
    }
}

/// A host's `HOST_SHARE` (spec/CORE.md §3.3-3.4). CPU is in percent of one
/// core (cores × 100), memory in KB, disk unused (always 0, as in 1.x-3.x).
/// `*_usage` and `running_vms` are cloudgate's own allocation counters;
/// `max_*`, `free_*` and `used_*` are what the host last reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostShare {
    /// `CPU_USAGE`: CPU reserved by the VMs placed here.
    pub cpu_usage: i64,
    /// `MEM_USAGE`: memory (KB) reserved by the VMs placed here.
    pub mem_usage: i64,
    /// `DISK_USAGE`: always 0.
    pub disk_usage: i64,
    /// `MAX_CPU`: the reported `TOTALCPU`.
    pub max_cpu: i64,
    /// `MAX_MEM`: the reported `TOTALMEMORY` (KB).
    pub max_mem: i64,
    /// `MAX_DISK`: always 0.
    pub max_disk: i64,
    /// `FREE_CPU`: the reported `FREECPU`.
    pub free_cpu: i64,
    /// `FREE_MEM`: the reported `FREEMEMORY` (KB).
    pub free_mem: i64,
    /// `FREE_DISK`: always 0.
    pub free_disk: i64,
    /// `USED_CPU`: the reported `USEDCPU`.
    pub used_cpu: i64,
    /// `USED_MEM`: the reported `USEDMEMORY` (KB).
    pub used_mem: i64,
    /// `USED_DISK`: always 0.
    pub used_disk: i64,
    /// `RUNNING_VMS`: VMs holding capacity here (not only running ones).
    pub running_vms: i64,
}

impl HostShare {
    /// `MAX_CPU − CPU_USAGE`: CPU not allocated to VMs (the `ACPU` column).
    pub fn avail_cpu(&self) -> i64 {
        self.max_cpu - self.cpu_usage
    }

    /// The memory VMs may be given in all: `MAX_MEM` less the fraction kept
    /// for the hypervisor (3.8's scheduler, truncated as it does).
    pub fn allocatable_mem(&self, hypervisor_mem: f64) -> i64 {
        let kept = 1.0 - hypervisor_mem.clamp(0.0, 1.0);
        (self.max_mem as f64 * kept) as i64
    }

    /// `test_capacity` (spec/CORE.md §3.4): whether a VM reserving `cpu`
    /// (CPU × 100) and `mem_kb` still fits the allocation counters. An
    /// amount of 0 always fits, even on a host over-committed by manual
    /// deploys: a VM that reserves nothing "fits anywhere" (§3.4).
    pub fn fits(&self, cpu: i64, mem_kb: i64, hypervisor_mem: f64) -> bool {
        let cpu_fits = cpu <= 0 || self.avail_cpu() >= cpu;
        let mem_fits =
            mem_kb <= 0 || self.allocatable_mem(hypervisor_mem) - self.mem_usage >= mem_kb;
        cpu_fits && mem_fits
    }

    /// Moves the allocation counters by a planned change. They stop at 0:
    /// a release that would go below (a bookkeeping slip) must not leave a
    /// host with negative usage that makes it look bigger than it is; the
    /// start-up recount (spec/CORE.md §8.4) repairs the rest.
    pub fn apply(&mut self, change: &ShareChange) {
        self.cpu_usage = (self.cpu_usage + change.cpu).max(0);
        self.mem_usage = (self.mem_usage + change.mem_kb).max(0);
        self.running_vms = (self.running_vms + change.running_vms).max(0);
    }

    /// A counter by its `HOST_SHARE` XML name (`MAX_CPU`, `RUNNING_VMS`...).
    pub fn get(&self, name: &str) -> Option<i64> {
        Some(match name {
            "DISK_USAGE" => self.disk_usage,
            "MEM_USAGE" => self.mem_usage,
            "CPU_USAGE" => self.cpu_usage,
            "MAX_DISK" => self.max_disk,
            "MAX_MEM" => self.max_mem,
            "MAX_CPU" => self.max_cpu,
            "FREE_DISK" => self.free_disk,
            "FREE_MEM" => self.free_mem,
            "FREE_CPU" => self.free_cpu,
            "USED_DISK" => self.used_disk,
            "USED_MEM" => self.used_mem,
            "USED_CPU" => self.used_cpu,
            "RUNNING_VMS" => self.running_vms,
            _ => return None,
        })
    }
}

/// A planned move of one host's allocation counters (`+cap` or `−cap` of
/// spec/CORE.md §1.6), made by a `plan_*` method of [`HostPool`] and
/// written and applied by [`HostPool::write_shares`] and
/// [`HostPool::apply_shares`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareChange {
    /// The host.
    pub host_id: u64,
    /// Added to `CPU_USAGE` (negative to release).
    pub cpu: i64,
    /// Added to `MEM_USAGE`, KB (negative to release).
    pub mem_kb: i64,
    /// Added to `RUNNING_VMS`: 1 or −1.
    pub running_vms: i64,
}

/// A host: an SSH-reachable machine with its three drivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Unique, never reused id.
    pub id: u64,
    /// Unique name: the host name or ssh alias the drivers connect to.
    pub name: String,
    /// Where it is in its monitoring life.
    pub state: HostState,
    /// The IM driver's `NAME` (`IM_MAD`).
    pub im_mad: String,
    /// The VMM driver's `NAME` (`VM_MAD`).
    pub vmm_mad: String,
    /// The TM driver's `NAME` (`TM_MAD`).
    pub tm_mad: String,
    /// When the last monitoring ended (success or failure), Unix seconds;
    /// 0 if never.
    pub last_mon_time: u64,
    /// Everything the probes reported, merged over time (§3.2).
    pub template: Template,
    /// Capacity and allocation counters.
    pub share: HostShare,
    /// Why the last monitoring failed; `None` once one succeeds.
    pub error: Option<String>,
}

impl Host {
    /// A new host: INIT, never monitored, nothing allocated.
    pub fn new(id: u64, name: &str, im_mad: &str, vmm_mad: &str, tm_mad: &str) -> Self {
        Host {
            id,
            name: name.to_string(),
            state: HostState::Init,
            im_mad: im_mad.to_string(),
            vmm_mad: vmm_mad.to_string(),
            tm_mad: tm_mad.to_string(),
            last_mon_time: 0,
            template: Template::new(),
            share: HostShare::default(),
            error: None,
        }
    }

    /// `enable`: back to INIT whatever the state, so it is monitored afresh.
    pub fn enable(&mut self) {
        self.state = HostState::Init;
    }

    /// `disable`: DISABLED whatever the state.
    pub fn disable(&mut self) {
        self.state = HostState::Disabled;
    }

    /// A `MONITOR` request goes out: MONITORING. A disabled host is not
    /// monitored.
    pub fn start_monitoring(&mut self) -> Result<()> {
        if self.state == HostState::Disabled {
            return Err(Error::InvalidState {
                kind: Kind::Host,
                id: self.name.clone(),
                state: self.state.short().to_string(),
                action: "monitor".to_string(),
            });
        }
        self.state = HostState::Monitoring;
        Ok(())
    }

    /// The reply to a `MONITOR` never came (600 s in OpenNebula, or a
    /// restart): MONITORING goes back to INIT; other states stay.
    pub fn lose_monitoring(&mut self) {
        if self.state == HostState::Monitoring {
            self.state = HostState::Init;
        }
    }

    /// `MONITOR SUCCESS` (spec/CORE.md §3.2): the payload is merged into the
    /// template (attributes of a name it has replace all of that name,
    /// others stay), the share's monitored figures are read from the
    /// merged template (as floats, truncated: 3.x), and the host becomes
    /// MONITORED unless it was disabled meanwhile.
    pub fn monitored(&mut self, payload: &Template, time: u64) {
        let names: BTreeSet<&str> = payload
            .attributes()
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        for name in names {
            self.template.remove(name);
        }
        for attribute in payload.attributes() {
            self.template.push(&attribute.name, attribute.value.clone());
        }
        let figure = |name: &str| {
            self.template
                .get(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .map_or(0, |v| v as i64)
        };
        self.share.max_cpu = figure("TOTALCPU");
        self.share.max_mem = figure("TOTALMEMORY");
        self.share.free_cpu = figure("FREECPU");
        self.share.free_mem = figure("FREEMEMORY");
        self.share.used_cpu = figure("USEDCPU");
        self.share.used_mem = figure("USEDMEMORY");
        self.last_mon_time = time;
        self.error = None;
        if self.state != HostState::Disabled {
            self.state = HostState::Monitored;
        }
    }

    /// `MONITOR FAILURE` (or a payload that does not parse, or an IM driver
    /// that is not loaded): ERROR unless disabled, with the message kept.
    pub fn failed(&mut self, message: &str, time: u64) {
        self.last_mon_time = time;
        self.error = Some(message.to_string());
        if self.state != HostState::Disabled {
            self.state = HostState::Error;
        }
    }

    /// Whether the scheduler may place VMs here (spec/CORE.md §6.5,
    /// cloudgate: MONITORED, or MONITORING of a host whose last monitoring
    /// succeeded).
    pub fn is_schedulable(&self) -> bool {
        match self.state {
            HostState::Monitored => true,
            HostState::Monitoring => self.last_mon_time > 0 && self.error.is_none(),
            HostState::Init | HostState::Error | HostState::Disabled => false,
        }
    }

    /// A variable of a REQUIREMENTS or RANK expression on this host, looked
    /// up in three steps (spec/CORE.md §6.4, 3.x): the template (single
    /// values), then the share (`MAX_CPU`, `FREE_CPU`, `CPU_USAGE`,
    /// `RUNNING_VMS`...), then the host's own fields (`ID`, `NAME`, `STATE`
    /// as its number, `IM_MAD`, `VM_MAD`, `TM_MAD`, `LAST_MON_TIME`). Names
    /// are taken exactly as written: `hypervisor` finds nothing, because
    /// every stored name is upper case.
    ///
    /// Use it as `requirements.eval(&|n| host.lookup(n))`.
    pub fn lookup(&self, name: &str) -> Option<String> {
        // The template's own lookups normalise names (`nic` finds `NIC`);
        // expressions must not, so anything not already in stored form
        // is unknown.
        if !template::is_valid_name(name) || name.bytes().any(|b| b.is_ascii_lowercase()) {
            return None;
        }
        if let Some(value) = self.template.get(name) {
            return Some(value.to_string());
        }
        if let Some(value) = self.share.get(name) {
            return Some(value.to_string());
        }
        Some(match name {
            "ID" => self.id.to_string(),
            "NAME" => self.name.clone(),
            "STATE" => self.state.number().to_string(),
            "IM_MAD" => self.im_mad.clone(),
            "VM_MAD" => self.vmm_mad.clone(),
            "TM_MAD" => self.tm_mad.clone(),
            "LAST_MON_TIME" => self.last_mon_time.to_string(),
            _ => return None,
        })
    }
}

/// The host pool: every host in memory, every change written to the store
/// before it is visible. Hosts are oneadmin's (spec/CORE.md §7.3): every
/// caller-facing method refuses anyone else with `Forbidden`, before
/// looking anything up, so host names cannot be probed.
pub struct HostPool {
    writer: Arc<Writer>,
    im_drivers: Vec<DriverName>,
    vmm_drivers: Vec<DriverName>,
    tm_drivers: Vec<DriverName>,
    hypervisor_mem: f64,
    hosts: RwLock<BTreeMap<u64, Host>>,
    /// Rung when a host needs monitoring now (created, enabled).
    monitor_bell: OnceLock<Arc<Signal>>,
}

impl HostPool {
    /// Loads the pool from the store. Hosts left MONITORING by the previous
    /// run go back to INIT at once: their reply died with it
    /// (spec/CORE.md §8.4).
    pub fn load(writer: Arc<Writer>, settings: &Settings) -> Result<Self> {
        let mut hosts: BTreeMap<u64, Host> = writer
            .store()
            .load_hosts()?
            .into_iter()
            .map(|h| (h.id, h))
            .collect();
        let stuck: Vec<Host> = hosts
            .values()
            .filter(|h| h.state == HostState::Monitoring)
            .cloned()
            .map(|mut h| {
                h.lose_monitoring();
                h
            })
            .collect();
        if !stuck.is_empty() {
            let guard = writer.lock()?;
            guard.commit(|tx| stuck.iter().try_for_each(|h| tx.put_host(h)))?;
            hosts.extend(stuck.into_iter().map(|h| (h.id, h)));
        }
        Ok(HostPool {
            writer,
            im_drivers: settings.im_drivers.clone(),
            vmm_drivers: settings.vmm_drivers.clone(),
            tm_drivers: settings.tm_drivers.clone(),
            hypervisor_mem: settings.hypervisor_mem,
            hosts: RwLock::new(hosts),
            monitor_bell: OnceLock::new(),
        })
    }

    /// The bell to ring when a host needs monitoring now (a new host is
    /// monitored at once, not at the next tick). Set once, by the core.
    pub fn set_monitor_bell(&self, bell: Arc<Signal>) {
        let _ = self.monitor_bell.set(bell);
    }

    fn ring_monitor(&self) {
        if let Some(bell) = self.monitor_bell.get() {
            bell.ring();
        }
    }

    /// Every host (oneadmin only), in id order.
    pub fn list(&self, caller: &Caller) -> Result<Vec<Host>> {
        require_admin(caller, "list", "pool")?;
        Ok(self.read()?.values().cloned().collect())
    }

    /// One host by id or name (oneadmin only).
    pub fn show(&self, caller: &Caller, key: &str) -> Result<Host> {
        require_admin(caller, "show", key)?;
        self.find(key)
    }

    /// Registers a host (oneadmin only): INIT, to be monitored. The name is
    /// what ssh connects to; the drivers are named as in the config
    /// (`im_kvm`) or by their folder (`kvm`), and stored by name.
    pub fn create(
        &self,
        caller: &Caller,
        name: &str,
        im_mad: &str,
        vmm_mad: &str,
        tm_mad: &str,
    ) -> Result<Host> {
        require_admin(caller, "create", name)?;
        let guard = self.writer.lock()?;
        let host = self.plan_create(name, im_mad, vmm_mad, tm_mad)?;
        let host = guard.commit(|tx| {
            let host = Host {
                id: tx.next_id(Pool::Hosts)?,
                ..host
            };
            tx.put_host(&host)?;
            Ok(host)
        })?;
        self.write_map()?.insert(host.id, host.clone());
        self.ring_monitor();
        Ok(host)
    }

    /// Registers the first host of a new installation: only if no host id
    /// has ever been given out (the pool's id counter is untouched), so a
    /// host the administrator deleted does not come back at the next start,
    /// and a start that stopped before registering it does it next time.
    /// Returns the host if it was created.
    pub fn ensure_first_host(
        &self,
        name: &str,
        im_mad: &str,
        vmm_mad: &str,
        tm_mad: &str,
    ) -> Result<Option<Host>> {
        let guard = self.writer.lock()?;
        if !self.read()?.is_empty() {
            return Ok(None);
        }
        let host = self.plan_create(name, im_mad, vmm_mad, tm_mad)?;
        let mut first = true;
        let result = guard.commit(|tx| {
            let id = tx.next_id(Pool::Hosts)?;
            if id != 0 {
                // Hosts existed once: roll back, so that asking does not
                // use up an id at every start.
                first = false;
                return Err(Error::Internal("hosts were registered before".into()));
            }
            let host = Host { id, ..host };
            tx.put_host(&host)?;
            Ok(host)
        });
        match result {
            Ok(host) => {
                self.write_map()?.insert(host.id, host.clone());
                Ok(Some(host))
            }
            Err(_) if !first => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes a host (oneadmin only). Refused while VMs hold capacity on
    /// it: they would lose the host their files and domain are on.
    pub fn delete(&self, caller: &Caller, key: &str) -> Result<Host> {
        require_admin(caller, "delete", key)?;
        let guard = self.writer.lock()?;
        let host = self.find(key)?;
        if host.share.running_vms > 0 {
            return Err(Error::Conflict(format!(
                "host {} has {} VMs placed on it; delete or migrate them first",
                host.name, host.share.running_vms
            )));
        }
        guard.commit(|tx| tx.delete_host(host.id))?;
        self.write_map()?.remove(&host.id);
        Ok(host)
    }

    /// Lets the monitor and the scheduler use the host again (oneadmin
    /// only): INIT.
    pub fn enable(&self, caller: &Caller, key: &str) -> Result<Host> {
        require_admin(caller, "enable", key)?;
        let host = self.update(key, Durability::Durable, |h| {
            h.enable();
            Ok(())
        })?;
        self.ring_monitor();
        Ok(host)
    }

    /// Keeps the monitor and the scheduler away from the host (oneadmin
    /// only): DISABLED. Its VMs keep running.
    pub fn disable(&self, caller: &Caller, key: &str) -> Result<Host> {
        require_admin(caller, "disable", key)?;
        self.update(key, Durability::Durable, |h| {
            h.disable();
            Ok(())
        })
    }

    /// One host by id, for the core's own workers (no caller).
    pub fn get(&self, id: u64) -> Result<Option<Host>> {
        Ok(self.read()?.get(&id).cloned())
    }

    /// Every host with its state, template and share, in id order: the
    /// monitor picks whom to probe from it, the scheduler matches and ranks
    /// on it (filter with [`Host::is_schedulable`], test with
    /// [`HostShare::fits`] and [`HostPool::hypervisor_mem`]).
    pub fn snapshot(&self) -> Result<Vec<Host>> {
        Ok(self.read()?.values().cloned().collect())
    }

    /// `HYPERVISOR_MEM`, for the scheduler's own `test_capacity`.
    pub fn hypervisor_mem(&self) -> f64 {
        self.hypervisor_mem
    }

    /// The monitor sent `MONITOR` to this host: MONITORING. Refused
    /// (`InvalidState`) for a disabled host.
    pub fn set_monitoring(&self, id: u64) -> Result<Host> {
        self.update(
            &id.to_string(),
            Durability::Background,
            Host::start_monitoring,
        )
    }

    /// The monitor gave up waiting for a reply: MONITORING → INIT (other
    /// states are left alone).
    pub fn reset_monitoring(&self, id: u64) -> Result<Host> {
        self.update(&id.to_string(), Durability::Background, |h| {
            h.lose_monitoring();
            Ok(())
        })
    }

    /// `MONITOR SUCCESS` at `time` (Unix seconds): see [`Host::monitored`].
    pub fn record_monitoring(&self, id: u64, payload: &Template, time: u64) -> Result<Host> {
        self.update(&id.to_string(), Durability::Background, |h| {
            h.monitored(payload, time);
            Ok(())
        })
    }

    /// `MONITOR FAILURE` at `time`: see [`Host::failed`].
    pub fn record_failure(&self, id: u64, message: &str, time: u64) -> Result<Host> {
        self.update(&id.to_string(), Durability::Background, |h| {
            h.failed(message, time);
            Ok(())
        })
    }

    /// Sets every host's allocation counters (`CPU_USAGE`, `MEM_USAGE`,
    /// `RUNNING_VMS`) to what the VMs hold, `usage[host] = (cpu, mem_kb,
    /// vms)`, hosts absent from it to 0: the start-up recount of
    /// spec/CORE.md §8.4, made by the VM pool. Writes only the hosts that
    /// differ, in one transaction, and answers a line per difference.
    pub fn recount_usage(&self, usage: &BTreeMap<u64, (i64, i64, i64)>) -> Result<Vec<String>> {
        let guard = self.writer.lock()?;
        let mut fixed = Vec::new();
        let mut changed = Vec::new();
        for host in self.read()?.values() {
            let (cpu, mem_kb, vms) = usage.get(&host.id).copied().unwrap_or_default();
            let share = &host.share;
            if (share.cpu_usage, share.mem_usage, share.running_vms) != (cpu, mem_kb, vms) {
                fixed.push(format!(
                    "host {}: CPU_USAGE {} -> {cpu}, MEM_USAGE {} -> {mem_kb}, RUNNING_VMS {} -> {vms}",
                    host.name, share.cpu_usage, share.mem_usage, share.running_vms
                ));
                let mut host = host.clone();
                host.share.cpu_usage = cpu;
                host.share.mem_usage = mem_kb;
                host.share.running_vms = vms;
                changed.push(host);
            }
        }
        if !changed.is_empty() {
            guard.commit(|tx| changed.iter().try_for_each(|h| tx.put_host(h)))?;
            self.write_map()?
                .extend(changed.into_iter().map(|h| (h.id, h)));
        }
        Ok(fixed)
    }

    /// Plans `+cap` on a host for a VM reserving `cpu` (CPU × 100) and
    /// `mem_kb`, refused with `Conflict` unless it fits
    /// ([`HostShare::fits`], with `HYPERVISOR_MEM`). Pure: the guard shows
    /// the caller holds the writer lock, so the host cannot change before
    /// the change is written ([`HostPool::write_shares`]) and applied
    /// ([`HostPool::apply_shares`]). Plan one change per host per
    /// transaction: two plans on one host are each checked alone.
    pub fn plan_reserve(
        &self,
        guard: &WriteGuard<'_>,
        host_id: u64,
        cpu: i64,
        mem_kb: i64,
    ) -> Result<ShareChange> {
        let change = self.plan_charge(guard, host_id, cpu, mem_kb)?;
        let hosts = self.read()?;
        let host = hosts
            .get(&host_id)
            .ok_or_else(|| Error::not_found(Kind::Host, host_id))?;
        if !host.share.fits(cpu, mem_kb, self.hypervisor_mem) {
            return Err(Error::Conflict(format!(
                "host {} has not enough capacity: asked CPU {cpu}, memory {mem_kb} KB; \
                 free for VMs CPU {}, memory {} KB",
                host.name,
                host.share.avail_cpu(),
                host.share.allocatable_mem(self.hypervisor_mem) - host.share.mem_usage
            )));
        }
        Ok(change)
    }

    /// Plans `+cap` without checking that it fits: a manual deploy may
    /// over-commit (spec/CORE.md §3.4, "the core itself never refuses").
    pub fn plan_charge(
        &self,
        _guard: &WriteGuard<'_>,
        host_id: u64,
        cpu: i64,
        mem_kb: i64,
    ) -> Result<ShareChange> {
        self.require_exists(host_id)?;
        Ok(ShareChange {
            host_id,
            cpu: cpu.max(0),
            mem_kb: mem_kb.max(0),
            running_vms: 1,
        })
    }

    /// Plans `−cap`: gives back what [`HostPool::plan_charge`] or
    /// [`HostPool::plan_reserve`] took with the same amounts.
    pub fn plan_release(
        &self,
        _guard: &WriteGuard<'_>,
        host_id: u64,
        cpu: i64,
        mem_kb: i64,
    ) -> Result<ShareChange> {
        self.require_exists(host_id)?;
        Ok(ShareChange {
            host_id,
            cpu: -cpu.max(0),
            mem_kb: -mem_kb.max(0),
            running_vms: -1,
        })
    }

    /// Writes the hosts changed by `changes` in the caller's transaction
    /// (inside `guard.commit`, the writer lock held).
    pub fn write_shares(&self, tx: &mut dyn Tx, changes: &[ShareChange]) -> Result<()> {
        self.changed(changes)?
            .values()
            .try_for_each(|host| tx.put_host(host))
    }

    /// Applies `changes` to memory once the transaction that wrote them has
    /// committed, still under the same guard.
    pub fn apply_shares(&self, _guard: &WriteGuard<'_>, changes: &[ShareChange]) -> Result<()> {
        let changed = self.changed(changes)?;
        self.write_map()?.extend(changed);
        Ok(())
    }

    /// The hosts as `changes` leave them, from memory.
    fn changed(&self, changes: &[ShareChange]) -> Result<BTreeMap<u64, Host>> {
        let hosts = self.read()?;
        let mut out: BTreeMap<u64, Host> = BTreeMap::new();
        for change in changes {
            let host = match out.entry(change.host_id) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(
                    hosts
                        .get(&change.host_id)
                        .cloned()
                        .ok_or_else(|| Error::not_found(Kind::Host, change.host_id))?,
                ),
            };
            host.share.apply(change);
        }
        Ok(out)
    }

    /// A new host checked against the pool (no id yet): name valid and
    /// free, drivers loaded.
    fn plan_create(&self, name: &str, im_mad: &str, vmm_mad: &str, tm_mad: &str) -> Result<Host> {
        validate_name(name)?;
        let im = resolve_driver("im_mad", "IM", &self.im_drivers, im_mad)?;
        let vmm = resolve_driver("vmm_mad", "VMM", &self.vmm_drivers, vmm_mad)?;
        let tm = resolve_driver("tm_mad", "TM", &self.tm_drivers, tm_mad)?;
        if self.read()?.values().any(|h| h.name == name) {
            return Err(Error::Conflict(format!("host {name} already exists")));
        }
        Ok(Host::new(0, name, &im, &vmm, &tm))
    }

    /// Changes one host under the writer lock; written only if it changed,
    /// as `durability` says (the monitor's own changes are background).
    fn update(
        &self,
        key: &str,
        durability: Durability,
        change: impl FnOnce(&mut Host) -> Result<()>,
    ) -> Result<Host> {
        let guard = self.writer.lock()?;
        let before = self.find(key)?;
        let mut host = before.clone();
        change(&mut host)?;
        if host != before {
            guard.commit_with(durability, |tx| tx.put_host(&host))?;
            self.write_map()?.insert(host.id, host.clone());
        }
        Ok(host)
    }

    fn require_exists(&self, id: u64) -> Result<()> {
        if self.read()?.contains_key(&id) {
            Ok(())
        } else {
            Err(Error::not_found(Kind::Host, id))
        }
    }

    /// A host by id or name: names are never all digits, so a number is an
    /// id.
    fn find(&self, key: &str) -> Result<Host> {
        let hosts = self.read()?;
        let found = match key.parse::<u64>() {
            Ok(id) => hosts.get(&id),
            Err(_) => hosts.values().find(|h| h.name == key),
        };
        found
            .cloned()
            .ok_or_else(|| Error::not_found(Kind::Host, key))
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, BTreeMap<u64, Host>>> {
        self.hosts
            .read()
            .map_err(|_| Error::Internal("host pool lock poisoned".into()))
    }

    fn write_map(&self) -> Result<RwLockWriteGuard<'_, BTreeMap<u64, Host>>> {
        self.hosts
            .write()
            .map_err(|_| Error::Internal("host pool lock poisoned".into()))
    }
}

fn require_admin(caller: &Caller, action: &str, what: &str) -> Result<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden {
            kind: Kind::Host,
            id: what.to_string(),
            action: action.to_string(),
        })
    }
}

/// A host name is what the drivers hand to ssh and put in `host:path`
/// arguments: a host name or an ssh alias, `[A-Za-z0-9._-]+`. Not starting
/// with `-` (ssh would read an option), and not all digits (a key that
/// parses as a number is taken as an id).
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.len() > 255 {
        "must be at most 255 characters"
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        "may contain only letters, digits, '.', '_' and '-' (a host name or ssh alias)"
    } else if name.starts_with('-') {
        "must not start with '-' (ssh would read it as an option)"
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        "must not be all digits (it would read as a host id)"
    } else {
        return Ok(());
    };
    Err(Error::invalid("name", reason))
}

/// The `NAME` of the loaded driver `key` refers to: a driver of that name,
/// else the first whose folder it is (`Config::driver`'s rule). Unknown
/// drivers are refused naming the key and what is loaded.
fn resolve_driver(field: &str, class: &str, loaded: &[DriverName], key: &str) -> Result<String> {
    loaded
        .iter()
        .find(|d| d.name == key)
        .or_else(|| loaded.iter().find(|d| d.answers_to(key)))
        .map(|d| d.name.clone())
        .ok_or_else(|| {
            let known = if loaded.is_empty() {
                "none".to_string()
            } else {
                loaded
                    .iter()
                    .map(|d| format!("{} ({})", d.name, d.folder))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            Error::invalid(
                field,
                format!("unknown {class} driver \"{key}\"; loaded: {known}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Rank, Requirements};

    fn host() -> Host {
        Host::new(7, "node-01", "im_kvm", "vmm_kvm", "tm_ssh")
    }

    fn payload(text: &str) -> Template {
        Template::parse(text).expect("payload")
    }

    fn drivers() -> Vec<DriverName> {
        vec![
            DriverName {
                name: "im_dummy".into(),
                folder: "dummy".into(),
            },
            DriverName {
                name: "im_kvm".into(),
                folder: "kvm".into(),
            },
        ]
    }

    #[test]
    fn states_keep_opennebulas_numbers_names_and_short_names() {
        let table: Vec<(u8, &str, &str)> = HostState::ALL
            .iter()
            .map(|s| (s.number(), s.name(), s.short()))
            .collect();
        assert_eq!(
            table,
            [
                (0, "INIT", "on"),
                (1, "MONITORING", "on"),
                (2, "MONITORED", "on"),
                (3, "ERROR", "err"),
                (4, "DISABLED", "off"),
            ]
        );
        for state in HostState::ALL {
            assert_eq!(HostState::from_number(state.number().into()), Some(state));
            assert_eq!(HostState::from_name(state.name()), Some(state));
        }
        assert_eq!(HostState::from_number(5), None);
        assert_eq!(HostState::from_name("init"), None);
    }

    #[test]
    fn host_names_are_ssh_names() {
        for good in ["localhost", "node-01", "10.0.0.1", "a_b.example.org", "1st"] {
            assert!(validate_name(good).is_ok(), "{good:?} refused");
        }
        for bad in [
            "",
            "-oProxyCommand=x",
            "a b",
            "a:b",
            "user@host",
            "a/b",
            "123",
            "ñ",
            &"a".repeat(256),
        ] {
            let err = validate_name(bad).expect_err(bad);
            assert!(
                matches!(&err, Error::Invalid { field, .. } if field == "name"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn drivers_resolve_by_name_or_folder_to_the_name() {
        let loaded = drivers();
        assert_eq!(
            resolve_driver("im_mad", "IM", &loaded, "im_kvm").expect("name"),
            "im_kvm"
        );
        assert_eq!(
            resolve_driver("im_mad", "IM", &loaded, "dummy").expect("folder"),
            "im_dummy"
        );
        let err = resolve_driver("im_mad", "IM", &loaded, "xen").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "im_mad: unknown IM driver \"xen\"; loaded: im_dummy (dummy), im_kvm (kvm)"
        );
        let err = resolve_driver("tm_mad", "TM", &[], "ssh").expect_err("none loaded");
        assert!(err.to_string().ends_with("loaded: none"), "{err}");
    }

    #[test]
    fn enable_disable_and_monitoring_follow_the_state_table() {
        let mut h = host();
        assert_eq!(h.state, HostState::Init);
        h.start_monitoring().expect("init → monitoring");
        assert_eq!(h.state, HostState::Monitoring);
        h.monitored(&payload("TOTALCPU = 800"), 100);
        assert_eq!((h.state, h.last_mon_time), (HostState::Monitored, 100));
        h.start_monitoring().expect("monitored → monitoring");
        h.failed("Could not monitor host node-01.", 130);
        assert_eq!((h.state, h.last_mon_time), (HostState::Error, 130));
        assert_eq!(h.error.as_deref(), Some("Could not monitor host node-01."));
        // ERROR hosts are retried on the same schedule.
        h.start_monitoring().expect("error → monitoring");
        h.monitored(&payload("TOTALCPU = 800"), 160);
        assert_eq!((h.state, h.error.as_deref()), (HostState::Monitored, None));

        h.disable();
        assert_eq!(h.state, HostState::Disabled);
        let err = h.start_monitoring().expect_err("disabled is not monitored");
        assert!(
            matches!(
                err,
                Error::InvalidState {
                    kind: Kind::Host,
                    ..
                }
            ),
            "{err:?}"
        );
        // Replies that arrive after a disable keep the host disabled.
        h.monitored(&payload("TOTALCPU = 400"), 190);
        assert_eq!(h.state, HostState::Disabled);
        assert_eq!(h.share.max_cpu, 400);
        h.failed("gone", 220);
        assert_eq!(h.state, HostState::Disabled);
        h.enable();
        assert_eq!(h.state, HostState::Init);

        h.start_monitoring().expect("monitoring");
        h.lose_monitoring();
        assert_eq!(h.state, HostState::Init);
        h.disable();
        h.lose_monitoring();
        assert_eq!(h.state, HostState::Disabled, "only MONITORING falls back");
    }

    #[test]
    fn monitoring_merges_the_payload_and_fills_the_share() {
        let mut h = host();
        h.monitored(
            &payload(
                "HYPERVISOR = kvm\nTOTALCPU = 800\nCPUSPEED = 2400\nTOTALMEMORY = 8388608\n\
                 FREEMEMORY = 4194304\nUSEDMEMORY = 4194304\nFREECPU = 796.5\nUSEDCPU = 3.5\n\
                 NETRX = 10\nNETTX = 20\nCUSTOM = a\nVM = [ ID = 1 ]\nVM = [ ID = 2 ]",
            ),
            1,
        );
        let share = h.share;
        assert_eq!(
            (
                share.max_cpu,
                share.max_mem,
                share.free_cpu,
                share.free_mem,
                share.used_cpu,
                share.used_mem
            ),
            (800, 8_388_608, 796, 4_194_304, 3, 4_194_304),
            "read as floats and truncated"
        );
        // Same-name attributes are replaced (all of them), others kept.
        h.monitored(&payload("FREECPU = 100\nVM = [ ID = 3 ]\nOTHER = b"), 2);
        assert_eq!(h.template.get("CUSTOM"), Some("a"));
        assert_eq!(h.template.get("FREECPU"), Some("100"));
        assert_eq!(h.template.get("OTHER"), Some("b"));
        let vms: Vec<_> = h.template.vectors("VM").map(|v| v.get("ID")).collect();
        assert_eq!(vms, [Some("3")]);
        assert_eq!((h.share.free_cpu, h.share.max_cpu), (100, 800));
        // A figure that is not a number reads as 0, as 3.x prints for
        // what it could not read.
        h.monitored(&payload("TOTALCPU = unknown"), 3);
        assert_eq!(h.share.max_cpu, 0);
    }

    #[test]
    fn capacity_fits_on_allocated_counters_with_hypervisor_memory() {
        let share = HostShare {
            max_cpu: 400,
            max_mem: 1_000_000,
            cpu_usage: 100,
            mem_usage: 400_000,
            free_cpu: 0,
            free_mem: 0,
            ..HostShare::default()
        };
        // 10% kept: 900000 allocatable, 500000 left; 300 CPU left.
        assert!(share.fits(300, 500_000, 0.1));
        assert!(!share.fits(301, 0, 0.1), "CPU over");
        assert!(!share.fits(0, 500_001, 0.1), "memory over");
        assert!(share.fits(0, 600_000, 0.0), "no hypervisor share");
        assert!(!share.fits(0, 1, 1.0), "all memory kept for the hypervisor");
        let overcommitted = HostShare {
            cpu_usage: 500,
            mem_usage: 2_000_000,
            ..share
        };
        assert!(!overcommitted.fits(1, 0, 0.1) && !overcommitted.fits(0, 1, 0.1));
        assert!(
            overcommitted.fits(0, 0, 0.1),
            "nothing asked, nothing refused"
        );
        assert!(
            share.fits(0, 0, 0.1),
            "a VM reserving nothing fits anywhere"
        );
        assert!(
            HostShare::default().fits(0, 0, 0.1),
            "even on a host never monitored"
        );
        // The monitored free figures do not matter (3.8 rule).
        assert_eq!(share.avail_cpu(), 300);
    }

    #[test]
    fn share_changes_move_the_counters_and_stop_at_zero() {
        let mut share = HostShare::default();
        let plus = ShareChange {
            host_id: 1,
            cpu: 50,
            mem_kb: 524_288,
            running_vms: 1,
        };
        share.apply(&plus);
        share.apply(&plus);
        assert_eq!(
            (share.cpu_usage, share.mem_usage, share.running_vms),
            (100, 1_048_576, 2)
        );
        let minus = ShareChange {
            host_id: 1,
            cpu: -50,
            mem_kb: -524_288,
            running_vms: -1,
        };
        for _ in 0..3 {
            share.apply(&minus);
        }
        assert_eq!(
            (share.cpu_usage, share.mem_usage, share.running_vms),
            (0, 0, 0)
        );
    }

    #[test]
    fn lookup_tries_template_then_share_then_host_fields() {
        let mut h = host();
        h.monitored(
            &payload("TOTALCPU = 800\nHYPERVISOR = kvm\nNAME = from-template\nDISK = [ SIZE = 1 ]"),
            5,
        );
        h.share.running_vms = 3;
        assert_eq!(h.lookup("HYPERVISOR").as_deref(), Some("kvm"));
        // The template wins over the host's own field.
        assert_eq!(h.lookup("NAME").as_deref(), Some("from-template"));
        assert_eq!(h.lookup("MAX_CPU").as_deref(), Some("800"));
        assert_eq!(h.lookup("RUNNING_VMS").as_deref(), Some("3"));
        assert_eq!(h.lookup("CPU_USAGE").as_deref(), Some("0"));
        assert_eq!(h.lookup("ID").as_deref(), Some("7"));
        assert_eq!(h.lookup("STATE").as_deref(), Some("2"));
        assert_eq!(h.lookup("IM_MAD").as_deref(), Some("im_kvm"));
        assert_eq!(h.lookup("VM_MAD").as_deref(), Some("vmm_kvm"));
        assert_eq!(h.lookup("TM_MAD").as_deref(), Some("tm_ssh"));
        assert_eq!(h.lookup("LAST_MON_TIME").as_deref(), Some("5"));
        // Exactly as written, and vectors are not values.
        assert_eq!(h.lookup("hypervisor"), None);
        assert_eq!(h.lookup("DISK"), None);
        assert_eq!(h.lookup("NOPE"), None);
        assert_eq!(h.lookup("MAX-CPU"), None);

        // And a share name in the template shadows the share.
        h.template.set("RUNNING_VMS", "99");
        assert_eq!(h.lookup("RUNNING_VMS").as_deref(), Some("99"));
    }

    #[test]
    fn expressions_evaluate_on_a_host() {
        let mut h = host();
        h.monitored(
            &payload("HYPERVISOR = kvm\nTOTALCPU = 800\nFREECPU = 700"),
            1,
        );
        h.share.running_vms = 2;
        let vars = |n: &str| h.lookup(n);
        let req = |text: &str| Requirements::parse(text).expect(text).eval(&vars);
        assert!(req("HYPERVISOR = \"kvm\" & MAX_CPU > 400"));
        assert!(req("NAME = \"node-*\" & ID = 7"));
        assert!(!req("TM_MAD = \"tm_shared\""));
        let rank = Rank::parse("FREE_CPU - RUNNING_VMS * 10").expect("rank");
        assert_eq!(rank.eval(&vars), 680);
    }

    #[test]
    fn schedulable_means_monitored_successfully() {
        let mut h = host();
        assert!(!h.is_schedulable(), "INIT");
        h.start_monitoring().expect("monitoring");
        assert!(!h.is_schedulable(), "never monitored yet");
        h.monitored(&payload("TOTALCPU = 100"), 1);
        assert!(h.is_schedulable());
        h.start_monitoring().expect("monitoring");
        assert!(h.is_schedulable(), "re-monitoring a good host");
        h.failed("x", 2);
        assert!(!h.is_schedulable());
        h.start_monitoring().expect("monitoring");
        assert!(!h.is_schedulable(), "re-monitoring a failed host");
        h.monitored(&payload("TOTALCPU = 100"), 3);
        h.disable();
        assert!(!h.is_schedulable());
    }
}
