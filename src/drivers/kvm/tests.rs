//! The domain XML generator against the golden files of
//! `tests/data/domain/` (STYLE.md §1.11; `CLOUDGATE_REGENERATE=1` rewrites
//! them), and its errors and warnings.

use std::fs;
use std::path::PathBuf;

use super::*;

const VM_DIR: &str = "/var/lib/one/vms/7";

fn generate(template: &str, defaults: &Template) -> Result<Domain, String> {
    let template = Template::parse(template).expect("template parses");
    domain_xml(&DomainInput {
        vm_id: 7,
        template: &template,
        defaults,
        vm_dir: VM_DIR,
        vnc_base_port: 5900,
    })
}

/// Checks that `xml` is well-formed (every element closed, attributes
/// quoted), as libvirt's parser will need.
fn assert_well_formed(name: &str, xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("{name}: not well-formed: {e}\n{xml}"),
        }
    }
    assert_eq!(depth, 0, "{name}: unbalanced\n{xml}");
}

#[test]
fn shipped_defaults_parse() {
    let defaults = built_in_defaults();
    assert_eq!(
        defaults.vector("OS").and_then(|o| o.get("BOOT")),
        Some("hd")
    );
    assert_eq!(defaults.get("EMULATOR"), Some(DEFAULT_EMULATOR));
}

#[test]
fn golden_domains() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/domain");
    let regenerate = std::env::var_os("CLOUDGATE_REGENERATE").is_some_and(|v| v == "1");
    let defaults = built_in_defaults();
    let mut checked = 0;
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .expect("tests/data/domain")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmpl"))
        .collect();
    entries.sort();
    for tmpl in entries {
        let name = tmpl.display().to_string();
        let text = fs::read_to_string(&tmpl).expect("read template");
        let domain = generate(&text, &defaults).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_well_formed(&name, &domain.xml);
        let golden = tmpl.with_extension("xml");
        if regenerate {
            fs::write(&golden, &domain.xml).expect("write golden");
        }
        let expected = fs::read_to_string(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (CLOUDGATE_REGENERATE=1 writes it)",
                golden.display()
            )
        });
        assert_eq!(
            domain.xml, expected,
            "{name} differs from its golden file (CLOUDGATE_REGENERATE=1 rewrites it)"
        );
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} golden files");
}

#[test]
fn the_spec_example_comes_out_as_written() {
    // spec/DRIVERS.md §3, the 3.8 layout; the disk path is cloudgate's.
    let domain = generate(
        "MEMORY=512\nCPU=0.5\nVCPU=1\nOS=[BOOT=hd,ARCH=x86_64]\n\
         DISK=[SOURCE=\"/i.img\",TARGET=hda]\nNIC=[BRIDGE=br0,MAC=\"02:00:c0:a8:00:05\"]",
        &built_in_defaults(),
    )
    .expect("generates");
    assert_eq!(
        domain.xml,
        "<domain type='kvm'>
  <name>one-7</name>
  <vcpu>1</vcpu>
  <cputune><shares>512</shares></cputune>
  <memory>524288</memory>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
  <devices>
    <emulator>/usr/bin/kvm</emulator>
    <disk type='file' device='disk'>
      <source file='/var/lib/one/vms/7/disk.0'/>
      <target dev='hda'/>
      <driver name='qemu' type='raw' cache='default'/>
    </disk>
    <interface type='bridge'>
      <source bridge='br0'/>
      <mac address='02:00:c0:a8:00:05'/>
    </interface>
  </devices>
  <features><acpi/></features>
</domain>
"
    );
    assert!(domain.warnings.is_empty());
}

#[test]
fn missing_memory_boot_or_target_are_errors() {
    let empty = Template::new();
    assert_eq!(
        generate("CPU=1\nOS=[BOOT=hd]", &empty),
        Err("No MEMORY defined and no default provided.".to_owned())
    );
    assert_eq!(
        generate("MEMORY=64", &empty),
        Err("No BOOT device defined and no default provided.".to_owned())
    );
    assert_eq!(
        generate("MEMORY=64\nDISK=[SOURCE=/x]", &built_in_defaults()),
        Err("Wrong target value in DISK.".to_owned())
    );
    // The defaults fill what the template lacks.
    let defaults = Template::parse("MEMORY=32\nOS=[BOOT=network]").expect("defaults");
    let domain = generate("NAME=x", &defaults).expect("from defaults");
    assert!(
        domain.xml.contains("<memory>32768</memory>"),
        "{}",
        domain.xml
    );
    assert!(
        domain.xml.contains("<boot dev='network'/>"),
        "{}",
        domain.xml
    );
    assert!(!domain.xml.contains("<features>"), "{}", domain.xml);
}

#[test]
fn context_without_target_and_odd_graphics_are_warnings() {
    let domain = generate(
        "MEMORY=64\nCONTEXT=[HOSTNAME=x]\nGRAPHICS=[TYPE=sdl]",
        &built_in_defaults(),
    )
    .expect("generates");
    assert!(!domain.xml.contains("cdrom"));
    assert!(!domain.xml.contains("<graphics"));
    assert_eq!(domain.warnings.len(), 2, "{:?}", domain.warnings);
}

#[test]
fn the_context_cd_follows_the_disks() {
    let domain = generate(
        "MEMORY=64\nDISK=[SOURCE=/a,TARGET=vda]\nDISK=[TYPE=swap,SIZE=8,TARGET=vdb]\n\
         CONTEXT=[TARGET=hdc,X=1]",
        &built_in_defaults(),
    )
    .expect("generates");
    assert!(
        domain
            .xml
            .contains("<source file='/var/lib/one/vms/7/disk.2'/>\n      <target dev='hdc'/>"),
        "{}",
        domain.xml
    );
}

#[test]
fn values_are_escaped() {
    let domain = generate(
        "MEMORY=64\nOS=[BOOT=hd,KERNEL=\"/k&<x>\",KERNEL_CMD=\"a='1' \\\"b\\\"\"]",
        &built_in_defaults(),
    )
    .expect("generates");
    assert!(
        domain.xml.contains("<kernel>/k&amp;&lt;x&gt;</kernel>"),
        "{}",
        domain.xml
    );
    assert!(
        domain
            .xml
            .contains("<cmdline>a=&apos;1&apos; &quot;b&quot;</cmdline>"),
        "{}",
        domain.xml
    );
    assert_well_formed("escaped", &domain.xml);
}

#[test]
fn shipped_real_driver_scripts_are_executable_posix_sh() {
    use std::os::unix::fs::PermissionsExt;
    let remotes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/remotes");
    let mut checked = 0;
    for folder in ["vmm/kvm", "tm/ssh", "tm/shared", "im/kvm.d"] {
        for entry in fs::read_dir(remotes.join(folder)).expect("folder") {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Sourced helpers are not actions.
            let sourced = name.ends_with("rc") || name.ends_with(".sh") && folder != "im/kvm.d";
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(
                mode & 0o111 != 0,
                !sourced,
                "{} executable bit",
                path.display()
            );
            let syntax = std::process::Command::new("sh")
                .arg("-n")
                .arg(&path)
                .status()
                .expect("sh -n");
            assert!(syntax.success(), "{} has a syntax error", path.display());
            checked += 1;
        }
    }
    for helper in ["scripts_common.sh", "tm/tm_common.sh"] {
        let syntax = std::process::Command::new("sh")
            .arg("-n")
            .arg(remotes.join(helper))
            .status()
            .expect("sh -n");
        assert!(syntax.success(), "{helper} has a syntax error");
    }
    assert!(checked >= 25, "{checked} scripts");
}

#[test]
fn a_kvm_driver_deploys_the_generated_domain() {
    use crate::core::ports::{DeployRequest, Drivers, ScriptEnv, VmmTarget};
    use crate::drivers::testutil::script;
    use crate::drivers::{Class, Deployment, DriverSpec, Local, Registry, ScriptDrivers};
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("got.xml");
    script(
        dir.path(),
        "vmm/fake/deploy",
        &format!("cat > {}; echo one-$3", out.display()),
    );
    let mut spec = DriverSpec::new(Class::Vmm, "vmm_fake", "fake");
    spec.front_end = true;
    spec.deployment = Deployment::Kvm(built_in_defaults());
    let mut registry = Registry::new();
    registry.add(spec).expect("spec");
    let drivers =
        ScriptDrivers::new(registry, Arc::new(Local::new(dir.path()))).vnc_base_port(6000);
    let request = |deployment: &str| DeployRequest {
        target: VmmTarget {
            vm_id: 3,
            host: "node1".into(),
            driver: "vmm_fake".into(),
            env: ScriptEnv::new(),
        },
        remote_file: "/vms/3/deployment.0".into(),
        deployment: deployment.into(),
    };
    let id = drivers
        .deploy(&request(
            "MEMORY = 32\nDISK = [ SOURCE = /i, TARGET = vda ]\nGRAPHICS = [ TYPE = vnc ]",
        ))
        .expect("deployed");
    assert_eq!(id, "one-3");
    let xml = fs::read_to_string(&out).expect("deployment");
    assert!(
        xml.starts_with("<domain type='kvm'>\n  <name>one-3</name>"),
        "{xml}"
    );
    assert!(xml.contains("<source file='/vms/3/disk.0'/>"), "{xml}");
    assert!(xml.contains("port='6003'"), "{xml}");
    // Ready XML passes through; a template the generator refuses fails
    // the deploy with OpenNebula's message.
    drivers.deploy(&request("<domain/>")).expect("as is");
    assert_eq!(fs::read_to_string(&out).expect("deployment"), "<domain/>");
    let err = drivers.deploy(&request("CPU = 1")).expect_err("no memory");
    assert_eq!(
        err.to_string(),
        "deploy on node1 failed: No MEMORY defined and no default provided."
    );
}
