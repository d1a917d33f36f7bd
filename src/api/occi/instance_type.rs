//! `/instance_type` (spec/OCCI.md §8.3, OpenNebula 3.2+, read by libcloud
//! 3.2+ `list_sizes`): the configured `OCCI_INSTANCE_TYPE`s, and one of
//! them by name. The same documents in both dialects.
//!
//! May use: `super`, `crate::api::common`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};

use super::error::OcciError;
use super::href::Hrefs;
use super::xml::InstanceTypeDoc;
use super::{pool_scope, xml, Ctx, Reply};
use crate::api::common::{AppState, InstanceType};

pub(super) fn scope() -> actix_web::Scope {
    pool_scope(
        "/instance_type",
        vec![web::get().to(list), web::head().to(list)],
        "/{name}",
        vec![web::get().to(show), web::head().to(show)],
    )
}

/// The document of one type.
fn doc(hrefs: &Hrefs, t: &InstanceType) -> InstanceTypeDoc {
    InstanceTypeDoc {
        href: hrefs.instance_type(&t.name),
        name: t.name.clone(),
        cpu: t.cpu,
        vcpu: t.vcpu,
        memory_mb: t.memory_mb,
    }
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let docs: Vec<InstanceTypeDoc> = state
        .occi
        .instance_types
        .iter()
        .map(|t| doc(&ctx.hrefs, t))
        .collect();
    Ok(xml(
        StatusCode::OK,
        InstanceTypeDoc::render_collection(&docs),
    ))
}

async fn show(req: HttpRequest, state: web::Data<AppState>, name: web::Path<String>) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let found = state.occi.instance_types.iter().find(|t| t.name == *name);
    match found {
        Some(t) => Ok(xml(StatusCode::OK, doc(&ctx.hrefs, t).render())),
        None => Err(OcciError::NotFound(format!(
            "INSTANCE_TYPE {} not found",
            name.as_str()
        ))),
    }
}
