//! Turning an OTLP/HTTP body into an export request and a response into a body: the content
//! type (protobuf or JSON), gzip with the size limit applied after decompression too (a small
//! compressed body can expand a thousandfold), and the two encodings.

use std::io::Read;

use axum::body::Bytes;
use prost::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{OtlpReceiverError, Result};

/// The `Content-Type` of OTLP/HTTP protobuf.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/x-protobuf";
/// The `Content-Type` of OTLP/HTTP JSON.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// How an OTLP/HTTP body is encoded; the response uses the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Binary protobuf.
    Protobuf,
    /// The OTLP JSON mapping (hex ids, 64-bit integers as strings, enums as integers).
    Json,
}

impl Encoding {
    /// The encoding named by a `Content-Type` header (parameters such as `charset` ignored).
    pub fn from_content_type(content_type: Option<&str>) -> Result<Encoding> {
        let raw = content_type.unwrap_or("");
        let media = raw.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case(PROTOBUF_CONTENT_TYPE) {
            Ok(Encoding::Protobuf)
        } else if media.eq_ignore_ascii_case(JSON_CONTENT_TYPE) {
            Ok(Encoding::Json)
        } else {
            Err(OtlpReceiverError::UnsupportedContentType(raw.to_string()))
        }
    }

    /// The `Content-Type` of a body in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF_CONTENT_TYPE,
            Encoding::Json => JSON_CONTENT_TYPE,
        }
    }
}

/// Undoes the `Content-Encoding` (none, `identity` or `gzip`), refusing output above `limit`.
pub fn decompress(body: Bytes, content_encoding: Option<&str>, limit: usize) -> Result<Bytes> {
    match content_encoding.map(str::trim) {
        None | Some("") => Ok(body),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(body),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::new();
            // One byte past the limit tells "exactly the limit" from "more".
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(cap)
                .read_to_end(&mut out)
                .map_err(OtlpReceiverError::Gzip)?;
            if out.len() > limit {
                return Err(OtlpReceiverError::TooLarge { limit });
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(OtlpReceiverError::UnsupportedContentEncoding(
            other.to_string(),
        )),
    }
}

/// Decodes an export request from `body`.
pub fn decode_request<M>(body: &[u8], encoding: Encoding) -> Result<M>
where
    M: Message + Default + DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => M::decode(body).map_err(|e| OtlpReceiverError::Decode {
            format: "protobuf",
            message: e.to_string(),
        }),
        Encoding::Json => serde_json::from_slice(body).map_err(|e| OtlpReceiverError::Decode {
            format: "JSON",
            message: e.to_string(),
        }),
    }
}

/// Encodes a response message; an all-default message is `{}` in JSON.
pub fn encode_message<M>(message: &M, encoding: Encoding) -> Vec<u8>
where
    M: Message + Default + Serialize + PartialEq,
{
    match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        Encoding::Json if *message == M::default() => b"{}".to_vec(),
        // Serialising generated OTLP types into a Vec cannot fail (no maps with non-string keys).
        Encoding::Json => serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec()),
    }
}
