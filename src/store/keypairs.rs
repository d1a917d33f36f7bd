//! The `keypairs` table: EC2 key pairs' public halves, one name per user
//! (the `UNIQUE (uid, name)` constraint backs the pool's check), the whole
//! key pair as JSON in `body`.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::{delete_by_id, execute_or_conflict, id_bodies, sql_id};
use crate::core::keypair::KeyPair;
use crate::core::{Error, Result};

/// The JSON in `body`.
#[derive(Serialize, Deserialize)]
struct Body {
    id: u64,
    uid: u64,
    name: String,
    key_type: String,
    public_key: String,
    fingerprint: String,
    created: u64,
}

pub(super) fn load(conn: &Connection) -> Result<Vec<KeyPair>> {
    id_bodies(conn, "SELECT id, body FROM keypairs ORDER BY id")?
        .into_iter()
        .map(|(id, body)| {
            let body: Body = serde_json::from_str(&body)
                .map_err(|e| Error::Internal(format!("key pair {id} in the database: {e}")))?;
            Ok(KeyPair {
                id: body.id,
                owner: body.uid,
                name: body.name,
                key_type: body.key_type,
                public_key: body.public_key,
                fingerprint: body.fingerprint,
                created: body.created,
            })
        })
        .collect()
}

pub(super) fn put(conn: &Connection, pair: &KeyPair) -> Result<()> {
    let body = serde_json::to_string(&Body {
        id: pair.id,
        uid: pair.owner,
        name: pair.name.clone(),
        key_type: pair.key_type.clone(),
        public_key: pair.public_key.clone(),
        fingerprint: pair.fingerprint.clone(),
        created: pair.created,
    })
    .map_err(|e| Error::Internal(format!("encoding key pair {}: {e}", pair.id)))?;
    execute_or_conflict(
        conn,
        "INSERT INTO keypairs (id, uid, name, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(id) DO UPDATE SET uid = excluded.uid, name = excluded.name,
             body = excluded.body",
        params![sql_id(pair.id)?, sql_id(pair.owner)?, pair.name, body],
        || format!("key pair {} already exists", pair.name),
    )
}

pub(super) fn delete(conn: &Connection, id: u64) -> Result<()> {
    delete_by_id(conn, "keypairs", id)
}

#[cfg(test)]
mod tests {
    //! The key pair pool on the real store (a fake store here would break
    //! each time another pool adds a store method).

    use std::sync::Arc;

    use ssh_key::PrivateKey;

    use crate::core::keypair::{KeyPairPool, KeyType};
    use crate::core::user::UserPool;
    use crate::core::writer::Writer;
    use crate::core::{Caller, Error, Kind};
    use crate::store::SqliteStore;

    fn pool() -> (KeyPairPool, Caller, Caller) {
        let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
        let writer = Writer::new(store);
        let users = UserPool::load(writer.clone()).expect("users");
        users.ensure_admin("pw").expect("admin");
        let admin = Caller {
            uid: 0,
            name: "oneadmin".into(),
        };
        let alice = users.create(&admin, "alice", "pw").expect("alice");
        let bob = users.create(&admin, "bob", "pw").expect("bob");
        let pool = KeyPairPool::load(writer).expect("pool");
        let caller = |u: crate::core::user::User| Caller {
            uid: u.id,
            name: u.name,
        };
        (pool, caller(alice), caller(bob))
    }

    #[test]
    fn ed25519_generated_private_key_matches_the_stored_public_key() {
        let (pool, alice, _) = pool();
        let (pair, private) = pool.create(&alice, "k1", KeyType::Ed25519).expect("create");
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let parsed = PrivateKey::from_openssh(&private).expect("private key parses");
        assert_eq!(
            parsed.public_key().to_openssh().expect("line"),
            pair.public_key
        );
        assert!(pair.public_key.starts_with("ssh-ed25519 "));
        assert!(pair.fingerprint.starts_with("SHA256:"));
        assert_eq!(pair.key_type, "ed25519");
        assert_eq!(pool.show(&alice, "k1").expect("show"), pair);
    }

    #[test]
    fn names_are_per_user_and_invisible_to_others() {
        let (pool, alice, bob) = pool();
        pool.create(&alice, "k", KeyType::Ed25519).expect("alice's");
        let err = pool
            .create(&alice, "k", KeyType::Ed25519)
            .expect_err("taken");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        pool.create(&bob, "k", KeyType::Ed25519)
            .expect("bob's own k");
        pool.create(&alice, "b", KeyType::Ed25519)
            .expect("alice's b");
        pool.create(&bob, "a", KeyType::Ed25519).expect("bob's a");
        let names = |who: &Caller| -> Vec<(u64, String)> {
            let list = pool.list(who).expect("list");
            list.into_iter().map(|k| (k.owner, k.name)).collect()
        };
        // Each user's own, by name.
        let (a, b) = (alice.uid, bob.uid);
        assert_eq!(names(&alice), [(a, "b".into()), (a, "k".into())]);
        assert_eq!(names(&bob), [(b, "a".into()), (b, "k".into())]);
        assert_eq!(
            pool.delete(&alice, "b").expect("delete").map(|k| k.name),
            Some("b".into())
        );
        // Its name is free again.
        assert!(pool.show(&alice, "b").is_err());
        pool.create(&alice, "b", KeyType::Ed25519).expect("b again");
        assert!(matches!(
            pool.show(&bob, "nope"),
            Err(Error::NotFound {
                kind: Kind::KeyPair,
                ..
            })
        ));
        assert_eq!(
            pool.delete(&bob, "k").expect("delete").map(|k| k.owner),
            Some(bob.uid)
        );
        assert_eq!(pool.delete(&bob, "k").expect("again"), None);
        assert!(
            pool.show(&alice, "k").is_ok(),
            "alice's key survives bob's delete"
        );
    }

    #[test]
    fn key_pairs_survive_a_reload() {
        let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
        let writer = Writer::new(store.clone());
        let users = UserPool::load(writer.clone()).expect("users");
        users.ensure_admin("pw").expect("admin");
        let admin = Caller {
            uid: 0,
            name: "oneadmin".into(),
        };
        let pool = KeyPairPool::load(writer.clone()).expect("pool");
        let (pair, _) = pool.create(&admin, "k", KeyType::Ed25519).expect("create");
        let again = KeyPairPool::load(writer).expect("reload");
        assert_eq!(again.show(&admin, "k").expect("show"), pair);
    }

    #[test]
    fn rsa_keys_are_2048_bits_openssh() {
        let (pool, alice, _) = pool();
        let (pair, private) = pool.create(&alice, "r", KeyType::Rsa).expect("create");
        assert!(pair.public_key.starts_with("ssh-rsa "));
        let parsed = PrivateKey::from_openssh(&private).expect("parses");
        assert_eq!(
            parsed.public_key().to_openssh().expect("line"),
            pair.public_key
        );
    }

    #[test]
    fn import_takes_openssh_lines_only() {
        let (pool, alice, _) = pool();
        let (_, private) = pool.create(&alice, "gen", KeyType::Ed25519).expect("gen");
        let line = PrivateKey::from_openssh(&private)
            .expect("parses")
            .public_key()
            .to_openssh()
            .expect("line");
        let pair = pool
            .import(&alice, "imported", &format!("{line}\n"))
            .expect("import");
        assert_eq!(pair.key_type, "ed25519");
        for bad in ["", "ssh-rsa", "not a key", "ssh-ed25519 AAAA!!"] {
            let err = pool.import(&alice, "bad", bad).expect_err(bad);
            assert!(matches!(err, Error::Invalid { .. }), "{bad:?}: {err:?}");
        }
        assert!(pool.import(&alice, "", &line).is_err());
    }
}
