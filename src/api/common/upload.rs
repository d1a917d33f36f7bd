//! Feeding an image upload from an HTTP body, for every front: the
//! native `/v1` raw body, and OCCI's and EC2's multipart `file` part
//! (STYLE.md §1.12). Chunks go through a small bounded channel to one
//! blocking task that owns the core's [`Upload`], so the async workers
//! never do file I/O, the body is never held whole, and a slow disk slows
//! the client down instead of filling memory.

use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::core::image::{Image, Upload};
use crate::core::Error;

/// Chunks read ahead of the disk: with actix's chunks of up to 64 KB, a
/// few hundred KB per upload at most.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Why a streamed upload failed.
#[derive(Debug)]
pub enum UploadError<E> {
    /// The core refused or failed (`TooLarge`, `Conflict`, disk I/O...).
    Core(Error),
    /// The body broke off (the client went away mid-stream).
    Body(E),
}

/// Writes every chunk of `body` into `upload` and commits it at the end of
/// the body. On any failure the upload is dropped, which deletes its file
/// and leaves no image; the file is gone by the time this returns. If the
/// caller's future is dropped instead (the connection closed), the same
/// happens in the background.
pub async fn stream_upload<S, B, E>(upload: Upload, mut body: S) -> Result<Image, UploadError<E>>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]> + Send + 'static,
{
    // `None` marks the end of the body: a channel closed without it means
    // the body broke off, and the upload must not be committed.
    let (chunks, mut received) = mpsc::channel::<Option<B>>(CHUNKS_IN_FLIGHT);
    let writer = actix_web::rt::task::spawn_blocking(move || {
        let mut upload = upload;
        while let Some(message) = received.blocking_recv() {
            match message {
                Some(chunk) => upload.write(chunk.as_ref())?,
                None => return upload.commit().map(Some),
            }
        }
        Ok(None)
    });
    let mut broke_off = None;
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => {
                if chunks.send(Some(chunk)).await.is_err() {
                    // The writer stopped; its result says why.
                    break;
                }
            }
            Err(e) => {
                broke_off = Some(e);
                break;
            }
        }
    }
    if broke_off.is_none() {
        // A failure here means the writer stopped first; its result says why.
        let _ = chunks.send(None).await;
    }
    drop(chunks);
    let written = writer
        .await
        .map_err(|e| UploadError::Core(Error::Internal(format!("upload task failed: {e}"))))?;
    match (written, broke_off) {
        // The core's reason first: a client cut off for sending too much
        // should hear "too large".
        (Err(e), _) => Err(UploadError::Core(e)),
        (Ok(_), Some(e)) => Err(UploadError::Body(e)),
        (Ok(Some(image)), None) => Ok(image),
        (Ok(None), None) => Err(UploadError::Core(Error::Internal(
            "the upload ended without its end mark".into(),
        ))),
    }
}
