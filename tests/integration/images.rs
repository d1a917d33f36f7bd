//! The image repository through `/v1/images` and `cloudgate image`:
//! streamed uploads (bytes, checksum, SIZE in MB), who sees what, the
//! upload limit, clients that go away mid-stream, delete, and what a
//! `kill -9` and a restart leave.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::Digest;

use super::harness::{
    admin, any_status, dir_files, run_cli, send, unique, Answer, Server, ADMIN_PASSWORD,
};

/// A user on `server`; returns its credentials.
fn user(server: &Server, prefix: &str) -> (String, String) {
    let name = unique(prefix);
    let password = format!("pw-{name}");
    let body = format!(r#"{{"name":"{name}","password":"{password}"}}"#);
    let answer = send("POST", &server.url("/v1/users"), admin(), Some(&body));
    assert_eq!(answer.status, 201, "{}", answer.body);
    (name, password)
}

fn auth(who: &(String, String)) -> Option<(&str, &str)> {
    Some((who.0.as_str(), who.1.as_str()))
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// Uploads `bytes` as the raw body of `POST /v1/images?<query>`, with a
/// Content-Length, or chunked when `chunked`.
fn upload_with(
    server: &Server,
    who: Option<(&str, &str)>,
    query: &str,
    bytes: &[u8],
    chunked: bool,
) -> Answer {
    let mut request = ureq::post(&server.url(&format!("/v1/images?{query}")))
        .set("Content-Type", "application/octet-stream");
    if let Some((user, password)) = who {
        request = request.set("Authorization", &basic(user, password));
    }
    let result = if chunked {
        // A reader of unknown length: ureq sends it chunked.
        request.send(bytes)
    } else {
        request
            .set("Content-Length", &bytes.len().to_string())
            .send(bytes)
    };
    let response = any_status(result, &format!("upload {query}"));
    let status = response.status();
    let body = response.into_string().expect("body");
    Answer {
        status,
        www_authenticate: None,
        body,
    }
}

fn upload(server: &Server, who: Option<(&str, &str)>, query: &str, bytes: &[u8]) -> Answer {
    upload_with(server, who, query, bytes, false)
}

/// Uploads and returns the new image's id.
fn create(server: &Server, who: Option<(&str, &str)>, name: &str, bytes: &[u8]) -> u64 {
    let answer = upload(server, who, &format!("name={name}"), bytes);
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()["id"].as_u64().expect("id")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Bytes that are not all alike, so a misplaced chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn repo(server: &Server) -> PathBuf {
    server.data_dir().join("images")
}

/// Polls until `done` holds, failing after 20 s.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The ids of `owner`'s images in the list `who` gets (other tests'
/// public images show in the shared server's lists too).
fn list_ids(server: &Server, who: Option<(&str, &str)>, owner: &str) -> Vec<u64> {
    let answer = send("GET", &server.url("/v1/images"), who, None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
        .json()
        .as_array()
        .expect("array")
        .iter()
        .filter(|i| i["owner_name"] == owner)
        .map(|i| i["id"].as_u64().expect("id"))
        .collect()
}

/// A server whose UPLOAD_LIMIT is 64 KB; the config file lives in the
/// returned dir.
fn small_limit_server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("small.conf");
    std::fs::write(&config, "UPLOAD_LIMIT = 64K\n").expect("config");
    let server = Server::start_with(&["--config", config.to_str().expect("utf-8 path")]);
    (server, dir)
}

#[test]
fn an_upload_is_stored_byte_for_byte_with_its_checksum_and_size() {
    let server = Server::shared();
    let alice = user(server, "img-alice");
    // Over the 1 MB JSON body limit: that limit is not the upload's.
    let bytes = pattern((1 << 20) + 1);
    let name = unique("disk");
    let answer = upload(
        server,
        auth(&alice),
        &format!("name={name}&type=datablock&persistent=yes&description=test%20disk"),
        &bytes,
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    let image = answer.json();
    let id = image["id"].as_u64().expect("id");
    assert_eq!(image["name"], name.as_str());
    assert_eq!(image["owner_name"], alice.0.as_str());
    assert_eq!(image["type"], "DATABLOCK");
    assert_eq!(image["state"], "READY");
    assert_eq!(image["size_mb"], 2, "1 MB and 1 byte round up");
    assert_eq!(image["public"], false);
    assert_eq!(image["persistent"], true);
    assert_eq!(image["running_vms"], 0);
    assert_eq!(image["checksum"], sha256_hex(&bytes).as_str());
    assert_eq!(image["template"]["DESCRIPTION"], "test disk");
    assert!(image["registered"].as_u64().expect("registered") > 1_600_000_000);
    let stored = std::fs::read(repo(server).join(id.to_string())).expect("file named by id");
    assert!(stored == bytes, "the stored bytes differ");

    // By id and by name; the same object.
    for key in [id.to_string(), name.clone()] {
        let shown = send(
            "GET",
            &server.url(&format!("/v1/images/{key}")),
            auth(&alice),
            None,
        );
        assert_eq!(shown.status, 200, "{}", shown.body);
        assert_eq!(shown.json(), image);
    }

    // Chunked, without a declared length, and empty.
    let chunked = upload_with(
        server,
        auth(&alice),
        &format!("name={name}-c"),
        &bytes,
        true,
    );
    assert_eq!(chunked.status, 201, "{}", chunked.body);
    assert_eq!(chunked.json()["checksum"], sha256_hex(&bytes).as_str());
    let empty = upload(server, auth(&alice), &format!("name={name}-e"), b"");
    assert_eq!(empty.status, 201, "{}", empty.body);
    assert_eq!(empty.json()["size_mb"], 0);
}

#[test]
fn bad_uploads_are_refused_before_anything_is_stored() {
    let server = Server::shared();
    let alice = user(server, "img-bad");
    let name = unique("dup");
    create(server, auth(&alice), &name, b"first");
    let cases = [
        (None, format!("name={name}x"), 401),
        (auth(&alice), format!("name={name}"), 409),
        (auth(&alice), "name=12345".to_string(), 400),
        (auth(&alice), format!("name={name}y&type=disk"), 400),
        (auth(&alice), format!("name={name}y&public=maybe"), 400),
        (auth(&alice), format!("name={name}y&colour=red"), 400),
        (auth(&alice), "type=OS".to_string(), 400),
    ];
    for (who, query, status) in cases {
        let answer = upload(server, who, &query, b"bytes");
        assert_eq!(answer.status, status, "{query}: {}", answer.body);
        assert!(
            answer.json()["error"]["message"].is_string(),
            "{}",
            answer.body
        );
    }
    assert_eq!(list_ids(server, auth(&alice), &alice.0).len(), 1);
}

#[test]
fn owners_public_images_and_oneadmin_see_what_they_should() {
    let server = Server::shared();
    let alice = user(server, "img-own");
    let bob = user(server, "img-other");
    let private = create(server, auth(&alice), &unique("private"), b"p");
    let public = create(server, auth(&alice), &unique("public"), b"q");
    let url = |path: &str| server.url(path);
    let answer = send(
        "POST",
        &url(&format!("/v1/images/{public}/publish")),
        auth(&alice),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["public"], true);

    assert_eq!(list_ids(server, auth(&alice), &alice.0), [private, public]);
    assert_eq!(list_ids(server, auth(&bob), &alice.0), [public]);
    assert_eq!(list_ids(server, admin(), &alice.0), [private, public]);

    let private_url = url(&format!("/v1/images/{private}"));
    assert_eq!(send("GET", &private_url, auth(&bob), None).status, 403);
    assert_eq!(send("GET", &private_url, admin(), None).status, 200);
    assert_eq!(
        send(
            "GET",
            &url(&format!("/v1/images/{public}")),
            auth(&bob),
            None
        )
        .status,
        200
    );
    assert_eq!(
        send("GET", &url("/v1/images/999999"), auth(&bob), None).status,
        404
    );
    // Seeing a public image is not managing it.
    for (method, path) in [
        ("DELETE", format!("/v1/images/{public}")),
        ("POST", format!("/v1/images/{public}/unpublish")),
        ("POST", format!("/v1/images/{public}/disable")),
        ("DELETE", format!("/v1/images/{private}")),
        ("POST", format!("/v1/images/{private}/persistent")),
    ] {
        let answer = send(method, &url(&path), auth(&bob), None);
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
    }
    assert_eq!(
        list_ids(server, auth(&alice), &alice.0),
        [private, public],
        "nothing changed"
    );

    // The owner's actions, and an unknown one.
    for (action, field, value) in [
        ("disable", "state", serde_json::json!("DISABLED")),
        ("enable", "state", serde_json::json!("READY")),
        ("persistent", "persistent", serde_json::json!(true)),
        ("nonpersistent", "persistent", serde_json::json!(false)),
        ("unpublish", "public", serde_json::json!(false)),
    ] {
        let answer = send(
            "POST",
            &url(&format!("/v1/images/{public}/{action}")),
            auth(&alice),
            None,
        );
        assert_eq!(answer.status, 200, "{action}: {}", answer.body);
        assert_eq!(answer.json()[field], value, "{action}");
    }
    let answer = send(
        "POST",
        &url(&format!("/v1/images/{public}/explode")),
        auth(&alice),
        None,
    );
    assert_eq!(answer.status, 404, "{}", answer.body);
}

#[test]
fn only_oneadmin_registers_a_file_already_on_the_server() {
    let server = Server::shared();
    let alice = user(server, "img-path");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("disk.img");
    std::fs::write(&file, b"from the front-end").expect("write");
    let body = |name: &str| {
        serde_json::json!({ "name": name, "path": file, "type": "CDROM", "public": true })
            .to_string()
    };
    let name = unique("local");
    let answer = send(
        "POST",
        &server.url("/v1/images"),
        auth(&alice),
        Some(&body(&name)),
    );
    assert_eq!(answer.status, 403, "{}", answer.body);
    let answer = send(
        "POST",
        &server.url("/v1/images"),
        admin(),
        Some(&body(&name)),
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    let image = answer.json();
    assert_eq!(image["type"], "CDROM");
    assert_eq!(image["public"], true);
    assert_eq!(
        image["checksum"],
        sha256_hex(b"from the front-end").as_str()
    );
    let id = image["id"].as_u64().expect("id");
    assert_eq!(
        std::fs::read(repo(server).join(id.to_string())).expect("copied"),
        b"from the front-end"
    );
    let bad = serde_json::json!({ "name": unique("rel"), "path": "relative/disk.img" }).to_string();
    let answer = send("POST", &server.url("/v1/images"), admin(), Some(&bad));
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        !answer.body.contains("relative"),
        "no paths in messages: {}",
        answer.body
    );
}

#[test]
fn delete_removes_row_and_file() {
    let server = Server::shared();
    let alice = user(server, "img-del");
    let id = create(server, auth(&alice), &unique("gone"), b"bytes to delete");
    let file = repo(server).join(id.to_string());
    assert!(file.is_file());
    let url = server.url(&format!("/v1/images/{id}"));
    let answer = send("DELETE", &url, auth(&alice), None);
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert!(!file.exists(), "the file is gone with the row");
    assert_eq!(send("GET", &url, auth(&alice), None).status, 404);
    assert_eq!(send("DELETE", &url, auth(&alice), None).status, 404);
}

#[test]
fn uploads_that_fail_leave_no_row_and_no_file() {
    let (server, _config) = small_limit_server();
    let alice = user(&server, "img-limit");
    let repo = repo(&server);
    let over = pattern(64 * 1024 + 1);

    // Declared too large: refused before reading; sent chunked: refused
    // when the limit is crossed.
    for chunked in [false, true] {
        let answer = upload_with(&server, auth(&alice), "name=big", &over, chunked);
        assert_eq!(answer.status, 413, "chunked={chunked}: {}", answer.body);
        assert_eq!(answer.json()["error"]["code"], "PayloadTooLarge");
        eventually("the repository is empty", || dir_files(&repo).is_empty());
        assert!(list_ids(&server, auth(&alice), &alice.0).is_empty());
    }
    // Exactly at the limit is fine.
    let at_limit = create(&server, auth(&alice), "fits", &over[1..]);
    assert_eq!(dir_files(&repo), [at_limit.to_string()]);

    // A client that promises more than it sends and goes away: once the
    // upload has begun (its temporary file exists), closing the
    // connection deletes it and leaves no image.
    let address = server.base().trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&address).expect("connect");
    write!(
        stream,
        "POST /v1/images?name=cut HTTP/1.1\r\nHost: {address}\r\nAuthorization: {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 60000\r\n\r\n",
        basic(&alice.0, &alice.1)
    )
    .expect("headers");
    stream
        .write_all(&pattern(10_000))
        .expect("some of the body");
    stream.flush().expect("flush");
    eventually("the upload's temporary file appears", || {
        dir_files(&repo).iter().any(|f| f.starts_with(".upload-"))
    });
    drop(stream);
    eventually("the temporary file is deleted", || {
        dir_files(&repo) == [at_limit.to_string()]
    });
    assert_eq!(list_ids(&server, auth(&alice), &alice.0), [at_limit]);
    assert!(
        !server.log().contains("panicked"),
        "the server log: {}",
        server.log()
    );
}

#[test]
fn images_survive_kill_9_and_stale_uploads_are_swept_at_start() {
    let mut server = Server::start();
    let alice = user(&server, "img-durable");
    let kept_bytes = pattern(300_000);
    let kept = create(&server, auth(&alice), "kept", &kept_bytes);
    let deleted = create(&server, auth(&alice), "deleted", b"x");
    let published = send(
        "POST",
        &server.url(&format!("/v1/images/{kept}/publish")),
        auth(&alice),
        None,
    );
    assert_eq!(published.status, 200);
    assert_eq!(
        send(
            "DELETE",
            &server.url(&format!("/v1/images/{deleted}")),
            auth(&alice),
            None
        )
        .status,
        204
    );
    let before = send(
        "GET",
        &server.url(&format!("/v1/images/{kept}")),
        auth(&alice),
        None,
    )
    .json();

    server.kill_hard();
    // What a crash in the middle of an upload leaves behind.
    let stale = repo(&server).join(".upload-crashed0000000");
    std::fs::write(&stale, b"half an image").expect("stale upload");
    server.restart();

    assert!(!stale.exists(), "the stale upload was swept");
    assert_eq!(dir_files(&repo(&server)), [kept.to_string()]);
    let after = send(
        "GET",
        &server.url(&format!("/v1/images/{kept}")),
        auth(&alice),
        None,
    );
    assert_eq!(after.json(), before);
    assert_eq!(after.json()["public"], true);
    assert_eq!(
        std::fs::read(repo(&server).join(kept.to_string())).expect("file"),
        kept_bytes
    );
    // Ids go on from where they were, never reusing a deleted one.
    let next = create(&server, auth(&alice), "next", b"y");
    assert_eq!(next, deleted + 1);
}

/// Runs `cloudgate image ...` against `server` as `user:password`.
fn cli(server: &Server, who: &str, args: &[&str]) -> (i32, String, String) {
    let args: Vec<&str> = std::iter::once("image")
        .chain(args.iter().copied())
        .collect();
    run_cli(server, who, Path::new("."), &args)
}

#[test]
fn the_cli_uploads_lists_shows_and_deletes() {
    let server = Server::shared();
    let alice = user(server, "img-cli");
    let who = format!("{}:{}", alice.0, alice.1);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("disk.img");
    let bytes = pattern((2 << 20) + 3);
    std::fs::write(&file, &bytes).expect("write");
    let name = unique("cli-disk");

    let (code, out, err) = cli(
        server,
        &who,
        &[
            "create",
            &name,
            file.to_str().expect("utf-8"),
            "--type",
            "cdrom",
            "--public",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.is_empty(),
        "no progress bar when stderr is not a terminal: {err}"
    );
    let id: u64 = out
        .strip_prefix("ID: ")
        .and_then(|rest| rest.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("create printed {out:?}"));
    assert_eq!(
        std::fs::read(repo(server).join(id.to_string())).expect("file"),
        bytes
    );

    let filter = format!("NAME={name}");
    let (code, out, err) = cli(server, &who, &["list", "-f", &filter]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "USER",
            "NAME",
            "TYPE",
            "SIZE",
            "STAT",
            "PUBLIC",
            "PERSISTENT",
            "RVMS"
        ]
    );
    let row: Vec<&str> = lines.next().expect("a row").split_whitespace().collect();
    let id_text = id.to_string();
    assert_eq!(
        row,
        [
            id_text.as_str(),
            alice.0.as_str(),
            name.as_str(),
            "CDROM",
            "3M",
            "rdy",
            "yes",
            "no",
            "0"
        ]
    );

    let (code, out, err) = cli(server, &who, &["show", &name, "--json"]);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["checksum"], sha256_hex(&bytes).as_str());

    // A local file that is not there, then delete.
    let admin_auth = format!("oneadmin:{ADMIN_PASSWORD}");
    let (code, _, err) = cli(server, &admin_auth, &["create", "x", "/no/such/file"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read /no/such/file"), "{err}");
    let (code, _, err) = cli(server, &who, &["delete", &id_text]);
    assert_eq!(code, 0, "{err}");
    assert!(!repo(server).join(&id_text).exists());
    let (code, out, err) = cli(server, &who, &["show", &id_text]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("404"), "{err}");
}

#[test]
fn a_huge_declared_length_is_refused_without_waiting_for_the_body() {
    let (server, _config) = small_limit_server();
    let address = server.base().trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&address).expect("connect");
    write!(
        stream,
        "POST /v1/images?name=big HTTP/1.1\r\nHost: {address}\r\nAuthorization: {}\r\n\
         Content-Length: 999999999\r\nConnection: close\r\n\r\n",
        basic("oneadmin", ADMIN_PASSWORD)
    )
    .expect("headers");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PayloadTooLarge"), "{answer}");
    assert!(dir_files(&repo(&server)).is_empty());
}
