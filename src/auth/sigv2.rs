//! EC2 Query Signature Versions 1 and 2 (spec/EC2.md §3), as pure
//! functions: the string to sign, the HMAC, and the check of a received
//! signature against every host/path candidate of §3.3.
//!
//! Not S3's SigV2: EC2 signs the method, host, path and canonical query
//! string, never headers. The parameters given here are the merged request
//! parameters (query, form body or multipart text fields) without the
//! uploaded `file`; `Signature` is left out of what is signed.
//!
//! May use: `super` (the auth error and [`Secret`]).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::secret::{constant_time_eq, Secret};
use super::{Error, Result};

/// The HMAC of a V2 signature (`SignatureMethod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureMethod {
    /// `HmacSHA1`.
    HmacSha1,
    /// `HmacSHA256`.
    HmacSha256,
}

impl SignatureMethod {
    /// Reads `SignatureMethod`. Absent means `HmacSHA1`, what econe 1.4
    /// always used; any other name is refused (econe fell back to SHA1,
    /// which would let a client believe it had a stronger signature).
    pub fn from_param(value: Option<&str>) -> Result<Self> {
        match value {
            None | Some("HmacSHA1") => Ok(SignatureMethod::HmacSha1),
            Some("HmacSHA256") => Ok(SignatureMethod::HmacSha256),
            Some(_) => Err(Error::Malformed(
                "SignatureMethod must be HmacSHA1 or HmacSHA256",
            )),
        }
    }
}

/// RFC 3986 percent-encoding as SigV2 and SigV4 want it: unreserved
/// `A-Z a-z 0-9 - _ . ~` literal, every other byte of the UTF-8 form as
/// `%XX` with upper-case hex (so a space is `%20`, never `+`).
pub fn encode(text: &str) -> String {
    encode_with(text, false)
}

/// [`encode`] keeping `/` literal, for SigV4's canonical URI.
pub fn encode_path(text: &str) -> String {
    encode_with(text, true)
}

fn encode_with(text: &str, keep_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() + 8);
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The canonical query string of §3.2: every parameter but `Signature`,
/// names and values encoded, sorted by encoded name (then value) in byte
/// order, joined as `name=value` with `&`.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| name != "Signature")
        .map(|(name, value)| (encode(name), encode(value)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The V2 string to sign: method, lower-case host, path (`/` when empty)
/// and canonical query, joined by `\n`, no trailing newline.
pub fn string_to_sign(method: &str, host: &str, path: &str, params: &[(String, String)]) -> String {
    let path = if path.is_empty() { "/" } else { path };
    format!(
        "{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        host.to_ascii_lowercase(),
        path,
        canonical_query(params)
    )
}

/// The V1 string to sign: every parameter but `Signature`, sorted by name
/// case-insensitively, names and values concatenated, nothing encoded.
pub fn string_to_sign_v1(params: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = params
        .iter()
        .filter(|(name, _)| name != "Signature")
        .collect();
    // Stable, so names equal but for case keep the request's order, as
    // the Ruby gem's `sort_by { |k, _| k.downcase }` did.
    pairs.sort_by_key(|(name, _)| name.to_ascii_lowercase());
    pairs.iter().fold(String::new(), |mut out, (name, value)| {
        out.push_str(name);
        out.push_str(value);
        out
    })
}

/// The raw HMAC of `data` under `secret`.
pub fn mac(method: SignatureMethod, secret: &Secret, data: &str) -> Vec<u8> {
    match method {
        SignatureMethod::HmacSha1 => {
            let mut m = <Hmac<Sha1> as Mac>::new_from_slice(secret.expose())
                .expect("HMAC takes keys of any length");
            m.update(data.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        SignatureMethod::HmacSha256 => {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose())
                .expect("HMAC takes keys of any length");
            m.update(data.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// `base64(HMAC(secret, data))`: the `Signature` a client sends.
pub fn sign(method: SignatureMethod, secret: &Secret, data: &str) -> String {
    STANDARD.encode(mac(method, secret, data))
}

/// The received `Signature` as bytes. A `+` sent unescaped in a query
/// string decodes to a space; it is put back before decoding.
fn received_bytes(signature: &str) -> Result<Vec<u8>> {
    let fixed = signature.trim().replace(' ', "+");
    STANDARD
        .decode(fixed.as_bytes())
        .map_err(|_| Error::Invalid)
}

/// What a V1 or V2 check needs of the request.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The HTTP method as received.
    pub method: &'a str,
    /// The request path as received.
    pub path: &'a str,
    /// The host strings to try (§3.3): the `Host` header, it without its
    /// port, configured names with and without port.
    pub hosts: &'a [String],
    /// The merged parameters (`Signature` among them, the upload not).
    pub params: &'a [(String, String)],
}

impl Request<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Checks a V2 signature: accepted when it matches the string to sign of
/// any host candidate, with the actual path or `/`. Every comparison is
/// constant-time; all candidates are computed whatever matched.
pub fn verify(request: &Request<'_>, secret: &Secret) -> Result<()> {
    let method = SignatureMethod::from_param(request.param("SignatureMethod"))?;
    let received = received_bytes(request.param("Signature").ok_or(Error::Missing)?)?;
    let mut paths = vec![request.path];
    if request.path != "/" {
        paths.push("/");
    }
    let mut matched = false;
    for host in request.hosts {
        for path in &paths {
            let expected = mac(
                method,
                secret,
                &string_to_sign(request.method, host, path, request.params),
            );
            matched |= constant_time_eq(&expected, &received);
        }
    }
    if matched {
        Ok(())
    } else {
        Err(Error::Invalid)
    }
}

/// Checks a V1 signature (always HMAC-SHA1).
pub fn verify_v1(request: &Request<'_>, secret: &Secret) -> Result<()> {
    let received = received_bytes(request.param("Signature").ok_or(Error::Missing)?)?;
    let expected = mac(
        SignatureMethod::HmacSha1,
        secret,
        &string_to_sign_v1(request.params),
    );
    if constant_time_eq(&expected, &received) {
        Ok(())
    } else {
        Err(Error::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "4478db59d30855454ece114e8ccfa5563d21c9bd";

    fn secret() -> Secret {
        Secret::new(SECRET)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// The parameters of the §3.2 vectors.
    fn v2_params(method: &str) -> Vec<(String, String)> {
        pairs(&[
            ("Action", "DescribeInstances"),
            ("AWSAccessKeyId", "alice"),
            ("SignatureMethod", method),
            ("SignatureVersion", "2"),
            ("Timestamp", "2010-01-15T10:20:30Z"),
            ("Version", "2009-11-30"),
        ])
    }

    #[test]
    fn v1_published_vector() {
        let params = pairs(&[
            ("Action", "DescribeImages"),
            ("AWSAccessKeyId", "alice"),
            ("SignatureVersion", "1"),
            ("Timestamp", "2010-01-15T10:20:30Z"),
            ("Version", "2008-12-01"),
        ]);
        let text = string_to_sign_v1(&params);
        assert_eq!(
            text,
            "ActionDescribeImagesAWSAccessKeyIdaliceSignatureVersion1Timestamp2010-01-15T10:20:30ZVersion2008-12-01"
        );
        assert_eq!(
            sign(SignatureMethod::HmacSha1, &secret(), &text),
            "qkQzVcxHtEauJFo1Brfuxu08s3g="
        );
    }

    #[test]
    fn v2_canonical_query_sorts_upper_case_first() {
        assert_eq!(
            canonical_query(&v2_params("HmacSHA256")),
            "AWSAccessKeyId=alice&Action=DescribeInstances&SignatureMethod=HmacSHA256&SignatureVersion=2&Timestamp=2010-01-15T10%3A20%3A30Z&Version=2009-11-30"
        );
    }

    #[test]
    fn v2_published_vectors() {
        let sha256 = v2_params("HmacSHA256");
        let text = string_to_sign("POST", "cloud.example.org:4567", "/", &sha256);
        assert_eq!(
            sign(SignatureMethod::HmacSha256, &secret(), &text),
            "pnG56h223allOHgrPr0WbuNGG46Z90PkKLtHn6uavmg="
        );
        let text = string_to_sign("POST", "cloud.example.org", "/", &sha256);
        assert_eq!(
            sign(SignatureMethod::HmacSha256, &secret(), &text),
            "EvjDaRymOW7a9zf+rNE3LWvtM1CPoc95ZO7Uaw+3KIY="
        );
        let sha1 = v2_params("HmacSHA1");
        let text = string_to_sign("POST", "cloud.example.org", "/", &sha1);
        assert_eq!(
            sign(SignatureMethod::HmacSha1, &secret(), &text),
            "zSBttGKmTnIOszMxajBt9Nkdo5I="
        );
    }

    #[test]
    fn encoding_published_check() {
        assert_eq!(encode("a b~c*d/é+"), "a%20b~c%2Ad%2F%C3%A9%2B");
        assert_eq!(encode_path("/a b/c"), "/a%20b/c");
    }

    fn signed(method: &str, host: &str, path: &str, sig_method: &str) -> Vec<(String, String)> {
        let mut params = v2_params(sig_method);
        let m = SignatureMethod::from_param(Some(sig_method)).expect("method");
        let sig = sign(m, &secret(), &string_to_sign(method, host, path, &params));
        params.push(("Signature".into(), sig));
        params
    }

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn verify_tries_every_host_candidate() {
        let candidates = hosts(&["cloud.example.org:4567", "cloud.example.org"]);
        // The gem signs without the port; libcloud with it.
        for host in [
            "cloud.example.org",
            "cloud.example.org:4567",
            "CLOUD.example.org",
        ] {
            let params = signed("POST", host, "/", "HmacSHA256");
            let req = Request {
                method: "POST",
                path: "/",
                hosts: &candidates,
                params: &params,
            };
            assert_eq!(verify(&req, &secret()), Ok(()), "{host}");
        }
    }

    #[test]
    fn verify_refuses_a_wrong_host_method_or_secret() {
        let candidates = hosts(&["cloud.example.org:4567", "cloud.example.org"]);
        let params = signed("POST", "evil.example.org", "/", "HmacSHA1");
        let req = Request {
            method: "POST",
            path: "/",
            hosts: &candidates,
            params: &params,
        };
        assert_eq!(verify(&req, &secret()), Err(Error::Invalid));

        let params = signed("GET", "cloud.example.org", "/", "HmacSHA1");
        let req = Request {
            method: "POST",
            path: "/",
            hosts: &candidates,
            params: &params,
        };
        assert_eq!(verify(&req, &secret()), Err(Error::Invalid));

        let params = signed("POST", "cloud.example.org", "/", "HmacSHA1");
        let req = Request {
            method: "POST",
            path: "/",
            hosts: &candidates,
            params: &params,
        };
        assert_eq!(
            verify(&req, &Secret::new("0".repeat(40))),
            Err(Error::Invalid)
        );
    }

    #[test]
    fn verify_refuses_a_tampered_parameter() {
        let candidates = hosts(&["cloud.example.org"]);
        let mut params = signed("POST", "cloud.example.org", "/", "HmacSHA256");
        params[0].1 = "TerminateInstances".into();
        let req = Request {
            method: "POST",
            path: "/",
            hosts: &candidates,
            params: &params,
        };
        assert_eq!(verify(&req, &secret()), Err(Error::Invalid));
        // An added parameter is tampering too.
        let mut params = signed("POST", "cloud.example.org", "/", "HmacSHA256");
        params.push(("InstanceId.1".into(), "i-00000001".into()));
        let req = Request {
            params: &params,
            ..req
        };
        assert_eq!(verify(&req, &secret()), Err(Error::Invalid));
    }

    #[test]
    fn verify_accepts_the_root_path_and_plus_turned_to_space() {
        let candidates = hosts(&["cloud.example.org"]);
        // econe signs "/" even when served under a prefix.
        let params = signed("POST", "cloud.example.org", "/", "HmacSHA256");
        let req = Request {
            method: "POST",
            path: "/ec2",
            hosts: &candidates,
            params: &params,
        };
        assert_eq!(verify(&req, &secret()), Ok(()));
        // The host-only SHA256 vector has a '+': sent raw in a query string
        // it arrives as a space.
        let mut params = signed("POST", "cloud.example.org", "/", "HmacSHA256");
        let sig = params.pop().expect("signature").1;
        assert!(sig.contains('+'));
        params.push(("Signature".into(), sig.replace('+', " ")));
        let req = Request {
            params: &params,
            ..req
        };
        assert_eq!(verify(&req, &secret()), Ok(()));
    }

    #[test]
    fn verify_refuses_unknown_methods_and_missing_signatures() {
        let candidates = hosts(&["h"]);
        let mut params = v2_params("HmacMD5");
        params.push(("Signature".into(), "AAAA".into()));
        let req = Request {
            method: "GET",
            path: "/",
            hosts: &candidates,
            params: &params,
        };
        assert!(matches!(verify(&req, &secret()), Err(Error::Malformed(_))));
        let params = v2_params("HmacSHA1");
        let req = Request {
            params: &params,
            ..req
        };
        assert_eq!(verify(&req, &secret()), Err(Error::Missing));
        let mut params = v2_params("HmacSHA1");
        params.push(("Signature".into(), "not base64 !".into()));
        let req = Request {
            params: &params,
            ..req
        };
        assert_eq!(verify(&req, &secret()), Err(Error::Invalid));
    }

    #[test]
    fn v1_verify_round_trip_and_tamper() {
        let params = pairs(&[
            ("Action", "DescribeImages"),
            ("AWSAccessKeyId", "alice"),
            ("SignatureVersion", "1"),
            ("Timestamp", "2010-01-15T10:20:30Z"),
            ("Version", "2008-12-01"),
            ("Signature", "qkQzVcxHtEauJFo1Brfuxu08s3g="),
        ]);
        let candidates = hosts(&["h"]);
        let req = Request {
            method: "POST",
            path: "/",
            hosts: &candidates,
            params: &params,
        };
        assert_eq!(verify_v1(&req, &secret()), Ok(()));
        let mut tampered = params.clone();
        tampered[0].1 = "DescribeInstances".into();
        let req = Request {
            params: &tampered,
            ..req
        };
        assert_eq!(verify_v1(&req, &secret()), Err(Error::Invalid));
    }
}
