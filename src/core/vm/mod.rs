//! Virtual machines (spec/CORE.md §1–§2). For now only the life cycle as
//! one pure table, [`state`]; the VM pool and the runner that follows the
//! table's steps come later.
//!
//! May use: `crate::core` only.

pub mod state;
