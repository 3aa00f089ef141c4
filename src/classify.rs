//! Deciding what a bundle member is, from its name and first bytes.

use serde::Serialize;

use crate::text::{decode_utf16, sniff_encoding, TextEncoding};

/// The kinds of member the analysis reads. Everything else is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    /// `sfc.exe.log` or a rotated sibling; `rotation` is 0 for the current
    /// file and N for `sfc.exe.log.N`.
    SfcLog {
        version: Option<ConnectorVersion>,
        rotation: u32,
    },
    LocalXml,
    PolicyXml,
    /// A packet capture (pcap or pcapng).
    Capture,
    /// Text output of a network check: `curl -v`, `Resolve-DnsName`,
    /// `netsh winhttp show proxy`, `Test-NetConnection` and the like.
    Transcript,
    Other,
}

/// A connector version folder name such as `8.1.7.21417`, compared
/// numerically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ConnectorVersion(pub Vec<u32>);

impl ConnectorVersion {
    /// Parses `major.minor.patch.build`; three or four numeric parts.
    pub fn parse(text: &str) -> Option<ConnectorVersion> {
        let parts: Option<Vec<u32>> = text.split('.').map(|part| part.parse().ok()).collect();
        parts
            .filter(|parts| (3..=4).contains(&parts.len()))
            .map(ConnectorVersion)
    }
}

impl std::fmt::Display for ConnectorVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&text.join("."))
    }
}

/// Text that marks a transcript of a network check, matched
/// case-insensitively in the first bytes of a text file.
const TRANSCRIPT_MARKERS: &[&str] = &[
    "* trying ",
    "* connected to ",
    "curl: (",
    "< http/",
    "> get ",
    "> connect ",
    "* schannel:",
    "resolve-dnsname",
    "section ipaddress",
    "could not resolve host",
    "current winhttp proxy settings",
    "direct access (no proxy server)",
    "tcptestsucceeded",
    "test-netconnection",
    "invoke-webrequest",
    "non-authoritative answer",
    "windows ip configuration",
    "dns servers . .",
    "nslookup",
];

/// File name words that mark a transcript even before its content is read.
const TRANSCRIPT_NAMES: &[&str] = &[
    "curl",
    "resolve",
    "nslookup",
    "winhttp",
    "netsh",
    "proxy",
    "connectivity",
    "ipconfig",
    "dns",
];

/// Classifies a member by its bundle path and first bytes.
pub fn classify(path: &str, head: &[u8]) -> MemberKind {
    let file_name = path.rsplit('/').next().unwrap_or(path);
    let lower = file_name.to_ascii_lowercase();

    if is_capture_magic(head) {
        return MemberKind::Capture;
    }
    if lower == "local.xml" {
        return MemberKind::LocalXml;
    }
    if lower == "policy.xml" {
        return MemberKind::PolicyXml;
    }
    if let Some(rotation) = sfc_log_rotation(&lower) {
        return MemberKind::SfcLog {
            version: version_folder(path),
            rotation,
        };
    }
    let texty = lower.ends_with(".txt")
        || lower.ends_with(".log")
        || lower.ends_with(".out")
        || !lower.contains('.');
    if texty && looks_like_transcript(head, &lower) {
        return MemberKind::Transcript;
    }
    MemberKind::Other
}

/// Returns the rotation number of an `sfc.exe.log` file name: 0 for the
/// current file, N for `sfc.exe.log.N` or `sfc.exe.N.log`.
fn sfc_log_rotation(lower_name: &str) -> Option<u32> {
    let rest = lower_name.strip_prefix("sfc.exe")?;
    match rest {
        ".log" => Some(0),
        _ => {
            let digits = rest
                .strip_prefix(".log.")
                .or_else(|| rest.strip_prefix('.').and_then(|r| r.strip_suffix(".log")))?;
            digits.parse().ok()
        }
    }
}

/// Returns the highest-level `N.N.N.N` folder on the path.
fn version_folder(path: &str) -> Option<ConnectorVersion> {
    path.split('/')
        .rev()
        .skip(1)
        .find_map(ConnectorVersion::parse)
}

fn looks_like_transcript(head: &[u8], lower_name: &str) -> bool {
    let encoding = sniff_encoding(head);
    let text = match encoding {
        TextEncoding::Utf8 => String::from_utf8_lossy(head).to_lowercase(),
        _ => String::from_utf8_lossy(&decode_utf16(head, encoding)).to_lowercase(),
    };
    if head.iter().take(512).filter(|&&b| b == 0).count() > 8 && encoding == TextEncoding::Utf8 {
        return false;
    }
    TRANSCRIPT_MARKERS
        .iter()
        .any(|marker| text.contains(marker))
        || (TRANSCRIPT_NAMES
            .iter()
            .any(|word| lower_name.contains(word))
            && !text.trim().is_empty())
}

/// Returns whether the bytes start like a pcap (either byte order, micro- or
/// nanosecond) or pcapng file.
pub fn is_capture_magic(head: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xD4, 0xC3, 0xB2, 0xA1],
        [0xA1, 0xB2, 0xC3, 0xD4],
        [0x4D, 0x3C, 0xB2, 0xA1],
        [0xA1, 0xB2, 0x3C, 0x4D],
        [0x0A, 0x0D, 0x0D, 0x0A],
    ];
    head.len() >= 4 && MAGICS.iter().any(|magic| head[..4] == *magic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_logs_with_version_and_rotation() {
        let kind = classify(
            "Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log.2",
            b"(1, +0 ms) May",
        );
        let expected = MemberKind::SfcLog {
            version: Some(ConnectorVersion(vec![8, 1, 7, 21417])),
            rotation: 2,
        };
        assert_eq!(kind, expected);
        assert_eq!(
            classify("x/SFC.EXE.LOG", b""),
            MemberKind::SfcLog {
                version: None,
                rotation: 0
            }
        );
    }

    #[test]
    fn finds_xml_by_name() {
        assert_eq!(
            classify("Program Files/Cisco/AMP/local.xml", b"<config>"),
            MemberKind::LocalXml
        );
        assert_eq!(
            classify("Program Files/Cisco/AMP/Policy.xml", b"<Signature"),
            MemberKind::PolicyXml
        );
    }

    #[test]
    fn finds_transcripts_by_content() {
        assert_eq!(
            classify("notes/out.txt", b"* Trying 192.0.2.1:443...\n"),
            MemberKind::Transcript
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "Name  Type TTL Section IPAddress"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        assert_eq!(classify("dns.txt", &utf16), MemberKind::Transcript);
        assert_eq!(classify("readme.txt", b"nothing to see"), MemberKind::Other);
    }

    #[test]
    fn versions_compare_numerically() {
        let older = ConnectorVersion::parse("8.1.5.21322").expect("version");
        let newer = ConnectorVersion::parse("8.1.10.1").expect("version");
        assert!(newer > older);
        assert!(ConnectorVersion::parse("history").is_none());
    }
}
