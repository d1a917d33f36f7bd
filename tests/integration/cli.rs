//! The `cloudgate user ...` client, run as a real process against real
//! servers: output formats, list options, ranges, credentials and the
//! error line and exit code of each kind of failure (1 refused, 2 usage,
//! 3 cannot connect or authenticate).

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use crate::harness::{unique, Server, ADMIN_PASSWORD};

/// What one run of the CLI did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The output of a run that must succeed.
    fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        self.stdout
    }

    /// The one error line of a run that must fail with `code`.
    fn fails(self, code: i32) -> String {
        assert_eq!(
            self.code, code,
            "stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        assert!(
            self.stdout.is_empty(),
            "a failure printed on stdout: {}",
            self.stdout
        );
        self.stderr
    }
}

/// Runs the CLI in `dir` with only these of its variables set, so that
/// neither the caller's environment nor a `./var/one_auth` in the test's
/// working directory leaks in.
fn cloudgate_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cloudgate"));
    command.args(args).current_dir(dir);
    for var in ["CLOUDGATE_URL", "CLOUDGATE_AUTH", "ONE_AUTH"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let out = command.output().expect("run cloudgate");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the CLI against `server` as `user:password`, from an empty directory.
fn cloudgate_as(server: &Server, auth: &str, args: &[&str]) -> Run {
    let empty = tempfile::tempdir().expect("temp dir");
    cloudgate_in(
        empty.path(),
        &[("CLOUDGATE_URL", server.base()), ("CLOUDGATE_AUTH", auth)],
        args,
    )
}

/// Runs the CLI against `server` as oneadmin.
fn cloudgate(server: &Server, args: &[&str]) -> Run {
    cloudgate_as(server, &format!("oneadmin:{ADMIN_PASSWORD}"), args)
}

/// Creates a user and returns its id.
fn create(server: &Server, name: &str, password: &str) -> u64 {
    let out = cloudgate(server, &["user", "create", name, password]).ok();
    out.strip_prefix("ID: ")
        .and_then(|rest| rest.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("create printed {out:?}"))
}

/// The data rows of a table (the header dropped), split into cells.
fn rows(table: &str) -> Vec<Vec<String>> {
    let mut lines = table.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.trim_start().starts_with("UID")),
        "no header: {table}"
    );
    lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The base URL of a port nothing listens on.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Parses XML strictly and returns the root element and, for every
/// element holding text, (element, unescaped text).
fn parse_xml(xml: &str) -> (String, Vec<(String, String)>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut root, mut open, mut texts) = (None, Vec::new(), Vec::new());
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("bad XML ({e}): {xml}"))
        {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                root.get_or_insert_with(|| name.clone());
                open.push(name);
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                let text = t.unescape().expect("escaped text").into_owned();
                if !text.trim().is_empty() {
                    texts.push((open.last().cloned().unwrap_or_default(), text));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed elements {open:?}: {xml}");
    (root.expect("a root element"), texts)
}

#[test]
fn user_round_trip() {
    let server = Server::shared();
    let name = unique("cli-rt");
    let id = create(server, &name, "first-pw");

    let row = rows(&cloudgate(server, &["user", "list"]).ok())
        .into_iter()
        .find(|r| r[1] == name)
        .expect("the new user is listed");
    assert_eq!(row[0], id.to_string());
    assert_eq!(row[3], "yes");

    let shown = cloudgate(server, &["user", "show", &name]).ok();
    assert!(shown.contains(&format!("ID       : {id}\n")), "{shown}");
    assert!(shown.contains(&format!("NAME     : {name}\n")), "{shown}");
    assert!(shown.contains("ENABLED  : yes\n"), "{shown}");
    assert_eq!(
        cloudgate(server, &["user", "show", &id.to_string()]).ok(),
        shown
    );

    assert_eq!(
        cloudgate(server, &["user", "passwd", &name, "second-pw"]).ok(),
        ""
    );
    cloudgate_as(
        server,
        &format!("{name}:second-pw"),
        &["user", "show", &name],
    )
    .ok();
    cloudgate_as(
        server,
        &format!("{name}:first-pw"),
        &["user", "show", &name],
    )
    .fails(3);

    assert_eq!(cloudgate(server, &["user", "disable", &name]).ok(), "");
    assert!(cloudgate(server, &["user", "show", &name])
        .ok()
        .contains("ENABLED  : no\n"));
    cloudgate_as(
        server,
        &format!("{name}:second-pw"),
        &["user", "show", &name],
    )
    .fails(3);
    assert_eq!(cloudgate(server, &["user", "enable", &name]).ok(), "");
    assert!(cloudgate(server, &["user", "show", &name])
        .ok()
        .contains("ENABLED  : yes\n"));

    assert_eq!(cloudgate(server, &["user", "delete", &name]).ok(), "");
    let error = cloudgate(server, &["user", "show", &name]).fails(1);
    assert_eq!(
        error,
        format!("cloudgate: user {name} not found (404 NotFound)\n")
    );
}

#[test]
fn list_json_is_the_v1_json() {
    let server = Server::shared();
    let name = unique("cli-json");
    let id = create(server, &name, "pw");
    let out = cloudgate(server, &["user", "list", "--json"]).ok();
    let users: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let user = users
        .as_array()
        .expect("an array")
        .iter()
        .find(|u| u["name"] == name.as_str())
        .expect("listed");
    assert_eq!(user["id"], id);
    assert_eq!(user["enabled"], true);
    assert_eq!(user["password"].as_str().map(str::len), Some(40));

    let out = cloudgate(server, &["user", "show", &name, "--json"]).ok();
    let shown: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(&shown, user);
}

#[test]
fn xml_parses_with_every_text_escaped() {
    let server = Server::shared();
    // Characters XML must escape, and a '/' and '%' the URL path must.
    let name = unique("cli-x&<y>'\"/%");
    let id = create(server, &name, "pw");

    let (root, texts) = parse_xml(&cloudgate(server, &["user", "list", "-x"]).ok());
    assert_eq!(root, "USER_POOL");
    assert!(texts.contains(&("NAME".into(), name.clone())), "{texts:?}");
    assert!(texts.contains(&("ID".into(), "0".into())), "{texts:?}");

    let (root, texts) = parse_xml(&cloudgate(server, &["user", "show", &name, "--xml"]).ok());
    assert_eq!(root, "USER");
    let tags: Vec<&str> = texts.iter().map(|(tag, _)| tag.as_str()).collect();
    assert_eq!(tags, ["ID", "NAME", "PASSWORD", "ENABLED"]);
    assert_eq!(texts[0].1, id.to_string());
    assert_eq!(texts[1].1, name);
    assert_eq!(texts[3].1, "1");
}

#[test]
fn order_descending_and_filter() {
    let server = Server::shared();
    let (a, b) = (unique("cli-ord"), unique("cli-ord"));
    create(server, &a, "pw");
    create(server, &b, "pw");

    let ids: Vec<u64> = rows(&cloudgate(server, &["user", "list", "-o", "-UID", "-l", "UID"]).ok())
        .iter()
        .map(|r| r[0].parse().expect("a number"))
        .collect();
    assert!(ids.len() >= 3, "{ids:?}");
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "not descending: {ids:?}"
    );
    assert_eq!(ids.last(), Some(&0));

    let filter = format!("NAME={b}");
    let out = cloudgate(
        server,
        &["user", "list", "-f", &filter, "-l", "NAME,ENABLE"],
    )
    .ok();
    assert_eq!(
        out,
        format!("{:w$}  ENABLE\n{b}  yes\n", "NAME", w = b.len())
    );
}

#[test]
fn list_columns_needs_no_server() {
    let empty = tempfile::tempdir().expect("temp dir");
    let out = cloudgate_in(empty.path(), &[], &["user", "list-columns"]).ok();
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["UID", "NAME", "PASSWORD", "ENABLE"]);
}

#[test]
fn usage_errors_exit_2_before_any_request() {
    let empty = tempfile::tempdir().expect("temp dir");
    let url = dead_url();
    let env = [("CLOUDGATE_URL", url.as_str())];
    let error = cloudgate_in(empty.path(), &env, &["user", "list", "-o", "-NOPE"]).fails(2);
    assert_eq!(
        error,
        "cloudgate: unknown column \"NOPE\"; the columns are UID,NAME,PASSWORD,ENABLE\n"
    );
    let error = cloudgate_in(empty.path(), &env, &["user", "list", "-f", "NAME"]).fails(2);
    assert_eq!(
        error,
        "cloudgate: bad filter \"NAME\": expected COLUMN=VALUE\n"
    );
    let error = cloudgate_in(empty.path(), &env, &["user", "delete", "[9-1]"]).fails(2);
    assert!(
        error.starts_with("cloudgate: bad range [9-1]: END is before START"),
        "{error}"
    );
    cloudgate_in(empty.path(), &env, &["user", "show", "x", "-x", "--json"]).fails(2);
}

#[test]
fn refusals_exit_1_with_the_servers_message() {
    let server = Server::shared();
    let name = unique("cli-dup");
    create(server, &name, "pw");
    let error = cloudgate(server, &["user", "create", &name, "pw"]).fails(1);
    assert_eq!(
        error,
        format!("cloudgate: user {name} already exists (409 Conflict)\n")
    );

    let error = cloudgate_as(server, &format!("{name}:pw"), &["user", "list"]).fails(1);
    assert!(error.ends_with("(403 Forbidden)\n"), "{error}");

    let error = cloudgate(server, &["user", "create", "", "pw"]).fails(1);
    assert_eq!(error, "cloudgate: name: must not be empty (400 Invalid)\n");
}

#[test]
fn wrong_password_exits_3() {
    let error = cloudgate_as(Server::shared(), "oneadmin:wrong", &["user", "list"]).fails(3);
    assert_eq!(
        error,
        "cloudgate: invalid or missing credentials (401 Unauthorized; the credentials came from CLOUDGATE_AUTH)\n"
    );
}

#[test]
fn server_down_cannot_reach() {
    let url = dead_url();
    let empty = tempfile::tempdir().expect("temp dir");
    let env = [
        ("CLOUDGATE_URL", url.as_str()),
        ("CLOUDGATE_AUTH", "oneadmin:x"),
    ];
    let error = cloudgate_in(empty.path(), &env, &["user", "list"]).fails(3);
    assert!(
        error.starts_with(&format!("cloudgate: cannot reach cloudgate at {url}: ")),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
}

#[test]
fn one_auth_file_is_used_without_cloudgate_auth() {
    let server = Server::shared();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("my_auth");
    std::fs::write(&file, format!("oneadmin:{ADMIN_PASSWORD}\n")).expect("write");
    let file = file.to_str().expect("UTF-8 path");
    let env = [("CLOUDGATE_URL", server.base()), ("ONE_AUTH", file)];
    let out = cloudgate_in(
        dir.path(),
        &env,
        &["user", "list", "-l", "NAME", "-f", "UID=0"],
    )
    .ok();
    assert_eq!(out, "NAME\noneadmin\n");

    std::fs::write(file, "oneadmin:wrong\n").expect("write");
    let error = cloudgate_in(dir.path(), &env, &["user", "list"]).fails(3);
    assert!(
        error.contains(&format!("the credentials came from ONE_AUTH file {file}")),
        "{error}"
    );
}

#[test]
fn var_one_auth_in_the_working_directory_is_the_last_resort() {
    let server = Server::shared();
    // The server wrote oneadmin's credentials to <dir>/var/one_auth.
    let dir = server.data_dir().parent().expect("data dir has a parent");
    let out = cloudgate_in(
        dir,
        &[("CLOUDGATE_URL", server.base())],
        &["user", "show", "0", "--json"],
    )
    .ok();
    assert!(out.contains("\"oneadmin\""), "{out}");

    let empty = tempfile::tempdir().expect("temp dir");
    let error = cloudgate_in(
        empty.path(),
        &[("CLOUDGATE_URL", server.base())],
        &["user", "list"],
    )
    .fails(3);
    assert_eq!(
        error,
        "cloudgate: no credentials: set CLOUDGATE_AUTH or ONE_AUTH, or run from the directory holding var/one_auth\n"
    );
}

#[test]
fn ranges_act_on_each_id_and_go_on_after_a_failure() {
    // A fresh server, so that the ids are known: oneadmin is 0.
    let server = Server::start();
    for name in ["r1", "r2", "r3"] {
        create(&server, name, "pw");
    }
    let enabled = |server: &Server| -> Vec<String> {
        rows(&cloudgate(server, &["user", "list", "-l", "UID,ENABLE", "-o", "UID"]).ok())
            .into_iter()
            .map(|r| r[1].clone())
            .collect()
    };

    cloudgate(&server, &["user", "disable", "[1-3]"]).ok();
    assert_eq!(enabled(&server), ["yes", "no", "no", "no"]);
    cloudgate(&server, &["user", "enable", "[01+2]"]).ok();
    assert_eq!(enabled(&server), ["yes", "yes", "yes", "no"]);

    let error = cloudgate(&server, &["user", "delete", "[2-4]", "r1"]).fails(1);
    assert_eq!(error, "cloudgate: user 4 not found (404 NotFound)\n");
    let out = cloudgate(&server, &["user", "list", "-l", "NAME"]).ok();
    assert_eq!(out, "NAME\noneadmin\n");
}
