//! The `hosts` table (spec/CORE.md §8.2 `host_pool`): the indexed columns
//! (name, state, drivers, last monitoring time) beside `body`, the whole
//! host as JSON. Loading reads the body alone; the columns are for queries
//! and the unique name. The template goes into the body as its printed
//! text and is parsed back, so what is stored is what the template
//! language round-trips.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::{execute_or_conflict, id_bodies, sql_id};
use crate::core::host::{Host, HostShare, HostState};
use crate::core::{Error, Result};
use crate::template::Template;

/// The JSON in `body`.
#[derive(Serialize, Deserialize)]
struct Body {
    id: u64,
    name: String,
    /// OpenNebula's state number.
    state: u8,
    im_mad: String,
    vmm_mad: String,
    tm_mad: String,
    last_mon_time: u64,
    /// The template as template text.
    template: String,
    share: HostShare,
    error: Option<String>,
}

impl Body {
    fn of(host: &Host) -> Self {
        Body {
            id: host.id,
            name: host.name.clone(),
            state: host.state.number(),
            im_mad: host.im_mad.clone(),
            vmm_mad: host.vmm_mad.clone(),
            tm_mad: host.tm_mad.clone(),
            last_mon_time: host.last_mon_time,
            template: host.template.to_string(),
            share: host.share,
            error: host.error.clone(),
        }
    }

    fn into_host(self) -> Result<Host> {
        let corrupt =
            |what: String| Error::Internal(format!("host {} in the database: {what}", self.id));
        let state = HostState::from_number(self.state.into())
            .ok_or_else(|| corrupt(format!("unknown state {}", self.state)))?;
        let template =
            Template::parse(&self.template).map_err(|e| corrupt(format!("template: {e}")))?;
        Ok(Host {
            id: self.id,
            name: self.name,
            state,
            im_mad: self.im_mad,
            vmm_mad: self.vmm_mad,
            tm_mad: self.tm_mad,
            last_mon_time: self.last_mon_time,
            template,
            share: self.share,
            error: self.error,
        })
    }
}

pub(super) fn load(conn: &Connection) -> Result<Vec<Host>> {
    id_bodies(conn, "SELECT id, body FROM hosts ORDER BY id")?
        .into_iter()
        .map(|(id, body)| {
            let body: Body = serde_json::from_str(&body)
                .map_err(|e| Error::Internal(format!("host {id} in the database: body: {e}")))?;
            body.into_host()
        })
        .collect()
}

pub(super) fn put(conn: &Connection, host: &Host) -> Result<()> {
    let body = serde_json::to_string(&Body::of(host))
        .map_err(|e| Error::Internal(format!("host {}: cannot encode: {e}", host.id)))?;
    let last_mon_time = i64::try_from(host.last_mon_time).unwrap_or(i64::MAX);
    execute_or_conflict(
        conn,
        "INSERT INTO hosts (id, name, state, im_mad, vm_mad, tm_mad, last_mon_time, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, state = excluded.state,
             im_mad = excluded.im_mad, vm_mad = excluded.vm_mad, tm_mad = excluded.tm_mad,
             last_mon_time = excluded.last_mon_time, body = excluded.body",
        params![
            sql_id(host.id)?,
            host.name,
            host.state.number(),
            host.im_mad,
            host.vmm_mad,
            host.tm_mad,
            last_mon_time,
            body
        ],
        || format!("host {} already exists", host.name),
    )
}

pub(super) fn delete(conn: &Connection, id: u64) -> Result<()> {
    execute_or_conflict(
        conn,
        "DELETE FROM hosts WHERE id = ?1",
        [sql_id(id)?],
        || format!("host {id} still has VMs recorded on it"),
    )
}

#[cfg(test)]
mod tests {
    //! The table, and the host pool over a real (in-memory) SQLite: what
    //! the pool promises only holds together with its store.

    use std::sync::Arc;

    use super::super::SqliteStore;
    use crate::core::caller::Caller;
    use crate::core::host::{HostPool, ShareChange};
    use crate::core::ports::{self, Pool, Store};
    use crate::core::settings::{DriverName, Settings};
    use crate::core::writer::Writer;
    use crate::core::{Error, Kind};
    use crate::template::Template;

    use super::*;

    fn admin() -> Caller {
        Caller {
            uid: 0,
            name: "oneadmin".into(),
        }
    }

    fn alice() -> Caller {
        Caller {
            uid: 3,
            name: "alice".into(),
        }
    }

    fn settings() -> Settings {
        let names = |class: &str, folders: &[&str]| {
            folders
                .iter()
                .map(|f| DriverName {
                    name: format!("{class}_{f}"),
                    folder: f.to_string(),
                })
                .collect()
        };
        Settings {
            im_drivers: names("im", &["dummy", "kvm"]),
            vmm_drivers: names("vmm", &["dummy", "kvm"]),
            tm_drivers: names("tm", &["dummy", "ssh", "shared"]),
            hypervisor_mem: 0.1,
            ..Settings::default()
        }
    }

    fn pool_on(store: Arc<SqliteStore>) -> (HostPool, Arc<Writer>) {
        let writer = Writer::new(store);
        let pool = HostPool::load(writer.clone(), &settings()).expect("load");
        (pool, writer)
    }

    fn pool() -> (HostPool, Arc<Writer>) {
        pool_on(Arc::new(SqliteStore::open_in_memory().expect("open")))
    }

    fn monitored(pool: &HostPool, id: u64, cpu: i64, mem: i64) {
        let payload = Template::parse(&format!(
            "TOTALCPU = {cpu}\nTOTALMEMORY = {mem}\nHYPERVISOR = dummy"
        ))
        .expect("payload");
        pool.record_monitoring(id, &payload, 1000)
            .expect("monitored");
    }

    #[test]
    fn a_host_round_trips_through_its_body() {
        let store = SqliteStore::open_in_memory().expect("open");
        let mut host = Host::new(4, "node-01", "im_kvm", "vmm_kvm", "tm_ssh");
        host.monitored(
            &Template::parse(
                "TOTALCPU = 800\nMODELNAME = \"Intel(R) Xeon(R), 2 \\\"GHz\\\"\"\nVM = [ ID = 1, X = \"a b\" ]",
            )
            .expect("payload"),
            1_700_000_000,
        );
        host.share.running_vms = 2;
        host.share.cpu_usage = 150;
        host.failed("Could not monitor host node-01.", 1_700_000_030);
        ports::write(&store, |tx| tx.put_host(&host)).expect("put");
        assert_eq!(store.load_hosts().expect("load"), vec![host.clone()]);
        let (state, last): (i64, i64) = store
            .lock()
            .expect("lock")
            .query_row(
                "SELECT state, last_mon_time FROM hosts WHERE id = 4",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("columns");
        assert_eq!(
            (state, last),
            (3, 1_700_000_030),
            "indexed columns follow the body"
        );
    }

    #[test]
    fn duplicate_names_conflict_and_deletes_remove() {
        let store = SqliteStore::open_in_memory().expect("open");
        let a = Host::new(0, "a", "im_dummy", "vmm_dummy", "tm_dummy");
        let b = Host::new(1, "a", "im_dummy", "vmm_dummy", "tm_dummy");
        ports::write(&store, |tx| tx.put_host(&a)).expect("put");
        let err = ports::write(&store, |tx| tx.put_host(&b)).expect_err("dup");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        ports::write(&store, |tx| tx.delete_host(0)).expect("delete");
        assert!(store.load_hosts().expect("load").is_empty());
    }

    #[test]
    fn a_corrupt_body_is_an_internal_error_not_a_panic() {
        let store = SqliteStore::open_in_memory().expect("open");
        store
            .lock()
            .expect("lock")
            .execute_batch(
                "INSERT INTO hosts (id, name, state, im_mad, vm_mad, tm_mad, body)
                 VALUES (0, 'x', 0, 'a', 'b', 'c', '{\"id\": 0}')",
            )
            .expect("insert");
        let err = store.load_hosts().expect_err("corrupt");
        assert!(matches!(err, Error::Internal(_)), "{err:?}");
    }

    #[test]
    fn pool_create_validates_and_stores_driver_names() {
        let (pool, _) = pool();
        let host = pool
            .create(&admin(), "node-01", "kvm", "vmm_kvm", "ssh")
            .expect("create");
        assert_eq!(
            (
                host.id,
                host.im_mad.as_str(),
                host.vmm_mad.as_str(),
                host.tm_mad.as_str()
            ),
            (0, "im_kvm", "vmm_kvm", "tm_ssh")
        );
        assert_eq!(host.state, HostState::Init);

        let err = pool
            .create(&admin(), "node-01", "dummy", "dummy", "dummy")
            .expect_err("dup");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        let err = pool
            .create(&admin(), "node-02", "dummy", "xen", "dummy")
            .expect_err("driver");
        assert!(err.to_string().contains("\"xen\""), "{err}");
        assert!(matches!(&err, Error::Invalid { field, .. } if field == "vmm_mad"));
        let err = pool
            .create(&admin(), "bad name", "dummy", "dummy", "dummy")
            .expect_err("name");
        assert!(matches!(&err, Error::Invalid { field, .. } if field == "name"));
        let err = pool
            .create(&alice(), "node-03", "dummy", "dummy", "dummy")
            .expect_err("not admin");
        assert!(
            matches!(
                err,
                Error::Forbidden {
                    kind: Kind::Host,
                    ..
                }
            ),
            "{err:?}"
        );
        // Refusals used no id.
        let next = pool
            .create(&admin(), "node-04", "dummy", "dummy", "dummy")
            .expect("create");
        assert_eq!(next.id, 1);
    }

    #[test]
    fn only_oneadmin_sees_or_touches_hosts_even_missing_ones() {
        let (pool, _) = pool();
        pool.create(&admin(), "h", "dummy", "dummy", "dummy")
            .expect("create");
        let forbidden = |r: Result<_>| {
            let err: Error = r.map(drop).expect_err("forbidden");
            assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
        };
        forbidden(pool.list(&alice()).map(drop));
        forbidden(pool.show(&alice(), "h").map(drop));
        forbidden(pool.show(&alice(), "nope").map(drop));
        forbidden(pool.enable(&alice(), "h").map(drop));
        forbidden(pool.disable(&alice(), "0").map(drop));
        forbidden(pool.delete(&alice(), "h").map(drop));
        assert_eq!(pool.show(&admin(), "0").expect("show").name, "h");
        let err = pool.show(&admin(), "nope").expect_err("missing");
        assert!(
            matches!(
                err,
                Error::NotFound {
                    kind: Kind::Host,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn pool_changes_survive_a_reload() {
        let store = Arc::new(SqliteStore::open_in_memory().expect("open"));
        let (pool, _) = pool_on(store.clone());
        let a = pool
            .create(&admin(), "a", "dummy", "dummy", "dummy")
            .expect("a");
        let b = pool
            .create(&admin(), "b", "dummy", "dummy", "dummy")
            .expect("b");
        monitored(&pool, a.id, 400, 1000);
        pool.disable(&admin(), "b").expect("disable");
        pool.set_monitoring(a.id).expect("monitoring");
        let (again, _) = pool_on(store.clone());
        let hosts = again.snapshot().expect("snapshot");
        assert_eq!(hosts.len(), 2);
        // MONITORING at start-up goes back to INIT (§8.4), and is written.
        assert_eq!(hosts[0].state, HostState::Init);
        assert_eq!(hosts[0].share.max_cpu, 400);
        assert_eq!(hosts[0].template.get("HYPERVISOR"), Some("dummy"));
        assert_eq!(hosts[1].state, HostState::Disabled);
        assert_eq!(store.load_hosts().expect("load")[0].state, HostState::Init);
        let c = again
            .create(&admin(), "c", "dummy", "dummy", "dummy")
            .expect("c");
        assert_eq!(c.id, b.id + 1);
    }

    #[test]
    fn monitoring_calls_move_the_state_and_are_durable() {
        let store = Arc::new(SqliteStore::open_in_memory().expect("open"));
        let (pool, _) = pool_on(store.clone());
        let h = pool
            .create(&admin(), "h", "dummy", "dummy", "dummy")
            .expect("h");
        assert_eq!(
            pool.set_monitoring(h.id).expect("set").state,
            HostState::Monitoring
        );
        let failed = pool.record_failure(h.id, "no route", 50).expect("fail");
        assert_eq!((failed.state, failed.last_mon_time), (HostState::Error, 50));
        assert_eq!(
            store.load_hosts().expect("load")[0].error.as_deref(),
            Some("no route")
        );
        monitored(&pool, h.id, 100, 100);
        assert_eq!(
            pool.get(h.id).expect("get").map(|h| h.state),
            Some(HostState::Monitored)
        );
        pool.set_monitoring(h.id).expect("set");
        assert_eq!(
            pool.reset_monitoring(h.id).expect("reset").state,
            HostState::Init
        );
        pool.disable(&admin(), "h").expect("disable");
        let err = pool.set_monitoring(h.id).expect_err("disabled");
        assert!(matches!(err, Error::InvalidState { .. }), "{err:?}");
        assert_eq!(
            pool.enable(&admin(), "h").expect("enable").state,
            HostState::Init
        );
        let err = pool.record_failure(99, "x", 1).expect_err("missing");
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn capacity_is_reserved_and_released_in_the_callers_transaction() {
        let store = Arc::new(SqliteStore::open_in_memory().expect("open"));
        let (pool, writer) = pool_on(store.clone());
        let h = pool
            .create(&admin(), "h", "dummy", "dummy", "dummy")
            .expect("h");
        monitored(&pool, h.id, 200, 1_000_000);

        // As the VM pool will: plan under the lock, write in its own
        // transaction with its own rows, apply after the commit.
        let guard = writer.lock().expect("lock");
        let change = pool.plan_reserve(&guard, h.id, 150, 524_288).expect("fits");
        assert_eq!(
            change,
            ShareChange {
                host_id: h.id,
                cpu: 150,
                mem_kb: 524_288,
                running_vms: 1
            }
        );
        guard
            .commit(|tx| {
                tx.next_id(Pool::Users)?; // stands for the VM's own writes
                pool.write_shares(tx, &[change])
            })
            .expect("commit");
        pool.apply_shares(&guard, &[change]).expect("apply");
        let share = pool.get(h.id).expect("get").expect("host").share;
        assert_eq!(
            (share.cpu_usage, share.mem_usage, share.running_vms),
            (150, 524_288, 1)
        );
        assert_eq!(store.load_hosts().expect("load")[0].share, share);

        // 50 CPU left; memory: 900000 allocatable − 524288 = 375712 left.
        let err = pool.plan_reserve(&guard, h.id, 51, 0).expect_err("cpu");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        assert!(err.to_string().contains("host h"), "{err}");
        pool.plan_reserve(&guard, h.id, 50, 375_712)
            .expect("exactly fits");
        pool.plan_reserve(&guard, h.id, 0, 375_713)
            .expect_err("memory");
        // A manual deploy over-commits.
        pool.plan_charge(&guard, h.id, 1000, 0).expect("charge");
        let err = pool.plan_reserve(&guard, 42, 0, 0).expect_err("no host");
        assert!(
            matches!(
                err,
                Error::NotFound {
                    kind: Kind::Host,
                    ..
                }
            ),
            "{err:?}"
        );

        // A failed transaction leaves memory and store as they were.
        let release = pool
            .plan_release(&guard, h.id, 150, 524_288)
            .expect("release");
        let failed: Result<()> = guard.commit(|tx| {
            pool.write_shares(tx, &[release])?;
            Err(Error::invalid("test", "abort"))
        });
        assert!(failed.is_err());
        assert_eq!(store.load_hosts().expect("load")[0].share, share);
        assert_eq!(pool.get(h.id).expect("get").expect("host").share, share);

        // Delete is refused while a VM holds capacity, allowed after.
        drop(guard);
        let err = pool.delete(&admin(), "h").expect_err("in use");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        let guard = writer.lock().expect("lock");
        guard
            .commit(|tx| pool.write_shares(tx, &[release]))
            .expect("commit");
        pool.apply_shares(&guard, &[release]).expect("apply");
        drop(guard);
        assert_eq!(
            pool.get(h.id)
                .expect("get")
                .expect("host")
                .share
                .running_vms,
            0
        );
        pool.delete(&admin(), "h").expect("delete");
        assert!(store.load_hosts().expect("load").is_empty());
    }

    #[test]
    fn the_first_host_is_registered_once_ever() {
        let store = Arc::new(SqliteStore::open_in_memory().expect("open"));
        let (pool, _) = pool_on(store.clone());
        let first = pool
            .ensure_first_host("localhost", "dummy", "dummy", "dummy")
            .expect("first")
            .expect("created");
        assert_eq!((first.id, first.im_mad.as_str()), (0, "im_dummy"));
        assert!(pool
            .ensure_first_host("localhost", "dummy", "dummy", "dummy")
            .expect("again")
            .is_none());
        pool.delete(&admin(), "localhost").expect("delete");
        // Deleted by the administrator: it does not come back, and asking
        // uses up no id.
        let (again, _) = pool_on(store.clone());
        for _ in 0..2 {
            assert!(again
                .ensure_first_host("localhost", "dummy", "dummy", "dummy")
                .expect("after delete")
                .is_none());
        }
        assert_eq!(
            ports::write(store.as_ref(), |tx| tx.next_id(Pool::Hosts)).expect("id"),
            1
        );
    }
}
