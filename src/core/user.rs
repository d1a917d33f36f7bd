//! Users (spec/CORE.md §7): `oneadmin` is uid 0; passwords are kept as
//! lower-case SHA1 hex, OpenNebula's convention, from which the OCCI Basic
//! secret and the EC2 secret key derive.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use sha1::{Digest, Sha1};

use super::caller::{Caller, ADMIN_UID};
use super::ports::Pool;
use super::writer::Writer;
use super::{Error, Kind, Result};

/// The name of the administrator created at first start.
pub const ADMIN_NAME: &str = "oneadmin";

/// A user of the cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Unique, never reused id; 0 is oneadmin.
    pub id: u64,
    /// Unique name: the OCCI user and the EC2 access key.
    pub name: String,
    /// `sha1_hex(password)`: the stored secret.
    pub password: String,
    /// A disabled user cannot authenticate.
    pub enabled: bool,
}

impl User {
    /// Whether this is oneadmin (uid 0).
    pub fn is_admin(&self) -> bool {
        self.id == ADMIN_UID
    }
}

/// Lower-case hex SHA1 of a text, OpenNebula's password digest.
pub fn sha1_hex(text: &str) -> String {
    hex::encode(Sha1::digest(text.as_bytes()))
}

/// The user pool: every user in memory for fast authentication, every
/// change written to the store before it is visible.
pub struct UserPool {
    writer: Arc<Writer>,
    users: RwLock<Users>,
}

/// The users by id, plus an index by name: every authenticated request
/// looks its user up by name, so that lookup must not scan the pool.
#[derive(Default)]
struct Users {
    by_id: BTreeMap<u64, User>,
    ids_by_name: HashMap<String, u64>,
}

impl Users {
    fn insert(&mut self, user: User) {
        if let Some(old) = self.by_id.get(&user.id) {
            self.ids_by_name.remove(&old.name);
        }
        self.ids_by_name.insert(user.name.clone(), user.id);
        self.by_id.insert(user.id, user);
    }

    fn remove(&mut self, id: u64) {
        if let Some(user) = self.by_id.remove(&id) {
            self.ids_by_name.remove(&user.name);
        }
    }

    fn named(&self, name: &str) -> Option<&User> {
        self.ids_by_name.get(name).and_then(|id| self.by_id.get(id))
    }
}

impl UserPool {
    /// Loads the pool from the store.
    pub fn load(writer: Arc<Writer>) -> Result<Self> {
        let mut users = Users::default();
        for user in writer.store().load_users()? {
            users.insert(user);
        }
        Ok(UserPool {
            writer,
            users: RwLock::new(users),
        })
    }

    /// Creates `oneadmin` (uid 0) with this password when the pool is
    /// empty, as at a first start. Returns whether it was created.
    pub fn ensure_admin(&self, password: &str) -> Result<bool> {
        let guard = self.writer.lock()?;
        if !self.read()?.by_id.is_empty() {
            return Ok(false);
        }
        validate_password(password)?;
        let user = guard.commit(|tx| {
            let id = tx.next_id(Pool::Users)?;
            if id != ADMIN_UID {
                return Err(Error::Internal(format!(
                    "the user pool is empty but its next id is {id}, not 0"
                )));
            }
            let user = User {
                id,
                name: ADMIN_NAME.to_string(),
                password: sha1_hex(password),
                enabled: true,
            };
            tx.put_user(&user)?;
            Ok(user)
        })?;
        self.write_map()?.insert(user);
        Ok(true)
    }

    /// The user with this name, for authentication (no caller yet).
    pub fn by_name(&self, name: &str) -> Result<Option<User>> {
        Ok(self.read()?.named(name).cloned())
    }

    /// The user with this id, for authentication and ownership display.
    pub fn by_id(&self, id: u64) -> Result<Option<User>> {
        Ok(self.read()?.by_id.get(&id).cloned())
    }

    /// One user by id or name. A user may see itself; oneadmin may see all.
    /// Anyone else gets `Forbidden` whether or not the user exists, so
    /// names cannot be probed.
    pub fn show(&self, caller: &Caller, key: &str) -> Result<User> {
        self.visible(caller, key, "show")
    }

    /// Every user (oneadmin only).
    pub fn list(&self, caller: &Caller) -> Result<Vec<User>> {
        require_admin(caller, "list", "users")?;
        Ok(self.read()?.by_id.values().cloned().collect())
    }

    /// Creates a user (oneadmin only).
    pub fn create(&self, caller: &Caller, name: &str, password: &str) -> Result<User> {
        require_admin(caller, "create", name)?;
        validate_name(name)?;
        validate_password(password)?;
        let guard = self.writer.lock()?;
        if self.read()?.named(name).is_some() {
            return Err(Error::Conflict(format!("user {name} already exists")));
        }
        let user = guard.commit(|tx| {
            let user = User {
                id: tx.next_id(Pool::Users)?,
                name: name.to_string(),
                password: sha1_hex(password),
                enabled: true,
            };
            tx.put_user(&user)?;
            Ok(user)
        })?;
        self.write_map()?.insert(user.clone());
        Ok(user)
    }

    /// Deletes a user (oneadmin only; oneadmin itself cannot be deleted).
    pub fn delete(&self, caller: &Caller, key: &str) -> Result<User> {
        require_admin(caller, "delete", key)?;
        let guard = self.writer.lock()?;
        let user = self.find(key)?;
        if user.is_admin() {
            return Err(Error::Conflict(format!(
                "user {} cannot be deleted",
                user.name
            )));
        }
        guard.commit(|tx| tx.delete_user(user.id))?;
        self.write_map()?.remove(user.id);
        Ok(user)
    }

    /// Changes a password: a user its own, oneadmin anyone's.
    pub fn set_password(&self, caller: &Caller, key: &str, password: &str) -> Result<User> {
        validate_password(password)?;
        let digest = sha1_hex(password);
        self.update(caller, key, "change the password of", |u| {
            u.password = digest.clone();
            Ok(())
        })
    }

    /// Enables or disables a user (oneadmin only; oneadmin stays enabled).
    pub fn set_enabled(&self, caller: &Caller, key: &str, enabled: bool) -> Result<User> {
        let action = if enabled { "enable" } else { "disable" };
        require_admin(caller, action, key)?;
        self.update(caller, key, action, |u| {
            if u.is_admin() && !enabled {
                return Err(Error::Conflict(format!(
                    "user {} cannot be disabled",
                    u.name
                )));
            }
            u.enabled = enabled;
            Ok(())
        })
    }

    fn update(
        &self,
        caller: &Caller,
        key: &str,
        action: &str,
        change: impl FnOnce(&mut User) -> Result<()>,
    ) -> Result<User> {
        let guard = self.writer.lock()?;
        let mut user = self.visible(caller, key, action)?;
        change(&mut user)?;
        guard.commit(|tx| tx.put_user(&user))?;
        self.write_map()?.insert(user.clone());
        Ok(user)
    }

    fn visible(&self, caller: &Caller, key: &str, action: &str) -> Result<User> {
        if !caller.is_admin() && key != caller.name && key != caller.uid.to_string() {
            return Err(Error::Forbidden {
                kind: Kind::User,
                id: key.to_string(),
                action: action.to_string(),
            });
        }
        self.find(key)
    }

    fn find(&self, key: &str) -> Result<User> {
        let users = self.read()?;
        let found = match key.parse::<u64>() {
            Ok(id) => users.by_id.get(&id),
            Err(_) => users.named(key),
        };
        found
            .cloned()
            .ok_or_else(|| Error::not_found(Kind::User, key))
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Users>> {
        self.users
            .read()
            .map_err(|_| Error::Internal("user pool lock poisoned".into()))
    }

    fn write_map(&self) -> Result<std::sync::RwLockWriteGuard<'_, Users>> {
        self.users
            .write()
            .map_err(|_| Error::Internal("user pool lock poisoned".into()))
    }
}

fn require_admin(caller: &Caller, action: &str, what: &str) -> Result<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden {
            kind: Kind::User,
            id: what.to_string(),
            action: action.to_string(),
        })
    }
}

/// User names become OCCI Basic user names and EC2 access keys: no `:`
/// (Basic splits on it), no blanks or control characters, and not all
/// digits (a key that parses as a number is taken as an id).
fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.len() > 128 {
        "must be at most 128 bytes"
    } else if name
        .chars()
        .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    {
        "must not contain ':', blanks or control characters"
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        "must not be all digits (it would read as a user id)"
    } else {
        return Ok(());
    };
    Err(Error::invalid("name", reason))
}

fn validate_password(password: &str) -> Result<()> {
    if password.is_empty() {
        Err(Error::invalid("password", "must not be empty"))
    } else if password.chars().any(|c| c.is_control()) {
        Err(Error::invalid(
            "password",
            "must not contain control characters",
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_hex_matches_opennebula_example() {
        // spec/OCCI.md §2.1: alice:opennebula is sent as this digest.
        assert_eq!(
            sha1_hex("opennebula"),
            "4478db59d30855454ece114e8ccfa5563d21c9bd"
        );
    }

    #[test]
    fn names_that_would_break_auth_or_lookup_are_refused() {
        for bad in ["", "a:b", "a b", "123", "tab\tbed"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["alice", "bob.smith@example.org", "user_1", "1st"] {
            assert!(validate_name(good).is_ok(), "{good:?} refused");
        }
    }
}
