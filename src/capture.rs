//! Placeholder until the capture reader lands.
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureEventKind {
    DnsQuery,
    DnsAnswer,
    DnsError,
    TcpConnected,
    TcpRefused,
    TcpNoAnswer,
    TcpReset,
    TlsClientHello,
    TlsAlert,
    TlsCertificate,
    HttpRequest,
    HttpResponse,
    OcspOrCrl,
}
pub struct CaptureEvent {
    pub packet: u64,
    pub time: DateTime<Utc>,
    pub kind: CaptureEventKind,
    pub text: String,
}
pub struct CaptureReport {
    pub events: Vec<CaptureEvent>,
    pub packets: u64,
    pub warnings: Vec<String>,
}
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("capture reading is not built yet")]
    NotBuilt,
}
pub fn read_capture(_bytes: &[u8]) -> Result<CaptureReport, CaptureError> {
    Err(CaptureError::NotBuilt)
}
