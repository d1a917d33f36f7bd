//! The EC2 Query front over HTTP, with hand-built signed requests for what
//! SDKs will not send (STYLE.md §4): bad signatures, expired timestamps,
//! tampered parameters, a wrong host, missing and unknown actions, an
//! oversize body — each must be an EC2 XML error document with the right
//! status, and must change nothing. Also: the econe-upload multipart
//! convention, SigV2 with and without the port, SigV4, isolation between
//! users, DryRun, and that `/` does not swallow the other fronts.
//!
//! Real clients (boto3, the aws CLI, libcloud) are driven from
//! `ec2_clients.rs`, with the [`Client`] helper of this file.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cloudgate::auth::secret::Secret;
use cloudgate::auth::sigv2::{sign, string_to_sign, SignatureMethod};
use cloudgate::auth::sigv4;
use cloudgate::auth::time::{format_amz_date, format_iso8601};

use crate::harness::{admin, any_status, image_files, send, unique, Server};

/// An HTTP answer.
pub(crate) struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Reply {
    /// The text of the first `<tag>` element.
    pub(crate) fn text(&self, tag: &str) -> Option<String> {
        let open = format!("<{tag}>");
        let start = self.body.find(&open)? + open.len();
        let end = self.body[start..].find(&format!("</{tag}>"))? + start;
        Some(self.body[start..end].to_string())
    }

    /// Every `<tag>` text, in order.
    fn texts(&self, tag: &str) -> Vec<String> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find(&open) {
            rest = &rest[i + open.len()..];
            let Some(j) = rest.find(&close) else { break };
            out.push(rest[..j].to_string());
            rest = &rest[j..];
        }
        out
    }

    /// Asserts an EC2 error document with this status and code.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.content_type.contains("xml"),
            "content type {:?}: {}",
            self.content_type,
            self.body
        );
        assert!(self.body.contains("<Response>"), "{}", self.body);
        assert_eq!(self.text("Code").as_deref(), Some(code), "{}", self.body);
        assert!(
            self.text("RequestID").is_some_and(|id| !id.is_empty()),
            "{}",
            self.body
        );
    }

    pub(crate) fn assert_ok(&self, root: &str) {
        assert_eq!(self.status, 200, "{}", self.body);
        assert!(
            self.body.contains(&format!("<{root} xmlns=")),
            "{}",
            self.body
        );
        assert!(self.text("requestId").is_some(), "{}", self.body);
    }
}

fn call(method: &str, url: &str, headers: &[(&str, String)], body: Option<&[u8]>) -> Reply {
    let mut req = ureq::request(method, url);
    for (name, value) in headers {
        req = req.set(name, value);
    }
    let result = match body {
        Some(body) => req.send_bytes(body),
        None => req.call(),
    };
    let response = any_status(result, &format!("{method} {url}"));
    let status = response.status();
    let content_type = response.header("Content-Type").unwrap_or("").to_string();
    let mut body = String::new();
    response
        .into_reader()
        .take(64 << 20)
        .read_to_string(&mut body)
        .expect("read body");
    Reply {
        status,
        content_type,
        body,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs()
}

fn iso(at: u64) -> String {
    format_iso8601(i64::try_from(at).expect("fits"))
}

fn form(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| {
            format!(
                "{}={}",
                cloudgate::auth::sigv2::encode(n),
                cloudgate::auth::sigv2::encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn sha1_hex(text: &str) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(text.as_bytes()))
}

/// The multipart boundary of the test uploads.
const UPLOAD_BOUNDARY: &str = "----cloudgate-test-boundary";

/// The content type of the test uploads.
fn upload_content_type() -> String {
    format!("multipart/form-data; boundary={UPLOAD_BOUNDARY}")
}

/// An UploadImage body as econe-upload builds it: the text fields, then
/// the `file` part.
fn upload_body(fields: &[(String, String)], data: &[u8]) -> Vec<u8> {
    let boundary = UPLOAD_BOUNDARY;
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/images/ttylinux.img\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// What a SigV4 upload sends as `X-Amz-Content-Sha256`.
#[derive(Clone, Copy)]
enum Claim<'a> {
    /// No such header: the payload hash is the body's.
    None,
    /// The hash of the body signed.
    OfSigned,
    /// This value.
    Value(&'a str),
}

/// A user of the test server and how it signs.
pub(crate) struct Client<'a> {
    server: &'a Server,
    /// The user name: the access key.
    pub(crate) user: String,
    /// `sha1_hex(password)`: the secret key.
    pub(crate) secret: String,
}

impl<'a> Client<'a> {
    /// A fresh user on the shared server.
    pub(crate) fn new(server: &'a Server, prefix: &str) -> Self {
        let user = unique(prefix);
        let password = format!("pw-{user}");
        let body = format!(r#"{{"name":"{user}","password":"{password}"}}"#);
        let answer = send("POST", &server.url("/v1/users"), admin(), Some(&body));
        assert_eq!(answer.status, 201, "{}", answer.body);
        Client {
            server,
            user,
            secret: sha1_hex(&password),
        }
    }

    fn admin(server: &'a Server) -> Self {
        Client {
            server,
            user: "oneadmin".into(),
            secret: sha1_hex(crate::harness::ADMIN_PASSWORD),
        }
    }

    /// `127.0.0.1:port`, the Host header ureq sends.
    fn host(&self) -> String {
        self.server
            .base()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }

    /// The parameters of a SigV2 request signed for `method`, `host` and
    /// path `/`, at `timestamp`.
    fn v2(
        &self,
        params: &[(&str, &str)],
        method: &str,
        host: &str,
        timestamp: &str,
        sig: SignatureMethod,
    ) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        pairs.push(("AWSAccessKeyId".into(), self.user.clone()));
        pairs.push(("SignatureVersion".into(), "2".into()));
        let name = match sig {
            SignatureMethod::HmacSha1 => "HmacSHA1",
            SignatureMethod::HmacSha256 => "HmacSHA256",
        };
        pairs.push(("SignatureMethod".into(), name.into()));
        pairs.push(("Timestamp".into(), timestamp.into()));
        if !pairs.iter().any(|(n, _)| n == "Version") {
            pairs.push(("Version".into(), "2016-11-15".into()));
        }
        let text = string_to_sign(method, host, "/", &pairs);
        pairs.push((
            "Signature".into(),
            sign(sig, &Secret::new(self.secret.as_bytes()), &text),
        ));
        pairs
    }

    /// A correctly signed SigV2 GET (libcloud's way: host with port).
    fn get(&self, params: &[(&str, &str)]) -> Reply {
        let pairs = self.v2(
            params,
            "GET",
            &self.host(),
            &iso(now()),
            SignatureMethod::HmacSha256,
        );
        self.send_get(&pairs)
    }

    fn send_get(&self, pairs: &[(String, String)]) -> Reply {
        call(
            "GET",
            &self.server.url(&format!("/?{}", form(pairs))),
            &[],
            None,
        )
    }

    /// A correctly signed SigV2 form POST (the econe gem's way: host
    /// without port, HmacSHA1).
    pub(crate) fn post(&self, params: &[(&str, &str)]) -> Reply {
        let host = self.host();
        let bare = host.split(':').next().expect("host").to_string();
        let pairs = self.v2(
            params,
            "POST",
            &bare,
            &iso(now()),
            SignatureMethod::HmacSha1,
        );
        self.send_post(&pairs)
    }

    fn send_post(&self, pairs: &[(String, String)]) -> Reply {
        call(
            "POST",
            &self.server.url("/"),
            &[(
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            )],
            Some(form(pairs).as_bytes()),
        )
    }

    /// The `Authorization` header of a SigV4 `POST /` signed at
    /// `amz_date` over every header of `headers` (lower-case names, `host`
    /// included) and the payload hash `payload_hash`.
    fn v4_authorization(
        &self,
        headers: &[(String, String)],
        payload_hash: &str,
        amz_date: &str,
    ) -> String {
        let mut signed: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
        signed.sort();
        let request = sigv4::Request {
            method: "POST",
            path: "/",
            query: &[],
            headers,
            payload_hash,
        };
        let canonical = sigv4::canonical_request(&request, &signed).expect("canonical");
        let credential = sigv4::Credential {
            access_key: self.user.clone(),
            date: amz_date[..8].to_string(),
            region: "us-east-1".into(),
            service: "ec2".into(),
        };
        let text = sigv4::string_to_sign(amz_date, &credential.scope(), &canonical);
        let signature = sigv4::signature(
            &sigv4::signing_key(&Secret::new(self.secret.as_bytes()), &credential),
            &text,
        );
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={signature}",
            self.user,
            credential.scope(),
            signed.join(";")
        )
    }

    /// A SigV4 POST as botocore sends it, signed at `at`.
    fn v4_post(&self, params: &[(&str, &str)], at: u64) -> Reply {
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let body = form(&pairs);
        let amz_date = format_amz_date(i64::try_from(at).expect("fits"));
        let content_type = "application/x-www-form-urlencoded; charset=utf-8".to_string();
        let headers = vec![
            ("content-type".to_string(), content_type.clone()),
            ("host".to_string(), self.host()),
            ("x-amz-date".to_string(), amz_date.clone()),
        ];
        let authorization =
            self.v4_authorization(&headers, &sigv4::payload_hash(body.as_bytes()), &amz_date);
        call(
            "POST",
            &self.server.url("/"),
            &[
                ("Content-Type", content_type),
                ("X-Amz-Date", amz_date),
                ("Authorization", authorization),
            ],
            Some(body.as_bytes()),
        )
    }

    /// UploadImage as econe-upload sends it: multipart, text fields signed
    /// with SigV2 HmacSHA1 for the host without port, the file last.
    fn upload(&self, data: &[u8]) -> Reply {
        let host = self.host();
        let bare = host.split(':').next().expect("host").to_string();
        let pairs = self.v2(
            &[("Action", "UploadImage"), ("Version", "2008-12-01")],
            "POST",
            &bare,
            &iso(now()),
            SignatureMethod::HmacSha1,
        );
        let body = upload_body(&pairs, data);
        call(
            "POST",
            &self.server.url("/"),
            &[("Content-Type", upload_content_type())],
            Some(&body),
        )
    }

    /// UploadImage's multipart body signed with SigV4 at `at`: the
    /// signature covers `signed`'s bytes; `sent` goes out. With `claim`,
    /// `X-Amz-Content-Sha256` is sent and signed with that value
    /// ([`Claim::OfSigned`]: the hash of `signed`).
    fn upload_v4(&self, signed: &[u8], sent: &[u8], claim: Claim, at: u64) -> Reply {
        let amz_date = format_amz_date(i64::try_from(at).expect("fits"));
        let mut headers = vec![
            ("content-type".to_string(), upload_content_type()),
            ("host".to_string(), self.host()),
            ("x-amz-date".to_string(), amz_date.clone()),
        ];
        let claimed = match claim {
            Claim::None => None,
            Claim::OfSigned => Some(sigv4::payload_hash(signed)),
            Claim::Value(value) => Some(value.to_string()),
        };
        let mut sent_headers = vec![
            ("Content-Type", upload_content_type()),
            ("X-Amz-Date", amz_date.clone()),
        ];
        if let Some(claimed) = &claimed {
            headers.push(("x-amz-content-sha256".to_string(), claimed.clone()));
            sent_headers.push(("X-Amz-Content-Sha256", claimed.clone()));
        }
        let hash = claimed.unwrap_or_else(|| sigv4::payload_hash(signed));
        let authorization = self.v4_authorization(&headers, &hash, &amz_date);
        sent_headers.push(("Authorization", authorization));
        call("POST", &self.server.url("/"), &sent_headers, Some(sent))
    }

    /// An uploaded and registered image; its `ami-` id.
    pub(crate) fn image(&self) -> String {
        let data: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
        let up = self.upload(&data);
        up.assert_ok("RegisterImageResponse");
        let id = up.text("imageId").expect("imageId");
        self.post(&[("Action", "RegisterImage"), ("ImageLocation", &id)])
            .assert_ok("RegisterImageResponse");
        id
    }

    /// A launched instance; its `i-` id.
    fn instance(&self, image: &str) -> String {
        let r = self.post(&[
            ("Action", "RunInstances"),
            ("ImageId", image),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ]);
        r.assert_ok("RunInstancesResponse");
        r.text("instanceId").expect("instanceId")
    }

    /// The state name of an instance.
    fn state(&self, id: &str) -> String {
        let r = self.post(&[("Action", "DescribeInstances"), ("InstanceId.1", id)]);
        r.assert_ok("DescribeInstancesResponse");
        let start = r.body.find("<instanceState>").expect("state");
        let rest = &r.body[start..];
        let name = rest.find("<name>").expect("name") + "<name>".len();
        rest[name..rest.find("</name>").expect("end")].to_string()
    }

    /// Waits until the instance shows `state`.
    fn wait_for(&self, id: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = self.state(id);
            if now == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{id} stayed {now}, never {state}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The caller's instance ids, as DescribeInstances lists them.
    fn instance_ids(&self) -> Vec<String> {
        let r = self.post(&[("Action", "DescribeInstances")]);
        r.assert_ok("DescribeInstancesResponse");
        r.texts("instanceId")
    }
}

#[test]
fn ec2_sigv2_get_and_post_and_sigv4_are_accepted() {
    let server = Server::shared();
    let alice = Client::new(server, "ec2a");
    alice
        .get(&[("Action", "DescribeInstances")])
        .assert_ok("DescribeInstancesResponse");
    alice
        .post(&[("Action", "DescribeImages")])
        .assert_ok("DescribeImagesResponse");
    alice
        .v4_post(
            &[("Action", "DescribeRegions"), ("Version", "2016-11-15")],
            now(),
        )
        .assert_ok("DescribeRegionsResponse");
    // The namespace echoes the client's Version.
    let r = alice.post(&[("Action", "DescribeInstances"), ("Version", "2009-11-30")]);
    assert!(
        r.body
            .contains("xmlns=\"http://ec2.amazonaws.com/doc/2009-11-30/\""),
        "{}",
        r.body
    );
    // econe's own tools always get a reservation item to index.
    assert_eq!(r.text("reservationId").as_deref(), Some("default"));
}

#[test]
fn ec2_refusals_are_xml_errors_and_change_nothing() {
    let server = Server::shared();
    let alice = Client::new(server, "ec2r");
    let image = alice.image();
    let id = alice.instance(&image);
    alice.wait_for(&id, "running");
    let before = alice.instance_ids();
    let ts = iso(now());
    let host = alice.host();

    // A wrong secret.
    let mut wrong = Client::new(server, "ec2w");
    wrong.user = alice.user.clone();
    wrong
        .post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .assert_error(401, "AuthFailure");

    // A bad signature.
    let mut pairs = alice.v2(
        &[("Action", "TerminateInstances"), ("InstanceId.1", &id)],
        "GET",
        &host,
        &ts,
        SignatureMethod::HmacSha256,
    );
    pairs.last_mut().expect("signature").1 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    alice.send_get(&pairs).assert_error(401, "AuthFailure");

    // A tampered parameter: signed as a describe, sent as a terminate.
    let mut pairs = alice.v2(
        &[("Action", "DescribeInstances"), ("InstanceId.1", &id)],
        "GET",
        &host,
        &ts,
        SignatureMethod::HmacSha256,
    );
    pairs[0].1 = "TerminateInstances".into();
    alice.send_get(&pairs).assert_error(401, "AuthFailure");

    // Signed for another server.
    let pairs = alice.v2(
        &[("Action", "TerminateInstances"), ("InstanceId.1", &id)],
        "GET",
        "cloud.elsewhere.example:4567",
        &ts,
        SignatureMethod::HmacSha256,
    );
    alice.send_get(&pairs).assert_error(401, "AuthFailure");

    // Expired: signed an hour ago, as a replay of a captured request is.
    let old = iso(now() - 3600);
    let pairs = alice.v2(
        &[("Action", "TerminateInstances"), ("InstanceId.1", &id)],
        "GET",
        &host,
        &old,
        SignatureMethod::HmacSha256,
    );
    alice.send_get(&pairs).assert_error(400, "RequestExpired");
    alice
        .v4_post(
            &[("Action", "TerminateInstances"), ("InstanceId.1", &id)],
            now() - 3600,
        )
        .assert_error(400, "RequestExpired");

    // No credentials at all.
    call(
        "GET",
        &server.url(&format!("/?Action=TerminateInstances&InstanceId.1={id}")),
        &[],
        None,
    )
    .assert_error(401, "AuthFailure");

    // Missing and unknown actions, before any signature work.
    call("GET", &server.url("/"), &[], None).assert_error(400, "InvalidAction");
    alice
        .post(&[("Action", "AllocateHosts")])
        .assert_error(400, "InvalidAction");

    // A body over BODY_LIMIT (1 MiB by default).
    let mut big = form(&alice.v2(
        &[("Action", "TerminateInstances"), ("InstanceId.1", &id)],
        "POST",
        &host,
        &ts,
        SignatureMethod::HmacSha256,
    ));
    big.push_str("&Padding=");
    big.push_str(&"x".repeat(1_100_000));
    call(
        "POST",
        &server.url("/"),
        &[(
            "Content-Type",
            "application/x-www-form-urlencoded".to_string(),
        )],
        Some(big.as_bytes()),
    )
    .assert_error(413, "RequestEntityTooLarge");

    // Another method on the endpoint.
    call("PUT", &server.url("/"), &[], Some(b"x")).assert_error(405, "InvalidAction");

    // Launches whose tags AWS refuses launch nothing.
    for (key, value) in [("aws:reserved", "x"), ("Name", &"v".repeat(257)[..])] {
        alice
            .post(&[
                ("Action", "RunInstances"),
                ("ImageId", &image),
                ("MinCount", "2"),
                ("MaxCount", "2"),
                ("TagSpecification.1.ResourceType", "instance"),
                ("TagSpecification.1.Tag.1.Key", key),
                ("TagSpecification.1.Tag.1.Value", value),
            ])
            .assert_error(400, "InvalidParameterValue");
    }

    // Nothing changed.
    assert_eq!(alice.instance_ids(), before);
    assert_eq!(alice.state(&id), "running");
}

#[test]
fn ec2_upload_register_run_and_terminate() {
    let server = Server::shared();
    let alice = Client::new(server, "ec2u");
    let image = alice.image();
    let r = alice.post(&[("Action", "DescribeImages"), ("Owner.1", "self")]);
    r.assert_ok("DescribeImagesResponse");
    assert_eq!(r.texts("imageId"), vec![image.clone()]);
    assert_eq!(r.text("imageState").as_deref(), Some("available"));
    assert_eq!(r.text("isPublic").as_deref(), Some("false"));

    // Unknown and malformed images.
    alice
        .post(&[("Action", "RunInstances"), ("ImageId", "ami-99999999")])
        .assert_error(400, "InvalidAMIID.NotFound");
    alice
        .post(&[("Action", "RunInstances"), ("ImageId", "ami-x")])
        .assert_error(400, "InvalidAMIID.Malformed");
    alice
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", &image),
            ("InstanceType", "m9.huge"),
        ])
        .assert_error(400, "InvalidParameterValue");

    // DryRun answers 412 after the checks, and launches nothing.
    alice
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", &image),
            ("DryRun", "true"),
        ])
        .assert_error(412, "DryRunOperation");
    assert!(alice.instance_ids().is_empty());

    // ClientToken: the retry answers the first launch.
    let run = |token: &str| {
        alice.post(&[
            ("Action", "RunInstances"),
            ("ImageId", &image),
            ("MinCount", "2"),
            ("MaxCount", "2"),
            ("ClientToken", token),
        ])
    };
    let first = run("token-1");
    first.assert_ok("RunInstancesResponse");
    let ids = first.texts("instanceId");
    assert_eq!(ids.len(), 2);
    assert_eq!(first.texts("amiLaunchIndex"), vec!["0", "1"]);
    let again = run("token-1");
    assert_eq!(again.texts("instanceId"), ids);
    assert_eq!(again.text("reservationId"), first.text("reservationId"));
    assert_eq!(alice.instance_ids().len(), 2);

    for id in &ids {
        alice.wait_for(id, "running");
    }
    let stop = alice.post(&[("Action", "StopInstances"), ("InstanceId.1", &ids[0])]);
    stop.assert_ok("StopInstancesResponse");
    alice.wait_for(&ids[0], "stopped");
    alice
        .post(&[("Action", "RebootInstances"), ("InstanceId.1", &ids[0])])
        .assert_error(400, "IncorrectInstanceState");
    alice
        .post(&[("Action", "StartInstances"), ("InstanceId.1", &ids[0])])
        .assert_ok("StartInstancesResponse");
    alice.wait_for(&ids[0], "running");
    alice
        .post(&[("Action", "RebootInstances"), ("InstanceId.1", &ids[0])])
        .assert_ok("RebootInstancesResponse");

    let term = alice.post(&[
        ("Action", "TerminateInstances"),
        ("InstanceId.1", &ids[0]),
        ("InstanceId.2", &ids[1]),
    ]);
    term.assert_ok("TerminateInstancesResponse");
    assert!(term.body.contains("<currentState>"), "{}", term.body);
    assert!(term.body.contains("<previousState>"), "{}", term.body);
    for id in &ids {
        alice.wait_for(id, "terminated");
    }
    // Terminated instances stay listed for a while, and terminating again
    // is not an error.
    assert_eq!(alice.instance_ids().len(), 2);
    alice
        .post(&[("Action", "TerminateInstances"), ("InstanceId.1", &ids[0])])
        .assert_ok("TerminateInstancesResponse");
}

#[test]
fn ec2_users_see_only_their_own() {
    let server = Server::shared();
    let alice = Client::new(server, "ec2i");
    let bob = Client::new(server, "ec2j");
    let image = alice.image();
    let id = alice.instance(&image);

    // Bob: alice's instance and private image do not exist for him.
    bob.post(&[("Action", "DescribeInstances"), ("InstanceId.1", &id)])
        .assert_error(400, "InvalidInstanceID.NotFound");
    bob.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .assert_error(400, "InvalidInstanceID.NotFound");
    bob.post(&[("Action", "RunInstances"), ("ImageId", &image)])
        .assert_error(400, "InvalidAMIID.NotFound");
    bob.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "owner"),
        ("Tag.1.Value", "bob"),
    ])
    .assert_error(400, "InvalidInstanceID.NotFound");
    assert!(!bob.instance_ids().contains(&id));
    let r = bob.post(&[("Action", "DescribeImages")]);
    assert!(!r.texts("imageId").contains(&image), "{}", r.body);

    // oneadmin sees it.
    let root = Client::admin(server);
    root.post(&[("Action", "DescribeInstances"), ("InstanceId.1", &id)])
        .assert_ok("DescribeInstancesResponse");

    // Alice's own tags, key pairs.
    alice
        .post(&[
            ("Action", "CreateTags"),
            ("ResourceId.1", &id),
            ("ResourceId.2", &image),
            ("Tag.1.Key", "Name"),
            ("Tag.1.Value", "web"),
        ])
        .assert_ok("CreateTagsResponse");
    let r = alice.post(&[
        ("Action", "DescribeInstances"),
        ("Filter.1.Name", "tag:Name"),
        ("Filter.1.Value.1", "web"),
    ]);
    assert_eq!(r.texts("instanceId"), vec![id.clone()]);
    let r = alice.post(&[("Action", "DescribeTags")]);
    assert_eq!(r.texts("resourceId").len(), 2, "{}", r.body);
    assert!(bob
        .post(&[("Action", "DescribeTags")])
        .texts("resourceId")
        .is_empty());

    let created = alice.post(&[
        ("Action", "CreateKeyPair"),
        ("KeyName", "k"),
        ("KeyType", "ed25519"),
    ]);
    created.assert_ok("CreateKeyPairResponse");
    assert!(created
        .text("keyMaterial")
        .is_some_and(|m| m.contains("OPENSSH PRIVATE KEY")));
    alice
        .post(&[("Action", "CreateKeyPair"), ("KeyName", "k")])
        .assert_error(400, "InvalidKeyPair.Duplicate");
    bob.post(&[("Action", "DescribeKeyPairs"), ("KeyName.1", "k")])
        .assert_error(400, "InvalidKeyPair.NotFound");
    let listed = alice.post(&[("Action", "DescribeKeyPairs")]);
    assert_eq!(listed.texts("keyName"), vec!["k"]);
    // The private key is answered once only.
    assert!(listed.text("keyMaterial").is_none());
    // A launch with the key puts its public key in the context.
    let r = alice.post(&[
        ("Action", "RunInstances"),
        ("ImageId", &image),
        ("KeyName", "k"),
    ]);
    r.assert_ok("RunInstancesResponse");
    assert_eq!(r.text("keyName").as_deref(), Some("k"));
    alice
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", &image),
            ("KeyName", "nope"),
        ])
        .assert_error(400, "InvalidKeyPair.NotFound");
    alice
        .post(&[("Action", "DeleteKeyPair"), ("KeyName", "k")])
        .assert_ok("DeleteKeyPairResponse");
    alice
        .post(&[("Action", "DescribeAddresses")])
        .assert_ok("DescribeAddressesResponse");
}

#[test]
fn ec2_key_pairs_carry_tags_their_owner_alone_sees() {
    let server = Server::shared();
    let alice = Client::new(server, "ec2k");
    let bob = Client::new(server, "ec2l");

    // Tags given at creation come back in the answer.
    let created = alice.post(&[
        ("Action", "CreateKeyPair"),
        ("KeyName", "tagged"),
        ("KeyType", "ed25519"),
        ("TagSpecification.1.ResourceType", "key-pair"),
        ("TagSpecification.1.Tag.1.Key", "Name"),
        ("TagSpecification.1.Tag.1.Value", "laptop"),
    ]);
    created.assert_ok("CreateKeyPairResponse");
    assert_eq!(created.text("value").as_deref(), Some("laptop"));
    let key_id = created.text("keyPairId").expect("keyPairId");

    // Bad tag specifications make no key pair.
    alice
        .post(&[
            ("Action", "CreateKeyPair"),
            ("KeyName", "wrong-type"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
        ])
        .assert_error(400, "InvalidParameterValue");
    alice
        .post(&[
            ("Action", "CreateKeyPair"),
            ("KeyName", "bad-key"),
            ("TagSpecification.1.ResourceType", "key-pair"),
            ("TagSpecification.1.Tag.1.Key", "aws:reserved"),
        ])
        .assert_error(400, "InvalidParameterValue");
    let listed = alice.post(&[("Action", "DescribeKeyPairs")]);
    assert_eq!(listed.texts("keyName"), vec!["tagged"], "{}", listed.body);

    // CreateTags on the key pair's id; DescribeTags and DescribeKeyPairs
    // show it, and the tag filters pick it.
    alice
        .post(&[
            ("Action", "CreateTags"),
            ("ResourceId.1", &key_id),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "test"),
        ])
        .assert_ok("CreateTagsResponse");
    let r = alice.post(&[
        ("Action", "DescribeTags"),
        ("Filter.1.Name", "resource-type"),
        ("Filter.1.Value.1", "key-pair"),
    ]);
    assert_eq!(r.texts("resourceId"), vec![key_id.clone(), key_id.clone()]);
    assert_eq!(r.texts("resourceType"), vec!["key-pair", "key-pair"]);
    let r = alice.post(&[
        ("Action", "DescribeKeyPairs"),
        ("Filter.1.Name", "tag:env"),
        ("Filter.1.Value.1", "test"),
    ]);
    assert_eq!(r.texts("keyName"), vec!["tagged"], "{}", r.body);
    assert_eq!(r.texts("key"), vec!["Name", "env"]);
    let r = alice.post(&[
        ("Action", "DescribeKeyPairs"),
        ("Filter.1.Name", "tag-key"),
        ("Filter.1.Value.1", "nope"),
    ]);
    assert!(r.texts("keyName").is_empty(), "{}", r.body);

    // Someone else's key pair does not exist, for oneadmin too.
    for other in [&bob, &Client::admin(server)] {
        other
            .post(&[
                ("Action", "CreateTags"),
                ("ResourceId.1", &key_id),
                ("Tag.1.Key", "owner"),
            ])
            .assert_error(400, "InvalidKeyPair.NotFound");
        let r = other.post(&[
            ("Action", "DescribeTags"),
            ("Filter.1.Name", "resource-id"),
            ("Filter.1.Value.1", &key_id),
        ]);
        assert!(r.texts("resourceId").is_empty(), "{}", r.body);
    }

    // Imported key pairs take tags too; a deleted one's are not listed.
    let line =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2IOUE6nBK9m0iKDA4SCEGBJUx5hCCcRc13P5q/EbQI imported";
    let imported = alice.post(&[
        ("Action", "ImportKeyPair"),
        ("KeyName", "imported"),
        ("PublicKeyMaterial", line),
        ("TagSpecification.1.ResourceType", "key-pair"),
        ("TagSpecification.1.Tag.1.Key", "source"),
        ("TagSpecification.1.Tag.1.Value", "laptop"),
    ]);
    imported.assert_ok("ImportKeyPairResponse");
    assert_eq!(imported.texts("key"), vec!["source"]);
    alice
        .post(&[("Action", "DeleteKeyPair"), ("KeyName", "tagged")])
        .assert_ok("DeleteKeyPairResponse");
    let r = alice.post(&[("Action", "DescribeTags")]);
    assert_eq!(r.texts("key"), vec!["source"], "{}", r.body);
}

/// An image's bytes: not all alike, so a misplaced chunk shows; larger
/// than a chunk of the body.
fn image_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// The UploadImage text fields a SigV4 client sends (no SigV2 fields).
fn v4_upload_fields() -> Vec<(String, String)> {
    vec![
        ("Action".to_string(), "UploadImage".to_string()),
        ("Version".to_string(), "2016-11-15".to_string()),
    ]
}

#[test]
fn ec2_sigv4_streamed_upload_with_and_without_content_hash() {
    let server = Server::shared();
    let alice = Client::new(server, "ec2s");
    let mut ids = Vec::new();
    for (claim, seed) in [(Claim::OfSigned, 1), (Claim::None, 2)] {
        let body = upload_body(&v4_upload_fields(), &image_bytes(300_000, seed));
        let up = alice.upload_v4(&body, &body, claim, now());
        up.assert_ok("RegisterImageResponse");
        let id = up.text("imageId").expect("imageId");
        alice
            .v4_post(
                &[("Action", "RegisterImage"), ("ImageLocation", &id)],
                now(),
            )
            .assert_ok("RegisterImageResponse");
        ids.push(id);
    }
    let r = alice.v4_post(&[("Action", "DescribeImages"), ("Owner.1", "self")], now());
    r.assert_ok("DescribeImagesResponse");
    let mut listed = r.texts("imageId");
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids, "{}", r.body);
}

#[test]
fn ec2_sigv4_streamed_upload_refusals_leave_nothing() {
    // A server of its own, so that its image directory holds only what
    // this test uploads.
    let server = Server::start();
    let alice = Client::new(&server, "ec2t");
    // Version 2008-12-01 lists the caller's images whether registered or
    // not: an upload wrongly kept would show.
    let listed = || {
        let r = alice.post(&[("Action", "DescribeImages"), ("Version", "2008-12-01")]);
        r.assert_ok("DescribeImagesResponse");
        r.texts("imageId")
    };
    let before = (image_files(&server), listed());
    assert!(before.1.is_empty(), "{:?}", before.1);

    let signed = upload_body(&v4_upload_fields(), &image_bytes(300_000, 3));
    let sent = upload_body(&v4_upload_fields(), &image_bytes(300_000, 4));
    assert_eq!(signed.len(), sent.len());
    let other_hash = sigv4::payload_hash(b"not the body");
    let refusals: [(&str, Reply); 5] = [
        (
            "tampered, no claimed hash",
            alice.upload_v4(&signed, &sent, Claim::None, now()),
        ),
        (
            "tampered, the signed body's hash claimed",
            alice.upload_v4(&signed, &sent, Claim::OfSigned, now()),
        ),
        (
            "a wrong claimed hash",
            alice.upload_v4(&signed, &signed, Claim::Value(&other_hash), now()),
        ),
        (
            "UNSIGNED-PAYLOAD",
            alice.upload_v4(&signed, &signed, Claim::Value("UNSIGNED-PAYLOAD"), now()),
        ),
        (
            "a wrong secret",
            Client {
                server: &server,
                user: alice.user.clone(),
                secret: sha1_hex("wrong"),
            }
            .upload_v4(&signed, &signed, Claim::None, now()),
        ),
    ];
    for (what, reply) in &refusals {
        eprintln!("{what}");
        reply.assert_error(401, "AuthFailure");
    }
    assert!(
        refusals[3].1.body.contains("UNSIGNED-PAYLOAD"),
        "{}",
        refusals[3].1.body
    );
    // Refused before the body is read: a stale request.
    alice
        .upload_v4(&signed, &signed, Claim::None, now() - 3600)
        .assert_error(400, "RequestExpired");

    assert_eq!((image_files(&server), listed()), before);
    // The same body, signed as sent, goes in.
    alice
        .upload_v4(&sent, &sent, Claim::None, now())
        .assert_ok("RegisterImageResponse");
    assert_eq!(listed().len(), 1);
}

#[test]
fn ec2_does_not_swallow_the_other_fronts() {
    let server = Server::shared();
    let health = call("GET", &server.url("/v1/health"), &[], None);
    assert_eq!(health.status, 200);
    assert!(
        health.content_type.contains("json"),
        "{}",
        health.content_type
    );
    let occi = call("GET", &server.url("/compute"), &[], None);
    assert_eq!(occi.status, 401, "{}", occi.body);
    assert!(!occi.body.contains("<Response>"), "{}", occi.body);
    let ui = call("GET", &server.url("/ui"), &[], None);
    assert_eq!(ui.status, 200);
    assert!(ui.content_type.contains("html"));
}
