//! The CLI's client of the `/v1` JSON API: where the server is, whose
//! credentials to send, and how every failure becomes one line on stderr
//! and an exit code (spec/CLI.md, "Credentials").
//!
//! Exit codes, the same for every command:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | the server refused the request (its message and status are shown) or answered something that is not `/v1` JSON |
//! | 2 | usage: a bad option, column or range (clap's own usage errors are 2 as well), or a local file that cannot be read |
//! | 3 | cannot talk to the server: not reachable, no credentials, or credentials it does not accept |
//!
//! May use: `crate::cli::{output, range}` (their errors are usage errors).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use super::output::{self, Object};
use super::range;

/// The variable naming the server's base URL.
pub const URL_VAR: &str = "CLOUDGATE_URL";
/// The variable holding `user:password`.
pub const AUTH_VAR: &str = "CLOUDGATE_AUTH";
/// OpenNebula's variable naming a file that holds `user:password`.
pub const ONE_AUTH_VAR: &str = "ONE_AUTH";
/// Where `cloudgate serve` listens when nothing else is configured.
pub const DEFAULT_URL: &str = "http://127.0.0.1:4567";
/// The file `serve` writes oneadmin's credentials to, relative to the
/// directory it runs in; the CLI's last resort.
pub const DEFAULT_AUTH_FILE: &str = "var/one_auth";

/// The exit codes in a sentence, for `--help`.
pub const EXIT_CODES: &str =
    "Exit codes: 0 done; 1 refused by the server; 2 usage (option, column, range, unreadable file); \
     3 cannot reach the server or authenticate.";

/// Why a command failed. Each kind has its exit code ([`Error::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status other than 401.
    #[error("{message} ({status} {code})")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The `/v1` error code (`NotFound`, `Conflict`...).
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server did not accept the credentials (401).
    #[error("{message} (401 Unauthorized; the credentials came from {origin})")]
    Unauthorized {
        /// The server's message.
        message: String,
        /// Where the credentials were read from.
        origin: String,
    },
    /// The server answered, but not with what `/v1` promises.
    #[error("unexpected answer from cloudgate: {0}")]
    BadAnswer(String),
    /// No connection could be made (or it broke).
    #[error("cannot reach cloudgate at {url}: {reason}")]
    Unreachable {
        /// The base URL tried.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// Neither variable is set and there is no `./var/one_auth`.
    #[error("no credentials: set {AUTH_VAR} or {ONE_AUTH_VAR}, or run from the directory holding {DEFAULT_AUTH_FILE}")]
    NoCredentials,
    /// The credentials named could not be read or are not `user:password`.
    #[error("cannot use the credentials in {origin}: {reason}")]
    BadCredentials {
        /// The variable or file.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A bracketed id is not a valid range.
    #[error(transparent)]
    Range(#[from] range::Error),
    /// A list option names an unknown column or is malformed.
    #[error(transparent)]
    Output(#[from] output::Error),
    /// A local file named on the command line cannot be read.
    #[error("cannot read {path}: {reason}")]
    File {
        /// The file as given.
        path: String,
        /// What the system said.
        reason: String,
    },
}

impl Error {
    /// The process exit code for this failure (the table in the module
    /// header).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Refused { .. } | Error::BadAnswer(_) => 1,
            Error::Range(_) | Error::Output(_) | Error::File { .. } => 2,
            Error::Unauthorized { .. }
            | Error::Unreachable { .. }
            | Error::NoCredentials
            | Error::BadCredentials { .. } => 3,
        }
    }

    /// Prints `cloudgate: <what went wrong>` on stderr and gives the exit
    /// code.
    pub fn report(&self) -> ExitCode {
        eprintln!("cloudgate: {self}");
        ExitCode::from(self.exit_code())
    }
}

/// Success, or the failure reported.
pub fn finish(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

/// Runs `action` on every id or name, ranges expanded, as OpenNebula's
/// commands do: a failure is reported and the others still run; the exit
/// code is the first failure's. A bad range stops everything before the
/// environment is read or any request sent.
pub fn for_each(
    keys: &[String],
    mut action: impl FnMut(&Client, &str) -> Result<(), Error>,
) -> ExitCode {
    let run = || -> Result<_, Error> { Ok((range::expand_all(keys)?, Client::from_env()?)) };
    let (keys, client) = match run() {
        Ok(ready) => ready,
        Err(e) => return e.report(),
    };
    let mut first_failure = None;
    for key in &keys {
        if let Err(e) = action(&client, key) {
            let code = e.report();
            first_failure.get_or_insert(code);
        }
    }
    first_failure.unwrap_or(ExitCode::SUCCESS)
}

/// `DELETE` of each object, by id or name ([`for_each`]); `path` gives
/// an object's resource.
pub fn delete_each(keys: &[String], path: fn(&str) -> String) -> ExitCode {
    for_each(keys, |client, key| {
        client.request("DELETE", &path(key), None).map(drop)
    })
}

/// `POST <resource>/<action>` on each object, by id or name
/// ([`for_each`]): `enable`, `publish`...
pub fn post_each(keys: &[String], path: fn(&str) -> String, action: &str) -> ExitCode {
    for_each(keys, |client, key| {
        client
            .object("POST", &format!("{}/{action}", path(key)), None)
            .map(drop)
    })
}

/// Prints `ID: <id>` of the object a `POST <pool>` created; `what` names
/// it in the error when the answer has no id.
pub fn print_new_id(created: &Object, pool: &str, what: &str) -> Result<(), Error> {
    println!("ID: {}", new_id(created, pool, what)?);
    Ok(())
}

/// The id of the object a `POST <route>` created; `what` names it in the
/// error when the answer has none.
pub fn new_id(created: &Object, route: &str, what: &str) -> Result<u64, Error> {
    created
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::BadAnswer(format!("POST {route}: the new {what} has no id")))
}

/// `list`: the objects of `pool` (a `/v1` path) as `table` shows them.
pub fn print_list(table: &output::Pool, args: &output::ListArgs, pool: &str) -> Result<(), Error> {
    let listing = output::Listing::new(table, args)?;
    let objects = Client::from_env()?.list(pool)?;
    print!("{}", listing.render(objects));
    Ok(())
}

/// `show`: the object at `path` as `table` shows one.
pub fn print_one(
    table: &output::Pool,
    path: &str,
    format: &output::FormatArgs,
) -> Result<(), Error> {
    let object = Client::from_env()?.object("GET", path, None)?;
    print!("{}", table.render_one(&object, format.format()));
    Ok(())
}

/// `user:password` and where it came from (for error messages).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    password: String,
    /// The variable or file it was read from.
    pub origin: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password: Debug output ends up in logs and panics.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Reads the first line of `text` as `user:password`, split at the
    /// first `:` (a password may contain more).
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        let line = text.lines().next().unwrap_or("");
        match line.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => Ok(Credentials {
                user: user.to_string(),
                password: password.to_string(),
                origin: origin.to_string(),
            }),
            _ => Err(Error::BadCredentials {
                origin: origin.to_string(),
                reason: "expected one line user:password".to_string(),
            }),
        }
    }

    /// `CLOUDGATE_AUTH`, else the file named by `ONE_AUTH`, else
    /// `./var/one_auth`. An empty variable counts as unset.
    pub fn from_env() -> Result<Self, Error> {
        Self::find(
            non_empty_var(AUTH_VAR),
            non_empty_var(ONE_AUTH_VAR).map(PathBuf::from),
            Path::new(DEFAULT_AUTH_FILE),
        )
    }

    /// [`Credentials::from_env`] with the environment passed in.
    fn find(
        auth: Option<String>,
        one_auth: Option<PathBuf>,
        default_file: &Path,
    ) -> Result<Self, Error> {
        if let Some(text) = auth {
            return Self::parse(&text, AUTH_VAR);
        }
        if let Some(path) = one_auth {
            let origin = format!("{ONE_AUTH_VAR} file {}", path.display());
            return match fs::read_to_string(&path) {
                Ok(text) => Self::parse(&text, &origin),
                Err(e) => Err(Error::BadCredentials {
                    origin,
                    reason: e.to_string(),
                }),
            };
        }
        let origin = default_file.display().to_string();
        match fs::read_to_string(default_file) {
            Ok(text) => Self::parse(&text, &origin),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::NoCredentials),
            Err(e) => Err(Error::BadCredentials {
                origin,
                reason: e.to_string(),
            }),
        }
    }

    /// The `Authorization` header value.
    fn basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.user, self.password))
        )
    }
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A connection to one server with one user's credentials.
pub struct Client {
    base: String,
    authorization: String,
    origin: String,
    agent: ureq::Agent,
}

impl Client {
    /// The server at `CLOUDGATE_URL` (default [`DEFAULT_URL`]) with the
    /// credentials [`Credentials::from_env`] finds.
    pub fn from_env() -> Result<Self, Error> {
        let base = non_empty_var(URL_VAR).unwrap_or_else(|| DEFAULT_URL.to_string());
        Ok(Self::new(&base, &Credentials::from_env()?))
    }

    /// A client of the server at `base` (`http://host:port`).
    pub fn new(base: &str, credentials: &Credentials) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            // Generous, but a server that stops answering must not hang a
            // script for ever.
            .timeout_read(Duration::from_secs(120))
            .user_agent(concat!("cloudgate-cli/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            base: base.trim_end_matches('/').to_string(),
            authorization: credentials.basic(),
            origin: credentials.origin.clone(),
            agent,
        }
    }

    /// Sends a request to `path` (which starts with `/v1/`) and returns the
    /// JSON answer, or null for an empty one (204).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Error> {
        let request = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &self.authorization)
            .set("Accept", "application/json");
        let sent = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        self.answer(method, path, sent)
    }

    /// Sends `length` bytes read from `body` as a `POST` to `path`, streamed
    /// (never read whole), and returns the JSON object answered: an image
    /// upload.
    pub fn upload(
        &self,
        path: &str,
        length: u64,
        body: impl std::io::Read,
    ) -> Result<Object, Error> {
        let sent = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Authorization", &self.authorization)
            .set("Accept", "application/json")
            .set("Content-Type", "application/octet-stream")
            .set("Content-Length", &length.to_string())
            .send(body);
        match self.answer("POST", path, sent)? {
            Value::Object(object) => Ok(object),
            other => Err(Error::BadAnswer(format!(
                "POST {path}: expected an object, got {other}"
            ))),
        }
    }

    /// The JSON answer of a sent request, or the error it stands for.
    fn answer(
        &self,
        method: &str,
        path: &str,
        sent: Result<ureq::Response, ureq::Error>,
    ) -> Result<Value, Error> {
        let response = match sent {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                return Err(self.refusal(status, response))
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(Error::Unreachable {
                    url: self.base.clone(),
                    reason: transport_reason(&t),
                })
            }
        };
        let text = response.into_string().map_err(|e| {
            Error::BadAnswer(format!("{method} {path}: cannot read the answer ({e})"))
        })?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| Error::BadAnswer(format!("{method} {path}: not JSON ({e})")))
    }

    /// A request whose answer is one object.
    pub fn object(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Object, Error> {
        match self.request(method, path, body)? {
            Value::Object(object) => Ok(object),
            other => Err(Error::BadAnswer(format!(
                "{method} {path}: expected an object, got {other}"
            ))),
        }
    }

    /// `GET` of a list of objects.
    pub fn list(&self, path: &str) -> Result<Vec<Object>, Error> {
        let not_a_list = || Error::BadAnswer(format!("GET {path}: expected a list of objects"));
        match self.request("GET", path, None)? {
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::Object(object) => Ok(object),
                    _ => Err(not_a_list()),
                })
                .collect(),
            _ => Err(not_a_list()),
        }
    }

    /// The error a status answer stands for: the server's own message when
    /// the body is the `/v1` error form, else the status line (a proxy or
    /// another server answered).
    fn refusal(&self, status: u16, response: ureq::Response) -> Error {
        let status_text = response.status_text().to_string();
        let body: Option<Value> = response
            .into_string()
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let error = body.as_ref().and_then(|b| b.get("error"));
        let field = |name| {
            error
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let message = field("message")
            .unwrap_or_else(|| format!("the server answered {status} {status_text}"));
        if status == 401 {
            return Error::Unauthorized {
                message,
                origin: self.origin.clone(),
            };
        }
        Error::Refused {
            status,
            code: field("code").unwrap_or(status_text),
            message,
        }
    }
}

/// ureq's transport error without the URL (the message names it already),
/// down to the underlying cause ("Connection refused").
fn transport_reason(error: &ureq::Transport) -> String {
    let mut reason = error.kind().to_string();
    if let Some(message) = error.message() {
        reason.push_str(&format!(": {message}"));
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    reason
}

/// One path segment, percent-encoded: ids are digits, but names may hold
/// `/`, `?`, `%` and other characters a URL path gives a meaning to.
pub fn segment(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, password: &str, origin: &str) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
            origin: origin.into(),
        }
    }

    #[test]
    fn auth_line_splits_at_the_first_colon_and_drops_the_newline() {
        assert_eq!(
            Credentials::parse("oneadmin:pa:ss\n", "f").expect("parsed"),
            creds("oneadmin", "pa:ss", "f")
        );
        assert_eq!(
            Credentials::parse("a:b\r\nignored\n", "f").expect("parsed"),
            creds("a", "b", "f")
        );
    }

    #[test]
    fn auth_lines_without_user_or_password_are_refused() {
        for bad in ["", "\n", "oneadmin", "oneadmin:", ":secret", "\noneadmin:x"] {
            let e = Credentials::parse(bad, "var/one_auth").expect_err(bad);
            assert_eq!(
                e.to_string(),
                "cannot use the credentials in var/one_auth: expected one line user:password"
            );
            assert_eq!(e.exit_code(), 3);
        }
    }

    #[test]
    fn the_variable_wins_over_the_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("auth");
        fs::write(&file, "fromfile:x\n").expect("write");
        let found =
            Credentials::find(Some("fromvar:y".into()), Some(file.clone()), &file).expect("found");
        assert_eq!(found, creds("fromvar", "y", "CLOUDGATE_AUTH"));
    }

    #[test]
    fn one_auth_wins_over_the_default_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (named, default) = (dir.path().join("named"), dir.path().join("one_auth"));
        fs::write(&named, "alice:secret\n").expect("write");
        fs::write(&default, "oneadmin:x\n").expect("write");
        let found = Credentials::find(None, Some(named.clone()), &default).expect("found");
        assert_eq!(found.user, "alice");
        assert_eq!(found.origin, format!("ONE_AUTH file {}", named.display()));
    }

    #[test]
    fn a_missing_one_auth_file_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().expect("temp dir");
        let default = dir.path().join("one_auth");
        fs::write(&default, "oneadmin:x\n").expect("write");
        let e = Credentials::find(None, Some(dir.path().join("missing")), &default)
            .expect_err("missing");
        assert!(matches!(e, Error::BadCredentials { .. }), "{e}");
    }

    #[test]
    fn the_default_file_is_the_last_resort() {
        let dir = tempfile::tempdir().expect("temp dir");
        let default = dir.path().join("one_auth");
        let e = Credentials::find(None, None, &default).expect_err("absent");
        assert!(matches!(e, Error::NoCredentials));
        assert_eq!(
            e.to_string(),
            "no credentials: set CLOUDGATE_AUTH or ONE_AUTH, or run from the directory holding var/one_auth"
        );
        fs::write(&default, "oneadmin:pw").expect("write");
        assert_eq!(
            Credentials::find(None, None, &default).expect("found").user,
            "oneadmin"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", creds("alice", "hunter2", "x"));
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn basic_header_is_base64_of_user_colon_password() {
        assert_eq!(
            creds("Aladdin", "open sesame", "x").basic(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn segments_escape_what_a_path_would_read() {
        assert_eq!(segment("alice-1.b_c~"), "alice-1.b_c~");
        assert_eq!(segment("a/b?c#d%e&f"), "a%2Fb%3Fc%23d%25e%26f");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn each_kind_of_failure_has_its_exit_code() {
        let refused = Error::Refused {
            status: 404,
            code: "NotFound".into(),
            message: "user bob not found".into(),
        };
        assert_eq!(refused.to_string(), "user bob not found (404 NotFound)");
        assert_eq!(refused.exit_code(), 1);
        assert_eq!(Error::BadAnswer("x".into()).exit_code(), 1);
        let range = range::expand("[2-1]").expect_err("bad range");
        assert_eq!(Error::from(range).exit_code(), 2);
        assert_eq!(
            Error::from(output::Error::BadFilter("x".into())).exit_code(),
            2
        );
        let unreachable = Error::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "Connection Failed".into(),
        };
        assert_eq!(
            unreachable.to_string(),
            "cannot reach cloudgate at http://127.0.0.1:1: Connection Failed"
        );
        assert_eq!(unreachable.exit_code(), 3);
        let unauthorized = Error::Unauthorized {
            message: "invalid or missing credentials".into(),
            origin: "CLOUDGATE_AUTH".into(),
        };
        assert_eq!(
            unauthorized.to_string(),
            "invalid or missing credentials (401 Unauthorized; the credentials came from CLOUDGATE_AUTH)"
        );
        assert_eq!(unauthorized.exit_code(), 3);
    }
}
