//! The field's knowledge as data: root causes, error codes, text signals and
//! update events, read from `tetra.toml` (compiled in) and optional rule files.

mod compile;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use compile::{CauseHit, LineMatch, Matcher};

/// The built-in rules, readable in the repository as `src/knowledge/tetra.toml`.
pub const BUILTIN_RULES: &str = include_str!("tetra.toml");

/// Whether a cause explains a failure or only describes the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CauseKind {
    Failure,
    Context,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// A root cause or context finding with its explanation and next actions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    pub id: String,
    pub kind: CauseKind,
    pub severity: Severity,
    #[serde(default)]
    pub rank: i32,
    pub title: String,
    pub explanation: String,
    #[serde(default)]
    pub actions: Vec<String>,
}

/// How an error code is written, which decides the notations it is matched in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notation {
    Hresult,
    Winhttp,
    Curl,
    Lasterror,
    Http,
    Dns,
}

/// An error code that points to a cause.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code {
    pub notation: Notation,
    #[serde(default)]
    pub value: Option<u64>,
    #[serde(default)]
    pub symbol: Option<String>,
    pub cause: String,
    pub meaning: String,
    /// Literals of which one must also be on the line, for codes that mean a
    /// cause only in one context (an HTTP 403 means a proxy refusal only
    /// next to a proxy or CONNECT).
    #[serde(default)]
    pub context: Vec<String>,
}

impl Code {
    /// Returns the stable id, such as `hresult-0x80092013` or `curl-6`.
    pub fn id(&self) -> String {
        let notation = match self.notation {
            Notation::Hresult => "hresult",
            Notation::Winhttp => "winhttp",
            Notation::Curl => "curl",
            Notation::Lasterror => "lasterror",
            Notation::Http => "http",
            Notation::Dns => "dns",
        };
        match (self.notation, self.value, &self.symbol) {
            (Notation::Hresult, Some(value), _) => format!("{notation}-0x{value:08X}"),
            (_, Some(value), _) => format!("{notation}-{value}"),
            (_, None, Some(symbol)) => format!("{notation}-{}", symbol.to_ascii_lowercase()),
            (_, None, None) => notation.to_string(),
        }
    }

    /// Returns every notation of the code as a TAC engineer would search for
    /// it, for the `rules` listing.
    pub fn notations(&self) -> Vec<String> {
        let mut forms = Vec::new();
        if let Some(value) = self.value {
            match self.notation {
                Notation::Hresult => {
                    let value = value as u32;
                    forms.push(format!("0x{value:08X}"));
                    forms.push(value.to_string());
                    forms.push((value as i32).to_string());
                }
                Notation::Winhttp => {
                    let hresult = 0x8007_0000u32 | (value as u32 & 0xFFFF);
                    forms.push(value.to_string());
                    forms.push(format!("0x{hresult:08X}"));
                }
                Notation::Curl => forms.push(format!("curl ({value})")),
                Notation::Lasterror => {
                    forms.push(value.to_string());
                    forms.push((value as u32 as i32).to_string());
                }
                Notation::Http => forms.push(format!("HTTP {value}")),
                Notation::Dns => forms.push(value.to_string()),
            }
        }
        if let Some(symbol) = &self.symbol {
            forms.push(symbol.clone());
        }
        forms
    }
}

/// Text on a line that points to a cause.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub id: String,
    pub cause: String,
    pub any: Vec<String>,
    #[serde(default)]
    pub all: Vec<String>,
    #[serde(default)]
    pub unless: Vec<String>,
    /// Literals of which one must be on a connector log line (not on a
    /// transcript line) for the signal to count, for words such as
    /// "connection reset" that other connector services log too.
    #[serde(default)]
    pub log_context: Vec<String>,
    #[serde(default)]
    pub regex: Option<String>,
}

/// What an update event says about the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Attempt,
    Success,
    Failure,
}

/// A line shape that marks update activity for the timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRule {
    pub id: String,
    pub kind: EventKind,
    pub all_groups: Vec<Vec<String>>,
    #[serde(default)]
    pub unless: Vec<String>,
}

/// A server name with a known role.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub name: String,
    pub role: String,
}

/// A certificate authority that issues the certificates of Cisco's public
/// servers; a server certificate for a Cisco host from any other issuer
/// reveals TLS inspection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicCa {
    /// Text found in the issuer's distinguished name, such as `IdenTrust`.
    pub issuer: String,
}

/// Text that only debug-level connector logs contain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugMarker {
    pub text: String,
}

/// The rules as written in a TOML file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    #[serde(default)]
    pub cause: Vec<Cause>,
    #[serde(default)]
    pub code: Vec<Code>,
    #[serde(default)]
    pub signal: Vec<Signal>,
    #[serde(default)]
    pub event: Vec<EventRule>,
    #[serde(default)]
    pub host: Vec<Host>,
    #[serde(default)]
    pub debug_marker: Vec<DebugMarker>,
    #[serde(default)]
    pub public_ca: Vec<PublicCa>,
}

impl RuleSet {
    /// Parses a rule file's text. `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<RuleSet> {
        toml::from_str(text).map_err(|err| Error::Rules {
            path: origin.to_path_buf(),
            reason: err.to_string(),
        })
    }

    /// Returns the built-in rules.
    pub fn builtin() -> Result<RuleSet> {
        RuleSet::parse(BUILTIN_RULES, Path::new("<built-in tetra.toml>"))
    }

    /// Adds `other`'s entries, replacing entries with the same id. Codes are
    /// identified by notation and value (or symbol), hosts by name.
    pub fn merge(&mut self, other: RuleSet) {
        merge_by_key(&mut self.cause, other.cause, |cause| cause.id.clone());
        merge_by_key(&mut self.code, other.code, Code::id);
        merge_by_key(&mut self.signal, other.signal, |signal| signal.id.clone());
        merge_by_key(&mut self.event, other.event, |event| event.id.clone());
        merge_by_key(&mut self.host, other.host, |host| host.name.clone());
        merge_by_key(&mut self.debug_marker, other.debug_marker, |marker| {
            marker.text.clone()
        });
        merge_by_key(&mut self.public_ca, other.public_ca, |ca| ca.issuer.clone());
    }

    /// Checks that every reference to a cause names a defined cause and that
    /// every pattern compiles.
    pub fn validate(&self, origin: &Path) -> Result<()> {
        let invalid = |reason: String| Error::Rules {
            path: origin.to_path_buf(),
            reason,
        };
        let known: BTreeMap<&str, &Cause> = self.cause.iter().map(|c| (c.id.as_str(), c)).collect();
        for code in &self.code {
            if !known.contains_key(code.cause.as_str()) {
                return Err(invalid(format!(
                    "code {} names unknown cause {:?}",
                    code.id(),
                    code.cause
                )));
            }
            if code.value.is_none() && code.symbol.is_none() {
                return Err(invalid(format!(
                    "a {:?} code has neither value nor symbol",
                    code.notation
                )));
            }
        }
        for signal in &self.signal {
            if !known.contains_key(signal.cause.as_str()) {
                return Err(invalid(format!(
                    "signal {} names unknown cause {:?}",
                    signal.id, signal.cause
                )));
            }
            if signal.any.is_empty() {
                return Err(invalid(format!(
                    "signal {} has an empty `any` list",
                    signal.id
                )));
            }
            if let Some(pattern) = &signal.regex {
                regex::Regex::new(pattern).map_err(|err| {
                    invalid(format!("signal {}: invalid regex: {err}", signal.id))
                })?;
            }
        }
        for event in &self.event {
            if event.all_groups.is_empty() || event.all_groups.iter().any(Vec::is_empty) {
                return Err(invalid(format!("event {} has an empty group", event.id)));
            }
        }
        Ok(())
    }

    /// Returns the cause with this id.
    pub fn cause(&self, id: &str) -> Option<&Cause> {
        self.cause.iter().find(|cause| cause.id == id)
    }

    /// Returns the documented `lasterror` entry for a value, given in either
    /// its unsigned or signed 32-bit form.
    pub fn lasterror(&self, value: u32) -> Option<&Code> {
        self.code.iter().find(|code| {
            code.notation == Notation::Lasterror && code.value == Some(u64::from(value))
        })
    }
}

fn merge_by_key<T>(base: &mut Vec<T>, extra: Vec<T>, key: impl Fn(&T) -> String) {
    for item in extra {
        let item_key = key(&item);
        match base.iter_mut().find(|existing| key(existing) == item_key) {
            Some(existing) => *existing = item,
            None => base.push(item),
        }
    }
}

/// Loads the built-in rules plus each rule file in order.
pub fn load(extra_files: &[std::path::PathBuf]) -> Result<RuleSet> {
    let mut rules = RuleSet::builtin()?;
    for path in extra_files {
        if std::fs::metadata(path).is_ok_and(|meta| !meta.is_file()) {
            return Err(Error::Rules {
                path: path.clone(),
                reason: "not a regular file".to_string(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let extra = RuleSet::parse(&text, path)?;
        rules.merge(extra);
        rules.validate(path)?;
    }
    rules.validate(Path::new("<built-in tetra.toml>"))?;
    Ok(rules)
}
