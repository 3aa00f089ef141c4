//! The `tetra-triage` command line. Exit codes: 0 every input analyzed,
//! 1 an input could not be read or is not a bundle, 2 invalid usage or an
//! invalid rules file.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tetra_triage::input::Limits;
use tetra_triage::knowledge::{self, RuleSet};
use tetra_triage::report::{self, Format};
use tetra_triage::{Analyzer, Error};

mod batch;

const EXAMPLES: &str = "Examples:
  tetra-triage analyze CiscoAMP_Support_Tool_2023_05_18_21_40_12.7z
  tetra-triage analyze --format markdown bundle.zip > case-note.md
  tetra-triage analyze --format json unpacked-bundle/ curl_output.txt
  tetra-triage rules
  tetra-triage analyze --rules site-rules.toml bundle.zip

Exit codes: 0 all inputs analyzed, 1 an input could not be read or is not a
bundle, 2 invalid usage or rules file.";

/// Finds why a Cisco Secure Endpoint connector cannot update its TETRA
/// definitions, from its support bundle.
#[derive(Debug, Parser)]
#[command(name = "tetra-triage", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Analyze bundles (ZIP or 7z, whatever the extension), unpacked bundle
    /// directories, or loose logs, XML files and command transcripts.
    Analyze(AnalyzeArgs),
    /// List the root causes, error codes and signals the analysis uses.
    Rules(RulesArgs),
    /// Analyze every bundle under a directory in parallel and summarize the
    /// fleet: root causes, definition versions and update age per bundle.
    ///
    /// A bundle is an archive file (ZIP or 7z, known by its first bytes) or a
    /// directory that contains local.xml or sfc.exe.log*; other files are
    /// counted as skipped. Output is in path order. A progress bar is drawn on
    /// stderr only when stderr is a terminal.
    #[command(after_help = BATCH_EXAMPLES)]
    Batch(BatchArgs),
}

const BATCH_EXAMPLES: &str = "Examples:
  tetra-triage batch /cases/2023-q4
  tetra-triage batch --format jsonl --output fleet.jsonl /cases
  tetra-triage batch --format csv --jobs 2 /cases > fleet.csv

Exit codes: 0 all bundles analyzed, 1 a bundle could not be read (its error
is in the output and on stderr), 2 invalid usage or rules file.";

#[derive(Debug, Args)]
struct BatchArgs {
    /// Directory searched recursively for bundles.
    dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = batch::BatchFormat::Table)]
    format: batch::BatchFormat,
    /// Bundles analyzed at once [default: number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// Write the output to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct AnalyzeArgs {
    /// Bundles, bundle directories or loose files to analyze.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// A TOML rules file whose entries add to or replace the built-in ones
    /// (same shape as `tetra-triage rules --format toml`). Repeatable.
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Maximum uncompressed bytes read from one input.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_total_bytes)]
    max_total_bytes: u64,
    /// Maximum uncompressed bytes read from one member.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_member_bytes)]
    max_member_bytes: u64,
    /// Maximum entries listed in one input, nested archives included.
    #[arg(long, value_name = "COUNT", default_value_t = Limits::default().max_entries)]
    max_entries: u64,
    /// Maximum depth of archives inside archives.
    #[arg(long, value_name = "DEPTH", default_value_t = Limits::default().max_depth)]
    max_depth: u32,
    /// Maximum size of one nested archive, which is held in memory.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_nested_bytes)]
    max_nested_bytes: u64,
    /// Replace host, user and domain names, internal IP addresses, connector
    /// GUIDs and bundle file names with stable tokens (host-1, guid-1, ...).
    /// Passwords are masked with or without this option.
    #[arg(long)]
    redact: bool,
}

impl CommonArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_total_bytes: self.max_total_bytes,
            max_member_bytes: self.max_member_bytes,
            max_entries: self.max_entries,
            max_depth: self.max_depth,
            max_nested_bytes: self.max_nested_bytes,
        }
    }

    fn analyzer(&self) -> Result<Analyzer, Error> {
        let rules = knowledge::load(&self.rules)?;
        Analyzer::new(rules, self.limits())
    }
}

#[derive(Debug, Args)]
struct RulesArgs {
    /// `table` lists causes and codes; `toml` prints the effective rules.
    #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
    format: RulesFormat,
    /// Rules files to merge before listing.
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RulesFormat {
    Table,
    Toml,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => run_analyze(&args),
        Command::Rules(args) => run_rules(&args),
        Command::Batch(args) => run_batch(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run_analyze(args: &AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let analyzer = args.common.analyzer().context("cannot load rules")?;
    let redactor = tetra_triage::redact::Redactor::new();
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for path in &args.paths {
        match analyzer.analyze(path) {
            Ok(report) if args.common.redact => reports.push(redactor.redact_report(report)),
            Ok(report) => reports.push(report),
            Err(err) => {
                eprintln!("error: {err}");
                failures.push((path.clone(), err));
            }
        }
    }

    let width = terminal_width();
    let text = match args.format {
        Format::Json if !failures.is_empty() => {
            let mut values: Vec<serde_json::Value> = reports
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?;
            for (path, err) in &failures {
                values.push(serde_json::json!({"bundle": path.display().to_string(), "error": err.to_string()}));
            }
            let value = if values.len() == 1 {
                values.remove(0)
            } else {
                serde_json::Value::Array(values)
            };
            serde_json::to_string_pretty(&value)? + "\n"
        }
        format => report::render(&reports, format, width),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .context("cannot write output")?;
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_batch(args: &BatchArgs) -> anyhow::Result<ExitCode> {
    let analyzer = args.common.analyzer().context("cannot load rules")?;
    let options = batch::BatchOptions {
        root: &args.dir,
        format: args.format,
        jobs: args.jobs.map(|jobs| jobs as usize),
        output: args.output.as_deref(),
        redact: args.common.redact,
        columns: terminal_width(),
    };
    let totals = batch::run_batch(&analyzer, &options)?;
    Ok(if totals.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_rules(args: &RulesArgs) -> anyhow::Result<ExitCode> {
    let rules = knowledge::load(&args.rules).context("cannot load rules")?;
    let text = match args.format {
        RulesFormat::Toml => toml::to_string_pretty(&rules).context("cannot print rules")?,
        RulesFormat::Table => rules_table(&rules, terminal_width()),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write output")?;
    Ok(ExitCode::SUCCESS)
}

fn rules_table(rules: &RuleSet, width: Option<u16>) -> String {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
    let new_table = || {
        let mut table = Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        table.set_width(width.unwrap_or(120));
        table
    };
    let mut causes = new_table();
    causes.set_header(vec!["Cause", "Kind", "Severity", "Title", "First action"]);
    for cause in &rules.cause {
        causes.add_row(vec![
            cause.id.clone(),
            format!("{:?}", cause.kind).to_lowercase(),
            format!("{:?}", cause.severity).to_lowercase(),
            cause.title.clone(),
            cause.actions.first().cloned().unwrap_or_default(),
        ]);
    }
    let mut codes = new_table();
    codes.set_header(vec!["Code", "Matched as", "Cause", "Meaning"]);
    for code in &rules.code {
        codes.add_row(vec![
            code.id(),
            code.notations().join(", "),
            code.cause.clone(),
            code.meaning.clone(),
        ]);
    }
    let mut signals = new_table();
    signals.set_header(vec!["Signal", "Cause", "Any of"]);
    for signal in &rules.signal {
        signals.add_row(vec![
            signal.id.clone(),
            signal.cause.clone(),
            signal.any.join(" | "),
        ]);
    }
    format!("Root causes:\n{causes}\n\nError codes:\n{codes}\n\nText signals:\n{signals}\n")
}

/// Returns the terminal's width when stdout is a terminal.
fn terminal_width() -> Option<u16> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|columns| columns.parse().ok())
}
