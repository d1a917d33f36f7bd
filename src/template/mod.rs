//! The OpenNebula template language (spec: `CORE.md` §5 and §6).
//!
//! What lives here: the [`Template`] value (an ordered list of single and
//! vector attributes) with its lookups; the parser (`parse.rs`) and the
//! printer (`print.rs`, `Display`) that round-trip it; `$VAR` substitution
//! (`subst.rs`); the XML form of `$TEMPLATE` (`xml.rs`); and the
//! REQUIREMENTS / RANK expression languages (`expr.rs`). VM and network
//! templates, driver answers (probe and poll `KEY=VALUE` output,
//! [`Template::parse_monitoring`]), driver default files and `oned.conf` /
//! `cloudgate.conf` all go through here.
//!
//! May use: nothing else from this crate (it sits at the bottom of the
//! module map in `STYLE.md` §2).
//!
//! Two invariants keep `Template::parse(&t.to_string()) == Ok(t)` true for
//! every template built through this API, and keep a value from ever
//! spilling into the surrounding text when printed:
//! - names and vector keys are upper case and made only of `A-Z`, `0-9` and
//!   `_` (anything else given to a setter becomes `_`);
//! - a value that has to be quoted never ends with a backslash, because the
//!   language has no spelling for it (the closing `"` would read as the
//!   escape `\"`; `CORE.md` §5.1: "a quoted value should not end with a
//!   backslash"). Setters drop such trailing backslashes. A value that can be
//!   written bare keeps them (`C:\dir\` is fine).

mod expr;
mod parse;
mod print;
mod subst;
mod xml;

pub use expr::{ExprError, Rank, Requirements};
pub use parse::{parse_spanned, ParseError, Position};
pub use subst::{substitute, Resolver, SubstError};

/// A parsed template: attributes in the order they were written, repeats
/// allowed (several `DISK`, `NIC`, `LEASES`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Template {
    attributes: Vec<Attribute>,
}

/// One `NAME = value` or `NAME = [ ... ]` line of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute name, always upper case.
    pub name: String,
    /// The single value or the vector.
    pub value: Value,
}

/// The value of an attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `NAME = value` (possibly empty).
    Single(String),
    /// `NAME = [ KEY = value, ... ]`.
    Vector(Vector),
}

/// The `KEY = value` pairs of a vector attribute, in the order written.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Vector {
    pairs: Vec<(String, String)>,
}

/// True if `name` is a valid attribute name or vector key as written in a
/// template: one or more ASCII letters, digits or `_` (any case).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(is_name_char)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A character as error messages show it: `'x'`, with control characters
/// escaped (`'\t'`).
fn quoted_char(c: char) -> String {
    if c.is_control() {
        format!("'{}'", c.escape_debug())
    } else {
        format!("'{c}'")
    }
}

/// The stored form of a name: upper case, invalid characters as `_`, never
/// empty. Lookups go through it too, so `get("nic")` finds `NIC`.
fn normalize_name(name: &str) -> String {
    if name.is_empty() {
        return "_".to_owned();
    }
    name.chars()
        .map(|c| {
            if is_name_char(c) {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl Value {
    /// The text of a single value, `None` for a vector.
    pub fn as_single(&self) -> Option<&str> {
        match self {
            Value::Single(text) => Some(text),
            Value::Vector(_) => None,
        }
    }

    /// The vector, `None` for a single value.
    pub fn as_vector(&self) -> Option<&Vector> {
        match self {
            Value::Single(_) => None,
            Value::Vector(vector) => Some(vector),
        }
    }

    /// Applies the module invariants (see the module header) to a value
    /// handed in from outside.
    fn normalized(self) -> Value {
        match self {
            Value::Single(text) => Value::Single(print::printable(text)),
            // A `Vector` can only be filled through its own setters, which
            // already normalize.
            Value::Vector(vector) => Value::Vector(vector),
        }
    }
}

impl Vector {
    /// An empty vector (`[]`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of the first `key` (case-insensitive), as OpenNebula reads a
    /// repeated key.
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = normalize_name(key);
        self.pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Replaces the value of the first `key`, or appends the pair. The key
    /// is normalized and the value made printable (module header).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let key = normalize_name(key);
        let value = print::printable(value.into());
        match self.pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((key, value)),
        }
    }

    /// Appends the pair even if `key` is already there (the parser keeps
    /// repeated keys so that printing gives back what was read).
    pub fn push(&mut self, key: &str, value: impl Into<String>) {
        self.pairs
            .push((normalize_name(key), print::printable(value.into())));
    }

    /// Removes every pair with this key.
    pub fn remove(&mut self, key: &str) {
        let key = normalize_name(key);
        self.pairs.retain(|(k, _)| *k != key);
    }

    /// The pairs in order, keys upper case.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True for `[]`.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl Template {
    /// An empty template.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses template text (`CORE.md` §5.1, modern superset: empty file,
    /// `A = ""`, `[]`).
    pub fn parse(text: &str) -> Result<Template, ParseError> {
        parse::parse(text, false)
    }

    /// Parses a driver answer (`DRIVERS.md` §2.4, §4): `KEY=VALUE` items
    /// separated by blanks, newlines or commas (1.4 probes and the dummy
    /// drivers join them with commas); a quoted value keeps its commas, which
    /// turning commas into newlines before [`Template::parse`] would break.
    pub fn parse_monitoring(text: &str) -> Result<Template, ParseError> {
        parse::parse(text, true)
    }

    /// All attributes in order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The first attribute called `name` (case-insensitive), if it is a
    /// single value. A vector there gives `None`, as in OpenNebula, even if a
    /// later attribute of that name is single.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.first(name)
            .and_then(|attribute| attribute.value.as_single())
    }

    /// The first attribute called `name`, if it is a vector.
    pub fn vector(&self, name: &str) -> Option<&Vector> {
        self.first(name)
            .and_then(|attribute| attribute.value.as_vector())
    }

    /// The first attribute called `name`, if it is a vector, for editing.
    pub fn vector_mut(&mut self, name: &str) -> Option<&mut Vector> {
        let name = normalize_name(name);
        match self.attributes.iter_mut().find(|a| a.name == name) {
            Some(Attribute {
                value: Value::Vector(vector),
                ..
            }) => Some(vector),
            _ => None,
        }
    }

    /// Every vector called `name`, in order (single values of that name are
    /// skipped).
    pub fn vectors<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Vector> + 'a {
        let name = normalize_name(name);
        self.attributes
            .iter()
            .filter(move |a| a.name == name)
            .filter_map(|a| a.value.as_vector())
    }

    /// Every vector called `name`, in order, for editing (the core rewrites
    /// `NIC` and `DISK` vectors in place).
    pub fn vectors_mut<'a>(&'a mut self, name: &str) -> impl Iterator<Item = &'a mut Vector> + 'a {
        let name = normalize_name(name);
        self.attributes
            .iter_mut()
            .filter(move |a| a.name == name)
            .filter_map(|a| match &mut a.value {
                Value::Vector(vector) => Some(vector),
                Value::Single(_) => None,
            })
    }

    /// Replaces the first attribute called `name` (single or vector) with a
    /// single value, or appends one. The name is normalized and the value made
    /// printable (module header).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let name = normalize_name(name);
        let value = Value::Single(value.into()).normalized();
        match self.attributes.iter_mut().find(|a| a.name == name) {
            Some(attribute) => attribute.value = value,
            None => self.attributes.push(Attribute { name, value }),
        }
    }

    /// Appends an attribute, even if one of that name exists. The name is
    /// normalized and a single value made printable (module header).
    pub fn push(&mut self, name: &str, value: Value) {
        self.attributes.push(Attribute {
            name: normalize_name(name),
            value: value.normalized(),
        });
    }

    /// Removes every attribute called `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let name = normalize_name(name);
        let before = self.attributes.len();
        self.attributes.retain(|a| a.name != name);
        before - self.attributes.len()
    }

    fn first(&self, name: &str) -> Option<&Attribute> {
        let name = normalize_name(name);
        self.attributes.iter().find(|a| a.name == name)
    }
}

impl std::str::FromStr for Template {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Template::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(pairs: &[(&str, &str)]) -> Value {
        let mut vector = Vector::new();
        for (k, v) in pairs {
            vector.push(k, *v);
        }
        Value::Vector(vector)
    }

    #[test]
    fn lookups_are_case_insensitive_and_first_wins() {
        let mut t = Template::new();
        t.push("disk", disk(&[("source", "a.img"), ("TARGET", "hda")]));
        t.push("DISK", disk(&[("SOURCE", "b.img")]));
        t.set("name", "web");
        t.set("Name", "web 2");

        assert_eq!(t.get("NAME"), Some("web 2"));
        assert_eq!(t.attributes().len(), 3);
        assert_eq!(t.attributes()[0].name, "DISK");
        assert_eq!(
            t.vector("disk").and_then(|d| d.get("source")),
            Some("a.img")
        );
        let sources: Vec<_> = t.vectors("Disk").filter_map(|d| d.get("SOURCE")).collect();
        assert_eq!(sources, ["a.img", "b.img"]);
    }

    #[test]
    fn single_and_vector_lookups_only_look_at_the_first_attribute() {
        let mut t = Template::new();
        t.push("A", disk(&[("X", "1")]));
        t.push("A", Value::Single("later".into()));
        assert_eq!(t.get("A"), None);
        assert!(t.vector("A").is_some());
        t.push("B", Value::Single("first".into()));
        t.push("B", disk(&[("X", "1")]));
        assert_eq!(t.vector("B"), None);
        assert_eq!(t.vectors("B").count(), 1);
    }

    #[test]
    fn set_replaces_a_vector_with_a_single_value() {
        let mut t = Template::new();
        t.push("CONTEXT", disk(&[("X", "1")]));
        t.set("context", "plain");
        assert_eq!(t.get("CONTEXT"), Some("plain"));
        assert_eq!(t.attributes().len(), 1);
    }

    #[test]
    fn remove_counts_every_attribute_of_that_name() {
        let mut t = Template::new();
        t.push("NIC", disk(&[("IP", "1")]));
        t.set("NAME", "x");
        t.push("nic", disk(&[("IP", "2")]));
        assert_eq!(t.remove("Nic"), 2);
        assert_eq!(t.remove("NIC"), 0);
        assert_eq!(t.attributes().len(), 1);
    }

    #[test]
    fn vectors_mut_edits_every_vector_of_that_name() {
        let mut t = Template::new();
        t.push("NIC", disk(&[("NETWORK", "a")]));
        t.push("NIC", disk(&[("NETWORK", "b")]));
        t.push("NIC", Value::Single("not a vector".into()));
        for nic in t.vectors_mut("nic") {
            nic.set("bridge", "br0");
        }
        assert!(t.vectors("NIC").all(|nic| nic.get("BRIDGE") == Some("br0")));
        if let Some(nic) = t.vector_mut("NIC") {
            nic.remove("bridge");
        }
        assert_eq!(t.vector("NIC").and_then(|n| n.get("BRIDGE")), None);
    }

    #[test]
    fn vector_set_get_remove() {
        let mut v = Vector::new();
        assert!(v.is_empty());
        v.push("ip", "1");
        v.push("IP", "2");
        assert_eq!(v.get("Ip"), Some("1"));
        v.set("ip", "3");
        assert_eq!(v.iter().collect::<Vec<_>>(), [("IP", "3"), ("IP", "2")]);
        v.set("mac", "m");
        v.remove("IP");
        assert_eq!(v.iter().collect::<Vec<_>>(), [("MAC", "m")]);
    }

    #[test]
    fn names_are_normalized_to_what_a_template_can_hold() {
        let mut t = Template::new();
        t.set("my name", "x");
        t.set("", "y");
        assert_eq!(t.attributes()[0].name, "MY_NAME");
        assert_eq!(t.get("my name"), Some("x"));
        assert_eq!(t.attributes()[1].name, "_");
        assert!(is_valid_name("Disk_0"));
        assert!(!is_valid_name("my name"));
        assert!(!is_valid_name(""));
    }

    #[test]
    fn trailing_backslashes_are_dropped_only_where_they_cannot_be_printed() {
        let mut t = Template::new();
        t.set("BARE", r"C:\dir\");
        t.set("QUOTED", r"C:\my dir\\");
        t.push("V", disk(&[("K", r"a b\")]));
        assert_eq!(t.get("BARE"), Some(r"C:\dir\"));
        assert_eq!(t.get("QUOTED"), Some(r"C:\my dir"));
        assert_eq!(t.vector("V").and_then(|v| v.get("K")), Some("a b"));
    }

    #[test]
    fn from_str_is_parse() {
        let t: Template = "A = 1".parse().expect("valid template");
        assert_eq!(t.get("A"), Some("1"));
    }
}
