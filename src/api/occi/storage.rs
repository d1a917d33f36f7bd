//! `/storage` (spec/OCCI.md §3, §4.5, §5.4, §7): the image repository.
//!
//! `POST /storage` is `multipart/form-data` with an `occixml` part (the
//! image's description, 1.4 `DISK` or 2.x `STORAGE`) and a `file` part
//! (the bytes). multer parses it with limits (STYLE.md §1.12): a small one
//! on `occixml` and on any other part, `UPLOAD_LIMIT` on `file` (413 past
//! it). The file part goes chunk by chunk to the image pool's upload
//! handle (`api::common::stream_upload`), never whole in memory; a body
//! that breaks off, a part over its limit or a malformed multipart leaves
//! no image and no file. `occixml` must come before `file` (the image's
//! name is checked before a byte is stored); every known client sends it
//! first. A bodiless `POST /storage?occixml=...` (libcloud 3.6
//! `create_volume`) or a form without `file` creates an empty DATABLOCK
//! of `SIZE` MB.
//!
//! May use: `super`, `crate::api::common`, `crate::core`.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use futures_util::{Stream, StreamExt, TryStreamExt};
use multer::{Constraints, Multipart, SizeLimit};

use super::dialect::Dialect;
use super::error::OcciError;
use super::xml::{Element, PoolEntry, PoolKind, StorageCreate, StorageDoc, StorageUpdate};
use super::{created, declared_length, deleted, read_body, xml, Ctx, Reply};
use crate::api::common::{blocking_as, sendable_body, stream_upload, AppState, UploadError};
use crate::core::image::{self, Image, ImageType, NewImage};
use crate::core::Error;

/// Largest `occixml` part, and largest part other than `file`: an image
/// description is a few hundred bytes.
pub const OCCIXML_LIMIT: u64 = 64 * 1024;

/// Room for the multipart framing (boundaries, part headers) on top of
/// the parts themselves when checking the whole body's size.
const FRAMING: u64 = 64 * 1024;

/// 1.4's text when the description is missing.
const NO_OCCIXML: &str = "OCCI XML representation of Image not present in the request";

/// 1.4's text when the file is missing.
const NO_FILE: &str = "File not present in the request";

pub(super) fn scope() -> actix_web::Scope {
    crud_scope!("/storage", list, create, show, update, delete)
}

/// The DISK / STORAGE document of an image.
fn doc(ctx: &Ctx, image: &Image) -> StorageDoc {
    let attribute = |name: &str| image.template.get(name).filter(|v| !v.is_empty()).cloned();
    StorageDoc {
        href: ctx.hrefs.storage(image.id),
        id: image.id,
        name: image.name.clone(),
        image_type: image.image_type.name(),
        description: attribute("DESCRIPTION"),
        url: attribute("URL").or_else(|| attribute("DESCRIPTION")),
        size_mb: image.size_mb,
        fstype: match image.image_type {
            ImageType::Datablock => attribute("FSTYPE"),
            ImageType::Os | ImageType::Cdrom => None,
        },
        public: image.public,
        persistent: image.persistent,
    }
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let entries = state
        .core
        .images()
        .list(&ctx.caller)?
        .into_iter()
        .map(|image| PoolEntry {
            href: ctx.hrefs.storage(image.id),
            name: image.name,
        })
        .collect();
    Ok(ctx.pool_reply(PoolKind::Storage, entries))
}

async fn show(req: HttpRequest, state: web::Data<AppState>, id: web::Path<u64>) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let image = state.core.images().show(&ctx.caller, &id.to_string())?;
    Ok(xml(
        StatusCode::OK,
        doc(&ctx, &image).render(ctx.dialect(None)),
    ))
}

async fn delete(req: HttpRequest, state: web::Data<AppState>, id: web::Path<u64>) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let key = id.to_string();
    blocking_as(&state.core, &ctx.caller, move |core, caller| {
        core.images().delete(caller, &key)
    })
    .await?;
    Ok(deleted(ctx.dialect(None)))
}

/// `PUT /storage/{id}` (2.2): `PERSISTENT` or `PUBLIC`, one per request;
/// 202 with the image as it is now.
async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<u64>,
    body: web::Payload,
) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let body = read_body(&req, body, state.body_limit).await?;
    let document = Element::parse(&body)?;
    let change = StorageUpdate::parse(&document)?;
    let shape = Some(if document.name == "DISK" {
        Dialect::V1_4
    } else {
        Dialect::V2
    });
    let key = id.to_string();
    let image = blocking_as(&state.core, &ctx.caller, move |core, caller| match change {
        StorageUpdate::Persistent(on) => core.images().set_persistent(caller, &key, on),
        StorageUpdate::Public(on) => core.images().set_public(caller, &key, on),
    })
    .await?;
    Ok(xml(
        StatusCode::ACCEPTED,
        doc(&ctx, &image).render(ctx.dialect(shape)),
    ))
}

/// `POST /storage`.
async fn create(req: HttpRequest, state: web::Data<AppState>, body: web::Payload) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let limit = state.upload_limit;
    // A declared length that cannot fit is refused before a byte is read.
    if declared_length(&req).is_some_and(|n| n > limit.saturating_add(OCCIXML_LIMIT + FRAMING)) {
        return Err(Error::TooLarge {
            what: "image".into(),
            limit,
        }
        .into());
    }
    let from_query = query_occixml(&req);
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok());
    let image = match boundary {
        Some(boundary) => upload(&state, &ctx, body, boundary, from_query).await?,
        None => {
            // No form: the description can only be in the query string.
            let xml = from_query.ok_or_else(|| OcciError::bad(NO_OCCIXML))?;
            let request = StorageCreate::parse(&Element::parse(xml.as_bytes())?)?;
            let shape = request.shape;
            (empty_datablock(&state, &ctx, request).await?, shape)
        }
    };
    let (image, shape) = image;
    let doc = doc(&ctx, &image);
    Ok(created(&doc.href, doc.render(ctx.dialect(shape))))
}

/// `occixml` from the query string (libcloud 3.6 `create_volume`).
fn query_occixml(req: &HttpRequest) -> Option<String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().remove("occixml"))
        .filter(|x| !x.trim().is_empty())
}

/// Reads the form: `occixml`, then `file` streamed into the repository.
/// Returns the image and the dialect its description showed.
///
/// The parts after `file` are read before the upload is committed (the
/// file's stream is chained with the rest of the form), so a form that
/// breaks off anywhere leaves nothing, even after the whole file came.
async fn upload(
    state: &AppState,
    ctx: &Ctx,
    body: web::Payload,
    boundary: String,
    from_query: Option<String>,
) -> Result<(Image, Option<Dialect>), OcciError> {
    let limit = state.upload_limit;
    let constraints = Constraints::new().size_limit(
        SizeLimit::new()
            .whole_stream(limit.saturating_add(OCCIXML_LIMIT + FRAMING))
            .per_field(OCCIXML_LIMIT)
            .for_field("file", limit),
    );
    let mut form = Multipart::with_constraints(sendable_body(body), boundary, constraints);
    let mut request = match from_query {
        Some(xml) => Some(StorageCreate::parse(&Element::parse(xml.as_bytes())?)?),
        None => None,
    };
    while let Some(field) = form.next_field().await.map_err(|e| form_error(e, limit))? {
        match field.name() {
            Some("occixml") => {
                let bytes = field.bytes().await.map_err(|e| form_error(e, limit))?;
                request = Some(StorageCreate::parse(&Element::parse(&bytes)?)?);
            }
            Some("file") => {
                let request = request.ok_or_else(|| {
                    OcciError::bad(format!(
                        "{NO_OCCIXML} before the file part (send occixml first)"
                    ))
                })?;
                let new = new_image(&request, field.file_name())?;
                let handle = blocking_as(&state.core, &ctx.caller, move |core, caller| {
                    core.images().begin_upload(caller, new, limit)
                })
                .await?;
                let whole_form = field.map_err(FormError::Multer).chain(rest_of_form(form));
                let image =
                    stream_upload(handle, Box::pin(whole_form))
                        .await
                        .map_err(|e| match e {
                            UploadError::Core(e) => OcciError::Core(e),
                            UploadError::Body(FormError::Multer(e)) => form_error(e, limit),
                            UploadError::Body(FormError::SecondFile) => {
                                OcciError::bad("more than one file part")
                            }
                        })?;
                return Ok((image, request.shape));
            }
            // Parts no client sends are read (within their limit) and
            // ignored.
            _ => drain(field).await.map_err(|e| form_error(e, limit))?,
        }
    }
    let request = request.ok_or_else(|| OcciError::bad(NO_OCCIXML))?;
    let shape = request.shape;
    Ok((empty_datablock(state, ctx, request).await?, shape))
}

/// Why the form around an uploaded file failed.
#[derive(Debug)]
enum FormError {
    /// multer's reason: a broken or over-limit form.
    Multer(multer::Error),
    /// A second `file` part.
    SecondFile,
}

/// The form after the `file` part, read to its end: no item when it ends
/// well, one error otherwise (which keeps the upload from committing).
fn rest_of_form(mut form: Multipart<'static>) -> impl Stream<Item = Result<web::Bytes, FormError>> {
    let rest = async move {
        while let Some(field) = form.next_field().await.map_err(FormError::Multer)? {
            if field.name() == Some("file") {
                return Err(FormError::SecondFile);
            }
            drain(field).await.map_err(FormError::Multer)?;
        }
        Ok(())
    };
    futures_util::stream::once(rest)
        .filter_map(|done: Result<(), FormError>| async move { done.err().map(Err) })
}

/// Reads a part to its end, keeping nothing.
async fn drain(mut field: multer::Field<'static>) -> Result<(), multer::Error> {
    while let Some(chunk) = field.next().await {
        chunk?;
    }
    Ok(())
}

/// What to register for a description and the uploaded file's name.
fn new_image(request: &StorageCreate, file_name: Option<&str>) -> Result<NewImage, OcciError> {
    // The client's local path (`/images/ubuntu/jaunty.img`): its last
    // component names the image when the description does not.
    let from_file = file_name
        .and_then(|f| f.rsplit(['/', '\\']).next())
        .filter(|f| !f.trim().is_empty());
    let name = request
        .name
        .as_deref()
        .or(from_file)
        .ok_or_else(|| OcciError::bad("the image needs a NAME"))?;
    let mut new = NewImage::named(name);
    if let Some(kind) = &request.image_type {
        new.image_type = kind.parse::<ImageType>()?;
    }
    new.public = request.public.unwrap_or(false);
    new.persistent = request.persistent.unwrap_or(false);
    // 1.4 kept the client's URL as the description (spec/OCCI.md §5.4).
    if let Some(description) = request.description.as_ref().or(request.url.as_ref()) {
        new.template
            .insert("DESCRIPTION".into(), description.clone());
    }
    if let Some(url) = &request.url {
        new.template.insert("URL".into(), url.clone());
    }
    if let Some(fstype) = &request.fstype {
        new.template.insert("FSTYPE".into(), fstype.clone());
    }
    Ok(new)
}

/// A request without a file: a DATABLOCK with a `SIZE` is created empty
/// (zeros, `SIZE` MB, within `UPLOAD_LIMIT`); anything else needs the file.
async fn empty_datablock(
    state: &AppState,
    ctx: &Ctx,
    request: StorageCreate,
) -> Result<Image, OcciError> {
    let size_mb = match (&request.image_type, request.size_mb) {
        (Some(kind), Some(size))
            if kind.parse::<ImageType>().ok() == Some(ImageType::Datablock) =>
        {
            size
        }
        _ => return Err(OcciError::bad(NO_FILE)),
    };
    let limit = state.upload_limit;
    image::check_size(size_mb.saturating_mul(1 << 20), limit)?;
    let new = new_image(&request, None)?;
    let image = blocking_as(&state.core, &ctx.caller, move |core, caller| {
        let mut upload = core.images().begin_upload(caller, new, limit)?;
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..size_mb {
            upload.write(&zeros)?;
        }
        upload.commit()
    })
    .await?;
    Ok(image)
}

/// What a multer error means for the client: a part over its limit is
/// 413, anything else a malformed or broken form (400).
fn form_error(e: multer::Error, limit: u64) -> OcciError {
    match e {
        multer::Error::FieldSizeExceeded { field_name, .. }
            if field_name.as_deref() == Some("file") =>
        {
            Error::TooLarge {
                what: "image".into(),
                limit,
            }
            .into()
        }
        multer::Error::FieldSizeExceeded { .. } => OcciError::TooLarge {
            what: "a form part other than file",
            limit: OCCIXML_LIMIT,
        },
        multer::Error::StreamSizeExceeded { .. } => Error::TooLarge {
            what: "image".into(),
            limit,
        }
        .into(),
        other => OcciError::bad(format!("malformed multipart/form-data: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(xml: &str) -> StorageCreate {
        StorageCreate::parse(&Element::parse(xml.as_bytes()).expect("parses")).expect("valid")
    }

    #[test]
    fn the_1_4_description_keeps_the_url_as_description() {
        let new = new_image(
            &request(
                "<DISK><NAME>Ubuntu 9.04 LAMP</NAME><URL>file:///images/ubuntu/jaunty.img</URL></DISK>",
            ),
            Some("/images/ubuntu/jaunty.img"),
        )
        .expect("valid");
        assert_eq!(new.name, "Ubuntu 9.04 LAMP");
        assert_eq!(new.image_type, ImageType::Os);
        assert_eq!(
            new.template.get("DESCRIPTION").map(String::as_str),
            Some("file:///images/ubuntu/jaunty.img")
        );
        assert_eq!(
            new.template.get("URL").map(String::as_str),
            Some("file:///images/ubuntu/jaunty.img")
        );
    }

    #[test]
    fn the_file_name_names_an_image_without_name() {
        let new = new_image(
            &request("<STORAGE><TYPE>cdrom</TYPE></STORAGE>"),
            Some("C:\\isos\\boot.iso"),
        )
        .expect("valid");
        assert_eq!(new.name, "boot.iso");
        assert_eq!(new.image_type, ImageType::Cdrom);
        assert!(new_image(&request("<STORAGE/>"), None).is_err());
    }

    #[test]
    fn the_2_x_description_sets_flags_and_fstype() {
        let new = new_image(
            &request(
                "<STORAGE><NAME>data</NAME><TYPE>DATABLOCK</TYPE><DESCRIPTION>d</DESCRIPTION>\
                 <PUBLIC>YES</PUBLIC><PERSISTENT>yes</PERSISTENT><FSTYPE>ext3</FSTYPE><SIZE>5</SIZE></STORAGE>",
            ),
            None,
        )
        .expect("valid");
        assert_eq!(new.image_type, ImageType::Datablock);
        assert!(new.public && new.persistent);
        assert_eq!(
            new.template.get("DESCRIPTION").map(String::as_str),
            Some("d")
        );
        assert_eq!(new.template.get("FSTYPE").map(String::as_str), Some("ext3"));
        assert!(!new.template.contains_key("URL"));
    }

    #[test]
    fn over_limit_parts_are_413_and_broken_forms_400() {
        let status = |e: OcciError| actix_web::ResponseError::status_code(&e).as_u16();
        let file = multer::Error::FieldSizeExceeded {
            limit: 1,
            field_name: Some("file".into()),
        };
        let xml = multer::Error::FieldSizeExceeded {
            limit: 1,
            field_name: Some("occixml".into()),
        };
        assert_eq!(status(form_error(file, 1)), 413);
        assert_eq!(status(form_error(xml, 1)), 413);
        assert_eq!(
            status(form_error(
                multer::Error::StreamSizeExceeded { limit: 1 },
                1
            )),
            413
        );
        assert_eq!(status(form_error(multer::Error::IncompleteStream, 1)), 400);
        assert_eq!(
            status(form_error(
                multer::Error::IncompleteFieldData { field_name: None },
                1
            )),
            400
        );
    }
}
