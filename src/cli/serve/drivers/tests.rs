//! The wiring, tested for real: the remotes directory is found, and the
//! core's host monitor runs the shipped dummy probe through the
//! `ScriptDrivers` `serve` builds, on the real host pool (in-memory
//! SQLite). Failures come from the real scripts too (`DUMMY_FAIL`, a
//! driver with no probe folder).

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::core::host::HostState;
use crate::core::monitor::{unix_now, Monitor, MonitorConfig};
use crate::core::ports::MonitorRequest;
use crate::core::{Caller, Core};
use crate::store::SqliteStore;
use crate::template::Template;

fn touch_dir(path: &Path) -> PathBuf {
    fs::create_dir_all(path).expect("mkdir");
    path.to_path_buf()
}

#[test]
fn remotes_come_from_the_env_then_the_working_dir_then_beside_the_executable() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let relative = Path::new("config/remotes");
    let checkout = root.join("checkout");
    let shipped = touch_dir(&checkout.join("config/remotes"));
    let exe = checkout.join("target/debug/cloudgate");
    let elsewhere = touch_dir(&root.join("elsewhere"));

    // The environment wins, as given (relative to the working dir).
    let (dir, warning) =
        resolve_remotes(relative, Some("my/remotes".into()), &elsewhere, Some(&exe));
    assert_eq!((dir, warning), (elsewhere.join("my/remotes"), None));
    // An empty variable is unset.
    let (dir, _) = resolve_remotes(relative, Some("".into()), &checkout, Some(&exe));
    assert_eq!(dir, shipped);

    // Relative to the working directory when it is there.
    let local = touch_dir(&elsewhere.join("config/remotes"));
    let (dir, warning) = resolve_remotes(relative, None, &elsewhere, Some(&exe));
    assert_eq!((dir, warning), (local.clone(), None));
    fs::remove_dir_all(&local).expect("rm");

    // Else beside the executable or above it.
    let (dir, warning) = resolve_remotes(relative, None, &elsewhere, Some(&exe));
    assert_eq!((dir, warning), (shipped.clone(), None));

    // An absolute REMOTES_DIR is taken as it is, even if missing.
    let absolute = root.join("nowhere");
    let (dir, warning) = resolve_remotes(&absolute, None, &elsewhere, Some(&exe));
    assert_eq!((dir, warning), (absolute, None));

    // Nothing anywhere: the working-dir path, and a warning.
    let (dir, warning) = resolve_remotes(Path::new("no/such"), None, &elsewhere, Some(&exe));
    assert_eq!(dir, elsewhere.join("no/such"));
    let warning = warning.expect("warned");
    assert!(
        warning.contains(REMOTES_ENV) && warning.contains("no/such"),
        "{warning}"
    );
}

#[test]
fn driver_vectors_become_specs() {
    let (config, _) = Config::from_text(
        "IM_MAD = [ NAME = \"im_x\", EXECUTABLE = \"one_im_ssh\", ARGUMENTS = \"-r 2 -t 7 xen\" ]\n\
         VM_MAD = [ NAME = \"vmm_dummy\", ARGUMENTS = \"-t 3 -l poll=poll_local,save dummy\" ]",
        "test",
    )
    .expect("config");
    let im = driver_spec(Class::Im, &config.im_drivers[0]);
    assert_eq!(
        (
            im.name.as_str(),
            im.folder.as_str(),
            im.threads,
            im.retries,
            im.front_end
        ),
        ("im_x", "xen", Some(7), 2, false)
    );
    let vmm = driver_spec(Class::Vmm, &config.vmm_drivers[0]);
    assert!(vmm.front_end, "dummy hosts are not machines");
    assert_eq!(
        vmm.local_actions,
        [
            LocalAction {
                action: "poll".into(),
                script: Some("poll_local".into())
            },
            LocalAction {
                action: "save".into(),
                script: None
            }
        ]
    );
}

/// A core on an in-memory store with `serve`'s settings and drivers.
fn core(config: &Config) -> Arc<Core> {
    let store = SqliteStore::open_in_memory().expect("store");
    let core = Core::open(
        Arc::new(store),
        super::super::core_settings(config),
        build_drivers(config),
    )
    .expect("core");
    Arc::new(core)
}

fn config(data: &Path) -> Config {
    Config {
        data_dir: data.join("var"),
        ..Config::default()
    }
}

fn admin() -> Caller {
    Caller {
        uid: 0,
        name: "oneadmin".into(),
    }
}

fn every_tick() -> MonitorConfig {
    MonitorConfig {
        timer: Duration::from_secs(3600),
        interval: Duration::ZERO,
        per_interval: 15,
        workers: 2,
        stale_after: MonitorConfig::STALE_AFTER,
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn host_state(core: &Core, id: u64) -> HostState {
    core.hosts().get(id).expect("read").expect("host").state
}

#[test]
fn the_dummy_probe_makes_localhost_monitored() {
    let tmp = tempfile::tempdir().expect("tmp");
    let core = core(&config(tmp.path()));
    let host = core
        .hosts()
        .ensure_first_host("localhost", "dummy", "dummy", "dummy")
        .expect("create")
        .expect("first host");
    let monitor =
        Monitor::new(core.clone(), core.drivers().clone(), every_tick(), None).expect("monitor");
    assert_eq!(monitor.tick(unix_now()).expect("tick"), [host.id]);
    wait_until("the probe", || monitor.in_flight() == 0);

    let host = core.hosts().get(host.id).expect("read").expect("host");
    assert_eq!(host.state, HostState::Monitored, "{:?}", host.error);
    assert!(host.last_mon_time > 0);
    assert!(host.is_schedulable());
    for (name, value) in [
        ("HYPERVISOR", "dummy"),
        ("HOSTNAME", "localhost"),
        ("TOTALCPU", "800"),
        ("TOTALMEMORY", "16777216"),
        ("FREECPU", "800"),
        ("CPUSPEED", "2200"),
    ] {
        assert_eq!(host.lookup(name).as_deref(), Some(value), "{name}");
    }
    assert_eq!((host.share.max_cpu, host.share.max_mem), (800, 16_777_216));
}

/// The real drivers, with `DUMMY_FAIL = monitor` added while `fail` is set
/// (as a `DUMMY_FAIL` attribute on the host would).
struct Flaky {
    inner: Arc<dyn Drivers>,
    fail: AtomicBool,
}

impl Drivers for Flaky {
    fn monitor(&self, request: &MonitorRequest) -> crate::core::Result<Template> {
        let mut request = request.clone();
        if self.fail.load(Ordering::SeqCst) {
            request.env.set("DUMMY_FAIL", "monitor");
        }
        self.inner.monitor(&request)
    }
}

#[test]
fn a_failing_probe_sets_error_with_its_message_and_recovers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let core = core(&config(tmp.path()));
    let host = core
        .hosts()
        .create(&admin(), "flaky", "dummy", "dummy", "dummy")
        .expect("create");
    let drivers = Arc::new(Flaky {
        inner: core.drivers().clone(),
        fail: AtomicBool::new(true),
    });
    let monitor = Monitor::new(core.clone(), drivers.clone(), every_tick(), None).expect("monitor");

    monitor.tick(unix_now()).expect("tick");
    wait_until("the failure", || monitor.in_flight() == 0);
    let failed = core.hosts().get(host.id).expect("read").expect("host");
    assert_eq!(failed.state, HostState::Error);
    assert_eq!(
        failed.error.as_deref(),
        Some("Error executing dummy.sh: dummy: monitor failed as requested by DUMMY_FAIL")
    );

    drivers.fail.store(false, Ordering::SeqCst);
    monitor.tick(unix_now()).expect("tick");
    wait_until("the recovery", || monitor.in_flight() == 0);
    let back = core.hosts().get(host.id).expect("read").expect("host");
    assert_eq!(
        (back.state, back.error.as_deref()),
        (HostState::Monitored, None)
    );
    assert_eq!(back.lookup("TOTALCPU").as_deref(), Some("800"));
}

#[test]
fn a_driver_without_probes_puts_its_hosts_in_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A driver whose folder surely does not exist (im_kvm's may, one day);
    // `-l monitor` keeps its probes on this machine (other drivers than
    // dummy reach their hosts over ssh, and node1 is no machine).
    let (with_ghost, _) = Config::from_text(
        "IM_MAD = [ NAME = \"im_ghost\", ARGUMENTS = \"-r 0 -l monitor ghost\" ]\n\
         IM_MAD = [ NAME = \"im_dummy\", ARGUMENTS = \"dummy\" ]",
        "test",
    )
    .expect("config");
    let core_ghost = core(&Config {
        data_dir: tmp.path().join("var"),
        ..with_ghost
    });
    let host = core_ghost
        .hosts()
        .create(&admin(), "node1", "ghost", "dummy", "dummy")
        .expect("create");
    let monitor = Monitor::new(
        core_ghost.clone(),
        core_ghost.drivers().clone(),
        every_tick(),
        None,
    )
    .expect("monitor");
    monitor.tick(unix_now()).expect("tick");
    wait_until("the failure", || monitor.in_flight() == 0);
    let failed = core_ghost
        .hosts()
        .get(host.id)
        .expect("read")
        .expect("host");
    assert_eq!(failed.state, HostState::Error);
    assert_eq!(
        failed.error.as_deref(),
        Some("run_probes: no probe folder im/ghost")
    );
}

#[test]
fn the_started_core_monitors_a_new_host_at_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    // An hour between ticks: only the first tick and the create's wake-up
    // can monitor anything before the deadline.
    let core = core(&Config {
        manager_timer: Duration::from_secs(3600),
        ..config(tmp.path())
    });
    let first = core
        .hosts()
        .ensure_first_host("localhost", "dummy", "dummy", "dummy")
        .expect("create")
        .expect("first host");
    let background = core.start().expect("start");
    wait_until("the first tick", || {
        host_state(&core, first.id) == HostState::Monitored
    });
    let node = core
        .hosts()
        .create(&admin(), "node-2", "dummy", "dummy", "dummy")
        .expect("create");
    wait_until("the new host", || {
        host_state(&core, node.id) == HostState::Monitored
    });
    // Disabled hosts stay as they are; enabling one monitors it again.
    core.hosts().disable(&admin(), "node-2").expect("disable");
    core.hosts().enable(&admin(), "node-2").expect("enable");
    wait_until("the enabled host", || {
        host_state(&core, node.id) == HostState::Monitored
    });
    background.stop();
}
