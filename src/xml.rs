//! Reading `local.xml` and `policy.xml` into flat `path = text` pairs, then
//! into typed settings. Entities declared in a DTD are never expanded, so an
//! entity-expansion bomb stays a few bytes of literal text.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::Reader;
use serde::{Deserialize, Serialize};

use std::sync::LazyLock;

use crate::redact::SecretMasker;

/// Characters kept from one text node; longer values are cut.
const MAX_TEXT_CHARS: usize = 64 * 1024;
/// Element nesting read before parsing stops. The connector's files nest
/// fewer than ten levels, and every kept path repeats its ancestors, so deep
/// nesting would cost memory quadratic in the depth.
const MAX_DEPTH: usize = 64;
/// Text values kept from one document before parsing stops.
const MAX_VALUES: usize = 100_000;

/// An XML document as `(element path, text)` pairs, paths made of local
/// names (namespace prefixes dropped) joined by `/`.
#[derive(Debug, Default)]
pub struct FlatXml {
    pub values: Vec<(String, String)>,
}

impl FlatXml {
    /// Returns the text of the first element whose path ends with `suffix`
    /// at a segment boundary, as XPath `//suffix` would find it.
    pub fn find(&self, suffix: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(path, _)| path == suffix || path.ends_with(&format!("/{suffix}")))
            .map(|(_, text)| text.as_str())
    }
}

/// Parses XML into its text values. Returns what was read before a syntax
/// error together with the error's description.
pub fn flatten(bytes: &[u8]) -> (FlatXml, Option<String>) {
    let text = crate::text::decode_document(bytes);
    let mut reader = Reader::from_str(&text);
    // Text is trimmed once per element when it is stored. quick-xml's own
    // trimming works per text event, so it would eat the spaces around an
    // entity reference: `p &amp; q` would become `p&q`.
    reader.config_mut().check_end_names = false;

    let mut stack: Vec<String> = Vec::new();
    let mut flat = FlatXml::default();
    let mut current = PendingText::default();
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(err) => {
                let position = reader.error_position();
                return (
                    flat,
                    Some(format!("malformed XML at byte {position}: {err}")),
                );
            }
        };
        match event {
            Event::Start(start) => {
                current.flush(&stack, &mut flat);
                if stack.len() >= MAX_DEPTH {
                    let position = reader.buffer_position();
                    return (
                        flat,
                        Some(format!(
                            "elements nested deeper than {MAX_DEPTH} levels at byte {position}"
                        )),
                    );
                }
                stack.push(String::from_utf8_lossy(start.local_name().as_ref()).into_owned());
            }
            Event::Empty(_) => {}
            Event::End(_) => {
                current.flush(&stack, &mut flat);
                stack.pop();
            }
            Event::Text(text) => current.append(&text.xml_content().unwrap_or_default()),
            Event::CData(data) => current.append(&String::from_utf8_lossy(&data)),
            Event::GeneralRef(reference) => {
                let name = reference.decode().unwrap_or_default();
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    _ => match resolve_predefined_entity(&name) {
                        Some(value) => value.to_string(),
                        // Entities from a DTD stay literal text.
                        None => format!("&{name};"),
                    },
                };
                current.append(&resolved);
            }
            Event::Eof => {
                if stack.is_empty() {
                    break;
                }
                // quick-xml accepts a document that stops inside elements.
                current.flush(&stack, &mut flat);
                return (
                    flat,
                    Some(format!(
                        "XML ends inside <{}>, so the file is truncated",
                        stack.join("/")
                    )),
                );
            }
            _ => {}
        }
        if flat.values.len() >= MAX_VALUES {
            let position = reader.buffer_position();
            return (
                flat,
                Some(format!(
                    "more than {MAX_VALUES} text values; reading stopped at byte {position}"
                )),
            );
        }
    }
    (flat, None)
}

/// The text of the element being read, with its length in characters kept
/// alongside, so appending the many small pieces of a huge text node (one
/// per entity reference) stays linear.
#[derive(Default)]
struct PendingText {
    text: String,
    chars: usize,
}

impl PendingText {
    fn append(&mut self, piece: &str) {
        let room = MAX_TEXT_CHARS.saturating_sub(self.chars);
        for ch in piece.chars().take(room) {
            self.text.push(ch);
            self.chars += 1;
        }
    }

    /// Stores the pending text under the current element path, if any.
    fn flush(&mut self, stack: &[String], flat: &mut FlatXml) {
        let text = self.text.trim();
        if !text.is_empty() && !stack.is_empty() {
            flat.values.push((stack.join("/"), text.to_string()));
        }
        self.text.clear();
        self.chars = 0;
    }
}

/// The connector and definition fields of `local.xml`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LocalXml {
    pub connector_guid: Option<String>,
    pub business_guid: Option<String>,
    pub tetra_version: Option<String>,
    /// Unix epoch seconds (UTC).
    pub last_update: Option<i64>,
    pub last_success: Option<i64>,
    pub last_check: Option<i64>,
    /// `//tetra/lasterror` as written, and as an unsigned 32-bit value.
    pub last_error_text: Option<String>,
    pub last_error: Option<u32>,
    /// TETRA versions listed in `agent/engine/stats/definitions`.
    pub stats_versions: Vec<String>,
}

/// Reads `local.xml`'s fields.
pub fn parse_local(flat: &FlatXml) -> LocalXml {
    let epoch = |suffix: &str| {
        flat.find(suffix)
            .and_then(|text| text.trim().parse::<i64>().ok())
            .filter(|t| *t > 0)
    };
    let last_error_text = flat.find("tetra/lasterror").map(str::to_string);
    let last_error = last_error_text.as_deref().and_then(parse_u32_either_sign);

    let mut stats_versions = Vec::new();
    if let Some(json) = flat.find("stats/definitions") {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(json) {
            let engines = value
                .get("engineDefinitions")
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default();
            for engine in engines {
                if let Some(version) = engine.get("defVersion").and_then(|v| v.as_str()) {
                    stats_versions.push(version.to_string());
                }
            }
        }
    }

    LocalXml {
        connector_guid: flat.find("agent/uuid").map(str::to_string),
        business_guid: flat.find("business/uuid").map(str::to_string),
        tetra_version: flat.find("tetra/defversions").map(str::to_string),
        last_update: epoch("tetra/lastupdate"),
        last_success: epoch("tetra/lastsuccesstime"),
        last_check: epoch("tetra/lastupdatechecked"),
        last_error_text,
        last_error,
        stats_versions,
    }
}

/// Parses a 32-bit code written unsigned (`4294965196`) or signed (`-2100`).
pub fn parse_u32_either_sign(text: &str) -> Option<u32> {
    let text = text.trim();
    if let Ok(value) = text.parse::<u32>() {
        return Some(value);
    }
    text.parse::<i32>().ok().map(|value| value as u32)
}

/// The proxy settings from `policy.xml`. The password is never stored: only
/// whether one is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProxySettings {
    #[serde(rename = "type")]
    pub proxy_type: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub auth_type: Option<String>,
    pub username: Option<String>,
    pub password_set: bool,
    pub pac_url: Option<String>,
    pub no_local_resolve: Option<String>,
}

impl ProxySettings {
    /// Returns whether a proxy server is configured.
    pub fn is_configured(&self) -> bool {
        self.host
            .as_deref()
            .is_some_and(|host| !host.trim().is_empty())
            || self.pac_url.is_some()
    }
}

/// The update, proxy, TLS and logging settings of `policy.xml`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicyXml {
    pub policy_name: Option<String>,
    pub policy_uuid: Option<String>,
    pub policy_serial: Option<String>,
    pub tetra_enabled: Option<bool>,
    pub tetra_updater_enabled: Option<bool>,
    pub tetra_update_server: Option<String>,
    /// Seconds between TETRA updates.
    pub tetra_update_interval: Option<u64>,
    pub update_server: Option<String>,
    pub proxy: ProxySettings,
    pub verify_host: Option<String>,
    pub verify_peer: Option<String>,
    pub crl_check: Option<String>,
    pub log_level: Option<String>,
    pub heartbeat_interval: Option<u64>,
}

static SHAPE_MASKER: LazyLock<SecretMasker> = LazyLock::new(|| SecretMasker::new(&[]));

/// Reads `policy.xml`'s fields. Returns the settings and, separately, the
/// proxy password so the caller can mask it wherever it appears. Every
/// returned setting is masked too, because URL-valued ones such as the proxy
/// server or the PAC location may carry `user:password@`.
pub fn parse_policy(flat: &FlatXml) -> (PolicyXml, Option<String>) {
    let raw = |suffix: &str| {
        flat.find(&format!("config/{suffix}"))
            .or_else(|| flat.find(suffix))
    };
    let password = raw("proxy/password")
        .filter(|value| !value.is_empty())
        .map(str::to_string);
    // Building a masker compiles its patterns, so the one without a known
    // secret is built once for all documents.
    let with_password = password
        .as_slice()
        .first()
        .map(|_| SecretMasker::new(password.as_slice()));
    let masker = with_password.as_ref().unwrap_or(&SHAPE_MASKER);
    let text = |suffix: &str| raw(suffix).map(|value| masker.mask(value).into_owned());
    let flag =
        |suffix: &str| text(suffix).map(|value| !matches!(value.trim(), "0" | "false" | "no" | ""));
    let number = |suffix: &str| text(suffix).and_then(|value| value.trim().parse::<u64>().ok());

    let policy = PolicyXml {
        policy_name: text("janus/policy/name"),
        policy_uuid: text("janus/policy/uuid"),
        policy_serial: text("janus/policy/serial_number"),
        tetra_enabled: flag("scansettings/tetra/enable"),
        tetra_updater_enabled: flag("scansettings/tetra/updater/enable"),
        tetra_update_server: text("scansettings/tetra/updater/server"),
        tetra_update_interval: number("scansettings/tetra/updater/interval"),
        update_server: flat
            .find("config/updater/server")
            .map(|value| masker.mask(value).into_owned()),
        proxy: ProxySettings {
            proxy_type: text("proxy/type"),
            host: text("proxy/server"),
            port: text("proxy/port"),
            auth_type: text("proxy/authtype"),
            username: text("proxy/username"),
            password_set: password.is_some(),
            pac_url: text("proxy/pacloc"),
            no_local_resolve: text("proxy/nolocalresolvehost"),
        },
        verify_host: text("conn/ssl/verifyhost"),
        verify_peer: text("conn/ssl/verifypeer"),
        crl_check: text("conn/ssl/crlc"),
        log_level: text("agent/log/level"),
        heartbeat_interval: number("agent/hb/interval"),
    };
    (policy, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: &str = r#"<?xml version="1.0"?>
<config><agent><uuid>5c6e64fa-7738-4b39-b201-15451e33bfe6</uuid>
<engine><tetra><defversions>TETRA:90604</defversions><lastupdate>1684428873</lastupdate>
<lastsuccesstime>1684428873</lastsuccesstime><lastupdatechecked>1684443273</lastupdatechecked>
<lasterror>4294965196</lasterror></tetra>
<stats><definitions>{"engineDefinitions":[{"defVersion":"TETRA:90604"}]}</definitions></stats></engine></agent>
<janus><business><uuid>b-1</uuid></business></janus></config>"#;

    #[test]
    fn local_xml_fields() {
        let (flat, error) = flatten(LOCAL.as_bytes());
        assert!(error.is_none());
        let local = parse_local(&flat);
        assert_eq!(
            local.connector_guid.as_deref(),
            Some("5c6e64fa-7738-4b39-b201-15451e33bfe6")
        );
        assert_eq!(local.tetra_version.as_deref(), Some("TETRA:90604"));
        assert_eq!(local.last_success, Some(1684428873));
        assert_eq!(local.last_error, Some(4294965196));
        assert_eq!(local.stats_versions, ["TETRA:90604"]);
        assert_eq!(local.business_guid.as_deref(), Some("b-1"));
    }

    #[test]
    fn signed_lasterror_reads_as_unsigned() {
        assert_eq!(parse_u32_either_sign("-2100"), Some(4294965196));
        assert_eq!(parse_u32_either_sign("x"), None);
    }

    #[test]
    fn policy_namespaced_and_password_kept_apart() {
        let policy = r#"<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><Object><config>
<proxy><type>1</type><server>proxy.corp.example</server><port>8080</port><username>CORP\svc</username>
<password>Pr0xy-S3cret!</password></proxy>
<agent><scansettings><tetra><enable>1</enable><updater><enable>0</enable><interval>3600</interval></updater></tetra></scansettings>
<log><level>3</level></log></agent></config></Object></Signature>"#;
        let (flat, error) = flatten(policy.as_bytes());
        assert!(error.is_none());
        let (parsed, password) = parse_policy(&flat);
        assert_eq!(parsed.proxy.host.as_deref(), Some("proxy.corp.example"));
        assert!(parsed.proxy.password_set);
        assert_eq!(password.as_deref(), Some("Pr0xy-S3cret!"));
        assert_eq!(parsed.tetra_updater_enabled, Some(false));
        assert_eq!(parsed.tetra_update_interval, Some(3600));
        let json = serde_json::to_string(&parsed).expect("serializes");
        assert!(!json.contains("Pr0xy-S3cret!"));
    }

    #[test]
    fn dtd_entities_are_not_expanded() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<config><agent><uuid>&lol2;</uuid></agent></config>"#;
        let (flat, _) = flatten(bomb.as_bytes());
        assert_eq!(flat.find("agent/uuid"), Some("&lol2;"));
    }

    #[test]
    fn malformed_xml_keeps_what_was_read() {
        let (flat, error) = flatten(b"<config><agent><uuid>abc</uuid><broken");
        assert_eq!(flat.find("agent/uuid"), Some("abc"));
        assert!(error.is_some());
    }

    #[test]
    fn spaces_around_entities_are_kept() {
        let policy = b"<config><proxy><password> p &amp; q </password></proxy></config>";
        let (flat, error) = flatten(policy);
        assert!(error.is_none());
        let (_, password) = parse_policy(&flat);
        assert_eq!(password.as_deref(), Some("p & q"));
    }

    #[test]
    fn truncated_document_is_reported() {
        let (flat, error) = flatten(b"<config><agent><uuid>abc</uuid><engine><tetra><defver>90");
        assert_eq!(flat.find("agent/uuid"), Some("abc"));
        let error = error.expect("truncation is an error");
        assert!(
            error.contains("<config/agent/engine/tetra/defver>"),
            "{error}"
        );
    }

    #[test]
    fn huge_text_node_is_cut() {
        // Two million entity references: each used to recount the text.
        let document = format!(
            "<config><note>{}</note></config>",
            "&amp;".repeat(2_000_000)
        );
        let (flat, error) = flatten(document.as_bytes());
        assert!(error.is_none());
        let note = flat.find("config/note").expect("note");
        assert_eq!(note.chars().count(), MAX_TEXT_CHARS);
    }

    #[test]
    fn deep_nesting_stops_reading() {
        let depth = 100_000;
        let document = format!("{}{}", "<d>x".repeat(depth), "</d>".repeat(depth));
        let (flat, error) = flatten(document.as_bytes());
        let error = error.expect("too deep");
        assert!(error.contains("deeper than 64"), "{error}");
        assert_eq!(flat.values.len(), MAX_DEPTH);
    }

    #[test]
    fn policy_url_credentials_are_masked() {
        let policy = br#"<config><proxy><server>http://svc:Url-Pa55@proxy.corp:8080</server>
<pacloc>https://svc:Pac-Pa55@pac.corp/p.pac</pacloc><password>Pr0xy-S3cret!</password>
<username>Pr0xy-S3cret!</username></proxy></config>"#;
        let (flat, _) = flatten(policy);
        let (parsed, password) = parse_policy(&flat);
        assert_eq!(password.as_deref(), Some("Pr0xy-S3cret!"));
        let json = serde_json::to_string(&parsed).expect("serializes");
        for secret in ["Url-Pa55", "Pac-Pa55", "Pr0xy-S3cret!"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
        assert_eq!(
            parsed.proxy.host.as_deref(),
            Some("http://svc:********@proxy.corp:8080")
        );
    }
}
