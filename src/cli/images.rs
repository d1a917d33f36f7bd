//! `cloudgate image ...`: the image repository over `/v1/images`
//! (spec/CLI.md, "image"; spec/CORE.md §4.6). `create` streams the file
//! to the server — it is never read whole — with a progress bar on stderr
//! when stderr is a terminal.
//!
//! May use: `crate::cli::{client, output}`.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Subcommand, ValueEnum};
use serde_json::Value;

use super::client::{self, segment, Client, Error};
use super::output::{plain, Align, Column, FormatArgs, ListArgs, Pool};

/// Images as the CLI shows them, with OpenNebula's `IMAGE_POOL` XML names.
pub static IMAGES: Pool = Pool {
    pool_tag: "IMAGE_POOL",
    item_tag: "IMAGE",
    fields: &[
        ("id", "ID"),
        ("owner", "UID"),
        ("owner_name", "UNAME"),
        ("name", "NAME"),
        ("type", "TYPE"),
        ("public", "PUBLIC"),
        ("persistent", "PERSISTENT"),
        ("registered", "REGTIME"),
        ("state", "STATE"),
        ("running_vms", "RUNNING_VMS"),
        ("size_mb", "SIZE"),
        ("checksum", "CHECKSUM"),
        ("template", "TEMPLATE"),
    ],
    columns: &[
        Column::number("ID", "id", "the image's id"),
        Column::text("USER", "owner_name", "the owner's name"),
        Column::text("NAME", "name", "the image's name, unique per owner"),
        Column::text("TYPE", "type", "OS, CDROM or DATABLOCK"),
        Column {
            name: "SIZE",
            key: "size_mb",
            about: "the file's size in MB, rounded up",
            align: Align::Right,
            cell: megabytes,
        },
        Column {
            name: "STAT",
            key: "state",
            about: "rdy, used, disa (disabled), lock, err or init",
            align: Align::Left,
            cell: short_state,
        },
        Column::text("PUBLIC", "public", "yes if every user may use it"),
        Column::text(
            "PERSISTENT",
            "persistent",
            "yes if one VM at a time uses it and writes to it",
        ),
        Column::number("RVMS", "running_vms", "how many VMs use it"),
    ],
};

fn megabytes(size: &Value) -> String {
    match size.as_u64() {
        Some(mb) => format!("{mb}M"),
        None => plain(size),
    }
}

/// OpenNebula's short image states; an unknown state shows as sent.
fn short_state(state: &Value) -> String {
    match state.as_str() {
        Some("INIT") => "init".to_string(),
        Some("READY") => "rdy".to_string(),
        Some("USED") => "used".to_string(),
        Some("DISABLED") => "disa".to_string(),
        Some("LOCKED") => "lock".to_string(),
        Some("ERROR") => "err".to_string(),
        _ => plain(state),
    }
}

/// An image's type, as `--type` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum ImageType {
    /// A bootable disk.
    Os,
    /// A read-only CD-ROM image.
    Cdrom,
    /// A data disk.
    Datablock,
}

impl ImageType {
    fn name(self) -> &'static str {
        match self {
            ImageType::Os => "OS",
            ImageType::Cdrom => "CDROM",
            ImageType::Datablock => "DATABLOCK",
        }
    }
}

/// The verbs of `cloudgate image`. IMAGE arguments take an id or a name;
/// where several are taken, ranges too (`[9-11]`, `[8+3]`).
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Upload a file as a new image and print its id.
    Create {
        /// The image's name (unique among your images; not all digits).
        name: String,
        /// The file to upload.
        file: PathBuf,
        /// What the image holds.
        #[arg(long = "type", value_enum, ignore_case = true, default_value = "OS")]
        image_type: ImageType,
        /// Let every user use it.
        #[arg(long)]
        public: bool,
        /// One VM at a time uses it, and writes to it.
        #[arg(long)]
        persistent: bool,
        /// A description to keep with it.
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove images (yours, or any as oneadmin; not while VMs use them).
    Delete {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Your images and the public ones (all of them for oneadmin).
    List(ListArgs),
    /// The columns `list` can show, order and filter by.
    ListColumns,
    /// Everything about one image.
    Show {
        /// An id or a name.
        image: String,
        /// The output format.
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Make images usable again.
    Enable {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Keep images from being used by new VMs.
    Disable {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Let every user use images.
    Publish {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Make images private again.
    Unpublish {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Make images persistent.
    Persistent {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Make images non-persistent.
    Nonpersistent {
        /// Ids, names or ranges.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
}

/// Runs one `cloudgate image` command; failures are reported on stderr and
/// become the exit code ([`client::Error::exit_code`]).
pub fn run(command: ImageCommand) -> ExitCode {
    let each = |images: &[String], action| client::post_each(images, path, action);
    match command {
        ImageCommand::Create {
            name,
            file,
            image_type,
            public,
            persistent,
            description,
        } => {
            let query = create_query(
                &name,
                image_type,
                public,
                persistent,
                description.as_deref(),
            );
            client::finish(create(&query, &file))
        }
        ImageCommand::Delete { images } => client::delete_each(&images, path),
        ImageCommand::List(args) => {
            client::finish(client::print_list(&IMAGES, &args, "/v1/images"))
        }
        ImageCommand::ListColumns => {
            print!("{}", IMAGES.columns_help());
            ExitCode::SUCCESS
        }
        ImageCommand::Show { image, format } => {
            client::finish(client::print_one(&IMAGES, &path(&image), &format))
        }
        ImageCommand::Enable { images } => each(&images, "enable"),
        ImageCommand::Disable { images } => each(&images, "disable"),
        ImageCommand::Publish { images } => each(&images, "publish"),
        ImageCommand::Unpublish { images } => each(&images, "unpublish"),
        ImageCommand::Persistent { images } => each(&images, "persistent"),
        ImageCommand::Nonpersistent { images } => each(&images, "nonpersistent"),
    }
}

/// The `POST /v1/images?...` of an upload.
fn create_query(
    name: &str,
    image_type: ImageType,
    public: bool,
    persistent: bool,
    description: Option<&str>,
) -> String {
    let yes_no = |flag| if flag { "yes" } else { "no" };
    let mut query = format!(
        "/v1/images?name={}&type={}&public={}&persistent={}",
        segment(name),
        image_type.name(),
        yes_no(public),
        yes_no(persistent)
    );
    if let Some(description) = description {
        query.push_str(&format!("&description={}", segment(description)));
    }
    query
}

fn create(query: &str, file: &Path) -> Result<(), Error> {
    let unreadable = |e: std::io::Error| Error::File {
        path: file.display().to_string(),
        reason: e.to_string(),
    };
    let opened = File::open(file).map_err(unreadable)?;
    let metadata = opened.metadata().map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(Error::File {
            path: file.display().to_string(),
            reason: "not a regular file".to_string(),
        });
    }
    let client = Client::from_env()?;
    let length = metadata.len();
    let image = if std::io::stderr().is_terminal() {
        client.upload(query, length, Progress::new(opened, length))
    } else {
        client.upload(query, length, opened)
    }?;
    client::print_new_id(&image, "/v1/images", "image")
}

/// The resource of one image, by id or name.
fn path(image: &str) -> String {
    format!("/v1/images/{}", segment(image))
}

/// A reader that draws how much of it has been read on stderr, at most
/// ten times a second, and ends the line once all of it has been read.
struct Progress<R> {
    inner: R,
    total: u64,
    done: u64,
    drawn: Option<Instant>,
    ended: bool,
}

impl<R> Progress<R> {
    fn new(inner: R, total: u64) -> Self {
        Progress {
            inner,
            total,
            done: 0,
            drawn: None,
            ended: false,
        }
    }

    fn draw(&mut self, last: bool) {
        let due = self
            .drawn
            .map_or(true, |at| at.elapsed() >= Duration::from_millis(100));
        if due || last {
            let mut stderr = std::io::stderr().lock();
            let end = if last { "\n" } else { "" };
            // Drawing is a courtesy: a closed stderr must not fail the
            // upload.
            let _ = write!(stderr, "\r{}{end}", bar(self.done, self.total, 30));
            let _ = stderr.flush();
            self.drawn = Some(Instant::now());
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if !self.ended {
            // The sender may stop reading at the declared length, before
            // the reader's end: finish the line there.
            self.ended = self.done >= self.total || (n == 0 && !buf.is_empty());
            self.draw(self.ended);
        }
        Ok(n)
    }
}

/// `[#######.......]  50%  1.5/3.0 MiB`.
fn bar(done: u64, total: u64, width: usize) -> String {
    let fraction = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let filled = (fraction * width as f64).round() as usize;
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    format!(
        "[{}{}] {:3.0}%  {:.1}/{:.1} MiB",
        "#".repeat(filled),
        ".".repeat(width - filled),
        fraction * 100.0,
        mib(done),
        mib(total)
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::output::Format;
    use crate::cli::output::Listing;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ImageCommand,
    }

    fn parse(args: &[&str]) -> Result<ImageCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("image").chain(args.iter().copied())).map(|c| c.command)
    }

    fn answer() -> Vec<crate::cli::output::Object> {
        let body = r#"[{"id":0,"owner":1,"owner_name":"alice","name":"ubuntu","type":"OS","state":"READY","size_mb":2048,"public":false,"persistent":false,"running_vms":0,"checksum":"ab","registered":1700000000,"template":{}},
                       {"id":12,"owner":2,"owner_name":"bob","name":"data & co","type":"DATABLOCK","state":"USED","size_mb":1,"public":true,"persistent":true,"running_vms":1,"checksum":"cd","registered":1700000001,"template":{"DESCRIPTION":"x"}}]"#;
        serde_json::from_str(body).expect("JSON")
    }

    #[test]
    fn list_shows_the_columns() {
        let listing = Listing::new(&IMAGES, &ListArgs::default()).expect("listing");
        assert_eq!(
            listing.render(answer()),
            "ID  USER   NAME       TYPE        SIZE  STAT  PUBLIC  PERSISTENT  RVMS\n\
             \x200  alice  ubuntu     OS         2048M  rdy   no      no             0\n\
             12  bob    data & co  DATABLOCK     1M  used  yes     yes            1\n"
        );
    }

    #[test]
    fn filters_compare_what_the_table_shows() {
        let args = ListArgs {
            filter: vec!["STAT=used".into()],
            columns: vec!["NAME".into()],
            ..ListArgs::default()
        };
        let listing = Listing::new(&IMAGES, &args).expect("listing");
        assert_eq!(listing.render(answer()), "NAME\ndata & co\n");
    }

    #[test]
    fn show_and_xml_use_opennebulas_names() {
        let bob = &answer()[1];
        let table = IMAGES.render_one(bob, Format::Table);
        assert!(
            table.starts_with("ID          : 12\nUID         : 2\nUNAME       : bob\n"),
            "{table}"
        );
        let xml = IMAGES.render_one(bob, Format::Xml);
        assert!(
            xml.starts_with(
                "<IMAGE><ID>12</ID><UID>2</UID><UNAME>bob</UNAME><NAME>data &amp; co</NAME>"
            ),
            "{xml}"
        );
    }

    #[test]
    fn create_takes_type_and_flags() {
        match parse(&["create", "deb", "/tmp/x.img", "--type", "cdrom", "--public"])
            .expect("parsed")
        {
            ImageCommand::Create {
                name,
                file,
                image_type,
                public,
                persistent,
                description,
            } => {
                assert_eq!((name.as_str(), file), ("deb", PathBuf::from("/tmp/x.img")));
                assert_eq!(image_type, ImageType::Cdrom);
                assert!(public && !persistent && description.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["create", "deb"]).is_err(), "FILE is required");
        assert!(parse(&["create", "deb", "f", "--type", "disk"]).is_err());
        assert!(parse(&["delete"]).is_err(), "delete needs an image");
    }

    #[test]
    fn the_upload_query_escapes_what_it_carries() {
        assert_eq!(
            create_query("my disk&co", ImageType::Datablock, false, true, Some("a=b")),
            "/v1/images?name=my%20disk%26co&type=DATABLOCK&public=no&persistent=yes&description=a%3Db"
        );
        assert_eq!(path("a/b"), "/v1/images/a%2Fb");
    }

    #[test]
    fn the_bar_fills_with_the_bytes() {
        assert_eq!(bar(0, 4 << 20, 4), "[....]   0%  0.0/4.0 MiB");
        assert_eq!(bar(2 << 20, 4 << 20, 4), "[##..]  50%  2.0/4.0 MiB");
        assert_eq!(bar(4 << 20, 4 << 20, 4), "[####] 100%  4.0/4.0 MiB");
        assert_eq!(bar(0, 0, 4), "[####] 100%  0.0/0.0 MiB");
    }

    #[test]
    fn progress_passes_every_byte_through() {
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut read = Vec::new();
        Progress::new(&data[..], data.len() as u64)
            .read_to_end(&mut read)
            .expect("read");
        assert_eq!(read, data);
    }
}
