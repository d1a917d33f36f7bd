//! Whole-file tests: the shipped defaults, the OpenNebula 1.4 reference
//! example, and broken files with their exact messages.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::template::Template;

const ONED_14_EXAMPLE: &str = include_str!("../../tests/data/config/oned-1.4-example.conf");

fn load(text: &str) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    Config::from_text(text, "config/x.conf")
}

/// The error message of a file that must be refused.
fn error(text: &str) -> String {
    load(text)
        .expect_err("the file should be refused")
        .to_string()
}

/// The warnings of a file that must load.
fn warnings(text: &str) -> Vec<String> {
    let (_, warnings) = load(text).expect("the file should load");
    warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn built_in_file_parses_with_no_warnings() {
    let mut config = load::blank();
    let warnings =
        load::apply(&mut config, BUILT_IN_TEXT, BUILT_IN_SOURCE).expect("built-in file is valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config, Config::default());

    // Read again as a user file on top of itself: same values, no warnings.
    let (again, warnings) = Config::from_text(BUILT_IN_TEXT, "cloudgate.conf").expect("valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(again.summary(), config.summary());
    assert_eq!(again.scheduler, config.scheduler);
    assert_eq!(again.ec2_instance_types, config.ec2_instance_types);
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = Config::default();
    let secs = Duration::from_secs;
    assert_eq!(c.manager_timer, secs(15));
    assert_eq!(c.host_monitoring_interval, secs(60));
    assert_eq!(c.host_per_interval, 15);
    assert_eq!(c.vm_polling_interval, secs(60));
    assert_eq!(c.vm_per_interval, 15);
    assert_eq!(c.vm_dir, PathBuf::from("/var/lib/one/vms"));
    assert_eq!(c.scripts_remote_dir, PathBuf::from("/var/tmp/one"));
    assert_eq!(c.mac_prefix, [0x02, 0x00]);
    assert_eq!(c.network_size, 254);
    assert_eq!(c.port, None);
    assert_eq!(c.debug_level, DebugLevel::Info);
    assert_eq!(c.vnc_base_port, 5900);
    assert_eq!(
        c.scheduler,
        SchedulerConfig {
            interval: secs(5),
            max_vm: 5000,
            max_dispatch: 1000,
            max_host: 100,
            hypervisor_mem: 0.1,
            default_policy: SchedPolicy::Striping,
        }
    );

    let names = |list: &[DriverDef]| {
        list.iter()
            .map(|d| (d.name.clone(), d.folder().to_owned()))
            .collect::<Vec<_>>()
    };
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&c.im_drivers),
        pairs(&[("im_dummy", "dummy"), ("im_kvm", "kvm")])
    );
    assert_eq!(
        names(&c.vmm_drivers),
        pairs(&[("vmm_dummy", "dummy"), ("vmm_kvm", "kvm")])
    );
    assert_eq!(
        names(&c.tm_drivers),
        pairs(&[
            ("tm_dummy", "dummy"),
            ("tm_ssh", "ssh"),
            ("tm_shared", "shared")
        ])
    );
    let kvm = &c.vmm_drivers[1];
    assert_eq!(kvm.executable.as_deref(), Some("one_vmm_exec"));
    assert_eq!(kvm.driver_type.as_deref(), Some("kvm"));
    assert_eq!(kvm.default.as_deref(), Some("vmm_exec/vmm_exec_kvm.conf"));
    assert_eq!((kvm.threads, kvm.retries), (Some(15), Some(0)));
    assert_eq!(kvm.location.source, BUILT_IN_SOURCE);
    assert_eq!(
        c.hook_manager,
        Some(HookManagerDef {
            executable: Some("one_hm".into()),
            arguments: None
        })
    );
    assert!(c.hooks.is_empty());

    assert_eq!(
        c.listen,
        "127.0.0.1:4567".parse::<SocketAddr>().expect("literal")
    );
    assert_eq!(c.public_url, None);
    assert_eq!(c.data_dir, PathBuf::from("./var"));
    assert_eq!(c.remotes_dir, PathBuf::from("config/remotes"));
    assert_eq!(c.occi_dialect, OcciDialect::Auto);
    let sizes = |list: &[InstanceType]| {
        list.iter()
            .map(|t| (t.name.clone(), t.cpu, t.vcpu, t.memory_mb))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sizes(&c.occi_instance_types),
        vec![
            ("small".into(), 1.0, None, 1024),
            ("medium".into(), 4.0, None, 4096),
            ("large".into(), 8.0, None, 8192),
        ]
    );
    assert_eq!(
        c.ec2_instance_type("m1.small"),
        Some(&InstanceType {
            name: "m1.small".into(),
            cpu: 0.2,
            vcpu: Some(1),
            memory_mb: 256,
            network: None,
            template: None,
        })
    );
    let ec2_names: Vec<&str> = c
        .ec2_instance_types
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        ec2_names,
        [
            "m1.small",
            "m1.medium",
            "m1.large",
            "m1.xlarge",
            "t2.micro",
            "t2.small",
            "t2.medium"
        ]
    );
    assert_eq!(c.ec2_default_instance_type, "m1.small");
    assert_eq!(c.ec2_path_prefix, "/");
    assert_eq!(c.ec2_terminated_visible, secs(900));
    assert_eq!(c.body_limit, 1 << 20);
    assert_eq!(c.upload_limit, 10 << 30);
    assert_eq!(c.signature_skew, secs(900));
    assert_eq!(c.driver_timeout, secs(300));
    assert_eq!(c.shutdown_timeout, secs(300));
    assert_eq!(c.ssh_connect_timeout, secs(10));
    assert_eq!(c.ssh_host_key_policy, SshHostKeyPolicy::AcceptNew);
    assert_eq!(c.host_action_limit, 8);
    assert_eq!(
        c.summary(),
        "2 IM, 2 VMM, 3 TM drivers, 0 hooks, listen 127.0.0.1:4567, data dir ./var"
    );
}

/// Every attribute is in the shipped file (optional ones as a commented
/// example), and each is introduced by a comment.
#[test]
fn built_in_file_sets_and_documents_every_attribute() {
    const SET: &[&str] = &[
        "MANAGER_TIMER",
        "HOST_MONITORING_INTERVAL",
        "HOST_PER_INTERVAL",
        "VM_POLLING_INTERVAL",
        "VM_PER_INTERVAL",
        "VM_DIR",
        "SCRIPTS_REMOTE_DIR",
        "MAC_PREFIX",
        "NETWORK_SIZE",
        "DEBUG_LEVEL",
        "VNC_BASE_PORT",
        "DB",
        "SCHED_INTERVAL",
        "MAX_VM",
        "MAX_DISPATCH",
        "MAX_HOST",
        "HYPERVISOR_MEM",
        "DEFAULT_SCHED",
        "IM_MAD",
        "VM_MAD",
        "TM_MAD",
        "HM_MAD",
        "LISTEN",
        "DATA_DIR",
        "REMOTES_DIR",
        "OCCI_DIALECT",
        "OCCI_INSTANCE_TYPE",
        "EC2_INSTANCE_TYPE",
        "EC2_DEFAULT_INSTANCE_TYPE",
        "EC2_PATH_PREFIX",
        "EC2_TERMINATED_VISIBLE",
        "BODY_LIMIT",
        "UPLOAD_LIMIT",
        "SIGNATURE_SKEW",
        "DRIVER_TIMEOUT",
        "SHUTDOWN_TIMEOUT",
        "SSH_CONNECT_TIMEOUT",
        "SSH_HOST_KEY_POLICY",
        "HOST_ACTION_LIMIT",
    ];
    const COMMENTED: &[&str] = &["PORT", "PUBLIC_URL", "VM_HOOK"];

    let (template, positions) = crate::template::parse_spanned(BUILT_IN_TEXT).expect("valid");
    let lines: Vec<&str> = BUILT_IN_TEXT.lines().collect();
    for name in SET {
        let first = template
            .attributes()
            .iter()
            .zip(&positions)
            .find(|(a, _)| a.name == *name)
            .map(|(_, p)| p.line);
        let line = first.unwrap_or_else(|| panic!("{name} is not set in config/cloudgate.conf"));
        assert!(
            lines[line - 2].starts_with('#'),
            "{name} (line {line}) has no comment above it"
        );
    }
    for name in COMMENTED {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("# {name} = "))),
            "{name} has no commented example"
        );
    }
    // Each must be a known attribute: setting it alone gives no warning.
    for name in SET.iter().chain(COMMENTED) {
        let sample = lines
            .iter()
            .find(|l| {
                l.trim_start_matches("# ")
                    .starts_with(&format!("{name} = "))
            })
            .map(|l| l.trim_start_matches("# "))
            .unwrap_or_else(|| panic!("{name} has no one-line form"));
        if sample.ends_with(',') {
            continue; // a vector spanning several lines; covered above
        }
        let (_, warnings) = load(sample).unwrap_or_else(|e| panic!("{sample}: {e}"));
        assert!(warnings.is_empty(), "{sample}: {warnings:?}");
    }
}

#[test]
fn reference_guide_oned_conf_loads_unchanged() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config/oned-1.4-example.conf");
    let (c, warnings) = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    let (same, _) = Config::from_text(ONED_14_EXAMPLE, &path.display().to_string()).expect("valid");
    assert_eq!(c, same);

    assert_eq!(c.host_monitoring_interval, Duration::from_secs(10));
    assert_eq!(c.vm_polling_interval, Duration::from_secs(10));
    assert_eq!(c.vm_dir, PathBuf::from("/local/images"));
    assert_eq!(c.port, Some(2633));
    assert_eq!(c.debug_level, DebugLevel::Debug);
    assert_eq!(c.network_size, 254);
    assert_eq!(c.mac_prefix, [0x00, 0x50]);

    // The file's drivers replace the defaults, class by class.
    assert_eq!(c.im_drivers.len(), 1);
    let im = &c.im_drivers[0];
    assert_eq!((im.name.as_str(), im.folder()), ("im_kvm", "kvm"));
    assert_eq!(im.executable.as_deref(), Some("one_im_ssh"));
    assert_eq!(im.arguments.as_deref(), Some("im_kvm/im_kvm.conf"));
    assert_eq!((im.location.line, im.location.col), (24, 1));
    assert_eq!(im.location.source, path.display().to_string());
    let vmm = &c.vmm_drivers[0];
    assert_eq!(c.vmm_drivers.len(), 1);
    assert_eq!((vmm.name.as_str(), vmm.folder()), ("vmm_kvm", "kvm"));
    assert_eq!(vmm.executable.as_deref(), Some("one_vmm_kvm"));
    assert_eq!(vmm.default.as_deref(), Some("vmm_kvm/vmm_kvm.conf"));
    assert_eq!(vmm.driver_type.as_deref(), Some("kvm"));
    assert_eq!(vmm.arguments, None);
    let tm = &c.tm_drivers[0];
    assert_eq!(c.tm_drivers.len(), 1);
    assert_eq!((tm.name.as_str(), tm.folder()), ("tm_nfs", "nfs"));
    assert_eq!(tm.remotes_subdir(), PathBuf::from("tm/nfs"));
    assert_eq!(
        c.hook_manager
            .as_ref()
            .and_then(|h| h.executable.as_deref()),
        Some("one_hm")
    );
    assert_eq!(c.hooks.len(), 1);
    let hook = &c.hooks[0];
    assert_eq!(hook.name, "mail");
    assert_eq!(hook.on, HookEvent::Running);
    assert_eq!(hook.command, "/usr/local/bin/send_mail");
    assert_eq!(hook.arguments.as_deref(), Some("$VMID $NAME"));
    assert!(!hook.remote);

    // What it does not set keeps cloudgate's defaults.
    assert_eq!(c.listen, Config::default().listen);
    assert_eq!(c.scheduler, Config::default().scheduler);
    assert_eq!(
        c.summary(),
        "1 IM, 1 VMM, 1 TM drivers, 1 hook, listen 127.0.0.1:4567, data dir ./var"
    );
    // Hosts find drivers by name or folder.
    assert_eq!(
        c.driver(DriverClass::Tm, "nfs").map(|d| d.name.as_str()),
        Some("tm_nfs")
    );
    assert_eq!(
        c.driver(DriverClass::Im, "im_kvm").map(|d| d.name.as_str()),
        Some("im_kvm")
    );
    assert!(c.driver(DriverClass::Im, "dummy").is_none());
}

#[test]
fn syntax_errors_carry_the_parser_position() {
    let text = "LISTEN = \"127.0.0.1:4567\"\nMAC_PREFIX 02:00\n";
    let parse_error = Template::parse(text).expect_err("broken template");
    assert_eq!(
        error(text),
        format!(
            "config/x.conf:{}:{}: {}",
            parse_error.line, parse_error.col, parse_error.message
        )
    );
    assert_eq!(
        error(text),
        "config/x.conf:2:12: expected '=' after attribute name, found '0'"
    );
    assert_eq!(
        error("\n\nPUBLIC_URL = \"http://x\n"),
        "config/x.conf:3:14: expected a closing '\"' for the value that starts here, found end of input"
    );
}

#[test]
fn bad_values_are_errors_at_their_attribute() {
    let cases: &[(&str, &str)] = &[
        (
            "# comment\nLISTEN = \"0.0.0.0:80\"\n\nMAC_PREFIX = zz\n",
            "config/x.conf:4:1: MAC_PREFIX must be two hex bytes like \"02:00\", found \"zz\"",
        ),
        (
            "  LISTEN = \"localhost:4567\"",
            "config/x.conf:1:3: LISTEN must be an IP address and port like \"127.0.0.1:4567\", found \"localhost:4567\"",
        ),
        (
            "NETWORK_SIZE = 254\nMAX_VM = lots\n",
            "config/x.conf:2:1: MAX_VM must be a whole number, at least 1, found \"lots\"",
        ),
        (
            "HOST_MONITORING_INTERVAL = -10",
            "config/x.conf:1:1: HOST_MONITORING_INTERVAL must be a whole number of seconds, at least 1, found \"-10\"",
        ),
        (
            "DEBUG_LEVEL = 7",
            "config/x.conf:1:1: DEBUG_LEVEL must be 0 (ERROR), 1 (WARNING), 2 (INFO) or 3 (DEBUG), found \"7\"",
        ),
        (
            "OCCI_DIALECT = 3.0",
            "config/x.conf:1:1: OCCI_DIALECT must be auto, 1.4 or 2.x, found \"3.0\"",
        ),
        (
            "BODY_LIMIT = 1.5M",
            "config/x.conf:1:1: BODY_LIMIT must be a size in bytes with an optional K, M or G suffix like \"1M\", found \"1.5M\"",
        ),
        (
            "VNC_BASE_PORT = 70000",
            "config/x.conf:1:1: VNC_BASE_PORT must be a port number from 1 to 65535, found \"70000\"",
        ),
        (
            "PUBLIC_URL = cloud.example.org",
            "config/x.conf:1:1: PUBLIC_URL must be an http:// or https:// URL like \"https://cloud.example.org:4567\", found \"cloud.example.org\"",
        ),
        (
            "VM_DIR = images",
            "config/x.conf:1:1: VM_DIR must be an absolute path like \"/var/tmp/one\", found \"images\"",
        ),
        (
            "SSH_HOST_KEY_POLICY = ask",
            "config/x.conf:1:1: SSH_HOST_KEY_POLICY must be accept-new, yes or no, found \"ask\"",
        ),
        (
            "HYPERVISOR_MEM = 1.5",
            "config/x.conf:1:1: HYPERVISOR_MEM must be a fraction from 0 up to (not including) 1 like \"0.1\", found \"1.5\"",
        ),
        (
            "LISTEN = [ ADDRESS = \"127.0.0.1\" ]",
            "config/x.conf:1:1: LISTEN must be a single value, not a vector",
        ),
        (
            "IM_MAD = im_kvm",
            "config/x.conf:1:1: IM_MAD must be a vector like IM_MAD = [ KEY = value, ... ], found \"im_kvm\"",
        ),
        (
            "DB = [ BACKEND = \"mysql\", SERVER = \"localhost\" ]",
            "config/x.conf:1:1: DB BACKEND must be sqlite (cloudgate keeps its data in SQLite under DATA_DIR), found \"mysql\"",
        ),
        (
            "\nIM_MAD = [ executable = \"one_im_ssh\" ]",
            "config/x.conf:2:1: IM_MAD needs a NAME",
        ),
        (
            "VM_MAD = [ name = \"vmm_kvm\", arguments = \"-t x kvm\" ]",
            "config/x.conf:1:1: VM_MAD vmm_kvm: ARGUMENTS -t must be a whole number, at least 1, found \"x\"",
        ),
        (
            "DEFAULT_SCHED = [ POLICY = 3 ]",
            "config/x.conf:1:1: DEFAULT_SCHED POLICY = 3 (custom) needs a RANK expression",
        ),
        (
            "OCCI_INSTANCE_TYPE = [ NAME = huge, CPU = 16 ]",
            "config/x.conf:1:1: OCCI_INSTANCE_TYPE huge needs a MEMORY",
        ),
        (
            "EC2_DEFAULT_INSTANCE_TYPE = \"c5.large\"",
            "config/x.conf:1:1: EC2_DEFAULT_INSTANCE_TYPE \"c5.large\" is not one of the EC2_INSTANCE_TYPE names \
             (m1.small, m1.medium, m1.large, m1.xlarge, t2.micro, t2.small, t2.medium)",
        ),
        (
            // The file's types replace the defaults, and m1.small is gone.
            "\n\nEC2_INSTANCE_TYPE = [ NAME = c5.large, CPU = 2, MEMORY = 4096 ]",
            "config/x.conf:3:1: EC2_DEFAULT_INSTANCE_TYPE \"m1.small\" is not one of the EC2_INSTANCE_TYPE names (c5.large)",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(&error(text), expected, "for {text:?}");
    }
}

#[test]
fn unknown_repeated_and_skipped_things_are_warnings() {
    let text = "\
FOO = bar
LOG = [ SYSTEM = file, DEBUG_LEVEL = 3 ]
LISTEN = \"127.0.0.1:8080\"
LISTEN = \"127.0.0.1:9090\"
IM_MAD = [ NAME = im_kvm, ARGUMENTS = \"kvm\", PRIORITY = 1 ]
IM_MAD = [ NAME = im_kvm, ARGUMENTS = \"xen\" ]
VM_HOOK = [ NAME = broken, COMMAND = /bin/true ]
VM_HOOK = [ NAME = odd, ON = reboot, COMMAND = /bin/true ]
VM_HOOK = [ ON = done, COMMAND = /bin/true ]
DEFAULT_SCHED = [ POLICY = 0, RANK = FREE_CPU ]
";
    let (c, warnings) = load(text).expect("warnings only");
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "config/x.conf:1:1: warning: unknown attribute FOO (ignored)",
            "config/x.conf:2:1: warning: LOG is an OpenNebula attribute cloudgate does not use (ignored)",
            "config/x.conf:4:1: warning: LISTEN is set again (ignored; the value on line 3 is used)",
            "config/x.conf:5:1: warning: unknown key PRIORITY in IM_MAD (ignored)",
            "config/x.conf:6:1: warning: IM_MAD im_kvm is defined again (ignored; the one on line 5 is used)",
            "config/x.conf:7:1: warning: VM_HOOK broken has no ON (skipped)",
            "config/x.conf:8:1: warning: VM_HOOK odd: unknown ON \"reboot\", expected CREATE, PROLOG, RUNNING, \
             SHUTDOWN, STOP, DONE, FAILED or UNKNOWN (skipped)",
            "config/x.conf:10:1: warning: DEFAULT_SCHED RANK is used only with POLICY = 3 (ignored with POLICY = 0)",
        ]
    );
    assert_eq!(c.listen.port(), 8080);
    assert_eq!(c.im_drivers.len(), 1);
    assert_eq!(c.im_drivers[0].folder(), "kvm");
    assert_eq!(c.hooks.len(), 1);
    assert_eq!(
        (c.hooks[0].name.as_str(), c.hooks[0].on),
        ("/bin/true", HookEvent::Done)
    );
    assert_eq!(c.scheduler.default_policy, SchedPolicy::Packing);
    // Classes the file did not mention keep their defaults.
    assert_eq!(c.vmm_drivers, Config::default().vmm_drivers);
    assert_eq!(c.tm_drivers, Config::default().tm_drivers);
}

#[test]
fn hook_with_bad_remote_is_skipped_with_a_warning() {
    assert_eq!(
        warnings("VM_HOOK = [ name = \"mail\", on = \"running\", command = \"/bin/mail\", remote = \"sometimes\" ]"),
        ["config/x.conf:1:1: warning: VM_HOOK mail: REMOTE must be yes or no, found \"sometimes\" (skipped)"]
    );
}

#[test]
fn values_override_the_defaults() {
    let text = r#"
LISTEN = "0.0.0.0:8080"
PUBLIC_URL = "https://cloud.example.org/"
DATA_DIR = /srv/cloudgate
OCCI_DIALECT = 2.x
BODY_LIMIT = 512K
UPLOAD_LIMIT = 2g
SIGNATURE_SKEW = 0
EC2_PATH_PREFIX = "/ec2/"
DEFAULT_SCHED = [ POLICY = 3, RANK = "FREE_MEM" ]
OCCI_INSTANCE_TYPE = [ NAME = "tiny", CPU = 0.5, VCPU = 1, MEMORY = 128, TEMPLATE = "occi/tiny.tmpl" ]
EC2_INSTANCE_TYPE = [ NAME = "c5.large", CPU = 2, VCPU = 2, MEMORY = 4096, NETWORK = "Public EC2" ]
EC2_DEFAULT_INSTANCE_TYPE = c5.large
"#;
    let (c, warnings) = load(text).expect("valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.public_url.as_deref(), Some("https://cloud.example.org"));
    assert_eq!(c.data_dir, PathBuf::from("/srv/cloudgate"));
    assert_eq!(c.occi_dialect, OcciDialect::V2);
    assert_eq!(c.body_limit, 512 * 1024);
    assert_eq!(c.upload_limit, 2 * 1024 * 1024 * 1024);
    assert_eq!(c.signature_skew, Duration::ZERO);
    assert_eq!(c.ec2_path_prefix, "/ec2");
    assert_eq!(
        c.scheduler.default_policy,
        SchedPolicy::Custom {
            rank: "FREE_MEM".into()
        }
    );
    assert_eq!(c.occi_instance_types.len(), 1);
    assert_eq!(
        c.occi_instance_type("tiny")
            .and_then(|t| t.template.as_deref()),
        Some("occi/tiny.tmpl")
    );
    assert_eq!(c.occi_instance_type("small"), None);
    assert_eq!(
        c.ec2_instance_type("c5.large")
            .and_then(|t| t.network.as_deref()),
        Some("Public EC2")
    );
    assert_eq!(c.ec2_default_instance_type, "c5.large");
    assert_eq!(
        c.summary(),
        "2 IM, 2 VMM, 3 TM drivers, 0 hooks, listen 0.0.0.0:8080, data dir /srv/cloudgate"
    );

    // An empty PUBLIC_URL undoes a value; an empty file changes nothing.
    let (c, _) = load("PUBLIC_URL =\n").expect("valid");
    assert_eq!(c.public_url, None);
    let (c, warnings) = load("").expect("valid");
    assert!(warnings.is_empty());
    assert_eq!(c, Config::default());
}

#[test]
fn unreadable_file_is_an_error_about_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missing.conf");
    let e = Config::load(&path).expect_err("missing file");
    assert_eq!((e.line, e.col), (0, 0));
    let shown = e.to_string();
    let prefix = format!("{}: cannot read: ", path.display());
    assert!(shown.starts_with(&prefix), "{shown}");

    let path = dir.path().join("ok.conf");
    std::fs::write(&path, "NETWORK_SIZE = 30\n").expect("write");
    let (c, warnings) = Config::load(&path).expect("valid");
    assert!(warnings.is_empty());
    assert_eq!(c.network_size, 30);
}
