//! Turns packet-capture events into observations. Each event's text is
//! checked by the same rules as log lines, so the knowledge stays in one
//! place.

use crate::capture::{read_capture, CaptureEventKind};
use crate::diagnose::Observation;
use crate::knowledge::{EventKind, Matcher};
use crate::model::SourceKind;
use crate::redact::SecretMasker;

/// Reads a capture and appends one observation per event that matches a
/// rule or shows network activity worth a timeline entry.
pub fn collect(
    bytes: &[u8],
    file: &str,
    matcher: &Matcher,
    masker: &SecretMasker,
    observations: &mut Vec<Observation>,
    warnings: &mut Vec<String>,
) {
    let report = match read_capture(bytes) {
        Ok(report) => report,
        Err(err) => {
            warnings.push(format!("{file}: capture unreadable: {err}"));
            return;
        }
    };
    for warning in report.warnings {
        warnings.push(format!("{file}: {warning}"));
    }
    for event in report.events {
        let matched = matcher.match_line(&event.text);
        let successful_fetch =
            matches!(event.kind, CaptureEventKind::HttpResponse) && event.text.contains(" 200 ");
        let notable = !matched.causes.is_empty()
            || matches!(
                event.kind,
                CaptureEventKind::DnsError
                    | CaptureEventKind::TcpRefused
                    | CaptureEventKind::TcpNoAnswer
                    | CaptureEventKind::TcpReset
                    | CaptureEventKind::TlsAlert
                    | CaptureEventKind::TlsCertificate
                    | CaptureEventKind::HttpResponse
            );
        if !notable {
            continue;
        }
        observations.push(Observation {
            source: SourceKind::Capture,
            file: file.to_string(),
            line: Some(event.packet),
            time: Some(event.time.naive_utc()),
            utc: true,
            text: masker.mask(&event.text).into_owned(),
            causes: matched.causes.iter().map(|hit| hit.cause.clone()).collect(),
            event: matched
                .event
                .or(successful_fetch.then_some(EventKind::Success)),
            running: true,
        });
    }
}
