//! Authentication: turns what a request carries (HTTP Basic now; EC2
//! signatures with the EC2 front) into a [`Caller`].
//!
//! May use: `crate::core` (to look users up). Every secret comparison is
//! constant-time, and an unknown user fails exactly like a wrong password.

pub mod basic;
mod password;

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
}

/// The result of an authentication.
pub type Result<T = Caller> = std::result::Result<T, Error>;
