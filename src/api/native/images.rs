//! `/v1/images`: the image repository (spec/CORE.md §4.6).
//!
//! `POST /v1/images?name=N&type=OS&public=no&persistent=no` takes the image
//! as the raw body (`application/octet-stream`), streamed to the
//! repository chunk by chunk and limited by `UPLOAD_LIMIT`, not by the
//! JSON body limit. The same `POST` with a JSON body (`{"name", "path"}`)
//! registers a file already on the front-end (oneadmin only).

use std::collections::BTreeMap;
use std::path::PathBuf;

use actix_web::http::header;
use actix_web::{guard, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{authenticated, caller, owner_name, resource, ApiError, Reply};
use crate::api::common::AppState;
use crate::api::common::{blocking_as, stream_upload, UploadError};
use crate::core::image::{self, Image, ImagePool, ImageType, NewImage};
use crate::core::{self, Caller, Core};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/images")
            .route(web::get().to(list))
            .route(
                web::post()
                    .guard(guard::fn_guard(is_json))
                    .to(register_path),
            )
            .route(web::post().to(upload)),
    )
    .service(
        resource("/images/{image}")
            .route(web::get().to(show))
            .route(web::delete().to(delete)),
    )
    .service(resource("/images/{image}/{action}").route(web::post().to(action)));
}

/// An image as `/v1` shows it.
#[derive(Serialize)]
pub(super) struct ImageJson {
    id: u64,
    /// The owner's uid.
    owner: u64,
    /// The owner's name (the uid again if the user is gone).
    owner_name: String,
    name: String,
    #[serde(rename = "type")]
    image_type: &'static str,
    state: &'static str,
    size_mb: u64,
    public: bool,
    persistent: bool,
    running_vms: u32,
    /// Lower-case hex SHA-256 of the file.
    checksum: String,
    /// Seconds since the Unix epoch.
    registered: u64,
    template: BTreeMap<String, String>,
}

impl ImageJson {
    /// The JSON of `image`.
    pub(super) fn of(core: &Core, image: Image) -> Self {
        let owner_name = owner_name(core, image.owner);
        ImageJson {
            id: image.id,
            owner: image.owner,
            owner_name,
            name: image.name,
            image_type: image.image_type.name(),
            state: image.state.name(),
            size_mb: image.size_mb,
            public: image.public,
            persistent: image.persistent,
            running_vms: image.running_vms,
            checksum: image.checksum,
            registered: image.registered,
            template: image.template,
        }
    }
}

/// The query of an upload.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    name: String,
    #[serde(rename = "type")]
    image_type: Option<String>,
    public: Option<String>,
    persistent: Option<String>,
    description: Option<String>,
}

impl UploadQuery {
    fn into_new(self) -> Result<NewImage, ApiError> {
        let flag = |name: &str, value: Option<String>| match value.as_deref() {
            None => Ok(false),
            Some(v)
                if ["yes", "true", "1"]
                    .iter()
                    .any(|y| v.eq_ignore_ascii_case(y)) =>
            {
                Ok(true)
            }
            Some(v)
                if ["no", "false", "0"]
                    .iter()
                    .any(|n| v.eq_ignore_ascii_case(n)) =>
            {
                Ok(false)
            }
            Some(_) => Err(ApiError::BadQuery(format!("{name} must be yes or no"))),
        };
        let mut new = NewImage::named(self.name);
        new.public = flag("public", self.public)?;
        new.persistent = flag("persistent", self.persistent)?;
        fill(&mut new, self.image_type, self.description)?;
        Ok(new)
    }
}

/// The JSON body of a registration from a front-end path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterPath {
    name: String,
    path: PathBuf,
    #[serde(rename = "type")]
    image_type: Option<String>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    persistent: bool,
    description: Option<String>,
}

/// Sets the type and description both registrations may give.
fn fill(
    new: &mut NewImage,
    image_type: Option<String>,
    description: Option<String>,
) -> Result<(), ApiError> {
    if let Some(text) = image_type {
        new.image_type = text.parse::<ImageType>()?;
    }
    if let Some(text) = description {
        new.template.insert("DESCRIPTION".into(), text);
    }
    Ok(())
}

/// Whether the request says its body is JSON: then `POST /v1/images` is a
/// registration from a path, not an upload.
fn is_json(ctx: &guard::GuardContext<'_>) -> bool {
    ctx.head()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let caller = caller(&req, &state)?;
    let images = state.core.images().list(&caller)?;
    let json: Vec<_> = images
        .into_iter()
        .map(|i| ImageJson::of(&state.core, i))
        .collect();
    Ok(HttpResponse::Ok().json(json))
}

async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<UploadQuery>,
    body: web::Payload,
) -> Reply {
    let caller = caller(&req, &state)?;
    let new = query.into_inner().into_new()?;
    let limit = state.upload_limit;
    // A declared length over the limit is refused before a byte is read.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared {
        image::check_size(declared, limit)?;
    }
    let upload = blocking_as(&state.core, &caller, move |core, caller| {
        core.images().begin_upload(caller, new, limit)
    })
    .await?;
    let image = stream_upload(upload, body).await.map_err(|e| match e {
        UploadError::Core(e) => ApiError::Core(e),
        UploadError::Body(e) => ApiError::BadBody(format!("the upload broke off: {e}")),
    })?;
    Ok(HttpResponse::Created().json(ImageJson::of(&state.core, image)))
}

async fn register_path(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RegisterPath>,
) -> Reply {
    let caller = caller(&req, &state)?;
    let body = body.into_inner();
    let mut new = NewImage::named(body.name);
    new.public = body.public;
    new.persistent = body.persistent;
    fill(&mut new, body.image_type, body.description)?;
    let image = blocking_as(&state.core, &caller, move |core, caller| {
        core.images().register_path(caller, new, &body.path)
    })
    .await?;
    Ok(HttpResponse::Created().json(ImageJson::of(&state.core, image)))
}

async fn show(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    let caller = caller(&req, &state)?;
    let image = state.core.images().show(&caller, &key)?;
    Ok(HttpResponse::Ok().json(ImageJson::of(&state.core, image)))
}

async fn delete(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    authenticated(&req, &state, move |core, caller| {
        core.images().delete(caller, &key)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One of the pool's flag setters (`set_enabled`, `set_public`, `set_persistent`).
type Setter = fn(&ImagePool, &Caller, &str, bool) -> core::Result<Image>;

/// `POST /v1/images/{image}/{enable|disable|publish|unpublish|persistent|nonpersistent}`.
async fn action(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Reply {
    let caller = caller(&req, &state)?;
    let (key, action) = path.into_inner();
    let (set, on): (Setter, bool) = match action.as_str() {
        "enable" => (ImagePool::set_enabled, true),
        "disable" => (ImagePool::set_enabled, false),
        "publish" => (ImagePool::set_public, true),
        "unpublish" => (ImagePool::set_public, false),
        "persistent" => (ImagePool::set_persistent, true),
        "nonpersistent" => (ImagePool::set_persistent, false),
        _ => return Err(ApiError::NoRoute),
    };
    let image = blocking_as(&state.core, &caller, move |core, caller| {
        set(core.images(), caller, &key, on)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ImageJson::of(&state.core, image)))
}
