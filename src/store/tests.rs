//! Store tests: the schema, transactions and ids, on in-memory SQLite and
//! on a real file.

use super::*;
use crate::core::ports;

fn user(id: u64, name: &str) -> User {
    User {
        id,
        name: name.into(),
        password: crate::core::user::sha1_hex(name),
        enabled: true,
    }
}

#[test]
fn fresh_database_is_at_the_latest_schema() {
    let store = SqliteStore::open_in_memory().expect("open");
    assert_eq!(store.schema_version().expect("version"), migrations::LATEST);
}

#[test]
fn ids_count_up_and_are_never_reused() {
    let store = SqliteStore::open_in_memory().expect("open");
    let first = ports::write(&store, |tx| tx.next_id(Pool::Users)).expect("id");
    let second = ports::write(&store, |tx| tx.next_id(Pool::Users)).expect("id");
    assert_eq!((first, second), (0, 1));
    ports::write(&store, |tx| tx.put_user(&user(second, "bob"))).expect("put");
    ports::write(&store, |tx| tx.delete_user(second)).expect("delete");
    let third = ports::write(&store, |tx| tx.next_id(Pool::Users)).expect("id");
    assert_eq!(third, 2);
}

#[test]
fn failed_transaction_leaves_nothing() {
    let store = SqliteStore::open_in_memory().expect("open");
    let result: Result<()> = ports::write(&store, |tx| {
        tx.next_id(Pool::Users)?;
        tx.put_user(&user(0, "alice"))?;
        Err(Error::invalid("test", "abort"))
    });
    assert!(result.is_err());
    assert!(store.load_users().expect("load").is_empty());
    let id = ports::write(&store, |tx| tx.next_id(Pool::Users)).expect("id");
    assert_eq!(id, 0, "the aborted transaction's id was rolled back");
}

#[test]
fn duplicate_name_is_a_conflict() {
    let store = SqliteStore::open_in_memory().expect("open");
    ports::write(&store, |tx| tx.put_user(&user(0, "alice"))).expect("put");
    let err = ports::write(&store, |tx| tx.put_user(&user(1, "alice"))).expect_err("dup");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
}

/// `PRAGMA synchronous` now: 1 NORMAL, 2 FULL.
fn synchronous(store: &SqliteStore) -> i64 {
    store
        .lock()
        .expect("lock")
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("pragma")
}

#[test]
fn each_commit_syncs_as_its_durability_says_and_both_kinds_persist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(DB_FILE);
    {
        let store = SqliteStore::open(&path).expect("open");
        assert_eq!(synchronous(&store), 2, "FULL from the start");
        ports::write_with(&store, Durability::Background, |tx| {
            tx.put_user(&user(0, "alice"))
        })
        .expect("background write");
        assert_eq!(synchronous(&store), 1, "a background commit is NORMAL");
        ports::write(&store, |tx| tx.put_user(&user(1, "bob"))).expect("durable write");
        assert_eq!(synchronous(&store), 2, "a durable commit is FULL again");
        ports::write_with(&store, Durability::Background, |tx| {
            tx.put_user(&user(2, "carol"))
        })
        .expect("background write");
    }
    // A background commit is in the WAL like any other: a process that
    // ends (or is killed) after it loses nothing.
    let store = SqliteStore::open(&path).expect("reopen");
    let names: Vec<String> = store
        .load_users()
        .expect("load")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
}

#[test]
fn committed_changes_survive_reopening_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(DB_FILE);
    {
        let store = SqliteStore::open(&path).expect("open");
        ports::write(&store, |tx| {
            let id = tx.next_id(Pool::Users)?;
            tx.put_user(&user(id, "alice"))
        })
        .expect("write");
        // No close, no checkpoint: the store is simply dropped.
    }
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.load_users().expect("load"), vec![user(0, "alice")]);
    let mode: String = store
        .lock()
        .expect("lock")
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(DB_FILE);
    let conn = Connection::open(&path).expect("open");
    conn.execute_batch(&format!("PRAGMA user_version = {}", migrations::LATEST + 1))
        .expect("pragma");
    drop(conn);
    let err = SqliteStore::open(&path).err().expect("refused");
    assert!(err.to_string().contains("newer"), "{err}");
}
