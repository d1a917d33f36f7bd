//! A wake-up bell for the core's background loops (the host monitor and
//! the scheduler): a loop sleeps on it until its period ends, someone rings
//! it (a host was created, a VM became pending), or it is told to stop.
//!
//! May use: std only.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A bell a loop waits on. Rings are not counted: several rings before the
/// loop wakes make one wake-up, which is all a loop that looks at the whole
/// pool needs.
#[derive(Debug, Default)]
pub struct Signal {
    state: Mutex<State>,
    bell: Condvar,
}

#[derive(Debug, Default)]
struct State {
    rung: bool,
    stopped: bool,
}

/// Why [`Signal::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The period ended.
    Timeout,
    /// Someone rang.
    Rung,
    /// The loop must end.
    Stopped,
}

impl Signal {
    /// A bell nobody rang.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the loop now (or at its next wait, if it is busy).
    pub fn ring(&self) {
        self.lock().rung = true;
        self.bell.notify_all();
    }

    /// Tells the loop to end; every wait answers [`Wake::Stopped`] until
    /// [`resume`](Self::resume).
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.bell.notify_all();
    }

    /// Clears a [`stop`](Self::stop), for a loop started again.
    pub fn resume(&self) {
        self.lock().stopped = false;
    }

    /// Whether [`stop`](Self::stop) was called (and not resumed).
    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Sleeps until rung, stopped or `period` is over, and consumes the
    /// ring. A ring that came while the loop was busy wakes it at once.
    pub fn wait(&self, period: Duration) -> Wake {
        let deadline = Instant::now() + period;
        let mut state = self.lock();
        loop {
            if state.stopped {
                return Wake::Stopped;
            }
            if state.rung {
                state.rung = false;
                return Wake::Rung;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Wake::Timeout;
            }
            state = match self.bell.wait_timeout(state, left) {
                Ok((state, _)) => state,
                // A panic while holding this tiny lock leaves nothing
                // inconsistent: two booleans.
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_ring_wakes_the_waiter_and_is_consumed() {
        let signal = Arc::new(Signal::new());
        signal.ring();
        signal.ring();
        assert_eq!(signal.wait(Duration::from_secs(60)), Wake::Rung);
        assert_eq!(signal.wait(Duration::from_millis(1)), Wake::Timeout);

        let ringer = signal.clone();
        let thread = std::thread::spawn(move || ringer.ring());
        assert_eq!(signal.wait(Duration::from_secs(60)), Wake::Rung);
        thread.join().expect("ringer");
    }

    #[test]
    fn stop_wins_until_resumed() {
        let signal = Signal::new();
        signal.ring();
        signal.stop();
        assert!(signal.is_stopped());
        assert_eq!(signal.wait(Duration::from_secs(60)), Wake::Stopped);
        assert_eq!(signal.wait(Duration::from_secs(60)), Wake::Stopped);
        signal.resume();
        assert_eq!(signal.wait(Duration::from_secs(60)), Wake::Rung);
    }
}
