//! Tags on VMs, images and key pairs (EC2's CreateTags / DescribeTags /
//! DeleteTags, spec/EC2.md §6.7): `key = value` pairs kept beside the
//! objects, one value per key and object.
//!
//! Who may do what: tagging and untagging take managing the object (its
//! owner or oneadmin); reading takes seeing it (images: also public ones).
//! Key pairs are their owner's alone, oneadmin's too (see
//! [`keypair`](super::keypair)), so only the owner sees or tags them.
//! Someone else's object answers as if it did not exist. Tags of objects
//! that are gone are never shown (ids are never reused), and leave memory
//! and the store: a VM's when the VM pool forgets it (a day after it
//! ended, as AWS forgets a terminated instance's), a deleted image's or
//! key pair's at the next start.
//!
//! May use: `crate::core`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::caller::Caller;
use super::image::ImagePool;
use super::keypair::KeyPairPool;
use super::vm::VmPool;
use super::writer::Writer;
use super::{Error, Kind, Result};

/// Most tags one object may carry (AWS's limit).
pub const MAX_TAGS: usize = 50;

/// What can carry tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Taggable {
    /// A VM, by id.
    Vm(u64),
    /// An image, by id.
    Image(u64),
    /// A key pair, by id.
    KeyPair(u64),
}

impl Taggable {
    /// The stored kind word (`vm`, `image`, `key-pair`).
    pub fn kind_name(self) -> &'static str {
        match self {
            Taggable::Vm(_) => "vm",
            Taggable::Image(_) => "image",
            Taggable::KeyPair(_) => "key-pair",
        }
    }

    /// The object's id.
    pub fn id(self) -> u64 {
        match self {
            Taggable::Vm(id) | Taggable::Image(id) | Taggable::KeyPair(id) => id,
        }
    }

    /// The inverse of [`kind_name`](Self::kind_name) and [`id`](Self::id).
    pub fn from_parts(kind: &str, id: u64) -> Option<Self> {
        match kind {
            "vm" => Some(Taggable::Vm(id)),
            "image" => Some(Taggable::Image(id)),
            "key-pair" => Some(Taggable::KeyPair(id)),
            _ => None,
        }
    }
}

/// One tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// What carries it.
    pub target: Taggable,
    /// The key (1 to 128 characters, not starting with `aws:`).
    pub key: String,
    /// The value (up to 256 characters, may be empty).
    pub value: String,
}

/// What DeleteTags removes: a key, only if its value is this one when a
/// value is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untag {
    /// The key.
    pub key: String,
    /// `Some(v)`: remove only when the value is `v`.
    pub value: Option<String>,
}

/// The tags of every object, in memory, every change durable before it is
/// visible.
pub struct TagPool {
    writer: Arc<Writer>,
    vms: Arc<VmPool>,
    images: Arc<ImagePool>,
    keypairs: Arc<KeyPairPool>,
    tags: RwLock<BTreeMap<Taggable, BTreeMap<String, String>>>,
}

impl TagPool {
    /// Loads the pool; the VM, image and key pair pools answer who may
    /// tag what.
    pub fn load(
        writer: Arc<Writer>,
        vms: Arc<VmPool>,
        images: Arc<ImagePool>,
        keypairs: Arc<KeyPairPool>,
    ) -> Result<Self> {
        let mut tags: BTreeMap<Taggable, BTreeMap<String, String>> = BTreeMap::new();
        for tag in writer.store().load_tags()? {
            tags.entry(tag.target)
                .or_default()
                .insert(tag.key, tag.value);
        }
        let pool = TagPool {
            writer,
            vms,
            images,
            keypairs,
            tags: RwLock::new(tags),
        };
        let gone: Vec<Taggable> = pool
            .read()?
            .keys()
            .copied()
            .filter(|target| pool.is_gone(*target))
            .collect();
        pool.forget(&gone)?;
        Ok(pool)
    }

    /// Whether `target` is a VM the VM pool no longer keeps, a deleted
    /// image or a deleted key pair: objects whose tags nobody can see
    /// again. A store error counts as there.
    fn is_gone(&self, target: Taggable) -> bool {
        match target {
            Taggable::Vm(id) => self.vms.kept_owner(id).is_none(),
            Taggable::Image(id) => matches!(self.images.by_id(id), Ok(None)),
            Taggable::KeyPair(id) => self.keypairs.owner(id).is_none(),
        }
    }

    /// Removes every tag of `targets` from the store and memory, without
    /// an access check: for objects that are gone, such as the VMs
    /// [`VmPool::forget_done`] dropped.
    pub fn forget(&self, targets: &[Taggable]) -> Result<()> {
        let guard = self.writer.lock()?;
        let rows: Vec<(Taggable, String)> = {
            let map = self.read()?;
            targets
                .iter()
                .filter_map(|target| map.get(target).map(|keys| (*target, keys)))
                .flat_map(|(target, keys)| keys.keys().map(move |key| (target, key.clone())))
                .collect()
        };
        if rows.is_empty() {
            return Ok(());
        }
        guard.commit(|tx| rows.iter().try_for_each(|(t, k)| tx.delete_tag(*t, k)))?;
        let mut map = self.write_map()?;
        for target in targets {
            map.remove(target);
        }
        Ok(())
    }

    /// Sets `tags` on every target, replacing values of keys already
    /// there. All targets are checked before anything is written: one
    /// refused target refuses the whole call.
    pub fn create(
        &self,
        caller: &Caller,
        targets: &[Taggable],
        tags: &[(String, String)],
    ) -> Result<()> {
        check_tags(tags)?;
        for target in targets {
            self.check_manage(caller, *target)?;
        }
        let guard = self.writer.lock()?;
        let mut rows = Vec::new();
        {
            let current = self.read()?;
            for target in targets {
                let existing = current.get(target);
                let added = tags
                    .iter()
                    .filter(|(k, _)| existing.map_or(true, |m| !m.contains_key(k)))
                    .count();
                if existing.map_or(0, BTreeMap::len) + added > MAX_TAGS {
                    return Err(Error::invalid(
                        "Tag",
                        format!("an object carries at most {MAX_TAGS} tags"),
                    ));
                }
                rows.extend(tags.iter().map(|(key, value)| Tag {
                    target: *target,
                    key: key.clone(),
                    value: value.clone(),
                }));
            }
        }
        guard.commit(|tx| rows.iter().try_for_each(|t| tx.put_tag(t)))?;
        let mut map = self.write_map()?;
        for tag in rows {
            map.entry(tag.target)
                .or_default()
                .insert(tag.key, tag.value);
        }
        Ok(())
    }

    /// Removes tags from every target: the given keys (only where the
    /// value matches, when one is given), or every tag when `keys` is
    /// empty. Removing a tag that is not there is not an error.
    pub fn delete(&self, caller: &Caller, targets: &[Taggable], keys: &[Untag]) -> Result<()> {
        for target in targets {
            self.check_manage(caller, *target)?;
        }
        let guard = self.writer.lock()?;
        let gone: Vec<(Taggable, String)> = {
            let map = self.read()?;
            targets
                .iter()
                .flat_map(|target| {
                    let current = map.get(target);
                    current
                        .into_iter()
                        .flat_map(|m| m.iter())
                        .filter(|(k, v)| {
                            keys.is_empty()
                                || keys.iter().any(|u| {
                                    u.key == **k && u.value.as_ref().map_or(true, |want| want == *v)
                                })
                        })
                        .map(|(k, _)| (*target, k.clone()))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        guard.commit(|tx| gone.iter().try_for_each(|(t, k)| tx.delete_tag(*t, k)))?;
        let mut map = self.write_map()?;
        for (target, key) in gone {
            if let Some(m) = map.get_mut(&target) {
                m.remove(&key);
                if m.is_empty() {
                    map.remove(&target);
                }
            }
        }
        Ok(())
    }

    /// The tags of one object, by key, without an access check: for
    /// fronts rendering an object the caller was already allowed to see.
    pub fn of(&self, target: Taggable) -> Result<Vec<(String, String)>> {
        Ok(self
            .read()?
            .get(&target)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    /// Every tag on objects the caller may see, by object then key.
    pub fn list(&self, caller: &Caller) -> Result<Vec<Tag>> {
        let map = self.read()?;
        let mut out = Vec::new();
        for (target, keys) in map.iter() {
            if !self.may_see(caller, *target) {
                continue;
            }
            for (key, value) in keys {
                out.push(Tag {
                    target: *target,
                    key: key.clone(),
                    value: value.clone(),
                });
            }
        }
        Ok(out)
    }

    fn may_see(&self, caller: &Caller, target: Taggable) -> bool {
        match target {
            // A VM that ended long ago is gone with its tags, as a
            // terminated instance's are on AWS.
            Taggable::Vm(id) => self
                .vms
                .kept_owner(id)
                .is_some_and(|owner| caller.owns_or_admin(owner)),
            Taggable::Image(id) => self.images.show(caller, &id.to_string()).is_ok(),
            // A deleted key pair has no owner any more: its tags stay
            // in the store, unseen.
            Taggable::KeyPair(id) => self.keypairs.owner(id) == Some(caller.uid),
        }
    }

    /// Whether the caller may tag the object: it must manage it (its owner
    /// or oneadmin). Someone else's object, public or not, is `Forbidden`
    /// (which the fronts show as not found); someone else's key pair is
    /// `NotFound`, as the key pair pool answers it. For dry runs;
    /// [`create`] and [`delete`] check it themselves.
    ///
    /// [`create`]: Self::create
    /// [`delete`]: Self::delete
    pub fn check_manage(&self, caller: &Caller, target: Taggable) -> Result<()> {
        let (kind, owner) = match target {
            Taggable::Vm(id) => (Kind::Vm, self.vms.show(caller, id)?.uid),
            Taggable::Image(id) => (
                Kind::Image,
                self.images.show(caller, &id.to_string())?.owner,
            ),
            Taggable::KeyPair(id) => {
                return match self.keypairs.owner(id) {
                    Some(owner) if owner == caller.uid => Ok(()),
                    _ => Err(Error::not_found(Kind::KeyPair, id)),
                };
            }
        };
        if caller.owns_or_admin(owner) {
            Ok(())
        } else {
            Err(Error::Forbidden {
                kind,
                id: target.id().to_string(),
                action: "tag".to_string(),
            })
        }
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, BTreeMap<Taggable, BTreeMap<String, String>>>> {
        self.tags
            .read()
            .map_err(|_| Error::Internal("tag pool lock poisoned".into()))
    }

    fn write_map(
        &self,
    ) -> Result<RwLockWriteGuard<'_, BTreeMap<Taggable, BTreeMap<String, String>>>> {
        self.tags
            .write()
            .map_err(|_| Error::Internal("tag pool lock poisoned".into()))
    }
}

/// Checks tags by AWS's rules (key 1 to 128 characters, not `aws:`;
/// value at most 256) and the count one object may carry: for callers
/// that must refuse bad tags before they create the object that would
/// carry them.
pub fn check_tags(tags: &[(String, String)]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(
            "Tag",
            format!("an object carries at most {MAX_TAGS} tags"),
        ));
    }
    tags.iter()
        .try_for_each(|(key, value)| validate(key, value))
}

/// AWS's rules: a key of 1 to 128 characters not starting with `aws:`, a
/// value of at most 256, no control characters.
fn validate(key: &str, value: &str) -> Result<()> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(Error::invalid("Tag.Key", "must be 1 to 128 characters"));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(Error::invalid("Tag.Key", "must not start with aws:"));
    }
    if value.chars().count() > 256 {
        return Err(Error::invalid(
            "Tag.Value",
            "must be at most 256 characters",
        ));
    }
    if key.chars().chain(value.chars()).any(char::is_control) {
        return Err(Error::invalid("Tag", "must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        assert!(validate("Name", "web").is_ok());
        assert!(validate("Name", "").is_ok());
        assert!(validate("", "x").is_err());
        assert!(validate("aws:x", "x").is_err());
        assert!(validate("AWS:x", "x").is_err());
        assert!(validate(&"k".repeat(129), "x").is_err());
        assert!(validate("k", &"v".repeat(257)).is_err());
        assert!(validate("k", "a\nb").is_err());
    }

    #[test]
    fn kinds_round_trip() {
        for t in [Taggable::Vm(3), Taggable::Image(4), Taggable::KeyPair(5)] {
            assert_eq!(Taggable::from_parts(t.kind_name(), t.id()), Some(t));
        }
        assert_eq!(Taggable::from_parts("host", 1), None);
    }
}
