//! How the EC2 front reports errors (spec/EC2.md §7, STYLE.md §3): always
//! the XML document `Response/Errors/Error/{Code,Message}` + `RequestID`
//! with a 4xx/5xx status — never plain text, which breaks botocore. Core
//! and auth errors are mapped here in exhaustive matches, so a new variant
//! does not compile until this front has decided what it means.
//!
//! Another user's instance, image or key pair answers exactly like one
//! that does not exist (`*.NotFound`), so ids cannot be probed.
//!
//! May use: `crate::core`, `crate::auth`, `crate::api::common`, `super`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::ids;
use super::xml::render_error;
use crate::api::common::RequestId;
use crate::auth;
use crate::core::{self, Kind};

/// An error of the EC2 front.
#[derive(Debug, thiserror::Error)]
pub enum Ec2Error {
    /// A core call failed.
    #[error(transparent)]
    Core(#[from] core::Error),
    /// The request could not be authenticated.
    #[error("authentication failed: {0}")]
    Auth(#[from] auth::Error),
    /// Missing or unknown `Action`.
    #[error("{0}")]
    InvalidAction(String),
    /// A required parameter is absent.
    #[error("The request must contain the parameter {0}")]
    MissingParameter(String),
    /// A parameter's value is wrong.
    #[error("{0}")]
    InvalidParameterValue(String),
    /// An image id that does not parse.
    #[error("Invalid id: \"{0}\" (expecting \"ami-...\")")]
    MalformedImageId(String),
    /// An instance id that does not parse.
    #[error("Invalid id: \"{0}\" (expecting \"i-...\")")]
    MalformedInstanceId(String),
    /// A resource id of CreateTags/DeleteTags that names no taggable kind.
    #[error("The ID '{0}' is not valid")]
    InvalidId(String),
    /// A key pair name already used by this user.
    #[error("The keypair '{0}' already exists.")]
    KeyPairDuplicate(String),
    /// ImportKeyPair's key is not an OpenSSH public key.
    #[error("Key is not in valid OpenSSH public key format: {0}")]
    KeyFormat(String),
    /// `DryRun=true` and the request would have succeeded.
    #[error("Request would have succeeded, but DryRun flag is set.")]
    DryRun,
    /// The body is over `BODY_LIMIT` (an upload over `UPLOAD_LIMIT` is a
    /// core `TooLarge`).
    #[error("The request body is larger than the limit of {0} bytes")]
    BodyTooLarge(u64),
    /// The body could not be read or parsed (a broken multipart body, a
    /// connection cut mid-body).
    #[error("The request body could not be read: {0}")]
    BadBody(String),
    /// A method other than GET and POST.
    #[error("EC2 Query requests are GET or POST")]
    MethodNotAllowed,
}

impl Ec2Error {
    /// `MissingParameter` for this parameter.
    pub fn missing(name: &str) -> Self {
        Ec2Error::MissingParameter(name.to_string())
    }

    /// `InvalidParameterValue` with this message.
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Ec2Error::InvalidParameterValue(message.into())
    }

    /// The EC2 error code and HTTP status (§7.2).
    pub fn code(&self) -> (&'static str, StatusCode) {
        const BAD: StatusCode = StatusCode::BAD_REQUEST;
        match self {
            Ec2Error::Core(e) => match e {
                core::Error::NotFound { kind, .. } | core::Error::Forbidden { kind, .. } => {
                    match (kind, e) {
                        (Kind::Image, _) => ("InvalidAMIID.NotFound", BAD),
                        (Kind::Vm, _) => ("InvalidInstanceID.NotFound", BAD),
                        (Kind::KeyPair, _) => ("InvalidKeyPair.NotFound", BAD),
                        (
                            Kind::User | Kind::Host | Kind::Network,
                            core::Error::Forbidden { .. },
                        ) => ("UnauthorizedOperation", StatusCode::FORBIDDEN),
                        (Kind::User | Kind::Host | Kind::Network, _) => {
                            ("InvalidParameterValue", BAD)
                        }
                    }
                }
                core::Error::InvalidState { kind, .. } => match kind {
                    Kind::Vm => ("IncorrectInstanceState", BAD),
                    Kind::Image | Kind::KeyPair | Kind::User | Kind::Host | Kind::Network => {
                        ("IncorrectState", BAD)
                    }
                },
                core::Error::Invalid { .. } => ("InvalidParameterValue", BAD),
                core::Error::Conflict(_) => ("InvalidParameterValue", BAD),
                core::Error::TooLarge { .. } => {
                    ("RequestEntityTooLarge", StatusCode::PAYLOAD_TOO_LARGE)
                }
                core::Error::Unsupported(_) => ("Unsupported", BAD),
                core::Error::Driver { .. } | core::Error::Unreachable { .. } => {
                    ("InternalError", StatusCode::INTERNAL_SERVER_ERROR)
                }
                core::Error::Internal(_) => ("InternalError", StatusCode::INTERNAL_SERVER_ERROR),
            },
            Ec2Error::Auth(e) => match e {
                auth::Error::Missing => ("AuthFailure", StatusCode::UNAUTHORIZED),
                auth::Error::Malformed(_) => ("AuthFailure", StatusCode::UNAUTHORIZED),
                auth::Error::Invalid => ("AuthFailure", StatusCode::UNAUTHORIZED),
                auth::Error::Expired => ("RequestExpired", BAD),
                // The user store failed: a retry may help; no credential
                // was judged.
                auth::Error::Unavailable => ("InternalError", StatusCode::INTERNAL_SERVER_ERROR),
            },
            Ec2Error::InvalidAction(_) => ("InvalidAction", BAD),
            Ec2Error::MissingParameter(_) => ("MissingParameter", BAD),
            Ec2Error::InvalidParameterValue(_) => ("InvalidParameterValue", BAD),
            Ec2Error::MalformedImageId(_) => ("InvalidAMIID.Malformed", BAD),
            Ec2Error::MalformedInstanceId(_) => ("InvalidInstanceID.Malformed", BAD),
            Ec2Error::InvalidId(_) => ("InvalidID", BAD),
            Ec2Error::KeyPairDuplicate(_) => ("InvalidKeyPair.Duplicate", BAD),
            Ec2Error::KeyFormat(_) => ("InvalidKey.Format", BAD),
            Ec2Error::DryRun => ("DryRunOperation", StatusCode::PRECONDITION_FAILED),
            Ec2Error::BodyTooLarge(_) => ("RequestEntityTooLarge", StatusCode::PAYLOAD_TOO_LARGE),
            Ec2Error::BadBody(_) => ("InvalidParameterValue", BAD),
            Ec2Error::MethodNotAllowed => ("InvalidAction", StatusCode::METHOD_NOT_ALLOWED),
        }
    }

    /// The message for the client: names the object, never internals.
    pub fn message(&self) -> String {
        match self {
            Ec2Error::Core(e) => match e {
                core::Error::NotFound { kind, id } | core::Error::Forbidden { kind, id, .. } => {
                    match kind {
                        Kind::Image => format!("The image id '{}' does not exist", shown(id, ids::image_id)),
                        Kind::Vm => format!(
                            "The instance ID '{}' does not exist",
                            shown(id, ids::instance_id)
                        ),
                        Kind::KeyPair => format!("The key pair '{id}' does not exist"),
                        Kind::User | Kind::Host | Kind::Network => e.to_string(),
                    }
                }
                core::Error::InvalidState {
                    kind: Kind::Vm,
                    id,
                    state,
                    action,
                } => format!(
                    "Cannot {action} instance '{}' in its current state ({state})",
                    shown(id, ids::instance_id)
                ),
                core::Error::Unsupported(_) => format!(
                    "The instance type or feature is not supported in your requested Availability Zone. ({e})"
                ),
                core::Error::Internal(_) | core::Error::Driver { .. } | core::Error::Unreachable { .. } => {
                    "An internal error has occurred; the server log has the detail under this RequestID"
                        .to_string()
                }
                core::Error::InvalidState { .. }
                | core::Error::Invalid { .. }
                | core::Error::Conflict(_)
                | core::Error::TooLarge { .. } => e.to_string(),
            },
            Ec2Error::Auth(e) => match e {
                auth::Error::Malformed(why) => {
                    format!("AWS was not able to validate the provided access credentials: {why}")
                }
                auth::Error::Missing => {
                    "The request must contain the parameter AWSAccessKeyId or an Authorization header"
                        .to_string()
                }
                auth::Error::Invalid => {
                    "AWS was not able to validate the provided access credentials".to_string()
                }
                auth::Error::Expired => {
                    "Request has expired: its Timestamp, Expires or X-Amz-Date is outside the accepted window"
                        .to_string()
                }
                auth::Error::Unavailable => {
                    "An internal error has occurred; the server log has the detail under this RequestID"
                        .to_string()
                }
            },
            other => other.to_string(),
        }
    }

    /// The error document for this request.
    pub fn document(&self, request_id: &str) -> String {
        render_error(self.code().0, &self.message(), request_id)
    }

    /// Attaches the request's id, for answering.
    pub fn with_id(self, request_id: RequestId) -> Failure {
        Failure {
            error: self,
            request_id,
        }
    }
}

/// An id as EC2 shows it when the core gave a number; else as given.
fn shown(id: &str, format: fn(u64) -> String) -> String {
    id.parse::<u64>().map_or_else(|_| id.to_string(), format)
}

/// An error with the id of the request it answers: what handlers return.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub error: Ec2Error,
    /// The request's id, in `RequestID`.
    pub request_id: RequestId,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.error, self.request_id)
    }
}

impl ResponseError for Failure {
    fn status_code(&self) -> StatusCode {
        self.error.code().1
    }

    fn error_response(&self) -> HttpResponse {
        match &self.error {
            Ec2Error::Core(core::Error::Internal(detail)) => {
                tracing::error!(request_id = %self.request_id, "EC2: internal error: {detail}")
            }
            Ec2Error::Core(e @ (core::Error::Driver { .. } | core::Error::Unreachable { .. })) => {
                tracing::error!(request_id = %self.request_id, "EC2: {e}")
            }
            Ec2Error::Auth(auth::Error::Unavailable) => tracing::error!(
                request_id = %self.request_id,
                "EC2: the user store could not be read"
            ),
            _ => {}
        }
        HttpResponse::build(self.status_code())
            .content_type("text/xml; charset=utf-8")
            .body(self.error.document(self.request_id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: Ec2Error) -> (&'static str, u16) {
        let (c, s) = e.code();
        (c, s.as_u16())
    }

    /// Each row of STYLE.md §3's EC2 column.
    #[test]
    fn style_table_rows() {
        assert_eq!(
            code(Ec2Error::missing("ImageId")),
            ("MissingParameter", 400)
        );
        assert_eq!(
            code(Ec2Error::InvalidAction("x".into())),
            ("InvalidAction", 400)
        );
        assert_eq!(
            code(Ec2Error::invalid_value("x")),
            ("InvalidParameterValue", 400)
        );
        assert_eq!(
            code(Ec2Error::MalformedImageId("x".into())),
            ("InvalidAMIID.Malformed", 400)
        );
        assert_eq!(
            code(Ec2Error::MalformedInstanceId("x".into())),
            ("InvalidInstanceID.Malformed", 400)
        );
        for e in [
            auth::Error::Missing,
            auth::Error::Malformed("m"),
            auth::Error::Invalid,
        ] {
            assert_eq!(code(Ec2Error::Auth(e)), ("AuthFailure", 401));
        }
        assert_eq!(
            code(Ec2Error::Auth(auth::Error::Expired)),
            ("RequestExpired", 400)
        );
        assert_eq!(
            code(Ec2Error::Auth(auth::Error::Unavailable)),
            ("InternalError", 500)
        );
        assert_eq!(
            code(core::Error::not_found(Kind::Vm, 42).into()),
            ("InvalidInstanceID.NotFound", 400)
        );
        assert_eq!(
            code(core::Error::not_found(Kind::Image, 5).into()),
            ("InvalidAMIID.NotFound", 400)
        );
        let forbidden = |kind| core::Error::Forbidden {
            kind,
            id: "7".into(),
            action: "terminate".into(),
        };
        assert_eq!(
            code(forbidden(Kind::Vm).into()),
            ("InvalidInstanceID.NotFound", 400)
        );
        assert_eq!(
            code(forbidden(Kind::Image).into()),
            ("InvalidAMIID.NotFound", 400)
        );
        assert_eq!(
            code(forbidden(Kind::KeyPair).into()),
            ("InvalidKeyPair.NotFound", 400)
        );
        assert_eq!(
            code(forbidden(Kind::Host).into()),
            ("UnauthorizedOperation", 403)
        );
        assert_eq!(
            code(
                core::Error::InvalidState {
                    kind: Kind::Vm,
                    id: "7".into(),
                    state: "pend".into(),
                    action: "stop".into()
                }
                .into()
            ),
            ("IncorrectInstanceState", 400)
        );
        assert_eq!(
            code(core::Error::invalid("MEMORY", "bad").into()),
            ("InvalidParameterValue", 400)
        );
        assert_eq!(
            code(core::Error::Conflict("taken".into()).into()),
            ("InvalidParameterValue", 400)
        );
        assert_eq!(
            code(core::Error::Unsupported("x".into()).into()),
            ("Unsupported", 400)
        );
        assert_eq!(
            code(
                core::Error::Driver {
                    action: "deploy".into(),
                    host: "h".into(),
                    message: "m".into()
                }
                .into()
            ),
            ("InternalError", 500)
        );
        assert_eq!(
            code(core::Error::Internal("sql".into()).into()),
            ("InternalError", 500)
        );
        assert_eq!(
            code(
                core::Error::TooLarge {
                    what: "image".into(),
                    limit: 1
                }
                .into()
            ),
            ("RequestEntityTooLarge", 413)
        );
        assert_eq!(
            code(Ec2Error::BodyTooLarge(1)),
            ("RequestEntityTooLarge", 413)
        );
        assert_eq!(code(Ec2Error::DryRun), ("DryRunOperation", 412));
    }

    #[test]
    fn another_users_instance_reads_like_a_missing_one() {
        let forbidden: Ec2Error = core::Error::Forbidden {
            kind: Kind::Vm,
            id: "7".into(),
            action: "terminate".into(),
        }
        .into();
        let missing: Ec2Error = core::Error::not_found(Kind::Vm, 7).into();
        assert_eq!(forbidden.message(), missing.message());
        assert_eq!(
            missing.message(),
            "The instance ID 'i-00000007' does not exist"
        );
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        let e: Ec2Error = core::Error::Internal("database: disk I/O error at /var/x".into()).into();
        assert!(!e.message().contains("/var/x"));
        let e: Ec2Error = core::Error::Driver {
            action: "deploy".into(),
            host: "node1".into(),
            message: "virsh: /secret/path".into(),
        }
        .into();
        assert!(!e.message().contains("/secret/path"));
    }

    #[test]
    fn response_is_xml_with_the_status() {
        let failure = Ec2Error::missing("ImageId").with_id(RequestId::next());
        let response = failure.error_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/xml; charset=utf-8")
        );
    }
}
