//! Every fixture bundle against its expected root cause and its saved JSON
//! report. Set UPDATE_GOLDEN=1 to rewrite the saved reports after a change
//! that is meant to alter them, and review the diff.

use std::path::{Path, PathBuf};

use tetra_triage::input::Limits;
use tetra_triage::knowledge::RuleSet;
use tetra_triage::model::SourceKind;
use tetra_triage::report::render_json;
use tetra_triage::Analyzer;

/// Expected root cause per fixture; `None` means updates are healthy.
const EXPECTED: &[(&str, Option<&str>)] = &[
    ("backslash_", Some("dns-resolution-failed")),
    ("capture-dns_", Some("dns-resolution-failed")),
    ("capture-proxy-407_", Some("proxy-auth-failed")),
    ("capture-tls-inspection_", Some("tls-untrusted-certificate")),
    ("cisco-note-ok_", None),
    ("disabled_", Some("updates-disabled")),
    ("dns_", Some("dns-resolution-failed")),
    ("healthy_", None),
    ("interrupted_", Some("download-interrupted")),
    ("japanese_", Some("tls-revocation-check-failed")),
    (
        "multi-version-new-fails_",
        Some("tls-untrusted-certificate"),
    ),
    ("multi-version-old-dns_", None),
    ("nested_", Some("tls-revocation-check-failed")),
    ("no-policy_", Some("proxy-auth-failed")),
    ("not-debug_", None),
    ("proxy-auth_", Some("proxy-auth-failed")),
    ("proxy-connect_", Some("proxy-connect-failed")),
    ("proxy-download_", Some("proxy-download-failed")),
    ("real-7z_", Some("proxy-connect-failed")),
    ("revocation_", Some("tls-revocation-check-failed")),
    ("revoked_", Some("tls-certificate-revoked")),
    ("unknown_", Some("unknown-update-error")),
    ("unpacked", Some("download-interrupted")),
    ("unreachable_", Some("server-unreachable")),
    ("untrusted_", Some("tls-untrusted-certificate")),
    ("winhttp-direct_", Some("tls-revocation-check-failed")),
    ("year-rollover_", Some("server-unreachable")),
];

fn analyzer() -> Analyzer {
    Analyzer::new(RuleSet::builtin().expect("rules"), Limits::default()).expect("analyzer")
}

fn fixture(prefix: &str) -> PathBuf {
    let dir = Path::new("fixtures/bundles");
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures/bundles exists")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(prefix))
        })
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        1,
        "exactly one fixture starts with {prefix}: {names:?}"
    );
    // Relative paths keep the saved reports independent of the checkout.
    names.remove(0)
}

#[test]
fn root_causes_match_expected() {
    let analyzer = analyzer();
    let mut wrong = Vec::new();
    for (prefix, expected) in EXPECTED {
        let report = analyzer
            .analyze(&fixture(prefix))
            .expect("fixture analyzes");
        if report.root_cause.as_deref() != *expected {
            wrong.push(format!(
                "{prefix}: expected {expected:?}, got {:?}",
                report.root_cause
            ));
        }
    }
    assert!(wrong.is_empty(), "wrong root causes:\n{}", wrong.join("\n"));
}

#[test]
fn reports_match_golden_json() {
    let analyzer = analyzer();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut differing = Vec::new();
    for (prefix, _) in EXPECTED {
        let path = fixture(prefix);
        let report = analyzer.analyze(&path).expect("fixture analyzes");
        let actual = render_json(std::slice::from_ref(&report));
        let golden =
            Path::new("tests/golden").join(format!("{}.json", prefix.trim_end_matches('_')));
        if update {
            std::fs::write(&golden, &actual).expect("write golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|err| {
            panic!("{}: {err}; run with UPDATE_GOLDEN=1 once", golden.display())
        });
        if expected != actual {
            differing.push(golden.display().to_string());
        }
    }
    assert!(
        differing.is_empty(),
        "reports differ from: {differing:?} (diff them with --format json output)"
    );
}

#[test]
fn truncated_bundle_is_an_error() {
    let err = analyzer()
        .analyze(&fixture("truncated_"))
        .expect_err("truncated bundle fails");
    let message = err.to_string();
    assert!(message.contains("truncated_"), "{message}");
    assert!(message.contains("damaged archive"), "{message}");
}

#[test]
fn evidence_cites_file_and_line() {
    let report = analyzer()
        .analyze(&fixture("dns_"))
        .expect("fixture analyzes");
    let root = report
        .findings
        .iter()
        .find(|f| f.id == "dns-resolution-failed")
        .expect("dns finding");
    let from_logs: Vec<_> = root
        .evidence
        .iter()
        .filter(|item| item.source == SourceKind::Log)
        .collect();
    assert!(!from_logs.is_empty());
    for item in from_logs {
        assert!(
            item.file.ends_with("sfc.exe.log") || item.file.contains("sfc.exe.log."),
            "{}",
            item.file
        );
        assert!(item.line.is_some());
        assert!(item.time.is_some());
    }
}

#[test]
fn year_rollover_orders_timeline() {
    let report = analyzer()
        .analyze(&fixture("year-rollover_"))
        .expect("fixture analyzes");
    let times: Vec<&str> = report
        .timeline
        .iter()
        .filter_map(|entry| entry.time.as_deref())
        .collect();
    assert!(
        times.iter().any(|time| time.starts_with("2023-12-31")),
        "{times:?}"
    );
    assert!(
        times.iter().any(|time| time.starts_with("2024-01-01")),
        "{times:?}"
    );
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
}

#[test]
fn not_debug_bundle_says_so() {
    let report = analyzer()
        .analyze(&fixture("not-debug_"))
        .expect("fixture analyzes");
    assert!(report.findings.iter().any(|f| f.id == "logs-not-debug"));
    assert!(report.findings.iter().any(|f| f.id == "definitions-stale"));
}

#[test]
fn older_version_failures_are_history() {
    let report = analyzer()
        .analyze(&fixture("multi-version-old-dns_"))
        .expect("fixture analyzes");
    assert_eq!(report.connector.versions_found.len(), 2);
    assert!(report
        .findings
        .iter()
        .any(|f| f.id == "update-errors-resolved"));
}

#[test]
fn capture_alone_proves_proxy_auth() {
    let report = analyzer()
        .analyze(&fixture("capture-proxy-407_"))
        .expect("fixture analyzes");
    assert_eq!(report.root_cause.as_deref(), Some("proxy-auth-failed"));
    let root = &report.findings[0];
    assert!(root
        .evidence
        .iter()
        .all(|item| item.source == SourceKind::Capture));
    let cited = &root.evidence[0];
    assert!(cited.file.ends_with("amp_update.pcap"), "{}", cited.file);
    assert!(cited.line.is_some(), "packet number cited");
    assert!(cited.text.contains("407"), "{}", cited.text);
}

#[test]
fn timeline_interleaves_log_and_capture() {
    let report = analyzer()
        .analyze(&fixture("capture-proxy-407_"))
        .expect("fixture analyzes");
    assert_eq!(report.logs.utc_offset_minutes, Some(-300));
    let sources: Vec<bool> = report
        .timeline
        .iter()
        .map(|entry| entry.file.ends_with(".pcap"))
        .collect();
    assert!(
        sources.contains(&true) && sources.contains(&false),
        "{sources:?}"
    );
    let times: Vec<&str> = report
        .timeline
        .iter()
        .filter_map(|entry| entry.time.as_deref())
        .collect();
    assert_eq!(
        times.len(),
        report.timeline.len(),
        "every entry has a local time"
    );
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    assert!(
        times.iter().all(|time| !time.ends_with('Z')),
        "capture times shown in local time"
    );
}

#[test]
fn two_sources_raise_confidence() {
    let report = analyzer()
        .analyze(&fixture("capture-dns_"))
        .expect("fixture analyzes");
    let root = &report.findings[0];
    assert_eq!(root.id, "dns-resolution-failed");
    assert_eq!(format!("{:?}", root.confidence), "High");
    assert_eq!(report.network.dns_servers, ["10.44.0.53", "10.44.0.54"]);
}

#[test]
fn capture_reveals_tls_inspection_issuer() {
    let report = analyzer()
        .analyze(&fixture("capture-tls-inspection_"))
        .expect("fixture analyzes");
    let root = &report.findings[0];
    assert_eq!(root.id, "tls-untrusted-certificate");
    assert!(
        root.evidence
            .iter()
            .any(|item| item.text.contains("Example TLS Inspection CA")),
        "{:?}",
        root.evidence
    );
    assert!(report
        .findings
        .iter()
        .all(|finding| finding.id != "unknown-update-error"));
}

#[test]
fn winhttp_direct_fixture_explains_revocation() {
    let report = analyzer()
        .analyze(&fixture("winhttp-direct_"))
        .expect("fixture analyzes");
    assert_eq!(report.network.winhttp_proxy.as_deref(), Some("direct"));
    assert!(report
        .findings
        .iter()
        .any(|finding| finding.id == "winhttp-proxy-missing"));
}
