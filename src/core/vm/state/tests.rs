//! Tests of the life-cycle table: the whole table against the checked-in
//! matrix (STYLE.md §1.7, §1.11), the allowed states of every user action
//! (CORE.md §1.3) listed explicitly, and paths followed step by step by a
//! small in-memory runner that checks the bookkeeping adds up.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use super::*;
use crate::core::Error;

use LcmState as L;
use State as S;

// ---------------------------------------------------------------------
// The matrix file
// ---------------------------------------------------------------------

/// Every pair that can be stored: LCM_INIT outside ACTIVE, any LCM state
/// inside.
fn pairs() -> Vec<(State, LcmState)> {
    let mut out = Vec::new();
    for state in State::ALL {
        for lcm in LcmState::ALL {
            if pair_exists(state, lcm) {
                out.push((state, lcm));
            }
        }
    }
    out
}

fn render_matrix() -> String {
    let mut out = String::from(
        "# The VM life-cycle table, core::vm::state::next (spec/CORE.md §1.8).\n\
         # One line per stored state pair x event:\n\
         #   <short name>/<LCM_STATE> <event> -> <STATE>/<LCM_STATE> [steps, in order]\n\
         #   ... -> InvalidState            a user action refused in that state\n\
         #   ... -> ignored (dead state)    a reply for a VM waiting for no driver\n\
         #   ... -> ignored (wrong state)   a reply the VM is not waiting for\n\
         # H/P: current/previous history record; +cap/-cap: reserve/free on its host.\n\
         # Generated: CLOUDGATE_REGENERATE=1 cargo test --lib core::vm\n",
    );
    for (state, lcm) in pairs() {
        for event in Event::ALL {
            let outcome = match next(state, lcm, event) {
                Ok(outcome) => outcome.to_string(),
                Err(_) => "InvalidState".to_string(),
            };
            out.push_str(&format!(
                "{}/{} {} -> {}\n",
                short_name(state, lcm),
                lcm.name(),
                event.name(),
                outcome
            ));
        }
    }
    out
}

#[test]
fn table_matches_the_checked_in_matrix() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vm_state_matrix.txt");
    let rendered = render_matrix();
    if std::env::var_os("CLOUDGATE_REGENERATE").is_some_and(|v| v == "1") {
        std::fs::write(&path, &rendered).expect("write the matrix file");
        println!("regenerated {}", path.display());
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    if stored == rendered {
        return;
    }
    let first_difference = stored
        .lines()
        .zip(rendered.lines())
        .find(|(old, new)| old != new)
        .map(|(old, new)| format!("file:  {old}\ntable: {new}"))
        .unwrap_or_else(|| {
            format!(
                "the file has {} lines, the table {}",
                stored.lines().count(),
                rendered.lines().count()
            )
        });
    panic!(
        "{} differs from the table\n{first_difference}\n\
         if the change is intended: CLOUDGATE_REGENERATE=1 cargo test --lib core::vm \
         and review the diff line by line",
        path.display()
    );
}

// ---------------------------------------------------------------------
// Numbers and names (CORE.md §1.1)
// ---------------------------------------------------------------------

#[test]
fn dm_states_keep_opennebula_numbers() {
    let expected = [
        (0, "INIT"),
        (1, "PENDING"),
        (2, "HOLD"),
        (3, "ACTIVE"),
        (4, "STOPPED"),
        (5, "SUSPENDED"),
        (6, "DONE"),
        (7, "FAILED"),
    ];
    for (state, (number, name)) in State::ALL.into_iter().zip(expected) {
        assert_eq!(state.number(), number);
        assert_eq!(state.name(), name);
        assert_eq!(State::from_number(number), Some(state));
    }
    assert_eq!(State::from_number(8), None, "POWEROFF is not in v1");
}

#[test]
fn lcm_states_keep_opennebula_numbers() {
    let expected = [
        "LCM_INIT",
        "PROLOG",
        "BOOT",
        "RUNNING",
        "MIGRATE",
        "SAVE_STOP",
        "SAVE_SUSPEND",
        "SAVE_MIGRATE",
        "PROLOG_MIGRATE",
        "PROLOG_RESUME",
        "EPILOG_STOP",
        "EPILOG",
        "SHUTDOWN",
        "CANCEL",
        "FAILURE",
        "CLEANUP",
        "UNKNOWN",
    ];
    for (number, name) in expected.into_iter().enumerate() {
        let number = u32::try_from(number).expect("small");
        let lcm = LcmState::from_number(number).expect("known number");
        assert_eq!(lcm.number(), number);
        assert_eq!(lcm.name(), name);
    }
    assert_eq!(LcmState::from_number(17), None, "HOTPLUG is not in v1");
}

#[test]
fn short_names_are_the_cli_stat_column() {
    let dm = [
        (S::Init, "init"),
        (S::Pending, "pend"),
        (S::Hold, "hold"),
        (S::Stopped, "stop"),
        (S::Suspended, "susp"),
        (S::Done, "done"),
        (S::Failed, "fail"),
    ];
    for (state, short) in dm {
        assert_eq!(short_name(state, L::LcmInit), short);
    }
    let lcm = [
        (L::LcmInit, "actv"),
        (L::Prolog, "prol"),
        (L::Boot, "boot"),
        (L::Running, "runn"),
        (L::Migrate, "migr"),
        (L::SaveStop, "save"),
        (L::SaveSuspend, "save"),
        (L::SaveMigrate, "save"),
        (L::PrologMigrate, "migr"),
        (L::PrologResume, "prol"),
        (L::EpilogStop, "epil"),
        (L::Epilog, "epil"),
        (L::Shutdown, "shut"),
        (L::Cancel, "shut"),
        (L::Failure, "fail"),
        (L::Cleanup, "clea"),
        (L::Unknown, "unkn"),
    ];
    for (l, short) in lcm {
        assert_eq!(short_name(S::Active, l), short, "{l}");
    }
}

/// Where each event sits in [`Event::ALL`]. The match is exhaustive: a new
/// variant fails to compile here until it is placed in `ALL` too.
fn position(event: Event) -> usize {
    match event {
        Event::Deploy { resume: false } => 0,
        Event::Deploy { resume: true } => 1,
        Event::Shutdown => 2,
        Event::Cancel => 3,
        Event::LiveMigrate => 4,
        Event::Migrate => 5,
        Event::Hold => 6,
        Event::Release => 7,
        Event::Stop => 8,
        Event::Suspend => 9,
        Event::Resume => 10,
        Event::Delete => 11,
        Event::Restart => 12,
        Event::Resubmit => 13,
        Event::Reboot => 14,
        Event::Reset => 15,
        Event::Recover(Recovery::Success) => 16,
        Event::Recover(Recovery::Failure) => 17,
        Event::Recover(Recovery::Retry) => 18,
        Event::PrologSuccess => 19,
        Event::PrologFailure => 20,
        Event::DeploySuccess => 21,
        Event::DeployFailure => 22,
        Event::SaveSuccess => 23,
        Event::SaveFailure => 24,
        Event::ShutdownSuccess => 25,
        Event::ShutdownFailure => 26,
        Event::CancelSuccess => 27,
        Event::CancelFailure => 28,
        Event::EpilogSuccess => 29,
        Event::EpilogFailure => 30,
        Event::RebootSuccess => 31,
        Event::RebootFailure => 32,
        Event::ResetSuccess => 33,
        Event::ResetFailure => 34,
        Event::MonitorAlive => 35,
        Event::MonitorSuspend => 36,
        Event::MonitorFailure => 37,
        Event::MonitorDone => 38,
    }
}

#[test]
fn every_event_is_listed_once_with_a_distinct_snake_case_name() {
    let mut names = BTreeSet::new();
    for (i, event) in Event::ALL.into_iter().enumerate() {
        assert_eq!(position(event), i, "{event} out of place in Event::ALL");
        let name = event.name();
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{name}"
        );
        assert!(names.insert(name), "{name} twice");
    }
}

#[test]
fn admin_only_are_the_actions_that_pick_a_host_and_recover() {
    let admin: Vec<&str> = Event::ALL
        .into_iter()
        .filter(|e| admin_only(*e))
        .map(Event::name)
        .collect();
    assert_eq!(
        admin,
        [
            "deploy",
            "deploy_resume",
            "livemigrate",
            "migrate",
            "recover_success",
            "recover_failure",
            "recover_retry"
        ]
    );
}

// ---------------------------------------------------------------------
// Which user action is allowed where (CORE.md §1.3), listed explicitly
// ---------------------------------------------------------------------

/// The pairs where `event` is not refused, in State::ALL × LcmState::ALL
/// order.
fn allowed(event: Event) -> Vec<(State, LcmState)> {
    pairs()
        .into_iter()
        .filter(|(s, l)| next(*s, *l, event).is_ok())
        .collect()
}

const RUNNING: (State, LcmState) = (S::Active, L::Running);

#[test]
fn deploy_only_in_pending() {
    for resume in [false, true] {
        assert_eq!(
            allowed(Event::Deploy { resume }),
            [(S::Pending, L::LcmInit)]
        );
    }
}

#[test]
fn running_only_actions() {
    for event in [
        Event::Shutdown,
        Event::Cancel,
        Event::LiveMigrate,
        Event::Migrate,
        Event::Stop,
        Event::Suspend,
        Event::Reboot,
        Event::Reset,
    ] {
        assert_eq!(allowed(event), [RUNNING], "{event}");
    }
}

#[test]
fn hold_in_pending_release_in_hold() {
    assert_eq!(allowed(Event::Hold), [(S::Pending, L::LcmInit)]);
    assert_eq!(allowed(Event::Release), [(S::Hold, L::LcmInit)]);
}

#[test]
fn resume_from_stopped_or_suspended() {
    assert_eq!(
        allowed(Event::Resume),
        [(S::Stopped, L::LcmInit), (S::Suspended, L::LcmInit)]
    );
}

#[test]
fn delete_anywhere() {
    assert_eq!(allowed(Event::Delete), pairs());
}

#[test]
fn restart_in_boot_or_unknown() {
    assert_eq!(
        allowed(Event::Restart),
        [(S::Active, L::Boot), (S::Active, L::Unknown)]
    );
}

#[test]
fn resubmit_anywhere_but_suspended_and_done() {
    let expected: Vec<_> = pairs()
        .into_iter()
        .filter(|(s, _)| !matches!(s, S::Suspended | S::Done))
        .collect();
    assert_eq!(allowed(Event::Resubmit), expected);
}

#[test]
fn recover_where_a_driver_reply_is_awaited() {
    let waiting = [
        L::Prolog,
        L::Boot,
        L::Migrate,
        L::SaveStop,
        L::SaveSuspend,
        L::SaveMigrate,
        L::PrologMigrate,
        L::PrologResume,
        L::EpilogStop,
        L::Epilog,
        L::Shutdown,
        L::Cancel,
    ];
    let expected: Vec<_> = waiting.into_iter().map(|l| (S::Active, l)).collect();
    for how in [Recovery::Success, Recovery::Failure, Recovery::Retry] {
        assert_eq!(allowed(Event::Recover(how)), expected, "{how:?}");
    }
}

#[test]
fn recover_acts_as_the_awaited_reply_or_retries_it() {
    let cases = [
        (L::Prolog, Event::PrologSuccess, Event::PrologFailure),
        (L::Boot, Event::DeploySuccess, Event::DeployFailure),
        (L::Migrate, Event::DeploySuccess, Event::DeployFailure),
        (L::SaveMigrate, Event::SaveSuccess, Event::SaveFailure),
        (L::Shutdown, Event::ShutdownSuccess, Event::ShutdownFailure),
        (L::Cancel, Event::CancelSuccess, Event::CancelFailure),
        (L::EpilogStop, Event::EpilogSuccess, Event::EpilogFailure),
    ];
    for (lcm, success, failure) in cases {
        let go = |e| next(S::Active, lcm, e).expect("allowed");
        assert_eq!(go(Event::Recover(Recovery::Success)), go(success), "{lcm}");
        assert_eq!(go(Event::Recover(Recovery::Failure)), go(failure), "{lcm}");
        assert_eq!(
            go(Event::Recover(Recovery::Retry)),
            Outcome::Transition(Transition {
                state: S::Active,
                lcm,
                steps: vec![Step::RetryPending]
            })
        );
    }
}

#[test]
fn refused_action_becomes_invalid_state_naming_vm_state_and_action() {
    let refused = next(S::Pending, L::LcmInit, Event::Suspend).expect_err("refused");
    let error = refused.into_error(7);
    assert!(matches!(error, Error::InvalidState { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "cannot suspend virtual machine 7 in state pend"
    );
    let refused = next(S::Active, L::Running, Event::Recover(Recovery::Retry))
        .expect_err("recover is refused in RUNNING");
    assert_eq!(
        refused.into_error(3).to_string(),
        "cannot recover virtual machine 3 in state runn"
    );
}

// ---------------------------------------------------------------------
// The table's shape, over every pair and event
// ---------------------------------------------------------------------

#[test]
fn replies_are_never_refused_and_actions_never_ignored() {
    for (state, lcm) in pairs() {
        for event in Event::ALL {
            match next(state, lcm, event) {
                Err(_) => assert!(event.is_user_action(), "{event} refused"),
                Ok(Outcome::Ignored(_)) => assert!(!event.is_user_action(), "{event} ignored"),
                Ok(Outcome::Transition(_)) => {}
            }
        }
    }
}

#[test]
fn replies_in_dead_states_are_ignored() {
    let dead = pairs()
        .into_iter()
        .filter(|(s, l)| *s != S::Active || matches!(l, L::LcmInit | L::Cleanup | L::Failure));
    for (state, lcm) in dead {
        for event in Event::ALL.into_iter().filter(|e| !e.is_user_action()) {
            assert_eq!(
                next(state, lcm, event),
                Ok(Outcome::Ignored(Ignore::DeadState)),
                "{state}/{lcm} {event}"
            );
        }
    }
}

#[test]
fn bookkeeping_before_drivers_and_one_awaited_step_while_active() {
    for (state, lcm) in pairs() {
        for event in Event::ALL {
            let Ok(Outcome::Transition(t)) = next(state, lcm, event) else {
                continue;
            };
            let at = format!("{state}/{lcm} {event}");
            assert!(pair_exists(t.state, t.lcm), "{at}: to {t}");
            let first_driver = t.steps.iter().position(|s| s.is_driver());
            if let Some(i) = first_driver {
                assert!(t.steps[i..].iter().all(|s| s.is_driver()), "{at}: {t}");
            }
            let drivers = t.steps.iter().filter(|s| s.is_driver()).count();
            if t.state == S::Active {
                assert!(drivers <= 1, "{at}: {t}");
                assert_eq!(t.awaited().is_some(), drivers == 1, "{at}: {t}");
            } else {
                assert_eq!(t.awaited(), None, "{at}");
            }
        }
    }
}

#[test]
fn a_pair_that_cannot_exist_is_read_as_its_dm_state() {
    for event in Event::ALL {
        assert_eq!(
            next(S::Pending, L::Running, event),
            next(S::Pending, L::LcmInit, event).map_err(|r| Refused {
                lcm: L::Running,
                ..r
            }),
            "{event}"
        );
    }
}

// ---------------------------------------------------------------------
// A runner in miniature: follows the steps and keeps the books
// ---------------------------------------------------------------------

/// One history record; times are the fake clock's ticks, 0 = not set.
#[derive(Clone, Debug)]
struct Rec {
    host: &'static str,
    times: BTreeMap<&'static str, u64>,
    reason: Reason,
}

impl Rec {
    fn new(host: &'static str) -> Rec {
        Rec {
            host,
            times: BTreeMap::new(),
            reason: Reason::None,
        }
    }

    fn time(&self, stamp: Stamp) -> u64 {
        self.times.get(stamp.name()).copied().unwrap_or(0)
    }

    fn open(&self) -> bool {
        self.time(Stamp::Etime) == 0
    }
}

#[derive(Clone, Debug)]
struct Vm {
    state: State,
    lcm: LcmState,
    history: Vec<Rec>,
    /// Capacity units held per host.
    cap: BTreeMap<&'static str, i32>,
    leases: bool,
    images: bool,
    exit_time: u64,
    deploy_id: Option<&'static str>,
    /// Driver operations started, with the host they run on.
    started: Vec<(Step, &'static str)>,
    clock: u64,
}

impl Vm {
    /// A VM just created: PENDING with its leases and images.
    fn new() -> Vm {
        Vm {
            state: S::Pending,
            lcm: L::LcmInit,
            history: Vec::new(),
            cap: BTreeMap::new(),
            leases: true,
            images: true,
            exit_time: 0,
            deploy_id: None,
            started: Vec::new(),
            clock: 0,
        }
    }

    fn index(&self, record: Record) -> usize {
        let back = match record {
            Record::Current => 1,
            Record::Previous => 2,
        };
        self.history
            .len()
            .checked_sub(back)
            .unwrap_or_else(|| panic!("no {record} record: {self:?}"))
    }

    fn host(&self, record: Record) -> &'static str {
        self.history[self.index(record)].host
    }

    fn h(&self) -> &Rec {
        &self.history[self.index(Record::Current)]
    }

    fn p(&self) -> &Rec {
        &self.history[self.index(Record::Previous)]
    }

    fn short(&self) -> &'static str {
        short_name(self.state, self.lcm)
    }

    /// The host a deploy or migration picks: not the current one.
    fn other_host(&self) -> &'static str {
        match self.history.last() {
            Some(h) if h.host == "a" => "b",
            _ => "a",
        }
    }

    /// The deploy variant the runner would pick (CORE.md §1.4 deploy).
    fn deploy_event(&self) -> Event {
        let resume = self
            .history
            .last()
            .is_some_and(|h| h.reason == Reason::StopResume);
        Event::Deploy { resume }
    }

    /// Feeds one event; `target` is the host a deploy or migration picks.
    fn fire_to(&mut self, event: Event, target: &'static str) -> Result<Outcome, Refused> {
        self.clock += 1;
        let outcome = next(self.state, self.lcm, event)?;
        if let Outcome::Transition(t) = &outcome {
            for step in &t.steps {
                self.apply(*step, target);
            }
            self.state = t.state;
            self.lcm = t.lcm;
        }
        Ok(outcome)
    }

    fn fire(&mut self, event: Event) -> Outcome {
        let at = format!("{}/{} {event}", self.state, self.lcm);
        self.fire_to(event, "unused")
            .unwrap_or_else(|_| panic!("{at} refused"))
    }

    /// Fires and expects the VM to land in `short`, having started
    /// `awaited` (or nothing to wait for).
    fn expect(&mut self, event: Event, short: &str, awaited: Option<Step>) {
        let at = format!("{} {event}", self.short());
        match self.fire(event) {
            Outcome::Transition(t) => assert_eq!(t.awaited(), awaited, "{at}"),
            Outcome::Ignored(why) => panic!("{at}: {why}"),
        }
        assert_eq!(self.short(), short, "{at}");
    }

    fn apply(&mut self, step: Step, target: &'static str) {
        let now = self.clock;
        match step {
            Step::OpenHistory => self.history.push(Rec::new(target)),
            Step::CopyHistory(r) => {
                let host = self.host(r);
                self.history.push(Rec::new(host));
            }
            Step::Stamp(r, stamp) => {
                let i = self.index(r);
                self.history[i].times.insert(stamp.name(), now);
            }
            Step::SetReason(r, reason) => {
                let i = self.index(r);
                self.history[i].reason = reason;
            }
            Step::ReserveCapacity(r) => *self.cap.entry(self.host(r)).or_default() += 1,
            Step::ReleaseCapacity(r) => {
                let host = self.host(r);
                let held = self.cap.entry(host).or_default();
                assert!(*held > 0, "{step} on {host} which holds nothing");
                *held -= 1;
            }
            Step::StoreDeployId => self.deploy_id = Some("one-7"),
            Step::SetExitTime => self.exit_time = now,
            Step::ReleaseLeases => {
                assert!(self.leases, "leases released twice");
                self.leases = false;
            }
            Step::ReleaseImages => {
                assert!(self.images, "images released twice");
                self.images = false;
            }
            Step::TmPrologMigrate
            | Step::TmProlog
            | Step::TmPrologResume
            | Step::TmEpilog
            | Step::TmEpilogStop
            | Step::TmEpilogDelete
            | Step::VmmDeploy
            | Step::VmmRestore
            | Step::VmmSave
            | Step::VmmShutdown
            | Step::VmmCancel
            | Step::VmmReboot
            | Step::VmmReset
            | Step::VmmPoll => self.started.push((step, self.host(Record::Current))),
            Step::TmEpilogDeletePrevious
            | Step::VmmSavePrevious
            | Step::VmmCancelPrevious
            | Step::VmmMigrate => self.started.push((step, self.host(Record::Previous))),
            Step::TmEpilogDeleteStop
            | Step::TmDriverCancel
            | Step::VmmDriverCancel
            | Step::RetryPending => self.started.push((step, "-")),
        }
    }

    /// Capacity held, without the hosts back at zero.
    fn holdings(&self) -> BTreeMap<&'static str, i32> {
        self.cap
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(h, n)| (*h, *n))
            .collect()
    }

    /// The books CORE.md §1.6 and §2 imply for the current state: the
    /// open history records are exactly the stays holding capacity — `H`
    /// while ACTIVE, and `P` too while a migration is in flight — and
    /// the leases are held until DONE.
    fn check_books(&self) {
        let at = format!("{}/{}: {self:?}", self.state, self.lcm);
        assert!(pair_exists(self.state, self.lcm), "{at}");
        let mut expected: BTreeMap<&'static str, i32> = BTreeMap::new();
        let mut open = Vec::new();
        if self.state == S::Active {
            *expected.entry(self.host(Record::Current)).or_default() += 1;
            open.push(self.history.len() - 1);
            if matches!(self.lcm, L::Migrate | L::SaveMigrate) {
                *expected.entry(self.host(Record::Previous)).or_default() += 1;
                open.insert(0, self.history.len() - 2);
            }
        }
        assert_eq!(self.holdings(), expected, "capacity at {at}");
        let really_open: Vec<usize> = (0..self.history.len())
            .filter(|i| self.history[*i].open())
            .collect();
        assert_eq!(really_open, open, "open history records at {at}");
        assert_eq!(self.leases, self.state != S::Done, "leases at {at}");
        assert_eq!(self.images, self.state != S::Done, "images at {at}");
        if matches!(self.state, S::Done | S::Failed) {
            assert_ne!(self.exit_time, 0, "exit time at {at}");
        }
    }
}

/// A VM brought to RUNNING on host `a`.
fn running_vm() -> Vm {
    let mut vm = Vm::new();
    vm.fire_to(Event::Deploy { resume: false }, "a")
        .expect("deploy");
    vm.fire(Event::PrologSuccess);
    vm.fire(Event::DeploySuccess);
    assert_eq!(vm.short(), "runn");
    vm
}

#[test]
fn happy_path_pend_prol_boot_runn_shut_epil_done() {
    let mut vm = Vm::new();
    assert_eq!(vm.short(), "pend");
    let deploy = next(vm.state, vm.lcm, Event::Deploy { resume: false });
    assert!(matches!(deploy, Ok(Outcome::Transition(_))));
    vm.fire_to(Event::Deploy { resume: false }, "a")
        .expect("deploy");
    assert_eq!(vm.short(), "prol");
    assert_eq!(vm.holdings(), BTreeMap::from([("a", 1)]));
    vm.expect(Event::PrologSuccess, "boot", Some(Step::VmmDeploy));
    vm.expect(Event::DeploySuccess, "runn", None);
    assert_eq!(vm.deploy_id, Some("one-7"));
    vm.expect(Event::MonitorAlive, "runn", None);
    vm.expect(Event::Shutdown, "shut", Some(Step::VmmShutdown));
    vm.expect(Event::ShutdownSuccess, "epil", Some(Step::TmEpilog));
    vm.expect(Event::EpilogSuccess, "done", None);
    vm.check_books();
    assert_eq!(
        vm.started,
        [
            (Step::TmProlog, "a"),
            (Step::VmmDeploy, "a"),
            (Step::VmmShutdown, "a"),
            (Step::TmEpilog, "a")
        ]
    );
    let h = vm.h();
    assert_eq!(vm.history.len(), 1);
    assert_eq!(h.reason, Reason::None);
    for stamp in [
        Stamp::Stime,
        Stamp::Pstime,
        Stamp::Petime,
        Stamp::Rstime,
        Stamp::Retime,
        Stamp::Estime,
        Stamp::Eetime,
        Stamp::Etime,
    ] {
        assert_ne!(h.time(stamp), 0, "{} not set", stamp.name());
    }
    assert!(h.time(Stamp::Stime) <= h.time(Stamp::Petime));
    assert!(h.time(Stamp::Petime) <= h.time(Stamp::Retime));
    assert!(h.time(Stamp::Retime) <= h.time(Stamp::Eetime));
    // A late reply for a VM that is gone changes nothing.
    assert_eq!(
        vm.fire(Event::EpilogSuccess),
        Outcome::Ignored(Ignore::DeadState)
    );
    // Delete in DONE is a no-op, not an error.
    assert_eq!(
        vm.fire(Event::Delete),
        Outcome::Transition(Transition {
            state: S::Done,
            lcm: L::LcmInit,
            steps: vec![]
        })
    );
}

#[test]
fn cancel_runs_the_epilog_with_reason_cancel() {
    let mut vm = running_vm();
    vm.expect(Event::Cancel, "shut", Some(Step::VmmCancel));
    vm.expect(Event::CancelSuccess, "epil", Some(Step::TmEpilog));
    vm.expect(Event::EpilogSuccess, "done", None);
    vm.check_books();
    assert_eq!(vm.h().reason, Reason::Cancel);
}

#[test]
fn stop_then_resume_comes_back_through_prolog_resume() {
    let mut vm = running_vm();
    vm.expect(Event::Stop, "save", Some(Step::VmmSave));
    vm.expect(Event::SaveSuccess, "epil", Some(Step::TmEpilogStop));
    vm.expect(Event::EpilogSuccess, "stop", None);
    vm.check_books();
    assert_eq!(vm.h().reason, Reason::StopResume);
    vm.expect(Event::Resume, "pend", None);
    // The scheduler may pick another host; the runner sees the stop in
    // the history and deploys with resume.
    let deploy = vm.deploy_event();
    assert_eq!(deploy, Event::Deploy { resume: true });
    vm.fire_to(deploy, "b").expect("deploy");
    assert_eq!((vm.state, vm.lcm), (S::Active, L::PrologResume));
    vm.check_books();
    vm.expect(Event::PrologSuccess, "boot", Some(Step::VmmRestore));
    vm.expect(Event::DeploySuccess, "runn", None);
    vm.check_books();
    assert_eq!(vm.history.len(), 2);
    assert_eq!(vm.h().host, "b");
    assert_eq!(
        vm.started[vm.started.len() - 2],
        (Step::TmPrologResume, "b")
    );
}

#[test]
fn suspend_then_resume_restores_on_the_same_host() {
    let mut vm = running_vm();
    vm.expect(Event::Suspend, "save", Some(Step::VmmSave));
    vm.expect(Event::SaveSuccess, "susp", None);
    vm.check_books();
    assert!(vm.holdings().is_empty(), "a suspended VM holds no capacity");
    assert_eq!(vm.h().reason, Reason::StopResume);
    vm.expect(Event::Resume, "boot", Some(Step::VmmRestore));
    vm.check_books();
    assert_eq!(vm.history.len(), 2, "resume appends a copy");
    assert_eq!(vm.h().host, "a");
    vm.expect(Event::DeploySuccess, "runn", None);
    vm.check_books();
}

#[test]
fn cold_migrate_saves_on_the_source_and_restores_on_the_target() {
    let mut vm = running_vm();
    vm.fire_to(Event::Migrate, "b").expect("migrate");
    assert_eq!((vm.state, vm.lcm), (S::Active, L::SaveMigrate));
    vm.check_books();
    assert_eq!(vm.holdings(), BTreeMap::from([("a", 1), ("b", 1)]));
    vm.expect(Event::SaveSuccess, "migr", Some(Step::TmPrologMigrate));
    vm.check_books();
    assert_eq!(vm.p().reason, Reason::User);
    vm.expect(Event::PrologSuccess, "boot", Some(Step::VmmRestore));
    vm.expect(Event::DeploySuccess, "runn", None);
    vm.check_books();
    assert_eq!(vm.holdings(), BTreeMap::from([("b", 1)]));
    let started: Vec<_> = vm.started[2..].to_vec();
    assert_eq!(
        started,
        [
            (Step::VmmSavePrevious, "a"),
            (Step::TmPrologMigrate, "b"),
            (Step::VmmRestore, "b")
        ]
    );
}

#[test]
fn live_migrate_moves_capacity_when_it_succeeds() {
    let mut vm = running_vm();
    vm.fire_to(Event::LiveMigrate, "b").expect("livemigrate");
    assert_eq!((vm.state, vm.lcm), (S::Active, L::Migrate));
    vm.check_books();
    assert_eq!(vm.started.last(), Some(&(Step::VmmMigrate, "a")));
    vm.expect(Event::DeploySuccess, "runn", None);
    vm.check_books();
    assert_eq!(vm.holdings(), BTreeMap::from([("b", 1)]));
    assert_eq!(vm.p().reason, Reason::User);
    assert_eq!(vm.h().host, "b");
}

#[test]
fn failed_migrations_fall_back_to_the_source() {
    for (migrate, fails, waiting) in [
        (Event::LiveMigrate, Event::DeployFailure, L::Migrate),
        (Event::Migrate, Event::SaveFailure, L::SaveMigrate),
    ] {
        let mut vm = running_vm();
        vm.fire_to(migrate, "b").expect("migrate");
        assert_eq!(vm.lcm, waiting);
        vm.expect(fails, "runn", Some(Step::VmmPoll));
        vm.check_books();
        assert_eq!(vm.holdings(), BTreeMap::from([("a", 1)]), "{migrate}");
        let reasons: Vec<_> = vm.history.iter().map(|r| (r.host, r.reason)).collect();
        assert_eq!(
            reasons,
            [
                ("a", Reason::User),
                ("b", Reason::Error),
                ("a", Reason::None)
            ],
            "{migrate}"
        );
        assert_eq!(vm.started.last(), Some(&(Step::VmmPoll, "a")));
    }
}

#[test]
fn failed_save_shutdown_or_cancel_polls_a_still_running_vm() {
    for (action, fails) in [
        (Event::Stop, Event::SaveFailure),
        (Event::Suspend, Event::SaveFailure),
        (Event::Shutdown, Event::ShutdownFailure),
        (Event::Cancel, Event::CancelFailure),
    ] {
        let mut vm = running_vm();
        vm.fire(action);
        vm.expect(fails, "runn", Some(Step::VmmPoll));
        vm.check_books();
    }
}

/// Every driver step that can fail for good, reached by its own path.
fn failures() -> Vec<(&'static str, Vec<Event>, Event)> {
    use Event as E;
    let deploy = E::Deploy { resume: false };
    let run = vec![deploy, E::PrologSuccess, E::DeploySuccess];
    let with = |extra: &[Event]| [run.clone(), extra.to_vec()].concat();
    vec![
        ("prolog", vec![deploy], E::PrologFailure),
        ("deploy", vec![deploy, E::PrologSuccess], E::DeployFailure),
        (
            "prolog_resume",
            with(&[
                E::Stop,
                E::SaveSuccess,
                E::EpilogSuccess,
                E::Resume,
                E::Deploy { resume: true },
            ]),
            E::PrologFailure,
        ),
        (
            "restore after stop",
            with(&[
                E::Stop,
                E::SaveSuccess,
                E::EpilogSuccess,
                E::Resume,
                E::Deploy { resume: true },
                E::PrologSuccess,
            ]),
            E::DeployFailure,
        ),
        (
            "restore after suspend",
            with(&[E::Suspend, E::SaveSuccess, E::Resume]),
            E::DeployFailure,
        ),
        (
            "prolog_migrate",
            with(&[E::Migrate, E::SaveSuccess]),
            E::PrologFailure,
        ),
        (
            "restore after migrate",
            with(&[E::Migrate, E::SaveSuccess, E::PrologSuccess]),
            E::DeployFailure,
        ),
        (
            "epilog",
            with(&[E::Shutdown, E::ShutdownSuccess]),
            E::EpilogFailure,
        ),
        (
            "epilog after cancel",
            with(&[E::Cancel, E::CancelSuccess]),
            E::EpilogFailure,
        ),
        (
            "epilog_stop",
            with(&[E::Stop, E::SaveSuccess]),
            E::EpilogFailure,
        ),
        ("poll e", run.clone(), E::MonitorFailure),
        (
            "poll e in UNKNOWN",
            with(&[E::MonitorDone]),
            E::MonitorFailure,
        ),
    ]
}

#[test]
fn a_failure_at_each_driver_step_ends_failed_with_books_closed() {
    for (what, path, failure) in failures() {
        let mut vm = Vm::new();
        for event in path {
            vm.fire_to(event, vm.other_host()).expect(what);
        }
        vm.expect(failure, "fail", None);
        vm.check_books();
        assert_eq!(vm.h().reason, Reason::Error, "{what}");
        assert!(vm.holdings().is_empty(), "{what}");
        assert!(vm.leases, "{what}: leases are kept until delete");
        let (host, started) = (vm.h().host, vm.started.len());
        // 3.0+: the host files were kept; delete removes them.
        vm.expect(Event::Delete, "done", None);
        vm.check_books();
        assert_eq!(
            vm.started[started..],
            [(Step::TmEpilogDelete, host)],
            "{what}"
        );
    }
}

#[test]
fn resubmit_of_a_failed_vm_cleans_the_host_and_keeps_the_leases() {
    let (what, path, failure) = failures().remove(1);
    let mut vm = Vm::new();
    for event in path {
        vm.fire_to(event, "a").expect(what);
    }
    vm.fire(failure);
    vm.expect(Event::Resubmit, "pend", None);
    vm.check_books();
    assert_eq!(vm.started.last(), Some(&(Step::TmEpilogDelete, "a")));
    assert_eq!(vm.deploy_event(), Event::Deploy { resume: false });
}

#[test]
fn poll_moves_a_running_vm_to_unknown_and_back_or_to_suspended() {
    let mut vm = running_vm();
    vm.expect(Event::MonitorDone, "unkn", None);
    vm.check_books();
    vm.expect(Event::MonitorDone, "unkn", None);
    vm.expect(Event::MonitorAlive, "runn", None);
    vm.expect(Event::MonitorDone, "unkn", None);
    vm.expect(Event::Restart, "boot", Some(Step::VmmDeploy));
    vm.expect(Event::Restart, "boot", Some(Step::VmmDeploy));
    vm.expect(Event::DeploySuccess, "runn", None);
    vm.expect(Event::MonitorSuspend, "susp", None);
    vm.check_books();
}

#[test]
fn reboot_and_reset_change_nothing_whatever_the_reply() {
    for (action, replies) in [
        (Event::Reboot, [Event::RebootSuccess, Event::RebootFailure]),
        (Event::Reset, [Event::ResetSuccess, Event::ResetFailure]),
    ] {
        for reply in replies {
            let mut vm = running_vm();
            let step = if action == Event::Reboot {
                Step::VmmReboot
            } else {
                Step::VmmReset
            };
            vm.expect(action, "runn", Some(step));
            vm.expect(reply, "runn", None);
            vm.check_books();
        }
    }
}

#[test]
fn late_reply_after_delete_is_ignored() {
    let mut vm = running_vm();
    vm.fire(Event::Shutdown);
    vm.expect(Event::Delete, "done", None);
    assert_eq!(
        vm.fire(Event::ShutdownSuccess),
        Outcome::Ignored(Ignore::DeadState)
    );
}

#[test]
fn wrong_state_replies_are_ignored_not_obeyed() {
    let mut vm = running_vm();
    for event in [
        Event::PrologSuccess,
        Event::EpilogFailure,
        Event::SaveSuccess,
    ] {
        assert_eq!(
            vm.fire(event),
            Outcome::Ignored(Ignore::WrongState),
            "{event}"
        );
    }
    assert_eq!(vm.short(), "runn");
}

/// Every event from every state the runner can reach from a new VM, with
/// two hosts, checking the books after each transition; then delete and
/// resubmit from each of those states.
#[test]
fn every_reachable_state_keeps_the_books_and_can_be_deleted() {
    let key = |vm: &Vm| {
        let prev = vm.history.len().checked_sub(2).map(|i| vm.history[i].host);
        format!(
            "{:?}/{:?} {:?} {:?} {:?} {:?} {}",
            vm.state,
            vm.lcm,
            vm.history.last().map(|h| (h.host, h.reason)),
            prev,
            vm.holdings(),
            vm.leases,
            vm.history.iter().filter(|r| r.open()).count()
        )
    };
    let mut seen = BTreeSet::new();
    let mut reached = BTreeSet::new();
    let mut queue = VecDeque::from([Vm::new()]);
    while let Some(vm) = queue.pop_front() {
        if !seen.insert(key(&vm)) {
            continue;
        }
        vm.check_books();
        reached.insert((vm.state.number(), vm.lcm.number()));
        for event in Event::ALL {
            if matches!(event, Event::Deploy { .. }) && event != vm.deploy_event() {
                continue; // the runner picks the variant from the history
            }
            let mut after = vm.clone();
            match after.fire_to(event, vm.other_host()) {
                Ok(Outcome::Transition(t)) => {
                    let at = format!("{}/{} {event} -> {t}", vm.state, vm.lcm);
                    after.check_books();
                    // A state that waits for a reply must have started
                    // what it waits for.
                    if t.state == S::Active && !matches!(t.lcm, L::Running | L::Unknown) {
                        assert!(t.awaited().is_some(), "{at}");
                    }
                    queue.push_back(after);
                }
                Ok(Outcome::Ignored(_)) | Err(_) => {}
            }
        }
        for (event, state) in [(Event::Delete, S::Done), (Event::Resubmit, S::Pending)] {
            let mut after = vm.clone();
            if after.fire_to(event, "a").is_ok() {
                assert_eq!(after.state, state, "{event} from {}", vm.short());
                after.check_books();
                assert!(after.holdings().is_empty());
            }
        }
    }
    // Everything but INIT and OpenNebula's transient ACTIVE states.
    let mut expected = BTreeSet::new();
    for (state, lcm) in pairs() {
        let transient = state == S::Init
            || (state == S::Active && matches!(lcm, L::LcmInit | L::Failure | L::Cleanup));
        if !transient {
            expected.insert((state.number(), lcm.number()));
        }
    }
    assert_eq!(reached, expected);
}

#[test]
fn delete_from_every_pair_ends_done_with_leases_released() {
    for (state, lcm) in pairs() {
        let Ok(Outcome::Transition(t)) = next(state, lcm, Event::Delete) else {
            panic!("delete refused in {state}/{lcm}");
        };
        assert_eq!((t.state, t.lcm), (S::Done, L::LcmInit), "{state}/{lcm}");
        if state != S::Done {
            assert!(t.steps.contains(&Step::ReleaseLeases), "{state}/{lcm}");
            assert!(t.steps.contains(&Step::SetExitTime), "{state}/{lcm}");
        }
    }
}
