//! The JSON API under `/v1`, used by the `cloudgate` CLI and the
//! dashboard; `openapi/cloudgate.yaml` describes it and must stay true.
//!
//! May use: `crate::api::common`, `crate::core`, `crate::auth`.

mod error;
mod hosts;
mod images;
mod users;
mod vms;
mod vnets;

pub use error::ApiError;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::api::common::{blocking_as, AppState};
use crate::auth;
use crate::core::{self, Caller, Core};

/// What a `/v1` handler answers.
type Reply = Result<HttpResponse, ApiError>;

/// Registers the `/v1` routes, with JSON bodies limited to `body_limit`
/// bytes and every error in the JSON error form.
pub fn configure(body_limit: usize) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.service(
            web::scope("/v1")
                .app_data(
                    web::JsonConfig::default()
                        .limit(body_limit)
                        .content_type_required(false)
                        .error_handler(|e, _| ApiError::from_json(e).into()),
                )
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|e, _| ApiError::BadQuery(e.to_string()).into()),
                )
                .route("/health", web::get().to(health))
                .configure(users::routes)
                .configure(hosts::routes)
                .configure(images::routes)
                .configure(vnets::routes)
                .configure(vms::routes)
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(ApiError::NoRoute)
                })),
        );
    }
}

/// A resource whose other methods answer 405 in the JSON error form.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed)
    }))
}

/// The authenticated caller of a request, or 401.
fn caller(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    auth::basic::authenticate(&state.core, header).map_err(ApiError::Auth)
}

/// Authenticates the request, then runs `call` as its caller on the
/// blocking pool: the handlers whose only work is one core call.
async fn authenticated<T, F>(req: &HttpRequest, state: &AppState, call: F) -> Result<T, ApiError>
where
    F: FnOnce(&Core, &Caller) -> core::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let caller = caller(req, state)?;
    Ok(blocking_as(&state.core, &caller, call).await?)
}

/// The name of user `uid`, or the uid again if the user is gone (or the
/// user pool cannot say): what `owner_name` shows.
fn owner_name(core: &Core, uid: u64) -> String {
    core.users()
        .by_id(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

/// `GET /v1/health`: answers 200 once the server serves requests; needs no
/// credentials, so that supervisors and tests can poll it.
async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}
