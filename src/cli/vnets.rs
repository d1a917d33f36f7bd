//! `cloudgate vnet ...`: OpenNebula's `onevnet` over `/v1/vnets`
//! (spec/CLI.md, "vnet"; spec/CORE.md §4): `create FILE`, `delete`,
//! `list [a|m|uid|user]`, `show`, and cloudgate's `publish` / `unpublish`.
//!
//! May use: `crate::cli::{client, output}`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{self, segment, Client, Credentials, Error};
use super::output::{Column, Format, FormatArgs, ListArgs, Listing, Object, Pool};

/// Networks as the CLI shows them: the reference guide's columns (plus
/// USER) and OpenNebula's `VNET_POOL` XML.
pub static VNETS: Pool = Pool {
    pool_tag: "VNET_POOL",
    item_tag: "VNET",
    fields: &[
        ("id", "ID"),
        ("owner", "UID"),
        ("owner_name", "USERNAME"),
        ("name", "NAME"),
        ("type", "TYPE"),
        ("bridge", "BRIDGE"),
        ("public", "PUBLIC"),
        ("leases_used", "TOTAL_LEASES"),
        ("network_address", "NETWORK_ADDRESS"),
        ("network_mask", "NETWORK_MASK"),
        ("network_size", "NETWORK_SIZE"),
        ("ip_start", "IP_START"),
        ("ip_end", "IP_END"),
        ("addresses", "SIZE"),
        ("leases", "LEASE"),
        ("fixed_leases", "FIXED_LEASE"),
        ("template", "TEMPLATE"),
    ],
    columns: &[
        Column::number("NID", "id", "the network's id"),
        Column::text("USER", "owner_name", "the owner's name"),
        Column::text("NAME", "name", "the network's name, unique per owner"),
        Column::text(
            "TYPE",
            "type",
            "RANGED (an address range) or FIXED (a list of leases)",
        ),
        Column::text("BRIDGE", "bridge", "the host bridge its NICs attach to"),
        Column::number("#LEASES", "leases_used", "leases in use by VMs"),
    ],
};

/// The leases in use, as `show` lists them.
static LEASES: Pool = Pool {
    pool_tag: "LEASES",
    item_tag: "LEASE",
    fields: &[("ip", "IP"), ("mac", "MAC"), ("vm", "VID")],
    columns: &[
        Column::text("IP", "ip", "the address"),
        Column::text("MAC", "mac", "its MAC"),
        Column::number("VM", "vm", "the VM holding it"),
    ],
};

/// The verbs of `cloudgate vnet`. NETWORK arguments take an id or a name;
/// where several are taken, ranges too (`[9-11]`, `[8+3]`).
#[derive(Debug, Subcommand)]
pub enum VnetCommand {
    /// Add a network from a template file and print its id.
    Create {
        /// The network template (NAME, TYPE, BRIDGE, NETWORK_ADDRESS and
        /// NETWORK_SIZE, or LEASES); `-` reads it from stdin.
        file: PathBuf,
    },
    /// Remove networks (yours, or any as oneadmin; not while leases are in
    /// use).
    Delete {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "NETWORK")]
        vnets: Vec<String>,
    },
    /// The networks you may see: a (all: yours and the public ones, every
    /// one for oneadmin; the default), m (yours), or a user's by uid or
    /// name.
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
    /// Everything about one network, its leases in use included.
    Show {
        /// An id or a name.
        vnet: String,
        /// The output format.
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Let every user see networks and use them in NICs (yours, or any as
    /// oneadmin).
    Publish {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "NETWORK")]
        vnets: Vec<String>,
    },
    /// Make networks private again; leases already taken stay.
    Unpublish {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "NETWORK")]
        vnets: Vec<String>,
    },
}

/// Runs one `cloudgate vnet` command; failures are reported on stderr and
/// become the exit code ([`client::Error::exit_code`]).
pub fn run(command: VnetCommand) -> ExitCode {
    match command {
        VnetCommand::Create { file } => client::finish(create(&file)),
        VnetCommand::Delete { vnets } => client::delete_each(&vnets, path),
        VnetCommand::List { owner, list: args } => client::finish(list(owner.as_deref(), &args)),
        VnetCommand::ListColumns => {
            print!("{}", VNETS.columns_help());
            ExitCode::SUCCESS
        }
        VnetCommand::Show { vnet, format } => client::finish(show(&vnet, &format)),
        VnetCommand::Publish { vnets } => client::post_each(&vnets, path, "publish"),
        VnetCommand::Unpublish { vnets } => client::post_each(&vnets, path, "unpublish"),
    }
}

fn create(file: &Path) -> Result<(), Error> {
    let template = read_template(file)?;
    let body = json!({ "template": template });
    let vnet = Client::from_env()?.object("POST", "/v1/vnets", Some(&body))?;
    client::print_new_id(&vnet, "/v1/vnets", "network")
}

/// The template text of a file, or of stdin for `-`. A file that cannot be
/// read is a usage error, like a bad option.
fn read_template(file: &Path) -> Result<String, Error> {
    let read = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        fs::read_to_string(file)
    };
    read.map_err(|e| Error::File {
        path: file.display().to_string(),
        reason: e.to_string(),
    })
}

fn list(filter: Option<&str>, args: &ListArgs) -> Result<(), Error> {
    let listing = Listing::new(&VNETS, args)?;
    let owner = Owner::parse(filter);
    let me = match owner {
        Owner::Me => Some(Credentials::from_env()?.user),
        _ => None,
    };
    let vnets = Client::from_env()?.list("/v1/vnets")?;
    let vnets = vnets
        .into_iter()
        .filter(|v| owner.keeps(v, me.as_deref()))
        .collect();
    print!("{}", listing.render(vnets));
    Ok(())
}

/// The 1.4 filter of `onevnet list` (spec/CORE.md §7.3 `vnpool.info`).
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    /// Everything the server shows the caller.
    All,
    /// The caller's own.
    Me,
    /// A user's, by uid.
    Uid(u64),
    /// A user's, by name.
    Name(String),
}

impl Owner {
    fn parse(filter: Option<&str>) -> Owner {
        match filter {
            None | Some("a" | "all") => Owner::All,
            Some("m" | "mine") => Owner::Me,
            Some(text) => match text.parse() {
                Ok(uid) => Owner::Uid(uid),
                Err(_) => Owner::Name(text.to_string()),
            },
        }
    }

    fn keeps(&self, vnet: &Object, me: Option<&str>) -> bool {
        let name = vnet.get("owner_name").and_then(Value::as_str);
        match self {
            Owner::All => true,
            Owner::Me => name.is_some() && name == me,
            Owner::Uid(uid) => vnet.get("owner").and_then(Value::as_u64) == Some(*uid),
            Owner::Name(wanted) => name == Some(wanted.as_str()),
        }
    }
}

fn show(vnet: &str, format: &FormatArgs) -> Result<(), Error> {
    let vnet = Client::from_env()?.object("GET", &path(vnet), None)?;
    print!("{}", render_show(vnet, format.format()));
    Ok(())
}

/// `show`: JSON and XML carry the whole object; the table form prints the
/// fields one a line, then the leases in use as a table, then the template
/// as it is (it is made of lines).
fn render_show(mut vnet: Object, format: Format) -> String {
    if format != Format::Table {
        return VNETS.render_one(&vnet, format);
    }
    let template = vnet.remove("template");
    let leases = match vnet.remove("leases") {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(object) => Some(object),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let fixed = vnet.remove("fixed_leases");
    let mut out = VNETS.render_one(&vnet, Format::Table);
    if let Some(Value::Array(fixed)) = fixed {
        let ips: Vec<String> = fixed
            .iter()
            .map(|l| super::output::plain(&l["ip"]))
            .collect();
        out.push_str(&format!("FIXED_LEASES : {}\n", ips.join(" ")));
    }
    out.push_str("\nLEASES IN USE\n");
    match Listing::new(&LEASES, &ListArgs::default()) {
        Ok(listing) => out.push_str(&listing.render(leases)),
        Err(e) => out.push_str(&format!("{e}\n")),
    }
    if let Some(Value::String(template)) = template {
        out.push_str("\nTEMPLATE\n");
        out.push_str(&template);
        if !template.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The resource of one network, by id or name.
fn path(vnet: &str) -> String {
    format!("/v1/vnets/{}", segment(vnet))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: VnetCommand,
    }

    fn parse(args: &[&str]) -> Result<VnetCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("vnet").chain(args.iter().copied())).map(|c| c.command)
    }

    fn answer() -> Vec<Object> {
        let body = r#"[
          {"id":0,"owner":0,"owner_name":"oneadmin","name":"public lan","type":"RANGED","bridge":"br0",
           "public":true,"network_address":"192.168.0.0","network_mask":"255.255.255.0",
           "network_size":"C","ip_start":"192.168.0.1","ip_end":"192.168.0.254","addresses":254,
           "leases":[{"ip":"192.168.0.1","mac":"02:00:c0:a8:00:01","vm":7}],"leases_used":1,
           "template":"NAME = \"public lan\"\nTYPE = RANGED\n"},
          {"id":12,"owner":5,"owner_name":"alice","name":"fixed","type":"FIXED","bridge":"br1",
           "public":false,"fixed_leases":[{"ip":"10.0.0.1","mac":"02:00:0a:00:00:01"}],
           "addresses":1,"leases":[],"leases_used":0,"template":"NAME = fixed\n"}]"#;
        serde_json::from_str(body).expect("JSON")
    }

    #[test]
    fn list_shows_the_reference_guide_columns() {
        let listing = Listing::new(&VNETS, &ListArgs::default()).expect("listing");
        assert_eq!(
            listing.render(answer()),
            "NID  USER      NAME        TYPE    BRIDGE  #LEASES\n\
             \x20 0  oneadmin  public lan  RANGED  br0           1\n\
             \x2012  alice     fixed       FIXED   br1           0\n"
        );
    }

    #[test]
    fn the_list_filter_is_all_mine_uid_or_user() {
        let rows = answer();
        let kept = |filter: Option<&str>, me: Option<&str>| -> Vec<u64> {
            let owner = Owner::parse(filter);
            rows.iter()
                .filter(|v| owner.keeps(v, me))
                .filter_map(|v| v["id"].as_u64())
                .collect()
        };
        assert_eq!(kept(None, None), [0, 12]);
        assert_eq!(kept(Some("a"), None), [0, 12]);
        assert_eq!(kept(Some("m"), Some("alice")), [12]);
        assert_eq!(kept(Some("mine"), Some("oneadmin")), [0]);
        assert_eq!(kept(Some("5"), None), [12]);
        assert_eq!(kept(Some("alice"), None), [12]);
        assert_eq!(kept(Some("nobody"), None), Vec::<u64>::new());
    }

    #[test]
    fn list_takes_a_filter_and_the_shared_options() {
        match parse(&["list", "m", "-o", "-NID", "--json"]).expect("parsed") {
            VnetCommand::List { owner, list } => {
                assert_eq!(owner.as_deref(), Some("m"));
                assert_eq!(list.order, ["-NID"]);
                assert_eq!(list.format.format(), Format::Json);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["list"]),
            Ok(VnetCommand::List { owner: None, .. })
        ));
        assert!(parse(&["delete"]).is_err(), "delete needs a network");
        assert!(parse(&["create"]).is_err(), "create needs a file");
        assert!(parse(&["list", ""]).is_err(), "an empty filter");
    }

    #[test]
    fn show_prints_fields_leases_and_the_template() {
        let shown = render_show(answer()[0].clone(), Format::Table);
        let fields: Vec<Vec<&str>> = shown
            .lines()
            .take_while(|l| !l.is_empty())
            .map(|l| l.splitn(2, " : ").map(str::trim).collect())
            .collect();
        assert_eq!(
            fields[..4],
            [
                ["ID", "0"],
                ["UID", "0"],
                ["USERNAME", "oneadmin"],
                ["NAME", "public lan"]
            ]
        );
        assert!(fields.contains(&vec!["IP_START", "192.168.0.1"]), "{shown}");
        assert!(fields.contains(&vec!["SIZE", "254"]), "{shown}");
        assert!(shown.contains("\nLEASES IN USE\nIP           MAC                VM\n192.168.0.1  02:00:c0:a8:00:01   7\n"), "{shown}");
        assert!(
            shown.ends_with("\nTEMPLATE\nNAME = \"public lan\"\nTYPE = RANGED\n"),
            "{shown}"
        );
        let fixed = render_show(answer()[1].clone(), Format::Table);
        assert!(fixed.contains("FIXED_LEASES : 10.0.0.1\n"), "{fixed}");
    }

    #[test]
    fn xml_is_opennebulas_vnet() {
        let xml = render_show(answer()[0].clone(), Format::Xml);
        assert!(
            xml.starts_with("<VNET><ID>0</ID><UID>0</UID><USERNAME>oneadmin</USERNAME><NAME>public lan</NAME><TYPE>RANGED</TYPE>"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<LEASE><IP>192.168.0.1</IP><MAC>02:00:c0:a8:00:01</MAC><VM>7</VM></LEASE>"
            ),
            "{xml}"
        );
    }

    #[test]
    fn names_are_escaped_in_paths() {
        assert_eq!(path("3"), "/v1/vnets/3");
        assert_eq!(path("public lan"), "/v1/vnets/public%20lan");
    }
}
