//! `/v1/vms`: virtual machines (spec/CORE.md §1, §2, §7.3). Anyone
//! creates VMs and owns them; the owner and oneadmin see and act on them;
//! deploy, migrate, livemigrate and recover are oneadmin's.
//!
//! - `POST /v1/vms` `{"template": "..."}` → 201 with the VM;
//! - `GET /v1/vms?filter=all|mine|<uid>|<user>` → the VMs not DONE;
//! - `GET /v1/vms/{id}`, `GET /v1/vms/{id}/history`;
//! - `GET /v1/vms/{id}/log` → the end of the VM's log (`var/<vid>/vm.log`)
//!   as `text/plain`, or `{"id": .., "log": ".."}` for a client that asks
//!   for `application/json` only (the CLI);
//! - `DELETE /v1/vms/{id}` → the `delete` action;
//! - `POST /v1/vms/{id}/actions/{action}` with an optional body
//!   `{"host": ..}` (deploy, migrate, livemigrate) or `{"mode":
//!   "success|failure|retry"}` (recover);
//! - `POST /v1/vms/{id}/disks/{disk}/saveas` `{"name": ".."}` → 201 with
//!   the new (`LOCKED`) image: disk `disk` (0-based) is saved as it when
//!   the VM shuts down.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::hosts::template_json;
use super::images::ImageJson;
use super::{authenticated, caller, resource, ApiError, Reply};
use crate::api::common::blocking_as;
use crate::api::common::AppState;
use crate::core::vm::{reason_short, Action, Filter, History, Vm};
use crate::core::{self, Core, Kind};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/vms")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        resource("/vms/{id}")
            .route(web::get().to(show))
            .route(web::delete().to(delete)),
    )
    .service(resource("/vms/{id}/history").route(web::get().to(history)))
    .service(resource("/vms/{id}/log").route(web::get().to(log)))
    .service(resource("/vms/{id}/actions/{action}").route(web::post().to(action)))
    .service(resource("/vms/{id}/disks/{disk}/saveas").route(web::post().to(save_as)));
}

/// A VM as `/v1` shows it.
#[derive(Serialize)]
pub struct VmJson {
    id: u64,
    name: String,
    /// The owner's uid.
    owner: u64,
    owner_name: String,
    /// The CLI's short state (`runn`, `pend`...).
    state: &'static str,
    /// OpenNebula's DM state name (`ACTIVE`).
    dm_state: &'static str,
    /// OpenNebula's LCM state name (`RUNNING`; `LCM_INIT` unless ACTIVE).
    lcm_state: &'static str,
    /// The host it is on or was last on.
    host: Option<String>,
    host_id: Option<u64>,
    deploy_id: Option<String>,
    /// What it reserves on its host: CPU in percent of one core, memory
    /// in KB.
    reserved_cpu: i64,
    reserved_memory: i64,
    /// What the last poll reported.
    usage: UsageJson,
    /// Submission and exit times, Unix seconds (0: not yet).
    stime: u64,
    etime: u64,
    nics: Vec<NicJson>,
    disks: Vec<Map<String, Value>>,
    template: Map<String, Value>,
    history: Vec<HistoryJson>,
    /// The last failure.
    error: Option<ErrorJson>,
    /// Why the scheduler left it pending.
    pending_reason: Option<String>,
    /// The driver step it waits for.
    pending: Option<PendingJson>,
}

#[derive(Serialize)]
struct UsageJson {
    /// Percent of one CPU.
    cpu: u64,
    /// KB.
    memory: u64,
    net_rx: u64,
    net_tx: u64,
    last_poll: u64,
}

#[derive(Serialize)]
struct NicJson {
    network: Option<String>,
    network_id: Option<u64>,
    ip: Option<String>,
    mac: Option<String>,
    bridge: Option<String>,
}

/// One history record (spec/CORE.md §2).
#[derive(Serialize)]
pub struct HistoryJson {
    vm: u64,
    seq: u32,
    host: String,
    host_id: u64,
    vm_dir: String,
    vmm_mad: String,
    tm_mad: String,
    stime: u64,
    etime: u64,
    pstime: u64,
    petime: u64,
    rstime: u64,
    retime: u64,
    estime: u64,
    eetime: u64,
    /// `NONE`, `ERROR`, `STOP_RESUME`, `USER`, `CANCEL`.
    reason: &'static str,
    /// The CLI's form: `none erro stop user canc`.
    reason_short: &'static str,
}

#[derive(Serialize)]
struct ErrorJson {
    message: String,
    time: u64,
}

#[derive(Serialize)]
struct PendingJson {
    step: Option<String>,
    host: String,
    started_at: u64,
}

impl HistoryJson {
    fn of(vm: u64, h: &History) -> Self {
        HistoryJson {
            vm,
            seq: h.seq,
            host: h.host.clone(),
            host_id: h.host_id,
            vm_dir: h.vm_dir.clone(),
            vmm_mad: h.vmm_mad.clone(),
            tm_mad: h.tm_mad.clone(),
            stime: h.stime,
            etime: h.etime,
            pstime: h.pstime,
            petime: h.petime,
            rstime: h.rstime,
            retime: h.retime,
            estime: h.estime,
            eetime: h.eetime,
            reason: h.reason.name(),
            reason_short: reason_short(h.reason),
        }
    }
}

impl VmJson {
    /// The JSON of a VM.
    pub fn of(vm: Vm) -> Self {
        let get = |v: &crate::template::Vector, k: &str| v.get(k).map(str::to_string);
        let nics = vm
            .template
            .vectors("NIC")
            .map(|nic| NicJson {
                network: get(nic, "NETWORK"),
                network_id: nic.get("NETWORK_ID").and_then(|n| n.trim().parse().ok()),
                ip: get(nic, "IP"),
                mac: get(nic, "MAC"),
                bridge: get(nic, "BRIDGE"),
            })
            .collect();
        let disks = vm
            .template
            .vectors("DISK")
            .map(|disk| {
                disk.iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                    .collect()
            })
            .collect();
        let host = vm.host();
        VmJson {
            id: vm.id,
            owner: vm.uid,
            state: vm.short_state(),
            dm_state: vm.state.name(),
            lcm_state: vm.lcm.name(),
            host: host.map(|h| h.host.clone()),
            host_id: host.map(|h| h.host_id),
            reserved_cpu: vm.reservation.cpu,
            reserved_memory: vm.reservation.mem_kb,
            usage: UsageJson {
                cpu: vm.usage.cpu,
                memory: vm.usage.memory_kb,
                net_rx: vm.usage.net_rx,
                net_tx: vm.usage.net_tx,
                last_poll: vm.usage.last_poll,
            },
            stime: vm.stime,
            etime: vm.etime,
            nics,
            disks,
            template: template_json(&vm.template),
            history: vm
                .history
                .iter()
                .map(|h| HistoryJson::of(vm.id, h))
                .collect(),
            error: vm.error.map(|e| ErrorJson {
                message: e.message,
                time: e.time,
            }),
            pending_reason: vm.unplaced,
            pending: vm.pending.map(|p| PendingJson {
                step: p.awaited.map(|s| s.to_string()),
                host: p.host,
                started_at: p.started_at,
            }),
            deploy_id: vm.deploy_id,
            owner_name: vm.uname,
            name: vm.name,
        }
    }
}

/// The body of `POST /v1/vms`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewVm {
    /// A VM template (spec/CORE.md §5.1).
    template: String,
}

/// The optional body of `POST /v1/vms/{id}/actions/{action}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    /// deploy, migrate, livemigrate: the host, by id or name.
    host: Option<String>,
    /// recover: `success`, `failure` or `retry`.
    mode: Option<String>,
}

#[derive(Deserialize)]
struct ListQuery {
    filter: Option<String>,
}

/// A VM id from the path; anything else names no VM.
fn vm_id(text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::Core(core::Error::not_found(Kind::Vm, text)))
}

/// The `filter` query: `all` (or `a`, `-2`), `mine` (`m`, `-1`), a uid or
/// a user name.
fn filter(core: &Core, text: Option<&str>) -> Result<Filter, ApiError> {
    Ok(match text.map(str::trim) {
        None | Some("") | Some("all") | Some("a") | Some("-2") => Filter::All,
        Some("mine") | Some("m") | Some("-1") => Filter::Mine,
        Some(other) => match other.parse::<u64>() {
            Ok(uid) => Filter::User(uid),
            Err(_) => {
                let user = core
                    .users()
                    .by_name(other)?
                    .ok_or_else(|| core::Error::not_found(Kind::User, other))?;
                Filter::User(user.id)
            }
        },
    })
}

async fn list(req: HttpRequest, state: web::Data<AppState>, query: web::Query<ListQuery>) -> Reply {
    let caller = caller(&req, &state)?;
    let filter = filter(&state.core, query.filter.as_deref())?;
    let vms = state.core.vms().list(&caller, filter)?;
    Ok(HttpResponse::Ok().json(vms.into_iter().map(VmJson::of).collect::<Vec<_>>()))
}

async fn create(req: HttpRequest, state: web::Data<AppState>, body: web::Json<NewVm>) -> Reply {
    let vm = authenticated(&req, &state, move |core, caller| {
        core.vms().create(caller, &body.template)
    })
    .await?;
    Ok(HttpResponse::Created().json(VmJson::of(vm)))
}

async fn show(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> Reply {
    let caller = caller(&req, &state)?;
    let vm = state.core.vms().show(&caller, vm_id(&id)?)?;
    Ok(HttpResponse::Ok().json(VmJson::of(vm)))
}

async fn history(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> Reply {
    let caller = caller(&req, &state)?;
    let vm = state.core.vms().show(&caller, vm_id(&id)?)?;
    let records: Vec<HistoryJson> = vm
        .history
        .iter()
        .map(|h| HistoryJson::of(vm.id, h))
        .collect();
    Ok(HttpResponse::Ok().json(records))
}

/// `GET /v1/vms/{id}/log`: the file is read on the blocking pool.
async fn log(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> Reply {
    let caller = caller(&req, &state)?;
    let id = vm_id(&id)?;
    let text = blocking_as(&state.core, &caller, move |core, caller| {
        core.vms().log(caller, id)
    })
    .await?;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(serde_json::json!({ "id": id, "log": text })));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}

/// Whether the request accepts JSON and not text: the `/v1` client sends
/// `Accept: application/json` and reads every answer as JSON, while curl
/// (`*/*`) and browsers get the plain text.
fn wants_json(req: &HttpRequest) -> bool {
    let accept = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    types.contains(&"application/json")
        && !types
            .iter()
            .any(|t| matches!(*t, "text/plain" | "text/*" | "*/*"))
}

async fn delete(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> Reply {
    let caller = caller(&req, &state)?;
    let id = vm_id(&id)?;
    let vm = blocking_as(&state.core, &caller, move |core, caller| {
        core.vms().action(caller, id, Action::Delete, None)
    })
    .await?;
    Ok(HttpResponse::Ok().json(VmJson::of(vm)))
}

async fn action(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Reply {
    let caller = caller(&req, &state)?;
    let (id, word) = path.into_inner();
    let id = vm_id(&id)?;
    let body: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadBody(e.to_string()))?
    };
    let action = Action::parse(&word, body.mode.as_deref())?;
    let vm = blocking_as(&state.core, &caller, move |core, caller| {
        core.vms().action(caller, id, action, body.host.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(VmJson::of(vm)))
}

/// The body of a disk save-as.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveAsBody {
    /// The new image's name.
    name: String,
}

/// A disk index from the path; anything else names no disk.
fn disk_index(text: &str) -> Result<usize, ApiError> {
    text.parse()
        .map_err(|_| ApiError::Core(core::Error::invalid("disk", format!("no disk {text}"))))
}

/// `POST /v1/vms/{id}/disks/{disk}/saveas`: 201 with the new image, as
/// `POST /v1/images` answers.
async fn save_as(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<SaveAsBody>,
) -> Reply {
    let caller = caller(&req, &state)?;
    let (id, disk) = path.into_inner();
    let (id, disk) = (vm_id(&id)?, disk_index(&disk)?);
    let (_, image) = blocking_as(&state.core, &caller, move |core, caller| {
        core.vms().save_disk_as(caller, id, disk, &body.name)
    })
    .await?;
    Ok(HttpResponse::Created().json(ImageJson::of(&state.core, image)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_bodies_take_host_or_mode_only() {
        let body: ActionBody = serde_json::from_str(r#"{"host": "node-1"}"#).expect("host");
        assert_eq!(body.host.as_deref(), Some("node-1"));
        let body: ActionBody = serde_json::from_str(r#"{"mode": "retry"}"#).expect("mode");
        assert_eq!(body.mode.as_deref(), Some("retry"));
        assert!(serde_json::from_str::<ActionBody>(r#"{"hots": "x"}"#).is_err());
    }

    #[test]
    fn save_as_bodies_take_a_name_only() {
        let body: SaveAsBody = serde_json::from_str(r#"{"name": "backup"}"#).expect("name");
        assert_eq!(body.name, "backup");
        assert!(serde_json::from_str::<SaveAsBody>(r#"{"name": "b", "x": 1}"#).is_err());
        assert!(disk_index("0").is_ok());
        assert!(disk_index("-1").is_err());
    }

    #[test]
    fn logs_are_json_only_for_clients_that_take_nothing_else() {
        let wants = |accept: Option<&str>| {
            let mut req = actix_web::test::TestRequest::default();
            if let Some(accept) = accept {
                req = req.insert_header((actix_web::http::header::ACCEPT, accept));
            }
            wants_json(&req.to_http_request())
        };
        assert!(wants(Some("application/json")));
        assert!(wants(Some("application/json; q=1.0")));
        assert!(!wants(None));
        assert!(!wants(Some("*/*")));
        assert!(!wants(Some("text/plain")));
        assert!(!wants(Some("application/json, */*;q=0.5")));
        assert!(!wants(Some("text/html,application/xhtml+xml,*/*;q=0.8")));
    }

    #[test]
    fn ids_that_are_not_numbers_name_no_vm() {
        assert!(vm_id("12").is_ok());
        assert!(matches!(
            vm_id("web"),
            Err(ApiError::Core(core::Error::NotFound { kind: Kind::Vm, .. }))
        ));
    }
}
