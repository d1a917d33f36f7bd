//! Password checks (spec/CORE.md §7.2, spec/OCCI.md §2.1): the stored
//! value is `sha1_hex(password)`; a client may send either that digest or
//! the password itself.

use subtle::ConstantTimeEq;

use super::{Error, Result};
use crate::core::user::sha1_hex;
use crate::core::{Caller, Core};

/// Compared against when the user does not exist, so that an unknown user
/// costs the same work as a known one.
const NO_SUCH_USER: &str = "0000000000000000000000000000000000000000";

/// Authenticates `name` with `secret`, accepted when it equals the stored
/// SHA1 hex (any letter case) or when its SHA1 hex does. A disabled user is
/// refused as if the secret were wrong.
pub fn verify_password(core: &Core, name: &str, secret: &str) -> Result {
    let user = core.users().by_name(name).map_err(|_| Error::Unavailable)?;
    let stored = user.as_ref().map_or(NO_SUCH_USER, |u| u.password.as_str());
    let as_digest = secret.to_ascii_lowercase();
    let hashed = sha1_hex(secret);
    // Both comparisons always run: no early exit tells which form matched.
    let matches =
        as_digest.as_bytes().ct_eq(stored.as_bytes()) | hashed.as_bytes().ct_eq(stored.as_bytes());
    match user {
        Some(user) if bool::from(matches) && user.enabled => Ok(Caller {
            uid: user.id,
            name: user.name,
        }),
        _ => Err(Error::Invalid),
    }
}
