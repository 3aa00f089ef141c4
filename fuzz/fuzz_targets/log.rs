//! Scans the input as a member text: a connector log or a transcript, in
//! UTF-8, UTF-16 or neither.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tetra_triage::knowledge::{Matcher, RuleSet};
use tetra_triage::redact::SecretMasker;
use tetra_triage::scan::scan_text;

static MATCHER: LazyLock<Matcher> = LazyLock::new(|| {
    let rules = RuleSet::builtin().expect("built-in rules parse");
    Matcher::new(&rules).expect("built-in rules compile")
});
static MASKER: LazyLock<SecretMasker> =
    LazyLock::new(|| SecretMasker::new(&["Pr0xy-S3cret!".to_string()]));

fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    if let Ok(scan) = scan_text(&mut reader, u64::MAX, &MATCHER, &MASKER) {
        assert_eq!(scan.bytes, data.len() as u64);
        for matched in &scan.matches {
            assert!(matched.line >= 1);
            assert!(matched.line <= scan.lines);
            assert!(!matched.text.contains("Pr0xy-S3cret!"));
        }
    }
});
