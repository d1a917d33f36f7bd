//! Errors and warnings of the configuration loader, and the [`Location`] of an
//! attribute they point at.
//!
//! Every message starts with `FILE:line:col:` (the position of the top-level
//! attribute concerned) so that an editor can jump to it; only I/O errors,
//! which concern the whole file, are `FILE: message`.
//!
//! `ConfigError` keeps the field name `source` (the file name) that callers
//! were promised, which rules out `thiserror`: it would take a field called
//! `source` for the underlying error. `Display` and `Error` are therefore
//! written out here; they are three lines each.

use std::fmt;

/// Where an attribute was written: a file (or `<built-in cloudgate.conf>`)
/// and the 1-based line and column of the attribute's name.
///
/// `line == 0` means "the whole file" (used for I/O errors).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file name as given to [`Config::from_text`](super::Config::from_text) or
    /// [`Config::load`](super::Config::load).
    pub source: String,
    /// 1-based line of the attribute name; 0 when no position applies.
    pub line: usize,
    /// 1-based column of the attribute name; 0 when no position applies.
    pub col: usize,
}

impl Location {
    /// A position inside `source`.
    pub fn new(source: &str, line: usize, col: usize) -> Self {
        Location {
            source: source.to_owned(),
            line,
            col,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_location(f, &self.source, self.line, self.col)
    }
}

/// `FILE:line:col`, or only `FILE` when there is no position.
fn write_location(
    f: &mut fmt::Formatter<'_>,
    source: &str,
    line: usize,
    col: usize,
) -> fmt::Result {
    if line == 0 {
        write!(f, "{source}")
    } else {
        write!(f, "{source}:{line}:{col}")
    }
}

/// A configuration that cannot be used: unreadable file, template syntax
/// error, or a known attribute with a value of the wrong shape.
///
/// Displays as `FILE:line:col: message` (`FILE: message` for I/O errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name, as given by the caller.
    pub source: String,
    /// 1-based line of the offending attribute; 0 for errors about the whole file.
    pub line: usize,
    /// 1-based column of the offending attribute; 0 for errors about the whole file.
    pub col: usize,
    /// What is wrong, for a person: names the attribute and what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error at an attribute's position.
    pub fn at(location: &Location, message: impl Into<String>) -> Self {
        ConfigError {
            source: location.source.clone(),
            line: location.line,
            col: location.col,
            message: message.into(),
        }
    }

    /// An error about the whole file (it could not be read).
    pub fn file(source: &str, message: impl Into<String>) -> Self {
        ConfigError::at(&Location::new(source, 0, 0), message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_location(f, &self.source, self.line, self.col)?;
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Something in the file that was ignored but may be a mistake: an unknown
/// attribute or key, a repeated attribute, a hook that cannot fire.
///
/// Displays as `FILE:line:col: warning: message`. The drivers layer uses
/// [`ConfigWarning::at`] with a driver's [`Location`] to report driver names
/// it has no folder for in the same shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file name, as given by the caller.
    pub source: String,
    /// 1-based line of the attribute concerned.
    pub line: usize,
    /// 1-based column of the attribute concerned.
    pub col: usize,
    /// What was ignored and why, e.g. `unknown attribute FOO (ignored)`.
    pub message: String,
}

impl ConfigWarning {
    /// A warning at an attribute's position.
    pub fn at(location: &Location, message: impl Into<String>) -> Self {
        ConfigWarning {
            source: location.source.clone(),
            line: location.line,
            col: location.col,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_location(f, &self.source, self.line, self.col)?;
        write!(f, ": warning: {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_and_warning_display_with_and_without_position() {
        let at = Location::new("config/x.conf", 4, 1);
        assert_eq!(
            ConfigError::at(&at, "MAC_PREFIX is bad").to_string(),
            "config/x.conf:4:1: MAC_PREFIX is bad"
        );
        assert_eq!(
            ConfigError::file("config/x.conf", "cannot read: gone").to_string(),
            "config/x.conf: cannot read: gone"
        );
        assert_eq!(
            ConfigWarning::at(&at, "unknown attribute FOO (ignored)").to_string(),
            "config/x.conf:4:1: warning: unknown attribute FOO (ignored)"
        );
        assert_eq!(at.to_string(), "config/x.conf:4:1");
    }
}
