//! Tests of the `vnets` and `leases` tables, and of the network pool on
//! the real store (the pool's templates are tested in `core::vnet`):
//! authorization, leases, and the write path's promises — a refused request
//! changes nothing, memory follows only a committed transaction, and
//! concurrent VMs never share an address (spec/CORE.md §4, §7.3).
//!
//! The VM pool does not exist yet and `leases.vm_id` references `vms(id)`,
//! so the VM rows leases point at are written here with plain SQL.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::super::SqliteStore;
use super::*;
use crate::core::ports::{self, Pool, Store};
use crate::core::user::User;
use crate::core::vnet::{LeaseRequest, NetworkKey, VnetPool};
use crate::core::writer::Writer;
use crate::core::{Caller, Kind, Settings};

fn user(uid: u64, name: &str) -> Caller {
    Caller {
        uid,
        name: name.into(),
    }
}

fn admin() -> Caller {
    user(0, "oneadmin")
}

fn alice() -> Caller {
    user(1, "alice")
}

fn bob() -> Caller {
    user(2, "bob")
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().expect("ip")
}

fn lan(name: &str, extra: &str) -> String {
    format!("NAME = {name}\nBRIDGE = br0\nNETWORK_ADDRESS = 192.168.0.0\nNETWORK_SIZE = C\n{extra}")
}

const FIXED: &str = "NAME = fixed\nTYPE = FIXED\nBRIDGE = br1\n\
     LEASES = [ IP = 10.0.0.5, MAC = 02:00:0A:00:00:05 ]\n\
     LEASES = [ IP = 10.0.0.3 ]\n\
     LEASES = [ IP = 10.0.0.4, MAC = 00:16:3e:aa:bb:cc ]";

/// An in-memory store holding oneadmin, alice (1), bob (2) and carol (3).
fn store() -> Arc<SqliteStore> {
    let store = SqliteStore::open_in_memory().expect("open");
    ports::write(&store, |tx| {
        for name in ["oneadmin", "alice", "bob", "carol"] {
            let id = tx.next_id(Pool::Users)?;
            tx.put_user(&User {
                id,
                name: name.into(),
                password: crate::core::user::sha1_hex(name),
                enabled: true,
            })?;
        }
        Ok(())
    })
    .expect("users");
    Arc::new(store)
}

/// A VM row for leases to point at (owned by oneadmin; the lease rules
/// look at the owner passed to the planner, not at this row).
fn fake_vm(store: &SqliteStore, vm_id: u64) {
    store
        .lock()
        .expect("lock")
        .execute(
            "INSERT OR IGNORE INTO vms (id, uid, name, state, lcm_state, body)
             VALUES (?1, 0, 'vm', 1, 0, '{}')",
            [vm_id as i64],
        )
        .expect("vm row");
}

struct Fixture {
    store: Arc<SqliteStore>,
    writer: Arc<Writer>,
    pool: VnetPool,
}

fn fixture() -> Fixture {
    let store = store();
    let writer = Writer::new(store.clone());
    let pool = VnetPool::load(writer.clone(), Settings::default()).expect("pool");
    Fixture {
        store,
        writer,
        pool,
    }
}

impl Fixture {
    /// Takes leases for one VM as the VM pool will: lock, plan, commit
    /// (beside the VM's row), apply.
    fn take(&self, owner: u64, requests: &[LeaseRequest], vm_id: u64) -> Result<Vec<Lease>> {
        fake_vm(&self.store, vm_id);
        let guard = self.writer.lock()?;
        let leases = self.pool.plan_leases(&guard, owner, requests, vm_id)?;
        guard.commit(|tx| leases.iter().try_for_each(|l| tx.put_lease(l)))?;
        self.pool.apply_leases(&guard, &leases)?;
        Ok(leases)
    }

    fn take_one(&self, owner: u64, request: LeaseRequest, vm_id: u64) -> Result<Lease> {
        Ok(self.take(owner, &[request], vm_id)?.remove(0))
    }

    /// Gives back a VM's leases as the VM pool will at DONE.
    fn release(&self, vm_id: u64) -> Result<Vec<Lease>> {
        let guard = self.writer.lock()?;
        let leases = self.pool.plan_release(&guard, vm_id)?;
        guard.commit(|tx| leases.iter().try_for_each(|l| tx.release_lease(l)))?;
        self.pool.apply_release(&guard, &leases)?;
        Ok(leases)
    }

    fn count(&self, table: &str) -> i64 {
        self.store
            .lock()
            .expect("lock")
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }

    fn stored_leases(&self) -> Vec<Lease> {
        let vnets = self.store.load_vnets().expect("load");
        vnets.into_iter().flat_map(|v| v.leases).collect()
    }

    /// Makes every write of a network or a lease fail inside its
    /// transaction, as a full disk would.
    fn fail_writes(&self, fail: bool) {
        let sql = if fail {
            "CREATE TEMP TRIGGER fail_vnets BEFORE INSERT ON vnets BEGIN SELECT RAISE(ABORT, 'disk full'); END;
             CREATE TEMP TRIGGER fail_leases BEFORE INSERT ON leases BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
        } else {
            "DROP TRIGGER fail_vnets; DROP TRIGGER fail_leases;"
        };
        self.store
            .lock()
            .expect("lock")
            .execute_batch(sql)
            .expect("triggers");
    }
}

fn any(key: &str) -> LeaseRequest {
    LeaseRequest::any(NetworkKey::parse(key))
}

fn at(key: &str, address: &str) -> LeaseRequest {
    LeaseRequest {
        ip: Some(ip(address)),
        ..any(key)
    }
}

// ---- the tables -------------------------------------------------------------

#[test]
fn networks_and_leases_read_back_as_written() {
    let f = fixture();
    let ranged = f
        .pool
        .create(
            &admin(),
            "NAME = \"Private LAN\"\nBRIDGE = br0\nNETWORK_ADDRESS = 192.168.0.0/25\nNETWORK_SIZE = 100\nPUBLIC = yes",
        )
        .expect("ranged");
    let fixed = f
        .pool
        .create(
            &alice(),
            "NAME = fixed\nTYPE = fixed\nBRIDGE = br1\nLEASES = [ IP = 10.0.0.2 ]\nLEASES = [ IP = 10.0.0.1, MAC = 00:16:3E:00:00:01 ]",
        )
        .expect("fixed");
    assert_eq!(
        f.store.load_vnets().expect("load"),
        vec![ranged.clone(), fixed.clone()]
    );

    let leases = f
        .take(1, &[any("Private LAN"), any("fixed")], 1)
        .expect("leases");
    let saved = f.store.load_vnets().expect("load");
    assert_eq!(saved[0].leases, vec![leases[0].clone()]);
    assert_eq!(saved[1].leases, vec![leases[1].clone()]);
    assert_eq!(saved[1].leases[0].mac.to_string(), "00:16:3e:00:00:01");
    // What a restart loads is what was there.
    let reloaded = VnetPool::load(f.writer.clone(), Settings::default()).expect("load");
    assert_eq!(
        reloaded.list(&admin()).expect("list"),
        f.pool.list(&admin()).expect("list")
    );

    f.release(1).expect("release");
    assert_eq!(f.stored_leases(), vec![]);
}

#[test]
fn the_stored_network_does_not_depend_on_the_settings() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    f.pool
        .create(
            &alice(),
            "NAME = f\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.1 ]",
        )
        .expect("f");
    let other = Settings {
        mac_prefix: [0x00, 0x03],
        network_size: 30,
        ..Settings::default()
    };
    let reloaded = VnetPool::load(f.writer.clone(), other).expect("load");
    let before = f.pool.list(&admin()).expect("list");
    assert_eq!(reloaded.list(&admin()).expect("list"), before);
}

#[test]
fn a_leased_address_or_a_taken_name_is_a_conflict() {
    let f = fixture();
    let net = f
        .pool
        .create(
            &admin(),
            "NAME = lan\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0/24",
        )
        .expect("create");
    fake_vm(&f.store, 0);
    fake_vm(&f.store, 1);
    let lease = |vm_id| Lease {
        vnet_id: net.network.id,
        ip: ip("10.0.0.1"),
        mac: Mac([2, 0, 10, 0, 0, 1]),
        vm_id,
    };
    let store = f.store.as_ref();
    ports::write(store, |tx| tx.put_lease(&lease(0))).expect("first");
    let err = ports::write(store, |tx| tx.put_lease(&lease(1))).expect_err("second");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    // A lease for a VM that is not stored is a bug, not a conflict.
    let err = ports::write(store, |tx| {
        tx.put_lease(&Lease {
            ip: ip("10.0.0.2"),
            mac: Mac([2, 0, 10, 0, 0, 2]),
            ..lease(99)
        })
    })
    .expect_err("no vm");
    assert!(matches!(err, Error::Internal(_)), "{err:?}");

    let mut copy = net.network.clone();
    let err = ports::write(store, |tx| {
        copy.id = tx.next_id(Pool::Vnets)?;
        tx.put_vnet(&copy)
    })
    .expect_err("same name, same owner");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(f.count("leases"), 1);
    assert_eq!(f.count("vnets"), 1);
}

// ---- the pool: create, show, list, delete --------------------------------

#[test]
fn a_bad_template_creates_nothing() {
    let f = fixture();
    let e = f
        .pool
        .create(
            &alice(),
            "NAME = lan\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.5/24",
        )
        .expect_err("not a base");
    assert!(
        matches!(&e, Error::Invalid { field, .. } if field == "NETWORK_ADDRESS"),
        "{e:?}"
    );
    let e = f
        .pool
        .create(&alice(), "NAME = \"unclosed")
        .expect_err("syntax");
    assert!(
        matches!(&e, Error::Invalid { field, .. } if field == "template"),
        "{e:?}"
    );
    assert!(f.pool.list(&admin()).expect("list").is_empty());
    assert_eq!(f.count("vnets"), 0);
    // No id was used up either.
    assert_eq!(
        f.pool
            .create(&alice(), &lan("lan", ""))
            .expect("create")
            .network
            .id,
        0
    );
}

#[test]
fn names_are_unique_per_owner() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("alice's");
    let e = f.pool.create(&alice(), &lan("lan", "")).expect_err("again");
    assert_eq!(e.to_string(), "network lan already exists");
    assert!(matches!(e, Error::Conflict(_)));
    let bobs = f.pool.create(&bob(), &lan("lan", "")).expect("bob's");
    assert_eq!((bobs.network.id, bobs.network.uid), (1, 2));
    assert_eq!(f.count("vnets"), 2);
}

#[test]
fn owners_see_theirs_everyone_sees_public_oneadmin_sees_all() {
    let f = fixture();
    let private = f
        .pool
        .create(&alice(), &lan("private", ""))
        .expect("private");
    f.pool
        .create(&alice(), &lan("shared", "PUBLIC = YES"))
        .expect("public");
    f.pool.create(&bob(), &lan("bobs", "")).expect("bob's");
    let names = |c: &Caller| -> Vec<String> {
        f.pool
            .list(c)
            .expect("list")
            .into_iter()
            .map(|i| i.network.name)
            .collect()
    };
    assert_eq!(names(&alice()), ["private", "shared"]);
    assert_eq!(names(&bob()), ["shared", "bobs"]);
    assert_eq!(names(&admin()), ["private", "shared", "bobs"]);

    assert_eq!(
        f.pool.show(&alice(), "private").expect("own").network,
        private.network
    );
    assert_eq!(
        f.pool
            .show(&admin(), &private.network.id.to_string())
            .expect("admin")
            .network
            .name,
        "private"
    );
    assert_eq!(
        f.pool.show(&bob(), "shared").expect("public").network.name,
        "shared"
    );
    for key in ["private", "0"] {
        let e = f.pool.show(&bob(), key).expect_err("not bob's");
        assert!(
            matches!(
                e,
                Error::Forbidden {
                    kind: Kind::Network,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    let e = f.pool.show(&bob(), "nope").expect_err("unknown");
    assert_eq!(e.to_string(), "network nope not found");
    let e = f.pool.show(&bob(), "99").expect_err("unknown id");
    assert!(matches!(
        e,
        Error::NotFound {
            kind: Kind::Network,
            ..
        }
    ));
}

#[test]
fn a_name_prefers_the_callers_own_and_refuses_to_guess() {
    let f = fixture();
    f.pool
        .create(&alice(), &lan("lan", "PUBLIC = YES"))
        .expect("alice's");
    f.pool
        .create(&bob(), &lan("lan", "PUBLIC = YES"))
        .expect("bob's");
    assert_eq!(f.pool.show(&bob(), "lan").expect("own").network.uid, 2);
    let carol = user(3, "carol");
    let e = f.pool.show(&carol, "lan").expect_err("ambiguous");
    assert_eq!(
        e.to_string(),
        "network: the name lan is used by networks 0, 1 of different owners; give the id"
    );
    assert_eq!(f.pool.show(&carol, "1").expect("by id").network.uid, 2);
}

#[test]
fn only_the_owner_or_oneadmin_deletes() {
    let f = fixture();
    f.pool
        .create(&alice(), &lan("a", "PUBLIC = YES"))
        .expect("a");
    f.pool.create(&alice(), &lan("b", "")).expect("b");
    let e = f.pool.delete(&bob(), "a").expect_err("public is not bob's");
    assert!(matches!(e, Error::Forbidden { .. }), "{e:?}");
    assert_eq!(f.pool.delete(&alice(), "a").expect("owner").name, "a");
    assert_eq!(f.pool.delete(&admin(), "1").expect("admin").name, "b");
    assert_eq!(f.count("vnets"), 0);
    assert!(f.pool.list(&admin()).expect("list").is_empty());
    assert!(matches!(
        f.pool.delete(&admin(), "1"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn publishing_shares_a_network_and_unpublishing_takes_it_back() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    let bobs_view = |f: &Fixture| f.pool.list(&bob()).expect("list").len();
    assert_eq!(bobs_view(&f), 0);
    assert!(matches!(
        f.take_one(2, any("0"), 1),
        Err(Error::Forbidden { .. })
    ));

    let published = f.pool.set_public(&alice(), "lan", true).expect("publish");
    assert!(published.public);
    assert_eq!(published.template.get("PUBLIC"), Some("YES"));
    assert_eq!(bobs_view(&f), 1);
    assert!(f.pool.show(&bob(), "lan").expect("visible").network.public);
    let lease = f.take_one(2, any("lan"), 1).expect("bob uses it");
    // Stored: a restart keeps it public.
    let reloaded = VnetPool::load(f.writer.clone(), Settings::default()).expect("load");
    assert!(reloaded.show(&bob(), "0").expect("reloaded").network.public);
    assert_eq!(
        reloaded.list(&admin()).expect("list"),
        f.pool.list(&admin()).expect("list")
    );

    let unpublished = f.pool.set_public(&admin(), "0", false).expect("admin");
    assert!(!unpublished.public);
    assert_eq!(unpublished.template.get("PUBLIC"), Some("NO"));
    assert_eq!(bobs_view(&f), 0);
    assert!(matches!(
        f.take_one(2, any("0"), 2),
        Err(Error::Forbidden { .. })
    ));
    // The lease bob took stays.
    assert_eq!(
        f.pool.show(&alice(), "lan").expect("lan").leases,
        vec![lease]
    );
    let stored = f.store.load_vnets().expect("load");
    assert!(!stored[0].network.public);
    assert_eq!(stored[0].network, unpublished);
}

#[test]
fn only_the_owner_or_oneadmin_publishes_and_a_refusal_changes_nothing() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    f.pool
        .create(&alice(), &lan("open", "PUBLIC = YES"))
        .expect("open");
    let before = f.store.load_vnets().expect("load");
    for (key, public) in [("0", true), ("lan", true), ("1", false), ("open", false)] {
        let e = f
            .pool
            .set_public(&bob(), key, public)
            .expect_err("not bob's");
        assert!(
            matches!(
                e,
                Error::Forbidden {
                    kind: Kind::Network,
                    ..
                }
            ),
            "{key}: {e:?}"
        );
    }
    assert!(matches!(
        f.pool.set_public(&alice(), "9", true),
        Err(Error::NotFound { .. })
    ));
    // A failed write changes nothing either.
    f.fail_writes(true);
    assert!(f.pool.set_public(&alice(), "lan", true).is_err());
    f.fail_writes(false);
    assert_eq!(f.store.load_vnets().expect("load"), before);
    assert_eq!(f.pool.list(&admin()).expect("list"), before);
    assert!(!f.pool.show(&alice(), "lan").expect("lan").network.public);
    // Publishing twice is no error.
    f.pool.set_public(&alice(), "open", true).expect("again");
    assert_eq!(f.store.load_vnets().expect("load"), before);
}

#[test]
fn a_network_with_leases_in_use_is_not_deleted() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    f.take(1, &[any("lan"), any("lan")], 7).expect("leases");
    let e = f.pool.delete(&alice(), "lan").expect_err("in use");
    assert_eq!(e.to_string(), "network lan has 2 leases in use");
    assert!(matches!(e, Error::Conflict(_)));
    assert_eq!(f.count("vnets"), 1);
    f.release(7).expect("release");
    f.pool.delete(&alice(), "lan").expect("free now");
}

#[test]
fn loading_gives_back_networks_and_leases() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    f.pool.create(&alice(), FIXED).expect("fixed");
    f.take(1, &[any("lan"), any("fixed")], 3).expect("leases");
    let reloaded = VnetPool::load(f.writer.clone(), Settings::default()).expect("load");
    assert_eq!(
        reloaded.list(&admin()).expect("list"),
        f.pool.list(&admin()).expect("list")
    );
    assert_eq!(reloaded.show(&admin(), "lan").expect("lan").leases.len(), 1);
}

// ---- leases ---------------------------------------------------------------

#[test]
fn the_first_lease_is_the_first_address_with_the_rule_mac() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    let lease = f.take_one(1, any("lan"), 10).expect("lease");
    assert_eq!(lease.ip, ip("192.168.0.1"));
    assert_eq!(lease.mac.to_string(), "02:00:c0:a8:00:01");
    assert_eq!((lease.vnet_id, lease.vm_id), (0, 10));
    let shown = f.pool.show(&alice(), "lan").expect("show");
    assert_eq!(shown.leases, vec![lease]);
}

#[test]
fn allocation_is_next_fit_and_wraps() {
    let f = fixture();
    f.pool
        .create(
            &alice(),
            "NAME = small\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0/29",
        )
        .expect("six addresses");
    let got = |vm| {
        f.take_one(1, any("small"), vm)
            .expect("lease")
            .ip
            .to_string()
    };
    assert_eq!(
        [got(1), got(2), got(3)],
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    );
    f.release(1).expect("release");
    // .1 is free again, but the cursor goes on first (no immediate reuse).
    assert_eq!(
        [got(4), got(5), got(6)],
        ["10.0.0.4", "10.0.0.5", "10.0.0.6"]
    );
    assert_eq!(got(7), "10.0.0.1", "wrapped around to the freed address");
}

#[test]
fn a_requested_ip_is_honoured_if_free_and_in_range() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    let lease = f
        .take_one(1, at("lan", "192.168.0.77"), 1)
        .expect("requested");
    assert_eq!(lease.ip, ip("192.168.0.77"));
    assert_eq!(lease.mac.to_string(), "02:00:c0:a8:00:4d");

    let e = f
        .take_one(1, at("lan", "192.168.0.77"), 2)
        .expect_err("taken");
    assert_eq!(
        e.to_string(),
        "IP 192.168.0.77 of network lan is already in use"
    );
    assert!(matches!(e, Error::Conflict(_)));

    for outside in ["192.168.1.5", "192.168.0.0", "192.168.0.255"] {
        let e = f.take_one(1, at("lan", outside), 2).expect_err("outside");
        assert_eq!(
            e.to_string(),
            format!("NIC/IP: {outside} is outside network lan (192.168.0.1 - 192.168.0.254)")
        );
    }
    // The cursor follows the requested address.
    assert_eq!(
        f.take_one(1, any("lan"), 3).expect("next").ip,
        ip("192.168.0.78")
    );
}

#[test]
fn a_requested_mac_picks_its_address() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    f.pool.create(&alice(), FIXED).expect("fixed");
    let mac = |text: &str| LeaseRequest {
        mac: Some(text.parse().expect("mac")),
        ..any("lan")
    };
    assert_eq!(
        f.take_one(1, mac("02:00:c0:a8:00:09"), 1)
            .expect("ranged")
            .ip,
        ip("192.168.0.9")
    );
    let e = f
        .take_one(1, mac("02:01:c0:a8:00:0a"), 1)
        .expect_err("other prefix");
    assert!(
        matches!(&e, Error::Invalid { field, .. } if field == "NIC/MAC"),
        "{e:?}"
    );
    let fixed = LeaseRequest {
        network: NetworkKey::Name("fixed".into()),
        ..mac("00:16:3e:aa:bb:cc")
    };
    assert_eq!(f.take_one(1, fixed, 1).expect("fixed").ip, ip("10.0.0.4"));
}

#[test]
fn fixed_networks_hand_out_their_list_only() {
    let f = fixture();
    f.pool.create(&alice(), FIXED).expect("fixed");
    let e = f
        .take_one(1, at("fixed", "10.0.0.6"), 1)
        .expect_err("not listed");
    assert_eq!(
        e.to_string(),
        "NIC/IP: 10.0.0.6 is not one of the leases of fixed network fixed"
    );
    let four = f.take_one(1, at("fixed", "10.0.0.4"), 1).expect("listed");
    assert_eq!(four.mac.to_string(), "00:16:3e:aa:bb:cc");
    let rest: Vec<String> = f
        .take(1, &[any("fixed"), any("fixed")], 2)
        .expect("the other two")
        .iter()
        .map(|l| format!("{} {}", l.ip, l.mac))
        .collect();
    assert_eq!(
        rest,
        ["10.0.0.5 02:00:0a:00:00:05", "10.0.0.3 02:00:0a:00:00:03"]
    );
    let e = f.take_one(1, any("fixed"), 3).expect_err("full");
    assert_eq!(
        e.to_string(),
        "network fixed has no free address: all 3 are in use"
    );
}

#[test]
fn an_exhausted_network_says_so_and_changes_nothing() {
    let f = fixture();
    f.pool
        .create(
            &alice(),
            "NAME = tiny\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0/30",
        )
        .expect("two addresses");
    f.take(1, &[any("tiny"), any("tiny")], 1).expect("both");
    let e = f.take_one(1, any("tiny"), 2).expect_err("full");
    assert_eq!(
        e.to_string(),
        "network tiny has no free address: all 2 are in use"
    );
    assert!(matches!(e, Error::Conflict(_)));
    assert_eq!(f.count("leases"), 2);
}

#[test]
fn nics_of_one_vm_get_distinct_addresses_all_or_nothing() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    f.pool
        .create(
            &alice(),
            "NAME = tiny\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0/30",
        )
        .expect("tiny");
    let leases = f
        .take(1, &[any("lan"), at("lan", "192.168.0.2"), any("lan")], 1)
        .expect("three");
    let ips: Vec<String> = leases.iter().map(|l| l.ip.to_string()).collect();
    assert_eq!(ips, ["192.168.0.1", "192.168.0.2", "192.168.0.3"]);

    // The same address twice in one VM is refused like any taken address.
    let e = f
        .take(1, &[at("lan", "192.168.0.9"), at("lan", "192.168.0.9")], 2)
        .expect_err("twice");
    assert!(matches!(e, Error::Conflict(_)), "{e:?}");
    // A VM whose third NIC cannot be served takes nothing.
    let e = f
        .take(1, &[any("lan"), any("tiny"), any("tiny"), any("tiny")], 3)
        .expect_err("full");
    assert!(matches!(e, Error::Conflict(_)), "{e:?}");
    assert_eq!(f.count("leases"), 3);
    assert_eq!(f.pool.show(&alice(), "tiny").expect("tiny").leases, vec![]);
}

#[test]
fn leases_follow_the_use_rules() {
    let f = fixture();
    f.pool
        .create(&alice(), &lan("alices", ""))
        .expect("private");
    f.pool
        .create(&alice(), &lan("open", "PUBLIC = YES"))
        .expect("public");
    f.pool
        .create(&admin(), &lan("admins", ""))
        .expect("oneadmin's");
    let e = f.take_one(2, any("alices"), 1).expect_err("bob on alice's");
    assert!(
        matches!(&e, Error::Forbidden { kind: Kind::Network, action, .. } if action == "use"),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "not allowed to use network alices");
    f.take_one(2, any("open"), 1).expect("public");
    f.take_one(2, any("admins"), 1)
        .expect("oneadmin's network is everyone's (1.4 rule)");
    f.take_one(0, any("alices"), 2)
        .expect("oneadmin's VM uses any");
    let e = f.take_one(2, any("nowhere"), 3).expect_err("unknown");
    assert!(
        matches!(
            e,
            Error::NotFound {
                kind: Kind::Network,
                ..
            }
        ),
        "{e:?}"
    );
    let e = f.take_one(2, any("77"), 3).expect_err("unknown id");
    assert!(
        matches!(
            e,
            Error::NotFound {
                kind: Kind::Network,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn release_gives_back_every_lease_of_the_vm_only() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    f.pool.create(&alice(), FIXED).expect("fixed");
    f.take(1, &[any("lan"), any("fixed")], 1).expect("vm 1");
    let kept = f.take_one(1, any("lan"), 2).expect("vm 2");
    let released = f.release(1).expect("release");
    assert_eq!(released.len(), 2);
    assert!(released.iter().all(|l| l.vm_id == 1));
    assert_eq!(f.stored_leases(), vec![kept.clone()]);
    assert_eq!(
        f.pool.show(&alice(), "lan").expect("lan").leases,
        vec![kept]
    );
    assert_eq!(
        f.pool.show(&alice(), "fixed").expect("fixed").leases,
        vec![]
    );
    assert!(f.release(1).expect("again").is_empty());
}

#[test]
fn memory_changes_only_after_a_commit() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    f.fail_writes(true);
    assert!(f.pool.create(&alice(), &lan("other", "")).is_err());
    assert!(f.take_one(1, any("lan"), 1).is_err());
    f.fail_writes(false);
    assert_eq!(f.pool.list(&admin()).expect("list").len(), 1);
    assert_eq!(f.pool.show(&alice(), "lan").expect("lan").leases, vec![]);
    // The failed attempt did not move the cursor either.
    assert_eq!(
        f.take_one(1, any("lan"), 1).expect("lease").ip,
        ip("192.168.0.1")
    );
}

#[test]
fn planning_needs_the_pools_own_writer_lock() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    let other = Writer::new(Arc::new(SqliteStore::open_in_memory().expect("open")));
    let guard = other.lock().expect("lock");
    let e = f
        .pool
        .plan_leases(&guard, 1, &[any("lan")], 1)
        .expect_err("foreign guard");
    assert!(matches!(e, Error::Internal(_)), "{e:?}");
}

#[test]
fn fill_nic_writes_the_lease_into_the_nic() {
    let f = fixture();
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    let lease = f.take_one(1, any("lan"), 1).expect("lease");
    let t = Template::parse("NIC = [ NETWORK = lan, MODEL = virtio ]").expect("nic");
    let mut nic = t.vector("NIC").expect("nic").clone();
    f.pool.fill_nic(&lease, &mut nic).expect("fill");
    let pairs: Vec<(&str, &str)> = nic.iter().collect();
    assert_eq!(
        pairs,
        [
            ("NETWORK", "lan"),
            ("MODEL", "virtio"),
            ("NETWORK_ID", "0"),
            ("VNID", "0"),
            ("BRIDGE", "br0"),
            ("IP", "192.168.0.1"),
            ("MAC", "02:00:c0:a8:00:01"),
        ]
    );
}

/// spec/CORE.md §4.5: a lease is never given twice, even under concurrent
/// creates. 200 threads, each taking one lease for its own VM on a
/// 254-address network.
#[test]
fn concurrent_vms_never_share_an_address() {
    let f = Arc::new(fixture());
    f.pool.create(&alice(), &lan("lan", "")).expect("lan");
    let threads: Vec<_> = (0..200u64)
        .map(|vm| {
            let f = f.clone();
            std::thread::spawn(move || f.take_one(1, any("lan"), vm))
        })
        .collect();
    let mut ips: Vec<Ipv4Addr> = threads
        .into_iter()
        .map(|t| t.join().expect("thread").expect("lease").ip)
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 200);
    assert_eq!(f.count("leases"), 200);
    assert_eq!(f.pool.show(&admin(), "lan").expect("lan").leases.len(), 200);
}
