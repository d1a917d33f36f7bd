//! `cloudgate vm ...`: OpenNebula's `onevm` over `/v1/vms` (spec/CLI.md,
//! "vm"; spec/CORE.md §1-§2): `create FILE`, the life-cycle actions,
//! `saveas VM DISK NAME`, `list [a|m|uid|user]`, `show`, `history
//! [ID...]`, `log` and `top`. VM
//! arguments take ids and ranges (`[9-11]`, `[08+3]`).
//!
//! May use: `crate::cli::{client, output, range}`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::client::{self, segment, Client, Error};
use super::output::{plain, Align, Column, FormatArgs, ListArgs, Listing, Object, Pool};
use super::range;

/// VMs as the CLI shows them: the reference guide's columns and
/// OpenNebula's `VM_POOL` XML.
pub static VMS: Pool = Pool {
    pool_tag: "VM_POOL",
    item_tag: "VM",
    fields: &[
        ("id", "ID"),
        ("owner", "UID"),
        ("owner_name", "USERNAME"),
        ("name", "NAME"),
        ("state", "STAT"),
        ("dm_state", "STATE"),
        ("lcm_state", "LCM_STATE"),
        ("host", "HOSTNAME"),
        ("host_id", "HID"),
        ("deploy_id", "DEPLOY_ID"),
        ("stime", "STIME"),
        ("etime", "ETIME"),
        ("reserved_cpu", "CPU_RESERVED"),
        ("reserved_memory", "MEMORY_RESERVED"),
        ("usage", "USAGE"),
        ("nics", "NIC"),
        ("disks", "DISK"),
        ("error", "ERROR"),
        ("pending_reason", "PENDING_REASON"),
        ("pending", "PENDING"),
        ("template", "TEMPLATE"),
        ("history", "HISTORY_RECORDS"),
    ],
    columns: &[
        Column::number("ID", "id", "the VM's id"),
        Column::text("USER", "owner_name", "the owner's name"),
        Column::text("NAME", "name", "the VM's name"),
        Column::text(
            "STAT",
            "state",
            "pend hold prol boot runn migr save epil shut stop susp done fail unkn",
        ),
        Column {
            name: "CPU",
            key: "usage",
            about: "CPU used, percent of one CPU (last poll)",
            align: Align::Right,
            cell: used_cpu,
        },
        Column {
            name: "MEM",
            key: "usage",
            about: "memory used, KB (last poll)",
            align: Align::Right,
            cell: used_memory,
        },
        Column::text("HOSTNAME", "host", "the host it is on or was last on"),
        Column {
            name: "TIME",
            key: "stime",
            about: "time since submission, days hh:mm:ss",
            align: Align::Right,
            cell: since,
        },
    ],
};

/// History records as `history` lists them (spec/CORE.md §2).
pub static HISTORY: Pool = Pool {
    pool_tag: "HISTORY_RECORDS",
    item_tag: "HISTORY",
    fields: &[
        ("vm", "VID"),
        ("seq", "SEQ"),
        ("host", "HOSTNAME"),
        ("host_id", "HID"),
        ("stime", "STIME"),
        ("etime", "ETIME"),
        ("reason", "REASON"),
    ],
    columns: &[
        Column::number("ID", "vm", "the VM's id"),
        Column::number("SEQ", "seq", "the record's number"),
        Column::text("HOSTNAME", "host", "the host of this stay"),
        Column {
            name: "STIME",
            key: "stime",
            about: "when the stay started",
            align: Align::Left,
            cell: date,
        },
        Column {
            name: "ETIME",
            key: "etime",
            about: "when it ended",
            align: Align::Left,
            cell: date,
        },
        Column {
            name: "TIME",
            key: "times",
            about: "how long it lasted (so far)",
            align: Align::Right,
            cell: stay,
        },
        Column::text("REASON", "reason_short", "none erro stop user canc"),
    ],
};

fn used_cpu(usage: &Value) -> String {
    plain(&usage["cpu"])
}

fn used_memory(usage: &Value) -> String {
    plain(&usage["memory"])
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `days hh:mm:ss`, the 1.4 CLI's TIME.
fn duration(seconds: u64) -> String {
    let (d, rest) = (seconds / 86_400, seconds % 86_400);
    format!(
        "{d} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn since(stime: &Value) -> String {
    match stime.as_u64() {
        Some(t) if t > 0 => duration(now().saturating_sub(t)),
        _ => "-".to_string(),
    }
}

/// A stay's length: `[stime, etime]` of the record (etime 0: so far).
fn stay(times: &Value) -> String {
    match (times[0].as_u64(), times[1].as_u64()) {
        (Some(s), Some(e)) if s > 0 => duration(if e > 0 { e } else { now() }.saturating_sub(s)),
        _ => "-".to_string(),
    }
}

/// `MM/DD hh:mm:ss` (UTC), as the 1.4 CLI prints times; `-` for 0.
fn date(time: &Value) -> String {
    let Some(t) = time.as_u64().filter(|t| *t > 0) else {
        return "-".to_string();
    };
    let (days, rest) = (t / 86_400, t % 86_400);
    let (_, month, day) = civil(days);
    format!(
        "{month:02}/{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 as (year, month, day): H. Hinnant's
/// `civil_from_days`, for days after the epoch.
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// How `recover` settles a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecoverMode {
    /// As if the operation it waits for had succeeded (refused in boot
    /// while a first deploy never gave a deploy id: use retry).
    Success,
    /// As if it had failed.
    Failure,
    /// Run it again.
    Retry,
}

/// The verbs of `cloudgate vm`.
#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Submit a VM from a template file (`-` reads stdin) and print its id.
    Create {
        /// The VM template (spec/CORE.md §5.1).
        file: PathBuf,
    },
    /// Start a pending VM on a host (oneadmin).
    Deploy {
        /// A VM id.
        vm: String,
        /// A host id or name.
        host: String,
    },
    /// Shut running VMs down gracefully.
    Shutdown {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Destroy running VMs at once.
    Cancel {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Move a running VM to another host without stopping it (oneadmin).
    Livemigrate {
        /// A VM id.
        vm: String,
        /// A host id or name.
        host: String,
    },
    /// Save a running VM, move it and restore it on another host (oneadmin).
    Migrate {
        /// A VM id.
        vm: String,
        /// A host id or name.
        host: String,
    },
    /// Keep pending VMs away from the scheduler.
    Hold {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Give held VMs back to the scheduler.
    Release {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Save running VMs and move their files back to the front-end.
    Stop {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Save running VMs, keeping their files on the host.
    Suspend {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Resume stopped or suspended VMs.
    Resume {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Remove VMs from the pool whatever their state.
    Delete {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Send the deploy again to VMs stuck in boot or unknown.
    Restart {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Clean VMs up and put them back to pending (keeps their leases).
    Resubmit {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Reboot running VMs (ACPI).
    Reboot {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Reset running VMs (hard).
    Reset {
        /// Ids or ranges.
        #[arg(required = true, value_name = "VM")]
        vms: Vec<String>,
    },
    /// Save a disk of a VM as a new image when the VM shuts down
    /// (OpenNebula 2.2 `onevm saveas`); prints the new image's id.
    Saveas {
        /// A VM id.
        vm: String,
        /// The disk's index in the VM, from 0.
        disk: String,
        /// The new image's name.
        name: String,
    },
    /// Settle a VM stuck waiting for a driver (oneadmin).
    Recover {
        /// A VM id.
        vm: String,
        /// success, failure or retry.
        mode: RecoverMode,
    },
    /// Your VMs (a: all you may see, the default; m: yours; or a user's by
    /// uid or name), DONE ones left out.
    List {
        /// a, m, a uid or a user name.
        #[arg(value_name = "a|m|UID|USER", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        owner: Option<String>,
        /// Columns, order, filter and format.
        #[command(flatten)]
        list: ListArgs,
    },
    /// The columns `list` can show, order and filter by.
    ListColumns,
    /// Everything about one VM.
    Show {
        /// A VM id.
        vm: String,
        /// The output format.
        #[command(flatten)]
        format: FormatArgs,
    },
    /// The VMs' placement history (every VM you may see without ids).
    History {
        /// Ids or ranges.
        #[arg(value_name = "VM")]
        vms: Vec<String>,
        /// Columns, order, filter and format.
        #[command(flatten)]
        list: ListArgs,
    },
    /// The end of a VM's log (OpenNebula's `var/<vid>/vm.log`): state
    /// changes, driver messages, hook results, errors.
    Log {
        /// A VM id.
        vm: String,
    },
    /// `list`, refreshed until interrupted.
    Top {
        /// Seconds between two refreshes.
        #[arg(short = 'd', long, default_value_t = 2)]
        delay: u64,
        /// Columns, order and filter.
        #[command(flatten)]
        list: ListArgs,
    },
}

/// Runs one `cloudgate vm` command; failures are reported on stderr and
/// become the exit code ([`client::Error::exit_code`]).
pub fn run(command: VmCommand) -> ExitCode {
    let each = |vms: &[String], word: &str| {
        client::for_each(vms, |client, vm| act(client, vm, word, None).map(drop))
    };
    match command {
        VmCommand::Create { file } => client::finish(create(&file)),
        VmCommand::Deploy { vm, host } => one(&vm, "deploy", json!({ "host": host })),
        VmCommand::Livemigrate { vm, host } => one(&vm, "livemigrate", json!({ "host": host })),
        VmCommand::Migrate { vm, host } => one(&vm, "migrate", json!({ "host": host })),
        VmCommand::Recover { vm, mode } => {
            let mode = match mode {
                RecoverMode::Success => "success",
                RecoverMode::Failure => "failure",
                RecoverMode::Retry => "retry",
            };
            one(&vm, "recover", json!({ "mode": mode }))
        }
        VmCommand::Saveas { vm, disk, name } => client::finish(save_as(&vm, &disk, &name)),
        VmCommand::Shutdown { vms } => each(&vms, "shutdown"),
        VmCommand::Cancel { vms } => each(&vms, "cancel"),
        VmCommand::Hold { vms } => each(&vms, "hold"),
        VmCommand::Release { vms } => each(&vms, "release"),
        VmCommand::Stop { vms } => each(&vms, "stop"),
        VmCommand::Suspend { vms } => each(&vms, "suspend"),
        VmCommand::Resume { vms } => each(&vms, "resume"),
        VmCommand::Restart { vms } => each(&vms, "restart"),
        VmCommand::Resubmit { vms } => each(&vms, "resubmit"),
        VmCommand::Reboot { vms } => each(&vms, "reboot"),
        VmCommand::Reset { vms } => each(&vms, "reset"),
        VmCommand::Delete { vms } => client::for_each(&vms, |client, vm| {
            client.request("DELETE", &path(vm), None).map(drop)
        }),
        VmCommand::List { owner, list: args } => client::finish(list(owner.as_deref(), &args)),
        VmCommand::ListColumns => {
            print!("{}", VMS.columns_help());
            ExitCode::SUCCESS
        }
        VmCommand::Show { vm, format } => client::finish(show(&vm, &format)),
        VmCommand::History { vms, list: args } => client::finish(history(&vms, &args)),
        VmCommand::Log { vm } => client::finish(log(&vm)),
        VmCommand::Top { delay, list: args } => client::finish(top(delay, &args)),
    }
}

/// One action with a body on one VM.
fn one(vm: &str, word: &str, body: Value) -> ExitCode {
    client::finish(
        Client::from_env().and_then(|client| act(&client, vm, word, Some(&body)).map(drop)),
    )
}

fn act(client: &Client, vm: &str, word: &str, body: Option<&Value>) -> Result<Object, Error> {
    client.object("POST", &format!("{}/actions/{word}", path(vm)), body)
}

fn create(file: &Path) -> Result<(), Error> {
    let read = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        fs::read_to_string(file)
    };
    let template = read.map_err(|e| Error::File {
        path: file.display().to_string(),
        reason: e.to_string(),
    })?;
    let vm =
        Client::from_env()?.object("POST", "/v1/vms", Some(&json!({ "template": template })))?;
    client::print_new_id(&vm, "/v1/vms", "VM")
}

/// `saveas`: the image is made now (`LOCKED`), filled at shutdown.
fn save_as(vm: &str, disk: &str, name: &str) -> Result<(), Error> {
    let route = format!("{}/disks/{}/saveas", path(vm), segment(disk));
    let image = Client::from_env()?.object("POST", &route, Some(&json!({ "name": name })))?;
    println!("Image ID: {}", client::new_id(&image, &route, "image")?);
    Ok(())
}

/// `/v1/vms` with the 1.4 filter of `onevm list` (spec/CORE.md §7.3).
fn list_path(owner: Option<&str>) -> String {
    match owner {
        None => "/v1/vms".to_string(),
        Some(owner) => format!("/v1/vms?filter={}", segment(owner)),
    }
}

fn list(owner: Option<&str>, args: &ListArgs) -> Result<(), Error> {
    let listing = Listing::new(&VMS, args)?;
    let vms = Client::from_env()?.list(&list_path(owner))?;
    print!("{}", listing.render(vms));
    Ok(())
}

fn show(vm: &str, format: &FormatArgs) -> Result<(), Error> {
    let vm = Client::from_env()?.object("GET", &path(vm), None)?;
    print!("{}", VMS.render_one(&vm, format.format()));
    Ok(())
}

/// History rows, with the `times` pair the TIME column reads.
fn history_rows(records: Vec<Object>) -> Vec<Object> {
    records
        .into_iter()
        .map(|mut record| {
            let times = json!([record.get("stime"), record.get("etime")]);
            record.insert("times".to_string(), times);
            record
        })
        .collect()
}

fn history(vms: &[String], args: &ListArgs) -> Result<(), Error> {
    let listing = Listing::new(&HISTORY, args)?;
    let ids = range::expand_all(vms)?;
    let client = Client::from_env()?;
    let mut records = Vec::new();
    if ids.is_empty() {
        for vm in client.list("/v1/vms")? {
            if let Some(Value::Array(items)) = vm.get("history") {
                records.extend(items.iter().filter_map(|i| i.as_object().cloned()));
            }
        }
    } else {
        for id in &ids {
            records.extend(client.list(&format!("{}/history", path(id)))?);
        }
    }
    print!("{}", listing.render(history_rows(records)));
    Ok(())
}

/// `log`: the text as the server has it (whole lines, the last 256 KiB).
fn log(vm: &str) -> Result<(), Error> {
    let route = format!("{}/log", path(vm));
    let answer = Client::from_env()?.object("GET", &route, None)?;
    let text = answer
        .get("log")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::BadAnswer(format!("GET {route}: no log in the answer")))?;
    print!("{text}");
    Ok(())
}

fn top(delay: u64, args: &ListArgs) -> Result<(), Error> {
    let listing = Listing::new(&VMS, args)?;
    let client = Client::from_env()?;
    loop {
        let vms = client.list("/v1/vms")?;
        // Clear the screen, then the table.
        print!("\x1b[2J\x1b[H{}", listing.render(vms));
        std::thread::sleep(Duration::from_secs(delay.max(1)));
    }
}

/// The resource of one VM.
fn path(vm: &str) -> String {
    format!("/v1/vms/{}", segment(vm))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::output::Format;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: VmCommand,
    }

    fn parse(args: &[&str]) -> Result<VmCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("vm").chain(args.iter().copied())).map(|c| c.command)
    }

    fn answer(stime: u64) -> Vec<Object> {
        let body = format!(
            r#"[
          {{"id":3,"owner":1,"owner_name":"alice","name":"web","state":"runn","dm_state":"ACTIVE",
           "lcm_state":"RUNNING","host":"localhost","host_id":0,"deploy_id":"dummy-3",
           "usage":{{"cpu":25,"memory":65536,"net_rx":0,"net_tx":0,"last_poll":0}},
           "stime":{stime},"etime":0,"nics":[],"disks":[],"template":{{"NAME":"web"}},
           "history":[{{"vm":3,"seq":0,"host":"localhost","host_id":0,"stime":{stime},"etime":0,
                       "reason":"NONE","reason_short":"none"}}],
           "error":null,"pending_reason":null,"pending":null}},
          {{"id":10,"owner":0,"owner_name":"oneadmin","name":"db","state":"pend","dm_state":"PENDING",
           "lcm_state":"LCM_INIT","host":null,"host_id":null,"deploy_id":null,
           "usage":{{"cpu":0,"memory":0,"net_rx":0,"net_tx":0,"last_poll":0}},
           "stime":{stime},"etime":0,"nics":[],"disks":[],"template":{{}},"history":[],
           "error":null,"pending_reason":"no host fits","pending":null}}]"#
        );
        serde_json::from_str(&body).expect("JSON")
    }

    fn list_with(args: &[&str], rows: Vec<Object>) -> String {
        let cli = Cli::try_parse_from(["vm", "list"].into_iter().chain(args.iter().copied()))
            .expect("parsed");
        match cli.command {
            VmCommand::List { list, .. } => {
                Listing::new(&VMS, &list).expect("listing").render(rows)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_shows_the_reference_guide_columns() {
        let stime = now() - 86_400 - 3_723;
        assert_eq!(
            list_with(&[], answer(stime)),
            "ID  USER      NAME  STAT  CPU    MEM  HOSTNAME         TIME\n\
             \x203  alice     web   runn   25  65536  localhost  1 01:02:03\n\
             10  oneadmin  db    pend    0      0  -          1 01:02:03\n"
        );
        assert_eq!(
            list_with(&["-f", "STAT=pend", "-l", "ID"], answer(stime)),
            "ID\n10\n"
        );
        assert_eq!(
            list_with(&["-o", "-CPU", "-l", "NAME"], answer(stime)),
            "NAME\nweb\ndb\n"
        );
    }

    #[test]
    fn xml_is_opennebulas_vm_pool() {
        let xml = list_with(&["-x", "-f", "ID=10"], answer(1));
        assert!(
            xml.starts_with("<VM_POOL><VM><ID>10</ID><UID>0</UID><USERNAME>oneadmin</USERNAME><NAME>db</NAME><STAT>pend</STAT><STATE>PENDING</STATE>"),
            "{xml}"
        );
    }

    #[test]
    fn show_prints_one_field_a_line_and_json_as_is() {
        let vm = &answer(1)[1];
        let text = VMS.render_one(vm, Format::Table);
        assert!(text.contains("PENDING_REASON  : no host fits\n"), "{text}");
        let json = VMS.render_one(vm, Format::Json);
        let back: Value = serde_json::from_str(&json).expect("json");
        assert_eq!(back, Value::Object(vm.clone()));
    }

    #[test]
    fn history_rows_show_dates_and_lengths() {
        let vm = &answer(1_700_000_000)[0];
        let records: Vec<Object> = vm["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter_map(|r| r.as_object().cloned())
            .collect();
        let args = ListArgs::default();
        let text = Listing::new(&HISTORY, &args)
            .expect("listing")
            .render(history_rows(records));
        let mut lines = text.lines();
        assert_eq!(
            lines
                .next()
                .map(str::split_whitespace)
                .map(Iterator::collect::<Vec<_>>),
            Some(vec![
                "ID", "SEQ", "HOSTNAME", "STIME", "ETIME", "TIME", "REASON"
            ])
        );
        let row = lines.next().expect("row");
        assert!(row.contains("11/14 22:13:20"), "{row}");
        assert!(row.ends_with("none"), "{row}");
        assert_eq!(date(&json!(0)), "-");
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_782), (2024, 2, 29));
    }

    #[test]
    fn verbs_take_their_arguments() {
        assert!(matches!(
            parse(&["create", "vm.one"]),
            Ok(VmCommand::Create { .. })
        ));
        match parse(&["deploy", "3", "node-1"]).expect("deploy") {
            VmCommand::Deploy { vm, host } => {
                assert_eq!((vm.as_str(), host.as_str()), ("3", "node-1"))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["deploy", "3"]).is_err(), "deploy needs a host");
        match parse(&["recover", "3", "retry"]).expect("recover") {
            VmCommand::Recover { mode, .. } => assert_eq!(mode, RecoverMode::Retry),
            other => panic!("{other:?}"),
        }
        assert!(parse(&["recover", "3", "maybe"]).is_err());
        match parse(&["saveas", "3", "1", "web backup"]).expect("saveas") {
            VmCommand::Saveas { vm, disk, name } => assert_eq!(
                (vm.as_str(), disk.as_str(), name.as_str()),
                ("3", "1", "web backup")
            ),
            other => panic!("{other:?}"),
        }
        assert!(parse(&["saveas", "3", "1"]).is_err(), "saveas needs a name");
        match parse(&["shutdown", "[9-11]", "14"]).expect("shutdown") {
            VmCommand::Shutdown { vms } => {
                assert_eq!(
                    range::expand_all(&vms).expect("ranges"),
                    ["9", "10", "11", "14"]
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["stop"]).is_err(), "stop needs a VM");
        assert!(matches!(parse(&["history"]), Ok(VmCommand::History { .. })));
        assert!(matches!(
            parse(&["top", "-d", "5"]),
            Ok(VmCommand::Top { delay: 5, .. })
        ));
        assert!(matches!(
            parse(&["list", "m"]),
            Ok(VmCommand::List { owner: Some(_), .. })
        ));
        assert_eq!(list_path(Some("alice")), "/v1/vms?filter=alice");
        assert_eq!(path("12"), "/v1/vms/12");
    }
}
