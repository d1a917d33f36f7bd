//! Driver definitions (`IM_MAD`, `VM_MAD`, `TM_MAD`, `HM_MAD`) and VM hooks
//! (`VM_HOOK`) as written in `oned.conf` (DRIVERS.md 8 and 10.2).
//!
//! cloudgate runs no driver processes: a driver definition only maps the
//! `name` a host refers to onto a folder of scripts under
//! `config/remotes/<class>/`, plus the `-t` (threads) and `-r` (retries) and
//! `-l` (local actions) options of its `arguments`. `executable`, `default`
//! and `type` are kept as read for the layers that care (the deployment-file
//! generator reads `type`). Whether the folder exists is checked by the
//! drivers layer, not here: an `oned.conf` naming drivers we do not ship must
//! still load (DRIVERS.md 10.2).

use std::fmt;
use std::path::PathBuf;

use crate::template::Vector;

use super::error::Location;
use super::values::{self, Expected};

/// The class of a driver, which is also its folder under `config/remotes/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriverClass {
    /// Information (host monitoring) drivers, `IM_MAD`.
    Im,
    /// Virtual machine manager drivers, `VM_MAD`.
    Vmm,
    /// Transfer manager (storage) drivers, `TM_MAD`.
    Tm,
}

impl DriverClass {
    /// The attribute that defines drivers of this class (`IM_MAD`...).
    pub fn attribute(self) -> &'static str {
        match self {
            DriverClass::Im => "IM_MAD",
            DriverClass::Vmm => "VM_MAD",
            DriverClass::Tm => "TM_MAD",
        }
    }

    /// The folder under `config/remotes/` holding this class's drivers.
    pub fn dir(self) -> &'static str {
        match self {
            DriverClass::Im => "im",
            DriverClass::Vmm => "vmm",
            DriverClass::Tm => "tm",
        }
    }
}

impl fmt::Display for DriverClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverClass::Im => "IM",
            DriverClass::Vmm => "VMM",
            DriverClass::Tm => "TM",
        })
    }
}

/// An action run on the front-end instead of the host (`-l poll=poll_ganglia`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAction {
    /// The action, lower case (`deploy`, `poll`, `migrate`...).
    pub action: String,
    /// The script to run instead of the action's own, if given after `=`.
    pub script: Option<String>,
}

/// One `IM_MAD`, `VM_MAD` or `TM_MAD` vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverDef {
    /// Which kind of driver this is.
    pub class: DriverClass,
    /// The name hosts refer to (`im_kvm`, `vmm_kvm`, `tm_ssh`...).
    pub name: String,
    /// `executable`, as written; cloudgate runs scripts, not this.
    pub executable: Option<String>,
    /// `arguments`, as written (`-r 0 -t 15 kvm`, or a 1.4 `.conf` path).
    pub arguments: Option<String>,
    /// `default`: the driver's default-values file (VMM), as written.
    pub default: Option<String>,
    /// `type` (VMM: `kvm`, `xen`, `xml`...), as written.
    pub driver_type: Option<String>,
    /// `-t N` in `arguments`: how many actions of this driver may run at
    /// once. `None` means OpenNebula's default, 15.
    pub threads: Option<u32>,
    /// `-r N` in `arguments`: how many times a failed action is re-run, 1 s
    /// apart. `None` means 0.
    pub retries: Option<u32>,
    /// `-l` in `arguments`: actions run on the front-end.
    pub local_actions: Vec<LocalAction>,
    /// Where the vector was written, for later warnings about this driver.
    pub location: Location,
}

/// The vector keys a driver definition may have.
pub(crate) const DRIVER_KEYS: &[&str] = &["NAME", "EXECUTABLE", "ARGUMENTS", "DEFAULT", "TYPE"];

impl DriverDef {
    /// Read a driver vector. Unknown keys are the caller's business; the
    /// error is the message without position.
    pub(crate) fn from_vector(
        class: DriverClass,
        v: &Vector,
        location: Location,
    ) -> Result<DriverDef, String> {
        let attr = class.attribute();
        let name = get(v, "NAME").ok_or_else(|| format!("{attr} needs a NAME"))?;
        let arguments = get(v, "ARGUMENTS");
        let parsed = parse_arguments(arguments.unwrap_or(""))
            .map_err(|e| format!("{attr} {name}: ARGUMENTS {e}"))?;
        Ok(DriverDef {
            class,
            executable: get(v, "EXECUTABLE").map(str::to_owned),
            default: get(v, "DEFAULT").map(str::to_owned),
            driver_type: get(v, "TYPE").map(str::to_owned),
            threads: parsed.threads,
            retries: parsed.retries,
            local_actions: parsed.local_actions,
            arguments: arguments.map(str::to_owned),
            name: name.to_owned(),
            location,
        })
    }

    /// The folder under `config/remotes/<class>/` whose scripts this driver
    /// runs: the last plain word of a 2.x/3.x `arguments` after its options
    /// (`-r 0 -t 15 kvm` → `kvm`); otherwise (1.4's `im_kvm/im_kvm.conf`,
    /// no arguments) the name without a leading `im_`, `vmm_` or `tm_`
    /// (`im_kvm` → `kvm`, `tm_nfs` → `nfs`).
    pub fn folder(&self) -> &str {
        let from_args = self
            .arguments
            .as_deref()
            .and_then(|a| split_options(a).positional.last().copied())
            .filter(|w| is_plain_name(w));
        from_args.unwrap_or_else(|| {
            ["im_", "vmm_", "tm_"]
                .iter()
                .find_map(|p| self.name.strip_prefix(p).filter(|rest| !rest.is_empty()))
                .unwrap_or(&self.name)
        })
    }

    /// `<class>/<folder>`, the path relative to the remotes directory.
    pub fn remotes_subdir(&self) -> PathBuf {
        PathBuf::from(self.class.dir()).join(self.folder())
    }

    /// True if `key` is this driver's name or its folder, so that both
    /// `onehost create node1 im_kvm ...` and `cloudgate host create --im kvm`
    /// find it.
    pub fn answers_to(&self, key: &str) -> bool {
        self.name == key || self.folder() == key
    }
}

/// A vector value, with empty strings treated as absent (modern templates
/// read `A = ""` as empty).
fn get<'v>(v: &'v Vector, key: &str) -> Option<&'v str> {
    v.get(key).map(str::trim).filter(|s| !s.is_empty())
}

/// A driver folder name: a letter, then letters, digits, `_`, `-` or `.`,
/// and not a `.conf` file name. Anything else (paths, numbers) is not a
/// folder.
fn is_plain_name(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !word.ends_with(".conf")
}

/// Options of a driver command line, split from its positional words.
struct SplitOptions<'a> {
    options: Vec<(char, Option<&'a str>)>,
    positional: Vec<&'a str>,
}

/// Split `arguments` into `-x value` options and positional words.
///
/// OpenNebula's drivers give every option a value except `-c` and `-h`
/// (`one_im_sh -c -t 15 -r 0 vmware`); an option followed by another option
/// or by nothing has no value either.
fn split_options(arguments: &str) -> SplitOptions<'_> {
    let words: Vec<&str> = arguments.split_whitespace().collect();
    let mut out = SplitOptions {
        options: Vec::new(),
        positional: Vec::new(),
    };
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        let flag = word
            .strip_prefix('-')
            .filter(|f| f.len() == 1)
            .and_then(|f| f.chars().next());
        match flag {
            Some(f) => {
                let takes_value = !matches!(f, 'c' | 'h');
                let value = words
                    .get(i + 1)
                    .filter(|next| takes_value && !next.starts_with('-'))
                    .copied();
                i += if value.is_some() { 2 } else { 1 };
                out.options.push((f, value));
            }
            None => {
                out.positional.push(word);
                i += 1;
            }
        }
    }
    out
}

/// The options cloudgate honours, read from `arguments`.
#[derive(Debug, Default, PartialEq)]
struct DriverArgs {
    threads: Option<u32>,
    retries: Option<u32>,
    local_actions: Vec<LocalAction>,
}

/// Read `-t`, `-r` and `-l` from a driver's `arguments`; other options are
/// read past and ignored. The error reads `-t must be ..., found "x"`.
fn parse_arguments(arguments: &str) -> Result<DriverArgs, String> {
    let mut out = DriverArgs::default();
    let number = |flag: char, value: Option<&str>, min: u32| -> Result<u32, String> {
        let text = value.unwrap_or("");
        values::whole_u32(text, min, u32::MAX)
            .map_err(|expected: Expected| format!("-{flag} must be {expected}, found {text:?}"))
    };
    for (flag, value) in split_options(arguments).options {
        match flag {
            't' => out.threads = Some(number('t', value, 1)?),
            'r' => out.retries = Some(number('r', value, 0)?),
            'l' => {
                out.local_actions = value
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| match item.split_once('=') {
                        Some((action, script)) => LocalAction {
                            action: action.trim().to_ascii_lowercase(),
                            script: Some(script.trim().to_owned()),
                        },
                        None => LocalAction {
                            action: item.to_ascii_lowercase(),
                            script: None,
                        },
                    })
                    .collect();
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The `HM_MAD` vector. cloudgate runs hooks itself, so this is only kept
/// as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookManagerDef {
    /// `executable`, usually `one_hm`.
    pub executable: Option<String>,
    /// `arguments`, as written.
    pub arguments: Option<String>,
}

/// The vector keys of `HM_MAD`.
pub(crate) const HM_KEYS: &[&str] = &["EXECUTABLE", "ARGUMENTS", "NAME"];

impl HookManagerDef {
    /// Read an `HM_MAD` vector.
    pub(crate) fn from_vector(v: &Vector) -> HookManagerDef {
        HookManagerDef {
            executable: get(v, "EXECUTABLE").map(str::to_owned),
            arguments: get(v, "ARGUMENTS").map(str::to_owned),
        }
    }
}

/// When a VM hook fires: the VM's state changes *to* this (DRIVERS.md 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookEvent {
    /// The VM was allocated (always runs on the front-end).
    Create,
    /// (PROLOG, ACTIVE): files are being transferred (3.x).
    Prolog,
    /// (RUNNING, ACTIVE), also after a migration or a resume.
    Running,
    /// (EPILOG, ACTIVE): shutdown or cancel is cleaning up.
    Shutdown,
    /// (LCM_INIT, STOPPED).
    Stop,
    /// (LCM_INIT, DONE).
    Done,
    /// (LCM_INIT, FAILED) (3.x).
    Failed,
    /// (UNKNOWN, ACTIVE): the VM vanished from monitoring (3.x).
    Unknown,
}

impl HookEvent {
    /// Every event, in life-cycle order.
    pub const ALL: [HookEvent; 8] = [
        HookEvent::Create,
        HookEvent::Prolog,
        HookEvent::Running,
        HookEvent::Shutdown,
        HookEvent::Stop,
        HookEvent::Done,
        HookEvent::Failed,
        HookEvent::Unknown,
    ];

    /// The upper-case name used in `on = ...`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::Create => "CREATE",
            HookEvent::Prolog => "PROLOG",
            HookEvent::Running => "RUNNING",
            HookEvent::Shutdown => "SHUTDOWN",
            HookEvent::Stop => "STOP",
            HookEvent::Done => "DONE",
            HookEvent::Failed => "FAILED",
            HookEvent::Unknown => "UNKNOWN",
        }
    }

    /// Parse an `on` value, any case.
    pub fn parse(text: &str) -> Option<HookEvent> {
        let upper = text.trim().to_ascii_uppercase();
        HookEvent::ALL.into_iter().find(|e| e.as_str() == upper)
    }
}

impl fmt::Display for HookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `VM_HOOK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Label for logs; the command when the file gives no `name`.
    pub name: String,
    /// When it fires.
    pub on: HookEvent,
    /// The program: absolute, or relative to `remotes/hooks/` (3.x).
    pub command: String,
    /// Argument text with `$` references, substituted when the hook fires.
    pub arguments: Option<String>,
    /// Run on the VM's host over SSH (`remote = yes`) instead of the front-end.
    pub remote: bool,
    /// Where the vector was written.
    pub location: Location,
}

/// The vector keys of `VM_HOOK`.
pub(crate) const HOOK_KEYS: &[&str] = &["NAME", "ON", "COMMAND", "ARGUMENTS", "REMOTE"];

impl Hook {
    /// Read a `VM_HOOK` vector. `Err` is a warning: the hook is skipped
    /// (DRIVERS.md 10.2: a hook that cannot fire never stops the daemon).
    /// `Ok` may carry warnings about values that were adjusted.
    pub(crate) fn from_vector(
        v: &Vector,
        location: Location,
    ) -> Result<(Hook, Vec<String>), String> {
        let command = get(v, "COMMAND");
        let name = get(v, "NAME").or(command);
        let label = match name {
            Some(n) => format!("VM_HOOK {n}"),
            None => "VM_HOOK".to_owned(),
        };
        let on_text = get(v, "ON").ok_or_else(|| format!("{label} has no ON (skipped)"))?;
        let command = command.ok_or_else(|| format!("{label} has no COMMAND (skipped)"))?;
        let on = HookEvent::parse(on_text).ok_or_else(|| {
            format!(
                "{label}: unknown ON {on_text:?}, expected CREATE, PROLOG, RUNNING, SHUTDOWN, \
                 STOP, DONE, FAILED or UNKNOWN (skipped)"
            )
        })?;
        let mut remote = match get(v, "REMOTE") {
            None => false,
            Some(text) => values::yes_no(text)
                .map_err(|e| format!("{label}: REMOTE must be {e}, found {text:?} (skipped)"))?,
        };
        let mut warnings = Vec::new();
        if remote && on == HookEvent::Create {
            // At creation the VM has no host to run on (DRIVERS.md 8).
            warnings.push(format!(
                "{label}: CREATE hooks run on the front-end (REMOTE = yes ignored)"
            ));
            remote = false;
        }
        Ok((
            Hook {
                name: name.unwrap_or(command).to_owned(),
                on,
                command: command.to_owned(),
                arguments: get(v, "ARGUMENTS").map(str::to_owned),
                remote,
                location,
            },
            warnings,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Template, Value};

    /// The first vector of a one-attribute template.
    fn vector(text: &str) -> Vector {
        let t = Template::parse(text).expect("test template parses");
        match &t.attributes()[0].value {
            Value::Vector(v) => v.clone(),
            Value::Single(s) => panic!("not a vector: {s}"),
        }
    }

    fn driver(class: DriverClass, text: &str) -> DriverDef {
        DriverDef::from_vector(class, &vector(text), Location::new("t.conf", 1, 1))
            .expect("test driver is valid")
    }

    #[test]
    fn folder_comes_from_the_last_plain_argument() {
        let d = driver(
            DriverClass::Im,
            r#"IM_MAD = [ name = "im_kvm", executable = "one_im_ssh", arguments = "-r 0 -t 15 kvm" ]"#,
        );
        assert_eq!(d.folder(), "kvm");
        assert_eq!((d.threads, d.retries), (Some(15), Some(0)));
        assert_eq!(d.remotes_subdir(), PathBuf::from("im/kvm"));
        assert!(d.answers_to("im_kvm") && d.answers_to("kvm") && !d.answers_to("xen"));

        // The folder wins over the name when both say something.
        let d = driver(
            DriverClass::Im,
            r#"IM_MAD = [ name = "kvm", arguments = "-r 3 -t 15 kvm-probes" ]"#,
        );
        assert_eq!(d.folder(), "kvm-probes");
        assert_eq!((d.threads, d.retries), (Some(15), Some(3)));
    }

    #[test]
    fn folder_falls_back_to_the_name_without_its_class_prefix() {
        // 1.4: arguments is a probe file, not a folder.
        let d = driver(
            DriverClass::Im,
            r#"IM_MAD = [ name = "im_kvm", arguments = "im_kvm/im_kvm.conf" ]"#,
        );
        assert_eq!(d.folder(), "kvm");
        let d = driver(
            DriverClass::Tm,
            r#"TM_MAD = [ name = "tm_nfs", arguments = "tm_nfs/tm_nfs.conf" ]"#,
        );
        assert_eq!(d.folder(), "nfs");
        // No arguments at all.
        let d = driver(
            DriverClass::Vmm,
            r#"VM_MAD = [ name = "vmm_kvm", executable = "one_vmm_kvm" ]"#,
        );
        assert_eq!(d.folder(), "kvm");
        assert_eq!((d.threads, d.retries), (None, None));
        // Options only: the last word is -i's value, not a folder.
        let d = driver(
            DriverClass::Im,
            r#"IM_MAD = [ name = "collectd", arguments = "-p 4124 -f 5 -t 50 -i 20" ]"#,
        );
        assert_eq!(d.folder(), "collectd");
        assert_eq!(d.threads, Some(50));
        // A name that is only a prefix stays whole.
        let d = driver(DriverClass::Im, r#"IM_MAD = [ name = "im_" ]"#);
        assert_eq!(d.folder(), "im_");
        // A conf file name alone is not a folder either.
        let d = driver(
            DriverClass::Tm,
            r#"TM_MAD = [ name = "tm_ssh", arguments = "tm_ssh.conf" ]"#,
        );
        assert_eq!(d.folder(), "ssh");
    }

    #[test]
    fn valueless_flags_and_local_actions() {
        let d = driver(
            DriverClass::Vmm,
            r#"VM_MAD = [ name = "vmware", arguments = "-c -t 15 -r 0 -l migrate,POLL=poll_ganglia vmware" ]"#,
        );
        assert_eq!(d.folder(), "vmware");
        assert_eq!((d.threads, d.retries), (Some(15), Some(0)));
        assert_eq!(
            d.local_actions,
            vec![
                LocalAction {
                    action: "migrate".into(),
                    script: None
                },
                LocalAction {
                    action: "poll".into(),
                    script: Some("poll_ganglia".into())
                },
            ]
        );
    }

    #[test]
    fn bad_driver_vectors() {
        let err = |text: &str| {
            DriverDef::from_vector(
                DriverClass::Im,
                &vector(text),
                Location::new("t.conf", 1, 1),
            )
            .expect_err("should be refused")
        };
        assert_eq!(
            err(r#"IM_MAD = [ executable = "one_im_ssh" ]"#),
            "IM_MAD needs a NAME"
        );
        assert_eq!(
            err(r#"IM_MAD = [ name = "im_kvm", arguments = "-t many kvm" ]"#),
            "IM_MAD im_kvm: ARGUMENTS -t must be a whole number, at least 1, found \"many\""
        );
        assert_eq!(
            err(r#"IM_MAD = [ name = "im_kvm", arguments = "-r" ]"#),
            "IM_MAD im_kvm: ARGUMENTS -r must be a whole number, found \"\""
        );
    }

    fn hook(text: &str) -> Result<(Hook, Vec<String>), String> {
        Hook::from_vector(&vector(text), Location::new("t.conf", 1, 1))
    }

    #[test]
    fn hooks() {
        let (h, warnings) = hook(
            r#"VM_HOOK = [ name = "mail", on = "running", command = "/usr/local/bin/send_mail",
                          arguments = "$VMID $NAME", remote = "no" ]"#,
        )
        .expect("valid hook");
        assert!(warnings.is_empty());
        assert_eq!(h.name, "mail");
        assert_eq!(h.on, HookEvent::Running);
        assert_eq!(h.command, "/usr/local/bin/send_mail");
        assert_eq!(h.arguments.as_deref(), Some("$VMID $NAME"));
        assert!(!h.remote);

        let (h, _) =
            hook(r#"VM_HOOK = [ on = DONE, command = "log_done", remote = YES ]"#).expect("valid");
        assert_eq!(
            (h.name.as_str(), h.on, h.remote),
            ("log_done", HookEvent::Done, true)
        );

        let (h, warnings) =
            hook(r#"VM_HOOK = [ on = create, command = "c", remote = yes ]"#).expect("valid");
        assert!(!h.remote);
        assert_eq!(
            warnings,
            vec!["VM_HOOK c: CREATE hooks run on the front-end (REMOTE = yes ignored)"]
        );

        assert_eq!(
            hook(r#"VM_HOOK = [ name = "x", command = "c" ]"#).err(),
            Some("VM_HOOK x has no ON (skipped)".into())
        );
        assert_eq!(
            hook(r#"VM_HOOK = [ on = "done" ]"#).err(),
            Some("VM_HOOK has no COMMAND (skipped)".into())
        );
        assert_eq!(
            hook(r#"VM_HOOK = [ name = "x", on = "reboot", command = "c" ]"#).err(),
            Some(
                "VM_HOOK x: unknown ON \"reboot\", expected CREATE, PROLOG, RUNNING, SHUTDOWN, STOP, \
                 DONE, FAILED or UNKNOWN (skipped)"
                    .into()
            )
        );
        assert_eq!(
            hook(r#"VM_HOOK = [ on = "done", command = "c", remote = "maybe" ]"#).err(),
            Some("VM_HOOK c: REMOTE must be yes or no, found \"maybe\" (skipped)".into())
        );
    }

    #[test]
    fn hook_events_round_trip() {
        for e in HookEvent::ALL {
            assert_eq!(HookEvent::parse(&e.as_str().to_ascii_lowercase()), Some(e));
        }
        assert_eq!(HookEvent::parse("reboot"), None);
    }
}
