//! Opening an input path in memory: a ZIP (whatever its extension), a 7z
//! archive, an unpacked bundle directory or one loose file, with archives
//! nested inside any of them. Nothing is extracted to disk.

mod sevenz;
mod zip;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Caps on what one input may expand to. The defaults fit real bundles,
/// whose logs can reach several GB, while stopping decompression bombs.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Uncompressed bytes read from one input, all members together.
    pub max_total_bytes: u64,
    /// Uncompressed bytes read from one member.
    pub max_member_bytes: u64,
    /// Entries listed in one input, nested archives included.
    pub max_entries: u64,
    /// Archives inside archives: 1 means a bundle inside a case zip.
    pub max_depth: u32,
    /// Bytes of one nested archive, which is held in memory to be opened.
    pub max_nested_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const GIB: u64 = 1024 * 1024 * 1024;
        Limits {
            max_total_bytes: 16 * GIB,
            max_member_bytes: 4 * GIB,
            max_entries: 200_000,
            max_depth: 3,
            max_nested_bytes: 2 * GIB,
        }
    }
}

/// The container an input path turned out to be, from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    Zip,
    #[serde(rename = "7z")]
    SevenZip,
    Directory,
    File,
}

/// Returns the archive format that `head` starts with, if any.
pub fn archive_magic(head: &[u8]) -> Option<InputFormat> {
    if head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || head.starts_with(b"PK\x07\x08")
    {
        Some(InputFormat::Zip)
    } else if head.starts_with(b"7z\xBC\xAF\x27\x1C") {
        Some(InputFormat::SevenZip)
    } else {
        None
    }
}

/// Where an entry's bytes live.
#[derive(Debug, Clone)]
enum Location {
    /// A ZIP entry, read by index each time it is opened.
    Zip {
        archive: zip::SharedArchive,
        index: usize,
    },
    /// Bytes already in memory (7z entries, which solid blocks make costly
    /// to reopen one by one).
    Bytes(Arc<Vec<u8>>),
    /// A file on disk inside a bundle directory, or the loose input file.
    File(PathBuf),
}

/// The bytes behind a ZIP archive: the input file itself, or a nested
/// archive held in memory.
#[derive(Debug, Clone)]
pub(crate) enum Backing {
    File(PathBuf),
    Memory(Arc<Vec<u8>>),
}

/// One file of a bundle.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The path inside the bundle with `/` separators; members of nested
    /// archives read `outer.zip!/inner/path`.
    pub path: String,
    /// The declared uncompressed size, which a damaged archive may misstate.
    pub size: u64,
    /// The modification time the archive recorded, if any. ZIP stores local
    /// time, 7z stores UTC; both are taken as they are.
    pub mtime: Option<NaiveDateTime>,
    /// The first bytes, for format detection.
    pub head: Vec<u8>,
    location: Location,
}

/// The entries of one input and what went wrong while listing them.
#[derive(Debug)]
pub struct Listing {
    pub input: PathBuf,
    pub format: InputFormat,
    pub entries: Vec<Entry>,
    pub warnings: Vec<String>,
}

/// Number of leading bytes kept per entry for format detection.
const HEAD_LEN: usize = 4096;

/// Context shared while listing one input and its nested archives.
struct Lister<'a> {
    input: &'a Path,
    limits: &'a Limits,
    entries: Vec<Entry>,
    warnings: Vec<String>,
    listed: u64,
    /// Entries skipped because they are encrypted.
    encrypted: u64,
    /// Uncompressed bytes produced while listing: nested archives read into
    /// memory and 7z members decompressed. Scanning members later counts
    /// separately against the same limit.
    expanded: u64,
}

impl Lister<'_> {
    /// Counts bytes decompressed while listing against the total limit, so
    /// many nested archives cannot fill the memory one by one.
    fn count_expanded(&mut self, bytes: u64) -> Result<()> {
        self.expanded = self.expanded.saturating_add(bytes);
        if self.expanded > self.limits.max_total_bytes {
            return Err(Error::LimitExceeded {
                path: self.input.to_path_buf(),
                limit: "total uncompressed size",
                value: self.limits.max_total_bytes.to_string(),
                flag: "--max-total-bytes",
            });
        }
        Ok(())
    }

    fn skip_encrypted(&mut self, path: &str) {
        self.encrypted += 1;
        self.warnings.push(format!(
            "{path}: encrypted entry skipped (no password is used)"
        ));
    }

    fn count_entry(&mut self) -> Result<()> {
        self.listed += 1;
        if self.listed > self.limits.max_entries {
            return Err(Error::LimitExceeded {
                path: self.input.to_path_buf(),
                limit: "entry count",
                value: self.limits.max_entries.to_string(),
                flag: "--max-entries",
            });
        }
        Ok(())
    }

    /// Adds an entry, or opens it as a nested archive when its bytes say so.
    fn push(&mut self, entry: Entry, depth: u32) -> Result<()> {
        let Some(format) = archive_magic(&entry.head) else {
            self.entries.push(entry);
            return Ok(());
        };
        if depth >= self.limits.max_depth {
            self.warnings.push(format!(
                "{}: nested archive skipped: nesting depth limit of {} reached; raise it with --max-depth",
                entry.path, self.limits.max_depth
            ));
            return Ok(());
        }
        if entry.size > self.limits.max_nested_bytes {
            self.warnings.push(format!(
                "{}: nested archive skipped: {} bytes exceeds the nested archive limit of {}; raise it with --max-nested-bytes",
                entry.path, entry.size, self.limits.max_nested_bytes
            ));
            return Ok(());
        }
        let bytes = match &entry.location {
            // A 7z member is in memory already and was counted when it was
            // decompressed.
            Location::Bytes(bytes) => bytes.clone(),
            _ => match read_entry_bytes(&entry, self.limits.max_nested_bytes) {
                Ok(bytes) => {
                    self.count_expanded(bytes.len() as u64)?;
                    Arc::new(bytes)
                }
                Err(err) => {
                    self.warnings
                        .push(format!("{}: nested archive unreadable: {err}", entry.path));
                    return Ok(());
                }
            },
        };
        let prefix = format!("{}!/", entry.path);
        let result = match format {
            InputFormat::Zip => zip::list(self, Backing::Memory(bytes), &prefix, depth + 1),
            _ => sevenz::list(self, io::Cursor::new(bytes.as_slice()), &prefix, depth + 1),
        };
        // The outer input is fine, so only the reason is kept: the error's
        // full text names the outer file and advises fetching it again.
        let reason = match result {
            Ok(()) => return Ok(()),
            Err(err @ Error::LimitExceeded { .. }) => return Err(err),
            Err(Error::DamagedArchive { reason, .. }) => format!("damaged archive: {reason}"),
            Err(Error::Encrypted { reason, .. }) => format!("password-protected: {reason}"),
            Err(err) => err.to_string(),
        };
        self.warnings
            .push(format!("{}: nested archive skipped: {reason}", entry.path));
        Ok(())
    }
}

/// Lists the entries of an input path.
pub fn list(path: &Path, limits: &Limits) -> Result<Listing> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    // A FIFO or device would block or never end; only files and folders
    // are bundles.
    if !metadata.is_file() && !metadata.is_dir() {
        return Err(Error::NotABundle {
            path: path.to_path_buf(),
            reason: "not a regular file or directory".to_string(),
        });
    }
    let mut lister = Lister {
        input: path,
        limits,
        entries: Vec::new(),
        warnings: Vec::new(),
        listed: 0,
        encrypted: 0,
        expanded: 0,
    };

    let format = if metadata.is_dir() {
        list_directory(&mut lister, path)?;
        InputFormat::Directory
    } else {
        let mut head = Vec::with_capacity(HEAD_LEN);
        File::open(path)
            .and_then(|file| file.take(HEAD_LEN as u64).read_to_end(&mut head))
            .map_err(io_error)?;
        match archive_magic(&head) {
            Some(InputFormat::Zip) => {
                zip::list(&mut lister, Backing::File(path.to_path_buf()), "", 0)?;
                InputFormat::Zip
            }
            Some(_) => {
                let file = File::open(path).map_err(io_error)?;
                sevenz::list(&mut lister, io::BufReader::new(file), "", 0)?;
                InputFormat::SevenZip
            }
            None => {
                if let Some(reason) = not_an_archive(path, &head, metadata.len()) {
                    return Err(Error::NotABundle {
                        path: path.to_path_buf(),
                        reason,
                    });
                }
                let name = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |name| name.to_string_lossy().into_owned(),
                );
                lister.count_entry()?;
                lister.entries.push(Entry {
                    path: name,
                    size: metadata.len(),
                    mtime: None,
                    head,
                    location: Location::File(path.to_path_buf()),
                });
                InputFormat::File
            }
        }
    };

    if lister.entries.is_empty() && !lister.warnings.is_empty() {
        return Err(nothing_readable(path, lister));
    }
    Ok(Listing {
        input: path.to_path_buf(),
        format,
        entries: lister.entries,
        warnings: lister.warnings,
    })
}

/// Explains an input whose every member was skipped, from the warnings
/// that give the reasons.
fn nothing_readable(path: &Path, lister: Lister<'_>) -> Error {
    const SHOWN: usize = 5;
    let mut reasons = lister.warnings[..lister.warnings.len().min(SHOWN)].join("; ");
    if lister.warnings.len() > SHOWN {
        reasons.push_str(&format!("; and {} more", lister.warnings.len() - SHOWN));
    }
    if lister.encrypted as usize == lister.warnings.len() {
        return Error::Encrypted {
            path: path.to_path_buf(),
            reason: format!("all {} files are encrypted", lister.encrypted),
        };
    }
    Error::NotABundle {
        path: path.to_path_buf(),
        reason: format!("no member could be read: {reasons}"),
    }
}

/// Explains why a loose file cannot be a bundle when its first bytes show
/// another archive format, or when its name ends in `.zip` or `.7z` but its
/// bytes are no archive. Returns `None` for anything else, which is then
/// read as a loose log or transcript.
fn not_an_archive(path: &Path, head: &[u8], size: u64) -> Option<String> {
    if let Some(kind) = other_archive_kind(head) {
        return Some(format!(
            "it is {kind}, which this tool cannot open; extract it and pass the folder, or repack it as ZIP or 7z"
        ));
    }
    let extension = path.extension()?.to_string_lossy().to_ascii_lowercase();
    if extension != "zip" && extension != "7z" {
        return None;
    }
    if size == 0 {
        return Some(
            "the file is empty (0 bytes); the download or copy failed, so fetch it again"
                .to_string(),
        );
    }
    let text_start = String::from_utf8_lossy(&head[..head.len().min(512)]).to_ascii_lowercase();
    let text_start = text_start.trim_start_matches('\u{feff}').trim_start();
    if text_start.starts_with("<!doctype html") || text_start.starts_with("<html") {
        return Some(format!(
            "named .{extension}, but it is an HTML page, not an archive; the download probably returned an error or sign-in page, so fetch the bundle again"
        ));
    }
    let first_bytes: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "named .{extension}, but it is neither a ZIP nor a 7z archive (it starts with bytes {})",
        first_bytes.join(" ")
    ))
}

/// Names an archive or compression format that the tool does not open.
fn other_archive_kind(head: &[u8]) -> Option<&'static str> {
    const KINDS: &[(&[u8], &str)] = &[
        (b"Rar!\x1a\x07", "a RAR archive"),
        (b"\x1f\x8b", "a gzip file"),
        (b"BZh", "a bzip2 file"),
        (b"\xfd7zXZ\x00", "an xz file"),
        (b"\x28\xb5\x2f\xfd", "a Zstandard file"),
        (b"MSCF\x00\x00\x00\x00", "a Windows cabinet (.cab) file"),
    ];
    if let Some((_, kind)) = KINDS.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(kind);
    }
    // POSIX tar: "ustar" at offset 257 of the first header block.
    (head.get(257..262) == Some(b"ustar".as_slice())).then_some("a tar archive")
}

fn list_directory(lister: &mut Lister<'_>, root: &Path) -> Result<()> {
    for item in walkdir::WalkDir::new(root).sort_by_file_name() {
        let item = match item {
            Ok(item) => item,
            Err(err) => {
                lister
                    .warnings
                    .push(format!("{}: cannot list: {err}", root.display()));
                continue;
            }
        };
        if !item.file_type().is_file() {
            continue;
        }
        lister.count_entry()?;
        let relative = item.path().strip_prefix(root).unwrap_or(item.path());
        let member_path = normalize_member_path(&relative.to_string_lossy());
        let mut head = Vec::with_capacity(HEAD_LEN);
        let read = File::open(item.path())
            .and_then(|file| file.take(HEAD_LEN as u64).read_to_end(&mut head));
        if let Err(err) = read {
            lister
                .warnings
                .push(format!("{member_path}: cannot read: {err}"));
            continue;
        }
        let size = item.metadata().map(|meta| meta.len()).unwrap_or(0);
        let entry = Entry {
            path: member_path,
            size,
            mtime: None,
            head,
            location: Location::File(item.path().to_path_buf()),
        };
        lister.push(entry, 0)?;
    }
    Ok(())
}

/// Turns an archive member name into a bundle path: `\` becomes `/`, and a
/// drive letter, leading separators and `.` segments are dropped. `..` stays
/// visible, because nothing is written to disk and the name is evidence.
pub fn normalize_member_path(name: &str) -> String {
    let unified = name.replace('\\', "/");
    let without_drive = match unified.as_bytes() {
        [letter, b':', ..] if letter.is_ascii_alphabetic() => &unified[2..],
        _ => unified.as_str(),
    };
    without_drive
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Opens an entry and hands a reader of its uncompressed bytes to `visit`.
pub fn with_reader<T>(entry: &Entry, visit: impl FnOnce(&mut dyn Read) -> T) -> io::Result<T> {
    match &entry.location {
        Location::Zip { archive, index } => zip::with_entry_reader(archive, *index, visit),
        Location::Bytes(bytes) => Ok(visit(&mut bytes.as_slice())),
        Location::File(path) => {
            let mut file = io::BufReader::new(File::open(path)?);
            Ok(visit(&mut file))
        }
    }
}

/// Returns the modification time on disk, in the analyzing machine's local
/// time, of an entry that is a plain file (a directory bundle's member or a
/// loose input file).
pub fn file_modified(entry: &Entry) -> Option<NaiveDateTime> {
    let Location::File(path) = &entry.location else {
        return None;
    };
    let modified = std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()?;
    Some(chrono::DateTime::<chrono::Local>::from(modified).naive_local())
}

/// Reads a whole entry into memory, failing when it exceeds `cap` bytes.
pub fn read_entry_bytes(entry: &Entry, cap: u64) -> io::Result<Vec<u8>> {
    with_reader(entry, |reader| {
        let mut bytes = Vec::new();
        reader.take(cap + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > cap {
            return Err(io::Error::other(format!(
                "larger than the {cap}-byte limit"
            )));
        }
        Ok(bytes)
    })?
}

#[cfg(test)]
mod tests;
