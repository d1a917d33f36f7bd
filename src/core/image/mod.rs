//! The image repository (spec/CORE.md §4.6, OpenNebula 2.x+ semantics):
//! disk images owned by users, kept as files named by their id in one
//! directory, `<data dir>/images/`, and described by rows of the store.
//!
//! Who may do what (spec/CORE.md §7.3): anyone registers images; the owner
//! and oneadmin manage them; everybody may see and use a PUBLIC image;
//! registering a file already on the front-end is oneadmin's alone (a user
//! must not make the server read files of its choice).
//!
//! Every change goes through the core's one write path ([`Writer`]): plan
//! against memory, commit to the store, then apply to memory. The file
//! system follows the database, never the other way round: an upload is
//! written to a temporary file and renamed to its id only after its row is
//! committed; a deleted image's file goes after its row. A crash in
//! between leaves a stray file, which the start-up sweep removes, or a row
//! without a file, which start-up marks `ERROR`.
//!
//! Files: `repo.rs` (the directory), `upload.rs` (registering from a
//! stream), `saveas.rs` (images made from a VM's disk), `usage.rs` (what
//! VMs do to images, planned in the writer's style for the VM pool),
//! `tests.rs`.
//!
//! May use: `crate::core`. The repository is plain `std::fs` work on one
//! directory; the fronts feed uploads through [`Upload`] and never see a
//! path.

mod repo;
mod saveas;
mod upload;
mod usage;

#[cfg(test)]
mod tests;

pub use saveas::{SaveAs, ERROR_ATTRIBUTE};
pub use upload::{check_size, size_mb, Upload};
pub use usage::{release_image, use_image, ImageChanges, ImageUse};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use repo::Repository;

use super::caller::{Caller, ADMIN_UID};
use super::ports::Pool;
use super::writer::Writer;
use super::{Error, Kind, Result};

numbered! {
    /// What an image holds (`TYPE`), with OpenNebula's numbers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ImageType: u32, from i64 {
        /// 0: a bootable disk.
        Os = 0 => "OS",
        /// 1: a read-only CD-ROM image.
        Cdrom = 1 => "CDROM",
        /// 2: a data disk.
        Datablock = 2 => "DATABLOCK",
    }
}

impl FromStr for ImageType {
    type Err = Error;

    /// A type name in any case, as OCCI's `TYPE` and the CLI's `--type`
    /// give it.
    fn from_str(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| Error::invalid("type", "must be OS, CDROM or DATABLOCK"))
    }
}

numbered! {
    /// An image's state (`STATE`), with OpenNebula's numbers (3.x adds 4 and
    /// 5; cloudgate uses them).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ImageState: u32, from i64 {
        /// 0: being created (never stored by cloudgate: an upload has no row
        /// until it is complete).
        Init = 0 => "INIT",
        /// 1: usable, no VM uses it.
        Ready = 1 => "READY",
        /// 2: used by `running_vms` VMs.
        Used = 2 => "USED",
        /// 3: kept from use by its owner or oneadmin.
        Disabled = 3 => "DISABLED",
        /// 4: being worked on (a copy in progress); not usable.
        Locked = 4 => "LOCKED",
        /// 5: its file is missing or broken; oneadmin may enable it again.
        Error = 5 => "ERROR",
    }
}

impl ImageState {
    /// OpenNebula's CLI short name (`rdy`).
    pub fn short_name(self) -> &'static str {
        match self {
            ImageState::Init => "init",
            ImageState::Ready => "rdy",
            ImageState::Used => "used",
            ImageState::Disabled => "disa",
            ImageState::Locked => "lock",
            ImageState::Error => "err",
        }
    }
}

/// One image of the repository. Its file is [`ImagePool::source`]: the
/// repository directory plus the id, derived rather than stored so that a
/// moved data dir keeps working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Unique, never reused id; also the file's name.
    pub id: u64,
    /// The owner's uid.
    pub owner: u64,
    /// Unique per owner; never all digits (a key that parses as a number
    /// is an id).
    pub name: String,
    /// `TYPE`.
    pub image_type: ImageType,
    /// `STATE`.
    pub state: ImageState,
    /// `SIZE` in MB (MiB), rounded up: OCCI's unit (OCCI.md §5.4).
    pub size_mb: u64,
    /// `PUBLIC`: everybody may see and use it.
    pub public: bool,
    /// `PERSISTENT`: one VM at a time, which writes to it.
    pub persistent: bool,
    /// How many VMs use it now (`RUNNING_VMS`).
    pub running_vms: u32,
    /// Lower-case hex SHA-256 of the file.
    pub checksum: String,
    /// Registration time, seconds since the Unix epoch (`REGTIME`).
    pub registered: u64,
    /// Other attributes, upper-case names (`DESCRIPTION`, `DEV_PREFIX`,
    /// `FSTYPE`, `URL`...).
    pub template: BTreeMap<String, String>,
}

impl Image {
    /// `DESCRIPTION`, if given (OCCI's `URL` of 1.4 goes there too).
    pub fn description(&self) -> Option<&str> {
        self.template.get("DESCRIPTION").map(String::as_str)
    }
}

/// What a caller asks for when registering an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewImage {
    /// The name (see [`Image::name`]).
    pub name: String,
    /// The type (default `OS`).
    pub image_type: ImageType,
    /// Whether everybody may use it.
    pub public: bool,
    /// Whether it is persistent.
    pub persistent: bool,
    /// Other attributes; names are upper-cased.
    pub template: BTreeMap<String, String>,
}

impl NewImage {
    /// A private, non-persistent OS image with this name.
    pub fn named(name: impl Into<String>) -> Self {
        NewImage {
            name: name.into(),
            image_type: ImageType::Os,
            public: false,
            persistent: false,
            template: BTreeMap::new(),
        }
    }
}

/// The image pool: every image in memory, every change durable before it
/// is visible, the files in one repository directory.
pub struct ImagePool {
    shared: Arc<Shared>,
}

/// What the pool and its uploads share: an [`Upload`] outlives the call
/// that began it and commits through this.
struct Shared {
    writer: Arc<Writer>,
    repo: Repository,
    images: RwLock<BTreeMap<u64, Image>>,
}

impl ImagePool {
    /// Loads the pool and opens the repository in `dir` (created if
    /// missing). Start-up sweep: temporary files of uploads cut short by a
    /// crash, and files whose row is gone, are deleted; images whose file
    /// is missing go to `ERROR`.
    pub fn load(writer: Arc<Writer>, dir: &Path) -> Result<Self> {
        let repo = Repository::open(dir)?;
        let mut images: BTreeMap<u64, Image> = writer
            .store()
            .load_images()?
            .into_iter()
            .map(|i| (i.id, i))
            .collect();
        let missing = repo.sweep(&images)?;
        // A LOCKED image waits for its VM's epilog to move its file in.
        let broken: Vec<Image> = missing
            .into_iter()
            .filter_map(|id| images.get(&id))
            .filter(|i| !matches!(i.state, ImageState::Error | ImageState::Locked))
            .map(|i| Image {
                state: ImageState::Error,
                ..i.clone()
            })
            .collect();
        if !broken.is_empty() {
            let guard = writer.lock()?;
            guard.commit(|tx| broken.iter().try_for_each(|i| tx.put_image(i)))?;
            for image in broken {
                images.insert(image.id, image);
            }
        }
        Ok(ImagePool {
            shared: Arc::new(Shared {
                writer,
                repo,
                images: RwLock::new(images),
            }),
        })
    }

    /// The file of an image: `<repository>/<id>`, absolute. What a VM's
    /// DISK gets as `SOURCE`.
    pub fn source(&self, id: u64) -> PathBuf {
        self.shared.repo.path_of(id)
    }

    /// Starts registering an image from a stream: the caller feeds the
    /// bytes with [`Upload::write`] and ends with [`Upload::commit`];
    /// dropping the [`Upload`] (an error, a client gone) leaves nothing.
    /// More than `limit` bytes fail with `TooLarge`. The name is checked
    /// now, so a clash is refused before any byte is sent (and again at
    /// commit). Does blocking file I/O.
    pub fn begin_upload(&self, caller: &Caller, new: NewImage, limit: u64) -> Result<Upload> {
        let new = validate(new)?;
        self.shared.check_name_free(caller.uid, &new.name)?;
        Upload::begin(self.shared.clone(), caller.uid, new, limit)
    }

    /// Registers a file already on the front-end, copying it into the
    /// repository (oneadmin only: a user must not read server files). The
    /// path must be absolute and name a regular file outside the
    /// repository. Blocking I/O; may take as long as the copy.
    pub fn register_path(&self, caller: &Caller, new: NewImage, path: &Path) -> Result<Image> {
        if !caller.is_admin() {
            return Err(Error::Forbidden {
                kind: Kind::Image,
                id: new.name,
                action: "register from a server path".into(),
            });
        }
        let mut file = self.shared.repo.open_outside(path)?;
        let mut upload = self.begin_upload(caller, new, u64::MAX)?;
        upload.copy_from(&mut file)?;
        upload.commit()
    }

    /// The images the caller may see: its own and the public ones; every
    /// image for oneadmin. In id order.
    pub fn list(&self, caller: &Caller) -> Result<Vec<Image>> {
        Ok(self
            .shared
            .read()?
            .values()
            .filter(|i| may_use(caller.uid, i))
            .cloned()
            .collect())
    }

    /// One image by id or name: the owner's, a public one, or any for
    /// oneadmin; someone else's private image is `Forbidden`.
    pub fn show(&self, caller: &Caller, key: &str) -> Result<Image> {
        let images = self.shared.read()?;
        resolve(&images, caller.uid, key, "show").cloned()
    }

    /// The image with this id, whoever owns it (for the fronts' rendering
    /// of objects that refer to it; not an access check).
    pub fn by_id(&self, id: u64) -> Result<Option<Image>> {
        Ok(self.shared.read()?.get(&id).cloned())
    }

    /// Deletes an image (owner or oneadmin); refused with `Conflict` while
    /// VMs use it, and with `InvalidState` while `LOCKED` (a VM's epilog
    /// is to move a disk into it). The file goes after the row is
    /// committed.
    pub fn delete(&self, caller: &Caller, key: &str) -> Result<Image> {
        let guard = self.shared.writer.lock()?;
        let image = self.shared.managed(caller, key, "delete")?;
        if image.state == ImageState::Locked {
            return Err(invalid_state(&image, image.state, "delete"));
        }
        if image.running_vms > 0 || image.state == ImageState::Used {
            return Err(in_use(&image, "deleted"));
        }
        guard.commit(|tx| tx.delete_image(image.id))?;
        self.shared.write_map()?.remove(&image.id);
        // The row is gone, so the image is; a file that cannot be removed
        // now is swept at the next start.
        if let Err(e) = self.shared.repo.remove(image.id) {
            tracing::warn!(
                "image {}: its file stays until the next start: {e}",
                image.id
            );
        }
        Ok(image)
    }

    /// Enables (`DISABLED` or `ERROR` → `READY`) or disables (`READY` →
    /// `DISABLED`) an image; owner or oneadmin. Asking for the state it is
    /// in already succeeds.
    pub fn set_enabled(&self, caller: &Caller, key: &str, enabled: bool) -> Result<Image> {
        let action = if enabled { "enable" } else { "disable" };
        self.update(caller, key, action, |image| {
            image.state = match (image.state, enabled) {
                (ImageState::Ready | ImageState::Used, true) => image.state,
                // An ERROR image may still have VMs (its file went
                // missing while they used it): USED then, as they count.
                (ImageState::Disabled | ImageState::Error, true) if image.running_vms > 0 => {
                    ImageState::Used
                }
                (ImageState::Disabled | ImageState::Error, true) => ImageState::Ready,
                (ImageState::Ready | ImageState::Disabled, false) => ImageState::Disabled,
                (ImageState::Used, false) => return Err(in_use(image, "disabled")),
                (state @ (ImageState::Init | ImageState::Locked), _)
                | (state @ ImageState::Error, false) => {
                    return Err(invalid_state(image, state, action))
                }
            };
            Ok(())
        })
    }

    /// Publishes (everybody may use it) or unpublishes an image; owner or
    /// oneadmin. VMs using it keep it.
    pub fn set_public(&self, caller: &Caller, key: &str, public: bool) -> Result<Image> {
        let action = if public { "publish" } else { "unpublish" };
        self.update(caller, key, action, |image| {
            image.public = public;
            Ok(())
        })
    }

    /// Makes an image persistent or not; owner or oneadmin; refused while
    /// VMs use it (their DISKs were set up for the other kind).
    pub fn set_persistent(&self, caller: &Caller, key: &str, persistent: bool) -> Result<Image> {
        let action = if persistent {
            "make persistent"
        } else {
            "make non-persistent"
        };
        self.update(caller, key, action, |image| {
            if image.persistent != persistent && image.running_vms > 0 {
                return Err(in_use(image, "changed"));
            }
            image.persistent = persistent;
            Ok(())
        })
    }

    /// Sets (or, with `None`, removes) one template attribute; owner or
    /// oneadmin. For the fronts' extras (EC2's registration mark, OCCI's
    /// `DESCRIPTION`).
    pub fn set_attribute(
        &self,
        caller: &Caller,
        key: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<Image> {
        let name = attribute_name(name)?;
        let value = value.map(attribute_value).transpose()?;
        self.update(caller, key, "update", |image| {
            match value {
                Some(value) => image.template.insert(name, value),
                None => image.template.remove(&name),
            };
            Ok(())
        })
    }

    fn update(
        &self,
        caller: &Caller,
        key: &str,
        action: &str,
        change: impl FnOnce(&mut Image) -> Result<()>,
    ) -> Result<Image> {
        let guard = self.shared.writer.lock()?;
        let mut image = self.shared.managed(caller, key, action)?;
        change(&mut image)?;
        guard.commit(|tx| tx.put_image(&image))?;
        self.shared.write_map()?.insert(image.id, image.clone());
        Ok(image)
    }
}

impl Shared {
    /// An image the caller may manage (owner or oneadmin).
    fn managed(&self, caller: &Caller, key: &str, action: &str) -> Result<Image> {
        let images = self.read()?;
        let image = resolve(&images, caller.uid, key, action)?;
        if caller.owns_or_admin(image.owner) {
            Ok(image.clone())
        } else {
            Err(forbidden(key, action))
        }
    }

    fn check_name_free(&self, owner: u64, name: &str) -> Result<()> {
        if self
            .read()?
            .values()
            .any(|i| i.owner == owner && i.name == name)
        {
            return Err(Error::Conflict(format!("image {name} already exists")));
        }
        Ok(())
    }

    /// The end of every registration: the row is committed, then the
    /// temporary file becomes `<repository>/<id>`, then memory shows the
    /// image. If the rename fails the row is taken back, so a failed
    /// registration leaves nothing.
    fn register(&self, owner: u64, new: NewImage, file: Uploaded, temp: &Path) -> Result<Image> {
        let guard = self.writer.lock()?;
        self.check_name_free(owner, &new.name)?;
        let image = guard.commit(|tx| {
            let image = Image {
                id: tx.next_id(Pool::Images)?,
                owner,
                name: new.name,
                image_type: new.image_type,
                state: ImageState::Ready,
                size_mb: file.size_mb,
                public: new.public,
                persistent: new.persistent,
                running_vms: 0,
                checksum: file.checksum,
                registered: now(),
                template: new.template,
            };
            tx.put_image(&image)?;
            Ok(image)
        })?;
        if let Err(e) = self.repo.publish(temp, image.id) {
            return Err(match guard.commit(|tx| tx.delete_image(image.id)) {
                Ok(()) => e,
                // The row stays without a file: the next start marks it
                // ERROR.
                Err(undo) => Error::Internal(format!("{e}; taking the row back failed: {undo}")),
            });
        }
        self.write_map()?.insert(image.id, image.clone());
        Ok(image)
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, BTreeMap<u64, Image>>> {
        self.images
            .read()
            .map_err(|_| Error::Internal("image pool lock poisoned".into()))
    }

    fn write_map(&self) -> Result<RwLockWriteGuard<'_, BTreeMap<u64, Image>>> {
        self.images
            .write()
            .map_err(|_| Error::Internal("image pool lock poisoned".into()))
    }
}

/// What an upload measured, handed to [`Shared::register`].
struct Uploaded {
    size_mb: u64,
    checksum: String,
}

/// Whether `uid` may see and use an image (spec/CORE.md §7.3 USE/INFO).
fn may_use(uid: u64, image: &Image) -> bool {
    uid == ADMIN_UID || image.owner == uid || image.public
}

/// Finds an image by id or name, as `uid` sees it. A name is looked up
/// among the caller's images first, then among the images it may use
/// (ambiguous there: `Invalid`, use the id). An image that exists but is
/// out of reach is `Forbidden`.
fn resolve<'a>(
    images: &'a BTreeMap<u64, Image>,
    uid: u64,
    key: &str,
    action: &str,
) -> Result<&'a Image> {
    if let Ok(id) = key.parse::<u64>() {
        let image = images
            .get(&id)
            .ok_or_else(|| Error::not_found(Kind::Image, key))?;
        return if may_use(uid, image) {
            Ok(image)
        } else {
            Err(forbidden(key, action))
        };
    }
    let named: Vec<&Image> = images.values().filter(|i| i.name == key).collect();
    if named.is_empty() {
        return Err(Error::not_found(Kind::Image, key));
    }
    if let Some(own) = named.iter().find(|i| i.owner == uid) {
        return Ok(own);
    }
    let usable: Vec<&Image> = named.into_iter().filter(|i| may_use(uid, i)).collect();
    match usable.as_slice() {
        [] => Err(forbidden(key, action)),
        [one] => Ok(one),
        several => Err(Error::invalid(
            "image",
            format!(
                "{} images are named {key}; give the id instead",
                several.len()
            ),
        )),
    }
}

fn forbidden(key: &str, action: &str) -> Error {
    Error::Forbidden {
        kind: Kind::Image,
        id: key.to_string(),
        action: action.to_string(),
    }
}

fn in_use(image: &Image, what: &str) -> Error {
    Error::Conflict(format!(
        "image {} is used by {} VM(s) and cannot be {what}",
        image.id, image.running_vms
    ))
}

fn invalid_state(image: &Image, state: ImageState, action: &str) -> Error {
    Error::InvalidState {
        kind: Kind::Image,
        id: image.id.to_string(),
        state: state.name().to_string(),
        action: action.to_string(),
    }
}

/// Checks a registration request and normalises its attribute names.
fn validate(mut new: NewImage) -> Result<NewImage> {
    validate_name(&new.name)?;
    new.template = std::mem::take(&mut new.template)
        .into_iter()
        .map(|(k, v)| Ok((attribute_name(&k)?, attribute_value(&v)?)))
        .collect::<Result<_>>()?;
    Ok(new)
}

/// Image names show in tables, OCCI XML and EC2 `name`: no control
/// characters, and not all digits (it would read as an id). Blanks are
/// fine ("Ubuntu 9.04 LAMP", OCCI.md §5.4).
fn validate_name(name: &str) -> Result<()> {
    let reason = if name.trim().is_empty() {
        "must not be empty"
    } else if name.len() > 128 {
        "must be at most 128 bytes"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters"
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        "must not be all digits (it would read as an image id)"
    } else {
        return Ok(());
    };
    Err(Error::invalid("name", reason))
}

/// Template attribute names are OpenNebula's: letters, digits and `_`,
/// stored upper-case.
fn attribute_name(name: &str) -> Result<String> {
    if name.is_empty()
        || name.len() > 64
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(Error::invalid(
            "attribute",
            format!("{name:?} must be 1 to 64 letters, digits or '_'"),
        ));
    }
    Ok(name.to_ascii_uppercase())
}

fn attribute_value(value: &str) -> Result<String> {
    if value.len() > 4096 || value.chars().any(char::is_control) {
        return Err(Error::invalid(
            "attribute",
            "values are at most 4096 bytes, without control characters",
        ));
    }
    Ok(value.to_string())
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
