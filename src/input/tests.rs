use std::io::{Cursor, Write};

use ::zip::write::SimpleFileOptions;

use super::*;

fn zip_bytes(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in files {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .expect("start entry");
        writer.write_all(content).expect("write entry");
    }
    writer.finish().expect("finish zip").into_inner()
}

fn sevenz_bytes(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = sevenz_rust2::ArchiveWriter::new(Cursor::new(Vec::new())).expect("7z writer");
    for (name, content) in files {
        writer
            .push_archive_entry(sevenz_rust2::ArchiveEntry::new_file(name), Some(*content))
            .expect("push 7z entry");
    }
    writer.finish().expect("finish 7z").into_inner()
}

fn write_temp(bytes: &[u8], name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    (dir, path)
}

fn paths(listing: &Listing) -> Vec<String> {
    listing
        .entries
        .iter()
        .map(|entry| entry.path.clone())
        .collect()
}

#[test]
fn zip_named_7z_is_read_as_zip() {
    let bytes = zip_bytes(&[("Program Files\\Cisco\\AMP\\local.xml", b"<config/>")]);
    let (_dir, path) = write_temp(&bytes, "bundle.7z");
    let listing = list(&path, &Limits::default()).expect("listing");
    assert_eq!(listing.format, InputFormat::Zip);
    assert_eq!(paths(&listing), ["Program Files/Cisco/AMP/local.xml"]);
}

#[test]
fn nested_archives_are_opened() {
    let inner = zip_bytes(&[("Program Files/Cisco/AMP/local.xml", b"<config/>")]);
    let outer = zip_bytes(&[
        ("case/CiscoAMP_Support_Tool.7z", &inner),
        ("notes.txt", b"hello"),
    ]);
    let (_dir, path) = write_temp(&outer, "case.zip");
    let listing = list(&path, &Limits::default()).expect("listing");
    assert_eq!(
        paths(&listing),
        [
            "case/CiscoAMP_Support_Tool.7z!/Program Files/Cisco/AMP/local.xml",
            "notes.txt"
        ]
    );
    let content = read_entry_bytes(&listing.entries[0], 1024).expect("read nested entry");
    assert_eq!(content, b"<config/>");
}

#[test]
fn nesting_depth_is_limited() {
    let mut bytes = zip_bytes(&[("local.xml", b"<config/>")]);
    for level in 0..4 {
        bytes = zip_bytes(&[(&format!("level{level}.zip"), &bytes)]);
    }
    let (_dir, path) = write_temp(&bytes, "deep.zip");
    // Nothing but the skipped archive: the error explains why nothing was
    // read.
    let err = list(&path, &Limits::default()).expect_err("nothing readable");
    assert!(matches!(err, Error::NotABundle { .. }), "{err}");
    assert!(err.to_string().contains("--max-depth"), "{err}");

    let with_note = zip_bytes(&[("deep.zip", &bytes), ("sfc.exe.log", b"line\n")]);
    let (_dir, path) = write_temp(&with_note, "case.zip");
    let listing = list(&path, &Limits::default()).expect("listing");
    assert_eq!(paths(&listing), ["sfc.exe.log"]);
    assert!(
        listing.warnings.iter().any(|w| w.contains("--max-depth")),
        "{:?}",
        listing.warnings
    );
}

#[test]
fn real_7z_is_read() {
    let bytes = sevenz_bytes(&[
        ("Program Files/Cisco/AMP/local.xml", b"<config/>"),
        (
            "Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log",
            b"(1, +0 ms) May 18 16:54:33 [1]: A::B: c\n",
        ),
        ("Program Files/Cisco/AMP/history.db", b"SQLite format 3\0"),
    ]);
    let (_dir, path) = write_temp(&bytes, "bundle.zip");
    let listing = list(&path, &Limits::default()).expect("listing");
    assert_eq!(listing.format, InputFormat::SevenZip);
    assert_eq!(
        paths(&listing),
        [
            "Program Files/Cisco/AMP/local.xml",
            "Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log"
        ]
    );
}

#[test]
fn truncated_zip_is_a_damaged_archive() {
    let bytes = zip_bytes(&[("Program Files/Cisco/AMP/local.xml", &[b'x'; 4000])]);
    let (_dir, path) = write_temp(&bytes[..bytes.len() / 2], "cut.zip");
    let err = list(&path, &Limits::default()).expect_err("truncated zip fails");
    assert!(matches!(err, Error::DamagedArchive { .. }), "{err}");
}

#[test]
fn entry_count_is_limited() {
    let files: Vec<(String, Vec<u8>)> =
        (0..20).map(|i| (format!("f{i}.txt"), vec![b'a'])).collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    let (_dir, path) = write_temp(&zip_bytes(&refs), "many.zip");
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let err = list(&path, &limits).expect_err("too many entries");
    assert!(err.to_string().contains("--max-entries"), "{err}");
}

#[test]
fn directory_bundle_is_walked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let amp = dir.path().join("Program Files/Cisco/AMP/8.1.7.21417");
    std::fs::create_dir_all(&amp).expect("create dirs");
    std::fs::write(amp.join("sfc.exe.log"), b"line\n").expect("write log");
    let listing = list(dir.path(), &Limits::default()).expect("listing");
    assert_eq!(listing.format, InputFormat::Directory);
    assert_eq!(
        paths(&listing),
        ["Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log"]
    );
}

#[test]
fn member_paths_are_normalized() {
    assert_eq!(
        normalize_member_path("C:\\Program Files\\Cisco\\AMP\\local.xml"),
        "Program Files/Cisco/AMP/local.xml"
    );
    assert_eq!(normalize_member_path("/./a//b/"), "a/b");
    assert_eq!(
        normalize_member_path("../../etc/passwd"),
        "../../etc/passwd"
    );
}

#[test]
fn nested_archives_count_against_the_total_limit() {
    let inner = zip_bytes(&[("history.db", &[0u8; 4096])]);
    let names: Vec<String> = (0..10).map(|i| format!("copy{i}.zip")).collect();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .map(|name| (name.as_str(), inner.as_slice()))
        .collect();
    let (_dir, path) = write_temp(&zip_bytes(&files), "case.zip");
    let limits = Limits {
        max_total_bytes: 3 * inner.len() as u64,
        ..Limits::default()
    };
    let err = list(&path, &limits).expect_err("nested archives exceed the total");
    assert!(err.to_string().contains("--max-total-bytes"), "{err}");
    assert!(list(&path, &Limits::default()).is_ok());
}

#[test]
fn loose_files_named_as_archives_are_explained() {
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty.zip", b"", "the file is empty"),
        (
            "bundle.7z",
            b"<html><body>denied</body></html>",
            "HTML page",
        ),
        ("bundle.zip", b"\x01\x02\x03", "starts with bytes 01 02 03"),
    ];
    for (name, bytes, expected) in cases {
        let (_dir, path) = write_temp(bytes, name);
        let err = list(&path, &Limits::default()).expect_err("not an archive");
        assert!(matches!(err, Error::NotABundle { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
    // A loose log keeps being read, whatever its first bytes.
    let (_dir, path) = write_temp(b"\x01\x02\x03", "sfc.exe.log");
    assert_eq!(
        paths(&list(&path, &Limits::default()).expect("listing")),
        ["sfc.exe.log"]
    );
}

#[test]
fn duplicate_names_are_reported() {
    // The ZIP writer rejects duplicate names, so the second name is
    // rewritten in the finished bytes to equal the first.
    let bytes = zip_bytes(&[
        ("curl_output_1.txt", b"first"),
        ("curl_output_2.txt", b"second"),
    ]);
    let mut patched = bytes.clone();
    let second = b"curl_output_2.txt";
    let mut at = 0;
    while let Some(offset) = patched[at..]
        .windows(second.len())
        .position(|window| window == second)
    {
        let start = at + offset;
        patched[start..start + second.len()].copy_from_slice(b"curl_output_1.txt");
        at = start + second.len();
    }
    let (_dir, path) = write_temp(&patched, "dup.zip");
    let listing = list(&path, &Limits::default()).expect("listing");
    assert!(
        listing.warnings.iter().any(|w| w.contains("share a name")),
        "{:?}",
        listing.warnings
    );
    assert_eq!(paths(&listing), ["curl_output_1.txt"]);
}

#[test]
fn members_read_the_same_from_file_and_memory() {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let inner = zip_bytes(&[("a/sfc.exe.log", &big), ("b/local.xml", b"<config/>")]);
    let outer = zip_bytes(&[("inner.zip", &inner), ("c/sfc.exe.log", &big)]);
    let (_dir, path) = write_temp(&outer, "case.zip");
    let listing = list(&path, &Limits::default()).expect("listing");
    assert_eq!(
        paths(&listing),
        [
            "inner.zip!/a/sfc.exe.log",
            "inner.zip!/b/local.xml",
            "c/sfc.exe.log"
        ]
    );
    for (entry, expected) in listing
        .entries
        .iter()
        .zip([&big[..], b"<config/>", &big[..]])
    {
        // Twice, so a second read of the same entry starts from its own
        // beginning, not where the first one stopped.
        for _ in 0..2 {
            let bytes = read_entry_bytes(entry, 1 << 20).expect("read entry");
            assert_eq!(bytes, expected, "{}", entry.path);
        }
    }
}

#[test]
fn solid_7z_with_empty_files_lists_each_member_once() {
    let names = [
        "Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log",
        "Program Files/Cisco/AMP/notes.txt",
        "Program Files/Cisco/AMP/history.db",
        "Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log.1",
        "Program Files/Cisco/AMP/local.xml",
    ];
    let contents: [&[u8]; 5] = [
        b"(1, +0 ms) May 18 16:54:33 [1]: A::B: c\n",
        b"",
        &[7u8; 10_000],
        b"",
        b"<config/>",
    ];
    let mut writer = sevenz_rust2::ArchiveWriter::new(Cursor::new(Vec::new())).expect("7z writer");
    // Empty files get no stream, as 7-Zip writes them; inside a solid block
    // the decoder still hands them over between the files with data.
    let entries = names
        .iter()
        .zip(contents)
        .map(|(name, content)| {
            let mut entry = sevenz_rust2::ArchiveEntry::new_file(name);
            entry.has_stream = !content.is_empty();
            entry
        })
        .collect();
    let readers = contents
        .iter()
        .map(|content| sevenz_rust2::SourceReader::new(*content))
        .collect();
    writer
        .push_archive_entries(entries, readers)
        .expect("push solid block");
    let bytes = writer.finish().expect("finish 7z").into_inner();
    let (_dir, path) = write_temp(&bytes, "solid.7z");

    let listing = list(&path, &Limits::default()).expect("listing");
    let mut listed = paths(&listing);
    listed.sort();
    assert_eq!(
        listed,
        [
            "Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log",
            "Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log.1",
            "Program Files/Cisco/AMP/local.xml",
        ]
    );
    assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
    let xml = listing
        .entries
        .iter()
        .find(|entry| entry.path.ends_with("local.xml"))
        .expect("local.xml listed");
    assert_eq!(read_entry_bytes(xml, 1024).expect("read"), b"<config/>");
}
