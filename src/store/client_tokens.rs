//! The VM pool's EC2 client-token index inside a whole core on the real
//! (in-memory) store: one launch per (owner, token) even when two race,
//! launches with different tokens never wait for each other, tokens are
//! per owner, and the index is rebuilt from the stored VMs on restart.

use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use crate::core::ports::{Drivers, Store};
use crate::core::settings::Settings;
use crate::core::vm::Vm;
use crate::core::{Caller, Core, Result};
use crate::store::SqliteStore;
use crate::template::Template;

struct Nothing;
impl Drivers for Nothing {}

fn open(store: Arc<dyn Store>, dir: &std::path::Path) -> Core {
    let settings = Settings {
        image_dir: dir.join("images"),
        ..Settings::default()
    };
    Core::open(store, settings, Arc::new(Nothing)).expect("core")
}

fn users(core: &Core) -> (Caller, Caller) {
    core.users().ensure_admin("pw").expect("admin");
    let admin = Caller {
        uid: 0,
        name: "oneadmin".into(),
    };
    let who = |name: &str| {
        let user = core.users().create(&admin, name, "pw").expect("user");
        Caller {
            uid: user.id,
            name: user.name,
        }
    };
    (who("alice"), who("bob"))
}

/// Creates `count` VMs carrying `token`, as a launch does.
fn make(core: &Core, caller: &Caller, token: &str, count: usize) -> Result<Vec<Vm>> {
    (0..count)
        .map(|_| {
            let mut t = Template::parse("CPU = 0.1\nMEMORY = 16").expect("template");
            t.set("EC2_CLIENT_TOKEN", token);
            core.vms().create_from(caller, t)
        })
        .collect()
}

fn ids(vms: &[Vm]) -> Vec<u64> {
    vms.iter().map(|vm| vm.id).collect()
}

#[test]
fn racing_launches_with_one_token_make_one_reservation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let core = Arc::new(open(
        Arc::new(SqliteStore::open_in_memory().expect("store")),
        dir.path(),
    ));
    let (alice, _) = users(&core);
    let start = Arc::new(Barrier::new(8));
    let launches: Vec<_> = (0..8)
        .map(|_| {
            let (core, alice, start) = (core.clone(), alice.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                core.vms().launch_once(&alice, "tok-1", || {
                    // Slow enough that the others arrive while it runs.
                    thread::sleep(Duration::from_millis(50));
                    make(&core, &alice, "tok-1", 3)
                })
            })
        })
        .collect();
    let results: Vec<Vec<u64>> = launches
        .into_iter()
        .map(|t| ids(&t.join().expect("thread").expect("launch")))
        .collect();
    assert_eq!(results[0].len(), 3);
    assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
    assert_eq!(core.vms().len(), 3, "one launch made VMs");
    assert_eq!(
        ids(&core.vms().by_client_token(&alice, "tok-1").expect("lookup")),
        results[0]
    );
    assert_eq!(core.vms().open_launch_gates(), 0);
}

#[test]
fn launches_with_other_tokens_do_not_wait_and_tokens_are_per_owner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let core = Arc::new(open(store.clone(), dir.path()));
    let (alice, bob) = users(&core);
    // Launch A holds its gate until launch B (another token) is done: a
    // lock shared by all launches would never let B finish.
    let (b_done, b_finished) = mpsc::channel::<()>();
    let a = {
        let (core, alice) = (core.clone(), alice.clone());
        let (entered, a_entered) = mpsc::channel::<()>();
        let handle = thread::spawn(move || {
            core.vms().launch_once(&alice, "tok-a", || {
                entered.send(()).expect("send");
                b_finished
                    .recv_timeout(Duration::from_secs(20))
                    .map_err(|_| crate::core::Error::Internal("B waited for A".into()))?;
                make(&core, &alice, "tok-a", 1)
            })
        });
        a_entered.recv().expect("A started");
        handle
    };
    let b = core
        .vms()
        .launch_once(&alice, "tok-b", || make(&core, &alice, "tok-b", 2))
        .expect("launch B");
    b_done.send(()).expect("B done");
    let a = a.join().expect("thread").expect("launch A");
    assert_eq!((a.len(), b.len()), (1, 2));
    // Bob's token of the same text is his own launch.
    let bobs = core
        .vms()
        .launch_once(&bob, "tok-a", || make(&core, &bob, "tok-a", 1))
        .expect("bob");
    assert_ne!(ids(&bobs), ids(&a));
    // A retry answers the earlier launch without calling the closure.
    let again = core
        .vms()
        .launch_once(&alice, "tok-b", || panic!("launched twice"))
        .expect("retry");
    assert_eq!(ids(&again), ids(&b));
    assert!(core
        .vms()
        .by_client_token(&alice, "tok-c")
        .expect("none")
        .is_empty());
    // The index comes back from the stored VMs' EC2_CLIENT_TOKEN.
    drop(core);
    let core = open(store, dir.path());
    assert_eq!(
        ids(&core.vms().by_client_token(&alice, "tok-a").expect("a")),
        ids(&a)
    );
    assert_eq!(
        ids(&core.vms().by_client_token(&alice, "tok-b").expect("b")),
        ids(&b)
    );
    assert_eq!(
        ids(&core.vms().by_client_token(&bob, "tok-a").expect("bob")),
        ids(&bobs)
    );
}

/// Debug-build figures with 10,000 VMs of one user (`cargo test --lib
/// ten_thousand -- --ignored --nocapture`): a token lookup as a scan of
/// every VM against the index; a listing cloning every VM against one
/// reading only what a pool document needs.
#[test]
#[ignore = "timing, prints figures"]
fn ten_thousand_vms_timing() {
    use std::time::Instant;
    let dir = tempfile::tempdir().expect("temp dir");
    let core = open(
        Arc::new(SqliteStore::open_in_memory().expect("store")),
        dir.path(),
    );
    let (alice, _) = users(&core);
    for i in 0..10_000 {
        let mut t = Template::parse("NAME = b\nCPU = 0.01\nMEMORY = 8\nINSTANCE_TYPE = tiny")
            .expect("template");
        t.set("EC2_CLIENT_TOKEN", format!("tok-{i}"));
        core.vms().create_from(&alice, t).expect("vm");
    }
    let runs = 20u32;
    let time = |what: &str, f: &dyn Fn() -> usize| {
        let start = Instant::now();
        let mut n = 0;
        for _ in 0..runs {
            n = f();
        }
        println!("{what}: {:?} per call ({n})", start.elapsed() / runs);
    };
    time("token: scan of list_with_done", &|| {
        core.vms()
            .list_with_done(&alice, 0)
            .expect("list")
            .into_iter()
            .filter(|vm| {
                vm.uid == alice.uid && vm.attribute("EC2_CLIENT_TOKEN") == Some("tok-5000")
            })
            .count()
    });
    time("token: by_client_token", &|| {
        core.vms()
            .by_client_token(&alice, "tok-5000")
            .expect("lookup")
            .len()
    });
    time("list(Mine), cloned", &|| {
        core.vms()
            .list(&alice, crate::core::vm::Filter::Mine)
            .expect("list")
            .len()
    });
    time("list_map(Mine), href and name", &|| {
        core.vms()
            .list_map(&alice, crate::core::vm::Filter::Mine, |vm| {
                (
                    format!("http://127.0.0.1:4567/compute/{}", vm.id),
                    vm.name.clone(),
                )
            })
            .expect("list")
            .len()
    });
}
