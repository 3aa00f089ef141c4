//! The report of one bundle: what the JSON output serializes and what the
//! table and Markdown outputs render. Field names are the documented schema
//! (docs/json-schema.md); renaming one is a breaking change.

use serde::{Deserialize, Serialize};

use crate::input::InputFormat;
use crate::knowledge::{CauseKind, EventKind, Severity};
use crate::xml::ProxySettings;

/// The analysis of one input path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub bundle: String,
    pub format: InputFormat,
    pub redacted: bool,
    /// The id of the cause that best explains failing updates, or `None`
    /// when the bundle shows no current update failure.
    pub root_cause: Option<String>,
    pub verdict: String,
    pub connector: Connector,
    pub definitions: Definitions,
    /// The policy's proxy settings, without the password.
    pub proxy: Option<ProxySettings>,
    pub policy: Option<PolicySummary>,
    pub logs: LogSummary,
    /// Settings and DNS results read from attached command output.
    pub network: crate::network::NetworkFacts,
    pub findings: Vec<Finding>,
    pub timeline: Vec<TimelineEntry>,
    pub warnings: Vec<String>,
    pub members: MemberCounts,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Connector {
    pub guid: Option<String>,
    pub business_guid: Option<String>,
    /// The running connector: the highest version folder holding logs.
    pub version: Option<String>,
    pub versions_found: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Definitions {
    pub version: Option<String>,
    /// Times from `local.xml`, in UTC (`YYYY-MM-DDTHH:MM:SSZ`).
    pub last_update: Option<String>,
    pub last_success: Option<String>,
    pub last_check: Option<String>,
    /// Hours between the last successful update and the last check (or the
    /// bundle's date when no check time is recorded).
    pub hours_since_success: Option<f64>,
    /// An estimate from Cisco's pace of about four TETRA releases a day.
    pub estimated_versions_behind: Option<u64>,
    pub last_error: Option<LastError>,
}

/// `//tetra/lasterror` in both 32-bit forms.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastError {
    pub text: String,
    pub unsigned: Option<u32>,
    pub signed: Option<i32>,
    pub meaning: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicySummary {
    pub name: Option<String>,
    pub serial: Option<String>,
    pub tetra_enabled: Option<bool>,
    pub tetra_updater_enabled: Option<bool>,
    pub update_server: Option<String>,
    pub update_interval_seconds: Option<u64>,
    pub crl_check: Option<String>,
    pub verify_peer: Option<String>,
    pub log_level: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogSummary {
    pub files: Vec<LogFile>,
    /// Whether any running connector log contains debug-level lines.
    pub debug: bool,
    /// The source of the log timestamps' year.
    pub year_source: Option<String>,
    /// The endpoint's estimated offset from UTC in minutes, used to show
    /// capture times in local time; `None` leaves them in UTC.
    pub utc_offset_minutes: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogFile {
    pub file: String,
    pub version: Option<String>,
    pub running: bool,
    pub lines: u64,
    pub first: Option<String>,
    pub last: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

/// One conclusion with the evidence behind it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub kind: CauseKind,
    pub severity: Severity,
    pub confidence: Confidence,
    pub title: String,
    pub summary: String,
    /// The first next step; `actions` lists them all.
    pub action: String,
    pub actions: Vec<String>,
    pub evidence: Vec<Evidence>,
    /// Evidence items found, of which at most a few are listed.
    pub evidence_count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    Log,
    Transcript,
    Capture,
    LocalXml,
    PolicyXml,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    pub source: SourceKind,
    pub file: String,
    /// Line number, or packet number for a capture; `None` for an XML field.
    pub line: Option<u64>,
    /// Endpoint-local time for log lines (`YYYY-MM-DDTHH:MM:SS`), UTC with
    /// a `Z` for captures.
    pub time: Option<String>,
    pub text: String,
}

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimelineKind {
    Attempt,
    Success,
    Failure,
    Network,
}

impl From<EventKind> for TimelineKind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Attempt => TimelineKind::Attempt,
            EventKind::Success => TimelineKind::Success,
            EventKind::Failure => TimelineKind::Failure,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub time: Option<String>,
    pub file: String,
    pub line: Option<u64>,
    pub kind: TimelineKind,
    pub cause: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemberCounts {
    pub listed: u64,
    pub scanned: u64,
    pub logs: u64,
    pub transcripts: u64,
    pub captures: u64,
}
