//! Running one command somewhere: the transport under the action protocol
//! (STYLE.md §1.8, spec/DRIVERS.md §0 "Transport", §1.4 styles 1–4).
//!
//! What lives here: the [`Transport`] trait (program, arguments, stdin,
//! environment and timeout in; exit, stdout and stderr out) and [`Local`],
//! which runs everything on this machine in its own process group and kills
//! the whole group on timeout. The SSH transport (`ssh.rs`: one reused
//! ControlMaster connection per host, remotes synced on exit 42) implements
//! the same trait and runs `ssh` through [`Local`]'s process handling.
//!
//! Knows nothing of VMs, drivers or actions. May use: std and `nix` only.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::spawner;

/// Where a command runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Site {
    /// On the front-end, the machine cloudgate runs on (TM scripts, local
    /// actions, local hooks).
    FrontEnd,
    /// On a host, by the name ssh connects to.
    Host(String),
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::FrontEnd => f.write_str("front-end"),
            Site::Host(host) => f.write_str(host),
        }
    }
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A driver script by its path relative to the remotes directory
    /// (`vmm/kvm/deploy`); the transport knows where the remotes are on
    /// each side (`REMOTES_DIR` here, `SCRIPTS_REMOTE_DIR` on hosts).
    Script(PathBuf),
    /// An absolute path (hooks).
    Path(PathBuf),
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Program::Script(path) | Program::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// One command to run.
#[derive(Clone, Debug)]
pub struct Command {
    /// The program.
    pub program: Program,
    /// Its arguments, each one argv element (no shell re-splitting).
    pub args: Vec<String>,
    /// Written to its stdin, which is then closed; `None`: stdin is
    /// `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// Environment variables added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// How long it may run, output included.
    pub timeout: Duration,
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal it did not send itself to ended it.
    Signal(i32),
    /// It outlived its timeout and was killed.
    TimedOut,
}

/// What a command left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub exit: Exit,
    /// Its standard output, the first [`Local::output_cap`] bytes.
    pub stdout: Vec<u8>,
    /// Its standard error, the last [`Local::output_cap`] bytes (the end is
    /// where the error is).
    pub stderr: Vec<u8>,
}

/// Why a command could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The program is not there, or not executable (OpenNebula's exit 42).
    #[error("{0} not found or not executable")]
    NotFound(String),
    /// ssh could not reach the host (its exit 255): the host name and
    /// ssh's own message.
    #[error("cannot reach host {host}: {message}")]
    Unreachable {
        /// The host, as ssh was given it.
        host: String,
        /// What ssh said (its last stderr line).
        message: String,
    },
    /// The driver scripts could not be copied to the host.
    #[error("cannot copy the driver scripts to host {host}: {message}")]
    SyncFailed {
        /// The host.
        host: String,
        /// Why (the copy's last stderr line).
        message: String,
    },
    /// Starting or watching the process failed.
    #[error("cannot run {program}: {source}")]
    Io {
        /// The program.
        program: String,
        /// What the system said.
        source: io::Error,
    },
}

/// Runs commands. Implementations must be usable from many threads at once.
pub trait Transport: Send + Sync {
    /// Runs `command` at `site` and waits for it (at most its timeout plus
    /// a short grace for killing it).
    fn run(&self, site: &Site, command: &Command) -> Result<Output, TransportError>;
}

/// Runs every command on this machine, whatever the site: the transport for
/// the front-end, and for every host until SSH exists (the dummy drivers'
/// hosts are not real anyway).
///
/// Each command is the leader of its own process group, so that a timeout
/// kills what it started too: SIGTERM to the group, then SIGKILL after
/// [`grace`](Self::grace).
#[derive(Clone, Debug)]
pub struct Local {
    remotes: PathBuf,
    grace: Duration,
    output_cap: usize,
}

impl Local {
    /// Default time between SIGTERM and SIGKILL on a timeout.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);
    /// Default bytes kept of each of stdout and stderr.
    pub const DEFAULT_OUTPUT_CAP: usize = 1 << 20;

    /// A local transport finding driver scripts under `remotes`
    /// (`REMOTES_DIR`).
    pub fn new(remotes: impl Into<PathBuf>) -> Self {
        Local {
            remotes: remotes.into(),
            grace: Self::DEFAULT_GRACE,
            output_cap: Self::DEFAULT_OUTPUT_CAP,
        }
    }

    /// Sets the time between SIGTERM and SIGKILL on a timeout.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets how many bytes of stdout (the first) and stderr (the last) are
    /// kept; the rest is read and dropped so the command never blocks.
    pub fn output_cap(mut self, bytes: usize) -> Self {
        self.output_cap = bytes.max(1);
        self
    }

    /// The remotes directory scripts are found in.
    pub fn remotes(&self) -> &Path {
        &self.remotes
    }

    /// The file `program` names, if it is an executable file.
    fn resolve(&self, program: &Program) -> Result<PathBuf, TransportError> {
        let path = match program {
            Program::Script(relative) => self.remotes.join(relative),
            Program::Path(path) => path.clone(),
        };
        let executable = std::fs::metadata(&path)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        if executable {
            Ok(path)
        } else {
            Err(TransportError::NotFound(program.to_string()))
        }
    }
}

impl Transport for Local {
    fn run(&self, _site: &Site, command: &Command) -> Result<Output, TransportError> {
        let path = self.resolve(&command.program)?;
        let mut process = std::process::Command::new(&path);
        process
            .args(&command.args)
            .envs(command.env.iter().map(|(k, v)| (k, v)));
        self.execute(
            process,
            command.stdin.clone(),
            command.timeout,
            &command.program.to_string(),
        )
    }
}

impl Local {
    /// Runs a prepared process (its program, arguments and environment set)
    /// with `stdin`, in its own process group, within `timeout`, keeping
    /// capped output. The SSH transport runs `ssh` through this too, so a
    /// timeout kills the ssh client the same way; `what` names the program
    /// in errors.
    ///
    /// The calling thread feeds stdin and reads both outputs itself (see
    /// [`Pipes`]): no thread is started per command.
    pub(super) fn execute(
        &self,
        mut process: std::process::Command,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
        what: &str,
    ) -> Result<Output, TransportError> {
        let io_error = |source| TransportError::Io {
            program: what.to_owned(),
            source,
        };
        process
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: a timeout must reach the children it started.
            .process_group(0);
        // Below the server's priority (see spawner.rs).
        let mut child = spawner::spawn(process).map_err(io_error)?;
        let deadline = Instant::now() + timeout;
        let group = match i32::try_from(child.id()) {
            Ok(pid) => Pid::from_raw(pid),
            Err(_) => {
                let _ = child.kill();
                reap_later(child);
                return Err(io_error(io::Error::other("process id out of range")));
            }
        };
        // Watching it failed: nothing it does can be reported any more.
        let abandon = |child: Child, e: io::Error| {
            let _ = killpg(group, Signal::SIGKILL);
            reap_later(child);
            Err(io_error(e))
        };
        let mut pipes = Pipes::new(&mut child, stdin, self.output_cap);

        // The output is complete when every process holding the pipes has
        // closed them: normally the command exiting. A command still
        // running at the deadline is killed; so is a background child it
        // left holding the pipes (the command itself may have exited).
        let closed = match pipes.pump(deadline) {
            Ok(closed) => closed,
            Err(e) => return abandon(child, e),
        };
        let exit = if closed {
            match wait_until(&mut child, deadline) {
                Ok(Some(status)) => exit_of(status),
                // It closed its outputs but kept running.
                Ok(None) => {
                    self.kill_group(group, child);
                    Exit::TimedOut
                }
                Err(e) => return abandon(child, e),
            }
        } else {
            self.kill_group(group, child);
            // What the killed processes wrote last; the pipes close as
            // they die.
            let _ = pipes.pump(Instant::now() + self.grace);
            Exit::TimedOut
        };
        let (stdout, stderr) = pipes.finish();
        Ok(Output {
            exit,
            stdout,
            stderr,
        })
    }

    /// Ends a command that outlived its timeout: SIGTERM to its group, up
    /// to `grace` for the leader to go, then SIGKILL to whatever is left
    /// of the group (children that ignored or survived the SIGTERM).
    fn kill_group(&self, group: Pid, mut child: Child) {
        // ESRCH (the group is already gone) is the outcome we want anyway.
        let _ = killpg(group, Signal::SIGTERM);
        let leader_gone = matches!(
            wait_until(&mut child, Instant::now() + self.grace),
            Ok(Some(_))
        );
        let _ = killpg(group, Signal::SIGKILL);
        if !leader_gone {
            // SIGKILL cannot be ignored; the bound only guards against a
            // process stuck in the kernel (uninterruptible sleep).
            let bound = Instant::now() + self.grace.max(Duration::from_secs(1));
            if !matches!(wait_until(&mut child, bound), Ok(Some(_))) {
                reap_later(child);
            }
        }
    }
}

/// Waits for `child` to exit until `until`: `None` if it still runs then.
/// Used once its outputs have closed, when it has exited or is about to.
/// A process closes its files a moment before it becomes a zombie, so the
/// first check often comes too early: the wait is then a `poll` on a
/// pidfd, which wakes once, at the exit. Kernels without pidfds (before
/// 5.3) get checks a few microseconds apart that back off from there.
fn wait_until(child: &mut Child, until: Instant) -> io::Result<Option<ExitStatus>> {
    if let Some(status) = child.try_wait()? {
        return Ok(Some(status));
    }
    let pidfd = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        });
    let mut pause = Duration::from_micros(20);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        match &pidfd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, poll_timeout(left)) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                thread::sleep(pause.min(left));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }
}

/// `left` as a poll timeout: rounded up, so the last fraction of a
/// millisecond is waited for, not spun on; longer waits are split into
/// several polls.
fn poll_timeout(left: Duration) -> PollTimeout {
    let millis = left.as_micros().div_ceil(1000);
    PollTimeout::from(u16::try_from(millis).unwrap_or(u16::MAX))
}

/// Reaps `child` whenever it ends, on a thread of its own: for the rare
/// command that outlives everything `execute` waits for, so it never
/// stays a zombie.
fn reap_later(mut child: Child) {
    if !matches!(child.try_wait(), Ok(Some(_))) {
        thread::spawn(move || {
            let _ = child.wait();
        });
    }
}

/// How a finished process ended.
fn exit_of(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        // Neither a code nor a signal does not happen on Unix.
        (None, None) => Exit::Code(-1),
    }
}

/// A running command's three pipes, served by the thread that waits for
/// it: stdin written as the command reads it, stdout and stderr read as
/// they fill, so the command never blocks on a full pipe. One `poll` loop
/// instead of a thread per pipe: starting and ending three or four
/// threads per command cost the server more CPU than its own work on
/// every driver action.
struct Pipes {
    stdin: Option<(ChildStdin, Vec<u8>)>,
    written: usize,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    out: Capped,
    err: Capped,
}

/// Which pipe a poll entry is.
#[derive(Clone, Copy)]
enum Pipe {
    In,
    Out,
    Err,
}

impl Pipes {
    /// Takes `child`'s pipes; `stdin` is what to write to its stdin.
    fn new(child: &mut Child, stdin: Option<Vec<u8>>, cap: usize) -> Self {
        Pipes {
            stdin: child
                .stdin
                .take()
                .zip(stdin)
                .filter(|(_, data)| !data.is_empty()),
            written: 0,
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            out: Capped::new(cap, Keep::Head),
            err: Capped::new(cap, Keep::Tail),
        }
    }

    /// Moves bytes until all three pipes are closed (`true`) or `until`
    /// passes (`false`). Stdin closes when all of it is written or the
    /// command closes its end (it exited, or does not want the rest).
    fn pump(&mut self, until: Instant) -> io::Result<bool> {
        loop {
            if self.stdin.is_none() && self.stdout.is_none() && self.stderr.is_none() {
                return Ok(true);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let timeout = poll_timeout(left);
            let mut ready = [None; 3];
            {
                let mut fds = Vec::with_capacity(3);
                let mut which = Vec::with_capacity(3);
                if let Some((pipe, _)) = &self.stdin {
                    fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLOUT));
                    which.push(Pipe::In);
                }
                if let Some(pipe) = &self.stdout {
                    fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
                    which.push(Pipe::Out);
                }
                if let Some(pipe) = &self.stderr {
                    fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
                    which.push(Pipe::Err);
                }
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
                for (slot, (fd, pipe)) in ready.iter_mut().zip(fds.iter().zip(which)) {
                    // Readiness, hang-up and error all mean "act now": the
                    // read or write says which.
                    if fd.revents().is_some_and(|r| !r.is_empty()) {
                        *slot = Some(pipe);
                    }
                }
            }
            for pipe in ready.into_iter().flatten() {
                match pipe {
                    Pipe::In => self.feed(),
                    Pipe::Out => drain(&mut self.stdout, &mut self.out),
                    Pipe::Err => drain(&mut self.stderr, &mut self.err),
                }
            }
        }
    }

    /// Writes the next piece of stdin; closes it when all is written or
    /// the command closed its end (EPIPE: it does not want the rest).
    fn feed(&mut self) {
        let Some((pipe, data)) = &mut self.stdin else {
            return;
        };
        // POLLOUT promises room for PIPE_BUF bytes: a write of at most
        // that much never blocks.
        const PIPE_BUF: usize = 4096;
        let end = data.len().min(self.written + PIPE_BUF);
        match pipe.write(&data[self.written..end]) {
            Ok(n) => self.written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(_) => self.written = data.len(),
        }
        if self.written == data.len() {
            self.stdin = None;
        }
    }

    /// The kept stdout and stderr.
    fn finish(self) -> (Vec<u8>, Vec<u8>) {
        (self.out.finish(), self.err.finish())
    }
}

/// Reads what `pipe` has (poll said it is readable, so this does not
/// block) into `kept`; closes the pipe at its end or on an error.
fn drain(pipe: &mut Option<impl Read>, kept: &mut Capped) {
    let Some(reader) = pipe else {
        return;
    };
    let mut chunk = [0u8; 8192];
    match reader.read(&mut chunk) {
        Ok(0) => *pipe = None,
        Ok(n) => kept.push(&chunk[..n]),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(_) => *pipe = None,
    }
}

/// Which part of an over-long stream is kept.
#[derive(Clone, Copy)]
enum Keep {
    /// The first bytes (an answer starts at the beginning).
    Head,
    /// The last bytes (an error message is at the end).
    Tail,
}

/// A stream's bytes, at most `cap` of them kept; the rest is read and
/// dropped so the command never blocks.
struct Capped {
    kept: Vec<u8>,
    cap: usize,
    keep: Keep,
}

impl Capped {
    fn new(cap: usize, keep: Keep) -> Self {
        Capped {
            kept: Vec::new(),
            cap,
            keep,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        match self.keep {
            Keep::Head => {
                let room = self.cap.saturating_sub(self.kept.len());
                self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Keep::Tail => {
                self.kept.extend_from_slice(bytes);
                // Trim in batches, not on every read.
                if self.kept.len() > 2 * self.cap {
                    self.kept.drain(..self.kept.len() - self.cap);
                }
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.kept.len() > self.cap {
            self.kept.drain(..self.kept.len() - self.cap);
        }
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::testutil::script;
    use std::fs;

    fn command(name: &str, args: &[&str], timeout: Duration) -> Command {
        Command {
            program: Program::Script(PathBuf::from(name)),
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin: None,
            env: Vec::new(),
            timeout,
        }
    }

    /// True when `pid` no longer runs: gone, or a zombie nobody reaped yet
    /// (containers whose init does not reap).
    fn is_gone(pid: i32) -> bool {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state == "Z" || state == "X"),
        }
    }

    fn wait_for_pid(file: &Path) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = fs::read_to_string(file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "the script never wrote its child's pid"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn runs_with_args_env_and_stdin() {
        let dir = tempfile::tempdir().expect("tempdir");
        script(
            dir.path(),
            "echo",
            "echo \"$1|$2|$GREETING\"; cat; echo oops >&2; exit 3",
        );
        let mut cmd = command("echo", &["a b", "c"], Duration::from_secs(10));
        cmd.env.push(("GREETING".into(), "hi".into()));
        cmd.stdin = Some(b"from stdin\n".to_vec());
        let out = Local::new(dir.path())
            .run(&Site::Host("node1".into()), &cmd)
            .expect("runs");
        assert_eq!(out.exit, Exit::Code(3));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "a b|c|hi\nfrom stdin\n"
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    }

    /// The nice value (field 19 of `/proc/<pid>/stat`) of this thread.
    fn own_niceness() -> i32 {
        let stat = fs::read_to_string("/proc/thread-self/stat").expect("stat");
        let (_, rest) = stat.rsplit_once(')').expect("stat format");
        rest.split_whitespace()
            .nth(16)
            .and_then(|n| n.parse().ok())
            .expect("nice field")
    }

    #[test]
    fn scripts_run_below_the_server_priority_and_the_caller_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        // `nice` without arguments prints the niceness it runs at.
        script(dir.path(), "niceness", "nice");
        let before = own_niceness();
        let out = Local::new(dir.path())
            .run(
                &Site::Host("node1".into()),
                &command("niceness", &[], Duration::from_secs(10)),
            )
            .expect("runs");
        let expected = (before + spawner::DRIVER_NICENESS).min(19);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            expected.to_string()
        );
        assert_eq!(own_niceness(), before, "the calling thread is not niced");
    }

    #[test]
    fn the_exit_is_awaited_after_the_outputs_close() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Closes its outputs, then lives on a while before exiting 3.
        script(
            dir.path(),
            "lingers",
            "exec >/dev/null 2>&1; sleep 0.3; exit 3",
        );
        let out = Local::new(dir.path())
            .run(
                &Site::FrontEnd,
                &command("lingers", &[], Duration::from_secs(10)),
            )
            .expect("runs");
        assert_eq!(out.exit, Exit::Code(3));
    }

    #[test]
    fn missing_or_non_executable_script_is_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("plain"), "#!/bin/sh\n").expect("write");
        let local = Local::new(dir.path());
        for name in ["absent", "plain"] {
            let err = local
                .run(&Site::FrontEnd, &command(name, &[], Duration::from_secs(5)))
                .expect_err("not runnable");
            assert!(matches!(err, TransportError::NotFound(_)), "{err:?}");
        }
    }

    #[test]
    fn signal_exit_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        script(dir.path(), "die", "kill -9 $$");
        let out = Local::new(dir.path())
            .run(
                &Site::FrontEnd,
                &command("die", &[], Duration::from_secs(10)),
            )
            .expect("runs");
        assert_eq!(out.exit, Exit::Signal(9));
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("child.pid");
        script(
            dir.path(),
            "slow",
            &format!(
                "sleep 60 &\necho $! > {}\necho started\nwait",
                pid_file.display()
            ),
        );
        let out = Local::new(dir.path())
            .grace(Duration::from_millis(300))
            .run(
                &Site::FrontEnd,
                &command("slow", &[], Duration::from_secs(1)),
            )
            .expect("runs");
        assert_eq!(out.exit, Exit::TimedOut);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
        let child = wait_for_pid(&pid_file);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_gone(child) {
            assert!(
                Instant::now() < deadline,
                "child {child} survived the timeout"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn timeout_kills_children_that_ignore_sigterm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("child.pid");
        // An ignored signal stays ignored across fork and exec, so the
        // sleep ignores SIGTERM too: only the SIGKILL after the grace ends it.
        script(
            dir.path(),
            "stubborn",
            &format!(
                "trap '' TERM\nsleep 60 &\necho $! > {}\nwait",
                pid_file.display()
            ),
        );
        let out = Local::new(dir.path())
            .grace(Duration::from_millis(300))
            .run(
                &Site::FrontEnd,
                &command("stubborn", &[], Duration::from_secs(1)),
            )
            .expect("runs");
        assert_eq!(out.exit, Exit::TimedOut);
        let child = wait_for_pid(&pid_file);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_gone(child) {
            assert!(Instant::now() < deadline, "child {child} survived SIGKILL");
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn background_child_holding_stdout_is_killed_at_the_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("child.pid");
        script(
            dir.path(),
            "leaky",
            &format!("sleep 60 &\necho $! > {}\necho done", pid_file.display()),
        );
        let out = Local::new(dir.path())
            .grace(Duration::from_millis(300))
            .run(
                &Site::FrontEnd,
                &command("leaky", &[], Duration::from_secs(1)),
            )
            .expect("runs");
        assert_eq!(out.exit, Exit::TimedOut);
        let child = wait_for_pid(&pid_file);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_gone(child) {
            assert!(Instant::now() < deadline, "child {child} survived");
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn output_is_capped_keeping_stdout_head_and_stderr_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        script(
            dir.path(),
            "chatty",
            "i=0; while [ $i -lt 2000 ]; do echo \"out $i\"; echo \"err $i\" >&2; i=$((i+1)); done",
        );
        let out = Local::new(dir.path())
            .output_cap(64)
            .run(
                &Site::FrontEnd,
                &command("chatty", &[], Duration::from_secs(20)),
            )
            .expect("runs");
        assert_eq!(out.exit, Exit::Code(0));
        assert_eq!(out.stdout.len(), 64);
        assert!(out.stdout.starts_with(b"out 0\nout 1\n"));
        assert_eq!(out.stderr.len(), 64);
        assert!(out.stderr.ends_with(b"err 1999\n"));
    }

    #[test]
    fn closing_the_outputs_does_not_end_the_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Outputs closed first, then stdin read to its end: the command
        // still gets all of it and its exit status counts.
        let copy = dir.path().join("copy");
        script(
            dir.path(),
            "quiet",
            &format!("exec >&- 2>&-\ncat > {}\nexit 4", copy.display()),
        );
        let mut cmd = command("quiet", &[], Duration::from_secs(10));
        cmd.stdin = Some(vec![b'q'; 300_000]);
        let out = Local::new(dir.path())
            .run(&Site::FrontEnd, &cmd)
            .expect("runs");
        assert_eq!(out.exit, Exit::Code(4));
        assert_eq!(fs::read(&copy).expect("copy").len(), 300_000);

        // Outputs closed and still running at the deadline: killed.
        script(dir.path(), "mute", "exec >&- 2>&-\nsleep 60");
        let started = Instant::now();
        let out = Local::new(dir.path())
            .grace(Duration::from_millis(300))
            .run(
                &Site::FrontEnd,
                &command("mute", &[], Duration::from_secs(1)),
            )
            .expect("runs");
        assert_eq!(out.exit, Exit::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn stdin_and_stdout_flow_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Far more than both pipes hold: it only finishes if stdin is fed
        // while stdout is read.
        script(dir.path(), "echoer", "cat");
        let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut cmd = command("echoer", &[], Duration::from_secs(60));
        cmd.stdin = Some(data.clone());
        let out = Local::new(dir.path())
            .output_cap(8 << 20)
            .run(&Site::FrontEnd, &cmd)
            .expect("runs");
        assert_eq!(out.exit, Exit::Code(0));
        assert!(out.stdout == data, "stdout differs from stdin");
    }

    #[test]
    fn stdin_not_read_does_not_block() {
        let dir = tempfile::tempdir().expect("tempdir");
        script(dir.path(), "deaf", "echo ok");
        let mut cmd = command("deaf", &[], Duration::from_secs(10));
        cmd.stdin = Some(vec![b'x'; 1 << 20]);
        let out = Local::new(dir.path())
            .run(&Site::FrontEnd, &cmd)
            .expect("runs");
        assert_eq!(out.exit, Exit::Code(0));
        assert_eq!(out.stdout, b"ok\n");
    }
}
