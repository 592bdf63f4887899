//! What can go wrong with one OTLP request, and how each protocol answers it. None of it stops
//! the server: the sender gets the status, bad input is counted in
//! `sluice_receiver_otlp_bad_requests` and logged at debug level.

use axum::http::StatusCode;
use sluice_pipeline::error::SendError;
use sluice_pipeline::Signal;

/// Why one request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OtlpReceiverError {
    /// The HTTP `Content-Type` is neither protobuf nor JSON.
    #[error(
        "unsupported content type `{0}`: expected `application/x-protobuf` or `application/json`"
    )]
    UnsupportedContentType(String),
    /// The HTTP `Content-Encoding` is not one the receiver decompresses.
    #[error("unsupported content encoding `{0}`: expected `gzip` or none")]
    UnsupportedContentEncoding(String),
    /// The body (as received or decompressed) is larger than the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The gzip stream is corrupt.
    #[error("cannot decompress the gzip body: {0}")]
    Gzip(#[source] std::io::Error),
    /// The body could not be read from the connection.
    #[error("cannot read the request body: {0}")]
    Body(String),
    /// The body is not a valid export request in its encoding.
    #[error("cannot decode the {format} export request: {message}")]
    Decode {
        format: &'static str,
        message: String,
    },
    /// No pipeline of this signal lists the receiver.
    #[error("this receiver feeds no {0} pipeline")]
    NoPipeline(Signal),
    /// A pipeline is full or stopping; the sender should retry later.
    #[error("{0}; retry later")]
    Refused(#[from] SendError),
}

/// A `Result` of this receiver.
pub type Result<T, E = OtlpReceiverError> = std::result::Result<T, E>;

impl OtlpReceiverError {
    /// Whether the sender is at fault (counted in `sluice_receiver_otlp_bad_requests`).
    pub fn is_bad_request(&self) -> bool {
        !matches!(self, Self::NoPipeline(_) | Self::Refused(_))
    }

    /// The OTLP/HTTP status for this error.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::UnsupportedContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UnsupportedContentEncoding(_)
            | Self::Gzip(_)
            | Self::Body(_)
            | Self::Decode { .. } => StatusCode::BAD_REQUEST,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NoPipeline(_) => StatusCode::NOT_FOUND,
            Self::Refused(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The OTLP/gRPC status for this error.
    pub fn grpc_status(&self) -> tonic::Status {
        let message = self.to_string();
        match self {
            Self::TooLarge { .. } => tonic::Status::resource_exhausted(message),
            Self::NoPipeline(_) => tonic::Status::unimplemented(message),
            Self::Refused(_) => tonic::Status::unavailable(message),
            _ => tonic::Status::invalid_argument(message),
        }
    }
}

/// `google.rpc.Status`, the body of an OTLP error response. `details` (field 3, `Any`) is not
/// sent.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
pub struct RpcStatus {
    /// The gRPC status code (`3` INVALID_ARGUMENT, `8` RESOURCE_EXHAUSTED, `14` UNAVAILABLE…).
    #[prost(int32, tag = "1")]
    #[serde(default)]
    pub code: i32,
    /// What went wrong, for a person.
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub message: String,
}

impl From<&OtlpReceiverError> for RpcStatus {
    fn from(e: &OtlpReceiverError) -> RpcStatus {
        RpcStatus {
            code: e.grpc_status().code() as i32,
            message: e.to_string(),
        }
    }
}
