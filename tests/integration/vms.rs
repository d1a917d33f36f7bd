//! `/v1/vms` and `cloudgate vm ...` on the real server and the dummy
//! drivers: a VM reaching RUNNING on a fresh server, every path of the
//! life cycle, a failure injected at each driver step (`DUMMY_FAIL`),
//! refused actions, other users' VMs, concurrent creates sharing a
//! network, and `kill -9` in the middle of creates (spec/CORE.md §1,
//! §4.5, §7.3, §8.4).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::harness::{admin, send, unique, Answer, Server, ADMIN_PASSWORD};

type Auth<'a> = Option<(&'a str, &'a str)>;

/// Keeps the scheduler away: no host is named `nowhere`, so only a manual
/// deploy places the VM.
const PINNED: &str = "REQUIREMENTS = \"NAME = \\\"nowhere\\\"\"";

/// What a small VM reserves: CPU 0.5, MEMORY 64.
const SMALL: &str = "CPU = 0.5\nMEMORY = 64";
const HALF: (i64, i64, i64) = (50, 65_536, 1);
const NONE: (i64, i64, i64) = (0, 0, 0);

fn new_user(server: &Server, prefix: &str) -> String {
    let name = unique(prefix);
    let body = format!(r#"{{"name":"{name}","password":"pw"}}"#);
    let answer = send("POST", &server.url("/v1/users"), admin(), Some(&body));
    assert_eq!(answer.status, 201, "{}", answer.body);
    name
}

fn create(server: &Server, auth: Auth<'_>, template: &str) -> Answer {
    let body = json!({ "template": template }).to_string();
    send("POST", &server.url("/v1/vms"), auth, Some(&body))
}

fn created(server: &Server, auth: Auth<'_>, template: &str) -> u64 {
    let answer = create(server, auth, template);
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()["id"].as_u64().expect("id")
}

fn get(server: &Server, auth: Auth<'_>, id: u64) -> Answer {
    send("GET", &server.url(&format!("/v1/vms/{id}")), auth, None)
}

fn act(server: &Server, auth: Auth<'_>, id: u64, action: &str, body: Option<Value>) -> Answer {
    let body = body.map(|b| b.to_string());
    send(
        "POST",
        &server.url(&format!("/v1/vms/{id}/actions/{action}")),
        auth,
        body.as_deref(),
    )
}

/// oneadmin acts; the action must be accepted.
fn ok(server: &Server, id: u64, action: &str, body: Option<Value>) -> Value {
    let answer = act(server, admin(), id, action, body);
    assert_eq!(answer.status, 200, "{action} VM {id}: {}", answer.body);
    answer.json()
}

fn deploy(server: &Server, id: u64, host: &str) {
    ok(server, id, "deploy", Some(json!({ "host": host })));
}

/// Waits until VM `id` shows `state` (its short name) and waits for no
/// driver step.
fn wait(server: &Server, id: u64, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let vm = get(server, admin(), id).json();
        if vm["state"] == state && vm["pending"].is_null() {
            return vm;
        }
        assert!(
            Instant::now() < deadline,
            "VM {id} never reached {state}: {vm:#}\n--- server log tail ---\n{}",
            tail(&server.log())
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// (CPU_USAGE, MEM_USAGE, RUNNING_VMS) of a host.
fn share(server: &Server, host: &str) -> (i64, i64, i64) {
    let answer = send(
        "GET",
        &server.url(&format!("/v1/hosts/{host}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let share = &answer.json()["share"];
    let n = |k: &str| share[k].as_i64().expect("number");
    (n("cpu_usage"), n("mem_usage"), n("running_vms"))
}

/// A new network of `auth`'s, 254 addresses; returns its id.
fn network(server: &Server, auth: Auth<'_>, name: &str, address: &str) -> u64 {
    let template =
        format!("NAME = \"{name}\"\nBRIDGE = br0\nNETWORK_ADDRESS = {address}\nNETWORK_SIZE = C");
    let body = json!({ "template": template }).to_string();
    let answer = send("POST", &server.url("/v1/vnets"), auth, Some(&body));
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()["id"].as_u64().expect("id")
}

/// The leases of a network in use: IP → VM.
fn leases(server: &Server, vnet: u64) -> BTreeMap<String, u64> {
    let answer = send(
        "GET",
        &server.url(&format!("/v1/vnets/{vnet}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["leases"]
        .as_array()
        .expect("leases")
        .iter()
        .map(|l| {
            (
                l["ip"].as_str().expect("ip").to_string(),
                l["vm"].as_u64().expect("vm"),
            )
        })
        .collect()
}

fn add_host(server: &Server, name: &str) {
    let body = json!({ "name": name, "im_mad": "dummy", "vmm_mad": "dummy", "tm_mad": "dummy" });
    let answer = send(
        "POST",
        &server.url("/v1/hosts"),
        admin(),
        Some(&body.to_string()),
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
}

/// A server whose VMs are polled every second.
fn fast_polling_server() -> Server {
    let built_in = include_str!("../../config/cloudgate.conf");
    assert!(built_in.contains("VM_POLLING_INTERVAL = 60"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cloudgate.conf");
    std::fs::write(
        &path,
        built_in.replace("VM_POLLING_INTERVAL = 60", "VM_POLLING_INTERVAL = 1"),
    )
    .expect("config");
    let server = Server::start_with(&["--config", path.to_str().expect("path")]);
    // The config is read at start; the file may go.
    drop(dir);
    server
}

// ---------------------------------------------------------------------

#[test]
fn a_vm_created_right_after_serve_reaches_runn_on_localhost() {
    let server = Server::start();
    let id = created(&server, admin(), "NAME = first\nCPU = 0.1\nMEMORY = 32");
    let vm = wait(&server, id, "runn");
    assert_eq!(vm["host"], "localhost");
    assert_eq!(vm["dm_state"], "ACTIVE");
    assert_eq!(vm["lcm_state"], "RUNNING");
    assert_eq!(vm["deploy_id"], format!("dummy-{id}"));
    assert_eq!(vm["history"][0]["host"], "localhost");
    assert_eq!(share(&server, "localhost"), (10, 32_768, 1));
}

#[test]
fn every_path_on_the_dummy_drivers() {
    let server = fast_polling_server();
    add_host(&server, "dummy-b");
    let vnet = network(&server, admin(), "paths", "10.1.0.0");
    let template = format!("{SMALL}\n{PINNED}\nNIC = [ NETWORK = paths ]");
    let new = || created(&server, admin(), &template);

    // shutdown
    let a = new();
    deploy(&server, a, "localhost");
    let vm = wait(&server, a, "runn");
    assert_eq!(vm["nics"][0]["ip"], "10.1.0.1");
    assert_eq!(vm["nics"][0]["mac"], "02:00:0a:01:00:01");
    assert_eq!(share(&server, "localhost"), HALF);
    ok(&server, a, "shutdown", None);
    let vm = wait(&server, a, "done");
    assert_eq!(vm["history"][0]["reason"], "NONE");
    assert_eq!(share(&server, "localhost"), NONE);
    assert!(leases(&server, vnet).is_empty());

    // cancel
    let b = new();
    deploy(&server, b, "localhost");
    wait(&server, b, "runn");
    ok(&server, b, "cancel", None);
    let vm = wait(&server, b, "done");
    assert_eq!(vm["history"][0]["reason_short"], "canc");

    // stop / resume, then deploy elsewhere
    let c = new();
    deploy(&server, c, "localhost");
    wait(&server, c, "runn");
    ok(&server, c, "stop", None);
    wait(&server, c, "stop");
    assert_eq!(share(&server, "localhost"), NONE);
    ok(&server, c, "resume", None);
    wait(&server, c, "pend");
    deploy(&server, c, "dummy-b");
    let vm = wait(&server, c, "runn");
    assert_eq!(vm["host"], "dummy-b");
    assert_eq!(share(&server, "dummy-b"), HALF);

    // suspend / resume
    ok(&server, c, "suspend", None);
    wait(&server, c, "susp");
    assert_eq!(share(&server, "dummy-b"), NONE);
    ok(&server, c, "resume", None);
    wait(&server, c, "runn");
    assert_eq!(share(&server, "dummy-b"), HALF);

    // migrate, livemigrate
    ok(&server, c, "migrate", Some(json!({ "host": "localhost" })));
    let vm = wait(&server, c, "runn");
    assert_eq!(vm["host"], "localhost");
    assert_eq!(
        (share(&server, "localhost"), share(&server, "dummy-b")),
        (HALF, NONE)
    );
    ok(
        &server,
        c,
        "livemigrate",
        Some(json!({ "host": "dummy-b" })),
    );
    let vm = wait(&server, c, "runn");
    assert_eq!(vm["host"], "dummy-b");
    assert_eq!(
        (share(&server, "localhost"), share(&server, "dummy-b")),
        (NONE, HALF)
    );
    let history = send(
        "GET",
        &server.url(&format!("/v1/vms/{c}/history")),
        admin(),
        None,
    )
    .json();
    let hosts: Vec<&str> = history
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["host"].as_str().expect("host"))
        .collect();
    assert_eq!(
        hosts,
        ["localhost", "dummy-b", "dummy-b", "localhost", "dummy-b"]
    );

    // reboot, reset
    ok(&server, c, "reboot", None);
    wait(&server, c, "runn");
    ok(&server, c, "reset", None);
    wait(&server, c, "runn");

    // The domain disappears: polling finds it (UNKNOWN), restart brings it
    // back.
    let domain = server
        .data_dir()
        .join("dummy")
        .join("host-dummy-b")
        .join(format!("dom-dummy-{c}"));
    std::fs::remove_file(&domain).expect("the dummy domain file");
    wait(&server, c, "unkn");
    assert_eq!(
        share(&server, "dummy-b"),
        HALF,
        "UNKNOWN keeps its capacity"
    );
    ok(&server, c, "restart", None);
    wait(&server, c, "runn");

    // resubmit: back to pending, lease kept, capacity given back
    ok(&server, c, "resubmit", None);
    wait(&server, c, "pend");
    assert_eq!(share(&server, "dummy-b"), NONE);
    assert_eq!(
        leases(&server, vnet).values().copied().collect::<Vec<_>>(),
        [c]
    );

    // hold / release
    ok(&server, c, "hold", None);
    wait(&server, c, "hold");
    ok(&server, c, "release", None);
    wait(&server, c, "pend");

    // delete in each state: pending, held, running, stopped, suspended,
    // failed, and during a (slow) prolog.
    let held = new();
    ok(&server, held, "hold", None);
    let running = new();
    deploy(&server, running, "localhost");
    wait(&server, running, "runn");
    let stopped = new();
    deploy(&server, stopped, "localhost");
    wait(&server, stopped, "runn");
    ok(&server, stopped, "stop", None);
    wait(&server, stopped, "stop");
    let suspended = new();
    deploy(&server, suspended, "dummy-b");
    wait(&server, suspended, "runn");
    ok(&server, suspended, "suspend", None);
    wait(&server, suspended, "susp");
    let failed = created(
        &server,
        admin(),
        &format!("{template}\nDUMMY_FAIL = deploy"),
    );
    deploy(&server, failed, "dummy-b");
    wait(&server, failed, "fail");
    let slow = created(
        &server,
        admin(),
        &format!("{template}\nDISK = [ TYPE = swap, SIZE = 8 ]\nDUMMY_SLEEP = \"mkswap=3\""),
    );
    deploy(&server, slow, "dummy-b");
    assert_eq!(get(&server, admin(), slow).json()["state"], "prol");
    for id in [c, held, running, stopped, suspended, failed, slow] {
        let answer = send(
            "DELETE",
            &server.url(&format!("/v1/vms/{id}")),
            admin(),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["state"], "done");
    }
    for id in [c, held, running, stopped, suspended, failed, slow] {
        wait(&server, id, "done");
    }
    assert!(leases(&server, vnet).is_empty());
    assert_eq!(
        (share(&server, "localhost"), share(&server, "dummy-b")),
        (NONE, NONE)
    );
    // The slow prolog's late answer (it ended before the clean-up ran)
    // changed nothing.
    let vm = get(&server, admin(), slow).json();
    assert_eq!(
        (vm["state"].as_str(), vm["lcm_state"].as_str()),
        (Some("done"), Some("LCM_INIT"))
    );
    assert!(vm["deploy_id"].is_null());
    assert_eq!(share(&server, "dummy-b"), NONE);
}

/// An action once the VM runs, and the host it takes.
type Then = (&'static str, Option<&'static str>);

#[test]
fn a_failure_at_each_driver_step_ends_where_the_table_says() {
    let server = Server::start();
    add_host(&server, "dummy-f");
    let vnet = network(&server, admin(), "failures", "10.2.0.0");
    // (DUMMY_FAIL, action after RUNNING and its host, where the VM ends)
    let cases: &[(&str, Option<Then>, &str)] = &[
        ("clone", None, "fail"),
        ("ln", None, "fail"),
        ("mkswap", None, "fail"),
        ("mkimage", None, "fail"),
        ("context", None, "fail"),
        ("deploy", None, "fail"),
        ("shutdown", Some(("shutdown", None)), "runn"),
        ("cancel", Some(("cancel", None)), "runn"),
        ("save", Some(("stop", None)), "runn"),
        ("save", Some(("suspend", None)), "runn"),
        ("save", Some(("migrate", Some("dummy-f"))), "runn"),
        ("migrate", Some(("livemigrate", Some("dummy-f"))), "runn"),
        ("delete", Some(("shutdown", None)), "fail"),
        ("mv", Some(("stop", None)), "fail"),
        ("restore", Some(("suspend", None)), "fail"),
        ("reboot", Some(("reboot", None)), "runn"),
    ];
    for &(fail, action, ends) in cases {
        let disk = match fail {
            "clone" => "DISK = [ SOURCE = /srv/img/a.img ]",
            "ln" => "DISK = [ SOURCE = /srv/img/a.img, CLONE = no ]",
            "mkimage" => "DISK = [ TYPE = fs, SIZE = 8, FORMAT = ext3 ]",
            "context" => "CONTEXT = [ HOSTNAME = \"$NAME\" ]",
            _ => "DISK = [ TYPE = swap, SIZE = 8 ]",
        };
        let template = format!(
            "{SMALL}\n{PINNED}\nNIC = [ NETWORK = failures ]\n{disk}\nDUMMY_FAIL = \"{fail}\""
        );
        let id = created(&server, admin(), &template);
        deploy(&server, id, "localhost");
        if let Some((word, host)) = action {
            wait(&server, id, "runn");
            ok(&server, id, word, host.map(|h| json!({ "host": h })));
            if word == "suspend" && fail == "restore" {
                wait(&server, id, "susp");
                ok(&server, id, "resume", None);
            }
        }
        let vm = wait(&server, id, ends);
        let message = vm["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("dummy: {fail} failed as requested by DUMMY_FAIL")),
            "{fail}: {vm:#}"
        );
        assert_eq!(vm["host"], "localhost", "{fail}: back on the source");
        if ends == "fail" {
            assert_eq!(
                share(&server, "localhost"),
                NONE,
                "{fail}: capacity released"
            );
            assert_eq!(
                leases(&server, vnet).len(),
                1,
                "{fail}: FAILED keeps its lease"
            );
        } else {
            assert_eq!(share(&server, "localhost"), HALF, "{fail}");
        }
        assert_eq!(share(&server, "dummy-f"), NONE, "{fail}");
        let answer = send(
            "DELETE",
            &server.url(&format!("/v1/vms/{id}")),
            admin(),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        wait(&server, id, "done");
        assert!(
            leases(&server, vnet).is_empty(),
            "{fail}: lease back at delete"
        );
        assert_eq!(share(&server, "localhost"), NONE, "{fail}");
    }
}

#[test]
fn refused_actions_name_the_state_and_others_vms_are_forbidden() {
    let server = Server::shared();
    let alice = new_user(server, "vm-alice");
    let bob = new_user(server, "vm-bob");
    let a = Some((alice.as_str(), "pw"));
    let b = Some((bob.as_str(), "pw"));
    let id = created(server, a, &format!("{SMALL}\n{PINNED}"));
    let vm = get(server, a, id).json();
    assert_eq!(
        (vm["state"].as_str(), vm["owner_name"].as_str()),
        (Some("pend"), Some(alice.as_str()))
    );

    // It fits nowhere: it stays pending, and `show` says why.
    let deadline = Instant::now() + Duration::from_secs(60);
    let reason = loop {
        let vm = get(server, a, id).json();
        // (A cycle before localhost is monitored gives another reason.)
        if let Some(reason) = vm["pending_reason"]
            .as_str()
            .filter(|r| r.contains("REQUIREMENTS"))
        {
            break reason.to_string();
        }
        assert!(Instant::now() < deadline, "no pending reason: {vm:#}");
        thread::sleep(Duration::from_millis(50));
    };
    assert!(!reason.is_empty());
    assert_eq!(get(server, a, id).json()["state"], "pend");

    let answer = act(server, a, id, "suspend", None);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], "InvalidState");
    assert_eq!(
        answer.json()["error"]["message"],
        format!("cannot suspend virtual machine {id} in state pend")
    );
    let answer = act(
        server,
        a,
        id,
        "deploy",
        Some(json!({ "host": "localhost" })),
    );
    assert_eq!(answer.status, 403, "deploy is oneadmin's: {}", answer.body);
    let answer = act(server, a, id, "fly", None);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(act(server, a, id, "hold", None).status, 200);
    let answer = act(server, a, id, "hold", None);
    assert_eq!(
        answer.json()["error"]["message"],
        format!("cannot hold virtual machine {id} in state hold")
    );

    // Bob: 403 on everything of Alice's, and her VM is not in his list.
    assert_eq!(get(server, b, id).status, 403);
    assert_eq!(act(server, b, id, "release", None).status, 403);
    assert_eq!(
        send("DELETE", &server.url(&format!("/v1/vms/{id}")), b, None).status,
        403
    );
    let listed = send("GET", &server.url("/v1/vms"), b, None).json();
    assert!(listed
        .as_array()
        .expect("list")
        .iter()
        .all(|v| v["id"] != id));
    let listed = send("GET", &server.url("/v1/vms?filter=mine"), a, None).json();
    assert_eq!(listed.as_array().expect("list").len(), 1);
    let by_name = send(
        "GET",
        &server.url(&format!("/v1/vms?filter={alice}")),
        admin(),
        None,
    )
    .json();
    assert_eq!(by_name[0]["id"], id);
    assert_eq!(get(server, a, 999_999).status, 404);
    assert_eq!(get(server, a, id).json()["state"], "hold");
    // A refused template: 400 naming the attribute, nothing created.
    let answer = create(server, a, "MEMORY = lots");
    assert_eq!(answer.status, 400);
    assert!(answer.json()["error"]["message"]
        .as_str()
        .expect("message")
        .starts_with("MEMORY:"));
    let answer = create(server, a, "DISK = [ SOURCE = /etc/shadow ]");
    assert_eq!(answer.status, 400, "only oneadmin names front-end files");
    assert_eq!(
        send("GET", &server.url("/v1/vms?filter=mine"), a, None)
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

/// CORE.md §5.2 special names in CONTEXT: a network by name (and the
/// first NIC's), an image by id, the owner, the group and the template;
/// someone else's private network stays empty.
#[test]
fn context_gets_networks_images_the_owner_the_group_and_the_template() {
    use base64::Engine as _;
    let server = Server::shared();
    let user = new_user(server, "vm-ctx");
    let auth = Some((user.as_str(), "pw"));
    let other = new_user(server, "vm-ctx-other");
    let net = unique("ctx-net");
    let template = format!(
        "NAME = \"{net}\"\nBRIDGE = br0\nNETWORK_ADDRESS = 10.77.0.0\nNETWORK_SIZE = C\n\
         GATEWAY = 10.77.0.1\nDNS = 10.77.0.2"
    );
    let body = json!({ "template": template }).to_string();
    let answer = send("POST", &server.url("/v1/vnets"), auth, Some(&body));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let hidden = {
        let template = format!(
            "NAME = \"{net}\"\nBRIDGE = br0\nNETWORK_ADDRESS = 10.78.0.0\nNETWORK_SIZE = C\n\
             GATEWAY = 10.78.0.1"
        );
        let body = json!({ "template": template }).to_string();
        let answer = send(
            "POST",
            &server.url("/v1/vnets"),
            Some((other.as_str(), "pw")),
            Some(&body),
        );
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.json()["id"].as_u64().expect("id")
    };
    let image_name = unique("ctx-img");
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:pw").as_bytes());
    let response = super::harness::any_status(
        ureq::post(&server.url(&format!("/v1/images?name={image_name}")))
            .set("Content-Type", "application/octet-stream")
            .set("Authorization", &format!("Basic {token}"))
            .send_bytes(b"a tiny disk"),
        "upload",
    );
    assert_eq!(response.status(), 201);
    let image: Value = serde_json::from_str(&response.into_string().expect("body")).expect("json");
    let image_id = image["id"].as_u64().expect("id");
    let name = unique("ctx-vm");
    let id = created(
        server,
        auth,
        &format!(
            r#"NAME = "{name}"
{SMALL}
{PINNED}
NIC = [ NETWORK = "{net}" ]
CONTEXT = [
  GW = "$NETWORK[GATEWAY, NETWORK=\"{net}\"]",
  MY_DNS = "$NETWORK[DNS]",
  IMG = "$IMAGE[NAME, IMAGE_ID={image_id}]",
  WHO = "$USER[NAME]",
  GROUP = "$GID $GNAME",
  HIDDEN = "<$NETWORK[GATEWAY, NETWORK_ID={hidden}]>",
  XML = "$TEMPLATE" ]"#
        ),
    );
    let vm = get(server, auth, id).json();
    let context = &vm["template"]["CONTEXT"];
    assert_eq!(context["GW"], "10.77.0.1", "{vm:#}");
    assert_eq!(context["MY_DNS"], "10.77.0.2", "the first NIC's network");
    assert_eq!(context["IMG"], image_name.as_str());
    assert_eq!(context["WHO"], user.as_str());
    assert_eq!(context["GROUP"], "1 users");
    assert_eq!(context["HIDDEN"], "<>", "another user's private network");
    let xml = base64::engine::general_purpose::STANDARD
        .decode(context["XML"].as_str().expect("XML"))
        .expect("base64");
    let xml = String::from_utf8(xml).expect("utf-8");
    assert!(xml.starts_with("<TEMPLATE>"), "{xml}");
    assert!(
        xml.contains(&format!("<NAME><![CDATA[{name}]]></NAME>")),
        "{xml}"
    );
    let answer = act(server, auth, id, "delete", None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    wait(server, id, "done");
}

#[test]
fn two_hundred_concurrent_creates_get_two_hundred_addresses() {
    let server = Server::shared();
    let user = new_user(server, "vm-many");
    let net = unique("many");
    let vnet = network(server, Some((user.as_str(), "pw")), &net, "10.3.0.0");
    let template = format!("{PINNED}\nNIC = [ NETWORK = \"{net}\" ]");
    let ips = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let (url, user, template, ips) = (
                server.url("/v1/vms"),
                user.clone(),
                template.clone(),
                ips.clone(),
            );
            thread::spawn(move || {
                for _ in 0..10 {
                    let body = json!({ "template": template }).to_string();
                    let answer = send("POST", &url, Some((user.as_str(), "pw")), Some(&body));
                    assert_eq!(answer.status, 201, "{}", answer.body);
                    let vm = answer.json();
                    let ip = vm["nics"][0]["ip"].as_str().expect("ip").to_string();
                    ips.lock()
                        .expect("ips")
                        .push((ip, vm["id"].as_u64().expect("id")));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("creator");
    }
    let ips = ips.lock().expect("ips").clone();
    let distinct: BTreeSet<&String> = ips.iter().map(|(ip, _)| ip).collect();
    assert_eq!((ips.len(), distinct.len()), (200, 200));
    let held = leases(server, vnet);
    assert_eq!(held.len(), 200);
    for (ip, vm) in &ips {
        assert_eq!(held.get(ip), Some(vm));
    }
    // A taken address is refused and takes nothing.
    let taken = &ips[0].0;
    let answer = create(
        server,
        Some((user.as_str(), "pw")),
        &format!("{PINNED}\nNIC = [ NETWORK = \"{net}\", IP = {taken} ]"),
    );
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert!(answer.json()["error"]["message"]
        .as_str()
        .expect("message")
        .contains("already in use"));
    assert_eq!(leases(server, vnet).len(), 200);
    // Deleting gives every address back.
    for (_, vm) in &ips {
        let answer = send(
            "DELETE",
            &server.url(&format!("/v1/vms/{vm}")),
            Some((user.as_str(), "pw")),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert!(leases(server, vnet).is_empty());
}

/// A POST that may meet a dead server: the answer, or `None`.
fn try_create(url: &str, template: &str) -> Option<(u16, Value)> {
    use base64::Engine;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("oneadmin:{ADMIN_PASSWORD}"));
    let result = ureq::post(url)
        .set("Authorization", &format!("Basic {token}"))
        .set("Content-Type", "application/json")
        .timeout(Duration::from_secs(30))
        .send_string(&json!({ "template": template }).to_string());
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(_) => return None,
    };
    let status = response.status();
    let mut body = String::new();
    response
        .into_reader()
        .take(1 << 20)
        .read_to_string(&mut body)
        .ok()?;
    Some((status, serde_json::from_str(&body).ok()?))
}

#[test]
fn kill_9_during_creates_loses_no_answered_vm_and_leaks_nothing() {
    let mut server = Server::start();
    let vnet = network(&server, admin(), "crash", "10.4.0.0");
    let template = "CPU = 0.1\nMEMORY = 16\nNIC = [ NETWORK = crash ]";
    let url = server.url("/v1/vms");
    let answered = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (url, answered) = (url.clone(), answered.clone());
            thread::spawn(move || {
                for _ in 0..10 {
                    match try_create(&url, template) {
                        Some((201, vm)) => answered
                            .lock()
                            .expect("answered")
                            .push(vm["id"].as_u64().expect("id")),
                        Some((status, body)) => panic!("create answered {status}: {body}"),
                        None => return,
                    }
                }
            })
        })
        .collect();
    // Kill once some creates were answered, others in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.lock().expect("answered").len() < 20 {
        assert!(
            Instant::now() < deadline,
            "creates too slow:\n{}",
            tail(&server.log())
        );
        thread::sleep(Duration::from_millis(5));
    }
    server.kill_hard();
    for t in threads {
        t.join().expect("creator");
    }
    let answered = answered.lock().expect("answered").clone();
    assert!(answered.len() >= 20 && answered.len() <= 60);
    eprintln!("{} creates answered before the kill", answered.len());

    server.restart();
    // Every VM answered with an id exists and reaches RUNNING.
    for &id in &answered {
        let vm = wait(&server, id, "runn");
        assert_eq!(vm["host"], "localhost");
    }
    // Those created but not answered too, and nothing is stuck.
    let vms = send("GET", &server.url("/v1/vms"), admin(), None).json();
    let vms = vms.as_array().expect("list").clone();
    for vm in &vms {
        wait(&server, vm["id"].as_u64().expect("id"), "runn");
    }
    let vms = send("GET", &server.url("/v1/vms"), admin(), None).json();
    let vms = vms.as_array().expect("list").clone();
    // Leases are exactly the NICs of the VMs, one each.
    let nics: BTreeMap<String, u64> = vms
        .iter()
        .map(|vm| {
            (
                vm["nics"][0]["ip"].as_str().expect("ip").to_string(),
                vm["id"].as_u64().expect("id"),
            )
        })
        .collect();
    assert_eq!(nics.len(), vms.len(), "no address given twice");
    assert_eq!(
        leases(&server, vnet),
        nics,
        "leases == NICs of the live VMs"
    );
    // Capacity is the VMs placed.
    let placed = vms.len() as i64;
    eprintln!("{placed} VMs after the restart");
    assert_eq!(
        share(&server, "localhost"),
        (10 * placed, 16_384 * placed, placed)
    );
}

#[test]
fn the_cli_creates_lists_shows_and_acts() {
    let server = Server::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vm.one");
    std::fs::write(
        &file,
        format!("NAME = cli-vm\n{SMALL}\n{PINNED}\nDISK = [ TYPE = fs, SIZE = 8, FORMAT = raw ]\n"),
    )
    .expect("template");
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cloudgate"))
            .arg("vm")
            .args(args)
            .env("CLOUDGATE_URL", server.base())
            .env("CLOUDGATE_AUTH", format!("oneadmin:{ADMIN_PASSWORD}"))
            .output()
            .expect("run the CLI");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = cli(&["create", file.to_str().expect("path")]);
    assert_eq!(code, Some(0), "{err}");
    let id: u64 = out
        .trim()
        .strip_prefix("ID: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    let (code, out, _) = cli(&["list", "-f", &format!("ID={id}")]);
    assert_eq!(code, Some(0));
    let mut lines = out.lines();
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "ID", "USER", "NAME", "STAT", "CPU", "MEM", "HOSTNAME", "TIME"
        ])
    );
    let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
    assert_eq!(
        row[..4],
        [id.to_string().as_str(), "oneadmin", "cli-vm", "pend"]
    );
    let (code, _, err) = cli(&["deploy", &id.to_string(), "localhost"]);
    assert_eq!(code, Some(0), "{err}");
    wait(server, id, "runn");
    let (code, out, _) = cli(&["show", &id.to_string(), "--json"]);
    assert_eq!(code, Some(0));
    let shown: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        (shown["id"].as_u64(), shown["state"].as_str()),
        (Some(id), Some("runn"))
    );
    let (code, out, _) = cli(&["history", &id.to_string()]);
    assert_eq!(code, Some(0));
    assert!(out.contains("localhost") && out.contains("none"), "{out}");
    let saved = unique("cli-saved");
    let (code, out, err) = cli(&["saveas", &id.to_string(), "0", &saved]);
    assert_eq!(code, Some(0), "{err}");
    let image_id: u64 = out
        .trim()
        .strip_prefix("Image ID: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    let (code, _, err) = cli(&["saveas", &id.to_string(), "0", &unique("again")]);
    assert_ne!(code, Some(0));
    assert!(err.contains("already to be saved as image"), "{err}");
    let (code, _, err) = cli(&["suspend", &format!("[{id}+1]")]);
    assert_eq!(code, Some(0), "{err}");
    wait(server, id, "susp");
    let (code, _, err) = cli(&["suspend", &id.to_string()]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains(&format!(
            "cannot suspend virtual machine {id} in state susp"
        )),
        "{err}"
    );
    let (code, _, err) = cli(&["delete", &id.to_string()]);
    assert_eq!(code, Some(0), "{err}");
    wait(server, id, "done");
    // Never saved: its image went to ERROR, and may be deleted.
    let image = server.url(&format!("/v1/images/{image_id}"));
    assert_eq!(send("GET", &image, admin(), None).json()["state"], "ERROR");
    assert_eq!(send("DELETE", &image, admin(), None).status, 204);
}

#[test]
fn a_disk_is_saved_as_a_locked_image_through_v1() {
    let server = Server::shared();
    let user = new_user(server, "saveas");
    let me: Auth<'_> = Some((&user, "pw"));
    let id = created(
        server,
        me,
        &format!(
            "{SMALL}\n{PINNED}\nDISK = [ TYPE = swap, SIZE = 8 ]\n\
             DISK = [ TYPE = fs, SIZE = 8, FORMAT = ext3 ]"
        ),
    );
    let save = |auth: Auth<'_>, disk: &str, body: Value| {
        send(
            "POST",
            &server.url(&format!("/v1/vms/{id}/disks/{disk}/saveas")),
            auth,
            Some(&body.to_string()),
        )
    };
    let name = unique("scratch");
    // The swap disk, a missing disk, a bad name, a bad body: 400.
    for (disk, body) in [
        ("0", json!({ "name": name })),
        ("5", json!({ "name": name })),
        ("x", json!({ "name": name })),
        ("1", json!({ "name": "42" })),
        ("1", json!({ "nom": name })),
    ] {
        let answer = save(me, disk, body.clone());
        assert_eq!(answer.status, 400, "{disk} {body}: {}", answer.body);
    }
    let other = new_user(server, "saveas2");
    assert_eq!(
        save(Some((&other, "pw")), "1", json!({ "name": name })).status,
        403
    );
    assert!(get(server, me, id).json()["disks"][1]
        .get("SAVE_AS")
        .is_none());

    let answer = save(me, "1", json!({ "name": name }));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let image = answer.json();
    assert_eq!(image["name"], name.as_str());
    assert_eq!(image["owner_name"], user.as_str());
    assert_eq!(image["state"], "LOCKED");
    assert_eq!(image["type"], "DATABLOCK");
    assert_eq!(image["template"]["SAVED_VM_ID"], id.to_string());
    assert_eq!(image["template"]["SAVED_DISK_ID"], "1");
    let image_id = image["id"].as_u64().expect("id");
    assert_eq!(
        get(server, me, id).json()["disks"][1]["SAVE_AS"],
        image_id.to_string()
    );
    // Once only; and the image waits, undeletable.
    assert_eq!(
        save(me, "1", json!({ "name": unique("again") })).status,
        400
    );
    let image_url = server.url(&format!("/v1/images/{image_id}"));
    assert_eq!(send("DELETE", &image_url, me, None).status, 400);

    // The VM never ran: deleting it leaves the image in ERROR.
    assert_eq!(act(server, me, id, "delete", None).status, 200);
    let image = send("GET", &image_url, me, None).json();
    assert_eq!(image["state"], "ERROR", "{image}");
    assert_eq!(send("DELETE", &image_url, me, None).status, 204);
}

/// GET `/v1/vms/{id}/log` as `auth`: (status, Content-Type, body).
fn vm_log(server: &Server, auth: Auth<'_>, id: u64) -> (u16, String, String) {
    use base64::Engine;
    let mut req = ureq::get(&server.url(&format!("/v1/vms/{id}/log")));
    if let Some((user, password)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        req = req.set("Authorization", &format!("Basic {token}"));
    }
    let response = super::harness::any_status(req.call(), "GET log");
    let status = response.status();
    let media = response.content_type().to_owned();
    let charset = response.charset().to_owned();
    let body = response.into_string().expect("body");
    (status, format!("{media}; charset={charset}"), body)
}

#[test]
fn a_vms_log_holds_its_life_driver_messages_and_hooks() {
    // The built-in config plus two RUNNING hooks run on the front-end, one
    // that succeeds and one that fails.
    let built_in = include_str!("../../config/cloudgate.conf");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cloudgate.conf");
    std::fs::write(
        &path,
        format!(
            "{built_in}\nVM_HOOK = [ NAME = \"noted\", ON = \"RUNNING\", COMMAND = \"/bin/true\" ]\n\
             VM_HOOK = [ NAME = \"broken\", ON = \"RUNNING\", COMMAND = \"/bin/false\" ]\n"
        ),
    )
    .expect("config");
    let server = Server::start_with(&["--config", path.to_str().expect("path")]);
    let user = new_user(&server, "logger");
    let me = Some((user.as_str(), "pw"));

    let id = created(&server, me, "NAME = logged\nCPU = 0.1\nMEMORY = 32");
    wait(&server, id, "runn");
    // Hooks run in the background once RUNNING is committed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (status, media, text) = vm_log(&server, me, id);
        assert_eq!(status, 200, "{text}");
        assert_eq!(media, "text/plain; charset=utf-8");
        if text.contains("Hook noted successfully executed.")
            && text.contains("Error executing Hook: broken.")
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no hook lines in the VM log:\n{text}\n--- server log tail ---\n{}",
            tail(&server.log())
        );
        thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        let (time, _) = line.split_once(' ').expect("time");
        assert!(time.ends_with('Z') && time.len() == 24, "{line}");
    }
    let bodies: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once(' ').expect("time").1)
        .collect();
    assert_eq!(
        bodies[0],
        format!("[VM][I]: VM {id} (logged) created by {user}"),
        "{text}"
    );
    // The transitions, in order, up to RUNNING.
    let states: Vec<&str> = bodies
        .iter()
        .filter_map(|b| b.strip_prefix("[VM][I]: New state is "))
        .map(|b| b.split(' ').next().expect("state"))
        .collect();
    assert_eq!(
        states,
        ["ACTIVE/PROLOG", "ACTIVE/BOOT", "ACTIVE/RUNNING"],
        "{text}"
    );
    // The scheduler's dispatch.
    let dispatched = format!("[DiM][I]: scheduler: VM {id} dispatched to host ");
    assert!(bodies.iter().any(|b| b.starts_with(&dispatched)), "{text}");
    assert!(
        bodies.contains(&"[HKM][I]: Hook noted successfully executed."),
        "{text}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.starts_with("[HKM][W]: Error executing Hook: broken.")),
        "{text}"
    );
    // The file is OpenNebula's var/<vid>/vm.log.
    let file =
        std::fs::read_to_string(server.data_dir().join(format!("{id}/vm.log"))).expect("vm.log");
    assert!(file.starts_with(lines[0]), "{file}");

    // The CLI prints the same text.
    let (code, out, err) = super::harness::run_cli(
        &server,
        &format!("{user}:pw"),
        dir.path(),
        &["vm", "log", &id.to_string()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&text), "{out}");

    // Others get what `show` answers them.
    let other = new_user(&server, "snoop");
    let them = Some((other.as_str(), "pw"));
    let shown = get(&server, them, id);
    assert_eq!(shown.status, 403, "{}", shown.body);
    let (status, _, body) = vm_log(&server, them, id);
    assert_eq!((status, body.as_str()), (shown.status, shown.body.as_str()));
    let (code, _, err) = super::harness::run_cli(
        &server,
        &format!("{other}:pw"),
        dir.path(),
        &["vm", "log", &id.to_string()],
    );
    assert_eq!(code, 1, "{err}");
    let missing = get(&server, me, 999_999);
    let (status, _, body) = vm_log(&server, me, 999_999);
    assert_eq!((status, body.as_str()), (404, missing.body.as_str()));
    let (status, _, _) = vm_log(&server, None, id);
    assert_eq!(status, 401);

    // A failing driver script: its stderr line and the failure are logged.
    let failing = created(
        &server,
        me,
        "NAME = failing\nCPU = 0.1\nMEMORY = 32\nDUMMY_FAIL = \"deploy\"",
    );
    wait(&server, failing, "fail");
    let (_, _, text) = vm_log(&server, me, failing);
    assert!(
        text.contains("[DRV][D]: dummy: deploy failed as requested by DUMMY_FAIL action=deploy"),
        "{text}"
    );
    assert!(
        text.contains("[VM][W]: deploy on localhost failed"),
        "{text}"
    );
    assert!(text.contains("New state is FAILED/LCM_INIT"), "{text}");
    // The logs of two VMs do not mix.
    let (_, _, first) = vm_log(&server, me, id);
    assert!(!first.contains("DUMMY_FAIL"), "{first}");
}
