//! The `users` table.

use rusqlite::{params, Connection};

use super::{db_error, execute_or_conflict, sql_id};
use crate::core::user::User;
use crate::core::Result;

pub(super) fn load(conn: &Connection) -> Result<Vec<User>> {
    let mut stmt = conn
        .prepare("SELECT id, name, password, enabled FROM users ORDER BY id")
        .map_err(db_error)?;
    let rows = stmt
        .query_map([], |row| {
            Ok(User {
                id: row.get::<_, i64>(0)? as u64,
                name: row.get(1)?,
                password: row.get(2)?,
                enabled: row.get(3)?,
            })
        })
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

pub(super) fn put(conn: &Connection, user: &User) -> Result<()> {
    execute_or_conflict(
        conn,
        "INSERT INTO users (id, name, password, enabled) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name,
             password = excluded.password, enabled = excluded.enabled",
        params![sql_id(user.id)?, user.name, user.password, user.enabled],
        || format!("user {} already exists", user.name),
    )
}

pub(super) fn delete(conn: &Connection, id: u64) -> Result<()> {
    execute_or_conflict(
        conn,
        "DELETE FROM users WHERE id = ?1",
        [sql_id(id)?],
        || format!("user {id} still owns objects"),
    )
}
