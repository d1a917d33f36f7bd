//! The scheduler's knobs (CORE.md 6.5): OpenNebula 3.x's `sched.conf`
//! attributes, read from the same file as everything else.
//!
//! The defaults shipped in `config/cloudgate.conf` are "responsive"
//! (DRIVERS.md 10.1: a cycle every 5 s, large batches) rather than
//! OpenNebula's 30 s / 300 / 30 / 1, because cloudgate schedules in-process
//! and also wakes the scheduler when a VM becomes pending.

use std::borrow::Cow;
use std::time::Duration;

use crate::template::Vector;

use super::values;

/// Match-making limits and the default ranking policy.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// `SCHED_INTERVAL`: time between two scheduling cycles.
    pub interval: Duration,
    /// `MAX_VM`: pending VMs considered per cycle.
    pub max_vm: u32,
    /// `MAX_DISPATCH`: VMs dispatched per cycle.
    pub max_dispatch: u32,
    /// `MAX_HOST`: VMs dispatched to one host per cycle.
    pub max_host: u32,
    /// `HYPERVISOR_MEM`: fraction of a host's memory kept for the hypervisor
    /// and never allocated to VMs.
    pub hypervisor_mem: f64,
    /// `DEFAULT_SCHED`: the ranking used for VMs without a `RANK`.
    pub default_policy: SchedPolicy,
}

/// `DEFAULT_SCHED = [ POLICY = n, RANK = "expr" ]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchedPolicy {
    /// 0: fill the busiest hosts first (`RANK = RUNNING_VMS`).
    Packing,
    /// 1: spread VMs over hosts (`RANK = - RUNNING_VMS`); OpenNebula's default.
    Striping,
    /// 2: prefer hosts with the most free CPU (`RANK = FREE_CPU`).
    LoadAware,
    /// 3: the configured `RANK` expression.
    Custom {
        /// The RANK expression, checked by the scheduler when it is used.
        rank: String,
    },
}

/// The vector keys of `DEFAULT_SCHED`.
pub(crate) const DEFAULT_SCHED_KEYS: &[&str] = &["POLICY", "RANK"];

impl SchedPolicy {
    /// The RANK expression this policy stands for.
    pub fn rank(&self) -> Cow<'_, str> {
        match self {
            SchedPolicy::Packing => Cow::Borrowed("RUNNING_VMS"),
            SchedPolicy::Striping => Cow::Borrowed("- RUNNING_VMS"),
            SchedPolicy::LoadAware => Cow::Borrowed("FREE_CPU"),
            SchedPolicy::Custom { rank } => Cow::Borrowed(rank),
        }
    }

    /// OpenNebula's policy number.
    pub fn number(&self) -> u32 {
        match self {
            SchedPolicy::Packing => 0,
            SchedPolicy::Striping => 1,
            SchedPolicy::LoadAware => 2,
            SchedPolicy::Custom { .. } => 3,
        }
    }

    /// Read a `DEFAULT_SCHED` vector. `Err` is the message of a fatal error;
    /// `Ok` may carry warnings. Without `POLICY` the policy is 1 (striping),
    /// as in `sched.conf`.
    pub(crate) fn from_vector(v: &Vector) -> Result<(SchedPolicy, Vec<String>), String> {
        let policy = match v.get("POLICY").map(str::trim).filter(|p| !p.is_empty()) {
            None => 1,
            Some(text) => values::whole(text, 0, 3).map_err(|_| {
                format!(
                    "DEFAULT_SCHED POLICY must be 0 (packing), 1 (striping), 2 (load-aware) or 3 \
                     (custom RANK), found {text:?}"
                )
            })?,
        };
        let rank = v.get("RANK").map(str::trim).filter(|r| !r.is_empty());
        let mut warnings = Vec::new();
        let chosen = match policy {
            0 => SchedPolicy::Packing,
            1 => SchedPolicy::Striping,
            2 => SchedPolicy::LoadAware,
            _ => SchedPolicy::Custom {
                rank: rank
                    .ok_or("DEFAULT_SCHED POLICY = 3 (custom) needs a RANK expression")?
                    .to_owned(),
            },
        };
        if rank.is_some() && policy != 3 {
            warnings.push(format!(
                "DEFAULT_SCHED RANK is used only with POLICY = 3 (ignored with POLICY = {policy})"
            ));
        }
        Ok((chosen, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Template, Value};

    fn policy(text: &str) -> Result<(SchedPolicy, Vec<String>), String> {
        let t = Template::parse(text).expect("test template parses");
        match &t.attributes()[0].value {
            Value::Vector(v) => SchedPolicy::from_vector(v),
            Value::Single(_) => panic!("not a vector"),
        }
    }

    #[test]
    fn policies() {
        assert_eq!(
            policy("DEFAULT_SCHED = [ POLICY = 1 ]"),
            Ok((SchedPolicy::Striping, vec![]))
        );
        assert_eq!(
            policy("DEFAULT_SCHED = [ RANK = \"FREE_CPU\", POLICY = 0 ]").map(|p| p.0),
            Ok(SchedPolicy::Packing)
        );
        let (p, w) =
            policy("DEFAULT_SCHED = [ POLICY = 3, RANK = \"- RUNNING_VMS\" ]").expect("valid");
        assert_eq!(p.rank(), "- RUNNING_VMS");
        assert_eq!(p.number(), 3);
        assert!(w.is_empty());
        assert_eq!(SchedPolicy::LoadAware.rank(), "FREE_CPU");
        assert_eq!(
            policy("DEFAULT_SCHED = [ POLICY = 2, RANK = FREE_MEM ]").map(|p| p.1),
            Ok(vec![
                "DEFAULT_SCHED RANK is used only with POLICY = 3 (ignored with POLICY = 2)"
                    .to_owned()
            ])
        );
        assert_eq!(
            policy("DEFAULT_SCHED = [ POLICY = 3 ]"),
            Err("DEFAULT_SCHED POLICY = 3 (custom) needs a RANK expression".to_owned())
        );
        assert!(policy("DEFAULT_SCHED = [ POLICY = 4 ]").is_err());
    }
}
