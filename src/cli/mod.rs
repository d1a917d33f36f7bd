//! The `cloudgate` command line: `serve` wires the server together; the
//! other commands are clients of the `/v1` API.
//!
//! May use: everything (this is, with `main.rs`, where the parts meet).

pub mod client;
pub mod hosts;
pub mod images;
pub mod output;
pub mod range;
pub mod serve;
pub mod users;
pub mod vms;
pub mod vnets;
