//! Integration tests: one test binary (each `tests/*.rs` file would link
//! separately, minutes each on two cores), one module per area, all
//! driving the real `cloudgate` binary over HTTP.

mod harness;

mod api_users;
mod cli;
mod contract;
mod durability;
mod ec2;
mod ec2_clients;
mod hosts;
mod images;
mod monitor;
mod occi;
mod readme;
mod realhost;
mod realvm;
mod serve;
mod vms;
mod vnets;
