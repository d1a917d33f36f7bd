//! `cloudgate serve`: config → store → core → HTTP, and the first start's
//! `oneadmin`.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::distributions::{Alphanumeric, DistString};

use crate::api::{self, AppState};
use crate::config::{Config, DriverClass, Hook, HookEvent};
use crate::core::hooks::{HookOn, HookSpec};
use crate::core::settings::{DriverName, DONE_RETENTION};
use crate::core::{Core, Settings};
use crate::store::{SqliteStore, DB_FILE};

mod drivers;
mod vmlog;
pub use drivers::{build_drivers, remotes_dir, REMOTES_ENV};
pub use vmlog::{VmLog, VmLogGuard};

/// The config file `serve` reads when none is named; when it is absent the
/// built-in defaults apply, so `serve` works from any directory.
pub const DEFAULT_CONFIG: &str = "config/cloudgate.conf";

/// The file, inside the data dir, that receives `oneadmin:<password>`.
pub const ONE_AUTH_FILE: &str = "one_auth";

/// Where `serve` takes its settings from, before the config file.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// An explicit config file (must exist).
    pub config: Option<PathBuf>,
    /// Overrides DATA_DIR.
    pub data_dir: Option<PathBuf>,
    /// Overrides LISTEN.
    pub listen: Option<SocketAddr>,
}

/// Loads the config as `serve` does: the named file, else the default file
/// if present, else the built-in defaults; then the command-line overrides.
/// Warnings are returned as text for the caller to log.
pub fn load_config(opts: &ServeOptions) -> Result<(Config, Vec<String>), String> {
    let (mut config, warnings) = match &opts.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None if Path::new(DEFAULT_CONFIG).exists() => {
            Config::load(Path::new(DEFAULT_CONFIG)).map_err(|e| e.to_string())?
        }
        None => (Config::default(), Vec::new()),
    };
    if let Some(dir) = &opts.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(listen) = opts.listen {
        config.listen = listen;
    }
    Ok((config, warnings.iter().map(ToString::to_string).collect()))
}

/// Runs the server until it is stopped (SIGINT or SIGTERM).
pub fn run(config: Config) -> Result<(), String> {
    // Read before anything slow: a parent that exits during start-up must
    // still be noticed.
    let parent = std::os::unix::process::parent_id();
    fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", config.data_dir.display()))?;
    let store = SqliteStore::open(&config.data_dir.join(DB_FILE)).map_err(|e| e.to_string())?;
    let drivers = build_drivers(&config);
    let core =
        Core::open(Arc::new(store), core_settings(&config), drivers).map_err(|e| e.to_string())?;
    let core = Arc::new(core);
    first_start(&core, &config.data_dir)?;
    first_host(&core)?;

    let listener = TcpListener::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let started = core.clone();
    let state = AppState {
        core,
        body_limit: usize::try_from(config.body_limit).unwrap_or(usize::MAX),
        upload_limit: config.upload_limit,
        public_url: config.public_url.clone(),
        occi: occi_settings(&config)?,
        ec2: ec2_settings(&config)?,
    };
    actix_web::rt::System::new().block_on(async move {
        let server = api::server(state, listener).map_err(|e| e.to_string())?;
        // Printed on stdout, unlike the log, so that scripts and the test
        // harness can learn the port when LISTEN asks for port 0.
        println!("cloudgate listening on http://{addr}");
        tracing::info!(
            "listening on http://{addr}, data in {}",
            config.data_dir.display()
        );
        // Monitoring and scheduling start once the server is bound, and
        // stop when it has stopped serving.
        let background = started.start().map_err(|e| e.to_string())?;
        if std::env::var_os(EXIT_WITH_PARENT).is_some() {
            actix_web::rt::spawn(stop_when_orphaned(server.handle(), parent));
        }
        let served = server.await.map_err(|e| e.to_string());
        background.stop();
        served
    })
}

/// Set by test harnesses: the server stops when the process that started
/// it is gone, so a test binary that exits without dropping its servers
/// (a `static` shared server is never dropped) leaves none running.
pub const EXIT_WITH_PARENT: &str = "CLOUDGATE_EXIT_WITH_PARENT";

/// Stops the server gracefully once this process has been re-parented.
async fn stop_when_orphaned(server: actix_web::dev::ServerHandle, parent: u32) {
    while std::os::unix::process::parent_id() == parent {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    tracing::info!("the parent process is gone; stopping");
    server.stop(true).await;
}

/// The domain part of the config, as the core takes it.
fn core_settings(config: &Config) -> Settings {
    let names = |class: DriverClass| {
        config
            .drivers(class)
            .iter()
            .map(|d| DriverName {
                name: d.name.clone(),
                folder: d.folder().to_string(),
            })
            .collect()
    };
    Settings {
        mac_prefix: config.mac_prefix,
        network_size: config.network_size,
        im_drivers: names(DriverClass::Im),
        vmm_drivers: names(DriverClass::Vmm),
        tm_drivers: names(DriverClass::Tm),
        hypervisor_mem: config.scheduler.hypervisor_mem,
        manager_timer: config.manager_timer,
        host_monitoring_interval: config.host_monitoring_interval,
        host_per_interval: config.host_per_interval,
        sched_interval: config.scheduler.interval,
        max_vm: config.scheduler.max_vm,
        max_dispatch: config.scheduler.max_dispatch,
        max_host: config.scheduler.max_host,
        default_rank: config.scheduler.default_policy.rank().into_owned(),
        image_dir: config.data_dir.join("images"),
        // Where the administrator puts the init scripts every user may
        // ship in CONTEXT/FILES (core::context); absent until created.
        // Absolute, since users name absolute paths.
        context_files_dir: std::path::absolute(config.data_dir.join(CONTEXT_FILES_DIR)).ok(),
        hooks: config.hooks.iter().map(hook_spec).collect(),
        vm_dir: config.vm_dir.display().to_string(),
        var_dir: var_dir(config),
        front_end: front_end_name(),
        vm_polling_interval: config.vm_polling_interval,
        vm_per_interval: config.vm_per_interval,
        vnc_base_port: config.vnc_base_port,
        // DescribeInstances lists terminated instances from memory.
        done_retention: config.ec2_terminated_visible.max(DONE_RETENTION),
    }
}

/// OpenNebula's `var` (the core's `var_dir`, where `<vid>/` holds a VM's
/// front-end files and its `vm.log`): the data dir, made absolute since
/// driver scripts get paths under it.
pub fn var_dir(config: &Config) -> PathBuf {
    std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone())
}

/// The front-end's host name for TM arguments (`<fe>:<path>`): the
/// kernel's, else `localhost`.
fn front_end_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The folder of the data dir whose files every user may name in a VM's
/// `CONTEXT/FILES`.
pub const CONTEXT_FILES_DIR: &str = "context_files";

/// A `VM_HOOK` as the core takes it.
fn hook_spec(hook: &Hook) -> HookSpec {
    HookSpec {
        name: hook.name.clone(),
        on: match hook.on {
            HookEvent::Create => HookOn::Create,
            HookEvent::Prolog => HookOn::Prolog,
            HookEvent::Running => HookOn::Running,
            HookEvent::Shutdown => HookOn::Shutdown,
            HookEvent::Stop => HookOn::Stop,
            HookEvent::Done => HookOn::Done,
            HookEvent::Failed => HookOn::Failed,
            HookEvent::Unknown => HookOn::Unknown,
        },
        command: hook.command.clone(),
        arguments: hook.arguments.clone().unwrap_or_default(),
        remote: hook.remote,
    }
}

/// Creates oneadmin on an empty user pool, with `CLOUDGATE_ADMIN_PASSWORD`
/// or a generated password, and writes `oneadmin:<password>` to
/// `<data dir>/one_auth` (mode 0600) for the CLI.
fn first_start(core: &Core, data_dir: &Path) -> Result<(), String> {
    let given = std::env::var("CLOUDGATE_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let password = given
        .clone()
        .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::thread_rng(), 20));
    if !core
        .users()
        .ensure_admin(&password)
        .map_err(|e| e.to_string())?
    {
        return Ok(());
    }
    let path = data_dir.join(ONE_AUTH_FILE);
    write_private(&path, &format!("oneadmin:{password}\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if given.is_some() {
        println!(
            "created oneadmin with CLOUDGATE_ADMIN_PASSWORD; credentials in {}",
            path.display()
        );
    } else {
        // Shown this once; afterwards only the file has it.
        println!(
            "created oneadmin with password {password} (also in {})",
            path.display()
        );
    }
    Ok(())
}

/// The host a fresh installation starts with, so that a VM reaches
/// RUNNING with nothing else installed (DESIGN.md, "Runtime").
pub const FIRST_HOST: &str = "localhost";

/// Registers [`FIRST_HOST`] on the `dummy` drivers at the first start.
/// "First start" for hosts means: no host id was ever given out (the host
/// pool's id counter in the database is untouched). So the host comes with
/// a new data dir, also when the previous start stopped between creating
/// oneadmin and registering it, but never comes back once the
/// administrator has deleted it. A config that loads no `dummy` driver
/// gets no such host (with a warning): there is nothing to run it with.
fn first_host(core: &Core) -> Result<(), String> {
    match core
        .hosts()
        .ensure_first_host(FIRST_HOST, "dummy", "dummy", "dummy")
    {
        Ok(Some(host)) => {
            tracing::info!(
                "registered host {} (id {}) on the dummy drivers",
                host.name,
                host.id
            );
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e @ crate::core::Error::Invalid { .. }) => {
            tracing::warn!("not registering host {FIRST_HOST}: {e}");
            Ok(())
        }
        Err(e) => Err(format!("cannot register host {FIRST_HOST}: {e}")),
    }
}

/// Writes a file only its owner can read, whole or not at all: a temporary
/// file created with mode 0600, synced, then renamed into place.
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

/// The OCCI front's part of the config. Instance type fragments are read
/// now, relative to the working directory like every relative path of the
/// config, so that a missing file stops the start instead of a request.
fn occi_settings(config: &Config) -> Result<api::common::OcciSettings, String> {
    use crate::config::OcciDialect;
    let instance_types = config
        .occi_instance_types
        .iter()
        .map(|t| {
            let template = match &t.template {
                Some(path) => Some(fs::read_to_string(path).map_err(|e| {
                    format!(
                        "OCCI_INSTANCE_TYPE {}: cannot read TEMPLATE {path}: {e}",
                        t.name
                    )
                })?),
                None => None,
            };
            Ok(api::common::InstanceType {
                name: t.name.clone(),
                cpu: t.cpu,
                vcpu: t.vcpu,
                memory_mb: t.memory_mb,
                template,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(api::common::OcciSettings {
        dialect: match config.occi_dialect {
            OcciDialect::Auto => api::common::OcciDialect::Auto,
            OcciDialect::V1_4 => api::common::OcciDialect::V1_4,
            OcciDialect::V2 => api::common::OcciDialect::V2,
        },
        instance_types,
    })
}

/// The EC2 front's part of the config; like OCCI's, the instance types'
/// template fragments are read now.
fn ec2_settings(config: &Config) -> Result<api::common::Ec2Settings, String> {
    let instance_types = config
        .ec2_instance_types
        .iter()
        .map(|t| {
            let template = match &t.template {
                Some(path) => Some(fs::read_to_string(path).map_err(|e| {
                    format!(
                        "EC2_INSTANCE_TYPE {}: cannot read TEMPLATE {path}: {e}",
                        t.name
                    )
                })?),
                None => None,
            };
            Ok(api::common::Ec2InstanceType {
                size: api::common::InstanceType {
                    name: t.name.clone(),
                    cpu: t.cpu,
                    vcpu: t.vcpu,
                    memory_mb: t.memory_mb,
                    template,
                },
                network: t.network.clone(),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(api::common::Ec2Settings {
        instance_types,
        default_instance_type: config.ec2_default_instance_type.clone(),
        path_prefix: config.ec2_path_prefix.clone(),
        terminated_visible: config.ec2_terminated_visible,
        signature_skew: config.signature_skew,
    })
}
