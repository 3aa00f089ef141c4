//! The default terminal report.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, ContentArrangement, Table};

use super::printable;
use crate::model::{Finding, Report};

/// Timeline entries shown; the JSON output has them all.
const TIMELINE_SHOWN: usize = 20;
/// Characters of a log line shown in a table cell.
const CELL_CHARS: usize = 160;

fn new_table(width: Option<u16>) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_width(width.unwrap_or(120));
    table
}

fn cut(text: &str) -> String {
    let text = printable(text);
    if text.chars().count() > CELL_CHARS {
        text.chars().take(CELL_CHARS).collect::<String>() + "…"
    } else {
        text
    }
}

fn or_dash(value: Option<&str>) -> String {
    value.map(printable).unwrap_or_else(|| "-".to_string())
}

/// Renders one report for a terminal.
pub fn render_table(report: &Report, width: Option<u16>) -> String {
    let mut out = String::new();
    out.push_str(&format!("Bundle:  {}\n", printable(&report.bundle)));
    out.push_str(&format!("Verdict: {}\n", printable(&report.verdict)));
    if let Some(id) = &report.root_cause {
        out.push_str(&format!("Root cause: {id}\n"));
    }
    if report.redacted {
        out.push_str("(identifiers in this report are redacted)\n");
    }
    out.push('\n');

    let mut facts = new_table(width);
    facts.set_header(vec!["Endpoint", ""]);
    let definitions = &report.definitions;
    let last_error = definitions.last_error.as_ref().map(|error| {
        let meaning = error
            .meaning
            .clone()
            .unwrap_or_else(|| "undocumented value".to_string());
        match (error.unsigned, error.signed) {
            (Some(unsigned), Some(signed)) => format!("{unsigned} ({signed}): {meaning}"),
            _ => format!("{} (not a number)", error.text),
        }
    });
    let proxy = report.proxy.as_ref().map(|proxy| {
        let mut text = format!(
            "{}:{}",
            proxy.host.as_deref().unwrap_or("?"),
            proxy.port.as_deref().unwrap_or("?")
        );
        if let Some(user) = &proxy.username {
            text.push_str(&format!(" user {user}"));
        }
        if proxy.password_set {
            text.push_str(" (password set)");
        }
        text
    });
    let versions = if report.connector.versions_found.len() > 1 {
        format!(
            "{} (also found: {})",
            or_dash(report.connector.version.as_deref()),
            report.connector.versions_found[1..].join(", ")
        )
    } else {
        or_dash(report.connector.version.as_deref())
    };
    let rows: Vec<(&str, String)> = vec![
        ("Connector GUID", or_dash(report.connector.guid.as_deref())),
        ("Connector version", versions),
        ("TETRA definitions", or_dash(definitions.version.as_deref())),
        (
            "Last success (UTC)",
            or_dash(definitions.last_success.as_deref()),
        ),
        (
            "Last check (UTC)",
            or_dash(definitions.last_check.as_deref()),
        ),
        (
            "Hours since success",
            definitions
                .hours_since_success
                .map_or("-".to_string(), |hours| format!("{hours}")),
        ),
        (
            "Last update error",
            last_error.unwrap_or_else(|| "-".to_string()),
        ),
        (
            "Proxy",
            match (proxy, &report.policy) {
                (Some(proxy), _) => printable(&proxy),
                (None, Some(_)) => "none (the policy sets no proxy)".to_string(),
                (None, None) => "unknown (policy.xml missing)".to_string(),
            },
        ),
        (
            "Debug logs",
            if report.logs.debug {
                "yes".to_string()
            } else {
                "no".to_string()
            },
        ),
    ];
    for (name, value) in rows {
        facts.add_row(vec![Cell::new(name), Cell::new(value)]);
    }
    out.push_str(&facts.to_string());
    out.push_str("\n\n");

    if report.findings.is_empty() {
        out.push_str("Findings: none\n\n");
    } else {
        let mut findings = new_table(width);
        findings.set_header(vec!["Severity", "Finding", "Confidence", "Summary"]);
        for finding in &report.findings {
            findings.add_row(vec![
                format!("{:?}", finding.severity).to_lowercase(),
                finding.id.clone(),
                format!("{:?}", finding.confidence).to_lowercase(),
                printable(&finding.summary),
            ]);
        }
        out.push_str(&findings.to_string());
        out.push_str("\n\n");
    }

    if let Some(root) = report
        .findings
        .iter()
        .find(|finding| Some(&finding.id) == report.root_cause.as_ref())
    {
        out.push_str(&root_cause_section(root, width));
    }

    if !report.timeline.is_empty() {
        let skipped = report.timeline.len().saturating_sub(TIMELINE_SHOWN);
        let mut timeline = new_table(width);
        timeline.set_header(vec!["Time (endpoint)", "Kind", "Where", "Message"]);
        for entry in report.timeline.iter().skip(skipped) {
            let place = match entry.line {
                Some(line) => format!("{}:{line}", short_path(&entry.file)),
                None => short_path(&entry.file),
            };
            timeline.add_row(vec![
                or_dash(entry.time.as_deref()),
                format!("{:?}", entry.kind).to_lowercase(),
                printable(&place),
                cut(&entry.message),
            ]);
        }
        out.push_str(&format!(
            "Timeline of update activity ({} entries{}):\n",
            report.timeline.len(),
            if skipped > 0 {
                format!(", last {TIMELINE_SHOWN} shown")
            } else {
                String::new()
            }
        ));
        out.push_str(&timeline.to_string());
        out.push_str("\n\n");
    }

    if !report.warnings.is_empty() {
        out.push_str("Warnings:\n");
        for warning in &report.warnings {
            out.push_str(&format!("  - {}\n", printable(warning)));
        }
    }
    out
}

fn root_cause_section(root: &Finding, width: Option<u16>) -> String {
    let mut out = format!("Root cause: {} ({})\n", printable(&root.title), root.id);
    let mut evidence = new_table(width);
    evidence.set_header(vec!["Evidence", "Time", "Text"]);
    for item in &root.evidence {
        let place = match item.line {
            Some(line) => format!("{}:{line}", short_path(&item.file)),
            None => short_path(&item.file),
        };
        evidence.add_row(vec![
            printable(&place),
            or_dash(item.time.as_deref()),
            cut(&crate::diagnose::timeline_message(&item.text)),
        ]);
    }
    out.push_str(&evidence.to_string());
    if root.evidence_count as usize > root.evidence.len() {
        out.push_str(&format!(
            "\n({} evidence items in all; --format json lists the latest)",
            root.evidence_count
        ));
    }
    out.push_str("\nNext steps:\n");
    for (number, action) in root.actions.iter().enumerate() {
        // Actions quote settings from policy.xml, such as the proxy host.
        out.push_str(&format!("  {}. {}\n", number + 1, printable(action)));
    }
    out.push('\n');
    out
}

/// Drops the `Program Files/Cisco/AMP/` prefix that every member shares.
fn short_path(path: &str) -> String {
    match path.find("Program Files/Cisco/AMP/") {
        Some(start) => format!(
            "{}{}",
            &path[..start],
            &path[start + "Program Files/Cisco/AMP/".len()..]
        ),
        None => path.to_string(),
    }
}
