//! How long one scheduling cycle takes (spec/CORE.md §6.5): `plan()`
//! placing 10,000 pending VMs on 1,000 monitored hosts. Prints figures; it
//! asserts nothing about time (tests never do). Target: under 1 s.
//!
//! Two workloads:
//! - typical: VMs made from a few instance types, sharing a handful of
//!   REQUIREMENTS and RANK texts (what OCCI and EC2 clients create);
//! - worst case: every VM with its own REQUIREMENTS and RANK, so nothing
//!   is shared and every expression is evaluated on every host.
//!
//! Run: `cargo bench --bench scheduler` (add `--profile dev` to skip the
//! optimised build).

use std::time::{Duration, Instant};

use cloudgate::core::host::Host;
use cloudgate::core::sched::{plan, Limits, PendingVm, Plan};
use cloudgate::template::Template;

const HOSTS: u64 = 1_000;
const VMS: u64 = 10_000;
const RUNS: usize = 3;

/// A deterministic sequence, so every run sees the same fleet.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn hosts(rng: &mut Lcg) -> Vec<Host> {
    (0..HOSTS)
        .map(|id| {
            let cores = [8, 16, 32, 64][rng.next(4) as usize];
            let mem_kb = cores * 4 * 1_048_576;
            let arch = if rng.next(5) == 0 {
                "aarch64"
            } else {
                "x86_64"
            };
            let probe = format!(
                "HYPERVISOR = kvm\nARCH = {arch}\nRACK = r{}\nTOTALCPU = {}\n\
                 TOTALMEMORY = {mem_kb}\nFREECPU = {}\nFREEMEMORY = {mem_kb}\nCPUSPEED = {}",
                rng.next(20),
                cores * 100,
                rng.next(cores * 100),
                2000 + rng.next(1500)
            );
            let mut host = Host::new(id, &format!("node{id:04}"), "im_kvm", "vmm_kvm", "tm_ssh");
            host.monitored(&Template::parse(&probe).expect("probe"), 1);
            // Some VMs already run there.
            let running = rng.next(cores / 2);
            host.share.running_vms = running as i64;
            host.share.cpu_usage = (running * 100) as i64;
            host.share.mem_usage = (running * 1_048_576) as i64;
            host
        })
        .collect()
}

fn typical_vms(rng: &mut Lcg) -> Vec<PendingVm> {
    // (CPU × 100, MEMORY KB): m1.small … m1.xlarge-like sizes.
    let sizes = [
        (20, 262_144),
        (50, 1_048_576),
        (100, 2_097_152),
        (100, 3_932_160),
        (200, 7_864_320),
        (400, 15_728_640),
    ];
    let requirements = [
        "",
        "",
        "ARCH = \"x86_64\"",
        "ARCH = \"x86_64\" & TOTALCPU > 1600",
        "RACK = \"r1*\"",
        "HYPERVISOR = \"kvm\" & !(RACK = \"r3\")",
    ];
    let ranks = [
        "",
        "",
        "FREE_CPU",
        "FREECPU - RUNNING_VMS * 50",
        "- RUNNING_VMS",
    ];
    (0..VMS)
        .map(|id| {
            let (cpu, memory_kb) = sizes[rng.next(sizes.len() as u64) as usize];
            PendingVm {
                id,
                owner: 1 + rng.next(50),
                cpu,
                memory_kb,
                requirements: requirements[rng.next(requirements.len() as u64) as usize].to_owned(),
                rank: ranks[rng.next(ranks.len() as u64) as usize].to_owned(),
            }
        })
        .collect()
}

fn distinct_vms(rng: &mut Lcg) -> Vec<PendingVm> {
    (0..VMS)
        .map(|id| PendingVm {
            id,
            owner: 1,
            cpu: 50,
            memory_kb: 524_288,
            requirements: format!("TOTALCPU > {} & ARCH = \"x86*\"", id % 700),
            rank: format!("FREECPU - {} * RUNNING_VMS", 1 + rng.next(100) + id * 1000),
        })
        .collect()
}

/// The best of [`RUNS`] runs, and the last plan.
fn time(vms: &[PendingVm], hosts: &[Host], limits: &Limits) -> (Duration, Plan) {
    let mut best = Duration::MAX;
    let mut last = Plan::default();
    for _ in 0..RUNS {
        let started = Instant::now();
        last = plan(vms, hosts, limits);
        best = best.min(started.elapsed());
    }
    (best, last)
}

fn report(name: &str, vms: &[PendingVm], hosts: &[Host], limits: &Limits) {
    let (took, result) = time(vms, hosts, limits);
    println!(
        "{name:<42} {:>9.1} ms   dispatched {:>5}, pending {:>5}",
        took.as_secs_f64() * 1000.0,
        result.dispatch.len(),
        result.unplaced.len()
    );
}

fn main() {
    let mut rng = Lcg(42);
    let fleet = hosts(&mut rng);
    let typical = typical_vms(&mut rng);
    let distinct = distinct_vms(&mut rng);
    let limits = Limits {
        max_vm: VMS as usize,
        max_dispatch: VMS as usize,
        max_host: 100,
        hypervisor_mem: 0.1,
        default_rank: "- RUNNING_VMS".to_owned(),
    };
    println!(
        "scheduler: plan() of {VMS} pending VMs on {HOSTS} hosts (best of {RUNS}; target < 1 s)"
    );
    report(
        "typical (6 REQUIREMENTS x 5 RANK texts)",
        &typical,
        &fleet,
        &limits,
    );
    report(
        "worst case (every VM its own texts)",
        &distinct,
        &fleet,
        &limits,
    );
    let opennebula = Limits {
        max_vm: 300,
        max_dispatch: 30,
        max_host: 1,
        ..limits.clone()
    };
    report(
        "typical, OpenNebula limits (300/30/1)",
        &typical,
        &fleet,
        &opennebula,
    );
}
