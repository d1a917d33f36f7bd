//! `core::hooks` against a fake [`Drivers`]: argument splitting and
//! substitution, placement, the state pairs that fire, background running
//! in order per VM, and failures that are only logged. The real
//! `ScriptDrivers` runs a hook in `drivers::tests`.

use std::sync::mpsc;

use super::*;
use crate::core::context::{ObjectKey, OtherVm};
use crate::core::{Error, Result};

/// Records every hook it runs; a hook whose command is `fail` fails, and
/// one whose command is `wait` waits for a message on `gate` first.
#[derive(Default)]
struct Fake {
    ran: Mutex<Vec<HookRequest>>,
    gate: Mutex<Option<mpsc::Receiver<()>>>,
}

impl Drivers for Fake {
    fn hook(&self, request: &HookRequest) -> Result<String> {
        if request.command == "wait" {
            if let Some(gate) = self.gate.lock().expect("gate").as_ref() {
                gate.recv_timeout(Duration::from_secs(10))
                    .expect("released");
            }
        }
        self.ran.lock().expect("ran").push(request.clone());
        if request.command == "fail" {
            return Err(Error::Driver {
                action: format!("hook {}", request.name),
                host: "front-end".into(),
                message: "exit 1".into(),
            });
        }
        Ok(String::new())
    }
}

impl Fake {
    fn ran(&self) -> Vec<HookRequest> {
        self.ran.lock().expect("ran").clone()
    }
}

fn hook(name: &str, on: HookOn, command: &str, arguments: &str, remote: bool) -> HookSpec {
    HookSpec {
        name: name.into(),
        on,
        command: command.into(),
        arguments: arguments.into(),
        remote,
    }
}

fn manager(hooks: Vec<HookSpec>) -> (HookManager, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    (HookManager::new(hooks, fake.clone()), fake)
}

fn template() -> Template {
    Template::parse(
        r#"NAME = "web 1"
NIC = [ NETWORK = "Private", IP = 10.0.0.7, MAC = "02:00:0a:00:00:07" ]
NIC = [ NETWORK = "Public", IP = 192.168.0.5, MAC = "02:00:c0:a8:00:05" ]
NIC = [ NETWORK = "Public LAN", IP = 1.2.3.4, MAC = "02:00:01:02:03:04" ]
CONTEXT = [ HOSTNAME = web1.local ]
"#,
    )
    .expect("template")
}

#[test]
fn arguments_split_on_blanks_outside_references() {
    assert_eq!(split_arguments(""), Vec::<&str>::new());
    assert_eq!(
        split_arguments("  $VMID\t$NAME  x "),
        ["$VMID", "$NAME", "x"]
    );
    assert_eq!(
        split_arguments(r#"$NIC[MAC, NETWORK="Public LAN"] $NIC[ IP ] "a b" c"#),
        [
            r#"$NIC[MAC, NETWORK="Public LAN"]"#,
            "$NIC[ IP ]",
            "\"a b\"",
            "c"
        ]
    );
}

#[test]
fn arguments_are_substituted_against_the_vm_and_missing_is_empty() {
    let (hooks, _) = manager(vec![hook(
        "mail",
        HookOn::Running,
        "notify",
        r#"$VMID $ID $NAME $NIC[MAC] $NIC[MAC, NETWORK="Public"] $NIC[IP, NETWORK="Public LAN"] $CONTEXT[HOSTNAME] <$MISSING> $UNAME/$UID $4.HOSTNAME"#,
        false,
    )]);
    let t = template();
    let other = |vmid: u64| {
        (vmid == 4).then(|| OtherVm {
            // Another user's VM: hooks are the administrator's and see it.
            owner: 42,
            template: Template::parse("CONTEXT = [ HOSTNAME = db.local ]").expect("t"),
        })
    };
    let view = VmView::new(7, &t).owner(5, "alice").others(&other);
    let requests = hooks.requests(&view, HookOn::Running);
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].args,
        [
            "7",
            "7",
            "web 1",
            "02:00:0a:00:00:07",
            "02:00:c0:a8:00:05",
            "1.2.3.4",
            "web1.local",
            "<>",
            "alice/5",
            "db.local",
        ]
    );
    // A missing value alone is an empty argument, not a missing one.
    let (hooks, _) = manager(vec![hook("h", HookOn::Done, "c", "$NIC[GW] $VMID", false)]);
    assert_eq!(hooks.requests(&view, HookOn::Done)[0].args, ["", "7"]);
}

/// Network 3 is alice's (uid 5); no image.
struct Networks;

impl ObjectLookup for Networks {
    fn network(&self, owner: u64, key: ObjectKey<'_>) -> Option<Template> {
        (owner == 5 && key == ObjectKey::Id(3))
            .then(|| Template::parse("GATEWAY = 10.0.0.1").expect("t"))
    }

    fn image(&self, _owner: u64, _key: ObjectKey<'_>) -> Option<Template> {
        None
    }
}

#[test]
fn arguments_get_the_special_names_as_the_owner_sees_them() {
    let (hooks, _) = manager(vec![hook(
        "h",
        HookOn::Running,
        "c",
        "$GID $GNAME $USER[NAME] $NETWORK[GATEWAY, NETWORK_ID=3] <$IMAGE[NAME, IMAGE_ID=1]>",
        false,
    )]);
    let t = template();
    let view = VmView::new(7, &t).owner(5, "alice").objects(&Networks);
    assert_eq!(
        hooks.requests(&view, HookOn::Running)[0].args,
        ["1", "users", "alice", "10.0.0.1", "<>"]
    );
    // Without lookups (VmView::new's default) a network is empty.
    let view = VmView::new(7, &t).owner(5, "alice");
    assert_eq!(
        hooks.requests(&view, HookOn::Running)[0].args,
        ["1", "users", "alice", "", "<>"]
    );
}

#[test]
fn requests_pick_the_event_the_site_and_clean_the_name() {
    let (hooks, _) = manager(vec![
        hook("local one", HookOn::Running, "/bin/a", "", false),
        hook("remote", HookOn::Running, "b", "$VMID", true),
        hook("create remote", HookOn::Create, "c", "", true),
        hook("done", HookOn::Done, "d", "", false),
    ]);
    let t = template();
    let on_host = VmView::new(7, &t).host("node1");
    let running = hooks.requests(&on_host, HookOn::Running);
    let summary: Vec<_> = running
        .iter()
        .map(|r| (r.name.as_str(), r.command.as_str(), r.site.clone(), r.vm_id))
        .collect();
    assert_eq!(
        summary,
        [
            ("local_one", "/bin/a", HookSite::FrontEnd, 7),
            ("remote", "b", HookSite::Host("node1".into()), 7),
        ]
    );
    assert!(running[0].args.is_empty(), "no '-' placeholder");
    // A remote hook of a VM without a host is skipped.
    let no_host = VmView::new(7, &t);
    let names: Vec<_> = hooks
        .requests(&no_host, HookOn::Running)
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["local_one"]);
    // CREATE hooks always run on the front-end.
    assert_eq!(
        hooks.requests(&on_host, HookOn::Create)[0].site,
        HookSite::FrontEnd
    );
    assert!(hooks.requests(&on_host, HookOn::Stop).is_empty());
}

#[test]
fn hooks_with_bad_arguments_are_skipped() {
    let (hooks, fake) = manager(vec![
        hook("bad", HookOn::Running, "c", "cost $ 5", false),
        hook("good", HookOn::Running, "c", "$VMID", false),
    ]);
    let t = template();
    let view = VmView::new(7, &t);
    let names: Vec<_> = hooks
        .requests(&view, HookOn::Running)
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["good"]);
    hooks.fire(&view, HookOn::Running);
    assert!(hooks.wait_idle(Duration::from_secs(10)));
    assert_eq!(fake.ran().len(), 1);
}

#[test]
fn the_pairs_entered_that_fire_hooks() {
    use crate::core::vm::state::pair_exists;
    for state in State::ALL {
        for lcm in LcmState::ALL {
            if !pair_exists(state, lcm) {
                continue;
            }
            let expected = match (state, lcm) {
                (State::Active, LcmState::Prolog) => Some(HookOn::Prolog),
                (State::Active, LcmState::Running) => Some(HookOn::Running),
                (State::Active, LcmState::Epilog) => Some(HookOn::Shutdown),
                (State::Active, LcmState::Unknown) => Some(HookOn::Unknown),
                (State::Stopped, LcmState::LcmInit) => Some(HookOn::Stop),
                (State::Done, LcmState::LcmInit) => Some(HookOn::Done),
                (State::Failed, LcmState::LcmInit) => Some(HookOn::Failed),
                _ => None,
            };
            assert_eq!(HookOn::entered(state, lcm), expected, "{state}/{lcm}");
        }
    }
}

#[test]
fn transitions_fire_on_change_only() {
    let (hooks, fake) = manager(
        HookOn::ALL
            .into_iter()
            .map(|on| hook(on.name(), on, "c", "", false))
            .collect(),
    );
    let t = template();
    let view = VmView::new(7, &t).host("node1");
    let boot = (State::Active, LcmState::Boot);
    let running = (State::Active, LcmState::Running);
    let unknown = (State::Active, LcmState::Unknown);
    let epilog = (State::Active, LcmState::Epilog);
    let done = (State::Done, LcmState::LcmInit);
    hooks.on_create(&view);
    hooks.on_transition(
        &view,
        (State::Pending, LcmState::LcmInit),
        (State::Active, LcmState::Prolog),
    );
    hooks.on_transition(&view, (State::Active, LcmState::Prolog), boot);
    hooks.on_transition(&view, boot, running);
    hooks.on_transition(&view, running, running);
    hooks.on_transition(&view, running, unknown);
    hooks.on_transition(&view, unknown, running);
    hooks.on_transition(&view, running, (State::Active, LcmState::Shutdown));
    hooks.on_transition(&view, (State::Active, LcmState::Shutdown), epilog);
    hooks.on_transition(&view, epilog, done);
    assert!(hooks.wait_idle(Duration::from_secs(10)));
    let fired: Vec<_> = fake.ran().into_iter().map(|r| r.name).collect();
    assert_eq!(
        fired,
        ["CREATE", "PROLOG", "RUNNING", "UNKNOWN", "RUNNING", "SHUTDOWN", "DONE"],
        "in order: one VM's hooks run one after the other"
    );
}

#[test]
fn firing_never_blocks_and_failures_are_only_logged() {
    let (hooks, fake) = manager(vec![
        hook("slow", HookOn::Running, "wait", "", false),
        hook("broken", HookOn::Running, "fail", "", false),
        hook("after", HookOn::Running, "ok", "", false),
    ]);
    let (release, gate) = mpsc::channel();
    *fake.gate.lock().expect("gate") = Some(gate);
    let t = template();
    let view = VmView::new(7, &t);
    // Returns while the first hook is still waiting on the gate.
    hooks.fire(&view, HookOn::Running);
    let other = VmView::new(8, &t);
    hooks.fire(&other, HookOn::Done);
    assert!(fake.ran().is_empty(), "nothing ran before the gate opened");
    assert!(!hooks.wait_idle(Duration::from_millis(50)), "still busy");
    release.send(()).expect("release");
    assert!(hooks.wait_idle(Duration::from_secs(10)));
    let ran: Vec<_> = fake.ran().into_iter().map(|r| r.name).collect();
    assert_eq!(ran, ["slow", "broken", "after"], "a failure stops nothing");
    // The manager keeps working after a failure.
    release.send(()).expect("release");
    hooks.fire(&other, HookOn::Running);
    assert!(hooks.wait_idle(Duration::from_secs(10)));
    assert_eq!(fake.ran().len(), 6);
}

/// Panics in `hook` whatever the request.
struct Panicking;

impl Drivers for Panicking {
    fn hook(&self, _request: &HookRequest) -> Result<String> {
        panic!("a broken driver")
    }
}

#[test]
fn a_panicking_driver_does_not_stall_the_vm_queue() {
    let hooks = HookManager::new(
        vec![
            hook("one", HookOn::Running, "c", "", false),
            hook("two", HookOn::Running, "c", "", false),
        ],
        Arc::new(Panicking),
    );
    let t = template();
    hooks.fire(&VmView::new(7, &t), HookOn::Running);
    assert!(hooks.wait_idle(Duration::from_secs(10)));
    hooks.fire(&VmView::new(7, &t), HookOn::Running);
    assert!(hooks.wait_idle(Duration::from_secs(10)));
}

#[test]
fn different_vms_run_side_by_side() {
    let (hooks, fake) = manager(vec![
        hook("slow", HookOn::Running, "wait", "", false),
        hook("quick", HookOn::Done, "ok", "", false),
    ]);
    let (release, gate) = mpsc::channel();
    *fake.gate.lock().expect("gate") = Some(gate);
    let t = template();
    hooks.fire(&VmView::new(7, &t), HookOn::Running);
    hooks.fire(&VmView::new(8, &t), HookOn::Done);
    // VM 8's hook ends while VM 7's still waits.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.ran().is_empty() {
        assert!(Instant::now() < deadline, "VM 8's hook never ran");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(fake.ran()[0].vm_id, 8);
    release.send(()).expect("release");
    assert!(hooks.wait_idle(Duration::from_secs(10)));
    assert_eq!(fake.ran().len(), 2);
}
