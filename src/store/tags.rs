//! The `tags` table: one row per (object kind, object id, key).

use rusqlite::{params, Connection};

use super::{db_error, execute, sql_id};
use crate::core::tag::{Tag, Taggable};
use crate::core::{Error, Result};

pub(super) fn load(conn: &Connection) -> Result<Vec<Tag>> {
    let mut stmt = conn
        .prepare("SELECT kind, resource_id, key, value FROM tags ORDER BY kind, resource_id, key")
        .map_err(db_error)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
            ))
        })
        .map_err(db_error)?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, id, key, value) = row.map_err(db_error)?;
        let target = u64::try_from(id)
            .ok()
            .and_then(|id| Taggable::from_parts(&kind, id))
            .ok_or_else(|| Error::Internal(format!("tag on unknown object {kind} {id}")))?;
        out.push(Tag { target, key, value });
    }
    Ok(out)
}

pub(super) fn put(conn: &Connection, tag: &Tag) -> Result<()> {
    execute(
        conn,
        "INSERT INTO tags (kind, resource_id, key, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(kind, resource_id, key) DO UPDATE SET value = excluded.value",
        params![
            tag.target.kind_name(),
            sql_id(tag.target.id())?,
            tag.key,
            tag.value
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

pub(super) fn delete(conn: &Connection, target: Taggable, key: &str) -> Result<()> {
    execute(
        conn,
        "DELETE FROM tags WHERE kind = ?1 AND resource_id = ?2 AND key = ?3",
        params![target.kind_name(), sql_id(target.id())?, key],
    )
    .map_err(db_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The tag pool on the real (in-memory) store, inside a whole core:
    //! who may tag what, who sees which tags, and that tags survive a
    //! restart.

    use std::sync::Arc;

    use crate::core::image::NewImage;
    use crate::core::keypair::KeyType;
    use crate::core::ports::{Drivers, Store};
    use crate::core::settings::Settings;
    use crate::core::tag::{Taggable, Untag};
    use crate::core::vm::Action;
    use crate::core::{Caller, Core, Error};
    use crate::store::SqliteStore;

    struct Nothing;
    impl Drivers for Nothing {}

    fn open(store: Arc<dyn Store>, dir: &std::path::Path) -> Core {
        let settings = Settings {
            image_dir: dir.join("images"),
            ..Settings::default()
        };
        Core::open(store, settings, Arc::new(Nothing)).expect("core")
    }

    fn who(user: crate::core::user::User) -> Caller {
        Caller {
            uid: user.id,
            name: user.name,
        }
    }

    /// A fresh core on an in-memory store, with oneadmin and alice.
    fn start() -> (tempfile::TempDir, Arc<dyn Store>, Core, Caller, Caller) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("store"));
        let core = open(store.clone(), dir.path());
        core.users().ensure_admin("pw").expect("admin");
        let admin = Caller {
            uid: 0,
            name: "oneadmin".into(),
        };
        let alice = who(core.users().create(&admin, "alice", "pw").expect("alice"));
        (dir, store, core, admin, alice)
    }

    /// How many tags `caller` sees.
    fn listed(core: &Core, caller: &Caller) -> usize {
        core.tags().list(caller).expect("list").len()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn owners_tag_others_see_nothing_and_tags_survive_a_restart() {
        let (dir, store, core, admin, alice) = start();
        let bob = who(core.users().create(&admin, "bob", "pw").expect("bob"));
        let mut upload = core
            .images()
            .begin_upload(&alice, NewImage::named("disk"), 1 << 20)
            .expect("upload");
        upload.write(b"bytes").expect("write");
        let image = Taggable::Image(upload.commit().expect("commit").id);
        let vm = core
            .vms()
            .create(&alice, "CPU = 0.1\nMEMORY = 64")
            .expect("vm");
        let vm = Taggable::Vm(vm.id);

        let tags = pairs(&[("Name", "web"), ("env", "test")]);
        core.tags()
            .create(&alice, &[vm, image], &tags)
            .expect("tag");
        assert_eq!(core.tags().of(vm).expect("of"), tags);
        assert_eq!(listed(&core, &alice), 4);
        assert_eq!(listed(&core, &bob), 0);
        assert_eq!(listed(&core, &admin), 4);

        // Bob may not tag alice's objects; nothing is written for the
        // target he may tag either.
        let err = core
            .tags()
            .create(&bob, &[vm], &pairs(&[("x", "y")]))
            .expect_err("not his");
        assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
        // A public image is seen by all, tagged only by its owner.
        core.images()
            .set_public(&alice, &image.id().to_string(), true)
            .expect("publish");
        assert_eq!(listed(&core, &bob), 2);
        assert!(core
            .tags()
            .create(&bob, &[image], &pairs(&[("x", "y")]))
            .is_err());

        // Delete by key and value: a wrong value removes nothing.
        let untag = |key: &str, value: Option<&str>| Untag {
            key: key.into(),
            value: value.map(str::to_string),
        };
        core.tags()
            .delete(&alice, &[vm], &[untag("env", Some("prod"))])
            .expect("delete");
        assert_eq!(core.tags().of(vm).expect("of").len(), 2);
        core.tags()
            .delete(&alice, &[vm], &[untag("env", Some("test"))])
            .expect("delete");
        assert_eq!(core.tags().of(vm).expect("of"), pairs(&[("Name", "web")]));

        drop(core);
        let again = open(store.clone(), dir.path());
        assert_eq!(again.tags().of(vm).expect("of"), pairs(&[("Name", "web")]));
        assert_eq!(again.tags().of(image).expect("of").len(), 2);
        // Everything on an object goes with an empty key list.
        again
            .tags()
            .delete(&alice, &[image], &[])
            .expect("delete all");
        assert!(again.tags().of(image).expect("of").is_empty());

        // A VM that ended long ago leaves memory, and its tags the lists.
        again
            .vms()
            .action(&alice, vm.id(), Action::Delete, None)
            .expect("delete vm");
        let ended = again.vms().get(vm.id()).expect("vm");
        assert_eq!(listed(&again, &alice), 1);
        let later = ended.etime + again.settings().done_retention.as_secs() + 1;
        assert_eq!(
            again.vms().forget_done(later).expect("forget"),
            vec![vm.id()]
        );
        assert_eq!(listed(&again, &alice), 0);
        assert_eq!(listed(&again, &admin), 0);

        // Its tags leave memory and the store with it (the VM poller's
        // tick forgets them, here by hand).
        again.tags().forget(&[vm]).expect("forget tags");
        assert!(again.tags().of(vm).expect("of").is_empty());
        let stored = store.load_tags().expect("load");
        assert!(stored.iter().all(|t| t.target != vm), "{stored:?}");

        // A deleted image's tags are gone at the next start.
        again
            .tags()
            .create(&alice, &[image], &pairs(&[("k", "v")]))
            .expect("tag image");
        again
            .images()
            .delete(&alice, &image.id().to_string())
            .expect("delete image");
        drop(again);
        let third = open(store.clone(), dir.path());
        assert!(third.tags().of(image).expect("of").is_empty());
        let stored = store.load_tags().expect("load");
        assert!(stored.iter().all(|t| t.target != image), "{stored:?}");
    }

    #[test]
    fn key_pairs_are_tagged_and_seen_by_their_owner_only() {
        let (dir, store, core, admin, alice) = start();
        let (pair, _) = core
            .keypairs()
            .create(&alice, "laptop", KeyType::Ed25519)
            .expect("key pair");
        let key = Taggable::KeyPair(pair.id);
        let tags = pairs(&[("Name", "laptop")]);
        core.tags().create(&alice, &[key], &tags).expect("tag");
        assert_eq!(listed(&core, &alice), 1);

        // Key pairs are per user: oneadmin neither sees nor tags alice's,
        // and is told it does not exist.
        assert_eq!(listed(&core, &admin), 0);
        for refused in [
            core.tags().create(&admin, &[key], &pairs(&[("x", "y")])),
            core.tags().delete(&admin, &[key], &[]),
            core.tags().check_manage(&admin, key),
        ] {
            let err = refused.expect_err("not oneadmin's");
            assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        }
        assert_eq!(core.tags().of(key).expect("of"), tags);
        // One refused target refuses the whole call.
        let (own, _) = core
            .keypairs()
            .create(&admin, "own", KeyType::Ed25519)
            .expect("admin's key pair");
        let own = Taggable::KeyPair(own.id);
        assert!(core
            .tags()
            .create(&admin, &[own, key], &pairs(&[("x", "y")]))
            .is_err());
        assert!(core.tags().of(own).expect("of").is_empty());
        // A key pair that never was answers the same.
        assert!(core
            .tags()
            .create(&alice, &[Taggable::KeyPair(999)], &tags)
            .is_err());

        drop(core);
        let again = open(store.clone(), dir.path());
        assert_eq!(again.tags().of(key).expect("of"), tags);
        assert_eq!(again.tags().list(&alice).expect("list")[0].target, key);
        // A deleted key pair's tags are no longer listed, nor taggable.
        again.keypairs().delete(&alice, "laptop").expect("delete");
        assert_eq!(listed(&again, &alice), 0);
        assert!(again.tags().create(&alice, &[key], &tags).is_err());
        // The next start leaves them out of memory and the store.
        drop(again);
        let third = open(store.clone(), dir.path());
        assert!(third.tags().of(key).expect("of").is_empty());
        let stored = store.load_tags().expect("load");
        assert!(stored.iter().all(|t| t.target != key), "{stored:?}");
    }

    #[test]
    fn too_many_tags_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("store"));
        let core = open(store, dir.path());
        core.users().ensure_admin("pw").expect("admin");
        let admin = Caller {
            uid: 0,
            name: "oneadmin".into(),
        };
        let vm = Taggable::Vm(core.vms().create(&admin, "MEMORY = 64").expect("vm").id);
        let many: Vec<(String, String)> =
            (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(core.tags().create(&admin, &[vm], &many).is_err());
        assert!(core.tags().of(vm).expect("of").is_empty());
        core.tags()
            .create(&admin, &[vm], &many[..50])
            .expect("fifty fit");
    }
}
