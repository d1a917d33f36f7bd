//! Applying one parsed file onto a [`Config`]: the table of known
//! attributes, the checks of their shape, warnings, and the checks that
//! involve several attributes.
//!
//! Rules: a single attribute set twice keeps its first value (as OpenNebula's
//! template lookups do) and warns; a repeatable vector kind given in the file
//! replaces the defaults of that kind; a known attribute with a bad value, or
//! written as a vector instead of a single value (or the reverse), is an
//! error at its position; anything unknown is a warning.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::template::{parse_spanned, Attribute, Value, Vector};

use super::drivers::{
    DriverClass, DriverDef, Hook, HookManagerDef, DRIVER_KEYS, HM_KEYS, HOOK_KEYS,
};
use super::error::{ConfigError, ConfigWarning, Location};
use super::instance::{InstanceType, EC2_TYPE_KEYS, OCCI_TYPE_KEYS};
use super::sched::{SchedPolicy, SchedulerConfig, DEFAULT_SCHED_KEYS};
use super::values::{self, DebugLevel, Expected, OcciDialect, SshHostKeyPolicy};
use super::Config;

/// OpenNebula attributes (1.4 to 4.x `oned.conf` and `sched.conf`) that
/// cloudgate reads past: they get a clearer warning than a typo would.
const OPENNEBULA_UNUSED: &[&str] = &[
    "LOG",
    "MONITORING_INTERVAL",
    "MONITORING_THREADS",
    "HOST_MONITORING_EXPIRATION_TIME",
    "VM_MONITORING_EXPIRATION_TIME",
    "VM_INDIVIDUAL_MONITORING",
    "VM_SUBMIT_ON_HOLD",
    "IMAGE_REPOSITORY_PATH",
    "DATASTORE_LOCATION",
    "DATASTORE_BASE_PATH",
    "DATASTORE_CAPACITY_CHECK",
    "DEFAULT_IMAGE_TYPE",
    "DEFAULT_DEVICE_PREFIX",
    "DEFAULT_CDROM_DEVICE_PREFIX",
    "IMAGE_MAD",
    "DATASTORE_MAD",
    "VNM_MAD",
    "AUTH_MAD",
    "HOST_HOOK",
    "VNET_HOOK",
    "USER_HOOK",
    "IMAGE_HOOK",
    "FEDERATION",
    "ONED_PORT",
    "LIVE_RESCHEDS",
    "MAX_CONN",
    "MAX_CONN_BACKLOG",
    "KEEPALIVE_TIMEOUT",
    "KEEPALIVE_MAX_CONN",
    "TIMEOUT",
    "RPC_LOG",
    "MESSAGE_SIZE",
    "SESSION_EXPIRATION_TIME",
    "DEFAULT_UMASK",
];

/// The starting point the embedded file is applied to. Every value here is
/// overwritten by `config/cloudgate.conf` (a unit test checks the file sets
/// every attribute), so none of them is a default anyone sees.
pub(super) fn blank() -> Config {
    Config {
        manager_timer: Duration::ZERO,
        host_monitoring_interval: Duration::ZERO,
        host_per_interval: 0,
        vm_polling_interval: Duration::ZERO,
        vm_per_interval: 0,
        vm_dir: PathBuf::new(),
        scripts_remote_dir: PathBuf::new(),
        mac_prefix: [0, 0],
        network_size: 0,
        port: None,
        debug_level: DebugLevel::Info,
        vnc_base_port: 0,
        scheduler: SchedulerConfig {
            interval: Duration::ZERO,
            max_vm: 0,
            max_dispatch: 0,
            max_host: 0,
            hypervisor_mem: 0.0,
            default_policy: SchedPolicy::Striping,
        },
        im_drivers: Vec::new(),
        vmm_drivers: Vec::new(),
        tm_drivers: Vec::new(),
        hook_manager: None,
        hooks: Vec::new(),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        public_url: None,
        data_dir: PathBuf::new(),
        remotes_dir: PathBuf::new(),
        occi_dialect: OcciDialect::Auto,
        occi_instance_types: Vec::new(),
        ec2_instance_types: Vec::new(),
        ec2_default_instance_type: String::new(),
        ec2_path_prefix: String::new(),
        ec2_terminated_visible: Duration::ZERO,
        body_limit: 0,
        upload_limit: 0,
        signature_skew: Duration::ZERO,
        driver_timeout: Duration::ZERO,
        shutdown_timeout: Duration::ZERO,
        ssh_connect_timeout: Duration::ZERO,
        ssh_host_key_policy: SshHostKeyPolicy::AcceptNew,
        host_action_limit: 0,
    }
}

/// Parse `text` and apply it onto `config`; `source` names the file in
/// messages. Returns the warnings.
pub(super) fn apply(
    config: &mut Config,
    text: &str,
    source: &str,
) -> Result<Vec<ConfigWarning>, ConfigError> {
    let (template, positions) = parse_spanned(text)
        .map_err(|e| ConfigError::at(&Location::new(source, e.line, e.col), e.message))?;
    let mut loader = Loader {
        source,
        warnings: Vec::new(),
        seen: HashMap::new(),
        replaced: HashSet::new(),
        ec2_default_at: None,
        ec2_types_at: None,
    };
    for (attr, pos) in template.attributes().iter().zip(positions) {
        let at = Location::new(source, pos.line, pos.col);
        loader.attribute(config, attr, &at)?;
    }
    loader.check_ec2_default(config)?;
    Ok(loader.warnings)
}

/// State of one file's application.
struct Loader<'s> {
    source: &'s str,
    warnings: Vec<ConfigWarning>,
    /// Single attributes (and one-only vectors) already set by this file,
    /// with the line they were set on.
    seen: HashMap<String, usize>,
    /// Repeatable vector kinds this file has started to replace.
    replaced: HashSet<String>,
    /// Where this file set `EC2_DEFAULT_INSTANCE_TYPE`.
    ec2_default_at: Option<Location>,
    /// Where this file gave its first `EC2_INSTANCE_TYPE`.
    ec2_types_at: Option<Location>,
}

/// Overwrite `slot` when the attribute produced a value (it did not when it
/// was a repeat).
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

impl Loader<'_> {
    fn warn(&mut self, at: &Location, message: impl Into<String>) {
        self.warnings.push(ConfigWarning::at(at, message));
    }

    /// Apply one top-level attribute.
    fn attribute(
        &mut self,
        c: &mut Config,
        attr: &Attribute,
        at: &Location,
    ) -> Result<(), ConfigError> {
        use values::{count, interval, seconds};
        match attr.name.as_str() {
            // OpenNebula daemon attributes.
            "MANAGER_TIMER" => set(&mut c.manager_timer, self.parse(attr, at, interval)?),
            "HOST_MONITORING_INTERVAL" => set(
                &mut c.host_monitoring_interval,
                self.parse(attr, at, interval)?,
            ),
            "HOST_PER_INTERVAL" => set(&mut c.host_per_interval, self.parse(attr, at, count)?),
            "VM_POLLING_INTERVAL" => {
                set(&mut c.vm_polling_interval, self.parse(attr, at, interval)?)
            }
            "VM_PER_INTERVAL" => set(&mut c.vm_per_interval, self.parse(attr, at, count)?),
            "VM_DIR" => set(&mut c.vm_dir, self.parse(attr, at, values::absolute_path)?),
            "SCRIPTS_REMOTE_DIR" => set(
                &mut c.scripts_remote_dir,
                self.parse(attr, at, values::absolute_path)?,
            ),
            "MAC_PREFIX" => set(&mut c.mac_prefix, self.parse(attr, at, values::mac_prefix)?),
            "NETWORK_SIZE" => set(&mut c.network_size, self.parse(attr, at, count)?),
            "PORT" => set(&mut c.port, self.parse(attr, at, |t| port(t).map(Some))?),
            "DEBUG_LEVEL" => set(&mut c.debug_level, self.parse(attr, at, DebugLevel::parse)?),
            "VNC_BASE_PORT" => set(&mut c.vnc_base_port, self.parse(attr, at, port)?),
            "DB" => self.db(attr, at)?,
            // Scheduler.
            "SCHED_INTERVAL" => set(&mut c.scheduler.interval, self.parse(attr, at, interval)?),
            "MAX_VM" => set(&mut c.scheduler.max_vm, self.parse(attr, at, count)?),
            "MAX_DISPATCH" => set(&mut c.scheduler.max_dispatch, self.parse(attr, at, count)?),
            "MAX_HOST" => set(&mut c.scheduler.max_host, self.parse(attr, at, count)?),
            "HYPERVISOR_MEM" => set(
                &mut c.scheduler.hypervisor_mem,
                self.parse(attr, at, values::fraction)?,
            ),
            "DEFAULT_SCHED" => {
                if let Some(v) = self.one_vector(attr, at, DEFAULT_SCHED_KEYS)? {
                    let (policy, warnings) =
                        SchedPolicy::from_vector(v).map_err(|e| ConfigError::at(at, e))?;
                    for w in warnings {
                        self.warn(at, w);
                    }
                    c.scheduler.default_policy = policy;
                }
            }
            // Drivers and hooks.
            "IM_MAD" => self.driver(&mut c.im_drivers, DriverClass::Im, attr, at)?,
            "VM_MAD" => self.driver(&mut c.vmm_drivers, DriverClass::Vmm, attr, at)?,
            "TM_MAD" => self.driver(&mut c.tm_drivers, DriverClass::Tm, attr, at)?,
            "HM_MAD" => {
                if let Some(v) = self.one_vector(attr, at, HM_KEYS)? {
                    c.hook_manager = Some(HookManagerDef::from_vector(v));
                }
            }
            "VM_HOOK" => self.hook(&mut c.hooks, attr, at)?,
            // cloudgate's own.
            "LISTEN" => set(&mut c.listen, self.parse(attr, at, values::socket_addr)?),
            "PUBLIC_URL" => set(
                &mut c.public_url,
                // An empty value means "unset", so a file can undo a default.
                self.parse(attr, at, |t| {
                    if t.trim().is_empty() {
                        Ok(None)
                    } else {
                        values::public_url(t).map(Some)
                    }
                })?,
            ),
            "DATA_DIR" => set(&mut c.data_dir, self.parse(attr, at, values::path)?),
            "REMOTES_DIR" => set(&mut c.remotes_dir, self.parse(attr, at, values::path)?),
            "OCCI_DIALECT" => set(
                &mut c.occi_dialect,
                self.parse(attr, at, OcciDialect::parse)?,
            ),
            "OCCI_INSTANCE_TYPE" => {
                self.instance_type(&mut c.occi_instance_types, attr, at, OCCI_TYPE_KEYS, false)?
            }
            "EC2_INSTANCE_TYPE" => {
                self.ec2_types_at.get_or_insert_with(|| at.clone());
                self.instance_type(&mut c.ec2_instance_types, attr, at, EC2_TYPE_KEYS, true)?
            }
            "EC2_DEFAULT_INSTANCE_TYPE" => {
                if let Some(name) = self.parse(attr, at, values::non_empty)? {
                    c.ec2_default_instance_type = name;
                    self.ec2_default_at = Some(at.clone());
                }
            }
            "EC2_PATH_PREFIX" => set(
                &mut c.ec2_path_prefix,
                self.parse(attr, at, values::path_prefix)?,
            ),
            "EC2_TERMINATED_VISIBLE" => set(
                &mut c.ec2_terminated_visible,
                self.parse(attr, at, |t| seconds(t, 0))?,
            ),
            "BODY_LIMIT" => set(&mut c.body_limit, self.parse(attr, at, values::size)?),
            "UPLOAD_LIMIT" => set(&mut c.upload_limit, self.parse(attr, at, values::size)?),
            "SIGNATURE_SKEW" => set(
                &mut c.signature_skew,
                self.parse(attr, at, |t| seconds(t, 0))?,
            ),
            "DRIVER_TIMEOUT" => set(&mut c.driver_timeout, self.parse(attr, at, interval)?),
            "SHUTDOWN_TIMEOUT" => set(&mut c.shutdown_timeout, self.parse(attr, at, interval)?),
            "SSH_CONNECT_TIMEOUT" => {
                set(&mut c.ssh_connect_timeout, self.parse(attr, at, interval)?)
            }
            "SSH_HOST_KEY_POLICY" => set(
                &mut c.ssh_host_key_policy,
                self.parse(attr, at, SshHostKeyPolicy::parse)?,
            ),
            "HOST_ACTION_LIMIT" => set(&mut c.host_action_limit, self.parse(attr, at, count)?),
            name if OPENNEBULA_UNUSED.contains(&name) => self.warn(
                at,
                format!("{name} is an OpenNebula attribute cloudgate does not use (ignored)"),
            ),
            name => self.warn(at, format!("unknown attribute {name} (ignored)")),
        }
        Ok(())
    }

    /// The text of a single attribute, or `None` when this file already set
    /// it (a warning; the first value stays).
    fn single<'a>(
        &mut self,
        attr: &'a Attribute,
        at: &Location,
    ) -> Result<Option<&'a str>, ConfigError> {
        let text = match &attr.value {
            Value::Single(text) => text.as_str(),
            Value::Vector(_) => {
                return Err(ConfigError::at(
                    at,
                    format!("{} must be a single value, not a vector", attr.name),
                ))
            }
        };
        Ok(self.first_time(attr, at).then_some(text))
    }

    /// Record that this file sets `attr`; false (and a warning) if it did
    /// already.
    fn first_time(&mut self, attr: &Attribute, at: &Location) -> bool {
        if let Some(line) = self.seen.get(&attr.name).copied() {
            self.warn(
                at,
                format!(
                    "{} is set again (ignored; the value on line {line} is used)",
                    attr.name
                ),
            );
            return false;
        }
        self.seen.insert(attr.name.clone(), at.line);
        true
    }

    /// Parse a single attribute's value with `parse`; the error reads
    /// `NAME must be <expected>, found "<text>"`.
    fn parse<T>(
        &mut self,
        attr: &Attribute,
        at: &Location,
        parse: impl FnOnce(&str) -> Result<T, Expected>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(text) = self.single(attr, at)? else {
            return Ok(None);
        };
        parse(text).map(Some).map_err(|expected| {
            ConfigError::at(
                at,
                format!("{} must be {expected}, found {text:?}", attr.name),
            )
        })
    }

    /// The vector of a vector attribute, after warning about keys not in
    /// `keys`.
    fn vector<'a>(
        &mut self,
        attr: &'a Attribute,
        at: &Location,
        keys: &[&str],
    ) -> Result<&'a Vector, ConfigError> {
        let v = match &attr.value {
            Value::Vector(v) => v,
            Value::Single(text) => {
                return Err(ConfigError::at(
                    at,
                    format!(
                    "{name} must be a vector like {name} = [ KEY = value, ... ], found {text:?}",
                    name = attr.name
                ),
                ))
            }
        };
        for (key, _) in v.iter() {
            let key = key.to_ascii_uppercase();
            if !keys.contains(&key.as_str()) {
                self.warn(at, format!("unknown key {key} in {} (ignored)", attr.name));
            }
        }
        Ok(v)
    }

    /// A vector attribute that may appear once; `None` for a repeat.
    fn one_vector<'a>(
        &mut self,
        attr: &'a Attribute,
        at: &Location,
        keys: &[&str],
    ) -> Result<Option<&'a Vector>, ConfigError> {
        if matches!(attr.value, Value::Vector(_)) && !self.first_time(attr, at) {
            return Ok(None);
        }
        self.vector(attr, at, keys).map(Some)
    }

    /// True the first time this file gives a repeatable vector kind: the
    /// caller then drops the defaults of that kind.
    fn replaces(&mut self, attr: &Attribute) -> bool {
        self.replaced.insert(attr.name.clone())
    }

    /// `DB = [ BACKEND = sqlite ]`: accepted; any other backend is refused.
    fn db(&mut self, attr: &Attribute, at: &Location) -> Result<(), ConfigError> {
        let Some(v) = self.one_vector(attr, at, &["BACKEND"])? else {
            return Ok(());
        };
        match v.get("BACKEND").map(str::trim) {
            None | Some("") => Ok(()),
            Some(b) if b.eq_ignore_ascii_case("sqlite") => Ok(()),
            Some(b) => Err(ConfigError::at(
                at,
                format!("DB BACKEND must be sqlite (cloudgate keeps its data in SQLite under DATA_DIR), found {b:?}"),
            )),
        }
    }

    /// An `IM_MAD`, `VM_MAD` or `TM_MAD` vector.
    fn driver(
        &mut self,
        list: &mut Vec<DriverDef>,
        class: DriverClass,
        attr: &Attribute,
        at: &Location,
    ) -> Result<(), ConfigError> {
        let v = self.vector(attr, at, DRIVER_KEYS)?;
        let driver =
            DriverDef::from_vector(class, v, at.clone()).map_err(|e| ConfigError::at(at, e))?;
        if self.replaces(attr) {
            list.clear();
        }
        if let Some(first) = list.iter().find(|d| d.name == driver.name) {
            let message = format!(
                "{} {} is defined again (ignored; the one on line {} is used)",
                attr.name, driver.name, first.location.line
            );
            self.warn(at, message);
        } else {
            list.push(driver);
        }
        Ok(())
    }

    /// A `VM_HOOK` vector: problems with a hook are warnings and skip it.
    fn hook(
        &mut self,
        list: &mut Vec<Hook>,
        attr: &Attribute,
        at: &Location,
    ) -> Result<(), ConfigError> {
        let v = self.vector(attr, at, HOOK_KEYS)?;
        if self.replaces(attr) {
            list.clear();
        }
        match Hook::from_vector(v, at.clone()) {
            Ok((hook, warnings)) => {
                for w in warnings {
                    self.warn(at, w);
                }
                list.push(hook);
            }
            Err(skipped) => self.warn(at, skipped),
        }
        Ok(())
    }

    /// An `OCCI_INSTANCE_TYPE` or `EC2_INSTANCE_TYPE` vector.
    fn instance_type(
        &mut self,
        list: &mut Vec<InstanceType>,
        attr: &Attribute,
        at: &Location,
        keys: &[&str],
        with_network: bool,
    ) -> Result<(), ConfigError> {
        let v = self.vector(attr, at, keys)?;
        let t = InstanceType::from_vector(&attr.name, v, with_network)
            .map_err(|e| ConfigError::at(at, e))?;
        if self.replaces(attr) {
            list.clear();
        }
        if list.iter().any(|known| known.name == t.name) {
            self.warn(
                at,
                format!(
                    "{} {} is defined again (ignored; the first one is used)",
                    attr.name, t.name
                ),
            );
        } else {
            list.push(t);
        }
        Ok(())
    }

    /// `EC2_DEFAULT_INSTANCE_TYPE` must name an `EC2_INSTANCE_TYPE`. The
    /// error points at whichever of the two this file changed.
    fn check_ec2_default(&self, c: &Config) -> Result<(), ConfigError> {
        if c.ec2_instance_types
            .iter()
            .any(|t| t.name == c.ec2_default_instance_type)
        {
            return Ok(());
        }
        let at = self
            .ec2_default_at
            .clone()
            .or_else(|| self.ec2_types_at.clone())
            .unwrap_or_else(|| Location::new(self.source, 0, 0));
        let names: Vec<&str> = c
            .ec2_instance_types
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        Err(ConfigError::at(
            &at,
            format!(
                "EC2_DEFAULT_INSTANCE_TYPE {:?} is not one of the EC2_INSTANCE_TYPE names ({})",
                c.ec2_default_instance_type,
                names.join(", ")
            ),
        ))
    }
}

/// A TCP port, 1..=65535.
fn port(text: &str) -> Result<u16, Expected> {
    values::whole_u32(text, 1, 65535)
        .map(|p| u16::try_from(p).unwrap_or(u16::MAX))
        .map_err(|_| "a port number from 1 to 65535".to_owned())
}
