//! `/v1/hosts`: oneadmin registers, removes, enables and disables hosts
//! and reads what monitoring found (spec/CORE.md §3, §7.3). Everyone else
//! gets 403 on every route, whether the host exists or not.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{authenticated, caller, resource, Reply};
use crate::api::common::AppState;
use crate::core::host::Host;
use crate::template::{self, Template};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/hosts")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        resource("/hosts/{host}")
            .route(web::get().to(show))
            .route(web::delete().to(delete)),
    )
    .service(resource("/hosts/{host}/enable").route(web::post().to(enable)))
    .service(resource("/hosts/{host}/disable").route(web::post().to(disable)));
}

/// A host as `/v1` shows it.
#[derive(Serialize)]
struct HostJson {
    id: u64,
    name: String,
    /// OpenNebula's state name (`MONITORED`...).
    state: &'static str,
    im_mad: String,
    vmm_mad: String,
    tm_mad: String,
    /// Unix seconds; 0 if never monitored.
    last_mon_time: u64,
    /// What the probes reported.
    template: Map<String, Value>,
    share: ShareJson,
    /// Why the last monitoring failed, null once one succeeds.
    error: Option<String>,
}

/// The `HOST_SHARE` figures a client needs: CPU in percent of one core,
/// memory in KB.
#[derive(Serialize)]
struct ShareJson {
    cpu_usage: i64,
    mem_usage: i64,
    max_cpu: i64,
    max_mem: i64,
    free_cpu: i64,
    free_mem: i64,
    running_vms: i64,
}

impl From<Host> for HostJson {
    fn from(h: Host) -> Self {
        HostJson {
            id: h.id,
            state: h.state.name(),
            template: template_json(&h.template),
            share: ShareJson {
                cpu_usage: h.share.cpu_usage,
                mem_usage: h.share.mem_usage,
                max_cpu: h.share.max_cpu,
                max_mem: h.share.max_mem,
                free_cpu: h.share.free_cpu,
                free_mem: h.share.free_mem,
                running_vms: h.share.running_vms,
            },
            name: h.name,
            im_mad: h.im_mad,
            vmm_mad: h.vmm_mad,
            tm_mad: h.tm_mad,
            last_mon_time: h.last_mon_time,
            error: h.error,
        }
    }
}

/// A template as a JSON object: `NAME → "value"`, a vector as an object
/// of its keys, and a name written more than once as an array of its
/// values in order (nothing is lost, `NAME = [..]` repeated included).
pub(super) fn template_json(t: &Template) -> Map<String, Value> {
    let value = |v: &template::Value| match v {
        template::Value::Single(text) => Value::String(text.clone()),
        template::Value::Vector(vector) => Value::Object(
            vector
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect(),
        ),
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for attribute in t.attributes() {
        *counts.entry(attribute.name.as_str()).or_default() += 1;
    }
    let mut out = Map::new();
    for attribute in t.attributes() {
        let new = value(&attribute.value);
        if counts[attribute.name.as_str()] > 1 {
            let slot = out
                .entry(attribute.name.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = slot {
                items.push(new);
            }
        } else {
            out.insert(attribute.name.clone(), new);
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewHost {
    name: String,
    im_mad: String,
    vmm_mad: String,
    tm_mad: String,
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let caller = caller(&req, &state)?;
    let hosts = state.core.hosts().list(&caller)?;
    Ok(HttpResponse::Ok().json(hosts.into_iter().map(HostJson::from).collect::<Vec<_>>()))
}

async fn create(req: HttpRequest, state: web::Data<AppState>, body: web::Json<NewHost>) -> Reply {
    let host = authenticated(&req, &state, move |core, caller| {
        core.hosts().create(
            caller,
            &body.name,
            &body.im_mad,
            &body.vmm_mad,
            &body.tm_mad,
        )
    })
    .await?;
    Ok(HttpResponse::Created().json(HostJson::from(host)))
}

async fn show(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    let caller = caller(&req, &state)?;
    let host = state.core.hosts().show(&caller, &key)?;
    Ok(HttpResponse::Ok().json(HostJson::from(host)))
}

async fn delete(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    authenticated(&req, &state, move |core, caller| {
        core.hosts().delete(caller, &key)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn enable(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    let host = authenticated(&req, &state, move |core, caller| {
        core.hosts().enable(caller, &key)
    })
    .await?;
    Ok(HttpResponse::Ok().json(HostJson::from(host)))
}

async fn disable(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    let host = authenticated(&req, &state, move |core, caller| {
        core.hosts().disable(caller, &key)
    })
    .await?;
    Ok(HttpResponse::Ok().json(HostJson::from(host)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_become_objects_without_losing_repeats() {
        let t = Template::parse(
            "HYPERVISOR = kvm\nTOTALCPU = 800\nVM = [ ID = 1, X = \"a b\" ]\nVM = [ ID = 2 ]\nVM = [ ID = 3 ]\nE =",
        )
        .expect("template");
        assert_eq!(
            Value::Object(template_json(&t)),
            json!({
                "HYPERVISOR": "kvm",
                "TOTALCPU": "800",
                "VM": [{"ID": "1", "X": "a b"}, {"ID": "2"}, {"ID": "3"}],
                "E": ""
            })
        );
    }
}
