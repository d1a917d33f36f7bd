//! The secret an EC2 client signs with (spec/EC2.md §2): the user's stored
//! `sha1_hex(password)`, used as HMAC key bytes. Wrapped so that it never
//! reaches a log (`Debug` prints nothing of it), is compared in constant
//! time, and is overwritten when dropped (STYLE.md §1.10).
//!
//! May use: nothing of the crate.

use std::fmt;

use subtle::ConstantTimeEq;

/// An HMAC key. Cloning copies the key; each copy is wiped on drop.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps key bytes (for EC2: the ASCII of the 40 hex characters).
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Secret(key.into())
    }

    /// The key bytes, for the HMAC only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        for byte in self.0.iter_mut() {
            *byte = 0;
        }
        // Keeps the zeroing from being optimised away as a dead store.
        std::hint::black_box(&self.0);
    }
}

/// Whether two byte strings are equal, in time that depends on their
/// lengths only, never on where they first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_nothing_of_the_key() {
        let secret = Secret::new("4478db59d30855454ece114e8ccfa5563d21c9bd");
        let shown = format!("{secret:?} {:?}", Some(secret.clone()));
        assert!(!shown.contains("4478"), "{shown}");
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }

    #[test]
    fn compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
