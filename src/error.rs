//! Errors of the library. The CLI maps each variant to an exit code.
//!
//! Paths and reasons can hold member names and text from the bundle, so each
//! message escapes control characters: printed to a terminal, an error must
//! not clear the screen or retitle the window.

use std::path::{Path, PathBuf};

use crate::report::printable;

/// An input that could not be analyzed at all. Problems with one member of a
/// bundle are not errors: they become warnings in the report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: cannot read: {source}", shown_path(path))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: not a support bundle: {}", shown_path(path), printable(reason))]
    NotABundle { path: PathBuf, reason: String },

    #[error("{}: damaged archive ({}); the file may be truncated or corrupt, so fetch it again from the case", shown_path(path), printable(reason))]
    DamagedArchive { path: PathBuf, reason: String },

    #[error("{}: password-protected archive ({}); ask for the bundle without a password, or extract it and pass the folder", shown_path(path), printable(reason))]
    Encrypted { path: PathBuf, reason: String },

    #[error(
        "{}: {limit} limit of {value} exceeded; raise it with {flag} if the bundle is genuine",
        shown_path(path)
    )]
    LimitExceeded {
        path: PathBuf,
        limit: &'static str,
        value: String,
        flag: &'static str,
    },

    // A rules file is the engineer's own, and TOML errors span several
    // lines, so this message is not escaped.
    #[error("rules file {}: {reason}", path.display())]
    Rules { path: PathBuf, reason: String },
}

fn shown_path(path: &Path) -> String {
    printable(&path.display().to_string())
}

pub type Result<T> = std::result::Result<T, Error>;
