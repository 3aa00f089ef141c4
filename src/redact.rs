//! Masking of secrets, applied to every piece of member text before it is
//! stored, so no output format can print one; and `--redact`, which
//! replaces identifiers in a finished report with stable tokens.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;

use crate::model::Report;

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
            // Up to the last `@` before the host, since a password may
            // itself contain `@`.
            (
                r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)([^\s/]*)(@[^@\s/]+)",
                "${1}********${3}",
            ),
            (
                r#"(?i)((?:\b(?:password|passwd|pwd|pass|token|proxy_?pass(?:word)?|secret)\b|パスワード)["']?\s*(?:[=:]|\bis\b)\s*)("[^"]*"|'[^']*'|[^\s&;,"']+)"#,
                "${1}********",
            ),
            (r"(?i)(\b(?:with|using) password\s+)(\S+)", "${1}********"),
            // user:password@host without a scheme, as in curl's -x option.
            (
                r"(\b[\w.\\-]+:)([^@\s/:]+)(@[\w-]+(?:\.[\w-]+)+)",
                "${1}********${3}",
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
                out = Cow::Owned(mask_whole_token(&out, secret));
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

/// Domains whose names stay readable in a redacted report: Cisco's servers
/// and the certificate authorities' CRL and OCSP hosts are public facts that
/// the next steps refer to.
const PUBLIC_DOMAINS: &[&str] = &[
    "cisco.com",
    "identrust.com",
    "digicert.com",
    "microsoft.com",
    "windowsupdate.com",
    "letsencrypt.org",
    "lencr.org",
    "sectigo.com",
    "entrust.net",
    "godaddy.com",
    "globalsign.com",
];

/// Last labels that mark a file name rather than a host name.
const FILE_EXTENSIONS: &[&str] = &[
    "log", "xml", "txt", "exe", "dll", "db", "zip", "json", "dat", "gz", "id", "sys", "ini", "cfg",
    "pcap", "pcapng", "ps1", "msi", "cab", "tmp", "bak", "old", "out", "csv", "md", "toml", "crl",
    "cer", "crt", "pem", "html", "htm",
];

static GUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
        .expect("constant pattern compiles")
});
static PRIVATE_IPV4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:10\.\d{1,3}|172\.(?:1[6-9]|2\d|3[01])|192\.168|169\.254)\.\d{1,3}\.\d{1,3}\b")
        .expect("constant pattern compiles")
});
static HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}\b")
        .expect("constant pattern compiles")
});
static USER_PROFILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(\bUsers[\\/])([^\\/\s:*?<>|]+)").expect("constant pattern compiles")
});
static DOMAIN_USER: LazyLock<Regex> = LazyLock::new(|| {
    // Only after a word that introduces an account, so that paths such as
    // Program Files\Cisco\AMP stay intact.
    Regex::new(r"(?i)(\b(?:user(?:name)?|account|as|by|logon|login|domain)\s*[:=]?\s*)([A-Za-z][A-Za-z0-9-]{0,14})\\{1,2}([A-Za-z0-9._$-]{2,})")
        .expect("constant pattern compiles")
});
static ARCHIVE_IN_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([^/!]+)(\.(?:zip|7z))!/").expect("constant pattern compiles"));

/// Replaces host names, user and domain names, internal IP addresses,
/// connector GUIDs and bundle file names with tokens such as `host-1`.
/// The same value gets the same token for the life of the redactor, so one
/// redactor shared by a batch keeps tokens consistent across bundles.
#[derive(Debug, Default)]
pub struct Redactor {
    tokens: Mutex<BTreeMap<String, String>>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    fn token(&self, kind: &str, value: &str) -> String {
        if is_token(value) {
            return value.to_string();
        }
        // A poisoned lock only means another thread panicked mid-insert; the
        // map is still usable.
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = format!("{kind}\u{0}{}", value.to_lowercase());
        if let Some(token) = tokens.get(&key) {
            return token.clone();
        }
        let count = tokens
            .keys()
            .filter(|existing| existing.starts_with(&format!("{kind}\u{0}")))
            .count();
        let token = format!("{kind}-{}", count + 1);
        tokens.insert(key, token.clone());
        token
    }

    /// Returns the report with identifiers replaced, after diagnosis so the
    /// findings are the same as without redaction.
    pub fn redact_report(&self, report: Report) -> Report {
        let mut known: Vec<(String, &'static str)> = Vec::new();
        if let Some(proxy) = &report.proxy {
            if let Some(host) = &proxy.host {
                known.push((host.clone(), "host"));
            }
            if let Some(user) = &proxy.username {
                match user.split_once('\\') {
                    Some((domain, name)) => {
                        known.push((domain.to_string(), "domain"));
                        known.push((name.to_string(), "user"));
                    }
                    None => known.push((user.clone(), "user")),
                }
            }
        }
        known.retain(|(value, _)| value.chars().count() >= 2);
        known.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));

        let bundle = self.redact_bundle_path(&report.bundle);
        let value = match serde_json::to_value(&report) {
            Ok(value) => value,
            // A report always serializes; without a value there is nothing
            // safe to return but an empty redacted shell of the same report.
            Err(_) => return report,
        };
        let mut value = self.redact_value(value, &known);
        if let Some(object) = value.as_object_mut() {
            object.insert("bundle".to_string(), serde_json::Value::String(bundle));
            object.insert("redacted".to_string(), serde_json::Value::Bool(true));
        }
        serde_json::from_value(value).unwrap_or(report)
    }

    fn redact_bundle_path(&self, path: &str) -> String {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let extension = name
            .rsplit_once('.')
            .map(|(_, ext)| ext)
            .filter(|ext| ext.len() <= 5 && !ext.is_empty());
        let token = self.token("bundle", name);
        match extension {
            Some(ext) => format!("{token}.{ext}"),
            None => token,
        }
    }

    fn redact_value(
        &self,
        value: serde_json::Value,
        known: &[(String, &'static str)],
    ) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(text) => Value::String(self.redact_text(&text, known)),
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|item| self.redact_value(item, known))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(key, item)| {
                        // Ids and enumerations are the tool's own words.
                        let keep = matches!(
                            key.as_str(),
                            "id" | "cause"
                                | "kind"
                                | "severity"
                                | "confidence"
                                | "source"
                                | "root_cause"
                                | "format"
                        );
                        let item = if keep {
                            item
                        } else {
                            self.redact_value(item, known)
                        };
                        (key, item)
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    /// Returns the text with every identifier replaced by its token.
    pub fn redact_text(&self, text: &str, known: &[(String, &'static str)]) -> String {
        let mut out = text.to_string();
        for (value, kind) in known {
            if out.to_lowercase().contains(&value.to_lowercase()) {
                let pattern = format!("(?i){}", regex::escape(value));
                if let Ok(regex) = Regex::new(&pattern) {
                    let token = self.token(kind, value);
                    out = regex.replace_all(&out, token.as_str()).into_owned();
                }
            }
        }
        out = ARCHIVE_IN_PATH
            .replace_all(&out, |caps: &regex::Captures<'_>| {
                format!("{}{}!/", self.token("archive", &caps[1]), &caps[2])
            })
            .into_owned();
        out = GUID
            .replace_all(&out, |caps: &regex::Captures<'_>| {
                self.token("guid", &caps[0])
            })
            .into_owned();
        out = PRIVATE_IPV4
            .replace_all(&out, |caps: &regex::Captures<'_>| {
                self.token("ip", &caps[0])
            })
            .into_owned();
        out = USER_PROFILE
            .replace_all(&out, |caps: &regex::Captures<'_>| {
                format!("{}{}", &caps[1], self.token("user", &caps[2]))
            })
            .into_owned();
        out = DOMAIN_USER
            .replace_all(&out, |caps: &regex::Captures<'_>| {
                format!(
                    "{}{}\\{}",
                    &caps[1],
                    self.token("domain", &caps[2]),
                    self.token("user", &caps[3])
                )
            })
            .into_owned();
        HOST.replace_all(&out, |caps: &regex::Captures<'_>| {
            let host = &caps[0];
            if is_public_or_file(host) {
                host.to_string()
            } else {
                self.token("host", host)
            }
        })
        .into_owned()
    }
}

/// Returns whether a value is already a token such as `user-2`.
fn is_token(value: &str) -> bool {
    const KINDS: [&str; 7] = ["host", "user", "domain", "guid", "ip", "bundle", "archive"];
    value.split_once('-').is_some_and(|(kind, number)| {
        KINDS.contains(&kind) && !number.is_empty() && number.chars().all(|c| c.is_ascii_digit())
    })
}

/// Returns whether a dotted name is a public server to keep, a file name,
/// a version number, or a token already made.
fn is_public_or_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let last = lower.rsplit('.').next().unwrap_or("");
    PUBLIC_DOMAINS
        .iter()
        .any(|domain| lower == *domain || lower.ends_with(&format!(".{domain}")))
        || FILE_EXTENSIONS.contains(&last)
        || last.chars().all(|c| c.is_ascii_digit())
        || lower.starts_with("sfc.exe")
}

/// Secrets at least this long are masked wherever they appear; shorter ones
/// only as whole tokens.
const ANYWHERE_SECRET_CHARS: usize = 8;

/// Replaces `secret` where it stands as a whole token, so that a short
/// password such as `cisco` does not garble `tetra-defs.amp.cisco.com` and
/// reveal itself by the gap it leaves. A long secret is masked everywhere,
/// since inside other text it is still the secret.
fn mask_whole_token(text: &str, secret: &str) -> String {
    if secret.chars().count() >= ANYWHERE_SECRET_CHARS {
        return text.replace(secret, MASK);
    }
    let is_word = |c: char| c.is_alphanumeric() || matches!(c, '.' | '-' | '_');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(position) = rest.find(secret) {
        let before = rest[..position].chars().next_back();
        let after = rest[position + secret.len()..].chars().next();
        let starts_token = before.is_none_or(|c| !is_word(c) || !secret.starts_with(is_word));
        let ends_token = after.is_none_or(|c| !is_word(c) || !secret.ends_with(is_word));
        out.push_str(&rest[..position]);
        if starts_token && ends_token {
            out.push_str(MASK);
        } else {
            out.push_str(secret);
        }
        rest = &rest[position + secret.len()..];
    }
    out.push_str(rest);
    out
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
    fn url_password_with_at_sign_is_masked_whole() {
        let masker = SecretMasker::new(&[]);
        let masked = masker.mask("http://svc_amp:p@ss-in-URL-77@proxy.corp.example:8080/");
        assert!(!masked.contains("ss-in-URL-77"), "{masked}");
        assert!(masked.contains("@proxy.corp.example:8080"), "{masked}");
    }

    #[test]
    fn masks_other_credential_shapes() {
        let masker = SecretMasker::new(&[]);
        for (text, secret) in [
            (r#"{"password":"Hunter2x"}"#, "Hunter2x"),
            ("proxy svc:Hunter2x@proxy.corp.example:8080", "Hunter2x"),
            ("pass=Hunter2x token=Tok3nValue", "Hunter2x"),
            ("token=Tok3nValue", "Tok3nValue"),
            ("logon with password Hunter2x failed", "Hunter2x"),
            ("パスワード=Hunter2x", "Hunter2x"),
        ] {
            let masked = masker.mask(text);
            assert!(!masked.contains(secret), "{text} -> {masked}");
        }
    }

    #[test]
    fn short_password_does_not_garble_host_names() {
        let masker = SecretMasker::new(&["cisco".to_string()]);
        let masked = masker.mask("GET https://tetra-defs.amp.cisco.com with -U svc:cisco");
        assert!(masked.contains("tetra-defs.amp.cisco.com"), "{masked}");
        assert!(masked.ends_with("svc:********"), "{masked}");
    }

    #[test]
    fn leaves_ordinary_lines_alone() {
        let masker = SecretMasker::new(&[]);
        let line = "curl: (7) Failed to connect to tetra-defs.amp.cisco.com port 443";
        assert_eq!(masker.mask(line), line);
    }

    #[test]
    fn redaction_tokens_are_stable() {
        let redactor = Redactor::new();
        let text = "proxy.corp.example (10.1.2.3) for 5c6e64fa-7738-4b39-b201-15451e33bfe6 by CORP\\svc_amp";
        let first = redactor.redact_text(text, &[]);
        let second = redactor.redact_text(text, &[]);
        assert_eq!(first, second);
        assert!(!first.contains("proxy.corp.example"), "{first}");
        assert!(!first.contains("10.1.2.3"), "{first}");
        assert!(!first.contains("5c6e64fa"), "{first}");
        assert!(!first.contains("svc_amp"), "{first}");
        assert!(first.contains("host-1"), "{first}");
    }

    #[test]
    fn redaction_keeps_public_names_and_files() {
        let redactor = Redactor::new();
        let text = "curl https://tetra-defs.amp.cisco.com via validation.identrust.com in Program Files/Cisco/AMP/8.1.7.21417/sfc.exe.log.1, local.xml and PS C:\\Program Files\\Cisco\\AMP> curl.exe";
        assert_eq!(redactor.redact_text(text, &[]), text);
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
