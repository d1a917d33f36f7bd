//! How `/v1` reports errors: `{"error": {"code": ..., "message": ...}}`
//! with the status that fits, in one exhaustive match over the core's
//! errors (STYLE.md §3).

use actix_web::error::JsonPayloadError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::auth;
use crate::core;

/// An error of the JSON API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A core call failed.
    #[error(transparent)]
    Core(#[from] core::Error),
    /// The request could not be authenticated.
    #[error("authentication required: {0}")]
    Auth(auth::Error),
    /// The body is not the JSON this route takes.
    #[error("malformed request body: {0}")]
    BadBody(String),
    /// The query string is not what this route takes.
    #[error("malformed query: {0}")]
    BadQuery(String),
    /// The body is larger than the configured limit.
    #[error("request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// No route has this path.
    #[error("no such resource")]
    NoRoute,
    /// The route exists but not with this method.
    #[error("method not allowed on this resource")]
    MethodNotAllowed,
}

impl ApiError {
    /// Maps actix's JSON extractor errors: an oversized body is 413,
    /// anything else about the body 400.
    pub fn from_json(e: JsonPayloadError) -> Self {
        match e {
            JsonPayloadError::OverflowKnownLength { limit, .. }
            | JsonPayloadError::Overflow { limit } => ApiError::TooLarge(limit),
            JsonPayloadError::Deserialize(e) => ApiError::BadBody(e.to_string()),
            other => ApiError::BadBody(other.to_string()),
        }
    }

    /// The machine-readable code.
    fn code(&self) -> &'static str {
        match self {
            ApiError::Core(e) => match e {
                core::Error::NotFound { .. } => "NotFound",
                core::Error::Forbidden { .. } => "Forbidden",
                core::Error::InvalidState { .. } => "InvalidState",
                core::Error::Invalid { .. } => "Invalid",
                core::Error::Conflict(_) => "Conflict",
                core::Error::Driver { .. } | core::Error::Unreachable { .. } => "DriverError",
                core::Error::TooLarge { .. } => "PayloadTooLarge",
                core::Error::Unsupported(_) => "Unsupported",
                core::Error::Internal(_) => "Internal",
            },
            ApiError::Auth(_) => "Unauthorized",
            ApiError::BadBody(_) => "BadRequest",
            ApiError::BadQuery(_) => "BadRequest",
            ApiError::TooLarge(_) => "PayloadTooLarge",
            ApiError::NoRoute => "NotFound",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
        }
    }

    /// The message shown to the user: internal details stay in the log.
    fn message(&self) -> String {
        match self {
            // STYLE.md §3: driver output names paths and hosts; it goes to
            // the log, the response only points at it.
            ApiError::Core(
                core::Error::Internal(_)
                | core::Error::Driver { .. }
                | core::Error::Unreachable { .. },
            ) => "internal error; the server log has the detail under this request's x-request-id"
                .to_string(),
            // One answer for every authentication failure.
            ApiError::Auth(_) => "invalid or missing credentials".to_string(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Core(e) => match e {
                core::Error::NotFound { .. } => StatusCode::NOT_FOUND,
                core::Error::Forbidden { .. } => StatusCode::FORBIDDEN,
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
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::BadBody(_) => StatusCode::BAD_REQUEST,
            ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Core(core::Error::Internal(detail)) => {
                tracing::error!("internal error: {detail}")
            }
            ApiError::Core(e @ (core::Error::Driver { .. } | core::Error::Unreachable { .. })) => {
                tracing::error!("{e}")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::Auth(_) = self {
            response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"cloudgate\""));
        }
        response.json(serde_json::json!({
            "error": { "code": self.code(), "message": self.message() }
        }))
    }
}
