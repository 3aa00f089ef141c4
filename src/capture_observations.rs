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
    public_cas: &[String],
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
        let mut matched = matcher.match_line(&event.text);
        if event.kind == CaptureEventKind::TlsCertificate
            && is_inspected_cisco_certificate(&event.text, public_cas)
        {
            matched.causes.push(crate::knowledge::CauseHit {
                cause: "tls-untrusted-certificate".to_string(),
                rank: 0,
                via: vec!["certificate-issuer".to_string()],
            });
        }
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
            )
            || (event.kind == CaptureEventKind::DnsAnswer
                && names_update_or_revocation_host(&event.text));
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

/// Returns whether the text names a TETRA update server or a CRL/OCSP host,
/// the DNS answers worth a timeline entry.
fn names_update_or_revocation_host(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["tetra-defs", "ocsp", "crl", "identrust"]
        .iter()
        .any(|word| lower.contains(word))
}

/// Returns whether a certificate event shows a Cisco server's certificate
/// from an issuer that is not one of the public CAs Cisco uses.
fn is_inspected_cisco_certificate(text: &str, public_cas: &[String]) -> bool {
    let lower = text.to_ascii_lowercase();
    let Some((subject, issuer)) = lower.split_once(" issuer ") else {
        return false;
    };
    subject.contains("cisco.com")
        && !public_cas
            .iter()
            .any(|ca| issuer.contains(&ca.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_issuer_for_cisco_host_is_inspection() {
        let cas = vec!["IdenTrust".to_string(), "HydrantID".to_string()];
        let inspected = "TLS certificate subject CN=tetra-defs.amp.cisco.com issuer CN=Example TLS Inspection CA, O=Example Corp";
        assert!(is_inspected_cisco_certificate(inspected, &cas));
        let genuine = "TLS certificate subject CN=tetra-defs.amp.cisco.com issuer CN=HydrantID Server CA O1, O=IdenTrust";
        assert!(!is_inspected_cisco_certificate(genuine, &cas));
        let other = "TLS certificate subject CN=intranet.example issuer CN=Example CA";
        assert!(!is_inspected_cisco_certificate(other, &cas));
    }
}
