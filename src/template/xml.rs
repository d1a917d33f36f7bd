//! A template as OpenNebula's XML (`Template::to_xml`), the form of the
//! `$TEMPLATE` substitution (`CORE.md` §5.2): `<TEMPLATE>` holding one
//! element per single attribute and, for a vector, one element with one
//! child per key, in template order. Every value is written in a CDATA
//! section, as OpenNebula's `Template::to_xml` does; a `]]>` inside a value
//! is split over two sections so that it cannot close the first one.
//!
//! Names need no escaping: the template's invariant keeps them to `A-Z`,
//! `0-9` and `_` (see `mod.rs`).
//!
//! Uses only `super` (the types in `mod.rs`).

use super::{Template, Value};

impl Template {
    /// The template as `<TEMPLATE>...</TEMPLATE>` (one line, no XML
    /// declaration), values in CDATA.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<TEMPLATE>");
        for attribute in self.attributes() {
            let name = &attribute.name;
            match &attribute.value {
                Value::Single(text) => element(&mut out, name, text),
                Value::Vector(vector) => {
                    out.push_str(&format!("<{name}>"));
                    for (key, value) in vector.iter() {
                        element(&mut out, key, value);
                    }
                    out.push_str(&format!("</{name}>"));
                }
            }
        }
        out.push_str("</TEMPLATE>");
        out
    }
}

/// `<name><![CDATA[text]]></name>`; an empty text is `<name><![CDATA[]]></name>`
/// too, so that every value has the same shape.
fn element(out: &mut String, name: &str, text: &str) {
    out.push_str(&format!(
        "<{name}><![CDATA[{}]]></{name}>",
        text.replace("]]>", "]]]]><![CDATA[>")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singles_and_vectors_in_order_values_in_cdata() {
        let t = Template::parse(
            "NAME = \"web 1\"\nNIC = [ IP = 10.0.0.7, NETWORK = \"a<b&c\" ]\nMEMORY = 512\nEMPTY =",
        )
        .expect("template");
        assert_eq!(
            t.to_xml(),
            "<TEMPLATE><NAME><![CDATA[web 1]]></NAME>\
             <NIC><IP><![CDATA[10.0.0.7]]></IP><NETWORK><![CDATA[a<b&c]]></NETWORK></NIC>\
             <MEMORY><![CDATA[512]]></MEMORY><EMPTY><![CDATA[]]></EMPTY></TEMPLATE>"
        );
    }

    #[test]
    fn a_cdata_end_inside_a_value_cannot_close_the_section() {
        let mut t = Template::new();
        t.set("X", "a]]>b");
        assert_eq!(
            t.to_xml(),
            "<TEMPLATE><X><![CDATA[a]]]]><![CDATA[>b]]></X></TEMPLATE>"
        );
    }

    #[test]
    fn an_empty_template_is_an_empty_element() {
        assert_eq!(Template::new().to_xml(), "<TEMPLATE></TEMPLATE>");
    }
}
