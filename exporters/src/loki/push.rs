//! The HTTP side of the `loki` exporter: `POST <endpoint>/loki/api/v1/push` over a pooled hyper
//! client with the tenant, credentials and headers of the config, and the classification of
//! Loki's answers into retryable and permanent failures.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use sluice_pipeline::{BuildError, ExportError};

use super::config::{LokiCompression, LokiExporterConfig, LokiFormat};
use crate::http_client::{self, error_chain, HttpClient};

/// The largest response body read: Loki answers 204, or an error message.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The tenant header of Loki (and Mimir, Tempo).
pub const TENANT_HEADER: &str = "x-scope-orgid";

/// A client of one Loki push endpoint.
#[derive(Debug)]
pub struct PushClient {
    client: HttpClient,
    url: Uri,
    /// Every header of every push: content type and encoding, tenant, credentials, `headers`.
    headers: HeaderMap,
}

impl PushClient {
    /// Resolves the URL and headers of a validated config; connects nothing.
    pub fn new(config: &LokiExporterConfig) -> Result<PushClient, BuildError> {
        let url = config
            .push_uri()
            .map_err(|e| BuildError::Config(e.to_string()))?;
        let bad = |key: &str, e: &dyn std::fmt::Display| {
            BuildError::Config(format!("{key}: not a valid HTTP header: {e}"))
        };
        let mut headers = http_client::header_map(&config.headers)?;
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("sluice/", env!("CARGO_PKG_VERSION"))),
        );
        match config.format {
            LokiFormat::Protobuf => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                );
            }
            LokiFormat::Json => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                if config.compression == LokiCompression::Gzip {
                    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
            }
        }
        if let Some(tenant) = &config.tenant_id {
            let v = HeaderValue::from_str(tenant).map_err(|e| bad("tenant_id", &e))?;
            headers.insert(HeaderName::from_static(TENANT_HEADER), v);
        }
        let authorization = if let Some(basic) = &config.auth.basic {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", basic.username, basic.password));
            Some(format!("Basic {token}"))
        } else {
            config
                .auth
                .bearer_token
                .as_ref()
                .map(|t| format!("Bearer {t}"))
        };
        if let Some(a) = authorization {
            let mut v = HeaderValue::from_str(&a).map_err(|e| bad("auth", &e))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let client = http_client::client(config.timeout);
        Ok(PushClient {
            client,
            url,
            headers,
        })
    }

    /// Where pushes go.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// Posts one encoded push body; one attempt, classified.
    pub async fn push(&self, body: Bytes) -> Result<(), ExportError> {
        let url = &self.url;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url.clone())
            .body(Full::new(body))
            .map_err(|e| ExportError::permanent(format!("cannot build request to {url}: {e}")))?;
        *request.headers_mut() = self.headers.clone();
        // Connection refused, reset, or a broken response: Loki may be back later.
        let response = self.client.request(request).await.map_err(|e| {
            ExportError::retryable(format!("POST {url} failed: {}", error_chain(&e)))
        })?;
        let (parts, body) = response.into_parts();
        if parts.status.is_success() {
            return Ok(());
        }
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Err(classify(parts.status, &parts.headers, &body))
    }
}

/// Classifies a non-2xx answer of Loki. Retryable: 429 (rate limited) and every 5xx, never
/// sooner than `Retry-After` (seconds or an HTTP-date). Every other status is permanent: Loki
/// answers 400 to what it will never take (bad labels, entries too old or out of order, lines too
/// long), 401/403 to bad credentials. The reason carries the start of Loki's message.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ExportError {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let reason = if text.is_empty() {
        format!("Loki answered HTTP {status}")
    } else {
        let cut: String = text.chars().take(200).collect();
        format!("Loki answered HTTP {status}: {cut}")
    };
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        ExportError::Retryable {
            reason,
            retry_after: http_client::retry_after(headers),
        }
    } else {
        ExportError::Permanent { reason }
    }
}
