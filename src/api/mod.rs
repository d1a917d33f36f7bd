//! The HTTP front: the app factory, the state the handlers share, request
//! ids and the request log. Each protocol lives in its own submodule.
//!
//! May use: `crate::api::*`, `crate::core`, `crate::auth`, `crate::config`.

pub mod common;
pub mod ec2;
pub mod native;
pub mod occi;

pub use common::AppState;

use std::net::TcpListener;
use std::time::Instant;

use actix_web::dev::{Server, Service};
use actix_web::{web, App, HttpMessage, HttpServer};

/// The web dashboard: one page, built into the binary so that `serve`
/// needs no files beside it.
async fn dashboard() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("../../static/index.html"))
}

/// Builds the HTTP server on an already bound listener (so that a caller
/// asking for port 0 can learn the port before serving).
pub fn server(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(native::configure(state.body_limit))
            .configure(occi::configure)
            .configure(ec2::configure(&state.ec2.path_prefix))
            .route("/ui", web::get().to(dashboard))
            .route("/ui/", web::get().to(dashboard))
            // Paths no front serves: a one-line text/plain 404.
            .default_service(web::to(occi::not_found))
            .wrap_fn(|req, srv| {
                let id = common::RequestId::next();
                req.extensions_mut().insert(id.clone());
                let (method, path) = (req.method().clone(), req.path().to_string());
                let started = Instant::now();
                let response = srv.call(req);
                async move {
                    let mut response = response.await?;
                    let status = response.status();
                    tracing::info!(
                        request_id = %id,
                        "{method} {path} {} {:.1}ms",
                        status.as_u16(),
                        started.elapsed().as_secs_f64() * 1000.0
                    );
                    id.add_header(response.headers_mut());
                    Ok(response)
                }
            })
    })
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    Ok(server)
}
