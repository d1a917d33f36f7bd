//! The loaded drivers: which folder of scripts a driver name means, how
//! many of its actions may run at once, how often a failed one is retried,
//! where its actions run, and how long each action may take
//! (spec/DRIVERS.md §0 "Timeouts / retries", "Concurrency"; §10.2).
//!
//! Built from plain data: the `config` module may not be used here (STYLE.md
//! §2), so the wiring copies each `IM_MAD`/`VM_MAD`/`TM_MAD` into a
//! [`DriverSpec`] (see the example on [`ScriptDrivers`](super::ScriptDrivers)).
//!
//! May use: `super::action` (name checks), `super::locks` and
//! `crate::template` (a kvm driver's defaults).

use std::path::Path;
use std::time::Duration;

use crate::template::Template;

use super::action::check_name;
use super::locks::Slots;

/// A driver class, which is also its folder under the remotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Host monitoring (`IM_MAD`), `im/`.
    Im,
    /// Virtual machine manager (`VM_MAD`), `vmm/`.
    Vmm,
    /// Transfer manager (`TM_MAD`), `tm/`.
    Tm,
}

impl Class {
    /// The folder under the remotes (`im`, `vmm`, `tm`).
    pub fn dir(self) -> &'static str {
        match self {
            Class::Im => "im",
            Class::Vmm => "vmm",
            Class::Tm => "tm",
        }
    }
}

/// An action run on the front-end instead of the host (`-l poll=poll_ganglia`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAction {
    /// The action, lower case.
    pub action: String,
    /// The script run instead of the action's own, if given.
    pub script: Option<String>,
}

/// One loaded driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverSpec {
    /// Its class.
    pub class: Class,
    /// The name hosts refer to (`vmm_kvm`).
    pub name: String,
    /// Its folder under `<remotes>/<class>/` (`kvm`); hosts may also refer
    /// to the driver by it.
    pub folder: String,
    /// `-t`: actions of this driver running at once (default 15).
    pub threads: Option<u32>,
    /// `-r`: times a failed action is run again, 1 s apart.
    pub retries: u32,
    /// `-l`: actions run on the front-end.
    pub local_actions: Vec<LocalAction>,
    /// Every action runs on the front-end: drivers whose hosts are not
    /// real machines (`dummy`).
    pub front_end: bool,
    /// A timeout for every action of this driver, instead of the
    /// per-action ones of [`Timeouts`].
    pub timeout: Option<Duration>,
    /// VMM: how the deployment file is made from what the core sends
    /// (`VM_MAD … type`).
    pub deployment: Deployment,
}

/// How a VMM driver's deployment file is made (spec/DRIVERS.md §3, the
/// `type` of `VM_MAD`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Deployment {
    /// The text the core sends, as it is (the VM template): `type = "xml"`,
    /// the dummy driver.
    #[default]
    AsIs,
    /// A libvirt domain XML generated from the VM template
    /// ([`super::kvm::domain_xml`]), what the template lacks taken from
    /// these defaults (the driver's `default` file): `type = "kvm"`.
    Kvm(Template),
}

impl DriverSpec {
    /// OpenNebula's default number of concurrent actions per driver (`-t`).
    pub const DEFAULT_THREADS: u32 = 15;

    /// A driver with the defaults: 15 threads, no retries, actions on the
    /// hosts, per-action timeouts.
    pub fn new(class: Class, name: impl Into<String>, folder: impl Into<String>) -> Self {
        DriverSpec {
            class,
            name: name.into(),
            folder: folder.into(),
            threads: None,
            retries: 0,
            local_actions: Vec::new(),
            front_end: false,
            timeout: None,
            deployment: Deployment::AsIs,
        }
    }

    /// Whether `action` runs on the front-end (TM actions always do), and
    /// the script it runs.
    pub(super) fn placement<'a>(&'a self, action: &'a str) -> (bool, &'a str) {
        if let Some(local) = self.local_actions.iter().find(|l| l.action == action) {
            return (true, local.script.as_deref().unwrap_or(action));
        }
        (self.front_end || self.class == Class::Tm, action)
    }
}

/// One registered driver and its concurrency limit.
pub(super) struct Entry {
    /// What was registered.
    pub spec: DriverSpec,
    /// Free action slots (`-t`).
    pub slots: Slots,
}

/// The loaded drivers of every class.
#[derive(Default)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// No drivers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads a driver. Its folder and local scripts must be valid path
    /// components; a second driver of the same class and name replaces the
    /// first (as a later `VM_MAD` in a file does).
    pub fn add(&mut self, spec: DriverSpec) -> Result<(), String> {
        let what = format!("{} driver {}", spec.class.dir(), spec.name);
        check_name(&spec.folder).map_err(|e| format!("{what}: folder: {e}"))?;
        for local in &spec.local_actions {
            check_name(&local.action).map_err(|e| format!("{what}: local action: {e}"))?;
            if let Some(script) = &local.script {
                check_name(script).map_err(|e| format!("{what}: local script: {e}"))?;
            }
        }
        if spec.name.trim().is_empty() {
            return Err(format!("{what}: empty name"));
        }
        let slots = Slots::new(spec.threads.unwrap_or(DriverSpec::DEFAULT_THREADS).max(1));
        self.entries
            .retain(|e| !(e.spec.class == spec.class && e.spec.name == spec.name));
        self.entries.push(Entry { spec, slots });
        Ok(())
    }

    /// The driver of `class` a host calls `key`: the one with that name,
    /// else the first with that folder (`vmm_kvm` or `kvm`).
    pub fn get(&self, class: Class, key: &str) -> Option<&DriverSpec> {
        self.entry(class, key).map(|e| &e.spec)
    }

    pub(super) fn entry(&self, class: Class, key: &str) -> Option<&Entry> {
        let of_class = || self.entries.iter().filter(move |e| e.spec.class == class);
        of_class()
            .find(|e| e.spec.name == key)
            .or_else(|| of_class().find(|e| e.spec.folder == key))
    }

    /// Every loaded driver, in the order loaded.
    pub fn specs(&self) -> impl Iterator<Item = &DriverSpec> {
        self.entries.iter().map(|e| &e.spec)
    }

    /// Warnings for drivers whose folder is missing under `remotes` (a
    /// configuration may name drivers cloudgate does not ship; their
    /// actions fail with "not found" when used, DRIVERS.md §10.2).
    pub fn missing_folders(&self, remotes: &Path) -> Vec<String> {
        // IM probes may live in `<folder>.d` (OpenNebula's `im/kvm.d`).
        let present = |s: &DriverSpec| {
            let dir = remotes.join(s.class.dir());
            dir.join(&s.folder).is_dir()
                || (s.class == Class::Im && dir.join(format!("{}.d", s.folder)).is_dir())
        };
        self.specs()
            .filter(|s| !present(s))
            .map(|s| {
                format!(
                    "{} driver {}: no folder {}",
                    s.class.dir(),
                    s.name,
                    remotes.join(s.class.dir()).join(&s.folder).display()
                )
            })
            .collect()
    }
}

/// How long each action may run (DRIVERS.md §0): deploy, restore, migrate
/// and save 600 s, shutdown 360 s, cancel 120 s, poll and monitor 60 s, TM
/// actions 1800 s, hooks 60 s (§8), anything else the default
/// (`DRIVER_TIMEOUT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    default: Duration,
    table: Vec<(String, Duration)>,
}

impl Timeouts {
    /// The §0 table, with `default` for the actions it does not name.
    pub fn new(default: Duration) -> Self {
        let secs = Duration::from_secs;
        let table = [
            ("deploy", secs(600)),
            ("restore", secs(600)),
            ("migrate", secs(600)),
            ("save", secs(600)),
            ("shutdown", secs(360)),
            ("cancel", secs(120)),
            ("poll", secs(60)),
            ("monitor", secs(60)),
            ("clone", secs(1800)),
            ("ln", secs(1800)),
            ("mkswap", secs(1800)),
            ("mkimage", secs(1800)),
            ("context", secs(1800)),
            ("mv", secs(1800)),
            ("delete", secs(1800)),
            ("hook", secs(60)),
        ];
        Timeouts {
            default,
            table: table.iter().map(|(a, d)| (a.to_string(), *d)).collect(),
        }
    }

    /// Sets the timeout of one action (e.g. shutdown above
    /// `SHUTDOWN_TIMEOUT`).
    pub fn set(mut self, action: &str, timeout: Duration) -> Self {
        match self.table.iter_mut().find(|(a, _)| a == action) {
            Some(slot) => slot.1 = timeout,
            None => self.table.push((action.to_owned(), timeout)),
        }
        self
    }

    /// The timeout of `action`.
    pub fn get(&self, action: &str) -> Duration {
        self.table
            .iter()
            .find(|(a, _)| a == action)
            .map_or(self.default, |(_, d)| *d)
    }
}

impl Default for Timeouts {
    /// The §0 table with `DRIVER_TIMEOUT`'s default, 300 s.
    fn default() -> Self {
        Timeouts::new(Duration::from_secs(300))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_are_found_by_name_then_folder() {
        let mut registry = Registry::new();
        registry
            .add(DriverSpec::new(Class::Vmm, "vmm_kvm", "kvm"))
            .expect("valid");
        registry
            .add(DriverSpec::new(Class::Vmm, "kvm", "dummy"))
            .expect("valid");
        registry
            .add(DriverSpec::new(Class::Im, "im_kvm", "kvm"))
            .expect("valid");
        let folder = |class, key| registry.get(class, key).map(|s| s.folder.as_str());
        assert_eq!(folder(Class::Vmm, "vmm_kvm"), Some("kvm"));
        // A name wins over a folder.
        assert_eq!(folder(Class::Vmm, "kvm"), Some("dummy"));
        assert_eq!(folder(Class::Im, "kvm"), Some("kvm"));
        assert_eq!(folder(Class::Tm, "kvm"), None);
        assert_eq!(folder(Class::Vmm, "xen"), None);
    }

    #[test]
    fn invalid_folders_and_scripts_are_refused() {
        let mut registry = Registry::new();
        for folder in ["..", "a/b", "", "k vm"] {
            assert!(
                registry
                    .add(DriverSpec::new(Class::Vmm, "v", folder))
                    .is_err(),
                "{folder:?}"
            );
        }
        let mut spec = DriverSpec::new(Class::Vmm, "v", "kvm");
        spec.local_actions.push(LocalAction {
            action: "poll".into(),
            script: Some("../../bin/sh".into()),
        });
        assert!(registry.add(spec).is_err());
        assert_eq!(registry.specs().count(), 0);
    }

    #[test]
    fn a_later_definition_replaces_an_earlier_one() {
        let mut registry = Registry::new();
        registry
            .add(DriverSpec::new(Class::Tm, "tm_x", "ssh"))
            .expect("valid");
        registry
            .add(DriverSpec::new(Class::Tm, "tm_x", "shared"))
            .expect("valid");
        assert_eq!(registry.specs().count(), 1);
        assert_eq!(
            registry.get(Class::Tm, "tm_x").map(|s| s.folder.as_str()),
            Some("shared")
        );
    }

    #[test]
    fn placement_follows_local_actions_and_class() {
        let mut spec = DriverSpec::new(Class::Vmm, "vmm_kvm", "kvm");
        spec.local_actions = vec![
            LocalAction {
                action: "migrate".into(),
                script: Some("migrate_local".into()),
            },
            LocalAction {
                action: "poll".into(),
                script: None,
            },
        ];
        assert_eq!(spec.placement("deploy"), (false, "deploy"));
        assert_eq!(spec.placement("migrate"), (true, "migrate_local"));
        assert_eq!(spec.placement("poll"), (true, "poll"));
        assert_eq!(
            DriverSpec::new(Class::Tm, "t", "ssh").placement("clone"),
            (true, "clone")
        );
        let mut dummy = DriverSpec::new(Class::Vmm, "vmm_dummy", "dummy");
        dummy.front_end = true;
        assert_eq!(dummy.placement("deploy"), (true, "deploy"));
    }

    #[test]
    fn missing_folders_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("vmm/kvm")).expect("mkdir");
        let mut registry = Registry::new();
        registry
            .add(DriverSpec::new(Class::Vmm, "vmm_kvm", "kvm"))
            .expect("valid");
        registry
            .add(DriverSpec::new(Class::Vmm, "vmm_xen", "xen"))
            .expect("valid");
        let warnings = registry.missing_folders(dir.path());
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("vmm driver vmm_xen: no folder"),
            "{warnings:?}"
        );
    }

    #[test]
    fn timeouts_follow_the_spec_table() {
        let t = Timeouts::new(Duration::from_secs(300));
        assert_eq!(t.get("deploy"), Duration::from_secs(600));
        assert_eq!(t.get("shutdown"), Duration::from_secs(360));
        assert_eq!(t.get("cancel"), Duration::from_secs(120));
        assert_eq!(t.get("poll"), Duration::from_secs(60));
        assert_eq!(t.get("clone"), Duration::from_secs(1800));
        assert_eq!(t.get("reboot"), Duration::from_secs(300));
        let t = t.set("shutdown", Duration::from_secs(400));
        assert_eq!(t.get("shutdown"), Duration::from_secs(400));
    }
}
