//! Property tests over the parsers that read bundle bytes: the code
//! matchers, text decoding, the XML flattener, the member scanner and the
//! archive readers. They double as the fuzzing fallback on a stable
//! toolchain (see docs/FUZZING.md).

use std::io::{Cursor, Read, Write};
use std::sync::LazyLock;

use proptest::prelude::*;
use tetra_triage::input::{self, Limits};
use tetra_triage::knowledge::{Matcher, Notation, RuleSet};
use tetra_triage::redact::SecretMasker;
use tetra_triage::scan::scan_text;
use tetra_triage::text::{
    decode_utf16, line_terminator, sniff_encoding, TextEncoding, Utf16Reader,
};
use tetra_triage::xml;

static RULES: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::builtin().expect("built-in rules"));
static MATCHER: LazyLock<Matcher> =
    LazyLock::new(|| Matcher::new(&RULES).expect("built-in rules compile"));

/// Returns the HRESULT codes of the built-in rules that need no context
/// word, with their ids and causes.
fn hresult_codes() -> Vec<(String, String, u32)> {
    RULES
        .code
        .iter()
        .filter(|code| code.notation == Notation::Hresult && code.context.is_empty())
        .filter_map(|code| {
            let value = u32::try_from(code.value?).ok()?;
            Some((code.id(), code.cause.clone(), value))
        })
        .collect()
}

fn rank_of(cause: &str) -> i32 {
    RULES.cause(cause).map_or(0, |cause| cause.rank)
}

/// Writes a 32-bit code in one of the notations logs use.
fn notation(value: u32, form: u8) -> String {
    match form % 5 {
        0 => format!("0x{value:08X}"),
        1 => format!("0x{value:08x}"),
        2 => format!("{value:08X}"),
        3 => value.to_string(),
        _ => (value as i32).to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// An HRESULT in hex, unsigned or signed decimal is found inside any
    /// text, as long as a separator keeps it a word of its own. Its cause
    /// may only give way to a more specific cause that the text also names.
    #[test]
    fn hresult_found_in_any_text(
        pick in any::<prop::sample::Index>(),
        form in any::<u8>(),
        prefix in "\\PC{0,60}",
        suffix in "\\PC{0,60}",
        before in "[ \t,;:()\\[\\]=]",
        after in "[ \t,;:()\\[\\]=.]",
    ) {
        let codes = hresult_codes();
        prop_assume!(!codes.is_empty());
        let (id, cause, value) = &codes[pick.index(codes.len())];
        let line = format!("{prefix}{before}{}{after}{suffix}", notation(*value, form));
        let matched = MATCHER.match_line(&line);
        let found = matched.causes.iter().any(|hit| &hit.cause == cause);
        let outranked = !matched.causes.is_empty()
            && matched.causes.iter().all(|hit| hit.rank > rank_of(cause));
        prop_assert!(found || outranked, "{id} not found in {line:?}: {matched:?}");
    }

    #[test]
    fn matcher_never_panics(line in any::<String>()) {
        let matched = MATCHER.match_line(&line);
        let best = matched.causes.iter().map(|hit| hit.rank).max();
        prop_assert!(matched.causes.iter().all(|hit| Some(hit.rank) == best));
    }
}

proptest! {
    #[test]
    fn utf16_with_bom_round_trips(text in any::<String>()) {
        let mut little = vec![0xFF, 0xFE];
        little.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        prop_assert_eq!(sniff_encoding(&little), TextEncoding::Utf16Le);
        prop_assert_eq!(decode_utf16(&little, TextEncoding::Utf16Le), text.as_bytes());

        let mut big = vec![0xFE, 0xFF];
        big.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        prop_assert_eq!(sniff_encoding(&big), TextEncoding::Utf16Be);
        prop_assert_eq!(decode_utf16(&big, TextEncoding::Utf16Be), text.as_bytes());
    }

    /// ASCII text without a BOM is recognized from its NUL pattern once it
    /// has two characters.
    #[test]
    fn utf16_without_bom_is_sniffed(text in "[\\x01-\\x7f]{2,300}") {
        let little: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        prop_assert_eq!(sniff_encoding(&little), TextEncoding::Utf16Le);
        let big: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        prop_assert_eq!(sniff_encoding(&big), TextEncoding::Utf16Be);
    }

    #[test]
    fn utf8_text_without_nul_is_utf8(text in "[^\\x00]{0,300}") {
        prop_assert_eq!(sniff_encoding(text.as_bytes()), TextEncoding::Utf8);
    }

    /// Any bytes decode to valid UTF-8, and the streaming decoder gives the
    /// same bytes as the whole-buffer one, however its reads are sized.
    #[test]
    fn utf16_decoding_of_any_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        big_endian in any::<bool>(),
        read_size in 1usize..300,
    ) {
        let encoding = if big_endian { TextEncoding::Utf16Be } else { TextEncoding::Utf16Le };
        let whole = decode_utf16(&bytes, encoding);
        prop_assert!(std::str::from_utf8(&whole).is_ok());

        let mut reader = Utf16Reader::new(Cursor::new(&bytes), encoding);
        let mut streamed = Vec::new();
        let mut piece = vec![0u8; read_size];
        loop {
            let read = reader.read(&mut piece).expect("in-memory read");
            if read == 0 {
                break;
            }
            streamed.extend_from_slice(&piece[..read]);
        }
        prop_assert_eq!(streamed, whole);
    }
}

/// Element names and text for well-formed documents. The text leaves out
/// control characters and U+2028, which XML line-end handling rewrites.
fn element() -> impl Strategy<Value = (String, String)> {
    (
        "[a-z][a-z0-9_]{0,8}",
        "[^<&\\x00-\\x1f\\u{7f}-\\u{9f}\\u{2028}]{1,40}",
    )
}

proptest! {
    #[test]
    fn xml_flatten_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4000)) {
        let (flat, _) = xml::flatten(&bytes);
        let _ = xml::parse_local(&flat);
        let _ = xml::parse_policy(&flat);
    }

    /// Text that looks like XML: tags, entities, a DTD and stray bytes.
    #[test]
    fn xml_flatten_survives_xml_like_noise(pieces in prop::collection::vec(
        prop_oneof![
            Just("<config>".to_string()),
            Just("</config>".to_string()),
            Just("<a:proxy xmlns:a='urn:x'>".to_string()),
            Just("</a:proxy>".to_string()),
            Just("<password>".to_string()),
            Just("</password>".to_string()),
            Just("<!DOCTYPE x [<!ENTITY e \"&e;&e;\">]>".to_string()),
            Just("&e;".to_string()),
            Just("&amp;".to_string()),
            Just("&#x0;".to_string()),
            Just("&#xD800;".to_string()),
            Just("<![CDATA[".to_string()),
            Just("]]>".to_string()),
            Just("<!--".to_string()),
            Just("-->".to_string()),
            Just("<?xml version='1.0'?>".to_string()),
            Just("<empty/>".to_string()),
            "[^<&]{0,20}",
        ],
        0..60,
    )) {
        let text = pieces.concat();
        let (flat, _) = xml::flatten(text.as_bytes());
        for (path, value) in &flat.values {
            prop_assert!(!path.is_empty());
            prop_assert!(!value.trim().is_empty());
        }
        // The masker skips values under three characters, and a password of
        // asterisks could be rebuilt from the mask itself.
        let (policy, password) = xml::parse_policy(&flat);
        if let Some(password) = password.filter(|p| p.chars().count() >= 3 && !p.contains('*')) {
            let json = serde_json::to_string(&policy).expect("serializes");
            prop_assert!(!json.contains(&password), "{password:?} in {json}");
        }
    }

    #[test]
    fn xml_flatten_finds_every_value(elements in prop::collection::vec(element(), 1..10)) {
        let mut document = String::from("<?xml version=\"1.0\"?><config>");
        for (name, text) in &elements {
            let escaped = text.replace('>', "&gt;");
            document.push_str(&format!("<{name}>{escaped}</{name}>"));
        }
        document.push_str("</config>");
        let (flat, error) = xml::flatten(document.as_bytes());
        prop_assert!(error.is_none(), "{error:?} for {document}");
        for (name, text) in &elements {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                continue;
            }
            let path = format!("config/{name}");
            let found = flat.values.iter().any(|(p, v)| *p == path && v == trimmed);
            prop_assert!(found, "{path} = {trimmed:?} missing from {:?}", flat.values);
        }
    }
}

fn masker() -> SecretMasker {
    SecretMasker::new(&["Pr0xy-S3cret!".to_string()])
}

/// Returns the number of lines `scan_text` must count in `bytes` (shorter
/// than one scan chunk): one per terminator, plus one for a final line
/// without one. UTF-16 input is counted after decoding.
fn expected_lines(bytes: &[u8]) -> u64 {
    let text = match sniff_encoding(bytes) {
        TextEncoding::Utf8 => bytes.to_vec(),
        encoding => decode_utf16(bytes, encoding),
    };
    let terminator = line_terminator(&text);
    let terminators = text.iter().filter(|&&b| b == terminator).count() as u64;
    let unterminated = u64::from(text.last().is_some_and(|&b| b != terminator));
    terminators + unterminated
}

/// Log-like bytes: lines, line ends of every platform, NULs, invalid UTF-8
/// and BOMs.
fn log_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b"(1, +0 ms) May 18 16:54:33 [12]: TetraUpdater::Run: curl error 6: Could not resolve host: x".to_vec()),
            Just(b"(2, +0 ms) Dec 31 23:59:59 [1]: X: WinHTTP error 12029".to_vec()),
            Just(b"Proxy-Authorization: Basic Pr0xy-S3cret!".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\0".to_vec()),
            Just(b"\xff\xfe".to_vec()),
            Just(b"\xef\xbb\xbf".to_vec()),
            Just(b"\xc3".to_vec()),
            prop::collection::vec(any::<u8>(), 0..40),
        ],
        0..80,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn scan_counts_lines_of_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        let scan = scan_text(&mut bytes.as_slice(), u64::MAX, &MATCHER, &masker()).expect("in-memory scan");
        prop_assert_eq!(scan.lines, expected_lines(&bytes));
        prop_assert_eq!(scan.bytes, bytes.len() as u64);
        prop_assert!(!scan.truncated);
    }

    #[test]
    fn scan_counts_lines_of_log_like_bytes(bytes in log_bytes()) {
        let scan = scan_text(&mut bytes.as_slice(), u64::MAX, &MATCHER, &masker()).expect("in-memory scan");
        prop_assert_eq!(scan.lines, expected_lines(&bytes));
        for matched in &scan.matches {
            prop_assert!(matched.line >= 1 && matched.line <= scan.lines);
            prop_assert!(!matched.text.contains("Pr0xy-S3cret!"));
        }
    }

    /// A cap shorter than the member cuts the scan there and marks it truncated.
    #[test]
    fn scan_stops_at_the_cap(bytes in log_bytes(), cap in 0u64..2000) {
        let scan = scan_text(&mut bytes.as_slice(), cap, &MATCHER, &masker()).expect("in-memory scan");
        prop_assert_eq!(scan.bytes, cap.min(bytes.len() as u64));
        prop_assert_eq!(scan.truncated, bytes.len() as u64 >= cap);
    }
}

/// One scan chunk of `scan_text`, which reads members 1 MiB at a time.
const SCAN_CHUNK: usize = 1024 * 1024;

#[test]
fn scan_counts_lines_across_chunk_boundaries() {
    let cases: Vec<(Vec<u8>, u64)> = vec![
        // One unterminated line of exactly one chunk, then of two.
        (vec![b'x'; SCAN_CHUNK], 1),
        (vec![b'x'; 2 * SCAN_CHUNK], 1),
        // A terminator as the very last byte of the first chunk.
        ([vec![b'x'; SCAN_CHUNK - 1], b"\n".to_vec()].concat(), 1),
        // Lone CR files longer than a chunk.
        (b"abc\r".repeat(SCAN_CHUNK / 2), (SCAN_CHUNK / 2) as u64),
    ];
    for (bytes, lines) in cases {
        let scan = scan_text(&mut bytes.as_slice(), u64::MAX, &MATCHER, &masker())
            .expect("in-memory scan");
        assert_eq!(scan.lines, lines, "{} bytes", bytes.len());
        assert_eq!(scan.bytes, bytes.len() as u64);
    }
}

#[test]
fn scan_streams_a_large_utf16_log() {
    let noise =
        "(1, +0 ms) May 18 16:54:31 [1]: Query::LookupExecute: attempting lookup with cloud\r\n";
    let count = 3 * SCAN_CHUNK / (2 * noise.len()) + 11;
    let mut text = noise.repeat(count);
    text.push_str("(2, +0 ms) May 18 16:55:00 [1]: X: curl error 6: Could not resolve host: h\r\n");
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));

    let scan =
        scan_text(&mut bytes.as_slice(), u64::MAX, &MATCHER, &masker()).expect("in-memory scan");
    assert_eq!(scan.encoding, Some("UTF-16LE"));
    assert_eq!(scan.bytes, bytes.len() as u64);
    assert_eq!(scan.lines, count as u64 + 1);
    let last = scan.matches.last().expect("the failure matches");
    assert_eq!(last.line, count as u64 + 1);
}

fn zip_bytes(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in files {
        writer
            .start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .expect("start entry");
        writer.write_all(content).expect("write entry");
    }
    writer.finish().expect("finish zip").into_inner()
}

fn sevenz_bytes(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = sevenz_rust2::ArchiveWriter::new(Cursor::new(Vec::new())).expect("7z writer");
    for (name, content) in files {
        writer
            .push_archive_entry(
                sevenz_rust2::ArchiveEntry::new_file(name),
                Some(content.as_slice()),
            )
            .expect("push 7z entry");
    }
    writer.finish().expect("finish 7z").into_inner()
}

/// Members of a small bundle, one of them a nested ZIP.
fn bundle_files() -> Vec<(String, Vec<u8>)> {
    let log = b"(1, +0 ms) May 18 16:54:33 [1]: A::B: curl error 6: Could not resolve host: x\r\n"
        .repeat(40);
    let nested = zip_bytes(&[("inner/sfc.exe.log".to_string(), log.clone())]);
    vec![
        (
            "Program Files/Cisco/AMP/local.xml".to_string(),
            b"<config><agent><uuid>u</uuid></agent></config>".to_vec(),
        ),
        (
            "Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log".to_string(),
            log,
        ),
        (
            "curl_output.txt".to_string(),
            b"curl: (7) Failed to connect\r\n".repeat(10),
        ),
        ("attachments/case.zip".to_string(), nested),
    ]
}

static ZIP_BUNDLE: LazyLock<Vec<u8>> = LazyLock::new(|| zip_bytes(&bundle_files()));
static SEVENZ_BUNDLE: LazyLock<Vec<u8>> = LazyLock::new(|| sevenz_bytes(&bundle_files()));

/// A damaged copy of an archive: bytes flipped, then cut, then padded.
#[derive(Debug, Clone)]
struct Damage {
    flips: Vec<(prop::sample::Index, u8)>,
    cut: Option<prop::sample::Index>,
    tail: Vec<u8>,
}

fn damage() -> impl Strategy<Value = Damage> {
    (
        prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..8),
        prop::option::of(any::<prop::sample::Index>()),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(flips, cut, tail)| Damage { flips, cut, tail })
}

fn apply(original: &[u8], damage: &Damage) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for (index, mask) in &damage.flips {
        let at = index.index(bytes.len());
        bytes[at] ^= mask;
    }
    if let Some(cut) = &damage.cut {
        bytes.truncate(cut.index(bytes.len()));
    }
    bytes.extend_from_slice(&damage.tail);
    bytes
}

/// Lists an archive from bytes and reads every member, as the analysis
/// does; any outcome but a panic or a hang is acceptable.
fn list_and_read(bytes: &[u8], name: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write archive");
    let limits = Limits {
        max_total_bytes: 1 << 24,
        max_member_bytes: 1 << 22,
        max_entries: 1000,
        max_depth: 3,
        max_nested_bytes: 1 << 22,
    };
    if let Ok(listing) = input::list(&path, &limits) {
        for entry in &listing.entries {
            let _ = input::with_reader(entry, |reader| {
                scan_text(reader, 1 << 22, &MATCHER, &masker())
            });
            let _ = input::read_entry_bytes(entry, 1 << 22);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn damaged_zip_never_panics(damage in damage()) {
        list_and_read(&apply(&ZIP_BUNDLE, &damage), "bundle.zip");
    }

    #[test]
    fn damaged_7z_never_panics(damage in damage()) {
        list_and_read(&apply(&SEVENZ_BUNDLE, &damage), "bundle.7z");
    }

    #[test]
    fn random_bytes_after_magic_never_panic(
        magic in prop_oneof![
            Just(b"PK\x03\x04".to_vec()),
            Just(b"PK\x05\x06".to_vec()),
            Just(b"7z\xbc\xaf\x27\x1c".to_vec()),
        ],
        rest in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        list_and_read(&[magic, rest].concat(), "bundle.zip");
    }
}

#[test]
fn undamaged_archives_list_every_member() {
    for (bytes, name) in [(&*ZIP_BUNDLE, "bundle.zip"), (&*SEVENZ_BUNDLE, "bundle.7z")] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write archive");
        let listing = input::list(&path, &Limits::default()).expect("listing");
        let mut paths: Vec<&str> = listing
            .entries
            .iter()
            .map(|entry| entry.path.as_str())
            .collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log",
                "Program Files/Cisco/AMP/local.xml",
                "attachments/case.zip!/inner/sfc.exe.log",
                "curl_output.txt",
            ],
            "{name}"
        );
        assert!(
            listing.warnings.is_empty(),
            "{name}: {:?}",
            listing.warnings
        );
    }
}
