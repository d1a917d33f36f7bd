//! The `kvm` VMM driver's Rust side: the deployment file (libvirt domain
//! XML) generator, `domain.rs` (spec/DRIVERS.md §3). The actions
//! themselves are scripts, `config/remotes/vmm/kvm/`.
//!
//! May use: `crate::template`.

mod domain;

#[cfg(test)]
mod tests;

pub use domain::{domain_xml, Domain, DomainInput, DEFAULT_EMULATOR};

use crate::template::Template;

/// The shipped default file, `config/vmm_exec/vmm_exec_kvm.conf`: used when
/// a `VM_MAD` of type kvm names no `default` file or its file is not found.
pub const BUILT_IN_DEFAULTS: &str = include_str!("../../../config/vmm_exec/vmm_exec_kvm.conf");

/// [`BUILT_IN_DEFAULTS`] parsed.
pub fn built_in_defaults() -> Template {
    Template::parse(BUILT_IN_DEFAULTS).expect("the shipped vmm_exec_kvm.conf parses (unit-tested)")
}
