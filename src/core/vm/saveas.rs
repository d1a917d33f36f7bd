//! Disk save-as (OpenNebula 2.2 `onevm saveas`, spec/OCCI.md §4.2): a VM
//! disk is to be saved, when the VM shuts down, as a new image.
//!
//! [`VmPool::save_disk_as`] makes the `LOCKED` image (`core::image`) and
//! records it in the disk, `SAVE_AS = <image id>` and `SAVE_AS_SOURCE =
//! <its file>` (3.x's names), in one transaction. The epilog (`jobs.rs`)
//! moves the disk to `SAVE_AS_SOURCE` unless the VM was cancelled (a
//! hard power-off leaves a disk not worth keeping, as in 2.2 where cancel
//! saved nothing). When the VM ends, the pool asks [`disks_saved`] and
//! the image goes `READY` or `ERROR`.
//!
//! May use: `crate::template` and the rest of `crate::core`.

use super::pool::VmPool;
use super::record::Vm;
use super::state::{Event, LcmState, Reason, Recovery, State};
use crate::core::caller::Caller;
use crate::core::image::{Image, ImageChanges, ImageType, SaveAs};
use crate::core::{Error, Kind, Result};
use crate::template::Vector;

/// The DISK attribute naming the image the disk is saved as.
pub const SAVE_AS: &str = "SAVE_AS";
/// The DISK attribute with that image's file, where the epilog moves it.
pub const SAVE_AS_SOURCE: &str = "SAVE_AS_SOURCE";

/// What [`VmPool::save_disk_as`] refuses, named in its errors.
const ACTION: &str = "save a disk of";

impl VmPool {
    /// Saves disk `disk_index` (0-based, in the order of the VM's DISKs)
    /// of VM `vm_id` as a new image `name` of the VM's owner when the VM
    /// shuts down: the owner or oneadmin. Refused, with nothing changed,
    /// for a VM that is DONE, FAILED or in its epilog, a missing, swap,
    /// persistent or already saved disk, and a name the image pool would
    /// refuse. The image (`LOCKED`) and the disk's `SAVE_AS` commit
    /// together.
    pub fn save_disk_as(
        &self,
        caller: &Caller,
        vm_id: u64,
        disk_index: usize,
        name: &str,
    ) -> Result<(Vm, Image)> {
        let guard = self.writer.lock()?;
        let vm = self.get(vm_id)?;
        check_vm(caller, &vm)?;
        let disk = vm.template.vectors("DISK").nth(disk_index).ok_or_else(|| {
            Error::invalid("disk", format!("VM {vm_id} has no disk {disk_index}"))
        })?;
        check_disk(disk, vm_id, disk_index)?;
        let request = SaveAs {
            owner: vm.uid,
            name: name.to_string(),
            image_type: self.saved_type(disk)?,
            vm_id,
            disk_id: disk_index,
        };
        self.images.check_save_as(request.owner, &request.name)?;

        let mut changes = ImageChanges::default();
        let mut changed = vm.clone();
        let image = guard.commit(|tx| {
            let image = self.images.plan_save_as(tx, &mut changes, &request)?;
            let source = self.images.source(image.id);
            mark_disk(
                &mut changed,
                disk_index,
                &image,
                &source.display().to_string(),
            )?;
            tx.put_vm(&changed)?;
            changes.write(tx)?;
            Ok(image)
        })?;
        self.images.apply(changes)?;
        self.write_map()?.insert(vm_id, changed.clone());
        drop(guard);
        tracing::info!(
            vm = vm_id,
            "VM {vm_id}: disk {disk_index} to be saved as image {} ({}) by {}",
            image.id,
            image.name,
            caller.name
        );
        Ok((changed, image))
    }

    /// The new image's type: that of the image the disk was made from,
    /// else DATABLOCK for a volatile `fs` disk and OS for anything else.
    fn saved_type(&self, disk: &Vector) -> Result<ImageType> {
        let from_image = disk
            .get("IMAGE_ID")
            .and_then(|id| id.trim().parse().ok())
            .map(|id| self.images.by_id(id))
            .transpose()?
            .flatten();
        Ok(match from_image {
            Some(image) => image.image_type,
            None if is_type(disk, "fs") => ImageType::Datablock,
            None => ImageType::Os,
        })
    }
}

/// Refuses another user's VM, and a VM whose disks will not be saved any
/// more: DONE, FAILED, or in its epilog (whose moves are already decided:
/// a job never looks at the VM again).
pub(super) fn check_vm(caller: &Caller, vm: &Vm) -> Result<()> {
    if !caller.owns_or_admin(vm.uid) {
        return Err(Error::Forbidden {
            kind: Kind::Vm,
            id: vm.id.to_string(),
            action: ACTION.to_string(),
        });
    }
    let ended = matches!(vm.state, State::Done | State::Failed)
        || (vm.state, vm.lcm) == (State::Active, LcmState::Epilog);
    if ended {
        return Err(Error::InvalidState {
            kind: Kind::Vm,
            id: vm.id.to_string(),
            state: vm.short_state().to_string(),
            action: ACTION.to_string(),
        });
    }
    Ok(())
}

/// Records in disk `index` of `vm` the image it is saved as and that
/// image's file.
fn mark_disk(vm: &mut Vm, index: usize, image: &Image, source: &str) -> Result<()> {
    let id = vm.id;
    let disk = vm
        .template
        .vectors_mut("DISK")
        .nth(index)
        .ok_or_else(|| Error::Internal(format!("VM {id}: disk {index} is gone")))?;
    disk.set(SAVE_AS, image.id.to_string());
    disk.set(SAVE_AS_SOURCE, source);
    Ok(())
}

/// Refuses a disk that cannot be saved as: swap (nothing worth keeping),
/// persistent (its image is written in place already, as 3.x refused),
/// or already saved as another image.
fn check_disk(disk: &Vector, vm_id: u64, index: usize) -> Result<()> {
    let reason = if is_type(disk, "swap") {
        "is a swap disk".to_string()
    } else if disk
        .get("SAVE")
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("yes"))
    {
        "is persistent: its image is saved in place".to_string()
    } else if let Some(image) = disk.get(SAVE_AS) {
        format!("is already to be saved as image {image}")
    } else {
        return Ok(());
    };
    Err(Error::invalid(
        "disk",
        format!("disk {index} of VM {vm_id} {reason}"),
    ))
}

fn is_type(disk: &Vector, kind: &str) -> bool {
    disk.get("TYPE")
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(kind))
}

/// The save-as images of `vm`'s disks.
pub(super) fn save_as_images(vm: &Vm) -> Vec<u64> {
    vm.template
        .vectors("DISK")
        .filter_map(|d| d.get(SAVE_AS).and_then(|id| id.trim().parse().ok()))
        .collect()
}

/// Whether `event` taking `vm` to DONE means its epilog saved the disks:
/// an epilog that succeeded (or that oneadmin says did) after a shutdown,
/// not after a cancel (whose epilog does not save them).
pub(super) fn disks_saved(vm: &Vm, event: Event) -> bool {
    (vm.state, vm.lcm) == (State::Active, LcmState::Epilog)
        && matches!(
            event,
            Event::EpilogSuccess | Event::Recover(Recovery::Success)
        )
        && !cancelled(vm)
}

/// Whether the VM's current stay ended with a cancel.
pub(super) fn cancelled(vm: &Vm) -> bool {
    vm.history
        .last()
        .is_some_and(|h| h.reason == Reason::Cancel)
}
