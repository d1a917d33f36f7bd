//! What the fronts share: request ids, blocking core calls and streamed
//! image uploads.
//!
//! May use: `crate::core`.

mod payload;
mod request_id;
mod settings;
mod state;
mod upload;

pub use payload::sendable_body;
pub use request_id::RequestId;
pub use settings::{Ec2InstanceType, Ec2Settings, InstanceType, OcciDialect, OcciSettings};
pub use state::AppState;
pub use upload::{stream_upload, UploadError};

use std::sync::Arc;

use actix_web::web;

use crate::core::{self, Caller, Core};

/// Runs a core call on the blocking pool: core calls write to SQLite with
/// `synchronous=FULL`, and an fsync must not stall the HTTP workers.
pub async fn blocking<T, F>(call: F) -> core::Result<T>
where
    F: FnOnce() -> core::Result<T> + Send + 'static,
    T: Send + 'static,
{
    web::block(call)
        .await
        .map_err(|e| core::Error::Internal(format!("blocking task failed: {e}")))?
}

/// Runs a core call as `caller` on the blocking pool (see [`blocking`]):
/// the handle and the caller the call needs, cloned for the pool.
pub async fn blocking_as<T, F>(core: &Arc<Core>, caller: &Caller, call: F) -> core::Result<T>
where
    F: FnOnce(&Core, &Caller) -> core::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let (core, caller) = (Arc::clone(core), caller.clone());
    blocking(move || call(&core, &caller)).await
}
