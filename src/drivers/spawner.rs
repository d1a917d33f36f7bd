//! Starts driver processes below the server's CPU priority.
//!
//! Driver scripts are background work: a burst of deploys must not slow
//! the requests that caused them. Running each script through `nice(1)`
//! did that at the price of one more exec per action, which on small
//! front-ends cost as much as the dummy scripts themselves. Instead, one
//! thread lowers its own niceness once and starts every driver process:
//! on Linux the nice value belongs to the thread, and a child inherits
//! the value of the thread that forked it.
//!
//! The thread only spawns; waiting, output and timeouts stay with the
//! caller, so a slow script never holds up the start of another.
//!
//! The hop to this thread and back is cheaper than the alternatives,
//! measured with 32 concurrent EC2 launches: renicing each process right
//! after starting it leaves its exec, the costliest part of a short
//! script, at the server's priority, and lowering the VM runner's own
//! threads has them hold the server's locks at low priority while
//! requests wait; either cost a quarter of the launch rate.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::OnceLock;
use std::thread;

/// How much lower than the server driver processes run (`nice -n`).
pub const DRIVER_NICENESS: i32 = 10;

type Request = (Command, Sender<io::Result<Child>>);

/// Spawns `command` from the niced thread; if that thread could not be
/// started, spawns it here (at the server's priority) rather than fail.
pub fn spawn(mut command: Command) -> io::Result<Child> {
    let Some(spawner) = spawner() else {
        return command.spawn();
    };
    let (reply, answer) = mpsc::channel();
    if let Err(mpsc::SendError((mut command, _))) = spawner.send((command, reply)) {
        return command.spawn();
    }
    answer
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("the driver spawner thread ended")))
}

/// The spawner thread's queue, started on first use; `None` if the thread
/// could not be started.
fn spawner() -> Option<&'static Sender<Request>> {
    static SPAWNER: OnceLock<Option<Sender<Request>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (queue, requests) = mpsc::channel::<Request>();
            let started = thread::Builder::new()
                .name("driver-spawner".into())
                .spawn(move || serve(requests));
            match started {
                Ok(_) => Some(queue),
                Err(e) => {
                    tracing::warn!("driver processes run at the server's priority: {e}");
                    None
                }
            }
        })
        .as_ref()
}

fn serve(requests: mpsc::Receiver<Request>) {
    // Relative to the server's own niceness, as `nice -n` was. On Linux
    // this changes the calling thread only.
    if let Err(e) = rustix::process::nice(DRIVER_NICENESS) {
        tracing::warn!("driver processes run at the server's priority: nice: {e}");
    }
    for (mut command, reply) in requests {
        // The caller may have given up (it never does today); nothing to do.
        let _ = reply.send(command.spawn());
    }
}
