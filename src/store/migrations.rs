//! Versioned schema migrations. The schema version lives in SQLite's
//! `user_version`; each migration runs once, in its own transaction, in
//! order. Never edit a released migration: add the next one.

use rusqlite::Connection;

use super::db_error;
use crate::core::{Error, Result};

/// The migrations, oldest first; migration `i` brings the schema to
/// version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: every pool (spec/CORE.md §8.2-8.3). Objects keep their full
    // description in `body` (JSON); the columns beside it are what queries
    // and constraints need.
    "
    CREATE TABLE pool_control (
        pool    TEXT PRIMARY KEY,
        last_id INTEGER NOT NULL
    );
    CREATE TABLE users (
        id       INTEGER PRIMARY KEY,
        name     TEXT NOT NULL UNIQUE,
        password TEXT NOT NULL,
        enabled  INTEGER NOT NULL
    );
    CREATE TABLE hosts (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        state         INTEGER NOT NULL,
        im_mad        TEXT NOT NULL,
        vm_mad        TEXT NOT NULL,
        tm_mad        TEXT NOT NULL,
        last_mon_time INTEGER NOT NULL DEFAULT 0,
        body          TEXT NOT NULL
    );
    CREATE TABLE vnets (
        id     INTEGER PRIMARY KEY,
        uid    INTEGER NOT NULL REFERENCES users(id),
        name   TEXT NOT NULL,
        public INTEGER NOT NULL DEFAULT 0,
        body   TEXT NOT NULL,
        UNIQUE (name, uid)
    );
    CREATE TABLE images (
        id         INTEGER PRIMARY KEY,
        uid        INTEGER NOT NULL REFERENCES users(id),
        name       TEXT NOT NULL,
        state      INTEGER NOT NULL,
        public     INTEGER NOT NULL DEFAULT 0,
        persistent INTEGER NOT NULL DEFAULT 0,
        body       TEXT NOT NULL,
        UNIQUE (name, uid)
    );
    CREATE TABLE vms (
        id        INTEGER PRIMARY KEY,
        uid       INTEGER NOT NULL REFERENCES users(id),
        name      TEXT NOT NULL,
        state     INTEGER NOT NULL,
        lcm_state INTEGER NOT NULL,
        host_id   INTEGER REFERENCES hosts(id),
        body      TEXT NOT NULL
    );
    CREATE INDEX vms_by_owner ON vms (uid);
    CREATE TABLE leases (
        vnet_id INTEGER NOT NULL REFERENCES vnets(id) ON DELETE CASCADE,
        ip      TEXT NOT NULL,
        mac     TEXT NOT NULL,
        vm_id   INTEGER REFERENCES vms(id),
        PRIMARY KEY (vnet_id, ip),
        UNIQUE (vnet_id, mac)
    );
    CREATE TABLE vm_history (
        vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
        seq   INTEGER NOT NULL,
        body  TEXT NOT NULL,
        PRIMARY KEY (vm_id, seq)
    );
    ",
    // 2: the driver step each VM waits for (spec/CORE.md §8.4), written in
    // the same transaction as the state change that started it; `op` is
    // the VM's operation number the step belongs to.
    "
    CREATE TABLE vm_pending (
        vm_id      INTEGER PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
        op         INTEGER NOT NULL,
        step       TEXT,
        host       TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        body       TEXT NOT NULL
    );
    CREATE INDEX vms_by_state ON vms (state);
    ",
    // 3: EC2 key pairs (public halves, per user) and tags on VMs and
    // images (spec/EC2.md §6.7). Tags are not tied to their object by a
    // foreign key: VMs and images keep their rows after they are gone or
    // lose them, and ids are never reused, so an orphan tag is harmless.
    "
    CREATE TABLE keypairs (
        id   INTEGER PRIMARY KEY,
        uid  INTEGER NOT NULL REFERENCES users(id),
        name TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (uid, name)
    );
    CREATE TABLE tags (
        kind        TEXT NOT NULL,
        resource_id INTEGER NOT NULL,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        PRIMARY KEY (kind, resource_id, key)
    );
    ",
    // 4: when each VM ended, beside its state: the pool keeps DONE VMs in
    // memory only for a while after they end, and loads the others by
    // (state, etime) without reading every body. Replaces vms_by_state,
    // which is its prefix.
    "
    ALTER TABLE vms ADD COLUMN etime INTEGER NOT NULL DEFAULT 0;
    UPDATE vms SET etime = COALESCE(json_extract(body, '$.etime'), 0);
    DROP INDEX vms_by_state;
    CREATE INDEX vms_by_state_etime ON vms (state, etime);
    ",
];

/// The schema version this build writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// The database's schema version.
pub fn current(conn: &Connection) -> Result<u32> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(db_error)
}

/// Brings the schema to [`LATEST`]. A database newer than this build is
/// refused rather than guessed at.
pub fn apply(conn: &mut Connection) -> Result<()> {
    let mut version = current(conn)?;
    if version > LATEST {
        return Err(Error::Internal(format!(
            "the database has schema version {version}, newer than this cloudgate's {LATEST}"
        )));
    }
    while version < LATEST {
        let tx = conn.transaction().map_err(db_error)?;
        tx.execute_batch(MIGRATIONS[version as usize])
            .map_err(db_error)?;
        version += 1;
        // PRAGMA takes no bound parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_4_fills_etime_from_the_stored_bodies() {
        let mut conn = Connection::open_in_memory().expect("open");
        for (version, sql) in MIGRATIONS[..3].iter().enumerate() {
            conn.execute_batch(sql).expect("migration");
            conn.execute_batch(&format!("PRAGMA user_version = {}", version + 1))
                .expect("version");
        }
        conn.execute_batch(
            r#"INSERT INTO users (id, name, password, enabled) VALUES (0, 'oneadmin', 'x', 1);
               INSERT INTO vms (id, uid, name, state, lcm_state, body)
               VALUES (1, 0, 'ended', 6, 0, '{"etime": 1700000000}'),
                      (2, 0, 'alive', 3, 3, '{"etime": 0}');"#,
        )
        .expect("rows");
        apply(&mut conn).expect("upgrade");
        let etimes: Vec<(i64, i64)> = conn
            .prepare("SELECT id, etime FROM vms ORDER BY id")
            .expect("prepare")
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(etimes, [(1, 1_700_000_000), (2, 0)]);
        assert_eq!(current(&conn).expect("version"), LATEST);
    }
}
