//! The KVM deployment file: a libvirt domain XML built from a VM template
//! (spec/DRIVERS.md §3, the 3.8 generator's layout; CORE.md §2 for the
//! paths of disks and the context CD on the host).
//!
//! Values come from the VM template, and what it lacks from the driver's
//! default file (`VM_MAD … default = "vmm_exec/vmm_exec_kvm.conf"`, a
//! template with `OS`, `FEATURES`, `DISK` and `EMULATOR`).
//!
//! The domain type is always written `kvm`: whether the host has a usable
//! `/dev/kvm` is known only there, so the deploy script
//! (`config/remotes/vmm/kvm/deploy`) turns it into `qemu` (software
//! emulation) on hosts without one, and replaces an emulator path the host
//! does not have by its own QEMU.
//!
//! May use: `crate::template`.

use std::fmt::Write as _;

use crate::template::{Template, Vector};

/// What the generator needs besides the template.
#[derive(Clone, Copy, Debug)]
pub struct DomainInput<'a> {
    /// The VM's id (`<name>one-<id></name>`, the VNC port).
    pub vm_id: u64,
    /// The VM template.
    pub template: &'a Template,
    /// The driver's default values (may be empty).
    pub defaults: &'a Template,
    /// The VM's directory on the host, `<VM_DIR>/<vid>`: disk `i` is
    /// `<dir>/disk.<i>`, the context CD `<dir>/disk.<number of DISKs>`.
    pub vm_dir: &'a str,
    /// `VNC_BASE_PORT`: a VNC console without `PORT` gets this plus the id.
    pub vnc_base_port: u16,
}

/// A generated domain and the warnings met on the way (a CONTEXT without
/// TARGET, an unknown GRAPHICS type…), for the VM log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// The libvirt domain XML.
    pub xml: String,
    /// Things left out, one sentence each.
    pub warnings: Vec<String>,
}

/// The emulator written when neither the template nor the defaults name
/// one (DRIVERS.md §3).
pub const DEFAULT_EMULATOR: &str = "/usr/bin/kvm";

/// Builds the domain XML, or the reason it cannot (OpenNebula's messages:
/// "No MEMORY defined and no default provided.", "No BOOT device defined
/// and no default provided.", "Wrong target value in DISK.").
pub fn domain_xml(input: &DomainInput<'_>) -> Result<Domain, String> {
    let t = input.template;
    let d = input.defaults;
    let mut warnings = Vec::new();
    let mut x = String::new();

    x.push_str("<domain type='kvm'>\n");
    let _ = writeln!(x, "  <name>one-{}</name>", input.vm_id);

    if let Some(vcpu) = single(t, d, "VCPU") {
        let _ = writeln!(x, "  <vcpu>{}</vcpu>", esc(vcpu));
    }
    if let Some(cpu) = single(t, d, "CPU").and_then(|c| c.trim().parse::<f64>().ok()) {
        if cpu > 0.0 {
            let shares = (cpu * 1024.0).ceil() as u64;
            let _ = writeln!(x, "  <cputune><shares>{shares}</shares></cputune>");
        }
    }
    let memory = single(t, d, "MEMORY")
        .and_then(|m| {
            let m = m.trim();
            m.parse::<u64>()
                .ok()
                .or_else(|| m.parse::<f64>().ok().filter(|f| *f > 0.0).map(|f| f as u64))
        })
        .filter(|m| *m > 0)
        .ok_or("No MEMORY defined and no default provided.")?;
    let _ = writeln!(x, "  <memory>{}</memory>", memory * 1024);

    // OS: each key from the template's OS, else the default's.
    let os = |key: &str| sub(t.vector("OS"), d.vector("OS"), key);
    let boot = os("BOOT").ok_or("No BOOT device defined and no default provided.")?;
    x.push_str("  <os>");
    match os("ARCH") {
        Some(arch) => {
            let _ = write!(x, "<type arch='{}'>hvm</type>", esc(arch));
        }
        None => x.push_str("<type>hvm</type>"),
    }
    let kernel = os("KERNEL");
    if let Some(kernel) = kernel {
        let _ = write!(x, "<kernel>{}</kernel>", esc(kernel));
        if let Some(initrd) = os("INITRD") {
            let _ = write!(x, "<initrd>{}</initrd>", esc(initrd));
        }
        let mut cmdline = String::new();
        if let Some(root) = os("ROOT") {
            let _ = write!(cmdline, "root=/dev/{root} ");
        }
        if let Some(extra) = os("KERNEL_CMD") {
            cmdline.push_str(extra);
        }
        let cmdline = cmdline.trim();
        if !cmdline.is_empty() {
            let _ = write!(x, "<cmdline>{}</cmdline>", esc(cmdline));
        }
    }
    for dev in boot.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let _ = write!(x, "<boot dev='{}'/>", esc(dev));
    }
    x.push_str("</os>\n");
    if kernel.is_none() {
        if let Some(loader) = os("BOOTLOADER") {
            let _ = writeln!(x, "  <bootloader>{}</bootloader>", esc(loader));
        }
    }

    x.push_str("  <devices>\n");
    let emulator = single(t, d, "EMULATOR").unwrap_or(DEFAULT_EMULATOR);
    let _ = writeln!(x, "    <emulator>{}</emulator>", esc(emulator));

    let disk_default = d.vector("DISK");
    let disks: Vec<&Vector> = t.vectors("DISK").collect();
    for (i, disk) in disks.iter().enumerate() {
        let target = value(disk, "TARGET").ok_or("Wrong target value in DISK.")?;
        let kind = value(disk, "TYPE").map(str::to_ascii_lowercase);
        let file = format!("{}/disk.{i}", input.vm_dir);
        let (disk_type, device, source) = match kind.as_deref() {
            Some("block") => ("block", "disk", format!("<source dev='{}'/>", esc(&file))),
            Some("cdrom") => ("file", "cdrom", format!("<source file='{}'/>", esc(&file))),
            _ => ("file", "disk", format!("<source file='{}'/>", esc(&file))),
        };
        let _ = writeln!(x, "    <disk type='{disk_type}' device='{device}'>");
        let _ = writeln!(x, "      {source}");
        match value(disk, "BUS") {
            Some(bus) => {
                let _ = writeln!(
                    x,
                    "      <target dev='{}' bus='{}'/>",
                    esc(target),
                    esc(bus)
                );
            }
            None => {
                let _ = writeln!(x, "      <target dev='{}'/>", esc(target));
            }
        }
        if value(disk, "READONLY").is_some_and(|r| r.eq_ignore_ascii_case("yes")) {
            x.push_str("      <readonly/>\n");
        }
        let driver = sub(Some(disk), disk_default, "DRIVER");
        let cache = sub(Some(disk), disk_default, "CACHE");
        if driver.is_some() || cache.is_some() {
            x.push_str("      <driver name='qemu'");
            if let Some(driver) = driver {
                let _ = write!(x, " type='{}'", esc(driver));
            }
            if let Some(cache) = cache {
                let _ = write!(x, " cache='{}'", esc(cache));
            }
            x.push_str("/>\n");
        }
        x.push_str("    </disk>\n");
    }

    if let Some(context) = t.vector("CONTEXT") {
        match value(context, "TARGET") {
            Some(target) => {
                let file = format!("{}/disk.{}", input.vm_dir, disks.len());
                x.push_str("    <disk type='file' device='cdrom'>\n");
                let _ = writeln!(x, "      <source file='{}'/>", esc(&file));
                let _ = writeln!(x, "      <target dev='{}'/>", esc(target));
                x.push_str("      <readonly/>\n");
                x.push_str("      <driver name='qemu' type='raw'/>\n");
                x.push_str("    </disk>\n");
            }
            None => warnings.push(
                "Could not find target device to attach context, will continue without it."
                    .to_owned(),
            ),
        }
    }

    for nic in t.vectors("NIC") {
        match value(nic, "BRIDGE") {
            Some(bridge) => {
                x.push_str("    <interface type='bridge'>\n");
                let _ = writeln!(x, "      <source bridge='{}'/>", esc(bridge));
            }
            None => x.push_str("    <interface type='ethernet'>\n"),
        }
        if let Some(mac) = value(nic, "MAC") {
            let _ = writeln!(x, "      <mac address='{}'/>", esc(mac));
        }
        if let Some(target) = value(nic, "TARGET") {
            let _ = writeln!(x, "      <target dev='{}'/>", esc(target));
        }
        if let Some(script) = value(nic, "SCRIPT") {
            let _ = writeln!(x, "      <script path='{}'/>", esc(script));
        }
        if let Some(model) = value(nic, "MODEL") {
            let _ = writeln!(x, "      <model type='{}'/>", esc(model));
        }
        x.push_str("    </interface>\n");
    }

    if let Some(graphics) = t.vectors("GRAPHICS").next() {
        let kind = value(graphics, "TYPE").map(str::to_ascii_lowercase);
        match kind.as_deref() {
            Some(kind @ ("vnc" | "spice")) => {
                let _ = write!(x, "    <graphics type='{kind}'");
                if let Some(listen) = value(graphics, "LISTEN") {
                    let _ = write!(x, " listen='{}'", esc(listen));
                }
                let port = match value(graphics, "PORT") {
                    Some(port) => port.to_owned(),
                    None => (u64::from(input.vnc_base_port) + input.vm_id).to_string(),
                };
                let _ = write!(x, " port='{}'", esc(&port));
                if let Some(passwd) = value(graphics, "PASSWD") {
                    let _ = write!(x, " passwd='{}'", esc(passwd));
                }
                if let Some(keymap) = value(graphics, "KEYMAP") {
                    let _ = write!(x, " keymap='{}'", esc(keymap));
                }
                x.push_str("/>\n");
            }
            other => warnings.push(format!(
                "Graphics type {} not supported, ignoring it.",
                other.unwrap_or("(none)")
            )),
        }
    }

    if let Some(input_dev) = t.vectors("INPUT").next() {
        if let Some(kind) = value(input_dev, "TYPE") {
            let _ = write!(x, "    <input type='{}'", esc(kind));
            if let Some(bus) = value(input_dev, "BUS") {
                let _ = write!(x, " bus='{}'", esc(bus));
            }
            x.push_str("/>\n");
        }
    }
    x.push_str("  </devices>\n");

    let feature = |key: &str| {
        sub(t.vector("FEATURES"), d.vector("FEATURES"), key)
            .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
    };
    let (pae, acpi) = (feature("PAE"), feature("ACPI"));
    if pae || acpi {
        x.push_str("  <features>");
        if pae {
            x.push_str("<pae/>");
        }
        if acpi {
            x.push_str("<acpi/>");
        }
        x.push_str("</features>\n");
    }

    for raw in t.vectors("RAW") {
        let is_kvm = value(raw, "TYPE").is_some_and(|k| k.eq_ignore_ascii_case("kvm"));
        if let (true, Some(data)) = (is_kvm, value(raw, "DATA")) {
            let _ = writeln!(x, "  {}", data.trim());
        }
    }
    x.push_str("</domain>\n");
    Ok(Domain { xml: x, warnings })
}

/// A non-empty vector value, trimmed.
fn value<'v>(v: &'v Vector, key: &str) -> Option<&'v str> {
    v.get(key).map(str::trim).filter(|s| !s.is_empty())
}

/// `key` of the template's vector, else of the default's.
fn sub<'a>(own: Option<&'a Vector>, default: Option<&'a Vector>, key: &str) -> Option<&'a str> {
    own.and_then(|v| value(v, key))
        .or_else(|| default.and_then(|v| value(v, key)))
}

/// A non-empty single attribute of the template, else of the defaults.
fn single<'a>(t: &'a Template, d: &'a Template, name: &str) -> Option<&'a str> {
    let get = |tpl: &'a Template| tpl.get(name).map(str::trim).filter(|s| !s.is_empty());
    get(t).or_else(|| get(d))
}

/// XML-escapes text and attribute values (attributes are single-quoted).
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
