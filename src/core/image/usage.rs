//! What VMs do to images (spec/CORE.md §4.6), in the writer's style
//! (`core::writer`) so that the VM pool can make image bookkeeping part of
//! its own transaction:
//!
//! ```text
//! let guard = writer.lock()?;
//! let mut changes = ImageChanges::default();
//! let disk = images.plan_use(&mut changes, vm_owner, "ubuntu")?; // memory only
//! guard.commit(|tx| { /* the VM's rows */ changes.write(tx) })?;
//! images.apply(changes)?;                                      // after the commit
//! ```
//!
//! Use: `READY` → `USED` with one VM; `USED` and non-persistent → one VM
//! more; `USED` and persistent → `Conflict` (one VM at a time); any other
//! state → `InvalidState`. Release: one VM fewer, back to `READY` at none.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{resolve, Image, ImagePool, ImageState};
use crate::core::ports::Tx;
use crate::core::{Error, Kind, Result};

/// An image a VM is to use, with what its DISK needs (`IMAGE`, `IMAGE_ID`,
/// `SOURCE`, `TYPE`, persistence, `DEV_PREFIX` from the template).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageUse {
    /// The image as it will be once the change is applied.
    pub image: Image,
    /// Its file in the repository, absolute.
    pub source: PathBuf,
}

/// Image changes planned by a VM operation: written in the operation's
/// transaction with [`ImageChanges::write`], applied to memory after the
/// commit with [`ImagePool::apply`]. Planning several uses of one image
/// (two DISKs) sees the earlier ones.
#[derive(Debug, Default)]
pub struct ImageChanges {
    pub(super) changed: BTreeMap<u64, Image>,
}

impl ImageChanges {
    /// Whether nothing is planned.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
    }

    /// Writes every planned change in the caller's transaction.
    pub fn write(&self, tx: &mut dyn Tx) -> Result<()> {
        self.changed.values().try_for_each(|i| tx.put_image(i))
    }
}

impl ImagePool {
    /// Plans one more VM of `owner` using the image `key` (id or name, as
    /// DISK's `IMAGE_ID` or `IMAGE` gives it). Reads memory only; call it
    /// under the writer lock, then write and apply `changes`.
    pub fn plan_use(&self, changes: &mut ImageChanges, owner: u64, key: &str) -> Result<ImageUse> {
        let images = self.shared.read()?;
        let found = resolve(&images, owner, key, "use")?;
        let current = changes.changed.get(&found.id).unwrap_or(found);
        let image = use_image(current)?;
        changes.changed.insert(image.id, image.clone());
        Ok(ImageUse {
            source: self.source(image.id),
            image,
        })
    }

    /// Plans one VM fewer on image `id` (the VM reached DONE, or its
    /// creation is rolled back). An unknown image has nothing to release:
    /// images in use cannot be deleted, so only a hand-edited database
    /// gets there, and the VM must still be able to end.
    pub fn plan_release(&self, changes: &mut ImageChanges, id: u64) -> Result<()> {
        let images = self.shared.read()?;
        if let Some(current) = changes.changed.get(&id).or_else(|| images.get(&id)) {
            let image = release_image(current);
            changes.changed.insert(id, image);
        }
        Ok(())
    }

    /// Sets every image's running count from the VMs (spec/CORE.md §8.3,
    /// §8.4, the start-up recount): `users` maps an image id to the number
    /// of DISKs of VMs not DONE that use it. `RUNNING_VMS` becomes that
    /// number and `READY`/`USED` follow it; `DISABLED`, `LOCKED` and
    /// `ERROR` stay (an `ERROR` image's file is missing, which matters
    /// more). Changes are committed; answers one line per difference, for
    /// the log. Takes the writer lock.
    pub fn recount_usage(&self, users: &BTreeMap<u64, u32>) -> Result<Vec<String>> {
        let guard = self.shared.writer.lock()?;
        let mut fixed = Vec::new();
        let mut changed = Vec::new();
        {
            let images = self.shared.read()?;
            for image in images.values() {
                let count = users.get(&image.id).copied().unwrap_or(0);
                let state = match image.state {
                    ImageState::Ready | ImageState::Used if count > 0 => ImageState::Used,
                    ImageState::Ready | ImageState::Used => ImageState::Ready,
                    other => other,
                };
                if image.persistent && count > 1 {
                    fixed.push(format!(
                        "image {} is persistent but used by {count} VMs",
                        image.id
                    ));
                }
                if (image.running_vms, image.state) != (count, state) {
                    fixed.push(format!(
                        "image {}: RUNNING_VMS {} -> {count}, STATE {} -> {state}",
                        image.id, image.running_vms, image.state
                    ));
                    changed.push(Image {
                        running_vms: count,
                        state,
                        ..image.clone()
                    });
                }
            }
            for (id, count) in users {
                if !images.contains_key(id) {
                    fixed.push(format!(
                        "image {id} is used by {count} VM disk(s) but does not exist"
                    ));
                }
            }
        }
        if !changed.is_empty() {
            guard.commit(|tx| changed.iter().try_for_each(|i| tx.put_image(i)))?;
            let mut images = self.shared.write_map()?;
            for image in changed {
                images.insert(image.id, image);
            }
        }
        Ok(fixed)
    }

    /// Applies committed changes to memory. Call it after the commit that
    /// wrote them, still under the writer lock.
    pub fn apply(&self, changes: ImageChanges) -> Result<()> {
        let mut images = self.shared.write_map()?;
        for (id, image) in changes.changed {
            images.insert(id, image);
        }
        Ok(())
    }
}

/// The image once one more VM uses it. Pure.
pub fn use_image(image: &Image) -> Result<Image> {
    let mut next = image.clone();
    match image.state {
        ImageState::Ready => {
            next.state = ImageState::Used;
            next.running_vms = 1;
        }
        ImageState::Used if image.persistent => {
            return Err(Error::Conflict(format!(
                "image {} is persistent and already used by a VM",
                image.id
            )))
        }
        ImageState::Used => next.running_vms = image.running_vms.saturating_add(1),
        ImageState::Init | ImageState::Disabled | ImageState::Locked | ImageState::Error => {
            return Err(Error::InvalidState {
                kind: Kind::Image,
                id: image.id.to_string(),
                state: image.state.name().to_string(),
                action: "use".to_string(),
            })
        }
    }
    Ok(next)
}

/// The image once one VM fewer uses it; `READY` again when none does.
/// Pure.
pub fn release_image(image: &Image) -> Image {
    let mut next = image.clone();
    next.running_vms = image.running_vms.saturating_sub(1);
    if next.running_vms == 0 && image.state == ImageState::Used {
        next.state = ImageState::Ready;
    }
    next
}
