//! The core at scale (issue 3, "Speed"): with 100,000 VMs and 10,000 hosts
//! in the pools, and 300,000 more VMs that ended long ago in the store,
//! the resident memory and the time a restart takes to reload them (store
//! opened, every pool loaded, the VM pool's start-up recount and
//! re-drive), and what showing one of the ended VMs (read from the store)
//! costs; then how many VMs per second go from `create` to RUNNING on the
//! dummy drivers, scheduler included. Prints figures; asserts nothing
//! about time (tests never do). Targets: under 1 GiB, under 10 s.
//!
//! Run: `cargo bench --bench core` (add `--profile dev` to skip the
//! optimised build). `CORE_BENCH_VMS`, `CORE_BENCH_DONE`,
//! `CORE_BENCH_HOSTS` and `CORE_BENCH_CREATES` change the sizes.

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cloudgate::cli::serve::build_drivers;
use cloudgate::config::Config;
use cloudgate::core::caller::Caller;
use cloudgate::core::host::Host;
use cloudgate::core::ports::{self, Drivers, Pool};
use cloudgate::core::settings::{DriverName, Settings};
use cloudgate::core::user::{sha1_hex, User};
use cloudgate::core::vm::state::{LcmState, State};
use cloudgate::core::vm::{History, Reservation, Usage, Vm};
use cloudgate::core::Core;
use cloudgate::store::{SqliteStore, DB_FILE};
use cloudgate::template::Template;

fn size(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `VmRSS` of this process, in KB.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn settings(dir: &Path) -> Settings {
    let dummy = |class: &str| {
        vec![DriverName {
            name: format!("{class}_dummy"),
            folder: "dummy".into(),
        }]
    };
    Settings {
        im_drivers: dummy("im"),
        vmm_drivers: dummy("vmm"),
        tm_drivers: dummy("tm"),
        image_dir: dir.join("images"),
        var_dir: dir.to_path_buf(),
        ..Settings::default()
    }
}

fn drivers(dir: &Path) -> Arc<dyn Drivers> {
    let remotes = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/remotes");
    std::env::set_var("CLOUDGATE_REMOTES", &remotes);
    let config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    build_drivers(&config)
}

fn admin() -> Caller {
    Caller {
        uid: 0,
        name: "oneadmin".into(),
    }
}

/// A VM as OCCI or EC2 would have made it, RUNNING on `host` or PENDING.
fn vm(id: u64, host: Option<&Host>) -> Vm {
    let template = Template::parse(&format!(
        "NAME = \"vm-{id}\"\nCPU = 0.5\nMEMORY = 512\nVMID = {id}\n\
         DISK = [ SOURCE = \"/srv/images/ttylinux.img\", TARGET = hda, CLONE = YES, SAVE = NO, DISK_ID = 0 ]\n\
         DISK = [ TYPE = swap, SIZE = 1024, TARGET = hdb, DISK_ID = 1 ]\n\
         NIC = [ BRIDGE = br0, MAC = \"02:00:0a:{:02x}:{:02x}:{:02x}\", IP = \"10.{}.{}.{}\" ]\n\
         CONTEXT = [ HOSTNAME = \"vm-{id}\", TARGET = hdc ]\n\
         REQUIREMENTS = \"HYPERVISOR = \\\"dummy\\\"\"\nRANK = FREECPU",
        (id >> 16) & 255,
        (id >> 8) & 255,
        id & 255,
        (id >> 16) & 255,
        (id >> 8) & 255,
        id & 255,
    ))
    .expect("template");
    let (state, lcm, history) = match host {
        Some(h) => {
            let mut record = History::open(
                0,
                h.id,
                &h.name,
                "/var/lib/one/vms",
                "vmm_dummy",
                "tm_dummy",
            );
            record.stime = 1_700_000_000;
            record.pstime = 1_700_000_000;
            record.petime = 1_700_000_010;
            record.rstime = 1_700_000_010;
            (State::Active, LcmState::Running, vec![record])
        }
        None => (State::Pending, LcmState::LcmInit, Vec::new()),
    };
    Vm {
        id,
        uid: 0,
        uname: "oneadmin".into(),
        name: format!("vm-{id}"),
        state,
        lcm,
        deploy_id: host.map(|_| format!("dummy-{id}")),
        template,
        reservation: Reservation {
            cpu: 50,
            mem_kb: 524_288,
        },
        usage: Usage::default(),
        stime: 1_700_000_000,
        etime: 0,
        history,
        error: None,
        pending: None,
        op: 3,
        unplaced: None,
    }
}

/// VM `id` as it is after a shutdown on `host` in 2023: DONE.
fn ended(id: u64, host: &Host) -> Vm {
    let mut vm = vm(id, Some(host));
    vm.state = State::Done;
    vm.lcm = LcmState::LcmInit;
    vm.etime = 1_700_000_100;
    for record in &mut vm.history {
        record.retime = 1_700_000_090;
        record.estime = 1_700_000_090;
        record.eetime = 1_700_000_100;
        record.etime = 1_700_000_100;
    }
    vm
}

/// Fills a new database: oneadmin, `hosts` monitored hosts, `done` VMs
/// that ended long ago, then `vms` live VMs (every tenth pending, the
/// others running, spread over the hosts), written through the store's
/// transactions in batches.
fn populate(path: &Path, hosts: u64, vms: u64, done: u64) {
    let store = SqliteStore::open(path).expect("store");
    let probe = Template::parse(
        "HYPERVISOR = dummy\nHOSTNAME = x\nCPUSPEED = 2200\nTOTALMEMORY = 1073741824\n\
         USEDMEMORY = 0\nFREEMEMORY = 1073741824\nTOTALCPU = 409600\nUSEDCPU = 0\nFREECPU = 409600",
    )
    .expect("probe");
    let mut fleet = Vec::new();
    ports::write(&store, |tx| {
        let id = tx.next_id(Pool::Users)?;
        tx.put_user(&User {
            id,
            name: "oneadmin".into(),
            password: sha1_hex("pw"),
            enabled: true,
        })?;
        for i in 0..hosts {
            let id = tx.next_id(Pool::Hosts)?;
            let mut host = Host::new(
                id,
                &format!("node{i:05}"),
                "im_dummy",
                "vmm_dummy",
                "tm_dummy",
            );
            host.monitored(&probe, 1_700_000_000);
            tx.put_host(&host)?;
            fleet.push(host);
        }
        Ok(())
    })
    .expect("hosts");
    let mut next = 0;
    while next < done + vms {
        let batch = (done + vms - next).min(10_000);
        ports::write(&store, |tx| {
            for _ in 0..batch {
                let id = tx.next_id(Pool::Vms)?;
                let host = &fleet[(id % hosts) as usize];
                let vm = if id < done {
                    ended(id, host)
                } else {
                    vm(id, (id % 10 != 0).then_some(host))
                };
                tx.put_vm(&vm)?;
                for record in &vm.history {
                    tx.put_vm_history(vm.id, record)?;
                }
            }
            Ok(())
        })
        .expect("vms");
        next += batch;
    }
}

fn main() {
    let vms = size("CORE_BENCH_VMS", 100_000);
    let done = size("CORE_BENCH_DONE", 300_000);
    let hosts = size("CORE_BENCH_HOSTS", 10_000);
    let creates = size("CORE_BENCH_CREATES", 2_000);

    // ---- scale: memory and reload -----------------------------------
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join(DB_FILE);
    let started = Instant::now();
    populate(&db, hosts, vms, done);
    println!(
        "populated {vms} live VMs, {done} VMs ended in 2023 and {hosts} hosts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let before = rss_kb();
    let started = Instant::now();
    let store = SqliteStore::open(&db).expect("store");
    let core = Arc::new(
        Core::open(Arc::new(store), settings(dir.path()), drivers(dir.path())).expect("core"),
    );
    core.vms().start(core.drivers().clone(), 4).expect("start");
    let reload = started.elapsed();
    let rss = rss_kb();
    assert_eq!(core.vms().len() as u64, vms);
    assert_eq!(core.hosts().snapshot().expect("hosts").len() as u64, hosts);
    println!(
        "restart and reload ({vms} live VMs loaded, {done} ended ones left in the store, \
         {hosts} hosts, recount included): {:.2} s",
        reload.as_secs_f64()
    );
    println!(
        "RSS with the pools loaded: {} MiB (the pools alone: {} MiB)",
        rss / 1024,
        rss.saturating_sub(before) / 1024
    );
    if done > 0 {
        let shows = 2_000.min(done);
        let started = Instant::now();
        for i in 0..shows {
            let vm = core.vms().show(&admin(), i * (done / shows)).expect("show");
            assert_eq!(vm.state, State::Done);
        }
        println!(
            "show of a VM that ended long ago (read from the store): {:.0} µs",
            started.elapsed().as_secs_f64() * 1e6 / shows as f64
        );
    }
    drop(core);

    // ---- throughput: create to RUNNING --------------------------------
    let dir = tempfile::tempdir().expect("tempdir");
    let scripts = drivers(dir.path());
    throughput(
        "the dummy drivers (one script per action)",
        dir.path(),
        scripts,
        creates,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    throughput(
        "in-process drivers (the core and the store alone)",
        dir.path(),
        Arc::new(NullDrivers),
        creates,
    );
}

/// Drivers that answer at once: what the core and its store sustain
/// without any script.
struct NullDrivers;

impl Drivers for NullDrivers {
    fn monitor(&self, _: &ports::MonitorRequest) -> cloudgate::core::Result<Template> {
        Ok(
            Template::parse("HYPERVISOR = null\nTOTALCPU = 800\nTOTALMEMORY = 16777216")
                .expect("probe"),
        )
    }

    fn deploy(&self, r: &ports::DeployRequest) -> cloudgate::core::Result<String> {
        Ok(format!("null-{}", r.target.vm_id))
    }

    fn poll(&self, _: &ports::DomainRequest) -> cloudgate::core::Result<ports::PollAnswer> {
        Ok(ports::PollAnswer {
            state: Some(ports::PollState::Active),
            ..ports::PollAnswer::default()
        })
    }

    fn transfer(&self, _: &ports::TransferRequest) -> cloudgate::core::Result<()> {
        Ok(())
    }
}

/// `creates` VMs created by 8 threads on a fresh data dir with 20 hosts,
/// placed by the scheduler and run through `drivers`: how many per second
/// reach RUNNING.
fn throughput(label: &str, dir: &Path, drivers: Arc<dyn Drivers>, creates: u64) {
    let store = SqliteStore::open(&dir.join(DB_FILE)).expect("store");
    ports::write(&store, |tx| {
        let id = tx.next_id(Pool::Users)?;
        tx.put_user(&User {
            id,
            name: "oneadmin".into(),
            password: sha1_hex("pw"),
            enabled: true,
        })
    })
    .expect("oneadmin");
    let core = Arc::new(Core::open(Arc::new(store), settings(dir), drivers).expect("core"));
    for i in 0..20 {
        core.hosts()
            .create(&admin(), &format!("dummy{i:02}"), "dummy", "dummy", "dummy")
            .expect("host");
    }
    let background = core.start().expect("background");
    // Wait until the hosts are monitored, so that the scheduler can place.
    let deadline = Instant::now() + Duration::from_secs(60);
    while core
        .hosts()
        .snapshot()
        .expect("hosts")
        .iter()
        .any(|h| !h.is_schedulable())
    {
        assert!(Instant::now() < deadline, "hosts never monitored");
        thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let core = core.clone();
            thread::spawn(move || {
                for i in (t..creates).step_by(8) {
                    core.vms()
                        .create(&admin(), &format!("NAME = bench-{i}\nVCPU = 1"))
                        .expect("create");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("creator");
    }
    let created = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let running = core
            .vms()
            .list(&admin(), cloudgate::core::vm::Filter::All)
            .expect("list")
            .iter()
            .filter(|vm| vm.lcm == LcmState::Running)
            .count() as u64;
        if running == creates {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {running} of {creates} running"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let total = started.elapsed();
    println!(
        "{label}: {creates} VMs created in {:.2} s ({:.0}/s), all RUNNING after {:.2} s: \
         {:.0} VMs/s create to RUNNING",
        created.as_secs_f64(),
        creates as f64 / created.as_secs_f64(),
        total.as_secs_f64(),
        creates as f64 / total.as_secs_f64()
    );
    background.stop();
}
