//! The SSH transport's cost (issue 6, "Speed"): per-action overhead with
//! the reused master connection against a fresh `ssh` per action (the
//! ratio), monitoring N hosts with the kvm probes (wall and CPU time per
//! cycle), and deploy-to-running of a tiny domain on the kvm driver.
//!
//! Everything runs against a private sshd on a loopback port started here
//! (keys and an ssh config with N aliases `h0`… made in a temp dir), so it
//! needs `sshd`, `ssh`, `ssh-keygen`, and libvirt for the deploy figure;
//! what is missing is skipped with a note. Prints figures, asserts nothing.
//!
//! Run: `cargo bench --bench ssh` (`--profile dev` skips the optimised
//! build); `CLOUDGATE_BENCH_HOSTS=N` changes the fleet (100).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cloudgate::core::ports::{
    DeployRequest, DomainRequest, Drivers, MonitorRequest, ScriptEnv, VmmTarget,
};
use cloudgate::drivers::{
    kvm, Class, Command as Action, Deployment, DriverSpec, Local, Program, Registry, ScriptDrivers,
    Site, Ssh, SshOptions, Transport,
};

const ACTIONS: usize = 50;
const FRESH: usize = 20;

fn main() {
    // `cargo test` builds benches too; only `cargo bench` passes --bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let missing: Vec<&str> = ["sshd", "ssh", "ssh-keygen"]
        .into_iter()
        .filter(|t| {
            !["/usr/sbin", "/usr/bin"]
                .iter()
                .any(|d| Path::new(d).join(t).exists())
        })
        .collect();
    if !missing.is_empty() {
        println!("ssh bench skipped: missing {}", missing.join(", "));
        return;
    }
    let hosts: usize = std::env::var("CLOUDGATE_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let rig = Rig::start(hosts);
    let remotes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/remotes");
    let ssh = Arc::new(Ssh::new(Local::new(&remotes), rig.options("ctl")).expect("ssh transport"));

    per_action(&rig, &ssh);
    monitoring(&rig, &ssh, hosts);
    deploy(&ssh);
}

/// Per-action overhead: a no-op action through the transport (master
/// reused, tree hash checked on the host) against `ssh` with no master.
fn per_action(rig: &Rig, ssh: &Arc<Ssh>) {
    let noop = Action {
        program: Program::Path(PathBuf::from("/bin/true")),
        args: Vec::new(),
        stdin: None,
        env: Vec::new(),
        timeout: Duration::from_secs(30),
    };
    let script = Action {
        program: Program::Script(PathBuf::from("im/run_probes")),
        args: vec!["dummy".into(), "0".into(), "h0".into()],
        ..noop.clone()
    };
    let site = Site::Host("h0".into());
    // Warm up: the master connection and the remotes copy.
    let _ = ssh.run(&site, &script);
    let started = Instant::now();
    for _ in 0..ACTIONS {
        ssh.run(&site, &noop).expect("action");
    }
    let reused = started.elapsed() / ACTIONS as u32;
    let started = Instant::now();
    for _ in 0..ACTIONS {
        let _ = ssh.run(&site, &script).expect("script action");
    }
    let scripted = started.elapsed() / ACTIONS as u32;

    let started = Instant::now();
    for _ in 0..FRESH {
        let status = Command::new("ssh")
            .arg("-F")
            .arg(rig.config())
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "ControlMaster=no",
                "-o",
                "ControlPath=none",
            ])
            .args(["-T", "--", "h0", "/bin/true"])
            .stdin(Stdio::null())
            .status()
            .expect("ssh");
        assert!(status.success(), "fresh ssh failed");
    }
    let fresh = started.elapsed() / FRESH as u32;
    println!("per-action overhead ({ACTIONS} actions, loopback sshd):");
    println!(
        "  reused master connection  {:>8.2} ms  (/bin/true)",
        ms(reused)
    );
    println!(
        "  reused, driver script     {:>8.2} ms  (tree hash check + run_probes dummy)",
        ms(scripted)
    );
    println!(
        "  fresh ssh per action      {:>8.2} ms  ({FRESH} actions)",
        ms(fresh)
    );
    println!(
        "  ratio fresh / reused      {:>8.1}x",
        fresh.as_secs_f64() / reused.as_secs_f64()
    );
}

/// Monitoring every host once per cycle, as the core does: up to the IM
/// driver's 15 at a time.
fn monitoring(rig: &Rig, _ssh: &Arc<Ssh>, hosts: usize) {
    let remotes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/remotes");
    let ssh = Ssh::new(Local::new(&remotes), rig.options("ctl-mon")).expect("ssh");
    let mut registry = Registry::new();
    registry
        .add(DriverSpec::new(Class::Im, "im_kvm", "kvm"))
        .expect("im");
    let drivers = Arc::new(ScriptDrivers::new(registry, Arc::new(ssh)));
    println!("monitoring {hosts} hosts (kvm probes, 15 at a time):");
    for cycle in 1..=3 {
        let cpu = cpu_ticks();
        let started = Instant::now();
        let workers: Vec<_> = (0..hosts)
            .map(|i| {
                let drivers = Arc::clone(&drivers);
                thread::spawn(move || {
                    drivers.monitor(&MonitorRequest {
                        host_id: i as u64,
                        host: format!("h{i}"),
                        driver: "im_kvm".into(),
                        env: ScriptEnv::new(),
                    })
                })
            })
            .collect();
        let mut failed = 0;
        for w in workers {
            let outcome = match w.join() {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("panicked".to_string()),
            };
            if let Some(e) = outcome {
                if failed == 0 {
                    println!("  first failure: {e}");
                }
                failed += 1;
            }
        }
        let wall = started.elapsed();
        let cpu = cpu_ticks() - cpu;
        println!(
            "  cycle {cycle}{}: wall {:>7.0} ms, CPU {:>6.0} ms here + {:>6.0} ms machine-wide, \
             {failed} failed",
            if cycle == 1 { " (connect + copy)" } else { "" },
            ms(wall),
            cpu.0 * 10.0,
            cpu.1 * 10.0,
        );
    }
}

/// Deploy of a 16 MiB domain through the kvm driver until libvirt runs it,
/// then cancel.
fn deploy(ssh: &Arc<Ssh>) {
    let up = Command::new("virsh")
        .args(["-c", "qemu:///system", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !up {
        println!("deploy-to-running skipped: libvirt does not answer");
        return;
    }
    let mut registry = Registry::new();
    let mut vmm = DriverSpec::new(Class::Vmm, "vmm_kvm", "kvm");
    vmm.deployment = Deployment::Kvm(kvm::built_in_defaults());
    registry.add(vmm).expect("vmm");
    let drivers = ScriptDrivers::new(registry, Arc::new(Shared(Arc::clone(ssh))));
    let dir = tempfile::tempdir().expect("tmp");
    println!("deploy to running (16 MiB domain, kvm driver over ssh):");
    for run in 0..3u64 {
        let vm_id = 4_200_000 + u64::from(std::process::id() % 10_000) * 10 + run;
        let target = VmmTarget {
            vm_id,
            host: "h0".into(),
            driver: "vmm_kvm".into(),
            env: ScriptEnv::new(),
        };
        let started = Instant::now();
        let deployed = drivers.deploy(&DeployRequest {
            target: target.clone(),
            remote_file: dir
                .path()
                .join(format!("{vm_id}/deployment.0"))
                .display()
                .to_string(),
            deployment: "MEMORY = 16\nCPU = 0.1\nOS = [ BOOT = hd ]\n".into(),
        });
        let took = started.elapsed();
        match deployed {
            Ok(id) => {
                println!("  run {run}: {:>7.0} ms", ms(took));
                let _ = drivers.cancel(&DomainRequest {
                    target,
                    deploy_id: id,
                });
            }
            Err(e) => println!("  run {run}: failed: {e}"),
        }
    }
}

/// An `Arc<Ssh>` as a transport.
struct Shared(Arc<Ssh>);

impl Transport for Shared {
    fn run(
        &self,
        site: &Site,
        command: &Action,
    ) -> Result<cloudgate::drivers::Output, cloudgate::drivers::TransportError> {
        self.0.run(site, command)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// (this process and its reaped children, the whole machine) in clock
/// ticks (1/100 s).
fn cpu_ticks() -> CpuTicks {
    let own = fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_owned();
            let f: Vec<f64> = rest
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            // utime, stime, cutime, cstime: fields 14–17, here 11–14.
            Some(f.get(11)? + f.get(12)? + f.get(13)? + f.get(14)?)
        })
        .unwrap_or(0.0);
    let machine = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?.to_owned();
            let f: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|w| w.parse().ok())
                .collect();
            // Everything but idle and iowait.
            Some(f.iter().sum::<f64>() - f.get(3)? - f.get(4)?)
        })
        .unwrap_or(0.0);
    CpuTicks(own, machine)
}

#[derive(Clone, Copy)]
struct CpuTicks(f64, f64);

impl std::ops::Sub for CpuTicks {
    type Output = CpuTicks;
    fn sub(self, other: CpuTicks) -> CpuTicks {
        CpuTicks(self.0 - other.0, self.1 - other.1)
    }
}

/// The private sshd and its client files.
struct Rig {
    dir: tempfile::TempDir,
    child: Child,
}

impl Rig {
    fn start(hosts: usize) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        for key in ["host_key", "id"] {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ssh-keygen");
        }
        fs::copy(d.join("id.pub"), d.join("authorized_keys")).expect("keys");
        fs::set_permissions(d.join("authorized_keys"), fs::Permissions::from_mode(0o600))
            .expect("chmod");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n\
                 PasswordAuthentication no\nPermitRootLogin prohibit-password\n\
                 StrictModes no\nUsePAM no\nMaxStartups 400:30:800\nMaxSessions 400\n\
                 LogLevel ERROR\nSetEnv SHLVL=1\n",
                d = d.display()
            ),
        )
        .expect("sshd_config");
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let mut config = String::new();
        for i in 0..hosts.max(1) {
            config.push_str(&format!(
                "Host h{i}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
                 IdentityFile {d}/id\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  \
                 StrictHostKeyChecking no\n  LogLevel ERROR\n",
                d = d.display()
            ));
        }
        fs::write(d.join("ssh_config"), config).expect("ssh_config");
        fs::create_dir_all("/run/sshd").ok();
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .process_group(0)
            .spawn()
            .expect("sshd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start");
            thread::sleep(Duration::from_millis(50));
        }
        Rig { dir, child }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    fn options(&self, control: &str) -> SshOptions {
        let mut options = SshOptions::new(
            self.dir.path().join(control),
            self.dir.path().join("remote").display().to_string(),
        );
        options.config_file = Some(self.config());
        options
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // The transports closed their masters; end the daemon.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
