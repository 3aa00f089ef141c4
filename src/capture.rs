//! Packet-capture reader for the network side of a failed TETRA definition download.
//!
//! [`read_capture`] reads a pcap or pcapng file from memory and returns one
//! [`CaptureEvent`] per fact that helps explain the failure. The facts are DNS queries
//! and their results, TCP connects, refusals, timeouts and resets, TLS ClientHello
//! names, server certificates and alerts, clear-text HTTP requests and responses
//! (proxies included), and OCSP or CRL fetches.
//!
//! Capture files come from customers, so the reader checks every length before it uses
//! it, and its memory is bounded. It stores at most [`MAX_STREAM_BUFFER`] unparsed bytes
//! per TCP direction and [`MAX_BUFFERED_TOTAL`] bytes over all streams, and it tracks at
//! most [`MAX_TRACKED_CONNECTIONS`] open connections and [`MAX_PENDING_DNS_QUERIES`] DNS
//! queries at a time.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use chrono::{DateTime, NaiveDate, Utc};
use etherparse::{EtherType, IpNumber, LaxNetSlice, LaxSlicedPacket, TcpSlice, TransportSlice};
use pcap_parser::data::{get_packetdata_linux_sll, get_packetdata_linux_sll2, PacketData};
use pcap_parser::nom;
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::{Block, Linktype, PcapError};

/// Maximum unparsed bytes held for one direction of one TCP connection. A TLS record
/// (at most 18,432 bytes with its expansion) or an HTTP header block must fit in it.
pub const MAX_STREAM_BUFFER: usize = 32 * 1024;
/// Maximum bytes held over all TCP stream buffers together.
pub const MAX_BUFFERED_TOTAL: usize = 64 * 1024 * 1024;
/// Maximum TCP connections tracked at one time. Connections that ended are dropped
/// first; when all are open, new ones are ignored with a warning.
pub const MAX_TRACKED_CONNECTIONS: usize = 100_000;
/// Maximum DNS queries waiting for an answer at one time.
pub const MAX_PENDING_DNS_QUERIES: usize = 100_000;
/// Number of events after which routine events (DNS queries and records, connects,
/// successful HTTP exchanges) are dropped with a warning.
pub const MAX_EVENTS: usize = 200_000;
/// Further events kept past [`MAX_EVENTS`] when they show a failure, so that a failure
/// late in a long capture is still reported.
pub const MAX_EXTRA_FAILURE_EVENTS: usize = 100_000;

/// Maximum characters of text taken from a packet (a host name, a status line) into
/// one event.
const MAX_FIELD_CHARS: usize = 200;
/// Maximum TLS handshake bytes held for one direction while messages are reassembled.
const MAX_HANDSHAKE_BUFFER: usize = 64 * 1024;
/// Maximum TCP segments held while they wait for a missing earlier segment.
const MAX_OUT_OF_ORDER_SEGMENTS: usize = 16;
/// Maximum HTTP requests remembered per connection while they wait for responses.
const MAX_PENDING_HTTP_REQUESTS: usize = 32;
/// Maximum DNS answer records turned into events per response.
const MAX_DNS_ANSWERS: usize = 16;
/// Largest TLS record length that RFC 5246 allows (2^14 plus 2048 of expansion).
const MAX_TLS_RECORD: usize = 18_432;

/// One fact read from a capture.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaptureEvent {
    /// 1-based packet number as Wireshark counts it.
    pub packet: u64,
    /// Capture time of that packet.
    pub time: DateTime<Utc>,
    pub kind: CaptureEventKind,
    /// One line of English that keeps the standard tokens that rules match, for
    /// example `DNS error NXDOMAIN (DNS_ERROR_RCODE_NAME_ERROR) for tetra-defs.amp.cisco.com`.
    pub text: String,
}

/// Kind of a [`CaptureEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaptureEventKind {
    /// A DNS query was sent.
    DnsQuery,
    /// A DNS response carried records, or returned NOERROR with no records.
    DnsAnswer,
    /// A DNS response carried an error code, an ICMP error came back, or a query got
    /// no answer in the capture.
    DnsError,
    /// The server replied to a SYN with SYN-ACK, or it closed the connection with FIN
    /// and no declared HTTP body was left unfinished. The text distinguishes the two.
    TcpConnected,
    /// The server replied to a SYN with RST, or ICMP reported the port unreachable.
    TcpRefused,
    /// A SYN got no reply before the capture ended, or ICMP reported the host or
    /// network unreachable.
    TcpNoAnswer,
    /// An established connection ended with RST, or the server closed it with FIN
    /// before the end of a declared HTTP body. The text names the side and the cause.
    /// A client RST after a complete HTTP response is a fast close and is left out.
    TcpReset,
    /// A TLS ClientHello, with its SNI host name when it has one.
    TlsClientHello,
    /// A TLS alert sent in clear text.
    TlsAlert,
    /// The first certificate of a TLS 1.2 or older server Certificate message.
    TlsCertificate,
    /// A clear-text HTTP request, or one that got no response in the capture.
    HttpRequest,
    /// A clear-text HTTP response status line.
    HttpResponse,
    /// An OCSP or CRL fetch over HTTP, and whether a response came back.
    OcspOrCrl,
}

/// Error that stops a capture from being read at all.
///
/// A file that is cut off or damaged after its file header is not an error. The
/// report keeps the events before the damage, and a warning gives the last packet read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("not a packet capture: the file starts with neither a pcap nor a pcapng magic number")]
    NotACapture,
    #[error("the capture is truncated: the file ends inside its file header after {length} bytes")]
    TruncatedHeader { length: usize },
    #[error("invalid capture file header: {0}")]
    Parse(String),
}

/// Events read from one capture.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaptureReport {
    /// Events in packet order. Events that a later packet or the end of the capture
    /// decides (a SYN or DNS query with no answer) carry the number of the packet
    /// they describe.
    pub events: Vec<CaptureEvent>,
    /// Packet records read, including those that were not decoded.
    pub packets: u64,
    /// Problems with the file itself, each reported once, such as a truncated last
    /// packet or an unsupported link type.
    pub warnings: Vec<String>,
}

/// Reads a pcap or pcapng from memory. Returns events in packet order.
///
/// Supported link types are Ethernet, Linux cooked capture (SLL and SLL2), raw IP and
/// BSD loopback (DLT_NULL and DLT_LOOP), carrying IPv4 or IPv6. Packets of other link
/// types are counted and skipped with one warning per link type.
pub fn read_capture(bytes: &[u8]) -> Result<CaptureReport, CaptureError> {
    let mut analyzer = Analyzer::default();
    let magic = bytes.get(..4).unwrap_or_default();
    if magic == PCAPNG_MAGIC {
        read_pcapng(bytes, &mut analyzer)?;
    } else if PCAP_MAGICS.contains(&magic) {
        read_pcap(bytes, &mut analyzer)?;
    } else {
        return Err(CaptureError::NotACapture);
    }
    Ok(analyzer.finish())
}

/// First bytes of pcap files: microsecond and nanosecond timestamps in little- and
/// big-endian order, then the little-endian "modified" (Kuznetzov) format.
const PCAP_MAGICS: [&[u8]; 5] = [
    &[0xd4, 0xc3, 0xb2, 0xa1],
    &[0xa1, 0xb2, 0xc3, 0xd4],
    &[0x4d, 0x3c, 0xb2, 0xa1],
    &[0xa1, 0xb2, 0x3c, 0x4d],
    &[0x34, 0xcd, 0xb2, 0xa1],
];
/// Block type of the pcapng Section Header Block, the same in both byte orders.
const PCAPNG_MAGIC: &[u8] = &[0x0a, 0x0d, 0x0d, 0x0a];

/// Returns whether `bytes` starts like a capture file: pcap in either byte order with
/// microsecond or nanosecond timestamps (and the "modified" pcap variant), or pcapng
/// with a valid byte-order magic.
pub fn is_capture(bytes: &[u8]) -> bool {
    let magic = bytes.get(..4).unwrap_or_default();
    if magic == PCAPNG_MAGIC {
        // The byte-order magic 0x1A2B3C4D follows the block type and block length.
        return matches!(
            bytes.get(8..12),
            Some([0x4d, 0x3c, 0x2b, 0x1a] | [0x1a, 0x2b, 0x3c, 0x4d])
        );
    }
    PCAP_MAGICS.contains(&magic)
}

// ---------------------------------------------------------------------------
// File formats
// ---------------------------------------------------------------------------

/// Reads a legacy pcap file and feeds its packets to `analyzer`.
fn read_pcap(bytes: &[u8], analyzer: &mut Analyzer) -> Result<(), CaptureError> {
    let (mut input, header) = match pcap_parser::parse_pcap_header(bytes) {
        Ok(parsed) => parsed,
        Err(nom::Err::Incomplete(_)) => {
            return Err(CaptureError::TruncatedHeader {
                length: bytes.len(),
            })
        }
        Err(nom::Err::Error(error) | nom::Err::Failure(error)) => {
            return Err(CaptureError::Parse(format!(
                "pcap header: {}",
                describe_pcap_error(&error)
            )))
        }
    };
    // The upper bits of the link-type field carry FCS flags, not the link type.
    let linktype = Linktype(header.network.0 & 0xffff);
    let nanoseconds = header.is_nanosecond_precision();
    while !input.is_empty() {
        let number = analyzer.packets + 1;
        let parsed = if header.is_modified_format() {
            pcap_parser::parse_pcap_frame_modified(input)
        } else if header.is_bigendian() {
            pcap_parser::parse_pcap_frame_be(input)
        } else {
            pcap_parser::parse_pcap_frame(input)
        };
        match parsed {
            Ok((rest, frame)) => {
                input = rest;
                analyzer.packets = number;
                let fraction_nanos = if nanoseconds {
                    u64::from(frame.ts_usec)
                } else {
                    u64::from(frame.ts_usec) * 1_000
                };
                let time = analyzer.timestamp(i64::from(frame.ts_sec), fraction_nanos);
                analyzer.packet(number, time, linktype, frame.data, frame.origlen);
            }
            Err(error) => {
                analyzer.warn_record_unreadable(input.len(), &error);
                break;
            }
        }
    }
    Ok(())
}

/// Link type and timestamp settings of one pcapng interface.
struct Interface {
    linktype: Linktype,
    snaplen: u32,
    ts_resolution: u8,
    ts_offset: i64,
}

/// Reads a pcapng file (any number of sections, either byte order) and feeds its
/// packets to `analyzer`.
fn read_pcapng(bytes: &[u8], analyzer: &mut Analyzer) -> Result<(), CaptureError> {
    let mut input = bytes;
    let mut big_endian = false;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut first_block = true;
    // Simple Packet Blocks carry no timestamp, so they get the previous packet's time.
    let mut last_time = DateTime::<Utc>::UNIX_EPOCH;
    while !input.is_empty() {
        let parsed = if big_endian {
            pcap_parser::parse_block_be(input)
        } else {
            pcap_parser::parse_block_le(input)
        };
        let (rest, block) = match parsed {
            Ok(parsed) => parsed,
            Err(nom::Err::Incomplete(_)) if first_block => {
                return Err(CaptureError::TruncatedHeader {
                    length: bytes.len(),
                })
            }
            Err(error) if first_block => {
                let reason = match &error {
                    nom::Err::Error(inner) | nom::Err::Failure(inner) => describe_pcap_error(inner),
                    nom::Err::Incomplete(_) => "incomplete".to_string(),
                };
                return Err(CaptureError::Parse(format!(
                    "pcapng section header block: {reason}"
                )));
            }
            Err(error) => {
                analyzer.warn_record_unreadable(input.len(), &error);
                break;
            }
        };
        if first_block && !matches!(block, Block::SectionHeader(_)) {
            return Err(CaptureError::Parse(
                "pcapng file does not start with a section header block".to_string(),
            ));
        }
        first_block = false;
        input = rest;
        match block {
            Block::SectionHeader(section) => {
                big_endian = section.big_endian();
                interfaces.clear();
            }
            Block::InterfaceDescription(description) => interfaces.push(Interface {
                linktype: description.linktype,
                snaplen: description.snaplen,
                ts_resolution: description.if_tsresol,
                ts_offset: description.if_tsoffset,
            }),
            Block::EnhancedPacket(packet) => {
                let number = analyzer.packets + 1;
                analyzer.packets = number;
                let interface = usize::try_from(packet.if_id)
                    .ok()
                    .and_then(|index| interfaces.get(index));
                let Some(interface) = interface else {
                    analyzer.unknown_interface_packets += 1;
                    continue;
                };
                let time = analyzer.pcapng_timestamp(interface, packet.ts_high, packet.ts_low);
                last_time = time;
                analyzer.packet(
                    number,
                    time,
                    interface.linktype,
                    packet.packet_data(),
                    packet.origlen,
                );
            }
            Block::SimplePacket(packet) => {
                let number = analyzer.packets + 1;
                analyzer.packets = number;
                let Some(interface) = interfaces.first() else {
                    analyzer.unknown_interface_packets += 1;
                    continue;
                };
                // The captured length is the original length cut to the snapshot length.
                let mut data = packet.packet_data();
                if interface.snaplen > 0 {
                    let snaplen = usize::try_from(interface.snaplen).unwrap_or(usize::MAX);
                    data = data.get(..snaplen).unwrap_or(data);
                }
                analyzer.packet(number, last_time, interface.linktype, data, packet.origlen);
            }
            // Block type 2 is the obsolete Packet Block, which Wireshark still counts.
            Block::Unknown(unknown) if unknown.block_type == 2 => {
                analyzer.packets += 1;
                analyzer.obsolete_packet_blocks += 1;
            }
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Packet dispatch
// ---------------------------------------------------------------------------

/// Number and capture time of the packet being decoded.
#[derive(Debug, Clone, Copy)]
struct PacketRef {
    number: u64,
    time: DateTime<Utc>,
}

/// Events collected so far, capped at [`MAX_EVENTS`] routine events plus
/// [`MAX_EXTRA_FAILURE_EVENTS`] failure events.
#[derive(Default)]
struct EventLog {
    events: Vec<CaptureEvent>,
    dropped_routine: u64,
    dropped_failures: u64,
}

impl EventLog {
    /// Adds an event, treating it as a failure if its kind always shows one.
    fn push(&mut self, packet: PacketRef, kind: CaptureEventKind, text: String) {
        let failure = matches!(
            kind,
            CaptureEventKind::DnsError
                | CaptureEventKind::TcpRefused
                | CaptureEventKind::TcpNoAnswer
                | CaptureEventKind::TcpReset
                | CaptureEventKind::TlsAlert
                | CaptureEventKind::OcspOrCrl
        );
        self.insert(packet, kind, text, failure);
    }

    fn insert(&mut self, packet: PacketRef, kind: CaptureEventKind, text: String, failure: bool) {
        if self.events.len() >= MAX_EVENTS + MAX_EXTRA_FAILURE_EVENTS {
            if failure {
                self.dropped_failures += 1;
            } else {
                self.dropped_routine += 1;
            }
            return;
        }
        if self.events.len() >= MAX_EVENTS && !failure {
            self.dropped_routine += 1;
            return;
        }
        self.events.push(CaptureEvent {
            packet: packet.number,
            time: packet.time,
            kind,
            text,
        });
    }
}

/// State carried from packet to packet, and counts behind the report's warnings.
#[derive(Default)]
struct Analyzer {
    packets: u64,
    log: EventLog,
    warnings: Vec<String>,
    dns: DnsTracker,
    tcp: TcpTracker,
    unsupported_linktypes: BTreeMap<i32, u64>,
    fragments: u64,
    unknown_interface_packets: u64,
    obsolete_packet_blocks: u64,
    invalid_timestamps: u64,
}

impl Analyzer {
    /// Converts seconds and nanoseconds since 1970 to a time, counting values that
    /// chrono cannot represent (they become 1970-01-01).
    fn timestamp(&mut self, seconds: i64, fraction_nanos: u64) -> DateTime<Utc> {
        let carry = i64::try_from(fraction_nanos / 1_000_000_000).unwrap_or(0);
        let nanos = u32::try_from(fraction_nanos % 1_000_000_000).unwrap_or(0);
        let time = seconds
            .checked_add(carry)
            .and_then(|seconds| DateTime::from_timestamp(seconds, nanos));
        time.unwrap_or_else(|| {
            self.invalid_timestamps += 1;
            DateTime::<Utc>::UNIX_EPOCH
        })
    }

    /// Converts a pcapng timestamp, in the interface's resolution and offset, to a time.
    fn pcapng_timestamp(&mut self, interface: &Interface, high: u32, low: u32) -> DateTime<Utc> {
        let units = (u64::from(high) << 32) | u64::from(low);
        // if_tsresol: the high bit selects a power of 2, otherwise a power of 10.
        let exponent = u32::from(interface.ts_resolution & 0x7f);
        let units_per_second = if interface.ts_resolution & 0x80 == 0 {
            10u64.checked_pow(exponent)
        } else {
            1u64.checked_shl(exponent)
        };
        let Some(units_per_second) = units_per_second.filter(|value| *value > 0) else {
            self.invalid_timestamps += 1;
            return DateTime::<Utc>::UNIX_EPOCH;
        };
        let seconds = i64::try_from(units / units_per_second)
            .ok()
            .and_then(|seconds| seconds.checked_add(interface.ts_offset));
        let remainder = u128::from(units % units_per_second);
        let nanos = remainder * 1_000_000_000 / u128::from(units_per_second);
        match seconds {
            Some(seconds) => self.timestamp(seconds, u64::try_from(nanos).unwrap_or(0)),
            None => {
                self.invalid_timestamps += 1;
                DateTime::<Utc>::UNIX_EPOCH
            }
        }
    }

    /// Records why reading stopped after the packets read so far.
    fn warn_record_unreadable(&mut self, remaining: usize, error: &nom::Err<PcapError<&[u8]>>) {
        let last = self.packets;
        let warning = match error {
            nom::Err::Incomplete(_) => format!(
                "the capture is truncated after packet {last}: the file ends inside the next \
                 record ({remaining} bytes left), so the events stop at packet {last}"
            ),
            nom::Err::Error(inner) | nom::Err::Failure(inner) => format!(
                "the capture is damaged after packet {last}: the next record is invalid ({}), \
                 so the remaining {remaining} bytes were not read",
                describe_pcap_error(inner)
            ),
        };
        self.warnings.push(warning);
    }

    /// Decodes one packet record of the given link type.
    fn packet(
        &mut self,
        number: u64,
        time: DateTime<Utc>,
        linktype: Linktype,
        data: &[u8],
        original_length: u32,
    ) {
        let Some(sliced) = slice_link_layer(linktype, data) else {
            if !is_supported_linktype(linktype) {
                *self.unsupported_linktypes.entry(linktype.0).or_default() += 1;
            }
            return;
        };
        let packet = PacketRef { number, time };
        // Bytes cut off by the snapshot length belong to the end of the packet, which
        // is the transport payload once the headers were captured.
        let original_length = usize::try_from(original_length).unwrap_or(usize::MAX);
        let missing = original_length.saturating_sub(data.len());
        self.network(packet, &sliced, missing);
    }

    fn network(&mut self, packet: PacketRef, sliced: &LaxSlicedPacket<'_>, missing: usize) {
        let (source, destination, fragmented) = match &sliced.net {
            Some(LaxNetSlice::Ipv4(ipv4)) => (
                IpAddr::V4(ipv4.header().source_addr()),
                IpAddr::V4(ipv4.header().destination_addr()),
                ipv4.payload().fragmented,
            ),
            Some(LaxNetSlice::Ipv6(ipv6)) => (
                IpAddr::V6(ipv6.header().source_addr()),
                IpAddr::V6(ipv6.header().destination_addr()),
                ipv6.payload().fragmented,
            ),
            _ => return,
        };
        if fragmented {
            self.fragments += 1;
            return;
        }
        match &sliced.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                let source = SocketAddr::new(source, tcp.source_port());
                let destination = SocketAddr::new(destination, tcp.destination_port());
                let segment_length = tcp.payload().len().saturating_add(missing);
                self.tcp.segment(
                    packet,
                    source,
                    destination,
                    tcp,
                    segment_length,
                    &mut self.log,
                    &mut self.dns,
                );
            }
            Some(TransportSlice::Udp(udp)) => {
                let source = SocketAddr::new(source, udp.source_port());
                let destination = SocketAddr::new(destination, udp.destination_port());
                if is_dns_exchange(source, destination) {
                    self.dns
                        .message(packet, udp.payload(), source, destination, &mut self.log);
                }
            }
            // Type 3 (ICMPv4) and type 1 (ICMPv6) are destination unreachable.
            Some(TransportSlice::Icmpv4(icmp)) if icmp.type_u8() == 3 => {
                if let Some(reason) = icmpv4_unreachable_reason(icmp.code_u8()) {
                    self.icmp_unreachable(packet, source, reason, icmp.payload());
                }
            }
            Some(TransportSlice::Icmpv6(icmp)) if icmp.type_u8() == 1 => {
                let reason = icmpv6_unreachable_reason(icmp.code_u8());
                // The ICMPv6 header is 8 bytes, and the quoted packet follows it.
                let quoted = icmp.slice().get(8..).unwrap_or_default();
                self.icmp_unreachable(packet, source, reason, quoted);
            }
            _ => {}
        }
    }

    /// Applies an ICMP destination-unreachable message to the TCP connect or DNS query
    /// whose packet it quotes.
    fn icmp_unreachable(
        &mut self,
        packet: PacketRef,
        reporter: IpAddr,
        reason: UnreachableReason,
        quoted: &[u8],
    ) {
        let Ok(inner) = LaxSlicedPacket::from_ip(quoted) else {
            return;
        };
        let (source, destination, protocol, transport) = match &inner.net {
            Some(LaxNetSlice::Ipv4(ipv4)) => (
                IpAddr::V4(ipv4.header().source_addr()),
                IpAddr::V4(ipv4.header().destination_addr()),
                ipv4.payload().ip_number,
                ipv4.payload().payload,
            ),
            Some(LaxNetSlice::Ipv6(ipv6)) => (
                IpAddr::V6(ipv6.header().source_addr()),
                IpAddr::V6(ipv6.header().destination_addr()),
                ipv6.payload().ip_number,
                ipv6.payload().payload,
            ),
            _ => return,
        };
        // Both TCP and UDP start with the source and destination ports.
        let (Some(source_port), Some(destination_port)) =
            (read_u16(transport, 0), read_u16(transport, 2))
        else {
            return;
        };
        let client = SocketAddr::new(source, source_port);
        let server = SocketAddr::new(destination, destination_port);
        if protocol == IpNumber::TCP {
            self.tcp
                .icmp_unreachable(packet, client, server, reporter, reason, &mut self.log);
        } else if protocol == IpNumber::UDP && is_dns_exchange(client, server) {
            let dns_id = read_u16(transport, 8);
            self.dns.icmp_unreachable(
                packet,
                client,
                server,
                dns_id,
                reporter,
                reason,
                &mut self.log,
            );
        }
    }

    /// Emits the events that only the end of the capture decides, and the warnings.
    fn finish(mut self) -> CaptureReport {
        self.tcp.finish(&mut self.log);
        self.dns.finish(&mut self.log);

        let mut warnings = self.warnings;
        for (linktype, count) in &self.unsupported_linktypes {
            warnings.push(format!(
                "skipped {count} packets with unsupported link type {linktype}; \
                 supported are Ethernet, Linux cooked (SLL, SLL2), raw IP and loopback (NULL)"
            ));
        }
        if self.fragments > 0 {
            warnings.push(format!(
                "skipped {} IP fragments, because fragments are not reassembled",
                self.fragments
            ));
        }
        if self.unknown_interface_packets > 0 {
            warnings.push(format!(
                "skipped {} packets that name an interface the pcapng section does not describe",
                self.unknown_interface_packets
            ));
        }
        if self.obsolete_packet_blocks > 0 {
            warnings.push(format!(
                "skipped {} obsolete pcapng Packet Blocks (block type 2), which are not decoded",
                self.obsolete_packet_blocks
            ));
        }
        if self.invalid_timestamps > 0 {
            warnings.push(format!(
                "{} packets have timestamps out of range; their events show 1970-01-01T00:00:00Z",
                self.invalid_timestamps
            ));
        }
        warnings.extend(self.tcp.warnings());
        if self.dns.pending_limit_reached {
            warnings.push(format!(
                "more than {MAX_PENDING_DNS_QUERIES} DNS queries were waiting for answers; \
                 later queries were not tracked"
            ));
        }
        if self.log.dropped_routine > 0 {
            warnings.push(format!(
                "the capture has more than {MAX_EVENTS} events: {} later routine events \
                 (queries, answers, connects, successful HTTP exchanges) were dropped, \
                 and failures were kept",
                self.log.dropped_routine
            ));
        }
        if self.log.dropped_failures > 0 {
            warnings.push(format!(
                "the capture has more than {} events: {} later failure events were dropped",
                MAX_EVENTS + MAX_EXTRA_FAILURE_EVENTS,
                self.log.dropped_failures
            ));
        }

        let mut events = self.log.events;
        // Stable sort: events of one packet keep the order in which they were found.
        events.sort_by_key(|event| event.packet);
        CaptureReport {
            events,
            packets: self.packets,
            warnings,
        }
    }
}

/// Describes a pcap-parser error without the input bytes that its `Display` prints.
fn describe_pcap_error(error: &PcapError<&[u8]>) -> String {
    match error {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("parser error {kind:?}")
        }
        other => other.to_string(),
    }
}

fn is_supported_linktype(linktype: Linktype) -> bool {
    matches!(
        linktype,
        Linktype::NULL
            | Linktype::ETHERNET
            | Linktype::RAW
            | Linktype::LOOP
            | Linktype::LINUX_SLL
            | Linktype::LINUX_SLL2
            | Linktype::IPV4
            | Linktype::IPV6
    ) || linktype.0 == 12
        || linktype.0 == 14
}

/// Splits a packet of the given link type into its IP and transport layers.
///
/// Returns `None` for unsupported link types and for frames that are too short.
fn slice_link_layer(linktype: Linktype, data: &[u8]) -> Option<LaxSlicedPacket<'_>> {
    match linktype {
        Linktype::ETHERNET => LaxSlicedPacket::from_ethernet(data).ok(),
        Linktype::NULL | Linktype::LOOP => {
            let family_bytes: [u8; 4] = data.get(..4)?.try_into().ok()?;
            // DLT_NULL stores the address family in the capturing host's byte order,
            // DLT_LOOP in network byte order.
            // Address families are below 256, so a larger little-endian reading means
            // the capturing host was big-endian.
            let little = u32::from_le_bytes(family_bytes);
            let big = u32::from_be_bytes(family_bytes);
            let family = if linktype == Linktype::NULL && little < 0x100 {
                little
            } else {
                big
            };
            let ether_type = match family {
                2 => EtherType::IPV4,
                // AF_INET6 is 10 on Linux, 24 on NetBSD and OpenBSD, 28 on FreeBSD and
                // 30 on macOS.
                10 | 24 | 28 | 30 => EtherType::IPV6,
                _ => return None,
            };
            Some(LaxSlicedPacket::from_ether_type(ether_type, data.get(4..)?))
        }
        // 12 and 14 are platform values of DLT_RAW (14 on OpenBSD) that some files carry
        // in place of LINKTYPE_RAW (101).
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 | Linktype(12) | Linktype(14) => {
            LaxSlicedPacket::from_ip(data).ok()
        }
        Linktype::LINUX_SLL | Linktype::LINUX_SLL2 => {
            let link = if linktype == Linktype::LINUX_SLL {
                get_packetdata_linux_sll(data, data.len())
            } else {
                get_packetdata_linux_sll2(data, data.len())
            };
            match link? {
                PacketData::L3(protocol, payload) => Some(LaxSlicedPacket::from_ether_type(
                    EtherType(protocol),
                    payload,
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Returns whether a UDP or TCP exchange between these endpoints is DNS: port 53, or
/// port 5353 used for unicast (test responders listen there). Multicast DNS, which
/// also uses 5353, is excluded.
fn is_dns_exchange(source: SocketAddr, destination: SocketAddr) -> bool {
    let ports = [source.port(), destination.port()];
    if ports.contains(&53) {
        return true;
    }
    ports.contains(&5353) && !destination.ip().is_multicast() && !source.ip().is_multicast()
}

fn read_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    let pair: [u8; 2] = bytes.get(offset..offset.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(pair))
}

// ---------------------------------------------------------------------------
// ICMP
// ---------------------------------------------------------------------------

/// Reason that an ICMP destination-unreachable message gives.
#[derive(Debug, Clone, Copy)]
struct UnreachableReason {
    description: &'static str,
    /// The port was closed, which is a refusal rather than a routing failure.
    port_closed: bool,
}

/// Returns the reason for an ICMPv4 destination-unreachable code, or `None` for code 4
/// (fragmentation needed), which requests smaller packets and does not stop delivery.
fn icmpv4_unreachable_reason(code: u8) -> Option<UnreachableReason> {
    let description = match code {
        0 => "network unreachable",
        1 => "host unreachable",
        2 => "protocol unreachable",
        3 => "port unreachable",
        4 => return None,
        9 | 10 | 13 => "administratively prohibited",
        _ => "destination unreachable",
    };
    Some(UnreachableReason {
        description,
        port_closed: code == 3,
    })
}

fn icmpv6_unreachable_reason(code: u8) -> UnreachableReason {
    let description = match code {
        0 => "no route to destination",
        1 => "administratively prohibited",
        3 => "address unreachable",
        4 => "port unreachable",
        5 => "source address failed ingress/egress policy",
        6 => "reject route to destination",
        _ => "destination unreachable",
    };
    UnreachableReason {
        description,
        port_closed: code == 4,
    }
}

// ---------------------------------------------------------------------------
// DNS
// ---------------------------------------------------------------------------

/// Client, server and transaction id of one DNS query.
type DnsKey = (SocketAddr, SocketAddr, u16);

struct PendingDnsQuery {
    name: String,
    query_type: u16,
    packet: PacketRef,
    server: SocketAddr,
}

/// DNS queries waiting for responses, and the names that got one.
#[derive(Default)]
struct DnsTracker {
    pending: HashMap<DnsKey, PendingDnsQuery>,
    /// Lower-case name and query type of every query that got a response or an ICMP error.
    resolved: HashSet<(String, u16)>,
    pending_limit_reached: bool,
}

/// Parsed parts of a DNS message that the events use.
struct DnsMessage {
    id: u16,
    is_response: bool,
    rcode: u8,
    question: Option<(String, u16)>,
    answers: Vec<DnsRecord>,
}

struct DnsRecord {
    name: String,
    record_type: u16,
    data: String,
}

impl DnsTracker {
    /// Handles one DNS message sent from `source` to `destination`.
    fn message(
        &mut self,
        packet: PacketRef,
        bytes: &[u8],
        source: SocketAddr,
        destination: SocketAddr,
        log: &mut EventLog,
    ) {
        let Some(message) = parse_dns_message(bytes) else {
            return;
        };
        if message.is_response {
            self.response(packet, &message, source, destination, log);
        } else {
            self.query(packet, message, source, destination, log);
        }
    }

    fn query(
        &mut self,
        packet: PacketRef,
        message: DnsMessage,
        client: SocketAddr,
        server: SocketAddr,
        log: &mut EventLog,
    ) {
        let Some((name, query_type)) = message.question else {
            return;
        };
        let key = (client, server, message.id);
        if self.pending.contains_key(&key) {
            // A retransmission of a query already reported.
            return;
        }
        log.push(
            packet,
            CaptureEventKind::DnsQuery,
            format!(
                "DNS query {} {name} sent to {server}",
                dns_type_name(query_type)
            ),
        );
        if self.pending.len() >= MAX_PENDING_DNS_QUERIES {
            self.pending_limit_reached = true;
            return;
        }
        self.pending.insert(
            key,
            PendingDnsQuery {
                name,
                query_type,
                packet,
                server,
            },
        );
    }

    fn response(
        &mut self,
        packet: PacketRef,
        message: &DnsMessage,
        server: SocketAddr,
        client: SocketAddr,
        log: &mut EventLog,
    ) {
        let pending = self.pending.remove(&(client, server, message.id));
        let question = message
            .question
            .clone()
            .or_else(|| pending.map(|query| (query.name, query.query_type)));
        let (name, query_type) = question.unwrap_or_else(|| ("(no question)".to_string(), 0));
        self.resolved
            .insert((name.to_ascii_lowercase(), query_type));
        if message.rcode != 0 {
            let code = dns_rcode_name(message.rcode);
            let text = match windows_dns_error_name(message.rcode) {
                Some(symbol) => format!("DNS error {code} ({symbol}) for {name} from {server}"),
                None => format!("DNS error {code} for {name} from {server}"),
            };
            log.push(packet, CaptureEventKind::DnsError, text);
            return;
        }
        if message.answers.is_empty() {
            log.push(
                packet,
                CaptureEventKind::DnsAnswer,
                format!(
                    "DNS answer for {name} {} has no records (NOERROR) from {server}",
                    dns_type_name(query_type)
                ),
            );
            return;
        }
        for record in &message.answers {
            log.push(
                packet,
                CaptureEventKind::DnsAnswer,
                format!(
                    "DNS answer {} {} {}",
                    record.name,
                    dns_type_name(record.record_type),
                    record.data
                ),
            );
        }
    }

    /// Reports the queries that an ICMP destination-unreachable message quotes. When
    /// the quoted bytes end before the DNS id, every query on that socket pair matches.
    #[allow(clippy::too_many_arguments)]
    fn icmp_unreachable(
        &mut self,
        packet: PacketRef,
        client: SocketAddr,
        server: SocketAddr,
        dns_id: Option<u16>,
        reporter: IpAddr,
        reason: UnreachableReason,
        log: &mut EventLog,
    ) {
        let mut keys: Vec<DnsKey> = self
            .pending
            .keys()
            .filter(|(key_client, key_server, id)| {
                *key_client == client
                    && *key_server == server
                    && dns_id.is_none_or(|dns_id| dns_id == *id)
            })
            .copied()
            .collect();
        keys.sort();
        for key in keys {
            let Some(query) = self.pending.remove(&key) else {
                continue;
            };
            self.resolved
                .insert((query.name.to_ascii_lowercase(), query.query_type));
            log.push(
                packet,
                CaptureEventKind::DnsError,
                format!(
                    "DNS query for {} got ICMP destination unreachable ({}) from {reporter}",
                    query.name, reason.description
                ),
            );
        }
    }

    /// Reports each name and type whose queries all went unanswered.
    fn finish(&mut self, log: &mut EventLog) {
        let mut unanswered: BTreeMap<(String, u16), UnansweredName> = BTreeMap::new();
        for query in self.pending.values() {
            let key = (query.name.to_ascii_lowercase(), query.query_type);
            if self.resolved.contains(&key) {
                continue;
            }
            let entry = unanswered.entry(key).or_insert_with(|| UnansweredName {
                first: query.packet,
                name: query.name.clone(),
                server: query.server,
                queries: 0,
            });
            entry.queries += 1;
            if query.packet.number < entry.first.number {
                entry.first = query.packet;
                entry.name = query.name.clone();
                entry.server = query.server;
            }
        }
        for ((_, query_type), entry) in unanswered {
            let UnansweredName {
                first,
                name,
                server,
                queries,
            } = entry;
            let noun = if queries == 1 { "query" } else { "queries" };
            log.push(
                first,
                CaptureEventKind::DnsError,
                format!(
                    "DNS query for {name} got no answer ({}, {queries} {noun} to {server})",
                    dns_type_name(query_type)
                ),
            );
        }
    }
}

/// Queries for one name and type that got no answer, and the first of them.
struct UnansweredName {
    first: PacketRef,
    name: String,
    server: SocketAddr,
    queries: u32,
}

/// Parses the header, first question and answer records of a DNS message. Sections
/// cut off by the capture leave the later parts out.
fn parse_dns_message(bytes: &[u8]) -> Option<DnsMessage> {
    let id = read_u16(bytes, 0)?;
    let flags = read_u16(bytes, 2)?;
    let question_count = read_u16(bytes, 4)?;
    let answer_count = read_u16(bytes, 6)?;
    let mut message = DnsMessage {
        id,
        is_response: flags & 0x8000 != 0,
        rcode: (flags & 0x000f) as u8,
        question: None,
        answers: Vec::new(),
    };
    let mut offset = 12;
    for index in 0..question_count {
        let Some((name, after_name)) = read_dns_name(bytes, offset) else {
            return Some(message);
        };
        let Some(query_type) = read_u16(bytes, after_name) else {
            return Some(message);
        };
        if index == 0 {
            message.question = Some((name, query_type));
        }
        offset = after_name + 4;
    }
    for _ in 0..usize::from(answer_count).min(MAX_DNS_ANSWERS) {
        let Some((record, after_record)) = read_dns_record(bytes, offset) else {
            break;
        };
        offset = after_record;
        message.answers.push(record);
    }
    Some(message)
}

fn read_dns_record(bytes: &[u8], offset: usize) -> Option<(DnsRecord, usize)> {
    let (name, after_name) = read_dns_name(bytes, offset)?;
    let record_type = read_u16(bytes, after_name)?;
    let data_length = usize::from(read_u16(bytes, after_name.checked_add(8)?)?);
    let data_start = after_name.checked_add(10)?;
    let data_end = data_start.checked_add(data_length)?;
    let data = bytes.get(data_start..data_end)?;
    let text = match record_type {
        1 => {
            let octets: [u8; 4] = data.try_into().ok()?;
            Ipv4Addr::from(octets).to_string()
        }
        28 => {
            let octets: [u8; 16] = data.try_into().ok()?;
            Ipv6Addr::from(octets).to_string()
        }
        5 | 2 | 12 => read_dns_name(bytes, data_start)?.0,
        _ => format!("({data_length} bytes)"),
    };
    Some((
        DnsRecord {
            name,
            record_type,
            data: text,
        },
        data_end,
    ))
}

/// Reads a possibly compressed domain name at `offset`. Returns the name in
/// presentation form (non-printable bytes as `\DDD`) and the offset after the name.
fn read_dns_name(bytes: &[u8], offset: usize) -> Option<(String, usize)> {
    // Real names need a few jumps; the limit stops pointer loops.
    const MAX_POINTER_JUMPS: usize = 128;
    // A 255-byte name is at most 4 * 255 characters long once escaped.
    const MAX_NAME_CHARS: usize = 4 * 255;
    let mut name = String::new();
    let mut position = offset;
    let mut end_of_name = None;
    let mut jumps = 0;
    loop {
        let length = *bytes.get(position)?;
        match length & 0xc0 {
            0x00 if length == 0 => {
                position += 1;
                break;
            }
            0x00 => {
                let start = position + 1;
                let label = bytes.get(start..start + usize::from(length))?;
                if !name.is_empty() {
                    name.push('.');
                }
                for &byte in label {
                    if byte.is_ascii_graphic() && byte != b'.' && byte != b'\\' {
                        name.push(char::from(byte));
                    } else {
                        let _ = write!(name, "\\{byte:03}");
                    }
                }
                if name.len() > MAX_NAME_CHARS {
                    return None;
                }
                position = start + usize::from(length);
            }
            0xc0 => {
                let low = *bytes.get(position + 1)?;
                end_of_name.get_or_insert(position + 2);
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return None;
                }
                position = (usize::from(length & 0x3f) << 8) | usize::from(low);
            }
            _ => return None,
        }
    }
    if name.is_empty() {
        name.push('.');
    }
    Some((name, end_of_name.unwrap_or(position)))
}

fn dns_type_name(query_type: u16) -> String {
    let name = match query_type {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        64 => "SVCB",
        65 => "HTTPS",
        255 => "ANY",
        _ => return format!("TYPE{query_type}"),
    };
    name.to_string()
}

fn dns_rcode_name(rcode: u8) -> String {
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => return format!("RCODE{rcode}"),
    };
    name.to_string()
}

/// Returns the Windows error name (winerror.h codes 9001 to 9005) that Windows reports
/// for a DNS RCODE.
fn windows_dns_error_name(rcode: u8) -> Option<&'static str> {
    match rcode {
        1 => Some("DNS_ERROR_RCODE_FORMAT_ERROR"),
        2 => Some("DNS_ERROR_RCODE_SERVER_FAILURE"),
        3 => Some("DNS_ERROR_RCODE_NAME_ERROR"),
        4 => Some("DNS_ERROR_RCODE_NOT_IMPLEMENTED"),
        5 => Some("DNS_ERROR_RCODE_REFUSED"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// TCP
// ---------------------------------------------------------------------------

/// Client and server of one TCP connection. The client is the side that sent the SYN,
/// or, for a connection whose handshake is not in the capture, the side with the
/// higher port.
#[derive(Debug, Clone, Copy)]
struct Endpoints {
    client: SocketAddr,
    server: SocketAddr,
}

impl Endpoints {
    fn describe(&self) -> String {
        format!("{} -> {}", self.client, self.server)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectionState {
    /// SYN sent, nothing back yet.
    SynSent,
    Established,
    /// RST or ICMP answered the SYN.
    Failed,
    /// The handshake is not in the capture.
    Midstream,
}

/// Clear-text HTTP request that waits for its response.
struct PendingHttpRequest {
    packet: PacketRef,
    method: String,
    /// Request text as the `HttpRequest` event shows it, without the leading
    /// "HTTP request ".
    summary: String,
    revocation: Option<RevocationFetch>,
}

/// OCSP or CRL fetch, recognised from its host name, path or content type.
#[derive(Debug, Clone)]
struct RevocationFetch {
    /// Start of the event texts, such as "OCSP request to ocsp.example.com".
    description: String,
}

/// HTTP state shared by both directions of one connection.
#[derive(Default)]
struct HttpSession {
    requests: VecDeque<PendingHttpRequest>,
    /// Stream offset (from the server) where the last response's declared body ends.
    response_body_end: Option<u64>,
}

struct Connection {
    endpoints: Endpoints,
    state: ConnectionState,
    /// First packet of the connection in the capture: the SYN, when it was captured.
    first_packet: PacketRef,
    last_syn_packet: PacketRef,
    syn_count: u32,
    client_isn: Option<u32>,
    to_server: Stream,
    to_client: Stream,
    http: HttpSession,
    reset_reported: bool,
    /// Either side sent RST.
    reset_seen: bool,
    /// The connection is in `TcpTracker::finished`, waiting to be evicted if needed.
    queued_as_finished: bool,
}

/// All TCP connections in the capture.
#[derive(Default)]
struct TcpTracker {
    connections: HashMap<(SocketAddr, SocketAddr), Connection>,
    /// Connections that ended (refused, reset, or closed by both sides), oldest first.
    /// A full table evicts them first, so that new connections are still tracked.
    finished: VecDeque<(SocketAddr, SocketAddr)>,
    buffered_bytes: usize,
    connection_limit_reached: bool,
    buffer_limit_reached: bool,
    streams_with_gaps: u64,
}

impl TcpTracker {
    #[allow(clippy::too_many_arguments)]
    fn segment(
        &mut self,
        packet: PacketRef,
        source: SocketAddr,
        destination: SocketAddr,
        tcp: &TcpSlice<'_>,
        segment_length: usize,
        log: &mut EventLog,
        dns: &mut DnsTracker,
    ) {
        let sequence = tcp.sequence_number();
        if tcp.syn() && !tcp.ack() {
            self.syn(packet, source, destination, sequence, log);
            return;
        }
        let (key, side) = if self.connections.contains_key(&(source, destination)) {
            ((source, destination), Side::Client)
        } else if self.connections.contains_key(&(destination, source)) {
            ((destination, source), Side::Server)
        } else if tcp.syn() {
            // A SYN-ACK whose SYN is not in the capture: the receiver is the client.
            if !self.start_connection(destination, source, ConnectionState::Midstream, packet, log)
            {
                return;
            }
            ((destination, source), Side::Server)
        } else if !tcp.payload().is_empty() {
            let (client, server, side) = if source.port() >= destination.port() {
                (source, destination, Side::Client)
            } else {
                (destination, source, Side::Server)
            };
            if !self.start_connection(client, server, ConnectionState::Midstream, packet, log) {
                return;
            }
            ((client, server), side)
        } else {
            return;
        };
        let Some(connection) = self.connections.get_mut(&key) else {
            return;
        };
        let before = connection.buffered_bytes();
        if tcp.syn() && side == Side::Server {
            connection.syn_ack(packet, sequence, log);
        }
        if segment_length > 0 {
            let context = StreamContext {
                packet,
                log,
                dns,
                budget_left: MAX_BUFFERED_TOTAL.saturating_sub(self.buffered_bytes),
                budget_exhausted: false,
            };
            let gap = connection.data(side, sequence, tcp.payload(), segment_length, context);
            match gap {
                SegmentOutcome::Accepted => {}
                SegmentOutcome::Gap => self.streams_with_gaps += 1,
                SegmentOutcome::BudgetExhausted => self.buffer_limit_reached = true,
            }
        }
        if tcp.rst() {
            connection.reset(packet, side, log);
        } else if tcp.fin() {
            connection.fin(packet, side, log);
        }
        let after = connection.buffered_bytes();
        self.buffered_bytes = self
            .buffered_bytes
            .saturating_sub(before)
            .saturating_add(after);
        if connection.is_finished() && !connection.queued_as_finished {
            connection.queued_as_finished = true;
            self.finished.push_back(key);
        }
    }

    fn syn(
        &mut self,
        packet: PacketRef,
        client: SocketAddr,
        server: SocketAddr,
        sequence: u32,
        log: &mut EventLog,
    ) {
        if let Some(connection) = self.connections.get_mut(&(client, server)) {
            if connection.client_isn == Some(sequence) {
                connection.syn_count = connection.syn_count.saturating_add(1);
                connection.last_syn_packet = packet;
                return;
            }
            // A new connection that reuses the address and port pair: close the old one.
            if let Some(old) = self.connections.remove(&(client, server)) {
                self.close(old, log);
            }
        }
        if self.start_connection(client, server, ConnectionState::SynSent, packet, log) {
            if let Some(connection) = self.connections.get_mut(&(client, server)) {
                connection.client_isn = Some(sequence);
                connection.syn_count = 1;
                connection.to_server.start(sequence.wrapping_add(1));
            }
        }
    }

    /// Adds a connection, evicting an ended one when the table is full. Returns false
    /// when the table is full of open connections.
    fn start_connection(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        state: ConnectionState,
        packet: PacketRef,
        log: &mut EventLog,
    ) -> bool {
        if self.connections.len() >= MAX_TRACKED_CONNECTIONS && !self.evict_finished(log) {
            self.connection_limit_reached = true;
            return false;
        }
        let endpoints = Endpoints { client, server };
        self.connections.insert(
            (client, server),
            Connection {
                endpoints,
                state,
                first_packet: packet,
                last_syn_packet: packet,
                syn_count: 0,
                client_isn: None,
                to_server: Stream::default(),
                to_client: Stream::default(),
                http: HttpSession::default(),
                reset_reported: false,
                reset_seen: false,
                queued_as_finished: false,
            },
        );
        true
    }

    /// Closes the oldest connection that has ended. Returns whether one was found.
    fn evict_finished(&mut self, log: &mut EventLog) -> bool {
        while let Some(key) = self.finished.pop_front() {
            let finished = self
                .connections
                .get(&key)
                .is_some_and(|connection| connection.queued_as_finished);
            if !finished {
                continue;
            }
            if let Some(connection) = self.connections.remove(&key) {
                self.close(connection, log);
                return true;
            }
        }
        false
    }

    fn icmp_unreachable(
        &mut self,
        packet: PacketRef,
        client: SocketAddr,
        server: SocketAddr,
        reporter: IpAddr,
        reason: UnreachableReason,
        log: &mut EventLog,
    ) {
        let Some(connection) = self.connections.get_mut(&(client, server)) else {
            return;
        };
        if connection.state != ConnectionState::SynSent {
            return;
        }
        connection.state = ConnectionState::Failed;
        let endpoints = connection.endpoints.describe();
        let (kind, text) = if reason.port_closed {
            (
                CaptureEventKind::TcpRefused,
                format!(
                    "TCP connect {endpoints} refused (ICMP {} from {reporter})",
                    reason.description
                ),
            )
        } else {
            (
                CaptureEventKind::TcpNoAnswer,
                format!(
                    "TCP connect {endpoints} failed: ICMP destination unreachable ({}) from {reporter}",
                    reason.description
                ),
            )
        };
        log.push(packet, kind, text);
    }

    fn finish(&mut self, log: &mut EventLog) {
        let mut connections: Vec<Connection> = self
            .connections
            .drain()
            .map(|(_, connection)| connection)
            .collect();
        connections.sort_by_key(|connection| connection.first_packet.number);
        for connection in connections {
            self.close(connection, log);
        }
    }

    /// Emits the events that the end of a connection decides and counts its gaps.
    fn close(&mut self, connection: Connection, log: &mut EventLog) {
        self.buffered_bytes = self
            .buffered_bytes
            .saturating_sub(connection.buffered_bytes());
        if connection.to_server.has_unfilled_gap() || connection.to_client.has_unfilled_gap() {
            self.streams_with_gaps += 1;
        }
        connection.finish(log);
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.connection_limit_reached {
            warnings.push(format!(
                "more than {MAX_TRACKED_CONNECTIONS} TCP connections were open at once; \
                 connections started after that were not tracked"
            ));
        }
        if self.buffer_limit_reached {
            warnings.push(format!(
                "TCP stream buffers reached their {MAX_BUFFERED_TOTAL}-byte limit; \
                 some streams were not decoded"
            ));
        }
        if self.streams_with_gaps > 0 {
            warnings.push(format!(
                "{} TCP streams miss segments (lost by the capture or cut by its snapshot length); \
                 their content after the gap was not decoded",
                self.streams_with_gaps
            ));
        }
        warnings
    }
}

impl Connection {
    /// Returns whether nothing more is expected: refused, reset, or closed by both sides.
    fn is_finished(&self) -> bool {
        self.state == ConnectionState::Failed
            || self.reset_seen
            || (self.to_server.fin && self.to_client.fin)
    }

    fn buffered_bytes(&self) -> usize {
        self.to_server.buffered_bytes() + self.to_client.buffered_bytes()
    }

    fn syn_ack(&mut self, packet: PacketRef, sequence: u32, log: &mut EventLog) {
        if self.to_client.started() {
            return;
        }
        self.to_client.start(sequence.wrapping_add(1));
        if matches!(
            self.state,
            ConnectionState::SynSent | ConnectionState::Midstream
        ) {
            self.state = ConnectionState::Established;
            log.push(
                packet,
                CaptureEventKind::TcpConnected,
                format!("TCP connect {} established", self.endpoints.describe()),
            );
        }
    }

    fn data(
        &mut self,
        side: Side,
        sequence: u32,
        payload: &[u8],
        segment_length: usize,
        mut context: StreamContext<'_>,
    ) -> SegmentOutcome {
        let stream = match side {
            Side::Client => &mut self.to_server,
            Side::Server => &mut self.to_client,
        };
        let mut parse = StreamParse {
            side,
            endpoints: self.endpoints,
            http: &mut self.http,
            context: &mut context,
        };
        let gap = stream.segment(sequence, payload, segment_length, &mut parse);
        if context.budget_exhausted {
            SegmentOutcome::BudgetExhausted
        } else if gap {
            SegmentOutcome::Gap
        } else {
            SegmentOutcome::Accepted
        }
    }

    fn reset(&mut self, packet: PacketRef, side: Side, log: &mut EventLog) {
        self.reset_seen = true;
        let endpoints = self.endpoints.describe();
        match (self.state, side) {
            (ConnectionState::SynSent, Side::Server) => {
                self.state = ConnectionState::Failed;
                log.push(
                    packet,
                    CaptureEventKind::TcpRefused,
                    format!("TCP connect {endpoints} refused (RST)"),
                );
            }
            (ConnectionState::Established | ConnectionState::Midstream, _) => {
                // After the server's FIN, an RST from either side only ends a connection
                // that was already closing, so it is not reported.
                if self.reset_reported || self.to_client.fin {
                    return;
                }
                let received = self.to_client.highest_offset;
                // A client RST after a complete HTTP response is a fast close, not an
                // abort, so it is not reported either.
                let exchange_complete = self.http.requests.is_empty()
                    && self
                        .http
                        .response_body_end
                        .is_some_and(|end| received >= end);
                if side == Side::Client && exchange_complete {
                    return;
                }
                self.reset_reported = true;
                let text = match side {
                    Side::Server => format!(
                        "TCP connection {endpoints} reset by peer after {received} bytes (RST from server)"
                    ),
                    Side::Client => format!(
                        "TCP connection {endpoints} aborted by client (RST) after {received} bytes from server"
                    ),
                };
                log.push(packet, CaptureEventKind::TcpReset, text);
            }
            _ => {}
        }
    }

    fn fin(&mut self, packet: PacketRef, side: Side, log: &mut EventLog) {
        let stream = match side {
            Side::Client => &mut self.to_server,
            Side::Server => &mut self.to_client,
        };
        if stream.fin {
            return;
        }
        stream.fin = true;
        if side == Side::Client || self.reset_reported {
            return;
        }
        let endpoints = self.endpoints.describe();
        let received = self.to_client.highest_offset;
        let missing = self
            .http
            .response_body_end
            .map_or(0, |end| end.saturating_sub(received));
        if missing > 0 {
            log.push(
                packet,
                CaptureEventKind::TcpReset,
                format!(
                    "TCP connection {endpoints} closed by server (FIN) with {missing} bytes of the \
                     HTTP response body remaining, after {received} bytes"
                ),
            );
        } else {
            log.push(
                packet,
                CaptureEventKind::TcpConnected,
                format!("TCP connection {endpoints} closed by server (FIN) after {received} bytes"),
            );
        }
    }

    /// Emits what the end of the capture decides: unanswered SYNs and HTTP requests.
    fn finish(self, log: &mut EventLog) {
        let endpoints = self.endpoints.describe();
        if self.state == ConnectionState::SynSent {
            let seconds = (self.last_syn_packet.time - self.first_packet.time).num_milliseconds()
                as f64
                / 1000.0;
            let attempts = if self.syn_count == 1 { "SYN" } else { "SYNs" };
            log.push(
                self.first_packet,
                CaptureEventKind::TcpNoAnswer,
                format!(
                    "TCP connect {endpoints} SYN unanswered (timed out), {} {attempts} sent over {seconds:.1} s",
                    self.syn_count
                ),
            );
        }
        for request in self.http.requests {
            match request.revocation {
                Some(fetch) => log.push(
                    request.packet,
                    CaptureEventKind::OcspOrCrl,
                    format!("{} got no answer", fetch.description),
                ),
                None => log.insert(
                    request.packet,
                    CaptureEventKind::HttpRequest,
                    format!("HTTP request {} got no response", request.summary),
                    true,
                ),
            }
        }
    }
}

enum SegmentOutcome {
    Accepted,
    /// The stream lost a segment, so its later content is not decoded.
    Gap,
    BudgetExhausted,
}

/// Capture-wide state that stream parsers use: the current packet, the event log, the
/// DNS tracker and the buffer budget.
struct StreamContext<'a> {
    packet: PacketRef,
    log: &'a mut EventLog,
    dns: &'a mut DnsTracker,
    /// Bytes that stream buffers may still grow by over the whole capture.
    budget_left: usize,
    budget_exhausted: bool,
}

struct StreamParse<'a, 'b> {
    side: Side,
    endpoints: Endpoints,
    http: &'a mut HttpSession,
    context: &'a mut StreamContext<'b>,
}

impl StreamParse<'_, '_> {
    fn push(&mut self, kind: CaptureEventKind, text: String) {
        self.context.log.push(self.context.packet, kind, text);
    }

    /// Address of the side that sent the bytes being parsed.
    fn sender(&self) -> SocketAddr {
        match self.side {
            Side::Client => self.endpoints.client,
            Side::Server => self.endpoints.server,
        }
    }

    fn receiver(&self) -> SocketAddr {
        match self.side {
            Side::Client => self.endpoints.server,
            Side::Server => self.endpoints.client,
        }
    }
}

// ---------------------------------------------------------------------------
// TCP stream reassembly
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum StreamMode {
    /// Waiting for enough bytes to tell the protocol.
    #[default]
    Detect,
    Http,
    Tls,
    DnsOverTcp,
    /// Nothing more to decode: encrypted data, an unknown protocol, or a gap.
    Done,
}

/// One direction of a TCP connection.
#[derive(Default)]
struct Stream {
    /// Sequence number of stream offset 0 (the byte after the SYN).
    first_sequence: Option<u32>,
    /// Sequence number of the next byte to append to `buffer`.
    next_sequence: Option<u32>,
    /// Payload bytes seen, by sequence number, including bytes the capture cut off.
    highest_offset: u64,
    fin: bool,
    mode: StreamMode,
    /// Bytes received in order and not yet parsed.
    buffer: Vec<u8>,
    /// Stream offset of `buffer[0]`.
    buffer_offset: u64,
    /// Bytes still to discard before parsing resumes (an HTTP body or TLS record).
    skip: u64,
    out_of_order: Vec<(u32, Vec<u8>)>,
    tls: TlsDirection,
}

/// TLS state of one direction.
#[derive(Default)]
struct TlsDirection {
    /// Handshake bytes not yet parsed into messages.
    handshake: Vec<u8>,
    /// ChangeCipherSpec was sent, so later records are encrypted.
    encrypted: bool,
    certificate_reported: bool,
}

impl Stream {
    fn started(&self) -> bool {
        self.first_sequence.is_some()
    }

    fn start(&mut self, sequence: u32) {
        self.first_sequence = Some(sequence);
        self.next_sequence = Some(sequence);
    }

    /// Returns whether segments still wait for an earlier one that never arrived.
    fn has_unfilled_gap(&self) -> bool {
        self.mode != StreamMode::Done && !self.out_of_order.is_empty()
    }

    fn buffered_bytes(&self) -> usize {
        let out_of_order: usize = self.out_of_order.iter().map(|(_, data)| data.len()).sum();
        self.buffer.len() + self.tls.handshake.len() + out_of_order
    }

    /// Takes one segment. Returns true when the segment showed a gap that stops
    /// decoding (it is reported once per stream).
    fn segment(
        &mut self,
        sequence: u32,
        payload: &[u8],
        segment_length: usize,
        parse: &mut StreamParse<'_, '_>,
    ) -> bool {
        if self.first_sequence.is_none() {
            self.start(sequence);
        }

        let first = self.first_sequence.unwrap_or(sequence);
        let offset = sequence.wrapping_sub(first);
        // Offsets above 2^31 are retransmissions from before the first segment seen.
        if offset < 1 << 31 {
            let end = u64::from(offset).saturating_add(segment_length as u64);
            self.highest_offset = self.highest_offset.max(end);
        }
        if self.mode == StreamMode::Done || payload.is_empty() {
            return false;
        }

        let next = self.next_sequence.unwrap_or(sequence);
        let ahead = sequence.wrapping_sub(next);
        if ahead != 0 && ahead < 1 << 31 {
            if u64::from(ahead) > self.skip {
                return self.hold_out_of_order(sequence, payload, parse);
            }
            // The hole lies inside a body that is skipped anyway, so decoding goes on.
            self.skip -= u64::from(ahead);
            self.buffer_offset += u64::from(ahead);
            self.next_sequence = Some(sequence);
        }

        let mut gap = self.append_in_order(sequence, payload, segment_length, parse);
        // Segments held earlier may now continue the stream.
        while !gap && self.mode != StreamMode::Done {
            let Some(next) = self.next_sequence else {
                break;
            };
            let ready = self
                .out_of_order
                .iter()
                .position(|(held, _)| next.wrapping_sub(*held) < 1 << 31);
            let Some(index) = ready else {
                break;
            };
            let (held_sequence, held) = self.out_of_order.swap_remove(index);
            gap = self.append_in_order(held_sequence, &held, held.len(), parse);
        }
        gap
    }

    fn hold_out_of_order(
        &mut self,
        sequence: u32,
        payload: &[u8],
        parse: &mut StreamParse<'_, '_>,
    ) -> bool {
        if self.out_of_order.len() >= MAX_OUT_OF_ORDER_SEGMENTS {
            self.stop();
            return true;
        }
        if payload.len() > parse.context.budget_left {
            parse.context.budget_exhausted = true;
            self.stop();
            return false;
        }
        parse.context.budget_left -= payload.len();
        self.out_of_order.push((sequence, payload.to_vec()));
        false
    }

    /// Appends a segment that starts at or before the next expected byte, then parses.
    /// Returns true when bytes that the capture cut off leave a gap in content that
    /// still had to be decoded.
    fn append_in_order(
        &mut self,
        sequence: u32,
        payload: &[u8],
        segment_length: usize,
        parse: &mut StreamParse<'_, '_>,
    ) -> bool {
        let next = self.next_sequence.unwrap_or(sequence);
        let overlap = next.wrapping_sub(sequence) as usize;
        if overlap >= segment_length {
            return false;
        }
        let fresh_length = segment_length - overlap;
        self.next_sequence = Some(next.wrapping_add(fresh_length as u32));
        // Bytes of a body being skipped need not have been captured.
        let skipped = usize::try_from(self.skip)
            .unwrap_or(usize::MAX)
            .min(fresh_length);
        self.skip -= skipped as u64;
        self.buffer_offset += skipped as u64;
        let captured = payload
            .get(overlap.saturating_add(skipped)..)
            .unwrap_or_default();
        let mut missing = (fresh_length - skipped).saturating_sub(captured.len());

        let room = MAX_STREAM_BUFFER.saturating_sub(self.buffer.len());
        let stored = captured.len().min(room).min(parse.context.budget_left);
        if stored < captured.len().min(room) {
            parse.context.budget_exhausted = true;
        }
        parse.context.budget_left -= stored;
        self.buffer
            .extend_from_slice(captured.get(..stored).unwrap_or_default());
        self.parse(parse);

        // The cut-off bytes follow the captured ones. When parsing consumed everything
        // and started skipping a body, the cut-off bytes belong to that body.
        if missing > 0 && self.buffer.is_empty() && self.skip > 0 {
            let covered = usize::try_from(self.skip)
                .unwrap_or(usize::MAX)
                .min(missing);
            self.skip -= covered as u64;
            self.buffer_offset += covered as u64;
            missing -= covered;
        }
        let dropped = stored < captured.len();
        if (missing > 0 || dropped) && self.mode != StreamMode::Done {
            self.stop();
            return missing > 0;
        }
        false
    }

    /// Drops buffered data and stops decoding this direction.
    fn stop(&mut self) {
        self.mode = StreamMode::Done;
        self.buffer = Vec::new();
        self.out_of_order = Vec::new();
        self.tls.handshake = Vec::new();
    }

    fn consume(&mut self, count: usize) {
        let count = count.min(self.buffer.len());
        self.buffer.drain(..count);
        self.buffer_offset += count as u64;
    }

    /// Parses as many whole messages as the buffer holds.
    fn parse(&mut self, parse: &mut StreamParse<'_, '_>) {
        loop {
            if self.skip > 0 && !self.buffer.is_empty() {
                let skipped = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(self.buffer.len());
                self.consume(skipped);
                self.skip -= skipped as u64;
            }
            if self.skip > 0 || self.buffer.is_empty() {
                return;
            }
            let progress = match self.mode {
                StreamMode::Detect => self.detect(parse),
                StreamMode::Http => self.parse_http(parse),
                StreamMode::Tls => self.parse_tls_record(parse),
                StreamMode::DnsOverTcp => self.parse_dns_over_tcp(parse),
                StreamMode::Done => {
                    self.stop();
                    return;
                }
            };
            if progress == Progress::Wait {
                if self.buffer.len() >= MAX_STREAM_BUFFER {
                    self.stop();
                }
                return;
            }
        }
    }

    fn detect(&mut self, parse: &StreamParse<'_, '_>) -> Progress {
        let Some(&[first, second]) = self.buffer.get(..2) else {
            return Progress::Wait;
        };
        // Only the server port marks DNS over TCP: a client's ephemeral port can be 5353.
        if matches!(parse.endpoints.server.port(), 53 | 5353) {
            self.mode = StreamMode::DnsOverTcp;
        } else if (20..=24).contains(&first) && second == 3 {
            self.mode = StreamMode::Tls;
        } else if self.buffer.len() < 8 {
            return Progress::Wait;
        } else if starts_http_message(&self.buffer) {
            self.mode = StreamMode::Http;
        } else {
            self.mode = StreamMode::Done;
        }
        Progress::Continue
    }

    fn parse_dns_over_tcp(&mut self, parse: &mut StreamParse<'_, '_>) -> Progress {
        let Some(length) = read_u16(&self.buffer, 0) else {
            return Progress::Wait;
        };
        let end = 2 + usize::from(length);
        let Some(message) = self.buffer.get(2..end) else {
            return Progress::Wait;
        };
        let (source, destination) = (parse.sender(), parse.receiver());
        let packet = parse.context.packet;
        parse
            .context
            .dns
            .message(packet, message, source, destination, parse.context.log);
        self.consume(end);
        Progress::Continue
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// A message was consumed or the mode changed; parse again.
    Continue,
    /// The buffer ends inside a message.
    Wait,
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

const HTTP_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"CONNECT ",
    b"HEAD ",
    b"PUT ",
    b"OPTIONS ",
    b"DELETE ",
    b"PATCH ",
    b"TRACE ",
];

fn starts_http_message(bytes: &[u8]) -> bool {
    bytes.starts_with(b"HTTP/1.") || HTTP_METHODS.iter().any(|method| bytes.starts_with(method))
}

/// Length of an HTTP message body, when the next message can be found after it.
enum BodyLength {
    Known(u64),
    /// Chunked or delimited by the connection close: the next message cannot be found.
    Unknown,
}

/// Request or status line and the headers that the events use.
struct HttpHead {
    start_line: String,
    host: Option<String>,
    content_length: Option<u64>,
    content_type: Option<String>,
    chunked: bool,
    /// Scheme of the Proxy-Authorization header. The credentials are never kept.
    proxy_authorization_scheme: Option<String>,
}

fn parse_http_head(head: &[u8]) -> HttpHead {
    let mut lines = head
        .split(|&byte| byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let start_line = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let mut parsed = HttpHead {
        start_line,
        host: None,
        content_length: None,
        content_type: None,
        chunked: false,
        proxy_authorization_scheme: None,
    };
    for line in lines {
        let Some(colon) = line.iter().position(|&byte| byte == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(line.get(..colon).unwrap_or_default())
            .trim()
            .to_ascii_lowercase();
        let value = String::from_utf8_lossy(line.get(colon + 1..).unwrap_or_default())
            .trim()
            .to_string();
        match name.as_str() {
            "host" => parsed.host = Some(value),
            "content-length" => parsed.content_length = value.parse().ok(),
            "content-type" => parsed.content_type = Some(value.to_ascii_lowercase()),
            "transfer-encoding" => parsed.chunked = value.to_ascii_lowercase().contains("chunked"),
            "proxy-authorization" => {
                parsed.proxy_authorization_scheme = Some(authorization_scheme(&value));
            }
            _ => {}
        }
    }
    parsed
}

/// Returns the scheme of an authorization header value if it is a standard one, so that
/// no part of the credentials reaches the output.
fn authorization_scheme(value: &str) -> String {
    let scheme = value.split_whitespace().next().unwrap_or_default();
    const SCHEMES: [&str; 6] = ["Basic", "Digest", "NTLM", "Negotiate", "Kerberos", "Bearer"];
    SCHEMES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(scheme))
        .map_or_else(
            || "unrecognized scheme".to_string(),
            |known| (*known).to_string(),
        )
}

impl Stream {
    fn parse_http(&mut self, parse: &mut StreamParse<'_, '_>) -> Progress {
        let Some(head_end) = find_subslice(&self.buffer, b"\r\n\r\n") else {
            return Progress::Wait;
        };
        let head = parse_http_head(self.buffer.get(..head_end).unwrap_or_default());
        let head_length = head_end + 4;
        let body = match parse.side {
            Side::Client => http_request(&head, parse),
            Side::Server => http_response(&head, parse),
        };
        self.consume(head_length);
        match body {
            Some(BodyLength::Known(length)) => {
                if parse.side == Side::Server {
                    parse.http.response_body_end = Some(self.buffer_offset.saturating_add(length));
                }
                self.skip = length;
                // A CONNECT tunnel or a new request may follow, so detect again.
                self.mode = StreamMode::Detect;
            }
            Some(BodyLength::Unknown) | None => self.mode = StreamMode::Done,
        }
        Progress::Continue
    }
}

/// Emits the events of an HTTP request and returns how its body ends, or `None` when
/// the bytes are not a request.
fn http_request(head: &HttpHead, parse: &mut StreamParse<'_, '_>) -> Option<BodyLength> {
    let mut parts = head.start_line.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return None;
    };
    if method.is_empty() || !method.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return None;
    }

    let server = parse.endpoints.server;
    let absolute = target.starts_with("http://") || target.starts_with("https://");
    let (host, path, target_text) = if method == "CONNECT" {
        (target.to_string(), String::new(), target.to_string())
    } else if absolute {
        let (scheme, after_scheme) = target.split_once("://").unwrap_or(("http", target));
        let (authority, path) =
            after_scheme.split_at(after_scheme.find('/').unwrap_or(after_scheme.len()));
        // A user name and password in the URL are dropped from the output.
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let url = format!("{scheme}://{host}{path}");
        (host.to_string(), path.to_string(), url)
    } else {
        let host = head.host.clone().unwrap_or_else(|| server.to_string());
        let url = format!("http://{host}{target}");
        (host, target.to_string(), url)
    };

    let mut summary = format!("{method} {} sent to {server}", clean_field(&target_text));
    if let Some(scheme) = &head.proxy_authorization_scheme {
        let _ = write!(summary, ", with Proxy-Authorization ({scheme})");
    }
    parse.push(
        CaptureEventKind::HttpRequest,
        format!("HTTP request {summary}"),
    );

    let revocation = revocation_fetch(
        &host,
        &path,
        head.content_type.as_deref(),
        absolute.then_some(server),
    );
    if let Some(fetch) = &revocation {
        parse.push(CaptureEventKind::OcspOrCrl, fetch.description.clone());
    }

    if parse.http.requests.len() < MAX_PENDING_HTTP_REQUESTS {
        parse.http.requests.push_back(PendingHttpRequest {
            packet: parse.context.packet,
            method: method.to_string(),
            summary,
            revocation,
        });
    }

    if head.chunked {
        return Some(BodyLength::Unknown);
    }
    Some(BodyLength::Known(head.content_length.unwrap_or(0)))
}

/// Emits the events of an HTTP response and returns how its body ends, or `None` when
/// the bytes are not a response.
fn http_response(head: &HttpHead, parse: &mut StreamParse<'_, '_>) -> Option<BodyLength> {
    if !head.start_line.starts_with("HTTP/") {
        return None;
    }
    let status: u16 = head.start_line.split(' ').nth(1)?.parse().ok()?;
    let status_line = clean_field(&head.start_line);
    let text = format!(
        "HTTP response from {}: {status_line}",
        parse.endpoints.server
    );
    // Error statuses (such as 407 from a proxy) are failures for the event limit.
    parse.context.log.insert(
        parse.context.packet,
        CaptureEventKind::HttpResponse,
        text,
        status >= 400,
    );

    // An interim 1xx response comes before the final response to the same request.
    let request = if (100..200).contains(&status) && status != 101 {
        None
    } else {
        parse.http.requests.pop_front()
    };
    let method = request.as_ref().map(|request| request.method.clone());
    if let Some(fetch) = request.and_then(|request| request.revocation) {
        parse.push(
            CaptureEventKind::OcspOrCrl,
            format!("{} answered: {status_line}", fetch.description),
        );
    }

    let no_body = matches!(method.as_deref(), Some("HEAD"))
        || (100..200).contains(&status)
        || status == 204
        || status == 304
        || (method.as_deref() == Some("CONNECT") && (200..300).contains(&status));
    if no_body {
        parse.http.response_body_end = None;
        return Some(BodyLength::Known(0));
    }

    match head.content_length {
        Some(length) if !head.chunked => Some(BodyLength::Known(length)),
        _ => {
            parse.http.response_body_end = None;
            Some(BodyLength::Unknown)
        }
    }
}

/// Recognises an OCSP or CRL fetch by its host, path or content type.
fn revocation_fetch(
    host: &str,
    path: &str,
    content_type: Option<&str>,
    proxy: Option<SocketAddr>,
) -> Option<RevocationFetch> {
    let host_lower = host.to_ascii_lowercase();
    let path_lower = path
        .split('?')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let host_name = host_lower.split(':').next().unwrap_or_default();
    let is_ocsp = content_type.is_some_and(|value| value.contains("ocsp-request"))
        || host_name.contains("ocsp")
        || path_lower.starts_with("/ocsp");
    let is_crl = path_lower.ends_with(".crl")
        || host_name.starts_with("crl")
        || host_name.contains(".crl.")
        || host_name.contains("-crl.");
    let via = proxy
        .map(|proxy| format!(" via proxy {proxy}"))
        .unwrap_or_default();
    let host = clean_field(host);
    let description = if is_ocsp {
        format!("OCSP request to {host}{via}")
    } else if is_crl {
        format!("CRL request to {host} for {}{via}", clean_field(path))
    } else {
        return None;
    };
    Some(RevocationFetch { description })
}

fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

impl Stream {
    fn parse_tls_record(&mut self, parse: &mut StreamParse<'_, '_>) -> Progress {
        let Some(&[content_type, major_version, _, length_high, length_low]) = self.buffer.get(..5)
        else {
            return Progress::Wait;
        };
        let length = usize::from(u16::from_be_bytes([length_high, length_low]));
        if !(20..=24).contains(&content_type) || major_version != 3 || length > MAX_TLS_RECORD {
            self.mode = StreamMode::Done;
            return Progress::Continue;
        }
        if content_type == 23 {
            // Application data: everything after it in this direction is encrypted.
            self.mode = StreamMode::Done;
            return Progress::Continue;
        }
        let Some(fragment) = self.buffer.get(5..5 + length) else {
            return Progress::Wait;
        };
        match content_type {
            20 => self.tls.encrypted = true,
            // Encrypted alerts are longer than 2 bytes, so a 2-byte alert is clear text.
            21 if length == 2 => {
                if let [level, description] = *fragment {
                    let text = format!(
                        "TLS alert {} ({description}) from {} {} to {} ({})",
                        tls_alert_name(description),
                        parse.side.name(),
                        parse.sender(),
                        parse.receiver(),
                        if level == 2 { "fatal" } else { "warning" },
                    );
                    parse.push(CaptureEventKind::TlsAlert, text);
                }
            }
            22 if !self.tls.encrypted => {
                if fragment.len() > parse.context.budget_left {
                    parse.context.budget_exhausted = true;
                    self.stop();
                    return Progress::Continue;
                }
                let room = MAX_HANDSHAKE_BUFFER.saturating_sub(self.tls.handshake.len());
                let stored = fragment.len().min(room);
                parse.context.budget_left -= stored;
                self.tls
                    .handshake
                    .extend_from_slice(fragment.get(..stored).unwrap_or_default());
                self.tls.parse_handshake(parse);
            }
            _ => {}
        }
        self.consume(5 + length);
        Progress::Continue
    }
}

impl TlsDirection {
    /// Parses the whole handshake messages in the handshake buffer.
    fn parse_handshake(&mut self, parse: &mut StreamParse<'_, '_>) {
        loop {
            let Some(&[message_type, high, middle, low]) = self.handshake.get(..4) else {
                return;
            };
            let length = usize::from(high) << 16 | usize::from(middle) << 8 | usize::from(low);
            let body = self.handshake.get(4..).unwrap_or_default();
            let complete = body.get(..length);
            match (message_type, parse.side) {
                (1, Side::Client) => {
                    let Some(body) = complete else {
                        break;
                    };
                    let text = match client_hello_server_name(body) {
                        Some(name) => format!(
                            "TLS ClientHello SNI {} sent to {}",
                            clean_field(&name),
                            parse.endpoints.server
                        ),
                        None => format!(
                            "TLS ClientHello without SNI sent to {}",
                            parse.endpoints.server
                        ),
                    };
                    parse.push(CaptureEventKind::TlsClientHello, text);
                }
                // The first certificate can be read before the whole chain has arrived.
                (11, Side::Server) if !self.certificate_reported => {
                    if let Some(certificate) = first_certificate(complete.unwrap_or(body)) {
                        self.certificate_reported = true;
                        let text =
                            certificate.describe(parse.endpoints.server, parse.context.packet.time);
                        parse.push(CaptureEventKind::TlsCertificate, text);
                    } else if complete.is_none() {
                        break;
                    }
                }
                _ => {}
            }
            if complete.is_none() {
                break;
            }
            self.handshake.drain(..4 + length);
        }
        if self.handshake.len() >= MAX_HANDSHAKE_BUFFER {
            // A message larger than the buffer: stop decoding this handshake.
            self.handshake = Vec::new();
            self.encrypted = true;
        }
    }
}

/// Returns the host name of the server_name extension of a ClientHello body, or `None`
/// when it has none (or the body is malformed).
fn client_hello_server_name(body: &[u8]) -> Option<String> {
    let mut reader = ByteReader::new(body);
    reader.skip(2 + 32)?;
    let session_id_length = usize::from(reader.u8()?);
    reader.skip(session_id_length)?;
    let cipher_suites_length = usize::from(reader.u16()?);
    reader.skip(cipher_suites_length)?;
    let compression_length = usize::from(reader.u8()?);
    reader.skip(compression_length)?;

    let extensions_length = usize::from(reader.u16()?);
    let mut extensions = ByteReader::new(reader.take(extensions_length)?);
    while !extensions.is_empty() {
        let extension_type = extensions.u16()?;
        let extension_length = usize::from(extensions.u16()?);
        let data = extensions.take(extension_length)?;
        if extension_type != 0 {
            continue;
        }

        let mut names = ByteReader::new(data);
        let list_length = usize::from(names.u16()?);
        let mut list = ByteReader::new(names.take(list_length)?);
        while !list.is_empty() {
            let name_type = list.u8()?;
            let name_length = usize::from(list.u16()?);
            let name = list.take(name_length)?;
            if name_type == 0 {
                return Some(String::from_utf8_lossy(name).into_owned());
            }
        }
    }
    None
}

/// Parses the first certificate of a TLS 1.2 Certificate message body, which may be
/// cut after that certificate.
fn first_certificate(body: &[u8]) -> Option<CertificateSummary> {
    let mut reader = ByteReader::new(body);
    let _list_length = reader.u24()?;
    let certificate_length = usize::try_from(reader.u24()?).ok()?;
    parse_certificate(reader.take(certificate_length)?)
}

/// Returns the name of a TLS alert description code, as the IANA TLS Alerts registry
/// lists it.
fn tls_alert_name(code: u8) -> &'static str {
    match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown_alert",
    }
}

/// Bounds-checked big-endian reader over a byte slice.
struct ByteReader<'a> {
    bytes: &'a [u8],
}

impl<'a> ByteReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        ByteReader { bytes }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        let head = self.bytes.get(..count)?;
        self.bytes = self.bytes.get(count..)?;
        Some(head)
    }

    fn skip(&mut self, count: usize) -> Option<()> {
        self.take(count).map(|_| ())
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        let bytes: [u8; 2] = self.take(2)?.try_into().ok()?;
        Some(u16::from_be_bytes(bytes))
    }

    fn u24(&mut self) -> Option<u32> {
        let bytes = self.take(3)?;
        Some(
            bytes
                .iter()
                .fold(0u32, |value, &byte| value << 8 | u32::from(byte)),
        )
    }
}

// ---------------------------------------------------------------------------
// X.509 certificate names (minimal DER walk)
// ---------------------------------------------------------------------------

/// Subject, issuer and validity of a certificate.
struct CertificateSummary {
    subject: String,
    issuer: String,
    self_signed: bool,
    not_before: Option<DateTime<Utc>>,
    not_after: Option<DateTime<Utc>>,
}

impl CertificateSummary {
    fn describe(&self, server: SocketAddr, now: DateTime<Utc>) -> String {
        let mut text = format!(
            "TLS certificate subject {} issuer {}",
            self.subject, self.issuer
        );
        if self.self_signed {
            text.push_str(" (self-signed)");
        }
        if let (Some(not_before), Some(not_after)) = (self.not_before, self.not_after) {
            let _ = write!(
                text,
                ", valid {} to {}",
                not_before.format("%Y-%m-%d"),
                not_after.format("%Y-%m-%d")
            );
            if now > not_after {
                text.push_str(" (expired at capture time)");
            } else if now < not_before {
                text.push_str(" (not yet valid at capture time)");
            }
        }
        let _ = write!(text, ", from {server}");
        text
    }
}

const DER_SEQUENCE: u8 = 0x30;
const DER_INTEGER: u8 = 0x02;
const DER_SET: u8 = 0x31;
const DER_OID: u8 = 0x06;
const DER_VERSION_TAG: u8 = 0xa0;
/// OID 2.5.4.3 (commonName) without tag and length.
const OID_COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];
/// OID 2.5.4.10 (organizationName) without tag and length.
const OID_ORGANIZATION: [u8; 3] = [0x55, 0x04, 0x0a];

/// Reads one DER element and returns its tag, content and the bytes after it.
/// Only single-byte tags and definite lengths of up to 4 bytes are accepted.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first_length = *input.get(1)?;
    let (length, header) = if first_length < 0x80 {
        (usize::from(first_length), 2)
    } else {
        let count = usize::from(first_length & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = input.get(2..2 + count)?;
        let length = bytes
            .iter()
            .fold(0usize, |value, &byte| value << 8 | usize::from(byte));
        (length, 2 + count)
    };
    let end = header.checked_add(length)?;
    let content = input.get(header..end)?;
    let rest = input.get(end..)?;
    Some((tag, content, rest))
}

fn der_expect(input: &[u8], expected: u8) -> Option<(&[u8], &[u8])> {
    let (tag, content, rest) = der_element(input)?;
    (tag == expected).then_some((content, rest))
}

fn parse_certificate(der: &[u8]) -> Option<CertificateSummary> {
    let (certificate, _) = der_expect(der, DER_SEQUENCE)?;
    let (tbs, _) = der_expect(certificate, DER_SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&DER_VERSION_TAG) {
        rest = der_element(rest)?.2;
    }
    rest = der_expect(rest, DER_INTEGER)?.1;
    rest = der_expect(rest, DER_SEQUENCE)?.1;
    let (issuer, after_issuer) = der_expect(rest, DER_SEQUENCE)?;
    let (validity, after_validity) = der_expect(after_issuer, DER_SEQUENCE)?;
    let (subject, _) = der_expect(after_validity, DER_SEQUENCE)?;
    let (not_before, not_after) = parse_validity(validity);
    Some(CertificateSummary {
        subject: describe_name(subject),
        issuer: describe_name(issuer),
        self_signed: subject == issuer,
        not_before,
        not_after,
    })
}

/// Formats the common name and organization of a DER Name as `CN=..., O=...`.
fn describe_name(name: &[u8]) -> String {
    let mut common_names = Vec::new();
    let mut organizations = Vec::new();
    let mut sets = name;
    while let Some((set, rest)) = der_expect(sets, DER_SET) {
        sets = rest;
        let mut attributes = set;
        while let Some((attribute, rest)) = der_expect(attributes, DER_SEQUENCE) {
            attributes = rest;
            let Some((oid, value)) = der_expect(attribute, DER_OID) else {
                continue;
            };
            let Some((tag, content, _)) = der_element(value) else {
                continue;
            };
            let Some(text) = decode_der_string(tag, content) else {
                continue;
            };
            if oid == OID_COMMON_NAME {
                common_names.push(format!("CN={}", clean_field(&text)));
            } else if oid == OID_ORGANIZATION {
                organizations.push(format!("O={}", clean_field(&text)));
            }
        }
    }
    let parts: Vec<String> = common_names.into_iter().chain(organizations).collect();
    if parts.is_empty() {
        "(no CN or O)".to_string()
    } else {
        parts.join(", ")
    }
}

/// Decodes the DER string types that certificate names use.
fn decode_der_string(tag: u8, content: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, VisibleString
        0x0c | 0x13 | 0x16 | 0x1a => Some(String::from_utf8_lossy(content).into_owned()),
        // TeletexString, decoded as Latin-1. T.61 differs from Latin-1 above 0x7F, so
        // such characters may come out wrong.
        0x14 => Some(content.iter().map(|&byte| char::from(byte)).collect()),
        // BMPString (UTF-16 big-endian)
        0x1e => {
            let units: Vec<u16> = content
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        // UniversalString (UTF-32 big-endian)
        0x1c => Some(
            content
                .chunks_exact(4)
                .map(|quad| {
                    char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]))
                        .unwrap_or(char::REPLACEMENT_CHARACTER)
                })
                .collect(),
        ),
        _ => None,
    }
}

fn parse_validity(validity: &[u8]) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let Some((tag, content, rest)) = der_element(validity) else {
        return (None, None);
    };
    let not_before = parse_der_time(tag, content);
    let not_after = der_element(rest).and_then(|(tag, content, _)| parse_der_time(tag, content));
    (not_before, not_after)
}

/// Parses a UTCTime (tag 0x17, two-digit year: 50-99 means 19xx) or GeneralizedTime
/// (tag 0x18) in the `...Z` form that RFC 5280 requires.
fn parse_der_time(tag: u8, content: &[u8]) -> Option<DateTime<Utc>> {
    let text = std::str::from_utf8(content).ok()?;
    let digits = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let short: i32 = digits.get(..2)?.parse().ok()?;
            (
                if short < 50 {
                    2000 + short
                } else {
                    1900 + short
                },
                digits.get(2..)?,
            )
        }
        0x18 => (digits.get(..4)?.parse().ok()?, digits.get(4..)?),
        _ => return None,
    };
    let field = |range: std::ops::Range<usize>| -> Option<u32> { rest.get(range)?.parse().ok() };
    let date = NaiveDate::from_ymd_opt(year, field(0..2)?, field(2..4)?)?;
    let time = date.and_hms_opt(field(4..6)?, field(6..8)?, field(8..10).unwrap_or(0))?;
    Some(time.and_utc())
}

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

/// Makes text from a packet safe for a one-line event: control characters become `?`
/// and the text is cut to [`MAX_FIELD_CHARS`] characters.
fn clean_field(text: &str) -> String {
    let mut cleaned: String = text
        .chars()
        .take(MAX_FIELD_CHARS)
        .map(|character| {
            if character.is_control() {
                '?'
            } else {
                character
            }
        })
        .collect();
    if text.chars().nth(MAX_FIELD_CHARS).is_some() {
        cleaned.push_str("...");
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    const HTTP_200: &[u8] = include_bytes!("../fixtures/captures/http-200.pcap");
    const PROXY_407: &[u8] = include_bytes!("../fixtures/captures/proxy-407.pcap");
    const PROXY_502: &[u8] = include_bytes!("../fixtures/captures/proxy-502.pcap");
    const TLS_UNKNOWN_CA: &[u8] = include_bytes!("../fixtures/captures/tls-unknown-ca.pcap");
    const TCP_REFUSED: &[u8] = include_bytes!("../fixtures/captures/tcp-refused.pcap");
    const TCP_TIMEOUT: &[u8] = include_bytes!("../fixtures/captures/tcp-timeout.pcap");
    const DOWNLOAD_CUT: &[u8] = include_bytes!("../fixtures/captures/download-cut.pcap");
    const OCSP_CRL: &[u8] = include_bytes!("../fixtures/captures/ocsp-crl.pcap");
    const DNS_NXDOMAIN: &[u8] = include_bytes!("../fixtures/captures/dns-nxdomain.pcapng");

    const FIXTURES: [(&str, &[u8]); 9] = [
        ("http-200.pcap", HTTP_200),
        ("proxy-407.pcap", PROXY_407),
        ("proxy-502.pcap", PROXY_502),
        ("tls-unknown-ca.pcap", TLS_UNKNOWN_CA),
        ("tcp-refused.pcap", TCP_REFUSED),
        ("tcp-timeout.pcap", TCP_TIMEOUT),
        ("download-cut.pcap", DOWNLOAD_CUT),
        ("ocsp-crl.pcap", OCSP_CRL),
        ("dns-nxdomain.pcapng", DNS_NXDOMAIN),
    ];

    fn read(bytes: &[u8]) -> CaptureReport {
        read_capture(bytes).expect("capture should be readable")
    }

    fn texts(report: &CaptureReport, kind: CaptureEventKind) -> Vec<&str> {
        report
            .events
            .iter()
            .filter(|event| event.kind == kind)
            .map(|event| event.text.as_str())
            .collect()
    }

    fn all_texts(report: &CaptureReport) -> Vec<(CaptureEventKind, String)> {
        report
            .events
            .iter()
            .map(|event| (event.kind, event.text.clone()))
            .collect()
    }

    /// One packet record of a legacy pcap file.
    #[derive(Clone)]
    struct Record {
        seconds: u32,
        nanos: u32,
        data: Vec<u8>,
        original_length: u32,
    }

    /// Reads the link type and records of a little-endian pcap fixture.
    fn pcap_records(bytes: &[u8]) -> (i32, Vec<Record>) {
        let (mut input, header) = pcap_parser::parse_pcap_header(bytes).expect("pcap header");
        let scale = if header.is_nanosecond_precision() {
            1
        } else {
            1_000
        };
        let mut records = Vec::new();
        while !input.is_empty() {
            let (rest, frame) = pcap_parser::parse_pcap_frame(input).expect("pcap frame");
            records.push(Record {
                seconds: frame.ts_sec,
                nanos: frame.ts_usec * scale,
                data: frame.data.to_vec(),
                original_length: frame.origlen,
            });
            input = rest;
        }
        (header.network.0, records)
    }

    fn push_u16(out: &mut Vec<u8>, value: u16, big_endian: bool) {
        if big_endian {
            out.extend_from_slice(&value.to_be_bytes());
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }

    fn push_u32(out: &mut Vec<u8>, value: u32, big_endian: bool) {
        if big_endian {
            out.extend_from_slice(&value.to_be_bytes());
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// Writes a pcap file with microsecond or nanosecond timestamps.
    fn write_pcap(
        linktype: u32,
        big_endian: bool,
        nanoseconds: bool,
        records: &[Record],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let magic = if nanoseconds {
            0xa1b2_3c4d
        } else {
            0xa1b2_c3d4
        };
        push_u32(&mut out, magic, big_endian);
        push_u16(&mut out, 2, big_endian);
        push_u16(&mut out, 4, big_endian);
        push_u32(&mut out, 0, big_endian);
        push_u32(&mut out, 0, big_endian);
        push_u32(&mut out, 262_144, big_endian);
        push_u32(&mut out, linktype, big_endian);
        for record in records {
            let fraction = if nanoseconds {
                record.nanos
            } else {
                record.nanos / 1_000
            };
            push_u32(&mut out, record.seconds, big_endian);
            push_u32(&mut out, fraction, big_endian);
            push_u32(&mut out, record.data.len() as u32, big_endian);
            push_u32(&mut out, record.original_length, big_endian);
            out.extend_from_slice(&record.data);
        }
        out
    }

    /// Writes a one-interface pcapng file whose timestamps use resolution 10^-9.
    fn write_pcapng(linktype: u16, big_endian: bool, records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        // Section Header Block
        push_u32(&mut out, 0x0a0d_0d0a, big_endian);
        push_u32(&mut out, 28, big_endian);
        push_u32(&mut out, 0x1a2b_3c4d, big_endian);
        push_u16(&mut out, 1, big_endian);
        push_u16(&mut out, 0, big_endian);
        out.extend_from_slice(&[0xff; 8]);
        push_u32(&mut out, 28, big_endian);

        // Interface Description Block with if_tsresol = 9 and opt_endofopt
        push_u32(&mut out, 1, big_endian);
        push_u32(&mut out, 32, big_endian);
        push_u16(&mut out, linktype, big_endian);
        push_u16(&mut out, 0, big_endian);
        push_u32(&mut out, 262_144, big_endian);
        push_u16(&mut out, 9, big_endian);
        push_u16(&mut out, 1, big_endian);
        out.extend_from_slice(&[9, 0, 0, 0]);
        push_u32(&mut out, 0, big_endian);
        push_u32(&mut out, 32, big_endian);

        // Enhanced Packet Blocks
        for record in records {
            let padded = record.data.len().div_ceil(4) * 4;
            let block_length = (32 + padded) as u32;
            let units = u64::from(record.seconds) * 1_000_000_000 + u64::from(record.nanos);
            push_u32(&mut out, 6, big_endian);
            push_u32(&mut out, block_length, big_endian);
            push_u32(&mut out, 0, big_endian);
            push_u32(&mut out, (units >> 32) as u32, big_endian);
            push_u32(&mut out, units as u32, big_endian);
            push_u32(&mut out, record.data.len() as u32, big_endian);
            push_u32(&mut out, record.original_length, big_endian);
            out.extend_from_slice(&record.data);
            out.resize(out.len() + padded - record.data.len(), 0);
            push_u32(&mut out, block_length, big_endian);
        }
        out
    }

    /// Replaces the 14-byte Ethernet header of each record with `prefix`.
    fn relink(records: &[Record], prefix: &[u8]) -> Vec<Record> {
        records
            .iter()
            .map(|record| {
                let mut data = prefix.to_vec();
                data.extend_from_slice(&record.data[14..]);
                let original_length = record.original_length - 14 + prefix.len() as u32;
                Record {
                    data,
                    original_length,
                    ..record.clone()
                }
            })
            .collect()
    }

    /// Wraps one raw IP packet, captured whole, as a record at the given second.
    fn raw_record(seconds: u32, packet: Vec<u8>) -> Record {
        Record {
            seconds,
            nanos: 0,
            original_length: packet.len() as u32,
            data: packet,
        }
    }

    fn tcp_syn(client: ([u8; 4], u16), server: ([u8; 4], u16), sequence: u32) -> Vec<u8> {
        let mut packet = Vec::new();
        PacketBuilder::ipv4(client.0, server.0, 64)
            .tcp(client.1, server.1, sequence, 64_240)
            .syn()
            .write(&mut packet, &[])
            .expect("SYN packet");
        packet
    }

    fn udp_packet(source: ([u8; 4], u16), destination: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
        let mut packet = Vec::new();
        PacketBuilder::ipv4(source.0, destination.0, 64)
            .udp(source.1, destination.1)
            .write(&mut packet, payload)
            .expect("UDP packet");
        packet
    }

    fn icmp_unreachable(router: [u8; 4], client: [u8; 4], code: u8, quoted: &[u8]) -> Vec<u8> {
        let mut packet = Vec::new();
        PacketBuilder::ipv4(router, client, 64)
            .icmpv4_raw(3, code, [0; 4])
            .write(&mut packet, quoted)
            .expect("ICMP packet");
        packet
    }

    /// Builds a DNS query for an A record of `name`.
    fn dns_query(id: u16, name: &str) -> Vec<u8> {
        let mut message = Vec::new();
        message.extend_from_slice(&id.to_be_bytes());
        message.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.') {
            message.push(label.len() as u8);
            message.extend_from_slice(label.as_bytes());
        }
        message.extend_from_slice(&[0, 0, 1, 0, 1]);
        message
    }

    #[test]
    fn is_capture_recognises_magic_numbers() {
        let cases: [(&[u8], bool); 10] = [
            (&[0xd4, 0xc3, 0xb2, 0xa1], true),
            (&[0xa1, 0xb2, 0xc3, 0xd4], true),
            (&[0x4d, 0x3c, 0xb2, 0xa1], true),
            (&[0xa1, 0xb2, 0x3c, 0x4d], true),
            (&[0x34, 0xcd, 0xb2, 0xa1], true),
            (
                &[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a],
                true,
            ),
            (
                &[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 0x1a, 0x2b, 0x3c, 0x4d],
                true,
            ),
            (&[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4], false),
            (b"PK\x03\x04", false),
            (&[0xd4, 0xc3], false),
        ];
        for (bytes, expected) in cases {
            assert_eq!(is_capture(bytes), expected, "is_capture({bytes:02x?})");
        }
        for (name, bytes) in FIXTURES {
            assert!(is_capture(bytes), "{name} should be recognised");
        }
    }

    #[test]
    fn read_capture_rejects_other_files() {
        let cases: [&[u8]; 4] = [
            b"",
            b"PK\x03\x04 a zip file",
            b"\xd4\xc3",
            b"plain text log line\n",
        ];
        for bytes in cases {
            let result = read_capture(bytes);
            assert!(
                matches!(result, Err(CaptureError::NotACapture)),
                "{bytes:?} gave {result:?}"
            );
        }
    }

    #[test]
    fn read_capture_reports_truncated_file_header() {
        for (name, bytes) in [("pcap", HTTP_200), ("pcapng", DNS_NXDOMAIN)] {
            let result = read_capture(&bytes[..10]);
            assert!(
                matches!(result, Err(CaptureError::TruncatedHeader { length: 10 })),
                "{name}: {result:?}"
            );
        }
    }

    #[test]
    fn header_only_pcap_has_no_packets() {
        let report = read(&HTTP_200[..24]);
        assert_eq!(report.packets, 0);
        assert!(report.events.is_empty());
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[test]
    fn http_200_fixture_shows_healthy_download() {
        let report = read(HTTP_200);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);

        let connected = texts(&report, CaptureEventKind::TcpConnected);
        assert_eq!(connected.len(), 2, "{connected:?}");
        assert!(
            connected[0].starts_with("TCP connect 127.0.0.1:"),
            "{connected:?}"
        );
        assert!(connected[0].ends_with(" established"), "{connected:?}");
        assert!(
            connected[1].contains(" closed by server (FIN) after "),
            "{connected:?}"
        );

        let requests = texts(&report, CaptureEventKind::HttpRequest);
        assert_eq!(requests.len(), 1, "{requests:?}");
        assert!(requests[0].starts_with("HTTP request GET http://tetra-defs.amp.cisco.com:"));
        assert!(requests[0].contains("/tetra/defs.bin sent to 127.0.0.1:"));

        let responses = texts(&report, CaptureEventKind::HttpResponse);
        assert_eq!(responses.len(), 1, "{responses:?}");
        assert!(responses[0].starts_with("HTTP response from 127.0.0.1:"));
        assert!(responses[0].ends_with(": HTTP/1.0 200 OK"));

        for kind in [
            CaptureEventKind::TcpReset,
            CaptureEventKind::TcpRefused,
            CaptureEventKind::TcpNoAnswer,
            CaptureEventKind::DnsError,
        ] {
            assert!(
                texts(&report, kind).is_empty(),
                "unexpected {kind:?} events"
            );
        }
    }

    #[test]
    fn events_are_in_packet_order() {
        for (name, bytes) in FIXTURES {
            let report = read(bytes);
            let numbers: Vec<u64> = report.events.iter().map(|event| event.packet).collect();
            let mut sorted = numbers.clone();
            sorted.sort_unstable();
            assert_eq!(numbers, sorted, "{name}");
            assert!(
                numbers
                    .iter()
                    .all(|&number| number >= 1 && number <= report.packets),
                "{name}: packet numbers {numbers:?} outside 1..={}",
                report.packets
            );
        }
    }

    #[test]
    fn proxy_407_fixture_shows_rejected_connect() {
        let report = read(PROXY_407);
        let requests = texts(&report, CaptureEventKind::HttpRequest);
        assert_eq!(
            requests,
            [
                "HTTP request CONNECT tetra-defs.amp.cisco.com:443 sent to 127.0.0.1:3128",
                "HTTP request CONNECT tetra-defs.amp.cisco.com:443 sent to 127.0.0.1:3128, \
                 with Proxy-Authorization (Basic)",
            ]
        );
        let responses = texts(&report, CaptureEventKind::HttpResponse);
        assert_eq!(
            responses,
            ["HTTP response from 127.0.0.1:3128: HTTP/1.1 407 Proxy Authentication Required"; 2]
        );
        // curl may reset the connection after the complete 407 response.
        let resets = texts(&report, CaptureEventKind::TcpReset);
        assert!(resets.is_empty(), "{resets:?}");
    }

    #[test]
    fn proxy_credentials_never_reach_output() {
        let report = read(PROXY_407);
        let serialized = serde_json::to_string(&report).expect("report serializes");
        // The fixture's client sent amp-updater:Fixture-Secret-7 as Basic credentials.
        for secret in [
            "Fixture-Secret-7",
            "YW1wLXVwZGF0ZXI6Rml4dHVyZS1TZWNyZXQtNw==",
        ] {
            assert!(!serialized.contains(secret), "output contains {secret}");
        }
    }

    #[test]
    fn proxy_407_fixture_keeps_nanoseconds() {
        let report = read(PROXY_407);
        let sub_microsecond = report
            .events
            .iter()
            .filter(|event| event.time.timestamp_subsec_nanos() % 1_000 != 0)
            .count();
        assert!(sub_microsecond > 0, "no event has nanosecond digits");
    }

    #[test]
    fn proxy_502_fixture_shows_bad_gateway() {
        let report = read(PROXY_502);
        let responses = texts(&report, CaptureEventKind::HttpResponse);
        assert_eq!(
            responses,
            ["HTTP response from 127.0.0.1:3128: HTTP/1.1 502 Bad Gateway"; 2]
        );
        let resets = texts(&report, CaptureEventKind::TcpReset);
        assert!(resets.is_empty(), "{resets:?}");
    }

    #[test]
    fn tls_unknown_ca_fixture_shows_certificate_and_alert() {
        let report = read(TLS_UNKNOWN_CA);
        let hello = texts(&report, CaptureEventKind::TlsClientHello);
        assert_eq!(hello.len(), 1, "{hello:?}");
        assert!(
            hello[0].starts_with("TLS ClientHello SNI tetra-defs.amp.cisco.com sent to 127.0.0.1:")
        );
        let certificates = texts(&report, CaptureEventKind::TlsCertificate);
        assert_eq!(certificates.len(), 1, "{certificates:?}");
        assert!(
            certificates[0].starts_with(
                "TLS certificate subject CN=tetra-defs.amp.cisco.com, O=Example Corp \
                 issuer CN=Example TLS Inspection CA, O=Example Corp, valid "
            ),
            "{certificates:?}"
        );
        assert!(!certificates[0].contains("self-signed"));
        assert!(!certificates[0].contains("expired"));
        let alerts = texts(&report, CaptureEventKind::TlsAlert);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert!(alerts[0].starts_with("TLS alert unknown_ca (48) from client 127.0.0.1:"));
        assert!(alerts[0].ends_with("(fatal)"));
        assert!(texts(&report, CaptureEventKind::TcpReset).is_empty());
    }

    #[test]
    fn tcp_refused_fixture_reads_sll2_and_ipv6() {
        let report = read(TCP_REFUSED);
        let (linktype, _) = pcap_records(TCP_REFUSED);
        assert_eq!(linktype, Linktype::LINUX_SLL2.0);
        let refused = texts(&report, CaptureEventKind::TcpRefused);
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(
            refused[0].starts_with("TCP connect 127.0.0.1:"),
            "{refused:?}"
        );
        assert!(refused[0].ends_with(" refused (RST)"), "{refused:?}");
        assert!(refused[1].starts_with("TCP connect [::1]:"), "{refused:?}");
        assert!(refused[1].ends_with(" refused (RST)"), "{refused:?}");
    }

    #[test]
    fn tcp_timeout_fixture_reports_unanswered_syn() {
        let report = read(TCP_TIMEOUT);
        let unanswered = texts(&report, CaptureEventKind::TcpNoAnswer);
        assert_eq!(unanswered.len(), 1, "{unanswered:?}");
        assert!(unanswered[0].contains(" SYN unanswered (timed out), 2 SYNs sent over 1.0 s"));
        assert_eq!(report.events[0].packet, 1);
    }

    #[test]
    fn download_cut_fixture_reports_reset_and_early_fin() {
        let report = read(DOWNLOAD_CUT);
        let resets = texts(&report, CaptureEventKind::TcpReset);
        assert_eq!(resets.len(), 2, "{resets:?}");
        assert!(resets[0].ends_with(" reset by peer after 3083 bytes (RST from server)"));
        assert!(resets[1].ends_with(
            " closed by server (FIN) with 97000 bytes of the HTTP response body remaining, after 3083 bytes"
        ));
    }

    #[test]
    fn ocsp_crl_fixture_reports_answered_and_unanswered_fetches() {
        let report = read(OCSP_CRL);
        let fetches = texts(&report, CaptureEventKind::OcspOrCrl);
        assert_eq!(fetches.len(), 4, "{fetches:?}");
        assert!(fetches[0].starts_with("OCSP request to commercial.ocsp.identrust.com"));
        assert!(fetches[1].starts_with("OCSP request to commercial.ocsp.identrust.com"));
        assert!(fetches[1].ends_with(" answered: HTTP/1.1 200 OK"));
        assert!(fetches[2].starts_with("CRL request to validation.identrust.com"));
        assert!(fetches[2].ends_with(" for /crl/hydrantidcao1.crl"));
        assert!(fetches[3].ends_with(" for /crl/hydrantidcao1.crl got no answer"));
    }

    #[test]
    fn dns_fixture_reports_each_outcome() {
        let report = read(DNS_NXDOMAIN);
        assert_eq!(report.packets, 17);
        let queries = texts(&report, CaptureEventKind::DnsQuery);
        assert_eq!(queries.len(), 5, "{queries:?}");
        assert_eq!(
            queries[0],
            "DNS query A tetra-defs.amp.cisco.com sent to 127.0.0.1:5353"
        );
        let errors = texts(&report, CaptureEventKind::DnsError);
        assert_eq!(
            errors,
            [
                "DNS error NXDOMAIN (DNS_ERROR_RCODE_NAME_ERROR) for tetra-defs.amp.cisco.com from 127.0.0.1:5353",
                "DNS error SERVFAIL (DNS_ERROR_RCODE_SERVER_FAILURE) for tetra-defs.eu.amp.cisco.com from 127.0.0.1:5353",
                "DNS query for cloud-ec-asn.amp.cisco.com got no answer (A, 1 query to 127.0.0.1:5353)",
            ]
        );
        let answers = texts(&report, CaptureEventKind::DnsAnswer);
        assert_eq!(
            answers,
            [
                "DNS answer tetra-defs.apjc.amp.cisco.com A 192.0.2.10",
                // Sent over TCP.
                "DNS answer policy.amp.cisco.com A 192.0.2.20",
            ]
        );
    }

    #[test]
    fn truncated_last_packet_keeps_earlier_events() {
        let full = read(PROXY_407);
        let (_, records) = pcap_records(PROXY_407);
        let last_length = records.last().map_or(0, |record| record.data.len());
        // Cutting half of the last packet's data leaves its record incomplete.
        let cut = read(&PROXY_407[..PROXY_407.len() - last_length / 2]);
        assert_eq!(cut.packets, full.packets - 1);
        assert_eq!(cut.warnings.len(), 1, "{:?}", cut.warnings);
        let expected_start = format!("the capture is truncated after packet {}:", cut.packets);
        assert!(
            cut.warnings[0].starts_with(&expected_start),
            "{:?}",
            cut.warnings
        );
        let earlier: Vec<&CaptureEvent> = full
            .events
            .iter()
            .filter(|event| event.packet < full.packets)
            .collect();
        let remaining: Vec<&CaptureEvent> = cut.events.iter().collect();
        assert_eq!(remaining, earlier);
    }

    #[test]
    fn every_prefix_of_every_fixture_reads_without_panic() {
        for (name, bytes) in FIXTURES {
            for length in 0..bytes.len() {
                let result = read_capture(&bytes[..length]);
                if let Ok(report) = result {
                    assert!(report.packets <= 20, "{name} cut at {length}");
                }
            }
        }
    }

    #[test]
    fn link_types_and_byte_orders_give_same_events() {
        let expected = all_texts(&read(HTTP_200));
        let (_, records) = pcap_records(HTTP_200);
        let mut sll = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
        sll.extend_from_slice(&[0x08, 0x00]);
        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1, 0x03, 0x04, 0, 6];
        sll2.extend_from_slice(&[0; 8]);
        let variants: [(&str, Vec<u8>); 9] = [
            ("big-endian pcap", write_pcap(1, true, false, &records)),
            ("nanosecond pcap", write_pcap(1, false, true, &records)),
            (
                "raw IP",
                write_pcap(101, false, false, &relink(&records, &[])),
            ),
            (
                "LINKTYPE_IPV4",
                write_pcap(228, false, false, &relink(&records, &[])),
            ),
            (
                "NULL little-endian",
                write_pcap(0, false, false, &relink(&records, &[2, 0, 0, 0])),
            ),
            (
                "NULL big-endian",
                write_pcap(0, true, false, &relink(&records, &[0, 0, 0, 2])),
            ),
            (
                "LOOP",
                write_pcap(108, false, false, &relink(&records, &[0, 0, 0, 2])),
            ),
            (
                "SLL",
                write_pcap(113, false, false, &relink(&records, &sll)),
            ),
            (
                "SLL2",
                write_pcap(276, false, false, &relink(&records, &sll2)),
            ),
        ];
        for (name, bytes) in variants {
            let report = read(&bytes);
            assert_eq!(all_texts(&report), expected, "{name}");
            assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
        }
    }

    #[test]
    fn pcapng_in_both_byte_orders_keeps_times() {
        let expected = read(HTTP_200);
        let (_, records) = pcap_records(HTTP_200);
        for big_endian in [false, true] {
            let report = read(&write_pcapng(1, big_endian, &records));
            assert_eq!(report.packets, expected.packets, "big_endian={big_endian}");
            assert_eq!(report.events, expected.events, "big_endian={big_endian}");
        }
    }

    #[test]
    fn unsupported_link_type_gives_one_warning() {
        let (_, records) = pcap_records(HTTP_200);
        let report = read(&write_pcap(147, false, false, &records));
        assert_eq!(report.packets, records.len() as u64);
        assert!(report.events.is_empty());
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        let expected = format!(
            "skipped {} packets with unsupported link type 147",
            records.len()
        );
        assert!(
            report.warnings[0].starts_with(&expected),
            "{:?}",
            report.warnings
        );
    }

    /// Returns the indices of Ethernet records that carry TCP payload from the server,
    /// which is the destination of the first record (the SYN).
    fn server_data_indices(records: &[Record]) -> Vec<usize> {
        let ports = |record: &Record| {
            let sliced = LaxSlicedPacket::from_ethernet(&record.data).expect("Ethernet frame");
            match sliced.transport {
                Some(TransportSlice::Tcp(tcp)) => (
                    tcp.source_port(),
                    tcp.destination_port(),
                    tcp.payload().len(),
                ),
                _ => panic!("fixture record without TCP"),
            }
        };
        let (_, server_port, _) = ports(&records[0]);
        (0..records.len())
            .filter(|&index| {
                let (source, _, length) = ports(&records[index]);
                source == server_port && length > 0
            })
            .collect()
    }

    #[test]
    fn reordered_segments_are_reassembled() {
        let expected = all_texts(&read(HTTP_200));
        let (_, mut records) = pcap_records(HTTP_200);
        // The server sends the response head and body in separate segments; the body
        // is delivered first here.
        let data = server_data_indices(&records);
        assert!(
            data.len() >= 2,
            "fixture needs two server segments: {data:?}"
        );
        records.swap(data[0], data[1]);
        let report = read(&write_pcap(1, false, false, &records));
        assert_eq!(all_texts(&report), expected);
    }

    #[test]
    fn lost_segment_gives_gap_warning() {
        let (_, mut records) = pcap_records(HTTP_200);
        let data = server_data_indices(&records);
        assert!(
            data.len() >= 2,
            "fixture needs two server segments: {data:?}"
        );
        // The first server segment carries the response head.
        records.remove(data[0]);
        let report = read(&write_pcap(1, false, false, &records));
        assert!(texts(&report, CaptureEventKind::HttpResponse).is_empty());
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].starts_with("1 TCP streams miss segments"));
    }

    #[test]
    fn client_reset_mid_download_is_reported() {
        let (_, records) = pcap_records(HTTP_200);
        let data = server_data_indices(&records);
        // Keep the response head and the client's ACK of it, and turn that ACK into
        // RST+ACK, as a client that gives up during the body sends it.
        let mut cut: Vec<Record> = records[..data[0] + 2].to_vec();
        let reset = cut.last_mut().expect("records");
        reset.data[14 + 20 + 13] |= 0x04;
        let report = read(&write_pcap(1, false, false, &cut));
        let resets = texts(&report, CaptureEventKind::TcpReset);
        assert_eq!(resets.len(), 1, "{resets:?}");
        assert!(
            resets[0].contains(" aborted by client (RST) after "),
            "{resets:?}"
        );
    }

    #[test]
    fn unanswered_http_request_is_reported() {
        let (_, records) = pcap_records(HTTP_200);
        let data = server_data_indices(&records);
        // End the capture before the server's first data segment.
        let report = read(&write_pcap(1, false, false, &records[..data[0]]));
        let requests = texts(&report, CaptureEventKind::HttpRequest);
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert!(requests[1].starts_with("HTTP request GET http://tetra-defs.amp.cisco.com:"));
        assert!(requests[1].ends_with(" got no response"), "{requests:?}");
    }

    #[test]
    fn snapshot_length_cut_keeps_headers_and_byte_counts() {
        let (_, records) = pcap_records(DOWNLOAD_CUT);
        let cut: Vec<Record> = records
            .iter()
            .map(|record| Record {
                data: record.data[..record.data.len().min(250)].to_vec(),
                ..record.clone()
            })
            .collect();
        let report = read(&write_pcap(1, false, false, &cut));
        assert_eq!(all_texts(&report), all_texts(&read(DOWNLOAD_CUT)));
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[test]
    fn icmp_port_unreachable_refuses_connect() {
        let client = [10, 0, 0, 5];
        let server = [192, 0, 2, 10];
        let syn = tcp_syn((client, 51_000), (server, 443), 1_000);
        let quoted = syn[..28].to_vec();
        let records = [
            raw_record(100, syn),
            raw_record(100, icmp_unreachable(server, client, 3, &quoted)),
        ];
        let report = read(&write_pcap(101, false, false, &records));
        assert_eq!(
            texts(&report, CaptureEventKind::TcpRefused),
            ["TCP connect 10.0.0.5:51000 -> 192.0.2.10:443 refused (ICMP port unreachable from 192.0.2.10)"]
        );
        assert!(texts(&report, CaptureEventKind::TcpNoAnswer).is_empty());
    }

    #[test]
    fn icmp_host_unreachable_fails_connect() {
        let client = [10, 0, 0, 5];
        let router = [10, 0, 0, 1];
        let syn = tcp_syn((client, 51_000), ([192, 0, 2, 10], 443), 1_000);
        let quoted = syn[..28].to_vec();
        let records = [
            raw_record(100, syn),
            raw_record(101, icmp_unreachable(router, client, 1, &quoted)),
        ];
        let report = read(&write_pcap(101, false, false, &records));
        assert_eq!(
            texts(&report, CaptureEventKind::TcpNoAnswer),
            ["TCP connect 10.0.0.5:51000 -> 192.0.2.10:443 failed: ICMP destination unreachable (host unreachable) from 10.0.0.1"]
        );
    }

    #[test]
    fn icmp_port_unreachable_answers_dns_query() {
        let client = ([10, 0, 0, 5], 50_000);
        let resolver = ([10, 0, 0, 53], 53);
        let query = udp_packet(
            client,
            resolver,
            &dns_query(0x1234, "tetra-defs.amp.cisco.com"),
        );
        let records = [
            raw_record(100, query.clone()),
            raw_record(100, icmp_unreachable(resolver.0, client.0, 3, &query)),
        ];
        let report = read(&write_pcap(101, false, false, &records));
        assert_eq!(
            texts(&report, CaptureEventKind::DnsError),
            ["DNS query for tetra-defs.amp.cisco.com got ICMP destination unreachable (port unreachable) from 10.0.0.53"]
        );
    }

    #[test]
    fn dns_retransmission_is_reported_once() {
        let client = ([10, 0, 0, 5], 50_000);
        let resolver = ([10, 0, 0, 53], 53);
        let query = udp_packet(client, resolver, &dns_query(7, "tetra-defs.amp.cisco.com"));
        let records = [raw_record(100, query.clone()), raw_record(101, query)];
        let report = read(&write_pcap(101, false, false, &records));
        assert_eq!(
            texts(&report, CaptureEventKind::DnsQuery),
            ["DNS query A tetra-defs.amp.cisco.com sent to 10.0.0.53:53"]
        );
        assert_eq!(
            texts(&report, CaptureEventKind::DnsError),
            ["DNS query for tetra-defs.amp.cisco.com got no answer (A, 1 query to 10.0.0.53:53)"]
        );
    }

    #[test]
    fn multicast_dns_is_ignored() {
        let query = udp_packet(
            ([10, 0, 0, 5], 5353),
            ([224, 0, 0, 251], 5353),
            &dns_query(0, "printer.local"),
        );
        let report = read(&write_pcap(101, false, false, &[raw_record(100, query)]));
        assert!(report.events.is_empty(), "{:?}", report.events);
    }

    #[test]
    fn event_log_keeps_failures_past_limit() {
        let packet = PacketRef {
            number: 1,
            time: DateTime::<Utc>::UNIX_EPOCH,
        };
        let mut log = EventLog::default();
        for _ in 0..MAX_EVENTS {
            log.push(packet, CaptureEventKind::DnsQuery, String::new());
        }
        log.push(packet, CaptureEventKind::DnsQuery, "routine".to_string());
        log.push(packet, CaptureEventKind::TcpRefused, "failure".to_string());
        assert_eq!(log.events.len(), MAX_EVENTS + 1);
        assert_eq!(log.dropped_routine, 1);
        assert_eq!(
            log.events.last().map(|event| event.text.as_str()),
            Some("failure")
        );
    }

    #[test]
    fn full_connection_table_evicts_ended_connections() {
        let packet = PacketRef {
            number: 1,
            time: DateTime::<Utc>::UNIX_EPOCH,
        };
        let server = SocketAddr::from(([10, 0, 0, 1], 443));
        let client = |index: usize| {
            let port = 1024 + (index % 60_000) as u16;
            SocketAddr::from(([10, 0, 1, (index / 60_000) as u8], port))
        };
        let mut log = EventLog::default();
        let mut tracker = TcpTracker::default();
        for index in 0..MAX_TRACKED_CONNECTIONS {
            let state = ConnectionState::SynSent;
            assert!(tracker.start_connection(client(index), server, state, packet, &mut log));
        }
        let extra = client(MAX_TRACKED_CONNECTIONS);
        let state = ConnectionState::SynSent;
        assert!(!tracker.start_connection(extra, server, state, packet, &mut log));
        assert!(tracker.connection_limit_reached);

        // Connection 0 ends with a refusal, so it can make room.
        let first = (client(0), server);
        if let Some(connection) = tracker.connections.get_mut(&first) {
            connection.state = ConnectionState::Failed;
            connection.queued_as_finished = true;
        }
        tracker.finished.push_back(first);
        assert!(tracker.start_connection(extra, server, state, packet, &mut log));
        assert_eq!(tracker.connections.len(), MAX_TRACKED_CONNECTIONS);
        assert!(!tracker.connections.contains_key(&first));
    }

    #[test]
    fn dns_name_pointer_loop_is_rejected() {
        // Header, then a name that is a pointer to itself at offset 12.
        let mut message = vec![0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(read_dns_name(&message, 12).is_none());
        let parsed = parse_dns_message(&message).expect("header is valid");
        assert!(parsed.question.is_none());
        assert!(parsed.answers.is_empty());
    }

    #[test]
    fn dns_name_escapes_unusual_bytes() {
        let message = [3, b'a', b'.', 0x07, 2, b'b', b'c', 0];
        let (name, end) = read_dns_name(&message, 0).expect("valid name");
        assert_eq!(name, "a\\046\\007.bc");
        assert_eq!(end, 8);
    }

    #[test]
    fn http_head_keeps_only_authorization_scheme() {
        let head = parse_http_head(
            b"CONNECT a:443 HTTP/1.1\r\nProxy-Authorization: NTLM TlRMTVNTUAABAAAA\r\nHost: a:443",
        );
        assert_eq!(head.proxy_authorization_scheme.as_deref(), Some("NTLM"));
        let head = parse_http_head(b"GET / HTTP/1.1\r\nProxy-Authorization: Custom secret-token");
        assert_eq!(
            head.proxy_authorization_scheme.as_deref(),
            Some("unrecognized scheme")
        );
    }

    #[test]
    fn revocation_fetch_recognises_ocsp_and_crl() {
        let cases = [
            (
                "ocsp.digicert.com",
                "/MFEwTzBN",
                None,
                Some("OCSP request to ocsp.digicert.com"),
            ),
            (
                "r3.o.lencr.org",
                "/",
                Some("application/ocsp-request"),
                Some("OCSP request to r3.o.lencr.org"),
            ),
            (
                "crl3.digicert.com",
                "/x.crl",
                None,
                Some("CRL request to crl3.digicert.com for /x.crl"),
            ),
            (
                "example.com",
                "/root.crl?x=1",
                None,
                Some("CRL request to example.com for /root.crl?x=1"),
            ),
            ("tetra-defs.amp.cisco.com", "/defs", None, None),
        ];
        for (host, path, content_type, expected) in cases {
            let fetch = revocation_fetch(host, path, content_type, None);
            assert_eq!(
                fetch.map(|fetch| fetch.description).as_deref(),
                expected,
                "{host}{path}"
            );
        }
    }

    #[test]
    fn tls_alert_names_follow_rfc() {
        let cases = [
            (40, "handshake_failure"),
            (42, "bad_certificate"),
            (44, "certificate_revoked"),
            (45, "certificate_expired"),
            (46, "certificate_unknown"),
            (48, "unknown_ca"),
            (250, "unknown_alert"),
        ];
        for (code, name) in cases {
            assert_eq!(tls_alert_name(code), name, "code {code}");
        }
    }

    #[test]
    fn der_time_parses_both_forms() {
        let utc = parse_der_time(0x17, b"491231235959Z").expect("UTCTime");
        assert_eq!(utc.to_rfc3339(), "2049-12-31T23:59:59+00:00");
        let old = parse_der_time(0x17, b"500101000000Z").expect("UTCTime");
        assert_eq!(old.to_rfc3339(), "1950-01-01T00:00:00+00:00");
        let generalized = parse_der_time(0x18, b"20260102030405Z").expect("GeneralizedTime");
        assert_eq!(generalized.to_rfc3339(), "2026-01-02T03:04:05+00:00");
        assert!(parse_der_time(0x17, b"261302000000Z").is_none());
        assert!(parse_der_time(0x18, b"2026").is_none());
    }

    #[test]
    fn clean_field_removes_control_characters() {
        assert_eq!(clean_field("a\r\nb\x1bc"), "a??b?c");
        let long = "x".repeat(MAX_FIELD_CHARS + 5);
        let cleaned = clean_field(&long);
        assert_eq!(cleaned.len(), MAX_FIELD_CHARS + 3);
        assert!(cleaned.ends_with("..."));
    }

    #[test]
    fn event_kind_serializes_in_kebab_case() {
        let json = serde_json::to_string(&CaptureEventKind::TcpNoAnswer).expect("serializes");
        assert_eq!(json, "\"tcp-no-answer\"");
        let json = serde_json::to_string(&CaptureEventKind::OcspOrCrl).expect("serializes");
        assert_eq!(json, "\"ocsp-or-crl\"");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn damaged_fixtures_read_without_panic(
            fixture in 0..FIXTURES.len(),
            changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
            cut in any::<prop::sample::Index>(),
        ) {
            let (_, original) = FIXTURES[fixture];
            let mut bytes = original.to_vec();
            for (position, value) in changes {
                let index = position.index(bytes.len());
                bytes[index] = value;
            }
            let length = cut.index(bytes.len() + 1);
            let _ = read_capture(&bytes[..length]);
        }

        #[test]
        fn certificate_parser_survives_damage(
            changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        ) {
            let mut bytes = TLS_UNKNOWN_CA.to_vec();
            // Bytes 1,000 to 2,500 lie in the server's first flight, which contains the
            // certificate.
            for (position, value) in changes {
                let index = 1_000 + position.index(1_500);
                bytes[index] = value;
            }
            let _ = read_capture(&bytes);
        }
    }
}
