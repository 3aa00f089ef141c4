//! Turns a [`RuleSet`] into a matcher: one Aho-Corasick automaton over every
//! literal finds candidate lines, then each rule that owns a found literal
//! checks the line in full.

use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Input, MatchKind};
use regex::Regex;

use super::{Code, EventKind, Notation, RuleSet};
use crate::error::{Error, Result};

mod lines;

use lines::LineFinder;

/// A rule that owns a literal of the automaton.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Code(usize),
    Signal(usize),
    Event(usize),
}

#[derive(Debug)]
struct CompiledCode {
    id: String,
    cause: String,
    rank: i32,
    regex: Regex,
    context: Vec<String>,
}

#[derive(Debug)]
struct CompiledSignal {
    id: String,
    cause: String,
    rank: i32,
    all: Vec<String>,
    unless: Vec<String>,
    log_context: Vec<String>,
    regex: Option<Regex>,
}

#[derive(Debug)]
struct CompiledEvent {
    kind: EventKind,
    groups: Vec<Vec<String>>,
    unless: Vec<String>,
}

/// A cause that a line points to, and the code or signal that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseHit {
    pub cause: String,
    pub rank: i32,
    pub via: Vec<String>,
}

/// What one line says: the most specific causes it points to and whether it
/// is update activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineMatch {
    pub causes: Vec<CauseHit>,
    pub event: Option<EventKind>,
}

impl LineMatch {
    pub fn is_empty(&self) -> bool {
        self.causes.is_empty() && self.event.is_none()
    }
}

/// Compiled rules, shared read-only by every scanning thread.
#[derive(Debug)]
pub struct Matcher {
    automaton: AhoCorasick,
    owners: Vec<Vec<Owner>>,
    codes: Vec<CompiledCode>,
    signals: Vec<CompiledSignal>,
    events: Vec<CompiledEvent>,
    debug_markers: AhoCorasick,
    /// A faster search for the lines that contain a literal; `None` when the
    /// literals are too many for a DFA.
    line_finder: Option<LineFinder>,
}

impl Matcher {
    /// Compiles the rules. Fails only on a pattern that does not compile,
    /// which [`RuleSet::validate`] reports first for rule files.
    pub fn new(rules: &RuleSet) -> Result<Matcher> {
        let rank_of = |cause: &str| rules.cause(cause).map_or(0, |c| c.rank);
        let mut literals: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<Owner>> = Vec::new();
        let mut add = |literal: &str, owner: Owner| {
            let literal = literal.to_lowercase();
            if literal.is_empty() {
                return;
            }
            match literals.iter().position(|known| *known == literal) {
                Some(index) => owners[index].push(owner),
                None => {
                    literals.push(literal);
                    owners.push(vec![owner]);
                }
            }
        };

        let mut codes = Vec::new();
        for (index, code) in rules.code.iter().enumerate() {
            let (code_literals, pattern) = code_pattern(code);
            for literal in &code_literals {
                add(literal, Owner::Code(index));
            }
            codes.push(CompiledCode {
                id: code.id(),
                cause: code.cause.clone(),
                rank: rank_of(&code.cause),
                regex: compile_regex(&pattern, &code.id())?,
                context: lowercase_all(&code.context),
            });
        }

        let mut signals = Vec::new();
        for (index, signal) in rules.signal.iter().enumerate() {
            for literal in &signal.any {
                add(literal, Owner::Signal(index));
            }
            let regex = match &signal.regex {
                Some(pattern) => Some(compile_regex(pattern, &signal.id)?),
                None => None,
            };
            signals.push(CompiledSignal {
                id: signal.id.clone(),
                cause: signal.cause.clone(),
                rank: rank_of(&signal.cause),
                all: lowercase_all(&signal.all),
                unless: lowercase_all(&signal.unless),
                log_context: lowercase_all(&signal.log_context),
                regex,
            });
        }

        let mut events = Vec::new();
        for (index, event) in rules.event.iter().enumerate() {
            // The last group is the prefilter: see the note above [[event]]
            // in tetra.toml.
            if let Some(last) = event.all_groups.last() {
                for literal in last {
                    add(literal, Owner::Event(index));
                }
            }
            events.push(CompiledEvent {
                kind: event.kind,
                groups: event.all_groups.iter().map(|g| lowercase_all(g)).collect(),
                unless: lowercase_all(&event.unless),
            });
        }

        let automaton = build_automaton(&literals)?;
        let line_finder = if literals.len() <= MAX_DFA_LITERALS {
            LineFinder::new(&literals)
        } else {
            None
        };
        let markers: Vec<String> = rules
            .debug_marker
            .iter()
            .map(|m| m.text.to_lowercase())
            .collect();
        let debug_markers = build_automaton(&markers)?;
        Ok(Matcher {
            automaton,
            owners,
            codes,
            signals,
            events,
            debug_markers,
            line_finder,
        })
    }

    /// Appends to `offsets` one byte offset inside each line of `region`
    /// that contains a rule literal, in increasing order. Lines end at
    /// `terminator`, and a line without a rule literal can match no rule.
    pub fn candidate_lines(&self, region: &[u8], terminator: u8, offsets: &mut Vec<usize>) {
        if let Some(finder) = &self.line_finder {
            finder.find_lines(region, terminator, offsets);
            return;
        }
        let mut from = 0;
        while from < region.len() {
            let Some(found) = self
                .automaton
                .find(Input::new(region).span(from..region.len()))
            else {
                break;
            };
            offsets.push(found.start());
            from = memchr::memchr(terminator, &region[found.start()..])
                .map_or(region.len(), |line_end| found.start() + line_end + 1);
        }
    }

    /// Returns whether the text contains a debug-level marker.
    pub fn has_debug_marker(&self, text: &[u8]) -> bool {
        self.debug_markers.is_match(text)
    }

    /// Checks one line against every rule whose literal it contains.
    pub fn match_line(&self, line: &str) -> LineMatch {
        let mut owners: BTreeSet<(u8, usize)> = BTreeSet::new();
        for found in self.automaton.find_overlapping_iter(line) {
            for owner in &self.owners[found.pattern().as_usize()] {
                owners.insert(match *owner {
                    Owner::Code(index) => (0, index),
                    Owner::Signal(index) => (1, index),
                    Owner::Event(index) => (2, index),
                });
            }
        }
        if owners.is_empty() {
            return LineMatch::default();
        }

        let lower = line.to_lowercase();
        // Event verbs count only in the message, so that a component such as
        // `DefinitionFetcher::Complete` does not make a line a success.
        let header = crate::logline::parse_header(line);
        let message_lower = header.as_ref().map(|h| h.message.to_lowercase());
        let message_lower = message_lower.as_deref().unwrap_or(&lower);
        let mut result = LineMatch::default();
        for (kind, index) in owners {
            match kind {
                0 => {
                    let code = &self.codes[index];
                    let in_context = code.context.is_empty()
                        || code
                            .context
                            .iter()
                            .any(|word| lower.contains(word.as_str()));
                    if in_context && code.regex.is_match(line) {
                        add_hit(&mut result.causes, &code.cause, code.rank, &code.id);
                    }
                }
                1 => {
                    let signal = &self.signals[index];
                    let holds_all = signal.all.iter().all(|word| lower.contains(word.as_str()));
                    let excluded = signal
                        .unless
                        .iter()
                        .any(|word| lower.contains(word.as_str()));
                    let regex_ok = signal
                        .regex
                        .as_ref()
                        .is_none_or(|regex| regex.is_match(line));
                    // Connector log lines need an update context for
                    // generic network words; a transcript is about the
                    // update server as a whole.
                    let in_context = signal.log_context.is_empty()
                        || header.is_none()
                        || signal
                            .log_context
                            .iter()
                            .any(|word| lower.contains(word.as_str()));
                    if holds_all && !excluded && regex_ok && in_context {
                        add_hit(&mut result.causes, &signal.cause, signal.rank, &signal.id);
                    }
                }
                _ => {
                    let event = &self.events[index];
                    let last = event.groups.len().saturating_sub(1);
                    let in_groups = event.groups.iter().enumerate().all(|(position, group)| {
                        let text = if position == last {
                            message_lower
                        } else {
                            lower.as_str()
                        };
                        group.iter().any(|word| text.contains(word.as_str()))
                    });
                    let excluded = event
                        .unless
                        .iter()
                        .any(|word| lower.contains(word.as_str()));
                    // Rules come in file order, so the first rule that holds
                    // decides the event kind.
                    if in_groups && !excluded && result.event.is_none() {
                        result.event = Some(event.kind);
                    }
                }
            }
        }

        // A line that names a failure cause is never a success, whatever
        // else it says.
        if result.event == Some(EventKind::Success) && !result.causes.is_empty() {
            result.event = Some(EventKind::Failure);
        }

        // A line such as "curl: (7) Failed to connect to proxy.corp port 8080"
        // names both a generic and a specific cause: keep the most specific.
        if let Some(best) = result.causes.iter().map(|hit| hit.rank).max() {
            result.causes.retain(|hit| hit.rank == best);
        }
        result
    }
}

fn add_hit(hits: &mut Vec<CauseHit>, cause: &str, rank: i32, via: &str) {
    match hits.iter_mut().find(|hit| hit.cause == cause) {
        Some(hit) => hit.via.push(via.to_string()),
        None => hits.push(CauseHit {
            cause: cause.to_string(),
            rank,
            via: vec![via.to_string()],
        }),
    }
}

fn lowercase_all(words: &[String]) -> Vec<String> {
    words.iter().map(|word| word.to_lowercase()).collect()
}

fn compile_regex(pattern: &str, owner: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|err| Error::Rules {
        path: std::path::PathBuf::from(owner),
        reason: format!("invalid pattern: {err}"),
    })
}

/// Literal count up to which the automaton is built as a full DFA.
const MAX_DFA_LITERALS: usize = 10_000;

fn build_automaton(literals: &[String]) -> Result<AhoCorasick> {
    let mut builder = AhoCorasickBuilder::new();
    builder
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard);
    // For more than 100 literals the builder picks a contiguous NFA, which
    // searched the built-in rules' ~210 literals at about half the speed of
    // a full DFA (250 against 500 MB/s on one AMD EPYC core, over logs from
    // benches/make_bench_bundles.py). That DFA takes about 2.3 MB and grows
    // with the literals, hence the cap and the fallback.
    if literals.len() <= MAX_DFA_LITERALS {
        builder.kind(Some(AhoCorasickKind::DFA));
        if let Ok(automaton) = builder.build(literals) {
            return Ok(automaton);
        }
        builder.kind(None);
    }
    builder.build(literals).map_err(|err| Error::Rules {
        path: std::path::PathBuf::from("<literals>"),
        reason: err.to_string(),
    })
}

/// Returns the prefilter literals and the full pattern for a code, covering
/// each notation the code is written in.
fn code_pattern(code: &Code) -> (Vec<String>, String) {
    let mut literals = Vec::new();
    let mut alternatives = Vec::new();

    if let Some(value) = code.value {
        match code.notation {
            Notation::Hresult => push_hresult(value as u32, &mut literals, &mut alternatives),
            Notation::Winhttp => {
                literals.push(value.to_string());
                alternatives.push(format!(
                    r"\b(?:winhttp|error|err|code|failed|failure|status|result|timed out|ended|returned|hr)\D{{0,24}}\b{value}\b|\(\s*{value}\s*\)"
                ));
                push_hresult(
                    0x8007_0000 | (value as u32 & 0xFFFF),
                    &mut literals,
                    &mut alternatives,
                );
            }
            Notation::Curl => {
                literals.push("curl".to_string());
                alternatives.push(format!(r"curl[^()\n]{{0,40}}\(\s*{value}\s*\)"));
                alternatives.push(format!(
                    r"curl\w*\D{{0,30}}\b(?:error|code|result|rc|failed)\D{{0,4}}\b{value}\b"
                ));
            }
            Notation::Lasterror => {
                let signed = value as u32 as i32;
                literals.push(value.to_string());
                literals.push(signed.to_string());
                alternatives.push(format!(r"\b{value}\b"));
                alternatives.push(format!(r"(?:error|lasterror)\D{{0,16}}{signed}\b"));
            }
            Notation::Http => {
                literals.push(value.to_string());
                alternatives.push(format!(r"\bHTTP/\d(?:\.\d)?\s+{value}\b"));
                alternatives.push(format!(
                    r"\b(?:http|status|response)[\s_-]*(?:status|code|error|response)?\s*[:=]?\s*{value}\b"
                ));
            }
            Notation::Dns => {
                literals.push(value.to_string());
                alternatives.push(format!(r"\b{value}\b"));
            }
        }
    }
    if let Some(symbol) = &code.symbol {
        literals.push(symbol.clone());
        alternatives.push(format!(r"\b{}\b", regex::escape(symbol)));
    }
    (literals, format!("(?i){}", alternatives.join("|")))
}

fn push_hresult(value: u32, literals: &mut Vec<String>, alternatives: &mut Vec<String>) {
    let hex = format!("{value:08x}");
    let signed = value as i32;
    literals.push(hex.clone());
    literals.push(value.to_string());
    literals.push(signed.to_string());
    alternatives.push(format!(r"(?:\b0x|\b){hex}\b"));
    alternatives.push(format!(r"\b{value}\b"));
    alternatives.push(format!(r"{signed}\b"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> Matcher {
        let rules = RuleSet::builtin().expect("built-in rules parse");
        Matcher::new(&rules).expect("built-in rules compile")
    }

    fn causes(line: &str) -> Vec<String> {
        matcher()
            .match_line(line)
            .causes
            .into_iter()
            .map(|hit| hit.cause)
            .collect()
    }

    #[test]
    fn hresult_matches_every_notation() {
        for line in [
            "InitializeSecurityContext failed: Unknown error (0x80092013) - The revocation",
            "schannel: CRYPT_E_REVOCATION_OFFLINE (0x80092013)",
            "error 80092013 while checking",
            "hr=2148081683",
            "returned -2146885613",
        ] {
            assert_eq!(
                causes(line),
                ["tls-revocation-check-failed"],
                "line: {line}"
            );
        }
    }

    #[test]
    fn curl_35_with_revocation_code_is_revocation() {
        let line = "curl: (35) schannel: next InitializeSecurityContext failed: Unknown error (0x80092013) - The revocation";
        assert_eq!(causes(line), ["tls-revocation-check-failed"]);
    }

    #[test]
    fn winhttp_number_needs_context() {
        assert_eq!(
            causes("WinHttpSendRequest failed with error 12029"),
            ["server-unreachable"]
        );
        assert_eq!(causes("hresult 0x80072EE7"), ["dns-resolution-failed"]);
        assert!(
            causes("(1212029, +0 ms) May 18 16:54:33 [12029]: Event::HandleCreation").is_empty()
        );
    }

    #[test]
    fn proxy_beats_generic_connect_failure() {
        let line =
            "curl: (7) Failed to connect to proxy.corp.example port 8080: Connection refused";
        assert_eq!(causes(line), ["proxy-connect-failed"]);
        let direct = "curl: (7) Failed to connect to tetra-defs.amp.cisco.com port 443: Timed out";
        assert_eq!(causes(direct), ["server-unreachable"]);
    }

    #[test]
    fn status_line_407_is_proxy_auth() {
        assert_eq!(
            causes("< HTTP/1.1 407 Proxy Authentication Required"),
            ["proxy-auth-failed"]
        );
    }

    #[test]
    fn japanese_revocation_text_matches() {
        let line = "失効サーバーがオフラインだったため、失効の関数は失効を確認できませんでした。";
        assert_eq!(causes(line), ["tls-revocation-check-failed"]);
    }

    #[test]
    fn scan_noise_matches_nothing() {
        let m = matcher();
        for line in [
            "(1284031, +0 ms) May 18 16:54:33 [5432]: Query::LookupExecute: attempting lookup with cloud",
            "(1284032, +0 ms) May 18 16:54:33 [5432]: TetraEngineInterface::ScanFile[3] lock acquired",
            "(1284033, +0 ms) May 18 16:54:33 [5432]: Event::HandleCreation: START C:\\Windows\\x.dll",
        ] {
            assert!(m.match_line(line).is_empty(), "line: {line}");
        }
    }

    #[test]
    fn update_events_are_classified() {
        let m = matcher();
        let attempt = m.match_line("TetraUpdater::Run: starting TETRA definition update");
        assert_eq!(attempt.event, Some(EventKind::Attempt));
        let success = m.match_line("DefinitionUpdater: TETRA definitions updated to version 90606");
        assert_eq!(success.event, Some(EventKind::Success));
        let failure = m.match_line("UpdaterTetra::Download: update failed, error 0x8007FFFF");
        assert_eq!(failure.event, Some(EventKind::Failure));
        assert!(failure.causes.is_empty());
    }
}
