//! EC2 identifiers (spec/EC2.md §4): emitted as `ami-%08d`, `i-%08d`,
//! `r-%08x`, `key-%017x`; accepted as `ami-<decimal>`, `i-<decimal>` or a
//! bare decimal, leading zeros allowed, and `key-<hex>`. Anything else is
//! `*.Malformed`.
//!
//! May use: `super` (the EC2 error).

use super::error::Ec2Error;

/// `ami-00000005`.
pub fn image_id(id: u64) -> String {
    format!("ami-{id:08}")
}

/// `i-00000007`.
pub fn instance_id(id: u64) -> String {
    format!("i-{id:08}")
}

/// `r-0000002a`: a launch's reservation, from the id of its first VM.
pub fn reservation_id(first_vm: u64) -> String {
    format!("r-{first_vm:08x}")
}

/// `key-0000000000000003`: a key pair's id (AWS shape, 17 hex digits).
pub fn key_pair_id(id: u64) -> String {
    format!("key-{id:017x}")
}

/// `key-<hex>`, any number of digits: clients copy the id as we emit it.
fn parse_key_pair(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("key-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

fn parse(text: &str, prefix: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.strip_prefix(prefix).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// An image id in any accepted form.
pub fn parse_image(text: &str) -> Result<u64, Ec2Error> {
    parse(text, "ami-").ok_or_else(|| Ec2Error::MalformedImageId(text.to_string()))
}

/// An instance id in any accepted form.
pub fn parse_instance(text: &str) -> Result<u64, Ec2Error> {
    parse(text, "i-").ok_or_else(|| Ec2Error::MalformedInstanceId(text.to_string()))
}

/// What a tag may be put on, from its id's prefix (`ResourceId.N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// An instance (`i-...`).
    Instance(u64),
    /// An image (`ami-...`).
    Image(u64),
    /// A key pair (`key-...`).
    KeyPair(u64),
}

impl Resource {
    /// Reads `i-N`, `ami-N` or `key-HEX`; a bare number names no kind and
    /// is refused.
    pub fn parse(text: &str) -> Result<Self, Ec2Error> {
        let t = text.trim();
        if t.starts_with("i-") {
            parse(t, "i-").map(Resource::Instance)
        } else if t.starts_with("ami-") {
            parse(t, "ami-").map(Resource::Image)
        } else if t.starts_with("key-") {
            parse_key_pair(t).map(Resource::KeyPair)
        } else {
            None
        }
        .ok_or_else(|| Ec2Error::InvalidId(text.to_string()))
    }

    /// The id as EC2 shows it.
    pub fn id(self) -> String {
        match self {
            Resource::Instance(id) => instance_id(id),
            Resource::Image(id) => image_id(id),
            Resource::KeyPair(id) => key_pair_id(id),
        }
    }

    /// `resourceType` of DescribeTags.
    pub fn type_name(self) -> &'static str {
        match self {
            Resource::Instance(_) => "instance",
            Resource::Image(_) => "image",
            Resource::KeyPair(_) => "key-pair",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emitted_forms() {
        assert_eq!(image_id(5), "ami-00000005");
        assert_eq!(instance_id(7), "i-00000007");
        assert_eq!(instance_id(123_456_789), "i-123456789");
        assert_eq!(reservation_id(42), "r-0000002a");
        assert_eq!(key_pair_id(3), "key-00000000000000003");
    }

    #[test]
    fn accepted_forms_of_every_econe_version() {
        for text in ["ami-00000005", "ami-5", "5", " ami-05 "] {
            assert_eq!(parse_image(text).expect(text), 5);
        }
        for text in ["i-00000015", "i-15", "15"] {
            assert_eq!(parse_instance(text).expect(text), 15);
        }
        for bad in ["", "ami-", "ami-x", "i-5", "ami--5", "-5", "ami-1e3"] {
            assert!(parse_image(bad).is_err(), "{bad:?}");
        }
        for bad in ["i-", "ami-5", "i-0x10", "i-00000001a"] {
            assert!(parse_instance(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tag_resources() {
        assert_eq!(
            Resource::parse("i-00000007").expect("i"),
            Resource::Instance(7)
        );
        assert_eq!(Resource::parse("ami-3").expect("ami"), Resource::Image(3));
        assert!(Resource::parse("7").is_err());
        assert!(Resource::parse("vol-1").is_err());
        assert_eq!(
            Resource::parse("key-0000000000000001a").expect("key"),
            Resource::KeyPair(26)
        );
        assert!(Resource::parse("key-").is_err());
        assert!(Resource::parse("key-xyz").is_err());
        assert_eq!(Resource::KeyPair(26).id(), "key-0000000000000001a");
        assert_eq!(Resource::KeyPair(26).type_name(), "key-pair");
        assert_eq!(Resource::Image(3).id(), "ami-00000003");
        assert_eq!(Resource::Instance(3).type_name(), "instance");
    }
}
