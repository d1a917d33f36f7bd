//! `/v1/vnets`: virtual networks (spec/CORE.md §4.1–4.5, authorization
//! §7.3). Anyone creates networks from a template and owns them; a network
//! is seen by its owner, by everyone when public, and by oneadmin; only its
//! owner or oneadmin deletes it, and not while leases are in use.
//!
//! `POST /v1/vnets/{vnet}/publish` and `/unpublish` (owner or oneadmin)
//! make a network usable and visible by every user, or not.
//!
//! Leases are taken and given back by the VM pool, so no route here
//! changes them; they are only shown.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{authenticated, caller, owner_name, resource, ApiError, Reply};
use crate::api::common::blocking_as;
use crate::api::common::AppState;
use crate::core::vnet::{Addresses, Lease, VnetInfo};
use crate::core::Core;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/vnets")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        resource("/vnets/{vnet}")
            .route(web::get().to(show))
            .route(web::delete().to(delete)),
    )
    .service(resource("/vnets/{vnet}/{action}").route(web::post().to(action)));
}

/// A network as `/v1` shows it.
#[derive(Serialize)]
struct VnetJson {
    id: u64,
    /// The owner's uid.
    owner: u64,
    /// The owner's name (the uid again if the user is gone).
    owner_name: String,
    name: String,
    /// `RANGED` or `FIXED`.
    #[serde(rename = "type")]
    network_type: &'static str,
    bridge: String,
    public: bool,
    /// RANGED: the base address.
    #[serde(skip_serializing_if = "Option::is_none")]
    network_address: Option<String>,
    /// RANGED: the mask, dotted.
    #[serde(skip_serializing_if = "Option::is_none")]
    network_mask: Option<String>,
    /// RANGED: `NETWORK_SIZE` as the template gave it (`C`, `254`), null
    /// when the mask or a `/prefix` gave the size.
    #[serde(skip_serializing_if = "Option::is_none")]
    network_size: Option<Option<String>>,
    /// RANGED: the first and last addresses handed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_end: Option<String>,
    /// FIXED: the addresses it hands out, in IP order.
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed_leases: Option<Vec<FixedJson>>,
    /// How many addresses it hands out in all.
    addresses: u64,
    /// The leases in use, in IP order.
    leases: Vec<LeaseJson>,
    /// How many leases are in use (the CLI's #LEASES).
    leases_used: usize,
    /// The normalised template text.
    template: String,
}

#[derive(Serialize)]
struct FixedJson {
    ip: String,
    mac: String,
}

#[derive(Serialize)]
struct LeaseJson {
    ip: String,
    mac: String,
    /// The VM holding it.
    vm: u64,
}

impl VnetJson {
    fn of(core: &Core, info: VnetInfo) -> Self {
        let VnetInfo { network, leases } = info;
        let owner_name = owner_name(core, network.uid);
        let size = network.size();
        let network_type = network.kind().as_str();
        let template = network.template.to_string();
        let mut json = VnetJson {
            id: network.id,
            owner: network.uid,
            owner_name,
            name: network.name,
            network_type,
            bridge: network.bridge,
            public: network.public,
            network_address: None,
            network_mask: None,
            network_size: None,
            ip_start: None,
            ip_end: None,
            fixed_leases: None,
            addresses: size,
            leases_used: leases.len(),
            leases: leases.iter().map(LeaseJson::from).collect(),
            template,
        };
        match network.addresses {
            Addresses::Ranged(range) => {
                json.network_address = Some(range.address.to_string());
                json.network_mask = Some(range.mask().to_string());
                json.ip_start = Some(range.first.to_string());
                json.ip_end = Some(range.last.to_string());
                json.network_size = Some(range.size);
            }
            Addresses::Fixed(fixed) => {
                json.fixed_leases = Some(
                    fixed
                        .iter()
                        .map(|l| FixedJson {
                            ip: l.ip.to_string(),
                            mac: l.mac.to_string(),
                        })
                        .collect(),
                );
            }
        }
        json
    }
}

impl From<&Lease> for LeaseJson {
    fn from(l: &Lease) -> Self {
        LeaseJson {
            ip: l.ip.to_string(),
            mac: l.mac.to_string(),
            vm: l.vm_id,
        }
    }
}

/// The body of `POST /v1/vnets`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewVnet {
    /// A network template (spec/CORE.md §4.1).
    template: String,
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let caller = caller(&req, &state)?;
    let vnets = state.core.vnets().list(&caller)?;
    let core = &state.core;
    Ok(HttpResponse::Ok().json(
        vnets
            .into_iter()
            .map(|v| VnetJson::of(core, v))
            .collect::<Vec<_>>(),
    ))
}

async fn create(req: HttpRequest, state: web::Data<AppState>, body: web::Json<NewVnet>) -> Reply {
    let info = authenticated(&req, &state, move |core, caller| {
        core.vnets().create(caller, &body.template)
    })
    .await?;
    Ok(HttpResponse::Created().json(VnetJson::of(&state.core, info)))
}

async fn show(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    let caller = caller(&req, &state)?;
    let info = state.core.vnets().show(&caller, &key)?;
    Ok(HttpResponse::Ok().json(VnetJson::of(&state.core, info)))
}

async fn delete(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    authenticated(&req, &state, move |core, caller| {
        core.vnets().delete(caller, &key)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/vnets/{vnet}/{publish|unpublish}`: the network afterwards.
async fn action(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Reply {
    let caller = caller(&req, &state)?;
    let (key, action) = path.into_inner();
    let public = match action.as_str() {
        "publish" => true,
        "unpublish" => false,
        _ => return Err(ApiError::NoRoute),
    };
    let info = blocking_as(&state.core, &caller, move |core, caller| {
        let network = core.vnets().set_public(caller, &key, public)?;
        core.vnets().show(caller, &network.id.to_string())
    })
    .await?;
    Ok(HttpResponse::Ok().json(VnetJson::of(&state.core, info)))
}
