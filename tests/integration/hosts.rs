//! `/v1/hosts` and `cloudgate host ...`: oneadmin's host management,
//! authorization, bad input, the first start's `localhost`, and hosts
//! surviving `kill -9`.

use serde_json::Value;

use super::harness::{admin, run_cli, send, unique, Server, ADMIN_PASSWORD};

fn create_user(server: &Server, name: &str, password: &str) {
    let body = format!(r#"{{"name":"{name}","password":"{password}"}}"#);
    let answer = send("POST", &server.url("/v1/users"), admin(), Some(&body));
    assert_eq!(answer.status, 201, "{}", answer.body);
}

fn host_body(name: &str, im: &str, vmm: &str, tm: &str) -> String {
    format!(r#"{{"name":"{name}","im_mad":"{im}","vmm_mad":"{vmm}","tm_mad":"{tm}"}}"#)
}

fn create_host(server: &Server, name: &str) -> Value {
    let body = host_body(name, "dummy", "vmm_dummy", "dummy");
    let answer = send("POST", &server.url("/v1/hosts"), admin(), Some(&body));
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()
}

fn host_names(server: &Server) -> Vec<String> {
    let answer = send("GET", &server.url("/v1/hosts"), admin(), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|h| h["name"].as_str().expect("name").to_string())
        .collect()
}

/// Runs the CLI against `server` as oneadmin from an empty directory;
/// returns (exit code, stdout, stderr).
fn cloudgate(server: &Server, args: &[&str]) -> (i32, String, String) {
    let empty = tempfile::tempdir().expect("temp dir");
    let auth = format!("oneadmin:{ADMIN_PASSWORD}");
    run_cli(server, &auth, empty.path(), args)
}

#[test]
fn admin_manages_hosts_through_v1() {
    let server = Server::shared();
    let name = unique("node");
    let host = create_host(server, &name);
    let id = host["id"].as_u64().expect("id");
    assert_eq!(host["name"], name.as_str());
    assert_eq!(host["state"], "INIT");
    // Drivers given by folder are stored by their config name.
    assert_eq!(
        (&host["im_mad"], &host["vmm_mad"], &host["tm_mad"]),
        (
            &Value::from("im_dummy"),
            &Value::from("vmm_dummy"),
            &Value::from("tm_dummy")
        )
    );
    assert_eq!(host["last_mon_time"], 0);
    assert_eq!(host["template"], serde_json::json!({}));
    assert_eq!(host["error"], Value::Null);
    for key in [
        "cpu_usage",
        "mem_usage",
        "max_cpu",
        "max_mem",
        "free_cpu",
        "free_mem",
        "running_vms",
    ] {
        assert!(host["share"][key].is_i64(), "share.{key}: {host}");
    }

    // By id and by name.
    for key in [id.to_string(), name.clone()] {
        let answer = send(
            "GET",
            &server.url(&format!("/v1/hosts/{key}")),
            admin(),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["id"], id);
    }
    assert!(host_names(server).contains(&name));

    let answer = send(
        "POST",
        &server.url(&format!("/v1/hosts/{name}/disable")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["state"], "DISABLED");
    let answer = send(
        "POST",
        &server.url(&format!("/v1/hosts/{id}/enable")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["state"], "INIT");

    let answer = send(
        "DELETE",
        &server.url(&format!("/v1/hosts/{id}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 204, "{}", answer.body);
    let answer = send(
        "GET",
        &server.url(&format!("/v1/hosts/{id}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"]["code"], "NotFound");
    assert!(!host_names(server).contains(&name));
}

#[test]
fn hosts_are_oneadmins_only() {
    let server = Server::shared();
    let user = unique("hostless");
    create_user(server, &user, "pw");
    let target = unique("guarded");
    create_host(server, &target);
    let as_user = Some((user.as_str(), "pw"));
    let cases = [
        ("GET", "/v1/hosts".to_string(), None),
        (
            "POST",
            "/v1/hosts".to_string(),
            Some(host_body("sneaky", "dummy", "dummy", "dummy")),
        ),
        ("GET", format!("/v1/hosts/{target}"), None),
        ("GET", "/v1/hosts/no-such-host".to_string(), None),
        ("DELETE", format!("/v1/hosts/{target}"), None),
        ("POST", format!("/v1/hosts/{target}/disable"), None),
        ("POST", format!("/v1/hosts/{target}/enable"), None),
    ];
    for (method, path, body) in cases {
        let answer = send(method, &server.url(&path), as_user, body.as_deref());
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
        assert_eq!(answer.json()["error"]["code"], "Forbidden");
    }
    // Nothing changed (other tests share the server, so look only at what
    // these requests could have touched).
    let names = host_names(server);
    assert!(!names.iter().any(|n| n == "sneaky"), "{names:?}");
    let answer = send(
        "GET",
        &server.url(&format!("/v1/hosts/{target}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Still enabled (the monitor may have moved it on from INIT).
    assert_ne!(answer.json()["state"], "DISABLED");
    // And without credentials, 401 as everywhere.
    assert_eq!(
        send("GET", &server.url("/v1/hosts"), None, None).status,
        401
    );
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let server = Server::shared();
    let taken = unique("taken");
    create_host(server, &taken);
    let fresh = unique("fresh");
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        (
            "unknown IM driver",
            host_body(&fresh, "nosuchim", "dummy", "dummy"),
            400,
            "Invalid",
            "nosuchim",
        ),
        (
            "unknown VMM driver",
            host_body(&fresh, "dummy", "xen", "dummy"),
            400,
            "Invalid",
            "xen",
        ),
        (
            "unknown TM driver",
            host_body(&fresh, "dummy", "dummy", "tm_nfs"),
            400,
            "Invalid",
            "tm_nfs",
        ),
        (
            "bad name",
            host_body("a b", "dummy", "dummy", "dummy"),
            400,
            "Invalid",
            "name",
        ),
        (
            "option-like name",
            host_body("-oProxyCommand=x", "dummy", "dummy", "dummy"),
            400,
            "Invalid",
            "name",
        ),
        (
            "duplicate name",
            host_body(&taken, "dummy", "dummy", "dummy"),
            409,
            "Conflict",
            &taken,
        ),
        (
            "missing driver",
            format!(r#"{{"name":"{fresh}","im_mad":"dummy","vmm_mad":"dummy"}}"#),
            400,
            "BadRequest",
            "tm_mad",
        ),
        (
            "unknown field",
            format!(
                r#"{{"name":"{fresh}","im_mad":"dummy","vmm_mad":"dummy","tm_mad":"dummy","x":1}}"#
            ),
            400,
            "BadRequest",
            "`x`",
        ),
    ];
    for (what, body, status, code, named) in cases {
        let answer = send("POST", &server.url("/v1/hosts"), admin(), Some(&body));
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        let error = &answer.json()["error"];
        assert_eq!(error["code"], code, "{what}");
        let message = error["message"].as_str().expect("message");
        assert!(message.contains(named), "{what}: {message}");
    }
    let names = host_names(server);
    assert!(!names.contains(&fresh), "{names:?}");
    assert_eq!(names.iter().filter(|n| **n == taken).count(), 1);

    for (method, path) in [
        ("GET", "/v1/hosts/no-such-host"),
        ("GET", "/v1/hosts/987654"),
        ("DELETE", "/v1/hosts/no-such-host"),
        ("POST", "/v1/hosts/987654/enable"),
        ("POST", "/v1/hosts/no-such-host/disable"),
    ] {
        let answer = send(method, &server.url(path), admin(), None);
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.body);
        assert_eq!(answer.json()["error"]["code"], "NotFound");
    }
    let answer = send("PUT", &server.url("/v1/hosts"), admin(), None);
    assert_eq!(answer.status, 405);
}

#[test]
fn a_fresh_server_has_localhost_on_the_dummy_drivers() {
    let server = Server::shared();
    let answer = send("GET", &server.url("/v1/hosts/localhost"), admin(), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let host = answer.json();
    assert_eq!(host["id"], 0);
    assert_eq!(
        (&host["im_mad"], &host["vmm_mad"], &host["tm_mad"]),
        (
            &Value::from("im_dummy"),
            &Value::from("vmm_dummy"),
            &Value::from("tm_dummy")
        )
    );
}

#[test]
fn cli_manages_hosts() {
    let server = Server::shared();
    let name = unique("cli-node");
    let (code, out, err) = cloudgate(
        server,
        &[
            "host", "create", &name, "--im", "dummy", "--vmm", "dummy", "--tm", "tm_dummy",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let id: u64 = out
        .strip_prefix("ID: ")
        .and_then(|rest| rest.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("create printed {out:?}"));

    let (code, out, err) = cloudgate(server, &["host", "list", "-f", &format!("NAME={name}")]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        ["HID", "NAME", "RVM", "TCPU", "FCPU", "ACPU", "TMEM", "FMEM", "STAT"]
    );
    let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
    assert_eq!(row[0], id.to_string());
    assert_eq!(row[1], name);
    assert_eq!(row[2], "0");
    assert_eq!(row[8], "on");
    assert!(lines.next().is_none(), "{out}");

    let (code, _, err) = cloudgate(server, &["host", "disable", &id.to_string()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cloudgate(server, &["host", "show", &name]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("STATE"), "{out}");
    assert!(out.contains("DISABLED"), "{out}");
    let (code, out, _) = cloudgate(server, &["host", "show", &name, "--json"]);
    assert_eq!(code, 0);
    let json: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["state"], "DISABLED");
    let (code, out, _) = cloudgate(
        server,
        &["host", "list", "-f", &format!("NAME={name}"), "-l", "STAT"],
    );
    assert_eq!((code, out.as_str()), (0, "STAT\noff\n"));
    let (code, _, err) = cloudgate(server, &["host", "enable", &name]);
    assert_eq!(code, 0, "{err}");

    // Refusals: exit code 1 with the server's message.
    let (code, _, err) = cloudgate(
        server,
        &[
            "host", "create", &name, "--im", "dummy", "--vmm", "dummy", "--tm", "dummy",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("409") && err.contains(&name), "{err}");
    let (code, _, err) = cloudgate(
        server,
        &[
            "host",
            "create",
            &unique("cli-x"),
            "--im",
            "warp",
            "--vmm",
            "dummy",
            "--tm",
            "dummy",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("warp") && err.contains("400"), "{err}");

    let (code, _, err) = cloudgate(server, &["host", "delete", &name]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cloudgate(server, &["host", "show", &id.to_string()]);
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
}

#[test]
fn hosts_survive_kill_9() {
    let mut server = Server::start();
    for i in 0..5 {
        create_host(&server, &format!("durable-{i}"));
    }
    send("DELETE", &server.url("/v1/hosts/durable-1"), admin(), None);
    send("DELETE", &server.url("/v1/hosts/localhost"), admin(), None);
    let answer = send(
        "POST",
        &server.url("/v1/hosts/durable-2/disable"),
        admin(),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);

    server.kill_hard();
    server.restart();

    assert_eq!(
        host_names(&server),
        ["durable-0", "durable-2", "durable-3", "durable-4"],
        "localhost, deleted by the administrator, does not come back"
    );
    let answer = send("GET", &server.url("/v1/hosts/durable-2"), admin(), None);
    assert_eq!(answer.json()["state"], "DISABLED");
    assert_eq!(answer.json()["im_mad"], "im_dummy");
    // Ids go on from where they were (localhost 0, durable-0..4 1..5).
    let host = create_host(&server, "after");
    assert_eq!(host["id"], 6);
}
