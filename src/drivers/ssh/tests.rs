//! The SSH transport against a fake `ssh` (a script that runs the remote
//! command locally and logs each call), so that command lines, remotes
//! syncing and the retry on exit 42 are tested without an sshd. The real
//! thing is `tests/integration/realhost.rs`.

use super::*;
use crate::drivers::testutil::script;
use std::thread;
use std::time::Instant;

/// A fake ssh: skips the options up to `--`, logs the host, answers 255
/// for hosts named `down*`, and runs the remote text with `sh -c`.
/// `$FAKE_LOG` is replaced by the fixture's log file.
const FAKE_SSH: &str = r#"
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; break ;;
    -O) echo "$2" >> "$FAKE_LOG.ctl"; exit 0 ;;
    *) shift ;;
  esac
done
host=$1
echo "$host" >> "$FAKE_LOG"
case $host in
  down*) echo "ssh: connect to host $host port 22: Connection refused" >&2; exit 255 ;;
  stale*)
    # A dying master until `-O exit`, then the host's own answer.
    if grep -qx exit "$FAKE_LOG.ctl" 2>/dev/null; then
      echo "ssh: connect to host $host port 22: Connection refused" >&2
    else
      echo "mux_client_request_alive: write packet: Broken pipe" >&2
    fi
    exit 255 ;;
esac
exec sh -c "$2"
"#;

struct Fixture {
    dir: tempfile::TempDir,
    ssh: Ssh,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let remotes = dir.path().join("remotes");
        script(&remotes, "vmm/x/hello", "echo \"hello $1 $GREETING\"; cat");
        script(&remotes, "vmm/x/fail", "echo 'it broke' >&2; exit 3");
        script(&remotes, "vmm/x/slow", "sleep 30");
        let log = dir.path().join("calls").display().to_string();
        let fake = script(dir.path(), "fake-ssh", &FAKE_SSH.replace("$FAKE_LOG", &log));
        let mut options = SshOptions::new(
            dir.path().join("ctl"),
            dir.path().join("host/one").display().to_string(),
        );
        options.program = fake;
        options.config_file = None;
        let local = Local::new(&remotes).grace(Duration::from_millis(300));
        let ssh = Ssh::new(local, options).expect("ssh transport");
        Fixture { dir, ssh }
    }

    fn calls(&self) -> usize {
        fs::read_to_string(self.dir.path().join("calls"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    fn remotes(&self) -> PathBuf {
        self.dir.path().join("remotes")
    }
}

fn command(script: &str, args: &[&str]) -> Command {
    Command {
        program: Program::Script(PathBuf::from(script)),
        args: args.iter().map(|a| a.to_string()).collect(),
        stdin: None,
        env: Vec::new(),
        timeout: Duration::from_secs(20),
    }
}

fn host(name: &str) -> Site {
    Site::Host(name.to_owned())
}

#[test]
fn command_line_carries_the_options_then_the_host_as_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = SshOptions::new(dir.path().join("ssh"), "/var/tmp/one");
    options.config_file = Some(PathBuf::from("/etc/test_ssh_config"));
    options.connect_timeout = Duration::from_secs(7);
    options.host_key_policy = "yes".to_owned();
    let ssh = Ssh::new(Local::new(dir.path()), options).expect("ssh");
    let args = ssh.ssh_args("node1.alias", "true");
    let control = format!(
        "ControlPath={}/%C",
        fs::canonicalize(dir.path().join("ssh"))
            .expect("made")
            .display()
    );
    for expected in [
        "BatchMode=yes",
        "ConnectTimeout=7",
        "StrictHostKeyChecking=yes",
        "ControlMaster=auto",
        control.as_str(),
        "ControlPersist=600",
    ] {
        let at = args.iter().position(|a| a == expected);
        assert!(
            at.is_some_and(|i| args[i - 1] == "-o"),
            "{expected} missing in {args:?}"
        );
    }
    assert_eq!(&args[..2], ["-F", "/etc/test_ssh_config"]);
    assert_eq!(&args[args.len() - 3..], ["--", "node1.alias", "true"]);
    // The control dir is private.
    let mode = fs::metadata(dir.path().join("ssh"))
        .expect("dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    // Front-end scripts get the same options through the wrapper.
    let wrapper = fs::read_to_string(ssh.wrapper()).expect("wrapper");
    assert!(wrapper.contains("ControlMaster=auto"), "{wrapper}");
    assert!(wrapper.trim_end().ends_with("\"$@\""), "{wrapper}");
}

#[test]
fn a_deep_control_dir_moves_the_sockets_to_tmp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deep = dir.path().join("a".repeat(40)).join("b".repeat(40));
    let ssh = Ssh::new(
        Local::new(dir.path()),
        SshOptions::new(&deep, "/var/tmp/one"),
    )
    .expect("ssh");
    let path = ssh
        .ssh_options()
        .into_iter()
        .find_map(|o| o.strip_prefix("ControlPath=").map(str::to_owned))
        .expect("control path");
    assert!(path.starts_with("/tmp/cloudgate-ssh-"), "{path}");
    assert!(path.len() < 60, "{path}");
}

#[test]
fn shell_quoting_keeps_every_argument_one_word() {
    assert_eq!(sh_quote("plain-word_1.2/x"), "plain-word_1.2/x");
    assert_eq!(sh_quote(""), "''");
    assert_eq!(sh_quote("a b"), "'a b'");
    assert_eq!(sh_quote("it's"), "'it'\\''s'");
    for nasty in [
        "$(rm -rf /)",
        "a;b",
        "`x`",
        "\"q\"",
        "new\nline",
        "it's \\ 'x'",
    ] {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s' {}", sh_quote(nasty)))
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), nasty);
    }
}

#[test]
fn remote_command_checks_the_tree_then_execs_the_script() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ssh = Ssh::new(
        Local::new(dir.path()),
        SshOptions::new(dir.path().join("ssh"), "/var/tmp/one"),
    )
    .expect("ssh");
    let mut cmd = command("vmm/kvm/deploy", &["/d/deployment.0", "node 1"]);
    cmd.env
        .push(("LIBVIRT_URI".into(), "qemu:///system".into()));
    cmd.env.push(("bad name".into(), "x".into()));
    let text = ssh.remote_command(&cmd, "abc123");
    assert!(
        text.starts_with("D=/var/tmp/one; S=\"$D/\"vmm/kvm/deploy;"),
        "{text}"
    );
    assert!(text.contains("[ \"$h\" = abc123 ]"), "{text}");
    assert!(text.contains("exit 42"), "{text}");
    assert!(
        text.contains("LIBVIRT_URI=qemu:///system; export LIBVIRT_URI;"),
        "{text}"
    );
    assert!(!text.contains("bad name"), "{text}");
    assert!(
        text.contains("exec timeout -k 5 22 \"$S\" /d/deployment.0 'node 1'"),
        "{text}"
    );
    assert!(
        text.ends_with("exec \"$S\" /d/deployment.0 'node 1'"),
        "{text}"
    );
}

#[test]
fn first_action_syncs_once_then_runs_and_later_ones_do_not_sync() {
    let f = Fixture::new();
    let mut cmd = command("vmm/x/hello", &["world"]);
    cmd.env.push(("GREETING".into(), "hi there".into()));
    cmd.stdin = Some(b"from stdin\n".to_vec());
    let out = f.ssh.run(&host("node1"), &cmd).expect("runs");
    assert_eq!(out.exit, Exit::Code(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello world hi there\nfrom stdin\n"
    );
    // 42, the copy, the retry.
    assert_eq!(f.calls(), 3);
    assert_eq!(f.ssh.syncs("node1"), 1);
    let hash = f.ssh.tree_hash().expect("hash");
    assert_eq!(f.ssh.synced_hash("node1").as_deref(), Some(hash.as_str()));
    let on_host = fs::read_to_string(f.dir.path().join("host/one").join(HASH_FILE))
        .expect("hash file on the host");
    assert_eq!(on_host.trim(), hash);

    for _ in 0..3 {
        let out = f
            .ssh
            .run(&host("node1"), &command("vmm/x/hello", &[]))
            .expect("runs");
        assert_eq!(out.exit, Exit::Code(0));
    }
    assert_eq!(f.calls(), 6, "one call per action, no copies");
    assert_eq!(f.ssh.syncs("node1"), 1);
}

#[test]
fn a_second_transport_trusts_the_hash_file_on_the_host() {
    let f = Fixture::new();
    f.ssh
        .run(&host("node1"), &command("vmm/x/hello", &[]))
        .expect("runs");
    assert_eq!(f.ssh.syncs("node1"), 1);
    // A restarted cloudgate knows nothing, but the host's copy matches.
    let mut options = f.ssh.options().clone();
    options.control_dir = f.dir.path().join("ctl2");
    let again = Ssh::new(Local::new(f.remotes()), options).expect("ssh");
    let before = f.calls();
    let out = again
        .run(&host("node1"), &command("vmm/x/hello", &[]))
        .expect("runs");
    assert_eq!(out.exit, Exit::Code(0));
    assert_eq!(f.calls(), before + 1);
    assert_eq!(again.syncs("node1"), 0);
}

#[test]
fn a_changed_tree_is_copied_before_the_next_action() {
    let f = Fixture::new();
    f.ssh
        .run(&host("node1"), &command("vmm/x/hello", &[]))
        .expect("runs");
    let old = f.ssh.tree_hash().expect("hash");
    // Touching without changing content does not count.
    let hello = f.remotes().join("vmm/x/hello");
    let text = fs::read(&hello).expect("read");
    fs::write(&hello, &text).expect("rewrite");
    assert_eq!(f.ssh.tree_hash().expect("hash"), old);

    script(&f.remotes(), "vmm/x/hello", "echo changed");
    let new = f.ssh.tree_hash().expect("hash");
    assert_ne!(new, old);
    let before = f.calls();
    let out = f
        .ssh
        .run(&host("node1"), &command("vmm/x/hello", &[]))
        .expect("runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "changed\n");
    // The copy and the action: no 42 round trip, the host was known stale.
    assert_eq!(f.calls(), before + 2);
    assert_eq!(f.ssh.syncs("node1"), 2);
    assert_eq!(f.ssh.synced_hash("node1"), Some(new));
}

#[test]
fn a_script_missing_after_a_copy_is_not_found_after_one_retry() {
    let f = Fixture::new();
    let err = f
        .ssh
        .run(&host("node1"), &command("vmm/x/absent", &[]))
        .expect_err("absent");
    assert!(
        matches!(&err, TransportError::NotFound(what) if what == "vmm/x/absent on node1"),
        "{err:?}"
    );
    assert_eq!(f.calls(), 3, "try, copy, one retry");
}

#[test]
fn a_wiped_host_copy_is_restored_by_the_retry() {
    let f = Fixture::new();
    f.ssh
        .run(&host("node1"), &command("vmm/x/hello", &[]))
        .expect("runs");
    fs::remove_dir_all(f.dir.path().join("host/one")).expect("wipe");
    let out = f
        .ssh
        .run(&host("node1"), &command("vmm/x/hello", &["again"]))
        .expect("runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello again \n");
    assert_eq!(f.ssh.syncs("node1"), 2);
}

#[test]
fn failures_and_timeouts_come_back_as_outputs() {
    let f = Fixture::new();
    let out = f
        .ssh
        .run(&host("node1"), &command("vmm/x/fail", &[]))
        .expect("runs");
    assert_eq!(out.exit, Exit::Code(3));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "it broke\n");
    let mut slow = command("vmm/x/slow", &[]);
    slow.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let out = f.ssh.run(&host("node1"), &slow).expect("runs");
    assert_eq!(out.exit, Exit::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn ssh_exit_255_is_unreachable_with_ssh_message() {
    let f = Fixture::new();
    let err = f
        .ssh
        .run(&host("down1"), &command("vmm/x/hello", &[]))
        .expect_err("down");
    assert_eq!(
        err.to_string(),
        "cannot reach host down1: ssh: connect to host down1 port 22: Connection refused"
    );
}

#[test]
fn a_dying_master_is_closed_and_the_host_tried_once_more() {
    let f = Fixture::new();
    let err = f
        .ssh
        .run(&host("stale1"), &command("vmm/x/hello", &[]))
        .expect_err("down");
    assert_eq!(
        err.to_string(),
        "cannot reach host stale1: ssh: connect to host stale1 port 22: Connection refused"
    );
    assert_eq!(f.calls(), 2, "one retry after closing the master");
}

#[test]
fn host_names_that_ssh_would_read_as_options_are_refused() {
    let f = Fixture::new();
    for bad in ["-oProxyCommand=touch /tmp/x", "a b", "", "x\ny"] {
        let err = f
            .ssh
            .run(&host(bad), &command("vmm/x/hello", &[]))
            .expect_err("refused");
        assert!(
            err.to_string().contains("not a valid ssh host name"),
            "{err}"
        );
    }
    assert_eq!(f.calls(), 0);
}

#[test]
fn front_end_commands_run_locally_with_the_ssh_wrapper() {
    let f = Fixture::new();
    script(&f.remotes(), "tm/x/clone", "echo \"$CLOUDGATE_SSH\"");
    let out = f
        .ssh
        .run(&Site::FrontEnd, &command("tm/x/clone", &[]))
        .expect("runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        f.ssh.wrapper().display().to_string()
    );
    assert_eq!(f.calls(), 0);
}

#[test]
fn actions_on_one_host_are_limited() {
    let f = Fixture::new();
    let mut options = f.ssh.options().clone();
    options.host_action_limit = 2;
    options.control_dir = f.dir.path().join("ctl3");
    let counter = f.dir.path().join("running");
    script(
        &f.remotes(),
        "vmm/x/busy",
        &format!(
            "mkdir -p {c}; touch {c}/$$; ls {c} | wc -l >> {c}.peak; sleep 0.3; rm {c}/$$",
            c = counter.display()
        ),
    );
    let ssh = Arc::new(Ssh::new(Local::new(f.remotes()), options).expect("ssh"));
    ssh.sync("node1", Duration::from_secs(20)).expect("sync");
    let workers: Vec<_> = (0..5)
        .map(|_| {
            let ssh = Arc::clone(&ssh);
            thread::spawn(move || {
                ssh.run(&host("node1"), &command("vmm/x/busy", &[]))
                    .expect("runs")
            })
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().expect("worker").exit, Exit::Code(0));
    }
    let peak = fs::read_to_string(format!("{}.peak", counter.display())).expect("peak");
    let max = peak
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .max()
        .expect("some");
    assert!(max <= 2, "{peak}");
}

#[test]
fn dropping_the_transport_closes_its_masters() {
    let f = Fixture::new();
    f.ssh
        .run(&host("node1"), &command("vmm/x/hello", &[]))
        .expect("runs");
    let log = f.dir.path().join("calls.ctl");
    drop(f.ssh);
    assert_eq!(fs::read_to_string(log).expect("closed").trim(), "exit");
}
