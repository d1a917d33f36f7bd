//! The template printer (`Display for Template`) and the rule that keeps
//! every stored value printable.
//!
//! Output is one attribute per line, `NAME = value`, vectors as
//! `NAME = [⏎  KEY = value,⏎  KEY = value ]`. A value is written bare when
//! the grammar allows it (`CORE.md` §5.1) and quoted otherwise, with `"`
//! written as `\"`, the language's only escape. What this printer writes
//! reads back as the same template (`Template::parse(&t.to_string()) ==
//! Ok(t)`) and, apart from `[]` and `""` inside a vector which have no older
//! spelling, is also what OpenNebula 1.4 reads: an empty single value is
//! written `NAME =⏎`.
//!
//! Why that holds: reading a quoted value turns `\"` into `"` and keeps every
//! other backslash, while writing turns `"` into `\"` and keeps every other
//! backslash. A written backslash is therefore followed by a character of the
//! value or by the `\"` of a written quote — never by a lone `"` — except
//! when the value ends with a backslash, where it would be followed by the
//! closing quote. That one case has no spelling; [`printable`] removes it
//! before a value is stored.
//!
//! Uses only `super` (the types in `mod.rs` and the character classes of
//! `parse.rs`).

use std::fmt;

use super::parse::is_forbidden_in_bare;
use super::{Template, Value};

/// True if `value` cannot be written bare.
fn needs_quotes(value: &str) -> bool {
    value.is_empty() || value.starts_with('"') || value.chars().any(is_forbidden_in_bare)
}

/// `value` as it will be stored: unchanged, unless it has to be quoted and
/// ends with backslashes, which are then dropped (see the module header).
pub(super) fn printable(mut value: String) -> String {
    if needs_quotes(&value) {
        let kept = value.trim_end_matches('\\').len();
        value.truncate(kept);
    }
    value
}

/// A value as written in a template: bare or quoted.
struct Written<'a>(&'a str);

impl fmt::Display for Written<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if needs_quotes(self.0) {
            write!(f, "\"{}\"", self.0.replace('"', "\\\""))
        } else {
            f.write_str(self.0)
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for attribute in self.attributes() {
            let name = &attribute.name;
            match &attribute.value {
                // 1.4 reads `""` as a two-character value; `NAME =⏎` is the
                // empty value in every version.
                Value::Single(text) if text.is_empty() => writeln!(f, "{name} =")?,
                Value::Single(text) => writeln!(f, "{name} = {}", Written(text))?,
                Value::Vector(vector) if vector.is_empty() => writeln!(f, "{name} = []")?,
                Value::Vector(vector) => {
                    write!(f, "{name} = [")?;
                    for (index, (key, value)) in vector.iter().enumerate() {
                        let comma = if index == 0 { "" } else { "," };
                        write!(f, "{comma}\n  {key} = {}", Written(value))?;
                    }
                    writeln!(f, " ]")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Vector;
    use proptest::prelude::*;

    fn vector(pairs: &[(&str, &str)]) -> Value {
        let mut vector = Vector::new();
        for (key, value) in pairs {
            vector.push(key, *value);
        }
        Value::Vector(vector)
    }

    #[test]
    fn prints_bare_quoted_empty_and_vectors() {
        let mut t = Template::new();
        t.set("NAME", "web 1");
        t.set("MEMORY", "512");
        t.set("EMPTY", "");
        t.set("QUOTE", r#"say "hi""#);
        t.push(
            "DISK",
            vector(&[
                ("SOURCE", "/srv/ttylinux.img"),
                ("TARGET", "hda"),
                ("LABEL", ""),
            ]),
        );
        t.push("NONE", vector(&[]));
        t.set("PATH", r"C:\dir\");
        t.set("Q", r#""lead"#);
        assert_eq!(
            t.to_string(),
            "NAME = \"web 1\"\n\
             MEMORY = 512\n\
             EMPTY =\n\
             QUOTE = \"say \\\"hi\\\"\"\n\
             DISK = [\n  SOURCE = /srv/ttylinux.img,\n  TARGET = hda,\n  LABEL = \"\" ]\n\
             NONE = []\n\
             PATH = C:\\dir\\\n\
             Q = \"\\\"lead\"\n"
        );
    }

    #[test]
    fn quotes_every_character_a_bare_value_cannot_hold() {
        for special in [" ", "\t", "\r", "\n", "=", "#", ",", "[", "]"] {
            let mut t = Template::new();
            t.set("A", format!("x{special}y"));
            assert_eq!(t.to_string(), format!("A = \"x{special}y\"\n"));
        }
    }

    #[test]
    fn backslash_before_a_quote_survives() {
        let mut t = Template::new();
        t.set("A", r#"a\"b \ c\\"#.to_owned() + "d");
        let text = t.to_string();
        assert_eq!(text, "A = \"a\\\\\"b \\ c\\\\d\"\n");
        assert_eq!(Template::parse(&text), Ok(t));
    }

    #[test]
    fn printable_only_touches_quoted_values_ending_in_backslash() {
        assert_eq!(printable(r"a\".into()), r"a\");
        assert_eq!(printable(r"a b\\".into()), "a b");
        assert_eq!(printable(r"\".into()), r"\");
        assert_eq!(printable(r#""\"#.into()), r#"""#);
        assert_eq!(printable(r"a\ b".into()), r"a\ b");
    }

    #[test]
    fn prints_the_parsed_small_vm_readably() {
        let t = Template::parse(
            "NAME = \"web 1\"\nDISK = [ SOURCE = \"/srv/a.img\", TARGET = hda ]\n\
             CONTEXT = [ ip = \"$NIC[IP, NETWORK=\\\"Public LAN\\\"]\" ]",
        )
        .expect("valid template");
        assert_eq!(
            t.to_string(),
            "NAME = \"web 1\"\n\
             DISK = [\n  SOURCE = /srv/a.img,\n  TARGET = hda ]\n\
             CONTEXT = [\n  IP = \"$NIC[IP, NETWORK=\\\"Public LAN\\\"]\" ]\n"
        );
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Z0-9_]{1,12}"
    }

    /// Any printable text, with the characters the printer must care about
    /// made frequent.
    fn text() -> impl Strategy<Value = String> {
        "(\\PC|[ \t\r\n\"\\\\#=,\\[\\]]){0,24}"
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            text().prop_map(Value::Single),
            prop::collection::vec((name(), text()), 0..4).prop_map(|pairs| {
                let mut vector = Vector::new();
                for (key, value) in pairs {
                    vector.push(&key, value);
                }
                Value::Vector(vector)
            }),
        ]
    }

    fn template() -> impl Strategy<Value = Template> {
        prop::collection::vec((name(), value()), 0..8).prop_map(|attributes| {
            let mut t = Template::new();
            for (name, value) in attributes {
                t.push(&name, value);
            }
            t
        })
    }

    proptest! {
        #[test]
        fn print_then_parse_gives_back_the_template(t in template()) {
            prop_assert_eq!(Template::parse(&t.to_string()), Ok(t));
        }

        #[test]
        fn printed_templates_concatenate(a in template(), b in template()) {
            // No value can leak into the text around it: two printed
            // templates one after the other read as both, in order.
            let mut both = a.clone();
            for attribute in b.attributes() {
                both.push(&attribute.name, attribute.value.clone());
            }
            prop_assert_eq!(Template::parse(&format!("{a}{b}")), Ok(both));
        }

        #[test]
        fn stored_values_are_the_given_ones_but_for_unprintable_backslashes(v in text()) {
            let mut t = Template::new();
            t.set("A", v.clone());
            let stored = t.get("A").unwrap_or_default();
            if needs_quotes(&v) && v.ends_with('\\') {
                prop_assert_eq!(stored, v.trim_end_matches('\\'));
            } else {
                prop_assert_eq!(stored, v.as_str());
            }
        }
    }
}
