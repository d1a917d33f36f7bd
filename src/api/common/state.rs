//! The state every handler of every front can reach.

use std::sync::Arc;

use super::{Ec2Settings, OcciSettings};
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
    /// `PUBLIC_URL`: the base of the hrefs in responses, without a
    /// trailing `/`; `None` builds it from each request (spec/OCCI.md §1.1).
    pub public_url: Option<String>,
    /// The OCCI front's settings.
    pub occi: OcciSettings,
    /// The EC2 front's settings.
    pub ec2: Ec2Settings,
}
