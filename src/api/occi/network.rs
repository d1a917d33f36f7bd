//! `/network` (spec/OCCI.md §3, §4.3, §4.4, §5.3): the caller's networks
//! plus the public ones (all for oneadmin); `POST` makes a RANGED network
//! from `NAME`, `ADDRESS` and `SIZE`; `PUT` publishes or unpublishes it
//! (2.2's `PUBLIC`); `DELETE` is refused while leases are in use.
//!
//! May use: `super` and `crate::core`, `crate::template`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};

use super::xml::{Element, NetworkCreate, NetworkDoc, NetworkUpdate, PoolEntry, PoolKind};
use super::{created, deleted, read_body, xml, Ctx, Reply};
use crate::api::common::{blocking_as, AppState};
use crate::core::vnet::{Addresses, VnetInfo};
use crate::template::Template;

/// The host bridge of networks made through OCCI: OCCI has no way to name
/// one, and OpenNebula took it from its server config; cloudgate's
/// convention is `br0` (the README's example).
pub const DEFAULT_BRIDGE: &str = "br0";

/// `SIZE` when the request gives none: a class C, the seed's default.
const DEFAULT_SIZE: &str = "C";

pub(super) fn scope() -> actix_web::Scope {
    crud_scope!("/network", list, create, show, update, delete)
}

/// The NETWORK document of a network.
fn doc(ctx: &Ctx, info: &VnetInfo) -> NetworkDoc {
    let network = &info.network;
    let (address, size) = match &network.addresses {
        Addresses::Ranged(range) => (
            Some(range.address.to_string()),
            range
                .size
                .clone()
                .unwrap_or_else(|| network.size().to_string()),
        ),
        Addresses::Fixed(_) => (None, network.size().to_string()),
    };
    NetworkDoc {
        href: ctx.hrefs.network(network.id),
        id: network.id,
        name: network.name.clone(),
        address,
        size,
        description: network
            .template
            .get("DESCRIPTION")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        public: network.public,
        used_leases: info.leases.len(),
    }
}

/// The network template of a `POST /network` (spec/OCCI.md §4.3).
fn template(request: &NetworkCreate) -> Template {
    let mut template = Template::new();
    template.set("NAME", request.name.clone());
    template.set("TYPE", "RANGED");
    template.set("BRIDGE", DEFAULT_BRIDGE);
    template.set("NETWORK_ADDRESS", request.address.clone());
    template.set(
        "NETWORK_SIZE",
        request.size.clone().unwrap_or_else(|| DEFAULT_SIZE.into()),
    );
    if let Some(description) = &request.description {
        template.set("DESCRIPTION", description.clone());
    }
    if let Some(public) = request.public {
        template.set("PUBLIC", if public { "YES" } else { "NO" });
    }
    template
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let entries = state
        .core
        .vnets()
        .list(&ctx.caller)?
        .into_iter()
        .map(|info| PoolEntry {
            href: ctx.hrefs.network(info.network.id),
            name: info.network.name,
        })
        .collect();
    Ok(ctx.pool_reply(PoolKind::Network, entries))
}

async fn create(req: HttpRequest, state: web::Data<AppState>, body: web::Payload) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let body = read_body(&req, body, state.body_limit).await?;
    let request = NetworkCreate::parse(&Element::parse(&body)?)?;
    let template = template(&request);
    let info = blocking_as(&state.core, &ctx.caller, move |core, caller| {
        core.vnets().create_from(caller, template)
    })
    .await?;
    let doc = doc(&ctx, &info);
    Ok(created(&doc.href, doc.render(ctx.dialect(request.shape))))
}

async fn show(req: HttpRequest, state: web::Data<AppState>, id: web::Path<u64>) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let info = state.core.vnets().show(&ctx.caller, &id.to_string())?;
    Ok(xml(
        StatusCode::OK,
        doc(&ctx, &info).render(ctx.dialect(None)),
    ))
}

/// `PUT /network/{id}` (spec/OCCI.md §4.4, 2.2 semantics):
/// `<PUBLIC>YES</PUBLIC>` publishes, `NO` unpublishes; 202 + NETWORK as it
/// is afterwards. A bad body is 400 before anything is looked up; another
/// user's network 403, an unknown one 404, and neither changes anything.
async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<u64>,
    body: web::Payload,
) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let body = read_body(&req, body, state.body_limit).await?;
    let change = NetworkUpdate::parse(&Element::parse(&body)?)?;
    let key = id.to_string();
    let info = blocking_as(&state.core, &ctx.caller, move |core, caller| {
        core.vnets().set_public(caller, &key, change.public)?;
        core.vnets().show(caller, &key)
    })
    .await?;
    Ok(xml(
        StatusCode::ACCEPTED,
        doc(&ctx, &info).render(ctx.dialect(None)),
    ))
}

async fn delete(req: HttpRequest, state: web::Data<AppState>, id: web::Path<u64>) -> Reply {
    let ctx = Ctx::new(&req, &state)?;
    let key = id.to_string();
    blocking_as(&state.core, &ctx.caller, move |core, caller| {
        core.vnets().delete(caller, &key)
    })
    .await?;
    Ok(deleted(ctx.dialect(None)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::occi::dialect::Dialect;

    #[test]
    fn a_post_becomes_a_ranged_network_on_the_default_bridge() {
        let doc = Element::parse(
            b"<NETWORK><NAME>BlueNetwork</NAME><ADDRESS>192.168.0.0</ADDRESS><SIZE>C</SIZE></NETWORK>",
        )
        .expect("parses");
        let request = NetworkCreate::parse(&doc).expect("valid");
        let text = template(&request).to_string();
        for line in [
            "NAME = BlueNetwork",
            "TYPE = RANGED",
            "BRIDGE = br0",
            "NETWORK_ADDRESS = 192.168.0.0",
            "NETWORK_SIZE = C",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!text.contains("PUBLIC"), "{text}");
        assert_eq!(request.shape, None);
    }

    #[test]
    fn size_defaults_to_class_c_and_public_is_passed_on() {
        let doc = Element::parse(
            b"<NIC><NAME>n</NAME><ADDRESS>10.0.0.0</ADDRESS><PUBLIC>yes</PUBLIC></NIC>",
        )
        .expect("parses");
        let request = NetworkCreate::parse(&doc).expect("valid");
        assert_eq!(
            request.shape,
            Some(Dialect::V1_4),
            "released 1.4's NIC root"
        );
        let text = template(&request).to_string();
        assert!(text.contains("NETWORK_SIZE = C"), "{text}");
        assert!(text.contains("PUBLIC = YES"), "{text}");
    }
}
