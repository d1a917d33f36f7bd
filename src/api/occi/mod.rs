//! The OCCI REST front, as OpenNebula's OCCI servers spoke it
//! (spec/OCCI.md): the pools `/compute`, `/network`, `/storage` and the
//! read-only `/instance_type`, XML bodies, HTTP Basic auth, multipart
//! image upload.
//!
//! A request is: authenticate (401 first, as 1.4's before-filter did) →
//! read and parse the body into a typed request (`xml.rs`) → one core call
//! → render the typed document in the request's dialect (`dialect.rs`)
//! with hrefs from `href.rs`. Errors go through `error.rs` only.
//!
//! Files: `mod.rs` (routes, auth, body reading), `compute.rs`,
//! `network.rs`, `storage.rs`, `instance_type.rs` (one pool each),
//! `xml.rs` (documents), `dialect.rs`, `href.rs`, `error.rs`.
//!
//! Routes (spec/OCCI.md §3): a verb a resource does not define answers
//! 501; a path under a pool that names nothing answers 404, as does any
//! path no front serves ([`not_found`], the app's default service).
//!
//! May use: `crate::api::common`, `crate::core`, `crate::auth`,
//! `crate::template`.

/// The scope of a pool that takes every verb (spec/OCCI.md §3): `GET`
/// (`$list`) and `POST` (`$create`) on the pool, `GET` (`$show`), `PUT`
/// (`$update`) and `DELETE` (`$delete`) on an entry ([`ENTRY`]); `HEAD`
/// wherever `GET` is (see [`pool_scope`]).
macro_rules! crud_scope {
    ($path:literal, $list:ident, $create:ident, $show:ident, $update:ident, $delete:ident) => {
        super::pool_scope(
            $path,
            vec![
                actix_web::web::get().to($list),
                actix_web::web::head().to($list),
                actix_web::web::post().to($create),
            ],
            super::ENTRY,
            vec![
                actix_web::web::get().to($show),
                actix_web::web::head().to($show),
                actix_web::web::put().to($update),
                actix_web::web::delete().to($delete),
            ],
        )
    };
}

mod compute;
mod dialect;
mod error;
mod href;
mod instance_type;
mod network;
mod storage;
mod xml;

pub use error::OcciError;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use crate::api::common::{AppState, OcciDialect};
use crate::auth;
use crate::core::Caller;
use dialect::Dialect;
use href::Hrefs;

/// Registers the OCCI pools.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(compute::scope())
        .service(network::scope())
        .service(storage::scope())
        .service(instance_type::scope());
}

/// 404 with a one-line text naming the path: for paths under an OCCI
/// pool that name nothing, and as the app's answer to any path no front
/// serves.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, OcciError> {
    Err(OcciError::NotFound(format!(
        "no such resource: {}",
        req.path()
    )))
}

/// The answer of every handler.
type Reply = Result<HttpResponse, OcciError>;

/// A pool's scope: the pool (`/compute`, with or without a trailing
/// slash) with `pool` routes, its entries (`/compute/{id}`, or
/// `entry_path`) with `entry` routes; other verbs answer 501, paths under
/// the pool that name nothing 404. Where there is a `GET`, a `HEAD` route
/// to the same handler answers it generically (spec/OCCI.md §3): the
/// status and headers of the `GET`, without the body, which the HTTP
/// layer leaves out for `HEAD`.
fn pool_scope(
    path: &str,
    pool: Vec<actix_web::Route>,
    entry_path: &str,
    entry: Vec<actix_web::Route>,
) -> actix_web::Scope {
    let routes = |paths: &[&str], routes: Vec<actix_web::Route>| {
        routes
            .into_iter()
            .fold(resource(paths), |resource, route| resource.route(route))
    };
    web::scope(path)
        .service(routes(&["", "/"], pool))
        .service(routes(&[entry_path], entry))
        .default_service(web::to(not_found))
}

/// A resource whose undefined verbs answer 501 (seed 3.3.6).
fn resource(paths: &[&str]) -> actix_web::Resource {
    web::resource(paths.to_vec()).default_service(web::to(|req: HttpRequest| async move {
        Err::<HttpResponse, _>(OcciError::NotImplemented(req.method().to_string()))
    }))
}

/// An entry (`/compute/7`): ids are decimal integers, so anything else
/// under the pool is a 404.
const ENTRY: &str = "/{id:[0-9]{1,19}}";

/// What every handler knows once the caller is authenticated.
struct Ctx {
    /// Who asks.
    caller: Caller,
    /// The hrefs of this response.
    hrefs: Hrefs,
    /// `OCCI_DIALECT`.
    setting: OcciDialect,
    /// The client's User-Agent, for the dialect.
    user_agent: Option<String>,
}

impl Ctx {
    /// 200 with the pool document of `kind` (spec/OCCI.md §2.2): one entry
    /// (href and name) an object, in the request's dialect.
    fn pool_reply(&self, kind: xml::PoolKind, entries: Vec<xml::PoolEntry>) -> HttpResponse {
        let pool = xml::Pool { kind, entries };
        xml(StatusCode::OK, pool.render(self.dialect(None)))
    }

    /// Authenticates the request (401 for missing or bad credentials,
    /// spec/OCCI.md §2.1).
    fn new(req: &HttpRequest, state: &AppState) -> Result<Self, OcciError> {
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let caller =
            auth::basic::authenticate(&state.core, authorization).map_err(OcciError::Auth)?;
        Ok(Ctx {
            caller,
            hrefs: Hrefs::of(req, state.public_url.as_deref()),
            setting: state.occi.dialect,
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        })
    }

    /// The dialect of the response, given what the request body showed.
    fn dialect(&self, shape: Option<Dialect>) -> Dialect {
        Dialect::choose(self.setting, self.user_agent.as_deref(), shape)
    }
}

/// Reads a request body of at most `limit` bytes (413 past it, before a
/// byte is read when the declared length says so). No Content-Type is
/// required: libcloud sends none (spec/OCCI.md §1).
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, OcciError> {
    let too_large = || OcciError::TooLarge {
        what: "request body",
        limit: limit as u64,
    };
    if declared_length(req).is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| OcciError::bad(format!("the request body broke off: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The request's `Content-Length`, if it declares one.
fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// An XML answer.
fn xml(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/xml; charset=utf-8")
        .body(body)
}

/// 201 with the new entry's document and its href as `Location`.
fn created(href: &str, body: String) -> HttpResponse {
    HttpResponse::Created()
        .content_type("application/xml; charset=utf-8")
        .insert_header((header::LOCATION, href))
        .body(body)
}

/// A successful DELETE: empty, with the dialect's status.
fn deleted(dialect: Dialect) -> HttpResponse {
    HttpResponse::build(dialect.delete_status()).finish()
}
