//! The match-making of spec/CORE.md §6.5, case by case: candidates,
//! REQUIREMENTS, capacity with HYPERVISOR_MEM, RANK and the default
//! policies, ties, MAX_VM / MAX_DISPATCH / MAX_HOST, and the reasons a VM
//! stays pending.

use super::*;
use crate::template::Template;

/// A monitored host with `cpu` (× 100) and `mem` KB, and extra probe
/// lines (which replace the base lines of the same name).
fn host(id: u64, cpu: i64, mem: i64, extra: &str) -> Host {
    let extra = Template::parse(extra).expect("extra probe lines");
    let mut probe = Template::parse(&format!(
        "HYPERVISOR = kvm\nTOTALCPU = {cpu}\nTOTALMEMORY = {mem}"
    ))
    .expect("probe");
    for attribute in extra.attributes() {
        probe.remove(&attribute.name);
        probe.push(&attribute.name, attribute.value.clone());
    }
    let mut h = Host::new(
        id,
        &format!("node-{id:02}"),
        "im_dummy",
        "vmm_dummy",
        "tm_dummy",
    );
    h.monitored(&probe, 1);
    h
}

/// A roomy host: 8 CPUs, 16 GB.
fn big(id: u64) -> Host {
    host(id, 800, 16_777_216, "")
}

fn vm(id: u64, cpu: i64, memory_kb: i64) -> PendingVm {
    PendingVm {
        id,
        owner: 1,
        cpu,
        memory_kb,
        requirements: String::new(),
        rank: String::new(),
    }
}

fn with_req(mut vm: PendingVm, requirements: &str) -> PendingVm {
    vm.requirements = requirements.to_owned();
    vm
}

fn with_rank(mut vm: PendingVm, rank: &str) -> PendingVm {
    vm.rank = rank.to_owned();
    vm
}

fn limits() -> Limits {
    Limits {
        max_vm: 1000,
        max_dispatch: 1000,
        max_host: 1000,
        hypervisor_mem: 0.0,
        default_rank: "- RUNNING_VMS".to_owned(),
    }
}

/// The host each VM went to, `None` if it stayed pending.
fn placed(plan: &Plan, vm: u64) -> Option<u64> {
    plan.dispatch
        .iter()
        .find(|(v, _)| *v == vm)
        .map(|(_, h)| *h)
}

fn reason(plan: &Plan, vm: u64) -> &str {
    plan.unplaced
        .iter()
        .find(|(v, _)| *v == vm)
        .map(|(_, r)| r.as_str())
        .unwrap_or_else(|| panic!("VM {vm} was placed: {plan:?}"))
}

/// Where a lone VM with this RANK goes.
fn best_for(rank: &str, hosts: &[Host]) -> u64 {
    let p = plan(&[with_rank(vm(1, 100, 1024), rank)], hosts, &limits());
    placed(&p, 1).unwrap_or_else(|| panic!("not placed: {p:?}"))
}

// ---- RANK -------------------------------------------------------------------

#[test]
fn rank_puts_the_highest_score_first() {
    let hosts = [
        host(0, 800, 16_777_216, "FREECPU = 100"),
        host(1, 800, 16_777_216, "FREECPU = 300"),
        host(2, 800, 16_777_216, "FREECPU = 200"),
    ];
    assert_eq!(best_for("FREECPU", &hosts), 1);
    // MAX_HOST 1 spreads the VMs in rank order.
    let one = Limits {
        max_host: 1,
        ..limits()
    };
    let vms: Vec<PendingVm> = (1..=3)
        .map(|i| with_rank(vm(i, 100, 0), "FREECPU"))
        .collect();
    let p = plan(&vms, &hosts, &one);
    assert_eq!(p.dispatch, [(1, 1), (2, 2), (3, 0)]);
}

#[test]
fn negative_and_expression_ranks() {
    let hosts = [
        host(0, 800, 16_777_216, "FREECPU = 100\nCPUSPEED = 3000"),
        host(1, 800, 16_777_216, "FREECPU = 300\nCPUSPEED = 1000"),
        host(2, 800, 16_777_216, "FREECPU = 200\nCPUSPEED = 2000"),
    ];
    assert_eq!(best_for("- FREECPU", &hosts), 0);
    assert_eq!(
        best_for("-FREECPU", &hosts),
        0,
        "unary minus glued to the name"
    );
    // host0 100 + 3000/10 = 400, host1 300 + 100 = 400, host2 200 + 200 =
    // 400: a tie, the lowest id.
    assert_eq!(best_for("FREECPU + CPUSPEED / 10", &hosts), 0);
    // host0 -200, host1 200, host2 0.
    assert_eq!(best_for("FREECPU * 2 - 400", &hosts), 1);
    assert_eq!(best_for("(FREECPU - 150) * (FREECPU - 150)", &hosts), 1);
    // Share and host fields are variables too.
    assert_eq!(best_for("ID", &hosts), 2);
    assert_eq!(best_for("- ID", &hosts), 0);
    // A missing variable is 0 everywhere: a tie.
    assert_eq!(best_for("NOSUCH * 5", &hosts), 0);
}

#[test]
fn ranks_are_truncated_integers_before_comparing() {
    // 0.9 and 0.1 both truncate to 0: a tie, the lower id wins, although
    // host 1 has the larger real score.
    let hosts = [
        host(0, 800, 16_777_216, "LOAD = 0.1"),
        host(1, 800, 16_777_216, "LOAD = 0.9"),
    ];
    assert_eq!(best_for("LOAD", &hosts), 0);
    assert_eq!(best_for("LOAD * 10", &hosts), 1);
}

#[test]
fn ties_go_to_the_lower_host_id_whatever_the_input_order() {
    let hosts = [big(5), big(2), big(9)];
    assert_eq!(best_for("", &hosts), 2);
    assert_eq!(best_for("7", &hosts), 2);
    let one = Limits {
        max_host: 1,
        ..limits()
    };
    let vms: Vec<PendingVm> = (1..=3).map(|i| vm(i, 100, 0)).collect();
    assert_eq!(plan(&vms, &hosts, &one).dispatch, [(1, 2), (2, 5), (3, 9)]);
}

#[test]
fn a_rank_syntax_error_ranks_every_host_zero() {
    let hosts = [
        host(0, 800, 16_777_216, "FREECPU = 100"),
        host(1, 800, 16_777_216, "FREECPU = 300"),
    ];
    assert_eq!(best_for("FREECPU +", &hosts), 0);
    assert_eq!(best_for("FREECPU ^ 2", &hosts), 0);
}

#[test]
fn vms_without_rank_use_the_default_policy() {
    let mut busy = big(0);
    busy.share.running_vms = 3;
    busy.share.free_cpu = 500;
    let mut idle = big(1);
    idle.share.running_vms = 1;
    idle.share.free_cpu = 100;
    let hosts = [busy, idle];
    let with = |policy: &str| {
        let l = Limits {
            default_rank: policy.to_owned(),
            ..limits()
        };
        placed(&plan(&[vm(1, 100, 0)], &hosts, &l), 1)
    };
    assert_eq!(with("- RUNNING_VMS"), Some(1), "striping");
    assert_eq!(with("RUNNING_VMS"), Some(0), "packing");
    assert_eq!(with("FREE_CPU"), Some(0), "load-aware");
    assert_eq!(with("- FREE_CPU"), Some(1), "custom");
    assert_eq!(with("garbage +"), Some(0), "a bad default ranks 0");
    // A VM's own RANK wins over the policy; a blank one does not count.
    let l = limits();
    let own = with_rank(vm(1, 100, 0), "RUNNING_VMS");
    assert_eq!(placed(&plan(&[own], &hosts, &l), 1), Some(0));
    let blank = with_rank(vm(1, 100, 0), "  ");
    assert_eq!(placed(&plan(&[blank], &hosts, &l), 1), Some(1));
}

#[test]
fn ranks_and_requirements_see_the_hosts_as_the_cycle_found_them() {
    // As OpenNebula: only the capacity counters move during a cycle, so
    // striping spreads VMs over cycles (or with MAX_HOST), not within one.
    let hosts = [big(0), big(1)];
    let vms = [vm(1, 100, 0), vm(2, 100, 0)];
    let p = plan(&vms, &hosts, &limits());
    assert_eq!(p.dispatch, [(1, 0), (2, 0)]);
    let req = [
        with_req(vm(1, 100, 0), "RUNNING_VMS = 0"),
        with_req(vm(2, 100, 0), "RUNNING_VMS = 0"),
    ];
    assert_eq!(
        plan(&req, &hosts[..1], &limits()).dispatch,
        [(1, 0), (2, 0)]
    );
}

// ---- REQUIREMENTS -------------------------------------------------------------

fn fleet() -> Vec<Host> {
    vec![
        host(
            0,
            400,
            8_388_608,
            "ARCH = x86_64\nHYPERVISOR = xen\nRACK = \"a1\"",
        ),
        host(1, 800, 16_777_216, "ARCH = x86_64\nRACK = \"b1\"\nGPU = 1"),
        host(
            2,
            1600,
            33_554_432,
            "ARCH = aarch64\nRACK = \"b2\"\nLOAD = 0.75",
        ),
    ]
}

/// The hosts a VM with these REQUIREMENTS may go to, by id.
fn matching(requirements: &str) -> Vec<u64> {
    let hosts = fleet();
    let one = Limits {
        max_host: 1,
        ..limits()
    };
    // One VM per host at most, all with the same REQUIREMENTS; RANK by
    // id so the answer is in id order.
    let vms: Vec<PendingVm> = (1..=3)
        .map(|i| with_rank(with_req(vm(i, 0, 0), requirements), "- ID"))
        .collect();
    let mut ids: Vec<u64> = plan(&vms, &hosts, &one)
        .dispatch
        .iter()
        .map(|(_, h)| *h)
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn requirements_on_numbers() {
    assert_eq!(matching(""), [0, 1, 2]);
    assert_eq!(matching("TOTALCPU > 400"), [1, 2]);
    assert_eq!(matching("TOTALCPU < 800"), [0]);
    assert_eq!(matching("TOTALCPU = 800"), [1]);
    assert_eq!(matching("TOTALCPU != 800"), [0, 2]);
    assert_eq!(matching("MAX_MEM > 10000000"), [1, 2], "share names");
    assert_eq!(matching("ID != 1"), [0, 2], "host fields");
    assert_eq!(matching("LOAD > 0.5"), [2], "floats");
    assert_eq!(matching("LOAD = 0.75"), [2]);
    // Missing numbers read as 0 (3.x).
    assert_eq!(matching("GPU = 0"), [0, 2]);
    assert_eq!(matching("GPU > 0"), [1]);
    assert_eq!(matching("LOAD < 0.5"), [0, 1]);
}

#[test]
fn requirements_on_strings_and_wildcards() {
    assert_eq!(matching("ARCH = \"x86_64\""), [0, 1]);
    assert_eq!(matching("ARCH != \"x86_64\""), [2]);
    assert_eq!(matching("HYPERVISOR = \"kvm\""), [1, 2]);
    assert_eq!(matching("RACK = \"b*\""), [1, 2]);
    assert_eq!(matching("RACK = \"?1\""), [0, 1]);
    assert_eq!(matching("RACK = \"[ab]2\""), [2]);
    assert_eq!(matching("NAME = \"node-0[02]\""), [0, 2]);
    assert_eq!(
        matching("RACK = \"B*\""),
        Vec::<u64>::new(),
        "case-sensitive"
    );
    // A missing variable makes both = and != false.
    assert_eq!(matching("COLOR = \"*\""), Vec::<u64>::new());
    assert_eq!(matching("COLOR != \"red\""), Vec::<u64>::new());
    // Names exactly as written.
    assert_eq!(matching("arch = \"x86_64\""), Vec::<u64>::new());
}

#[test]
fn requirements_combine_flat_left_to_right() {
    assert_eq!(matching("ARCH = \"x86_64\" & TOTALCPU > 400"), [1]);
    assert_eq!(matching("RACK = \"a1\" | RACK = \"b2\""), [0, 2]);
    assert_eq!(matching("!(ARCH = \"aarch64\")"), [0, 1]);
    // One precedence level: (ID = 0 | ID = 1) & GPU = 1, not
    // ID = 0 | (ID = 1 & GPU = 1).
    assert_eq!(matching("ID = 0 | ID = 1 & GPU = 1"), [1]);
    assert_eq!(matching("ID = 0 | (ID = 1 & GPU = 1)"), [0, 1]);
}

#[test]
fn requirements_nobody_meets_keep_the_vm_pending_with_the_reason() {
    let p = plan(
        &[with_req(vm(4, 100, 1024), "HYPERVISOR = \"vmware\"")],
        &fleet(),
        &limits(),
    );
    assert!(p.dispatch.is_empty());
    assert_eq!(
        reason(&p, 4),
        "no host satisfies REQUIREMENTS: HYPERVISOR = \"vmware\" (3 monitored hosts checked)"
    );
    let p = plan(&[with_req(vm(4, 0, 0), "ID = 9")], &[big(0)], &limits());
    assert_eq!(
        reason(&p, 4),
        "no host satisfies REQUIREMENTS: ID = 9 (1 monitored host checked)"
    );
}

#[test]
fn a_requirements_syntax_error_excludes_every_host() {
    let vms = [
        with_req(vm(1, 100, 0), "HOSTNAME = node-01"),
        with_req(vm(2, 100, 0), "FREECPU-100 > 0"),
        vm(3, 100, 0),
    ];
    let p = plan(&vms, &fleet(), &limits());
    assert_eq!(p.dispatch, [(3, 0)], "the others go on");
    for id in [1, 2] {
        let r = reason(&p, id);
        assert!(
            r.starts_with("REQUIREMENTS cannot be evaluated: column "),
            "{r}"
        );
    }
    assert!(reason(&p, 1).ends_with("(REQUIREMENTS = \"HOSTNAME = node-01\")"));
}

// ---- capacity ------------------------------------------------------------------

#[test]
fn allocated_capacity_decides_not_monitored_free_figures() {
    let mut h = host(0, 400, 1_000_000, "");
    h.share.cpu_usage = 350;
    h.share.free_cpu = 400; // what the host reports does not matter
    let p = plan(&[vm(1, 100, 0)], &[h.clone()], &limits());
    assert_eq!(
        reason(&p, 1),
        "not enough free CPU on any host (needs 100, best host has 50)"
    );
    assert_eq!(placed(&plan(&[vm(1, 50, 0)], &[h], &limits()), 1), Some(0));
}

#[test]
fn hypervisor_mem_is_kept_from_every_host() {
    let h = host(0, 800, 1_000_000, "");
    let l = Limits {
        hypervisor_mem: 0.1,
        ..limits()
    };
    // 900000 KB may be given to VMs.
    assert_eq!(
        placed(
            &plan(&[vm(1, 100, 900_000)], std::slice::from_ref(&h), &l),
            1
        ),
        Some(0)
    );
    let p = plan(&[vm(1, 100, 900_001)], std::slice::from_ref(&h), &l);
    assert_eq!(
        reason(&p, 1),
        "not enough free memory on any host (needs 900001 KB, best host has 900000 KB)"
    );
    assert_eq!(
        placed(&plan(&[vm(1, 100, 1_000_000)], &[h], &limits()), 1),
        Some(0)
    );
}

#[test]
fn capacity_counts_the_vms_placed_earlier_in_the_cycle() {
    let hosts = [host(0, 400, 4_000_000, ""), host(1, 200, 4_000_000, "")];
    // Packing: fill host 0 first, then host 1.
    let vms: Vec<PendingVm> = (1..=7)
        .map(|i| with_rank(vm(i, 100, 1_000_000), "- ID"))
        .collect();
    let p = plan(&vms, &hosts, &limits());
    assert_eq!(p.dispatch, [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (6, 1)]);
    // Host 0 has neither CPU nor memory left; host 1 has memory but no CPU.
    assert_eq!(
        reason(&p, 7),
        "not enough free CPU on any host (needs 100, best host has 0)"
    );
}

#[test]
fn the_reason_names_what_is_short() {
    let mut cpu_poor = host(0, 800, 8_000_000, "");
    cpu_poor.share.cpu_usage = 750;
    let mut mem_poor = host(1, 800, 8_000_000, "");
    mem_poor.share.mem_usage = 7_500_000;
    // Some host has the CPU, another the memory, none both.
    let p = plan(
        &[vm(1, 100, 1_000_000)],
        &[cpu_poor.clone(), mem_poor.clone()],
        &limits(),
    );
    assert_eq!(
        reason(&p, 1),
        "no host has enough free CPU and memory at once (needs CPU 100 and 1000000 KB)"
    );
    // Neither anywhere: the best of each.
    let p = plan(
        &[vm(1, 900, 9_000_000)],
        &[cpu_poor.clone(), mem_poor],
        &limits(),
    );
    assert_eq!(
        reason(&p, 1),
        "not enough free CPU and memory on any host (needs CPU 900 and 9000000 KB, best \
         hosts have CPU 800 and 8000000 KB)"
    );
    // Only among the hosts that meet the REQUIREMENTS.
    let p = plan(
        &[with_req(vm(1, 100, 0), "ID = 0")],
        &[cpu_poor, big(1)],
        &limits(),
    );
    assert_eq!(
        reason(&p, 1),
        "not enough free CPU on any host (needs 100, best host has 50) (among the 1 host \
         satisfying REQUIREMENTS)"
    );
}

#[test]
fn a_vm_reserving_nothing_fits_anywhere() {
    let mut full = host(0, 100, 1000, "");
    full.share.cpu_usage = 500;
    full.share.mem_usage = 5000;
    let p = plan(&[vm(1, 0, 0)], &[full.clone()], &limits());
    assert_eq!(placed(&p, 1), Some(0));
    // But one that reserves memory only does not fit the memory.
    let p = plan(&[vm(1, 0, 1)], &[full], &limits());
    assert_eq!(
        reason(&p, 1),
        "not enough free memory on any host (needs 1 KB, best host has 0 KB)"
    );
}

// ---- limits ---------------------------------------------------------------------

#[test]
fn max_dispatch_stops_placing_in_id_order() {
    let vms: Vec<PendingVm> = [5, 3, 1, 4, 2].iter().map(|&i| vm(i, 100, 0)).collect();
    let l = Limits {
        max_dispatch: 2,
        ..limits()
    };
    let p = plan(&vms, &[big(0)], &l);
    assert_eq!(p.dispatch, [(1, 0), (2, 0)]);
    let waiting: Vec<u64> = p.unplaced.iter().map(|(id, _)| *id).collect();
    assert_eq!(waiting, [3, 4, 5]);
    assert_eq!(
        reason(&p, 3),
        "waiting for the next scheduling cycle: this one already placed MAX_DISPATCH (2) VMs"
    );
    // VMs that fit nowhere do not count as dispatched.
    let vms = [vm(1, 9999, 0), vm(2, 100, 0), vm(3, 100, 0)];
    let p = plan(&vms, &[big(0)], &l);
    assert_eq!(p.dispatch, [(2, 0), (3, 0)]);
    let none = Limits {
        max_dispatch: 0,
        ..limits()
    };
    assert!(plan(&vms, &[big(0)], &none).dispatch.is_empty());
}

#[test]
fn max_host_spreads_a_cycle_and_says_so() {
    let vms: Vec<PendingVm> = (1..=5).map(|i| vm(i, 100, 0)).collect();
    let l = Limits {
        max_host: 2,
        ..limits()
    };
    let p = plan(&vms, &[big(0), big(1)], &l);
    assert_eq!(p.dispatch, [(1, 0), (2, 0), (3, 1), (4, 1)]);
    assert_eq!(
        reason(&p, 5),
        "waiting for the next scheduling cycle: every host that can take it already \
         received MAX_HOST (2) VMs in this one"
    );
}

#[test]
fn max_vm_considers_only_the_lowest_ids() {
    let vms: Vec<PendingVm> = [9, 7, 8, 1, 2].iter().map(|&i| vm(i, 900, 0)).collect();
    let l = Limits {
        max_vm: 3,
        ..limits()
    };
    let p = plan(&vms, &[big(0)], &l);
    let seen: Vec<u64> = p.unplaced.iter().map(|(id, _)| *id).collect();
    assert_eq!(seen, [1, 2, 7], "the others were not looked at");
}

// ---- candidates ------------------------------------------------------------------

#[test]
fn only_hosts_monitored_successfully_are_candidates() {
    let mut init = big(0);
    init.state = HostState::Init;
    let mut error = big(1);
    error.failed("Could not monitor host node-01.", 2);
    let mut disabled = big(2);
    disabled.disable();
    let mut first = Host::new(3, "first", "im_dummy", "vmm_dummy", "tm_dummy");
    first.start_monitoring().expect("monitoring");
    let mut again = big(4);
    again.start_monitoring().expect("monitoring");
    let mut retry = big(5);
    retry.failed("x", 2);
    retry.start_monitoring().expect("monitoring");
    let hosts = [init, error, disabled, first, again, retry, big(6)];
    let one = Limits {
        max_host: 1,
        ..limits()
    };
    let vms: Vec<PendingVm> = (1..=3).map(|i| vm(i, 100, 0)).collect();
    let p = plan(&vms, &hosts, &one);
    // MONITORING after a success (4) and MONITORED (6) only.
    assert_eq!(p.dispatch, [(1, 4), (2, 6)]);
    assert!(reason(&p, 3).contains("MAX_HOST (1)"), "{p:?}");
}

#[test]
fn without_candidates_the_reason_says_why() {
    let vms = [vm(1, 100, 0), vm(2, 0, 0)];
    let p = plan(&vms, &[], &limits());
    assert_eq!(
        p.unplaced,
        [
            (1, "no host is registered".to_owned()),
            (2, "no host is registered".to_owned())
        ]
    );

    let fresh = Host::new(0, "fresh", "im_dummy", "vmm_dummy", "tm_dummy");
    let mut first = Host::new(1, "first", "im_dummy", "vmm_dummy", "tm_dummy");
    first.start_monitoring().expect("monitoring");
    let p = plan(&vms, &[fresh.clone(), first.clone()], &limits());
    assert_eq!(reason(&p, 1), "no host is monitored yet");

    let mut error = big(2);
    error.failed("x", 2);
    let mut disabled = big(3);
    disabled.disable();
    let mut retry = big(4);
    retry.failed("x", 2);
    retry.start_monitoring().expect("monitoring");
    let p = plan(
        &vms,
        &[fresh, error.clone(), disabled.clone(), retry],
        &limits(),
    );
    assert_eq!(
        reason(&p, 2),
        "no host can take VMs: 1 waiting for monitoring, 2 in ERROR, 1 disabled"
    );
    let p = plan(&vms, &[disabled], &limits());
    assert_eq!(reason(&p, 1), "no host can take VMs: 1 disabled");
}

#[test]
fn limits_come_from_the_settings() {
    let settings = crate::core::Settings {
        max_vm: 7,
        max_dispatch: 8,
        max_host: 9,
        hypervisor_mem: 0.25,
        default_rank: "FREE_CPU".into(),
        ..crate::core::Settings::default()
    };
    assert_eq!(
        Limits::from_settings(&settings),
        Limits {
            max_vm: 7,
            max_dispatch: 8,
            max_host: 9,
            hypervisor_mem: 0.25,
            default_rank: "FREE_CPU".into(),
        }
    );
    let defaults = Limits::from_settings(&crate::core::Settings::default());
    assert_eq!(defaults, Limits::default());
}

#[test]
fn a_mixed_cycle() {
    // Two kinds of VMs sharing texts, a full host, and every outcome.
    let mut full = host(0, 800, 16_777_216, "ARCH = x86_64");
    full.share.cpu_usage = 800;
    let hosts = [
        full,
        host(1, 400, 8_388_608, "ARCH = x86_64"),
        host(2, 800, 16_777_216, "ARCH = aarch64"),
    ];
    let x86 = "ARCH = \"x86_64\"";
    let vms = vec![
        with_req(vm(10, 200, 2_097_152), x86),
        with_req(vm(11, 200, 2_097_152), x86),
        with_req(vm(12, 200, 2_097_152), x86),
        with_rank(vm(13, 100, 1_048_576), "FREE_CPU"),
        with_req(vm(14, 100, 0), "ARCH = \"ppc*\""),
    ];
    let p = plan(&vms, &hosts, &limits());
    assert_eq!(p.dispatch, [(10, 1), (11, 1), (13, 2)]);
    assert_eq!(
        reason(&p, 12),
        "not enough free CPU on any host (needs 200, best host has 0) (among the 2 hosts \
         satisfying REQUIREMENTS)"
    );
    assert!(reason(&p, 14).starts_with("no host satisfies REQUIREMENTS: ARCH = \"ppc*\""));
}
