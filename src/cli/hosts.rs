//! `cloudgate host ...`: OpenNebula's `onehost` over `/v1/hosts`
//! (spec/CLI.md, "host"; spec/CORE.md §3). Drivers are given as
//! `--im --vmm --tm`, by their config `NAME` (`im_kvm`) or folder (`kvm`).
//!
//! May use: `crate::cli::{client, output}`.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{self, segment, Client, Error};
use super::output::{plain, Align, Column, FormatArgs, ListArgs, Pool};

/// Hosts as the CLI shows them: the reference guide's columns and
/// OpenNebula's `HOST_POOL` XML.
pub static HOSTS: Pool = Pool {
    pool_tag: "HOST_POOL",
    item_tag: "HOST",
    fields: &[
        ("id", "ID"),
        ("name", "NAME"),
        ("state", "STATE"),
        ("im_mad", "IM_MAD"),
        ("vmm_mad", "VM_MAD"),
        ("tm_mad", "TM_MAD"),
        ("last_mon_time", "LAST_MON_TIME"),
        ("share", "HOST_SHARE"),
        ("template", "TEMPLATE"),
        ("error", "ERROR"),
    ],
    columns: &[
        Column::number("HID", "id", "the host's id"),
        Column::text("NAME", "name", "the host name ssh connects to"),
        share_column(
            "RVM",
            "VMs holding capacity on the host (RUNNING_VMS)",
            running_vms,
        ),
        share_column("TCPU", "total CPU, percent of one core (MAX_CPU)", max_cpu),
        share_column("FCPU", "free CPU as monitored (FREE_CPU)", free_cpu),
        share_column(
            "ACPU",
            "CPU not allocated to VMs (MAX_CPU - CPU_USAGE)",
            avail_cpu,
        ),
        share_column("TMEM", "total memory, KB (MAX_MEM)", max_mem),
        share_column("FMEM", "free memory as monitored, KB (FREE_MEM)", free_mem),
        Column {
            name: "STAT",
            key: "state",
            about: "on (monitored or to be), err (monitoring failed) or off (disabled)",
            align: Align::Left,
            cell: short_state,
        },
    ],
};

/// A right-aligned column computed from the host's `share` object.
const fn share_column(
    name: &'static str,
    about: &'static str,
    cell: fn(&Value) -> String,
) -> Column {
    Column {
        name,
        key: "share",
        about,
        align: Align::Right,
        cell,
    }
}

fn running_vms(share: &Value) -> String {
    plain(&share["running_vms"])
}

fn max_cpu(share: &Value) -> String {
    plain(&share["max_cpu"])
}

fn free_cpu(share: &Value) -> String {
    plain(&share["free_cpu"])
}

fn max_mem(share: &Value) -> String {
    plain(&share["max_mem"])
}

fn free_mem(share: &Value) -> String {
    plain(&share["free_mem"])
}

fn avail_cpu(share: &Value) -> String {
    match (share["max_cpu"].as_i64(), share["cpu_usage"].as_i64()) {
        (Some(max), Some(used)) => (max - used).to_string(),
        _ => "-".to_string(),
    }
}

/// The 1.4 CLI's short state (spec/CORE.md §3.1); an unknown state shows
/// as sent.
fn short_state(state: &Value) -> String {
    match state.as_str() {
        Some("INIT" | "MONITORING" | "MONITORED") => "on".to_string(),
        Some("ERROR") => "err".to_string(),
        Some("DISABLED") => "off".to_string(),
        _ => plain(state),
    }
}

/// The verbs of `cloudgate host` (oneadmin only). HOST arguments take an
/// id or a name; where several are taken, ranges too (`[9-11]`, `[8+3]`).
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Register a host with its drivers and print its id.
    Create {
        /// The host name or ssh alias the drivers connect to.
        name: String,
        /// The IM (monitoring) driver: its name (im_kvm) or folder (kvm).
        #[arg(long = "im", value_name = "DRIVER")]
        im: String,
        /// The VMM (virtual machine) driver: vmm_kvm or kvm.
        #[arg(long = "vmm", value_name = "DRIVER")]
        vmm: String,
        /// The TM (transfer) driver: tm_ssh or ssh.
        #[arg(long = "tm", value_name = "DRIVER")]
        tm: String,
    },
    /// Remove hosts (refused while VMs are placed on them).
    Delete {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "HOST")]
        hosts: Vec<String>,
    },
    /// Let the monitor and the scheduler use hosts again.
    Enable {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "HOST")]
        hosts: Vec<String>,
    },
    /// Keep the monitor and the scheduler away from hosts (their VMs keep
    /// running).
    Disable {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "HOST")]
        hosts: Vec<String>,
    },
    /// All hosts.
    List(ListArgs),
    /// The columns `list` can show, order and filter by.
    ListColumns,
    /// Make a Debian machine a kvm host: run config/host-setup.sh on it as
    /// root over ssh, from this machine (QEMU, libvirt, genisoimage; libvirt
    /// started without an init system). Needs no server.
    Prepare {
        /// The host name or ssh alias (as `create` takes it).
        host: String,
    },
    /// Everything about one host, monitoring figures included.
    Show {
        /// An id or a name.
        host: String,
        /// The output format.
        #[command(flatten)]
        format: FormatArgs,
    },
}

/// Runs one `cloudgate host` command; failures are reported on stderr and
/// become the exit code ([`client::Error::exit_code`]).
pub fn run(command: HostCommand) -> ExitCode {
    match command {
        HostCommand::Create { name, im, vmm, tm } => client::finish(create(&name, &im, &vmm, &tm)),
        HostCommand::Delete { hosts } => client::delete_each(&hosts, path),
        HostCommand::Enable { hosts } => client::post_each(&hosts, path, "enable"),
        HostCommand::Disable { hosts } => client::post_each(&hosts, path, "disable"),
        HostCommand::List(args) => client::finish(client::print_list(&HOSTS, &args, "/v1/hosts")),
        HostCommand::ListColumns => {
            print!("{}", HOSTS.columns_help());
            ExitCode::SUCCESS
        }
        HostCommand::Show { host, format } => {
            client::finish(client::print_one(&HOSTS, &path(&host), &format))
        }
        HostCommand::Prepare { host } => prepare(&host),
    }
}

/// The host preparation script `host prepare` runs on a host.
pub const HOST_SETUP: &str = include_str!("../../config/host-setup.sh");

/// `host prepare`: `ssh <host> sh -s` with [`HOST_SETUP`] on stdin, its
/// output shown as it comes. The ssh options are the SSH transport's
/// (batch mode, `accept-new`, the `CLOUDGATE_SSH_CONFIG` file if set), so a
/// host that prepares is a host the drivers reach.
fn prepare(host: &str) -> ExitCode {
    use std::io::Write;
    if host.is_empty() || host.starts_with('-') || host.chars().any(char::is_whitespace) {
        eprintln!("cloudgate: not a valid ssh host name: {host:?}");
        return ExitCode::from(2);
    }
    let mut ssh = std::process::Command::new("ssh");
    if let Some(file) = std::env::var_os("CLOUDGATE_SSH_CONFIG").filter(|f| !f.is_empty()) {
        ssh.arg("-F").arg(file);
    }
    ssh.args([
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-T",
        "--",
        host,
        "sh -s",
    ])
    .stdin(std::process::Stdio::piped());
    let mut child = match ssh.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("cloudgate: cannot run ssh: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // An early exit of ssh (host unreachable) closes the pipe: its
        // status says why, not this write.
        let _ = stdin.write_all(HOST_SETUP.as_bytes());
    }
    match child.wait().map(|s| s.code()) {
        Ok(Some(0)) => {
            println!("host {host} is ready");
            ExitCode::SUCCESS
        }
        Ok(Some(255)) => {
            eprintln!("cloudgate: cannot reach host {host} (ssh's message above)");
            ExitCode::FAILURE
        }
        Ok(code) => {
            eprintln!(
                "cloudgate: preparing {host} failed (host-setup.sh exit status {})",
                code.map_or("-".to_string(), |c| c.to_string())
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cloudgate: ssh: {e}");
            ExitCode::FAILURE
        }
    }
}

fn create(name: &str, im: &str, vmm: &str, tm: &str) -> Result<(), Error> {
    let body = json!({ "name": name, "im_mad": im, "vmm_mad": vmm, "tm_mad": tm });
    let host = Client::from_env()?.object("POST", "/v1/hosts", Some(&body))?;
    client::print_new_id(&host, "/v1/hosts", "host")
}

/// The resource of one host, by id or name.
fn path(host: &str) -> String {
    format!("/v1/hosts/{}", segment(host))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::output::Listing;
    use crate::cli::output::{Format, Object};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: HostCommand,
    }

    fn parse(args: &[&str]) -> Result<HostCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("host").chain(args.iter().copied())).map(|c| c.command)
    }

    fn answer() -> Vec<Object> {
        let body = r#"[
          {"id":0,"name":"localhost","state":"MONITORED","im_mad":"im_dummy","vmm_mad":"vmm_dummy",
           "tm_mad":"tm_dummy","last_mon_time":1700000000,
           "template":{"HYPERVISOR":"dummy","TOTALCPU":"800"},
           "share":{"cpu_usage":150,"mem_usage":524288,"max_cpu":800,"max_mem":8388608,
                    "free_cpu":790,"free_mem":8000000,"running_vms":2},"error":null},
          {"id":12,"name":"node-12","state":"ERROR","im_mad":"im_kvm","vmm_mad":"vmm_kvm",
           "tm_mad":"tm_ssh","last_mon_time":1700000030,"template":{},
           "share":{"cpu_usage":0,"mem_usage":0,"max_cpu":1600,"max_mem":0,
                    "free_cpu":0,"free_mem":0,"running_vms":0},"error":"Could not monitor host node-12."},
          {"id":3,"name":"off-3","state":"DISABLED","im_mad":"im_kvm","vmm_mad":"vmm_kvm",
           "tm_mad":"tm_ssh","last_mon_time":0,"template":{},
           "share":{"cpu_usage":0,"mem_usage":0,"max_cpu":0,"max_mem":0,
                    "free_cpu":0,"free_mem":0,"running_vms":0},"error":null}]"#;
        serde_json::from_str(body).expect("JSON")
    }

    fn list_with(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(["host", "list"].into_iter().chain(args.iter().copied()))
            .expect("parsed");
        match cli.command {
            HostCommand::List(args) => Listing::new(&HOSTS, &args)
                .expect("listing")
                .render(answer()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_shows_the_reference_guide_columns() {
        assert_eq!(
            list_with(&[]),
            "HID  NAME       RVM  TCPU  FCPU  ACPU     TMEM     FMEM  STAT\n\
             \x20 0  localhost    2   800   790   650  8388608  8000000  on\n\
             \x2012  node-12      0  1600     0  1600        0        0  err\n\
             \x20 3  off-3        0     0     0     0        0        0  off\n"
        );
    }

    #[test]
    fn computed_columns_order_as_numbers_and_filter_as_shown() {
        assert_eq!(
            list_with(&["-o", "TCPU", "-l", "HID"]),
            "HID\n  3\n  0\n 12\n"
        );
        assert_eq!(
            list_with(&["-o", "-ACPU", "-l", "HID"]),
            "HID\n 12\n  0\n  3\n"
        );
        assert_eq!(
            list_with(&["-f", "STAT=on", "-l", "NAME"]),
            "NAME\nlocalhost\n"
        );
        assert_eq!(
            list_with(&["-f", "RVM=0", "-l", "NAME"]),
            "NAME\nnode-12\noff-3\n"
        );
    }

    #[test]
    fn xml_is_opennebulas_host_pool() {
        let xml = list_with(&["-x", "-f", "HID=0"]);
        assert!(
            xml.starts_with(
                "<HOST_POOL><HOST><ID>0</ID><NAME>localhost</NAME><STATE>MONITORED</STATE>\
                 <IM_MAD>im_dummy</IM_MAD><VM_MAD>vmm_dummy</VM_MAD><TM_MAD>tm_dummy</TM_MAD>\
                 <LAST_MON_TIME>1700000000</LAST_MON_TIME><HOST_SHARE><CPU_USAGE>150</CPU_USAGE>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<TEMPLATE><HYPERVISOR>dummy</HYPERVISOR><TOTALCPU>800</TOTALCPU></TEMPLATE><ERROR/></HOST></HOST_POOL>"),
            "{xml}"
        );
    }

    #[test]
    fn show_prints_one_field_a_line() {
        let node = &answer()[1];
        let text = HOSTS.render_one(node, Format::Table);
        assert!(
            text.starts_with(
                "ID            : 12\nNAME          : node-12\nSTATE         : ERROR\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("ERROR         : Could not monitor host node-12.\n"),
            "{text}"
        );
    }

    #[test]
    fn create_takes_the_three_drivers() {
        match parse(&[
            "create", "node-01", "--im", "kvm", "--vmm", "vmm_kvm", "--tm", "ssh",
        ])
        .expect("parsed")
        {
            HostCommand::Create { name, im, vmm, tm } => {
                assert_eq!(
                    (name.as_str(), im.as_str(), vmm.as_str(), tm.as_str()),
                    ("node-01", "kvm", "vmm_kvm", "ssh")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            parse(&["create", "node-01", "--im", "kvm", "--vmm", "kvm"]).is_err(),
            "no --tm"
        );
        assert!(parse(&["delete"]).is_err(), "delete needs a host");
        assert!(matches!(
            parse(&["list-columns"]),
            Ok(HostCommand::ListColumns)
        ));
    }

    #[test]
    fn names_are_escaped_in_paths() {
        assert_eq!(path("12"), "/v1/hosts/12");
        assert_eq!(path("a/b"), "/v1/hosts/a%2Fb");
    }
}
