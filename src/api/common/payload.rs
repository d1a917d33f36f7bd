//! Request bodies for parsers that need a `Send` stream (multer): actix's
//! body stream is tied to its worker thread, so a local task forwards the
//! chunks through a small bounded channel. Memory stays bounded, and when
//! the reader goes away (an error answered early) the task stops reading.

use actix_web::web;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

/// Chunks read ahead of the parser (it buffers at most a few of them).
const CHUNKS_IN_FLIGHT: usize = 4;

/// The body of a request as a `Send` stream of chunks.
pub fn sendable_body(
    mut body: web::Payload,
) -> impl Stream<Item = Result<web::Bytes, std::io::Error>> + Send + 'static {
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    actix_web::rt::spawn(async move {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    })
}
