//! `/v1/vnets` and `cloudgate vnet ...`: RANGED and FIXED networks,
//! who sees and deletes what (owner, public, oneadmin), bad templates
//! refused naming the attribute with nothing created, duplicates, and
//! networks surviving `kill -9` (spec/CORE.md §4.1–4.5, §7.3, §8).

use serde_json::Value;

use super::harness::{admin, run_cli, send, unique, Answer, Server};

/// A new user on `server`; returns its name (the password is "pw").
fn new_user(server: &Server, prefix: &str) -> String {
    let name = unique(prefix);
    let body = format!(r#"{{"name":"{name}","password":"pw"}}"#);
    let answer = send("POST", &server.url("/v1/users"), admin(), Some(&body));
    assert_eq!(answer.status, 201, "{}", answer.body);
    name
}

fn create(server: &Server, auth: Option<(&str, &str)>, template: &str) -> Answer {
    let body = serde_json::json!({ "template": template }).to_string();
    send("POST", &server.url("/v1/vnets"), auth, Some(&body))
}

fn created(server: &Server, auth: Option<(&str, &str)>, template: &str) -> Value {
    let answer = create(server, auth, template);
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()
}

fn get(server: &Server, auth: Option<(&str, &str)>, key: &str) -> Answer {
    send("GET", &server.url(&format!("/v1/vnets/{key}")), auth, None)
}

/// The names of the networks `auth` lists, among those owned by `owners`.
fn listed(server: &Server, auth: Option<(&str, &str)>, owners: &[&str]) -> Vec<String> {
    let answer = send("GET", &server.url("/v1/vnets"), auth, None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
        .json()
        .as_array()
        .expect("array")
        .iter()
        .filter(|v| owners.iter().any(|o| v["owner_name"] == *o))
        .map(|v| v["name"].as_str().expect("name").to_string())
        .collect()
}

fn lan(name: &str, extra: &str) -> String {
    format!("NAME = \"{name}\"\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_ADDRESS = 192.168.0.0\nNETWORK_SIZE = C\n{extra}")
}

#[test]
fn ranged_and_fixed_networks_through_v1() {
    let server = Server::shared();
    let alice = new_user(server, "vn-alice");
    let me = Some((alice.as_str(), "pw"));

    let ranged = created(server, me, &lan("Private LAN", ""));
    assert_eq!(ranged["owner_name"], alice.as_str());
    assert_eq!(ranged["name"], "Private LAN");
    assert_eq!(ranged["type"], "RANGED");
    assert_eq!(ranged["bridge"], "br0");
    assert_eq!(ranged["public"], false);
    assert_eq!(ranged["network_address"], "192.168.0.0");
    assert_eq!(ranged["network_mask"], "255.255.255.0");
    assert_eq!(ranged["network_size"], "C");
    assert_eq!(ranged["ip_start"], "192.168.0.1");
    assert_eq!(ranged["ip_end"], "192.168.0.254");
    assert_eq!(ranged["addresses"], 254);
    assert_eq!(ranged["leases"], serde_json::json!([]));
    assert_eq!(ranged["leases_used"], 0);
    let template = ranged["template"].as_str().expect("template");
    assert!(
        template.contains("NETWORK_MASK = 255.255.255.0"),
        "{template}"
    );

    let fixed = created(
        server,
        me,
        "NAME = fixed\nBRIDGE = br1\nLEASES = [ IP = 10.0.0.2 ]\nLEASES = [ IP = 10.0.0.1, MAC = 00:16:3E:00:00:01 ]",
    );
    assert_eq!(fixed["type"], "FIXED");
    assert_eq!(
        fixed["fixed_leases"],
        serde_json::json!([
            {"ip": "10.0.0.1", "mac": "00:16:3e:00:00:01"},
            {"ip": "10.0.0.2", "mac": "02:00:0a:00:00:02"}
        ])
    );
    assert_eq!(fixed["addresses"], 2);
    assert!(fixed.get("network_address").is_none());

    // By id and by (percent-encoded) name.
    let id = ranged["id"].as_u64().expect("id");
    assert_eq!(get(server, me, &id.to_string()).json(), ranged);
    assert_eq!(get(server, me, "Private%20LAN").json(), ranged);
    assert_eq!(listed(server, me, &[&alice]), ["Private LAN", "fixed"]);

    let answer = send("DELETE", &server.url(&format!("/v1/vnets/{id}")), me, None);
    assert_eq!(answer.status, 204, "{}", answer.body);
    let answer = get(server, me, &id.to_string());
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], "NotFound");
    assert_eq!(listed(server, me, &[&alice]), ["fixed"]);
}

#[test]
fn owners_public_and_oneadmin() {
    let server = Server::shared();
    let alice = new_user(server, "vn-owner");
    let bob = new_user(server, "vn-other");
    let (as_alice, as_bob) = (Some((alice.as_str(), "pw")), Some((bob.as_str(), "pw")));
    let private = created(server, as_alice, &lan("private", ""));
    let public = created(server, as_alice, &lan("public", "PUBLIC = YES"));
    let (private_id, public_id) = (private["id"].to_string(), public["id"].to_string());

    assert_eq!(listed(server, as_alice, &[&alice]), ["private", "public"]);
    assert_eq!(listed(server, as_bob, &[&alice]), ["public"]);
    assert_eq!(listed(server, admin(), &[&alice]), ["private", "public"]);

    assert_eq!(get(server, as_bob, &public_id).status, 200);
    for key in [private_id.as_str(), "private"] {
        let answer = get(server, as_bob, key);
        assert_eq!(answer.status, 403, "{key}: {}", answer.body);
        assert_eq!(answer.json()["error"]["code"], "Forbidden");
    }
    assert_eq!(get(server, admin(), &private_id).status, 200);
    assert_eq!(get(server, None, &public_id).status, 401);

    // Public means usable, not someone else's to delete.
    let answer = send(
        "DELETE",
        &server.url(&format!("/v1/vnets/{public_id}")),
        as_bob,
        None,
    );
    assert_eq!(answer.status, 403, "{}", answer.body);
    let answer = send(
        "DELETE",
        &server.url(&format!("/v1/vnets/{private_id}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(listed(server, as_alice, &[&alice]), ["public"]);
}

/// `POST /v1/vnets/{key}/{publish|unpublish}`.
fn publish(server: &Server, auth: Option<(&str, &str)>, key: &str, action: &str) -> Answer {
    send(
        "POST",
        &server.url(&format!("/v1/vnets/{key}/{action}")),
        auth,
        None,
    )
}

/// Creates a VM of `auth` with one NIC on network `id` (pinned nowhere:
/// it stays pending, which is enough to hold a lease).
fn vm_on(server: &Server, auth: Option<(&str, &str)>, id: &str) -> Answer {
    let template = format!(
        "CPU = 0.1\nMEMORY = 16\nREQUIREMENTS = \"NAME = \\\"nowhere\\\"\"\nNIC = [ NETWORK_ID = {id} ]"
    );
    let body = serde_json::json!({ "template": template }).to_string();
    send("POST", &server.url("/v1/vms"), auth, Some(&body))
}

#[test]
fn publish_shares_a_network_and_unpublish_takes_it_back() {
    let server = Server::shared();
    let alice = new_user(server, "vn-pub");
    let bob = new_user(server, "vn-pub");
    let (as_alice, as_bob) = (Some((alice.as_str(), "pw")), Some((bob.as_str(), "pw")));
    let net = created(server, as_alice, &lan("shared", ""));
    let id = net["id"].to_string();
    assert_eq!(listed(server, as_bob, &[&alice]), Vec::<String>::new());
    assert_eq!(vm_on(server, as_bob, &id).status, 403);

    let answer = publish(server, as_alice, &id, "publish");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let shown = answer.json();
    assert_eq!(shown["public"], true);
    assert!(
        shown["template"]
            .as_str()
            .expect("template")
            .contains("PUBLIC = YES"),
        "{shown}"
    );
    assert_eq!(listed(server, as_bob, &[&alice]), ["shared"]);
    assert_eq!(get(server, as_bob, &id).json()["public"], true);
    let answer = vm_on(server, as_bob, &id);
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(get(server, as_alice, &id).json()["leases_used"], 1);

    // Bob may use it, not publish or unpublish it; nothing changes.
    for action in ["unpublish", "publish"] {
        let answer = publish(server, as_bob, &id, action);
        assert_eq!(answer.status, 403, "{}", answer.body);
        assert_eq!(answer.json()["error"]["code"], "Forbidden");
    }
    assert_eq!(get(server, as_alice, &id).json()["public"], true);

    // oneadmin unpublishes any network.
    let answer = publish(server, admin(), &id, "unpublish");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["public"], false);
    assert_eq!(listed(server, as_bob, &[&alice]), Vec::<String>::new());
    assert_eq!(get(server, as_bob, &id).status, 403);
    assert_eq!(vm_on(server, as_bob, &id).status, 403);
    // The lease bob took stays.
    assert_eq!(get(server, as_alice, &id).json()["leases_used"], 1);
    // Refused: another user's private network, unknown ones, other verbs.
    let answer = publish(server, as_bob, &id, "publish");
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(get(server, as_alice, &id).json()["public"], false);
    assert_eq!(publish(server, as_alice, "999999", "publish").status, 404);
    assert_eq!(publish(server, as_alice, &id, "share").status, 404);
    assert_eq!(publish(server, None, &id, "publish").status, 401);
    let answer = publish(server, as_alice, "shared", "publish");
    assert_eq!(answer.status, 200, "by name: {}", answer.body);
    assert_eq!(listed(server, as_bob, &[&alice]), ["shared"]);
}

#[test]
fn bad_templates_are_400_naming_the_attribute_and_create_nothing() {
    let server = Server::shared();
    let user = new_user(server, "vn-bad");
    let me = Some((user.as_str(), "pw"));
    let cases = [
        ("BRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0", "NAME"),
        ("NAME = n\nNETWORK_ADDRESS = 10.0.0.0", "BRIDGE"),
        ("NAME = n\nBRIDGE = br0", "TYPE"),
        ("NAME = n\nBRIDGE = br0\nTYPE = VLAN", "TYPE"),
        (
            "NAME = n\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.7\nNETWORK_SIZE = C",
            "NETWORK_ADDRESS",
        ),
        (
            "NAME = n\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0\nNETWORK_SIZE = Z",
            "NETWORK_SIZE",
        ),
        (
            "NAME = n\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0\nNETWORK_MASK = 255.0.255.0",
            "NETWORK_MASK",
        ),
        ("NAME = n\nBRIDGE = br0\nTYPE = FIXED", "LEASES"),
        (
            "NAME = n\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.300 ]",
            "LEASES/IP",
        ),
        (
            "NAME = n\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.3, MAC = nope ]",
            "LEASES/MAC",
        ),
        (
            "NAME = n\nBRIDGE = br0\nPUBLIC = sometimes\nNETWORK_ADDRESS = 10.0.0.0",
            "PUBLIC",
        ),
        ("NAME = \"unclosed\nBRIDGE = br0", "template"),
    ];
    for (template, field) in cases {
        let answer = create(server, me, template);
        assert_eq!(answer.status, 400, "{template}: {}", answer.body);
        let error = &answer.json()["error"];
        assert_eq!(error["code"], "Invalid", "{template}");
        let message = error["message"].as_str().expect("message");
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{template}: {message}"
        );
    }
    // Not a template at all.
    for body in [
        r#"{}"#,
        r#"{"template": 3}"#,
        r#"{"template": "", "name": "x"}"#,
        "nope",
    ] {
        let answer = send("POST", &server.url("/v1/vnets"), me, Some(body));
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
    }
    assert!(listed(server, admin(), &[&user]).is_empty());
}

#[test]
fn a_name_taken_by_the_same_owner_is_409() {
    let server = Server::shared();
    let alice = new_user(server, "vn-dup");
    let bob = new_user(server, "vn-dup");
    created(server, Some((&alice, "pw")), &lan("lan", ""));
    let answer = create(server, Some((&alice, "pw")), &lan("lan", ""));
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(
        answer.json()["error"]["message"],
        "network lan already exists"
    );
    created(server, Some((&bob, "pw")), &lan("lan", ""));
    assert_eq!(listed(server, admin(), &[&alice, &bob]), ["lan", "lan"]);
}

#[test]
fn the_cli_creates_lists_shows_and_deletes() {
    let server = Server::shared();
    let alice = new_user(server, "vn-cli");
    let bob = new_user(server, "vn-cli");
    let dir = tempfile::tempdir().expect("temp dir");
    let as_alice = format!("{alice}:pw");
    let run = |auth: &str, args: &[&str]| run_cli(server, auth, dir.path(), args);
    std::fs::write(dir.path().join("ranged.net"), lan("cli lan", "")).expect("write");
    std::fs::write(
        dir.path().join("fixed.net"),
        "NAME = cli-fixed\nTYPE = FIXED\nBRIDGE = br1\nLEASES = [ IP = 10.9.0.1 ]\nPUBLIC = YES\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("bad.net"),
        "NAME = x\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.1/24\n",
    )
    .expect("write");

    let id_of = |out: &str| -> String {
        out.strip_prefix("ID: ")
            .map(|rest| rest.trim_end().to_string())
            .unwrap_or_else(|| panic!("create printed {out:?}"))
    };
    let (code, out, err) = run(&as_alice, &["vnet", "create", "ranged.net"]);
    assert_eq!(code, 0, "{err}");
    let ranged = id_of(&out);
    let (code, out, err) = run(&as_alice, &["vnet", "create", "fixed.net"]);
    assert_eq!(code, 0, "{err}");
    let fixed = id_of(&out);

    let (code, out, err) = run(&as_alice, &["vnet", "list"]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(header, ["NID", "USER", "NAME", "TYPE", "BRIDGE", "#LEASES"]);
    let rows: Vec<String> = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        rows.contains(&format!("{ranged} {alice} cli lan RANGED br0 0")),
        "{out}"
    );
    assert!(
        rows.contains(&format!("{fixed} {alice} cli-fixed FIXED br1 0")),
        "{out}"
    );

    // Bob sees alice's public network only; `m` keeps his own (none).
    let as_bob = format!("{bob}:pw");
    let (_, out, _) = run(&as_bob, &["vnet", "list", &alice, "-l", "NAME"]);
    assert_eq!(out, "NAME\ncli-fixed\n");
    let (_, out, _) = run(&as_bob, &["vnet", "list", "m", "-l", "NAME"]);
    assert_eq!(out, "NAME\n");
    let (_, out, _) = run(
        &as_alice,
        &["vnet", "list", "m", "-l", "NAME", "-o", "NAME"],
    );
    assert_eq!(out, "NAME\ncli lan\ncli-fixed\n");
    let (code, _, err) = run(&as_bob, &["vnet", "show", &ranged]);
    assert_eq!(code, 1);
    assert!(err.contains("(403 Forbidden)"), "{err}");

    let (code, out, err) = run(&as_alice, &["vnet", "show", "cli lan"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("NETWORK_MASK"), "{out}");
    assert!(out.contains("\nTEMPLATE\n"), "{out}");
    let (code, out, _) = run(&as_alice, &["vnet", "show", &fixed, "--json"]);
    assert_eq!(code, 0);
    let json: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["fixed_leases"][0]["mac"], "02:00:0a:09:00:01");

    // A refused template: the server's message names the attribute.
    let (code, out, err) = run(&as_alice, &["vnet", "create", "bad.net"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains("NETWORK_ADDRESS: 10.0.0.1 is not the base"),
        "{err}"
    );
    let (code, _, err) = run(&as_alice, &["vnet", "create", "missing.net"]);
    assert_eq!(code, 2, "{err}");

    let (code, _, err) = run(&as_alice, &["vnet", "delete", &ranged, &fixed]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(&as_alice, &["vnet", "list", "m", "-l", "NAME"]);
    assert_eq!(out, "NAME\n");
}

#[test]
fn the_cli_publishes_and_unpublishes() {
    let server = Server::shared();
    let alice = new_user(server, "vn-clipub");
    let bob = new_user(server, "vn-clipub");
    let dir = tempfile::tempdir().expect("temp dir");
    let (as_alice, as_bob) = (format!("{alice}:pw"), format!("{bob}:pw"));
    let run = |auth: &str, args: &[&str]| run_cli(server, auth, dir.path(), args);
    let one = created(server, Some((alice.as_str(), "pw")), &lan("one", ""))["id"].to_string();
    let two = created(server, Some((alice.as_str(), "pw")), &lan("two", ""))["id"].to_string();
    let bob_sees = || run(&as_bob, &["vnet", "list", &alice, "-l", "NAME"]).1;
    assert_eq!(bob_sees(), "NAME\n");

    let (code, out, err) = run(&as_alice, &["vnet", "publish", &one, "two"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert_eq!(bob_sees(), "NAME\none\ntwo\n");
    let (code, out, err) = run(&as_bob, &["vnet", "show", &two, "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["public"], true);

    // Not bob's to unpublish: 403, exit 1, and nothing changes.
    let (code, _, err) = run(&as_bob, &["vnet", "unpublish", &one]);
    assert_eq!(code, 1);
    assert!(err.contains("(403 Forbidden)"), "{err}");
    assert_eq!(bob_sees(), "NAME\none\ntwo\n");

    let (code, _, err) = run(&as_alice, &["vnet", "unpublish", &one, &two]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(bob_sees(), "NAME\n");
    let (code, _, err) = run(&as_bob, &["vnet", "publish", &two]);
    assert_eq!(code, 1);
    assert!(err.contains("(403 Forbidden)"), "{err}");
    assert_eq!(bob_sees(), "NAME\n");
    let (code, _, err) = run(&as_alice, &["vnet", "publish"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn networks_survive_kill_9() {
    let mut server = Server::start();
    let mut ids = Vec::new();
    for i in 0..5 {
        let net = created(
            &server,
            admin(),
            &lan(
                &format!("durable{i}"),
                if i % 2 == 0 { "PUBLIC = YES" } else { "" },
            ),
        );
        ids.push(net["id"].as_u64().expect("id"));
    }
    let fixed = created(
        &server,
        admin(),
        "NAME = f\nBRIDGE = br1\nLEASES = [ IP = 10.0.0.9 ]",
    );
    let answer = send("DELETE", &server.url("/v1/vnets/durable3"), admin(), None);
    assert_eq!(answer.status, 204, "{}", answer.body);
    let before = send("GET", &server.url("/v1/vnets"), admin(), None).json();

    server.kill_hard();
    server.restart();

    let after = send("GET", &server.url("/v1/vnets"), admin(), None).json();
    assert_eq!(after, before);
    assert_eq!(after.as_array().expect("array").len(), 5);
    assert_eq!(get(&server, admin(), "f").json(), fixed);
    // Ids go on from where they were, and names stay taken.
    let next = created(&server, admin(), &lan("after", ""));
    assert_eq!(
        next["id"].as_u64(),
        Some(fixed["id"].as_u64().expect("id") + 1)
    );
    assert_eq!(create(&server, admin(), &lan("durable1", "")).status, 409);
}
