//! Integration tests: one test binary (each `tests/*.rs` file would link
//! separately, minutes each on two cores), one module per area, all
//! driving the real `cloudgate` binary over HTTP.

mod harness;

mod api_users;
mod cli;
mod durability;
mod hosts;
mod images;
mod serve;
mod vnets;
