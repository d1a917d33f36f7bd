//! What the core needs from the outside, declared here and implemented
//! elsewhere (`crate::store`, `crate::drivers`), wired together in the CLI's
//! `serve` (STYLE.md §1.9). Tests plug in fakes.

mod drivers;
mod store;

pub use drivers::{
    DeployRequest, DomainRequest, Drivers, HookRequest, HookSite, HostPath, MigrateRequest,
    MigrationPhase, MonitorRequest, PollAnswer, PollState, RestoreRequest, SaveRequest, ScriptEnv,
    TmAction, TransferRequest, VmmTarget,
};
pub use store::{write, write_with, Durability, Pool, Store, Tx};
