//! Listing and reading ZIP archives, including `.7z`-named ones.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, NaiveDateTime};
use zip::ZipArchive;

use super::{normalize_member_path, Backing, Entry, Lister, Location, HEAD_LEN};
use crate::error::{Error, Result};

/// A parsed ZIP archive. Clones share the parsed central directory and the
/// underlying bytes, so reading one member costs no second parse of the
/// central directory, which for an archive of many entries would make
/// reading all of them quadratic.
pub(super) type SharedArchive = ZipArchive<SharedReader>;

/// Bytes read ahead from the archive file per read call.
const READ_AHEAD: usize = 64 * 1024;

/// A reader over an archive file or in-memory archive that clones cheaply:
/// clones share the file handle or the bytes and keep their own position.
/// File reads go through a small read-ahead buffer of their own.
#[derive(Debug)]
pub(super) struct SharedReader {
    source: SharedSource,
    len: u64,
    position: u64,
    buffer: Vec<u8>,
    buffer_start: u64,
}

#[derive(Debug, Clone)]
enum SharedSource {
    File(Arc<Mutex<File>>),
    Memory(Arc<Vec<u8>>),
}

impl SharedReader {
    fn new(backing: &Backing) -> io::Result<SharedReader> {
        let (source, len) = match backing {
            Backing::File(path) => {
                let file = File::open(path)?;
                let len = file.metadata()?.len();
                (SharedSource::File(Arc::new(Mutex::new(file))), len)
            }
            Backing::Memory(bytes) => (SharedSource::Memory(bytes.clone()), bytes.len() as u64),
        };
        Ok(SharedReader {
            source,
            len,
            position: 0,
            buffer: Vec::new(),
            buffer_start: 0,
        })
    }

    /// Fills the read-ahead buffer from the file at the current position.
    fn refill(&mut self, file: &Mutex<File>) -> io::Result<()> {
        let mut file = file
            .lock()
            .map_err(|_| io::Error::other("archive file handle is unusable after a panic"))?;
        file.seek(SeekFrom::Start(self.position))?;
        self.buffer.resize(READ_AHEAD, 0);
        let read = file.read(&mut self.buffer)?;
        self.buffer.truncate(read);
        self.buffer_start = self.position;
        Ok(())
    }
}

impl Clone for SharedReader {
    /// Clones start with an empty read-ahead buffer, so the many entries that
    /// each hold a clone do not each copy one.
    fn clone(&self) -> Self {
        SharedReader {
            source: self.source.clone(),
            len: self.len,
            position: self.position,
            buffer: Vec::new(),
            buffer_start: 0,
        }
    }
}

impl Read for SharedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.position >= self.len {
            return Ok(0);
        }
        let read = match &self.source {
            SharedSource::Memory(bytes) => {
                // position < len == bytes.len(), so the cast cannot truncate.
                let start = self.position as usize;
                let count = out.len().min(bytes.len() - start);
                out[..count].copy_from_slice(&bytes[start..start + count]);
                count
            }
            SharedSource::File(file) => {
                let buffered = self.position >= self.buffer_start
                    && self.position < self.buffer_start + self.buffer.len() as u64;
                if !buffered {
                    let file = file.clone();
                    self.refill(&file)?;
                }
                let offset = (self.position - self.buffer_start) as usize;
                let available = &self.buffer[offset.min(self.buffer.len())..];
                let count = out.len().min(available.len());
                out[..count].copy_from_slice(&available[..count]);
                count
            }
        };
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for SharedReader {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        let position = match target {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = position.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the archive",
            )
        })?;
        Ok(self.position)
    }
}

fn open_archive(backing: &Backing) -> io::Result<SharedArchive> {
    ZipArchive::new(SharedReader::new(backing)?).map_err(io::Error::other)
}

pub(super) fn list(
    lister: &mut Lister<'_>,
    backing: Backing,
    prefix: &str,
    depth: u32,
) -> Result<()> {
    let mut archive = open_archive(&backing).map_err(|err| Error::DamagedArchive {
        path: lister.input.to_path_buf(),
        reason: format!("cannot open ZIP: {err}"),
    })?;
    if archive.has_duplicate_names() {
        let archive_name = if prefix.is_empty() {
            "the archive"
        } else {
            prefix
        };
        lister.warnings.push(format!(
            "{archive_name}: several entries share a name; only one entry of each name is read"
        ));
    }

    for index in 0..archive.len() {
        lister.count_entry()?;
        // The central directory alone gives the name and flags, so an entry
        // whose local header is damaged is still named in the warning.
        let (name, size, mtime, encrypted, is_dir) = match archive.by_index_data(index) {
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
            lister.skip_encrypted(&path);
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
                archive: archive.clone(),
                index,
            },
        };
        lister.push(entry, depth)?;
    }
    Ok(())
}

pub(super) fn with_entry_reader<T>(
    archive: &SharedArchive,
    index: usize,
    visit: impl FnOnce(&mut dyn Read) -> T,
) -> io::Result<T> {
    let mut archive = archive.clone();
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
