//! Authentication: turns what a request carries (HTTP Basic; EC2
//! signatures V1, V2 and V4, spec/EC2.md §2, §3, §9) into a [`Caller`].
//!
//! May use: `crate::core` (to look users up). Every secret comparison is
//! constant-time, and an unknown user fails exactly like a wrong password.
//! Signatures are pure functions (`sigv2`, `sigv4`) checked with the
//! published vectors; `ec2` picks the scheme and checks the time window
//! against a clock given as a parameter.

pub mod basic;
pub mod ec2;
mod password;
pub mod secret;
pub mod sigv2;
pub mod sigv4;
pub mod time;

pub use password::verify_password;

use crate::core::Caller;

/// Why a request could not be authenticated. The fronts answer all of
/// these the same way (401), so that nothing tells a wrong password from
/// an unknown or disabled user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The request carries no credentials.
    #[error("no credentials were given")]
    Missing,
    /// The credentials are not in a form this front reads.
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    /// Unknown user, wrong secret or disabled user.
    #[error("invalid credentials")]
    Invalid,
    /// The user store could not be read.
    #[error("authentication is unavailable")]
    Unavailable,
    /// A correctly signed request outside its time window: `Timestamp` or
    /// `X-Amz-Date` too far from now, or `Expires` passed (EC2's
    /// `RequestExpired`; Basic has no time window).
    #[error("the request has expired")]
    Expired,
}

/// The result of an authentication.
pub type Result<T = Caller> = std::result::Result<T, Error>;
