//! OTLP/HTTP for `send --protocol http`: `POST <endpoint>/v1/traces` with the pre-encoded
//! protobuf body (pre-compressed once with `--gzip`) over HTTP/1.1 keep-alive connections.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::bytes::Bytes;
use prost::Message;
use sluice_proto::collector::trace::v1::ExportTraceServiceResponse;

/// The OTLP/HTTP path of trace exports.
pub(crate) const TRACES_PATH: &str = "/v1/traces";
const PROTOBUF: &str = "application/x-protobuf";

/// An HTTP/1.1 client holding (at most) one keep-alive connection.
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Where and how `send --protocol http` posts.
#[derive(Debug, Clone)]
pub(crate) struct HttpTarget {
    pub(crate) uri: Uri,
    /// The bodies are gzip-compressed: send `Content-Encoding: gzip`.
    pub(crate) gzip: bool,
}

impl HttpTarget {
    /// `<endpoint>/v1/traces` (kept as is when the endpoint already ends so); `http://` only.
    pub(crate) fn new(endpoint: &str, gzip: bool) -> Result<Self, String> {
        let base = endpoint.trim_end_matches('/');
        let url = if base.ends_with(TRACES_PATH) {
            base.to_string()
        } else {
            format!("{base}{TRACES_PATH}")
        };
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("--endpoint {endpoint}: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(format!(
                "--endpoint {endpoint}: --protocol http needs an http://host:port endpoint (no TLS)"
            ));
        }
        Ok(Self { uri, gzip })
    }

    /// `host:port` to probe before the run (port 80 when the endpoint names none).
    pub(crate) fn authority(&self) -> String {
        let host = self.uri.host().unwrap_or_default();
        let port = self.uri.port_u16().unwrap_or(80);
        format!("{host}:{port}")
    }

    /// The body to send for one encoded request: compressed here, once per distinct request.
    pub(crate) fn prepare_body(&self, encoded: &Bytes) -> Result<Bytes, String> {
        if !self.gzip {
            return Ok(encoded.clone());
        }
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(encoded.len() / 2),
            flate2::Compression::fast(),
        );
        encoder
            .write_all(encoded)
            .and_then(|()| encoder.finish())
            .map(Bytes::from)
            .map_err(|e| format!("cannot gzip a request: {e}"))
    }

    /// The export request for a prepared body (cheap: the body is shared, not copied).
    pub(crate) fn request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        if self.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        request
    }
}

/// A client of one HTTP/1.1 keep-alive connection (opened on first use, reopened if it drops).
pub(crate) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build(connector)
}

/// What one export came to.
pub(crate) enum HttpOutcome {
    /// 200, with the response's `partial_success.rejected_spans`.
    Acked { rejected: u64 },
    /// Anything else, by reason (`HTTP 503`, `ConnectError`, a 200 that is not an OTLP protobuf
    /// response, ...): no retries.
    Failed(String),
}

/// Posts one request and reads the whole response (so the connection is kept alive).
pub(crate) async fn export(client: &HttpClient, target: &HttpTarget, body: Bytes) -> HttpOutcome {
    let response = match client.request(target.request(body)).await {
        Ok(response) => response,
        Err(e) if e.is_connect() => return HttpOutcome::Failed("ConnectError".into()),
        Err(_) => return HttpOutcome::Failed("TransportError".into()),
    };
    let status = response.status();
    // A 200 of anything but protobuf (e.g. a gRPC server's `application/grpc` error) is no ack.
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let gzipped = response
        .headers()
        .get(CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = match response.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return HttpOutcome::Failed("TransportError".into()),
    };
    if status != StatusCode::OK {
        return HttpOutcome::Failed(format!("HTTP {}", status.as_u16()));
    }
    if let Some(content_type) = content_type.filter(|ct| !is_protobuf(ct)) {
        return HttpOutcome::Failed(format!("HTTP 200 with Content-Type {content_type}"));
    }
    match decode_response(&body, gzipped) {
        Some(response) => HttpOutcome::Acked {
            rejected: response
                .partial_success
                .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0)),
        },
        None => HttpOutcome::Failed("HTTP 200 with an undecodable body".into()),
    }
}

/// `application/x-protobuf`, parameters (`; charset=...`) and case aside.
fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(PROTOBUF))
}

fn decode_response(body: &[u8], gzipped: bool) -> Option<ExportTraceServiceResponse> {
    if gzipped {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut plain)
            .ok()?;
        ExportTraceServiceResponse::decode(plain.as_slice()).ok()
    } else {
        ExportTraceServiceResponse::decode(body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::collector::trace::v1::ExportTracePartialSuccess;

    #[test]
    fn endpoint_becomes_the_traces_url() {
        let target = HttpTarget::new("http://127.0.0.1:4318", false).expect("valid");
        assert_eq!(target.uri, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(target.authority(), "127.0.0.1:4318");
        let target = HttpTarget::new("http://collector:4318/", false).expect("valid");
        assert_eq!(target.uri, "http://collector:4318/v1/traces");
        let target = HttpTarget::new("http://[::1]:4318/v1/traces", false).expect("valid");
        assert_eq!(target.uri, "http://[::1]:4318/v1/traces");
        assert!(HttpTarget::new("https://127.0.0.1:4318", false).is_err());
        assert!(HttpTarget::new("127.0.0.1:4318", false).is_err());
    }

    #[test]
    fn request_has_the_otlp_path_and_headers() {
        let target = HttpTarget::new("http://127.0.0.1:4318", false).expect("valid");
        let encoded = Bytes::from_static(b"\x0a\x00");
        let body = target.prepare_body(&encoded).expect("no gzip");
        assert_eq!(body, encoded);
        let request = target.request(body);
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri().path(), "/v1/traces");
        assert_eq!(request.headers()[CONTENT_TYPE], "application/x-protobuf");
        assert_eq!(request.headers()[CONTENT_LENGTH], "2");
        assert!(request.headers().get(CONTENT_ENCODING).is_none());
    }

    #[test]
    fn gzip_body_round_trips_with_its_header() {
        let target = HttpTarget::new("http://127.0.0.1:4318", true).expect("valid");
        let shape = crate::request::SpanShape {
            spans_per_request: 20,
            attributes: 3,
            attribute_bytes: 16,
        };
        let encoded = Bytes::from(crate::request::build_request(shape, 3).encode_to_vec());
        let body = target.prepare_body(&encoded).expect("gzip");
        assert!(
            body.len() < encoded.len(),
            "{} >= {}",
            body.len(),
            encoded.len()
        );
        let request = target.request(body.clone());
        assert_eq!(request.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(request.headers()[CONTENT_TYPE], "application/x-protobuf");
        assert_eq!(request.headers()[CONTENT_LENGTH], body.len().to_string());
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body.as_ref())
            .read_to_end(&mut plain)
            .expect("valid gzip");
        assert_eq!(plain, encoded);
    }

    #[test]
    fn responses_decode_plain_and_gzipped() {
        let response = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 7,
                error_message: "too old".into(),
            }),
        };
        let encoded = Bytes::from(response.encode_to_vec());
        let decoded = decode_response(&encoded, false).expect("plain");
        assert_eq!(decoded.partial_success.map(|p| p.rejected_spans), Some(7));
        let gzipped = HttpTarget::new("http://h:1", true)
            .expect("valid")
            .prepare_body(&encoded)
            .expect("gzip");
        let decoded = decode_response(&gzipped, true).expect("gzipped");
        assert_eq!(decoded.partial_success.map(|p| p.rejected_spans), Some(7));
        assert!(
            decode_response(b"", false).is_some(),
            "empty = no partial success"
        );
        assert!(decode_response(b"\xff\xff", false).is_none());
        assert!(is_protobuf("application/x-protobuf"));
        assert!(is_protobuf("Application/X-Protobuf; charset=binary"));
        assert!(!is_protobuf("application/grpc"));
        assert!(!is_protobuf("application/json"));
    }
}
