//! The action protocol of the "exec driver" scripts (spec/DRIVERS.md §0
//! "Script contract", §1.4 output conventions): which script an action runs,
//! with which arguments and stdin, and what its exit code, stdout and stderr
//! mean.
//!
//! What lives here: name validation for everything that becomes a path
//! component, the script path `<class>/<folder>/<action>` (relative to the
//! remotes, which the transport locates), and [`run`], which turns a
//! transport [`Output`] into the action's answer or a
//! [`core::Error::Driver`](crate::core::Error::Driver). Reply parsing per
//! action is in `reply.rs`.
//!
//! May use: `crate::core` (the error type) and `super::transport`.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::core::Error;

use super::transport::{Command, Exit, Output, Program, Site, Transport, TransportError};

/// The line that opens the error block on stderr (`error_message` in
/// OpenNebula's `scripts_common.sh`).
pub const ERROR_BEGIN: &str = "ERROR MESSAGE --8<------";
/// The line that closes it.
pub const ERROR_END: &str = "ERROR MESSAGE ------>8--";

/// The tracing target of the scripts' stderr lines (their `INFO:` and
/// `ERROR:` logs), logged at debug: the server's VM log takes this target
/// at debug too, so that the lines reach `vm.log` as OpenNebula's do
/// without crowding the server's own log.
pub const SCRIPT_LOG_TARGET: &str = module_path!();

/// Checks a name that becomes one path component (a driver folder, an
/// action, a script): `[A-Za-z0-9_.-]+` without `..`, and not `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || name == "." || name.contains("..") || !name.chars().all(allowed) {
        return Err(format!(
            "invalid name {name:?}: only letters, digits, '_', '.' and '-' are allowed, \
             without '..'"
        ));
    }
    Ok(())
}

/// `<class>/<folder>/<script>`, relative to the remotes directory, every
/// part checked with [`check_name`].
pub fn script_path(class: &str, folder: &str, script: &str) -> Result<PathBuf, String> {
    for name in [class, folder, script] {
        check_name(name)?;
    }
    Ok(Path::new(class).join(folder).join(script))
}

/// The program of a hook's `command` (DRIVERS.md §8): an absolute path as
/// is; otherwise a path under the remotes' `hooks/`, each of its parts
/// checked with [`check_name`].
pub fn hook_program(command: &str) -> Result<Program, String> {
    let path = Path::new(command);
    if path.is_absolute() {
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!(
                "invalid hook command {command:?}: '..' is not allowed"
            ));
        }
        return Ok(Program::Path(path.to_path_buf()));
    }
    let mut relative = PathBuf::from("hooks");
    for part in command.split('/').filter(|p| !p.is_empty()) {
        check_name(part)?;
        relative.push(part);
    }
    if relative.as_os_str() == "hooks" {
        return Err("empty hook command".to_owned());
    }
    Ok(Program::Script(relative))
}

/// One run of an action script.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The action, for messages (`deploy`, `monitor`, `clone`, a hook's name).
    pub action: String,
    /// The host it is for, for messages.
    pub host: String,
    /// The VM it acts for, if any (VMM and TM actions, hooks; not host
    /// monitoring): its stderr lines then go to that VM's log.
    pub vm_id: Option<u64>,
    /// Where it runs.
    pub site: Site,
    /// The script or program.
    pub program: Program,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its stdin, if any.
    pub stdin: Option<Vec<u8>>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// How long it may take.
    pub timeout: Duration,
}

impl Invocation {
    /// A [`Error::Driver`] about this invocation.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::Driver {
            action: self.action.clone(),
            host: self.host.clone(),
            message: message.into(),
        }
    }
}

/// Runs the invocation once. Exit 0: its stdout, stripped. Anything else is
/// an [`Error::Driver`] whose message is the script's error text
/// ([`error_message`]), `timed out after N s`, or why it could not run;
/// ssh failing to reach the host is [`Error::Unreachable`] instead.
pub fn run(transport: &dyn Transport, invocation: &Invocation) -> Result<String, Error> {
    let command = Command {
        program: invocation.program.clone(),
        args: invocation.args.clone(),
        stdin: invocation.stdin.clone(),
        env: invocation.env.clone(),
        timeout: invocation.timeout,
    };
    let output = match transport.run(&invocation.site, &command) {
        Ok(output) => output,
        Err(TransportError::NotFound(program)) => {
            return Err(invocation.error(format!("script {program} not found or not executable")))
        }
        Err(e @ TransportError::Unreachable { .. }) => {
            return Err(Error::Unreachable {
                action: invocation.action.clone(),
                host: invocation.host.clone(),
                message: e.to_string(),
            })
        }
        Err(e) => return Err(invocation.error(e.to_string())),
    };
    answer(invocation, &output)
}

/// The answer of a finished run (see [`run`]).
fn answer(invocation: &Invocation, output: &Output) -> Result<String, Error> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        // Everything on stderr is log (DRIVERS.md §1.4): with `vm`, it
        // reaches that VM's log (see SCRIPT_LOG_TARGET).
        tracing::debug!(
            target: SCRIPT_LOG_TARGET,
            vm = invocation.vm_id,
            action = %invocation.action,
            host = %invocation.host,
            "{}",
            line.trim_end()
        );
    }
    match output.exit {
        Exit::Code(0) => Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned()),
        Exit::Code(_) => Err(invocation.error(error_message(&stderr))),
        Exit::Signal(signal) => {
            let message = error_message(&stderr);
            Err(invocation.error(if message == "-" {
                format!("killed by signal {signal}")
            } else {
                message
            }))
        }
        Exit::TimedOut => {
            Err(invocation.error(format!("timed out after {}", seconds(invocation.timeout))))
        }
    }
}

/// The error text of a failed script (DRIVERS.md §0): the lines between
/// [`ERROR_BEGIN`] and [`ERROR_END`] joined with blanks; else the last
/// non-empty stderr line that is not an `INFO:`/`DEBUG:` log line; else `-`
/// (OpenNebula's "no information").
pub fn error_message(stderr: &str) -> String {
    let mut block: Option<Vec<&str>> = None;
    let mut last_block = None;
    for line in stderr.lines() {
        let trimmed = line.trim();
        match (&mut block, trimmed) {
            (None, ERROR_BEGIN) => block = Some(Vec::new()),
            (Some(_), ERROR_END) => last_block = block.take(),
            (Some(lines), _) if !trimmed.is_empty() => lines.push(trimmed),
            _ => {}
        }
    }
    // An unclosed block (the script died while writing it) still says more
    // than the lines around it.
    if let Some(lines) = last_block.or(block).filter(|l| !l.is_empty()) {
        return lines.join(" ");
    }
    stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("INFO:") && !l.starts_with("DEBUG:"))
        .map(str::to_owned)
        .unwrap_or_else(|| "-".to_owned())
}

/// `600 s`, `1.5 s`.
pub fn seconds(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::testutil::script;
    use crate::drivers::transport::Local;

    #[test]
    fn names_becoming_path_components_are_checked() {
        for good in ["kvm", "dummy", "vmm_exec", "my-driver.v2", "deploy", "x"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "", ".", "..", "a..b", "../x", "a/b", "a b", "k\u{e9}", "a;b", "$x", "a\0b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            script_path("vmm", "kvm", "deploy"),
            Ok(PathBuf::from("vmm/kvm/deploy"))
        );
        assert!(script_path("vmm", "..", "deploy").is_err());
        assert!(script_path("vmm", "kvm", "../../bin/sh").is_err());
    }

    #[test]
    fn hook_commands_resolve_under_hooks_or_absolute() {
        assert_eq!(
            hook_program("/usr/local/bin/notify"),
            Ok(Program::Path(PathBuf::from("/usr/local/bin/notify")))
        );
        assert_eq!(
            hook_program("vnm/firewall"),
            Ok(Program::Script(PathBuf::from("hooks/vnm/firewall")))
        );
        assert!(hook_program("../etc/passwd").is_err());
        assert!(hook_program("/usr/../bin/sh").is_err());
        assert!(hook_program("").is_err());
    }

    #[test]
    fn error_message_prefers_the_marker_block() {
        let stderr = "INFO: deploy: starting\n\
                      ERROR MESSAGE --8<------\n\
                      Could not create domain from /x/deployment.0\n\
                      error: no such file\n\
                      ERROR MESSAGE ------>8--\n\
                      INFO: deploy: bye\n";
        assert_eq!(
            error_message(stderr),
            "Could not create domain from /x/deployment.0 error: no such file"
        );
    }

    #[test]
    fn error_message_falls_back_to_the_last_line() {
        assert_eq!(
            error_message("first\nsecond problem\n\n  \n"),
            "second problem"
        );
        assert_eq!(
            error_message("real error\nINFO: cleaning up\n"),
            "real error"
        );
        assert_eq!(error_message(""), "-");
        assert_eq!(error_message("INFO: only logs\n"), "-");
        assert_eq!(
            error_message("ERROR MESSAGE --8<------\ncut short\n"),
            "cut short"
        );
    }

    #[test]
    fn seconds_print_whole_or_tenths() {
        assert_eq!(seconds(Duration::from_secs(600)), "600 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }

    fn invocation(script: &str, timeout: Duration) -> Invocation {
        Invocation {
            action: "deploy".into(),
            host: "node1".into(),
            vm_id: Some(7),
            site: Site::Host("node1".into()),
            program: Program::Script(PathBuf::from(script)),
            args: vec!["arg".into()],
            stdin: None,
            env: Vec::new(),
            timeout,
        }
    }

    /// A transport whose ssh cannot reach the host (exit 255).
    struct Down;

    impl Transport for Down {
        fn run(&self, _site: &Site, _command: &Command) -> Result<Output, TransportError> {
            Err(TransportError::Unreachable {
                host: "node1".into(),
                message: "ssh: connect to host node1 port 22: Connection refused".into(),
            })
        }
    }

    #[test]
    fn an_unreachable_host_is_its_own_error_with_ssh_message() {
        let err = run(&Down, &invocation("x", Duration::from_secs(1))).expect_err("down");
        assert!(
            matches!(&err, Error::Unreachable { action, host, .. } if action == "deploy" && host == "node1"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "deploy on node1 failed: cannot reach host node1: \
             ssh: connect to host node1 port 22: Connection refused"
        );
    }

    fn driver_message(err: Error) -> (String, String, String) {
        match err {
            Error::Driver {
                action,
                host,
                message,
            } => (action, host, message),
            other => panic!("not a driver error: {other:?}"),
        }
    }

    #[test]
    fn exit_codes_decide_success_and_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        script(
            dir.path(),
            "ok",
            "echo \"  one-$1  \"; echo 'INFO: fine' >&2",
        );
        script(
            dir.path(),
            "fails",
            "echo 'partial' ; echo 'first' >&2; echo 'the reason' >&2; exit 7",
        );
        script(dir.path(), "silent", "exit 1");
        script(dir.path(), "empty", "true");
        let local = Local::new(dir.path());
        let t = Duration::from_secs(10);

        assert_eq!(run(&local, &invocation("ok", t)).expect("ok"), "one-arg");
        assert_eq!(run(&local, &invocation("empty", t)).expect("empty"), "");
        let (action, host, message) =
            driver_message(run(&local, &invocation("fails", t)).expect_err("fails"));
        assert_eq!((action.as_str(), host.as_str()), ("deploy", "node1"));
        assert_eq!(message, "the reason");
        let (_, _, message) =
            driver_message(run(&local, &invocation("silent", t)).expect_err("fails"));
        assert_eq!(message, "-");
        let (_, _, message) =
            driver_message(run(&local, &invocation("absent", t)).expect_err("absent"));
        assert_eq!(message, "script absent not found or not executable");
    }

    #[test]
    fn timeout_is_a_failure_naming_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        script(dir.path(), "slow", "sleep 30");
        let local = Local::new(dir.path()).grace(Duration::from_millis(200));
        let err = run(&local, &invocation("slow", Duration::from_secs(1))).expect_err("slow");
        assert_eq!(
            err.to_string(),
            "deploy on node1 failed: timed out after 1 s"
        );
    }
}
