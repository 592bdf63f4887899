//! OTLP/HTTP transport with binary protobuf bodies: `POST <endpoint>/v1/<signal>` over a pooled
//! hyper client, gzip when configured.

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use prost::Message;
use sluice_pipeline::{BuildError, ExportError, Signal};

use super::config::{Compression, OtlpExporterConfig};
use super::encode::gzip;
use super::status::{classify_http, ExportResponse};
use crate::http_client::{self, error_chain, HttpClient};

/// The largest response body read; OTLP responses are a few bytes, error bodies a message.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

const PROTOBUF: HeaderValue = HeaderValue::from_static("application/x-protobuf");

/// An OTLP/HTTP client of one collector.
#[derive(Debug)]
pub struct HttpTransport {
    client: HttpClient,
    /// Traces, metrics, logs URL, in [`Signal::ALL`] order.
    urls: [Uri; 3],
    headers: HeaderMap,
    compression: Compression,
    gzip_level: flate2::Compression,
}

impl HttpTransport {
    /// Resolves the URLs and headers; connects nothing.
    pub fn new(config: &OtlpExporterConfig) -> Result<HttpTransport, BuildError> {
        let url = |s| {
            config
                .http_uri(s)
                .map_err(|e| BuildError::Config(e.to_string()))
        };
        let urls = [
            url(Signal::Traces)?,
            url(Signal::Metrics)?,
            url(Signal::Logs)?,
        ];
        let headers = http_client::header_map(&config.headers)?;
        let client = http_client::client(config.timeout);
        Ok(HttpTransport {
            client,
            urls,
            headers,
            compression: config.compression,
            gzip_level: config.compression_params.gzip_level().ok_or_else(|| {
                BuildError::Config("compression_params::level: not a gzip level".into())
            })?,
        })
    }

    /// The URL a signal is posted to.
    pub fn url(&self, signal: Signal) -> &Uri {
        match signal {
            Signal::Traces => &self.urls[0],
            Signal::Metrics => &self.urls[1],
            Signal::Logs => &self.urls[2],
        }
    }

    /// Posts one export request; one attempt, classified.
    pub async fn send(&self, signal: Signal, body: Bytes) -> Result<ExportResponse, ExportError> {
        let url = self.url(signal);
        let body = match self.compression {
            Compression::Gzip => gzip(&body, self.gzip_level)
                .map_err(|e| ExportError::permanent(format!("cannot gzip the request: {e}")))?,
            Compression::None => body,
        };
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url.clone())
            .body(Full::new(body))
            .map_err(|e| ExportError::permanent(format!("cannot build request to {url}: {e}")))?;
        let headers = request.headers_mut();
        for (name, value) in &self.headers {
            headers.insert(name, value.clone());
        }
        headers.insert(CONTENT_TYPE, PROTOBUF);
        if self.compression == Compression::Gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }

        // Connection refused, reset, or a broken response: the collector may be back later.
        let response = self.client.request(request).await.map_err(|e| {
            ExportError::retryable(format!("POST {url} failed: {}", error_chain(&e)))
        })?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map(|c| c.to_bytes());
        if !parts.status.is_success() {
            let body = body.unwrap_or_default();
            return Err(classify_http(parts.status, &parts.headers, &body));
        }
        // The data was accepted; a response we cannot read only costs the partial-success
        // report.
        match body {
            Ok(body) => Ok(ExportResponse::decode(body).unwrap_or_else(|e| {
                tracing::debug!(url = %url, error = %e, "Cannot decode the OTLP/HTTP response.");
                ExportResponse::default()
            })),
            Err(e) => {
                tracing::debug!(url = %url, error = %e, "Cannot read the OTLP/HTTP response.");
                Ok(ExportResponse::default())
            }
        }
    }
}
