//! Structured facts from attached command output: `netsh winhttp show
//! proxy`, `ipconfig /all`, `Resolve-DnsName` and `nslookup`. Failures in
//! the same files are found line by line by the rules; this module reads
//! the settings and answers that only make sense as a whole.

use serde::{Deserialize, Serialize};

use crate::text::decode_document;

/// Network settings and DNS results from the attached command output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkFacts {
    /// The WinHTTP proxy that LocalSystem services (the connector's CRL and
    /// OCSP fetches) use: `direct`, or the proxy list as shown.
    pub winhttp_proxy: Option<String>,
    pub winhttp_bypass: Option<String>,
    /// The location of the WinHTTP setting, as `file:line`.
    pub winhttp_source: Option<String>,
    /// DNS servers listed by `ipconfig /all`.
    pub dns_servers: Vec<String>,
    /// Names that `Resolve-DnsName` or `nslookup` resolved, with addresses.
    pub resolved: Vec<ResolvedName>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedName {
    pub name: String,
    pub addresses: Vec<String>,
}

impl NetworkFacts {
    /// Returns whether the WinHTTP setting is direct access.
    pub fn winhttp_direct(&self) -> bool {
        self.winhttp_proxy.as_deref() == Some("direct")
    }

    /// Adds the facts of another file.
    pub fn merge(&mut self, other: NetworkFacts) {
        if self.winhttp_proxy.is_none() {
            self.winhttp_proxy = other.winhttp_proxy;
            self.winhttp_bypass = other.winhttp_bypass;
            self.winhttp_source = other.winhttp_source;
        }
        for server in other.dns_servers {
            if !self.dns_servers.contains(&server) {
                self.dns_servers.push(server);
            }
        }
        for name in other.resolved {
            match self
                .resolved
                .iter_mut()
                .find(|known| known.name.eq_ignore_ascii_case(&name.name))
            {
                Some(known) => {
                    for address in name.addresses {
                        if !known.addresses.contains(&address) {
                            known.addresses.push(address);
                        }
                    }
                }
                None => self.resolved.push(name),
            }
        }
    }
}

/// Reads the facts from one transcript's bytes, in any encoding.
pub fn parse_transcript(file: &str, bytes: &[u8]) -> NetworkFacts {
    let text = decode_document(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let mut facts = NetworkFacts::default();
    let mut in_dns_servers = false;
    let mut nslookup_name: Option<String> = None;
    let mut nslookup_answer = false;

    for (index, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        let lower = line.to_ascii_lowercase();

        // netsh winhttp show proxy
        if lower.starts_with("direct access (no proxy server)") {
            facts.winhttp_proxy = Some("direct".to_string());
            facts.winhttp_source = Some(format!("{file}:{}", index + 1));
        } else if let Some(value) = value_after(line, "Proxy Server(s)") {
            facts.winhttp_proxy = Some(value.to_string());
            facts.winhttp_source = Some(format!("{file}:{}", index + 1));
        } else if let Some(value) = value_after(line, "Bypass List") {
            facts.winhttp_bypass = Some(value.to_string());
        }

        // ipconfig /all: the DNS server list continues on indented lines.
        if let Some(value) = value_after(line, "DNS Servers") {
            in_dns_servers = true;
            push_address(&mut facts.dns_servers, value);
            continue;
        }
        if in_dns_servers {
            if raw.starts_with(' ') && !line.contains(". .") && is_address(line) {
                push_address(&mut facts.dns_servers, line);
                continue;
            }
            in_dns_servers = false;
        }

        // Resolve-DnsName table rows: NAME  A|AAAA  TTL  Answer  ADDRESS
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [name, kind, ttl, section, address] = fields.as_slice() {
            if matches!(*kind, "A" | "AAAA") && ttl.parse::<u32>().is_ok() && *section == "Answer" {
                add_resolved(&mut facts.resolved, name, address);
            }
        }

        // nslookup: "Name:" then "Address(es):" lines after the server part.
        if let Some(value) = value_after(line, "Name") {
            nslookup_name = Some(value.to_string());
            nslookup_answer = true;
        } else if let Some(value) =
            value_after(line, "Addresses").or_else(|| value_after(line, "Address"))
        {
            if let (true, Some(name)) = (nslookup_answer, &nslookup_name) {
                add_resolved(&mut facts.resolved, name, value);
            }
        } else if nslookup_answer
            && raw.starts_with(|c: char| c.is_whitespace())
            && is_address(line)
        {
            if let Some(name) = &nslookup_name {
                add_resolved(&mut facts.resolved, name, line);
            }
        } else if line.is_empty() {
            nslookup_answer = false;
        }
    }
    facts
}

/// Returns the value of a `Label . . . : value` or `Label : value` line.
fn value_after<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(label)?;
    let rest = rest.trim_start_matches([' ', '.']);
    let value = rest.strip_prefix(':')?.trim();
    (!value.is_empty()).then_some(value)
}

fn is_address(text: &str) -> bool {
    let text = text.split('%').next().unwrap_or(text);
    text.parse::<std::net::IpAddr>().is_ok()
}

fn push_address(list: &mut Vec<String>, value: &str) {
    let value = value.trim();
    if is_address(value) && !list.iter().any(|known| known == value) {
        list.push(value.to_string());
    }
}

fn add_resolved(resolved: &mut Vec<ResolvedName>, name: &str, address: &str) {
    let address = address.trim();
    if address.is_empty() {
        return;
    }
    match resolved
        .iter_mut()
        .find(|known| known.name.eq_ignore_ascii_case(name))
    {
        Some(known) if !known.addresses.iter().any(|a| a == address) => {
            known.addresses.push(address.to_string())
        }
        Some(_) => {}
        None => resolved.push(ResolvedName {
            name: name.to_string(),
            addresses: vec![address.to_string()],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netsh_direct_and_proxy() {
        let direct =
            "\r\nCurrent WinHTTP proxy settings:\r\n\r\n    Direct access (no proxy server).\r\n";
        let facts = parse_transcript("netsh.txt", direct.as_bytes());
        assert!(facts.winhttp_direct());
        assert_eq!(facts.winhttp_source.as_deref(), Some("netsh.txt:4"));

        let proxy = "Current WinHTTP proxy settings:\n\n    Proxy Server(s) :  proxy.corp.example:8080\n    Bypass List     :  <local>\n";
        let facts = parse_transcript("netsh.txt", proxy.as_bytes());
        assert_eq!(
            facts.winhttp_proxy.as_deref(),
            Some("proxy.corp.example:8080")
        );
        assert_eq!(facts.winhttp_bypass.as_deref(), Some("<local>"));
    }

    #[test]
    fn resolve_dnsname_table_from_utf16() {
        let text = "Name                               Type TTL Section IPAddress\r\n\
                    ----                               ---- --- ------- ---------\r\n\
                    tetra-defs.amp.cisco.com          A     5    Answer 192.0.2.10\r\n\
                    tetra-defs.amp.cisco.com          A     5    Answer 192.0.2.11\r\n";
        let bytes: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let facts = parse_transcript("dns.txt", &bytes);
        assert_eq!(facts.resolved.len(), 1);
        assert_eq!(facts.resolved[0].addresses, ["192.0.2.10", "192.0.2.11"]);
    }

    #[test]
    fn ipconfig_dns_servers_and_nslookup() {
        let text = "   DNS Servers . . . . . . . . . . . : 10.0.0.53\n                                       10.0.0.54\n   NetBIOS over Tcpip. . . . . . . . : Enabled\n\nServer:  dns1.corp.example\nAddress:  10.0.0.53\n\nNon-authoritative answer:\nName:    tetra-defs.amp.cisco.com\nAddresses:  192.0.2.10\n          192.0.2.11\n";
        let facts = parse_transcript("ipconfig.txt", text.as_bytes());
        assert_eq!(facts.dns_servers, ["10.0.0.53", "10.0.0.54"]);
        assert_eq!(facts.resolved.len(), 1);
        assert_eq!(facts.resolved[0].name, "tetra-defs.amp.cisco.com");
        assert_eq!(facts.resolved[0].addresses, ["192.0.2.10", "192.0.2.11"]);
    }
}
