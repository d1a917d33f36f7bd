//! `$VAR` substitution (`CORE.md` §5.2): CONTEXT values, REQUIREMENTS and
//! hook arguments get `$NAME`, `$NAME[SUB]`, `$NAME[SUB, KEY=VALUE]`,
//! `$<vmid>.NAME` (also spelled `$<vmid>.$NAME`) replaced by values from a
//! [`Resolver`]; `$$` is a literal `$` (cloudgate extension).
//!
//! The grammar's `end` rule (the character after a reference is consumed
//! and copied, unless it is `$`) needs no code of its own: copying it is
//! what the literal text after a reference gets anyway. What it does decide
//! is that a reference stops at the first character that cannot continue
//! it: `$NAME-x`, `$NAME.x` and `$NIC[IP]:22` keep `-x`, `.x` and `:22`.
//!
//! Names are upper-cased before they reach the resolver; a condition value
//! is passed as written (it is compared exactly). A missing value is the
//! empty string, never an error; only syntax is.
//!
//! Uses only `super` (the `Template` lookups for its resolver).

use super::{is_name_char, quoted_char, Template};

/// Where substituted values come from. The core implements it for a VM
/// (special names such as `$UID`, `$NETWORK[...]`, other VMs);
/// [`Template`] implements it with its own attributes.
pub trait Resolver {
    /// `$NAME`
    fn single(&self, name: &str) -> Option<String>;
    /// `$NAME[SUB]` and `$NAME[SUB, KEY=VAL]` (cond = Some((KEY, VAL)))
    fn vector(&self, name: &str, sub: &str, cond: Option<(&str, &str)>) -> Option<String>;
    /// `$<vmid>.NAME` / `$<vmid>.$NAME`; default returns None
    fn other_vm(&self, _vmid: u64, _name: &str) -> Option<String> {
        None
    }
}

/// A `$` reference that does not parse, displayed as
/// `column {col}: {message}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {col}: {message}")]
pub struct SubstError {
    /// Column of the offending character, from 1, in characters of the whole
    /// text (newlines included).
    pub col: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl Resolver for Template {
    /// The first attribute `NAME`, if it is a single value.
    fn single(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    /// `SUB` of the first attribute `NAME` if it is a vector, or with a
    /// condition, of the first vector `NAME` whose `KEY` is exactly `VAL`.
    fn vector(&self, name: &str, sub: &str, cond: Option<(&str, &str)>) -> Option<String> {
        let vector = match cond {
            None => self.vector(name),
            Some((key, value)) => self.vectors(name).find(|v| v.get(key) == Some(value)),
        }?;
        vector.get(sub).map(str::to_owned)
    }
}

/// Replaces every `$` reference in `text` with its value from `resolver`
/// (empty when missing).
pub fn substitute(text: &str, resolver: &dyn Resolver) -> Result<String, SubstError> {
    let mut scanner = Scanner {
        chars: text.chars().collect(),
        pos: 0,
    };
    let mut out = String::with_capacity(text.len());
    while let Some(c) = scanner.bump() {
        if c != '$' {
            out.push(c);
        } else if scanner.peek() == Some('$') {
            scanner.bump();
            out.push('$');
        } else {
            let value = match scanner.reference()? {
                Reference::Single(name) => resolver.single(&name),
                Reference::Vector { name, sub, cond } => resolver.vector(
                    &name,
                    &sub,
                    cond.as_ref().map(|(k, v)| (k.as_str(), v.as_str())),
                ),
                Reference::OtherVm { vmid, name } => resolver.other_vm(vmid, &name),
            };
            out.push_str(&value.unwrap_or_default());
        }
    }
    Ok(out)
}

enum Reference {
    Single(String),
    Vector {
        name: String,
        sub: String,
        cond: Option<(String, String)>,
    },
    OtherVm {
        vmid: u64,
        name: String,
    },
}

struct Scanner {
    chars: Vec<char>,
    pos: usize,
}

impl Scanner {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn eat(&mut self, wanted: char) -> bool {
        let found = self.peek() == Some(wanted);
        if found {
            self.pos += 1;
        }
        found
    }

    fn error(&self, expected: &str) -> SubstError {
        let found = self
            .peek()
            .map_or_else(|| "end of text".to_owned(), quoted_char);
        SubstError {
            col: self.pos + 1,
            message: format!("{expected}, found {found}"),
        }
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    /// A name (`[A-Za-z0-9_]+`) upper-cased, if one starts here.
    fn take_name(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos]
            .iter()
            .map(char::to_ascii_uppercase)
            .collect();
        (!name.is_empty()).then_some(name)
    }

    /// A name, or the error "`expected`, found ...".
    fn name(&mut self, expected: &str) -> Result<String, SubstError> {
        self.take_name().ok_or_else(|| self.error(expected))
    }

    /// Everything after a `$` that is not `$$`.
    fn reference(&mut self) -> Result<Reference, SubstError> {
        let name_col = self.pos + 1;
        let name = self.name("expected a name after '$' (write '$$' for a literal '$')")?;
        if name.chars().all(|c| c.is_ascii_digit()) && self.peek() == Some('.') {
            if let Some(other) = self.other_vm(&name, name_col)? {
                return Ok(other);
            }
        }
        if !self.eat('[') {
            return Ok(Reference::Single(name));
        }
        self.skip_blanks();
        let sub = self.name(&format!("expected an attribute name after '{name}['"))?;
        self.skip_blanks();
        let cond = if self.eat(',') {
            self.skip_blanks();
            let key = self.name(&format!(
                "expected a condition like KEY=VALUE in '{name}[{sub}, '"
            ))?;
            self.skip_blanks();
            if !self.eat('=') {
                return Err(self.error(&format!("expected '=' after '{key}'")));
            }
            self.skip_blanks();
            let value = self.condition_value(&key)?;
            self.skip_blanks();
            Some((key, value))
        } else {
            None
        };
        if !self.eat(']') {
            let expected = if cond.is_some() {
                "expected ']'"
            } else {
                "expected ']' or ','"
            };
            return Err(self.error(expected));
        }
        Ok(Reference::Vector { name, sub, cond })
    }

    /// `.NAME` or `.$NAME` after the VM id `vmid` (at `vmid_col`). `None`
    /// when no name follows: then the id was an ordinary name and the `.`
    /// is plain text.
    fn other_vm(&mut self, vmid: &str, vmid_col: usize) -> Result<Option<Reference>, SubstError> {
        let dot = self.pos;
        self.pos += 1;
        self.eat('$');
        let Some(name) = self.take_name() else {
            self.pos = dot;
            return Ok(None);
        };
        let vmid = vmid.parse().map_err(|_| SubstError {
            col: vmid_col,
            message: format!("expected a VM id that fits in 64 bits, found '{vmid}'"),
        })?;
        Ok(Some(Reference::OtherVm { vmid, name }))
    }

    /// `"..."` (no escapes) or `[A-Za-z0-9]+`.
    fn condition_value(&mut self, key: &str) -> Result<String, SubstError> {
        let start = self.pos;
        if self.eat('"') {
            while let Some(c) = self.bump() {
                if c == '"' {
                    return Ok(self.chars[start + 1..self.pos - 1].iter().collect());
                }
            }
            return Err(SubstError {
                col: start + 1,
                message: format!(
                    "expected a closing '\"' for the value of '{key}' that starts here, found \
                     end of text"
                ),
            });
        }
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error(&format!(
                "expected a quoted or alphanumeric value for '{key}'"
            )));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vm() -> Template {
        Template::parse(
            r#"NAME = "web 1"
VMID = 7
NIC = [ NETWORK = "Private LAN", IP = 10.0.0.7, MAC = 02:00:0a:00:00:07 ]
NIC = [ NETWORK = "Public LAN", IP = 192.168.0.5, NETWORK_ID = 3 ]
NIC = [ NETWORK = public, IP = 1.2.3.4 ]
GRAPHICS = [ TYPE = vnc ]
"#,
        )
        .expect("valid template")
    }

    fn subst(text: &str) -> String {
        match substitute(text, &vm()) {
            Ok(out) => out,
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn subst_error(text: &str) -> String {
        match substitute(text, &vm()) {
            Ok(out) => panic!("{text:?} gave {out:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_text_is_copied() {
        assert_eq!(subst(""), "");
        assert_eq!(
            subst("no references, \"quotes\" \\ and ünïcode"),
            "no references, \"quotes\" \\ and ünïcode"
        );
    }

    #[test]
    fn single_references() {
        assert_eq!(subst("$NAME"), "web 1");
        assert_eq!(subst("$name"), "web 1");
        assert_eq!(subst("$VMID $NAME"), "7 web 1");
        assert_eq!(subst("one-$VMID"), "one-7");
    }

    #[test]
    fn vector_references() {
        assert_eq!(subst("$NIC[IP]"), "10.0.0.7");
        assert_eq!(subst("$nic[ mac ]"), "02:00:0a:00:00:07");
        assert_eq!(subst(r#"$NIC[IP, NETWORK="Public LAN"]"#), "192.168.0.5");
        assert_eq!(
            subst(r#"$NIC[ IP ,NETWORK = "Public LAN" ]"#),
            "192.168.0.5"
        );
        assert_eq!(subst("$NIC[IP, NETWORK=public]"), "1.2.3.4");
        assert_eq!(subst("$NIC[IP, NETWORK_ID=3]"), "192.168.0.5");
        assert_eq!(subst("$GRAPHICS[TYPE]"), "vnc");
    }

    #[test]
    fn condition_values_compare_exactly() {
        assert_eq!(subst("[$NIC[IP, NETWORK=PUBLIC]]"), "[]");
        assert_eq!(subst(r#"[$NIC[IP, NETWORK="public LAN"]]"#), "[]");
    }

    #[test]
    fn missing_values_are_empty() {
        assert_eq!(subst("<$MISSING>"), "<>");
        assert_eq!(subst("<$NIC>"), "<>", "a vector read as a single value");
        assert_eq!(subst("<$NAME[X]>"), "<>", "a single value read as a vector");
        assert_eq!(subst("<$NIC[GATEWAY]>"), "<>");
        assert_eq!(subst("<$DISK[SOURCE]>"), "<>");
        assert_eq!(subst("<$NIC[IP, NETWORK=nowhere]>"), "<>");
        assert_eq!(subst("<$5>"), "<>", "$5 alone is the attribute 5");
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar() {
        assert_eq!(subst("cost $$5"), "cost $5");
        assert_eq!(subst("$$NAME"), "$NAME");
        assert_eq!(subst("$NAME$$"), "web 1$");
        assert_eq!(subst("$$$NAME"), "$web 1");
    }

    #[test]
    fn a_reference_ends_at_the_first_character_that_cannot_continue_it() {
        assert_eq!(subst("$NAME$VMID"), "web 17");
        assert_eq!(subst("$VMID-x"), "7-x");
        assert_eq!(subst("$VMID,$VMID"), "7,7");
        assert_eq!(subst("$NIC[IP]:22"), "10.0.0.7:22");
        assert_eq!(subst("$NAME.x"), "web 1.x");
        assert_eq!(subst("$NAME\n"), "web 1\n");
        assert_eq!(subst("$VMID]"), "7]");
        assert_eq!(subst("\"$NAME\""), "\"web 1\"");
    }

    struct OtherVms;

    impl Resolver for OtherVms {
        fn single(&self, name: &str) -> Option<String> {
            Some(format!("single:{name}"))
        }

        fn vector(&self, name: &str, sub: &str, cond: Option<(&str, &str)>) -> Option<String> {
            Some(format!("vector:{name}/{sub}/{cond:?}"))
        }

        fn other_vm(&self, vmid: u64, name: &str) -> Option<String> {
            Some(format!("vm{vmid}:{name}"))
        }
    }

    #[test]
    fn other_vm_references() {
        let sub = |text: &str| substitute(text, &OtherVms).expect("valid");
        assert_eq!(sub("$4.HOSTNAME"), "vm4:HOSTNAME");
        assert_eq!(sub("$4.$ip_public"), "vm4:IP_PUBLIC");
        assert_eq!(sub("$12.IP/24"), "vm12:IP/24");
        assert_eq!(sub("$4. x"), "single:4. x", "no name after the dot");
        assert_eq!(sub("$4.$$"), "single:4.$");
        assert_eq!(sub("$X4.NAME"), "single:X4.NAME");
        assert_eq!(
            sub("$nic[ip, network=\"A b\"]"),
            "vector:NIC/IP/Some((\"NETWORK\", \"A b\"))"
        );
        // The Template resolver knows no other VMs.
        assert_eq!(subst("<$4.NAME>"), "<>");
    }

    proptest! {
        #[test]
        fn any_text_substitutes_or_fails_cleanly(text in "[$ a-cA-C0-9_.,=\"\\[\\]\t]{0,30}") {
            if let Ok(out) = substitute(&text, &OtherVms) {
                if !text.contains('$') {
                    prop_assert_eq!(out, text);
                }
            }
        }
    }

    #[test]
    fn syntax_errors() {
        let cases = [
            ("cost $ 5", "column 7: expected a name after '$' (write '$$' for a literal '$'), found ' '"),
            ("end $", "column 6: expected a name after '$' (write '$$' for a literal '$'), found end of text"),
            ("$-x", "column 2: expected a name after '$' (write '$$' for a literal '$'), found '-'"),
            ("$NIC[", "column 6: expected an attribute name after 'NIC[', found end of text"),
            ("$NIC[]", "column 6: expected an attribute name after 'NIC[', found ']'"),
            ("$NIC[IP", "column 8: expected ']' or ',', found end of text"),
            ("$NIC[IP NETWORK]", "column 9: expected ']' or ',', found 'N'"),
            ("$NIC[IP,]", "column 9: expected a condition like KEY=VALUE in 'NIC[IP, ', found ']'"),
            ("$NIC[IP, NETWORK]", "column 17: expected '=' after 'NETWORK', found ']'"),
            ("$NIC[IP, NETWORK=]", "column 18: expected a quoted or alphanumeric value for 'NETWORK', found ']'"),
            ("$NIC[IP, NETWORK=my-net]", "column 20: expected ']', found '-'"),
            ("$NIC[IP, NETWORK=\"open]", "column 18: expected a closing '\"' for the value of 'NETWORK' that starts here, found end of text"),
            ("ok\n$\t", "column 5: expected a name after '$' (write '$$' for a literal '$'), found '\\t'"),
            ("$99999999999999999999.X", "column 2: expected a VM id that fits in 64 bits, found '99999999999999999999'"),
        ];
        for (text, expected) in cases {
            assert_eq!(subst_error(text), expected, "for {text:?}");
        }
    }
}
