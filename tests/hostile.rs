//! The command line on damaged, oversized, encrypted and crafted inputs: the
//! files in fixtures/hostile/ (written by make_hostile.py) and larger ones
//! built here. Every run must end with exit code 0, 1 or 2 (a panic exits
//! with 101, a signal with none), print no raw control character to a
//! terminal and no planted secret in any format, and report what went wrong.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zip::write::SimpleFileOptions;

const FORMATS: [&str; 3] = ["table", "json", "markdown"];

/// Secrets planted by make_hostile.py in secrets.zip. `BASIC_CREDENTIALS`
/// there is the Base64 of `CORP\svc_amp:Basic-Pa55word`.
const SECRETS: &[&str] = &[
    "Hostile-Pr0xy-Pw!",
    "Srv-Url-Pa55",
    "Pac-Url-Pa55",
    "L0g-Pa55word",
    "Log-Url-Pa55",
    "Basic-Pa55word",
    "Q09SUFxzdmNfYW1wOkJhc2ljLVBhNTV3b3Jk",
    "TlRMTVNTUAADAAAAGAAYAHAAAAAYABgAiAAAAAwADABYAAAACAAIAGQAAAAQABAAbAAAAAAAAACgAAAABYKIog",
    "Utf16-Pa55word",
    "Utf16-Url-Pa55",
];

/// How long one run may take before it counts as a hang.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

struct Run {
    label: String,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("{}: stdout is not JSON: {err}", self.label))
    }
}

/// Runs `analyze` and checks what every run must satisfy, whatever the input.
fn analyze(path: &Path, format: &str, extra: &[&str]) -> Run {
    let label = format!("{} --format {format} {}", path.display(), extra.join(" "));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tetra-triage"))
        .arg("analyze")
        .args(["--format", format])
        .args(extra)
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");

    // Both pipes are drained while the child runs, so a large report cannot
    // fill a pipe and stall it.
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stdout_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout_pipe.read_to_end(&mut bytes).map(|_| bytes)
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stderr_pipe.read_to_end(&mut bytes).map(|_| bytes)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the binary") {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            panic!("{label}: still running after {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout_bytes = stdout_reader
        .join()
        .expect("stdout reader thread")
        .expect("read stdout");
    let stderr_bytes = stderr_reader
        .join()
        .expect("stderr reader thread")
        .expect("read stderr");
    let stdout = String::from_utf8(stdout_bytes)
        .unwrap_or_else(|err| panic!("{label}: stdout is not UTF-8: {err}"));
    let stderr = String::from_utf8_lossy(&stderr_bytes).into_owned();

    let code = status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "{label}: exit status {status} (101 is a panic, no code a signal)\nstderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{label}: {stderr}");
    if format != "json" {
        assert_no_raw_control(&label, "stdout", &stdout);
    }
    assert_no_raw_control(&label, "stderr", &stderr);
    for secret in SECRETS {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{label}: secret {secret} printed"
        );
    }
    Run {
        label,
        code: code.unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// Fails when `text` contains a control character other than a newline:
/// C0 controls, DEL and the C1 range that some terminals read as CSI.
fn assert_no_raw_control(label: &str, stream: &str, text: &str) {
    if let Some((offset, ch)) = text
        .char_indices()
        .find(|(_, ch)| ch.is_control() && *ch != '\n')
    {
        let start = text.floor_char_boundary(offset.saturating_sub(60));
        panic!(
            "{label}: raw control character {:?} in {stream} at byte {offset}, after {:?}",
            ch,
            &text[start..offset]
        );
    }
}

fn hostile(name: &str) -> PathBuf {
    Path::new("fixtures/hostile").join(name)
}

/// One fixture and what the tool must report for it in every format.
struct Case {
    file: &'static str,
    args: &'static [&'static str],
    exit: i32,
    /// Text that stdout or stderr must contain, in every format.
    expect: &'static [&'static str],
    /// The JSON report's root cause, for runs that exit with 0.
    root_cause: Option<&'static str>,
}

const DNS: Option<&str> = Some("dns-resolution-failed");

const CASES: &[Case] = &[
    Case {
        file: "empty.zip",
        args: &[],
        exit: 1,
        expect: &[
            "empty.zip: not a support bundle",
            "the file is empty (0 bytes)",
        ],
        root_cause: None,
    },
    Case {
        file: "pk-garbage.zip",
        args: &[],
        exit: 1,
        expect: &["damaged archive", "cannot open ZIP", "fetch it again"],
        root_cause: None,
    },
    Case {
        file: "cut-mid-entry.zip",
        args: &[],
        exit: 1,
        expect: &["cut-mid-entry.zip: damaged archive", "fetch it again"],
        root_cause: None,
    },
    Case {
        file: "corrupt-central-directory.zip",
        args: &[],
        exit: 1,
        expect: &["corrupt-central-directory.zip: damaged archive"],
        root_cause: None,
    },
    Case {
        file: "zip-named.txt",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "zip-named.7z",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "encrypted-member.zip",
        args: &[],
        exit: 0,
        expect: &["8.1.7.21417/sfc.exe.log.1: encrypted entry skipped"],
        root_cause: DNS,
    },
    Case {
        file: "all-encrypted.zip",
        args: &[],
        exit: 1,
        expect: &["password-protected archive", "all 3 files are encrypted"],
        root_cause: None,
    },
    Case {
        file: "bad-member-good-log.zip",
        args: &[],
        exit: 0,
        expect: &[
            "8.1.7.21417/sfc.exe.log.1: unreadable",
            "8.1.7.21417/sfc.exe.log.2: unreadable entry",
            "curl_output.txt: encrypted entry skipped",
        ],
        root_cause: DNS,
    },
    Case {
        file: "member-bomb.zip",
        args: &["--max-member-bytes", "1000000"],
        exit: 0,
        expect: &[
            "only the first 1000000 bytes were scanned",
            "--max-member-bytes",
        ],
        root_cause: DNS,
    },
    Case {
        file: "member-bomb.7z",
        args: &["--max-member-bytes", "1000000"],
        exit: 0,
        expect: &[
            "only the first 1000000 bytes were scanned",
            "--max-member-bytes",
        ],
        root_cause: DNS,
    },
    Case {
        file: "total-bomb.zip",
        args: &[
            "--max-member-bytes",
            "10000000",
            "--max-total-bytes",
            "20000000",
        ],
        exit: 1,
        expect: &[
            "total uncompressed size limit of 20000000 exceeded",
            "--max-total-bytes",
        ],
        root_cause: None,
    },
    Case {
        file: "many-entries.zip",
        args: &["--max-entries", "100"],
        exit: 1,
        expect: &["entry count limit of 100 exceeded", "--max-entries"],
        root_cause: None,
    },
    Case {
        file: "deep-nesting.zip",
        args: &[],
        exit: 1,
        expect: &["nesting depth limit of 3 reached", "--max-depth"],
        root_cause: None,
    },
    Case {
        file: "deep-nesting.zip",
        args: &["--max-depth", "4"],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "nested-bomb.zip",
        args: &["--max-total-bytes", "10000000"],
        exit: 1,
        expect: &[
            "total uncompressed size limit of 10000000 exceeded",
            "--max-total-bytes",
        ],
        root_cause: None,
    },
    Case {
        file: "nested-bomb.zip",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "hostile-names.zip",
        args: &[],
        exit: 0,
        expect: &["several entries share a name", "encrypted entry skipped"],
        root_cause: DNS,
    },
    Case {
        file: "log-nul-bytes.zip",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "log-invalid-utf8.zip",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "log-lone-cr.zip",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "log-no-timestamps.zip",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "curl-utf16le-bom.txt",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "curl-utf16le-nobom.txt",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "curl-utf16be-bom.txt",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "curl-utf16be-nobom.txt",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "xml-malformed.zip",
        args: &[],
        exit: 0,
        expect: &[
            "local.xml: XML ends inside <config/agent",
            "policy.xml: malformed XML at byte",
        ],
        root_cause: DNS,
    },
    Case {
        file: "xml-billion-laughs.zip",
        args: &[],
        exit: 0,
        expect: &["&lol9;"],
        root_cause: DNS,
    },
    Case {
        file: "xml-namespaces.zip",
        args: &[],
        exit: 0,
        expect: &["0b5c2a7e-5d7f-4c1e-9a43-7f3e2c1d0a11", "proxy.corp.example"],
        root_cause: DNS,
    },
    Case {
        file: "xml-huge-text.zip",
        args: &[],
        exit: 0,
        expect: &["policy.xml: elements nested deeper than 64 levels"],
        root_cause: DNS,
    },
    Case {
        file: "no-xml.zip",
        args: &[],
        exit: 0,
        expect: &["local.xml not found", "policy.xml not found"],
        root_cause: DNS,
    },
    Case {
        file: "not-a-bundle.zip",
        args: &[],
        exit: 1,
        expect: &[
            "not a support bundle",
            "holiday/IMG_0001.jpg",
            "Program Files/Cisco/AMP/local.xml",
        ],
        root_cause: None,
    },
    Case {
        file: "secrets.zip",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: Some("proxy-auth-failed"),
    },
    Case {
        file: "solid.7z",
        args: &[],
        exit: 0,
        expect: &[],
        root_cause: DNS,
    },
    Case {
        file: "corrupt-block.7z",
        args: &[],
        exit: 0,
        expect: &["0cache/cache.db: unreadable 7z data: corrupt compressed data"],
        root_cause: DNS,
    },
    Case {
        file: "encrypted-data.7z",
        args: &[],
        exit: 1,
        expect: &["password-protected archive", "all 3 files are encrypted"],
        root_cause: None,
    },
    Case {
        file: "encrypted-headers.7z",
        args: &[],
        exit: 1,
        expect: &["password-protected archive", "file names are encrypted too"],
        root_cause: None,
    },
    Case {
        file: "truncated.7z",
        args: &[],
        exit: 1,
        expect: &["truncated.7z: damaged archive", "cannot open 7z"],
        root_cause: None,
    },
];

#[test]
fn hostile_fixtures_in_every_format() {
    for case in CASES {
        let path = hostile(case.file);
        assert!(
            path.exists(),
            "{} missing: run python3 fixtures/hostile/make_hostile.py",
            path.display()
        );
        for format in FORMATS {
            let run = analyze(&path, format, case.args);
            assert_eq!(run.code, case.exit, "{}\nstderr: {}", run.label, run.stderr);
            let output = run.all_output();
            for text in case.expect {
                // Markdown escapes angle brackets so they cannot open HTML.
                let shown = if format == "markdown" {
                    text.replace('<', "&lt;").replace('>', "&gt;")
                } else {
                    text.to_string()
                };
                assert!(
                    output.contains(&shown),
                    "{}: no {text:?} in\n{output}",
                    run.label
                );
            }
            if format == "json" && case.exit == 0 {
                assert_eq!(
                    run.json()["root_cause"].as_str(),
                    case.root_cause,
                    "{}",
                    run.label
                );
            }
        }
    }
}

#[test]
fn every_hostile_fixture_is_covered() {
    let mut files: Vec<String> = std::fs::read_dir("fixtures/hostile")
        .expect("fixtures/hostile exists")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "make_hostile.py")
        .collect();
    files.sort();
    let uncovered: Vec<&String> = files
        .iter()
        .filter(|name| CASES.iter().all(|case| case.file != name.as_str()))
        .collect();
    assert!(uncovered.is_empty(), "no test case for {uncovered:?}");
}

#[test]
fn escape_sequences_are_shown_escaped() {
    let path = hostile("hostile-names.zip");
    for format in ["table", "markdown"] {
        let run = analyze(&path, format, &[]);
        // The member named with ESC [2J and the log line carrying it.
        assert!(
            run.stdout
                .contains("curl\\u{1b}[2J\\u{1b}]0;pwned\\u{7}.txt"),
            "{}:\n{}",
            run.label,
            run.stdout
        );
        assert!(run.stdout.contains("\\u{9b}"), "{}", run.label);
        assert!(run.stdout.contains("secret\\u{1b}[2J.txt"), "{}", run.label);
    }
    let json = analyze(&path, "json", &[]).json();
    let files: Vec<&str> = json["logs"]["files"]
        .as_array()
        .expect("log files")
        .iter()
        .filter_map(|file| file["file"].as_str())
        .collect();
    // Drive letter and backslashes normalized; `..` kept as evidence.
    assert_eq!(files, ["Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log"]);
    assert_eq!(
        json["connector"]["guid"],
        "0b5c2a7e-5d7f-4c1e-9a43-7f3e2c1d0a11"
    );
}

#[test]
fn secrets_are_masked_not_dropped() {
    let run = analyze(&hostile("secrets.zip"), "json", &[]);
    let json = run.json();
    assert_eq!(json["proxy"]["password_set"], true);
    assert_eq!(
        json["proxy"]["host"],
        "http://svc_amp:********@proxy.corp.example"
    );
    assert_eq!(
        json["proxy"]["pac_url"],
        "http://svc_amp:********@pac.corp.example/proxy.pac"
    );
    // The lines stay in the report with the credential masked, in the log
    // and in both transcripts (UTF-8 and UTF-16LE).
    for masked in [
        "password=********",
        "svc_amp:********@proxy.corp.example:8080",
        "Proxy-Authorization: ********",
        "policy password ******** rejected",
        "response 407 with ********",
    ] {
        assert!(
            run.stdout.contains(masked),
            "no {masked:?} in\n{}",
            run.stdout
        );
    }
    let evidence_files = run.stdout.matches("curl_proxy_powershell.txt").count();
    assert!(evidence_files > 0, "UTF-16 transcript not in the report");
}

#[test]
fn log_lone_cr_lines_are_numbered() {
    let json = analyze(&hostile("log-lone-cr.zip"), "json", &[]).json();
    let file = &json["logs"]["files"][0];
    assert_eq!(file["lines"], 12);
    let timeline = json["timeline"].as_array().expect("timeline");
    let failure_lines: Vec<u64> = timeline
        .iter()
        .filter(|entry| entry["cause"] == "dns-resolution-failed")
        .filter_map(|entry| entry["line"].as_u64())
        .collect();
    assert_eq!(failure_lines, [3, 7, 11]);
}

#[test]
fn log_without_timestamps_has_untimed_evidence() {
    let json = analyze(&hostile("log-no-timestamps.zip"), "json", &[]).json();
    let root = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|finding| finding["id"] == "dns-resolution-failed")
        .expect("root cause finding");
    assert_eq!(root["evidence"][0]["line"], 2);
    assert_eq!(root["evidence"][0]["time"], serde_json::Value::Null);
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in files {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .expect("start entry");
        writer.write_all(content).expect("write entry");
    }
    writer.finish().expect("finish zip").into_inner()
}

const FAILURE_LINE: &str = "(9, +0 ms) May 18 21:39:54 [1204]: TetraUpdater::Download: curl error 6: Could not resolve host: tetra-defs.amp.cisco.com";

#[test]
fn log_line_of_many_megabytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut log = Vec::new();
    log.extend_from_slice(FAILURE_LINE.as_bytes());
    log.extend_from_slice(b"\r\n");
    // 24 MiB without a line end, NUL bytes included, then a failure code:
    // the line is scanned in pieces and its evidence cut.
    for _ in 0..24 * 1024 {
        log.extend_from_slice(&[b'x'; 1020]);
        log.extend_from_slice(b"\0\0\0\0");
    }
    log.extend_from_slice(b" WinHTTP error 12007 \x1b[2J\r\n");
    log.extend_from_slice(FAILURE_LINE.as_bytes());
    let path = dir.path().join("sfc.exe.log");
    std::fs::write(&path, &log).expect("write log");

    let json = analyze(&path, "json", &[]).json();
    assert_eq!(json["root_cause"], "dns-resolution-failed");
    assert_eq!(json["logs"]["files"][0]["lines"], 3);
    let root = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|finding| finding["id"] == "dns-resolution-failed")
        .expect("root cause finding");
    let evidence = root["evidence"].as_array().expect("evidence");
    assert!(evidence.iter().any(|item| item["line"] == 2));
    for item in evidence {
        let text = item["text"].as_str().expect("evidence text");
        assert!(
            text.chars().count() <= 601,
            "evidence not cut: {}",
            text.len()
        );
    }
    let table = analyze(&path, "table", &[]);
    assert_eq!(table.code, 0);
}

#[test]
fn archive_of_many_members_is_not_quadratic() {
    // Each member used to reopen the archive and parse its whole central
    // directory, so this took minutes; it now takes seconds.
    let names: Vec<String> = (0..5000).map(|i| format!("curl_{i}.txt")).collect();
    let content = b"curl: (6) Could not resolve host: tetra-defs.amp.cisco.com\r\n";
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .map(|name| (name.as_str(), content.as_slice()))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("many.zip");
    std::fs::write(&path, zip_of(&files)).expect("write zip");

    let started = Instant::now();
    let json = analyze(&path, "json", &[]).json();
    assert_eq!(json["members"]["transcripts"], 5000);
    assert_eq!(json["root_cause"], "dns-resolution-failed");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn misnamed_files_get_a_plain_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "CiscoAMP_Support_Tool.7z",
            b"<!DOCTYPE html>\n<html><body>Session expired</body></html>",
            "it is an HTML page, not an archive",
        ),
        (
            "bundle.zip",
            b"\x00\x01\x02\x03 not an archive",
            "neither a ZIP nor a 7z archive (it starts with bytes 00 01 02 03",
        ),
        (
            "bundle.rar",
            b"Rar!\x1a\x07\x01\x00rest",
            "it is a RAR archive",
        ),
        ("logs.tar.gz", b"\x1f\x8b\x08\x00rest", "it is a gzip file"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write file");
        let run = analyze(&path, "table", &[]);
        assert_eq!(run.code, 1, "{}", run.label);
        assert!(
            run.stderr.contains(expected),
            "{}: {}",
            run.label,
            run.stderr
        );
    }
}

#[test]
fn escape_sequences_in_error_messages_are_escaped() {
    // Nothing readable, so the error lists the skipped nested archive,
    // whose name carries escape sequences, on stderr.
    let bytes = zip_of(&[(
        "case\x1b[2J\x1b]0;pwned\x07.zip",
        b"PK\x03\x04 not a zip".as_slice(),
    )]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("case.zip");
    std::fs::write(&path, bytes).expect("write zip");
    for format in FORMATS {
        let run = analyze(&path, format, &[]);
        assert_eq!(run.code, 1, "{}", run.label);
        assert!(
            run.stderr
                .contains("case\\u{1b}[2J\\u{1b}]0;pwned\\u{7}.zip"),
            "{}: {}",
            run.label,
            run.stderr
        );
    }
}

#[test]
fn bad_input_does_not_hide_good_input() {
    let output = Command::new(env!("CARGO_BIN_EXE_tetra-triage"))
        .args(["analyze", "--format", "json"])
        .arg(hostile("pk-garbage.zip"))
        .arg(hostile("zip-named.7z"))
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let items = value.as_array().expect("array");
    assert!(items
        .iter()
        .any(|item| item["root_cause"] == "dns-resolution-failed"));
    assert!(items.iter().any(|item| item["error"]
        .as_str()
        .is_some_and(|error| error.contains("damaged archive"))));
}
