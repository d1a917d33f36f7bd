//! The `images` table (spec/CORE.md §8.2 `image_pool`): the indexed
//! columns (owner, name, state, flags) beside `body`, the whole image as
//! JSON. Loading reads the body alone; the columns are for queries and
//! the per-owner unique name.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::{delete_by_id, execute_or_conflict, id_bodies, sql_id};
use crate::core::image::{Image, ImageState, ImageType};
use crate::core::{Error, Result};

/// The JSON in `body`; types and states as OpenNebula's numbers.
#[derive(Serialize, Deserialize)]
struct Body {
    id: u64,
    uid: u64,
    name: String,
    #[serde(rename = "type")]
    image_type: u32,
    state: u32,
    size_mb: u64,
    public: bool,
    persistent: bool,
    running_vms: u32,
    checksum: String,
    registered: u64,
    template: BTreeMap<String, String>,
}

impl Body {
    fn of(image: &Image) -> Self {
        Body {
            id: image.id,
            uid: image.owner,
            name: image.name.clone(),
            image_type: image.image_type.number(),
            state: image.state.number(),
            size_mb: image.size_mb,
            public: image.public,
            persistent: image.persistent,
            running_vms: image.running_vms,
            checksum: image.checksum.clone(),
            registered: image.registered,
            template: image.template.clone(),
        }
    }

    fn into_image(self) -> Result<Image> {
        let corrupt =
            |what: String| Error::Internal(format!("image {} in the database: {what}", self.id));
        let image_type = ImageType::from_number(self.image_type.into())
            .ok_or_else(|| corrupt(format!("unknown type {}", self.image_type)))?;
        let state = ImageState::from_number(self.state.into())
            .ok_or_else(|| corrupt(format!("unknown state {}", self.state)))?;
        Ok(Image {
            id: self.id,
            owner: self.uid,
            name: self.name,
            image_type,
            state,
            size_mb: self.size_mb,
            public: self.public,
            persistent: self.persistent,
            running_vms: self.running_vms,
            checksum: self.checksum,
            registered: self.registered,
            template: self.template,
        })
    }
}

pub(super) fn load(conn: &Connection) -> Result<Vec<Image>> {
    id_bodies(conn, "SELECT id, body FROM images ORDER BY id")?
        .into_iter()
        .map(|(id, body)| {
            let body: Body = serde_json::from_str(&body)
                .map_err(|e| Error::Internal(format!("image {id} in the database: body: {e}")))?;
            body.into_image()
        })
        .collect()
}

pub(super) fn put(conn: &Connection, image: &Image) -> Result<()> {
    let body = serde_json::to_string(&Body::of(image))
        .map_err(|e| Error::Internal(format!("image {}: cannot encode: {e}", image.id)))?;
    // UNIQUE(name, uid); an owner that is not a user (FOREIGN KEY) is
    // the core's bug, but a conflict is still the honest answer.
    execute_or_conflict(
        conn,
        "INSERT INTO images (id, uid, name, state, public, persistent, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(id) DO UPDATE SET uid = excluded.uid, name = excluded.name,
             state = excluded.state, public = excluded.public,
             persistent = excluded.persistent, body = excluded.body",
        params![
            sql_id(image.id)?,
            sql_id(image.owner)?,
            image.name,
            image.state.number(),
            image.public,
            image.persistent,
            body
        ],
        || format!("image {} already exists", image.name),
    )
}

pub(super) fn delete(conn: &Connection, id: u64) -> Result<()> {
    delete_by_id(conn, "images", id)
}

#[cfg(test)]
mod tests {
    //! The table, and the image pool over a real SQLite file and a real
    //! repository directory: what the pool promises about files only holds
    //! together with its store.

    use std::fs;
    use std::path::Path;
    use std::sync::Arc;

    use super::super::SqliteStore;
    use crate::core::caller::Caller;
    use crate::core::image::{ImageChanges, ImagePool, NewImage};
    use crate::core::ports::{self, Pool, Store};
    use crate::core::user::User;
    use crate::core::writer::Writer;
    use crate::core::{Error, Kind};

    use super::*;

    fn caller(uid: u64, name: &str) -> Caller {
        Caller {
            uid,
            name: name.into(),
        }
    }

    fn admin() -> Caller {
        caller(0, "oneadmin")
    }

    fn alice() -> Caller {
        caller(1, "alice")
    }

    fn bob() -> Caller {
        caller(2, "bob")
    }

    /// A store with oneadmin, alice and bob (images refer to users).
    fn store_at(path: &Path) -> Arc<SqliteStore> {
        let store = SqliteStore::open(path).expect("open");
        ports::write(&store, |tx| {
            for (id, name) in [(0, "oneadmin"), (1, "alice"), (2, "bob")] {
                tx.put_user(&User {
                    id,
                    name: name.into(),
                    password: String::new(),
                    enabled: true,
                })?;
            }
            Ok(())
        })
        .expect("users");
        Arc::new(store)
    }

    /// A database file and a repository in one temporary dir.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let fixture = Fixture {
                dir: tempfile::tempdir().expect("tempdir"),
            };
            store_at(&fixture.db());
            fixture
        }

        fn db(&self) -> std::path::PathBuf {
            self.dir.path().join("one.db")
        }

        fn repo(&self) -> std::path::PathBuf {
            self.dir.path().join("images")
        }

        /// The pool as a (re)started server loads it.
        fn pool(&self) -> ImagePool {
            let store = Arc::new(SqliteStore::open(&self.db()).expect("open"));
            ImagePool::load(Writer::new(store), &self.repo()).expect("load")
        }

        fn rows(&self) -> Vec<Image> {
            SqliteStore::open(&self.db())
                .expect("open")
                .load_images()
                .expect("load")
        }

        /// The repository's file names, sorted.
        fn files(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(self.repo())
                .expect("repo")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    fn upload(pool: &ImagePool, who: &Caller, new: NewImage, bytes: &[u8]) -> Result<Image> {
        let mut upload = pool.begin_upload(who, new, 1 << 30)?;
        for chunk in bytes.chunks(1000) {
            upload.write(chunk)?;
        }
        upload.commit()
    }

    fn image(pool: &ImagePool, who: &Caller, name: &str) -> Image {
        upload(pool, who, NewImage::named(name), b"disk").expect("upload")
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }

    #[test]
    fn rows_round_trip_through_the_body() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_at(&dir.path().join("one.db"));
        let mut template = BTreeMap::new();
        template.insert("DESCRIPTION".to_string(), "a <disk> & \"more\"".to_string());
        let image = Image {
            id: 7,
            owner: 1,
            name: "Ubuntu 9.04 LAMP".into(),
            image_type: ImageType::Cdrom,
            state: ImageState::Used,
            size_mb: 2048,
            public: true,
            persistent: false,
            running_vms: 3,
            checksum: sha256_hex(b"x"),
            registered: 1_700_000_000,
            template,
        };
        ports::write(store.as_ref(), |tx| tx.put_image(&image)).expect("put");
        assert_eq!(store.load_images().expect("load"), vec![image.clone()]);
        let columns: (i64, String, i64, bool, bool) = store
            .lock()
            .expect("lock")
            .query_row(
                "SELECT uid, name, state, public, persistent FROM images WHERE id = 7",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .expect("row");
        assert_eq!(columns, (1, "Ubuntu 9.04 LAMP".into(), 2, true, false));
        ports::write(store.as_ref(), |tx| tx.delete_image(7)).expect("delete");
        assert!(store.load_images().expect("load").is_empty());
    }

    #[test]
    fn a_name_is_unique_per_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_at(&dir.path().join("one.db"));
        let row = |id, owner| Image {
            id,
            owner,
            name: "same".into(),
            image_type: ImageType::Os,
            state: ImageState::Ready,
            size_mb: 1,
            public: false,
            persistent: false,
            running_vms: 0,
            checksum: String::new(),
            registered: 0,
            template: BTreeMap::new(),
        };
        ports::write(store.as_ref(), |tx| tx.put_image(&row(0, 1))).expect("alice's");
        ports::write(store.as_ref(), |tx| tx.put_image(&row(1, 2))).expect("bob's");
        let err = ports::write(store.as_ref(), |tx| tx.put_image(&row(2, 1))).expect_err("dup");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    }

    #[test]
    fn an_upload_becomes_a_file_named_by_its_id() {
        let fx = Fixture::new();
        let pool = fx.pool();
        let bytes: Vec<u8> = (0..(3 << 20) + 5).map(|i| (i % 251) as u8).collect();
        let mut new = NewImage::named("ubuntu");
        new.image_type = ImageType::Datablock;
        new.template
            .insert("description".into(), "test disk".into());
        let image = upload(&pool, &alice(), new, &bytes).expect("upload");
        assert_eq!(image.id, 0);
        assert_eq!(image.owner, 1);
        assert_eq!(image.state, ImageState::Ready);
        assert_eq!(image.size_mb, 4, "3 MB and 5 bytes round up");
        assert_eq!(image.checksum, sha256_hex(&bytes));
        assert_eq!(image.description(), Some("test disk"));
        assert!(image.registered > 1_600_000_000);
        assert_eq!(fx.files(), ["0"]);
        assert_eq!(fs::read(pool.source(0)).expect("file"), bytes);
        assert!(pool.source(0).is_absolute());
        assert_eq!(fx.rows(), vec![image]);
    }

    #[test]
    fn sizes_round_up_to_whole_megabytes() {
        use crate::core::image::size_mb;
        assert_eq!(
            [0, 1, 1 << 20, (1 << 20) + 1, 5 << 20].map(size_mb),
            [0, 1, 1, 2, 5]
        );
    }

    #[test]
    fn an_upload_over_the_limit_leaves_nothing() {
        let fx = Fixture::new();
        let pool = fx.pool();
        let mut upload = pool
            .begin_upload(&alice(), NewImage::named("big"), 10)
            .expect("begin");
        assert_eq!(fx.files().len(), 1, "the temporary file exists");
        upload.write(b"0123456789").expect("at the limit");
        let err = upload.write(b"x").expect_err("over");
        assert!(matches!(err, Error::TooLarge { limit: 10, .. }), "{err:?}");
        assert!(fx.files().is_empty(), "deleted at the failing write");
        assert!(upload.write(b"").is_err(), "the upload has ended");
        drop(upload);
        assert!(fx.rows().is_empty());
        assert!(pool.list(&alice()).expect("list").is_empty());
    }

    #[test]
    fn a_dropped_upload_leaves_nothing() {
        let fx = Fixture::new();
        let pool = fx.pool();
        let mut upload = pool
            .begin_upload(&alice(), NewImage::named("gone"), 1 << 20)
            .expect("begin");
        upload.write(b"half of it").expect("write");
        drop(upload);
        assert!(fx.files().is_empty());
        assert!(fx.rows().is_empty());
        // Ids of abandoned uploads are not even taken.
        assert_eq!(image(&pool, &alice(), "next").id, 0);
    }

    #[test]
    fn a_name_taken_while_uploading_is_a_conflict_and_leaves_nothing() {
        let fx = Fixture::new();
        let pool = fx.pool();
        let mut slow = pool
            .begin_upload(&alice(), NewImage::named("dup"), 1 << 20)
            .expect("begin");
        slow.write(b"slow").expect("write");
        let first = image(&pool, &alice(), "dup");
        let err = pool
            .begin_upload(&alice(), NewImage::named("dup"), 1 << 20)
            .err()
            .expect("refused at once");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        let err = slow.commit().expect_err("refused at commit");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        assert_eq!(fx.files(), [first.id.to_string()]);
        assert_eq!(fx.rows(), vec![first]);
        // Another owner may use the name.
        image(&pool, &bob(), "dup");
    }

    #[test]
    fn bad_names_and_attributes_are_refused_before_any_file() {
        let fx = Fixture::new();
        let pool = fx.pool();
        for name in ["", "  ", "123", "tab\there"] {
            let err = pool
                .begin_upload(&alice(), NewImage::named(name), 10)
                .err()
                .expect(name);
            assert!(matches!(err, Error::Invalid { .. }), "{name:?}: {err:?}");
        }
        let mut new = NewImage::named("ok");
        new.template.insert("BAD NAME".into(), "x".into());
        assert!(pool.begin_upload(&alice(), new, 10).is_err());
        assert!(fx.files().is_empty());
    }

    #[test]
    fn list_and_show_follow_owner_public_and_admin() {
        let fx = Fixture::new();
        let pool = fx.pool();
        let mine = image(&pool, &alice(), "mine");
        let theirs = image(&pool, &bob(), "theirs");
        let shared = image(&pool, &bob(), "shared");
        pool.set_public(&bob(), "shared", true).expect("publish");
        let ids = |who: &Caller| -> Vec<u64> {
            pool.list(who).expect("list").iter().map(|i| i.id).collect()
        };
        assert_eq!(ids(&alice()), [mine.id, shared.id]);
        assert_eq!(ids(&bob()), [theirs.id, shared.id]);
        assert_eq!(ids(&admin()), [mine.id, theirs.id, shared.id]);

        assert_eq!(pool.show(&alice(), "shared").expect("public").id, shared.id);
        assert_eq!(pool.show(&admin(), "theirs").expect("admin").id, theirs.id);
        for key in [theirs.id.to_string(), "theirs".to_string()] {
            let err = pool.show(&alice(), &key).expect_err("private");
            assert!(
                matches!(
                    err,
                    Error::Forbidden {
                        kind: Kind::Image,
                        ..
                    }
                ),
                "{err:?}"
            );
        }
        let err = pool.show(&alice(), "99").expect_err("none");
        assert!(matches!(
            err,
            Error::NotFound {
                kind: Kind::Image,
                ..
            }
        ));
        let err = pool.show(&alice(), "nothing").expect_err("none");
        assert!(matches!(
            err,
            Error::NotFound {
                kind: Kind::Image,
                ..
            }
        ));

        // A public image is seen, not managed.
        for result in [
            pool.delete(&alice(), "shared").map(drop),
            pool.set_enabled(&alice(), "shared", false).map(drop),
            pool.set_public(&alice(), "shared", false).map(drop),
            pool.set_persistent(&alice(), "shared", true).map(drop),
        ] {
            assert!(matches!(result, Err(Error::Forbidden { .. })), "{result:?}");
        }
        // A name is the caller's own first, then a visible one; several
        // visible ones need the id.
        let own_shared = image(&pool, &alice(), "shared");
        assert_eq!(
            pool.show(&alice(), "shared").expect("own").id,
            own_shared.id
        );
        let err = pool.show(&admin(), "shared").expect_err("ambiguous");
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    }

    #[test]
    fn delete_removes_row_then_file_and_refuses_images_in_use() {
        let fx = Fixture::new();
        let pool = fx.pool();
        let used = image(&pool, &alice(), "used");
        let free = image(&pool, &alice(), "free");
        let mut changes = ImageChanges::default();
        pool.plan_use(&mut changes, alice().uid, "used")
            .expect("use");
        ports::write(pool_store(&fx).as_ref(), |tx| changes.write(tx)).expect("commit");
        pool.apply(changes).expect("apply");

        let err = pool.delete(&alice(), "used").expect_err("in use");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        pool.delete(&alice(), &free.id.to_string()).expect("delete");
        assert_eq!(fx.files(), [used.id.to_string()]);
        assert_eq!(fx.rows().len(), 1);
        // Ids are never reused.
        assert_eq!(image(&pool, &alice(), "later").id, 2);
    }

    /// A second handle on the fixture's database, for writing planned
    /// changes the way the VM pool will (in its own transaction).
    fn pool_store(fx: &Fixture) -> Arc<SqliteStore> {
        Arc::new(SqliteStore::open(&fx.db()).expect("open"))
    }

    #[test]
    fn use_and_release_follow_state_and_persistence() {
        let fx = Fixture::new();
        let pool = fx.pool();
        let shared = image(&pool, &alice(), "shared");
        let pers = image(&pool, &alice(), "pers");
        pool.set_persistent(&alice(), "pers", true)
            .expect("persistent");
        image(&pool, &bob(), "private");

        // Two DISKs of one VM on the same image: the second sees the first.
        let mut changes = ImageChanges::default();
        let first = pool.plan_use(&mut changes, 1, "shared").expect("use");
        assert_eq!(first.image.state, ImageState::Used);
        assert_eq!(first.source, pool.source(shared.id));
        let second = pool
            .plan_use(&mut changes, 1, &shared.id.to_string())
            .expect("use");
        assert_eq!(second.image.running_vms, 2);
        pool.plan_use(&mut changes, 1, "pers")
            .expect("persistent once");
        let err = pool
            .plan_use(&mut changes, 1, "pers")
            .expect_err("persistent twice");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        // Planning changed nothing yet.
        assert_eq!(pool.show(&alice(), "shared").expect("show").running_vms, 0);
        ports::write(pool_store(&fx).as_ref(), |tx| changes.write(tx)).expect("commit");
        pool.apply(changes).expect("apply");
        assert_eq!(pool.show(&alice(), "shared").expect("show").running_vms, 2);
        let err = pool
            .set_persistent(&alice(), "shared", true)
            .expect_err("in use");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        let err = pool
            .set_enabled(&alice(), "shared", false)
            .expect_err("in use");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");

        let err = pool
            .plan_use(&mut ImageChanges::default(), 1, "private")
            .expect_err("bob's");
        assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");

        // Released by both DISKs: READY again; persistent free again.
        let mut changes = ImageChanges::default();
        pool.plan_release(&mut changes, shared.id).expect("release");
        pool.plan_release(&mut changes, shared.id).expect("release");
        pool.plan_release(&mut changes, pers.id).expect("release");
        pool.plan_release(&mut changes, 999)
            .expect("unknown: nothing");
        ports::write(pool_store(&fx).as_ref(), |tx| changes.write(tx)).expect("commit");
        pool.apply(changes).expect("apply");
        let shared = pool.show(&alice(), "shared").expect("show");
        assert_eq!((shared.state, shared.running_vms), (ImageState::Ready, 0));

        // What was committed is what a restart sees.
        assert_eq!(
            fx.pool().list(&admin()).expect("list"),
            pool.list(&admin()).expect("list")
        );
    }

    #[test]
    fn disabled_images_cannot_be_used_until_enabled() {
        let fx = Fixture::new();
        let pool = fx.pool();
        image(&pool, &alice(), "img");
        let disabled = pool.set_enabled(&alice(), "img", false).expect("disable");
        assert_eq!(disabled.state, ImageState::Disabled);
        pool.set_enabled(&alice(), "img", false)
            .expect("again: no-op");
        let err = pool
            .plan_use(&mut ImageChanges::default(), 1, "img")
            .expect_err("disabled");
        match err {
            Error::InvalidState { kind, state, .. } => {
                assert_eq!((kind, state.as_str()), (Kind::Image, "DISABLED"))
            }
            other => panic!("{other:?}"),
        }
        pool.set_enabled(&alice(), "img", true).expect("enable");
        pool.plan_use(&mut ImageChanges::default(), 1, "img")
            .expect("usable again");
    }

    #[test]
    fn flags_and_attributes_persist() {
        let fx = Fixture::new();
        let pool = fx.pool();
        image(&pool, &alice(), "img");
        pool.set_public(&alice(), "img", true).expect("publish");
        pool.set_persistent(&admin(), "0", true)
            .expect("persistent");
        pool.set_attribute(&alice(), "img", "ec2_ami", Some("YES"))
            .expect("attribute");
        let image = fx.pool().show(&alice(), "img").expect("reloaded");
        assert!(image.public && image.persistent);
        assert_eq!(
            image.template.get("EC2_AMI").map(String::as_str),
            Some("YES")
        );
        pool.set_attribute(&alice(), "img", "EC2_AMI", None)
            .expect("removed");
        assert!(fx
            .pool()
            .show(&alice(), "img")
            .expect("reloaded")
            .template
            .is_empty());
    }

    #[test]
    fn start_up_sweeps_stale_files_and_marks_missing_ones() {
        let fx = Fixture::new();
        let pool = fx.pool();
        let kept = image(&pool, &alice(), "kept");
        let lost = image(&pool, &alice(), "lost");
        drop(pool);
        fs::write(fx.repo().join(".upload-crashed"), b"partial").expect("stale upload");
        fs::write(fx.repo().join("77"), b"orphan").expect("orphan");
        fs::write(fx.repo().join("notes.txt"), b"not ours").expect("other");
        fs::remove_file(fx.repo().join(lost.id.to_string())).expect("lose a file");

        let pool = fx.pool();
        assert_eq!(fx.files(), [kept.id.to_string(), "notes.txt".to_string()]);
        let lost = pool.show(&alice(), "lost").expect("still listed");
        assert_eq!(lost.state, ImageState::Error);
        assert_eq!(fx.rows()[1].state, ImageState::Error, "durably");
        assert_eq!(
            pool.show(&alice(), "kept").expect("kept").state,
            ImageState::Ready
        );
        // ERROR is left by enabling, once the operator has put the file back.
        pool.set_enabled(&admin(), "lost", true).expect("enable");
    }

    #[test]
    fn only_oneadmin_registers_server_files_and_only_regular_ones() {
        let fx = Fixture::new();
        let pool = fx.pool();
        let outside = tempfile::tempdir().expect("tempdir");
        let file = outside.path().join("disk.img");
        fs::write(&file, b"server-side bytes").expect("write");

        let err = pool
            .register_path(&alice(), NewImage::named("x"), &file)
            .expect_err("not admin");
        assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
        for bad in [
            Path::new("relative/disk.img"),
            outside.path(),
            &outside.path().join("missing"),
            Path::new("/dev/null"),
        ] {
            let err = pool
                .register_path(&admin(), NewImage::named("x"), bad)
                .expect_err("bad path");
            assert!(matches!(err, Error::Invalid { .. }), "{bad:?}: {err:?}");
        }
        let image = pool
            .register_path(&admin(), NewImage::named("copied"), &file)
            .expect("register");
        assert_eq!(
            fs::read(pool.source(image.id)).expect("copy"),
            b"server-side bytes"
        );
        assert_eq!(image.checksum, sha256_hex(b"server-side bytes"));
        assert!(file.exists(), "the original stays");
        let err = pool
            .register_path(&admin(), NewImage::named("again"), &pool.source(image.id))
            .expect_err("inside the repository");
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
        assert_eq!(fx.files(), [image.id.to_string()]);
    }

    #[test]
    fn images_pool_ids_count_on_their_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_at(&dir.path().join("one.db"));
        let id = ports::write(store.as_ref(), |tx| tx.next_id(Pool::Images)).expect("id");
        assert_eq!(id, 0);
    }
}
