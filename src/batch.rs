//! `tetra-triage batch`: finds every bundle under a directory, analyzes the
//! bundles in parallel and writes a fleet summary, JSON Lines or CSV in path
//! order.
//!
//! Results are written as soon as every bundle before them in path order is
//! done. For each finished bundle that waits for an earlier one, memory keeps
//! its row or JSON line (its whole report with `--redact`), and the table
//! format keeps every row, but all reports are never held at once.

mod discover;
mod fleet;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tetra_triage::model::Report;
use tetra_triage::redact::Redactor;
use tetra_triage::report::printable;
use tetra_triage::Analyzer;

use discover::{discover, Candidate};

/// Output formats of `batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BatchFormat {
    /// Fleet summary followed by one row per bundle.
    Table,
    /// One `analyze --format json` object per line.
    Jsonl,
    /// One row per bundle, with a header row.
    Csv,
}

/// Settings of one batch run.
pub struct BatchOptions<'a> {
    pub root: &'a Path,
    pub format: BatchFormat,
    /// Worker threads; `None` uses one per core.
    pub jobs: Option<usize>,
    /// Output file; `None` writes to stdout.
    pub output: Option<&'a Path>,
    pub redact: bool,
    /// The terminal's width from `COLUMNS`, used when stdout is a terminal.
    pub columns: Option<u16>,
}

/// Counts of a finished batch run.
#[derive(Debug, Default)]
pub struct BatchTotals {
    pub analyzed: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// One line of the per-bundle outputs (table rows and CSV records).
#[derive(Debug, Clone, Default)]
struct Row {
    /// The input path, or its token when redacting; the same value as the
    /// JSON `bundle` key.
    bundle: String,
    guid: Option<String>,
    connector_version: Option<String>,
    definitions: Option<String>,
    last_success: Option<String>,
    hours_since_success: Option<f64>,
    root_cause: Option<String>,
    /// Text of the root cause finding's latest evidence item.
    evidence: Option<String>,
    /// The error that stopped the analysis of this bundle.
    error: Option<String>,
}

/// A bundle's result as the writer needs it.
struct Digest {
    row: Row,
    /// The JSON line, for the `jsonl` format only.
    json: Option<String>,
}

/// A bundle's result, digested for the writer unless redacting.
enum Finished {
    Digest(Box<Digest>),
    /// A whole result, sent when redacting: tokens are numbered in the order
    /// values are first seen, so redaction runs in path order on the writer
    /// thread to give the same tokens on every run.
    Whole(std::result::Result<Box<Report>, String>),
}

/// A worker's result for one bundle.
struct Message {
    /// The bundle's place in path order.
    index: usize,
    /// The error, also printed on stderr when the message arrives.
    failure: Option<String>,
    finished: Finished,
}

/// Analyzes every bundle under `options.root` and writes the output.
/// Fails on invalid usage, or when the worker threads cannot start or the
/// output cannot be written. A bundle that cannot be read is no failure of
/// the run: it is counted in [`BatchTotals::failed`].
pub fn run_batch(analyzer: &Analyzer, options: &BatchOptions<'_>) -> anyhow::Result<BatchTotals> {
    let root = options.root;
    if !root.is_dir() {
        bail!(
            "{}: not a directory; batch takes a directory of bundles, analyze takes single bundles",
            root.display()
        );
    }
    let mut writer = Writer::open(options)?;
    let started = Instant::now();
    let discovery = discover(root, options.output);
    let total_bytes: u64 = discovery
        .candidates
        .iter()
        .map(|candidate| candidate.bytes)
        .sum();
    let progress = Progress::new(discovery.candidates.len(), total_bytes);

    let pool = worker_pool(options.jobs)?;
    let redactor = options.redact.then(Redactor::new);

    let mut totals = BatchTotals {
        skipped: discovery.skipped,
        ..BatchTotals::default()
    };
    let candidates = discovery.candidates.as_slice();
    let written = std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel();
        let pool = &pool;
        scope.spawn(move || analyze_all(pool, analyzer, candidates, options, sender));
        let order = WriteOrder {
            candidates,
            redactor: redactor.as_ref(),
            format: options.format,
            progress: &progress,
        };
        order.write_all(receiver, &mut writer, &mut totals)
    });
    progress.finish();
    written?;
    let fleet = fleet::Fleet {
        root,
        redacted: options.redact,
        skipped: totals.skipped,
        width: table_width(options),
    };
    writer.finish(&fleet)?;
    eprintln!(
        "{} bundles analyzed, {} could not be read, {} other files skipped ({} of bundle files in {:.1} s)",
        totals.analyzed,
        totals.failed,
        totals.skipped,
        HumanBytes(total_bytes),
        started.elapsed().as_secs_f64()
    );
    Ok(totals)
}

/// Builds the pool that analyzes bundles; `None` gives it one thread per core.
/// Upper bound for `--jobs`.
const MAX_JOBS: usize = 256;

fn worker_pool(jobs: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let mut builder =
        rayon::ThreadPoolBuilder::new().thread_name(|index| format!("tetra-triage-batch-{index}"));
    if let Some(jobs) = jobs {
        // More threads than this only add memory and scheduling cost on
        // any machine this runs on.
        builder = builder.num_threads(jobs.min(MAX_JOBS));
    }
    builder.build().context("cannot start the worker threads")
}

/// Returns the width to wrap the table to: the terminal's, when stdout is
/// one; `None` (no wrapping) for files and pipes.
fn table_width(options: &BatchOptions<'_>) -> Option<u16> {
    if options.output.is_some() || !io::stdout().is_terminal() {
        return None;
    }
    let detected = options
        .columns
        .or_else(|| comfy_table::Table::new().width());
    Some(detected.unwrap_or(fleet::DEFAULT_WIDTH))
}

/// Analyzes the candidates on the pool's threads and sends each result.
fn analyze_all(
    pool: &rayon::ThreadPool,
    analyzer: &Analyzer,
    candidates: &[Candidate],
    options: &BatchOptions<'_>,
    sender: mpsc::Sender<Message>,
) {
    let next = AtomicUsize::new(0);
    // Each pool thread takes the next bundle in path order, so the results
    // arrive nearly in order and few of them wait to be written.
    pool.broadcast(|_| loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(candidate) = candidates.get(index) else {
            break;
        };
        let message = analyze_candidate(analyzer, index, candidate, options);
        if sender.send(message).is_err() {
            // The writer stopped on an error, so the rest is not needed.
            break;
        }
    });
}

/// Writes results in path order as they arrive, and counts them.
struct WriteOrder<'a> {
    candidates: &'a [Candidate],
    redactor: Option<&'a Redactor>,
    format: BatchFormat,
    progress: &'a Progress,
}

impl WriteOrder<'_> {
    fn write_all(
        &self,
        receiver: mpsc::Receiver<Message>,
        writer: &mut Writer,
        totals: &mut BatchTotals,
    ) -> anyhow::Result<()> {
        let mut pending: BTreeMap<usize, Finished> = BTreeMap::new();
        let mut next_written = 0usize;
        for message in receiver {
            let Some(candidate) = self.candidates.get(message.index) else {
                continue;
            };
            match &message.failure {
                Some(error) => {
                    totals.failed += 1;
                    self.progress.print_error(error);
                }
                None => totals.analyzed += 1,
            }
            self.progress.advance(candidate.bytes);
            pending.insert(message.index, message.finished);
            while let Some(finished) = pending.remove(&next_written) {
                writer.write(self.digest_in_order(next_written, finished))?;
                next_written += 1;
            }
        }
        Ok(())
    }

    fn digest_in_order(&self, index: usize, finished: Finished) -> Digest {
        match finished {
            Finished::Digest(digest) => *digest,
            Finished::Whole(result) => {
                let path = self
                    .candidates
                    .get(index)
                    .map_or(Path::new(""), |candidate| candidate.path.as_path());
                digest_redacted(path, result, self.redactor, self.format)
            }
        }
    }
}

/// Analyzes one bundle on a worker thread.
fn analyze_candidate(
    analyzer: &Analyzer,
    index: usize,
    candidate: &Candidate,
    options: &BatchOptions<'_>,
) -> Message {
    let path = &candidate.path;
    let result = match &candidate.error {
        Some(error) => Err(format!("{}: {error}", path.display())),
        // A panic is a bug in the analysis, but it should cost one bundle,
        // not the whole fleet run.
        None => match panic::catch_unwind(AssertUnwindSafe(|| analyzer.analyze(path))) {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(err)) => Err(err.to_string()),
            Err(payload) => Err(format!(
                "{}: internal error while analyzing: {}",
                path.display(),
                panic_text(payload.as_ref())
            )),
        },
    };
    let failure = result.as_ref().err().cloned();
    let finished = if options.redact {
        Finished::Whole(result.map(Box::new))
    } else {
        Finished::Digest(Box::new(digest(path, result, options.format)))
    };
    Message {
        index,
        failure,
        finished,
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Turns a result into its row and, for JSON Lines, its line.
fn digest(path: &Path, result: Result<Report, String>, format: BatchFormat) -> Digest {
    match result {
        Ok(report) => {
            let json = (format == BatchFormat::Jsonl).then(|| report_line(&report));
            Digest {
                row: report_row(&report),
                json,
            }
        }
        Err(error) => failure_digest(path.display().to_string(), error, format),
    }
}

fn digest_redacted(
    path: &Path,
    result: Result<Box<Report>, String>,
    redactor: Option<&Redactor>,
    format: BatchFormat,
) -> Digest {
    let Some(redactor) = redactor else {
        return digest(path, result.map(|report| *report), format);
    };
    match result {
        Ok(report) => digest(path, Ok(redactor.redact_report(*report)), format),
        Err(error) => {
            let known = [(path.display().to_string(), "bundle")];
            failure_digest(
                redactor.redact_text(&known[0].0, &known),
                redactor.redact_text(&error, &known),
                format,
            )
        }
    }
}

fn failure_digest(bundle: String, error: String, format: BatchFormat) -> Digest {
    let json = (format == BatchFormat::Jsonl)
        .then(|| serde_json::json!({"bundle": bundle, "error": error}).to_string());
    Digest {
        row: Row {
            bundle,
            error: Some(error),
            ..Row::default()
        },
        json,
    }
}

/// Serializes a report as one compact line, the same object as
/// `analyze --format json`.
fn report_line(report: &Report) -> String {
    // serde_json fails only on maps with non-string keys and on custom
    // Serialize errors, and the report has neither. Should that change, the
    // line still names the bundle.
    serde_json::to_string(report).unwrap_or_else(|err| {
        serde_json::json!({"bundle": report.bundle, "error": format!("cannot serialize report: {err}")})
            .to_string()
    })
}

fn report_row(report: &Report) -> Row {
    let evidence = report
        .findings
        .iter()
        .find(|finding| Some(&finding.id) == report.root_cause.as_ref())
        // Evidence is listed oldest first.
        .and_then(|finding| finding.evidence.last())
        .map(|item| item.text.clone());
    Row {
        bundle: report.bundle.clone(),
        guid: report.connector.guid.clone(),
        connector_version: report.connector.version.clone(),
        definitions: report.definitions.version.clone(),
        last_success: report.definitions.last_success.clone(),
        hours_since_success: report.definitions.hours_since_success,
        root_cause: report.root_cause.clone(),
        evidence,
        error: None,
    }
}

/// The output destination, with the state its format needs.
enum Writer {
    Jsonl(Box<dyn Write>),
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    /// The table is written at the end, after the fleet summary.
    Table {
        out: Box<dyn Write>,
        rows: Vec<Row>,
    },
}

const CSV_HEADER: [&str; 9] = [
    "bundle",
    "connector_guid",
    "connector_version",
    "definitions_version",
    "last_success",
    "hours_since_success",
    "root_cause",
    "key_evidence",
    "error",
];

impl Writer {
    fn open(options: &BatchOptions<'_>) -> anyhow::Result<Writer> {
        let out: Box<dyn Write> = match options.output {
            Some(path) => {
                Box::new(BufWriter::new(File::create(path).with_context(|| {
                    format!("cannot create output file {}", path.display())
                })?))
            }
            None => Box::new(BufWriter::new(io::stdout().lock())),
        };
        Ok(match options.format {
            BatchFormat::Jsonl => Writer::Jsonl(out),
            BatchFormat::Csv => {
                let mut csv = csv::Writer::from_writer(out);
                csv.write_record(CSV_HEADER)
                    .context("cannot write output")?;
                Writer::Csv(Box::new(csv))
            }
            BatchFormat::Table => Writer::Table {
                out,
                rows: Vec::new(),
            },
        })
    }

    fn write(&mut self, digest: Digest) -> anyhow::Result<()> {
        match self {
            Writer::Jsonl(out) => {
                let line = digest.json.unwrap_or_default();
                out.write_all(line.as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
                    .context("cannot write output")?;
            }
            Writer::Csv(csv) => {
                csv.write_record(csv_record(&digest.row))
                    .context("cannot write output")?;
            }
            Writer::Table { rows, .. } => rows.push(digest.row),
        }
        Ok(())
    }

    fn finish(self, fleet: &fleet::Fleet<'_>) -> anyhow::Result<()> {
        let mut out = match self {
            Writer::Jsonl(out) => out,
            Writer::Csv(csv) => csv
                .into_inner()
                .map_err(|err| anyhow::anyhow!("cannot write output: {}", err.error()))?,
            Writer::Table { mut out, rows } => {
                let text = fleet::render(fleet, &rows);
                out.write_all(text.as_bytes())
                    .context("cannot write output")?;
                out
            }
        };
        out.flush().context("cannot write output")
    }
}

/// Returns the CSV fields of a row. Text from the bundle has control
/// characters escaped, so a CSV file printed to a terminal cannot drive it.
fn csv_record(row: &Row) -> [String; 9] {
    let text = |value: &Option<String>| value.as_deref().map(cell).unwrap_or_default();
    let printable = cell;
    [
        printable(&row.bundle),
        text(&row.guid),
        text(&row.connector_version),
        text(&row.definitions),
        text(&row.last_success),
        row.hours_since_success
            .map(|hours| hours.to_string())
            .unwrap_or_default(),
        text(&row.root_cause),
        text(&row.evidence),
        text(&row.error),
    ]
}

/// Returns text safe for a spreadsheet cell: control characters escaped, and
/// a leading `=`, `+`, `-` or `@` (which spreadsheets run as a formula)
/// preceded by an apostrophe, since bundle text is untrusted.
fn cell(text: &str) -> String {
    let text = printable(text);
    if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text
    }
}

/// The progress bar on stderr, drawn only when stderr is a terminal.
struct Progress {
    bar: Option<ProgressBar>,
    bundles: usize,
    done: AtomicUsize,
}

impl Progress {
    fn new(bundles: usize, bytes: u64) -> Progress {
        let bar = (io::stderr().is_terminal() && bundles > 0).then(|| {
            let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} of bundle files read, {binary_bytes_per_sec}, {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(format!("0/{bundles} bundles"));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            bundles,
            done: AtomicUsize::new(0),
        }
    }

    fn advance(&self, bytes: u64) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(format!("{done}/{} bundles", self.bundles));
        }
    }

    fn print_error(&self, error: &str) {
        let line = format!("error: {}", printable(error));
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Paths shown in the table: relative to the batch directory when below it.
fn shown_path(root: &Path, bundle: &str) -> String {
    let path = PathBuf::from(bundle);
    let relative = path.strip_prefix(root).unwrap_or(&path);
    if relative.as_os_str().is_empty() {
        return bundle.to_string();
    }
    relative.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_record_escapes_control_characters() {
        let row = Row {
            bundle: "dir/a.zip".to_string(),
            evidence: Some("curl: (6) \u{1b}[2J".to_string()),
            hours_since_success: Some(1.5),
            ..Row::default()
        };
        let record = csv_record(&row);
        assert_eq!(record[0], "dir/a.zip");
        assert_eq!(record[5], "1.5");
        assert!(!record[7].contains('\u{1b}'));
        assert_eq!(record[8], "");
    }

    #[test]
    fn csv_cells_cannot_start_formulas() {
        let row = Row {
            bundle: "=HYPERLINK(\"http://x\")".to_string(),
            evidence: Some("@SUM(A1)".to_string()),
            ..Row::default()
        };
        let record = csv_record(&row);
        assert!(record[0].starts_with("'="), "{}", record[0]);
        assert!(record[7].starts_with("'@"), "{}", record[7]);
    }

    #[test]
    fn shown_path_is_relative_to_root() {
        assert_eq!(shown_path(Path::new("/cases"), "/cases/a/b.zip"), "a/b.zip");
        assert_eq!(shown_path(Path::new("/cases"), "/cases"), "/cases");
        assert_eq!(
            shown_path(Path::new("/cases"), "bundle-1.zip"),
            "bundle-1.zip"
        );
    }
}
