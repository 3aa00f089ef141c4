//! Masking of secrets, applied to every piece of member text before it is
//! stored, so no output format can print one.

use std::borrow::Cow;

use regex::Regex;

/// The replacement for a masked secret.
pub const MASK: &str = "********";

/// Masks credentials: known secret values (the policy's proxy password) and
/// anything shaped like one (`password=`, `Proxy-Authorization:` headers,
/// `user:password@` in URLs, `<password>` elements).
#[derive(Debug)]
pub struct SecretMasker {
    secrets: Vec<String>,
    patterns: Vec<(Regex, &'static str)>,
}

impl SecretMasker {
    /// Builds a masker for the given secret values. Values shorter than
    /// three characters are ignored, since masking them would garble text.
    pub fn new(secrets: &[String]) -> SecretMasker {
        let patterns = [
            (r"(?i)((?:proxy-)?authorization\s*:\s*)(.+)", "${1}********"),
            (r"(?i)(<(?:\w+:)?password>)([^<]*)(</)", "${1}********${3}"),
            (
                r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@\s/]+)(@)",
                "${1}********${3}",
            ),
            (
                r#"(?i)(\b(?:password|passwd|pwd|proxy_?pass(?:word)?|secret)\b\s*(?:[=:]|\bis\b)\s*)("[^"]*"|'[^']*'|[^\s&;,]+)"#,
                "${1}********",
            ),
        ];
        let patterns = patterns
            .into_iter()
            .filter_map(|(pattern, replacement)| {
                Regex::new(pattern).ok().map(|regex| (regex, replacement))
            })
            .collect();
        let mut secrets: Vec<String> = secrets
            .iter()
            .filter(|s| s.chars().count() >= 3)
            .cloned()
            .collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        SecretMasker { secrets, patterns }
    }

    /// Returns the text with every credential replaced by [`MASK`].
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        for (regex, replacement) in &self.patterns {
            if regex.is_match(&out) {
                out = Cow::Owned(regex.replace_all(&out, *replacement).into_owned());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masks_known_and_shaped_secrets() {
        let masker = SecretMasker::new(&["Pr0xy-S3cret!".to_string()]);
        let cases = [
            ("using Pr0xy-S3cret! for proxy", "Pr0xy-S3cret!"),
            (
                "> Proxy-Authorization: Basic Q09SUFxzdmM6cHc=",
                "Q09SUFxzdmM6cHc=",
            ),
            ("http://svc:hunter22@proxy.corp:8080/", "hunter22"),
            ("connect password=hunter22 user=x", "hunter22"),
            ("<password>hunter22</password>", "hunter22"),
        ];
        for (text, secret) in cases {
            let masked = masker.mask(text);
            assert!(!masked.contains(secret), "{text} -> {masked}");
            assert!(masked.contains(MASK), "{text} -> {masked}");
        }
    }

    #[test]
    fn leaves_ordinary_lines_alone() {
        let masker = SecretMasker::new(&[]);
        let line = "curl: (7) Failed to connect to tetra-defs.amp.cisco.com port 443";
        assert_eq!(masker.mask(line), line);
    }

    proptest! {
        #[test]
        fn secret_never_survives(prefix in "\\PC{0,40}", suffix in "\\PC{0,40}") {
            let secret = "Pr0xy-S3cret!";
            let masker = SecretMasker::new(&[secret.to_string()]);
            let text = format!("{prefix}{secret}{suffix}");
            let masked = masker.mask(&text);
            prop_assert!(!masked.contains(secret));
        }
    }
}
