//! The one error type of the core. Each front maps it to its protocol in a
//! single exhaustive `match` (STYLE.md §3), so a new variant fails to
//! compile until every front has decided what it means.

use std::fmt;

/// The kind of object an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A user.
    User,
    /// An image of the repository.
    Image,
    /// A virtual machine.
    Vm,
    /// A host.
    Host,
    /// A virtual network.
    Network,
    /// An SSH key pair (EC2's key pairs, spec/EC2.md §6.7).
    KeyPair,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::User => "user",
            Kind::Vm => "virtual machine",
            Kind::Image => "image",
            Kind::Host => "host",
            Kind::Network => "network",
            Kind::KeyPair => "key pair",
        })
    }
}

/// What went wrong in a core call. Messages are for users: they name the
/// object and the refused action, never SQL, paths or secrets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What kind of object was looked for.
        kind: Kind,
        /// The id or name asked for.
        id: String,
    },
    /// The object exists but the caller may not do this to it.
    #[error("not allowed to {action} {kind} {id}")]
    Forbidden {
        /// What kind of object.
        kind: Kind,
        /// Its id or name.
        id: String,
        /// The refused action.
        action: String,
    },
    /// The object exists but its state does not allow the action
    /// (OpenNebula's "Wrong state to perform action"; for a VM, the table
    /// of spec/CORE.md §1.8).
    #[error("cannot {action} {kind} {id} in state {state}")]
    InvalidState {
        /// What kind of object.
        kind: Kind,
        /// Its id or name.
        id: String,
        /// The state it is in, as users see it (for a VM, the CLI's short
        /// name).
        state: String,
        /// The refused action.
        action: String,
    },
    /// A value in the request is wrong.
    #[error("{field}: {reason}")]
    Invalid {
        /// The attribute or parameter at fault.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// The request clashes with what exists (a name taken, an object in use).
    #[error("{0}")]
    Conflict(String),
    /// A driver action failed: its script exited non-zero, timed out, or
    /// the driver is not loaded (spec/DRIVERS.md §1.4).
    #[error("{action} on {host} failed: {message}")]
    Driver {
        /// The action, as its script is named (`deploy`, `poll`, `clone`...).
        action: String,
        /// The host it ran for (`front-end` for hooks run locally).
        host: String,
        /// What the script said: its error block or last stderr line
        /// (`-` when it said nothing), or why it could not run.
        message: String,
    },
    /// A driver action could not run because its host cannot be reached
    /// (ssh's own failure, its exit 255): the host is down or its sshd
    /// stopped, which says nothing about the VMs there (a VM poll failing
    /// so makes the VM UNKNOWN, spec/CORE.md §1.5). Same text as
    /// [`Error::Driver`].
    #[error("{action} on {host} failed: {message}")]
    Unreachable {
        /// The action, as its script is named.
        action: String,
        /// The host it ran for.
        host: String,
        /// `cannot reach host <host>: <ssh's message>`.
        message: String,
    },
    /// An upload is larger than the configured limit (`UPLOAD_LIMIT`);
    /// every front answers 413 (STYLE.md §3).
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was too large (`image`).
        what: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The operation exists in the protocol but this implementation does
    /// not provide it (STYLE.md §1.6).
    #[error("{0} is not supported")]
    Unsupported(String),
    /// Something failed inside cloudgate; the message goes to the log, not
    /// to the user.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(kind: Kind, id: impl fmt::Display) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
