//! SSH key pairs, stored per user (spec/EC2.md §6.7, OpenNebula 3.8's
//! econe key pairs): generated here (RSA 2048 or Ed25519; the private key
//! is answered once and never stored) or imported from an OpenSSH public
//! key line. A VM launched with a key gets its public key in its context
//! (`SSH_PUBLIC_KEY`); the EC2 front does that.
//!
//! A user sees and acts on its own key pairs only — oneadmin too: key
//! names are per user, and a launch uses the caller's key. Names are
//! unique per user; ids are never reused. Their tags are the tag pool's
//! ([`tag`](super::tag)), which asks [`KeyPairPool::owner`] who sees them.
//!
//! Every change goes through the core's one write path ([`Writer`]).
//!
//! May use: `crate::core`. Key work is the `ssh-key` crate's.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ssh_key::private::{KeypairData, RsaKeypair};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey};

use super::caller::Caller;
use super::ports::Pool;
use super::writer::Writer;
use super::{Error, Kind, Result};

/// RSA keys are made this size, as AWS makes them.
const RSA_BITS: usize = 2048;

/// The algorithm of a key pair to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// RSA, 2048 bits (AWS's default).
    Rsa,
    /// Ed25519.
    Ed25519,
}

impl KeyType {
    /// `rsa` or `ed25519`, EC2's `KeyType` words.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        }
    }

    /// Reads EC2's `KeyType` (`rsa`, `ed25519`).
    pub fn parse(word: &str) -> Result<Self> {
        match word {
            "rsa" => Ok(KeyType::Rsa),
            "ed25519" => Ok(KeyType::Ed25519),
            other => Err(Error::invalid(
                "KeyType",
                format!("must be rsa or ed25519, not {other:?}"),
            )),
        }
    }
}

/// A stored key pair: its public half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPair {
    /// Unique, never reused id.
    pub id: u64,
    /// The owner's uid.
    pub owner: u64,
    /// Unique per owner.
    pub name: String,
    /// `rsa`, `ed25519`, or the SSH algorithm name of an imported key of
    /// another kind (`ecdsa-sha2-nistp256`).
    pub key_type: String,
    /// The OpenSSH public key line (`ssh-ed25519 AAAA… name`).
    pub public_key: String,
    /// `SHA256:<base64>`, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
}

/// The key pair pool: every key pair in memory, every change durable
/// before it is visible.
pub struct KeyPairPool {
    writer: Arc<Writer>,
    keys: RwLock<Keys>,
}

/// The key pairs by id, and their ids by (owner, name): every lookup by
/// name (RunInstances' `KeyName`, DescribeKeyPairs) and every owner's
/// list is an index lookup, not a scan of every user's key pairs.
#[derive(Default)]
struct Keys {
    by_id: BTreeMap<u64, KeyPair>,
    by_owner: BTreeMap<(u64, String), u64>,
}

impl Keys {
    fn insert(&mut self, pair: KeyPair) {
        self.by_owner
            .insert((pair.owner, pair.name.clone()), pair.id);
        self.by_id.insert(pair.id, pair);
    }

    fn remove(&mut self, id: u64) {
        if let Some(pair) = self.by_id.remove(&id) {
            self.by_owner.remove(&(pair.owner, pair.name));
        }
    }

    fn named(&self, owner: u64, name: &str) -> Option<&KeyPair> {
        self.by_owner
            .get(&(owner, name.to_string()))
            .and_then(|id| self.by_id.get(id))
    }
}

impl KeyPairPool {
    /// Loads the pool from the store.
    pub fn load(writer: Arc<Writer>) -> Result<Self> {
        let mut keys = Keys::default();
        for pair in writer.store().load_key_pairs()? {
            keys.insert(pair);
        }
        Ok(KeyPairPool {
            writer,
            keys: RwLock::new(keys),
        })
    }

    /// Generates a key pair named `name` for the caller; answers it with
    /// the private key in OpenSSH format, which is not kept. CPU work (an
    /// RSA key takes a while): call it off the async workers.
    pub fn create(
        &self,
        caller: &Caller,
        name: &str,
        key_type: KeyType,
    ) -> Result<(KeyPair, String)> {
        validate_name(name)?;
        // Fail before the key work when the name is taken.
        self.check_free(caller.uid, name)?;
        let mut rng = rand::rngs::OsRng;
        let private = match key_type {
            KeyType::Ed25519 => PrivateKey::random(&mut rng, Algorithm::Ed25519),
            KeyType::Rsa => RsaKeypair::random(&mut rng, RSA_BITS)
                .and_then(|pair| PrivateKey::new(KeypairData::from(pair), name)),
        }
        .map_err(|e| Error::Internal(format!("generating a key pair: {e}")))?;
        let mut private = private;
        private.set_comment(name);
        let text = private
            .to_openssh(LineEnding::LF)
            .map_err(|e| Error::Internal(format!("encoding a private key: {e}")))?
            .to_string();
        let public = private.public_key();
        let pair = self.insert(caller, name, key_type.name(), public)?;
        Ok((pair, text))
    }

    /// Stores a public key the caller made, given as an OpenSSH line
    /// (`ssh-rsa AAAA… comment`).
    pub fn import(&self, caller: &Caller, name: &str, public_key: &str) -> Result<KeyPair> {
        validate_name(name)?;
        let public = PublicKey::from_openssh(public_key.trim()).map_err(|e| {
            Error::invalid(
                "PublicKeyMaterial",
                format!("not an OpenSSH public key: {e}"),
            )
        })?;
        let key_type = match public.algorithm() {
            Algorithm::Rsa { .. } => "rsa".to_string(),
            Algorithm::Ed25519 => "ed25519".to_string(),
            other => other.as_str().to_string(),
        };
        self.insert(caller, name, &key_type, &public)
    }

    fn insert(
        &self,
        caller: &Caller,
        name: &str,
        key_type: &str,
        public: &PublicKey,
    ) -> Result<KeyPair> {
        let line = public
            .to_openssh()
            .map_err(|e| Error::Internal(format!("encoding a public key: {e}")))?;
        let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
        let guard = self.writer.lock()?;
        self.check_free(caller.uid, name)?;
        let pair = guard.commit(|tx| {
            let pair = KeyPair {
                id: tx.next_id(Pool::KeyPairs)?,
                owner: caller.uid,
                name: name.to_string(),
                key_type: key_type.to_string(),
                public_key: line,
                fingerprint,
                created: now(),
            };
            tx.put_key_pair(&pair)?;
            Ok(pair)
        })?;
        self.write_map()?.insert(pair.clone());
        Ok(pair)
    }

    /// The owner of key pair `id`, `None` once it is deleted: what the
    /// tag pool needs to decide who sees a key pair's tags, without a
    /// copy of the key pair.
    pub fn owner(&self, id: u64) -> Option<u64> {
        self.read().ok()?.by_id.get(&id).map(|k| k.owner)
    }

    /// The caller's key pairs, by name.
    pub fn list(&self, caller: &Caller) -> Result<Vec<KeyPair>> {
        let keys = self.read()?;
        Ok(keys
            .by_owner
            .range((caller.uid, String::new())..)
            .take_while(|((owner, _), _)| *owner == caller.uid)
            .filter_map(|(_, id)| keys.by_id.get(id).cloned())
            .collect())
    }

    /// The caller's key pair named `name` (`NotFound` otherwise, also
    /// when another user has one of that name).
    pub fn show(&self, caller: &Caller, name: &str) -> Result<KeyPair> {
        self.read()?
            .named(caller.uid, name)
            .cloned()
            .ok_or_else(|| Error::not_found(Kind::KeyPair, name))
    }

    /// Deletes the caller's key pair named `name`; deleting one that does
    /// not exist succeeds with `None` (EC2's DeleteKeyPair is idempotent).
    /// VMs launched with it keep the public key in their context.
    pub fn delete(&self, caller: &Caller, name: &str) -> Result<Option<KeyPair>> {
        let guard = self.writer.lock()?;
        let Ok(pair) = self.show(caller, name) else {
            return Ok(None);
        };
        guard.commit(|tx| tx.delete_key_pair(pair.id))?;
        self.write_map()?.remove(pair.id);
        Ok(Some(pair))
    }

    fn check_free(&self, owner: u64, name: &str) -> Result<()> {
        if self.read()?.named(owner, name).is_some() {
            return Err(Error::Conflict(format!("key pair {name} already exists")));
        }
        Ok(())
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Keys>> {
        self.keys
            .read()
            .map_err(|_| Error::Internal("key pair pool lock poisoned".into()))
    }

    fn write_map(&self) -> Result<RwLockWriteGuard<'_, Keys>> {
        self.keys
            .write()
            .map_err(|_| Error::Internal("key pair pool lock poisoned".into()))
    }
}

/// Key names as AWS takes them: 1 to 255 ASCII characters, printable.
fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::invalid(
            "KeyName",
            "must be 1 to 255 printable ASCII characters",
        ));
    }
    Ok(())
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_and_names() {
        assert_eq!(KeyType::parse("rsa").expect("rsa"), KeyType::Rsa);
        assert_eq!(KeyType::parse("ed25519").expect("ed"), KeyType::Ed25519);
        assert!(KeyType::parse("dsa").is_err());
        assert!(validate_name("my key-1").is_ok());
        for bad in ["", "tab\there", "é", &"x".repeat(256)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
