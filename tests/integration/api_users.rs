//! `/v1/users`: the authentication matrix, authorization, bad input, and
//! that a refused request changes nothing.

use super::harness::{admin, send, unique, Server};

fn create_user(server: &Server, name: &str, password: &str) -> u64 {
    let body = format!(r#"{{"name":"{name}","password":"{password}"}}"#);
    let answer = send("POST", &server.url("/v1/users"), admin(), Some(&body));
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()["id"].as_u64().expect("id")
}

fn sha1_hex(text: &str) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(text.as_bytes()))
}

fn user_names(server: &Server) -> Vec<String> {
    let answer = send("GET", &server.url("/v1/users"), admin(), None);
    assert_eq!(answer.status, 200);
    answer
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn auth_matrix() {
    let server = Server::shared();
    let name = unique("matrix");
    create_user(server, &name, "secret1");
    let me = server.url(&format!("/v1/users/{name}"));
    let digest = sha1_hex("secret1");
    let digest_upper = digest.to_uppercase();

    // (who, expected status)
    type Case<'a> = (&'a str, Option<(&'a str, &'a str)>, u16);
    let cases: Vec<Case> = vec![
        ("no header", None, 401),
        ("wrong password", Some((&name, "nope")), 401),
        ("unknown user", Some(("no-such-user-xyz", "secret1")), 401),
        ("plain password", Some((&name, "secret1")), 200),
        ("sha1 form", Some((&name, &digest)), 200),
        ("sha1 form, upper case", Some((&name, &digest_upper)), 200),
        ("oneadmin", admin(), 200),
    ];
    let mut unauthorized_bodies = Vec::new();
    for (who, auth, expected) in cases {
        let answer = send("GET", &me, auth, None);
        assert_eq!(answer.status, expected, "{who}: {}", answer.body);
        if expected == 401 {
            assert_eq!(
                answer.www_authenticate.as_deref(),
                Some("Basic realm=\"cloudgate\""),
                "{who}"
            );
            unauthorized_bodies.push(answer.json());
        }
    }
    // Unknown user and wrong password must not be told apart.
    assert!(unauthorized_bodies.windows(2).all(|w| w[0] == w[1]));

    // A disabled user is refused like a wrong password, then let in again.
    let answer = send(
        "POST",
        &server.url(&format!("/v1/users/{name}/disable")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["enabled"], false);
    let answer = send("GET", &me, Some((&name, "secret1")), None);
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json(), unauthorized_bodies[0]);
    send(
        "POST",
        &server.url(&format!("/v1/users/{name}/enable")),
        admin(),
        None,
    );
    assert_eq!(send("GET", &me, Some((&name, "secret1")), None).status, 200);
}

#[test]
fn ordinary_users_manage_only_themselves() {
    let server = Server::shared();
    let alice = unique("alice");
    let bob = unique("bob");
    create_user(server, &alice, "pw-a");
    let bob_id = create_user(server, &bob, "pw-b");
    let as_alice = Some((alice.as_str(), "pw-a"));

    let forbidden = [
        ("GET", "/v1/users".to_string(), None),
        (
            "POST",
            "/v1/users".to_string(),
            Some(r#"{"name":"mallory","password":"x"}"#),
        ),
        ("GET", format!("/v1/users/{bob}"), None),
        ("GET", format!("/v1/users/{bob_id}"), None),
        ("DELETE", format!("/v1/users/{bob}"), None),
        (
            "PUT",
            format!("/v1/users/{bob}/password"),
            Some(r#"{"password":"x"}"#),
        ),
        ("POST", format!("/v1/users/{bob}/disable"), None),
        ("POST", format!("/v1/users/{alice}/enable"), None),
        ("GET", "/v1/users/no-such-user".to_string(), None),
    ];
    for (method, path, body) in forbidden {
        let answer = send(method, &server.url(&path), as_alice, body);
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
        assert_eq!(answer.json()["error"]["code"], "Forbidden");
    }
    // Nothing the refused requests asked for happened (other tests share
    // this server, so look at these users, not at the whole pool).
    assert!(!user_names(server).contains(&"mallory".to_string()));
    let answer = send(
        "GET",
        &server.url(&format!("/v1/users/{bob}")),
        Some((&bob, "pw-b")),
        None,
    );
    assert_eq!(answer.status, 200, "bob's password or state changed");
    assert_eq!(answer.json()["enabled"], true);

    // Her own record and password are hers.
    let answer = send(
        "GET",
        &server.url(&format!("/v1/users/{alice}")),
        as_alice,
        None,
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["password"], sha1_hex("pw-a"));
    let answer = send(
        "PUT",
        &server.url(&format!("/v1/users/{alice}/password")),
        as_alice,
        Some(r#"{"password":"pw-a2"}"#),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        send(
            "GET",
            &server.url(&format!("/v1/users/{alice}")),
            as_alice,
            None
        )
        .status,
        401
    );
    assert_eq!(
        send(
            "GET",
            &server.url(&format!("/v1/users/{alice}")),
            Some((&alice, "pw-a2")),
            None
        )
        .status,
        200
    );
}

#[test]
fn admin_manages_users() {
    let server = Server::shared();
    let name = unique("carol");
    let id = create_user(server, &name, "pw");
    let answer = send(
        "GET",
        &server.url(&format!("/v1/users/{id}")),
        admin(),
        None,
    );
    assert_eq!(answer.json()["name"], name.as_str());

    let dup = format!(r#"{{"name":"{name}","password":"x"}}"#);
    let answer = send("POST", &server.url("/v1/users"), admin(), Some(&dup));
    assert_eq!(answer.status, 409, "{}", answer.body);

    let answer = send(
        "DELETE",
        &server.url(&format!("/v1/users/{name}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 204);
    let answer = send(
        "GET",
        &server.url(&format!("/v1/users/{name}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"]["code"], "NotFound");

    // oneadmin is not deleted or disabled.
    assert_eq!(
        send("DELETE", &server.url("/v1/users/0"), admin(), None).status,
        409
    );
    assert_eq!(
        send(
            "POST",
            &server.url("/v1/users/oneadmin/disable"),
            admin(),
            None
        )
        .status,
        409
    );
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let server = Server::shared();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("malformed JSON", "{\"name\": ".into(), 400, "BadRequest"),
        (
            "wrong type",
            r#"{"name": 5, "password": "x"}"#.into(),
            400,
            "BadRequest",
        ),
        (
            "unknown field",
            r#"{"name":"x1","password":"x","admin":true}"#.into(),
            400,
            "BadRequest",
        ),
        (
            "missing field",
            r#"{"name":"x2"}"#.into(),
            400,
            "BadRequest",
        ),
        (
            "colon in name",
            r#"{"name":"a:b","password":"x"}"#.into(),
            400,
            "Invalid",
        ),
        (
            "empty password",
            r#"{"name":"x3","password":""}"#.into(),
            400,
            "Invalid",
        ),
        (
            "oversized body",
            format!(r#"{{"name":"x4","password":"{}"}}"#, "p".repeat(2 << 20)),
            413,
            "PayloadTooLarge",
        ),
    ];
    for (what, body, status, code) in cases {
        let answer = send("POST", &server.url("/v1/users"), admin(), Some(&body));
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        let error = &answer.json()["error"];
        assert_eq!(error["code"], code, "{what}");
        assert!(
            !error["message"].as_str().expect("message").is_empty(),
            "{what}"
        );
    }
    // The message names the problem.
    let answer = send(
        "POST",
        &server.url("/v1/users"),
        admin(),
        Some(r#"{"name":"x2"}"#),
    );
    assert!(answer.json()["error"]["message"]
        .as_str()
        .expect("msg")
        .contains("password"));
    let names = user_names(server);
    for refused in ["x1", "x2", "x3", "x4", "a:b"] {
        assert!(
            !names.contains(&refused.to_string()),
            "{refused} was created"
        );
    }
}

#[test]
fn unknown_routes_and_methods_answer_json() {
    let server = Server::shared();
    let answer = send("GET", &server.url("/v1/nothing-here"), admin(), None);
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"]["code"], "NotFound");
    let answer = send("PATCH", &server.url("/v1/users"), admin(), None);
    assert_eq!(answer.status, 405);
    assert_eq!(answer.json()["error"]["code"], "MethodNotAllowed");
}
