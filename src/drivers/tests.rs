//! [`ScriptDrivers`] end to end on the [`Local`] transport: the shipped
//! dummy scripts (`config/remotes/*/dummy`), failure injection, timeouts,
//! retries, the argument conventions of every action, and the per-VM
//! serialisation, observed through the trace lines the scripts write.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::testutil::script;
use super::*;
use crate::core::ports::{HostPath, PollState, TmAction};

/// The shipped remotes.
fn remotes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/remotes")
}

/// The dummy drivers under their shipped names, run from `remotes` with a
/// domain table in `state`.
fn dummy_drivers(remotes: &Path, state: &Path, timeout: Option<Duration>) -> ScriptDrivers {
    let mut registry = Registry::new();
    for (class, name) in [
        (Class::Im, "im_dummy"),
        (Class::Vmm, "vmm_dummy"),
        (Class::Tm, "tm_dummy"),
    ] {
        let mut spec = DriverSpec::new(class, name, "dummy");
        spec.front_end = true;
        spec.timeout = timeout;
        registry.add(spec).expect("valid driver");
    }
    ScriptDrivers::new(
        registry,
        Arc::new(Local::new(remotes).grace(Duration::from_millis(300))),
    )
    .env("DUMMY_STATE_DIR", state.display().to_string())
}

fn target(vm_id: u64, host: &str, env: &ScriptEnv) -> VmmTarget {
    VmmTarget {
        vm_id,
        host: host.into(),
        driver: "vmm_dummy".into(),
        env: env.clone(),
    }
}

fn domain(vm_id: u64, host: &str, env: &ScriptEnv) -> DomainRequest {
    DomainRequest {
        target: target(vm_id, host, env),
        deploy_id: format!("dummy-{vm_id}"),
    }
}

fn deploy_request(vm_id: u64, host: &str, env: &ScriptEnv) -> DeployRequest {
    DeployRequest {
        target: target(vm_id, host, env),
        remote_file: format!("/var/lib/one/vms/{vm_id}/deployment.0"),
        deployment: "NAME = \"test vm\"\nCPU = \"0.5\"\nMEMORY = \"512\"\n".into(),
    }
}

fn monitor_request(env: &ScriptEnv) -> MonitorRequest {
    MonitorRequest {
        host_id: 3,
        host: "node1".into(),
        driver: "im_dummy".into(),
        env: env.clone(),
    }
}

/// Every TM action once, for VM 7 on node1.
fn tm_actions() -> Vec<TmAction> {
    let disk = HostPath::new("node1", "/var/lib/one/vms/7/disk.0");
    vec![
        TmAction::Clone {
            src: "fe:/images/ttylinux.img".into(),
            dst: disk.clone(),
        },
        TmAction::Ln {
            src: "fe:/images/ttylinux.img".into(),
            dst: disk.clone(),
        },
        TmAction::MkSwap {
            size_mb: 128,
            dst: disk.clone(),
        },
        TmAction::MkImage {
            size_mb: 256,
            fstype: "ext3".into(),
            dst: disk.clone(),
        },
        TmAction::Context {
            files: vec!["/var/lib/one/7/context.sh".into()],
            dst: HostPath::new("node1", "/var/lib/one/vms/7/disk.1"),
        },
        TmAction::Mv {
            src: HostPath::new("node1", "/var/lib/one/vms/7"),
            dst: HostPath::new("node2", "/var/lib/one/vms/7"),
        },
        TmAction::Delete {
            path: HostPath::new("node2", "/var/lib/one/vms/7"),
        },
    ]
}

/// Every action name the dummy drivers know.
const ACTIONS: [&str; 17] = [
    "monitor", "deploy", "shutdown", "cancel", "save", "restore", "migrate", "poll", "reboot",
    "reset", "clone", "ln", "mkswap", "mkimage", "context", "mv", "delete",
];

/// Runs every action once for VM 7 with `env`; the result of each by name.
fn run_every_action(drivers: &ScriptDrivers, env: &ScriptEnv) -> HashMap<&'static str, Result<()>> {
    let mut results: HashMap<&'static str, Result<()>> = HashMap::new();
    results.insert(
        "monitor",
        drivers.monitor(&monitor_request(env)).map(|_| ()),
    );
    results.insert(
        "deploy",
        drivers.deploy(&deploy_request(7, "node1", env)).map(|_| ()),
    );
    results.insert("poll", drivers.poll(&domain(7, "node1", env)).map(|_| ()));
    results.insert("reboot", drivers.reboot(&domain(7, "node1", env)));
    results.insert("reset", drivers.reset(&domain(7, "node1", env)));
    results.insert(
        "save",
        drivers.save(&SaveRequest {
            target: target(7, "node1", env),
            deploy_id: "dummy-7".into(),
            checkpoint: "/var/lib/one/vms/7/checkpoint".into(),
        }),
    );
    results.insert(
        "restore",
        drivers.restore(&RestoreRequest {
            target: target(7, "node1", env),
            checkpoint: "/var/lib/one/vms/7/checkpoint".into(),
        }),
    );
    results.insert(
        "migrate",
        drivers.migrate(&MigrateRequest {
            target: target(7, "node1", env),
            deploy_id: "dummy-7".into(),
            destination: "node2".into(),
            tm_driver: "tm_dummy".into(),
            dir: "/var/lib/one/vms/7".into(),
        }),
    );
    results.insert("shutdown", drivers.shutdown(&domain(7, "node2", env)));
    results.insert("cancel", drivers.cancel(&domain(7, "node2", env)));
    for action in tm_actions() {
        let name = action.name();
        let request = TransferRequest {
            vm_id: 7,
            driver: "tm_dummy".into(),
            action,
            env: env.clone(),
        };
        results.insert(name, drivers.transfer(&request));
    }
    results
}

fn driver_error_parts(err: &Error) -> (&str, &str, &str) {
    match err {
        Error::Driver {
            action,
            host,
            message,
        } => (action, host, message),
        other => panic!("not a driver error: {other:?}"),
    }
}

#[test]
fn every_dummy_action_succeeds() {
    let state = tempfile::tempdir().expect("tempdir");
    let drivers = dummy_drivers(&remotes(), state.path(), None);
    let env = ScriptEnv::new();
    let results = run_every_action(&drivers, &env);
    assert_eq!(results.len(), ACTIONS.len());
    for (action, result) in &results {
        assert!(result.is_ok(), "{action}: {result:?}");
    }
}

#[test]
fn dummy_monitor_reports_generous_fixed_capacity() {
    let state = tempfile::tempdir().expect("tempdir");
    let drivers = dummy_drivers(&remotes(), state.path(), None);
    let t = drivers
        .monitor(&monitor_request(&ScriptEnv::new()))
        .expect("monitor");
    let get = |k| t.get(k).unwrap_or_default().to_owned();
    assert_eq!(get("HYPERVISOR"), "dummy");
    assert_eq!(get("HOSTNAME"), "node1");
    assert_eq!(get("TOTALCPU"), "800");
    assert_eq!(get("FREECPU"), "800");
    assert_eq!(get("USEDCPU"), "0");
    assert_eq!(get("TOTALMEMORY"), "16777216");
    assert_eq!(get("FREEMEMORY"), "16777216");
    assert_eq!(get("USEDMEMORY"), "0");
    for key in ["CPUSPEED", "NETRX", "NETTX"] {
        assert!(t.get(key).is_some(), "{key} missing");
    }
    let small = ScriptEnv::new()
        .with("DUMMY_TOTALCPU", "100")
        .with("DUMMY_TOTALMEMORY", "1024");
    let t = drivers.monitor(&monitor_request(&small)).expect("monitor");
    assert_eq!(t.get("TOTALCPU"), Some("100"));
    assert_eq!(t.get("FREEMEMORY"), Some("1024"));
}

#[test]
fn dummy_domain_table_follows_the_life_cycle() {
    let state = tempfile::tempdir().expect("tempdir");
    let drivers = dummy_drivers(&remotes(), state.path(), None);
    let env = ScriptEnv::new();
    let poll = |host: &str| drivers.poll(&domain(7, host, &env)).expect("poll");

    assert_eq!(poll("node1").state, Some(PollState::Disappeared));
    let id = drivers
        .deploy(&deploy_request(7, "node1", &env))
        .expect("deploy");
    assert_eq!(id, "dummy-7");
    let answer = poll("node1");
    assert_eq!(answer.state, Some(PollState::Active));
    // CPU = 0.5, MEMORY = 512 MB: USEDCPU = CPU x 50, USEDMEMORY = MEMORY x 512.
    assert_eq!(answer.used_cpu, Some(25));
    assert_eq!(answer.used_memory, Some(262_144));

    drivers
        .save(&SaveRequest {
            target: target(7, "node1", &env),
            deploy_id: id.clone(),
            checkpoint: "/vms/7/checkpoint".into(),
        })
        .expect("save");
    assert_eq!(poll("node1").state, Some(PollState::Disappeared));
    drivers
        .restore(&RestoreRequest {
            target: target(7, "node2", &env),
            checkpoint: "/vms/7/checkpoint".into(),
        })
        .expect("restore");
    assert_eq!(poll("node2").used_memory, Some(262_144));
    drivers
        .migrate(&MigrateRequest {
            target: target(7, "node2", &env),
            deploy_id: id.clone(),
            destination: "node3".into(),
            tm_driver: "tm_dummy".into(),
            dir: "/vms/7".into(),
        })
        .expect("migrate");
    assert_eq!(poll("node2").state, Some(PollState::Disappeared));
    assert_eq!(poll("node3").state, Some(PollState::Active));
    drivers
        .shutdown(&domain(7, "node3", &env))
        .expect("shutdown");
    assert_eq!(poll("node3").state, Some(PollState::Disappeared));
}

#[test]
fn dummy_without_a_table_always_polls_active() {
    let remotes = remotes();
    let mut registry = Registry::new();
    let mut spec = DriverSpec::new(Class::Vmm, "vmm_dummy", "dummy");
    spec.front_end = true;
    registry.add(spec).expect("valid");
    let drivers = ScriptDrivers::new(registry, Arc::new(Local::new(&remotes)));
    let answer = drivers
        .poll(&domain(9, "node1", &ScriptEnv::new()))
        .expect("poll");
    assert_eq!(answer.state, Some(PollState::Active));
    // No deployment file: CPU 1 and MEMORY 256 MB.
    assert_eq!(answer.used_cpu, Some(50));
    assert_eq!(answer.used_memory, Some(131_072));
}

#[test]
fn dummy_fail_fails_exactly_the_named_action() {
    let state = tempfile::tempdir().expect("tempdir");
    let drivers = dummy_drivers(&remotes(), state.path(), None);
    for failing in ACTIONS {
        let env = ScriptEnv::new().with("DUMMY_FAIL", failing);
        let results = run_every_action(&drivers, &env);
        for (action, result) in results {
            if action != failing {
                assert!(
                    result.is_ok(),
                    "DUMMY_FAIL={failing} broke {action}: {result:?}"
                );
                continue;
            }
            let err = result.expect_err("the named action fails");
            let (name, _, message) = driver_error_parts(&err);
            assert_eq!(name, failing);
            let expected = format!("dummy: {failing} failed as requested by DUMMY_FAIL");
            if failing == "monitor" {
                // run_probes names the probe around the probe's own words.
                assert_eq!(message, format!("Error executing dummy.sh: {expected}"));
            } else {
                assert_eq!(message, expected);
            }
        }
    }
}

#[test]
fn dummy_fail_reaches_the_scripts_from_host_and_vm_templates() {
    let state = tempfile::tempdir().expect("tempdir");
    let drivers = dummy_drivers(&remotes(), state.path(), None);
    let host = Template::parse("DUMMY_FAIL = \"deploy\"").expect("host template");
    let vm = Template::parse("NAME = a\nDUMMY_FAIL = \"Poll , reboot\"").expect("vm template");
    let env = ScriptEnv::from_templates(Some(&vm), Some(&host));
    let results = run_every_action(&drivers, &env);
    let failed: Vec<_> = ACTIONS
        .into_iter()
        .filter(|a| results.get(a).is_some_and(|r| r.is_err()))
        .collect();
    assert_eq!(failed, ["deploy", "poll", "reboot"]);
    let err = drivers
        .deploy(&deploy_request(8, "node1", &env))
        .expect_err("deploy fails");
    assert_eq!(
        err.to_string(),
        "deploy on node1 failed: dummy: deploy failed as requested by DUMMY_FAIL"
    );
}

#[test]
fn dummy_sleep_beyond_the_timeout_fails_the_action() {
    let state = tempfile::tempdir().expect("tempdir");
    let drivers = dummy_drivers(&remotes(), state.path(), Some(Duration::from_secs(1)));
    let env = ScriptEnv::new().with("DUMMY_SLEEP", "deploy=30");
    let err = drivers
        .deploy(&deploy_request(7, "node1", &env))
        .expect_err("too slow");
    assert_eq!(
        driver_error_parts(&err),
        ("deploy", "node1", "timed out after 1 s")
    );
    // Only deploy was slowed down.
    drivers.poll(&domain(7, "node1", &env)).expect("poll");
}

#[test]
fn unknown_drivers_are_not_loaded() {
    let state = tempfile::tempdir().expect("tempdir");
    let drivers = dummy_drivers(&remotes(), state.path(), None);
    let mut request = deploy_request(7, "node1", &ScriptEnv::new());
    request.target.driver = "vmm_xen".into();
    let err = drivers.deploy(&request).expect_err("not loaded");
    assert_eq!(
        driver_error_parts(&err),
        ("deploy", "node1", "driver vmm_xen is not loaded")
    );
    let mut monitor = monitor_request(&ScriptEnv::new());
    monitor.driver = "kvm".into();
    let err = drivers.monitor(&monitor).expect_err("not loaded");
    assert_eq!(
        err.to_string(),
        "monitor on node1 failed: driver kvm is not loaded"
    );
    // Found by folder too.
    let mut request = deploy_request(7, "node1", &ScriptEnv::new());
    request.target.driver = "dummy".into();
    assert_eq!(drivers.deploy(&request).expect("by folder"), "dummy-7");
}

/// One trace line: (vm, action, start or end).
fn trace(file: &Path) -> Vec<(String, String, String)> {
    fs::read_to_string(file)
        .expect("trace file")
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words.len(), 4, "trace line {line:?}");
            (
                words[0].to_owned(),
                words[1].to_owned(),
                words[2].to_owned(),
            )
        })
        .collect()
}

/// The position in the trace of `vm`'s `action` `event`.
fn at(lines: &[(String, String, String)], vm: &str, action: &str, event: &str) -> usize {
    lines
        .iter()
        .position(|(v, a, e)| v == vm && a == action && e == event)
        .unwrap_or_else(|| panic!("no {vm} {action} {event} in {lines:?}"))
}

#[test]
fn actions_of_one_vm_are_serialised_and_of_two_vms_overlap() {
    let state = tempfile::tempdir().expect("tempdir");
    let trace_file = state.path().join("trace");
    let drivers = Arc::new(
        dummy_drivers(&remotes(), &state.path().join("table"), None)
            .env("DUMMY_TRACE", trace_file.display().to_string()),
    );
    // Each action takes 2 s, so actions that may overlap do.
    let env = ScriptEnv::new().with("DUMMY_SLEEP", "2");
    type Job = Box<dyn FnOnce(&ScriptDrivers) -> Result<()> + Send>;
    let spawn = |work: Job| {
        let drivers = Arc::clone(&drivers);
        thread::spawn(move || work(&drivers))
    };
    let (e1, e2, e3) = (env.clone(), env.clone(), env.clone());
    let jobs = vec![
        spawn(Box::new(move |d| {
            d.deploy(&deploy_request(1, "node1", &e1)).map(|_| ())
        })),
        spawn(Box::new(move |d| d.reboot(&domain(1, "node1", &e2)))),
        spawn(Box::new(move |d| {
            d.deploy(&deploy_request(2, "node1", &e3)).map(|_| ())
        })),
    ];
    for job in jobs {
        job.join().expect("thread").expect("action");
    }

    let lines = trace(&trace_file);
    assert_eq!(lines.len(), 6, "{lines:?}");
    // VM 1: whichever of its two actions started first ended before the
    // other started.
    let (deploy1, reboot1) = (
        (
            at(&lines, "1", "deploy", "start"),
            at(&lines, "1", "deploy", "end"),
        ),
        (
            at(&lines, "1", "reboot", "start"),
            at(&lines, "1", "reboot", "end"),
        ),
    );
    let (first, second) = if deploy1.0 < reboot1.0 {
        (deploy1, reboot1)
    } else {
        (reboot1, deploy1)
    };
    assert!(first.1 < second.0, "VM 1's actions overlapped: {lines:?}");
    // VM 2 ran while VM 1's first action was running.
    let deploy2 = (
        at(&lines, "2", "deploy", "start"),
        at(&lines, "2", "deploy", "end"),
    );
    assert!(
        deploy2.0 < first.1 && first.0 < deploy2.1,
        "VM 2 did not overlap VM 1: {lines:?}"
    );
}

/// A driver of `class` called `name` whose scripts live in `remotes`.
fn custom(remotes: &Path, class: Class, name: &str, retries: u32) -> ScriptDrivers {
    let mut registry = Registry::new();
    let mut spec = DriverSpec::new(class, name, name);
    spec.retries = retries;
    registry.add(spec).expect("valid");
    ScriptDrivers::new(registry, Arc::new(Local::new(remotes)))
        .retry_delay(Duration::from_millis(10))
}

#[test]
fn scripts_get_the_spec_arguments_and_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("args");
    let record = format!("echo \"$(basename \"$0\") $*\" >> {}", log.display());
    for action in [
        "deploy", "shutdown", "cancel", "save", "restore", "migrate", "poll", "reboot", "reset",
    ] {
        script(dir.path(), &format!("vmm/rec/{action}"), &record);
    }
    script(
        dir.path(),
        "vmm/rec/deploy",
        &format!(
            "{record}\ncat > {}\necho one-7 created",
            dir.path().join("stdin").display()
        ),
    );
    for action in [
        "clone",
        "ln",
        "mkswap",
        "mkimage",
        "context",
        "mv",
        "delete",
        "premigrate",
        "postmigrate",
    ] {
        script(dir.path(), &format!("tm/rec/{action}"), &record);
    }
    let mut registry = Registry::new();
    registry
        .add(DriverSpec::new(Class::Vmm, "vmm_rec", "rec"))
        .expect("valid");
    registry
        .add(DriverSpec::new(Class::Tm, "tm_rec", "rec"))
        .expect("valid");
    let drivers = ScriptDrivers::new(registry, Arc::new(Local::new(dir.path())));
    let env = ScriptEnv::new();
    let t = VmmTarget {
        vm_id: 7,
        host: "node1".into(),
        driver: "rec".into(),
        env: env.clone(),
    };
    let dom = DomainRequest {
        target: t.clone(),
        deploy_id: "one-7".into(),
    };
    let id = drivers
        .deploy(&DeployRequest {
            target: t.clone(),
            remote_file: "/vms/7/deployment.0".into(),
            deployment: "<domain/>\n".into(),
        })
        .expect("deploy");
    assert_eq!(id, "one-7");
    drivers.shutdown(&dom).expect("shutdown");
    drivers.cancel(&dom).expect("cancel");
    drivers
        .save(&SaveRequest {
            target: t.clone(),
            deploy_id: "one-7".into(),
            checkpoint: "/vms/7/checkpoint".into(),
        })
        .expect("save");
    drivers
        .restore(&RestoreRequest {
            target: t.clone(),
            checkpoint: "/vms/7/checkpoint".into(),
        })
        .expect("restore");
    drivers
        .migrate(&MigrateRequest {
            target: t.clone(),
            deploy_id: "one-7".into(),
            destination: "node2".into(),
            tm_driver: "tm_rec".into(),
            dir: "/vms/7".into(),
        })
        .expect("migrate");
    assert_eq!(drivers.poll(&dom).expect("poll"), PollAnswer::default());
    drivers.reboot(&dom).expect("reboot");
    drivers.reset(&dom).expect("reset");
    drivers
        .transfer_all(7, "tm_rec", &tm_actions(), &env)
        .expect("transfers");

    let lines = fs::read_to_string(&log).expect("log");
    let expected = "\
deploy /vms/7/deployment.0 node1 7 node1
shutdown one-7 node1 7 node1
cancel one-7 node1 7 node1
save one-7 /vms/7/checkpoint node1 7 node1
restore /vms/7/checkpoint node1 7 node1
premigrate node1 node2 /vms/7 7 0
migrate one-7 node2 node1 7 node1
postmigrate node1 node2 /vms/7 7 0
poll one-7 node1 7 node1
reboot one-7 node1 7 node1
reset one-7 node1 7 node1
clone fe:/images/ttylinux.img node1:/var/lib/one/vms/7/disk.0 7 0
ln fe:/images/ttylinux.img node1:/var/lib/one/vms/7/disk.0 7 0
mkswap 128 node1:/var/lib/one/vms/7/disk.0 7 0
mkimage 256 ext3 node1:/var/lib/one/vms/7/disk.0 7 0
context /var/lib/one/7/context.sh node1:/var/lib/one/vms/7/disk.1 7 0
mv node1:/var/lib/one/vms/7 node2:/var/lib/one/vms/7 7 0
delete node2:/var/lib/one/vms/7 7 0
";
    assert_eq!(lines, expected);
    assert_eq!(
        fs::read_to_string(dir.path().join("stdin")).expect("stdin copy"),
        "<domain/>\n"
    );
}

/// Live migration runs the TM's premigrate and postmigrate around the
/// VMM's migrate, failmigrate when the move fails; a failed postmigrate
/// leaves the migration done.
#[test]
fn live_migration_moves_storage_through_the_tm_driver() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("ran");
    let mut registry = Registry::new();
    for class in [Class::Vmm, Class::Tm] {
        registry
            .add(DriverSpec::new(class, "m", "m"))
            .expect("valid");
    }
    let drivers = ScriptDrivers::new(registry, Arc::new(Local::new(dir.path())));
    let request = MigrateRequest {
        target: VmmTarget {
            driver: "m".into(),
            ..target(7, "node1", &ScriptEnv::new())
        },
        deploy_id: "one-7".into(),
        destination: "node2".into(),
        tm_driver: "m".into(),
        dir: "/vms/7".into(),
    };
    // Each run: which scripts fail, then what ran and how it ended.
    let cases: [(&[&str], &str, bool); 4] = [
        (&[], "premigrate migrate postmigrate", true),
        (&["migrate"], "premigrate migrate failmigrate", false),
        (&["premigrate"], "premigrate", false),
        (&["postmigrate"], "premigrate migrate postmigrate", true),
    ];
    for (failing, ran, succeeds) in cases {
        for (class, action) in [
            ("tm", "premigrate"),
            ("vmm", "migrate"),
            ("tm", "postmigrate"),
            ("tm", "failmigrate"),
        ] {
            let exit = if failing.contains(&action) { 1 } else { 0 };
            script(
                dir.path(),
                &format!("{class}/m/{action}"),
                &format!("printf '{action} ' >> {}; exit {exit}", log.display()),
            );
        }
        let _ = fs::remove_file(&log);
        let result = drivers.migrate(&request);
        assert_eq!(result.is_ok(), succeeds, "{failing:?}: {result:?}");
        if let Err(e) = result {
            assert_eq!(driver_error_parts(&e).0, failing[0]);
        }
        let logged = fs::read_to_string(&log).expect("log");
        assert_eq!(logged.trim_end(), ran, "{failing:?}");
    }
}

#[test]
fn a_transfer_stops_at_the_first_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("ran");
    for action in ["clone", "mkswap", "delete"] {
        script(
            dir.path(),
            &format!("tm/t/{action}"),
            &format!("echo {action} >> {}", log.display()),
        );
    }
    script(
        dir.path(),
        "tm/t/mkswap",
        "echo 'mkswap: no space left' >&2; exit 1",
    );
    let drivers = custom(dir.path(), Class::Tm, "t", 0);
    let disk = HostPath::new("node1", "/d");
    let actions = [
        TmAction::Clone {
            src: "fe:/i".into(),
            dst: disk.clone(),
        },
        TmAction::MkSwap {
            size_mb: 1,
            dst: disk.clone(),
        },
        TmAction::Delete { path: disk },
    ];
    let err = drivers
        .transfer_all(7, "t", &actions, &ScriptEnv::new())
        .expect_err("mkswap fails");
    assert_eq!(
        driver_error_parts(&err),
        ("mkswap", "node1", "mkswap: no space left")
    );
    assert_eq!(fs::read_to_string(&log).expect("log"), "clone\n");
}

#[test]
fn failed_actions_are_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let count = dir.path().join("count");
    // Fails twice, then succeeds.
    script(
        dir.path(),
        "vmm/flaky/reboot",
        &format!(
            "echo x >> {c}\n[ $(wc -l < {c}) -ge 3 ] || {{ echo 'not yet' >&2; exit 1; }}",
            c = count.display()
        ),
    );
    let dom = |driver: &str| DomainRequest {
        target: VmmTarget {
            vm_id: 1,
            host: "node1".into(),
            driver: driver.into(),
            env: ScriptEnv::new(),
        },
        deploy_id: "x".into(),
    };
    let once = custom(dir.path(), Class::Vmm, "flaky", 1);
    let err = once
        .reboot(&dom("flaky"))
        .expect_err("two tries are not enough");
    assert_eq!(driver_error_parts(&err).2, "not yet");
    fs::remove_file(&count).expect("reset counter");
    let twice = custom(dir.path(), Class::Vmm, "flaky", 2);
    twice.reboot(&dom("flaky")).expect("third try succeeds");
}

#[test]
fn unparsable_poll_answers_and_missing_scripts_are_driver_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    script(dir.path(), "vmm/bad/poll", "echo 'STATE=a oops'");
    let drivers = custom(dir.path(), Class::Vmm, "bad", 0);
    let dom = DomainRequest {
        target: VmmTarget {
            vm_id: 1,
            host: "node1".into(),
            driver: "bad".into(),
            env: ScriptEnv::new(),
        },
        deploy_id: "x".into(),
    };
    let err = drivers.poll(&dom).expect_err("garbage");
    let (action, _, message) = driver_error_parts(&err);
    assert_eq!(action, "poll");
    assert!(
        message.starts_with("Error parsing monitoring str"),
        "{message}"
    );
    let err = drivers.reboot(&dom).expect_err("no script");
    assert_eq!(
        driver_error_parts(&err).2,
        "script vmm/bad/reboot not found or not executable"
    );
}

#[test]
fn environment_layers_and_invalid_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    script(dir.path(), "vmm/env/poll", "echo \"A=$DUMMY_A B=$DUMMY_B\"");
    let drivers = custom(dir.path(), Class::Vmm, "env", 0)
        .env("DUMMY_A", "base")
        .env("DUMMY_B", "base");
    let dom = DomainRequest {
        target: VmmTarget {
            vm_id: 1,
            host: "node1".into(),
            driver: "env".into(),
            env: ScriptEnv::new()
                .with("DUMMY_B", "request")
                .with("BAD-NAME", "x"),
        },
        deploy_id: "x".into(),
    };
    let answer = drivers.poll(&dom).expect("poll");
    assert_eq!(answer.extra.get("A"), Some("base"));
    assert_eq!(answer.extra.get("B"), Some("request"));
}

#[test]
fn hooks_run_with_separate_arguments() {
    let dir = tempfile::tempdir().expect("tempdir");
    script(dir.path(), "hooks/notify", "printf '%s|' \"$@\"");
    let absolute = script(
        dir.path(),
        "elsewhere/fail",
        "echo 'mail server down' >&2; exit 2",
    );
    let drivers = ScriptDrivers::new(Registry::new(), Arc::new(Local::new(dir.path())));
    let request = HookRequest {
        vm_id: 7,
        name: "mail".into(),
        command: "notify".into(),
        args: vec!["7".into(), "my vm".into()],
        site: HookSite::FrontEnd,
        env: ScriptEnv::new(),
    };
    assert_eq!(drivers.hook(&request).expect("hook"), "7|my vm|");
    let failing = HookRequest {
        command: absolute.display().to_string(),
        site: HookSite::Host("node1".into()),
        ..request.clone()
    };
    let err = drivers.hook(&failing).expect_err("hook fails");
    assert_eq!(
        driver_error_parts(&err),
        ("hook mail", "node1", "mail server down")
    );
    let escaping = HookRequest {
        command: "../escape".into(),
        ..request
    };
    assert!(drivers.hook(&escaping).is_err());
}

#[test]
fn shipped_dummy_scripts_are_executable_posix_sh() {
    use std::os::unix::fs::PermissionsExt;
    let remotes = remotes();
    let mut scripts = vec![remotes.join("im/run_probes")];
    for folder in ["im/dummy", "vmm/dummy", "tm/dummy"] {
        for entry in fs::read_dir(remotes.join(folder)).expect("dummy folder") {
            let path = entry.expect("entry").path();
            // dummyrc is sourced, not run.
            if path.file_name().is_some_and(|n| n != "dummyrc") {
                scripts.push(path);
            }
        }
    }
    assert_eq!(scripts.len(), 1 + 1 + 9 + 10, "{scripts:?}");
    for path in scripts {
        let mode = fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{} is not executable", path.display());
        let text = fs::read_to_string(&path).expect("script text");
        assert!(text.starts_with("#!/bin/sh\n"), "{}", path.display());
        assert!(
            text.contains("\nset -e\n"),
            "{} lacks set -e",
            path.display()
        );
        let syntax = std::process::Command::new("sh")
            .arg("-n")
            .arg(&path)
            .status()
            .expect("sh -n");
        assert!(syntax.success(), "{} has a syntax error", path.display());
    }
}

/// `core::hooks` on the real drivers: a hook fired for a VM runs its
/// command locally with the substituted arguments; a failing hook before it
/// is only logged.
#[test]
fn hook_manager_runs_hooks_through_script_drivers() {
    use crate::core::hooks::{HookManager, HookOn, HookSpec, VmView};
    let dir = tempfile::tempdir().expect("tempdir");
    script(
        dir.path(),
        "hooks/record",
        "out=$1; shift; printf '%s|' \"$@\" > \"$out.tmp\"; mv \"$out.tmp\" \"$out\"",
    );
    script(
        dir.path(),
        "hooks/broken",
        "echo 'no mail server' >&2; exit 3",
    );
    let out = dir.path().join("hook.out");
    let drivers = ScriptDrivers::new(Registry::new(), Arc::new(Local::new(dir.path())));
    let spec = |name: &str, command: &str, arguments: String, remote: bool| HookSpec {
        name: name.into(),
        on: HookOn::Running,
        command: command.into(),
        arguments,
        remote,
    };
    let hooks = HookManager::new(
        vec![
            spec("broken", "broken", String::new(), true),
            spec(
                "record",
                "record",
                format!(
                    "{} $VMID $NAME $NIC[MAC] $NIC[MAC, NETWORK=\"Public\"] $NIC[GW]",
                    out.display()
                ),
                false,
            ),
        ],
        Arc::new(drivers),
    );
    let template = Template::parse(
        "NAME = \"my vm\"\n\
         NIC = [ NETWORK = Private, MAC = \"02:00:0a:00:00:07\" ]\n\
         NIC = [ NETWORK = Public, MAC = \"02:00:c0:a8:00:05\" ]",
    )
    .expect("template");
    hooks.fire(&VmView::new(7, &template).host("node1"), HookOn::Running);
    assert!(
        hooks.wait_idle(Duration::from_secs(30)),
        "hooks still running"
    );
    assert_eq!(
        fs::read_to_string(&out).expect("the hook wrote its file"),
        "7|my vm|02:00:0a:00:00:07|02:00:c0:a8:00:05||"
    );
}

/// Whether the context CD tools are here. Missing tools skip the test on a
/// workstation but fail it in CI (`CI=true`), where `.ci/setup` installs
/// them.
fn iso_tools_present() -> bool {
    let has = |tool: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let present = (has("genisoimage") || has("xorriso")) && has("isoinfo");
    if !present {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "genisoimage (or xorriso) and isoinfo are missing; .ci/setup installs them"
        );
        eprintln!("skipped: genisoimage/xorriso or isoinfo not installed");
    }
    present
}

/// Runs `isoinfo <args> -i <iso>`; its stdout.
fn isoinfo(iso: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("isoinfo")
        .args(args)
        .arg("-i")
        .arg(iso)
        .output()
        .expect("isoinfo runs");
    assert!(output.status.success(), "isoinfo {args:?} failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the shipped `tm/common/mkcontext`.
fn mkcontext(args: &[String]) -> std::process::Output {
    std::process::Command::new(remotes().join("tm/common/mkcontext"))
        .args(args)
        .output()
        .expect("mkcontext runs")
}

#[test]
fn mkcontext_builds_the_context_cd() {
    use crate::core::context::{prepare_prolog, render};
    if !iso_tools_present() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let init = dir.path().join("init.sh");
    fs::write(&init, "#!/bin/sh\necho hello\n").expect("init.sh");
    let context = Template::parse(&format!(
        "CONTEXT = [ HOSTNAME = \"web 1\", FILES = \"{}\", TARGET = hdc ]",
        init.display()
    ))
    .expect("template");
    let context = context.vector("CONTEXT").expect("CONTEXT");
    // What the prolog hands to TmAction::Context: context.sh, then FILES.
    let files =
        prepare_prolog(context, 0, &Default::default(), &dir.path().join("7")).expect("prolog");
    let iso = dir.path().join("disk.1");
    let mut args = vec![iso.display().to_string()];
    args.extend(files);
    let run = mkcontext(&args);
    assert!(
        run.status.success(),
        "mkcontext failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );

    assert!(
        isoinfo(&iso, &["-d"]).contains("Volume id: CONTEXT"),
        "volume label"
    );
    let listing = isoinfo(&iso, &["-R", "-l"]);
    let names: Vec<_> = listing
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(names, ["context.sh", "init.sh"], "{listing}");
    assert_eq!(isoinfo(&iso, &["-R", "-x", "/context.sh"]), render(context));
    assert_eq!(
        isoinfo(&iso, &["-R", "-x", "/init.sh"]),
        "#!/bin/sh\necho hello\n"
    );
}

#[test]
fn mkcontext_refuses_what_it_cannot_pack() {
    if !iso_tools_present() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a.sh");
    fs::write(&file, "x").expect("a.sh");
    let iso = dir.path().join("disk.1");
    let path = |p: &Path| p.display().to_string();
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).expect("sub");
    fs::write(sub.join("a.sh"), "y").expect("sub/a.sh");
    let cases = [
        (
            vec![path(&iso), path(&dir.path().join("gone"))],
            format!(
                "mkcontext: {}: not a readable file",
                dir.path().join("gone").display()
            ),
        ),
        (
            vec![path(&iso), "http://web?x=/a".into()],
            "mkcontext: http://web?x=/a: names no file".into(),
        ),
        (
            vec![path(&iso), "relative.sh".into()],
            "mkcontext: relative.sh: expected an absolute path or an http(s):// URL".into(),
        ),
        (
            vec![path(&iso), path(&file), path(&sub.join("a.sh"))],
            "mkcontext: two files are named a.sh".into(),
        ),
        (
            vec![path(&iso), path(&sub)],
            format!("mkcontext: {}: not a readable file", sub.display()),
        ),
        (
            vec![path(&iso)],
            "mkcontext: usage: mkcontext <iso> <file|url>...".into(),
        ),
    ];
    for (args, expected) in cases {
        let run = mkcontext(&args);
        assert_eq!(run.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(error_message(&stderr), expected, "{args:?}");
        assert!(!iso.exists(), "no CD left behind for {args:?}");
    }
    let syntax = std::process::Command::new("sh")
        .arg("-n")
        .arg(remotes().join("tm/common/mkcontext"))
        .status()
        .expect("sh -n");
    assert!(syntax.success());
}
