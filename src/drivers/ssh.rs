//! The SSH transport: driver actions on real hosts through the system
//! OpenSSH client (spec/DRIVERS.md §0 "Transport" and "Remotes", §1.4;
//! STYLE.md §1.8).
//!
//! What lives here: [`Ssh`], a [`Transport`] that runs
//! [`Site::FrontEnd`] commands locally (through [`Local`], with
//! `CLOUDGATE_SSH` set so that TM scripts reach hosts over the same
//! connections) and [`Site::Host`] commands as
//! `ssh <options> -- <host> '<command>'`:
//!
//! - one master connection per host, reused by every action
//!   (`ControlMaster=auto`, `ControlPath=<data dir>/ssh/%C`,
//!   `ControlPersist`), `BatchMode=yes`, `ConnectTimeout`, and
//!   `StrictHostKeyChecking` from the config; the host name goes to ssh as
//!   it is, so `~/.ssh/config` aliases (Port, User, IdentityFile) work, and
//!   an ssh config file may replace `~/.ssh/config` ([`SshOptions::config_file`],
//!   `CLOUDGATE_SSH_CONFIG`);
//! - the command runs a script of the remotes copy on the host
//!   (`SCRIPTS_REMOTE_DIR`) only if that copy carries the content hash of the
//!   local `REMOTES_DIR` tree; otherwise it exits 42 (OpenNebula's "script
//!   missing"), the tree is copied (tar over ssh, swapped in whole, the hash
//!   written last) and the command runs once more. A host known to hold an
//!   older tree is synced before the action. So the remotes are copied before
//!   the first action on a host, whenever the local tree changes, and never
//!   when it is unchanged;
//! - at most `HOST_ACTION_LIMIT` actions run on one host at a time;
//! - a command that outlives its timeout is killed here (the ssh client's
//!   process group) and on the host (`timeout`, a little later);
//! - ssh's own failure (exit 255) is [`TransportError::Unreachable`]:
//!   "cannot reach host X: <ssh's message>".
//!
//! Which actions go through ssh is decided above this file (the driver's
//! placement, `registry.rs`): TM actions, `-l` local actions and the
//! `dummy` drivers run on the front-end; every other IM and VMM action runs
//! on its host through here.
//!
//! Knows nothing of VMs or drivers. May use: `super::transport`,
//! `super::locks`, std, `sha2`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::locks::Slots;
use super::transport::{Command, Exit, Local, Output, Program, Site, Transport, TransportError};

/// The file, in the remotes copy on a host, holding the content hash of the
/// tree it was copied from.
pub const HASH_FILE: &str = ".cloudgate-remotes";

/// The exit status meaning "the remote scripts are not there" (DRIVERS.md
/// §1.4 `RemotesCommand`).
pub const EXIT_SCRIPT_MISSING: i32 = 42;

/// The environment variable naming an ssh config file used instead of
/// `~/.ssh/config` (tests point it at their own file).
pub const CONFIG_ENV: &str = "CLOUDGATE_SSH_CONFIG";

/// How the SSH transport reaches hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshOptions {
    /// Directory of the master connections' sockets and of the `ssh`
    /// wrapper for front-end scripts (`<DATA_DIR>/ssh`).
    pub control_dir: PathBuf,
    /// `SCRIPTS_REMOTE_DIR`: where the remotes live on hosts.
    pub remote_dir: String,
    /// `SSH_CONNECT_TIMEOUT`: ssh's `ConnectTimeout`.
    pub connect_timeout: Duration,
    /// `SSH_HOST_KEY_POLICY`: ssh's `StrictHostKeyChecking` value
    /// (`accept-new`, `yes` or `no`).
    pub host_key_policy: String,
    /// How long an idle master connection stays (`ControlPersist`).
    pub control_persist: Duration,
    /// An ssh config file given to every ssh as `-F` (instead of
    /// `~/.ssh/config`).
    pub config_file: Option<PathBuf>,
    /// `HOST_ACTION_LIMIT`: actions run at once on one host.
    pub host_action_limit: u32,
    /// The ssh client program.
    pub program: PathBuf,
}

impl SshOptions {
    /// The defaults of `config/cloudgate.conf`: connect timeout 10 s,
    /// `accept-new`, masters kept 10 minutes, 8 actions per host, the ssh
    /// config file from `CLOUDGATE_SSH_CONFIG` if set.
    pub fn new(control_dir: impl Into<PathBuf>, remote_dir: impl Into<String>) -> Self {
        SshOptions {
            control_dir: control_dir.into(),
            remote_dir: remote_dir.into(),
            connect_timeout: Duration::from_secs(10),
            host_key_policy: "accept-new".to_owned(),
            control_persist: Duration::from_secs(600),
            config_file: std::env::var_os(CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            host_action_limit: 8,
            program: PathBuf::from("ssh"),
        }
    }
}

/// What the transport knows of one host.
struct HostState {
    /// `HOST_ACTION_LIMIT` slots.
    slots: Slots,
    /// The tree hash the host is known to hold (`None`: not known yet).
    synced: Mutex<Option<String>>,
    /// Serialises syncs of this host; the counter is bumped by each sync so
    /// that actions that failed with 42 at the same time sync once.
    sync_lock: Mutex<u64>,
    /// Copies done to this host.
    syncs: AtomicU64,
}

/// One file of the remotes tree as its stamp sees it: relative path, size,
/// modification time (seconds, nanoseconds) and mode.
type FileStamp = (String, u64, i64, i64, u32);

/// The local remotes tree: a cheap stamp (names, sizes, times, modes) and
/// the content hash and archive it stands for.
struct Tree {
    stamp: Vec<FileStamp>,
    hash: String,
    archive: Option<Arc<Vec<u8>>>,
}

/// The SSH transport (see the module docs).
pub struct Ssh {
    local: Local,
    options: SshOptions,
    /// `ControlPath` (with `%C`).
    control_path: String,
    /// The `ssh` wrapper front-end scripts get as `CLOUDGATE_SSH`.
    wrapper: PathBuf,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
    tree: Mutex<Option<Tree>>,
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ssh {
    /// The transport: `local` runs front-end commands and the ssh clients
    /// (its remotes directory is the tree copied to hosts). Creates the
    /// control directory (mode 0700) and the `ssh` wrapper in it.
    pub fn new(local: Local, options: SshOptions) -> io::Result<Self> {
        fs::create_dir_all(&options.control_dir)?;
        fs::set_permissions(&options.control_dir, fs::Permissions::from_mode(0o700))?;
        let dir = fs::canonicalize(&options.control_dir)?;
        // A unix socket path has ~108 bytes, and ssh adds a 17-byte suffix
        // while it creates one: a deep data dir gets its sockets in /tmp.
        let control_path = if dir.as_os_str().len() <= 48 {
            format!("{}/%C", dir.display())
        } else {
            let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
            let short = PathBuf::from(format!("/tmp/cloudgate-ssh-{}", hex::encode(&digest[..6])));
            fs::create_dir_all(&short)?;
            fs::set_permissions(&short, fs::Permissions::from_mode(0o700))?;
            format!("{}/%C", short.display())
        };
        let ssh = Ssh {
            local,
            options,
            control_path,
            wrapper: dir.join("ssh"),
            hosts: Mutex::new(HashMap::new()),
            tree: Mutex::new(None),
        };
        ssh.write_wrapper()?;
        Ok(ssh)
    }

    /// The options it was built with.
    pub fn options(&self) -> &SshOptions {
        &self.options
    }

    /// The `ssh` options placed before the host on every command line.
    pub fn ssh_options(&self) -> Vec<String> {
        let o = &self.options;
        let mut args = Vec::new();
        if let Some(file) = &o.config_file {
            args.push("-F".to_owned());
            args.push(file.display().to_string());
        }
        let mut opt = |value: String| {
            args.push("-o".to_owned());
            args.push(value);
        };
        opt("BatchMode=yes".to_owned());
        opt(format!(
            "ConnectTimeout={}",
            o.connect_timeout.as_secs().max(1)
        ));
        opt(format!("StrictHostKeyChecking={}", o.host_key_policy));
        opt("ControlMaster=auto".to_owned());
        opt(format!("ControlPath={}", self.control_path));
        opt(format!(
            "ControlPersist={}",
            o.control_persist.as_secs().max(1)
        ));
        // A master whose peer vanished (host down, link cut) is noticed in
        // about 45 s instead of hanging until TCP gives up.
        opt("ServerAliveInterval=15".to_owned());
        opt("ServerAliveCountMax=3".to_owned());
        args.push("-T".to_owned());
        args
    }

    /// The whole ssh command line (without the program) running `remote`
    /// on `host`.
    pub fn ssh_args(&self, host: &str, remote: &str) -> Vec<String> {
        let mut args = self.ssh_options();
        args.push("--".to_owned());
        args.push(host.to_owned());
        args.push(remote.to_owned());
        args
    }

    /// Writes `<control dir>/ssh`: `exec ssh <options> "$@"`.
    fn write_wrapper(&self) -> io::Result<()> {
        let mut text = String::from(
            "#!/bin/sh\n# Written by cloudgate: ssh with the options and master \
             connections of its SSH transport.\nexec ",
        );
        text.push_str(&sh_quote(&self.options.program.display().to_string()));
        for arg in self.ssh_options() {
            text.push(' ');
            text.push_str(&sh_quote(&arg));
        }
        text.push_str(" \"$@\"\n");
        let tmp = self.wrapper.with_extension("tmp");
        fs::write(&tmp, text)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
        fs::rename(&tmp, &self.wrapper)
    }

    /// The `ssh` wrapper front-end scripts get as `CLOUDGATE_SSH`.
    pub fn wrapper(&self) -> &Path {
        &self.wrapper
    }

    /// The content hash of the local remotes tree (recomputed only when a
    /// file's name, size, time or mode changed).
    pub fn tree_hash(&self) -> io::Result<String> {
        Ok(self.tree()?.0)
    }

    /// The tree's hash, and its archive when `archive` is asked for.
    fn tree(&self) -> io::Result<(String, Option<Arc<Vec<u8>>>)> {
        self.tree_with(false)
    }

    fn tree_with(&self, archive: bool) -> io::Result<(String, Option<Arc<Vec<u8>>>)> {
        let root = self.local.remotes();
        let stamp = stamp(root)?;
        let mut tree = lock(&self.tree);
        let fresh = tree.as_ref().is_some_and(|t| t.stamp == stamp);
        if !fresh {
            *tree = Some(Tree {
                hash: content_hash(root, &stamp)?,
                stamp,
                archive: None,
            });
        }
        let tree = tree.as_mut().expect("set above");
        if archive && tree.archive.is_none() {
            tree.archive = Some(Arc::new(tar(root)?));
        }
        Ok((tree.hash.clone(), tree.archive.clone()))
    }

    fn host(&self, host: &str) -> Arc<HostState> {
        let mut hosts = lock(&self.hosts);
        Arc::clone(hosts.entry(host.to_owned()).or_insert_with(|| {
            Arc::new(HostState {
                slots: Slots::new(self.options.host_action_limit.max(1)),
                synced: Mutex::new(None),
                sync_lock: Mutex::new(0),
                syncs: AtomicU64::new(0),
            })
        }))
    }

    /// How many times the remotes were copied to `host`.
    pub fn syncs(&self, host: &str) -> u64 {
        lock(&self.hosts)
            .get(host)
            .map_or(0, |h| h.syncs.load(Ordering::SeqCst))
    }

    /// The tree hash `host` is known to hold, if known.
    pub fn synced_hash(&self, host: &str) -> Option<String> {
        let state = lock(&self.hosts).get(host).cloned()?;
        let hash = lock(&state.synced).clone();
        hash
    }

    /// Copies the remotes tree to `host` now (as before a first action).
    pub fn sync(&self, host: &str, timeout: Duration) -> Result<(), TransportError> {
        check_host(host)?;
        let state = self.host(host);
        let generation = *lock(&state.sync_lock);
        self.sync_host(host, &state, generation, timeout)
    }

    /// Copies the tree unless another thread synced since `seen` (the sync
    /// generation when the caller decided to sync).
    fn sync_host(
        &self,
        host: &str,
        state: &HostState,
        seen: u64,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let mut generation = lock(&state.sync_lock);
        if *generation != seen {
            return Ok(());
        }
        let (hash, archive) = self.tree_with(true).map_err(|e| TransportError::Io {
            program: format!("tar of {}", self.local.remotes().display()),
            source: e,
        })?;
        let archive = archive.expect("asked for");
        let d = sh_quote(&self.options.remote_dir);
        // Unpacked beside the old copy and swapped in, the hash written
        // before the swap: an action never sees a half-copied tree. Hosts
        // sharing the directory (one machine, two names) take turns.
        let remote = format!(
            "set -e; umask 022; D={d}; mkdir -p \"$(dirname \"$D\")\"; \
             if command -v flock >/dev/null 2>&1; then exec 9>\"$D.lock\"; flock -w 120 9; fi; \
             T=$(mktemp -d \"$D.new.XXXXXX\"); tar -C \"$T\" --no-same-owner -xf -; \
             printf '%s\\n' {hash} > \"$T/{HASH_FILE}\"; chmod 755 \"$T\"; \
             rm -rf \"$D.old\"; if [ -e \"$D\" ]; then mv \"$D\" \"$D.old\"; fi; \
             mv \"$T\" \"$D\"; rm -rf \"$D.old\"",
            hash = sh_quote(&hash)
        );
        let output = self.ssh(host, &remote, Some(archive.to_vec()), timeout)?;
        match output.exit {
            Exit::Code(0) => {
                *generation += 1;
                state.syncs.fetch_add(1, Ordering::SeqCst);
                *lock(&state.synced) = Some(hash);
                tracing::info!("copied the driver scripts to {host}");
                Ok(())
            }
            Exit::Code(255) => Err(unreachable(host, &output)),
            Exit::TimedOut => Err(TransportError::SyncFailed {
                host: host.to_owned(),
                message: format!("timed out after {} s", timeout.as_secs()),
            }),
            Exit::Code(_) | Exit::Signal(_) => Err(TransportError::SyncFailed {
                host: host.to_owned(),
                message: last_line(&output.stderr).unwrap_or_else(|| "-".to_owned()),
            }),
        }
    }

    /// Runs `remote` (shell text) on `host` with `stdin`.
    fn ssh(
        &self,
        host: &str,
        remote: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Output, TransportError> {
        let mut process = std::process::Command::new(&self.options.program);
        process.args(self.ssh_args(host, remote));
        self.local
            .execute(process, stdin, timeout, &format!("ssh {host}"))
    }

    /// Ends the master connection to `host`, if any.
    pub fn close(&self, host: &str) {
        if check_host(host).is_err() {
            return;
        }
        let mut args = self.ssh_options();
        args.extend([
            "-O".to_owned(),
            "exit".to_owned(),
            "--".to_owned(),
            host.to_owned(),
        ]);
        // Talks to the local socket only; quick, and a missing master is
        // the outcome we want anyway.
        let _ = std::process::Command::new(&self.options.program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// The shell text run on the host for `command` (see the module docs).
    pub fn remote_command(&self, command: &Command, hash: &str) -> String {
        let mut text = String::new();
        let program = match &command.program {
            Program::Script(relative) => {
                let _ = write!(
                    text,
                    "D={}; S=\"$D/\"{}; \
                     if {{ read -r h < \"$D/{HASH_FILE}\"; }} 2>/dev/null && [ \"$h\" = {} ] \
                     && [ -x \"$S\" ]; then :; else exit {EXIT_SCRIPT_MISSING}; fi; ",
                    sh_quote(&self.options.remote_dir),
                    sh_quote(&relative.display().to_string()),
                    sh_quote(hash)
                );
                "\"$S\"".to_owned()
            }
            Program::Path(path) => sh_quote(&path.display().to_string()),
        };
        for (name, value) in &command.env {
            if is_env_name(name) {
                let _ = write!(text, "{name}={}; export {name}; ", sh_quote(value));
            }
        }
        let mut call = program;
        for arg in &command.args {
            call.push(' ');
            call.push_str(&sh_quote(arg));
        }
        // The host ends the command shortly after we give up on it, so
        // nothing is left running there.
        let limit = command.timeout.as_secs() + 2;
        let _ = write!(
            text,
            "if command -v timeout >/dev/null 2>&1; then exec timeout -k 5 {limit} {call}; fi; \
             exec {call}"
        );
        text
    }

    /// Runs a command on a host: see the module docs.
    fn run_on_host(&self, host: &str, command: &Command) -> Result<Output, TransportError> {
        check_host(host)?;
        let state = self.host(host);
        let _slot = state.slots.take();
        let is_script = matches!(command.program, Program::Script(_));
        let tree_error = |e| TransportError::Io {
            program: format!("hash of {}", self.local.remotes().display()),
            source: e,
        };
        let hash = if is_script {
            self.tree_hash().map_err(tree_error)?
        } else {
            String::new()
        };
        // A host known to hold another tree is synced first, saving the
        // round trip that would only answer 42.
        let known = lock(&state.synced).clone();
        if is_script && known.as_ref().is_some_and(|k| *k != hash) {
            let seen = *lock(&state.sync_lock);
            self.sync_host(host, &state, seen, command.timeout)?;
        }
        let mut retried = false;
        let mut reconnected = false;
        loop {
            let seen = *lock(&state.sync_lock);
            let remote = self.remote_command(command, &hash);
            let output = self.ssh(host, &remote, command.stdin.clone(), command.timeout)?;
            match output.exit {
                // The master connection died under us (the host went
                // down): once more without it, for ssh's own message.
                Exit::Code(255) if !reconnected && stale_master(&output) => {
                    reconnected = true;
                    tracing::info!("the master connection to {host} broke: reconnecting");
                    self.close(host);
                }
                Exit::Code(255) => return Err(unreachable(host, &output)),
                Exit::Code(code) if is_script && is_missing(code, &output, command) => {
                    if retried {
                        return Err(TransportError::NotFound(format!(
                            "{} on {host}",
                            command.program
                        )));
                    }
                    retried = true;
                    tracing::info!(
                        "{} missing or outdated on {host}: copying the driver scripts",
                        command.program
                    );
                    self.sync_host(host, &state, seen, command.timeout)?;
                }
                Exit::Code(127) if !is_script && is_missing(127, &output, command) => {
                    return Err(TransportError::NotFound(format!(
                        "{} on {host}",
                        command.program
                    )));
                }
                _ => {
                    if is_script {
                        // The check on the host passed: it holds this tree.
                        *lock(&state.synced) = Some(hash);
                    }
                    return Ok(output);
                }
            }
        }
    }
}

impl Transport for Ssh {
    fn run(&self, site: &Site, command: &Command) -> Result<Output, TransportError> {
        match site {
            Site::FrontEnd => {
                let mut command = command.clone();
                command.env.push((
                    "CLOUDGATE_SSH".to_owned(),
                    self.wrapper.display().to_string(),
                ));
                command.env.push((
                    "CLOUDGATE_SSH_OPTS".to_owned(),
                    self.ssh_options().join(" "),
                ));
                self.local.run(site, &command)
            }
            Site::Host(host) => self.run_on_host(host, command),
        }
    }
}

impl Drop for Ssh {
    /// Ends the master connections this transport opened, so none outlives
    /// it by `ControlPersist`.
    fn drop(&mut self) {
        let hosts: Vec<String> = lock(&self.hosts).keys().cloned().collect();
        for host in hosts {
            self.close(&host);
        }
    }
}

/// Whether a failed run means "the script is not there": our own 42, or
/// the shell's 127 naming the script (a file there but not runnable, such
/// as a bad interpreter line). A 127 from inside a script (a command it
/// runs is missing) is the script's failure, not a reason to copy.
fn is_missing(code: i32, output: &Output, command: &Command) -> bool {
    match code {
        EXIT_SCRIPT_MISSING => matches!(command.program, Program::Script(_)),
        127 => {
            let name = match &command.program {
                Program::Script(p) | Program::Path(p) => p.display().to_string(),
            };
            let stderr = String::from_utf8_lossy(&output.stderr);
            stderr
                .lines()
                .any(|l| l.contains(&name) && l.contains("not found"))
        }
        _ => false,
    }
}

/// Whether ssh failed talking to its master connection before asking it
/// for a session (`mux_client_request_alive: write packet: Broken pipe`
/// while the master is dying): the command did not run, the host was not
/// tried. A failure later in the session is not this (the command may
/// have run).
fn stale_master(output: &Output) -> bool {
    last_line(&output.stderr).is_some_and(|l| {
        l.starts_with("mux_client_request_alive") || l.starts_with("mux_client_hello_exchange")
    })
}

/// ssh's exit 255 as an error with its message.
fn unreachable(host: &str, output: &Output) -> TransportError {
    TransportError::Unreachable {
        host: host.to_owned(),
        message: last_line(&output.stderr).unwrap_or_else(|| "ssh exited with 255".to_owned()),
    }
}

/// The last non-empty line of `bytes`, trimmed.
fn last_line(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_owned)
}

/// A host name ssh takes as a destination and nothing else: not empty, no
/// leading `-` (an option), no blanks or control characters.
fn check_host(host: &str) -> Result<(), TransportError> {
    let bad = host.is_empty()
        || host.starts_with('-')
        || host.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad {
        return Err(TransportError::Unreachable {
            host: host.to_owned(),
            message: "not a valid ssh host name".to_owned(),
        });
    }
    Ok(())
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `s` as one shell word: single-quoted unless it is plainly safe.
pub fn sh_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Every file under `root`, sorted, with what changes when it is edited:
/// size, modification time (seconds and nanoseconds) and mode.
fn stamp(root: &Path) -> io::Result<Vec<FileStamp>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<FileStamp>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let meta = fs::metadata(&path)?;
            if meta.is_dir() {
                walk(root, &path, out)?;
            } else if meta.is_file() {
                let relative = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                out.push((
                    relative,
                    meta.len(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                    meta.mode(),
                ));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

/// SHA-256 over every file's path, executable bit and content, in stamp
/// order (times are left out: a touched but unchanged tree is not copied).
fn content_hash(root: &Path, stamp: &[FileStamp]) -> io::Result<String> {
    let mut hasher = Sha256::new();
    for (relative, _, _, _, mode) in stamp {
        let content = fs::read(root.join(relative))?;
        hasher.update(relative.as_bytes());
        hasher.update([0, u8::from(mode & 0o111 != 0), 0]);
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(&content);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The tree as a tar archive (the system `tar`).
fn tar(root: &Path) -> io::Result<Vec<u8>> {
    let output = std::process::Command::new("tar")
        .arg("-C")
        .arg(root)
        .args(["-cf", "-", "."])
        .stdin(std::process::Stdio::null())
        .output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "tar failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests;
