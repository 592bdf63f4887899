//! Classification of export responses into retryable and permanent failures, exactly as the OTLP
//! specification lists them (`otlp.md`, "Failures" and "Throttling"), and the response
//! messages this needs (`google.rpc.Status`, `RetryInfo`, the partial-success part of an export
//! response), defined here with prost derive since `opentelemetry-proto` does not export them.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use prost::Message;
use sluice_pipeline::ExportError;
use tonic::Code;

/// `google.rpc.Status`: the body of a gRPC `grpc-status-details-bin` trailer and of an OTLP/HTTP
/// error response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`: how long the server asks the client to wait.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The type URL of `RetryInfo` inside an `Any`.
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The response of any of the three OTLP export services. `ExportTraceServiceResponse`,
/// `ExportMetricsServiceResponse` and `ExportLogsServiceResponse` share one wire shape
/// (`partial_success = 1 { int64 rejected_<items> = 1; string error_message = 2 }`), so one
/// message decodes them all.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<PartialSuccess>,
}

/// The `partial_success` part of an export response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PartialSuccess {
    /// Spans, data points or log records the server rejected.
    #[prost(int64, tag = "1")]
    pub rejected: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// The delay of the first `RetryInfo` in encoded `google.rpc.Status` details, if any.
pub fn retry_info_delay(details: &[u8]) -> Option<Duration> {
    if details.is_empty() {
        return None;
    }
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .filter(|a| {
            a.type_url == RETRY_INFO_TYPE_URL || a.type_url.ends_with("/google.rpc.RetryInfo")
        })
        .find_map(|a| RetryInfo::decode(a.value.as_slice()).ok())
        .map(|info| {
            info.retry_delay
                .map(|d| {
                    Duration::new(
                        d.seconds.max(0) as u64,
                        d.nanos.clamp(0, 999_999_999) as u32,
                    )
                })
                .unwrap_or(Duration::ZERO)
        })
}

/// Whether the gRPC status carries a `RetryInfo` detail (with or without a delay).
fn has_retry_info(details: &[u8]) -> bool {
    retry_info_delay(details).is_some()
}

/// Classifies a failed gRPC export. Retryable: `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`,
/// `OUT_OF_RANGE`, `UNAVAILABLE`, `DATA_LOSS`, and `RESOURCE_EXHAUSTED` only when the server sent
/// `RetryInfo`; everything else is permanent. A `RetryInfo` delay becomes `retry_after`.
pub fn classify_grpc(status: &tonic::Status) -> ExportError {
    let code = status.code();
    let reason = format!("gRPC status {:?}: {}", code, status.message());
    let retryable = match code {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => has_retry_info(status.details()),
        _ => false,
    };
    if retryable {
        ExportError::Retryable {
            reason,
            retry_after: retry_info_delay(status.details()).filter(|d| !d.is_zero()),
        }
    } else {
        ExportError::Permanent { reason }
    }
}

/// Classifies a non-2xx OTLP/HTTP response. Retryable: 429, 502, 503, 504, honouring
/// `Retry-After` (seconds or an HTTP-date); every other status is permanent. `body` is used for
/// the reason: a `google.rpc.Status` message if it decodes, else its text.
pub fn classify_http(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ExportError {
    let reason = format!("HTTP {status}{}", body_reason(headers, body));
    match status.as_u16() {
        429 | 502 | 503 | 504 => ExportError::Retryable {
            reason,
            retry_after: crate::http_client::retry_after(headers),
        },
        _ => ExportError::Permanent { reason },
    }
}

fn body_reason(headers: &HeaderMap, body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let protobuf = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-protobuf"));
    if protobuf {
        if let Ok(s) = RpcStatus::decode(body) {
            return format!(": {}", s.message);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let cut: String = text.chars().take(200).collect();
    format!(": {cut}")
}
