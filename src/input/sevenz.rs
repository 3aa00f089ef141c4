//! Listing 7z archives. Solid blocks make reopening one entry costly, so
//! every entry is decompressed once, in order, and its bytes are kept only
//! when it is a member worth scanning or a nested archive.
//!
//! Blocks are decoded one at a time, so a corrupt block costs only the files
//! inside it. Encrypted blocks are skipped by name: the crate is built
//! without AES support and no password is ever asked for.

use std::io::{self, Read, Seek};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime};
use sevenz_rust2::{Archive, ArchiveEntry, BlockDecoder, Password};

use super::{archive_magic, normalize_member_path, Entry, Lister, Location, HEAD_LEN};
use crate::classify::{classify, MemberKind};
use crate::error::{Error, Result};

pub(super) fn list<R: Read + Seek>(
    lister: &mut Lister<'_>,
    mut source: R,
    prefix: &str,
    depth: u32,
) -> Result<()> {
    let password = Password::empty();
    let archive = Archive::read(&mut source, &password).map_err(|err| {
        if is_encryption_error(&err) {
            Error::Encrypted {
                path: lister.input.to_path_buf(),
                reason: "the 7z archive's file names are encrypted too".to_string(),
            }
        } else {
            Error::DamagedArchive {
                path: lister.input.to_path_buf(),
                reason: format!("cannot open 7z: {}", describe(&err)),
            }
        }
    })?;

    // Count every file before decompressing anything, so an archive with
    // too many entries fails fast.
    let mut block_files: Vec<Vec<usize>> = vec![Vec::new(); archive.blocks.len()];
    let mut skipped_blocks = vec![false; archive.blocks.len()];
    let mut empty_files = Vec::new();
    for (index, file) in archive.files.iter().enumerate() {
        if file.is_directory() {
            continue;
        }
        lister.count_entry()?;
        let block = archive
            .stream_map
            .file_block_index
            .get(index)
            .copied()
            .flatten()
            .filter(|block| *block < block_files.len());
        match block {
            Some(block) if file.has_stream() => block_files[block].push(index),
            _ => empty_files.push(index),
        }
        if archive.is_file_encrypted(index) {
            lister.skip_encrypted(&member_path(prefix, file));
            if let Some(block) = block {
                skipped_blocks[block] = true;
            }
        }
    }

    let mut kept: Vec<Entry> = Vec::new();
    for (block, files) in block_files.iter().enumerate() {
        if skipped_blocks[block] || files.is_empty() {
            continue;
        }
        let kept_before = kept.len();
        let mut block_reader = BlockReader {
            lister: &mut *lister,
            prefix,
            streams_in_block: files.len(),
            seen: 0,
            kept: &mut kept,
            limit_error: None,
        };
        let decoder = BlockDecoder::new(1, block, &archive, &password, &mut source);
        let result =
            decoder.for_each_entries(&mut |entry, stream| block_reader.entry(entry, stream));
        let BlockReader {
            seen, limit_error, ..
        } = block_reader;
        if let Some(err) = limit_error {
            return Err(err);
        }
        if let Err(err) = result {
            // The entry being read failed, or its checksum did after it was
            // read: either way its bytes are not to be trusted.
            let failed = seen.saturating_sub(1);
            let failed_path = files
                .get(failed)
                .map(|&index| member_path(prefix, &archive.files[index]));
            if kept.len() > kept_before
                && kept.last().map(|entry| &entry.path) == failed_path.as_ref()
            {
                kept.pop();
            }
            let lost: Vec<String> = files[failed.min(files.len())..]
                .iter()
                .map(|&index| member_path(prefix, &archive.files[index]))
                .collect();
            report_block_error(lister, prefix, block, &lost, &err);
        }
    }

    // Files without data are not handed to the block decoder. An empty log
    // is still worth listing: the report then shows it with no lines.
    for index in empty_files {
        let path = member_path(prefix, &archive.files[index]);
        if classify(&path, b"") != MemberKind::Other {
            kept.push(Entry {
                path,
                size: 0,
                mtime: entry_time(&archive.files[index]),
                head: Vec::new(),
                location: Location::Bytes(Arc::new(Vec::new())),
            });
        }
    }

    for entry in kept {
        lister.push(entry, depth)?;
    }
    Ok(())
}

/// The state of one block's decoding callback.
struct BlockReader<'a, 'l> {
    lister: &'a mut Lister<'l>,
    prefix: &'a str,
    /// Files with data in this block; after the last one, nothing needs to
    /// be decompressed to reach a later file.
    streams_in_block: usize,
    /// Files handed to the callback so far, the last one being read.
    seen: usize,
    kept: &'a mut Vec<Entry>,
    limit_error: Option<Error>,
}

impl BlockReader<'_, '_> {
    /// Reads one entry. Returns `Ok(false)` to abandon the rest of the block,
    /// which the decoder then neither decompresses nor checks.
    fn entry(
        &mut self,
        entry: &ArchiveEntry,
        stream: &mut dyn Read,
    ) -> std::result::Result<bool, sevenz_rust2::Error> {
        // The decoder also hands over the directories and empty files that
        // sit between a block's files. Empty files are listed separately.
        if entry.is_directory() || !entry.has_stream() {
            return Ok(true);
        }
        let path = member_path(self.prefix, entry);
        self.seen += 1;
        let last_in_block = self.seen >= self.streams_in_block;

        let mut bytes = Vec::with_capacity(HEAD_LEN);
        stream.take(HEAD_LEN as u64).read_to_end(&mut bytes)?;
        let is_archive = archive_magic(&bytes).is_some();
        let needed = is_archive || classify(&path, &bytes) != MemberKind::Other;
        if !needed {
            if last_in_block {
                // Nothing later in this block needs these bytes decoded.
                return Ok(false);
            }
            return self.drain(stream, bytes.len() as u64);
        }

        let limits = self.lister.limits;
        let cap = if is_archive {
            limits.max_nested_bytes
        } else {
            limits.max_member_bytes
        };
        // One byte past the cap shows that a member is larger than the cap,
        // and one byte past the remaining total shows that the input is.
        let room = limits.max_total_bytes.saturating_sub(self.lister.expanded);
        let want = cap.min(room).saturating_add(1);
        let already = bytes.len() as u64;
        stream
            .take(want.saturating_sub(already))
            .read_to_end(&mut bytes)?;
        if let Err(err) = self.lister.count_expanded(bytes.len() as u64) {
            self.limit_error = Some(err);
            return Ok(false);
        }

        if bytes.len() as u64 > cap {
            if is_archive {
                self.lister.warnings.push(format!(
                    "{path}: nested archive skipped: larger than the nested archive limit of {cap} bytes; raise it with --max-nested-bytes"
                ));
                return if last_in_block {
                    Ok(false)
                } else {
                    self.drain(stream, 0)
                };
            }
            // Keep the first `cap` bytes, as a ZIP member is scanned up to
            // the per-member limit; the scan then reports the cut.
            bytes.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
            let go_on = if last_in_block {
                false
            } else {
                self.drain(stream, 0)?
            };
            self.keep(entry, path, bytes);
            return Ok(go_on);
        }
        self.keep(entry, path, bytes);
        // Continuing lets the decoder verify this entry's checksum.
        Ok(true)
    }

    fn keep(&mut self, entry: &ArchiveEntry, path: String, bytes: Vec<u8>) {
        self.kept.push(Entry {
            path,
            size: bytes.len() as u64,
            mtime: entry_time(entry),
            head: bytes[..bytes.len().min(HEAD_LEN)].to_vec(),
            location: Location::Bytes(Arc::new(bytes)),
        });
    }

    /// Decompresses the rest of an entry that is not kept, counting it
    /// against the total limit, so the next entry of a solid block can be
    /// reached. `already` bytes of the entry were read and not yet counted.
    fn drain(
        &mut self,
        stream: &mut dyn Read,
        already: u64,
    ) -> std::result::Result<bool, sevenz_rust2::Error> {
        let room = self
            .lister
            .limits
            .max_total_bytes
            .saturating_sub(self.lister.expanded);
        let drained = io::copy(&mut stream.take(room.saturating_add(1)), &mut io::sink())?;
        if let Err(err) = self.lister.count_expanded(already + drained) {
            self.limit_error = Some(err);
            return Ok(false);
        }
        Ok(true)
    }
}

/// Warns about the files that a block error made unreadable: the one being
/// read and every later file of the same block.
fn report_block_error(
    lister: &mut Lister<'_>,
    prefix: &str,
    block: usize,
    lost: &[String],
    err: &sevenz_rust2::Error,
) {
    let reason = describe(err);
    let warning = match lost {
        [] => format!("{prefix}7z block {block}: unreadable: {reason}"),
        [only] => format!("{only}: unreadable 7z data: {reason}"),
        [first, rest @ ..] => format!(
            "{first}: unreadable 7z data: {reason}; the {} later files of its solid block were skipped too",
            rest.len()
        ),
    };
    lister.warnings.push(warning);
}

fn member_path(prefix: &str, entry: &ArchiveEntry) -> String {
    format!("{prefix}{}", normalize_member_path(entry.name()))
}

fn is_encryption_error(err: &sevenz_rust2::Error) -> bool {
    match err {
        sevenz_rust2::Error::PasswordRequired | sevenz_rust2::Error::MaybeBadPassword(_) => true,
        sevenz_rust2::Error::UnsupportedCompressionMethod(method) => method.contains("AES"),
        _ => false,
    }
}

/// Describes a 7z error in words; the crate's own `Display` prints its
/// `Debug` form.
fn describe(err: &sevenz_rust2::Error) -> String {
    use sevenz_rust2::Error as SevenZ;
    match err {
        SevenZ::Io(source, context) => {
            let problem = match source.kind() {
                io::ErrorKind::UnexpectedEof => "the archive ends early",
                io::ErrorKind::InvalidData | io::ErrorKind::Other => "corrupt compressed data",
                _ => "read failed",
            };
            if context.is_empty() {
                format!("{problem} ({source})")
            } else {
                format!("{problem} ({context}: {source})")
            }
        }
        SevenZ::Other(text) => text.to_string(),
        SevenZ::ChecksumVerificationFailed => "checksum mismatch, the data is corrupt".to_string(),
        SevenZ::NextHeaderCrcMismatch => "header checksum mismatch".to_string(),
        SevenZ::BadSignature(_) => "no 7z signature".to_string(),
        SevenZ::UnsupportedCompressionMethod(method) => {
            format!("unsupported compression method {method}")
        }
        SevenZ::PasswordRequired | SevenZ::MaybeBadPassword(_) => "encrypted".to_string(),
        other => format!("{other:?}"),
    }
}

fn entry_time(entry: &ArchiveEntry) -> Option<NaiveDateTime> {
    entry
        .has_last_modified_date
        .then(|| nt_time(u64::from(entry.last_modified_date())))
        .flatten()
}

/// Converts a Windows FILETIME (100 ns ticks since 1601-01-01 UTC).
fn nt_time(ticks: u64) -> Option<NaiveDateTime> {
    const SECONDS_1601_TO_1970: i64 = 11_644_473_600;
    let seconds = i64::try_from(ticks / 10_000_000).ok()? - SECONDS_1601_TO_1970;
    DateTime::from_timestamp(seconds, 0).map(|time| time.naive_utc())
}
