//! cloudgate: a private-cloud manager with OpenNebula's OCCI and the EC2 Query API.
//!
//! The module map (and which module may use which) is in `DESIGN.md`;
//! `tests/layering.rs` checks it.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod core;
pub mod drivers;
pub mod store;
pub mod template;
