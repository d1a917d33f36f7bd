//! Multipart bodies: econe-upload's UploadImage (spec/EC2.md §6.1). The
//! text fields are read up to the `file` part and merged with the query;
//! the request is authenticated on them (`crate::auth::ec2`); only then is
//! the file streamed into the repository, never held whole.
//!
//! SigV1/V2 sign the text fields, never the file. SigV4 signs the whole
//! raw body through its payload hash (§9.2 step 4.6), which is known only
//! at its end: every byte received is hashed on its way to the multipart
//! parser ([`HashedBody`]), and once the file part has ended, the rest of
//! the body is read and the deferred check finished ([`BodyEnd`]) before
//! the upload is committed. A failed check makes the upload's stream end in
//! an error, which discards the upload: no image, no file.
//!
//! May use: `crate::api::common`, `crate::auth`, `super`.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::{stream, Stream, StreamExt};
use multer::{Constraints, Field, Multipart, SizeLimit};

use super::error::Ec2Error;
use super::params::Params;
use super::{context, images, router, Action};
use crate::api::common::{sendable_body, AppState, RequestId};
use crate::auth::ec2::{signs_body, Deferred, SignedRequest};
use crate::auth::sigv4::PayloadHasher;
use crate::core;

/// Largest text field of a multipart body (the upload's parameters).
const TEXT_FIELD_LIMIT: u64 = 16 * 1024;

/// Largest epilogue after the closing boundary that is read (and hashed)
/// for a SigV4 check; clients send a line end, if anything.
const EPILOGUE_LIMIT: u64 = TEXT_FIELD_LIMIT;

/// Serves a `multipart/form-data` request: authenticates it on its text
/// fields, then streams an UploadImage's `file` part into the repository,
/// or, for another action, answers it.
pub(super) async fn serve(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
    id: &RequestId,
    query: Vec<(String, String)>,
    headers: &[(String, String)],
    boundary: String,
) -> Result<HttpResponse, Ec2Error> {
    let limit = state.upload_limit;
    let constraints = Constraints::new().size_limit(
        SizeLimit::new()
            .whole_stream(limit.saturating_add(state.body_limit as u64))
            .per_field(TEXT_FIELD_LIMIT)
            .for_field("file", limit),
    );
    // SigV1/V2 do not sign the body: hashing an upload for them would
    // only cost CPU.
    let body = HashedBody::new(sendable_body(body), signs_body(headers, &query));
    let mut form = Multipart::with_constraints(body.clone(), boundary, constraints);
    let mut fields = Vec::new();
    let mut file = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| images::form_error(e, limit))?
    {
        match field.name().map(str::to_string) {
            Some(name) if name == "file" => {
                file = Some(field);
                break;
            }
            Some(name) => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| images::form_error(e, limit))?;
                fields.push((name, text));
            }
            None => skip(field, limit).await?,
        }
    }
    let params = Params::merge(query.clone(), fields);
    let action = Action::from_params(&params)?;
    let signed = SignedRequest {
        method: req.method().as_str(),
        path: req.path(),
        headers,
        query: &query,
        params: params.pairs(),
        body: None,
    };
    let (ctx, deferred) = context(req, state, id, &signed, &params)?;
    let end = deferred.map(|deferred| BodyEnd {
        form,
        body,
        deferred,
        limit,
    });
    match (action, file) {
        (Action::UploadImage, Some(file)) => {
            let name = file.file_name().map(str::to_string);
            images::upload(&ctx, name.as_deref(), file_chunks(file, end, limit)).await
        }
        (action, file) => {
            // A file part sent with another action is not kept; SigV4
            // still needs all of the body to check the request.
            if let Some(end) = end {
                drop(file);
                end.check().await?;
            }
            router::dispatch(&ctx, action, &params).await
        }
    }
}

/// Reads a part through to its end, keeping nothing.
async fn skip(mut field: Field<'static>, limit: u64) -> Result<(), Ec2Error> {
    while let Some(chunk) = field.next().await {
        chunk.map_err(|e| images::form_error(e, limit))?;
    }
    Ok(())
}

/// The `file` part's chunks, then, for a SigV4 request, the end of the
/// body and its check: a failure there is the stream's last item, so the
/// upload fed from it is discarded instead of committed.
fn file_chunks(
    file: Field<'static>,
    end: Option<BodyEnd>,
    limit: u64,
) -> impl Stream<Item = Result<Bytes, Ec2Error>> + Unpin {
    Box::pin(stream::unfold(Some((file, end)), move |state| async move {
        let (mut file, end) = state?;
        match file.next().await {
            Some(Ok(chunk)) => Some((Ok(chunk), Some((file, end)))),
            Some(Err(e)) => Some((Err(images::form_error(e, limit)), None)),
            None => {
                // The parser reads on only once the part is dropped.
                drop(file);
                let checked = match end {
                    Some(end) => end.check().await,
                    None => Ok(()),
                };
                checked.err().map(|e| (Err(e), None))
            }
        }
    }))
}

/// What a SigV4 request with a streamed body still needs once the text
/// fields are read: the rest of the body, for its hash.
struct BodyEnd {
    form: Multipart<'static>,
    body: HashedBody,
    deferred: Deferred,
    limit: u64,
}

impl BodyEnd {
    /// Reads the rest of the body — the parts after the current one, kept
    /// nowhere, and the epilogue — then checks the request with the hash of
    /// every byte received. The current part must have been dropped.
    async fn check(mut self) -> Result<(), Ec2Error> {
        while let Some(field) = self
            .form
            .next_field()
            .await
            .map_err(|e| images::form_error(e, self.limit))?
        {
            skip(field, self.limit).await?;
        }
        let hash = self.body.finish(EPILOGUE_LIMIT).await?;
        self.deferred.finish(&hash)?;
        Ok(())
    }
}

/// A request body that hashes every chunk as it passes to the multipart
/// parser. Clones share the body: the parser reads through one, and
/// [`HashedBody::finish`] reads what the parser left, through another.
#[derive(Clone)]
struct HashedBody(Arc<Mutex<Hashing>>);

struct Hashing {
    chunks: Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>,
    /// `None` when the request's signature does not cover the body.
    hasher: Option<PayloadHasher>,
    /// The body has ended (a stream must not be polled after its end).
    ended: bool,
}

impl HashedBody {
    /// The body, hashed as it passes if `hash`.
    fn new(
        chunks: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
        hash: bool,
    ) -> Self {
        HashedBody(Arc::new(Mutex::new(Hashing {
            chunks: Box::pin(chunks),
            hasher: hash.then(PayloadHasher::default),
            ended: false,
        })))
    }

    /// Reads the body to its end, refusing more than `limit` further
    /// bytes, and answers the hash of all of it.
    async fn finish(mut self, limit: u64) -> Result<String, Ec2Error> {
        let mut rest = 0u64;
        while let Some(chunk) = self.next().await {
            let chunk = chunk.map_err(|e| Ec2Error::BadBody(e.to_string()))?;
            rest = rest.saturating_add(chunk.len() as u64);
            if rest > limit {
                return Err(Ec2Error::BodyTooLarge(limit));
            }
        }
        let hashing = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let hasher = hashing.hasher.clone().ok_or_else(|| {
            Ec2Error::from(core::Error::Internal(
                "a SigV4 check on a body that was not hashed".into(),
            ))
        })?;
        Ok(hasher.finish())
    }
}

impl Stream for HashedBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut hashing = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if hashing.ended {
            return Poll::Ready(None);
        }
        let next = hashing.chunks.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(hasher) = hashing.hasher.as_mut() {
                    hasher.update(chunk);
                }
            }
            Poll::Ready(None) => hashing.ended = true,
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sigv4::payload_hash;

    fn chunks(parts: &[&'static [u8]]) -> HashedBody {
        HashedBody::new(
            stream::iter(
                parts
                    .iter()
                    .map(|p| Ok(Bytes::from_static(p)))
                    .collect::<Vec<_>>(),
            ),
            true,
        )
    }

    #[actix_web::test]
    async fn the_hash_covers_what_the_reader_took_and_the_rest() {
        let body = chunks(&[b"ab", b"cd", b"ef"]);
        let mut reader = body.clone();
        assert_eq!(
            reader.next().await.expect("a chunk").expect("ok"),
            Bytes::from_static(b"ab")
        );
        assert_eq!(
            body.finish(16).await.expect("hash"),
            payload_hash(b"abcdef")
        );
        // Read to its end by the reader, it is not polled again.
        let body = chunks(&[b"ab"]);
        let mut reader = body.clone();
        while reader.next().await.is_some() {}
        assert!(reader.next().await.is_none());
        assert_eq!(body.finish(0).await.expect("hash"), payload_hash(b"ab"));
    }

    #[actix_web::test]
    async fn a_long_rest_is_refused() {
        let body = chunks(&[b"ab", b"cd"]);
        assert!(matches!(
            body.finish(3).await,
            Err(Ec2Error::BodyTooLarge(3))
        ));
    }
}
