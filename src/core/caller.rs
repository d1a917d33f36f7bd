//! Who is asking: the authenticated principal every core call takes.

/// The uid of `oneadmin`, who may do anything (spec/CORE.md §7.1).
pub const ADMIN_UID: u64 = 0;

/// An authenticated user, as the fronts hand it to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The user's id.
    pub uid: u64,
    /// The user's name.
    pub name: String,
}

impl Caller {
    /// Whether this is `oneadmin` (uid 0).
    pub fn is_admin(&self) -> bool {
        self.uid == ADMIN_UID
    }

    /// Whether the caller may manage an object owned by `owner`:
    /// its owner or oneadmin (spec/CORE.md §7.3).
    pub fn owns_or_admin(&self, owner: u64) -> bool {
        self.is_admin() || self.uid == owner
    }
}
