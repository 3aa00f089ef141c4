//! The command line as an engineer runs it: exit codes, formats, secrets.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tetra-triage"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Runs `analyze --format json` on a path and parses its output.
fn analyze_json(path: &std::path::Path) -> serde_json::Value {
    let output = run(&["analyze", "--format", "json", &path.display().to_string()]);
    serde_json::from_slice(&output.stdout).expect("valid JSON")
}

fn fixtures() -> Vec<String> {
    let mut paths: Vec<String> = std::fs::read_dir("fixtures/bundles")
        .expect("fixtures/bundles exists")
        .filter_map(|entry| entry.ok().map(|entry| entry.path().display().to_string()))
        .collect();
    paths.sort();
    paths
}

#[test]
fn password_never_printed_in_any_format() {
    let secrets = [
        "Pr0xy-S3cret!",
        "Q09SUFxzdmNfYW1wOlByMHh5LVMzY3JldCE=",
        "Fixture-Secret-7",
        "YW1wLXVwZGF0ZXI6Rml4dHVyZS1TZWNyZXQtNw==",
    ];
    for format in ["table", "json", "markdown"] {
        for path in fixtures() {
            let output = run(&["analyze", "--format", format, &path]);
            let text = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            for secret in secrets {
                assert!(
                    !text.contains(secret),
                    "{secret} printed for {path} in {format}"
                );
            }
        }
    }
}

#[test]
fn exit_codes() {
    let fixtures = fixtures();
    let good = fixtures
        .iter()
        .find(|p| p.contains("/dns_"))
        .expect("dns fixture");
    let truncated = fixtures
        .iter()
        .find(|p| p.contains("truncated_"))
        .expect("truncated fixture");

    assert_eq!(run(&["analyze", good]).status.code(), Some(0));

    let output = run(&["analyze", good, truncated]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("truncated_"), "{stderr}");

    assert_eq!(
        run(&["analyze", "does/not/exist.zip"]).status.code(),
        Some(1)
    );
    assert_eq!(run(&["analyze"]).status.code(), Some(2));
    assert_eq!(
        run(&["analyze", "--rules", "missing-rules.toml", good])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn json_for_several_paths_is_an_array() {
    let fixtures = fixtures();
    let some: Vec<&str> = fixtures
        .iter()
        .filter(|p| p.contains("/dns_") || p.contains("/truncated_"))
        .map(String::as_str)
        .collect();
    let mut args = vec!["analyze", "--format", "json"];
    args.extend(&some);
    let output = run(&args);
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let items = value.as_array().expect("array");
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .any(|item| item["root_cause"] == "dns-resolution-failed"));
    assert!(items.iter().any(|item| item["error"]
        .as_str()
        .is_some_and(|e| e.contains("damaged archive"))));
}

#[test]
fn rules_file_can_override_a_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("site.toml");
    std::fs::write(
        &rules,
        r#"
[[signal]]
id = "site-dns"
cause = "dns-resolution-failed"
any = ["mysite lookup broke"]
"#,
    )
    .expect("write rules");
    let log = dir.path().join("sfc.exe.log");
    std::fs::write(
        &log,
        "(1, +0 ms) May 18 16:54:33 [1]: TetraUpdater::Run: mysite lookup broke\n",
    )
    .expect("write log");
    let rules_arg = rules.display().to_string();
    let log_arg = log.display().to_string();

    let without = run(&["analyze", "--format", "json", &log_arg]);
    let value: serde_json::Value = serde_json::from_slice(&without.stdout).expect("valid JSON");
    assert_eq!(value["root_cause"], serde_json::Value::Null);

    let with = run(&[
        "analyze", "--format", "json", "--rules", &rules_arg, &log_arg,
    ]);
    let value: serde_json::Value = serde_json::from_slice(&with.stdout).expect("valid JSON");
    assert_eq!(value["root_cause"], "dns-resolution-failed");
}

#[test]
fn rules_listing_shows_codes_in_all_notations() {
    let output = run(&["rules"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("tls-revocation-check-failed"));
    assert!(text.contains("0x80092013"));
    assert!(text.contains("-2146885613"));
    let toml = run(&["rules", "--format", "toml"]);
    assert!(String::from_utf8_lossy(&toml.stdout).contains("[[cause]]"));
}

#[test]
fn cisco_note_failing_transcript_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let transcript = dir.path().join("curl_tetra.txt");
    std::fs::write(
        &transcript,
        "PS C:\\Program Files\\Cisco\\AMP> curl.exe -v https://tetra-defs.amp.cisco.com\n\
         * Trying 192.XXX.X.XX:443...\n\
         * Connected to tetra-defs.amp.cisco.com (192.XXX.X.XX) port 443 (#0)\n\
         * schannel: disabled automatic use of client certificate\n\
         * ALPN: offers http/1.1\n\
         * schannel: next InitializeSecurityContext failed: Unknown error (0x80092013) - The revocation function\n\
         * Closing connection 0\n\
         curl: (35) schannel: next InitializeSecurityContext failed: Unknown error (0x80092013) - The revocation\n",
    )
    .expect("write transcript");
    let output = run(&[
        "analyze",
        "--format",
        "json",
        &transcript.display().to_string(),
    ]);
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(value["root_cause"], "tls-revocation-check-failed");
}

#[test]
fn not_a_bundle_names_what_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("holiday.jpg");
    std::fs::write(&file, [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]).expect("write file");
    let output = run(&["analyze", &file.display().to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a support bundle"), "{stderr}");
    assert!(stderr.contains("local.xml"), "{stderr}");
}

/// Writes an unpacked bundle with a proxy in the policy, a revocation
/// failure in the log and `netsh winhttp show proxy` output.
fn winhttp_bundle(dir: &std::path::Path, netsh: &str) {
    let amp = dir.join("Program Files/Cisco/AMP");
    std::fs::create_dir_all(amp.join("8.1.7.21417")).expect("create dirs");
    std::fs::write(
        amp.join("policy.xml"),
        r#"<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><Object><config>
<proxy><server>proxy.corp.example</server><port>8080</port><username>CORP\svc</username><password>Pr0xy-S3cret!</password></proxy>
</config></Object></Signature>"#,
    )
    .expect("write policy");
    std::fs::write(
        amp.join("8.1.7.21417/sfc.exe.log"),
        "(1, +0 ms) May 18 16:54:33 [7]: Updater::Get: TLS failed: CRYPT_E_REVOCATION_OFFLINE (0x80092013) host 10.20.30.40\n",
    )
    .expect("write log");
    std::fs::write(dir.join("netsh_winhttp.txt"), netsh).expect("write netsh");
}

#[test]
fn winhttp_direct_explains_revocation_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    winhttp_bundle(
        dir.path(),
        "Current WinHTTP proxy settings:\r\n\r\n    Direct access (no proxy server).\r\n",
    );
    let value = analyze_json(dir.path());
    assert_eq!(value["root_cause"], "tls-revocation-check-failed");
    assert_eq!(value["network"]["winhttp_proxy"], "direct");
    let findings = value["findings"].as_array().expect("findings");
    let winhttp = findings
        .iter()
        .find(|f| f["id"] == "winhttp-proxy-missing")
        .expect("winhttp finding");
    assert_eq!(winhttp["confidence"], "high");
    assert!(winhttp["action"]
        .as_str()
        .is_some_and(|a| a.contains("netsh winhttp set proxy proxy.corp.example:8080")));
}

#[test]
fn winhttp_proxy_set_gives_no_finding() {
    let dir = tempfile::tempdir().expect("temp dir");
    winhttp_bundle(dir.path(), "Current WinHTTP proxy settings:\n\n    Proxy Server(s) :  proxy.corp.example:8080\n    Bypass List     :  (none)\n");
    let value = analyze_json(dir.path());
    assert_eq!(value["network"]["winhttp_proxy"], "proxy.corp.example:8080");
    let findings = value["findings"].as_array().expect("findings");
    assert!(findings.iter().all(|f| f["id"] != "winhttp-proxy-missing"));
}

#[test]
fn redact_hides_identifiers_and_keeps_diagnosis() {
    let dir = tempfile::tempdir().expect("temp dir");
    winhttp_bundle(dir.path(), "    Direct access (no proxy server).\n");
    let path = dir.path().display().to_string();
    let plain = run(&["analyze", "--format", "json", &path]);
    let redacted = run(&["analyze", "--format", "json", "--redact", &path]);
    let plain: serde_json::Value = serde_json::from_slice(&plain.stdout).expect("valid JSON");
    let redacted_value: serde_json::Value =
        serde_json::from_slice(&redacted.stdout).expect("valid JSON");
    assert_eq!(plain["root_cause"], redacted_value["root_cause"]);
    assert_eq!(redacted_value["redacted"], true);
    let text = String::from_utf8_lossy(&redacted.stdout);
    for identifier in [
        "proxy.corp.example",
        "svc",
        "CORP",
        "10.20.30.40",
        "Pr0xy-S3cret!",
    ] {
        assert!(
            !text.contains(identifier),
            "{identifier} left in redacted output"
        );
    }
    assert!(text.contains("host-1"));
}

/// Writes a bundle directory whose local.xml reports a proxy authentication
/// failure, with `capture` copied in as a packet capture.
fn lasterror_bundle_with_capture(dir: &std::path::Path, capture: &str) {
    let amp = dir.join("Program Files/Cisco/AMP");
    std::fs::create_dir_all(amp.join("8.1.7.21417")).expect("create dirs");
    std::fs::write(
        amp.join("local.xml"),
        "<config><agent><uuid>x</uuid><engine><tetra><lasterror>4294965196</lasterror></tetra></engine></agent></config>",
    )
    .expect("write local.xml");
    std::fs::write(
        amp.join("8.1.7.21417/sfc.exe.log"),
        "(1, +0 ms) Dec 4 10:40:00 [7]: Query::LookupExecute: attempting lookup with cloud\n",
    )
    .expect("write log");
    std::fs::copy(format!("fixtures/captures/{capture}"), dir.join(capture)).expect("copy capture");
}

#[test]
fn capture_without_proxy_traffic_contradicts_proxy_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    lasterror_bundle_with_capture(dir.path(), "tcp-refused.pcap");
    let value = analyze_json(dir.path());
    assert_eq!(value["root_cause"], "proxy-auth-failed");
    let findings = value["findings"].as_array().expect("findings");
    let contradiction = findings
        .iter()
        .find(|f| f["id"] == "evidence-contradiction")
        .expect("contradiction finding");
    assert!(contradiction["summary"]
        .as_str()
        .is_some_and(|s| s.contains("no traffic to a proxy")));
}

#[test]
fn capture_with_proxy_407_agrees_with_lasterror() {
    let dir = tempfile::tempdir().expect("temp dir");
    lasterror_bundle_with_capture(dir.path(), "proxy-407.pcap");
    let value = analyze_json(dir.path());
    assert_eq!(value["root_cause"], "proxy-auth-failed");
    let findings = value["findings"].as_array().expect("findings");
    assert_eq!(findings[0]["confidence"], "high");
    assert!(findings.iter().all(|f| f["id"] != "evidence-contradiction"));
}
