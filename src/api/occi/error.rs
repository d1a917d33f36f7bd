//! How the OCCI front reports errors (spec/OCCI.md §3.1, STYLE.md §3): a
//! status and a one-line `text/plain` message naming the problem, as
//! OpenNebula's servers did (libcloud passes the text on as the exception
//! message). Every core and auth error is mapped here, in exhaustive
//! matches, so a new variant does not compile until this front has
//! decided what it means.
//!
//! May use: `crate::core`, `crate::auth`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::auth;
use crate::core;

/// The 401 body: OpenNebula 1.4's text.
pub const INVALID_CREDENTIALS: &str = "Invalid credentials";

/// An error of the OCCI front.
#[derive(Debug, thiserror::Error)]
pub enum OcciError {
    /// A core call failed.
    #[error(transparent)]
    Core(#[from] core::Error),
    /// The request could not be authenticated.
    #[error("{INVALID_CREDENTIALS}")]
    Auth(auth::Error),
    /// The request is not what the route takes: malformed XML, a missing
    /// element, a bad value, an unknown image or network.
    #[error("{0}")]
    BadRequest(String),
    /// The request body (or a part of an upload) is over its limit.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was too large (`request body`, `occixml part`, `image`).
        what: &'static str,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Nothing has this path or name (an unknown route, an unknown
    /// instance type); the message is shown as it is.
    #[error("{0}")]
    NotFound(String),
    /// The resource exists but does not define this verb (seed 3.3.6).
    #[error("{0} is not implemented on this resource")]
    NotImplemented(String),
}

impl OcciError {
    /// A 400 with this message.
    pub fn bad(message: impl Into<String>) -> Self {
        OcciError::BadRequest(message.into())
    }

    /// The one-line message shown to the client.
    fn message(&self) -> String {
        let text = match self {
            // STYLE.md §3: driver output and internal details name paths
            // and hosts; they go to the log, the response points at it.
            OcciError::Core(
                core::Error::Internal(_)
                | core::Error::Driver { .. }
                | core::Error::Unreachable { .. },
            ) => "Internal error; the server log has the detail under this response's x-request-id"
                .to_string(),
            other => other.to_string(),
        };
        // One line, whatever a message quoted from the request contains.
        text.replace(['\r', '\n'], " ")
    }
}

impl ResponseError for OcciError {
    fn status_code(&self) -> StatusCode {
        match self {
            OcciError::Core(e) => match e {
                core::Error::NotFound { .. } => StatusCode::NOT_FOUND,
                core::Error::Forbidden { .. } => StatusCode::FORBIDDEN,
                // spec/OCCI.md §6.2: an action refused in the current
                // state is the client's mistake, never a 500.
                core::Error::InvalidState { .. } => StatusCode::BAD_REQUEST,
                core::Error::Invalid { .. } => StatusCode::BAD_REQUEST,
                core::Error::Conflict(_) => StatusCode::CONFLICT,
                core::Error::Driver { .. } | core::Error::Unreachable { .. } => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                core::Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                core::Error::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
                core::Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            // One answer for every authentication failure (spec/OCCI.md
            // §2.1): nothing tells a wrong password from an unknown user.
            OcciError::Auth(e) => match e {
                auth::Error::Missing => StatusCode::UNAUTHORIZED,
                auth::Error::Malformed(_) => StatusCode::UNAUTHORIZED,
                auth::Error::Invalid => StatusCode::UNAUTHORIZED,
                auth::Error::Unavailable => StatusCode::UNAUTHORIZED,
                // Basic has no time window; were it ever to say so, the
                // credentials are still refused.
                auth::Error::Expired => StatusCode::UNAUTHORIZED,
            },
            OcciError::BadRequest(_) => StatusCode::BAD_REQUEST,
            OcciError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            OcciError::NotFound(_) => StatusCode::NOT_FOUND,
            OcciError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            OcciError::Core(core::Error::Internal(detail)) => {
                tracing::error!("OCCI: internal error: {detail}")
            }
            OcciError::Core(e @ (core::Error::Driver { .. } | core::Error::Unreachable { .. })) => {
                tracing::error!("OCCI: {e}")
            }
            OcciError::Auth(auth::Error::Unavailable) => {
                tracing::error!("OCCI: the user store could not be read")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        if let OcciError::Auth(_) = self {
            response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"cloudgate\""));
        }
        response
            .content_type("text/plain; charset=utf-8")
            .body(self.message())
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;
    use crate::core::Kind;

    fn answer(e: OcciError) -> (u16, String, Option<String>) {
        let response = e.error_response();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        assert_eq!(content_type.as_deref(), Some("text/plain; charset=utf-8"));
        let body = response.into_body().try_into_bytes().unwrap_or_default();
        let text = String::from_utf8(body.to_vec()).unwrap_or_default();
        assert!(!text.contains('\n'), "one line: {text:?}");
        (status, text, challenge)
    }

    /// STYLE.md §3, the OCCI column, one row each.
    #[test]
    fn every_row_of_the_error_table() {
        let state = || core::Error::InvalidState {
            kind: Kind::Vm,
            id: "7".into(),
            state: "pend".into(),
            action: "suspend".into(),
        };
        let cases: Vec<(OcciError, u16, &str)> = vec![
            (OcciError::bad("Invalid state"), 400, "Invalid state"),
            (
                OcciError::Auth(auth::Error::Missing),
                401,
                "Invalid credentials",
            ),
            (
                OcciError::Auth(auth::Error::Malformed("x")),
                401,
                "Invalid credentials",
            ),
            (
                OcciError::Auth(auth::Error::Invalid),
                401,
                "Invalid credentials",
            ),
            (
                OcciError::Auth(auth::Error::Unavailable),
                401,
                "Invalid credentials",
            ),
            (
                core::Error::not_found(Kind::Vm, 7).into(),
                404,
                "virtual machine 7 not found",
            ),
            (
                core::Error::Forbidden {
                    kind: Kind::Image,
                    id: "3".into(),
                    action: "show".into(),
                }
                .into(),
                403,
                "not allowed to show image 3",
            ),
            (
                state().into(),
                400,
                "cannot suspend virtual machine 7 in state pend",
            ),
            (
                core::Error::invalid("NAME", "missing").into(),
                400,
                "NAME: missing",
            ),
            (
                core::Error::Conflict("network x has 1 leases in use".into()).into(),
                409,
                "network x has 1 leases in use",
            ),
            (
                core::Error::Unsupported("publishing".into()).into(),
                501,
                "publishing is not supported",
            ),
            (
                core::Error::TooLarge {
                    what: "image".into(),
                    limit: 10,
                }
                .into(),
                413,
                "image is larger than the limit of 10 bytes",
            ),
            (
                OcciError::TooLarge {
                    what: "request body",
                    limit: 5,
                },
                413,
                "request body is larger than the limit of 5 bytes",
            ),
            (
                OcciError::NotFound("INSTANCE_TYPE huge not found".into()),
                404,
                "INSTANCE_TYPE huge not found",
            ),
            (
                OcciError::NotImplemented("PATCH".into()),
                501,
                "PATCH is not implemented on this resource",
            ),
        ];
        for (error, status, text) in cases {
            let (got_status, got_text, challenge) = answer(error);
            assert_eq!((got_status, got_text.as_str()), (status, text));
            assert_eq!(challenge.is_some(), status == 401, "{text}");
        }
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        for error in [
            core::Error::Internal("/var/lib/secret path".into()),
            core::Error::Driver {
                action: "deploy".into(),
                host: "node1".into(),
                message: "ssh: /root/.ssh/id_rsa\nsecond line".into(),
            },
        ] {
            let (status, text, _) = answer(error.into());
            assert_eq!(status, 500);
            assert!(!text.contains('/') && !text.contains("node1"), "{text}");
        }
    }

    #[test]
    fn messages_quoting_the_request_stay_on_one_line() {
        let (_, text, _) = answer(OcciError::bad("bad\r\nvalue"));
        assert_eq!(text, "bad  value");
    }
}
