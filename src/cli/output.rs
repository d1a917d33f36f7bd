//! How the CLI prints what `/v1` answers: OpenNebula's tables (columns
//! chosen, ordered and filtered with `-l`, `-o`, `-f`), the `/v1` JSON
//! (`--json`) or OpenNebula's XML (`-x`). One [`Pool`] description per kind
//! of object drives all three, so a new pool only declares its columns and
//! XML names (spec/CLI.md, "Shared options").
//!
//! May use: nothing from the crate; it works on JSON values.

use std::cmp::Ordering;

use clap::Args;
use serde_json::{Map, Number, Value};

/// One object as `/v1` sends it.
pub type Object = Map<String, Value>;

/// A list option names something this pool does not have.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `-l`, `-o` or `-f` names a column the pool does not have.
    #[error("unknown column {name:?}; the columns are {known}")]
    UnknownColumn {
        /// The name as given.
        name: String,
        /// The pool's columns, comma-separated.
        known: String,
    },
    /// A `-f` item is not `COLUMN=VALUE`.
    #[error("bad filter {0:?}: expected COLUMN=VALUE")]
    BadFilter(String),
}

/// Which side of its column a cell sticks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers, so that their digits line up.
    Right,
}

/// One column of a pool's table.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// The header, as OpenNebula's reference guide names it (`UID`).
    pub name: &'static str,
    /// The `/v1` field it shows (`id`).
    pub key: &'static str,
    /// What it means, for `list-columns`.
    pub about: &'static str,
    /// Where cells sit.
    pub align: Align,
    /// How a field value becomes a cell (absent fields arrive as null).
    pub cell: fn(&Value) -> String,
}

impl Column {
    /// A right-aligned column showing a number field as it is.
    pub const fn number(name: &'static str, key: &'static str, about: &'static str) -> Self {
        Column {
            name,
            key,
            about,
            align: Align::Right,
            cell: plain,
        }
    }

    /// A left-aligned column showing a field as it is (booleans as yes/no).
    pub const fn text(name: &'static str, key: &'static str, about: &'static str) -> Self {
        Column {
            name,
            key,
            about,
            align: Align::Left,
            cell: plain,
        }
    }

    fn value<'a>(&self, row: &'a Object) -> &'a Value {
        row.get(self.key).unwrap_or(&Value::Null)
    }

    fn cell_of(&self, row: &Object) -> String {
        (self.cell)(self.value(row))
    }
}

/// A value as a person reads it: strings bare, booleans as yes/no, nothing
/// as `-`, anything nested as compact JSON.
pub fn plain(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::Bool(true) => "yes".to_string(),
        Value::Bool(false) => "no".to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        nested => nested.to_string(),
    }
}

/// What the CLI knows about one kind of object: its table and its XML.
#[derive(Debug)]
pub struct Pool {
    /// The XML element around a list (`USER_POOL`).
    pub pool_tag: &'static str,
    /// The XML element of one object (`USER`).
    pub item_tag: &'static str,
    /// `/v1` field → XML element, in OpenNebula's order. Fields not named
    /// here follow, upper-cased, so nothing the server adds is lost.
    pub fields: &'static [(&'static str, &'static str)],
    /// The table's columns; `list` shows them all unless `-l` chooses.
    pub columns: &'static [Column],
}

impl Pool {
    /// The columns and what they mean, one a line (`list-columns`).
    pub fn columns_help(&self) -> String {
        let width = self.columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
        self.columns
            .iter()
            .map(|c| format!("{:width$}  {}\n", c.name, c.about))
            .collect()
    }

    /// One object in the chosen format.
    pub fn render_one(&self, object: &Object, format: Format) -> String {
        match format {
            Format::Json => format!("{:#}\n", Value::Object(object.clone())),
            Format::Xml => {
                let mut out = String::new();
                self.xml_item(&mut out, object);
                out.push('\n');
                out
            }
            Format::Table => {
                let fields = self.fields_of(object);
                let width = fields.iter().map(|(tag, _)| tag.len()).max().unwrap_or(0);
                fields
                    .iter()
                    .map(|(tag, value)| format!("{tag:width$} : {}\n", one_line(&plain(value))))
                    .collect()
            }
        }
    }

    /// The index of a column, named in any case.
    fn column(&self, name: &str) -> Result<usize, Error> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::UnknownColumn {
                name: name.to_string(),
                known: self
                    .columns
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(","),
            })
    }

    /// An object's fields as (XML element, value), in OpenNebula's order.
    fn fields_of<'a>(&self, object: &'a Object) -> Vec<(String, &'a Value)> {
        let known = self
            .fields
            .iter()
            .filter_map(|(key, tag)| object.get(*key).map(|v| (tag.to_string(), v)));
        let others = object
            .iter()
            .filter(|(key, _)| !self.fields.iter().any(|(k, _)| k == key))
            .map(|(key, v)| (key.to_uppercase(), v));
        known.chain(others).collect()
    }

    fn xml_item(&self, out: &mut String, object: &Object) {
        out.push_str(&format!("<{}>", self.item_tag));
        for (tag, value) in self.fields_of(object) {
            xml_element(out, &tag, value);
        }
        out.push_str(&format!("</{}>", self.item_tag));
    }
}

/// The output formats every command shares.
#[derive(Args, Clone, Debug, Default)]
pub struct FormatArgs {
    /// XML in OpenNebula's form instead of the table.
    #[arg(short = 'x', long, conflicts_with = "json")]
    pub xml: bool,
    /// The /v1 JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// What [`FormatArgs`] chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A table for lists, `FIELD : value` lines for one object.
    Table,
    /// The `/v1` JSON, pretty.
    Json,
    /// OpenNebula's XML.
    Xml,
}

impl FormatArgs {
    /// The chosen format (clap refuses `-x` with `--json`).
    pub fn format(&self) -> Format {
        if self.xml {
            Format::Xml
        } else if self.json {
            Format::Json
        } else {
            Format::Table
        }
    }
}

/// The options of every `list` verb.
#[derive(Args, Clone, Debug, Default)]
pub struct ListArgs {
    /// Columns to show, in this order (`list-columns` names them).
    #[arg(
        short = 'l',
        long = "list",
        value_name = "COLUMNS",
        value_delimiter = ','
    )]
    pub columns: Vec<String>,
    /// Order by these columns; a leading '-' means descending (-o -UID).
    #[arg(
        short = 'o',
        long,
        value_name = "COLUMNS",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub order: Vec<String>,
    /// Keep the rows whose columns show these values (-f NAME=alice).
    #[arg(short = 'f', long, value_name = "COLUMN=VALUE", value_delimiter = ',')]
    pub filter: Vec<String>,
    /// The output format.
    #[command(flatten)]
    pub format: FormatArgs,
}

/// A list request checked against its pool, ready to render rows. Built
/// before anything is sent, so a misspelt column costs no request.
#[derive(Debug)]
pub struct Listing<'p> {
    pool: &'p Pool,
    show: Vec<usize>,
    /// (column, descending)
    order: Vec<(usize, bool)>,
    /// (column, the cell text to keep)
    filter: Vec<(usize, String)>,
    format: Format,
}

impl<'p> Listing<'p> {
    /// Checks every column the options name.
    pub fn new(pool: &'p Pool, args: &ListArgs) -> Result<Self, Error> {
        let show = if args.columns.is_empty() {
            (0..pool.columns.len()).collect()
        } else {
            args.columns
                .iter()
                .map(|name| pool.column(name))
                .collect::<Result<_, _>>()?
        };
        let order = args
            .order
            .iter()
            .map(|key| match key.strip_prefix('-') {
                Some(name) => Ok((pool.column(name)?, true)),
                None => Ok((pool.column(key)?, false)),
            })
            .collect::<Result<_, _>>()?;
        let filter = args
            .filter
            .iter()
            .map(|item| {
                let (name, value) = item
                    .split_once('=')
                    .ok_or_else(|| Error::BadFilter(item.clone()))?;
                Ok((pool.column(name)?, value.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Listing {
            pool,
            show,
            order,
            filter,
            format: args.format.format(),
        })
    }

    /// Filters, orders and renders the rows. `-l` chooses the table's
    /// columns only: JSON and XML carry whole objects.
    pub fn render(&self, mut rows: Vec<Object>) -> String {
        let columns = self.pool.columns;
        rows.retain(|row| {
            self.filter
                .iter()
                .all(|(i, wanted)| columns[*i].cell_of(row) == *wanted)
        });
        // A stable sort: rows equal on every key keep the server's order.
        rows.sort_by(|a, b| {
            self.order
                .iter()
                .map(|&(i, descending)| {
                    let ordering = compare(&columns[i], a, b);
                    if descending {
                        ordering.reverse()
                    } else {
                        ordering
                    }
                })
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        match self.format {
            Format::Table => self.table(&rows),
            Format::Json => format!(
                "{:#}\n",
                Value::Array(rows.into_iter().map(Value::Object).collect())
            ),
            Format::Xml => {
                let mut out = format!("<{}>", self.pool.pool_tag);
                for row in &rows {
                    self.pool.xml_item(&mut out, row);
                }
                out.push_str(&format!("</{}>\n", self.pool.pool_tag));
                out
            }
        }
    }

    fn table(&self, rows: &[Object]) -> String {
        let columns: Vec<&Column> = self.show.iter().map(|&i| &self.pool.columns[i]).collect();
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| columns.iter().map(|c| one_line(&c.cell_of(row))).collect())
            .collect();
        let widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .map(|row| row[i].chars().count())
                    .chain([c.name.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header: Vec<String> = columns.iter().map(|c| c.name.to_string()).collect();
        std::iter::once(&header)
            .chain(&cells)
            .map(|line| {
                let padded: Vec<String> = line
                    .iter()
                    .zip(&columns)
                    .zip(&widths)
                    .map(|((cell, column), &width)| match column.align {
                        Align::Left => format!("{cell:<width$}"),
                        Align::Right => format!("{cell:>width$}"),
                    })
                    .collect();
                format!("{}\n", padded.join("  ").trim_end())
            })
            .collect()
    }
}

/// Orders two rows on one column: numbers by value (so 10 comes after 9),
/// anything else by the text the column shows.
fn compare(column: &Column, a: &Object, b: &Object) -> Ordering {
    match (column.value(a), column.value(b)) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        _ => {
            let (x, y) = (column.cell_of(a), column.cell_of(b));
            // A number column may compute its cells from a nested object
            // (a host's `share`): order those by value as well.
            match (column.align, x.parse::<i64>(), y.parse::<i64>()) {
                (Align::Right, Ok(x), Ok(y)) => x.cmp(&y),
                _ => x.cmp(&y),
            }
        }
    }
}

fn compare_numbers(x: &Number, y: &Number) -> Ordering {
    if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
        return x.cmp(&y);
    }
    // Mixed signs beyond i64, or fractions: f64 is close enough to order.
    x.as_f64()
        .partial_cmp(&y.as_f64())
        .unwrap_or(Ordering::Equal)
}

/// A table row or a `FIELD : value` line must stay one line whatever a
/// free-text field holds.
fn one_line(text: &str) -> String {
    text.replace(|c: char| c.is_control(), " ")
}

/// One value as XML in OpenNebula's style: booleans as 1/0, objects as
/// nested elements, arrays as the element repeated.
fn xml_element(out: &mut String, tag: &str, value: &Value) {
    match value {
        Value::Array(items) => {
            for item in items {
                xml_element(out, tag, item);
            }
        }
        Value::Null => out.push_str(&format!("<{tag}/>")),
        Value::Object(fields) => {
            out.push_str(&format!("<{tag}>"));
            for (key, value) in fields {
                xml_element(out, &key.to_uppercase(), value);
            }
            out.push_str(&format!("</{tag}>"));
        }
        Value::Bool(b) => out.push_str(&format!("<{tag}>{}</{tag}>", u8::from(*b))),
        Value::Number(n) => out.push_str(&format!("<{tag}>{n}</{tag}>")),
        Value::String(s) => out.push_str(&format!("<{tag}>{}</{tag}>", escape(s))),
    }
}

/// Escapes text for an XML element. Control characters other than tab and
/// newlines cannot appear in XML 1.0 even escaped, so they become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static THINGS: Pool = Pool {
        pool_tag: "THING_POOL",
        item_tag: "THING",
        fields: &[("id", "ID"), ("name", "NAME"), ("on", "ENABLED")],
        columns: &[
            Column::number("TID", "id", "the id"),
            Column::text("NAME", "name", "the name"),
            Column::text("ON", "on", "whether it is on"),
        ],
    };

    fn obj(value: Value) -> Object {
        match value {
            Value::Object(o) => o,
            other => panic!("not an object: {other}"),
        }
    }

    fn rows() -> Vec<Object> {
        [
            json!({"id": 2, "name": "beta", "on": true}),
            json!({"id": 10, "name": "alpha", "on": false}),
            json!({"id": 9, "name": "gamma", "on": true}),
        ]
        .into_iter()
        .map(obj)
        .collect()
    }

    fn list(args: &[&str]) -> Result<String, Error> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            list: ListArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(
            std::iter::once("list").chain(args.iter().copied()),
        )
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        Ok(Listing::new(&THINGS, &cli.list)?.render(rows()))
    }

    #[test]
    fn table_has_a_header_and_right_aligned_numbers() {
        assert_eq!(
            list(&[]).expect("list"),
            "TID  NAME   ON\n  2  beta   yes\n 10  alpha  no\n  9  gamma  yes\n"
        );
    }

    #[test]
    fn an_empty_list_is_the_header_alone() {
        let listing = Listing::new(&THINGS, &ListArgs::default()).expect("listing");
        assert_eq!(listing.render(Vec::new()), "TID  NAME  ON\n");
    }

    #[test]
    fn list_chooses_and_orders_the_columns_in_any_case() {
        assert_eq!(
            list(&["-l", "name,tid"]).expect("list"),
            "NAME   TID\nbeta     2\nalpha   10\ngamma    9\n"
        );
    }

    #[test]
    fn numbers_order_numerically_and_dash_means_descending() {
        assert_eq!(
            list(&["-o", "TID", "-l", "TID"]).expect("list"),
            "TID\n  2\n  9\n 10\n"
        );
        assert_eq!(
            list(&["-o", "-TID", "-l", "TID"]).expect("list"),
            "TID\n 10\n  9\n  2\n"
        );
    }

    #[test]
    fn text_orders_by_the_cell_and_later_keys_break_ties() {
        assert_eq!(
            list(&["-o", "NAME", "-l", "NAME"]).expect("list"),
            "NAME\nalpha\nbeta\ngamma\n"
        );
        assert_eq!(
            list(&["-o", "ON,-TID", "-l", "TID,ON"]).expect("list"),
            "TID  ON\n 10  no\n  9  yes\n  2  yes\n"
        );
    }

    #[test]
    fn filters_compare_what_the_table_shows_and_all_must_match() {
        assert_eq!(
            list(&["-f", "ON=yes", "-l", "NAME"]).expect("list"),
            "NAME\nbeta\ngamma\n"
        );
        assert_eq!(
            list(&["-f", "ON=yes,TID=9", "-l", "NAME"]).expect("list"),
            "NAME\ngamma\n"
        );
        assert_eq!(
            list(&["-f", "NAME=delta", "-l", "NAME"]).expect("list"),
            "NAME\n"
        );
    }

    #[test]
    fn unknown_columns_and_bad_filters_are_named() {
        let known = "TID,NAME,ON".to_string();
        for args in [["-l", "UID"], ["-o", "-UID"], ["-f", "UID=1"]] {
            assert_eq!(
                list(&args),
                Err(Error::UnknownColumn {
                    name: "UID".into(),
                    known: known.clone()
                })
            );
        }
        assert_eq!(list(&["-f", "NAME"]), Err(Error::BadFilter("NAME".into())));
        assert_eq!(
            Error::UnknownColumn {
                name: "X".into(),
                known
            }
            .to_string(),
            "unknown column \"X\"; the columns are TID,NAME,ON"
        );
    }

    #[test]
    fn json_is_the_filtered_ordered_objects() {
        let out = list(&["--json", "-o", "-TID", "-f", "ON=yes"]).expect("list");
        let parsed: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(
            parsed,
            json!([{"id": 9, "name": "gamma", "on": true}, {"id": 2, "name": "beta", "on": true}])
        );
    }

    #[test]
    fn xml_follows_opennebula_names_and_order() {
        assert_eq!(
            list(&["-x", "-f", "TID=10"]).expect("list"),
            "<THING_POOL><THING><ID>10</ID><NAME>alpha</NAME><ENABLED>0</ENABLED></THING></THING_POOL>\n"
        );
    }

    #[test]
    fn xml_escapes_every_text_and_keeps_unknown_fields() {
        let object = obj(
            json!({"id": 1, "name": "a&b<c>\"d'", "zone": null, "tags": ["x", "<y>"], "size": {"mb": 2}}),
        );
        assert_eq!(
            THINGS.render_one(&object, Format::Xml),
            "<THING><ID>1</ID><NAME>a&amp;b&lt;c&gt;&quot;d&apos;</NAME><SIZE><MB>2</MB></SIZE>\
             <TAGS>x</TAGS><TAGS>&lt;y&gt;</TAGS><ZONE/></THING>\n"
        );
        assert_eq!(escape("tab\tbell\u{7}"), "tab\tbell\u{FFFD}");
    }

    #[test]
    fn show_prints_one_field_a_line() {
        let object = obj(json!({"id": 3, "name": "multi\nline", "on": false, "extra": [1]}));
        assert_eq!(
            THINGS.render_one(&object, Format::Table),
            "ID      : 3\nNAME    : multi line\nENABLED : no\nEXTRA   : [1]\n"
        );
        let json: Value =
            serde_json::from_str(&THINGS.render_one(&object, Format::Json)).expect("JSON");
        assert_eq!(json, Value::Object(object));
    }

    #[test]
    fn list_columns_describes_each_column() {
        assert_eq!(
            THINGS.columns_help(),
            "TID   the id\nNAME  the name\nON    whether it is on\n"
        );
    }

    #[test]
    fn big_and_negative_numbers_compare_exactly() {
        let n = |v: Value| match v {
            Value::Number(n) => n,
            _ => unreachable!(),
        };
        assert_eq!(
            compare_numbers(&n(json!(u64::MAX)), &n(json!(u64::MAX - 1))),
            Ordering::Greater
        );
        assert_eq!(
            compare_numbers(&n(json!(-1)), &n(json!(u64::MAX))),
            Ordering::Less
        );
        assert_eq!(
            compare_numbers(&n(json!(1.5)), &n(json!(1))),
            Ordering::Greater
        );
    }
}
