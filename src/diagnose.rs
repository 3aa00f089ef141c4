//! Correlation of all observations into findings and one root cause.
//!
//! A failure observation is current when it comes from the running
//! connector (or from a transcript or capture, which show the network as
//! it is now) and is later than the last successful update in the running
//! connector's logs. Each cause's current evidence is weighed by source;
//! the heaviest cause wins, then the most recent, then the most specific.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDateTime};

use crate::input::InputFormat;
use crate::knowledge::{Cause, CauseKind, EventKind, RuleSet};
use crate::model::{
    Confidence, Connector, Definitions, Evidence, Finding, LastError, LogFile, LogSummary,
    MemberCounts, PolicySummary, Report, SourceKind, TimelineEntry, TimelineKind,
};
use crate::scan::MatchedLine;
use crate::xml::{LocalXml, PolicyXml};

/// Evidence items listed per finding; the rest are counted.
const EVIDENCE_SHOWN: usize = 5;
/// Seconds around a known-cause line within which a bare "update failed"
/// line is taken as the same failure, not an unknown one.
const SAME_FAILURE_SECONDS: i64 = 120;
/// Hours without a successful update after which definitions are stale.
const STALE_HOURS: f64 = 24.0;
/// The public cloud's TETRA server, used in actions when the policy names none.
const DEFAULT_UPDATE_SERVER: &str = "tetra-defs.amp.cisco.com";

/// One fact from a log line, transcript line, capture packet or XML field.
#[derive(Debug, Clone)]
pub struct Observation {
    pub source: SourceKind,
    pub file: String,
    pub line: Option<u64>,
    pub time: Option<NaiveDateTime>,
    /// True when `time` is UTC (captures) rather than endpoint-local.
    pub utc: bool,
    pub text: String,
    pub causes: Vec<String>,
    pub event: Option<EventKind>,
    /// False for logs of an older connector version folder.
    pub running: bool,
}

impl Observation {
    /// Builds an observation from a scanned line.
    pub fn from_line(
        source: SourceKind,
        file: &str,
        matched: &MatchedLine,
        time: Option<NaiveDateTime>,
        running: bool,
    ) -> Observation {
        Observation {
            source,
            file: file.to_string(),
            line: Some(matched.line),
            time,
            utc: false,
            text: matched.text.clone(),
            causes: matched
                .matched
                .causes
                .iter()
                .map(|hit| hit.cause.clone())
                .collect(),
            event: matched.matched.event,
            running,
        }
    }

    fn evidence(&self) -> Evidence {
        Evidence {
            source: self.source,
            file: self.file.clone(),
            line: self.line,
            time: self.time.map(|time| format_time(time, self.utc)),
            text: self.text.clone(),
        }
    }
}

/// Everything gathered from one input.
pub struct Inputs<'a> {
    pub bundle: String,
    pub format: InputFormat,
    pub rules: &'a RuleSet,
    pub local: Option<LocalXml>,
    pub local_file: Option<String>,
    pub policy: Option<PolicyXml>,
    pub policy_file: Option<String>,
    pub running: Option<String>,
    pub versions_found: Vec<String>,
    /// Log files, newest first, each with whether it contains debug lines.
    pub log_files: Vec<(LogFile, bool)>,
    pub year_source: Option<String>,
    pub utc_offset_minutes: Option<i64>,
    /// When the bundle was collected, from its name (endpoint-local time).
    pub collected_at: Option<NaiveDateTime>,
    pub observations: Vec<Observation>,
    pub network: crate::network::NetworkFacts,
    pub warnings: Vec<String>,
    pub counts: MemberCounts,
}

/// A failure cause with the observations that support it.
struct Candidate<'a> {
    cause: &'a Cause,
    current: Vec<Observation>,
}

impl Candidate<'_> {
    fn sources(&self) -> BTreeSet<SourceKind> {
        self.current.iter().map(|obs| obs.source).collect()
    }

    fn weight(&self) -> u32 {
        self.sources()
            .iter()
            .map(|source| match source {
                SourceKind::LocalXml => 3,
                SourceKind::Log | SourceKind::Capture | SourceKind::PolicyXml => 2,
                SourceKind::Transcript => 1,
            })
            .sum()
    }

    fn latest(&self) -> Option<NaiveDateTime> {
        self.current
            .iter()
            .filter(|obs| !obs.utc)
            .filter_map(|obs| obs.time)
            .max()
    }
}

/// Builds the report: findings, root cause, timeline and summaries.
pub fn diagnose(inputs: Inputs<'_>) -> Report {
    let rules = inputs.rules;
    let mut observations = inputs.observations;
    let proxy_host = inputs
        .policy
        .as_ref()
        .and_then(|policy| policy.proxy.host.clone());
    attribute_proxy_lines(&mut observations, proxy_host.as_deref());
    add_xml_observations(
        &mut observations,
        &inputs.local,
        &inputs.local_file,
        &inputs.policy,
        &inputs.policy_file,
        rules,
    );

    let last_success = observations
        .iter()
        .filter(|obs| {
            obs.running && obs.source == SourceKind::Log && obs.event == Some(EventKind::Success)
        })
        .filter_map(|obs| obs.time)
        .max();
    let local_success = local_healthy_since(inputs.local.as_ref());
    let is_current = |obs: &Observation| match obs.source {
        SourceKind::Log => {
            let before_log_success =
                matches!((obs.time, last_success), (Some(time), Some(success)) if time <= success);
            let before_local_success = matches!(
                (obs.time, local_success),
                (Some(time), Some(success)) if time + Duration::hours(MAX_UTC_OFFSET_HOURS) < success
            );
            obs.running && !before_log_success && !before_local_success
        }
        SourceKind::LocalXml => !local_error_resolved(inputs.local.as_ref()),
        _ => true,
    };

    // Group failure evidence per cause, current and resolved.
    let mut current: BTreeMap<String, Vec<Observation>> = BTreeMap::new();
    let mut resolved: Vec<Observation> = Vec::new();
    for obs in &observations {
        let causes = failure_causes(obs, &observations, rules);
        if causes.is_empty() {
            continue;
        }
        if is_current(obs) {
            for cause in causes {
                current.entry(cause).or_default().push(obs.clone());
            }
        } else {
            resolved.push(obs.clone());
        }
    }

    let mut candidates: Vec<Candidate<'_>> = current
        .into_iter()
        .filter_map(|(id, current)| rules.cause(&id).map(|cause| Candidate { cause, current }))
        .collect();
    // unknown-update-error is the fallback: it explains nothing that a
    // known cause with current evidence explains better.
    let is_fallback = |candidate: &Candidate<'_>| candidate.cause.id == "unknown-update-error";
    candidates.sort_by(|a, b| {
        is_fallback(a)
            .cmp(&is_fallback(b))
            .then_with(|| b.weight().cmp(&a.weight()))
            .then_with(|| b.latest().cmp(&a.latest()))
            .then_with(|| b.cause.rank.cmp(&a.cause.rank))
            .then_with(|| a.cause.id.cmp(&b.cause.id))
    });
    let root_cause = candidates
        .first()
        .map(|candidate| candidate.cause.id.clone());

    let context = ActionContext::new(inputs.policy.as_ref());
    let mut findings: Vec<Finding> = candidates
        .iter()
        .map(|candidate| failure_finding(candidate, &context))
        .collect();

    findings.extend(network_findings(
        &inputs.network,
        inputs.policy.as_ref(),
        root_cause.as_deref(),
        rules,
        &context,
    ));
    findings.extend(contradictions(&candidates, &observations, rules, &context));

    let definitions = definitions_summary(inputs.local.as_ref(), rules, inputs.collected_at);
    let debug = inputs
        .log_files
        .iter()
        .any(|(file, debug)| file.running && *debug);
    let running_logs = inputs
        .log_files
        .iter()
        .filter(|(file, _)| file.running)
        .count();
    findings.extend(context_findings(ContextFacts {
        rules,
        context: &context,
        definitions: &definitions,
        debug,
        running_logs,
        running: inputs.running.as_deref(),
        versions: &inputs.versions_found,
        resolved: &resolved,
        root_cause: root_cause.as_deref(),
    }));

    let verdict = verdict(
        root_cause.as_deref(),
        rules,
        &definitions,
        running_logs,
        debug,
    );
    let timeline = build_timeline(&observations);
    let mut warnings = inputs.warnings;
    if running_logs == 0 {
        warnings.push("no sfc.exe.log found: the diagnosis rests on local.xml, policy.xml and transcripts only".to_string());
    }

    Report {
        bundle: inputs.bundle,
        format: inputs.format,
        redacted: false,
        root_cause,
        verdict,
        connector: Connector {
            guid: inputs
                .local
                .as_ref()
                .and_then(|local| local.connector_guid.clone()),
            business_guid: inputs
                .local
                .as_ref()
                .and_then(|local| local.business_guid.clone()),
            version: inputs.running,
            versions_found: inputs.versions_found,
        },
        definitions,
        proxy: inputs
            .policy
            .as_ref()
            .map(|policy| policy.proxy.clone())
            .filter(|proxy| proxy.is_configured()),
        policy: inputs.policy.as_ref().map(policy_summary),
        network: inputs.network,
        logs: LogSummary {
            files: inputs.log_files.into_iter().map(|(file, _)| file).collect(),
            debug,
            year_source: inputs.year_source,
            utc_offset_minutes: inputs.utc_offset_minutes,
        },
        findings,
        timeline,
        warnings,
        members: inputs.counts,
    }
}

/// Reports a WinHTTP proxy setting of direct access while the policy sets a
/// proxy: CRL and OCSP fetches of LocalSystem then bypass the proxy.
fn network_findings(
    network: &crate::network::NetworkFacts,
    policy: Option<&PolicyXml>,
    root_cause: Option<&str>,
    rules: &RuleSet,
    context: &ActionContext,
) -> Vec<Finding> {
    let policy_proxy = policy.is_some_and(|policy| policy.proxy.is_configured());
    let Some(cause) = rules.cause("winhttp-proxy-missing") else {
        return Vec::new();
    };
    if !network.winhttp_direct() || !policy_proxy {
        return Vec::new();
    }
    let revocation = root_cause == Some("tls-revocation-check-failed");
    let source = network.winhttp_source.clone().unwrap_or_default();
    let (file, line) = match source.rsplit_once(':') {
        Some((file, line)) => (file.to_string(), line.parse().ok()),
        None => (source.clone(), None),
    };
    let evidence = Observation {
        source: SourceKind::Transcript,
        file,
        line,
        time: None,
        utc: false,
        text: "netsh winhttp show proxy: Direct access (no proxy server).".to_string(),
        causes: Vec::new(),
        event: None,
        running: true,
    };
    let summary = if revocation {
        "WinHTTP is set to direct access while the policy uses a proxy: this explains the failed revocation checks".to_string()
    } else {
        "WinHTTP is set to direct access while the policy uses a proxy; CRL and OCSP checks will bypass the proxy".to_string()
    };
    let confidence = if revocation {
        Confidence::High
    } else {
        Confidence::Medium
    };
    vec![finding(cause, context, confidence, summary, &[evidence])]
}

/// Reports sources that contradict the root cause: a proxy cause while a
/// capture shows no traffic to the proxy, or a DNS cause while a capture
/// shows the update server resolving.
fn contradictions(
    candidates: &[Candidate<'_>],
    observations: &[Observation],
    rules: &RuleSet,
    context: &ActionContext,
) -> Vec<Finding> {
    let (Some(root), Some(cause)) = (candidates.first(), rules.cause("evidence-contradiction"))
    else {
        return Vec::new();
    };
    let captures: Vec<&Observation> = observations
        .iter()
        .filter(|obs| obs.source == SourceKind::Capture)
        .collect();
    let mut notes = Vec::new();
    if root.cause.id.starts_with("proxy-") && !captures.is_empty() {
        let proxy_host = context
            .proxy
            .split(':')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let saw_proxy = captures.iter().any(|obs| {
            let text = obs.text.to_ascii_lowercase();
            text.contains("proxy")
                || (!proxy_host.is_empty() && text.contains(&proxy_host))
                || text.contains("request connect ")
        });
        if !saw_proxy && !root.sources().contains(&SourceKind::Capture) {
            notes.push(format!(
                "{} points to the proxy, but the capture shows no traffic to a proxy; the capture may be from another interface or time",
                root.cause.id
            ));
        }
    }
    if root.cause.id == "dns-resolution-failed" {
        let answer = format!("dns answer {}", context.update_server.to_ascii_lowercase());
        let resolved_ok = observations.iter().any(|obs| {
            obs.source == SourceKind::Capture
                && obs.causes.is_empty()
                && obs.text.to_ascii_lowercase().contains(&answer)
        });
        if resolved_ok {
            notes.push(
                "the log reports resolution failures, but a capture shows the name resolving"
                    .to_string(),
            );
        }
    }
    if notes.is_empty() {
        return Vec::new();
    }
    vec![finding(
        cause,
        context,
        Confidence::Medium,
        notes.join("; "),
        &[],
    )]
}

/// Hours between UTC and the furthest time zone, the slack when comparing
/// endpoint-local log times with `local.xml`'s UTC times.
const MAX_UTC_OFFSET_HOURS: i64 = 14;

/// Returns `local.xml`'s last success (UTC) when it records no error and a
/// success at or after its last check, which makes older log failures
/// history.
fn local_healthy_since(local: Option<&LocalXml>) -> Option<NaiveDateTime> {
    let local = local?;
    if local.last_error.is_some_and(|code| code != 0) {
        return None;
    }
    let success = local.last_success?;
    if local.last_check.is_some_and(|check| check > success) {
        return None;
    }
    DateTime::from_timestamp(success, 0).map(|time| time.naive_utc())
}

/// Re-attributes "server unreachable" lines that name the policy's proxy
/// host to `proxy-connect-failed`: the connection that failed was the proxy's.
fn attribute_proxy_lines(observations: &mut [Observation], proxy_host: Option<&str>) {
    let Some(host) = proxy_host
        .map(str::to_ascii_lowercase)
        .filter(|host| !host.is_empty())
    else {
        return;
    };
    for obs in observations.iter_mut() {
        let names_proxy = obs.text.to_ascii_lowercase().contains(&host);
        if names_proxy && obs.causes.iter().any(|cause| cause == "server-unreachable") {
            obs.causes.retain(|cause| cause != "server-unreachable");
            if !obs
                .causes
                .iter()
                .any(|cause| cause == "proxy-connect-failed")
            {
                obs.causes.push("proxy-connect-failed".to_string());
            }
        }
    }
}

/// Returns the failure causes an observation supports: its matched causes,
/// or `unknown-update-error` for a failed update that names no known cause
/// and has no known-cause line close to it.
fn failure_causes(obs: &Observation, all: &[Observation], rules: &RuleSet) -> Vec<String> {
    let failures: Vec<String> = obs
        .causes
        .iter()
        .filter(|id| {
            rules
                .cause(id)
                .is_some_and(|cause| cause.kind == CauseKind::Failure)
        })
        .cloned()
        .collect();
    if !failures.is_empty() || obs.event != Some(EventKind::Failure) {
        return failures;
    }
    // A known-cause line close in time explains this line, from any source
    // once capture times are local. Without times, only nearby lines of the
    // same file explain it.
    let explained = all.iter().any(|other| {
        !other.causes.is_empty()
            && match (other.time, obs.time) {
                (Some(a), Some(b)) if !other.utc && !obs.utc => {
                    (a - b).num_seconds().abs() <= SAME_FAILURE_SECONDS
                }
                _ => {
                    other.file == obs.file
                        && other
                            .line
                            .zip(obs.line)
                            .is_some_and(|(a, b)| a.abs_diff(b) <= 5)
                }
            }
    });
    if explained {
        Vec::new()
    } else {
        vec!["unknown-update-error".to_string()]
    }
}

/// Returns whether `local.xml` records a successful update at or after its last
/// check, which makes a non-zero `lasterror` a leftover.
// NOTE: the meaning of lastupdate, lastsuccesstime and lastupdatechecked is
// inferred from their names; no public document defines them.
fn local_error_resolved(local: Option<&LocalXml>) -> bool {
    match local {
        Some(LocalXml {
            last_success: Some(success),
            last_check: Some(check),
            ..
        }) => success >= check,
        _ => false,
    }
}

fn add_xml_observations(
    observations: &mut Vec<Observation>,
    local: &Option<LocalXml>,
    local_file: &Option<String>,
    policy: &Option<PolicyXml>,
    policy_file: &Option<String>,
    rules: &RuleSet,
) {
    let xml_observation = |source, file: &Option<String>, text: String, cause: &str| Observation {
        source,
        file: file.clone().unwrap_or_default(),
        line: None,
        time: None,
        utc: false,
        text,
        causes: vec![cause.to_string()],
        event: Some(EventKind::Failure),
        running: true,
    };
    if let Some(local) = local {
        if let Some(code) = local.last_error.filter(|code| *code != 0) {
            let signed = code as i32;
            let (cause, meaning) = match rules.lasterror(code) {
                Some(known) => (known.cause.as_str(), known.meaning.clone()),
                None => ("unknown-update-error", "not a documented value".to_string()),
            };
            let text = format!("tetra/lasterror = {code} ({signed}): {meaning}");
            observations.push(xml_observation(
                SourceKind::LocalXml,
                local_file,
                text,
                cause,
            ));
        }
    }
    if let Some(policy) = policy {
        let disabled = [
            (
                policy.tetra_enabled,
                "agent/scansettings/tetra/enable = 0: TETRA is off",
            ),
            (
                policy.tetra_updater_enabled,
                "agent/scansettings/tetra/updater/enable = 0: TETRA updates are off",
            ),
        ];
        for (flag, text) in disabled {
            if flag == Some(false) {
                observations.push(xml_observation(
                    SourceKind::PolicyXml,
                    policy_file,
                    text.to_string(),
                    "updates-disabled",
                ));
            }
        }
    }
}

/// Values substituted into action templates.
struct ActionContext {
    update_server: String,
    proxy: String,
    interval: String,
}

impl ActionContext {
    fn new(policy: Option<&PolicyXml>) -> ActionContext {
        let server = policy
            .and_then(|policy| {
                policy
                    .tetra_update_server
                    .clone()
                    .or_else(|| policy.update_server.clone())
            })
            .map(|server| host_of(&server))
            .filter(|server| !server.is_empty())
            .unwrap_or_else(|| DEFAULT_UPDATE_SERVER.to_string());
        let proxy = policy
            .and_then(|policy| {
                policy
                    .proxy
                    .host
                    .clone()
                    .map(|host| match &policy.proxy.port {
                        Some(port) => format!("{host}:{port}"),
                        None => host,
                    })
            })
            .unwrap_or_else(|| "<proxy-host>:<port>".to_string());
        let interval = policy
            .and_then(|policy| policy.tetra_update_interval)
            .map(|seconds| format!("{seconds} s"))
            .unwrap_or_else(|| "the policy's update interval".to_string());
        ActionContext {
            update_server: server,
            proxy,
            interval,
        }
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("{update_server}", &self.update_server)
            .replace("{proxy}", &self.proxy)
            .replace("{interval}", &self.interval)
    }
}

/// Returns the host of a server setting that may be a URL.
fn host_of(server: &str) -> String {
    let without_scheme = server.split("://").last().unwrap_or(server);
    without_scheme
        .split(['/', ':'])
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

fn failure_finding(candidate: &Candidate<'_>, context: &ActionContext) -> Finding {
    let mut by_source: BTreeMap<SourceKind, Vec<&Observation>> = BTreeMap::new();
    for obs in &candidate.current {
        by_source.entry(obs.source).or_default().push(obs);
    }
    let mut parts = Vec::new();
    for (source, items) in &by_source {
        let count = items.len();
        let part = match source {
            SourceKind::Log => {
                let latest = items.iter().filter_map(|obs| obs.time).max();
                match latest {
                    Some(time) => format!(
                        "{count} connector log line(s), latest at {}",
                        format_time(time, false)
                    ),
                    None => format!("{count} connector log line(s)"),
                }
            }
            SourceKind::Transcript => format!("{count} line(s) in attached command output"),
            SourceKind::Capture => format!("{count} packet(s) in a capture"),
            SourceKind::LocalXml | SourceKind::PolicyXml => items
                .iter()
                .map(|obs| obs.text.clone())
                .collect::<Vec<_>>()
                .join("; "),
        };
        parts.push(part);
    }
    let confidence = if by_source.len() >= 2 || by_source.contains_key(&SourceKind::LocalXml) {
        Confidence::High
    } else if candidate.current.len() >= 2 || by_source.contains_key(&SourceKind::PolicyXml) {
        Confidence::Medium
    } else {
        Confidence::Low
    };
    finding(
        candidate.cause,
        context,
        confidence,
        parts.join("; "),
        &candidate.current,
    )
}

fn finding(
    cause: &Cause,
    context: &ActionContext,
    confidence: Confidence,
    summary: String,
    evidence: &[Observation],
) -> Finding {
    let actions: Vec<String> = cause
        .actions
        .iter()
        .map(|action| context.fill(action))
        .collect();
    Finding {
        id: cause.id.clone(),
        kind: cause.kind,
        severity: cause.severity,
        confidence,
        title: cause.title.clone(),
        summary,
        action: actions.first().cloned().unwrap_or_default(),
        actions,
        evidence: pick_evidence(evidence),
        evidence_count: evidence.len() as u64,
    }
}

/// Keeps the most recent evidence items, listed oldest first. XML fields
/// come first because they are the connector's own summary.
fn pick_evidence(observations: &[Observation]) -> Vec<Evidence> {
    let mut sorted: Vec<&Observation> = observations.iter().collect();
    sorted.sort_by(|a, b| timeline_order(a, b));
    let xml: Vec<&Observation> = sorted
        .iter()
        .copied()
        .filter(|obs| matches!(obs.source, SourceKind::LocalXml | SourceKind::PolicyXml))
        .collect();
    let others: Vec<&Observation> = sorted
        .iter()
        .copied()
        .filter(|obs| !matches!(obs.source, SourceKind::LocalXml | SourceKind::PolicyXml))
        .collect();
    let room = EVIDENCE_SHOWN.saturating_sub(xml.len());
    let skip = others.len().saturating_sub(room);
    xml.into_iter()
        .chain(others.into_iter().skip(skip))
        .map(Observation::evidence)
        .collect()
}

fn timeline_order(a: &Observation, b: &Observation) -> std::cmp::Ordering {
    // Entries without a time sort last; ties keep file and line order.
    let key = |obs: &Observation| (obs.time.is_none(), obs.time, obs.file.clone(), obs.line);
    key(a).cmp(&key(b))
}

fn build_timeline(observations: &[Observation]) -> Vec<TimelineEntry> {
    let mut entries: Vec<&Observation> = observations
        .iter()
        .filter(|obs| {
            matches!(
                obs.source,
                SourceKind::Log | SourceKind::Transcript | SourceKind::Capture
            )
        })
        .filter(|obs| obs.event.is_some() || !obs.causes.is_empty())
        .collect();
    entries.sort_by(|a, b| timeline_order(a, b));
    entries
        .into_iter()
        .map(|obs| TimelineEntry {
            time: obs.time.map(|time| format_time(time, obs.utc)),
            file: obs.file.clone(),
            line: obs.line,
            kind: match (obs.event, obs.causes.is_empty()) {
                (_, false) => TimelineKind::Failure,
                (Some(kind), true) => kind.into(),
                (None, true) => TimelineKind::Network,
            },
            cause: obs.causes.first().cloned(),
            message: timeline_message(&obs.text),
        })
        .collect()
}

/// Returns a log line without its counter and timestamp, which the timeline
/// and evidence tables show in their own columns.
pub fn timeline_message(text: &str) -> String {
    match crate::logline::parse_header(text) {
        Some(header) => match header.component {
            Some(component) => format!("{component}: {}", header.message),
            None => header.message.to_string(),
        },
        None => text.trim().to_string(),
    }
}

fn format_time(time: NaiveDateTime, utc: bool) -> String {
    let text = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    if utc {
        text + "Z"
    } else {
        text
    }
}

fn epoch_text(epoch: Option<i64>) -> Option<String> {
    epoch
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .map(|time| format_time(time.naive_utc(), true))
}

fn definitions_summary(
    local: Option<&LocalXml>,
    rules: &RuleSet,
    collected_at: Option<NaiveDateTime>,
) -> Definitions {
    let Some(local) = local else {
        return Definitions::default();
    };
    let version = local.tetra_version.clone().or_else(|| {
        local
            .stats_versions
            .iter()
            .find(|v| v.to_ascii_uppercase().starts_with("TETRA"))
            .cloned()
    });
    // The last check, unless the bundle was collected well after it (the
    // updater stopped checking); the bundle time is local, so a day's slack
    // keeps time zones from faking staleness.
    let collected = collected_at.map(|time| time.and_utc().timestamp());
    let reference = match (local.last_check, collected) {
        (Some(check), Some(collected)) if collected - check > 24 * 3600 => Some(collected),
        (Some(check), _) => Some(check),
        (None, collected) => collected,
    };
    let hours = match (local.last_success, reference) {
        (Some(success), Some(reference)) if reference >= success => {
            Some(((reference - success) as f64 / 3600.0 * 10.0).round() / 10.0)
        }
        _ => None,
    };
    let last_error = local.last_error_text.as_ref().map(|text| LastError {
        text: text.clone(),
        unsigned: local.last_error,
        signed: local.last_error.map(|code| code as i32),
        meaning: local.last_error.and_then(|code| match code {
            0 => Some("no error".to_string()),
            code => rules.lasterror(code).map(|known| known.meaning.clone()),
        }),
    });
    Definitions {
        version,
        last_update: epoch_text(local.last_update),
        last_success: epoch_text(local.last_success),
        last_check: epoch_text(local.last_check),
        hours_since_success: hours,
        estimated_versions_behind: hours.map(|hours| (hours / 6.0).floor() as u64),
        last_error,
    }
}

struct ContextFacts<'a> {
    rules: &'a RuleSet,
    context: &'a ActionContext,
    definitions: &'a Definitions,
    debug: bool,
    running_logs: usize,
    running: Option<&'a str>,
    versions: &'a [String],
    resolved: &'a [Observation],
    root_cause: Option<&'a str>,
}

fn context_findings(facts: ContextFacts<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let cause = |id: &str| facts.rules.cause(id);

    if let (Some(hours), Some(stale)) = (
        facts.definitions.hours_since_success,
        cause("definitions-stale"),
    ) {
        if hours > STALE_HOURS {
            let summary = format!(
                "last successful update {} h before the last check or the bundle's collection (about {} versions behind)",
                hours,
                facts.definitions.estimated_versions_behind.unwrap_or(0)
            );
            findings.push(finding(
                stale,
                facts.context,
                Confidence::High,
                summary,
                &[],
            ));
        }
    }
    if facts.running_logs > 0 && !facts.debug {
        if let Some(not_debug) = cause("logs-not-debug") {
            let summary = format!(
                "none of the running connector's {} log file(s) holds debug-level lines{}",
                facts.running_logs,
                if facts.root_cause.is_none() {
                    ", so no error in them proves little"
                } else {
                    ""
                }
            );
            findings.push(finding(
                not_debug,
                facts.context,
                Confidence::Medium,
                summary,
                &[],
            ));
        }
    }
    if !facts.resolved.is_empty() {
        if let Some(resolved) = cause("update-errors-resolved") {
            let causes: BTreeSet<&str> = facts
                .resolved
                .iter()
                .flat_map(|obs| obs.causes.iter().map(String::as_str))
                .collect();
            let causes: Vec<&str> = causes.into_iter().collect();
            let summary = format!(
                "{} earlier failure line(s) ({}) are followed by a success or come from an older connector",
                facts.resolved.len(),
                if causes.is_empty() { "unrecognized".to_string() } else { causes.join(", ") }
            );
            findings.push(finding(
                resolved,
                facts.context,
                Confidence::High,
                summary,
                facts.resolved,
            ));
        }
    }
    if let (Some(running), Some(version)) = (facts.running, cause("connector-version")) {
        let older: Vec<&str> = facts
            .versions
            .iter()
            .map(String::as_str)
            .filter(|v| *v != running)
            .collect();
        let summary = if older.is_empty() {
            format!("running {running}")
        } else {
            format!(
                "running {running}; older version folders: {}",
                older.join(", ")
            )
        };
        findings.push(finding(
            version,
            facts.context,
            Confidence::High,
            summary,
            &[],
        ));
    }
    findings
}

fn policy_summary(policy: &PolicyXml) -> PolicySummary {
    PolicySummary {
        name: policy.policy_name.clone(),
        serial: policy.policy_serial.clone(),
        tetra_enabled: policy.tetra_enabled,
        tetra_updater_enabled: policy.tetra_updater_enabled,
        update_server: policy
            .tetra_update_server
            .clone()
            .or_else(|| policy.update_server.clone()),
        update_interval_seconds: policy.tetra_update_interval,
        crl_check: policy.crl_check.clone(),
        verify_peer: policy.verify_peer.clone(),
        log_level: policy.log_level.clone(),
    }
}

fn verdict(
    root_cause: Option<&str>,
    rules: &RuleSet,
    definitions: &Definitions,
    running_logs: usize,
    debug: bool,
) -> String {
    if let Some(cause) = root_cause.and_then(|id| rules.cause(id)) {
        return format!("Updates are failing. {}.", cause.title);
    }
    match definitions.hours_since_success {
        Some(hours) if hours > STALE_HOURS => format!(
            "No update failure found, but the last successful update is {hours} h old{}.",
            if running_logs > 0 && !debug {
                "; collect debug logs over one update interval"
            } else {
                ""
            }
        ),
        _ => "No current update failure found.".to_string(),
    }
}
