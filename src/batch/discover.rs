//! Finding the bundles under a directory: archive files by their magic
//! bytes, and unpacked bundle directories by the connector files inside.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tetra_triage::input::archive_magic;
use walkdir::WalkDir;

/// One input of the batch.
#[derive(Debug)]
pub(super) struct Candidate {
    pub path: PathBuf,
    /// Size of the archive, or of all files of a bundle directory.
    pub bytes: u64,
    /// The error met while listing or opening the path. Such a path may
    /// contain a bundle, so it is reported as unreadable.
    pub error: Option<String>,
}

/// The bundles found under a directory, sorted by path.
#[derive(Debug)]
pub(super) struct Discovery {
    pub candidates: Vec<Candidate>,
    /// Files that are neither archives nor inside a bundle directory.
    pub skipped: u64,
}

/// Walks `root` and returns its bundles. A bundle is an archive file (ZIP or
/// 7z by magic bytes, whatever the extension) or a directory that contains
/// `local.xml` or `sfc.exe.log*`. Files inside a bundle directory belong to
/// it, so they are not bundles of their own. Every other file is skipped,
/// except `output` (the batch's own output file), which is left out.
pub(super) fn discover(root: &Path, output: Option<&Path>) -> Discovery {
    let output = output.and_then(|path| path.canonicalize().ok());
    let mut candidates = Vec::new();
    let mut files: Vec<(PathBuf, u64)> = Vec::new();
    let mut bundle_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for item in WalkDir::new(root).follow_links(true).sort_by_file_name() {
        let item = match item {
            Ok(item) => item,
            Err(err) => {
                let path = err.path().unwrap_or(root).to_path_buf();
                candidates.push(Candidate {
                    path,
                    bytes: 0,
                    error: Some(format!("cannot list: {}", walk_error_text(&err))),
                });
                continue;
            }
        };
        if !item.file_type().is_file() {
            continue;
        }
        if let Some(output) = &output {
            let same_name = output.file_name() == Some(item.file_name());
            if same_name && item.path().canonicalize().ok().as_ref() == Some(output) {
                continue;
            }
        }
        if is_bundle_marker(item.file_name()) {
            bundle_dirs.insert(bundle_root(root, item.path()));
        }
        let bytes = item.metadata().map_or(0, |metadata| metadata.len());
        files.push((item.into_path(), bytes));
    }
    let bundle_dirs = outermost(bundle_dirs);

    let mut dir_bytes: BTreeMap<&Path, u64> = BTreeMap::new();
    let mut skipped = 0;
    for (path, bytes) in files {
        let owner = path
            .ancestors()
            .skip(1)
            .find(|ancestor| bundle_dirs.contains(*ancestor));
        if let Some(dir) = owner {
            if let Some(dir) = bundle_dirs.get(dir) {
                *dir_bytes.entry(dir.as_path()).or_default() += bytes;
            }
            continue;
        }
        match is_archive(&path) {
            Ok(true) => candidates.push(Candidate {
                path,
                bytes,
                error: None,
            }),
            Ok(false) => skipped += 1,
            Err(err) => candidates.push(Candidate {
                path,
                bytes,
                error: Some(format!("cannot read: {err}")),
            }),
        }
    }
    for dir in &bundle_dirs {
        candidates.push(Candidate {
            path: dir.clone(),
            bytes: dir_bytes.get(dir.as_path()).copied().unwrap_or(0),
            error: None,
        });
    }
    candidates.sort_by(|a, b| a.path.cmp(&b.path));
    Discovery {
        candidates,
        skipped,
    }
}

/// Returns whether a file name is one that only a connector bundle has.
fn is_bundle_marker(name: &OsStr) -> bool {
    let name = name.to_string_lossy().to_ascii_lowercase();
    name == "local.xml" || name.starts_with("sfc.exe.log")
}

/// Returns the directory of the bundle that contains `marker`: its folder,
/// climbing out of the standard layout `Program Files/Cisco/AMP/<version>/`
/// but never above `root`.
fn bundle_root(root: &Path, marker: &Path) -> PathBuf {
    let mut dir = marker.parent().unwrap_or(root);
    while dir != root && dir.file_name().is_some_and(is_layout_folder) {
        match dir.parent() {
            Some(parent) => dir = parent,
            None => break,
        }
    }
    dir.to_path_buf()
}

/// Returns whether a folder name belongs to the connector's install layout.
fn is_layout_folder(name: &OsStr) -> bool {
    let name = name.to_string_lossy().to_ascii_lowercase();
    let is_version = name.starts_with(|c: char| c.is_ascii_digit())
        && name.contains('.')
        && name.chars().all(|c| c.is_ascii_digit() || c == '.');
    is_version
        || matches!(
            name.as_str(),
            "amp" | "cisco" | "program files" | "program files (x86)"
        )
}

/// Drops the directories that lie inside another one of the set.
fn outermost(dirs: BTreeSet<PathBuf>) -> BTreeSet<PathBuf> {
    let mut outer_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for dir in dirs {
        if !outer_dirs.iter().any(|outer| dir.starts_with(outer)) {
            outer_dirs.insert(dir);
        }
    }
    outer_dirs
}

fn is_archive(path: &Path) -> io::Result<bool> {
    let mut head = Vec::with_capacity(8);
    File::open(path)?.take(8).read_to_end(&mut head)?;
    Ok(archive_magic(&head).is_some())
}

fn walk_error_text(err: &walkdir::Error) -> String {
    match err.io_error() {
        Some(io) => io.to_string(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, bytes: &[u8]) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folders");
        }
        std::fs::write(path, bytes).expect("write file");
    }

    #[test]
    fn finds_archives_and_bundle_directories() {
        let temp = tempfile::tempdir().expect("temp dir");
        let root = temp.path();
        touch(&root.join("a.7z"), b"PK\x03\x04rest");
        touch(&root.join("site/b.bin"), b"7z\xBC\xAF\x27\x1Crest");
        touch(&root.join("notes.txt"), b"curl: (6) Could not resolve host");
        touch(&root.join("photo.jpg"), b"\xFF\xD8\xFF\xE0");
        let amp = root.join("case/unpacked/Program Files/Cisco/AMP");
        touch(&amp.join("local.xml"), b"<config/>");
        touch(&amp.join("8.1.7.21417/sfc.exe.log"), b"log");
        touch(&root.join("case/unpacked/attachment.zip"), b"PK\x03\x04");
        touch(&root.join("flat/sfc.exe.log.1"), b"log");
        touch(&root.join("fleet.csv"), b"bundle,connector_guid\n");

        let found = discover(root, Some(&root.join("fleet.csv")));
        let paths: Vec<PathBuf> = found
            .candidates
            .iter()
            .map(|candidate| {
                candidate
                    .path
                    .strip_prefix(root)
                    .expect("below root")
                    .to_path_buf()
            })
            .collect();
        assert_eq!(
            paths,
            [
                PathBuf::from("a.7z"),
                PathBuf::from("case/unpacked"),
                PathBuf::from("flat"),
                PathBuf::from("site/b.bin"),
            ]
        );
        assert_eq!(found.skipped, 2);
        assert!(found
            .candidates
            .iter()
            .all(|candidate| candidate.error.is_none()));
        let unpacked = &found.candidates[1];
        assert_eq!(unpacked.bytes, 9 + 3 + 4);
    }

    #[test]
    fn root_that_is_a_bundle_is_one_bundle() {
        let temp = tempfile::tempdir().expect("temp dir");
        let root = temp.path();
        touch(
            &root.join("Program Files/Cisco/AMP/local.xml"),
            b"<config/>",
        );
        touch(
            &root.join("Program Files/Cisco/AMP/nested.zip"),
            b"PK\x03\x04",
        );
        let found = discover(root, None);
        assert_eq!(found.candidates.len(), 1);
        assert_eq!(found.candidates[0].path, root);
        assert_eq!(found.skipped, 0);
    }

    #[test]
    fn layout_folders() {
        for name in ["AMP", "cisco", "Program Files", "8.1.7.21417", "7.4"] {
            assert!(is_layout_folder(OsStr::new(name)), "{name}");
        }
        for name in ["unpacked", "8", "v8.1", "tetra", "1.2.x"] {
            assert!(!is_layout_folder(OsStr::new(name)), "{name}");
        }
    }
}
