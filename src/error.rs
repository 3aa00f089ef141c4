//! Errors of the library. The CLI maps each variant to an exit code.

use std::path::PathBuf;

/// An input that could not be analyzed at all. Problems with one member of a
/// bundle are not errors: they become warnings in the report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not a support bundle: {reason}")]
    NotABundle { path: PathBuf, reason: String },

    #[error("{path}: damaged archive ({reason}); the file may be truncated or corrupt, so fetch it again from the case")]
    DamagedArchive { path: PathBuf, reason: String },

    #[error(
        "{path}: {limit} limit of {value} exceeded; raise it with {flag} if the bundle is genuine"
    )]
    LimitExceeded {
        path: PathBuf,
        limit: &'static str,
        value: String,
        flag: &'static str,
    },

    #[error("rules file {path}: {reason}")]
    Rules { path: PathBuf, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;
