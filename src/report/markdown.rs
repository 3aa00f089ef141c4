//! A Markdown note to paste into a TAC case.

use super::printable;
use crate::model::Report;

/// Timeline entries included in the note.
const TIMELINE_SHOWN: usize = 15;

/// Escapes text for a Markdown table cell or inline code.
fn cell(text: &str) -> String {
    // Angle brackets are escaped so bundle text cannot inject HTML into a
    // rendered case note.
    printable(text)
        .replace('|', "\\|")
        .replace('`', "'")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders one report as a case note.
pub fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "### TETRA update triage: `{}`\n\n",
        cell(&report.bundle)
    ));
    out.push_str(&format!("**Verdict:** {}\n\n", printable(&report.verdict)));
    if report.redacted {
        out.push_str("_Identifiers in this note are redacted._\n\n");
    }

    out.push_str("| Endpoint | |\n|---|---|\n");
    let definitions = &report.definitions;
    let rows = [
        ("Connector GUID", report.connector.guid.clone()),
        ("Connector version", report.connector.version.clone()),
        ("TETRA definitions", definitions.version.clone()),
        ("Last success (UTC)", definitions.last_success.clone()),
        (
            "Hours since success",
            definitions.hours_since_success.map(|h| h.to_string()),
        ),
        (
            "Last update error",
            definitions
                .last_error
                .as_ref()
                .map(|error| match (error.unsigned, error.signed) {
                    (Some(unsigned), Some(signed)) => {
                        format!(
                            "{unsigned} ({signed}) {}",
                            error.meaning.clone().unwrap_or_default()
                        )
                    }
                    _ => error.text.clone(),
                }),
        ),
        ("Last check (UTC)", definitions.last_check.clone()),
        (
            "Proxy",
            Some(match (&report.proxy, &report.policy) {
                (Some(proxy), _) => {
                    let mut text = format!(
                        "{}:{}",
                        proxy.host.clone().unwrap_or_default(),
                        proxy.port.clone().unwrap_or_default()
                    );
                    if let Some(user) = &proxy.username {
                        text.push_str(&format!(" user {user}"));
                    }
                    text
                }
                (None, Some(_)) => "none (the policy sets no proxy)".to_string(),
                (None, None) => "unknown (policy.xml missing)".to_string(),
            }),
        ),
        (
            "WinHTTP proxy (SYSTEM)",
            report.network.winhttp_proxy.clone(),
        ),
        (
            "Debug logs",
            Some(if report.logs.debug { "yes" } else { "no" }.to_string()),
        ),
    ];
    for (name, value) in rows {
        out.push_str(&format!(
            "| {name} | {} |\n",
            cell(value.as_deref().unwrap_or("-"))
        ));
    }
    out.push('\n');

    for finding in &report.findings {
        let marker = if Some(&finding.id) == report.root_cause.as_ref() {
            " (root cause)"
        } else {
            ""
        };
        out.push_str(&format!(
            "#### {}{marker}\n`{}`, {:?} severity, {:?} confidence. {}\n\n",
            printable(&finding.title),
            finding.id,
            finding.severity,
            finding.confidence,
            cell(&finding.summary)
        ));
        for item in &finding.evidence {
            let place = match item.line {
                Some(line) => format!("{}:{line}", item.file),
                None => item.file.clone(),
            };
            out.push_str(&format!(
                "- `{}` {}: `{}`\n",
                cell(&place),
                item.time.as_deref().unwrap_or(""),
                cell(&item.text)
            ));
        }
        if !finding.actions.is_empty() {
            out.push_str("\nNext steps:\n");
            for (number, action) in finding.actions.iter().enumerate() {
                // Actions quote settings from policy.xml, such as the proxy host.
                out.push_str(&format!("{}. {}\n", number + 1, printable(action)));
            }
        }
        out.push('\n');
    }

    if !report.timeline.is_empty() {
        out.push_str("#### Timeline (endpoint local time)\n\n| Time | Kind | Where | Message |\n|---|---|---|---|\n");
        let skip = report.timeline.len().saturating_sub(TIMELINE_SHOWN);
        for entry in report.timeline.iter().skip(skip) {
            let place = match entry.line {
                Some(line) => format!("{}:{line}", entry.file),
                None => entry.file.clone(),
            };
            out.push_str(&format!(
                "| {} | {:?} | {} | {} |\n",
                entry.time.as_deref().unwrap_or("-"),
                entry.kind,
                cell(&place),
                cell(&entry.message)
            ));
        }
        out.push('\n');
    }
    if !report.warnings.is_empty() {
        out.push_str("#### Warnings\n\n");
        for warning in &report.warnings {
            out.push_str(&format!("- {}\n", cell(warning)));
        }
    }
    out
}
