//! Reads the input as `local.xml` and as `policy.xml`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tetra_triage::xml;

fuzz_target!(|data: &[u8]| {
    let (flat, _) = xml::flatten(data);
    let _ = xml::parse_local(&flat);
    let (policy, password) = xml::parse_policy(&flat);
    // The password is returned apart and masked in every setting. The masker
    // skips values under three characters, and a password of asterisks
    // could be rebuilt from the mask itself.
    let checked = password.filter(|p| p.chars().count() >= 3 && !p.contains('*'));
    if let Some(password) = checked {
        let json = serde_json::to_string(&policy).unwrap_or_default();
        assert!(!json.contains(&password), "password in {json}");
    }
});
