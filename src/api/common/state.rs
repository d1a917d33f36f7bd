//! The state every handler of every front can reach.

use std::sync::Arc;

use crate::core::Core;

/// What every handler can reach.
pub struct AppState {
    /// The domain.
    pub core: Arc<Core>,
    /// Request bodies larger than this are refused with 413.
    pub body_limit: usize,
    /// Uploaded images larger than this (`UPLOAD_LIMIT`, bytes) are
    /// refused with 413; [`body_limit`](Self::body_limit) does not apply
    /// to them.
    pub upload_limit: u64,
}
