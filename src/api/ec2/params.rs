//! The parameters of an EC2 Query request (spec/EC2.md §1, §4, §9.1): the
//! query string and the form body (or a multipart body's text fields)
//! decoded and merged, the body winning on a clash; then typed reads of
//! them — required values, flags, numbers, `Name.N` lists in numeric
//! order of `N`, and `Filter.N.Name` / `Filter.N.Value.M` filters.
//!
//! Pure: every function here is tested with raw request text.
//!
//! May use: `super` (the EC2 error).

use std::collections::BTreeMap;

use super::error::Ec2Error;

/// Decodes `application/x-www-form-urlencoded` text (a query string or a
/// form body): `&`-separated `name=value` pairs, `+` as a space, `%XX`
/// escapes. Empty pairs are skipped; a name without `=` has an empty
/// value. Escapes that do not decode to UTF-8 are refused.
pub fn decode_form(text: &str) -> Result<Vec<(String, String)>, Ec2Error> {
    let mut out = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((percent_decode(name)?, percent_decode(value)?));
    }
    Ok(out)
}

fn percent_decode(text: &str) -> Result<String, Ec2Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    // A lone '%' is kept, as browsers and Rack do.
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| Ec2Error::invalid_value("the request's parameters are not UTF-8"))
}

/// One `Filter.N`: a name and the values any of which may match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// `Filter.N.Name` (`instance-state-name`, `tag:Owner`...).
    pub name: String,
    /// `Filter.N.Value.M`, in order of `M`.
    pub values: Vec<String>,
}

impl Filter {
    /// Whether `value` matches one of the values; `*` and `?` are
    /// wildcards, as AWS filters allow.
    pub fn matches(&self, value: &str) -> bool {
        self.values.iter().any(|pattern| wildcard(pattern, value))
    }
}

/// Shell-style matching with `*` (any run) and `?` (one character).
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The merged parameters of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// Unique names, in order of first appearance.
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Merges the query string's pairs with the body's: a name given in
    /// both takes the body's value; a name repeated in one takes its last.
    pub fn merge(query: Vec<(String, String)>, body: Vec<(String, String)>) -> Self {
        let mut params = Params::default();
        for (name, value) in query.into_iter().chain(body) {
            params.set(name, value);
        }
        params
    }

    fn set(&mut self, name: String, value: String) {
        match self.pairs.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.pairs.push((name, value)),
        }
    }

    /// Every parameter, as the signature checks take them.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter that must be there (and not empty): else
    /// `MissingParameter`.
    pub fn required(&self, name: &str) -> Result<&str, Ec2Error> {
        self.get(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| Ec2Error::missing(name))
    }

    /// A boolean (`true` / `false`, any case); absent is `false`.
    pub fn flag(&self, name: &str) -> Result<bool, Ec2Error> {
        match self.get(name).map(str::trim) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Ec2Error::invalid_value(format!(
                "{name} must be true or false, not {v:?}"
            ))),
        }
    }

    /// A whole number, if given.
    pub fn number(&self, name: &str) -> Result<Option<u64>, Ec2Error> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    Ec2Error::invalid_value(format!("{name} must be a whole number, not {v:?}"))
                })
            })
            .transpose()
    }

    /// The values of `prefix.N` for any decimal `N` (`InstanceId.1`,
    /// `InstanceId.01`...), in numeric order of `N` (§4).
    pub fn list(&self, prefix: &str) -> Vec<&str> {
        let mut found: Vec<(u64, &str)> = self
            .pairs
            .iter()
            .filter_map(|(name, value)| {
                let n = name.strip_prefix(prefix)?.strip_prefix('.')?;
                n.parse::<u64>().ok().map(|n| (n, value.as_str()))
            })
            .collect();
        found.sort_by_key(|(n, _)| *n);
        found.into_iter().map(|(_, v)| v).collect()
    }

    /// The members of `prefix.N.<rest>` grouped by `N`, in numeric order:
    /// for `Tag.1.Key=a&Tag.1.Value=b`, `[{Key: a, Value: b}]`.
    pub fn groups(&self, prefix: &str) -> Vec<BTreeMap<&str, &str>> {
        let mut groups: BTreeMap<u64, BTreeMap<&str, &str>> = BTreeMap::new();
        for (name, value) in &self.pairs {
            let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            let Some((n, member)) = rest.split_once('.') else {
                continue;
            };
            if let Ok(n) = n.parse::<u64>() {
                groups.entry(n).or_default().insert(member, value.as_str());
            }
        }
        groups.into_values().collect()
    }

    /// `Filter.N.Name` with its `Filter.N.Value.M` values. A filter with
    /// no name is `MissingParameter`; one with no value matches nothing.
    pub fn filters(&self) -> Result<Vec<Filter>, Ec2Error> {
        self.groups("Filter")
            .into_iter()
            .map(|group| {
                let name = group
                    .get("Name")
                    .ok_or_else(|| Ec2Error::missing("Filter.N.Name"))?;
                let mut values: Vec<(u64, &str)> = group
                    .iter()
                    .filter_map(|(member, value)| {
                        let m = member.strip_prefix("Value.")?.parse::<u64>().ok()?;
                        Some((m, *value))
                    })
                    .collect();
                values.sort_by_key(|(m, _)| *m);
                Ok(Filter {
                    name: name.to_string(),
                    values: values.into_iter().map(|(_, v)| v.to_string()).collect(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str, body: &str) -> Params {
        Params::merge(
            decode_form(query).expect("query decodes"),
            decode_form(body).expect("body decodes"),
        )
    }

    #[test]
    fn form_decoding_as_the_gem_and_botocore_encode() {
        let pairs = decode_form("a=b+c&d=%7E%2F%C3%A9&e&&f=").expect("decodes");
        let expect: Vec<(String, String)> = [("a", "b c"), ("d", "~/é"), ("e", ""), ("f", "")]
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs, expect);
        assert_eq!(
            decode_form("x=100%").expect("lone percent kept"),
            vec![("x".to_string(), "100%".to_string())]
        );
        assert!(decode_form("x=%FF").is_err());
    }

    #[test]
    fn body_wins_over_query() {
        let p = params(
            "Action=DescribeImages&Version=2009-11-30",
            "Action=DescribeInstances",
        );
        assert_eq!(p.get("Action"), Some("DescribeInstances"));
        assert_eq!(p.get("Version"), Some("2009-11-30"));
        assert_eq!(p.pairs().len(), 2);
    }

    #[test]
    fn lists_in_numeric_order_of_any_suffix() {
        // botocore's captured body (spec/EC2.md §9.1), with 2.x's `.01`.
        let p = params(
            "",
            "Action=DescribeInstances&InstanceId.10=i-10&InstanceId.2=i-2&InstanceId.01=i-1&InstanceIdX=no",
        );
        assert_eq!(p.list("InstanceId"), ["i-1", "i-2", "i-10"]);
        assert!(p.list("ImageId").is_empty());
    }

    #[test]
    fn filters_as_botocore_sends_them() {
        let p = params(
            "",
            "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-00000005&InstanceId.2=i-00000007&Filter.1.Name=instance-state-name&Filter.1.Value.1=running&Filter.1.Value.2=pending&Filter.2.Name=tag%3AOwner&Filter.2.Value.1=al*",
        );
        let filters = p.filters().expect("filters");
        assert_eq!(
            filters,
            [
                Filter {
                    name: "instance-state-name".into(),
                    values: vec!["running".into(), "pending".into()],
                },
                Filter {
                    name: "tag:Owner".into(),
                    values: vec!["al*".into()],
                },
            ]
        );
        assert!(filters[0].matches("pending"));
        assert!(!filters[0].matches("stopped"));
        assert!(filters[1].matches("alice"));
        assert!(!filters[1].matches("bob"));
        assert!(params("", "Filter.1.Value.1=x").filters().is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*", ""));
        assert!(wildcard("a?c", "abc"));
        assert!(wildcard("a*c*e", "abcde"));
        assert!(!wildcard("a*c", "abd"));
        assert!(wildcard("exact", "exact"));
    }

    #[test]
    fn typed_reads() {
        let p = params("DryRun=TRUE&MinCount=2&MaxCount=x&Empty=", "");
        assert!(p.flag("DryRun").expect("flag"));
        assert!(!p.flag("Absent").expect("flag"));
        assert_eq!(p.number("MinCount").expect("number"), Some(2));
        assert!(p.number("MaxCount").is_err());
        assert!(p.required("Empty").is_err());
        assert!(p.required("Absent").is_err());
        let p = params("DryRun=yes", "");
        assert!(p.flag("DryRun").is_err());
    }

    #[test]
    fn groups_of_tags() {
        let p = params("", "Tag.2.Key=b&Tag.1.Key=a&Tag.1.Value=1&ResourceId.1=i-1");
        let groups = p.groups("Tag");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].get("Key"), Some(&"a"));
        assert_eq!(groups[0].get("Value"), Some(&"1"));
        assert_eq!(groups[1].get("Value"), None);
    }
}
