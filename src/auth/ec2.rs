//! EC2 request authentication (spec/EC2.md §2, §3, §9): picks the scheme a
//! request uses (SigV4 header, SigV4 presigned query, SigV2, SigV1), checks
//! its signature with the user's stored secret, then its time window, and
//! answers the [`Caller`].
//!
//! The request comes in as plain data ([`SignedRequest`]) and "now" as a
//! parameter, so all of it is tested without a server or a clock. The
//! signature is checked before the time window, so that only a correctly
//! signed request learns that it is too old; an unknown or disabled user
//! costs the same work as a known one and fails the same way.
//!
//! A streamed body (econe-upload's multipart UploadImage, §6.1) is not at
//! hand when the request is checked. SigV1/V2 never sign it; SigV4 signs
//! the whole raw body through its payload hash (§9.2 step 4.6), so its
//! check is split: what can be checked comes first (with a claimed
//! `X-Amz-Content-Sha256`, the signature itself; without one, the user,
//! the credential scope and the time window), and a [`Deferred`] finishes
//! it with the hash of the body once the front has read it, before the
//! front keeps anything.
//!
//! May use: `crate::core` (the user pool) and the rest of `auth`.

use std::time::{Duration, SystemTime};

use super::secret::Secret;
use super::sigv4::{self, Authorization, Presigned};
use super::time::{self, Window};
use super::{sigv2, Error, Result};
use crate::core::{Caller, Core};

/// What a signature check needs of an HTTP request.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path as received (percent-encoded).
    pub path: &'a str,
    /// Every header, names lower-case, one entry per occurrence.
    pub headers: &'a [(String, String)],
    /// The query string's parameters, decoded.
    pub query: &'a [(String, String)],
    /// The merged parameters (query, then form body or multipart text
    /// fields), without an uploaded file.
    pub params: &'a [(String, String)],
    /// The raw body, when it was read whole; `None` for a streamed
    /// upload, whose file part SigV1/V2 do not cover and SigV4 checks at
    /// its end ([`Deferred`]).
    pub body: Option<&'a [u8]>,
}

impl SignedRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The server's side of the check.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// How far `Timestamp` / `X-Amz-Date` may be from now (`SIGNATURE_SKEW`;
    /// zero turns the check off).
    pub skew: Duration,
    /// Host names clients may have signed besides the `Host` header (from
    /// `PUBLIC_URL`), with or without a port.
    pub public_hosts: Vec<String>,
}

/// Which signature a request carries.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scheme {
    V1,
    V2,
    V4Header(Authorization),
    V4Query(Presigned),
}

impl Scheme {
    fn of(request: &SignedRequest<'_>) -> Result<Self> {
        if let Some(header) = request.header("authorization") {
            if header.trim_start().starts_with("AWS4-") {
                return Authorization::from_header(header).map(Scheme::V4Header);
            }
        }
        if let Some(presigned) = Presigned::from_query(request.query)? {
            return Ok(Scheme::V4Query(presigned));
        }
        if request.param("Signature").is_none() && request.param("AWSAccessKeyId").is_none() {
            return Err(Error::Missing);
        }
        match request.param("SignatureVersion") {
            Some("2") | None => Ok(Scheme::V2),
            Some("1") => Ok(Scheme::V1),
            Some(_) => Err(Error::Malformed(
                "SignatureVersion must be 1 or 2, or use SigV4",
            )),
        }
    }

    fn access_key<'r>(&'r self, request: &'r SignedRequest<'_>) -> Result<&'r str> {
        match self {
            Scheme::V1 | Scheme::V2 => request.param("AWSAccessKeyId").ok_or(Error::Missing),
            Scheme::V4Header(a) => Ok(&a.credential.access_key),
            Scheme::V4Query(p) => Ok(&p.authorization.credential.access_key),
        }
    }
}

/// Whether the request is signed with SigV4, whose signature covers the
/// body (its payload hash); told from the headers and the query alone, as
/// [`verify_with`] tells it, so that a streamed body is hashed only when
/// its hash will be checked.
pub fn signs_body(headers: &[(String, String)], query: &[(String, String)]) -> bool {
    let request = SignedRequest {
        method: "",
        path: "",
        headers,
        query,
        params: &[],
        body: None,
    };
    matches!(
        Scheme::of(&request),
        Ok(Scheme::V4Header(_) | Scheme::V4Query(_))
    )
}

/// The SigV2 host strings (§3.3): the `Host` header as received and
/// without its port, and each configured name with and without its port;
/// lower-case, without repeats.
pub fn host_candidates(host_header: Option<&str>, public_hosts: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |host: &str| {
        let host = host.trim().to_ascii_lowercase();
        if host.is_empty() {
            return;
        }
        let bare = strip_port(&host).to_string();
        for h in [host, bare] {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    };
    if let Some(h) = host_header {
        add(h);
    }
    for h in public_hosts {
        add(h);
    }
    out
}

/// `host:port` → `host`, leaving an IPv6 literal's colons alone.
fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i)
            if !host[i..].contains(']') && host[i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            &host[..i]
        }
        _ => host,
    }
}

/// Where a SigV4 request's payload hash comes from (§9.2 step 4.6).
#[derive(Debug, PartialEq, Eq)]
enum Payload {
    /// Known before the body is needed: the hash of the whole body, or the
    /// `X-Amz-Content-Sha256` claimed for it — already compared with the
    /// whole body, or, when `streamed`, to be compared with it at its end.
    Signed { hash: String, streamed: bool },
    /// A streamed body without a claimed hash: the signature itself can
    /// only be checked once the body's hash is known.
    Streamed,
}

/// The SigV4 payload hash: the body's SHA-256, or the client's
/// `X-Amz-Content-Sha256`, which must be the body's (checked now for a
/// whole body, at its end for a streamed one). `UNSIGNED-PAYLOAD` is
/// taken only for an empty body, since an EC2 body carries the parameters
/// and leaving it unsigned would let them be changed; a streamed
/// (multipart) body is never empty.
fn payload(request: &SignedRequest<'_>) -> Result<Payload> {
    let claimed = request.header("x-amz-content-sha256").map(str::trim);
    match (claimed, request.body) {
        (Some("UNSIGNED-PAYLOAD"), Some(b"")) => Ok(Payload::Signed {
            hash: "UNSIGNED-PAYLOAD".to_string(),
            streamed: false,
        }),
        (Some("UNSIGNED-PAYLOAD"), _) => Err(Error::Malformed(
            "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD leaves the body, and so its parameters, unsigned; send the body's SHA-256 or no such header",
        )),
        (Some(claimed), _) if !sigv4::is_payload_hash(claimed) => Err(Error::Malformed(
            "X-Amz-Content-Sha256 must be the body's SHA-256 in hex",
        )),
        (Some(claimed), Some(body)) if !claimed.eq_ignore_ascii_case(&sigv4::payload_hash(body)) => {
            Err(Error::Invalid)
        }
        (Some(claimed), body) => Ok(Payload::Signed {
            hash: claimed.to_string(),
            streamed: body.is_none(),
        }),
        (None, Some(body)) => Ok(Payload::Signed {
            hash: sigv4::payload_hash(body),
            streamed: false,
        }),
        (None, None) => Ok(Payload::Streamed),
    }
}

/// What is left to check of a SigV4 request whose body is streamed
/// (`body: None`): the front reads the body, hashes all of its raw bytes
/// ([`sigv4::PayloadHasher`]) and calls [`Deferred::finish`] before it
/// keeps anything the body brought. Until then the request is not
/// authenticated.
#[derive(Debug)]
#[must_use = "a streamed SigV4 request is authenticated only once its body's hash is checked"]
pub struct Deferred(Pending);

#[derive(Debug)]
enum Pending {
    /// The signature covered this claimed `X-Amz-Content-Sha256`; the body
    /// must have that hash.
    Claimed(String),
    /// No hash was claimed: the signature is checked with the body's.
    Signature(Box<LateSignature>),
}

/// A SigV4 request kept, as far as it is signed, until its body is read.
#[derive(Debug)]
struct LateSignature {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    /// Only the headers `SignedHeaders` names.
    headers: Vec<(String, String)>,
    authorization: Authorization,
    amz_date: String,
    secret: Secret,
}

impl Deferred {
    /// Completes the check with `body_hash`, the hex SHA-256 of the whole
    /// raw body as received: a hash other than the one signed, or a
    /// signature that does not match, is [`Error::Invalid`].
    pub fn finish(self, body_hash: &str) -> Result<()> {
        match self.0 {
            Pending::Claimed(claimed) if claimed.eq_ignore_ascii_case(body_hash) => Ok(()),
            Pending::Claimed(_) => Err(Error::Invalid),
            Pending::Signature(late) => {
                let request = sigv4::Request {
                    method: &late.method,
                    path: &late.path,
                    query: &late.query,
                    headers: &late.headers,
                    payload_hash: body_hash,
                };
                sigv4::verify(&request, &late.authorization, &late.amz_date, &late.secret)
            }
        }
    }
}

/// The request as SigV4 signs it, with its payload hash.
fn v4_request<'a>(request: &'a SignedRequest<'_>, payload_hash: &'a str) -> sigv4::Request<'a> {
    sigv4::Request {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: request.headers,
        payload_hash,
    }
}

/// The SigV4 time: `X-Amz-Date`, else the `Date` header turned into the
/// basic format.
fn amz_date(request: &SignedRequest<'_>) -> Result<(String, time::UnixTime)> {
    if let Some(value) = request.header("x-amz-date") {
        let at = time::parse_amz_date(value)?;
        return Ok((value.trim().to_string(), at));
    }
    let date = request
        .header("date")
        .ok_or(Error::Malformed("a SigV4 request needs X-Amz-Date"))?;
    let at = time::parse_http_date(date)?;
    Ok((time::format_amz_date(at), at))
}

/// Checks the request's signature with the secret `secret_of` gives for
/// its access key (`None`: no such user, which fails like a wrong
/// signature after the same work), then its time. Answers the access key,
/// and, for a SigV4 request whose body is streamed, what is left to check
/// once the body is read ([`Deferred`]; `None` for every other request).
pub fn verify_with(
    request: &SignedRequest<'_>,
    policy: &Policy,
    now: SystemTime,
    secret_of: impl FnOnce(&str) -> Result<Option<Secret>>,
) -> Result<(String, Option<Deferred>)> {
    let scheme = Scheme::of(request)?;
    let access_key = scheme.access_key(request)?.to_string();
    let found = secret_of(&access_key)?;
    let known = found.is_some();
    // An unknown user is checked against a secret no user has, so it
    // costs the same and fails as a wrong signature does.
    let secret = found.unwrap_or_else(|| Secret::new(vec![0u8; 40]));
    let window = Window::new(now, policy.skew);
    let deferred = match &scheme {
        Scheme::V1 | Scheme::V2 => {
            let hosts = host_candidates(request.header("host"), &policy.public_hosts);
            let v2 = sigv2::Request {
                method: request.method,
                path: request.path,
                hosts: &hosts,
                params: request.params,
            };
            if scheme == Scheme::V1 {
                sigv2::verify_v1(&v2, &secret)?;
            } else {
                sigv2::verify(&v2, &secret)?;
            }
            if !known {
                return Err(Error::Invalid);
            }
            let timestamp = request.param("Timestamp");
            let expires = request.param("Expires");
            if let Some(t) = timestamp {
                window.check_signed_at(time::parse_iso8601(t)?)?;
            }
            if let Some(e) = expires {
                window.check_expires(time::parse_iso8601(e)?)?;
            }
            if timestamp.is_none() && expires.is_none() && window.enforced() {
                return Err(Error::Malformed(
                    "a signed request needs Timestamp or Expires",
                ));
            }
            None
        }
        Scheme::V4Header(authorization) => {
            let (date, at) = amz_date(request)?;
            verify_v4(request, authorization, &date, (secret, known), || {
                window.check_signed_at(at)
            })?
        }
        Scheme::V4Query(presigned) => {
            let at = time::parse_amz_date(&presigned.amz_date)?;
            verify_v4(
                request,
                &presigned.authorization,
                &presigned.amz_date,
                (secret, known),
                || {
                    window.check_not_future(at)?;
                    let expires = i64::try_from(presigned.expires).unwrap_or(i64::MAX);
                    window.check_expires(at.saturating_add(expires))
                },
            )?
        }
    };
    Ok((access_key, deferred))
}
/// The SigV4 check shared by the header and presigned forms, given the
/// user's secret (and whether the user exists) and the request's own time
/// check. With the payload hash known, the signature is checked first and
/// the time after it, as for SigV2. For a streamed body without a claimed
/// hash the signature must wait for the body; everything else is checked
/// first — the user exists, the scope's date is the request's, the time
/// window — so that an unknown key or a stale request costs no upload.
fn verify_v4(
    request: &SignedRequest<'_>,
    authorization: &Authorization,
    amz_date: &str,
    (secret, known): (Secret, bool),
    check_time: impl FnOnce() -> Result<()>,
) -> Result<Option<Deferred>> {
    match payload(request)? {
        Payload::Signed { hash, streamed } => {
            sigv4::verify(
                &v4_request(request, &hash),
                authorization,
                amz_date,
                &secret,
            )?;
            if !known {
                return Err(Error::Invalid);
            }
            check_time()?;
            Ok(streamed.then(|| Deferred(Pending::Claimed(hash))))
        }
        Payload::Streamed => {
            if !known {
                return Err(Error::Invalid);
            }
            sigv4::check_scope_date(amz_date, &authorization.credential)?;
            check_time()?;
            let headers = request
                .headers
                .iter()
                .filter(|(name, _)| authorization.signed_headers.contains(name))
                .cloned()
                .collect();
            Ok(Some(Deferred(Pending::Signature(Box::new(
                LateSignature {
                    method: request.method.to_string(),
                    path: request.path.to_string(),
                    query: request.query.to_vec(),
                    headers,
                    authorization: authorization.clone(),
                    amz_date: amz_date.to_string(),
                    secret,
                },
            )))))
        }
    }
}

/// Authenticates an EC2 request against the user pool: access key = user
/// name, secret = the stored `sha1_hex(password)` (§2). A disabled user
/// fails like an unknown one. For a SigV4 request with a streamed body the
/// caller is known but the request is not authenticated until the
/// [`Deferred`] check passes.
pub fn authenticate(
    core: &Core,
    request: &SignedRequest<'_>,
    policy: &Policy,
    now: SystemTime,
) -> Result<(Caller, Option<Deferred>)> {
    let mut user = None;
    let (_, deferred) = verify_with(request, policy, now, |name| {
        let found = core
            .users()
            .by_name(name)
            .map_err(|_| Error::Unavailable)?
            .filter(|u| u.enabled);
        let secret = found.as_ref().map(|u| Secret::new(u.password.as_bytes()));
        user = found;
        Ok(secret)
    })?;
    let user = user.ok_or(Error::Invalid)?;
    let caller = Caller {
        uid: user.id,
        name: user.name.clone(),
    };
    Ok((caller, deferred))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    use crate::auth::sigv2::{sign, string_to_sign, string_to_sign_v1, SignatureMethod};

    const SECRET: &str = "4478db59d30855454ece114e8ccfa5563d21c9bd";
    /// 2010-01-15T10:20:30Z.
    const T: u64 = 1_263_550_830;
    /// 2024-01-15T10:20:30Z, the SigV4 vector's time.
    const T4: u64 = 1_705_314_030;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn policy() -> Policy {
        Policy {
            skew: Duration::from_secs(900),
            public_hosts: vec!["cloud.example.org:4567".into()],
        }
    }

    fn secret_of(name: &str) -> Result<Option<Secret>> {
        Ok((name == "alice").then(|| Secret::new(SECRET)))
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// A V2 request as the econe gem sends it: POST, host without port.
    fn v2_params(extra: &[(&str, &str)], sign_host: &str) -> Vec<(String, String)> {
        let mut params = pairs(&[
            ("Action", "DescribeInstances"),
            ("AWSAccessKeyId", "alice"),
            ("SignatureMethod", "HmacSHA256"),
            ("SignatureVersion", "2"),
            ("Timestamp", "2010-01-15T10:20:30Z"),
            ("Version", "2009-11-30"),
        ]);
        params.extend(pairs(extra));
        let sig = sign(
            SignatureMethod::HmacSha256,
            &Secret::new(SECRET),
            &string_to_sign("POST", sign_host, "/", &params),
        );
        params.push(("Signature".into(), sig));
        params
    }

    /// A POST to `/` without a query string.
    fn post<'a>(
        headers: &'a [(String, String)],
        params: &'a [(String, String)],
        body: Option<&'a [u8]>,
    ) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            path: "/",
            headers,
            query: &[],
            params,
            body,
        }
    }

    fn check_v2(params: &[(String, String)], host: &str, now: u64) -> Result<String> {
        let headers = pairs(&[("host", host)]);
        let request = post(&headers, params, Some(b""));
        whole(verify_with(&request, &policy(), at(now), secret_of))
    }

    /// The access key of a request whose body was at hand: nothing may be
    /// left to check.
    fn whole(verified: Result<(String, Option<Deferred>)>) -> Result<String> {
        verified.map(|(key, deferred)| {
            assert!(deferred.is_none(), "{deferred:?}");
            key
        })
    }

    #[test]
    fn v2_accepts_the_gem_and_host_port_forms() {
        let params = v2_params(&[], "cloud.example.org");
        assert_eq!(
            check_v2(&params, "cloud.example.org:4567", T),
            Ok("alice".into())
        );
        let params = v2_params(&[], "cloud.example.org:4567");
        assert_eq!(
            check_v2(&params, "cloud.example.org:4567", T),
            Ok("alice".into())
        );
        // Behind a proxy the Host header differs; the configured name works.
        assert_eq!(check_v2(&params, "10.0.0.5:8080", T), Ok("alice".into()));
    }

    #[test]
    fn v2_wrong_host_tampered_and_unknown_user_are_invalid() {
        let params = v2_params(&[], "evil.example.org");
        assert_eq!(check_v2(&params, "127.0.0.1:4567", T), Err(Error::Invalid));
        let mut params = v2_params(&[], "cloud.example.org");
        params[0].1 = "TerminateInstances".into();
        assert_eq!(
            check_v2(&params, "cloud.example.org", T),
            Err(Error::Invalid)
        );
        let mut params = v2_params(&[], "cloud.example.org");
        params[1].1 = "mallory".into();
        assert_eq!(
            check_v2(&params, "cloud.example.org", T),
            Err(Error::Invalid)
        );
    }

    #[test]
    fn v2_replayed_after_the_window_is_expired() {
        let params = v2_params(&[], "cloud.example.org");
        assert_eq!(
            check_v2(&params, "cloud.example.org", T + 900),
            Ok("alice".into())
        );
        assert_eq!(
            check_v2(&params, "cloud.example.org", T + 901),
            Err(Error::Expired)
        );
        assert_eq!(
            check_v2(&params, "cloud.example.org", T - 901),
            Err(Error::Expired)
        );
    }

    #[test]
    fn v2_expires_and_missing_time() {
        let mut params = pairs(&[
            ("Action", "DescribeInstances"),
            ("AWSAccessKeyId", "alice"),
            ("Expires", "2010-01-15T10:30:00Z"),
            ("SignatureVersion", "2"),
        ]);
        let sig = sign(
            SignatureMethod::HmacSha1,
            &Secret::new(SECRET),
            &string_to_sign("POST", "cloud.example.org", "/", &params),
        );
        params.push(("Signature".into(), sig));
        assert_eq!(
            check_v2(&params, "cloud.example.org", T),
            Ok("alice".into())
        );
        assert_eq!(
            check_v2(&params, "cloud.example.org", T + 3600),
            Err(Error::Expired)
        );

        let mut params = pairs(&[("Action", "DescribeInstances"), ("AWSAccessKeyId", "alice")]);
        let sig = sign(
            SignatureMethod::HmacSha1,
            &Secret::new(SECRET),
            &string_to_sign("POST", "cloud.example.org", "/", &params),
        );
        params.push(("Signature".into(), sig));
        assert!(matches!(
            check_v2(&params, "cloud.example.org", T),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn v1_is_checked_too() {
        let mut params = pairs(&[
            ("Action", "DescribeImages"),
            ("AWSAccessKeyId", "alice"),
            ("SignatureVersion", "1"),
            ("Timestamp", "2010-01-15T10:20:30Z"),
            ("Version", "2008-12-01"),
        ]);
        assert_eq!(
            sign(
                SignatureMethod::HmacSha1,
                &Secret::new(SECRET),
                &string_to_sign_v1(&params)
            ),
            "qkQzVcxHtEauJFo1Brfuxu08s3g="
        );
        params.push(("Signature".into(), "qkQzVcxHtEauJFo1Brfuxu08s3g=".into()));
        assert_eq!(check_v2(&params, "anything", T), Ok("alice".into()));
        params[0].1 = "RunInstances".into();
        assert_eq!(check_v2(&params, "anything", T), Err(Error::Invalid));
    }

    #[test]
    fn no_credentials_and_unknown_versions() {
        let params = pairs(&[("Action", "DescribeInstances")]);
        assert_eq!(check_v2(&params, "h", T), Err(Error::Missing));
        let params = pairs(&[
            ("Action", "DescribeInstances"),
            ("AWSAccessKeyId", "alice"),
            ("SignatureVersion", "0"),
            ("Signature", "x"),
        ]);
        assert!(matches!(
            check_v2(&params, "h", T),
            Err(Error::Malformed(_))
        ));
    }

    fn v4_headers(host: &str, date: &str) -> Vec<(String, String)> {
        pairs(&[
            ("host", host),
            ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("x-amz-date", date),
            ("authorization", "AWS4-HMAC-SHA256 Credential=alice/20240115/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=d39b8fe8202f2375dcfa38d4e05df7655c16ce23f01fb122904636e48424fa84"),
        ])
    }

    fn check_v4(headers: &[(String, String)], body: &[u8], now: u64) -> Result<String> {
        let params = pairs(&[("Action", "DescribeInstances"), ("Version", "2016-11-15")]);
        let request = post(headers, &params, Some(body));
        whole(verify_with(&request, &policy(), at(now), secret_of))
    }

    const BODY: &[u8] = b"Action=DescribeInstances&Version=2016-11-15";

    #[test]
    fn v4_published_request_within_and_outside_the_window() {
        let headers = v4_headers("cloud.example.org:4567", "20240115T102030Z");
        assert_eq!(check_v4(&headers, BODY, T4), Ok("alice".into()));
        assert_eq!(check_v4(&headers, BODY, T4 + 900), Ok("alice".into()));
        assert_eq!(check_v4(&headers, BODY, T4 + 901), Err(Error::Expired));
        assert_eq!(check_v4(&headers, BODY, T4 - 901), Err(Error::Expired));
    }

    #[test]
    fn v4_tampered_wrong_host_and_content_hash() {
        let headers = v4_headers("cloud.example.org:4567", "20240115T102030Z");
        assert_eq!(
            check_v4(
                &headers,
                b"Action=TerminateInstances&Version=2016-11-15",
                T4
            ),
            Err(Error::Invalid)
        );
        let wrong_host = v4_headers("127.0.0.1:4567", "20240115T102030Z");
        assert_eq!(check_v4(&wrong_host, BODY, T4), Err(Error::Invalid));
        // A claimed body hash must be the body's.
        let mut claimed = headers.clone();
        claimed.push(("x-amz-content-sha256".into(), sigv4::payload_hash(b"other")));
        assert_eq!(check_v4(&claimed, BODY, T4), Err(Error::Invalid));
        let mut unsigned = headers.clone();
        unsigned.push(("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
        assert!(matches!(
            check_v4(&unsigned, BODY, T4),
            Err(Error::Malformed(_))
        ));
        let mut right = headers;
        right.push(("x-amz-content-sha256".into(), sigv4::payload_hash(BODY)));
        assert_eq!(check_v4(&right, BODY, T4), Ok("alice".into()));
    }

    const STREAMED: &[u8] = b"--b\r\nContent-Disposition: form-data; name=\"Action\"\r\n\r\nUploadImage\r\n--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nimage bytes\r\n--b--\r\n";

    /// A SigV4 multipart request signed at T4 over `signed_body`'s hash,
    /// with `claimed` as `X-Amz-Content-Sha256` (signed too) if given.
    fn streamed_headers(signed_body: &[u8], claimed: Option<&str>) -> Vec<(String, String)> {
        let mut headers = pairs(&[
            ("host", "cloud.example.org:4567"),
            ("content-type", "multipart/form-data; boundary=b"),
            ("x-amz-date", "20240115T102030Z"),
        ]);
        let mut names = vec!["content-type", "host", "x-amz-date"];
        if let Some(claimed) = claimed {
            headers.push(("x-amz-content-sha256".into(), claimed.into()));
            names.push("x-amz-content-sha256");
        }
        let signed: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let hash = claimed.map_or_else(|| sigv4::payload_hash(signed_body), str::to_string);
        let signature = sign_t4(
            &sigv4::Request {
                method: "POST",
                path: "/",
                query: &[],
                headers: &headers,
                payload_hash: &hash,
            },
            &signed,
        );
        headers.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential=alice/20240115/us-east-1/ec2/aws4_request, SignedHeaders={}, Signature={signature}",
                names.join(";")
            ),
        ));
        headers
    }

    /// Alice's SigV4 signature of `request` over the headers `signed`, at
    /// T4 in `us-east-1`.
    fn sign_t4(request: &sigv4::Request<'_>, signed: &[String]) -> String {
        let canonical = sigv4::canonical_request(request, signed).expect("canonical");
        let credential = sigv4::Credential {
            access_key: "alice".into(),
            date: "20240115".into(),
            region: "us-east-1".into(),
            service: "ec2".into(),
        };
        sigv4::signature(
            &sigv4::signing_key(&Secret::new(SECRET), &credential),
            &sigv4::string_to_sign("20240115T102030Z", &credential.scope(), &canonical),
        )
    }

    /// Checks a streamed request's text fields, as the front does before
    /// reading its file.
    fn check_streamed(
        headers: &[(String, String)],
        now: u64,
        secret_of: impl FnOnce(&str) -> Result<Option<Secret>>,
    ) -> Result<Deferred> {
        let params = pairs(&[("Action", "UploadImage")]);
        let request = post(headers, &params, None);
        let (key, deferred) = verify_with(&request, &policy(), at(now), secret_of)?;
        assert_eq!(key, "alice");
        Ok(deferred.expect("a streamed SigV4 body is checked at its end"))
    }

    #[test]
    fn v4_streamed_without_a_claimed_hash_is_checked_at_the_end() {
        let headers = streamed_headers(STREAMED, None);
        let good = sigv4::payload_hash(STREAMED);
        assert_eq!(
            check_streamed(&headers, T4, secret_of)
                .expect("checked")
                .finish(&good),
            Ok(())
        );
        // Another body than the one signed.
        let tampered = sigv4::payload_hash(b"--b\r\n...another image...\r\n--b--\r\n");
        assert_eq!(
            check_streamed(&headers, T4, secret_of)
                .expect("checked")
                .finish(&tampered),
            Err(Error::Invalid)
        );
        // What can be checked before the body is: the user, the time, the
        // scope.
        assert_eq!(
            check_streamed(&headers, T4, |_| Ok(None)).map(|_| ()),
            Err(Error::Invalid)
        );
        assert_eq!(
            check_streamed(&headers, T4 + 901, secret_of).map(|_| ()),
            Err(Error::Expired)
        );
        let mut other_day = headers.clone();
        other_day[2].1 = "20240116T000000Z".into();
        assert!(matches!(
            check_streamed(&other_day, T4 + 13 * 3600, secret_of),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn v4_streamed_with_a_claimed_hash_is_signed_first_and_compared_at_the_end() {
        let good = sigv4::payload_hash(STREAMED);
        let headers = streamed_headers(STREAMED, Some(&good));
        assert_eq!(
            check_streamed(&headers, T4, secret_of)
                .expect("signed")
                .finish(&good),
            Ok(())
        );
        // The claim is compared without regard to case.
        assert_eq!(
            check_streamed(&headers, T4, secret_of)
                .expect("signed")
                .finish(&good.to_ascii_uppercase()),
            Ok(())
        );
        // A body other than the claimed one.
        assert_eq!(
            check_streamed(&headers, T4, secret_of)
                .expect("signed")
                .finish(&sigv4::payload_hash(b"tampered")),
            Err(Error::Invalid)
        );
        // A wrong claimed hash, correctly signed: refused at the end.
        let wrong = sigv4::payload_hash(b"not the body");
        let headers = streamed_headers(STREAMED, Some(&wrong));
        assert_eq!(
            check_streamed(&headers, T4, secret_of)
                .expect("signed")
                .finish(&good),
            Err(Error::Invalid)
        );
        // A claim changed after signing: refused before the body is read.
        let mut changed = streamed_headers(STREAMED, Some(&good));
        changed[3].1 = wrong;
        assert_eq!(
            check_streamed(&changed, T4, secret_of).map(|_| ()),
            Err(Error::Invalid)
        );
        // The signature is checked before the time, as for a whole body.
        assert_eq!(
            check_streamed(&headers, T4 + 901, secret_of).map(|_| ()),
            Err(Error::Expired)
        );
    }

    #[test]
    fn only_sigv4_signs_the_body() {
        let none = pairs(&[]);
        let v4 = v4_headers("cloud.example.org:4567", "20240115T102030Z");
        assert!(signs_body(&v4, &none));
        let mut presigned = presigned_query();
        presigned.push(("X-Amz-Signature".into(), "00".into()));
        assert!(signs_body(&none, &presigned));
        // SigV2 in the query (or in the body, which is not looked at).
        let v2 = pairs(&[("SignatureVersion", "2"), ("Signature", "x")]);
        assert!(!signs_body(&none, &v2));
        assert!(!signs_body(&none, &none));
    }

    /// A presigned SigV4 query of alice at T4, without its signature.
    fn presigned_query() -> Vec<(String, String)> {
        pairs(&[
            ("X-Amz-Algorithm", sigv4::ALGORITHM),
            (
                "X-Amz-Credential",
                "alice/20240115/us-east-1/ec2/aws4_request",
            ),
            ("X-Amz-Date", "20240115T102030Z"),
            ("X-Amz-Expires", "300"),
            ("X-Amz-SignedHeaders", "host"),
        ])
    }

    #[test]
    fn v4_presigned_streamed_is_checked_at_the_end() {
        let mut query = presigned_query();
        let headers = pairs(&[("host", "cloud.example.org:4567")]);
        let good = sigv4::payload_hash(STREAMED);
        let signature = sign_t4(
            &sigv4::Request {
                method: "POST",
                path: "/",
                query: &query,
                headers: &headers,
                payload_hash: &good,
            },
            &["host".to_string()],
        );
        query.push(("X-Amz-Signature".into(), signature));
        let check = |now: u64| {
            let request = SignedRequest {
                method: "POST",
                path: "/",
                headers: &headers,
                query: &query,
                params: &query,
                body: None,
            };
            verify_with(&request, &policy(), at(now), secret_of)
                .map(|(_, deferred)| deferred.expect("checked at the end"))
        };
        assert_eq!(check(T4).expect("checked").finish(&good), Ok(()));
        assert_eq!(
            check(T4)
                .expect("checked")
                .finish(&sigv4::payload_hash(b"tampered")),
            Err(Error::Invalid)
        );
        assert_eq!(check(T4 + 301).map(|_| ()), Err(Error::Expired));
    }

    #[test]
    fn v4_streamed_unsigned_payload_and_other_claims_are_refused() {
        for claim in ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"] {
            let headers = streamed_headers(STREAMED, Some(claim));
            assert!(
                matches!(
                    check_streamed(&headers, T4, secret_of),
                    Err(Error::Malformed(_))
                ),
                "{claim}"
            );
        }
    }

    #[test]
    fn streamed_sigv2_has_nothing_left_to_check() {
        let params = v2_params(&[], "cloud.example.org");
        let headers = pairs(&[("host", "cloud.example.org")]);
        let request = post(&headers, &params, None);
        assert_eq!(
            whole(verify_with(&request, &policy(), at(T), secret_of)),
            Ok("alice".into())
        );
    }

    #[test]
    fn v4_unknown_user_fails_like_a_bad_signature() {
        let headers = v4_headers("cloud.example.org:4567", "20240115T102030Z");
        let params = pairs(&[]);
        let request = post(&headers, &params, Some(BODY));
        assert_eq!(
            whole(verify_with(&request, &policy(), at(T4), |_| Ok(None))),
            Err(Error::Invalid)
        );
    }

    #[test]
    fn host_candidates_cover_the_forms_of_3_3() {
        assert_eq!(
            host_candidates(
                Some("Cloud.Example.org:4567"),
                &["pub.example.org:443".into()]
            ),
            [
                "cloud.example.org:4567",
                "cloud.example.org",
                "pub.example.org:443",
                "pub.example.org"
            ]
        );
        assert_eq!(
            host_candidates(Some("[::1]:4567"), &[]),
            ["[::1]:4567", "[::1]"]
        );
        assert_eq!(host_candidates(Some("[::1]"), &[]), ["[::1]"]);
        assert!(host_candidates(None, &[]).is_empty());
    }
}
