//! The repository directory: one file per image, named by its id (never by
//! anything a user typed), and `.upload-<random>` files for uploads in
//! progress. Only this file touches the directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use rand::distributions::{Alphanumeric, DistString};

use super::Image;
use crate::core::{Error, Result};

/// Names of uploads in progress start with this; anything so named at
/// start-up was left by a crash.
pub(super) const TEMP_PREFIX: &str = ".upload-";

/// The directory of image files.
pub(super) struct Repository {
    /// Absolute, so that `SOURCE` paths handed to drivers are too.
    dir: PathBuf,
}

impl Repository {
    /// Opens `dir`, creating it if needed.
    pub(super) fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| io_error("create the directory", e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| io_error("resolve the directory", e))?;
        Ok(Repository { dir })
    }

    /// The file of image `id`.
    pub(super) fn path_of(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// A new, empty temporary file for an upload. Its name is random so
    /// that concurrent uploads never share one, and `create_new` makes
    /// sure of it.
    pub(super) fn create_temp(&self) -> Result<(PathBuf, File)> {
        for _ in 0..8 {
            let name = Alphanumeric.sample_string(&mut rand::thread_rng(), 16);
            let path = self.dir.join(format!("{TEMP_PREFIX}{name}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error("create an upload file", e)),
            }
        }
        Err(Error::Internal(
            "image repository: no free upload file name after 8 tries".into(),
        ))
    }

    /// Renames a finished upload to image `id`'s file and makes the rename
    /// durable.
    pub(super) fn publish(&self, temp: &Path, id: u64) -> Result<()> {
        fs::rename(temp, self.path_of(id)).map_err(|e| io_error("rename an upload", e))?;
        self.sync_dir()
    }

    /// The size in bytes of image `id`'s file, if it is there.
    pub(super) fn size_of(&self, id: u64) -> Option<u64> {
        fs::metadata(self.path_of(id)).ok().map(|m| m.len())
    }

    /// Removes image `id`'s file; a file already gone is fine.
    pub(super) fn remove(&self, id: u64) -> std::io::Result<()> {
        match fs::remove_file(self.path_of(id)) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// The start-up sweep: deletes uploads a crash cut short and files
    /// whose image has no row (a crash between a delete's commit and its
    /// file removal). Returns the ids of images whose file is missing.
    pub(super) fn sweep(&self, images: &BTreeMap<u64, Image>) -> Result<Vec<u64>> {
        let mut present = BTreeSet::new();
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error("list the directory", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list the directory", e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let id = name.parse::<u64>().ok().filter(|id| id.to_string() == name);
            let stale = match id {
                Some(id) if images.contains_key(&id) => {
                    present.insert(id);
                    false
                }
                Some(_) => true,
                None => name.starts_with(TEMP_PREFIX),
            };
            if stale {
                match fs::remove_file(entry.path()) {
                    Ok(()) => tracing::info!("image repository: removed stale file {name}"),
                    Err(e) => tracing::warn!("image repository: cannot remove {name}: {e}"),
                }
            }
        }
        Ok(images
            .keys()
            .filter(|id| !present.contains(id))
            .copied()
            .collect())
    }

    /// Opens a front-end file to register: an absolute path to a regular
    /// file outside the repository. Messages name the problem, not the
    /// path (STYLE.md §3).
    pub(super) fn open_outside(&self, path: &Path) -> Result<File> {
        let unreadable = |e: std::io::Error| Error::invalid("path", format!("cannot be read: {e}"));
        if !path.is_absolute() {
            return Err(Error::invalid("path", "must be absolute"));
        }
        let real = path.canonicalize().map_err(unreadable)?;
        if real.starts_with(&self.dir) {
            return Err(Error::invalid("path", "is inside the image repository"));
        }
        // Checked before opening, so that a FIFO or a device is never
        // opened (a FIFO would block), and again on the open file in case
        // the path changed in between.
        let regular = |meta: fs::Metadata| {
            if meta.is_file() {
                Ok(())
            } else {
                Err(Error::invalid("path", "is not a regular file"))
            }
        };
        regular(fs::metadata(&real).map_err(unreadable)?)?;
        let file = File::open(&real).map_err(unreadable)?;
        regular(file.metadata().map_err(unreadable)?)?;
        Ok(file)
    }

    /// Makes renames and removals in the directory durable.
    fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("sync the directory", e))
    }
}

/// Repository I/O failures are internal: the log gets the detail, the user
/// a request id.
pub(super) fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::Internal(format!("image repository: cannot {what}: {e}"))
}
