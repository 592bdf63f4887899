//! The `otlp` exporter's configuration, named as in the Collector's `otlp` and `otlphttp`
//! exporters (which we fold into one type with a `protocol` key).

use std::collections::BTreeMap;
use std::time::Duration;

use http::uri::{PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Uri};
use serde::Deserialize;
use sluice_pipeline::config::ValidationError;
use sluice_pipeline::retry::{DeliveryConfig, QueueConfig, RetryConfig};
use sluice_pipeline::{Signal, Validate};

/// The wire protocol the exporter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (`/opentelemetry.proto.collector.<signal>.v1.<Signal>Service/Export`).
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP with binary protobuf bodies (`POST /v1/traces` etc.). `http/protobuf`, the
    /// spelling of `OTEL_EXPORTER_OTLP_PROTOCOL`, is accepted too.
    #[serde(rename = "http_protobuf", alias = "http/protobuf")]
    HttpProtobuf,
}

/// How request bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip (`Content-Encoding: gzip`, gRPC `grpc-encoding: gzip`).
    #[default]
    Gzip,
    /// Uncompressed.
    None,
}

/// The Collector's `compression_params`: settings of the chosen compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompressionParams {
    /// gzip level: `1` (fastest, default) to `9` (smallest), `0` stores without compressing,
    /// `-1` is zlib's default (`6`).
    pub level: i32,
}

/// The default gzip level: the fastest, as rotel (zlib-ng's `deflate_fast`) uses; level 6
/// cost ~2.3 CPU-s more per million spans in `benches/compare-rotel.sh` (BENCHMARKS.md).
pub const DEFAULT_GZIP_LEVEL: i32 = 1;

impl Default for CompressionParams {
    fn default() -> Self {
        CompressionParams {
            level: DEFAULT_GZIP_LEVEL,
        }
    }
}

impl CompressionParams {
    /// The level as flate2 takes it (`-1` is `6`); `None` if out of range.
    pub fn gzip_level(&self) -> Option<flate2::Compression> {
        match self.level {
            -1 => Some(flate2::Compression::new(6)),
            0..=9 => Some(flate2::Compression::new(self.level as u32)),
            _ => None,
        }
    }
}

/// Configuration of the `otlp` exporter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpExporterConfig {
    /// Where to send. Required. For `grpc`: `host:port` or `http://host:port`
    /// (e.g. `127.0.0.1:4317`). For `http_protobuf`: a base URL (`http://127.0.0.1:4318`) to
    /// which `/v1/traces`, `/v1/metrics` and `/v1/logs` are appended. Only plain `http://`:
    /// TLS is not supported yet.
    pub endpoint: String,
    /// `grpc` (default) or `http_protobuf`.
    pub protocol: OtlpProtocol,
    /// `http_protobuf` only: the full URL for traces, used as is instead of
    /// `<endpoint>/v1/traces`. Default: none.
    pub traces_endpoint: Option<String>,
    /// `http_protobuf` only: the full URL for metrics, instead of `<endpoint>/v1/metrics`.
    pub metrics_endpoint: Option<String>,
    /// `http_protobuf` only: the full URL for logs, instead of `<endpoint>/v1/logs`.
    pub logs_endpoint: Option<String>,
    /// `gzip` (default, as in the Collector) or `none`.
    pub compression: Compression,
    /// Settings of the compression: `level` (gzip `1` fastest, default, to `9` smallest; `0`
    /// none; `-1` zlib's default, `6`).
    pub compression_params: CompressionParams,
    /// Headers sent with every request (gRPC metadata for `grpc`; keys are sent lowercased).
    /// Default: none.
    pub headers: BTreeMap<String, String>,
    /// Deadline of one export attempt, connecting included; `0s` means none. Default `5s`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub timeout: Duration,
    /// Retries of retryable failures (exponential backoff with jitter). Defaults as in the
    /// Collector: `5s` initial, `30s` max interval, give up after `300s`.
    pub retry_on_failure: RetryConfig,
    /// The in-memory queue in front of the exporter. Defaults as in the Collector: 10
    /// consumers, 1000 batches.
    pub sending_queue: QueueConfig,
}

impl Default for OtlpExporterConfig {
    fn default() -> Self {
        OtlpExporterConfig {
            endpoint: String::new(),
            protocol: OtlpProtocol::Grpc,
            traces_endpoint: None,
            metrics_endpoint: None,
            logs_endpoint: None,
            compression: Compression::Gzip,
            compression_params: CompressionParams::default(),
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(5),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
        }
    }
}

impl OtlpExporterConfig {
    /// The delivery settings the runtime wraps the exporter in.
    pub fn delivery(&self) -> DeliveryConfig {
        DeliveryConfig {
            timeout: self.timeout,
            retry_on_failure: self.retry_on_failure.clone(),
            sending_queue: self.sending_queue.clone(),
        }
    }

    /// The gRPC target (`http://host:port`), from `endpoint`.
    pub fn grpc_uri(&self) -> Result<Uri, ValidationError> {
        let raw = self.endpoint.trim();
        if raw.is_empty() {
            return Err(required());
        }
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("http://{raw}")
        };
        let uri = parse_http_uri("endpoint", &with_scheme)?;
        if uri.path() != "/" || uri.query().is_some() {
            return Err(ValidationError::new(
                "endpoint",
                format!(
                    "`{raw}`: a gRPC endpoint is `host:port` or `http://host:port`, without a path"
                ),
            ));
        }
        Ok(uri)
    }

    /// The OTLP/HTTP URL of one signal: its `<signal>_endpoint` if set, else
    /// `<endpoint>/v1/<signal>`.
    pub fn http_uri(&self, signal: Signal) -> Result<Uri, ValidationError> {
        let (key, explicit) = match signal {
            Signal::Traces => ("traces_endpoint", &self.traces_endpoint),
            Signal::Metrics => ("metrics_endpoint", &self.metrics_endpoint),
            Signal::Logs => ("logs_endpoint", &self.logs_endpoint),
        };
        if let Some(url) = explicit {
            return parse_http_uri(key, url.trim());
        }
        let raw = self.endpoint.trim();
        if raw.is_empty() {
            return Err(required());
        }
        if !raw.contains("://") {
            return Err(ValidationError::new(
                "endpoint",
                format!("`{raw}`: an OTLP/HTTP endpoint is a URL, like `http://{raw}`"),
            ));
        }
        let base = parse_http_uri("endpoint", raw)?;
        let url = format!(
            "{}/v1/{}",
            base.to_string().trim_end_matches('/'),
            signal.as_str()
        );
        parse_http_uri("endpoint", &url)
    }
}

fn required() -> ValidationError {
    ValidationError::new(
        "endpoint",
        "is required: where to send, like `127.0.0.1:4317` (grpc) or `http://127.0.0.1:4318` (http_protobuf)",
    )
}

/// Parses an absolute `http://` URL, refusing `https://` (no TLS yet) and other schemes.
fn parse_http_uri(key: &str, raw: &str) -> Result<Uri, ValidationError> {
    let uri: Uri = raw
        .parse()
        .map_err(|e| ValidationError::new(key, format!("`{raw}` is not a valid URL: {e}")))?;
    match uri.scheme() {
        Some(s) if *s == Scheme::HTTP => {}
        Some(s) if *s == Scheme::HTTPS => {
            return Err(ValidationError::new(
                key,
                format!("`{raw}`: TLS is not supported yet; use a plain `http://` endpoint"),
            ))
        }
        Some(s) => {
            return Err(ValidationError::new(
                key,
                format!("`{raw}`: unsupported scheme `{s}`, expected `http://`"),
            ))
        }
        None => {
            return Err(ValidationError::new(
                key,
                format!("`{raw}` is not an absolute URL, expected `http://host:port/...`"),
            ))
        }
    }
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err(ValidationError::new(
            key,
            format!("`{raw}` has no host, expected `http://host:port/...`"),
        ));
    }
    if uri.path_and_query().is_none() {
        // `http://h:1` has no path; give it `/` so joining and requests are uniform.
        let mut parts = uri.into_parts();
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
        return Uri::from_parts(parts)
            .map_err(|e| ValidationError::new(key, format!("`{raw}` is not a valid URL: {e}")));
    }
    Ok(uri)
}

impl Validate for OtlpExporterConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        match self.protocol {
            OtlpProtocol::Grpc => {
                self.grpc_uri()?;
                for (key, v) in [
                    ("traces_endpoint", &self.traces_endpoint),
                    ("metrics_endpoint", &self.metrics_endpoint),
                    ("logs_endpoint", &self.logs_endpoint),
                ] {
                    if v.is_some() {
                        return Err(ValidationError::new(
                            key,
                            "is only used with `protocol: http_protobuf`; for grpc set `endpoint`",
                        ));
                    }
                }
            }
            OtlpProtocol::HttpProtobuf => {
                for signal in Signal::ALL {
                    self.http_uri(signal)?;
                }
            }
        }
        if self.compression_params.gzip_level().is_none() {
            return Err(ValidationError::new(
                "compression_params::level",
                format!(
                    "`{}`: a gzip level is 1 (fastest) to 9 (smallest), 0 (store) or -1 (default, 6)",
                    self.compression_params.level
                ),
            ));
        }
        for (name, value) in &self.headers {
            let key = format!("headers::{name}");
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ValidationError::new(key.clone(), "is not a valid header name"))?;
            HeaderValue::from_str(value).map_err(|_| {
                ValidationError::new(key.clone(), "is not a valid header value (visible ASCII)")
            })?;
            if self.protocol == OtlpProtocol::Grpc && name.to_ascii_lowercase().ends_with("-bin") {
                return Err(ValidationError::new(
                    key,
                    "binary (`-bin`) gRPC metadata is not supported",
                ));
            }
        }
        self.delivery().validate()
    }
}
