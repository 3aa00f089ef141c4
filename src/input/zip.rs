//! Listing and reading ZIP archives, including `.7z`-named ones.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek};

use chrono::{NaiveDate, NaiveDateTime};
use zip::ZipArchive;

use super::{normalize_member_path, Backing, Entry, Lister, Location, HEAD_LEN};
use crate::error::{Error, Result};

trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

fn open_archive(backing: &Backing) -> io::Result<ZipArchive<Box<dyn ReadSeek + '_>>> {
    let reader: Box<dyn ReadSeek> = match backing {
        Backing::File(path) => Box::new(BufReader::new(File::open(path)?)),
        Backing::Memory(bytes) => Box::new(Cursor::new(bytes.as_slice())),
    };
    ZipArchive::new(reader).map_err(io::Error::other)
}

pub(super) fn list(
    lister: &mut Lister<'_>,
    backing: Backing,
    prefix: &str,
    depth: u32,
) -> Result<()> {
    let damaged = |reason: String| Error::DamagedArchive {
        path: lister.input.to_path_buf(),
        reason: if prefix.is_empty() {
            reason
        } else {
            format!("{prefix}: {reason}")
        },
    };
    let mut archive =
        open_archive(&backing).map_err(|err| damaged(format!("cannot open ZIP: {err}")))?;

    for index in 0..archive.len() {
        lister.count_entry()?;
        let (name, size, mtime, encrypted, is_dir) = match archive.by_index_raw(index) {
            Ok(file) => (
                file.name()
                    .map(|name| name.into_owned())
                    .unwrap_or_else(|_| format!("<entry {index}>")),
                file.size(),
                file.last_modified().and_then(zip_time),
                file.encrypted(),
                file.is_dir(),
            ),
            Err(err) => {
                lister.warnings.push(format!(
                    "{prefix}<entry {index}>: unreadable entry header: {err}"
                ));
                continue;
            }
        };
        if is_dir {
            continue;
        }
        let path = format!("{prefix}{}", normalize_member_path(&name));
        if encrypted {
            lister.warnings.push(format!(
                "{path}: encrypted entry skipped (no password is used)"
            ));
            continue;
        }
        let mut head = Vec::with_capacity(HEAD_LEN);
        let head_read = match archive.by_index(index) {
            Ok(file) => file
                .take(HEAD_LEN as u64)
                .read_to_end(&mut head)
                .map(|_| ()),
            Err(err) => Err(io::Error::other(err)),
        };
        if let Err(err) = head_read {
            lister
                .warnings
                .push(format!("{path}: unreadable entry: {err}"));
            continue;
        }
        let entry = Entry {
            path,
            size,
            mtime,
            head,
            location: Location::Zip {
                archive: backing.clone(),
                index,
            },
        };
        lister.push(entry, depth)?;
    }
    Ok(())
}

pub(super) fn with_entry_reader<T>(
    backing: &Backing,
    index: usize,
    visit: impl FnOnce(&mut dyn Read) -> T,
) -> io::Result<T> {
    let mut archive = open_archive(backing)?;
    let mut file = archive.by_index(index).map_err(io::Error::other)?;
    Ok(visit(&mut file))
}

fn zip_time(time: zip::DateTime) -> Option<NaiveDateTime> {
    // 1980-01-01 is the DOS epoch that tools write when no time is known.
    if time.year() <= 1980 {
        return None;
    }
    NaiveDate::from_ymd_opt(
        i32::from(time.year()),
        u32::from(time.month()),
        u32::from(time.day()),
    )?
    .and_hms_opt(
        u32::from(time.hour()),
        u32::from(time.minute()),
        u32::from(time.second()),
    )
}
