//! Hrefs (spec/OCCI.md §1.1): every entry names itself as
//! `<base>/compute/<id>` (`/network/`, `/storage/`, `/instance_type/`),
//! with no trailing slash. The base is `PUBLIC_URL` when configured, else
//! `<scheme>://<Host header>` from the request (scheme from
//! `X-Forwarded-Proto`, else `http`: cloudgate's listener is plain HTTP),
//! else the listener's address. libcloud takes an id as "everything after
//! the first `/compute/`", which is why the base may never contain one
//! (the config refuses such a `PUBLIC_URL`; a Host header cannot).
//!
//! Hrefs read from requests may be absolute with any host, or relative
//! (libcloud 2.x sends `/storage/3`): the id is the last non-empty path
//! segment.
//!
//! May use: actix's request type. Pure otherwise.

use actix_web::HttpRequest;

/// Builds the hrefs of one response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hrefs {
    base: String,
}

impl Hrefs {
    /// Hrefs under `base` (no trailing `/`).
    pub fn new(base: impl Into<String>) -> Self {
        let base: String = base.into();
        Hrefs {
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// The base for one request, by the rules of the module header.
    pub fn of(req: &HttpRequest, public_url: Option<&str>) -> Self {
        if let Some(url) = public_url {
            return Hrefs::new(url);
        }
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let scheme = match header("x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        match header("host").filter(|h| is_host(h)) {
            Some(host) => Hrefs::new(format!("{scheme}://{host}")),
            None => Hrefs::new(format!("{scheme}://{}", req.app_config().local_addr())),
        }
    }

    /// `<base>/compute/<id>`.
    pub fn compute(&self, id: u64) -> String {
        format!("{}/compute/{id}", self.base)
    }

    /// `<base>/network/<id>`.
    pub fn network(&self, id: u64) -> String {
        format!("{}/network/{id}", self.base)
    }

    /// `<base>/storage/<id>`.
    pub fn storage(&self, id: u64) -> String {
        format!("{}/storage/{id}", self.base)
    }

    /// `<base>/storage/`: what OpenNebula 2.x rendered for a volatile disk,
    /// which has no image but must carry an href (libcloud 2.x reads it).
    pub fn no_storage(&self) -> String {
        format!("{}/storage/", self.base)
    }

    /// `<base>/instance_type/<name>`, the name percent-encoded.
    pub fn instance_type(&self, name: &str) -> String {
        format!("{}/instance_type/{}", self.base, encode_segment(name))
    }
}

/// Whether a Host header value can go into a URL as it is: a name or
/// address and an optional port, nothing that could add a path.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:[]".contains(c))
}

/// A path segment with everything but RFC 3986's unreserved characters
/// percent-encoded.
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The id an href names: its last non-empty path segment, query and
/// fragment ignored (`http://h:4567/storage/3`, `/storage/3/`,
/// `storage/3`, `3`). `None` when nothing is left.
pub fn last_segment(href: &str) -> Option<&str> {
    let href = href.trim();
    let path = href.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/').find(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_configured_base_wins_and_loses_its_trailing_slash() {
        let req = TestRequest::default()
            .insert_header(("host", "ignored:1"))
            .to_http_request();
        let hrefs = Hrefs::of(&req, Some("https://cloud.example.org/"));
        assert_eq!(hrefs.compute(7), "https://cloud.example.org/compute/7");
    }

    #[test]
    fn without_a_base_the_host_header_and_forwarded_scheme_build_it() {
        let req = TestRequest::default()
            .insert_header(("host", "cloud.example.org:4567"))
            .to_http_request();
        let hrefs = Hrefs::of(&req, None);
        assert_eq!(hrefs.network(1), "http://cloud.example.org:4567/network/1");
        assert_eq!(hrefs.storage(3), "http://cloud.example.org:4567/storage/3");
        assert_eq!(hrefs.no_storage(), "http://cloud.example.org:4567/storage/");
        let req = TestRequest::default()
            .insert_header(("host", "[::1]:8443"))
            .insert_header(("x-forwarded-proto", "HTTPS"))
            .to_http_request();
        assert_eq!(
            Hrefs::of(&req, None).compute(2),
            "https://[::1]:8443/compute/2"
        );
    }

    #[test]
    fn a_host_header_that_could_add_a_path_is_not_used() {
        let req = TestRequest::default()
            .insert_header(("host", "evil/compute/9"))
            .to_http_request();
        let href = Hrefs::of(&req, None).compute(1);
        assert!(!href.contains("evil"), "{href}");
        assert!(href.ends_with("/compute/1"), "{href}");
        assert_eq!(href.matches("/compute/").count(), 1, "{href}");
    }

    #[test]
    fn instance_type_names_are_encoded() {
        let hrefs = Hrefs::new("http://h:1");
        assert_eq!(
            hrefs.instance_type("small"),
            "http://h:1/instance_type/small"
        );
        assert_eq!(
            hrefs.instance_type("a b/c"),
            "http://h:1/instance_type/a%20b%2Fc"
        );
    }

    #[test]
    fn ids_are_the_last_non_empty_segment() {
        for (href, id) in [
            ("http://cloud.example.org:4567/storage/4", Some("4")),
            ("https://other.host/x/network/2/", Some("2")),
            ("/storage/3", Some("3")),
            ("storage/3?x=1#f", Some("3")),
            ("12", Some("12")),
            (" /compute/7 ", Some("7")),
            ("/", None),
            ("", None),
        ] {
            assert_eq!(last_segment(href), id, "{href}");
        }
    }
}
