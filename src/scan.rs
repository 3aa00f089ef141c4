//! Streaming scan of one text member (a connector log or a transcript).
//!
//! The member is read in chunks of whole lines. One Aho-Corasick pass over
//! each chunk finds candidate lines; only those are decoded, parsed and
//! checked by the rules, so memory stays bounded by the chunk size and the
//! number of matching lines, whatever the member's size.

use std::borrow::Cow;
use std::io::{self, Read};

use crate::knowledge::{LineMatch, Matcher};
use crate::logline::{parse_header, LogStamp};
use crate::redact::SecretMasker;
use crate::text::{line_terminator, line_text, sniff_encoding, TextEncoding, Utf16Reader};

/// Bytes read per chunk.
const CHUNK_BYTES: usize = 1024 * 1024;
/// A line longer than this is scanned in pieces of this size.
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Characters of a line kept as evidence.
pub const EVIDENCE_CHARS: usize = 600;
/// Matching lines kept per member; more are counted, not stored.
const MAX_STORED_LINES: usize = 20_000;
/// Lines searched backwards from a chunk's end for the last timestamp.
const TAIL_LINES: usize = 200;

/// A line that matched a rule.
#[derive(Debug, Clone)]
pub struct MatchedLine {
    /// 1-based line number in the member.
    pub line: u64,
    pub stamp: Option<LogStamp>,
    pub thread: Option<String>,
    pub component: Option<String>,
    /// The line with secrets masked and cut to [`EVIDENCE_CHARS`].
    pub text: String,
    pub matched: LineMatch,
}

/// The result of scanning one member.
#[derive(Debug, Clone, Default)]
pub struct MemberScan {
    pub lines: u64,
    pub bytes: u64,
    pub first_stamp: Option<LogStamp>,
    pub last_stamp: Option<LogStamp>,
    /// Lines with a parsable log header, up to the first few thousand.
    pub stamped_lines: u64,
    pub has_debug_marker: bool,
    pub matches: Vec<MatchedLine>,
    /// Matching lines beyond the stored maximum.
    pub dropped_matches: u64,
    pub encoding: Option<&'static str>,
    /// True when the member was cut at the per-member byte limit.
    pub truncated: bool,
}

struct Scanner<'a> {
    matcher: &'a Matcher,
    masker: &'a SecretMasker,
    terminator: u8,
    scan: MemberScan,
}

impl Scanner<'_> {
    /// Scans a region that holds whole lines (or one piece of an overlong
    /// line), counting lines from `self.scan.lines`.
    fn region(&mut self, region: &[u8]) {
        let terminator = self.terminator;
        if !self.scan.has_debug_marker {
            self.scan.has_debug_marker = self.matcher.has_debug_marker(region);
        }
        if self.scan.first_stamp.is_none() {
            self.find_first_stamp(region);
        }

        let base = self.scan.lines;
        let mut counted_to = 0usize;
        let mut counted_lines = 0u64;
        let mut next_allowed = 0usize;
        let mut offsets = Vec::new();
        self.matcher
            .candidate_lines(region, terminator, &mut offsets);
        for offset in offsets {
            if offset < next_allowed {
                continue;
            }
            let start = memchr::memrchr(terminator, &region[..offset]).map_or(0, |pos| pos + 1);
            let end = memchr::memchr(terminator, &region[offset..])
                .map_or(region.len(), |pos| offset + pos);
            next_allowed = end + 1;
            counted_lines +=
                memchr::memchr_iter(terminator, &region[counted_to..start]).count() as u64;
            counted_to = start;
            self.line(base + counted_lines + 1, &region[start..end]);
        }

        self.scan.lines += memchr::memchr_iter(terminator, region).count() as u64;
        if let Some(stamp) = last_stamp(region, terminator) {
            self.scan.last_stamp = Some(stamp);
        }
    }

    fn line(&mut self, number: u64, bytes: &[u8]) {
        let full = candidate_text(bytes);
        let matched = self.matcher.match_line(&full);
        if matched.is_empty() {
            return;
        }
        if self.scan.matches.len() >= MAX_STORED_LINES {
            self.scan.dropped_matches += 1;
            return;
        }
        let header = parse_header(&full);
        let text = self.masker.mask(&full);
        let text: String = text.chars().take(EVIDENCE_CHARS).collect();
        self.scan.matches.push(MatchedLine {
            line: number,
            stamp: header.as_ref().map(|h| h.stamp),
            thread: header.as_ref().and_then(|h| h.thread).map(str::to_string),
            component: header
                .as_ref()
                .and_then(|h| h.component)
                .map(str::to_string),
            text,
            matched,
        });
    }

    fn find_first_stamp(&mut self, region: &[u8]) {
        for line in region.split(|&b| b == self.terminator).take(100) {
            if let Some(header) = parse_header(&line_text(line, 512)) {
                self.scan.first_stamp = Some(header.stamp);
                return;
            }
        }
    }
}

/// Returns a candidate line as [`line_text`] does, but borrowed when the
/// bytes are already clean UTF-8, as nearly every log line is. Most
/// candidates match no rule, and copying each one took about a tenth of the
/// CPU time in a perf profile of the benches/batch.sh bundles.
fn candidate_text(bytes: &[u8]) -> Cow<'_, str> {
    let trimmed = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
    // Fewer bytes than the character limit means no cut, and without NULs
    // or invalid sequences `line_text` has nothing to replace.
    if trimmed.len() <= MAX_LINE_BYTES && memchr::memchr(0, trimmed).is_none() {
        if let Ok(text) = std::str::from_utf8(trimmed) {
            return Cow::Borrowed(text);
        }
    }
    Cow::Owned(line_text(bytes, MAX_LINE_BYTES))
}

/// Returns the timestamp of the last line in the region that has one.
fn last_stamp(region: &[u8], terminator: u8) -> Option<LogStamp> {
    region
        .rsplit(|&b| b == terminator)
        .take(TAIL_LINES)
        .find_map(|line| parse_header(&line_text(line, 512)).map(|header| header.stamp))
}

/// Scans a member's bytes from `reader`, reading at most `cap` bytes.
pub fn scan_text(
    reader: &mut dyn Read,
    cap: u64,
    matcher: &Matcher,
    masker: &SecretMasker,
) -> io::Result<MemberScan> {
    let mut limited = reader.take(cap);
    let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
    fill(&mut limited, &mut buffer, CHUNK_BYTES)?;

    let encoding = sniff_encoding(&buffer);
    // UTF-16 is decoded to UTF-8 as it streams, so memory stays bounded for
    // it too and the loop below always receives UTF-8.
    let mut source: Box<dyn Read + '_> = if encoding == TextEncoding::Utf8 {
        Box::new(&mut limited)
    } else {
        let head = io::Cursor::new(std::mem::take(&mut buffer));
        let mut decoder = Utf16Reader::new(head.chain(&mut limited), encoding);
        fill(&mut decoder, &mut buffer, CHUNK_BYTES)?;
        Box::new(decoder)
    };

    let mut scanner = Scanner {
        matcher,
        masker,
        terminator: line_terminator(&buffer),
        scan: MemberScan::default(),
    };
    let mut last_byte = None;
    loop {
        let at_end = buffer.len() < CHUNK_BYTES;
        let cut = if at_end {
            buffer.len()
        } else {
            match memchr::memrchr(scanner.terminator, &buffer) {
                Some(pos) => pos + 1,
                // No terminator in a whole chunk: an overlong line, scanned
                // as a piece so memory stays bounded.
                None => buffer.len().min(MAX_LINE_BYTES),
            }
        };
        scanner.region(&buffer[..cut]);
        if cut > 0 {
            last_byte = Some(buffer[cut - 1]);
        }
        if at_end {
            break;
        }
        buffer.drain(..cut);
        let want = CHUNK_BYTES - buffer.len();
        fill(&mut source, &mut buffer, want)?;
    }
    drop(source);
    // A final line without a terminator still counts, wherever the last
    // chunk boundary fell.
    if last_byte.is_some_and(|byte| byte != scanner.terminator) {
        scanner.scan.lines += 1;
    }
    scanner.scan.bytes = cap - limited.limit();
    scanner.scan.encoding = Some(match encoding {
        TextEncoding::Utf8 => "UTF-8",
        TextEncoding::Utf16Le => "UTF-16LE",
        TextEncoding::Utf16Be => "UTF-16BE",
    });
    scanner.scan.truncated = limited.limit() == 0;
    Ok(scanner.scan)
}

/// Appends up to `want` bytes, stopping early only at the end of input.
fn fill(reader: &mut impl Read, buffer: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let target = buffer.len() + want;
    let mut piece = [0u8; 64 * 1024];
    while buffer.len() < target {
        let room = (target - buffer.len()).min(piece.len());
        match reader.read(&mut piece[..room]) {
            Ok(0) => break,
            Ok(read) => buffer.extend_from_slice(&piece[..read]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::RuleSet;

    fn scan(bytes: &[u8]) -> MemberScan {
        let rules = RuleSet::builtin().expect("rules");
        let matcher = Matcher::new(&rules).expect("matcher");
        let masker = SecretMasker::new(&["Pr0xy-S3cret!".to_string()]);
        scan_text(&mut &bytes[..], u64::MAX, &matcher, &masker).expect("scan")
    }

    #[test]
    fn finds_line_numbers_and_stamps() {
        let log = "(1, +0 ms) May 18 16:54:31 [1]: Event::HandleCreation: START a\r\n\
                   (2, +0 ms) May 18 16:54:32 [2]: TetraUpdater::Run: starting TETRA definition update\r\n\
                   (3, +0 ms) May 18 16:54:33 [2]: TetraUpdater::Run: curl error 6: Could not resolve host: tetra-defs.amp.cisco.com\r\n";
        let result = scan(log.as_bytes());
        assert_eq!(result.lines, 3);
        assert!(result.has_debug_marker);
        assert_eq!(result.matches.len(), 2);
        assert_eq!(result.matches[0].line, 2);
        assert_eq!(result.matches[1].line, 3);
        assert_eq!(
            result.matches[1].matched.causes[0].cause,
            "dns-resolution-failed"
        );
        assert_eq!(result.first_stamp.map(|s| s.second), Some(31));
        assert_eq!(result.last_stamp.map(|s| s.second), Some(33));
    }

    #[test]
    fn utf16_transcript_is_decoded() {
        let text = "* Trying 192.0.2.1:443...\r\ncurl: (6) Could not resolve host: tetra-defs.amp.cisco.com\r\n";
        let bytes: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let result = scan(&bytes);
        assert_eq!(result.encoding, Some("UTF-16LE"));
        assert_eq!(result.matches.len(), 1);
        assert_eq!(result.matches[0].line, 2);
    }

    #[test]
    fn line_numbers_survive_chunk_boundaries() {
        let mut log = String::new();
        let noise =
            "(1, +0 ms) May 18 16:54:31 [1]: Query::LookupExecute: attempting lookup with cloud\n";
        let lines = 2 * CHUNK_BYTES / noise.len() + 7;
        for _ in 0..lines {
            log.push_str(noise);
        }
        log.push_str("(2, +0 ms) May 18 16:55:00 [1]: X: WinHTTP error 12029 connecting\n");
        let result = scan(log.as_bytes());
        assert_eq!(result.lines, lines as u64 + 1);
        assert_eq!(result.matches.len(), 1);
        assert_eq!(result.matches[0].line, lines as u64 + 1);
    }

    #[test]
    fn overlong_line_and_lone_cr() {
        let mut log = vec![b'x'; 3 * MAX_LINE_BYTES];
        log.extend_from_slice(b" curl error 6: could not resolve host\n");
        let result = scan(&log);
        assert_eq!(result.lines, 1);
        assert_eq!(result.matches.len(), 1);
        assert!(result.matches[0].text.len() <= EVIDENCE_CHARS * 4);

        let cr = b"a\rWinHTTP error 12029\rb\r";
        let result = scan(cr);
        assert_eq!(result.lines, 3);
        assert_eq!(result.matches[0].line, 2);
    }

    #[test]
    fn candidate_text_equals_line_text() {
        let long = vec![b'a'; MAX_LINE_BYTES + 1];
        let cases: [&[u8]; 8] = [
            b"plain line",
            b"crlf line\r",
            b"\xEF\xBB\xBFbom line\r",
            b"nul\0inside",
            b"bad \xFF byte",
            "日本語の行".as_bytes(),
            b"",
            &long,
        ];
        for bytes in cases {
            assert_eq!(
                candidate_text(bytes),
                line_text(bytes, MAX_LINE_BYTES),
                "{:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
            );
        }
    }

    #[test]
    fn secrets_are_masked_in_evidence() {
        let result = scan(b"proxy auth failed: 407 with password Pr0xy-S3cret!\n");
        assert_eq!(result.matches.len(), 1);
        assert!(!result.matches[0].text.contains("Pr0xy-S3cret!"));
    }
}
