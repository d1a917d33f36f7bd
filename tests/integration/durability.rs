//! A change the server acknowledged survives `kill -9`.

use super::harness::{admin, send, Server};

#[test]
fn acknowledged_users_survive_kill_9() {
    let mut server = Server::start();
    let mut created = Vec::new();
    for i in 0..20 {
        let body = format!(r#"{{"name":"durable{i}","password":"pw{i}"}}"#);
        let answer = send("POST", &server.url("/v1/users"), admin(), Some(&body));
        assert_eq!(answer.status, 201, "{}", answer.body);
        created.push(answer.json()["id"].as_u64().expect("id"));
    }
    send("DELETE", &server.url("/v1/users/durable3"), admin(), None);
    send(
        "POST",
        &server.url("/v1/users/durable4/disable"),
        admin(),
        None,
    );

    server.kill_hard();
    server.restart();

    let answer = send("GET", &server.url("/v1/users"), admin(), None);
    let users = answer.json();
    let users = users.as_array().expect("array");
    assert_eq!(users.len(), 1 + 20 - 1, "{users:?}");
    assert!(users.iter().all(|u| u["name"] != "durable3"));
    let four = users
        .iter()
        .find(|u| u["name"] == "durable4")
        .expect("durable4");
    assert_eq!(four["enabled"], false);
    // Passwords work after the restart, and ids go on from where they were.
    let answer = send(
        "GET",
        &server.url("/v1/users/durable7"),
        Some(("durable7", "pw7")),
        None,
    );
    assert_eq!(answer.status, 200);
    let answer = send(
        "POST",
        &server.url("/v1/users"),
        admin(),
        Some(r#"{"name":"after","password":"x"}"#),
    );
    assert_eq!(
        answer.json()["id"].as_u64(),
        Some(created.last().expect("ids") + 1)
    );
}
