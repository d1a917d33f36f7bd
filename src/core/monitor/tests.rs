//! The monitor with a fake host pool (the real [`Host`] rules on a map)
//! and fake drivers. The real pool with the real dummy scripts is tested
//! in `cli::serve`, where both may be wired.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

use super::*;
use crate::core::ports::Drivers;

/// The host pool's monitoring calls over a map, with the real state rules.
#[derive(Default)]
struct Book {
    hosts: Mutex<BTreeMap<u64, Host>>,
}

impl Book {
    fn with(hosts: Vec<Host>) -> Arc<Self> {
        Arc::new(Book {
            hosts: Mutex::new(hosts.into_iter().map(|h| (h.id, h)).collect()),
        })
    }

    fn get(&self, id: u64) -> Host {
        self.hosts.lock().expect("lock")[&id].clone()
    }

    fn add(&self, host: Host) {
        self.hosts.lock().expect("lock").insert(host.id, host);
    }

    fn update(&self, id: u64, change: impl FnOnce(&mut Host) -> Result<()>) -> Result<Host> {
        let mut hosts = self.hosts.lock().expect("lock");
        let host = hosts
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(crate::core::Kind::Host, id))?;
        change(host)?;
        Ok(host.clone())
    }
}

impl HostBook for Book {
    fn snapshot(&self) -> Result<Vec<Host>> {
        Ok(self.hosts.lock().expect("lock").values().cloned().collect())
    }

    fn set_monitoring(&self, id: u64) -> Result<Host> {
        self.update(id, Host::start_monitoring)
    }

    fn reset_monitoring(&self, id: u64) -> Result<Host> {
        self.update(id, |h| {
            h.lose_monitoring();
            Ok(())
        })
    }

    fn record_monitoring(&self, id: u64, payload: &Template, time: u64) -> Result<Host> {
        self.update(id, |h| {
            h.monitored(payload, time);
            Ok(())
        })
    }

    fn record_failure(&self, id: u64, message: &str, time: u64) -> Result<Host> {
        self.update(id, |h| {
            h.failed(message, time);
            Ok(())
        })
    }
}

/// Answers like the dummy probe; hosts named `bad*` fail while `failing`
/// is set; hosts named `slow*` wait until the gate opens.
#[derive(Default)]
struct Probes {
    failing: Mutex<bool>,
    gate: Mutex<bool>,
    opened: Condvar,
    calls: Mutex<Vec<MonitorRequest>>,
}

impl Probes {
    fn open_gate(&self) {
        *self.gate.lock().expect("lock") = true;
        self.opened.notify_all();
    }
}

impl Drivers for Probes {
    fn monitor(&self, request: &MonitorRequest) -> Result<Template> {
        self.calls.lock().expect("lock").push(request.clone());
        if request.host.starts_with("slow") {
            let mut open = self.gate.lock().expect("lock");
            while !*open {
                open = self.opened.wait(open).expect("wait");
            }
        }
        if request.host.starts_with("bad") && *self.failing.lock().expect("lock") {
            return Err(Error::Driver {
                action: "monitor".into(),
                host: request.host.clone(),
                message: format!("Could not monitor host {}.", request.host),
            });
        }
        Ok(Template::parse_monitoring(&format!(
            "HYPERVISOR=dummy,HOSTNAME=\"{}\",TOTALCPU=800,CPUSPEED=2200,TOTALMEMORY=16777216,\
             USEDMEMORY=0,FREEMEMORY=16777216,USEDCPU=0,FREECPU=800,RACK=r7",
            request.host
        ))
        .expect("probe output"))
    }
}

fn host(id: u64, name: &str) -> Host {
    Host::new(id, name, "im_dummy", "vmm_dummy", "tm_dummy")
}

fn config(interval: u64) -> MonitorConfig {
    MonitorConfig {
        timer: Duration::from_secs(3600),
        interval: Duration::from_secs(interval),
        per_interval: 15,
        workers: 4,
        stale_after: MonitorConfig::STALE_AFTER,
    }
}

fn monitor(book: &Arc<Book>, probes: &Arc<Probes>, config: MonitorConfig) -> Monitor {
    Monitor::new(book.clone(), probes.clone(), config, None).expect("monitor")
}

/// Polls until `done` holds, with a generous deadline (never a timing
/// assertion).
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

fn in_state(host: Host, state: HostState, last_mon_time: u64) -> Host {
    Host {
        state,
        last_mon_time,
        ..host
    }
}

#[test]
fn due_hosts_are_new_or_old_enough_oldest_first_and_limited() {
    let hosts = vec![
        in_state(host(0, "new"), HostState::Init, 0),
        in_state(host(1, "fresh"), HostState::Monitored, 950),
        in_state(host(2, "old"), HostState::Monitored, 900),
        in_state(host(3, "failed-old"), HostState::Error, 890),
        in_state(host(4, "failed-fresh"), HostState::Error, 990),
        in_state(host(5, "off"), HostState::Disabled, 0),
        in_state(host(6, "busy"), HostState::Monitoring, 0),
        // Enabled again after a recent monitoring: INIT is due at once.
        in_state(host(7, "enabled"), HostState::Init, 995),
        in_state(host(8, "older"), HostState::Monitored, 100),
    ];
    let cfg = config(100);
    let none = |_: u64| false;
    assert_eq!(due(&hosts, &none, 1000, &cfg), [0, 8, 3, 2, 7]);
    // Exactly the interval is due (`now − LAST_MON_TIME ≥ interval`).
    assert_eq!(due(&hosts, &none, 1050, &cfg), [0, 8, 3, 2, 1, 7]);
    // Hosts this monitor is already probing are skipped.
    assert_eq!(due(&hosts, &|id| id == 8 || id == 0, 1000, &cfg), [3, 2, 7]);
    let two = MonitorConfig {
        per_interval: 2,
        ..cfg.clone()
    };
    assert_eq!(due(&hosts, &none, 1000, &two), [0, 8]);
    // A clock behind the last monitoring does not underflow.
    assert_eq!(due(&hosts, &none, 10, &cfg), [0, 7]);
}

#[test]
fn settings_give_the_knobs() {
    let settings = Settings {
        manager_timer: Duration::from_secs(7),
        host_monitoring_interval: Duration::from_secs(30),
        host_per_interval: 40,
        ..Settings::default()
    };
    let cfg = MonitorConfig::from_settings(&settings);
    assert_eq!(
        (
            cfg.timer.as_secs(),
            cfg.interval.as_secs(),
            cfg.per_interval
        ),
        (7, 30, 40)
    );
    assert_eq!(cfg.workers, MonitorConfig::MAX_WORKERS);
    let one = Settings {
        host_per_interval: 0,
        ..Settings::default()
    };
    assert_eq!(MonitorConfig::from_settings(&one).workers, 1);
}

#[test]
fn a_probe_that_answers_makes_the_host_monitored_with_its_values() {
    let book = Book::with(vec![host(0, "node0")]);
    let probes = Arc::new(Probes::default());
    let m = monitor(&book, &probes, config(60));
    assert_eq!(m.tick(unix_now()).expect("tick"), [0]);
    wait_until("the answer", || m.in_flight() == 0);
    let h = book.get(0);
    assert_eq!(h.state, HostState::Monitored);
    assert!(h.last_mon_time > 0);
    assert_eq!((h.share.max_cpu, h.share.max_mem), (800, 16_777_216));
    assert_eq!(h.lookup("TOTALCPU").as_deref(), Some("800"));
    assert_eq!(h.lookup("HOSTNAME").as_deref(), Some("node0"));
    // A key no stock probe has is usable in expressions too.
    assert_eq!(h.lookup("RACK").as_deref(), Some("r7"));
    let calls = probes.calls.lock().expect("lock").clone();
    assert_eq!(
        (
            calls[0].host_id,
            calls[0].host.as_str(),
            calls[0].driver.as_str()
        ),
        (0, "node0", "im_dummy")
    );
    // Monitored just now: not due again before the interval.
    assert_eq!(m.tick(unix_now()).expect("tick"), Vec::<u64>::new());
}

#[test]
fn a_failing_probe_puts_the_host_in_error_until_it_answers_again() {
    let book = Book::with(vec![host(0, "bad0")]);
    let probes = Arc::new(Probes::default());
    *probes.failing.lock().expect("lock") = true;
    // Interval 0: every tick monitors again, as a long wait would.
    let m = monitor(&book, &probes, config(0));
    m.tick(unix_now()).expect("tick");
    wait_until("the failure", || m.in_flight() == 0);
    let h = book.get(0);
    assert_eq!(h.state, HostState::Error);
    assert_eq!(h.error.as_deref(), Some("Could not monitor host bad0."));
    assert!(!h.is_schedulable());

    *probes.failing.lock().expect("lock") = false;
    assert_eq!(m.tick(unix_now()).expect("tick"), [0], "ERROR is retried");
    wait_until("the recovery", || m.in_flight() == 0);
    let h = book.get(0);
    assert_eq!((h.state, h.error.as_deref()), (HostState::Monitored, None));
    assert!(h.is_schedulable());
}

#[test]
fn other_errors_are_recorded_with_their_text() {
    struct Nothing;
    impl Drivers for Nothing {}
    let book = Book::with(vec![host(0, "node0")]);
    let m = Monitor::new(book.clone(), Arc::new(Nothing), config(60), None).expect("monitor");
    m.tick(unix_now()).expect("tick");
    wait_until("the failure", || m.in_flight() == 0);
    let h = book.get(0);
    assert_eq!(h.state, HostState::Error);
    assert_eq!(h.error.as_deref(), Some("IM monitor is not supported"));
}

#[test]
fn a_slow_host_does_not_hold_the_others() {
    let book = Book::with(vec![host(0, "slow0"), host(1, "node1"), host(2, "node2")]);
    let probes = Arc::new(Probes::default());
    let m = monitor(&book, &probes, config(0));
    assert_eq!(m.tick(unix_now()).expect("tick"), [0, 1, 2]);
    wait_until("the fast hosts", || {
        book.get(1).state == HostState::Monitored && book.get(2).state == HostState::Monitored
    });
    assert_eq!(book.get(0).state, HostState::Monitoring);
    // Still probing the slow one: the next tick does not send it again.
    assert_eq!(m.tick(unix_now()).expect("tick"), [1, 2]);
    probes.open_gate();
    wait_until("the slow host", || m.in_flight() == 0);
    assert_eq!(book.get(0).state, HostState::Monitored);
    let slow_calls = probes
        .calls
        .lock()
        .expect("lock")
        .iter()
        .filter(|c| c.host == "slow0")
        .count();
    assert_eq!(slow_calls, 1);
}

#[test]
fn an_unanswered_monitoring_goes_back_to_init_and_the_late_answer_counts() {
    let book = Book::with(vec![host(0, "slow0")]);
    let probes = Arc::new(Probes::default());
    let m = monitor(
        &book,
        &probes,
        MonitorConfig {
            stale_after: Duration::ZERO,
            ..config(60)
        },
    );
    m.tick(unix_now()).expect("tick");
    assert_eq!(book.get(0).state, HostState::Monitoring);
    // Overdue at once: back to INIT, and not sent a second time.
    assert_eq!(m.tick(unix_now()).expect("tick"), Vec::<u64>::new());
    assert_eq!(book.get(0).state, HostState::Init);
    probes.open_gate();
    wait_until("the late answer", || m.in_flight() == 0);
    assert_eq!(book.get(0).state, HostState::Monitored);
}

#[test]
fn a_monitoring_left_by_someone_else_is_reset() {
    // What a restart leaves (the pool resets it on load too).
    let book = Book::with(vec![in_state(host(0, "node0"), HostState::Monitoring, 5)]);
    let probes = Arc::new(Probes::default());
    let m = monitor(&book, &probes, config(60));
    // Reset to INIT, which is due at once in the same tick.
    assert_eq!(m.tick(unix_now()).expect("tick"), [0]);
    wait_until("the answer", || m.in_flight() == 0);
    assert_eq!(book.get(0).state, HostState::Monitored);
}

#[test]
fn disabled_and_deleted_hosts_are_left_alone() {
    let book = Book::with(vec![in_state(host(0, "off"), HostState::Disabled, 0)]);
    let probes = Arc::new(Probes::default());
    let m = monitor(&book, &probes, config(0));
    assert_eq!(m.tick(unix_now()).expect("tick"), Vec::<u64>::new());
    assert!(probes.calls.lock().expect("lock").is_empty());
    // Deleted while its probe runs: the answer is dropped quietly.
    book.add(host(1, "slow1"));
    assert_eq!(m.tick(unix_now()).expect("tick"), [1]);
    book.hosts.lock().expect("lock").remove(&1);
    probes.open_gate();
    wait_until("the answer", || m.in_flight() == 0);
    assert_eq!(book.get(0).state, HostState::Disabled);
}

#[test]
fn the_loop_monitors_at_once_wakes_when_rung_and_rings_the_scheduler() {
    let book = Book::with(vec![host(0, "node0")]);
    let probes = Arc::new(Probes::default());
    let scheduler = Arc::new(Signal::new());
    let m = Monitor::new(
        book.clone(),
        probes.clone(),
        config(3600),
        Some(scheduler.clone()),
    )
    .expect("monitor");
    let bell = Arc::new(Signal::new());
    let loop_bell = bell.clone();
    // MANAGER_TIMER is an hour: only the first tick and the bell can
    // monitor anything before the deadline.
    let handle = thread::spawn(move || m.run(&loop_bell));
    wait_until("the first tick", || {
        book.get(0).state == HostState::Monitored
    });
    assert_eq!(
        scheduler.wait(Duration::from_secs(30)),
        Wake::Rung,
        "a host became usable: the scheduler is woken"
    );

    book.add(host(1, "node1"));
    bell.ring();
    wait_until("the rung tick", || {
        book.get(1).state == HostState::Monitored
    });
    bell.stop();
    handle.join().expect("the loop ends");
}
