//! The per-VM log, OpenNebula's `var/<vid>/vm.log` (spec/DRIVERS.md §1.4,
//! §5.2, §8): a [`tracing_subscriber::Layer`] that copies every event
//! carrying a `vm = <id>` field to that VM's log, one line each:
//!
//! ```text
//! 2026-11-23T23:40:02.000Z [VM][I]: New state is ACTIVE/PROLOG (pend -> prol) after deploy
//! ```
//!
//! `<UTC time> [<facility>][<I|W|E|D>]: <message>[ key=value...]`, the
//! facility from the event's target (`core::vm` → `VM`, `core::hooks` →
//! `HKM`, `core::sched` → `DiM`, `drivers` → `DRV`, else `ONE`). A
//! leading `VM <id>: ` of the message is left out: in that file it says
//! nothing.
//!
//! The logging thread only formats the line and hands it to one writer
//! thread over a bounded channel; the file I/O (creating `<var>/<vid>/`,
//! appending, a small cache of open files) happens there, off the hot path
//! of VM transitions. Nothing here can stop the server: a full channel
//! drops lines, a file that cannot be written is reported once per VM on
//! the server's log, and both go on.
//!
//! May use: everything (it is the CLI's wiring).

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use crate::auth::time::format_iso8601;
use crate::config::DebugLevel;
use crate::core::vm::log;
use crate::drivers::SCRIPT_LOG_TARGET;

/// Lines waiting for the writer; past this the logging threads drop lines
/// rather than wait for the disk.
const QUEUE: usize = 8192;

/// Open log files the writer keeps; the least recently written is closed
/// first. Active VMs log in bursts, so a few dozen cover them.
const OPEN_FILES: usize = 64;

/// How long dropping the guard waits for the writer to catch up: the
/// server's stop must not hang on a stuck disk.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The facilities, by target below the crate (OpenNebula's `[VM]`,
/// `[HKM]` hook manager, `[DiM]` dispatch manager, which deploys what
/// the scheduler chose, `[DRV]`-like driver messages).
const FACILITIES: &[(&str, &str)] = &[
    ("core::vm", "VM"),
    ("core::hooks", "HKM"),
    ("core::sched", "DiM"),
    ("drivers", "DRV"),
];

/// What the writer thread is sent.
enum Message {
    /// Append `text` and a newline to VM `vm`'s log.
    Line { vm: u64, text: String },
    /// Everything sent before was written: say so on the channel given,
    /// and end.
    Stop(SyncSender<()>),
}

/// The layer. Start it with [`VmLog::start`] and give it [`VmLog::filter`]
/// as its per-layer filter.
pub struct VmLog {
    sender: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

/// Stands for the writer thread: dropping it waits (a few seconds at most)
/// until what was logged before is written, and ends the thread. Keep it
/// alive as long as the server logs.
pub struct VmLogGuard {
    sender: SyncSender<Message>,
}

impl VmLog {
    /// The layer writing under `var_dir` (`<var_dir>/<vid>/vm.log`), and
    /// the guard of its writer thread; fails only if the thread cannot be
    /// started.
    pub fn start(var_dir: PathBuf) -> io::Result<(VmLog, VmLogGuard)> {
        let (sender, receiver) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        // Detached: the guard's drop waits for it through the channel,
        // with a time limit a join could not have.
        thread::Builder::new()
            .name("vm-log".to_owned())
            .spawn(move || write_lines(&var_dir, &receiver, &counted))?;
        let guard = VmLogGuard {
            sender: sender.clone(),
        };
        Ok((VmLog { sender, dropped }, guard))
    }

    /// What reaches VM logs at `DEBUG_LEVEL` `level`, as OpenNebula's
    /// vm.log: the messages of that level and above, and from INFO up the
    /// driver scripts' stderr lines too, which OpenNebula writes there at
    /// INFO while the server's own log keeps them at debug.
    pub fn filter(level: DebugLevel) -> Targets {
        let default = LevelFilter::from_level(level.tracing_level());
        let scripts = if level >= DebugLevel::Info {
            LevelFilter::DEBUG
        } else {
            default
        };
        Targets::new()
            .with_default(default)
            .with_target(SCRIPT_LOG_TARGET, scripts)
    }
}

impl Drop for VmLogGuard {
    fn drop(&mut self) {
        let deadline = Instant::now() + STOP_WAIT;
        let (ack, acked) = mpsc::sync_channel(1);
        let mut stop = Message::Stop(ack);
        loop {
            match self.sender.try_send(stop) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    stop = back;
                    thread::sleep(Duration::from_millis(10));
                }
                // The writer is gone, or stuck behind a full queue.
                Err(_) => return,
            }
        }
        let _ = acked.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

impl<S: Subscriber> Layer<S> for VmLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        // Most events are about no VM: skip them before formatting anything.
        if event.metadata().fields().field("vm").is_none() {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(vm) = fields.vm else {
            return;
        };
        let meta = event.metadata();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let prefix = format!("VM {vm}: ");
        let message = fields
            .message
            .strip_prefix(&prefix)
            .unwrap_or(&fields.message);
        let mut text = format!(
            "{} [{}][{}]: {message}{}",
            format_iso8601(now),
            facility(meta.target()),
            severity(*meta.level()),
            fields.rest
        );
        // One event, one line: a reader splits the file on newlines.
        if text.contains(['\n', '\r']) {
            text = text.replace(['\n', '\r'], " ");
        }
        if let Err(TrySendError::Full(_)) = self.sender.try_send(Message::Line { vm, text }) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        // Disconnected: the writer has stopped (the server is ending).
    }
}

/// OpenNebula's severity letter.
fn severity(level: Level) -> char {
    match level {
        Level::ERROR => 'E',
        Level::WARN => 'W',
        Level::INFO => 'I',
        _ => 'D',
    }
}

/// The facility of a target (see [`FACILITIES`]); `ONE` for the rest.
fn facility(target: &str) -> &'static str {
    let Some(inner) = target.strip_prefix(concat!(env!("CARGO_CRATE_NAME"), "::")) else {
        return "ONE";
    };
    FACILITIES
        .iter()
        .find(|(module, _)| {
            inner
                .strip_prefix(module)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
        .map_or("ONE", |(_, name)| name)
}

/// An event's fields: the VM id, the message, the others as ` key=value`.
#[derive(Default)]
struct Fields {
    vm: Option<u64>,
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "vm" {
            self.vm = Some(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "vm" {
            self.vm = u64::try_from(value).ok();
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "vm" => self.vm = value.parse().ok(),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            // `vm = %id` or `vm = ?id`.
            "vm" => self.vm = format!("{value:?}").parse().ok(),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

/// Most lines the writer takes off the channel at once.
const BATCH: usize = 512;

/// The writer thread: appends each line to its VM's log until told to
/// stop (or every sender is gone). It takes whatever lines are waiting
/// and writes each VM's together: a burst of transitions then costs one
/// write per VM, not one per line.
fn write_lines(var_dir: &std::path::Path, receiver: &Receiver<Message>, dropped: &AtomicU64) {
    let mut files = OpenFiles::default();
    // VMs whose log failed already: one warning each, not one per line.
    let mut warned = HashSet::new();
    let mut stop = None;
    while stop.is_none() {
        let Ok(first) = receiver.recv() else {
            return;
        };
        // Each VM's lines in the order they came; VMs in first-line order.
        let mut batch: Vec<(u64, String)> = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Line { vm, mut text } => {
                    text.push('\n');
                    match batch.iter_mut().find(|(id, _)| *id == vm) {
                        Some((_, lines)) => lines.push_str(&text),
                        None => batch.push((vm, text)),
                    }
                }
                Message::Stop(ack) => {
                    stop = Some(ack);
                    break;
                }
            }
            if batch.len() < BATCH {
                next = receiver.try_recv().ok();
            }
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!("VM logs: {lost} lines dropped, their writer fell behind");
        }
        for (vm, lines) in batch {
            let path = log::path(var_dir, vm);
            if let Err(e) = files.append(vm, &path, &lines) {
                if warned.insert(vm) {
                    // No `vm` field: this must not come back here.
                    tracing::warn!(
                        "cannot write the log of VM {vm} ({}): {e}; its lines are dropped \
                         (reported once)",
                        path.display()
                    );
                }
            }
        }
    }
    if let Some(ack) = stop {
        let _ = ack.send(());
    }
}

/// The writer's open log files, the most recently written last.
#[derive(Default)]
struct OpenFiles {
    files: Vec<(u64, File)>,
}

impl OpenFiles {
    /// Appends `lines` (each ending in a newline) to VM `vm`'s log at
    /// `path`, opening (and creating) it if it is not open.
    fn append(&mut self, vm: u64, path: &std::path::Path, lines: &str) -> io::Result<()> {
        let file = match self.files.iter().position(|(id, _)| *id == vm) {
            Some(i) => self.files.remove(i).1,
            None => {
                if self.files.len() >= OPEN_FILES {
                    self.files.remove(0);
                }
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)?;
                }
                OpenOptions::new().create(true).append(true).open(path)?
            }
        };
        // One write for all: O_APPEND keeps lines whole even if something
        // else appends to the file too. A failed write closes the file, so
        // the next line opens it again (its directory may have been
        // removed and recreated).
        (&file).write_all(lines.as_bytes())?;
        self.files.push((vm, file));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Runs `log` under a subscriber with only the VM log layer writing
    /// under `dir`, then waits until its lines are written.
    fn logged(dir: &std::path::Path, log: impl FnOnce()) {
        let (layer, guard) = VmLog::start(dir.to_path_buf()).expect("start");
        let subscriber =
            tracing_subscriber::registry().with(layer.with_filter(VmLog::filter(DebugLevel::Info)));
        tracing::subscriber::with_default(subscriber, log);
        drop(guard);
    }

    /// The lines of a log without their times.
    fn lines(dir: &std::path::Path, vm: u64) -> Vec<String> {
        let text = fs::read_to_string(log::path(dir, vm)).expect("read log");
        text.lines()
            .map(|line| {
                let (time, rest) = line.split_once(' ').expect("time");
                assert!(
                    time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
                    "not an ISO 8601 UTC time: {line}"
                );
                rest.to_owned()
            })
            .collect()
    }

    #[test]
    fn events_with_a_vm_go_to_its_log_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        logged(dir.path(), || {
            tracing::info!(target: "cloudgate::core::vm::pool", vm = 7_u64, "VM 7: New state is PENDING");
            tracing::info!(target: "cloudgate::core::vm::pool", "VM 8: nothing to do with 7");
            tracing::warn!(target: "cloudgate::core::hooks", vm = 7_u64, "Error executing Hook: x. bad");
            tracing::error!(target: "cloudgate::somewhere", vm = 7_u64, "broken");
            tracing::debug!(
                target: SCRIPT_LOG_TARGET,
                vm = Some(7_u64),
                action = %"deploy",
                host = "node1",
                "INFO: deploy: starting"
            );
            // Debug elsewhere stays out; so does a driver line of no VM.
            tracing::debug!(target: "cloudgate::core::vm::pool", vm = 7_u64, "chatter");
            tracing::debug!(target: SCRIPT_LOG_TARGET, vm = None::<u64>, "IM probe line");
            tracing::info!(target: "cloudgate::drivers", vm = 9_u64, "line one\nline two");
        });
        assert_eq!(
            lines(dir.path(), 7),
            [
                "[VM][I]: New state is PENDING",
                "[HKM][W]: Error executing Hook: x. bad",
                "[ONE][E]: broken",
                "[DRV][D]: INFO: deploy: starting action=deploy host=node1",
            ]
        );
        assert_eq!(lines(dir.path(), 9), ["[DRV][I]: line one line two"]);
        let mut made: Vec<_> = fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("name"))
            .collect();
        made.sort();
        assert_eq!(made, ["7", "9"], "events without a vm wrote nothing");
    }

    #[test]
    fn a_log_that_cannot_be_written_does_not_stop_the_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A file where VM 3's directory should be.
        fs::write(dir.path().join("3"), "").expect("block");
        logged(dir.path(), || {
            tracing::info!(vm = 3_u64, "lost");
            tracing::info!(vm = 4_u64, "kept");
            tracing::info!(vm = 3_u64, "lost again");
        });
        assert_eq!(lines(dir.path(), 4), ["[ONE][I]: kept"]);
    }

    #[test]
    fn more_vms_than_open_files_keep_every_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vms = u64::try_from(OPEN_FILES).expect("small") + 5;
        logged(dir.path(), || {
            for round in 0..2 {
                for vm in 0..vms {
                    tracing::info!(vm, "round {round}");
                }
            }
        });
        for vm in 0..vms {
            assert_eq!(
                lines(dir.path(), vm),
                ["[ONE][I]: round 0", "[ONE][I]: round 1"]
            );
        }
    }

    #[test]
    fn facilities_follow_module_boundaries() {
        assert_eq!(facility("cloudgate::core::vm"), "VM");
        assert_eq!(facility("cloudgate::core::vm::runner"), "VM");
        assert_eq!(facility("cloudgate::core::vmx"), "ONE");
        assert_eq!(facility("cloudgate::core::hooks"), "HKM");
        assert_eq!(facility("cloudgate::core::sched::runner"), "DiM");
        assert_eq!(facility("cloudgate::drivers::action"), "DRV");
        assert_eq!(facility("cloudgate::api::native"), "ONE");
        assert_eq!(facility("actix_server"), "ONE");
    }

    #[test]
    fn the_filter_follows_debug_level() {
        let script = |level| VmLog::filter(level).would_enable(SCRIPT_LOG_TARGET, &Level::DEBUG);
        let core = |level, at| VmLog::filter(level).would_enable("cloudgate::core::vm", &at);
        // ERROR and WARNING: the messages of that level up, no script lines.
        assert!(core(DebugLevel::Error, Level::ERROR));
        assert!(!core(DebugLevel::Error, Level::WARN));
        assert!(core(DebugLevel::Warning, Level::WARN));
        assert!(!core(DebugLevel::Warning, Level::INFO));
        assert!(!script(DebugLevel::Error) && !script(DebugLevel::Warning));
        // INFO (the default): the scripts' stderr lines join, debug does not.
        assert!(core(DebugLevel::Info, Level::INFO));
        assert!(!core(DebugLevel::Info, Level::DEBUG));
        assert!(script(DebugLevel::Info));
        // DEBUG: everything.
        assert!(core(DebugLevel::Debug, Level::DEBUG));
        assert!(script(DebugLevel::Debug));
    }
}
