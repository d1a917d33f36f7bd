//! The `cloudgate` binary: parses the command line and hands over to
//! `cloudgate::cli`. No logic lives here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cloudgate::cli::hosts::{self, HostCommand};
use cloudgate::cli::images::{self, ImageCommand};
use cloudgate::cli::serve::{self, ServeOptions};
use cloudgate::cli::users::{self, UserCommand};
use cloudgate::cli::vms::{self, VmCommand};
use cloudgate::cli::vnets::{self, VnetCommand};
use cloudgate::config::{Config, DebugLevel};

/// A private-cloud manager with OpenNebula's OCCI and the EC2 Query API.
#[derive(Parser)]
#[command(name = "cloudgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (defaults: config/cloudgate.conf if present, data in
    /// ./var, listening on 127.0.0.1:4567).
    Serve {
        /// Config file (OpenNebula template syntax; an oned.conf loads too).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory: database, images, one_auth.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address and port to listen on (port 0 picks a free one).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage users (OpenNebula's oneuser), through the server's /v1 API.
    #[command(after_help = cloudgate::cli::client::EXIT_CODES)]
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage hosts (OpenNebula's onehost), through the server's /v1 API.
    #[command(after_help = cloudgate::cli::client::EXIT_CODES)]
    Host {
        #[command(subcommand)]
        command: HostCommand,
    },
    /// Manage the image repository, through the server's /v1 API.
    #[command(after_help = cloudgate::cli::client::EXIT_CODES)]
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Manage virtual networks (OpenNebula's onevnet), through the server's
    /// /v1 API.
    #[command(after_help = cloudgate::cli::client::EXIT_CODES)]
    Vnet {
        #[command(subcommand)]
        command: VnetCommand,
    },
    /// Manage virtual machines (OpenNebula's onevm), through the server's
    /// /v1 API.
    #[command(after_help = cloudgate::cli::client::EXIT_CODES)]
    Vm {
        #[command(subcommand)]
        command: VmCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a config file: exit 0 with a summary, or 1 with
    /// FILE:line:col: what is wrong.
    Check {
        /// The file to check (default config/cloudgate.conf).
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve {
            config,
            data_dir,
            listen,
        } => {
            let opts = ServeOptions {
                config,
                data_dir,
                listen,
            };
            let (config, warnings) = match serve::load_config(&opts) {
                Ok(loaded) => loaded,
                Err(message) => return fail(&message),
            };
            // Held until the server has stopped: dropping it writes the VM
            // logs' last lines.
            let _vm_log = init_logging(config.debug_level, serve::var_dir(&config));
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            match serve::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => fail(&message),
            }
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => {
            let file = file.unwrap_or_else(|| PathBuf::from(serve::DEFAULT_CONFIG));
            match Config::load(&file) {
                Ok((config, warnings)) => {
                    for warning in &warnings {
                        eprintln!("{warning}");
                    }
                    println!("{}: OK: {}", file.display(), config.summary());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::User { command } => users::run(command),
        Command::Host { command } => hosts::run(command),
        Command::Image { command } => images::run(command),
        Command::Vnet { command } => vnets::run(command),
        Command::Vm { command } => vms::run(command),
    }
}

/// One clear line on stderr and a non-zero exit. The message is printed
/// as is, so a config error reads `FILE:line:col: what is wrong`.
fn fail(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::FAILURE
}

/// The server's logging: its log on stderr, where DEBUG_LEVEL 0..3 is
/// error, warn, info, debug and `RUST_LOG` overrides it; and the VM logs
/// `<var_dir>/<vid>/vm.log`, with their own filter (each filter applies to
/// its own output only, so a quiet server log still gets full VM logs).
/// The guard returned keeps the VM logs' writer; `None` if it could not
/// start (the server runs without VM logs then).
fn init_logging(debug_level: DebugLevel, var_dir: PathBuf) -> Option<serve::VmLogGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let level = debug_level.tracing_level().as_str().to_ascii_lowercase();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},actix_server=warn"))
    });
    let server_log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // When stderr is a pipe whose reader is gone, reporting the failed
        // write would panic (eprintln! to the same broken stderr) in
        // whatever thread logged, e.g. the task that stops the server.
        .log_internal_errors(false)
        .with_filter(filter);
    let (vm_log, guard) = match serve::VmLog::start(var_dir) {
        Ok((layer, guard)) => (
            Some(layer.with_filter(serve::VmLog::filter(debug_level))),
            Some(guard),
        ),
        Err(e) => {
            eprintln!("cannot start the VM logs' writer: {e}; running without VM logs");
            (None, None)
        }
    };
    tracing_subscriber::registry()
        .with(server_log)
        .with(vm_log)
        .init();
    guard
}
