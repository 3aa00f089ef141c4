//! Opens the input as a bundle file (ZIP, 7z, nested archives or a loose
//! file) and reads every member the way the analysis does.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tetra_triage::input::{self, Limits};
use tetra_triage::knowledge::{Matcher, RuleSet};
use tetra_triage::redact::SecretMasker;
use tetra_triage::scan::scan_text;

static MATCHER: LazyLock<Matcher> = LazyLock::new(|| {
    let rules = RuleSet::builtin().expect("built-in rules parse");
    Matcher::new(&rules).expect("built-in rules compile")
});
static MASKER: LazyLock<SecretMasker> = LazyLock::new(|| SecretMasker::new(&[]));

/// Small limits keep each run fast; they are still far above the inputs
/// libFuzzer writes, except for what decompression makes of them.
const LIMITS: Limits = Limits {
    max_total_bytes: 1 << 24,
    max_member_bytes: 1 << 22,
    max_entries: 1000,
    max_depth: 3,
    max_nested_bytes: 1 << 22,
};

fuzz_target!(|data: &[u8]| {
    // The listing works on paths, so the bytes go through a file.
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("bundle.zip");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(listing) = input::list(&path, &LIMITS) {
        for entry in &listing.entries {
            let _ = input::with_reader(entry, |reader| {
                scan_text(reader, LIMITS.max_member_bytes, &MATCHER, &MASKER)
            });
            let _ = input::read_entry_bytes(entry, LIMITS.max_nested_bytes);
        }
    }
});
