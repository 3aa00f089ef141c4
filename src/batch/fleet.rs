//! The `batch` table: fleet counts, root causes, definition versions and
//! update age, then one row per bundle.

use std::collections::BTreeMap;
use std::path::Path;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};
use tetra_triage::logline::parse_header;
use tetra_triage::report::printable;

use super::{shown_path, Row};

/// Table width for a terminal whose width is unknown.
pub(super) const DEFAULT_WIDTH: u16 = 120;
/// Characters of evidence text shown per bundle row.
const EVIDENCE_CHARS: usize = 100;
/// Definition versions listed one per row, newest first; older ones share
/// one row.
const VERSION_ROWS: usize = 12;
/// The buckets of time since the last successful update, in hours.
const AGE_BUCKETS: [(&str, f64); 4] = [
    ("< 24 h", 24.0),
    ("1-3 d", 72.0),
    ("3-7 d", 168.0),
    ("> 7 d", f64::INFINITY),
];

/// Returns an empty table that wraps cells to `width`, or never wraps them
/// without one, which keeps one line per bundle in a file.
fn new_table(width: Option<u16>) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    match width {
        Some(width) => {
            table
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(width);
        }
        None => {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    table
}

fn or_dash(value: Option<&str>) -> String {
    value.map(printable).unwrap_or_else(|| "-".to_string())
}

fn cut(text: &str) -> String {
    let text = printable(text);
    if text.chars().count() > EVIDENCE_CHARS {
        text.chars().take(EVIDENCE_CHARS).collect::<String>() + "…"
    } else {
        text
    }
}

/// What the table shows besides the bundle rows.
pub(super) struct Fleet<'a> {
    /// The batch directory, which bundle paths are shown relative to.
    pub root: &'a Path,
    /// Whether identifiers are redacted, which hides the directory name.
    pub redacted: bool,
    pub skipped: u64,
    /// Width to wrap cells to; `None` never wraps.
    pub width: Option<u16>,
}

/// Renders the fleet summary and the bundle rows, which come in path order.
pub(super) fn render(fleet: &Fleet<'_>, rows: &[Row]) -> String {
    let Fleet {
        root,
        redacted,
        skipped,
        width,
    } = *fleet;
    let failed = rows.iter().filter(|row| row.error.is_some()).count();
    let directory = if redacted {
        "the directory (name redacted)".to_string()
    } else {
        printable(&root.display().to_string())
    };
    let mut out = format!("Bundles under {directory}\n");
    out.push_str(&format!("  Analyzed:       {}\n", rows.len() - failed));
    out.push_str(&format!("  Failed to read: {failed}\n"));
    out.push_str(&format!(
        "  Skipped files:  {skipped} (neither archives nor bundle folders)\n\n"
    ));
    if rows.is_empty() {
        return out;
    }
    let analyzed: Vec<&Row> = rows.iter().filter(|row| row.error.is_none()).collect();
    if !analyzed.is_empty() {
        out.push_str(&format!(
            "Root causes:\n{}\n\n",
            causes_table(root, &analyzed, width)
        ));
        out.push_str(&format!(
            "TETRA definition versions:\n{}\n\n",
            versions_table(&analyzed, width)
        ));
        out.push_str(&format!(
            "Time from the last successful update to the last check:\n{}\n\n",
            age_table(&analyzed, width)
        ));
    }
    out.push_str(&format!("Bundles:\n{}\n", bundles_table(root, rows, width)));
    out
}

fn causes_table(root: &Path, rows: &[&Row], width: Option<u16>) -> String {
    // Cause id, or None for bundles without a current failure, to the count
    // and the first bundle in path order.
    let mut causes: BTreeMap<Option<&str>, (usize, &str)> = BTreeMap::new();
    for row in rows {
        causes
            .entry(row.root_cause.as_deref())
            .or_insert((0, row.bundle.as_str()))
            .0 += 1;
    }
    let mut sorted: Vec<_> = causes.into_iter().collect();
    sorted.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
    let mut table = new_table(width);
    table.set_header(vec!["Root cause", "Bundles", "Example bundle"]);
    for (cause, (count, example)) in sorted {
        table.add_row(vec![
            cause.map_or_else(|| "none (no current failure)".to_string(), printable),
            count.to_string(),
            printable(&shown_path(root, example)),
        ]);
    }
    align_right(&mut table, 1);
    table.to_string()
}

fn versions_table(rows: &[&Row], width: Option<u16>) -> String {
    let mut versions: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    for row in rows {
        *versions.entry(row.definitions.as_deref()).or_default() += 1;
    }
    let mut table = new_table(width);
    table.set_header(vec!["Definitions", "Bundles"]);
    // Newest first, unknown last; `None` sorts first in the map.
    let unknown = versions.remove(&None);
    let newest_first: Vec<(Option<&str>, usize)> = versions.into_iter().rev().collect();
    for (version, count) in newest_first.iter().take(VERSION_ROWS) {
        table.add_row(vec![or_dash(*version), count.to_string()]);
    }
    if newest_first.len() > VERSION_ROWS {
        let older = &newest_first[VERSION_ROWS..];
        let count: usize = older.iter().map(|(_, count)| count).sum();
        table.add_row(vec![
            format!("{} older versions", older.len()),
            count.to_string(),
        ]);
    }
    if let Some(count) = unknown {
        table.add_row(vec!["unknown".to_string(), count.to_string()]);
    }
    align_right(&mut table, 1);
    table.to_string()
}

/// Returns the bucket label for hours since the last successful update.
fn age_bucket(hours: Option<f64>) -> &'static str {
    let Some(hours) = hours.filter(|hours| !hours.is_nan()) else {
        return "unknown";
    };
    AGE_BUCKETS
        .iter()
        .find(|(_, below)| hours < *below)
        .map_or("> 7 d", |(label, _)| label)
}

fn age_table(rows: &[&Row], width: Option<u16>) -> String {
    let mut table = new_table(width);
    table.set_header(vec!["Since last success", "Bundles"]);
    let labels = AGE_BUCKETS
        .iter()
        .map(|(label, _)| *label)
        .chain(["unknown"]);
    for label in labels {
        let count = rows
            .iter()
            .filter(|row| age_bucket(row.hours_since_success) == label)
            .count();
        table.add_row(vec![label.to_string(), count.to_string()]);
    }
    align_right(&mut table, 1);
    table.to_string()
}

fn bundles_table(root: &Path, rows: &[Row], width: Option<u16>) -> String {
    let mut table = new_table(width);
    table.set_header(vec![
        "Bundle",
        "Connector GUID",
        "Connector",
        "Definitions",
        "Last success (UTC)",
        "Root cause",
        "Key evidence",
    ]);
    for row in rows {
        let (cause, evidence) = match &row.error {
            Some(error) => ("unreadable".to_string(), cut(error)),
            None => (
                row.root_cause
                    .as_deref()
                    .map_or_else(|| "none".to_string(), printable),
                row.evidence
                    .as_deref()
                    .map_or_else(|| "-".to_string(), |text| cut(&without_log_header(text))),
            ),
        };
        table.add_row(vec![
            printable(&shown_path(root, &row.bundle)),
            or_dash(row.guid.as_deref()),
            or_dash(row.connector_version.as_deref()),
            or_dash(row.definitions.as_deref()),
            or_dash(row.last_success.as_deref()),
            cause,
            evidence,
        ]);
    }
    // When wrapping, keep a GUID (36 characters, 38 with the cell padding),
    // a time and the cause ids on one line.
    let cause_width = rows
        .iter()
        .filter_map(|row| row.root_cause.as_deref())
        .map(|cause| cause.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(10, 30) as u16;
    let constraints = [(1, 38), (4, 22), (5, cause_width + 2)];
    for (index, width) in constraints {
        if let Some(column) = table.column_mut(index) {
            column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(width)));
        }
    }
    table.to_string()
}

/// Returns a log line without its counter, time and thread, for which the
/// table has no room; other text is returned whole.
fn without_log_header(text: &str) -> String {
    match parse_header(text) {
        Some(header) => match header.component {
            Some(component) => format!("{component}: {}", header.message),
            None => header.message.to_string(),
        },
        None => text.to_string(),
    }
}

fn align_right(table: &mut Table, column: usize) {
    if let Some(column) = table.column_mut(column) {
        column.set_cell_alignment(CellAlignment::Right);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_buckets() {
        assert_eq!(age_bucket(Some(0.5)), "< 24 h");
        assert_eq!(age_bucket(Some(-2.0)), "< 24 h");
        assert_eq!(age_bucket(Some(24.0)), "1-3 d");
        assert_eq!(age_bucket(Some(71.9)), "1-3 d");
        assert_eq!(age_bucket(Some(100.0)), "3-7 d");
        assert_eq!(age_bucket(Some(168.0)), "> 7 d");
        assert_eq!(age_bucket(Some(f64::NAN)), "unknown");
        assert_eq!(age_bucket(None), "unknown");
    }

    #[test]
    fn evidence_loses_log_header() {
        assert_eq!(
            without_log_header("(42, +0 ms) May 18 16:54:33 [12]: Tetra::Update: curl error 6"),
            "Tetra::Update: curl error 6"
        );
        assert_eq!(
            without_log_header("curl: (6) Could not resolve"),
            "curl: (6) Could not resolve"
        );
    }

    #[test]
    fn versions_beyond_the_row_limit_share_a_row() {
        let rows: Vec<Row> = (0..15)
            .map(|index| Row {
                definitions: Some(format!("TETRA:{}", 90600 + index)),
                ..Row::default()
            })
            .collect();
        let refs: Vec<&Row> = rows.iter().collect();
        let text = versions_table(&refs, Some(80));
        assert!(text.contains("TETRA:90614"), "{text}");
        assert!(!text.contains("TETRA:90602"), "{text}");
        assert!(text.contains("3 older versions"), "{text}");
    }

    #[test]
    fn summary_counts_causes_and_failures() {
        let row = |bundle: &str, cause: Option<&str>, hours: Option<f64>| Row {
            bundle: format!("/cases/{bundle}"),
            root_cause: cause.map(str::to_string),
            hours_since_success: hours,
            definitions: Some("TETRA:90604".to_string()),
            ..Row::default()
        };
        let rows = vec![
            row("a.zip", Some("dns-resolution-failed"), Some(30.0)),
            row("b.zip", None, Some(2.0)),
            row("c.zip", Some("dns-resolution-failed"), None),
            Row {
                bundle: "/cases/d.zip".to_string(),
                error: Some("/cases/d.zip: damaged archive".to_string()),
                ..Row::default()
            },
        ];
        let fleet = Fleet {
            root: Path::new("/cases"),
            redacted: false,
            skipped: 3,
            width: Some(200),
        };
        let text = render(&fleet, &rows);
        assert!(text.starts_with("Bundles under /cases\n"), "{text}");
        assert!(text.contains("Analyzed:       3"), "{text}");
        assert!(text.contains("Failed to read: 1"), "{text}");
        assert!(text.contains("Skipped files:  3"), "{text}");
        let causes = text
            .lines()
            .find(|line| line.contains("dns-resolution-failed") && line.contains("a.zip"))
            .expect("cause row with its example");
        assert!(causes.contains(" 2 "), "{causes}");
        assert!(text.contains("unreadable"), "{text}");
        assert!(text.contains("TETRA:90604"), "{text}");
    }
}
