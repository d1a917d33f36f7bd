//! The VM tables (spec/CORE.md §8.2-8.3): `vms` (indexed columns beside
//! `body`, the VM as JSON with its template as template text),
//! `vm_history` (one row per stay, `body` JSON) and `vm_pending` (the
//! driver step each VM waits for, spec/CORE.md §8.4). Loading reads the
//! bodies and puts each VM together with its records and pending step.
//!
//! Rows are upserted, never replaced: a `REPLACE` would delete the row
//! first, cascading to its history and tripping the leases' reference.

use std::collections::HashMap;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::{db_error, id_bodies_where, sql_id};
use crate::core::vm::state::{LcmState, Reason, State, Step};
use crate::core::vm::{History, Pending, Reservation, Usage, Vm, VmError};
use crate::core::{Error, Result};
use crate::template::Template;

/// The JSON in `vms.body`.
#[derive(Serialize, Deserialize)]
struct Body {
    id: u64,
    uid: u64,
    uname: String,
    name: String,
    state: u32,
    lcm_state: u32,
    deploy_id: Option<String>,
    /// The template as template text.
    template: String,
    cpu: i64,
    mem_kb: i64,
    usage: UsageBody,
    stime: u64,
    etime: u64,
    error: Option<ErrorBody>,
    op: u64,
}

#[derive(Serialize, Deserialize)]
struct UsageBody {
    cpu: u64,
    memory_kb: u64,
    net_rx: u64,
    net_tx: u64,
}

#[derive(Serialize, Deserialize)]
struct ErrorBody {
    message: String,
    time: u64,
}

/// The JSON in `vm_history.body`.
#[derive(Serialize, Deserialize)]
struct HistoryBody {
    seq: u32,
    host_id: u64,
    host: String,
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
    reason: u32,
}

/// The JSON in `vm_pending.body`: steps by their table names.
#[derive(Serialize, Deserialize)]
struct PendingBody {
    op: u64,
    awaited: Option<String>,
    cleanup: Vec<String>,
    host: String,
    started_at: u64,
}

/// The driver steps a pending row may name.
const DRIVER_STEPS: [Step; 22] = [
    Step::TmProlog,
    Step::TmPrologResume,
    Step::TmPrologMigrate,
    Step::TmEpilog,
    Step::TmEpilogStop,
    Step::TmEpilogDelete,
    Step::TmEpilogDeletePrevious,
    Step::TmEpilogDeleteStop,
    Step::TmDriverCancel,
    Step::VmmDeploy,
    Step::VmmRestore,
    Step::VmmSave,
    Step::VmmSavePrevious,
    Step::VmmShutdown,
    Step::VmmCancel,
    Step::VmmCancelPrevious,
    Step::VmmMigrate,
    Step::VmmReboot,
    Step::VmmReset,
    Step::VmmPoll,
    Step::VmmDriverCancel,
    Step::RetryPending,
];

fn step_named(name: &str) -> Option<Step> {
    DRIVER_STEPS.into_iter().find(|s| s.to_string() == name)
}

fn corrupt(id: u64, what: impl std::fmt::Display) -> Error {
    Error::Internal(format!("VM {id} in the database: {what}"))
}

fn encode<T: Serialize>(id: u64, value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::Internal(format!("VM {id}: cannot encode: {e}")))
}

fn time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

pub(super) fn put(conn: &Connection, vm: &Vm) -> Result<()> {
    let body = Body {
        id: vm.id,
        uid: vm.uid,
        uname: vm.uname.clone(),
        name: vm.name.clone(),
        state: vm.state.number(),
        lcm_state: vm.lcm.number(),
        deploy_id: vm.deploy_id.clone(),
        template: vm.template.to_string(),
        cpu: vm.reservation.cpu,
        mem_kb: vm.reservation.mem_kb,
        usage: UsageBody {
            cpu: vm.usage.cpu,
            memory_kb: vm.usage.memory_kb,
            net_rx: vm.usage.net_rx,
            net_tx: vm.usage.net_tx,
        },
        stime: vm.stime,
        etime: vm.etime,
        error: vm.error.as_ref().map(|e| ErrorBody {
            message: e.message.clone(),
            time: e.time,
        }),
        op: vm.op,
    };
    // The current host, while the VM is on one (a reference to hosts:
    // a host cannot be deleted under an active VM).
    let host_id = match vm.state {
        State::Active => vm.host().map(|h| sql_id(h.host_id)).transpose()?,
        _ => None,
    };
    let (id, uid) = (sql_id(vm.id)?, sql_id(vm.uid)?);
    let body = encode(vm.id, &body)?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO vms (id, uid, name, state, lcm_state, host_id, etime, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET uid = excluded.uid, name = excluded.name,
                 state = excluded.state, lcm_state = excluded.lcm_state,
                 host_id = excluded.host_id, etime = excluded.etime, body = excluded.body",
        )
        .map_err(db_error)?;
    stmt.execute(params![
        id,
        uid,
        vm.name,
        vm.state.number(),
        vm.lcm.number(),
        host_id,
        time(vm.etime),
        body
    ])
    .map_err(db_error)?;
    Ok(())
}

pub(super) fn put_history(conn: &Connection, vm_id: u64, h: &History) -> Result<()> {
    let body = HistoryBody {
        seq: h.seq,
        host_id: h.host_id,
        host: h.host.clone(),
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
        reason: h.reason.number(),
    };
    let body = encode(vm_id, &body)?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO vm_history (vm_id, seq, body) VALUES (?1, ?2, ?3)
             ON CONFLICT(vm_id, seq) DO UPDATE SET body = excluded.body",
        )
        .map_err(db_error)?;
    stmt.execute(params![sql_id(vm_id)?, h.seq, body])
        .map_err(db_error)?;
    Ok(())
}

pub(super) fn set_pending(conn: &Connection, vm_id: u64, pending: Option<&Pending>) -> Result<()> {
    let id = sql_id(vm_id)?;
    let Some(p) = pending else {
        let mut stmt = conn
            .prepare_cached("DELETE FROM vm_pending WHERE vm_id = ?1")
            .map_err(db_error)?;
        stmt.execute([id]).map_err(db_error)?;
        return Ok(());
    };
    let body = PendingBody {
        op: p.op,
        awaited: p.awaited.map(|s| s.to_string()),
        cleanup: p.cleanup.iter().map(ToString::to_string).collect(),
        host: p.host.clone(),
        started_at: p.started_at,
    };
    let text = encode(vm_id, &body)?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO vm_pending (vm_id, op, step, host, started_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(vm_id) DO UPDATE SET op = excluded.op, step = excluded.step,
                 host = excluded.host, started_at = excluded.started_at, body = excluded.body",
        )
        .map_err(db_error)?;
    stmt.execute(params![
        id,
        time(p.op),
        body.awaited,
        p.host,
        time(p.started_at),
        text
    ])
    .map_err(db_error)?;
    Ok(())
}

/// The VMs a load reads: all but the DONE ones, the DONE ones that ended
/// at or after `?1`, and any VM with a driver step still pending (a
/// delete's clean-up outlives the VM's end). Each part is a range of an
/// index, so old DONE VMs cost nothing to skip.
fn loaded_ids() -> String {
    let done = State::Done.number();
    format!(
        "SELECT id FROM vms WHERE state < {done} OR state > {done}
         UNION SELECT id FROM vms WHERE state = {done} AND etime >= ?1
         UNION SELECT vm_id FROM vm_pending"
    )
}

/// The VMs [`loaded_ids`] selects for `done_since` (Unix seconds), with
/// their history records and pending steps, in id order.
pub(super) fn load(conn: &Connection, done_since: u64) -> Result<Vec<Vm>> {
    let ids = loaded_ids();
    let pending = pending_steps(conn, "SELECT vm_id, body FROM vm_pending", [])?;
    assemble(
        conn,
        &format!("SELECT id, body FROM vms WHERE id IN ({ids}) ORDER BY id"),
        &format!("SELECT vm_id, body FROM vm_history WHERE vm_id IN ({ids}) ORDER BY vm_id, seq"),
        [time(done_since)],
        pending,
    )
}

/// VM `id` with its history records and pending step, if it exists.
pub(super) fn load_one(conn: &Connection, id: u64) -> Result<Option<Vm>> {
    let params = [sql_id(id)?];
    let pending = pending_steps(
        conn,
        "SELECT vm_id, body FROM vm_pending WHERE vm_id = ?1",
        params,
    )?;
    let vms = assemble(
        conn,
        "SELECT id, body FROM vms WHERE id = ?1",
        "SELECT vm_id, body FROM vm_history WHERE vm_id = ?1 ORDER BY seq",
        params,
        pending,
    )?;
    Ok(vms.into_iter().next())
}

/// The VMs `vms_sql` reads, each with the records `history_sql` reads
/// (both queries take `params`) and its step in `pending`.
fn assemble<P: rusqlite::Params + Copy>(
    conn: &Connection,
    vms_sql: &str,
    history_sql: &str,
    params: P,
    mut pending: HashMap<u64, Pending>,
) -> Result<Vec<Vm>> {
    let mut history: HashMap<u64, Vec<History>> = HashMap::new();
    for (id, body) in id_bodies_where(conn, history_sql, params)? {
        let id = u64::try_from(id).map_err(|_| corrupt(0, "negative id"))?;
        let h: HistoryBody =
            serde_json::from_str(&body).map_err(|e| corrupt(id, format!("history: {e}")))?;
        let reason = reason_of(h.reason).ok_or_else(|| corrupt(id, "unknown reason"))?;
        history.entry(id).or_default().push(History {
            seq: h.seq,
            host_id: h.host_id,
            host: h.host,
            vm_dir: h.vm_dir,
            vmm_mad: h.vmm_mad,
            tm_mad: h.tm_mad,
            stime: h.stime,
            etime: h.etime,
            pstime: h.pstime,
            petime: h.petime,
            rstime: h.rstime,
            retime: h.retime,
            estime: h.estime,
            eetime: h.eetime,
            reason,
        });
    }
    let mut out = Vec::new();
    for (id, body) in id_bodies_where(conn, vms_sql, params)? {
        let id = u64::try_from(id).map_err(|_| corrupt(0, "negative id"))?;
        let b: Body = serde_json::from_str(&body).map_err(|e| corrupt(id, format!("body: {e}")))?;
        let state = State::from_number(b.state).ok_or_else(|| corrupt(id, "unknown state"))?;
        let lcm =
            LcmState::from_number(b.lcm_state).ok_or_else(|| corrupt(id, "unknown LCM state"))?;
        let template =
            Template::parse(&b.template).map_err(|e| corrupt(id, format!("template: {e}")))?;
        out.push(Vm {
            id,
            uid: b.uid,
            uname: b.uname,
            name: b.name,
            state,
            lcm,
            deploy_id: b.deploy_id,
            template,
            reservation: Reservation {
                cpu: b.cpu,
                mem_kb: b.mem_kb,
            },
            usage: Usage {
                cpu: b.usage.cpu,
                memory_kb: b.usage.memory_kb,
                net_rx: b.usage.net_rx,
                net_tx: b.usage.net_tx,
                last_poll: 0,
            },
            stime: b.stime,
            etime: b.etime,
            history: history.remove(&id).unwrap_or_default(),
            error: b.error.map(|e| VmError {
                message: e.message,
                time: e.time,
            }),
            pending: pending.remove(&id),
            op: b.op,
            unplaced: None,
        });
    }
    Ok(out)
}

/// The pending steps `sql` (with `params`) reads, by VM id.
fn pending_steps(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<HashMap<u64, Pending>> {
    let mut pending = HashMap::new();
    for (id, body) in id_bodies_where(conn, sql, params)? {
        let id = u64::try_from(id).map_err(|_| corrupt(0, "negative id"))?;
        let p: PendingBody =
            serde_json::from_str(&body).map_err(|e| corrupt(id, format!("pending: {e}")))?;
        let step = |name: &str| {
            step_named(name).ok_or_else(|| corrupt(id, format!("unknown step {name}")))
        };
        pending.insert(
            id,
            Pending {
                op: p.op,
                awaited: p.awaited.as_deref().map(step).transpose()?,
                cleanup: p.cleanup.iter().map(|s| step(s)).collect::<Result<_>>()?,
                host: p.host,
                started_at: p.started_at,
            },
        );
    }
    Ok(pending)
}

fn reason_of(n: u32) -> Option<Reason> {
    [
        Reason::None,
        Reason::Error,
        Reason::StopResume,
        Reason::User,
        Reason::Cancel,
    ]
    .into_iter()
    .find(|r| r.number() == n)
}

#[cfg(test)]
mod tests;
