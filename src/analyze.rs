//! Analysis of one input: list its members, read the XML files, scan logs,
//! transcripts and captures in parallel, then hand the observations to
//! [`crate::diagnose`].

use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use rayon::prelude::*;

use crate::classify::{classify, ConnectorVersion, MemberKind};
use crate::diagnose::{diagnose, Inputs, Observation};
use crate::error::{Error, Result};
use crate::input::{self, Entry, Limits};
use crate::knowledge::{Matcher, RuleSet};
use crate::model::{LogFile, Report, SourceKind};
use crate::redact::SecretMasker;
use crate::scan::{scan_text, MemberScan};
use crate::xml::{self, LocalXml, PolicyXml};
use crate::years;

/// Bytes of an XML file read into memory; larger ones are cut.
const MAX_XML_BYTES: u64 = 64 * 1024 * 1024;

/// Everything an analysis needs besides the input path.
pub struct Analyzer {
    pub rules: RuleSet,
    pub matcher: Matcher,
    pub limits: Limits,
}

impl Analyzer {
    /// Compiles the rules once for any number of inputs.
    pub fn new(rules: RuleSet, limits: Limits) -> Result<Analyzer> {
        let matcher = Matcher::new(&rules)?;
        Ok(Analyzer {
            rules,
            matcher,
            limits,
        })
    }

    /// Analyzes one input path: a bundle archive, a bundle directory or a
    /// loose file.
    pub fn analyze(&self, path: &Path) -> Result<Report> {
        let listing = input::list(path, &self.limits)?;
        let mut warnings = listing.warnings;
        let classified: Vec<(MemberKind, &Entry)> = listing
            .entries
            .iter()
            .map(|entry| (classify(&entry.path, &entry.head), entry))
            .collect();
        let listed = listing.entries.len() as u64;

        let useful = classified
            .iter()
            .filter(|(kind, _)| *kind != MemberKind::Other)
            .count();
        if useful == 0 {
            return Err(Error::NotABundle {
                path: path.to_path_buf(),
                reason: describe_missing(&listing.entries, &warnings),
            });
        }

        let local_count = classified
            .iter()
            .filter(|(kind, _)| *kind == MemberKind::LocalXml)
            .count();
        if local_count > 1 {
            warnings.push(format!(
                "this input holds {local_count} local.xml files, so it may contain several endpoints' bundles: \
                 the report merges them; analyze each bundle on its own"
            ));
        }
        let (local, local_file) = read_local(&classified, &mut warnings);
        let (policy, policy_file, password) = read_policy(&classified, &mut warnings);
        let secrets: Vec<String> = password.into_iter().collect();
        let masker = SecretMasker::new(&secrets);

        let budget = std::sync::atomic::AtomicU64::new(self.limits.max_total_bytes);
        let scans: Vec<(usize, std::result::Result<MemberScan, String>)> = classified
            .par_iter()
            .enumerate()
            .filter(|(_, (kind, _))| {
                matches!(kind, MemberKind::SfcLog { .. } | MemberKind::Transcript)
            })
            .map(|(index, (_, entry))| (index, self.scan_entry(entry, &masker, &budget)))
            .collect();
        if budget.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return Err(Error::LimitExceeded {
                path: path.to_path_buf(),
                limit: "total uncompressed size",
                value: self.limits.max_total_bytes.to_string(),
                flag: "--max-total-bytes",
            });
        }

        let anchor = pick_anchor(path, local.as_ref());
        let running = classified
            .iter()
            .filter_map(|(kind, _)| match kind {
                MemberKind::SfcLog { version, .. } => version.clone(),
                _ => None,
            })
            .max();

        let mut observations = Vec::new();
        let mut log_files = Vec::new();
        let mut year_source = None;
        let mut counts = crate::model::MemberCounts {
            listed,
            ..Default::default()
        };
        for (index, result) in scans {
            let (kind, entry) = &classified[index];
            let scan = match result {
                Ok(scan) => scan,
                Err(message) => {
                    warnings.push(format!("{}: {message}", entry.path));
                    continue;
                }
            };
            counts.scanned += 1;
            if scan.truncated {
                warnings.push(format!(
                    "{}: only the first {} bytes were scanned (per-member limit; raise it with --max-member-bytes)",
                    entry.path, scan.bytes
                ));
            }
            if scan.dropped_matches > 0 {
                warnings.push(format!(
                    "{}: {} further matching lines were counted but not kept",
                    entry.path, scan.dropped_matches
                ));
            }
            match kind {
                MemberKind::SfcLog { version, rotation } => {
                    counts.logs += 1;
                    let is_running = running.is_none() || version == &running;
                    let (file_anchor, source) = file_anchor(entry, &anchor);
                    if year_source.is_none() {
                        year_source = source;
                    }
                    log_files.push(log_observations(
                        entry,
                        version.as_ref(),
                        *rotation,
                        is_running,
                        &scan,
                        file_anchor,
                        &mut observations,
                    ));
                }
                _ => {
                    counts.transcripts += 1;
                    for matched in &scan.matches {
                        observations.push(Observation::from_line(
                            SourceKind::Transcript,
                            &entry.path,
                            matched,
                            None,
                            true,
                        ));
                    }
                }
            }
        }

        let mut network = crate::network::NetworkFacts::default();
        for (kind, entry) in &classified {
            if *kind == MemberKind::Transcript {
                match input::read_entry_bytes(entry, MAX_XML_BYTES) {
                    Ok(bytes) => {
                        let mut facts = crate::network::parse_transcript(&entry.path, &bytes);
                        // `netsh` shows proxy credentials as written.
                        facts.winhttp_proxy = facts
                            .winhttp_proxy
                            .map(|value| masker.mask(&value).into_owned());
                        facts.winhttp_bypass = facts
                            .winhttp_bypass
                            .map(|value| masker.mask(&value).into_owned());
                        network.merge(facts);
                    }
                    Err(err) => warnings.push(format!("{}: unreadable: {err}", entry.path)),
                }
            }
            if *kind == MemberKind::Capture {
                counts.captures += 1;
                self.read_capture(entry, &masker, &budget, &mut observations, &mut warnings);
            }
        }

        // Capture times are UTC; shift them to the endpoint's local time when
        // its offset is known, so the timeline interleaves them with the log.
        let utc_offset = estimate_utc_offset(&classified, local_file.as_deref(), local.as_ref());
        if let Some(offset) = utc_offset {
            for obs in observations.iter_mut().filter(|obs| obs.utc) {
                obs.time = obs.time.map(|time| time + offset);
                obs.utc = false;
            }
        }

        // Newest log first, then older rotations and versions: the table
        // reads top-down from the current state.
        log_files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.file.cmp(&b.0.file)));
        let log_files: Vec<(LogFile, bool)> = log_files
            .into_iter()
            .map(|(file, _, debug)| (file, debug))
            .collect();

        let found_versions = versions_found(&classified);
        let newest_folder = found_versions
            .first()
            .and_then(|v| ConnectorVersion::parse(v));
        if let (Some(newest), Some(logged)) = (&newest_folder, &running) {
            if newest > logged {
                warnings.push(format!(
                    "version folder {newest} holds no sfc.exe.log; the logs analyzed come from {logged}, which may predate an upgrade"
                ));
            }
        }
        let inputs = Inputs {
            bundle: path.display().to_string(),
            format: listing.format,
            rules: &self.rules,
            local,
            local_file,
            policy,
            policy_file,
            running: newest_folder.or(running).map(|version| version.to_string()),
            versions_found: found_versions,
            log_files,
            year_source,
            utc_offset_minutes: utc_offset.map(|offset| offset.num_minutes()),
            collected_at: path
                .file_name()
                .and_then(|name| years::datetime_in_name(&name.to_string_lossy())),
            observations,
            network,
            warnings,
            counts,
        };
        Ok(diagnose(inputs))
    }

    fn scan_entry(
        &self,
        entry: &Entry,
        masker: &SecretMasker,
        budget: &std::sync::atomic::AtomicU64,
    ) -> std::result::Result<MemberScan, String> {
        use std::sync::atomic::Ordering;
        let remaining = budget.load(Ordering::Relaxed);
        if remaining == 0 {
            return Err("skipped: total uncompressed size limit reached".to_string());
        }
        let cap = self.limits.max_member_bytes.min(remaining);
        let scan = input::with_reader(entry, |reader| {
            scan_text(reader, cap, &self.matcher, masker)
        })
        .and_then(|result| result)
        .map_err(|err| format!("unreadable: {err}"))?;
        let _ = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            Some(left.saturating_sub(scan.bytes))
        });
        // A member cut by the total budget, not its own limit, means the
        // whole input is over the total limit.
        if scan.truncated && cap < self.limits.max_member_bytes {
            budget.store(0, Ordering::Relaxed);
        }
        Ok(scan)
    }

    fn read_capture(
        &self,
        entry: &Entry,
        masker: &SecretMasker,
        budget: &std::sync::atomic::AtomicU64,
        observations: &mut Vec<Observation>,
        warnings: &mut Vec<String>,
    ) {
        use std::sync::atomic::Ordering;
        // A capture is read whole, so it counts against the same total as
        // the scanned logs.
        let remaining = budget.load(Ordering::Relaxed);
        let cap = self.limits.max_member_bytes.min(remaining);
        let bytes = match input::read_entry_bytes(entry, cap) {
            Ok(bytes) => bytes,
            Err(err) => {
                warnings.push(format!(
                    "{}: capture skipped: {err} (limits: --max-member-bytes, --max-total-bytes)",
                    entry.path
                ));
                return;
            }
        };
        budget.store(
            remaining.saturating_sub(bytes.len() as u64),
            Ordering::Relaxed,
        );
        let public_cas: Vec<String> = self
            .rules
            .public_ca
            .iter()
            .map(|ca| ca.issuer.clone())
            .collect();
        crate::capture_observations::collect(
            &bytes,
            &entry.path,
            &self.matcher,
            masker,
            &public_cas,
            observations,
            warnings,
        );
    }
}

/// Estimates the endpoint's offset from UTC: `local.xml` is written when the
/// connector records an update check, so its archive entry time (local, in
/// a ZIP) minus its newest epoch field (UTC) is the offset, when that lands
/// within a few minutes of a whole quarter hour and within 14 hours.
// NOTE: this rests on local.xml being saved at its last recorded check,
// which holds for the bundles seen so far but is not documented.
fn estimate_utc_offset(
    classified: &[(MemberKind, &Entry)],
    local_file: Option<&str>,
    local: Option<&LocalXml>,
) -> Option<chrono::Duration> {
    let entry = classified
        .iter()
        .find(|(_, entry)| Some(entry.path.as_str()) == local_file)?
        .1;
    let written = entry.mtime?;
    let newest = [local?.last_check, local?.last_update, local?.last_success]
        .into_iter()
        .flatten()
        .max()?;
    let newest = DateTime::from_timestamp(newest, 0)?.naive_utc();
    let minutes = (written - newest).num_minutes();
    let quarter_hours = (minutes as f64 / 15.0).round() as i64;
    let residue = (minutes - quarter_hours * 15).abs();
    (residue <= 5 && quarter_hours.abs() <= 14 * 4)
        .then(|| chrono::Duration::minutes(quarter_hours * 15))
}

/// Returns the date that log years are anchored to, and its source.
fn pick_anchor(path: &Path, local: Option<&LocalXml>) -> Option<(NaiveDateTime, String)> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(date) = years::date_in_name(&name) {
        return date
            .and_hms_opt(23, 59, 59)
            .map(|time| (time, format!("bundle name date {date}")));
    }
    let newest_epoch = local.and_then(|local| {
        [local.last_check, local.last_update, local.last_success]
            .into_iter()
            .flatten()
            .max()
    });
    if let Some(time) = newest_epoch.and_then(|epoch| DateTime::from_timestamp(epoch, 0)) {
        return Some((
            time.naive_utc(),
            format!("local.xml time {}", time.format("%Y-%m-%d")),
        ));
    }
    None
}

/// Returns the anchor for one log file: the bundle-wide anchor, else the
/// archive entry's modification time.
fn file_anchor(
    entry: &Entry,
    bundle: &Option<(NaiveDateTime, String)>,
) -> (Option<NaiveDate>, Option<String>) {
    if let Some((time, source)) = bundle {
        return (Some(time.date()), Some(source.clone()));
    }
    if let Some(time) = entry.mtime {
        let source = format!("archive entry time {}", time.format("%Y-%m-%d"));
        return (Some(time.date()), Some(source));
    }
    if let Some(time) = input::file_modified(entry) {
        let source = format!("file modification time {}", time.format("%Y-%m-%d"));
        return (Some(time.date()), Some(source));
    }
    // Without any date the log still needs one year for its order.
    let today = chrono::Local::now().date_naive();
    (
        Some(today),
        Some(format!(
            "no date found; year {} assumed",
            today.format("%Y")
        )),
    )
}

/// Turns one log's matched lines into observations with full timestamps and
/// returns the file's summary, its sort key and whether it had debug lines.
#[allow(clippy::too_many_arguments)]
fn log_observations(
    entry: &Entry,
    version: Option<&ConnectorVersion>,
    rotation: u32,
    running: bool,
    scan: &MemberScan,
    anchor: Option<NaiveDate>,
    observations: &mut Vec<Observation>,
) -> (
    LogFile,
    (Option<ConnectorVersion>, std::cmp::Reverse<u32>),
    bool,
) {
    // The stamps in file order: first line, matched lines, last line.
    let mut stamps = Vec::new();
    stamps.extend(scan.first_stamp);
    stamps.extend(scan.matches.iter().filter_map(|m| m.stamp));
    stamps.extend(scan.last_stamp);
    let years = match anchor {
        Some(anchor) => years::assign_years(&stamps, anchor),
        None => Vec::new(),
    };
    let mut year_iter = years.iter().copied();
    let first = scan.first_stamp.and_then(|stamp| {
        year_iter
            .next()
            .and_then(|year| years::to_datetime(&stamp, year))
    });
    for matched in &scan.matches {
        let time = matched.stamp.and_then(|stamp| {
            year_iter
                .next()
                .and_then(|year| years::to_datetime(&stamp, year))
        });
        observations.push(Observation::from_line(
            SourceKind::Log,
            &entry.path,
            matched,
            time,
            running,
        ));
    }
    let last = scan.last_stamp.and_then(|stamp| {
        year_iter
            .next()
            .and_then(|year| years::to_datetime(&stamp, year))
    });

    let file = LogFile {
        file: entry.path.clone(),
        version: version.map(ToString::to_string),
        running,
        lines: scan.lines,
        first: first.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()),
        last: last.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()),
    };
    (
        file,
        (version.cloned(), std::cmp::Reverse(rotation)),
        scan.has_debug_marker,
    )
}

/// Returns every version folder under `AMP/`, newest first, whether or not
/// it contains logs.
fn versions_found(classified: &[(MemberKind, &Entry)]) -> Vec<String> {
    let mut versions: Vec<ConnectorVersion> = classified
        .iter()
        .flat_map(|(_, entry)| {
            let segments: Vec<&str> = entry.path.split('/').collect();
            segments
                .windows(2)
                .filter(|pair| pair[0].eq_ignore_ascii_case("amp"))
                .filter_map(|pair| ConnectorVersion::parse(pair[1]))
                .collect::<Vec<_>>()
        })
        .collect();
    versions.sort();
    versions.dedup();
    versions.iter().rev().map(ToString::to_string).collect()
}

/// Reads the shallowest `local.xml` (the one beside the version folders).
fn read_local(
    classified: &[(MemberKind, &Entry)],
    warnings: &mut Vec<String>,
) -> (Option<LocalXml>, Option<String>) {
    let Some(entry) = shallowest(classified, &MemberKind::LocalXml) else {
        warnings.push("local.xml not found: connector GUID, definition version and last update error are unknown".to_string());
        return (None, None);
    };
    let Some(flat) = read_xml(entry, warnings) else {
        return (None, None);
    };
    (Some(xml::parse_local(&flat)), Some(entry.path.clone()))
}

fn read_policy(
    classified: &[(MemberKind, &Entry)],
    warnings: &mut Vec<String>,
) -> (Option<PolicyXml>, Option<String>, Option<String>) {
    let Some(entry) = shallowest(classified, &MemberKind::PolicyXml) else {
        warnings.push(
            "policy.xml not found (connectors from 8.1.3 on do not keep it readable): proxy and updater settings are unknown"
                .to_string(),
        );
        return (None, None, None);
    };
    let Some(flat) = read_xml(entry, warnings) else {
        return (None, None, None);
    };
    let (policy, password) = xml::parse_policy(&flat);
    (Some(policy), Some(entry.path.clone()), password)
}

fn shallowest<'a>(
    classified: &[(MemberKind, &'a Entry)],
    wanted: &MemberKind,
) -> Option<&'a Entry> {
    classified
        .iter()
        .filter(|(kind, _)| kind == wanted)
        .map(|(_, entry)| *entry)
        .min_by_key(|entry| (entry.path.matches('/').count(), entry.path.clone()))
}

fn read_xml(entry: &Entry, warnings: &mut Vec<String>) -> Option<xml::FlatXml> {
    let bytes = match input::with_reader(entry, |reader| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(reader, MAX_XML_BYTES), &mut bytes)
            .map(|_| bytes)
    }) {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(err)) | Err(err) => {
            warnings.push(format!("{}: unreadable: {err}", entry.path));
            return None;
        }
    };
    let (flat, error) = xml::flatten(&bytes);
    if let Some(error) = error {
        warnings.push(format!(
            "{}: {error}; fields before the error were used",
            entry.path
        ));
    }
    Some(flat)
}

/// Describes what an input without any known member holds, and why.
fn describe_missing(entries: &[Entry], warnings: &[String]) -> String {
    let sample: Vec<&str> = entries
        .iter()
        .take(5)
        .map(|entry| entry.path.as_str())
        .collect();
    let found = match entries.len() {
        0 => "it holds no readable file".to_string(),
        1 => format!("it holds only {}", sample.join(", ")),
        count => format!("it holds {count} files, such as {}", sample.join(", ")),
    };
    let mut reason = format!(
        "{found}, and no sfc.exe.log, local.xml, policy.xml, network transcript or packet capture; \
         a Secure Endpoint support bundle has Program Files/Cisco/AMP/local.xml and <version>/sfc.exe.log"
    );
    if let Some(first) = warnings.first() {
        reason.push_str(&format!(" ({first})"));
    }
    reason
}
