//! The HTTP client side shared by the exporters that push over HTTP (`otlp` with
//! `http_protobuf`, `loki`): one way to build the pooled client, to read `Retry-After`, and to
//! describe a transport error. (The pipeline crate holds the server side; hyper's client lives
//! here so builds without these exporters don't link it.)

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sluice_pipeline::BuildError;

/// A pooled HTTP/1.1 client posting whole bodies.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A client with `TCP_NODELAY` (requests are latency-bound) and a connect timeout (`0s`: none).
pub fn client(connect_timeout: Duration) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    if !connect_timeout.is_zero() {
        connector.set_connect_timeout(Some(connect_timeout));
    }
    Client::builder(TokioExecutor::new()).build(connector)
}

/// A `Retry-After` value: delay seconds, or an HTTP-date (a date in the past means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of a response, if it has a readable one.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// An error and its sources, `: `-joined (hyper's own message is only "client error").
pub use sluice_pipeline::error::error_chain;

/// The config's `headers` as a header map; a bad name or value names its key.
pub fn header_map(headers: &BTreeMap<String, String>) -> Result<HeaderMap, BuildError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let bad = |e: &dyn std::fmt::Display| {
            BuildError::Config(format!("headers::{name}: not a valid HTTP header: {e}"))
        };
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
        let v = HeaderValue::from_str(value).map_err(|e| bad(&e))?;
        map.insert(n, v);
    }
    Ok(map)
}
