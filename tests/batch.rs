//! `tetra-triage batch` over a copy of the fixture bundles, with a stray
//! image and a loose transcript that must be skipped, not reported.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tetra-triage"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create folder");
    for entry in fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A temporary copy of `fixtures/bundles` plus two files that are not
/// bundles; returns the directory and the bundle paths in it.
fn fleet() -> (tempfile::TempDir, Vec<PathBuf>) {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path().join("fleet");
    copy_dir(Path::new("fixtures/bundles"), &root);
    let mut bundles: Vec<PathBuf> = fs::read_dir(&root)
        .expect("read copy")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            let head = fs::read(path).map(|bytes| bytes[..bytes.len().min(6)].to_vec());
            path.is_dir()
                || head.is_ok_and(|head| head.starts_with(b"PK") || head.starts_with(b"7z\xBC\xAF"))
        })
        .collect();
    bundles.sort();
    fs::write(root.join("photo.jpg"), b"\xFF\xD8\xFF\xE0\x00\x10JFIF").expect("write image");
    fs::create_dir(root.join("notes")).expect("create notes");
    fs::write(
        root.join("notes/curl_output.txt"),
        "curl: (6) Could not resolve host: tetra-defs.amp.cisco.com\n",
    )
    .expect("write transcript");
    (temp, bundles)
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Returns the root causes from `analyze --format json` by bundle path, with
/// `Err` for the error of an unreadable bundle.
fn analyze_root_causes(bundles: &[PathBuf]) -> BTreeMap<String, Result<Option<String>, String>> {
    let mut args = vec![
        "analyze".to_string(),
        "--format".to_string(),
        "json".to_string(),
    ];
    args.extend(bundles.iter().map(|path| path.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&args);
    let reports: Value = serde_json::from_slice(&output.stdout).expect("analyze prints JSON");
    reports
        .as_array()
        .expect("an array for several bundles")
        .iter()
        .map(|report| {
            let bundle = text(report, "bundle").expect("bundle key");
            let cause = match text(report, "error") {
                Some(error) => Err(error),
                None => Ok(text(report, "root_cause")),
            };
            (bundle, cause)
        })
        .collect()
}

#[test]
fn jsonl_matches_analyze_for_every_bundle() {
    let (temp, bundles) = fleet();
    let root = temp.path().join("fleet");
    let output = run(&["batch", "--format", "jsonl", &root.display().to_string()]);
    assert_eq!(output.status.code(), Some(1), "one bundle is truncated");

    let lines = lines(&output);
    let names: Vec<String> = lines
        .iter()
        .map(|line| text(line, "bundle").expect("bundle key"))
        .collect();
    let expected: Vec<String> = bundles
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    assert_eq!(names, expected, "one line per bundle, in path order");

    let analyzed = analyze_root_causes(&bundles);
    for line in &lines {
        let bundle = text(line, "bundle").expect("bundle key");
        match &analyzed[&bundle] {
            Ok(cause) => {
                assert_eq!(&text(line, "root_cause"), cause, "{bundle}");
                assert!(line.get("error").is_none(), "{bundle}");
            }
            Err(_) => {
                assert!(bundle.contains("truncated_"), "{bundle} failed");
                assert!(text(line, "error").is_some_and(|error| error.contains("damaged archive")));
            }
        }
    }
    let unpacked = lines
        .iter()
        .find(|line| text(line, "bundle").is_some_and(|bundle| bundle.ends_with("unpacked")))
        .expect("the unpacked directory is one bundle");
    assert_eq!(text(unpacked, "format").as_deref(), Some("directory"));

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("truncated_"), "{stderr}");
    let counts = format!(
        "{} bundles analyzed, 1 could not be read, 2 other files skipped",
        bundles.len() - 1
    );
    assert!(stderr.contains(&counts), "{stderr}");
}

#[test]
fn output_is_identical_across_runs() {
    let (temp, _) = fleet();
    let root = temp.path().join("fleet").display().to_string();
    let first = run(&["batch", "--format", "jsonl", &root]);
    let second = run(&["batch", "--format", "jsonl", "--jobs", "2", &root]);
    assert!(!first.stdout.is_empty());
    assert_eq!(first.stdout, second.stdout);

    let redacted = run(&["batch", "--format", "jsonl", "--redact", &root]);
    let again = run(&[
        "batch", "--format", "jsonl", "--redact", "--jobs", "1", &root,
    ]);
    assert_eq!(redacted.stdout, again.stdout, "tokens follow path order");
    let text = String::from_utf8_lossy(&redacted.stdout);
    assert!(
        !text.contains("CiscoAMP_Support_Tool"),
        "bundle names are redacted"
    );

    let table = run(&["batch", "--redact", &root]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("Bundles under the directory (name redacted)"),
        "{table}"
    );
    assert!(!table.contains(&root), "{table}");
    assert!(!table.contains("CiscoAMP_Support_Tool"), "{table}");
}

#[test]
fn output_file_receives_the_output() {
    let (temp, _) = fleet();
    let root = temp.path().join("fleet").display().to_string();
    let file = temp.path().join("fleet.jsonl");
    let to_file = run(&[
        "batch",
        "--format",
        "jsonl",
        "--output",
        &file.display().to_string(),
        &root,
    ]);
    assert_eq!(to_file.status.code(), Some(1));
    assert!(to_file.stdout.is_empty());
    let to_stdout = run(&["batch", "--format", "jsonl", &root]);
    assert_eq!(fs::read(&file).expect("output file"), to_stdout.stdout);
}

#[test]
fn output_file_inside_dir_is_not_counted() {
    let (temp, _) = fleet();
    let root = temp.path().join("fleet");
    let file = root.join("fleet.txt").display().to_string();
    let root = root.display().to_string();
    let first = run(&["batch", "--output", &file, &root]);
    assert_eq!(first.status.code(), Some(1));
    let first_table = fs::read_to_string(&file).expect("output file");
    let second = run(&["batch", "--output", &file, &root]);
    assert_eq!(second.status.code(), Some(1));
    let second_table = fs::read_to_string(&file).expect("output file");
    assert!(first_table.contains("Skipped files:  2"), "{first_table}");
    assert_eq!(first_table, second_table);
}

#[test]
fn csv_has_one_row_per_bundle() {
    let (temp, bundles) = fleet();
    let root = temp.path().join("fleet").display().to_string();
    let output = run(&["batch", "--format", "csv", &root]);
    assert_eq!(output.status.code(), Some(1));

    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    let header: Vec<String> = reader
        .headers()
        .expect("header row")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header[0], "bundle");
    let cause_column = header
        .iter()
        .position(|name| name == "root_cause")
        .expect("root_cause column");
    let error_column = header
        .iter()
        .position(|name| name == "error")
        .expect("error column");
    let guid_column = header
        .iter()
        .position(|name| name == "connector_guid")
        .expect("connector_guid column");
    let records: Vec<csv::StringRecord> = reader
        .records()
        .map(|record| record.expect("valid CSV record"))
        .collect();
    assert_eq!(records.len(), bundles.len());

    let analyzed = analyze_root_causes(&bundles);
    for record in &records {
        let bundle = &record[0];
        match &analyzed[bundle] {
            Ok(cause) => {
                assert_eq!(
                    &record[cause_column],
                    cause.as_deref().unwrap_or(""),
                    "{bundle}"
                );
                assert_eq!(&record[error_column], "", "{bundle}");
                assert_eq!(record[guid_column].len(), 36, "{bundle}");
            }
            Err(_) => assert!(record[error_column].contains("damaged archive"), "{bundle}"),
        }
    }
}

#[test]
fn table_summarizes_the_fleet() {
    let (temp, bundles) = fleet();
    let root = temp.path().join("fleet").display().to_string();
    let output = run(&["batch", &root]);
    assert_eq!(output.status.code(), Some(1));
    let table = String::from_utf8_lossy(&output.stdout);

    assert!(
        table.contains(&format!("Analyzed:       {}", bundles.len() - 1)),
        "{table}"
    );
    assert!(table.contains("Failed to read: 1"), "{table}");
    assert!(table.contains("Skipped files:  2"), "{table}");
    for heading in [
        "Root causes:",
        "TETRA definition versions:",
        "Time from the last successful update",
        "Bundles:",
    ] {
        assert!(table.contains(heading), "{heading} missing:\n{table}");
    }

    // Output to a pipe is not wrapped: one line per bundle.
    let unpacked = table
        .lines()
        .find(|line| line.contains("│ unpacked "))
        .expect("a row for the unpacked directory");
    assert!(unpacked.contains("download-interrupted"), "{unpacked}");
    assert!(unpacked.contains("TETRA:"), "{unpacked}");
    let truncated = table
        .lines()
        .find(|line| line.contains("│ truncated_"))
        .expect("a row for the truncated bundle");
    assert!(truncated.contains("unreadable"), "{truncated}");

    let analyzed = analyze_root_causes(&bundles);
    let dns = analyzed
        .values()
        .filter(|cause| matches!(cause, Ok(Some(id)) if id == "dns-resolution-failed"))
        .count();
    let row = table
        .lines()
        .find(|line| line.starts_with("│ dns-resolution-failed "))
        .expect("a root cause row for DNS");
    assert!(row.contains(&format!("┆ {dns:>7} ┆")), "{row}");
    assert!(!table.contains("photo.jpg"), "skipped files are not rows");
}

#[test]
fn exit_codes() {
    let temp = tempfile::tempdir().expect("temp dir");
    let good = temp.path().join("good");
    fs::create_dir(&good).expect("create folder");
    fs::copy(
        "fixtures/bundles/dns_CiscoAMP_Support_Tool_2023_06_02_09_15_47.7z",
        good.join("dns.7z"),
    )
    .expect("copy bundle");
    let good = good.display().to_string();
    assert_eq!(run(&["batch", &good]).status.code(), Some(0));

    let empty = temp.path().join("empty");
    fs::create_dir(&empty).expect("create folder");
    let output = run(&["batch", "--format", "jsonl", &empty.display().to_string()]);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());

    let missing = temp.path().join("missing").display().to_string();
    assert_eq!(run(&["batch", &missing]).status.code(), Some(2));
    assert_eq!(run(&["batch", "--jobs", "0", &good]).status.code(), Some(2));
    assert_eq!(run(&["batch"]).status.code(), Some(2));
    let help = run(&["batch", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit codes:"));
}
