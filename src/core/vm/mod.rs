//! Virtual machines (spec/CORE.md §1–§2, §4.5–4.6, §5.2, §8.4).
//!
//! What lives here:
//! - `state` (and its files): the life cycle as one pure table, `next`;
//! - `record.rs`: what is stored about a VM ([`Vm`], [`History`],
//!   [`Pending`]);
//! - `create.rs`: the template's validation and creation-time rewriting
//!   (VMID, NAME, DISKs, leased NICs, CONTEXT, REQUIREMENTS);
//! - `pool.rs`: [`VmPool`], the one write path of every VM change, which
//!   follows the table's steps blindly;
//! - `jobs.rs`: driver steps made concrete (requests, TM action lists);
//! - `runner.rs`: the worker threads that run them through
//!   `core::ports::Drivers` and feed the results back as events;
//! - `saveas.rs`: a disk saved as a new image when the VM shuts down
//!   (OCCI.md §4.2 `SAVE_AS`);
//! - `poll.rs`: periodic VM polling (§1.5);
//! - `log.rs`: where a VM's log (`var/<vid>/vm.log`) lives and how it is
//!   read back;
//! - `recovery.rs`: start-up recount and re-driving of VMs caught
//!   mid-operation (§8.4).
//!
//! Hooks (`core::hooks`) are fired by the pool after every committed state
//! change; the scheduler (`core::sched`) reaches the pool through its
//! `Placement` trait and is woken when a VM becomes pending.
//!
//! May use: `crate::template` and the rest of `crate::core`.

mod create;
mod jobs;
pub mod log;
pub mod poll;
mod pool;
mod record;
mod recovery;
mod runner;
mod saveas;
pub mod state;
mod tokens;

#[cfg(test)]
mod tests;

pub use pool::{reason_short, Action, Filter, VmPool};
pub use record::{History, Pending, Reservation, Usage, Vm, VmError};
pub use recovery::{decide, Decision};
pub use saveas::SAVE_AS;
