//! Host monitoring (spec/CORE.md §3.2; spec/DRIVERS.md §4): the loop that
//! runs each host's IM probes and records what they report.
//!
//! What lives here: [`Monitor`], which every `MANAGER_TIMER` tick (or at
//! once when rung: a host was created or enabled) sends up to
//! `HOST_PER_INTERVAL` due hosts to a small pool of worker threads, each
//! calling [`Drivers::monitor`] and recording the answer: success →
//! MONITORED with the probe template merged in (custom keys included, so
//! REQUIREMENTS and RANK can use them), failure → ERROR with the driver's
//! message (and back to MONITORED when a later monitoring works). A slow
//! host holds one worker, never the loop. [`due`] is the pure choice of
//! whom to monitor; [`HostBook`] is what the monitor needs of the host
//! pool, so the loop is tested here with fakes and on the real pool and
//! dummy scripts in `cli::serve`.
//!
//! Which hosts are due, in cloudgate's reading of §3.2: not DISABLED, not
//! already being monitored, and either INIT (new, enabled again, or reset
//! after a restart: at once, so a new host is usable within seconds) or
//! last monitored at least `HOST_MONITORING_INTERVAL` ago (MONITORED and
//! ERROR alike). The oldest first. A host MONITORING for 600 s without an
//! answer goes back to INIT, as in OpenNebula; its worker's late answer is
//! still recorded.
//!
//! May use: `crate::core` and `crate::template`; the drivers only through
//! [`Drivers`]. Threads are `std::thread`.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::host::{Host, HostState};
use super::ports::{Drivers, MonitorRequest, ScriptEnv};
use super::settings::Settings;
use super::signal::{Signal, Wake};
use super::{Core, Error, Result};
use crate::template::Template;

/// What the monitor needs of the host pool (implemented by [`Core`] over
/// its [`HostPool`](super::host::HostPool); tests use fakes).
pub trait HostBook: Send + Sync {
    /// Every host, in id order.
    fn snapshot(&self) -> Result<Vec<Host>>;
    /// `MONITOR` goes out: MONITORING (refused for a disabled host).
    fn set_monitoring(&self, id: u64) -> Result<Host>;
    /// The answer never came: MONITORING → INIT.
    fn reset_monitoring(&self, id: u64) -> Result<Host>;
    /// `MONITOR SUCCESS` at `time` (Unix seconds).
    fn record_monitoring(&self, id: u64, payload: &Template, time: u64) -> Result<Host>;
    /// `MONITOR FAILURE` at `time`.
    fn record_failure(&self, id: u64, message: &str, time: u64) -> Result<Host>;
}

impl HostBook for Core {
    fn snapshot(&self) -> Result<Vec<Host>> {
        self.hosts().snapshot()
    }

    fn set_monitoring(&self, id: u64) -> Result<Host> {
        self.hosts().set_monitoring(id)
    }

    fn reset_monitoring(&self, id: u64) -> Result<Host> {
        self.hosts().reset_monitoring(id)
    }

    fn record_monitoring(&self, id: u64, payload: &Template, time: u64) -> Result<Host> {
        self.hosts().record_monitoring(id, payload, time)
    }

    fn record_failure(&self, id: u64, message: &str, time: u64) -> Result<Host> {
        self.hosts().record_failure(id, message, time)
    }
}

/// The monitor's knobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorConfig {
    /// `MANAGER_TIMER`: time between two ticks.
    pub timer: Duration,
    /// `HOST_MONITORING_INTERVAL`: time between two monitorings of a host.
    pub interval: Duration,
    /// `HOST_PER_INTERVAL`: hosts sent to monitoring per tick.
    pub per_interval: usize,
    /// Worker threads running probes at once.
    pub workers: usize,
    /// How long a monitoring may stay unanswered before the host goes back
    /// to INIT (600 s in OpenNebula).
    pub stale_after: Duration,
}

impl MonitorConfig {
    /// OpenNebula's wait for an answer that never came.
    pub const STALE_AFTER: Duration = Duration::from_secs(600);
    /// At most this many workers: the IM driver's own `-t` (15 by default)
    /// limits parallel probes anyway.
    pub const MAX_WORKERS: usize = 15;

    /// The knobs from the core's settings: one worker per host of a tick,
    /// up to [`MAX_WORKERS`](Self::MAX_WORKERS).
    pub fn from_settings(settings: &Settings) -> Self {
        let per_interval = usize::try_from(settings.host_per_interval).unwrap_or(usize::MAX);
        MonitorConfig {
            timer: settings.manager_timer,
            interval: settings.host_monitoring_interval,
            per_interval,
            workers: per_interval.clamp(1, Self::MAX_WORKERS),
            stale_after: Self::STALE_AFTER,
        }
    }
}

/// The hosts to monitor now, oldest monitoring first, at most
/// `per_interval`: see the module header. `busy` tells which hosts this
/// monitor is already monitoring. Pure.
pub fn due(
    hosts: &[Host],
    busy: &dyn Fn(u64) -> bool,
    now: u64,
    config: &MonitorConfig,
) -> Vec<u64> {
    let interval = config.interval.as_secs();
    let mut due: Vec<&Host> = hosts
        .iter()
        .filter(|h| !busy(h.id))
        .filter(|h| match h.state {
            HostState::Init => true,
            HostState::Monitored | HostState::Error => {
                now.saturating_sub(h.last_mon_time) >= interval
            }
            HostState::Monitoring | HostState::Disabled => false,
        })
        .collect();
    due.sort_by_key(|h| (h.last_mon_time, h.id));
    due.into_iter()
        .take(config.per_interval)
        .map(|h| h.id)
        .collect()
}

/// The host monitor: a tick function and the workers it feeds. Dropping it
/// lets the workers end once their current probe is done.
pub struct Monitor {
    shared: Arc<Shared>,
    jobs: Sender<Host>,
    config: MonitorConfig,
}

/// What the workers share with the loop.
struct Shared {
    book: Arc<dyn HostBook>,
    drivers: Arc<dyn Drivers>,
    /// Hosts being monitored, with when their probe was sent.
    in_flight: Mutex<HashMap<u64, Instant>>,
    /// Rung when a host becomes usable for VMs (or its capacity changes),
    /// so that pending VMs need not wait for the next cycle.
    scheduler: Option<Arc<Signal>>,
}

impl Monitor {
    /// A monitor over `book`, probing through `drivers`, with its workers
    /// started. `scheduler` is rung when a host becomes usable.
    pub fn new(
        book: Arc<dyn HostBook>,
        drivers: Arc<dyn Drivers>,
        config: MonitorConfig,
        scheduler: Option<Arc<Signal>>,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            book,
            drivers,
            in_flight: Mutex::new(HashMap::new()),
            scheduler,
        });
        let (jobs, queue) = mpsc::channel::<Host>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..config.workers.max(1) {
            let shared = shared.clone();
            let queue = queue.clone();
            thread::Builder::new()
                .name(format!("monitor-{n}"))
                .spawn(move || work(&shared, &queue))
                .map_err(|e| Error::Internal(format!("cannot start a monitor worker: {e}")))?;
        }
        Ok(Monitor {
            shared,
            jobs,
            config,
        })
    }

    /// One tick at `now` (Unix seconds): resets hosts whose answer is
    /// overdue, then sends the [`due`] hosts to the workers (MONITORING
    /// first). Returns their ids.
    pub fn tick(&self, now: u64) -> Result<Vec<u64>> {
        let mut hosts = self.shared.book.snapshot()?;
        let stale: Vec<usize> = {
            let in_flight = self.shared.in_flight();
            (0..hosts.len())
                .filter(|&i| hosts[i].state == HostState::Monitoring)
                .filter(|&i| match in_flight.get(&hosts[i].id) {
                    // Not ours: left by a worker that recorded its answer
                    // after the snapshot (then this is a no-op), or lost.
                    None => true,
                    Some(sent) => sent.elapsed() >= self.config.stale_after,
                })
                .collect()
        };
        for i in stale {
            let id = hosts[i].id;
            match self.shared.book.reset_monitoring(id) {
                Ok(host) => {
                    if host.state == HostState::Init {
                        tracing::warn!("host {}: no monitoring answer, back to INIT", host.name);
                    }
                    hosts[i] = host;
                }
                Err(Error::NotFound { .. }) => {}
                Err(e) => tracing::error!("host {id}: cannot reset its monitoring: {e}"),
            }
        }
        let chosen = {
            let in_flight = self.shared.in_flight();
            due(&hosts, &|id| in_flight.contains_key(&id), now, &self.config)
        };
        let mut sent = Vec::with_capacity(chosen.len());
        for id in chosen {
            self.shared.in_flight().insert(id, Instant::now());
            let host = match self.shared.book.set_monitoring(id) {
                Ok(host) => host,
                Err(e) => {
                    // Disabled or deleted since the snapshot: nothing to do.
                    tracing::debug!("host {id}: not monitored: {e}");
                    self.shared.in_flight().remove(&id);
                    continue;
                }
            };
            if self.jobs.send(host).is_err() {
                // Every worker is gone (they only end when this monitor is
                // dropped, so this is a bug): do not leave it MONITORING.
                self.shared.in_flight().remove(&id);
                let _ = self.shared.book.reset_monitoring(id);
                return Err(Error::Internal("the monitor workers are gone".into()));
            }
            sent.push(id);
        }
        Ok(sent)
    }

    /// How many hosts are being monitored now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight().len()
    }

    /// Ticks at once, then every `MANAGER_TIMER` or whenever `bell` rings,
    /// until `bell` is stopped.
    pub fn run(&self, bell: &Signal) {
        loop {
            if bell.is_stopped() {
                return;
            }
            if let Err(e) = self.tick(unix_now()) {
                tracing::error!("monitor: tick failed: {e}");
            }
            if bell.wait(self.config.timer) == Wake::Stopped {
                return;
            }
        }
    }
}

impl Shared {
    fn in_flight(&self) -> MutexGuard<'_, HashMap<u64, Instant>> {
        // A map of ids and instants cannot be left half-updated.
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Probes one host (already MONITORING) and records the answer.
    fn monitor(&self, host: &Host) {
        let request = MonitorRequest {
            host_id: host.id,
            host: host.name.clone(),
            driver: host.im_mad.clone(),
            // The host's DUMMY_* attributes steer the dummy probe in tests.
            env: ScriptEnv::from_templates(None, Some(&host.template)),
        };
        let answer = self.drivers.monitor(&request);
        let now = unix_now();
        let recorded = match answer {
            Ok(payload) => self.book.record_monitoring(host.id, &payload, now),
            Err(e) => {
                let message = match e {
                    Error::Driver { message, .. } | Error::Unreachable { message, .. } => message,
                    other => other.to_string(),
                };
                tracing::warn!("host {}: monitoring failed: {message}", host.name);
                self.book.record_failure(host.id, &message, now)
            }
        };
        match recorded {
            Ok(after) => {
                let usable_now = after.is_schedulable()
                    && (!host.is_schedulable()
                        || after.share.max_cpu != host.share.max_cpu
                        || after.share.max_mem != host.share.max_mem);
                if usable_now {
                    tracing::info!("host {} is {}", after.name, after.state);
                    if let Some(bell) = &self.scheduler {
                        bell.ring();
                    }
                }
            }
            Err(Error::NotFound { .. }) => {
                tracing::debug!("host {}: deleted while being monitored", host.name);
            }
            Err(e) => tracing::error!("host {}: cannot record its monitoring: {e}", host.name),
        }
    }
}

/// A worker: takes hosts off the queue until the monitor is dropped.
fn work(shared: &Shared, queue: &Mutex<Receiver<Host>>) {
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(host) = next else {
            return;
        };
        shared.monitor(&host);
        // After recording: a tick that sees the host free also sees its
        // answer.
        shared.in_flight().remove(&host.id);
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
