//! `cloudgate serve` and `cloudgate config check` as a new user meets them.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::harness::{send, Server, ADMIN_PASSWORD};

#[test]
fn first_start_creates_the_database_and_one_auth() {
    let server = Server::start();
    let dir = server.data_dir();
    assert!(dir.join("one.db").is_file());
    let one_auth = dir.join("one_auth");
    let mode = std::fs::metadata(&one_auth)
        .expect("one_auth")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let content = std::fs::read_to_string(&one_auth).expect("read");
    assert_eq!(content.trim_end(), format!("oneadmin:{ADMIN_PASSWORD}"));
    let answer = send(
        "GET",
        &server.url("/v1/users/0"),
        Some(("oneadmin", ADMIN_PASSWORD)),
        None,
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["name"], "oneadmin");
}

#[test]
fn generated_admin_password_is_printed_once_and_works() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("var");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloudgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("CLOUDGATE_ADMIN_PASSWORD")
        .current_dir(tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    let mut url = None;
    while url.is_none() {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stdout, &mut line).expect("read") == 0 {
            break;
        }
        url = line
            .trim()
            .strip_prefix("cloudgate listening on ")
            .map(str::to_string);
        lines.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    let url = url.expect("listening line");
    let printed = lines
        .iter()
        .find(|l| l.contains("oneadmin with password"))
        .expect("password line");
    let content = std::fs::read_to_string(data.join("one_auth")).expect("one_auth");
    let password = content
        .trim_end()
        .strip_prefix("oneadmin:")
        .expect("oneadmin:")
        .to_string();
    assert!(password.len() >= 16, "weak generated password");
    assert!(printed.contains(&password));
    drop(url);
}

#[test]
fn bad_config_refuses_to_start_with_its_position() {
    let tmp = tempfile::tempdir().expect("tmp");
    let conf = tmp.path().join("bad.conf");
    std::fs::write(&conf, "DEBUG_LEVEL = 2\nMAC_PREFIX = \"zz\"\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_cloudgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&conf)
        .arg("--data-dir")
        .arg(tmp.path().join("var"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:1:", conf.display())),
        "{stderr}"
    );
    assert!(
        !tmp.path().join("var").exists(),
        "a refused start created the data dir"
    );

    let check = Command::new(env!("CARGO_BIN_EXE_cloudgate"))
        .args(["config", "check"])
        .arg(&conf)
        .output()
        .expect("run");
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&check.stderr), stderr);
}

#[test]
fn config_check_accepts_the_shipped_and_the_reference_files() {
    let root = env!("CARGO_MANIFEST_DIR");
    for file in [
        "config/cloudgate.conf",
        "tests/data/config/oned-1.4-example.conf",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cloudgate"))
            .args(["config", "check"])
            .arg(format!("{root}/{file}"))
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(stdout.contains("OK"), "{stdout}");
    }
}
