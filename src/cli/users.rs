//! `cloudgate user ...`: OpenNebula's `oneuser` over `/v1/users`
//! (spec/CLI.md, "user"), with cloudgate's `show`, `passwd`, `enable` and
//! `disable`.
//!
//! May use: `crate::cli::{client, output}`.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::client::{self, segment, Client, Error};
use super::output::{Column, FormatArgs, ListArgs, Pool};

/// Users as the CLI shows them: the reference guide's columns and
/// OpenNebula's `USER_POOL` XML.
pub static USERS: Pool = Pool {
    pool_tag: "USER_POOL",
    item_tag: "USER",
    fields: &[
        ("id", "ID"),
        ("name", "NAME"),
        ("password", "PASSWORD"),
        ("enabled", "ENABLED"),
    ],
    columns: &[
        Column::number("UID", "id", "the user's id (0 is oneadmin)"),
        Column::text("NAME", "name", "the user's name, also its EC2 access key"),
        Column::text(
            "PASSWORD",
            "password",
            "the SHA1 hex of the password, also the EC2 secret key",
        ),
        Column::text("ENABLE", "enabled", "yes if the user may authenticate"),
    ],
};

/// The verbs of `cloudgate user`. USER arguments take an id or a name;
/// where several are taken, ranges too (`[9-11]`, `[8+3]`).
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (oneadmin only) and print its id.
    Create {
        /// The new user's name.
        name: String,
        /// Its password (the server keeps only its SHA1 hex).
        password: String,
    },
    /// Remove users (oneadmin only; oneadmin itself cannot go).
    Delete {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "USER")]
        users: Vec<String>,
    },
    /// All users (oneadmin only).
    List(ListArgs),
    /// The columns `list` can show, order and filter by.
    ListColumns,
    /// Everything about one user (anyone may show itself).
    Show {
        /// An id or a name.
        user: String,
        /// The output format.
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Change a password: your own, or anyone's as oneadmin.
    Passwd {
        /// An id or a name.
        user: String,
        /// The new password.
        password: String,
    },
    /// Let users authenticate again (oneadmin only).
    Enable {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "USER")]
        users: Vec<String>,
    },
    /// Stop users from authenticating (oneadmin only; not oneadmin).
    Disable {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "USER")]
        users: Vec<String>,
    },
}

/// Runs one `cloudgate user` command; failures are reported on stderr and
/// become the exit code ([`client::Error::exit_code`]).
pub fn run(command: UserCommand) -> ExitCode {
    match command {
        UserCommand::Create { name, password } => client::finish(create(&name, &password)),
        UserCommand::Delete { users } => client::delete_each(&users, path),
        UserCommand::List(args) => client::finish(client::print_list(&USERS, &args, "/v1/users")),
        UserCommand::ListColumns => {
            print!("{}", USERS.columns_help());
            ExitCode::SUCCESS
        }
        UserCommand::Show { user, format } => {
            client::finish(client::print_one(&USERS, &path(&user), &format))
        }
        UserCommand::Passwd { user, password } => client::finish(passwd(&user, &password)),
        UserCommand::Enable { users } => client::post_each(&users, path, "enable"),
        UserCommand::Disable { users } => client::post_each(&users, path, "disable"),
    }
}

fn create(name: &str, password: &str) -> Result<(), Error> {
    let body = json!({ "name": name, "password": password });
    let user = Client::from_env()?.object("POST", "/v1/users", Some(&body))?;
    client::print_new_id(&user, "/v1/users", "user")
}

fn passwd(user: &str, password: &str) -> Result<(), Error> {
    let body = json!({ "password": password });
    Client::from_env()?.object("PUT", &format!("{}/password", path(user)), Some(&body))?;
    Ok(())
}

/// The resource of one user, by id or name.
fn path(user: &str) -> String {
    format!("/v1/users/{}", segment(user))
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::Value;

    use super::*;
    use crate::cli::output::Format;
    use crate::cli::output::Listing;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: UserCommand,
    }

    fn parse(args: &[&str]) -> Result<UserCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("user").chain(args.iter().copied())).map(|c| c.command)
    }

    fn answer() -> Vec<crate::cli::output::Object> {
        let body = r#"[{"id":0,"name":"oneadmin","password":"5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8","enabled":true},
                       {"id":12,"name":"bob&co","password":"4478db59d30855454ece114e8ccfa5563d21c9bd","enabled":false}]"#;
        serde_json::from_str(body).expect("JSON")
    }

    #[test]
    fn list_shows_the_reference_guide_columns() {
        let listing = Listing::new(&USERS, &ListArgs::default()).expect("listing");
        assert_eq!(
            listing.render(answer()),
            "UID  NAME      PASSWORD                                  ENABLE\n\
             \x20 0  oneadmin  5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8  yes\n\
             \x2012  bob&co    4478db59d30855454ece114e8ccfa5563d21c9bd  no\n"
        );
    }

    #[test]
    fn xml_is_opennebulas_user_pool() {
        let args = ListArgs {
            format: FormatArgs {
                xml: true,
                json: false,
            },
            ..ListArgs::default()
        };
        let xml = Listing::new(&USERS, &args)
            .expect("listing")
            .render(answer());
        assert_eq!(
            xml,
            "<USER_POOL><USER><ID>0</ID><NAME>oneadmin</NAME>\
             <PASSWORD>5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8</PASSWORD><ENABLED>1</ENABLED></USER>\
             <USER><ID>12</ID><NAME>bob&amp;co</NAME>\
             <PASSWORD>4478db59d30855454ece114e8ccfa5563d21c9bd</PASSWORD><ENABLED>0</ENABLED></USER></USER_POOL>\n"
        );
    }

    #[test]
    fn show_prints_the_xml_names() {
        let bob = &answer()[1];
        assert_eq!(
            USERS.render_one(bob, Format::Table),
            "ID       : 12\nNAME     : bob&co\nPASSWORD : 4478db59d30855454ece114e8ccfa5563d21c9bd\nENABLED  : no\n"
        );
        let json: Value = serde_json::from_str(&USERS.render_one(bob, Format::Json)).expect("JSON");
        assert_eq!(json["name"], "bob&co");
    }

    #[test]
    fn shared_options_parse_as_the_spec_writes_them() {
        match parse(&[
            "list", "-o", "-UID", "-l", "UID,NAME", "-f", "NAME=x", "--json",
        ])
        .expect("parsed")
        {
            UserCommand::List(args) => {
                assert_eq!(args.order, ["-UID"]);
                assert_eq!(args.columns, ["UID", "NAME"]);
                assert_eq!(args.filter, ["NAME=x"]);
                assert_eq!(args.format.format(), Format::Json);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            parse(&["show", "bob", "-x", "--json"]).is_err(),
            "-x and --json together"
        );
        assert!(parse(&["delete"]).is_err(), "delete needs a user");
        assert!(matches!(
            parse(&["list-columns"]),
            Ok(UserCommand::ListColumns)
        ));
    }

    #[test]
    fn names_are_escaped_in_paths() {
        assert_eq!(path("12"), "/v1/users/12");
        assert_eq!(path("a/b"), "/v1/users/a%2Fb");
    }
}
