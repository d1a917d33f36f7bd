//! Pure tests of the VM module: the capacity a VM holds, derived from its
//! state, against the table's bookkeeping for every transition; and the
//! jobs made of driver steps (TM action lists per DISK, VMM requests,
//! paths). The pool over a real store with fake drivers is tested in
//! `crate::store`'s VM tests.

use std::collections::BTreeSet;

use super::jobs::{self, Context, Role, Work};
use super::record::{History, Reservation, Usage, Vm};
use super::state::{next, pair_exists, Event, LcmState, Outcome, Record, State, Step};
use crate::core::ports::{HostPath, TmAction};
use crate::core::Settings;
use crate::template::Template;

fn vm(state: State, lcm: LcmState, template: &str, hosts: &[u64]) -> Vm {
    Vm {
        id: 7,
        uid: 1,
        uname: "alice".into(),
        name: "one-7".into(),
        state,
        lcm,
        deploy_id: Some("one-7".into()),
        template: Template::parse(template).expect("template"),
        reservation: Reservation {
            cpu: 100,
            mem_kb: 1024,
        },
        usage: Usage::default(),
        stime: 1,
        etime: 0,
        history: hosts
            .iter()
            .enumerate()
            .map(|(i, &h)| {
                History::open(
                    i as u32,
                    h,
                    &format!("node{h}"),
                    "/vms",
                    "vmm_dummy",
                    "tm_dummy",
                )
            })
            .collect(),
        error: None,
        pending: None,
        op: 0,
        unplaced: None,
    }
}

/// The capacity bookkeeping of a transition's steps, applied to the set
/// of hosts the VM holds capacity on.
fn follow(vm: &mut Vm, steps: &[Step], new_host: u64) -> BTreeSet<u64> {
    let mut held: BTreeSet<u64> = vm.capacity_hosts().into_iter().collect();
    for step in steps {
        match *step {
            Step::OpenHistory => {
                let seq = vm.history.len() as u32;
                vm.history
                    .push(History::open(seq, new_host, "new", "/vms", "v", "t"));
            }
            Step::CopyHistory(r) => {
                let seq = vm.history.len() as u32;
                let copy = vm.record(r).expect("record").copy_as(seq);
                vm.history.push(copy);
            }
            Step::ReserveCapacity(r) => {
                assert!(
                    held.insert(vm.record(r).expect("record").host_id),
                    "{steps:?}"
                );
            }
            Step::ReleaseCapacity(r) => {
                assert!(
                    held.remove(&vm.record(r).expect("record").host_id),
                    "{steps:?}"
                );
            }
            _ => {}
        }
    }
    held
}

#[test]
fn derived_capacity_matches_the_tables_bookkeeping_for_every_transition() {
    let mut checked = 0;
    for state in State::ALL {
        for lcm in LcmState::ALL {
            // FAILURE and CLEANUP are transient in OpenNebula: cloudgate
            // never stores them.
            if !pair_exists(state, lcm) || matches!(lcm, LcmState::Failure | LcmState::Cleanup) {
                continue;
            }
            for event in Event::ALL {
                let Ok(Outcome::Transition(t)) = next(state, lcm, event) else {
                    continue;
                };
                // A VM that was active somewhere has a record; migrations
                // in flight have two.
                let hosts: &[u64] = match (state, lcm) {
                    (State::Pending | State::Hold | State::Init, _) => &[],
                    (State::Active, LcmState::Migrate | LcmState::SaveMigrate) => &[1, 2],
                    _ => &[1],
                };
                let mut vm = vm(state, lcm, "", hosts);
                let held = follow(&mut vm, &t.steps, 3);
                vm.state = t.state;
                vm.lcm = t.lcm;
                let derived: BTreeSet<u64> = vm.capacity_hosts().into_iter().collect();
                assert_eq!(held, derived, "{state}/{lcm} {event} -> {t}");
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} transitions checked");
}

#[test]
fn a_vm_without_memory_or_cpu_holds_nothing() {
    let mut v = vm(State::Active, LcmState::Running, "", &[1]);
    assert_eq!(v.capacity_hosts(), [1]);
    v.reservation = Reservation::default();
    assert!(v.capacity_hosts().is_empty());
}

fn settings() -> Settings {
    Settings {
        var_dir: "/var/lib/cloudgate".into(),
        front_end: "fe".into(),
        ..Settings::default()
    }
}

fn job(v: &Vm, step: Step) -> Work {
    let settings = settings();
    let no_host = |_: u64| None;
    let ctx = Context {
        settings: &settings,
        host_template: &no_host,
    };
    jobs::build(v, 3, step, Role::Awaited, &ctx)
        .expect("a driver step")
        .work
}

fn at(host: &str, path: &str) -> HostPath {
    HostPath::new(host, path)
}

#[test]
fn the_prolog_makes_each_disk_then_the_context_cd() {
    let v = vm(
        State::Active,
        LcmState::Prolog,
        "DISK = [ SOURCE = /img/a.img, TARGET = hda ]\n\
         DISK = [ SOURCE = http://repo/b.qcow2, CLONE = no ]\n\
         DISK = [ TYPE = swap, SIZE = 512 ]\n\
         DISK = [ TYPE = fs, SIZE = 1024, FORMAT = ext3 ]\n\
         CONTEXT = [ HOSTNAME = web, TARGET = hdd ]\nDUMMY_FAIL = clone",
        &[1],
    );
    let Work::Transfer(t) = job(&v, Step::TmProlog) else {
        panic!("not a transfer")
    };
    assert_eq!(t.driver, "tm_dummy");
    assert_eq!(
        t.actions,
        [
            TmAction::Clone {
                src: "fe:/img/a.img".into(),
                dst: at("node1", "/vms/7/disk.0")
            },
            TmAction::Ln {
                src: "http://repo/b.qcow2".into(),
                dst: at("node1", "/vms/7/disk.1")
            },
            TmAction::MkSwap {
                size_mb: 512,
                dst: at("node1", "/vms/7/disk.2")
            },
            TmAction::MkImage {
                size_mb: 1024,
                fstype: "ext3".into(),
                dst: at("node1", "/vms/7/disk.3")
            },
        ]
    );
    let cd = t.context.expect("context");
    assert_eq!(cd.dst, at("node1", "/vms/7/disk.4"));
    assert_eq!(cd.fe_dir, std::path::PathBuf::from("/var/lib/cloudgate/7"));
    assert_eq!(cd.context.get("HOSTNAME"), Some("web"));
    // The VM's DUMMY_* attributes reach the scripts.
    assert_eq!(t.env.get("DUMMY_FAIL"), Some("clone"));

    let bare = vm(
        State::Active,
        LcmState::Prolog,
        "DISK = [ TARGET = hda ]",
        &[1],
    );
    assert!(matches!(job(&bare, Step::TmProlog), Work::Fail(m) if m.contains("undefined source")));
}

#[test]
fn the_epilog_saves_save_disks_then_deletes_the_directory() {
    let v = vm(
        State::Active,
        LcmState::Epilog,
        "DISK = [ SOURCE = /img/a.img ]\n\
         DISK = [ IMAGE_ID = 4, SOURCE = /repo/4, SAVE = yes, CLONE = no ]\n\
         DISK = [ SOURCE = /img/c.img, SAVE = yes ]",
        &[1],
    );
    let Work::Transfer(t) = job(&v, Step::TmEpilog) else {
        panic!("not a transfer")
    };
    assert_eq!(
        t.actions,
        [
            TmAction::Mv {
                src: at("node1", "/vms/7/disk.1"),
                dst: at("fe", "/repo/4")
            },
            TmAction::Mv {
                src: at("node1", "/vms/7/disk.2"),
                dst: at("fe", "/var/lib/cloudgate/7/disk.2")
            },
            TmAction::Delete {
                path: at("node1", "/vms/7")
            },
        ]
    );
}

#[test]
fn the_epilog_moves_save_as_disks_to_their_image_unless_cancelled() {
    let mut v = vm(
        State::Active,
        LcmState::Epilog,
        "DISK = [ IMAGE_ID = 4, SOURCE = /repo/4, SAVE = no, SAVE_AS = 9, SAVE_AS_SOURCE = /repo/9 ]\n\
         DISK = [ TYPE = swap, SIZE = 8 ]",
        &[1],
    );
    let actions = |v: &Vm| match job(v, Step::TmEpilog) {
        Work::Transfer(t) => t.actions,
        _ => panic!("not a transfer"),
    };
    let delete = TmAction::Delete {
        path: at("node1", "/vms/7"),
    };
    assert_eq!(
        actions(&v),
        [
            TmAction::Mv {
                src: at("node1", "/vms/7/disk.0"),
                dst: at("fe", "/repo/9")
            },
            delete.clone(),
        ]
    );
    // A cancelled VM's disk is not worth keeping (OpenNebula 2.2).
    v.history[0].reason = super::state::Reason::Cancel;
    assert_eq!(actions(&v), [delete]);
}

#[test]
fn moves_and_deletes_name_the_right_hosts() {
    let v = vm(State::Active, LcmState::PrologMigrate, "", &[1, 2]);
    let actions = |step| match job(&v, step) {
        Work::Transfer(t) => t.actions,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        actions(Step::TmPrologMigrate),
        [TmAction::Mv {
            src: at("node1", "/vms/7"),
            dst: at("node2", "/vms/7")
        }]
    );
    assert_eq!(
        actions(Step::TmEpilogDeletePrevious),
        [TmAction::Delete {
            path: at("node1", "/vms/7")
        }]
    );
    assert_eq!(
        actions(Step::TmEpilogStop),
        [TmAction::Mv {
            src: at("node2", "/vms/7"),
            dst: at("fe", "/var/lib/cloudgate/7/images")
        }]
    );
    assert_eq!(
        actions(Step::TmPrologResume),
        [TmAction::Mv {
            src: at("fe", "/var/lib/cloudgate/7/images"),
            dst: at("node2", "/vms/7")
        }]
    );
    assert_eq!(
        actions(Step::TmEpilogDeleteStop),
        [TmAction::Delete {
            path: at("fe", "/var/lib/cloudgate/7/images")
        }]
    );
}

#[test]
fn vmm_steps_carry_hosts_deploy_id_and_files() {
    let v = vm(State::Active, LcmState::SaveMigrate, "NAME = x", &[1, 2]);
    match job(&v, Step::VmmSavePrevious) {
        Work::Save(r) => {
            assert_eq!(
                (r.target.host.as_str(), r.deploy_id.as_str()),
                ("node1", "one-7")
            );
            assert_eq!(r.checkpoint, "/vms/7/checkpoint");
        }
        other => panic!("{other:?}"),
    }
    match job(&v, Step::VmmMigrate) {
        Work::Migrate(r) => {
            assert_eq!(
                (r.target.host.as_str(), r.destination.as_str()),
                ("node1", "node2")
            );
        }
        other => panic!("{other:?}"),
    }
    match job(&v, Step::VmmDeploy) {
        Work::Deploy(r) => {
            assert_eq!(r.target.host, "node2");
            assert_eq!(r.remote_file, "/vms/7/deployment.1");
            assert_eq!(r.deployment, "NAME = x\n");
        }
        other => panic!("{other:?}"),
    }
    match job(&v, Step::VmmRestore) {
        Work::Restore(r) => assert_eq!(r.checkpoint, "/vms/7/checkpoint"),
        other => panic!("{other:?}"),
    }
    assert_eq!(jobs::host_of(&v, Step::VmmCancelPrevious), "node1");
    assert_eq!(jobs::host_of(&v, Step::VmmShutdown), "node2");
    // No record: the step fails like a driver, naming why.
    let none = vm(State::Active, LcmState::Boot, "", &[]);
    assert!(matches!(job(&none, Step::VmmDeploy), Work::Fail(m) if m.contains("no current")));
    let settings = settings();
    let no_host = |_: u64| None;
    let ctx = Context {
        settings: &settings,
        host_template: &no_host,
    };
    assert!(jobs::build(&v, 1, Step::VmmDriverCancel, Role::Awaited, &ctx).is_none());
    let probe = jobs::probe(&v, 1, Step::VmmMigrate, &ctx).expect("probe");
    match probe.work {
        Work::Probe(polls) => {
            let hosts: Vec<_> = polls.iter().map(|p| p.target.host.as_str()).collect();
            assert_eq!(hosts, ["node2", "node1"], "target first");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(v.record(Record::Previous).map(|h| h.host_id), Some(1));
}

#[test]
fn disks_are_saved_as_only_while_the_vm_will_still_save_them() {
    use crate::core::caller::Caller;
    use crate::core::Error;
    let owner = Caller {
        uid: 1,
        name: "alice".into(),
    };
    let other = Caller {
        uid: 2,
        name: "bob".into(),
    };
    let check = |state, lcm, who: &Caller| super::saveas::check_vm(who, &vm(state, lcm, "", &[1]));
    for (state, lcm) in [
        (State::Pending, LcmState::LcmInit),
        (State::Active, LcmState::Running),
        (State::Active, LcmState::Shutdown),
        (State::Stopped, LcmState::LcmInit),
        (State::Suspended, LcmState::LcmInit),
    ] {
        assert!(check(state, lcm, &owner).is_ok(), "{state}/{lcm}");
    }
    for (state, lcm) in [
        (State::Done, LcmState::LcmInit),
        (State::Failed, LcmState::LcmInit),
        (State::Active, LcmState::Epilog),
    ] {
        assert!(
            matches!(check(state, lcm, &owner), Err(Error::InvalidState { .. })),
            "{state}/{lcm}"
        );
    }
    assert!(matches!(
        check(State::Active, LcmState::Running, &other),
        Err(Error::Forbidden { .. })
    ));
}
