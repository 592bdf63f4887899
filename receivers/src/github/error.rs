//! What can go wrong with one delivery, and the status each gets. None of it stops the server:
//! the sender gets the status, and every refused request is counted in
//! `sluice_receiver_github_requests{event,status}` and logged at debug level.

use axum::http::StatusCode;
use sluice_pipeline::error::SendError;
use sluice_pipeline::http::BodyError;

/// Why one request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum GithubReceiverError {
    /// The body is larger than `max_body_bytes`.
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The body could not be read from the connection.
    #[error("cannot read the request body: {0}")]
    Body(String),
    /// No `X-Hub-Signature-256` header (a SHA-1 `X-Hub-Signature` alone is never enough).
    #[error("missing `X-Hub-Signature-256` header")]
    MissingSignature,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("malformed `X-Hub-Signature-256` header: expected `sha256=` and 64 hex digits")]
    MalformedSignature,
    /// The signature does not match the body under the configured secret.
    #[error("`X-Hub-Signature-256` does not match the body")]
    BadSignature,
    /// `Authorization: Bearer <token>` is missing or wrong on the CI events path.
    #[error("missing or wrong bearer token")]
    BadToken,
    /// The content type is neither JSON nor form-encoded.
    #[error(
        "unsupported content type `{0}`: expected `application/json` or \
         `application/x-www-form-urlencoded`"
    )]
    UnsupportedContentType(String),
    /// No `X-GitHub-Event` header.
    #[error("missing `X-GitHub-Event` header")]
    MissingEvent,
    /// A header of `required_headers` is missing or has another value.
    #[error("missing or unexpected value of required header `{0}`")]
    RequiredHeader(String),
    /// The body is not a JSON object (or a form without a `payload` field).
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// The same delivery is being processed right now; the sender should retry.
    #[error("delivery `{0}` is being processed; retry later")]
    InFlight(String),
    /// A pipeline is full or stopping; the sender should retry later.
    #[error("{0}; retry later")]
    Refused(#[from] SendError),
}

/// A `Result` of this receiver.
pub type Result<T, E = GithubReceiverError> = std::result::Result<T, E>;

impl GithubReceiverError {
    /// The HTTP status for this error.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Body(_) | Self::MissingEvent | Self::RequiredHeader(_) | Self::Malformed(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::MissingSignature
            | Self::MalformedSignature
            | Self::BadSignature
            | Self::BadToken => StatusCode::UNAUTHORIZED,
            Self::UnsupportedContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InFlight(_) | Self::Refused(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<BodyError> for GithubReceiverError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { limit } => Self::TooLarge { limit },
            BodyError::Read(message) => Self::Body(message),
        }
    }
}
