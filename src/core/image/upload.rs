//! Registering an image from a stream (STYLE.md §1.12): the bytes go to a
//! temporary file in the repository as they arrive, measured and hashed on
//! the way, never held in memory; the file becomes the image only after
//! the image's row is committed. An upload that is dropped before
//! [`Upload::commit`] succeeds — an error, a size over the limit, a client
//! gone — deletes its file and leaves no row.

use std::fs;
use std::io::{BufWriter, ErrorKind, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::repo::io_error;
use super::{Image, NewImage, Shared, Uploaded};
use crate::core::{Error, Result};

/// One MB as OCCI counts `SIZE` (OCCI.md §5.4): 2^20 bytes.
const MB: u64 = 1 << 20;

/// `SIZE` in MB of a file of `bytes`, rounded up (a 1-byte image is 1 MB).
pub fn size_mb(bytes: u64) -> u64 {
    bytes.div_ceil(MB)
}

/// `TooLarge` when `bytes` exceed `limit`. Fronts call it with a declared
/// length to refuse before reading a byte; [`Upload::write`] calls it as
/// bytes come.
pub fn check_size(bytes: u64, limit: u64) -> Result<()> {
    if bytes > limit {
        Err(Error::TooLarge {
            what: "image".into(),
            limit,
        })
    } else {
        Ok(())
    }
}

/// An upload in progress, from [`super::ImagePool::begin_upload`]. Its
/// methods do blocking file I/O: async callers run them on a blocking
/// thread. It is `Send`, so it can move to one.
pub struct Upload {
    shared: Arc<Shared>,
    owner: u64,
    new: NewImage,
    temp: PathBuf,
    /// `None` once the upload has ended, by commit or by failure.
    file: Option<BufWriter<fs::File>>,
    hasher: Sha256,
    written: u64,
    limit: u64,
    committed: bool,
}

impl Upload {
    pub(super) fn begin(
        shared: Arc<Shared>,
        owner: u64,
        new: NewImage,
        limit: u64,
    ) -> Result<Self> {
        let (temp, file) = shared.repo.create_temp()?;
        Ok(Upload {
            shared,
            owner,
            new,
            temp,
            // Large writes pass straight through; small chunks (multipart
            // parsers hand out a few KB) are gathered.
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
            hasher: Sha256::new(),
            written: 0,
            limit,
            committed: false,
        })
    }

    /// Appends a chunk. Past the limit it fails with `TooLarge`, and any
    /// failure ends the upload at once: its file is deleted, later writes
    /// fail, and the caller just drops it.
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let result = self.try_write(chunk);
        if result.is_err() {
            self.discard();
        }
        result
    }

    fn try_write(&mut self, chunk: &[u8]) -> Result<()> {
        let total = self.written.saturating_add(chunk.len() as u64);
        check_size(total, self.limit)?;
        let file = self.file.as_mut().ok_or_else(ended)?;
        file.write_all(chunk)
            .map_err(|e| io_error("write an upload", e))?;
        self.hasher.update(chunk);
        self.written = total;
        Ok(())
    }

    /// Writes everything `reader` gives, in 64 KB pieces. Returns the
    /// bytes copied.
    pub fn copy_from(&mut self, reader: &mut dyn Read) -> Result<u64> {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut copied = 0;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => return Ok(copied),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.discard();
                    return Err(Error::invalid("file", format!("cannot be read: {e}")));
                }
            };
            self.write(&buffer[..n])?;
            copied += n as u64;
        }
    }

    /// The bytes received so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Ends the upload: the file is flushed and synced, the image's row
    /// committed, and the file renamed to the image's id. Fails with
    /// `Conflict` if the name was taken meanwhile; whatever fails, nothing
    /// is left behind.
    pub fn commit(mut self) -> Result<Image> {
        let file = self.file.take().ok_or_else(ended)?;
        let file = file
            .into_inner()
            .map_err(|e| io_error("flush an upload", e.into_error()))?;
        // Durable before the row says the image exists.
        file.sync_all().map_err(|e| io_error("sync an upload", e))?;
        drop(file);
        let uploaded = Uploaded {
            size_mb: size_mb(self.written),
            checksum: hex::encode(std::mem::take(&mut self.hasher).finalize()),
        };
        let image = self
            .shared
            .register(self.owner, self.new.clone(), uploaded, &self.temp)?;
        self.committed = true;
        Ok(image)
    }

    /// Ends a failed upload now rather than at drop.
    fn discard(&mut self) {
        if self.file.take().is_some() {
            remove_temp(&self.temp);
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // After a commit the file has its id's name; before it, whatever
        // happened, the temporary goes.
        if !self.committed {
            remove_temp(&self.temp);
        }
    }
}

fn remove_temp(path: &std::path::Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != ErrorKind::NotFound {
            // The start-up sweep gets it.
            tracing::warn!("image repository: cannot remove an aborted upload: {e}");
        }
    }
}

fn ended() -> Error {
    Error::Internal("write to an upload that has ended".into())
}
