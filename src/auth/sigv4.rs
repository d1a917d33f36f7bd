//! AWS Signature Version 4 as EC2 clients use it (spec/EC2.md §9.2):
//! the `Authorization: AWS4-HMAC-SHA256 ...` header (botocore, the aws CLI,
//! libcloud) and the presigned query string (`X-Amz-Signature`). Pure
//! functions for each step — canonical request, string to sign, signing
//! key, signature — so that tests check each against the published vector.
//!
//! Verification signs exactly the headers `SignedHeaders` names, which
//! must include `host` (a signature that does not cover the host could be
//! replayed against another server). Any region is accepted; the service
//! must be `ec2`.
//!
//! May use: `super` (the auth error, [`Secret`], the encoder of
//! [`super::sigv2`]).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::secret::{constant_time_eq, Secret};
use super::sigv2::{encode, encode_path};
use super::{Error, Result};

/// The only algorithm SigV4 has.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The service name EC2 clients put in their credential scope.
pub const SERVICE: &str = "ec2";

/// Longest life of a presigned request (seven days, as AWS).
pub const MAX_PRESIGNED_EXPIRES: u64 = 7 * 24 * 3600;

/// `Credential=<key>/<yyyymmdd>/<region>/<service>/aws4_request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The access key: the user name.
    pub access_key: String,
    /// The scope's date, `yyyymmdd`.
    pub date: String,
    /// The region, any string.
    pub region: String,
    /// The service, `ec2`.
    pub service: String,
}

impl Credential {
    fn parse(text: &str) -> Result<Self> {
        // The access key is a user name, which may not contain '/', so
        // splitting from the right is not needed.
        let parts: Vec<&str> = text.trim().split('/').collect();
        let [key, date, region, service, terminal] = parts.as_slice() else {
            return Err(Error::Malformed(
                "Credential must be <key>/<date>/<region>/<service>/aws4_request",
            ));
        };
        if *terminal != "aws4_request"
            || date.len() != 8
            || !date.bytes().all(|b| b.is_ascii_digit())
            || key.is_empty()
            || region.is_empty()
        {
            return Err(Error::Malformed(
                "Credential must be <key>/<date>/<region>/<service>/aws4_request",
            ));
        }
        if *service != SERVICE {
            return Err(Error::Malformed(
                "the credential scope's service must be ec2",
            ));
        }
        Ok(Credential {
            access_key: key.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        })
    }

    /// `<date>/<region>/<service>/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// What a SigV4 request claims: who, which headers were signed, and the
/// signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The credential scope.
    pub credential: Credential,
    /// Lower-case header names, in the order given (sorted by clients).
    pub signed_headers: Vec<String>,
    /// The signature as sent (64 hex digits).
    pub signature: String,
}

impl Authorization {
    /// Parses an `Authorization` header value. Its parts are separated by
    /// `,` with or without spaces.
    pub fn from_header(value: &str) -> Result<Self> {
        let rest = value
            .trim()
            .strip_prefix(ALGORITHM)
            .ok_or(Error::Malformed("only AWS4-HMAC-SHA256 is accepted"))?;
        if !rest.starts_with(' ') {
            return Err(Error::Malformed("only AWS4-HMAC-SHA256 is accepted"));
        }
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let Some((name, value)) = part.trim().split_once('=') else {
                return Err(Error::Malformed("malformed SigV4 Authorization header"));
            };
            match name.trim() {
                "Credential" => credential = Some(value.trim()),
                "SignedHeaders" => signed = Some(value.trim()),
                "Signature" => signature = Some(value.trim()),
                _ => return Err(Error::Malformed("malformed SigV4 Authorization header")),
            }
        }
        match (credential, signed, signature) {
            (Some(c), Some(h), Some(s)) => Self::new(c, h, s),
            _ => Err(Error::Malformed(
                "the SigV4 Authorization header needs Credential, SignedHeaders and Signature",
            )),
        }
    }

    fn new(credential: &str, signed_headers: &str, signature: &str) -> Result<Self> {
        let signed_headers: Vec<String> = signed_headers
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        if signed_headers.iter().any(String::is_empty) {
            return Err(Error::Malformed("SignedHeaders has an empty name"));
        }
        if !signed_headers.iter().any(|h| h == "host") {
            return Err(Error::Malformed("SignedHeaders must include host"));
        }
        Ok(Authorization {
            credential: Credential::parse(credential)?,
            signed_headers,
            signature: signature.to_string(),
        })
    }
}

/// A presigned request's query parameters (`X-Amz-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presigned {
    /// Credential, signed headers and signature.
    pub authorization: Authorization,
    /// `X-Amz-Date`.
    pub amz_date: String,
    /// `X-Amz-Expires`, seconds after `X-Amz-Date`.
    pub expires: u64,
}

impl Presigned {
    /// Reads the `X-Amz-*` parameters of a query string; `None` when it
    /// carries no `X-Amz-Signature`.
    pub fn from_query(query: &[(String, String)]) -> Result<Option<Self>> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(signature) = get("X-Amz-Signature") else {
            return Ok(None);
        };
        if get("X-Amz-Algorithm") != Some(ALGORITHM) {
            return Err(Error::Malformed("X-Amz-Algorithm must be AWS4-HMAC-SHA256"));
        }
        const MISSING: Error = Error::Malformed(
            "a presigned request needs X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders and X-Amz-Expires",
        );
        let credential = get("X-Amz-Credential").ok_or(MISSING)?;
        let amz_date = get("X-Amz-Date").ok_or(MISSING)?;
        let signed = get("X-Amz-SignedHeaders").ok_or(MISSING)?;
        let expires = get("X-Amz-Expires")
            .ok_or(MISSING)?
            .parse::<u64>()
            .ok()
            .filter(|e| *e <= MAX_PRESIGNED_EXPIRES)
            .ok_or(Error::Malformed(
                "X-Amz-Expires must be a number of seconds up to 604800",
            ))?;
        Ok(Some(Presigned {
            authorization: Authorization::new(credential, signed, signature)?,
            amz_date: amz_date.to_string(),
            expires,
        }))
    }
}

/// What the canonical request is built from.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path as received (still percent-encoded); encoded once more
    /// for the canonical URI, as botocore does for every service but S3.
    pub path: &'a str,
    /// The query string's parameters, decoded, in any order.
    pub query: &'a [(String, String)],
    /// Every header, names lower-case, one entry per occurrence.
    pub headers: &'a [(String, String)],
    /// The payload hash: `X-Amz-Content-Sha256` when sent, else the hex
    /// SHA-256 of the raw body ([`payload_hash`]).
    pub payload_hash: &'a str,
}

/// Lower-case hex SHA-256 of a body, the default payload hash.
pub fn payload_hash(body: &[u8]) -> String {
    let mut hasher = PayloadHasher::default();
    hasher.update(body);
    hasher.finish()
}

/// [`payload_hash`] of a body read in chunks (a streamed upload): feed
/// every chunk in order, then [`PayloadHasher::finish`].
#[derive(Clone, Debug, Default)]
pub struct PayloadHasher(Sha256);

impl PayloadHasher {
    /// Adds the next chunk of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    /// The hash of every chunk given, in lower-case hex.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// Whether a claimed payload hash has the form of one: 64 hex digits.
pub fn is_payload_hash(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The canonical query string: every parameter but `X-Amz-Signature`,
/// encoded, sorted by name then value, `name=value` joined by `&`.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(name, _)| name != "X-Amz-Signature")
        .map(|(n, v)| (encode(n), encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as SigV4 signs it: trimmed, inner runs of blanks
/// collapsed to one space.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request of §9.2 step 4 for the headers `signed` names.
/// A signed header the request lacks is refused: the client said it
/// signed something that is not there.
pub fn canonical_request(request: &Request<'_>, signed: &[String]) -> Result<String> {
    let uri = if request.path.is_empty() {
        "/".to_string()
    } else {
        encode_path(request.path)
    };
    let mut out = format!(
        "{}\n{}\n{}\n",
        request.method.to_ascii_uppercase(),
        uri,
        canonical_query(request.query)
    );
    for name in signed {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| canonical_value(v))
            .collect();
        if values.is_empty() {
            return Err(Error::Malformed(
                "a signed header is missing from the request",
            ));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.join(";"));
    out.push('\n');
    out.push_str(request.payload_hash);
    Ok(out)
}

/// The string to sign: algorithm, time, scope and the hash of the
/// canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac256(key: &[u8], data: &str) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().into()
}

/// The signing key: `AWS4<secret>` chained through date, region, service
/// and `aws4_request`.
pub fn signing_key(secret: &Secret, credential: &Credential) -> Secret {
    let mut first = b"AWS4".to_vec();
    first.extend_from_slice(secret.expose());
    let first = Secret::new(first);
    let k_date = hmac256(first.expose(), &credential.date);
    let k_region = hmac256(&k_date, &credential.region);
    let k_service = hmac256(&k_region, &credential.service);
    Secret::new(hmac256(&k_service, "aws4_request").to_vec())
}

/// The signature: hex HMAC of the string to sign under the signing key.
pub fn signature(key: &Secret, string_to_sign: &str) -> String {
    hex::encode(hmac256(key.expose(), string_to_sign))
}

/// Checks that the credential scope's date is the day of `amz_date`
/// (basic format), as [`verify`] does first; alone, for a request whose
/// signature can only be checked once its streamed body is read.
pub fn check_scope_date(amz_date: &str, credential: &Credential) -> Result<()> {
    if amz_date.get(..8) == Some(credential.date.as_str()) {
        Ok(())
    } else {
        Err(Error::Malformed(
            "the credential scope's date is not the request's date",
        ))
    }
}

/// Checks `authorization` against the request signed at `amz_date`
/// (basic format). The caller has checked the time window.
pub fn verify(
    request: &Request<'_>,
    authorization: &Authorization,
    amz_date: &str,
    secret: &Secret,
) -> Result<()> {
    check_scope_date(amz_date, &authorization.credential)?;
    let canonical = canonical_request(request, &authorization.signed_headers)?;
    let text = string_to_sign(amz_date, &authorization.credential.scope(), &canonical);
    let expected = signature(&signing_key(secret, &authorization.credential), &text);
    let received = authorization.signature.trim().to_ascii_lowercase();
    if constant_time_eq(expected.as_bytes(), received.as_bytes()) {
        Ok(())
    } else {
        Err(Error::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "4478db59d30855454ece114e8ccfa5563d21c9bd";
    const BODY: &str = "Action=DescribeInstances&Version=2016-11-15";
    const HEADER: &str = "AWS4-HMAC-SHA256 Credential=alice/20240115/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=d39b8fe8202f2375dcfa38d4e05df7655c16ce23f01fb122904636e48424fa84";

    fn headers(host: &str) -> Vec<(String, String)> {
        vec![
            ("host".into(), host.into()),
            (
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            ),
            ("x-amz-date".into(), "20240115T102030Z".into()),
            ("user-agent".into(), "Botocore/1.x".into()),
            ("amz-sdk-request".into(), "attempt=1".into()),
        ]
    }

    /// The §9.2 vector, step by step.
    #[test]
    fn published_vector_each_step() {
        let auth = Authorization::from_header(HEADER).expect("header parses");
        assert_eq!(auth.credential.access_key, "alice");
        assert_eq!(
            auth.credential.scope(),
            "20240115/us-east-1/ec2/aws4_request"
        );
        let headers = headers("cloud.example.org:4567");
        let hash = payload_hash(BODY.as_bytes());
        let request = Request {
            method: "POST",
            path: "/",
            query: &[],
            headers: &headers,
            payload_hash: &hash,
        };
        let canonical = canonical_request(&request, &auth.signed_headers).expect("canonical");
        assert_eq!(
            canonical,
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:cloud.example.org:4567\nx-amz-date:20240115T102030Z\n\ncontent-type;host;x-amz-date\n6171eb09865e32b0602af0f7957e26573a51f53caaedff02ff88883cb0275885"
        );
        let text = string_to_sign("20240115T102030Z", &auth.credential.scope(), &canonical);
        assert_eq!(
            text,
            "AWS4-HMAC-SHA256\n20240115T102030Z\n20240115/us-east-1/ec2/aws4_request\n55cae1b87af7ffe7f662f9238a8db82d9e5dd1e6f0f379d874f5f0c30191208c"
        );
        let key = signing_key(&Secret::new(SECRET), &auth.credential);
        assert_eq!(
            signature(&key, &text),
            "d39b8fe8202f2375dcfa38d4e05df7655c16ce23f01fb122904636e48424fa84"
        );
        assert_eq!(
            verify(&request, &auth, "20240115T102030Z", &Secret::new(SECRET)),
            Ok(())
        );
    }

    #[test]
    fn header_parsing_tolerates_spacing_and_refuses_other_schemes() {
        let tight = HEADER.replace(", ", ",");
        assert_eq!(
            Authorization::from_header(&tight),
            Authorization::from_header(HEADER)
        );
        for bad in [
            "AWS alice:abc",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=alice/20240115/us-east-1/ec2/aws4_request",
            "AWS4-HMAC-SHA256 Credential=alice/2024/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=alice/20240115/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=alice/20240115/us-east-1/ec2/aws4_request, SignedHeaders=x-amz-date, Signature=00",
        ] {
            assert!(Authorization::from_header(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn check(host: &str, body: &str, date: &str) -> Result<()> {
        let auth = Authorization::from_header(HEADER).expect("header parses");
        let headers = headers(host);
        let hash = payload_hash(body.as_bytes());
        let request = Request {
            method: "POST",
            path: "/",
            query: &[],
            headers: &headers,
            payload_hash: &hash,
        };
        verify(&request, &auth, date, &Secret::new(SECRET))
    }

    #[test]
    fn tampered_body_wrong_host_and_wrong_secret_are_refused() {
        assert_eq!(
            check("cloud.example.org:4567", BODY, "20240115T102030Z"),
            Ok(())
        );
        assert_eq!(
            check(
                "cloud.example.org:4567",
                "Action=TerminateInstances&Version=2016-11-15",
                "20240115T102030Z"
            ),
            Err(Error::Invalid)
        );
        assert_eq!(
            check("cloud.example.org", BODY, "20240115T102030Z"),
            Err(Error::Invalid)
        );
        // A later time (a replay re-dated) changes the string to sign.
        assert_eq!(
            check("cloud.example.org:4567", BODY, "20240115T102031Z"),
            Err(Error::Invalid)
        );
        assert!(matches!(
            check("cloud.example.org:4567", BODY, "20240116T102030Z"),
            Err(Error::Malformed(_))
        ));
        let auth = Authorization::from_header(HEADER).expect("header parses");
        let headers = headers("cloud.example.org:4567");
        let hash = payload_hash(BODY.as_bytes());
        let request = Request {
            method: "POST",
            path: "/",
            query: &[],
            headers: &headers,
            payload_hash: &hash,
        };
        assert_eq!(
            verify(&request, &auth, "20240115T102030Z", &Secret::new("x")),
            Err(Error::Invalid)
        );
    }

    #[test]
    fn missing_signed_header_is_refused() {
        let auth = Authorization::from_header(HEADER).expect("header parses");
        let headers: Vec<(String, String)> = headers("h")
            .into_iter()
            .filter(|(n, _)| n != "content-type")
            .collect();
        let request = Request {
            method: "POST",
            path: "/",
            query: &[],
            headers: &headers,
            payload_hash: "",
        };
        assert!(canonical_request(&request, &auth.signed_headers).is_err());
    }

    #[test]
    fn payload_hash_in_chunks_is_the_hash_of_the_whole() {
        let mut hasher = PayloadHasher::default();
        for chunk in BODY.as_bytes().chunks(5) {
            hasher.update(chunk);
        }
        assert_eq!(
            hasher.finish(),
            "6171eb09865e32b0602af0f7957e26573a51f53caaedff02ff88883cb0275885"
        );
        assert_eq!(PayloadHasher::default().finish(), payload_hash(b""));
        assert!(is_payload_hash(&payload_hash(b"x")));
        assert!(is_payload_hash(&payload_hash(b"x").to_ascii_uppercase()));
        for bad in [
            "UNSIGNED-PAYLOAD",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "abc",
            "",
        ] {
            assert!(!is_payload_hash(bad), "{bad:?}");
        }
    }

    #[test]
    fn canonical_query_and_header_values() {
        let query = vec![
            ("b".to_string(), "two words".to_string()),
            ("a".to_string(), "x~y".to_string()),
            ("X-Amz-Signature".to_string(), "ff".to_string()),
            ("a".to_string(), "".to_string()),
        ];
        assert_eq!(canonical_query(&query), "a=&a=x~y&b=two%20words");
        assert_eq!(canonical_value("  a   b \t c "), "a b c");
    }

    /// A presigned GET built the way botocore's SigV4QueryAuth builds it,
    /// signed here and verified back.
    #[test]
    fn presigned_round_trip() {
        let secret = Secret::new(SECRET);
        let credential =
            Credential::parse("alice/20240115/opennebula/ec2/aws4_request").expect("credential");
        let query: Vec<(String, String)> = [
            ("Action", "DescribeInstances"),
            ("Version", "2016-11-15"),
            ("X-Amz-Algorithm", ALGORITHM),
            (
                "X-Amz-Credential",
                "alice/20240115/opennebula/ec2/aws4_request",
            ),
            ("X-Amz-Date", "20240115T102030Z"),
            ("X-Amz-Expires", "3600"),
            ("X-Amz-SignedHeaders", "host"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        let headers = vec![("host".to_string(), "localhost:4567".to_string())];
        let hash = payload_hash(b"");
        let request = Request {
            method: "GET",
            path: "/",
            query: &query,
            headers: &headers,
            payload_hash: &hash,
        };
        let canonical = canonical_request(&request, &["host".to_string()]).expect("canonical");
        let sig = signature(
            &signing_key(&secret, &credential),
            &string_to_sign("20240115T102030Z", &credential.scope(), &canonical),
        );
        let mut query = query.clone();
        query.push(("X-Amz-Signature".into(), sig));
        let presigned = Presigned::from_query(&query)
            .expect("parses")
            .expect("is presigned");
        assert_eq!(presigned.expires, 3600);
        let request = Request {
            query: &query,
            ..request
        };
        assert_eq!(
            verify(
                &request,
                &presigned.authorization,
                &presigned.amz_date,
                &secret
            ),
            Ok(())
        );
        // Tampering with a query parameter breaks it.
        let mut tampered = query.clone();
        tampered[0].1 = "TerminateInstances".into();
        let request = Request {
            query: &tampered,
            ..request
        };
        assert_eq!(
            verify(
                &request,
                &presigned.authorization,
                &presigned.amz_date,
                &secret
            ),
            Err(Error::Invalid)
        );
        assert_eq!(Presigned::from_query(&query[..2]), Ok(None));
    }
}
