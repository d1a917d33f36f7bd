//! SQLite storage: the schema with its versioned migrations, and the
//! implementation of [`crate::core::ports::Store`].
//!
//! May use: `crate::core`. Every write is one transaction in WAL mode. A
//! durable one commits with `synchronous=FULL`, so a change the caller was
//! told about survives a `kill -9` or a power cut; a background one with
//! `synchronous=NORMAL`, which survives a `kill -9` and reaches the disk
//! with the next durable commit or checkpoint (the WAL is appended in
//! order, so a durable commit carries every earlier one with it).

#[cfg(test)]
mod client_tokens;
mod hosts;
mod images;
mod keypairs;
mod migrations;
mod tags;
mod users;
mod vms;
mod vnets;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::core::host::Host;
use crate::core::image::Image;
use crate::core::keypair::KeyPair;
use crate::core::ports::{Durability, Pool, Store, Tx};
use crate::core::tag::{Tag, Taggable};
use crate::core::user::User;
use crate::core::vm::{History, Pending, Vm};
use crate::core::vnet::{Lease, VirtualNetwork, VnetInfo};
use crate::core::{Error, Result};

/// The SQLite file's name inside the data dir (OpenNebula's `var/one.db`).
pub const DB_FILE: &str = "one.db";

/// A SQLite database holding every pool.
pub struct SqliteStore {
    /// One connection: SQLite takes one writer at a time anyway, and the
    /// pools answer reads from memory.
    conn: Mutex<Connection>,
    /// Whether the connection commits with `synchronous=NORMAL` now;
    /// changed only while holding `conn`.
    background: AtomicBool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema
    /// up to date.
    pub fn open(path: &Path) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| {
            Error::Internal(format!("cannot open database {}: {e}", path.display()))
        })?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(db_error)?)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(db_error)?;
        migrations::apply(&mut conn)?;
        // Room for every statement the pools write with (about 30), so the
        // cache never evicts one that the next transaction needs.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            background: AtomicBool::new(false),
        })
    }

    /// Sets how the next commit on `conn` (whose lock the caller holds)
    /// reaches the disk; a statement only when it changes.
    fn set_durability(&self, conn: &Connection, durability: Durability) -> Result<()> {
        let background = durability == Durability::Background;
        if self.background.load(Ordering::Relaxed) != background {
            let mode = if background { "NORMAL" } else { "FULL" };
            conn.pragma_update(None, "synchronous", mode)
                .map_err(db_error)?;
            self.background.store(background, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The schema version now in the database.
    pub fn schema_version(&self) -> Result<u32> {
        migrations::current(&*self.lock()?)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| Error::Internal("database lock poisoned".into()))
    }
}

impl Store for SqliteStore {
    fn write_dyn(
        &self,
        durability: Durability,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>,
    ) -> Result<()> {
        let mut conn = self.lock()?;
        self.set_durability(&conn, durability)?;
        // IMMEDIATE takes the write lock at once, so a transaction never
        // fails half-way for want of it.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let mut sql_tx = SqlTx { tx: &tx };
        work(&mut sql_tx)?;
        // Dropping an uncommitted rusqlite transaction rolls it back, so
        // the `?` above leaves nothing behind.
        tx.commit().map_err(db_error)
    }

    fn load_users(&self) -> Result<Vec<User>> {
        users::load(&*self.lock()?)
    }

    fn load_images(&self) -> Result<Vec<Image>> {
        images::load(&*self.lock()?)
    }

    fn load_hosts(&self) -> Result<Vec<Host>> {
        hosts::load(&*self.lock()?)
    }

    fn load_vnets(&self) -> Result<Vec<VnetInfo>> {
        vnets::load(&*self.lock()?)
    }

    fn load_vms(&self, done_since: u64) -> Result<Vec<Vm>> {
        vms::load(&*self.lock()?, done_since)
    }

    fn load_vm(&self, id: u64) -> Result<Option<Vm>> {
        vms::load_one(&*self.lock()?, id)
    }

    fn load_key_pairs(&self) -> Result<Vec<KeyPair>> {
        keypairs::load(&*self.lock()?)
    }

    fn load_tags(&self) -> Result<Vec<Tag>> {
        tags::load(&*self.lock()?)
    }
}

/// The [`Tx`] handed to core code inside [`Store::write_dyn`].
struct SqlTx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

impl Tx for SqlTx<'_> {
    fn next_id(&mut self, pool: Pool) -> Result<u64> {
        let name = pool_name(pool);
        let last: Option<i64> = self
            .tx
            .prepare_cached("SELECT last_id FROM pool_control WHERE pool = ?1")
            .and_then(|mut stmt| stmt.query_row([name], |row| row.get(0)))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })
            .map_err(db_error)?;
        let next = last.map_or(0, |l| l + 1);
        execute(
            self.tx,
            "INSERT INTO pool_control (pool, last_id) VALUES (?1, ?2)
             ON CONFLICT(pool) DO UPDATE SET last_id = excluded.last_id",
            rusqlite::params![name, next],
        )
        .map_err(db_error)?;
        u64::try_from(next).map_err(|_| Error::Internal(format!("negative id in {name}")))
    }

    fn put_user(&mut self, user: &User) -> Result<()> {
        users::put(self.tx, user)
    }

    fn delete_user(&mut self, id: u64) -> Result<()> {
        users::delete(self.tx, id)
    }

    fn put_image(&mut self, image: &Image) -> Result<()> {
        images::put(self.tx, image)
    }

    fn delete_image(&mut self, id: u64) -> Result<()> {
        images::delete(self.tx, id)
    }

    fn put_host(&mut self, host: &Host) -> Result<()> {
        hosts::put(self.tx, host)
    }

    fn delete_host(&mut self, id: u64) -> Result<()> {
        hosts::delete(self.tx, id)
    }

    fn put_vnet(&mut self, vnet: &VirtualNetwork) -> Result<()> {
        vnets::put(self.tx, vnet)
    }

    fn delete_vnet(&mut self, id: u64) -> Result<()> {
        vnets::delete(self.tx, id)
    }

    fn put_lease(&mut self, lease: &Lease) -> Result<()> {
        vnets::put_lease(self.tx, lease)
    }

    fn release_lease(&mut self, lease: &Lease) -> Result<()> {
        vnets::release_lease(self.tx, lease)
    }

    fn put_vm(&mut self, vm: &Vm) -> Result<()> {
        vms::put(self.tx, vm)
    }

    fn put_vm_history(&mut self, vm_id: u64, record: &History) -> Result<()> {
        vms::put_history(self.tx, vm_id, record)
    }

    fn set_vm_pending(&mut self, vm_id: u64, pending: Option<&Pending>) -> Result<()> {
        vms::set_pending(self.tx, vm_id, pending)
    }

    fn put_key_pair(&mut self, pair: &KeyPair) -> Result<()> {
        keypairs::put(self.tx, pair)
    }

    fn delete_key_pair(&mut self, id: u64) -> Result<()> {
        keypairs::delete(self.tx, id)
    }

    fn put_tag(&mut self, tag: &Tag) -> Result<()> {
        tags::put(self.tx, tag)
    }

    fn delete_tag(&mut self, target: Taggable, key: &str) -> Result<()> {
        tags::delete(self.tx, target, key)
    }
}

fn pool_name(pool: Pool) -> &'static str {
    match pool {
        Pool::Users => "users",
        Pool::Images => "images",
        Pool::Hosts => "hosts",
        Pool::Vnets => "vnets",
        Pool::Vms => "vms",
        Pool::KeyPairs => "keypairs",
    }
}

/// SQLite errors are internal: the user is told that something failed,
/// the log gets the detail.
fn db_error(e: rusqlite::Error) -> Error {
    Error::Internal(format!("database: {e}"))
}

/// Whether `e` is a constraint violation (UNIQUE, FOREIGN KEY, CHECK):
/// its extended code if so.
fn constraint(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Some(f.extended_code)
        }
        _ => None,
    }
}

/// Runs one statement; a constraint violation is the caller's
/// [`Error::Conflict`] with `conflict()`'s message, anything else is
/// [`db_error`].
fn execute_or_conflict(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    conflict: impl FnOnce() -> String,
) -> Result<()> {
    execute(conn, sql, params).map_err(|e| match constraint(&e) {
        Some(_) => Error::Conflict(conflict()),
        None => db_error(e),
    })?;
    Ok(())
}

/// Runs one statement through the connection's statement cache, so the
/// statements of every transaction are parsed once, not each time.
fn execute(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Deletes the row `id` of `table` (a table name of ours, never input).
fn delete_by_id(conn: &Connection, table: &str, id: u64) -> Result<()> {
    execute(
        conn,
        &format!("DELETE FROM {table} WHERE id = ?1"),
        [sql_id(id)?],
    )
    .map_err(db_error)?;
    Ok(())
}

/// The `(id, body)` rows a query gives, in its order: the tables that keep
/// an object as JSON beside its id.
fn id_bodies(conn: &Connection, sql: &str) -> Result<Vec<(i64, String)>> {
    id_bodies_where(conn, sql, [])
}

/// [`id_bodies`] of a query with parameters.
fn id_bodies_where(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare(sql).map_err(db_error)?;
    let rows = stmt
        .query_map(params, |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

/// An id as SQLite's signed integer.
fn sql_id(id: u64) -> Result<i64> {
    i64::try_from(id).map_err(|_| Error::Internal(format!("id {id} does not fit the database")))
}

#[cfg(test)]
mod tests;
