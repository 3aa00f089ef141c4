//! Listing 7z archives. Solid blocks make reopening one entry costly, so
//! every entry is decompressed once, in order, and its bytes are kept only
//! when it is a member worth scanning or a nested archive.

use std::io::{Read, Seek};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime};
use sevenz_rust2::{ArchiveReader, Password};

use super::{archive_magic, normalize_member_path, Entry, Lister, Location, HEAD_LEN};
use crate::classify::{classify, MemberKind};
use crate::error::{Error, Result};

pub(super) fn list<R: Read + Seek>(
    lister: &mut Lister<'_>,
    source: R,
    prefix: &str,
    depth: u32,
) -> Result<()> {
    let input = lister.input.to_path_buf();
    let damaged = |reason: String| Error::DamagedArchive {
        path: input.clone(),
        reason: if prefix.is_empty() {
            reason
        } else {
            format!("{prefix}: {reason}")
        },
    };
    let mut reader = ArchiveReader::new(source, Password::empty())
        .map_err(|err| damaged(format!("cannot open 7z: {err}")))?;

    let member_cap = lister
        .limits
        .max_member_bytes
        .min(lister.limits.max_nested_bytes);
    let mut kept: Vec<Entry> = Vec::new();
    let mut limit_error: Option<Error> = None;
    let mut listed = 0u64;
    let result = reader.for_each_entries(|entry, stream| {
        if entry.is_directory() {
            return Ok(true);
        }
        listed += 1;
        let path = format!("{prefix}{}", normalize_member_path(entry.name()));
        let mut bytes = Vec::new();
        // Read one byte past the cap so an oversized member is detected.
        stream.take(member_cap + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > member_cap {
            lister.warnings.push(format!(
                "{path}: skipped: larger than the per-member limit of {member_cap} bytes; raise it with --max-member-bytes"
            ));
            // Drain the rest so the next entry starts at its own bytes.
            std::io::copy(stream, &mut std::io::sink())?;
            return Ok(true);
        }
        let head = bytes[..bytes.len().min(HEAD_LEN)].to_vec();
        let wanted = archive_magic(&head).is_some() || classify(&path, &head) != MemberKind::Other;
        if wanted {
            kept.push(Entry {
                path,
                size: bytes.len() as u64,
                mtime: entry.has_last_modified_date.then(|| nt_time(u64::from(entry.last_modified_date()))).flatten(),
                head,
                location: Location::Bytes(Arc::new(bytes)),
            });
        }
        if listed > lister.limits.max_entries {
            limit_error = Some(Error::LimitExceeded {
                path: lister.input.to_path_buf(),
                limit: "entry count",
                value: lister.limits.max_entries.to_string(),
                flag: "--max-entries",
            });
            return Ok(false);
        }
        Ok(true)
    });
    if let Some(err) = limit_error {
        return Err(err);
    }
    if let Err(err) = result {
        if kept.is_empty() {
            return Err(damaged(format!("cannot read 7z: {err}")));
        }
        lister.warnings.push(format!(
            "{prefix}: 7z archive damaged after {} readable entries: {err}",
            kept.len()
        ));
    }
    for entry in kept {
        lister.count_entry()?;
        lister.push(entry, depth)?;
    }
    Ok(())
}

/// Converts a Windows FILETIME (100 ns ticks since 1601-01-01 UTC).
fn nt_time(ticks: u64) -> Option<NaiveDateTime> {
    const SECONDS_1601_TO_1970: i64 = 11_644_473_600;
    let seconds = i64::try_from(ticks / 10_000_000).ok()? - SECONDS_1601_TO_1970;
    DateTime::from_timestamp(seconds, 0).map(|time| time.naive_utc())
}
