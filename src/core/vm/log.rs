//! The per-VM log, OpenNebula's `var/<vid>/vm.log` (spec/DRIVERS.md §1.4,
//! §5.2, §8): where it lives and how much of it a reader gets. The lines
//! are written by the server's logging (`cli::serve::vmlog`), never by the
//! core, so that the life cycle does no file I/O for its log.
//!
//! May use: std only.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The file name inside a VM's front-end directory.
pub const FILE: &str = "vm.log";

/// How much of the end of a log [`tail`] returns: enough for a VM's whole
/// life in most cases, bounded so that one chatty VM cannot make a request
/// read megabytes.
pub const TAIL_BYTES: u64 = 256 * 1024;

/// `<var_dir>/<vid>/vm.log`, beside the VM's other front-end files
/// (context.sh, saved images).
pub fn path(var_dir: &Path, vm_id: u64) -> PathBuf {
    var_dir.join(vm_id.to_string()).join(FILE)
}

/// The last `max` bytes of the file at `path`, cut at the first line
/// boundary when the file is longer (so the first line is whole); invalid
/// UTF-8 replaced. A missing file is an empty log: the VM has logged
/// nothing yet (or its log was removed).
pub fn tail(path: &Path, max: u64) -> io::Result<String> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max);
    // One byte before the window tells whether the window starts a line.
    let from = start.saturating_sub(1);
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(len - from).read_to_end(&mut bytes)?;
    let text = if start == 0 {
        &bytes[..]
    } else {
        // Skip the partial line (or the newline that ends the one before).
        match bytes.iter().position(|b| *b == b'\n') {
            Some(i) => &bytes[i + 1..],
            None => &[][..],
        }
    };
    Ok(String::from_utf8_lossy(text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_the_vm_directory_in_var() {
        assert_eq!(
            path(Path::new("/srv/var"), 42),
            PathBuf::from("/srv/var/42/vm.log")
        );
    }

    #[test]
    fn the_tail_keeps_whole_lines_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("vm.log");
        assert_eq!(tail(&file, 100).expect("missing"), "");

        std::fs::write(&file, "first line\nsecond\nthird\n").expect("write");
        assert_eq!(
            tail(&file, 1000).expect("all"),
            "first line\nsecond\nthird\n"
        );
        // The window starts inside "second": that line is dropped whole.
        assert_eq!(tail(&file, 9).expect("cut"), "third\n");
        // The window starts exactly at "third": it is kept.
        assert_eq!(tail(&file, 6).expect("boundary"), "third\n");
        // The window starts exactly at "second".
        assert_eq!(tail(&file, 13).expect("boundary"), "second\nthird\n");
        // A window inside the last line holds no whole line.
        assert_eq!(tail(&file, 3).expect("partial"), "");
        assert_eq!(tail(&file, 0).expect("none"), "");
    }
}
