//! The EC2 Query front, OpenNebula's "econe" (spec/EC2.md): `GET` and
//! `POST` on `/` (or `EC2_PATH_PREFIX`), parameters from the query string
//! and a form or multipart body, signatures V1, V2 and V4, XML responses.
//!
//! A request is (STYLE.md §1.3): read and merge the parameters
//! (`params.rs`) → name the [`Action`] (unknown: `InvalidAction`, before
//! any signature work) → authenticate (`crate::auth::ec2`, before any
//! other parameter is looked at) → the action's handler: parse its
//! parameters, one core call, render its typed document (`xml.rs`).
//! Every failure is an EC2 error document (`error.rs`).
//!
//! Files: `mod.rs` (routes, body reading, authentication),
//! `multipart.rs` (multipart bodies: UploadImage's stream, SigV4's check
//! of a streamed body), `router.rs` (dispatch), `action.rs`, `params.rs`,
//! `ids.rs`, `error.rs`, `xml.rs`, and one file per action group:
//! `images.rs`, `instances.rs`, `keypairs.rs`, `tags.rs`, `regions.rs`.
//!
//! The body is read by hand from the raw payload — no actix extractor
//! (`Form`, `Query`, `Bytes`) is used — so no actix extractor error, which
//! would answer `text/plain`, can reach an EC2 client; other methods on the
//! endpoint answer an EC2 error too.
//!
//! May use: `crate::api::common`, `crate::core`, `crate::auth`.

mod action;
mod error;
mod ids;
mod images;
mod instances;
mod keypairs;
mod multipart;
mod params;
mod regions;
mod router;
mod tags;
#[cfg(test)]
mod tests;
mod xml;

pub use action::Action;
pub use error::{Ec2Error, Failure};

use std::time::SystemTime;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use crate::api::common::{AppState, RequestId};
use crate::auth::ec2::{authenticate, Deferred, Policy, SignedRequest};
use crate::auth::sigv4;
use crate::core::Caller;
use params::{decode_form, Params};
use xml::{Document, Namespace};

/// Registers the front on `prefix` (`/` by default), with and without a
/// trailing slash. Only that path: `/v1`, `/ui` and the OCCI pools are
/// other resources.
pub fn configure(prefix: &str) -> impl FnOnce(&mut web::ServiceConfig) {
    let prefix = prefix.trim_end_matches('/').to_string();
    move |cfg| {
        let paths = if prefix.is_empty() {
            vec!["/".to_string()]
        } else {
            vec![prefix.clone(), format!("{prefix}/")]
        };
        cfg.service(
            web::resource(paths)
                .route(web::get().to(entry))
                .route(web::post().to(entry))
                .default_service(web::to(|req: HttpRequest| async move {
                    Err::<HttpResponse, _>(Ec2Error::MethodNotAllowed.with_id(RequestId::of(&req)))
                })),
        );
    }
}

/// Every EC2 request.
async fn entry(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Failure> {
    let id = RequestId::of(&req);
    serve(&req, body, &state, &id)
        .await
        .map_err(|e| e.with_id(id))
}

/// What a handler knows once the caller is authenticated.
pub(crate) struct Ctx<'a> {
    /// The shared state.
    pub state: &'a AppState,
    /// Who asks.
    pub caller: Caller,
    /// The response namespace, from `Version`.
    pub ns: Namespace,
    /// This request's id.
    pub request_id: RequestId,
    /// The endpoint clients reach this front at (DescribeRegions).
    pub endpoint: String,
}

impl Ctx<'_> {
    /// A 200 with a rendered document.
    pub fn reply(&self, doc: &dyn Document) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/xml; charset=utf-8")
            .body(xml::render(doc, &self.ns, self.request_id.as_str()))
    }
}

async fn serve(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
    id: &RequestId,
) -> Result<HttpResponse, Ec2Error> {
    let query = decode_form(req.query_string())?;
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            let value = value.to_str().ok()?;
            Some((name.as_str().to_ascii_lowercase(), value.to_string()))
        })
        .collect();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Ok(boundary) = multer::parse_boundary(content_type) {
        return multipart::serve(req, body, state, id, query, &headers, boundary).await;
    }
    let raw = read_body(req, body, state.body_limit).await?;
    let form = if is_form(content_type) {
        let text = std::str::from_utf8(&raw)
            .map_err(|_| Ec2Error::invalid_value("the form body is not UTF-8"))?;
        decode_form(text)?
    } else {
        Vec::new()
    };
    let params = Params::merge(query.clone(), form);
    let action = Action::from_params(&params)?;
    let signed = SignedRequest {
        method: req.method().as_str(),
        path: req.path(),
        headers: &headers,
        query: &query,
        params: params.pairs(),
        body: Some(&raw),
    };
    let (ctx, deferred) = context(req, state, id, &signed, &params)?;
    // A body read whole was hashed for the signature already; should a
    // check still be pending, the body is at hand to finish it.
    if let Some(deferred) = deferred {
        deferred.finish(&sigv4::payload_hash(&raw))?;
    }
    router::dispatch(&ctx, action, &params).await
}

/// Authenticates the request and builds the handler's context. For a
/// SigV4 request whose body is streamed, the check is finished only with
/// the body's hash ([`Deferred`]): nothing the body brings may be kept
/// before that.
fn context<'a>(
    req: &HttpRequest,
    state: &'a AppState,
    id: &RequestId,
    signed: &SignedRequest<'_>,
    params: &Params,
) -> Result<(Ctx<'a>, Option<Deferred>), Ec2Error> {
    let public_hosts: Vec<String> = state
        .public_url
        .as_deref()
        .and_then(host_of_url)
        .into_iter()
        .collect();
    let policy = Policy {
        skew: state.ec2.signature_skew,
        public_hosts,
    };
    let (caller, deferred) = authenticate(&state.core, signed, &policy, SystemTime::now())?;
    let endpoint = match &state.public_url {
        Some(url) => format!("{}{}", url.trim_end_matches('/'), req.path()),
        None => {
            let info = req.connection_info();
            format!("{}://{}{}", info.scheme(), info.host(), req.path())
        }
    };
    let ctx = Ctx {
        state,
        caller,
        ns: Namespace::for_version(params.get("Version")),
        request_id: id.clone(),
        endpoint,
    };
    Ok((ctx, deferred))
}

/// `https://cloud.example.org:8443/x` → `cloud.example.org:8443`.
fn host_of_url(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| host.to_string())
}

/// Whether the body is a form: `application/x-www-form-urlencoded` (with
/// any charset), or no content type at all (curl's `-d` sends the type,
/// some scripts do not).
fn is_form(content_type: &str) -> bool {
    let main = content_type.split(';').next().unwrap_or("").trim();
    main.is_empty() || main.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// Reads the whole body, refusing more than `limit` bytes (a declared
/// length over it before reading anything).
async fn read_body(
    req: &HttpRequest,
    mut body: web::Payload,
    limit: usize,
) -> Result<web::Bytes, Ec2Error> {
    let too_large = || Ec2Error::BodyTooLarge(limit as u64);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut out = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Ec2Error::BadBody(e.to_string()))?;
        if out.len() + chunk.len() > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod request_tests {
    use super::*;

    #[test]
    fn form_content_types() {
        assert!(is_form("application/x-www-form-urlencoded; charset=utf-8"));
        assert!(is_form("Application/X-WWW-Form-Urlencoded"));
        assert!(is_form(""));
        assert!(!is_form("text/xml"));
    }

    #[test]
    fn public_url_hosts() {
        assert_eq!(
            host_of_url("https://cloud.example.org:8443/ec2"),
            Some("cloud.example.org:8443".into())
        );
        assert_eq!(host_of_url("http://h"), Some("h".into()));
        assert_eq!(host_of_url("http://"), None);
    }
}
