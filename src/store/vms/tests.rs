//! The VM pool on the real (in-memory) store with fake drivers: every
//! path of the life cycle, failures at each driver step, the bookkeeping
//! that must match the VMs (capacity, leases, images), persistence of
//! VMs, history and pending steps, and re-driving after a restart
//! (spec/CORE.md §1, §4.5, §8.4). The table itself is tested in
//! `core::vm::state`.
//!
//! The fake drivers keep a domain table like the dummy VMM (deploy and
//! restore make a domain appear, save, shutdown and cancel make it go,
//! poll answers `a` or `d`), and read the VM's `DUMMY_FAIL` and
//! `DUMMY_SLEEP` from the script environment as the dummy scripts do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::super::SqliteStore;
use crate::core::caller::Caller;
use crate::core::host::HostPool;
use crate::core::image::ImagePool;
use crate::core::ports::{
    self, DeployRequest, DomainRequest, Drivers, MigrateRequest, PollAnswer, PollState, Pool,
    RestoreRequest, SaveRequest, ScriptEnv, Store, TmAction, TransferRequest, VmmTarget,
};
use crate::core::settings::{DriverName, Settings};
use crate::core::user::User;
use crate::core::vm::state::{LcmState, Reason, State, Step};
use crate::core::vm::{Action, Filter, Vm, VmPool};
use crate::core::vnet::VnetPool;
use crate::core::writer::Writer;
use crate::core::{Error, Result};
use crate::template::Template;

fn caller(uid: u64, name: &str) -> Caller {
    Caller {
        uid,
        name: name.into(),
    }
}

fn admin() -> Caller {
    caller(0, "oneadmin")
}

fn alice() -> Caller {
    caller(1, "alice")
}

fn bob() -> Caller {
    caller(2, "bob")
}

// ---------------------------------------------------------------------
// Fake drivers
// ---------------------------------------------------------------------

#[derive(Default)]
struct Fake {
    /// VM id → the host its domain runs on.
    domains: Mutex<HashMap<u64, String>>,
    /// Forced poll letters, per VM.
    poll_state: Mutex<HashMap<u64, PollState>>,
    /// `(vm, "action host")`, in call order.
    calls: Mutex<Vec<(u64, String)>>,
    /// Every TM action, with its VM.
    transfers: Mutex<Vec<(u64, TmAction)>>,
    /// Hosts that cannot be reached: polls there fail as ssh's exit 255.
    down: Mutex<Vec<String>>,
}

impl Fake {
    fn begin(&self, vm: u64, action: &str, host: &str, env: &ScriptEnv) -> Result<()> {
        self.calls
            .lock()
            .expect("calls")
            .push((vm, format!("{action} {host}")));
        if let Some(ms) = env.get("DUMMY_SLEEP").and_then(|s| s.parse::<u64>().ok()) {
            thread::sleep(Duration::from_millis(ms));
        }
        let failing = env
            .get("DUMMY_FAIL")
            .is_some_and(|list| list.split(',').any(|a| a.trim() == action));
        if failing {
            return Err(Error::Driver {
                action: action.into(),
                host: host.into(),
                message: format!("fake: {action} failed as requested by DUMMY_FAIL"),
            });
        }
        Ok(())
    }

    fn vmm(&self, t: &VmmTarget, action: &str) -> Result<()> {
        self.begin(t.vm_id, action, &t.host, &t.env)
    }

    fn calls_of(&self, vm: u64) -> Vec<String> {
        self.calls
            .lock()
            .expect("calls")
            .iter()
            .filter(|(v, _)| *v == vm)
            .map(|(_, c)| c.clone())
            .collect()
    }

    fn transfers_of(&self, vm: u64) -> Vec<TmAction> {
        self.transfers
            .lock()
            .expect("transfers")
            .iter()
            .filter(|(v, _)| *v == vm)
            .map(|(_, a)| a.clone())
            .collect()
    }

    fn set_domain(&self, vm: u64, host: Option<&str>) {
        let mut domains = self.domains.lock().expect("domains");
        match host {
            Some(h) => domains.insert(vm, h.to_string()),
            None => domains.remove(&vm),
        };
    }
}

impl Drivers for Fake {
    fn deploy(&self, r: &DeployRequest) -> Result<String> {
        self.vmm(&r.target, "deploy")?;
        self.set_domain(r.target.vm_id, Some(&r.target.host));
        Ok(format!("fake-{}", r.target.vm_id))
    }

    fn shutdown(&self, r: &DomainRequest) -> Result<()> {
        self.vmm(&r.target, "shutdown")?;
        self.set_domain(r.target.vm_id, None);
        Ok(())
    }

    fn cancel(&self, r: &DomainRequest) -> Result<()> {
        self.vmm(&r.target, "cancel")?;
        self.set_domain(r.target.vm_id, None);
        Ok(())
    }

    fn save(&self, r: &SaveRequest) -> Result<()> {
        self.vmm(&r.target, "save")?;
        self.set_domain(r.target.vm_id, None);
        Ok(())
    }

    fn restore(&self, r: &RestoreRequest) -> Result<()> {
        self.vmm(&r.target, "restore")?;
        self.set_domain(r.target.vm_id, Some(&r.target.host));
        Ok(())
    }

    fn migrate(&self, r: &MigrateRequest) -> Result<()> {
        self.vmm(&r.target, "migrate")?;
        self.set_domain(r.target.vm_id, Some(&r.destination));
        Ok(())
    }

    fn poll(&self, r: &DomainRequest) -> Result<PollAnswer> {
        if self.down.lock().expect("down").contains(&r.target.host) {
            return Err(Error::Unreachable {
                action: "poll".into(),
                host: r.target.host.clone(),
                message: format!("cannot reach host {}: Connection refused", r.target.host),
            });
        }
        self.vmm(&r.target, "poll")?;
        let forced = self
            .poll_state
            .lock()
            .expect("poll")
            .get(&r.target.vm_id)
            .copied();
        let here =
            self.domains.lock().expect("domains").get(&r.target.vm_id) == Some(&r.target.host);
        let state = forced.unwrap_or(if here {
            PollState::Active
        } else {
            PollState::Disappeared
        });
        Ok(PollAnswer {
            state: Some(state),
            used_cpu: Some(25),
            used_memory: Some(1024),
            net_rx: Some(1),
            net_tx: Some(2),
            extra: Template::parse("GUEST_IP = 10.9.9.9").expect("extra"),
        })
    }

    fn reboot(&self, r: &DomainRequest) -> Result<()> {
        self.vmm(&r.target, "reboot")
    }

    fn reset(&self, r: &DomainRequest) -> Result<()> {
        self.vmm(&r.target, "reset")
    }

    fn transfer(&self, r: &TransferRequest) -> Result<()> {
        self.begin(r.vm_id, r.action.name(), r.action.host(), &r.env)?;
        self.transfers
            .lock()
            .expect("transfers")
            .push((r.vm_id, r.action.clone()));
        Ok(())
    }
}

// ---------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------

struct Fixture {
    store: Arc<SqliteStore>,
    hosts: Arc<HostPool>,
    vnets: Arc<VnetPool>,
    images: Arc<ImagePool>,
    pool: Arc<VmPool>,
    fake: Arc<Fake>,
    settings: Settings,
    _dir: tempfile::TempDir,
}

fn settings(dir: &std::path::Path) -> Settings {
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
        var_dir: dir.join("var"),
        vm_dir: "/srv/vms".into(),
        front_end: "fe".into(),
        ..Settings::default()
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open_in_memory().expect("store");
    ports::write(&store, |tx| {
        for name in ["oneadmin", "alice", "bob"] {
            let id = tx.next_id(Pool::Users)?;
            tx.put_user(&User {
                id,
                name: name.into(),
                password: crate::core::user::sha1_hex(name),
                enabled: true,
            })?;
        }
        Ok(())
    })
    .expect("users");
    let store = Arc::new(store);
    let settings = settings(dir.path());
    let writer = Writer::new(store.clone());
    let hosts = Arc::new(HostPool::load(writer.clone(), &settings).expect("hosts"));
    for name in ["node-a", "node-b"] {
        let host = hosts
            .create(&admin(), name, "dummy", "dummy", "dummy")
            .expect("host");
        hosts
            .record_monitoring(
                host.id,
                &Template::parse("TOTALCPU = 800\nTOTALMEMORY = 16777216").expect("probe"),
                1,
            )
            .expect("monitored");
    }
    let vnets = Arc::new(VnetPool::load(writer.clone(), settings.clone()).expect("vnets"));
    vnets
        .create(
            &alice(),
            "NAME = lan\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0\nNETWORK_SIZE = C",
        )
        .expect("lan");
    let images = Arc::new(ImagePool::load(writer.clone(), &settings.image_dir).expect("images"));
    let fake = Arc::new(Fake::default());
    let pool = Arc::new(
        VmPool::load(
            writer,
            settings.clone(),
            hosts.clone(),
            vnets.clone(),
            images.clone(),
        )
        .expect("vm pool"),
    );
    pool.start(fake.clone(), 4).expect("start");
    Fixture {
        store,
        hosts,
        vnets,
        images,
        pool,
        fake,
        settings,
        _dir: dir,
    }
}

const SMALL: &str = "CPU = 0.5\nMEMORY = 128\nNIC = [ NETWORK = lan ]\n\
                     DISK = [ TYPE = swap, SIZE = 64 ]";

impl Fixture {
    fn create(&self, who: &Caller, text: &str) -> Vm {
        self.pool.create(who, text).expect("create")
    }

    fn act(&self, id: u64, action: Action, host: Option<&str>) -> Result<Vm> {
        self.pool.action(&admin(), id, action, host)
    }

    /// Waits until VM `id` shows `short` and the runner is idle.
    fn wait(&self, id: u64, short: &str) -> Vm {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let vm = self.pool.get(id).expect("vm");
            if vm.short_state() == short && self.pool.is_idle() {
                return vm;
            }
            assert!(
                Instant::now() < deadline,
                "VM {id} is {}/{} ({}), not {short}; error {:?}",
                vm.state,
                vm.lcm,
                vm.short_state(),
                vm.error
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn running(&self, who: &Caller, text: &str, host: &str) -> Vm {
        let vm = self.create(who, text);
        self.act(vm.id, Action::Deploy, Some(host)).expect("deploy");
        self.wait(vm.id, "runn")
    }

    /// (CPU_USAGE, MEM_USAGE, RUNNING_VMS) of a host.
    fn usage(&self, host: &str) -> (i64, i64, i64) {
        let h = self.hosts.show(&admin(), host).expect("host");
        (h.share.cpu_usage, h.share.mem_usage, h.share.running_vms)
    }

    fn leases(&self) -> Vec<(String, u64)> {
        self.vnets
            .list(&admin())
            .expect("vnets")
            .into_iter()
            .flat_map(|n| n.leases)
            .map(|l| (l.ip.to_string(), l.vm_id))
            .collect()
    }

    /// Every pool loaded again from the store, as after a restart; the
    /// VM pool not started.
    fn reload(&self) -> Loaded {
        let writer = Writer::new(self.store.clone());
        let hosts = Arc::new(HostPool::load(writer.clone(), &self.settings).expect("hosts"));
        let vnets = Arc::new(VnetPool::load(writer.clone(), self.settings.clone()).expect("vnets"));
        let images =
            Arc::new(ImagePool::load(writer.clone(), &self.settings.image_dir).expect("images"));
        let pool = Arc::new(
            VmPool::load(
                writer,
                self.settings.clone(),
                hosts.clone(),
                vnets.clone(),
                images.clone(),
            )
            .expect("vm pool"),
        );
        Loaded {
            hosts,
            vnets,
            images,
            pool,
        }
    }

    /// A restart: every pool loaded again, the VM pool started on `fake`.
    fn restart(&self, fake: &Arc<Fake>) -> Loaded {
        let loaded = self.reload();
        loaded.pool.start(fake.clone(), 4).expect("start");
        loaded
    }
}

/// The pools after a reload.
struct Loaded {
    hosts: Arc<HostPool>,
    vnets: Arc<VnetPool>,
    images: Arc<ImagePool>,
    pool: Arc<VmPool>,
}

impl Loaded {
    fn usage(&self, host: &str) -> (i64, i64, i64) {
        let h = self.hosts.show(&admin(), host).expect("host");
        (h.share.cpu_usage, h.share.mem_usage, h.share.running_vms)
    }

    fn wait(&self, id: u64, short: &str) -> Vm {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let vm = self.pool.get(id).expect("vm");
            if vm.short_state() == short && self.pool.is_idle() {
                return vm;
            }
            assert!(
                Instant::now() < deadline,
                "VM {id} is {}, not {short}",
                vm.short_state()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

const HALF: (i64, i64, i64) = (50, 131_072, 1);
const NONE: (i64, i64, i64) = (0, 0, 0);

// ---------------------------------------------------------------------
// Creation
// ---------------------------------------------------------------------

#[test]
fn a_vm_is_created_pending_with_its_template_rewritten() {
    let f = fixture();
    let vm = f.create(
        &alice(),
        "CPU = 0.5\nMEMORY = 128\nNIC = [ NETWORK = lan, MODEL = virtio, TARGET = t0 ]\n\
         CONTEXT = [ HOSTNAME = \"$NAME\", IP = \"$NIC[IP]\", ME = \"$UNAME\" ]\n\
         REQUIREMENTS = \"NAME = \\\"$NAME\\\"\"",
    );
    assert_eq!(
        (vm.state, vm.lcm, vm.short_state()),
        (State::Pending, LcmState::LcmInit, "pend")
    );
    assert_eq!(vm.name, format!("one-{}", vm.id));
    assert_eq!((vm.uid, vm.uname.as_str()), (1, "alice"));
    let t = &vm.template;
    assert_eq!(t.get("VMID"), Some(vm.id.to_string().as_str()));
    let nic = t.vector("NIC").expect("nic");
    assert_eq!(nic.get("IP"), Some("10.0.0.1"));
    assert_eq!(nic.get("MAC"), Some("02:00:0a:00:00:01"));
    assert_eq!(nic.get("BRIDGE"), Some("br0"));
    assert_eq!(nic.get("NETWORK"), Some("lan"));
    assert_eq!(
        (nic.get("MODEL"), nic.get("TARGET")),
        (Some("virtio"), Some("t0"))
    );
    let context = t.vector("CONTEXT").expect("context");
    assert_eq!(context.get("HOSTNAME"), Some(vm.name.as_str()));
    assert_eq!(context.get("IP"), Some("10.0.0.1"));
    assert_eq!(context.get("ME"), Some("alice"));
    assert_eq!(
        t.get("REQUIREMENTS"),
        Some(format!("NAME = \"{}\"", vm.name).as_str())
    );
    assert_eq!(f.leases(), [("10.0.0.1".to_string(), vm.id)]);
    assert_eq!(vm.reservation.cpu, 50);
}

#[test]
fn a_refused_template_creates_nothing_and_leaks_no_lease() {
    let f = fixture();
    let before = f.pool.len();
    // The second NIC asks for an address the first one takes.
    let err = f
        .pool
        .create(
            &alice(),
            "NIC = [ NETWORK = lan, IP = 10.0.0.7 ]\nNIC = [ NETWORK = lan, IP = 10.0.0.7 ]",
        )
        .expect_err("taken");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let err = f
        .pool
        .create(&alice(), "NIC = [ NETWORK = lan ]\nDISK = [ IMAGE = nope ]")
        .expect_err("no image");
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "DISK/IMAGE"),
        "{err:?}"
    );
    let err = f
        .pool
        .create(&alice(), "NIC = [ NETWORK = lan ]\nREQUIREMENTS = \"A = \"")
        .expect_err("requirements");
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "REQUIREMENTS"),
        "{err:?}"
    );
    let err = f
        .pool
        .create(&alice(), "NIC = [ NETWORK = nowhere ]")
        .expect_err("network");
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "NIC/NETWORK"),
        "{err:?}"
    );
    assert_eq!(f.pool.len(), before);
    assert!(f.leases().is_empty());
    // The ids refused creations would have had are not used up.
    let vm = f.create(&alice(), "NIC = [ NETWORK = lan, IP = 10.0.0.7 ]");
    assert_eq!(vm.id, 0);
    let err = f
        .pool
        .create(&bob(), "NIC = [ NETWORK = lan, IP = 10.0.0.7 ]")
        .expect_err("taken IP");
    assert!(
        matches!(err, Error::Conflict(_) | Error::Forbidden { .. }),
        "{err:?}"
    );
}

#[test]
fn images_are_resolved_and_used_then_given_back_at_done() {
    let f = fixture();
    let src = f._dir.path().join("disk.img");
    std::fs::write(&src, b"disk").expect("file");
    let mut new = crate::core::image::NewImage::named("base");
    new.public = true;
    let image = f.images.register_path(&admin(), new, &src).expect("image");
    let vm = f.running(
        &alice(),
        &format!(
            "DISK = [ IMAGE_ID = {} ]\nDISK = [ TYPE = swap, SIZE = 8 ]",
            image.id
        ),
        "node-a",
    );
    let disk = vm.template.vector("DISK").expect("disk");
    assert_eq!(disk.get("IMAGE"), Some("base"));
    assert_eq!(
        (disk.get("CLONE"), disk.get("SAVE")),
        (Some("YES"), Some("NO"))
    );
    assert_eq!(
        (disk.get("TARGET"), disk.get("TYPE")),
        (Some("hda"), Some("DISK"))
    );
    let source = disk.get("SOURCE").expect("source").to_string();
    assert_eq!(
        f.images
            .by_id(image.id)
            .expect("get")
            .expect("image")
            .running_vms,
        1
    );
    // The prolog clones the image and makes the swap, in DISK order.
    assert_eq!(
        f.fake.transfers_of(vm.id),
        [
            TmAction::Clone {
                src: format!("fe:{source}"),
                dst: ports::HostPath::new("node-a", format!("/srv/vms/{}/disk.0", vm.id)),
            },
            TmAction::MkSwap {
                size_mb: 8,
                dst: ports::HostPath::new("node-a", format!("/srv/vms/{}/disk.1", vm.id)),
            },
        ]
    );
    f.act(vm.id, Action::Shutdown, None).expect("shutdown");
    f.wait(vm.id, "done");
    assert_eq!(
        f.images
            .by_id(image.id)
            .expect("get")
            .expect("image")
            .running_vms,
        0
    );
}

// ---------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------

#[test]
fn deploy_then_shutdown_reserves_and_gives_everything_back() {
    let f = fixture();
    let vm = f.running(&alice(), SMALL, "node-a");
    assert_eq!(
        vm.deploy_id.as_deref(),
        Some(format!("fake-{}", vm.id).as_str())
    );
    assert_eq!(f.usage("node-a"), HALF);
    let h = &vm.history[0];
    assert_eq!(
        (h.seq, h.host.as_str(), h.vm_dir.as_str()),
        (0, "node-a", "/srv/vms")
    );
    assert!(h.stime > 0 && h.pstime > 0 && h.petime > 0 && h.rstime > 0);
    assert!(vm.pending.is_none(), "{:?}", vm.pending);

    f.act(vm.id, Action::Shutdown, None).expect("shutdown");
    let vm = f.wait(vm.id, "done");
    assert_eq!(f.usage("node-a"), NONE);
    assert!(f.leases().is_empty());
    let h = &vm.history[0];
    assert!(h.etime > 0 && h.estime > 0 && h.eetime > 0 && h.retime > 0);
    assert_eq!(h.reason, Reason::None);
    assert!(vm.etime > 0);
    assert_eq!(
        f.fake.calls_of(vm.id),
        [
            "mkswap node-a",
            "deploy node-a",
            "shutdown node-a",
            "delete node-a"
        ]
    );
    // DONE VMs are not listed, but shown.
    assert!(f
        .pool
        .list(&alice(), Filter::Mine)
        .expect("list")
        .is_empty());
    assert_eq!(
        f.pool.show(&alice(), vm.id).expect("show").state,
        State::Done
    );
}

#[test]
fn cancel_runs_the_epilog_with_reason_cancel() {
    let f = fixture();
    let vm = f.running(&alice(), SMALL, "node-a");
    f.act(vm.id, Action::Cancel, None).expect("cancel");
    let vm = f.wait(vm.id, "done");
    assert_eq!(vm.history[0].reason, Reason::Cancel);
    assert_eq!(f.usage("node-a"), NONE);
    assert!(f
        .fake
        .calls_of(vm.id)
        .contains(&"cancel node-a".to_string()));
}

#[test]
fn stop_and_resume_come_back_through_the_front_end() {
    let f = fixture();
    let vm = f.running(&alice(), SMALL, "node-a");
    f.act(vm.id, Action::Stop, None).expect("stop");
    let vm = f.wait(vm.id, "stop");
    assert_eq!(vm.history[0].reason, Reason::StopResume);
    assert_eq!(f.usage("node-a"), NONE);
    assert_eq!(f.leases().len(), 1, "a stopped VM keeps its lease");

    f.act(vm.id, Action::Resume, None).expect("resume");
    let vm = f.wait(vm.id, "pend");
    f.act(vm.id, Action::Deploy, Some("node-b"))
        .expect("deploy");
    let vm = f.wait(vm.id, "runn");
    assert_eq!(vm.history.len(), 2);
    assert_eq!(f.usage("node-b"), HALF);
    let calls = f.fake.calls_of(vm.id);
    assert_eq!(
        calls[calls.len() - 2..],
        ["mv node-b".to_string(), "restore node-b".to_string()],
        "{calls:?}"
    );
    let fe = f.settings.var_dir.join(vm.id.to_string()).join("images");
    assert!(f.fake.transfers_of(vm.id).contains(&TmAction::Mv {
        src: ports::HostPath::new("node-a", format!("/srv/vms/{}", vm.id)),
        dst: ports::HostPath::new("fe", fe.display().to_string()),
    }));
}

#[test]
fn suspend_and_resume_stay_on_the_host() {
    let f = fixture();
    let vm = f.running(&alice(), SMALL, "node-a");
    f.act(vm.id, Action::Suspend, None).expect("suspend");
    let vm = f.wait(vm.id, "susp");
    assert_eq!(f.usage("node-a"), NONE, "a suspended VM holds no capacity");
    f.act(vm.id, Action::Resume, None).expect("resume");
    let vm = f.wait(vm.id, "runn");
    assert_eq!(vm.history.len(), 2);
    assert_eq!(vm.history[1].host, "node-a");
    assert_eq!(f.usage("node-a"), HALF);
    assert_eq!(
        f.fake.calls_of(vm.id).last().map(String::as_str),
        Some("restore node-a")
    );
}

#[test]
fn migrate_and_livemigrate_move_the_capacity() {
    let f = fixture();
    let vm = f.running(&alice(), SMALL, "node-a");
    f.act(vm.id, Action::Migrate, Some("node-b"))
        .expect("migrate");
    let vm = f.wait(vm.id, "runn");
    assert_eq!(vm.host().expect("host").host, "node-b");
    assert_eq!((f.usage("node-a"), f.usage("node-b")), (NONE, HALF));
    assert_eq!(vm.history[0].reason, Reason::User);
    let calls = f.fake.calls_of(vm.id);
    assert_eq!(
        calls[calls.len() - 3..],
        [
            "save node-a".to_string(),
            "mv node-b".to_string(),
            "restore node-b".to_string()
        ]
    );

    f.act(vm.id, Action::LiveMigrate, Some("node-a"))
        .expect("livemigrate");
    let vm = f.wait(vm.id, "runn");
    assert_eq!(vm.host().expect("host").host, "node-a");
    assert_eq!((f.usage("node-a"), f.usage("node-b")), (HALF, NONE));
    assert_eq!(
        f.fake.calls_of(vm.id).last().map(String::as_str),
        Some("migrate node-b")
    );
    let err = f
        .act(vm.id, Action::Migrate, Some("node-a"))
        .expect_err("same host");
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "host"),
        "{err:?}"
    );
}

#[test]
fn failed_migrations_go_back_to_the_source() {
    let f = fixture();
    let vm = f.running(
        &alice(),
        &format!("{SMALL}\nDUMMY_FAIL = \"migrate,save\""),
        "node-a",
    );
    for action in [Action::LiveMigrate, Action::Migrate] {
        f.act(vm.id, action, Some("node-b")).expect("migrate");
        let vm = f.wait(vm.id, "runn");
        assert_eq!(vm.host().expect("host").host, "node-a", "{action}");
        assert_eq!(
            (f.usage("node-a"), f.usage("node-b")),
            (HALF, NONE),
            "{action}"
        );
        let error = vm.error.expect("error");
        assert!(
            error.message.contains("failed as requested"),
            "{}",
            error.message
        );
    }
    let vm = f.pool.get(vm.id).expect("vm");
    // deploy, then per migration: target record, copy of the source.
    assert_eq!(vm.history.len(), 5);
    assert_eq!(vm.history[1].reason, Reason::Error);
}

#[test]
fn hold_release_and_their_wrong_states() {
    let f = fixture();
    let vm = f.create(&alice(), SMALL);
    let held = f
        .pool
        .action(&alice(), vm.id, Action::Hold, None)
        .expect("hold");
    assert_eq!(held.short_state(), "hold");
    let err = f
        .pool
        .action(&alice(), vm.id, Action::Hold, None)
        .expect_err("twice");
    assert_eq!(
        err.to_string(),
        format!("cannot hold virtual machine {} in state hold", vm.id)
    );
    let released = f
        .pool
        .action(&alice(), vm.id, Action::Release, None)
        .expect("release");
    assert_eq!(released.short_state(), "pend");
    let err = f
        .pool
        .action(&alice(), vm.id, Action::Shutdown, None)
        .expect_err("pending");
    assert!(
        matches!(&err, Error::InvalidState { state, action, .. } if state == "pend" && action == "shutdown"),
        "{err:?}"
    );
}

#[test]
fn delete_in_each_state_gives_everything_back() {
    let f = fixture();
    // pending, held, running, stopped, suspended, failed.
    let pending = f.create(&alice(), SMALL);
    let held = f.create(&alice(), SMALL);
    f.act(held.id, Action::Hold, None).expect("hold");
    let running = f.running(&alice(), SMALL, "node-a");
    let stopped = f.running(&alice(), SMALL, "node-a");
    f.act(stopped.id, Action::Stop, None).expect("stop");
    f.wait(stopped.id, "stop");
    let suspended = f.running(&alice(), SMALL, "node-b");
    f.act(suspended.id, Action::Suspend, None).expect("suspend");
    f.wait(suspended.id, "susp");
    let failed = f.create(&alice(), &format!("{SMALL}\nDUMMY_FAIL = deploy"));
    f.act(failed.id, Action::Deploy, Some("node-b"))
        .expect("deploy");
    f.wait(failed.id, "fail");
    assert_eq!(f.leases().len(), 6);
    for vm in [&pending, &held, &running, &stopped, &suspended, &failed] {
        let done = f
            .pool
            .action(&alice(), vm.id, Action::Delete, None)
            .expect("delete");
        assert_eq!(done.state, State::Done, "VM {}", vm.id);
        f.wait(vm.id, "done");
    }
    assert!(f.leases().is_empty());
    assert_eq!((f.usage("node-a"), f.usage("node-b")), (NONE, NONE));
    // Host files go: the running VM's domain and directory, the
    // suspended and failed VMs' directories, the stopped VM's copy.
    assert!(f
        .fake
        .calls_of(running.id)
        .ends_with(&["cancel node-a".into(), "delete node-a".into()]));
    assert_eq!(
        f.fake.calls_of(suspended.id).last().map(String::as_str),
        Some("delete node-b")
    );
    assert_eq!(
        f.fake.calls_of(failed.id).last().map(String::as_str),
        Some("delete node-b")
    );
    assert_eq!(
        f.fake.calls_of(stopped.id).last().map(String::as_str),
        Some("delete fe")
    );
    // Delete of a DONE VM is a no-op.
    assert_eq!(
        f.act(pending.id, Action::Delete, None)
            .expect("again")
            .state,
        State::Done
    );
    for vm in [&pending, &running, &failed] {
        assert!(f.pool.get(vm.id).expect("vm").pending.is_none());
    }
}

#[test]
fn delete_during_an_operation_drops_its_late_reply() {
    let f = fixture();
    let vm = f.create(&alice(), &format!("{SMALL}\nDUMMY_SLEEP = 300"));
    f.act(vm.id, Action::Deploy, Some("node-a"))
        .expect("deploy");
    // The prolog (mkswap) sleeps; delete meanwhile.
    thread::sleep(Duration::from_millis(50));
    let done = f.act(vm.id, Action::Delete, None).expect("delete");
    assert_eq!(done.state, State::Done);
    let vm = f.wait(vm.id, "done");
    assert_eq!(vm.lcm, LcmState::LcmInit);
    assert_eq!(f.usage("node-a"), NONE);
    assert!(f.leases().is_empty());
    assert!(vm.pending.is_none());
    // No deploy followed the prolog that ended after the delete.
    assert!(!f
        .fake
        .calls_of(vm.id)
        .iter()
        .any(|c| c.starts_with("deploy")));
}

#[test]
fn resubmit_reboot_reset_and_restart() {
    let f = fixture();
    let vm = f.running(&alice(), SMALL, "node-a");
    for action in [Action::Reboot, Action::Reset] {
        f.act(vm.id, action, None).expect("reboot/reset");
        let vm = f.wait(vm.id, "runn");
        assert!(vm.pending.is_none());
    }
    let calls = f.fake.calls_of(vm.id);
    assert!(
        calls.contains(&"reboot node-a".to_string()) && calls.contains(&"reset node-a".to_string())
    );

    // The hypervisor loses the domain: a poll finds it gone (UNKNOWN),
    // restart deploys it again.
    f.fake.set_domain(vm.id, None);
    assert_eq!(f.pool.poll_tick(Duration::ZERO, 100).expect("tick"), 1);
    let vm = f.wait(vm.id, "unkn");
    assert_eq!(f.usage("node-a"), HALF, "UNKNOWN keeps its capacity");
    f.act(vm.id, Action::Restart, None).expect("restart");
    let vm = f.wait(vm.id, "runn");
    assert_eq!(vm.history.len(), 1, "no new stay");

    f.act(vm.id, Action::Resubmit, None).expect("resubmit");
    let vm = f.wait(vm.id, "pend");
    assert_eq!(f.usage("node-a"), NONE);
    assert_eq!(f.leases().len(), 1, "resubmit keeps the leases");
    f.act(vm.id, Action::Deploy, Some("node-b"))
        .expect("deploy again");
    f.wait(vm.id, "runn");
}

#[test]
fn polls_store_figures_and_drive_monitor_events() {
    let f = fixture();
    let vm = f.running(&alice(), SMALL, "node-a");
    f.pool.poll_tick(Duration::ZERO, 10).expect("tick");
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.pool.get(vm.id).expect("vm").usage.cpu != 25 {
        assert!(Instant::now() < deadline, "figures never stored");
        thread::sleep(Duration::from_millis(5));
    }
    let polled = f.pool.get(vm.id).expect("vm");
    assert_eq!((polled.usage.memory_kb, polled.usage.net_tx), (1024, 2));
    assert_eq!(polled.template.get("GUEST_IP"), Some("10.9.9.9"));
    // Nothing is due again at once.
    assert_eq!(
        f.pool
            .poll_tick(Duration::from_secs(3600), 10)
            .expect("tick"),
        0
    );

    f.fake
        .poll_state
        .lock()
        .expect("poll")
        .insert(vm.id, PollState::Paused);
    f.pool.poll_tick(Duration::ZERO, 10).expect("tick");
    f.wait(vm.id, "susp");
    assert_eq!(f.usage("node-a"), NONE);

    let other = f.running(&alice(), SMALL, "node-b");
    f.fake
        .poll_state
        .lock()
        .expect("poll")
        .insert(other.id, PollState::Error);
    f.pool.poll_tick(Duration::ZERO, 10).expect("tick");
    let other = f.wait(other.id, "fail");
    assert!(other.error.expect("error").message.contains("STATE=e"));
    assert_eq!(f.usage("node-b"), NONE);
}

#[test]
fn vms_of_an_unreachable_host_are_unknown_until_it_answers() {
    let f = fixture();
    let vm = f.running(&alice(), SMALL, "node-a");
    let other = f.running(&alice(), &format!("{SMALL}\nDUMMY_FAIL = poll"), "node-b");
    let leases = f.leases();

    // node-a's ssh fails: its VM is UNKNOWN, capacity and leases kept.
    f.fake.down.lock().expect("down").push("node-a".into());
    assert_eq!(f.pool.poll_tick(Duration::ZERO, 10).expect("tick"), 2);
    let unknown = f.wait(vm.id, "unkn");
    let error = unknown.error.expect("error").message;
    assert!(error.contains("cannot reach host node-a"), "{error}");
    assert_eq!(f.usage("node-a"), HALF, "UNKNOWN keeps its capacity");
    assert_eq!(f.leases(), leases, "and its leases");
    // Any other poll failure only logs.
    f.wait(other.id, "runn");

    // Still polled while UNKNOWN, and still unknown while the host is down.
    assert_eq!(f.pool.poll_tick(Duration::ZERO, 10).expect("tick"), 2);
    f.wait(vm.id, "unkn");

    // The host answers again: poll `a` brings the VM back to RUNNING.
    f.fake.down.lock().expect("down").clear();
    f.pool.poll_tick(Duration::ZERO, 10).expect("tick");
    f.wait(vm.id, "runn");
    assert_eq!(f.usage("node-a"), HALF);
    assert_eq!(f.leases(), leases);

    // A host in ERROR: a failing poll there makes its VM UNKNOWN too.
    let b = f.hosts.show(&admin(), "node-b").expect("node-b");
    f.hosts
        .record_failure(b.id, "cannot reach host node-b: timeout", 2)
        .expect("error");
    f.pool.poll_tick(Duration::ZERO, 10).expect("tick");
    f.wait(other.id, "unkn");
    assert_eq!(f.usage("node-b"), HALF);
}

// ---------------------------------------------------------------------
// Failures at each driver step
// ---------------------------------------------------------------------

#[test]
fn a_failure_at_each_driver_step_ends_where_the_table_says() {
    let f = fixture();
    // (DUMMY_FAIL, the action that meets it, where the VM ends)
    let cases: [(&str, Option<Action>, &str); 8] = [
        ("mkswap", None, "fail"),
        ("deploy", None, "fail"),
        ("shutdown", Some(Action::Shutdown), "runn"),
        ("cancel", Some(Action::Cancel), "runn"),
        ("save", Some(Action::Stop), "runn"),
        ("save", Some(Action::Suspend), "runn"),
        ("delete", Some(Action::Shutdown), "fail"),
        ("mv", Some(Action::Stop), "fail"),
    ];
    for (fail, action, ends) in cases {
        let vm = f.create(&alice(), &format!("{SMALL}\nDUMMY_FAIL = \"{fail}\""));
        f.act(vm.id, Action::Deploy, Some("node-a"))
            .expect("deploy");
        if let Some(action) = action {
            f.wait(vm.id, "runn");
            f.act(vm.id, action, None).expect("action");
        }
        let vm = f.wait(vm.id, ends);
        let error = vm
            .error
            .clone()
            .unwrap_or_else(|| panic!("{fail}: no error"));
        assert!(
            error
                .message
                .contains(&format!("fake: {fail} failed as requested by DUMMY_FAIL")),
            "{fail}: {}",
            error.message
        );
        if ends == "fail" {
            assert_eq!(
                f.usage("node-a"),
                NONE,
                "{fail}: capacity released at FAILED"
            );
            assert_eq!(vm.history.last().expect("record").reason, Reason::Error);
            assert_eq!(f.leases().len(), 1, "{fail}: a FAILED VM keeps its lease");
        } else {
            assert_eq!(f.usage("node-a"), HALF, "{fail}: still running");
        }
        f.act(vm.id, Action::Delete, None).expect("delete");
        f.wait(vm.id, "done");
        assert!(f.leases().is_empty(), "{fail}: lease back at delete");
        assert_eq!(f.usage("node-a"), NONE);
    }
}

#[test]
fn restore_and_reboot_failures() {
    let f = fixture();
    let vm = f.running(
        &alice(),
        &format!("{SMALL}\nDUMMY_FAIL = \"restore,reboot\""),
        "node-a",
    );
    f.act(vm.id, Action::Reboot, None).expect("reboot");
    // The failure is recorded when the runner's reply is committed, which
    // a "runn and idle" wait may see before it: wait for the error itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.pool.get(vm.id).expect("vm").error.is_none() {
        assert!(Instant::now() < deadline, "a failed reboot is recorded");
        thread::sleep(Duration::from_millis(5));
    }
    let vm = f.wait(vm.id, "runn");
    assert!(
        vm.error.is_some(),
        "a failed reboot is recorded, nothing changes"
    );
    f.act(vm.id, Action::Suspend, None).expect("suspend");
    f.wait(vm.id, "susp");
    f.act(vm.id, Action::Resume, None).expect("resume");
    f.wait(vm.id, "fail");
    assert_eq!(f.usage("node-a"), NONE);
}

// ---------------------------------------------------------------------
// Authorization
// ---------------------------------------------------------------------

#[test]
fn owners_and_oneadmin_act_others_are_forbidden() {
    let f = fixture();
    let vm = f.create(&alice(), SMALL);
    for action in [Action::Hold, Action::Delete] {
        let err = f.pool.action(&bob(), vm.id, action, None).expect_err("bob");
        assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    }
    assert!(matches!(
        f.pool.show(&bob(), vm.id),
        Err(Error::Forbidden { .. })
    ));
    let err = f
        .pool
        .action(&alice(), vm.id, Action::Deploy, Some("node-a"))
        .expect_err("deploy is oneadmin's");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    assert!(matches!(
        f.pool.action(&alice(), 999, Action::Hold, None),
        Err(Error::NotFound { .. })
    ));
    let mine = f.pool.list(&alice(), Filter::All).expect("list");
    assert_eq!(mine.len(), 1);
    assert!(f.pool.list(&bob(), Filter::All).expect("list").is_empty());
    assert!(f
        .pool
        .list(&bob(), Filter::User(1))
        .expect("list")
        .is_empty());
    assert_eq!(
        f.pool.list(&admin(), Filter::User(1)).expect("list").len(),
        1
    );
    let err = f
        .pool
        .action(
            &admin(),
            vm.id,
            Action::Recover(crate::core::vm::state::Recovery::Retry),
            None,
        )
        .expect_err("nothing to recover");
    assert!(matches!(err, Error::InvalidState { .. }), "{err:?}");
}

// ---------------------------------------------------------------------
// Persistence and restart
// ---------------------------------------------------------------------

#[test]
fn vms_history_and_pending_steps_survive_a_reload() {
    let f = fixture();
    let vm = f.running(&alice(), SMALL, "node-a");
    f.act(vm.id, Action::Migrate, Some("node-b"))
        .expect("migrate");
    f.wait(vm.id, "runn");
    let before: Vec<Vm> = f.pool.list(&admin(), Filter::All).expect("list");
    let reloaded = f.reload();
    let mut after = reloaded.pool.list(&admin(), Filter::All).expect("list");
    for vm in &mut after {
        vm.usage.last_poll = 0;
    }
    let mut before = before;
    for vm in &mut before {
        vm.usage.last_poll = 0;
    }
    assert_eq!(after, before);
}

#[test]
fn a_restart_re_drives_every_vm_caught_mid_operation() {
    let f = fixture();
    // A VM whose prolog never ends before the "crash": the pool is
    // dropped with the step pending.
    let slow = Arc::new(Fake::default());
    let vm = f.create(&alice(), SMALL);
    {
        // Not started: the deploy commits, its prolog never runs.
        let stalled = f.reload();
        stalled
            .pool
            .action(&admin(), vm.id, Action::Deploy, Some("node-a"))
            .expect("deploy");
        let p = stalled
            .pool
            .get(vm.id)
            .expect("vm")
            .pending
            .expect("pending");
        assert_eq!(
            (p.awaited, p.host.as_str()),
            (Some(Step::TmProlog), "node-a")
        );
    }
    let after = f.restart(&slow);
    after.wait(vm.id, "runn");
    assert_eq!(slow.calls_of(vm.id), ["mkswap node-a", "deploy node-a"]);
    assert_eq!(after.usage("node-a"), HALF);
}

#[test]
fn a_restart_probes_vmm_steps_before_running_them_again() {
    let f = fixture();
    let vm = f.running(&alice(), SMALL, "node-a");
    {
        let stalled = f.reload();
        stalled
            .pool
            .action(&admin(), vm.id, Action::Shutdown, None)
            .expect("shutdown");
    }
    // The domain is gone already: the probe says the shutdown happened.
    let fake = Arc::new(Fake::default());
    let after = f.restart(&fake);
    after.wait(vm.id, "done");
    assert_eq!(fake.calls_of(vm.id), ["poll node-a", "delete node-a"]);
    assert_eq!(after.usage("node-a"), NONE);
    assert!(after.vnets.list(&admin()).expect("list")[0]
        .leases
        .is_empty());
}

#[test]
fn recover_settles_what_a_probe_cannot() {
    let f = fixture();
    let vm = f.create(&alice(), SMALL);
    let loaded = f.reload();
    let pool = &loaded.pool;
    // Not started: the VM sits in PROLOG.
    pool.action(&admin(), vm.id, Action::Deploy, Some("node-a"))
        .expect("deploy");
    use crate::core::vm::state::Recovery;
    let vm2 = pool
        .action(&admin(), vm.id, Action::Recover(Recovery::Success), None)
        .expect("recover");
    assert_eq!(vm2.short_state(), "boot");
    assert_eq!(vm2.pending.expect("pending").awaited, Some(Step::VmmDeploy));
    let vm3 = pool
        .action(&admin(), vm.id, Action::Recover(Recovery::Retry), None)
        .expect("retry");
    assert_eq!(vm3.pending.expect("pending").awaited, Some(Step::VmmDeploy));
    let vm4 = pool
        .action(&admin(), vm.id, Action::Recover(Recovery::Failure), None)
        .expect("failure");
    assert_eq!(vm4.short_state(), "fail");
    assert_eq!(loaded.usage("node-a"), NONE);
    let err = pool
        .action(&alice(), vm.id, Action::Recover(Recovery::Retry), None)
        .expect_err("oneadmin only");
    assert!(matches!(err, Error::Forbidden { .. }));
}

#[test]
fn the_start_up_recount_fixes_capacity_and_leases() {
    let f = fixture();
    let vm = f.running(&alice(), SMALL, "node-a");
    // Spoil the counters and the leases behind the pool's back.
    let mut host = f.hosts.show(&admin(), "node-b").expect("host");
    host.share.cpu_usage = 999;
    host.share.running_vms = 7;
    let lease = f.vnets.list(&admin()).expect("list")[0].leases[0].clone();
    ports::write(f.store.as_ref(), |tx| {
        tx.put_host(&host)?;
        tx.release_lease(&lease)?;
        let stray = crate::core::vnet::Lease {
            ip: "10.0.0.99".parse().expect("ip"),
            mac: crate::core::vnet::Mac([2, 0, 10, 0, 0, 99]),
            ..lease.clone()
        };
        tx.put_lease(&stray)
    })
    .expect("spoil");
    let fake = Arc::new(Fake::default());
    let after = f.restart(&fake);
    assert_eq!((after.usage("node-a"), after.usage("node-b")), (HALF, NONE));
    // And on disk: a second reload sees the same.
    let again = f.reload();
    assert_eq!((again.usage("node-a"), again.usage("node-b")), (HALF, NONE));
    let leases: Vec<_> = again.vnets.list(&admin()).expect("list")[0]
        .leases
        .iter()
        .map(|l| (l.ip.to_string(), l.vm_id))
        .collect();
    assert_eq!(leases, [("10.0.0.1".to_string(), vm.id)]);
}

#[test]
fn the_start_up_recount_sets_image_counts_from_the_vms() {
    use crate::core::image::{Image, ImageState, NewImage};
    let f = fixture();
    let register = |name: &str| {
        let src = f._dir.path().join(name);
        std::fs::write(&src, b"disk").expect("file");
        let mut new = NewImage::named(name);
        new.public = true;
        f.images.register_path(&admin(), new, &src).expect("image")
    };
    let (kept, ended, idle) = (register("kept"), register("ended"), register("idle"));
    let disks = |i: &Image| format!("{SMALL}\nDISK = [ IMAGE_ID = {} ]", i.id);
    let running = f.running(&alice(), &disks(&kept), "node-a");
    // Two DISKs of one VM on one image count twice.
    let twice = f.create(
        &alice(),
        &format!("{}\nDISK = [ IMAGE_ID = {} ]", disks(&kept), kept.id),
    );
    let done = f.running(&alice(), &disks(&ended), "node-a");
    f.act(done.id, Action::Shutdown, None).expect("shutdown");
    f.wait(done.id, "done");
    let counts = |images: &ImagePool| {
        [kept.id, ended.id, idle.id].map(|id| {
            let i = images.by_id(id).expect("get").expect("image");
            (i.state, i.running_vms)
        })
    };
    let right = [
        (ImageState::Used, 3),
        (ImageState::Ready, 0),
        (ImageState::Ready, 0),
    ];
    assert_eq!(counts(&f.images), right);
    // Spoil the counts behind the pool's back: too few, a DONE VM still
    // counted, a user that does not exist.
    let spoiled = |i: &Image, state, running_vms| Image {
        state,
        running_vms,
        ..f.images.by_id(i.id).expect("get").expect("image")
    };
    ports::write(f.store.as_ref(), |tx| {
        tx.put_image(&spoiled(&kept, ImageState::Ready, 0))?;
        tx.put_image(&spoiled(&ended, ImageState::Used, 1))?;
        tx.put_image(&spoiled(&idle, ImageState::Used, 4))
    })
    .expect("spoil");
    let fake = Arc::new(Fake::default());
    let after = f.restart(&fake);
    after.wait(running.id, "runn");
    assert_eq!(counts(&after.images), right);
    // And on disk: a second reload sees the same.
    assert_eq!(counts(&f.reload().images), right);
    // The counts go on from there: the VMs end, the image is free.
    for id in [running.id, twice.id] {
        after
            .pool
            .action(&admin(), id, Action::Delete, None)
            .expect("delete");
        after.wait(id, "done");
    }
    assert_eq!(counts(&after.images)[0], (ImageState::Ready, 0));
}

#[test]
fn a_vnc_console_without_port_gets_vnc_base_port_plus_the_id() {
    let f = fixture();
    let vm = f.create(&alice(), "GRAPHICS = [ TYPE = vnc, LISTEN = 0.0.0.0 ]");
    let port = |vm: &Vm| {
        vm.template
            .vector("GRAPHICS")
            .and_then(|g| g.get("PORT"))
            .map(str::to_string)
    };
    assert_eq!(port(&vm), Some((5900 + vm.id).to_string()));
    let given = f.create(&alice(), "GRAPHICS = [ TYPE = vnc, PORT = 5999 ]");
    assert_eq!(port(&given), Some("5999".to_string()));
    // It is stored, not computed when shown.
    assert_eq!(
        port(&f.reload().pool.get(vm.id).expect("vm")),
        Some((5900 + vm.id).to_string())
    );
}

#[test]
fn recover_success_needs_a_deploy_id_in_boot() {
    use crate::core::vm::state::Recovery;
    let f = fixture();
    let vm = f.create(&alice(), SMALL);
    let ran = f.running(&alice(), SMALL, "node-b");
    {
        let stalled = f.reload();
        let pool = &stalled.pool;
        // A first deploy that never answered: no deploy id to manage.
        pool.action(&admin(), vm.id, Action::Deploy, Some("node-a"))
            .expect("deploy");
        let boot = pool
            .action(&admin(), vm.id, Action::Recover(Recovery::Success), None)
            .expect("prolog success");
        assert_eq!((boot.short_state(), boot.deploy_id), ("boot", None));
        let err = pool
            .action(&admin(), vm.id, Action::Recover(Recovery::Success), None)
            .expect_err("no deploy id");
        match &err {
            Error::Invalid { field, reason } => {
                assert_eq!(field, "recover");
                assert!(reason.contains("no deploy id"), "{reason}");
                assert!(
                    reason.contains(&format!("recover {} retry", vm.id)),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        let still = pool.get(vm.id).expect("vm");
        assert_eq!(still.short_state(), "boot");
        assert_eq!(
            still.pending.expect("pending").awaited,
            Some(Step::VmmDeploy)
        );
        // A VM that has one (a restore after a stop) is settled as asked.
        let stop = |action| pool.action(&admin(), ran.id, action, None).expect("action");
        stop(Action::Stop);
        stop(Action::Recover(Recovery::Success));
        assert_eq!(
            stop(Action::Recover(Recovery::Success)).short_state(),
            "stop"
        );
        stop(Action::Resume);
        pool.action(&admin(), ran.id, Action::Deploy, Some("node-b"))
            .expect("deploy");
        assert_eq!(
            stop(Action::Recover(Recovery::Success)).short_state(),
            "boot"
        );
        let back = stop(Action::Recover(Recovery::Success));
        assert_eq!(
            (back.short_state(), back.deploy_id.as_deref()),
            ("runn", Some(format!("fake-{}", ran.id).as_str()))
        );
    }
    // retry (or a restart) runs the deploy again and stores its id.
    let fake = Arc::new(Fake::default());
    let after = f.restart(&fake);
    let vm = after.wait(vm.id, "runn");
    assert_eq!(vm.deploy_id, Some(format!("fake-{}", vm.id)));
}

#[test]
fn many_vms_ending_at_once_are_committed_together_and_add_up() {
    let f = fixture();
    let src = f._dir.path().join("shared.img");
    std::fs::write(&src, b"disk").expect("file");
    let mut new = crate::core::image::NewImage::named("shared");
    new.public = true;
    let image = f.images.register_path(&admin(), new, &src).expect("image");
    let template = format!("{SMALL}\nDISK = [ IMAGE_ID = {} ]", image.id);
    let vms: Vec<Vm> = (0..40).map(|_| f.create(&alice(), &template)).collect();
    for vm in &vms {
        f.act(vm.id, Action::Deploy, Some("node-a"))
            .expect("deploy");
    }
    for vm in &vms {
        f.wait(vm.id, "runn");
    }
    // The core over-commits a manual deploy (spec/CORE.md §3.4).
    assert_eq!(f.usage("node-a"), (40 * 50, 40 * 131_072, 40));
    let used = |f: &Fixture| {
        f.images
            .by_id(image.id)
            .expect("get")
            .expect("image")
            .running_vms
    };
    assert_eq!(used(&f), 40);
    for vm in &vms {
        f.act(vm.id, Action::Shutdown, None).expect("shutdown");
    }
    for vm in &vms {
        f.wait(vm.id, "done");
    }
    assert_eq!(f.usage("node-a"), NONE);
    assert!(f.leases().is_empty());
    assert_eq!(used(&f), 0, "every release counted, also within one batch");
    // And on disk.
    let again = f.reload();
    assert_eq!(again.usage("node-a"), NONE);
    for vm in &vms {
        assert_eq!(again.pool.get(vm.id).expect("vm").state, State::Done);
    }
}

// ---------------------------------------------------------------------
// Disk save-as (OCCI.md §4.2 SAVE_AS)
// ---------------------------------------------------------------------

/// A VM of alice's on `node-a` with an image disk (0, from a public OS
/// image), a swap disk (1) and an fs disk (2); answers it and the image.
fn saving_vm(f: &Fixture) -> (Vm, crate::core::image::Image) {
    saving_vm_with(f, "")
}

/// [`saving_vm`] with `extra` template text (`DUMMY_FAIL`...); the base
/// image is registered once per fixture.
fn saving_vm_with(f: &Fixture, extra: &str) -> (Vm, crate::core::image::Image) {
    let base = match f.images.show(&admin(), "base") {
        Ok(image) => image,
        Err(_) => {
            let src = f._dir.path().join("base.img");
            std::fs::write(&src, b"disk").expect("file");
            let mut new = crate::core::image::NewImage::named("base");
            new.public = true;
            f.images.register_path(&admin(), new, &src).expect("image")
        }
    };
    let vm = f.running(
        &alice(),
        &format!(
            "{SMALL}\nDISK = [ IMAGE_ID = {} ]\n\
             DISK = [ TYPE = fs, SIZE = 8, FORMAT = ext3 ]\n{extra}",
            base.id
        ),
        "node-a",
    );
    (vm, base)
}

fn image_of(images: &ImagePool, id: u64) -> crate::core::image::Image {
    images.by_id(id).expect("get").expect("image")
}

/// Alice saves disk `disk` of VM `vm` as `name`; answers the image.
fn save_as(f: &Fixture, vm: u64, disk: usize, name: &str) -> crate::core::image::Image {
    f.pool
        .save_disk_as(&alice(), vm, disk, name)
        .expect("save as")
        .1
}

#[test]
fn save_as_makes_a_locked_image_and_marks_the_disk() {
    use crate::core::image::{ImageState, ImageType};
    let f = fixture();
    let (vm, base) = saving_vm(&f);
    // The image disk is DISK 1 (SMALL's swap is 0); the fs disk is 2.
    let (saved, image) = f
        .pool
        .save_disk_as(&alice(), vm.id, 1, "backup")
        .expect("save as");
    assert_eq!(
        (image.owner, image.name.as_str(), image.image_type),
        (1, "backup", ImageType::Os)
    );
    assert_eq!(image.state, ImageState::Locked);
    assert!(!image.public && !image.persistent);
    assert_eq!(image.template.get("SAVED_VM_ID"), Some(&vm.id.to_string()));
    assert_eq!(image.template.get("SAVED_DISK_ID"), Some(&"1".to_string()));
    let source = f.images.source(image.id).display().to_string();
    let disk = saved.template.vectors("DISK").nth(1).expect("disk 1");
    assert_eq!(disk.get("SAVE_AS"), Some(image.id.to_string().as_str()));
    assert_eq!(disk.get("SAVE_AS_SOURCE"), Some(source.as_str()));
    assert_eq!(base.image_type, ImageType::Os);
    // An fs disk makes a DATABLOCK; oneadmin may save another's disk,
    // and the image is the VM owner's.
    let (_, block) = f
        .pool
        .save_disk_as(&admin(), vm.id, 2, "scratch")
        .expect("fs disk");
    assert_eq!((block.owner, block.image_type), (1, ImageType::Datablock));
    // Durable: both survive a reload.
    let again = f.reload();
    let disk_again = again.pool.get(vm.id).expect("vm");
    assert_eq!(
        disk_again
            .template
            .vectors("DISK")
            .nth(1)
            .and_then(|d| d.get("SAVE_AS")),
        Some(image.id.to_string().as_str())
    );
    assert_eq!(image_of(&again.images, image.id).state, ImageState::Locked);
    // A LOCKED image is neither usable nor deletable.
    assert!(matches!(
        f.images.delete(&alice(), "backup"),
        Err(Error::InvalidState { .. })
    ));
    assert!(f
        .pool
        .create(&alice(), &format!("DISK = [ IMAGE_ID = {} ]", image.id))
        .is_err());
}

#[test]
fn save_as_refusals_change_nothing() {
    let f = fixture();
    let (vm, _) = saving_vm(&f);
    save_as(&f, vm.id, 1, "taken");
    let before_vm = f.pool.get(vm.id).expect("vm");
    let before_images = f.images.list(&admin()).expect("images");
    let refusals: Vec<(Caller, u64, usize, &str)> = vec![
        (bob(), vm.id, 2, "bobs"),    // not bob's VM
        (alice(), vm.id, 9, "nine"),  // no such disk
        (alice(), vm.id, 0, "swap"),  // the swap disk
        (alice(), vm.id, 1, "again"), // already saved as
        (alice(), vm.id, 2, "taken"), // alice has that name
        (alice(), vm.id, 2, "123"),   // not an image name
        (alice(), vm.id, 2, ""),      // not an image name
        (alice(), 999, 2, "ghost"),   // no such VM
    ];
    for (who, id, disk, name) in refusals {
        let result = f.pool.save_disk_as(&who, id, disk, name);
        assert!(result.is_err(), "{} {id} {disk} {name:?}", who.name);
    }
    assert!(matches!(
        f.pool.save_disk_as(&bob(), vm.id, 2, "bobs"),
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        f.pool.save_disk_as(&alice(), vm.id, 2, "taken"),
        Err(Error::Conflict(_))
    ));
    // DONE and FAILED VMs are refused.
    let failed = f.create(&alice(), &format!("{SMALL}\nDUMMY_FAIL = deploy"));
    f.act(failed.id, Action::Deploy, Some("node-b"))
        .expect("deploy");
    f.wait(failed.id, "fail");
    assert!(matches!(
        f.pool.save_disk_as(&alice(), failed.id, 0, "dead"),
        Err(Error::InvalidState { .. })
    ));
    let after_images = f.images.list(&admin()).expect("images");
    assert_eq!(f.pool.get(vm.id).expect("vm").template, before_vm.template);
    assert_eq!(after_images, before_images);
}

#[test]
fn a_shutdown_moves_the_disk_to_the_image_and_makes_it_ready() {
    use crate::core::image::ImageState;
    let f = fixture();
    let (vm, _) = saving_vm(&f);
    let image = save_as(&f, vm.id, 1, "backup");
    let source = f.images.source(image.id);
    // The fake TM moves nothing: put what the move would have there.
    std::fs::write(&source, vec![0u8; 3 * 1024 * 1024 / 2]).expect("saved file");
    f.act(vm.id, Action::Shutdown, None).expect("shutdown");
    f.wait(vm.id, "done");
    let moved = TmAction::Mv {
        src: ports::HostPath::new("node-a", format!("/srv/vms/{}/disk.1", vm.id)),
        dst: ports::HostPath::new("fe", source.display().to_string()),
    };
    assert!(
        f.fake.transfers_of(vm.id).contains(&moved),
        "{:?}",
        f.fake.transfers_of(vm.id)
    );
    let ready = image_of(&f.images, image.id);
    assert_eq!((ready.state, ready.size_mb), (ImageState::Ready, 2));
    assert_eq!(
        image_of(&f.reload().images, image.id).state,
        ImageState::Ready
    );
}

#[test]
fn a_vm_that_ends_without_saving_leaves_the_image_in_error() {
    use crate::core::image::{ImageState, ERROR_ATTRIBUTE};
    let f = fixture();
    // Deleted while running, cancelled, and an epilog that fails.
    let save = |extra: &str| {
        let (vm, _) = saving_vm_with(&f, extra);
        let name = format!("save-{}", vm.id);
        (vm.id, save_as(&f, vm.id, 1, &name).id)
    };
    let deleted = save("");
    let cancelled = save("");
    let failed = save("DUMMY_FAIL = delete");
    let state = |(_, image): (u64, u64)| image_of(&f.images, image).state;
    f.act(deleted.0, Action::Delete, None).expect("delete");
    f.wait(deleted.0, "done");
    f.act(cancelled.0, Action::Cancel, None).expect("cancel");
    f.wait(cancelled.0, "done");
    // A cancel's epilog does not move the disk.
    assert!(!f
        .fake
        .transfers_of(cancelled.0)
        .iter()
        .any(|t| matches!(t, TmAction::Mv { .. })));
    f.act(failed.0, Action::Shutdown, None).expect("shutdown");
    f.wait(failed.0, "fail");
    // FAILED: it can only be deleted or resubmitted now.
    assert_eq!(state(failed), ImageState::Error);
    f.act(failed.0, Action::Delete, None).expect("delete");
    f.wait(failed.0, "done");
    for case in [deleted, cancelled, failed] {
        assert_eq!(state(case), ImageState::Error, "VM {}", case.0);
        let image = image_of(&f.images, case.1);
        assert!(
            image.template[ERROR_ATTRIBUTE].contains(&format!("VM {} ", case.0)),
            "{:?}",
            image.template
        );
        // An image in ERROR may be deleted.
        f.images
            .delete(&alice(), &case.1.to_string())
            .expect("delete image");
    }
}

#[test]
fn a_restart_keeps_a_locked_image_waiting_for_its_running_vm() {
    use crate::core::image::ImageState;
    let f = fixture();
    let (vm, _) = saving_vm(&f);
    let image = save_as(&f, vm.id, 1, "backup");
    let fake = Arc::new(Fake::default());
    let after = f.restart(&fake);
    after.wait(vm.id, "runn");
    // No file yet, and still LOCKED, not ERROR.
    assert_eq!(image_of(&after.images, image.id).state, ImageState::Locked);
    after
        .pool
        .action(&alice(), vm.id, Action::Shutdown, None)
        .expect("shutdown");
    after.wait(vm.id, "done");
    assert_eq!(image_of(&after.images, image.id).state, ImageState::Ready);
}

// ---------------------------------------------------------------------
// DONE VMs leaving memory
// ---------------------------------------------------------------------

/// `vm` as a reload gives it back (the poll time is not stored).
fn as_loaded(mut vm: Vm) -> Vm {
    vm.usage.last_poll = 0;
    vm
}

#[test]
fn vms_done_long_ago_leave_memory_and_are_read_from_the_store() {
    let f = fixture();
    let live = f.running(&alice(), SMALL, "node-a");
    let ended = f.running(&alice(), SMALL, "node-a");
    f.act(ended.id, Action::Shutdown, None).expect("shutdown");
    let ended = f.wait(ended.id, "done");
    let kept_until = ended.etime + f.settings.done_retention.as_secs();

    assert!(f.pool.forget_done(kept_until).expect("forget").is_empty());
    assert_eq!(f.pool.kept_owner(ended.id), Some(alice().uid));
    assert_eq!(
        f.pool.forget_done(kept_until + 1).expect("forget"),
        vec![ended.id]
    );
    assert_eq!(f.pool.len(), 1);
    assert_eq!(f.pool.kept_owner(ended.id), None);
    assert_eq!(f.pool.kept_owner(live.id), Some(alice().uid));

    // Still there for its owner and oneadmin, whole, from the store.
    let shown = f.pool.show(&alice(), ended.id).expect("show");
    assert_eq!(shown, as_loaded(ended.clone()));
    assert_eq!(shown.history.len(), 1);
    assert!(f.pool.show(&admin(), ended.id).is_ok());
    assert!(matches!(
        f.pool.show(&bob(), ended.id),
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(f.pool.get(999), Err(Error::NotFound { .. })));
    // Acting on it is what acting on a DONE VM is.
    assert!(f.act(ended.id, Action::Shutdown, None).is_err());
    assert_eq!(f.pool.get(ended.id).expect("get").state, State::Done);
}

#[test]
fn a_load_skips_vms_done_long_ago_unless_a_step_is_pending() {
    let f = fixture();
    let live = f.running(&alice(), SMALL, "node-a");
    let ended = f.create(&alice(), SMALL);
    f.act(ended.id, Action::Delete, None).expect("delete");
    let ended = f.wait(ended.id, "done");
    let ids = |done_since: u64| -> Vec<u64> {
        f.store
            .load_vms(done_since)
            .expect("load")
            .iter()
            .map(|vm| vm.id)
            .collect()
    };
    assert_eq!(ids(ended.etime), [live.id, ended.id]);
    assert_eq!(ids(ended.etime + 1), [live.id]);

    // A clean-up still to run keeps it loaded, so a restart re-drives it.
    let cleanup = crate::core::vm::Pending {
        op: ended.op,
        awaited: None,
        cleanup: vec![Step::TmEpilogDelete],
        host: "node-a".into(),
        started_at: ended.etime,
    };
    ports::write(&*f.store, |tx| tx.set_vm_pending(ended.id, Some(&cleanup))).expect("pending");
    assert_eq!(ids(ended.etime + 1), [live.id, ended.id]);
    let loaded = f.store.load_vm(ended.id).expect("load").expect("found");
    assert_eq!(loaded.pending, Some(cleanup));
    assert_eq!(f.store.load_vm(999).expect("load"), None);
}

#[test]
fn a_client_token_is_forgotten_with_its_vm() {
    let f = fixture();
    let launch = |token: &str| -> Vec<u64> {
        f.pool
            .launch_once(&alice(), token, || {
                Ok(vec![f.create(
                    &alice(),
                    &format!("{SMALL}\nEC2_CLIENT_TOKEN = {token}"),
                )])
            })
            .expect("launch")
            .iter()
            .map(|vm| vm.id)
            .collect()
    };
    let first = launch("tok-1");
    assert_eq!(launch("tok-1"), first, "the token still counts");
    f.act(first[0], Action::Delete, None).expect("delete");
    let ended = f.wait(first[0], "done");
    f.pool
        .forget_done(ended.etime + f.settings.done_retention.as_secs() + 1)
        .expect("forget");
    let again = launch("tok-1");
    assert_ne!(again, first, "a forgotten token launches anew");
}
