//! Images made by saving a VM's disk (OpenNebula 2.2 `onevm saveas`, with
//! 3.x's `SAVED_VM_ID` / `SAVED_DISK_ID`), in the writer's style of
//! `usage.rs` so that the VM pool makes the image and the VM's `SAVE_AS`
//! one transaction:
//!
//! - [`ImagePool::check_save_as`] refuses a bad or taken name (the rules
//!   of every registration) before anything is written;
//! - [`ImagePool::plan_save_as`] adds the `LOCKED` image's row to the
//!   caller's [`ImageChanges`], inside its transaction (the id comes from
//!   there);
//! - [`ImagePool::plan_saved`] ends it when the VM ends: `READY` with the
//!   size of the file the epilog moved into place, or `ERROR` when the VM
//!   never saved it.
//!
//! A `LOCKED` image has no file until the epilog moves the disk in, so it
//! is neither usable nor deletable meanwhile (`use_image`,
//! [`ImagePool::delete`]) and the start-up sweep does not take its missing
//! file for a broken one.

use std::collections::BTreeMap;

use super::{now, size_mb, validate_name, Image, ImageChanges, ImagePool, ImageState, ImageType};
use crate::core::ports::{Pool, Tx};
use crate::core::Result;

/// Where an image says why it is in `ERROR` (OpenNebula 3.x's
/// `TEMPLATE/ERROR`).
pub const ERROR_ATTRIBUTE: &str = "ERROR";
/// The template attribute naming the VM whose disk an image saves.
const SAVED_VM_ID: &str = "SAVED_VM_ID";
/// The template attribute naming the disk (its index in the VM).
const SAVED_DISK_ID: &str = "SAVED_DISK_ID";

/// What a disk save-as asks of the image pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveAs {
    /// The VM's owner, who owns the new image.
    pub owner: u64,
    /// The new image's name.
    pub name: String,
    /// Its type: the disk's image's, or what the disk holds.
    pub image_type: ImageType,
    /// The VM.
    pub vm_id: u64,
    /// The disk's index among the VM's DISKs.
    pub disk_id: usize,
}

impl ImagePool {
    /// Refuses a save-as name as a registration's name is refused: not a
    /// valid image name, or one the owner already uses. Call it under the
    /// writer lock, before [`plan_save_as`](Self::plan_save_as).
    pub fn check_save_as(&self, owner: u64, name: &str) -> Result<()> {
        validate_name(name)?;
        self.shared.check_name_free(owner, name)
    }

    /// Plans the `LOCKED` image of a save-as in the caller's transaction
    /// `tx` (which gives its id): private, not persistent, no file yet.
    /// Write `changes` in the same transaction and apply them after.
    pub fn plan_save_as(
        &self,
        tx: &mut dyn Tx,
        changes: &mut ImageChanges,
        request: &SaveAs,
    ) -> Result<Image> {
        let template = BTreeMap::from([
            (SAVED_VM_ID.to_string(), request.vm_id.to_string()),
            (SAVED_DISK_ID.to_string(), request.disk_id.to_string()),
        ]);
        let image = Image {
            id: tx.next_id(Pool::Images)?,
            owner: request.owner,
            name: request.name.clone(),
            image_type: request.image_type,
            state: ImageState::Locked,
            size_mb: 0,
            public: false,
            persistent: false,
            running_vms: 0,
            // Computed from a file; this one is not there yet, and
            // hashing a whole disk under the writer lock when it comes
            // would stall every writer.
            checksum: String::new(),
            registered: now(),
            template,
        };
        changes.changed.insert(image.id, image.clone());
        Ok(image)
    }

    /// Plans the end of save-as image `id` once its VM ended: `READY`
    /// with its file's size when the epilog `saved` it, otherwise `ERROR`
    /// with a message saying why. An image deleted meanwhile, or no longer
    /// waiting (`READY` already), is left alone.
    pub fn plan_saved(&self, changes: &mut ImageChanges, id: u64, saved: bool) -> Result<()> {
        let images = self.shared.read()?;
        let Some(current) = changes.changed.get(&id).or_else(|| images.get(&id)) else {
            return Ok(());
        };
        // ERROR too: a VM that failed and was resubmitted saves it after
        // all.
        if !matches!(current.state, ImageState::Locked | ImageState::Error) {
            return Ok(());
        }
        let mut image = current.clone();
        if saved {
            image.state = ImageState::Ready;
            image.size_mb = self.shared.repo.size_of(id).map_or(0, size_mb);
            image.template.remove(ERROR_ATTRIBUTE);
        } else {
            image.state = ImageState::Error;
            let vm = image.template.get(SAVED_VM_ID).cloned().unwrap_or_default();
            image.template.insert(
                ERROR_ATTRIBUTE.to_string(),
                format!("VM {vm} ended without saving its disk into this image"),
            );
        }
        changes.changed.insert(id, image);
        Ok(())
    }
}
