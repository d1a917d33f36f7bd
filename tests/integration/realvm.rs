//! The server-level VM life cycle on real QEMU over real SSH (issue 6,
//! "Tests in CI"): `cloudgate serve` on the kvm/ssh drivers with two
//! distinct hosts, `hosta` (sshd on 127.0.0.2) and `hostb` (127.0.0.3).
//!
//! Each host is a mount namespace made by the test (`unshare -m`) in which
//! the VM_DIR is a folder of its own (bind mount: cloudgate's VM_DIR is
//! global, so both hosts have the same path, not the same files) and
//! /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt
//! are its own: a virtlogd and a libvirtd (with their own host UUID) run
//! there, beside the host's sshd. So libvirt sees two machines: live
//! migration goes from one libvirtd to the other over `qemu+ssh://`, and
//! the system libvirtd (and other tests' `one-<id>` domains) are not
//! touched. Only libvirt's binaries and /etc/libvirt/qemu.conf (made by
//! `.ci/setup`) are shared.
//!
//! The hosts reach each other with `ssh <alias>` (live migration): both
//! sshd give their sessions a PATH whose `ssh` reads the test's ssh config.
//!
//! Guests are 32 MiB domains booting a blank disk: they sit in the BIOS,
//! which is enough for the life cycle (ACPI is ignored, so shutdown
//! destroys them after SHUTDOWN_TIMEOUT = 2 s).
//!
//! Missing tools skip on a workstation and fail in CI (`CI=true`).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ec2::Client;
use crate::harness::{admin, send, Server};
use crate::realhost::{descendants, have_tools};

/// The hosts: ssh alias, loopback address, libvirt host UUID (two daemons
/// would otherwise read the same machine id, and libvirt refuses to
/// migrate to "the same host").
const HOSTS: [(&str, &str, &str); 2] = [
    ("hosta", "127.0.0.2", "6b1f5a3e-2c1d-4e5f-8a9b-0c1d2e3f4a5a"),
    ("hostb", "127.0.0.3", "6b1f5a3e-2c1d-4e5f-8a9b-0c1d2e3f4a5b"),
];

fn shipped_remotes() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/remotes")
}

fn free_port(address: &str) -> u16 {
    TcpListener::bind((address, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn index(host: &str) -> usize {
    HOSTS
        .iter()
        .position(|(alias, _, _)| *alias == host)
        .unwrap_or_else(|| panic!("no host {host}"))
}

/// The two hosts: keys, ssh config, their namespaces and sshd.
struct Hosts {
    dir: tempfile::TempDir,
    ports: [u16; 2],
    sshd: [Option<Child>; 2],
}

impl Hosts {
    fn start() -> Hosts {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().to_path_buf();
        for key in ["host_key", "id"] {
            let (ok, text) = run(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-f",
                    d.join(key).to_str().expect("path"),
                ],
            );
            assert!(ok, "ssh-keygen: {text}");
        }
        fs::copy(d.join("id.pub"), d.join("authorized_keys")).expect("authorized_keys");
        fs::create_dir_all(d.join("vms")).expect("mkdir");
        fs::create_dir_all(d.join("bin")).expect("mkdir");
        let ports = [free_port(HOSTS[0].1), free_port(HOSTS[1].1)];
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
        let mut ssh_config = String::new();
        for (i, (alias, address, uuid)) in HOSTS.iter().enumerate() {
            let port = ports[i];
            for sub in ["vms", "run", "lib", "log", "cache"] {
                fs::create_dir_all(d.join(alias).join(sub)).expect("mkdir");
            }
            fs::write(
                d.join(alias).join("libvirtd.conf"),
                format!("host_uuid = \"{uuid}\"\n"),
            )
            .expect("libvirtd.conf");
            ssh_config.push_str(&format!(
                "Host {alias}\n  HostName {address}\n  Port {port}\n  User {user}\n  \
                 IdentityFile {d}/id\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking accept-new\n  \
                 BatchMode yes\n  LogLevel ERROR\n",
                d = d.display()
            ));
            fs::write(
                d.join(alias).join("sshd_config"),
                format!(
                    "Port {port}\nListenAddress {address}\nHostKey {d}/host_key\n\
                     AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/{alias}/sshd.pid\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n\
                     MaxStartups 200:30:400\nMaxSessions 200\nLogLevel ERROR\n\
                     SetEnv SHLVL=1 PATH={d}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
                    d = d.display()
                ),
            )
            .expect("sshd_config");
        }
        fs::write(d.join("ssh_config"), ssh_config).expect("ssh_config");
        // The hosts' own ssh (live migration: `qemu+ssh://hostb/system`).
        let wrapper = d.join("bin/ssh");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
                d.join("ssh_config").display()
            ),
        )
        .expect("ssh wrapper");
        run("chmod", &["755", wrapper.to_str().expect("path")]);
        fs::create_dir_all("/run/sshd").ok();
        let mut hosts = Hosts {
            dir,
            ports,
            sshd: [None, None],
        };
        for (alias, _, _) in HOSTS {
            hosts.boot(alias);
        }
        hosts
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The VM_DIR both hosts are configured with (on the front-end: empty).
    fn vm_dir(&self) -> PathBuf {
        self.path().join("vms")
    }

    /// Where `host`'s files of VM `id` really are.
    fn vm_files(&self, host: &str, id: u64) -> PathBuf {
        self.path().join(host).join("vms").join(id.to_string())
    }

    /// The libvirt URI of `host`'s daemon, from the front-end.
    fn uri(&self, host: &str) -> String {
        format!(
            "qemu:///system?socket={}",
            self.path().join(host).join("run/libvirt-sock").display()
        )
    }

    /// Running domain names on `host`.
    fn domains(&self, host: &str) -> Vec<String> {
        let (ok, text) = run("virsh", &["-c", &self.uri(host), "list", "--name"]);
        assert!(ok, "virsh list on {host}: {text}");
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn pid(&self, host: &str, daemon: &str) -> Option<i32> {
        fs::read_to_string(self.path().join(host).join(format!("{daemon}.pid")))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    fn wait_listening(&self, host: &str, log: &str) {
        let (_, address, _) = HOSTS[index(host)];
        let port = self.ports[index(host)];
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((address, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd of {host} on {address}:{port} did not listen: {}",
                fs::read_to_string(self.path().join(host).join(log)).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A host's mount namespace with its own VM_DIR contents and libvirt,
    /// then its sshd (which keeps the namespace, with the daemons).
    fn boot(&mut self, host: &str) {
        let d = self.path().display().to_string();
        let script = format!(
            "set -e\n\
             mkdir -p /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt\n\
             mount --bind {d}/{host}/run /run/libvirt\n\
             mount --bind {d}/{host}/lib /var/lib/libvirt\n\
             mount --bind {d}/{host}/log /var/log/libvirt\n\
             mount --bind {d}/{host}/cache /var/cache/libvirt\n\
             mount --bind {d}/{host}/vms {d}/vms\n\
             virtlogd -d -p {d}/{host}/virtlogd.pid\n\
             libvirtd -d -p {d}/{host}/libvirtd.pid -f {d}/{host}/libvirtd.conf\n\
             exec /usr/sbin/sshd -D -f {d}/{host}/sshd_config -E {d}/{host}/sshd.log\n"
        );
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stderr(fs::File::create(self.path().join(host).join("ns.log")).expect("log"))
            .process_group(0)
            .spawn()
            .expect("unshare");
        self.sshd[index(host)] = Some(child);
        self.wait_listening(host, "ns.log");
        let uri = self.uri(host);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (ok, text) = run("virsh", &["-c", &uri, "version"]);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the libvirtd of {host} did not answer: {text}\n{}",
                fs::read_to_string(self.path().join(host).join("ns.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Restarts `host`'s sshd, in its namespace (that of its libvirtd).
    fn resume(&mut self, host: &str) {
        let pid = self.pid(host, "libvirtd").expect("libvirtd pid");
        let d = self.path().join(host);
        let child = Command::new("nsenter")
            .arg("-t")
            .arg(pid.to_string())
            .arg("-m")
            .arg("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start sshd");
        self.sshd[index(host)] = Some(child);
        self.wait_listening(host, "sshd.log");
    }

    /// Stops `host`'s sshd and every connection it serves (its libvirtd
    /// and domains go on).
    fn halt(&mut self, host: &str) {
        if let Some(child) = self.sshd[index(host)].take() {
            kill_tree(child);
        }
    }
}

/// SIGKILL to a process and every process under it.
fn kill_tree(mut child: Child) {
    let mut pids = descendants(child.id() as i32);
    pids.push(child.id() as i32);
    for pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.wait();
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Every domain goes, then the daemons: the namespaces end with
        // their last process.
        for (host, _, _) in HOSTS {
            let uri = self.uri(host);
            let (_, names) = run("virsh", &["-c", &uri, "list", "--name"]);
            for name in names.lines().map(str::trim).filter(|n| !n.is_empty()) {
                let _ = run("virsh", &["-c", &uri, "destroy", name]);
            }
            self.halt(host);
            for daemon in ["libvirtd", "virtlogd"] {
                if let Some(pid) = self.pid(host, daemon) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
            }
        }
    }
}

// --- the server's side ------------------------------------------------

fn config(hosts: &Hosts) -> PathBuf {
    let path = hosts.path().join("cloudgate.conf");
    fs::write(
        &path,
        format!(
            "MANAGER_TIMER = 1\nHOST_MONITORING_INTERVAL = 1\nVM_POLLING_INTERVAL = 1\n\
             SCHED_INTERVAL = 1\nSSH_CONNECT_TIMEOUT = 5\nSHUTDOWN_TIMEOUT = 2\n\
             VM_DIR = \"{vm_dir}\"\nSCRIPTS_REMOTE_DIR = \"{remote}\"\nREMOTES_DIR = \"{remotes}\"\n\
             IM_MAD = [ NAME = \"im_kvm\", EXECUTABLE = \"one_im_ssh\", ARGUMENTS = \"-r 0 -t 30 kvm\" ]\n\
             VM_MAD = [ NAME = \"vmm_kvm\", EXECUTABLE = \"one_vmm_exec\", ARGUMENTS = \"-t 60 -r 0 kvm\", TYPE = \"kvm\" ]\n\
             TM_MAD = [ NAME = \"tm_ssh\", EXECUTABLE = \"one_tm\", ARGUMENTS = \"-t 60 -r 0 ssh\" ]\n\
             OCCI_INSTANCE_TYPE = [ NAME = \"tiny\", CPU = 0.1, MEMORY = 32 ]\n\
             EC2_INSTANCE_TYPE = [ NAME = \"m1.small\", CPU = 0.1, VCPU = 1, MEMORY = 32 ]\n",
            vm_dir = hosts.vm_dir().display(),
            remote = hosts.path().join("remote").display(),
            remotes = shipped_remotes().display(),
        ),
    )
    .expect("config");
    path
}

/// The server log's last lines, without the test's own polling requests.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.contains(" GET /v1/")).collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn host_state(server: &Server, name: &str) -> Value {
    let answer = send(
        "GET",
        &server.url(&format!("/v1/hosts/{name}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

fn wait_host(server: &Server, name: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let host = host_state(server, name);
        if host["state"] == state {
            return host;
        }
        assert!(
            Instant::now() < deadline,
            "host {name} never became {state}: {host}\n{}",
            tail(&server.log())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn vm(server: &Server, id: u64) -> Value {
    let answer = send("GET", &server.url(&format!("/v1/vms/{id}")), admin(), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

/// Waits until VM `id` shows `state` with no driver step pending.
fn wait_vm(server: &Server, id: u64, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = vm(server, id);
        if v["state"] == state && v["pending"].is_null() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "VM {id} never reached {state}: {v:#}\n--- server log ---\n{}",
            tail(&server.log())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn act(server: &Server, id: u64, action: &str, body: Option<Value>) {
    let body = body.map(|b| b.to_string());
    let answer = send(
        "POST",
        &server.url(&format!("/v1/vms/{id}/actions/{action}")),
        admin(),
        body.as_deref(),
    );
    assert_eq!(answer.status, 200, "{action} VM {id}: {}", answer.body);
}

/// Polls until `what` holds (files and domains settle after the state).
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn other(host: &str) -> &'static str {
    if host == "hosta" {
        "hostb"
    } else {
        "hosta"
    }
}

/// VM `id` runs as `one-<id>` on `host` (and only there), with its disk in
/// that host's VM_DIR (and not in the other's).
fn assert_runs_on(hosts: &Hosts, server: &Server, id: u64, host: &str) {
    let v = wait_vm(server, id, "runn");
    assert_eq!(v["host"], host, "{v:#}");
    let name = format!("one-{id}");
    assert_eq!(v["deploy_id"], name.as_str(), "{v:#}");
    eventually(&format!("{name} runs on {host} only"), || {
        hosts.domains(host).contains(&name) && !hosts.domains(other(host)).contains(&name)
    });
    assert!(
        hosts.vm_files(host, id).join("disk.0").is_file(),
        "no disk.0 of VM {id} on {host}"
    );
    eventually(&format!("VM {id}'s files leave {}", other(host)), || {
        !hosts.vm_files(other(host), id).exists()
    });
}

/// Registers the image file `path` as oneadmin; its id.
fn register_image(server: &Server, name: &str, path: &Path) -> u64 {
    let body = json!({ "name": name, "path": path }).to_string();
    let answer = send("POST", &server.url("/v1/images"), admin(), Some(&body));
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()["id"].as_u64().expect("id")
}

/// A compute created through OCCI (oneadmin, plain Basic); its id.
fn occi_compute(server: &Server, image: u64) -> u64 {
    use base64::Engine;
    let (user, password) = admin().expect("admin");
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let body = format!(
        "<COMPUTE><NAME>occi-vm</NAME><INSTANCE_TYPE>tiny</INSTANCE_TYPE>\
         <DISKS><DISK image=\"{image}\"/></DISKS></COMPUTE>"
    );
    let response = ureq::post(&server.url("/compute"))
        .set("Authorization", &format!("Basic {token}"))
        .set("Content-Type", "application/xml")
        .send_string(&body);
    let response = match response {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST /compute: {e}"),
    };
    let status = response.status();
    let text = response.into_string().expect("body");
    assert_eq!(status, 201, "{text}");
    let start = text.find("<ID>").expect("ID") + 4;
    let end = text[start..].find("</ID>").expect("/ID") + start;
    text[start..end].parse().expect("numeric id")
}

/// suspend/resume, stop/resume, cold and live migration of a running VM;
/// it ends running on the host it started on.
fn life_cycle(hosts: &Hosts, server: &Server, id: u64) {
    let start = wait_vm(server, id, "runn")["host"]
        .as_str()
        .expect("host")
        .to_owned();
    assert_runs_on(hosts, server, id, &start);
    let name = format!("one-{id}");

    // suspend: the domain saved to its checkpoint on the host.
    act(server, id, "suspend", None);
    wait_vm(server, id, "susp");
    assert!(!hosts.domains(&start).contains(&name));
    assert!(hosts.vm_files(&start, id).join("checkpoint").is_file());
    act(server, id, "resume", None);
    assert_runs_on(hosts, server, id, &start);

    // stop: the checkpoint and disks leave the host (TM mv to the
    // front-end); resume brings them back to whichever host the
    // scheduler picks.
    act(server, id, "stop", None);
    wait_vm(server, id, "stop");
    assert!(!hosts.domains("hosta").contains(&name));
    assert!(!hosts.domains("hostb").contains(&name));
    eventually("the stopped VM's files leave the hosts", || {
        !hosts.vm_files("hosta", id).exists() && !hosts.vm_files("hostb", id).exists()
    });
    // They wait on the front-end, checkpoint included.
    let parked = server.data_dir().join(id.to_string()).join("images");
    assert!(
        parked.join("checkpoint").is_file() && parked.join("disk.0").is_file(),
        "no checkpoint and disk in {}",
        parked.display()
    );
    act(server, id, "resume", None);
    let here = wait_vm(server, id, "runn")["host"]
        .as_str()
        .expect("host")
        .to_owned();
    assert_runs_on(hosts, server, id, &here);

    // cold migration: saved, files moved between the hosts' VM_DIRs
    // (through the front-end), restored on the other libvirtd.
    let there = other(&here);
    act(server, id, "migrate", Some(json!({ "host": there })));
    assert_runs_on(hosts, server, id, there);

    // live migration back, from one libvirtd to the other over qemu+ssh.
    act(server, id, "livemigrate", Some(json!({ "host": here })));
    assert_runs_on(hosts, server, id, &here);
    if here != start {
        act(server, id, "livemigrate", Some(json!({ "host": start })));
        assert_runs_on(hosts, server, id, &start);
    }
}

/// Neither host has a domain or a file of VM `id`.
fn assert_gone(hosts: &Hosts, id: u64) {
    let name = format!("one-{id}");
    eventually(&format!("VM {id}'s domain and files are gone"), || {
        ["hosta", "hostb"]
            .iter()
            .all(|h| !hosts.domains(h).contains(&name) && !hosts.vm_files(h, id).exists())
    });
}

#[test]
fn vms_from_occi_and_ec2_live_on_two_real_hosts() {
    if !have_tools(&[
        "sshd",
        "ssh",
        "ssh-keygen",
        "virsh",
        "libvirtd",
        "virtlogd",
        "unshare",
        "nsenter",
        "qemu-img",
        "qemu-system-x86_64",
    ]) {
        return;
    }
    let mut hosts = Hosts::start();
    let config = config(&hosts);
    let ssh_config = hosts.path().join("ssh_config");
    let server = Server::start_with_env(
        &["--config", config.to_str().expect("path")],
        &[("CLOUDGATE_SSH_CONFIG", ssh_config.to_str().expect("path"))],
    );
    for name in ["hosta", "hostb"] {
        let body = json!({ "name": name, "im_mad": "kvm", "vmm_mad": "kvm", "tm_mad": "ssh" });
        let answer = send(
            "POST",
            &server.url("/v1/hosts"),
            admin(),
            Some(&body.to_string()),
        );
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
    for name in ["hosta", "hostb"] {
        wait_host(&server, name, "MONITORED");
    }

    // A blank 4 MiB raw disk: QEMU runs and sits in its BIOS.
    let blank = hosts.path().join("blank.img");
    let (ok, text) = run(
        "qemu-img",
        &["create", "-f", "raw", blank.to_str().expect("path"), "4M"],
    );
    assert!(ok, "qemu-img: {text}");
    let image = register_image(&server, "blank", &blank);
    let blank_image = image;

    let occi = occi_compute(&server, image);
    let ec2 = Client::new(&server, "realvm");
    let ami = ec2.image();
    let reply = ec2.post(&[
        ("Action", "RunInstances"),
        ("ImageId", &ami),
        ("InstanceType", "m1.small"),
        ("MinCount", "1"),
        ("MaxCount", "1"),
    ]);
    reply.assert_ok("RunInstancesResponse");
    let instance = reply.text("instanceId").expect("instanceId");
    let ec2_vm: u64 = instance
        .trim_start_matches("i-")
        .parse()
        .unwrap_or_else(|_| panic!("instance id {instance}"));

    for id in [occi, ec2_vm] {
        let v = wait_vm(&server, id, "runn");
        let deployment = fs::read_to_string(
            hosts
                .vm_files(v["host"].as_str().expect("host"), id)
                .join("deployment.0"),
        )
        .expect("deployment file");
        assert!(
            deployment.contains("<memory>32768</memory>"),
            "{deployment}"
        );
    }
    life_cycle(&hosts, &server, occi);
    life_cycle(&hosts, &server, ec2_vm);

    // shutdown (ACPI, then destroy: the BIOS ignores it) → done, nothing
    // left on either host.
    act(&server, occi, "shutdown", None);
    wait_vm(&server, occi, "done");
    assert_gone(&hosts, occi);
    ec2.post(&[
        ("Action", "TerminateInstances"),
        ("InstanceId.1", &instance),
    ])
    .assert_ok("TerminateInstancesResponse");
    wait_vm(&server, ec2_vm, "done");
    assert_gone(&hosts, ec2_vm);

    // A corrupt image: the deploy fails with libvirt's (QEMU's) message.
    let corrupt = hosts.path().join("corrupt.qcow2");
    fs::write(&corrupt, vec![0x5a; 64 * 1024]).expect("image");
    let image = register_image(&server, "corrupt", &corrupt);
    let body = json!({
        "template": format!(
            "NAME = corrupt\nCPU = 0.1\nMEMORY = 32\n\
             DISK = [ IMAGE_ID = {image}, DRIVER = qcow2 ]\n\
             REQUIREMENTS = \"NAME = \\\"hosta\\\"\""
        )
    });
    let answer = send(
        "POST",
        &server.url("/v1/vms"),
        admin(),
        Some(&body.to_string()),
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    let bad = answer.json()["id"].as_u64().expect("id");
    let v = wait_vm(&server, bad, "fail");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Could not create domain") && message.contains("qcow2"),
        "{v:#}"
    );
    assert!(!hosts.domains("hosta").contains(&format!("one-{bad}")));
    let answer = send(
        "DELETE",
        &server.url(&format!("/v1/vms/{bad}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    wait_vm(&server, bad, "done");
    assert_gone(&hosts, bad);

    // A VM running on hosta through the outage below.
    let body = json!({
        "template": format!(
            "NAME = outage\nCPU = 0.1\nMEMORY = 32\n\
             DISK = [ IMAGE_ID = {blank_image} ]\n\
             REQUIREMENTS = \"NAME = \\\"hosta\\\"\""
        )
    });
    let answer = send(
        "POST",
        &server.url("/v1/vms"),
        admin(),
        Some(&body.to_string()),
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    let through = answer.json()["id"].as_u64().expect("id");
    assert_runs_on(&hosts, &server, through, "hosta");

    // hosta's sshd stops: ERROR with ssh's message, its VM unknown (not
    // lost); back: MONITORED, and the VM running again.
    hosts.halt("hosta");
    let host = wait_host(&server, "hosta", "ERROR");
    assert!(
        host["error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot reach host hosta"),
        "{host}"
    );
    let v = wait_vm(&server, through, "unkn");
    assert_eq!(v["host"], "hosta", "{v:#}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot reach host hosta"),
        "{v:#}"
    );
    // hostb is not affected (MONITORED, or MONITORING at this moment).
    let b = host_state(&server, "hostb");
    assert!(
        b["state"]
            .as_str()
            .is_some_and(|s| s.starts_with("MONITOR")),
        "{b}"
    );
    hosts.resume("hosta");
    wait_host(&server, "hosta", "MONITORED");
    assert_runs_on(&hosts, &server, through, "hosta");
    let answer = send(
        "DELETE",
        &server.url(&format!("/v1/vms/{through}")),
        admin(),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    wait_vm(&server, through, "done");
    assert_gone(&hosts, through);
}
