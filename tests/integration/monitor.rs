//! Host monitoring through the real binary: the dummy probe runs from the
//! shipped `config/remotes` (found beside the executable, since the server
//! runs in a temporary directory), and hosts reach MONITORED with what it
//! reported. Every wait polls with a deadline; nothing asserts on timing.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::{admin, send, unique, Server};

/// Polls `GET /v1/hosts/<key>` until its state is `state`; the last
/// answer.
fn wait_for_state(server: &Server, key: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let answer = send(
            "GET",
            &server.url(&format!("/v1/hosts/{key}")),
            admin(),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let host = answer.json();
        if host["state"] == state {
            return host;
        }
        assert!(
            Instant::now() < deadline,
            "host {key} never reached {state}: {host}\nserver log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_dummy_probe(host: &Value) {
    let template = &host["template"];
    assert_eq!(template["HYPERVISOR"], "dummy", "{host}");
    assert_eq!(template["TOTALCPU"], "800", "{host}");
    assert_eq!(template["TOTALMEMORY"], "16777216", "{host}");
    assert_eq!(template["FREECPU"], "800", "{host}");
    assert_eq!(template["HOSTNAME"], host["name"], "{host}");
    assert_eq!(host["share"]["max_cpu"], 800, "{host}");
    assert_eq!(host["share"]["max_mem"], 16_777_216, "{host}");
    assert!(host["last_mon_time"].as_u64().expect("time") > 0, "{host}");
    assert_eq!(host["error"], Value::Null, "{host}");
}

#[test]
fn localhost_reaches_monitored_with_the_probe_figures() {
    let server = Server::shared();
    let host = wait_for_state(server, "localhost", "MONITORED");
    assert_dummy_probe(&host);
}

#[test]
fn a_new_host_is_monitored_without_waiting_for_the_timer() {
    let server = Server::shared();
    let name = unique("mon");
    let body =
        format!(r#"{{"name":"{name}","im_mad":"dummy","vmm_mad":"dummy","tm_mad":"dummy"}}"#);
    let answer = send("POST", &server.url("/v1/hosts"), admin(), Some(&body));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let host = wait_for_state(server, &name, "MONITORED");
    assert_dummy_probe(&host);
    let answer = send(
        "DELETE",
        &server.url(&format!("/v1/hosts/{name}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 204, "{}", answer.body);
}
