//! The OCCI front over raw HTTP, as curl and libcloud send it
//! (spec/OCCI.md): every route × {no auth, bad password, owner, another
//! user, oneadmin} (§2), the seed's documents (§3.3 of the mission text,
//! quoted in §4), networks refused while leased, the VM life cycle on the
//! dummy drivers with both dialects, errors as one-line text, and uploads
//! that fail leaving no image and no file (§7).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use sha1::Digest;

use super::harness::{
    admin, any_status, assert_script_ok, dir_files, send, unique, venv_python, Server,
};

// ---------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------

/// A user of a test server.
#[derive(Clone)]
struct User {
    name: String,
    password: String,
}

impl User {
    fn new(server: &Server, prefix: &str) -> User {
        let name = unique(prefix);
        let password = format!("pw-{name}");
        let body = format!(r#"{{"name":"{name}","password":"{password}"}}"#);
        let answer = send("POST", &server.url("/v1/users"), admin(), Some(&body));
        assert_eq!(answer.status, 201, "{}", answer.body);
        User { name, password }
    }

    fn admin() -> User {
        let (name, password) = admin().expect("admin credentials");
        User {
            name: name.into(),
            password: password.into(),
        }
    }

    /// Basic with the plain password (curl, libcloud 3.8 `plain_auth`).
    fn plain(&self) -> Auth {
        Auth::Basic(self.name.clone(), self.password.clone())
    }

    /// Basic with the SHA1 hex of the password (OpenNebula's clients,
    /// libcloud).
    fn sha1(&self) -> Auth {
        let digest = hex::encode(sha1::Sha1::digest(self.password.as_bytes()));
        Auth::Basic(self.name.clone(), digest)
    }
}

/// The credentials of a request.
#[derive(Clone)]
enum Auth {
    None,
    Basic(String, String),
}

impl Auth {
    fn header(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Basic(user, secret) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
            )),
        }
    }
}

/// An answer, whatever its status.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    www_authenticate: Option<String>,
    body: String,
}

impl Reply {
    /// The text of the first `<tag>…</tag>`.
    fn text(&self, tag: &str) -> Option<String> {
        text_of(&self.body, tag)
    }

    /// Asserts a one-line text/plain error with this status.
    fn error(&self, status: u16) -> &str {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.content_type.as_deref(),
            Some("text/plain; charset=utf-8"),
            "{self:?}"
        );
        assert!(
            !self.body.trim().is_empty() && !self.body.contains('\n'),
            "{self:?}"
        );
        &self.body
    }

    /// The id at the end of the root's href.
    fn href_id(&self) -> u64 {
        let href = attribute(&self.body, "href").unwrap_or_else(|| panic!("no href: {self:?}"));
        href.rsplit('/')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("href without an id: {href}"))
    }
}

fn text_of(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].to_string())
}

/// The first `name="…"` in `body`.
fn attribute(body: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = body.find(&key)? + key.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_string())
}

/// Sends a request; `body` goes without a Content-Type, as libcloud
/// sends it, unless `headers` gives one.
fn request(
    server: &Server,
    method: &str,
    path: &str,
    auth: &Auth,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = ureq::request(method, &server.url(path));
    if let Some(header) = auth.header() {
        req = req.set("Authorization", &header);
    }
    for (name, value) in headers {
        req = req.set(name, value);
    }
    let result = match body {
        Some(body) => req.send_bytes(body),
        None => req.call(),
    };
    let response = any_status(result, &format!("{method} {path}"));
    let header = |name: &str| response.header(name).map(str::to_string);
    let (content_type, location, www_authenticate) = (
        header("Content-Type"),
        header("Location"),
        header("WWW-Authenticate"),
    );
    let status = response.status();
    let mut body = String::new();
    response
        .into_reader()
        .take(16 << 20)
        .read_to_string(&mut body)
        .expect("read body");
    Reply {
        status,
        content_type,
        location,
        www_authenticate,
        body,
    }
}

fn get(server: &Server, path: &str, auth: &Auth) -> Reply {
    request(server, "GET", path, auth, None, &[])
}

fn xml(server: &Server, method: &str, path: &str, auth: &Auth, body: &str) -> Reply {
    request(server, method, path, auth, Some(body.as_bytes()), &[])
}

/// libcloud's User-Agent for an api version.
fn libcloud(version: &str) -> String {
    format!("libcloud/3.8.0 (OpenNebula (v{version})) ")
}

/// A `multipart/form-data` body of (name, filename, bytes) parts.
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----cloudgate-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `POST /storage` with these parts.
fn upload(server: &Server, auth: &Auth, parts: &[(&str, Option<&str>, &[u8])]) -> Reply {
    let (content_type, body) = form(parts);
    request(
        server,
        "POST",
        "/storage",
        auth,
        Some(&body),
        &[("Content-Type", &content_type)],
    )
}

/// Uploads an image as OpenNebula's client does; returns its id.
fn image(server: &Server, user: &User, name: &str, bytes: &[u8]) -> u64 {
    let description = format!("<DISK><NAME>{name}</NAME><URL>file:///tmp/{name}.img</URL></DISK>");
    let reply = upload(
        server,
        &user.sha1(),
        &[
            ("occixml", None, description.as_bytes()),
            ("file", Some("/tmp/disk.img"), bytes),
        ],
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.href_id()
}

/// Creates a class C network; returns its id.
fn network(server: &Server, user: &User, name: &str, address: &str) -> u64 {
    let reply = xml(
        server,
        "POST",
        "/network",
        &user.sha1(),
        &format!(
            "<NETWORK><NAME>{name}</NAME><ADDRESS>{address}</ADDRESS><SIZE>C</SIZE></NETWORK>"
        ),
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.href_id()
}

/// Creates a VM of type small with nothing attached; returns its id.
fn vm(server: &Server, user: &User) -> u64 {
    let reply = xml(
        server,
        "POST",
        "/compute",
        &user.sha1(),
        "<COMPUTE><NAME /><INSTANCE_TYPE>small</INSTANCE_TYPE></COMPUTE>",
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.href_id()
}

/// Polls until `done` holds, failing after 30 s.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `GET /compute/{id}` until its (STATE, LCM_STATE) is `wanted`.
fn wait_state(server: &Server, user: &User, id: u64, state: &str, lcm: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = get(server, &format!("/compute/{id}"), &user.sha1());
        assert_eq!(reply.status, 200, "{reply:?}");
        if reply.text("STATE").as_deref() == Some(state)
            && reply.text("LCM_STATE").as_deref() == lcm
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "VM {id} never reached {state}/{lcm:?}; last:\n{}",
            reply.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn repository(server: &Server) -> PathBuf {
    server.data_dir().join("images")
}

/// The hrefs' ids of a pool document.
fn pool_ids(body: &str) -> Vec<u64> {
    body.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter_map(|href| href.rsplit('/').next().and_then(|id| id.parse().ok()))
        .collect()
}

// ---------------------------------------------------------------------
// §2: every route × every kind of caller
// ---------------------------------------------------------------------

#[test]
fn every_route_answers_each_kind_of_caller_as_section_2_says() {
    let (server, _config) = &vm_server();
    let owner = User::new(server, "occi-own");
    let other = User::new(server, "occi-other");
    let oneadmin = User::admin();
    let bad = Auth::Basic(owner.name.clone(), "wrong".into());

    // The owner's entries: one to read and change, one to delete per
    // caller that may.
    let net = network(server, &owner, &unique("net"), "10.1.0.0");
    let img = image(server, &owner, &unique("img"), b"bytes");
    let vm_id = vm(server, &owner);
    wait_state(server, &owner, vm_id, "ACTIVE", Some("RUNNING"));
    let doomed = |n: usize| -> Vec<(u64, u64, u64)> {
        (0..n)
            .map(|_| {
                (
                    vm(server, &owner),
                    network(server, &owner, &unique("gone"), "10.2.0.0"),
                    image(server, &owner, &unique("gone"), b"x"),
                )
            })
            .collect()
    };
    let doomed = doomed(2);

    let net_body =
        |name: &str| format!("<NETWORK><NAME>{name}</NAME><ADDRESS>10.3.0.0</ADDRESS></NETWORK>");
    let storage_xml = |name: &str| format!("<DISK><NAME>{name}</NAME></DISK>");
    let compute_body = "<COMPUTE><INSTANCE_TYPE>small</INSTANCE_TYPE></COMPUTE>";

    struct Case {
        method: &'static str,
        path: String,
        body: Option<String>,
        /// Expected status for (owner, other, oneadmin).
        expect: (u16, u16, u16),
    }
    let mut cases = vec![
        Case {
            method: "GET",
            path: "/compute".into(),
            body: None,
            expect: (200, 200, 200),
        },
        Case {
            method: "GET",
            path: format!("/compute/{vm_id}"),
            body: None,
            expect: (200, 403, 200),
        },
        // The state the VM is in: a 200 no-op for those who may.
        Case {
            method: "PUT",
            path: format!("/compute/{vm_id}"),
            body: Some("<COMPUTE><STATE>ACTIVE</STATE></COMPUTE>".into()),
            expect: (200, 403, 200),
        },
        Case {
            method: "DELETE",
            path: format!("/compute/{vm_id}"),
            body: None,
            expect: (0, 403, 0),
        },
        Case {
            method: "GET",
            path: "/network".into(),
            body: None,
            expect: (200, 200, 200),
        },
        Case {
            method: "GET",
            path: format!("/network/{net}"),
            body: None,
            expect: (200, 403, 200),
        },
        Case {
            method: "PUT",
            path: format!("/network/{net}"),
            body: Some("<NETWORK><PUBLIC>NO</PUBLIC></NETWORK>".into()),
            expect: (202, 403, 202),
        },
        Case {
            method: "DELETE",
            path: format!("/network/{net}"),
            body: None,
            expect: (0, 403, 0),
        },
        Case {
            method: "GET",
            path: "/storage".into(),
            body: None,
            expect: (200, 200, 200),
        },
        Case {
            method: "GET",
            path: format!("/storage/{img}"),
            body: None,
            expect: (200, 403, 200),
        },
        Case {
            method: "PUT",
            path: format!("/storage/{img}"),
            body: Some("<STORAGE><PERSISTENT>NO</PERSISTENT></STORAGE>".into()),
            expect: (202, 403, 202),
        },
        Case {
            method: "DELETE",
            path: format!("/storage/{img}"),
            body: None,
            expect: (0, 403, 0),
        },
        Case {
            method: "GET",
            path: "/instance_type".into(),
            body: None,
            expect: (200, 200, 200),
        },
        Case {
            method: "GET",
            path: "/instance_type/small".into(),
            body: None,
            expect: (200, 200, 200),
        },
    ];
    for (i, (vm_del, net_del, img_del)) in doomed.iter().enumerate() {
        // i == 0: the owner deletes; i == 1: oneadmin does.
        let expect = if i == 0 { (200, 403, 0) } else { (0, 403, 200) };
        for path in [
            format!("/compute/{vm_del}"),
            format!("/network/{net_del}"),
            format!("/storage/{img_del}"),
        ] {
            cases.push(Case {
                method: "DELETE",
                path,
                body: None,
                expect,
            });
        }
    }

    for case in &cases {
        let send = |auth: &Auth| match &case.body {
            Some(body) => xml(server, case.method, &case.path, auth, body),
            None => request(server, case.method, &case.path, auth, None, &[]),
        };
        for auth in [Auth::None, bad.clone()] {
            let reply = send(&auth);
            assert_eq!(
                reply.error(401),
                "Invalid credentials",
                "{} {}",
                case.method,
                case.path
            );
            assert_eq!(
                reply.www_authenticate.as_deref(),
                Some("Basic realm=\"cloudgate\""),
                "{} {}",
                case.method,
                case.path
            );
        }
        let callers = [
            (&other, case.expect.1),
            (&owner, case.expect.0),
            (&oneadmin, case.expect.2),
        ];
        for (who, status) in callers {
            if status == 0 {
                continue;
            }
            // The owner alternates both password forms.
            let auth = if who.name == owner.name && case.method == "GET" {
                who.plain()
            } else {
                who.sha1()
            };
            let reply = send(&auth);
            assert_eq!(
                reply.status, status,
                "{} {} as {}: {reply:?}",
                case.method, case.path, who.name
            );
            if status == 403 {
                reply.error(403);
            }
        }
    }
    // What 401s and 403s left alone is still there.
    for path in [
        format!("/compute/{vm_id}"),
        format!("/network/{net}"),
        format!("/storage/{img}"),
    ] {
        assert_eq!(get(server, &path, &owner.sha1()).status, 200, "{path}");
    }

    // Every POST: 401 without valid credentials, and any user creates.
    type Post<'a> = Box<dyn Fn(&Auth) -> Reply + 'a>;
    let posts: Vec<(&str, Post)> = vec![
        (
            "compute",
            Box::new(|a: &Auth| xml(server, "POST", "/compute", a, compute_body)),
        ),
        (
            "network",
            Box::new(|a: &Auth| xml(server, "POST", "/network", a, &net_body(&unique("n")))),
        ),
        (
            "storage",
            Box::new(|a: &Auth| {
                let description = storage_xml(&unique("s"));
                upload(
                    server,
                    a,
                    &[
                        ("occixml", None, description.as_bytes()),
                        ("file", Some("f"), b"1"),
                    ],
                )
            }),
        ),
    ];
    for (pool, post) in &posts {
        for auth in [Auth::None, bad.clone()] {
            assert_eq!(
                post(&auth).error(401),
                "Invalid credentials",
                "POST /{pool}"
            );
        }
        for who in [&owner, &other, &oneadmin] {
            let reply = post(&who.sha1());
            assert_eq!(reply.status, 201, "POST /{pool} as {}: {reply:?}", who.name);
            assert!(reply.location.is_some(), "{reply:?}");
        }
    }
}

/// `HEAD` answers as `GET` does, without the body (spec/OCCI.md §3:
/// answered generically); `OPTIONS` is one of the other verbs (501).
#[test]
fn head_answers_as_get_without_the_body() {
    let (server, _config) = &vm_server();
    let owner = User::new(server, "occi-head");
    let other = User::new(server, "occi-head-other");
    let net = network(server, &owner, &unique("net"), "10.4.0.0");
    let img = image(server, &owner, &unique("img"), b"bytes");
    let paths = [
        "/compute".to_string(),
        "/network".to_string(),
        format!("/network/{net}"),
        "/storage".to_string(),
        format!("/storage/{img}"),
        "/instance_type".to_string(),
        "/instance_type/small".to_string(),
        "/compute/999999".to_string(),
    ];
    for path in &paths {
        for who in [&owner, &other] {
            let got = get(server, path, &who.sha1());
            let head = request(server, "HEAD", path, &who.sha1(), None, &[]);
            assert_eq!(
                (head.status, &head.content_type),
                (got.status, &got.content_type),
                "HEAD {path} as {}",
                who.name
            );
            assert!(head.body.is_empty(), "HEAD {path}: {head:?}");
        }
        let head = request(server, "HEAD", path, &Auth::None, None, &[]);
        assert_eq!(head.status, 401, "HEAD {path}");
    }
    let options = request(server, "OPTIONS", "/compute", &owner.sha1(), None, &[]);
    assert_eq!(options.status, 501, "{options:?}");
}

// ---------------------------------------------------------------------
// The seed's examples
// ---------------------------------------------------------------------

#[test]
fn the_seed_examples_post_and_get_as_shown() {
    let (server, _config) = &vm_server();
    let alice = User::new(server, "occi-seed");
    let auth = alice.sha1();

    // NETWORK (spec/OCCI.md §4.3).
    let reply = xml(
        server,
        "POST",
        "/network",
        &auth,
        "<NETWORK>\n  <NAME>BlueNetwork</NAME>\n  <ADDRESS>192.168.0.0</ADDRESS>\n  <SIZE>C</SIZE>\n</NETWORK>",
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/xml; charset=utf-8")
    );
    let net = reply.href_id();
    assert_eq!(
        reply.location.as_deref(),
        Some(server.url(&format!("/network/{net}")).as_str())
    );
    let shown = get(server, &format!("/network/{net}"), &auth);
    assert_eq!(shown.status, 200);
    assert_eq!(shown.text("ID"), Some(net.to_string()));
    assert_eq!(shown.text("NAME").as_deref(), Some("BlueNetwork"));
    assert_eq!(shown.text("ADDRESS").as_deref(), Some("192.168.0.0"));
    assert_eq!(shown.text("SIZE").as_deref(), Some("C"));

    // DISK (§7): the description first, then the file.
    let bytes: Vec<u8> = (0..(3 << 20)).map(|i| (i % 251) as u8).collect();
    let reply = upload(
        server,
        &auth,
        &[
            (
                "occixml",
                None,
                b"<DISK>\n  <NAME>Ubuntu 9.04 LAMP</NAME>\n  <URL>file:///images/ubuntu/jaunty.img</URL>\n</DISK>",
            ),
            ("file", Some("/images/ubuntu/jaunty.img"), &bytes),
        ],
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    let img = reply.href_id();
    assert_eq!(
        std::fs::read(repository(server).join(img.to_string())).expect("stored"),
        bytes
    );
    let shown = get(server, &format!("/storage/{img}"), &auth);
    assert_eq!(shown.status, 200);
    assert!(shown.body.starts_with("<DISK href="), "{}", shown.body);
    assert_eq!(shown.text("NAME").as_deref(), Some("Ubuntu 9.04 LAMP"));
    assert_eq!(shown.text("SIZE").as_deref(), Some("3"));
    assert_eq!(
        shown.text("URL").as_deref(),
        Some("file:///images/ubuntu/jaunty.img")
    );

    // COMPUTE (§4.1), with the seed's DISKS wrapper and ids of the above.
    let seed = format!(
        r#"<COMPUTE>
  <NAME>Web Server</NAME>
  <INSTANCE_TYPE>small</INSTANCE_TYPE>
  <DISKS>
    <DISK image="{img}" dev="sda1"/>
    <SWAP size="1024" dev="sda2"/>
    <FS size="512" format="ext3" dev="sda3"/>
  </DISKS>
  <NETWORK>
    <NIC network="{net}" ip="192.168.0.10"/>
    <NIC network="{net}"/>
  </NETWORK>
</COMPUTE>"#
    );
    let reply = xml(server, "POST", "/compute", &auth, &seed);
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.href_id();
    wait_state(server, &alice, id, "ACTIVE", Some("RUNNING"));
    let shown = get(server, &format!("/compute/{id}"), &auth);
    let body = &shown.body;
    assert_eq!(shown.text("NAME").as_deref(), Some("Web Server"));
    assert_eq!(shown.text("INSTANCE_TYPE").as_deref(), Some("small"));
    for fragment in [
        format!(
            "<DISK image=\"{img}\" href=\"{}\" dev=\"sda1\" type=\"disk\"/>",
            server.url(&format!("/storage/{img}"))
        ),
        "<SWAP size=\"1024\" dev=\"sda2\"/>".to_string(),
        "<FS size=\"512\" format=\"ext3\" dev=\"sda3\"/>".to_string(),
        format!(
            "<NIC network=\"{net}\" href=\"{}\" ip=\"192.168.0.10\" mac=\"02:00:c0:a8:00:0a\"/>",
            server.url(&format!("/network/{net}"))
        ),
    ] {
        assert!(body.contains(&fragment), "{fragment} in\n{body}");
    }
    assert_eq!(body.matches("<NIC ").count(), 2, "{body}");
    let pool = get(server, "/compute", &auth);
    assert!(pool.body.starts_with("<COMPUTES>"), "{}", pool.body);
    assert_eq!(pool_ids(&pool.body), [id]);
}

// ---------------------------------------------------------------------
// Pools (§2.2)
// ---------------------------------------------------------------------

#[test]
fn pools_list_the_callers_entries_and_public_ones() {
    let (server, _config) = &vm_server();
    let alice = User::new(server, "occi-pa");
    let bob = User::new(server, "occi-pb");
    let a_img = image(server, &alice, &unique("a"), b"a");
    let public = image(server, &alice, &unique("pub"), b"p");
    let reply = xml(
        server,
        "PUT",
        &format!("/storage/{public}"),
        &alice.sha1(),
        "<STORAGE><PUBLIC>YES</PUBLIC></STORAGE>",
    );
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(reply.text("PUBLIC").as_deref(), Some("YES"));
    let b_img = image(server, &bob, &unique("b"), b"b");
    // Other tests publish images too: look at these only.
    let ours = [a_img, public, b_img];
    let storage = |who: &User| -> Vec<u64> {
        pool_ids(&get(server, "/storage", &who.sha1()).body)
            .into_iter()
            .filter(|i| ours.contains(i))
            .collect()
    };
    assert_eq!(storage(&alice), [a_img, public]);
    assert_eq!(storage(&bob), [public, b_img]);
    assert_eq!(storage(&User::admin()), ours);
    // A public image is readable, not manageable, by others.
    assert_eq!(
        get(server, &format!("/storage/{public}"), &bob.sha1()).status,
        200
    );
    let reply = request(
        server,
        "DELETE",
        &format!("/storage/{public}"),
        &bob.sha1(),
        None,
        &[],
    );
    reply.error(403);

    let a_net = network(server, &alice, &unique("an"), "10.9.0.0");
    let b_net = network(server, &bob, &unique("bn"), "10.9.0.0");
    let networks = |who: &User| -> Vec<u64> {
        pool_ids(&get(server, "/network", &who.sha1()).body)
            .into_iter()
            .filter(|i| [a_net, b_net].contains(i))
            .collect()
    };
    assert_eq!(networks(&alice), [a_net]);
    assert_eq!(networks(&bob), [b_net]);

    // Compute: one's own only, DONE ones left out, oneadmin included.
    let a_vm = vm(server, &alice);
    let gone = vm(server, &alice);
    let b_vm = vm(server, &bob);
    let deleted = request(
        server,
        "DELETE",
        &format!("/compute/{gone}"),
        &alice.sha1(),
        None,
        &[],
    );
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert_eq!(
        pool_ids(&get(server, "/compute", &alice.sha1()).body),
        [a_vm]
    );
    assert_eq!(pool_ids(&get(server, "/compute", &bob.sha1()).body), [b_vm]);
    let admins = pool_ids(&get(server, "/compute", &User::admin().sha1()).body);
    assert!(
        !admins.contains(&a_vm) && !admins.contains(&b_vm),
        "{admins:?}"
    );
    // The DONE VM still shows, as OpenNebula's record survived.
    let done = get(server, &format!("/compute/{gone}"), &alice.sha1());
    assert_eq!(done.text("STATE").as_deref(), Some("DONE"));
}

// ---------------------------------------------------------------------
// Networks
// ---------------------------------------------------------------------

#[test]
fn networks_are_created_shown_and_deleted_but_not_while_leased() {
    let (server, _config) = &vm_server();
    let alice = User::new(server, "occi-net");
    let auth = alice.sha1();
    let net = network(server, &alice, &unique("lan"), "172.16.5.0");
    let path = format!("/network/{net}");
    assert_eq!(
        get(server, &path, &auth).text("USED_LEASES").as_deref(),
        Some("0")
    );

    // libcloud asks for the network's own address: any free one is leased.
    let reply = xml(
        server,
        "POST",
        "/compute",
        &auth,
        &format!(
            r#"<COMPUTE><NAME /><INSTANCE_TYPE>small</INSTANCE_TYPE><NETWORK><NIC network="{net}" ip="172.16.5.0" /></NETWORK></COMPUTE>"#
        ),
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(attribute(&reply.body, "ip").as_deref(), Some("172.16.5.1"));
    let id = reply.href_id();
    assert_eq!(
        get(server, &path, &auth).text("USED_LEASES").as_deref(),
        Some("1")
    );

    let refused = request(server, "DELETE", &path, &auth, None, &[]);
    assert!(refused.error(409).contains("leases in use"), "{refused:?}");
    assert_eq!(get(server, &path, &auth).status, 200, "still there");

    let done = request(
        server,
        "DELETE",
        &format!("/compute/{id}"),
        &auth,
        None,
        &[],
    );
    assert_eq!(done.status, 200, "{done:?}");
    eventually("the lease is given back", || {
        get(server, &path, &auth).text("USED_LEASES").as_deref() == Some("0")
    });
    // A 2.x client hears 204.
    let ua = libcloud("2.0");
    let reply = request(server, "DELETE", &path, &auth, None, &[("User-Agent", &ua)]);
    assert_eq!((reply.status, reply.body.as_str()), (204, ""));
    get(server, &path, &auth).error(404);
    request(server, "DELETE", &path, &auth, None, &[]).error(404);

    // Released 1.4's NIC root; 2.2's PUBLIC; refused values.
    let reply = xml(
        server,
        "POST",
        "/network",
        &auth,
        &format!("<NIC><NAME>{}</NAME><ADDRESS>10.10.0.0</ADDRESS><SIZE>30</SIZE><PUBLIC>YES</PUBLIC></NIC>", unique("nic")),
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    let two = get(server, &format!("/network/{}", reply.href_id()), &auth);
    assert_eq!(two.text("SIZE").as_deref(), Some("30"));
    let ua = libcloud("3.0");
    let two = request(
        server,
        "GET",
        &format!("/network/{}", reply.href_id()),
        &auth,
        None,
        &[("User-Agent", &ua)],
    );
    assert_eq!(two.text("PUBLIC").as_deref(), Some("YES"));
    for body in [
        "<NETWORK><ADDRESS>10.0.0.0</ADDRESS></NETWORK>",
        "<NETWORK><NAME>x</NAME><ADDRESS>not-an-ip</ADDRESS></NETWORK>",
        "<NETWORK><NAME>x</NAME><ADDRESS>10.0.0.0</ADDRESS><SIZE>Z</SIZE></NETWORK>",
        "<NETWORK><NAME>x</NAME>",
    ] {
        xml(server, "POST", "/network", &auth, body).error(400);
    }
}

#[test]
fn put_network_publishes_and_unpublishes_it() {
    let (server, _config) = &vm_server();
    let alice = User::new(server, "occi-pub");
    let bob = User::new(server, "occi-pub2");
    let net = network(server, &alice, &unique("pub"), "10.40.0.0");
    let path = format!("/network/{net}");
    let ua = libcloud("3.0");
    let put = |who: &User, body: &str| {
        request(
            server,
            "PUT",
            &path,
            &who.sha1(),
            Some(body.as_bytes()),
            &[("User-Agent", &ua)],
        )
    };
    let public_of = |who: &User| {
        request(
            server,
            "GET",
            &path,
            &who.sha1(),
            None,
            &[("User-Agent", &ua)],
        )
        .text("PUBLIC")
    };
    let bob_lists = || pool_ids(&get(server, "/network", &bob.sha1()).body).contains(&net);
    let bob_uses = || {
        xml(
            server,
            "POST",
            "/compute",
            &bob.sha1(),
            &format!(
                r#"<COMPUTE><NAME /><INSTANCE_TYPE>small</INSTANCE_TYPE><NIC><NETWORK href="/network/{net}"/></NIC></COMPUTE>"#
            ),
        )
    };
    assert!(!bob_lists());
    get(server, &path, &bob.sha1()).error(403);
    bob_uses().error(403);

    // Publish: 202 + the NETWORK as it is now.
    let reply = put(&alice, "<NETWORK><PUBLIC>YES</PUBLIC></NETWORK>");
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(reply.text("PUBLIC").as_deref(), Some("YES"));
    assert_eq!(reply.href_id(), net);
    assert_eq!(public_of(&alice).as_deref(), Some("YES"));
    assert!(bob_lists());
    assert_eq!(public_of(&bob).as_deref(), Some("YES"));
    let used = bob_uses();
    assert_eq!(used.status, 201, "{used:?}");
    assert_eq!(
        get(server, &path, &alice.sha1())
            .text("USED_LEASES")
            .as_deref(),
        Some("1")
    );

    // Bob may use it, not change it; a bad body is 400 before anything.
    for body in [
        "<NETWORK><PUBLIC>NO</PUBLIC></NETWORK>",
        "<NETWORK><PUBLIC>YES</PUBLIC></NETWORK>",
    ] {
        put(&bob, body).error(403);
    }
    for body in [
        "<NETWORK><PUBLIC>MAYBE</PUBLIC></NETWORK>",
        "<NETWORK><NAME>x</NAME></NETWORK>",
        "<STORAGE><PUBLIC>NO</PUBLIC></STORAGE>",
        "<NETWORK><PUBLIC>NO</PUBLIC>",
        "",
    ] {
        put(&alice, body).error(400);
    }
    assert_eq!(public_of(&alice).as_deref(), Some("YES"), "nothing changed");

    // Unpublish (oneadmin may too): bob no longer sees or uses it; the
    // lease he took stays.
    let reply = put(&User::admin(), "<NETWORK><PUBLIC>NO</PUBLIC></NETWORK>");
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(reply.text("PUBLIC").as_deref(), Some("NO"));
    assert!(!bob_lists());
    get(server, &path, &bob.sha1()).error(403);
    bob_uses().error(403);
    put(&bob, "<NETWORK><PUBLIC>YES</PUBLIC></NETWORK>").error(403);
    assert_eq!(public_of(&alice).as_deref(), Some("NO"), "nothing changed");
    assert_eq!(
        get(server, &path, &alice.sha1())
            .text("USED_LEASES")
            .as_deref(),
        Some("1")
    );
    let again = put(&alice, "<NETWORK><PUBLIC>YES</PUBLIC></NETWORK>");
    assert_eq!(again.status, 202, "the owner publishes again: {again:?}");
    request(
        server,
        "PUT",
        "/network/999999",
        &alice.sha1(),
        Some(b"<NETWORK><PUBLIC>YES</PUBLIC></NETWORK>"),
        &[],
    )
    .error(404);
}

// ---------------------------------------------------------------------
// Compute life cycle
// ---------------------------------------------------------------------

#[test]
fn compute_runs_on_dummy_and_follows_put_state_in_both_dialects() {
    let (server, _config) = &vm_server();
    let alice = User::new(server, "occi-vm");
    let auth = alice.sha1();
    let img = image(server, &alice, &unique("os"), b"boot");
    let net = network(server, &alice, &unique("vmnet"), "10.20.0.0");

    // libcloud 2.x's create_node: relative hrefs, context, 2.x answer.
    let ua2 = libcloud("2.0");
    let reply = request(
        server,
        "POST",
        "/compute",
        &auth,
        Some(
            format!(
                r#"<COMPUTE><NAME /><INSTANCE_TYPE>medium</INSTANCE_TYPE><DISK><STORAGE href="/storage/{img}" /></DISK><NIC><NETWORK href="/network/{net}" /><IP>10.20.0.0</IP></NIC><CONTEXT><HOSTNAME>web</HOSTNAME></CONTEXT></COMPUTE>"#
            )
            .as_bytes(),
        ),
        &[("User-Agent", &ua2)],
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.href_id();
    let body = &reply.body;
    assert_eq!(reply.text("NAME"), Some(format!("one-{id}")));
    assert_eq!(reply.text("INSTANCE_TYPE").as_deref(), Some("medium"));
    assert_eq!(reply.text("CPU").as_deref(), Some("0.1"));
    assert_eq!(reply.text("MEMORY").as_deref(), Some("64"));
    assert!(
        body.contains(&format!(
            "<STORAGE href=\"{}\"",
            server.url(&format!("/storage/{img}"))
        )),
        "{body}"
    );
    assert_eq!(reply.text("IP").as_deref(), Some("10.20.0.1"));
    assert_eq!(reply.text("HOSTNAME").as_deref(), Some("web"));

    wait_state(server, &alice, id, "ACTIVE", Some("RUNNING"));
    let path = format!("/compute/{id}");
    let put = |state: &str| {
        xml(
            server,
            "PUT",
            &path,
            &auth,
            &format!("<COMPUTE><ID>{id}</ID><STATE>{state}</STATE></COMPUTE>"),
        )
    };

    // Refusals: 400, never 500; the VM is untouched.
    assert!(put("explode").error(400).starts_with("Invalid state"));
    assert_eq!(
        xml(server, "PUT", &path, &auth, "<COMPUTE><ID>1</ID></COMPUTE>").error(400),
        "State not defined in the OCCI XML"
    );
    put("RESUME").error(400);
    xml(server, "PUT", &path, &auth, "<COMPUTE><STATE>").error(400);
    // The current state: a no-op.
    assert_eq!(put("ACTIVE").status, 200);

    let reply = put("SUSPENDED");
    assert_eq!(reply.status, 202, "{reply:?}");
    assert!(reply.text("STATE").is_some(), "{reply:?}");
    wait_state(server, &alice, id, "SUSPENDED", None);
    assert_eq!(put("suspended").status, 200, "a no-op in SUSPENDED");
    assert_eq!(put("resume").status, 202);
    wait_state(server, &alice, id, "ACTIVE", Some("RUNNING"));
    assert_eq!(put("STOPPED").status, 202);
    wait_state(server, &alice, id, "STOPPED", None);
    assert_eq!(put("RESUME").status, 202);
    wait_state(server, &alice, id, "ACTIVE", Some("RUNNING"));
    assert_eq!(put("REBOOT").status, 202);
    assert_eq!(put("SHUTDOWN").status, 202);
    wait_state(server, &alice, id, "DONE", None);
    // Leases and images are given back at DONE.
    eventually("the lease is given back", || {
        get(server, &format!("/network/{net}"), &auth)
            .text("USED_LEASES")
            .as_deref()
            == Some("0")
    });

    // DELETE: 200 empty for 1.4, 204 for 2.x.
    let one_four = vm(server, &alice);
    let reply = request(
        server,
        "DELETE",
        &format!("/compute/{one_four}"),
        &auth,
        None,
        &[],
    );
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    let two = vm(server, &alice);
    wait_state(server, &alice, two, "ACTIVE", Some("RUNNING"));
    let reply = request(
        server,
        "DELETE",
        &format!("/compute/{two}"),
        &auth,
        None,
        &[("User-Agent", &ua2)],
    );
    assert_eq!((reply.status, reply.body.as_str()), (204, ""));
    wait_state(server, &alice, two, "DONE", None);
    // Deleting a DONE VM again is fine; an unknown one is 404.
    assert_eq!(
        request(
            server,
            "DELETE",
            &format!("/compute/{two}"),
            &auth,
            None,
            &[]
        )
        .status,
        200
    );
    request(server, "DELETE", "/compute/999999", &auth, None, &[]).error(404);
    // CANCEL and DONE words.
    let three = vm(server, &alice);
    wait_state(server, &alice, three, "ACTIVE", Some("RUNNING"));
    assert_eq!(
        xml(
            server,
            "PUT",
            &format!("/compute/{three}"),
            &auth,
            "<COMPUTE><STATE>CANCEL</STATE></COMPUTE>"
        )
        .status,
        202
    );
    wait_state(server, &alice, three, "DONE", None);
    let four = vm(server, &alice);
    assert_eq!(
        xml(
            server,
            "PUT",
            &format!("/compute/{four}"),
            &auth,
            "<COMPUTE><STATE>done</STATE></COMPUTE>"
        )
        .status,
        202
    );
    wait_state(server, &alice, four, "DONE", None);
}

/// An image's `state` as `/v1` shows it (OCCI's STORAGE has none).
fn image_state(server: &Server, user: &User, id: u64) -> String {
    let answer = send(
        "GET",
        &server.url(&format!("/v1/images/{id}")),
        Some((&user.name, &user.password)),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn put_save_as_saves_a_disk_as_a_new_image_at_shutdown() {
    let (server, _config) = &vm_server();
    let alice = User::new(server, "occi-save");
    let auth = alice.sha1();
    let img = image(server, &alice, &unique("os"), b"boot");
    let create = || {
        let reply = xml(
            server,
            "POST",
            "/compute",
            &auth,
            &format!(
                r#"<COMPUTE><NAME /><INSTANCE_TYPE>small</INSTANCE_TYPE><DISK><TYPE>swap</TYPE><SIZE>8</SIZE></DISK><DISK><STORAGE href="/storage/{img}" /></DISK></COMPUTE>"#
            ),
        );
        assert_eq!(reply.status, 201, "{reply:?}");
        let id = reply.href_id();
        wait_state(server, &alice, id, "ACTIVE", Some("RUNNING"));
        id
    };
    let id = create();
    let path = format!("/compute/{id}");
    let save_as = |disk: &str, name: &str| {
        format!(r#"<COMPUTE><DISK id="{disk}"><SAVE_AS name="{name}"/></DISK></COMPUTE>"#)
    };
    let put_state = |vm: u64, word: &str| {
        let body = format!("<COMPUTE><STATE>{word}</STATE></COMPUTE>");
        xml(server, "PUT", &format!("/compute/{vm}"), &auth, &body).status
    };
    let newest_image = || {
        pool_ids(&get(server, "/storage", &auth).body)
            .into_iter()
            .max()
            .expect("the new image")
    };

    // Refusals: the swap disk, a disk that is not there, with a STATE,
    // two at once; nothing changes.
    let before = get(server, &path, &auth).body;
    let name = unique("backup");
    xml(server, "PUT", &path, &auth, &save_as("0", &name)).error(400);
    xml(server, "PUT", &path, &auth, &save_as("7", &name)).error(400);
    xml(server, "PUT", &path, &auth, &save_as("x", &name)).error(400);
    xml(
        server,
        "PUT",
        &path,
        &auth,
        &format!(
            r#"<COMPUTE><STATE>SHUTDOWN</STATE><DISK id="1"><SAVE_AS name="{name}"/></DISK></COMPUTE>"#
        ),
    )
    .error(400);
    xml(
        server,
        "PUT",
        &path,
        &auth,
        &format!(
            r#"<COMPUTE><DISK id="1"><SAVE_AS name="{name}"/></DISK><DISK id="0"><SAVE_AS name="b2"/></DISK></COMPUTE>"#
        ),
    )
    .error(400);
    let bob = User::new(server, "occi-save2");
    xml(server, "PUT", &path, &bob.sha1(), &save_as("1", &name)).error(403);
    assert_eq!(get(server, &path, &auth).body, before);

    // 2.2: DISK@id is the disk's index.
    let reply = xml(server, "PUT", &path, &auth, &save_as("1", &name));
    assert_eq!(reply.status, 202, "{reply:?}");
    let saved = newest_image();
    assert!(saved > img);
    let href = server.url(&format!("/storage/{saved}"));
    assert!(
        reply.body.contains(&format!(r#"<SAVE_AS href="{href}"/>"#)),
        "{}",
        reply.body
    );
    // Shown in the 2.x dialect only (1.4's STORAGE has no room for it).
    let ua2 = libcloud("2.0");
    let shown = request(server, "GET", &path, &auth, None, &[("User-Agent", &ua2)]);
    assert!(
        shown.body.contains(&format!(r#"<SAVE_AS href="{href}"/>"#)),
        "{}",
        shown.body
    );
    assert_eq!(image_state(server, &alice, saved), "LOCKED");
    let storage = get(server, &format!("/storage/{saved}"), &auth);
    assert_eq!(storage.text("NAME"), Some(name.clone()));
    // Again on the same disk, or the same name elsewhere: refused.
    xml(server, "PUT", &path, &auth, &save_as("1", "other")).error(400);
    // A LOCKED image cannot be deleted.
    request(
        server,
        "DELETE",
        &format!("/storage/{saved}"),
        &auth,
        None,
        &[],
    )
    .error(400);

    assert_eq!(put_state(id, "SHUTDOWN"), 202);
    wait_state(server, &alice, id, "DONE", None);
    eventually("the saved image is READY", || {
        image_state(server, &alice, saved) == "READY"
    });
    assert_eq!(get(server, &format!("/storage/{saved}"), &auth).status, 200);

    // libcloud 3.0's ex_node_set_save_name: DISK@id is the image's id,
    // the STORAGE href names the disk. A cancel never saves it.
    let other = create();
    let libcloud_name = unique("lc");
    let reply = xml(
        server,
        "PUT",
        &format!("/compute/{other}"),
        &auth,
        &format!(
            r#"<COMPUTE><ID/><DISK id="{img}"><STORAGE href="/storage/{img}" name="os"/><SAVE_AS name="{libcloud_name}"/></DISK></COMPUTE>"#
        ),
    );
    assert_eq!(reply.status, 202, "{reply:?}");
    let lc_image = newest_image();
    assert!(
        reply.body.contains(&format!(
            r#"<TARGET>hda</TARGET>
    <SAVE_AS href="{}"/>"#,
            server.url(&format!("/storage/{lc_image}"))
        )),
        "the image disk, not disk {img}: {}",
        reply.body
    );
    assert_eq!(put_state(other, "CANCEL"), 202);
    wait_state(server, &alice, other, "DONE", None);
    eventually("the cancelled VM's image is in ERROR", || {
        image_state(server, &alice, lc_image) == "ERROR"
    });
}

#[test]
fn compute_refusals_are_one_line_400s_403s_and_404s() {
    let server = Server::shared();
    let alice = User::new(server, "occi-bad");
    let bob = User::new(server, "occi-bad2");
    let auth = alice.sha1();
    let bobs_image = image(server, &bob, &unique("private"), b"b");
    let bobs_net = network(server, &bob, &unique("private"), "10.30.0.0");
    let before = pool_ids(&get(server, "/compute", &auth).body);
    for (body, status, wanted) in [
        ("<COMPUTE><INSTANCE_TYPE>huge</INSTANCE_TYPE></COMPUTE>".to_string(), 400, "Bad instance type"),
        ("<COMPUTE><NAME>x</NAME></COMPUTE>".to_string(), 400, "Bad instance type"),
        (
            r#"<COMPUTE><INSTANCE_TYPE>small</INSTANCE_TYPE><STORAGE><DISK image="999999"/></STORAGE></COMPUTE>"#.to_string(),
            400,
            "Invalid image (999999) referred",
        ),
        (
            r#"<COMPUTE><INSTANCE_TYPE>small</INSTANCE_TYPE><NETWORK><NIC network="999999"/></NETWORK></COMPUTE>"#.to_string(),
            400,
            "Invalid network referred",
        ),
        (
            format!(r#"<COMPUTE><INSTANCE_TYPE>small</INSTANCE_TYPE><STORAGE><DISK image="{bobs_image}"/></STORAGE></COMPUTE>"#),
            403,
            "not allowed",
        ),
        (
            format!(r#"<COMPUTE><INSTANCE_TYPE>small</INSTANCE_TYPE><NIC><NETWORK href="/network/{bobs_net}"/></NIC></COMPUTE>"#),
            403,
            "not allowed",
        ),
        ("<COMPUTE><INSTANCE_TYPE>small</INSTANCE_TYPE>".to_string(), 400, "malformed XML"),
        ("<NETWORK/>".to_string(), 400, "root must be COMPUTE"),
        (String::new(), 400, "no OCCI XML"),
    ] {
        let reply = xml(server, "POST", "/compute", &auth, &body);
        let message = reply.error(status);
        assert!(message.contains(wanted), "{body}: {message}");
    }
    assert_eq!(
        pool_ids(&get(server, "/compute", &auth).body),
        before,
        "nothing was created"
    );
    get(server, "/compute/999999", &auth).error(404);
    request(server, "PATCH", "/compute", &auth, None, &[]).error(501);
    request(server, "POST", "/compute/1", &auth, None, &[]).error(501);
    request(server, "POST", "/instance_type", &auth, None, &[]).error(501);
    get(server, "/compute/abc", &auth).error(404);
    get(server, "/computes", &auth).error(404);
    get(server, "/compute/1/action", &auth).error(404);
    assert_eq!(
        get(server, "/instance_type/huge", &auth).error(404),
        "INSTANCE_TYPE huge not found"
    );
}

// ---------------------------------------------------------------------
// Dialects and instance types
// ---------------------------------------------------------------------

#[test]
fn the_dialect_follows_the_user_agent_then_the_body() {
    let (server, _config) = &vm_server();
    let alice = User::new(server, "occi-dia");
    let auth = alice.sha1();
    let id = vm(server, &alice);
    let with_ua = |path: &str, version: &str| {
        let ua = libcloud(version);
        request(server, "GET", path, &auth, None, &[("User-Agent", &ua)])
    };
    assert!(get(server, "/compute", &auth)
        .body
        .starts_with("<COMPUTES>"));
    assert!(with_ua("/compute", "1.4").body.starts_with("<COMPUTES>"));
    assert!(with_ua("/compute", "2.0")
        .body
        .starts_with("<COMPUTE_COLLECTION>"));
    assert!(with_ua("/compute", "3.8")
        .body
        .starts_with("<COMPUTE_COLLECTION>"));
    assert!(with_ua("/storage", "2.2")
        .body
        .starts_with("<STORAGE_COLLECTION"));
    let pool = get(server, "/storage", &auth).body;
    assert!(
        pool.starts_with("<STORAGE>") || pool == "<STORAGE/>\n",
        "{pool}"
    );
    assert!(with_ua("/network", "2.0")
        .body
        .starts_with("<NETWORK_COLLECTION"));
    // 1.4 always has NETWORK in a COMPUTE, 2.x always INSTANCE_TYPE.
    assert!(get(server, &format!("/compute/{id}"), &auth)
        .body
        .contains("<NETWORK/>"));
    // A 2.x-shaped body without a User-Agent hint answers 2.x.
    let reply = xml(
        server,
        "POST",
        "/compute",
        &auth,
        "<COMPUTE><INSTANCE_TYPE>small</INSTANCE_TYPE><DISK><TYPE>swap</TYPE><SIZE>16</SIZE></DISK></COMPUTE>",
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    assert!(reply.body.contains("<DISK id=\"0\">"), "{}", reply.body);
    assert!(
        reply
            .body
            .contains(&format!("href=\"{}\"", server.url("/storage/"))),
        "{}",
        reply.body
    );
    // The hrefs follow the Host header.
    let reply = request(
        server,
        "GET",
        "/compute",
        &auth,
        None,
        &[("Host", "cloud.example.org:4567")],
    );
    assert!(
        reply
            .body
            .contains("http://cloud.example.org:4567/compute/"),
        "{}",
        reply.body
    );
}

#[test]
fn instance_types_are_listed_and_shown() {
    let server = Server::shared();
    let alice = User::new(server, "occi-it");
    let reply = get(server, "/instance_type", &alice.plain());
    assert_eq!(reply.status, 200);
    assert!(reply.body.starts_with("<INSTANCE_TYPE_COLLECTION>"));
    for (name, cpu, memory) in [("small", 1, 1024), ("medium", 4, 4096), ("large", 8, 8192)] {
        assert!(
            reply.body.contains(&format!(
                "<INSTANCE_TYPE href=\"{}\" name=\"{name}\">",
                server.url(&format!("/instance_type/{name}"))
            )),
            "{}",
            reply.body
        );
        let one = get(server, &format!("/instance_type/{name}"), &alice.plain());
        assert_eq!(one.text("NAME").as_deref(), Some(name));
        assert_eq!(one.text("CPU"), Some(cpu.to_string()));
        assert_eq!(one.text("MEMORY"), Some(memory.to_string()));
    }
}

// ---------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------

#[test]
fn storage_takes_both_descriptions_and_changes_and_deletes_images() {
    let server = Server::shared();
    let alice = User::new(server, "occi-st");
    let auth = alice.sha1();
    let name = unique("desk");
    let description = format!(
        "<STORAGE><NAME>{name}</NAME><DESCRIPTION>Ubuntu 10.04 desktop</DESCRIPTION><TYPE>CDROM</TYPE></STORAGE>"
    );
    // As a file part, the way 2.x clients may send it.
    let reply = upload(
        server,
        &auth,
        &[
            ("occixml", Some("occi.xml"), description.as_bytes()),
            ("file", Some("desk.iso"), b"iso"),
        ],
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    assert!(
        reply.body.starts_with("<STORAGE href="),
        "2.x answer: {}",
        reply.body
    );
    assert_eq!(reply.text("TYPE").as_deref(), Some("CDROM"));
    assert_eq!(
        reply.text("DESCRIPTION").as_deref(),
        Some("Ubuntu 10.04 desktop")
    );
    let id = reply.href_id();
    let path = format!("/storage/{id}");

    let put = |body: &str| xml(server, "PUT", &path, &auth, body);
    let reply = put("<STORAGE><PERSISTENT>YES</PERSISTENT></STORAGE>");
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(reply.text("PERSISTENT").as_deref(), Some("YES"));
    put("<STORAGE><PERSISTENT>YES</PERSISTENT><PUBLIC>YES</PUBLIC></STORAGE>").error(400);
    put("<STORAGE><PUBLIC>perhaps</PUBLIC></STORAGE>").error(400);

    // Without a name the file names the image; the same name twice is 409.
    let reply = upload(
        server,
        &auth,
        &[
            ("occixml", None, b"<DISK/>"),
            ("file", Some("C:\\images\\plain.img"), b"p"),
        ],
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.text("NAME").as_deref(), Some("plain.img"));
    let dup = format!("<DISK><NAME>{name}</NAME></DISK>");
    upload(
        server,
        &auth,
        &[("occixml", None, dup.as_bytes()), ("file", Some("f"), b"x")],
    )
    .error(409);

    // A DATABLOCK from its SIZE alone, as a form or libcloud 3.6's query.
    let block = format!("<STORAGE><NAME>{}</NAME><TYPE>DATABLOCK</TYPE><SIZE>2</SIZE><FSTYPE>ext3</FSTYPE><PERSISTENT>YES</PERSISTENT></STORAGE>", unique("blk"));
    let reply = upload(server, &auth, &[("occixml", None, block.as_bytes())]);
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.text("SIZE").as_deref(), Some("2"));
    assert_eq!(reply.text("FSTYPE").as_deref(), Some("ext3"));
    let query = format!(
        "/storage?occixml={}",
        format!(
            "<STORAGE><NAME>{}</NAME><TYPE>DATABLOCK</TYPE><SIZE>1</SIZE></STORAGE>",
            unique("vol")
        )
        .replace('<', "%3C")
        .replace('>', "%3E")
    );
    let reply = request(server, "POST", &query, &auth, None, &[]);
    assert_eq!(reply.status, 201, "{reply:?}");
    let volume = reply.href_id();
    assert_eq!(
        std::fs::metadata(repository(server).join(volume.to_string()))
            .expect("file")
            .len(),
        1 << 20
    );

    // Missing pieces, in 1.4's words.
    assert_eq!(
        upload(server, &auth, &[("file", Some("f"), b"x")]).error(400),
        "OCCI XML representation of Image not present in the request before the file part (send occixml first)"
    );
    assert_eq!(
        upload(server, &auth, &[("other", None, b"x")]).error(400),
        "OCCI XML representation of Image not present in the request"
    );
    let lone = format!("<DISK><NAME>{}</NAME></DISK>", unique("lone"));
    assert_eq!(
        upload(server, &auth, &[("occixml", None, lone.as_bytes())]).error(400),
        "File not present in the request"
    );
    assert_eq!(
        request(server, "POST", "/storage", &auth, Some(b"not a form"), &[]).error(400),
        "OCCI XML representation of Image not present in the request"
    );
    upload(
        server,
        &auth,
        &[
            ("occixml", None, b"<DISK><NAME>x</NAME>"),
            ("file", Some("f"), b"x"),
        ],
    )
    .error(400);
    upload(
        server,
        &auth,
        &[
            ("occixml", None, b"<DISK><NAME>123</NAME></DISK>"),
            ("file", Some("f"), b"x"),
        ],
    )
    .error(400);

    // DELETE per dialect; the file goes with the row.
    let file = repository(server).join(id.to_string());
    assert!(file.is_file());
    let reply = request(server, "DELETE", &path, &auth, None, &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    assert!(!file.exists());
    get(server, &path, &auth).error(404);
    let ua = libcloud("3.6");
    let reply = request(
        server,
        "DELETE",
        &format!("/storage/{volume}"),
        &auth,
        None,
        &[("User-Agent", &ua)],
    );
    assert_eq!(reply.status, 204);
}

/// A server of the test's own for tests that run VMs: the dummy host has
/// 8 CPUs and 16 GB, which eight VMs of the default `small` fill, so
/// VMs here are light, and the shared server's capacity is left to the
/// other modules' tests.
fn vm_server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("light.conf");
    std::fs::write(
        &config,
        "OCCI_INSTANCE_TYPE = [ NAME = \"small\", CPU = 0.05, MEMORY = 32 ]\n\
         OCCI_INSTANCE_TYPE = [ NAME = \"medium\", CPU = 0.1, VCPU = 2, MEMORY = 64 ]\n\
         OCCI_INSTANCE_TYPE = [ NAME = \"large\", CPU = 0.2, MEMORY = 128 ]\n",
    )
    .expect("config");
    let server = Server::start_with(&["--config", config.to_str().expect("utf-8 path")]);
    (server, dir)
}

/// A server with small limits, the 2.x dialect and a public URL.
fn small_server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("occi.conf");
    std::fs::write(
        &config,
        "UPLOAD_LIMIT = 64K\nBODY_LIMIT = 4K\nOCCI_DIALECT = 2.x\nPUBLIC_URL = \"https://cloud.example.org:8443/\"\n",
    )
    .expect("config");
    let server = Server::start_with(&["--config", config.to_str().expect("utf-8 path")]);
    (server, dir)
}

#[test]
fn over_limit_and_interrupted_uploads_leave_no_image_and_no_file() {
    let (server, _config) = small_server();
    let alice = User::new(&server, "occi-lim");
    let auth = alice.sha1();
    let repo = repository(&server);
    let listed = || pool_ids(&get(&server, "/storage", &auth).body);

    // The configured dialect and base URL.
    let pool = get(&server, "/storage", &auth);
    assert!(
        pool.body.starts_with("<STORAGE_COLLECTION"),
        "{}",
        pool.body
    );
    let kept = image(&server, &alice, "kept", &vec![7u8; 64 * 1024]);
    let shown = get(&server, &format!("/storage/{kept}"), &auth);
    assert!(
        shown.body.starts_with(&format!(
            "<STORAGE href=\"https://cloud.example.org:8443/storage/{kept}\">"
        )),
        "{}",
        shown.body
    );
    assert_eq!(dir_files(&repo), [kept.to_string()]);

    // One byte over UPLOAD_LIMIT: 413, nothing kept.
    let over = vec![1u8; 64 * 1024 + 1];
    let reply = upload(
        &server,
        &auth,
        &[
            ("occixml", None, b"<DISK><NAME>big</NAME></DISK>"),
            ("file", Some("big"), &over),
        ],
    );
    reply.error(413);
    eventually("no upload file is left", || {
        dir_files(&repo) == [kept.to_string()]
    });
    assert_eq!(listed(), [kept]);

    // An occixml part over its limit, and an XML body over BODY_LIMIT.
    let huge_xml = format!("<DISK><NAME>{}</NAME></DISK>", "n".repeat(70 * 1024));
    upload(
        &server,
        &auth,
        &[
            ("occixml", None, huge_xml.as_bytes()),
            ("file", Some("f"), b"x"),
        ],
    )
    .error(413);
    let long = format!(
        "<NETWORK><NAME>{}</NAME><ADDRESS>10.0.0.0</ADDRESS></NETWORK>",
        "n".repeat(5000)
    );
    xml(&server, "POST", "/network", &auth, &long).error(413);

    // A declared length far over the limit is refused before the body.
    let address = server.base().trim_start_matches("http://").to_string();
    let basic = auth.header().expect("credentials");
    let mut stream = TcpStream::connect(&address).expect("connect");
    write!(
        stream,
        "POST /storage HTTP/1.1\r\nHost: {address}\r\nAuthorization: {basic}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10737418240\r\n\r\n"
    )
    .expect("headers");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut answer = [0u8; 12];
    stream
        .read_exact(&mut answer)
        .expect("an answer before the body");
    assert_eq!(
        &answer,
        b"HTTP/1.1 413",
        "{}",
        String::from_utf8_lossy(&answer)
    );
    drop(stream);

    // A client that goes away in the middle of the file: once the upload
    // has begun (its temporary file exists), closing the connection
    // deletes it and leaves no image.
    let boundary = "cut-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"occixml\"\r\n\r\n<DISK><NAME>cut</NAME></DISK>\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.img\"\r\n\r\n"
    );
    let mut stream = TcpStream::connect(&address).expect("connect");
    write!(
        stream,
        "POST /storage HTTP/1.1\r\nHost: {address}\r\nAuthorization: {basic}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 60000\r\n\r\n{head}"
    )
    .expect("headers");
    stream.write_all(&[9u8; 20_000]).expect("some of the file");
    stream.flush().expect("flush");
    eventually("the upload's temporary file appears", || {
        dir_files(&repo).iter().any(|f| f.starts_with(".upload-"))
    });
    drop(stream);
    eventually("the temporary file is deleted", || {
        dir_files(&repo) == [kept.to_string()]
    });
    assert_eq!(listed(), [kept]);

    // The whole file, then a cut before the form's end: the image that
    // was stored is taken back.
    let mut stream = TcpStream::connect(&address).expect("connect");
    write!(
        stream,
        "POST /storage HTTP/1.1\r\nHost: {address}\r\nAuthorization: {basic}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 60000\r\n\r\n{head}"
    )
    .expect("headers");
    stream.write_all(&[3u8; 1000]).expect("the file");
    write!(
        stream,
        "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nsome"
    )
    .expect("more");
    stream.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    drop(stream);
    eventually("no image named cut stays", || {
        dir_files(&repo) == [kept.to_string()] && listed() == [kept]
    });
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

// ---------------------------------------------------------------------
// libcloud (spec/OCCI.md §10)
// ---------------------------------------------------------------------

/// The Python of the virtualenv `.ci/setup` creates, if it has libcloud.
fn libcloud_python() -> Option<PathBuf> {
    venv_python("import libcloud.compute.drivers.opennebula", "libcloud")
}

#[test]
fn libcloud_s_opennebula_driver_runs_its_flows_unmodified() {
    let Some(python) = libcloud_python() else {
        return;
    };
    let (server, _config) = &vm_server();
    let alice = User::new(server, "occi-lc");
    let image_name = unique("lc-img");
    image(server, &alice, &image_name, &vec![5u8; 3 << 20]);
    let network_name = unique("lc-net");
    network(server, &alice, &network_name, "10.40.0.0");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/occi_libcloud.py");
    for api in ["1.4", "2.0", "3.8"] {
        let out = Command::new(&python)
            .arg(&script)
            .arg(api)
            .env("CLOUDGATE_URL", server.base())
            .env("OCCI_USER", &alice.name)
            .env("OCCI_PASSWORD", &alice.password)
            .env("OCCI_IMAGE", &image_name)
            .env("OCCI_NETWORK", &network_name)
            .env("OCCI_SMALL", "0.05 32")
            .output()
            .expect("run python");
        assert_script_ok(&format!("libcloud api {api}"), &out, Some(server));
        if api == "3.8" {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains("ok list_images shows lc-saved-"),
                "{stdout}"
            );
        }
    }
}
