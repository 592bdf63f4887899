//! OTLP/gRPC transport: a tonic channel, connected lazily so that an exporter whose target is
//! down still starts, and a codec that sends the request bytes [`encode_request`] made (no
//! owned request message, no copy of the batch). With gzip the request is compressed here, at
//! the configured level (tonic's own gzip is fixed at level 6), and sent as one compressed gRPC
//! message straight on the channel.
//!
//! [`encode_request`]: super::encode::encode_request

use std::sync::OnceLock;

use bytes::{BufMut, Bytes};
use http::header::{CONTENT_TYPE, TE};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Method, Uri, Version};
use http_body_util::Full;
use prost::Message;
use sluice_pipeline::{BuildError, ExportError, Signal};
use tonic::client::GrpcService;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::config::{Compression, OtlpExporterConfig};
use super::encode::grpc_gzip_frame;
use super::status::{classify_grpc, ExportResponse};

/// The method path of each signal's export call.
fn method(signal: Signal) -> PathAndQuery {
    PathAndQuery::from_static(match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    })
}

/// A gRPC client of the three OTLP export services on one channel.
#[derive(Debug)]
pub struct GrpcTransport {
    endpoint: Endpoint,
    /// Created on first use (`start` or the first export): creating it needs a tokio runtime.
    client: OnceLock<Channel>,
    metadata: MetadataMap,
    /// `metadata` as HTTP headers, for the requests gzipped here.
    headers: HeaderMap,
    compression: Compression,
    gzip_level: flate2::Compression,
}

impl GrpcTransport {
    /// Prepares the channel settings and metadata; connects nothing.
    pub fn new(config: &OtlpExporterConfig) -> Result<GrpcTransport, BuildError> {
        let uri = config
            .grpc_uri()
            .map_err(|e| BuildError::Config(e.to_string()))?;
        let mut endpoint = Endpoint::from(uri);
        if !config.timeout.is_zero() {
            endpoint = endpoint
                .timeout(config.timeout)
                .connect_timeout(config.timeout);
        }
        let mut metadata = MetadataMap::new();
        for (name, value) in &config.headers {
            let key = MetadataKey::from_bytes(name.as_bytes()).map_err(|e| {
                BuildError::Config(format!("headers::{name}: not valid gRPC metadata: {e}"))
            })?;
            let value = MetadataValue::try_from(value.as_str()).map_err(|e| {
                BuildError::Config(format!("headers::{name}: not valid gRPC metadata: {e}"))
            })?;
            metadata.insert(key, value);
        }
        let gzip_level = config.compression_params.gzip_level().ok_or_else(|| {
            BuildError::Config("compression_params::level: not a gzip level".into())
        })?;
        Ok(GrpcTransport {
            endpoint,
            client: OnceLock::new(),
            headers: metadata.clone().into_headers(),
            metadata,
            compression: config.compression,
            gzip_level,
        })
    }

    /// The lazily connecting channel, created on first use.
    pub fn client(&self) -> &Channel {
        self.client.get_or_init(|| self.endpoint.connect_lazy())
    }

    /// Sends one pre-encoded export request; one attempt, classified.
    pub async fn send(&self, signal: Signal, body: Bytes) -> Result<ExportResponse, ExportError> {
        match self.compression {
            Compression::Gzip => self.send_gzip(signal, &body).await,
            Compression::None => self.send_plain(signal, body).await,
        }
    }

    fn not_ready(&self, e: impl std::fmt::Display) -> ExportError {
        ExportError::retryable(format!(
            "gRPC channel to {} not ready: {e}",
            self.endpoint.uri()
        ))
    }

    /// Uncompressed, through tonic's client.
    async fn send_plain(&self, signal: Signal, body: Bytes) -> Result<ExportResponse, ExportError> {
        let mut grpc = tonic::client::Grpc::new(self.client().clone());
        grpc.ready().await.map_err(|e| self.not_ready(e))?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        grpc.unary(request, method(signal), PreEncodedCodec)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| classify_grpc(&status))
    }

    /// gzip at our level: one compressed message frame posted on the channel, the response
    /// read as tonic's client reads it (trailers-only status, message, trailers).
    async fn send_gzip(&self, signal: Signal, body: &[u8]) -> Result<ExportResponse, ExportError> {
        let frame = grpc_gzip_frame(body, self.gzip_level)
            .map_err(|e| ExportError::permanent(format!("cannot gzip the request: {e}")))?;
        let mut channel = self.client().clone();
        std::future::poll_fn(|cx| GrpcService::<tonic::body::Body>::poll_ready(&mut channel, cx))
            .await
            .map_err(|e| self.not_ready(e))?;
        let mut request = http::Request::new(tonic::body::Body::new(Full::new(frame)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from(method(signal));
        *request.version_mut() = Version::HTTP_2;
        let headers = request.headers_mut();
        headers.clone_from(&self.headers);
        headers.insert(TE, HeaderValue::from_static("trailers"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-encoding", HeaderValue::from_static("gzip"));
        headers.insert("grpc-accept-encoding", HeaderValue::from_static("gzip"));

        let response = GrpcService::call(&mut channel, request)
            .await
            .map_err(|e| classify_grpc(&Status::from_error(e.into())))?;
        if let Some(status) = Status::from_header_map(response.headers()) {
            // Trailers only: no message follows.
            if status.code() != Code::Ok {
                return Err(classify_grpc(&status));
            }
            return Ok(ExportResponse::default());
        }
        let encoding = match response
            .headers()
            .get("grpc-encoding")
            .map(|v| v.as_bytes())
        {
            None | Some(b"identity") => None,
            Some(b"gzip") => Some(CompressionEncoding::Gzip),
            Some(other) => {
                return Err(classify_grpc(&Status::internal(format!(
                    "the server answered in an encoding we did not offer: {}",
                    String::from_utf8_lossy(other)
                ))))
            }
        };
        let status_code = response.status();
        let mut stream = Streaming::new_response(
            PreEncodedCodec,
            response.into_body(),
            status_code,
            encoding,
            None,
        );
        let message = stream
            .message()
            .await
            .map_err(|s| classify_grpc(&s))?
            .ok_or_else(|| classify_grpc(&Status::internal("Missing response message.")))?;
        stream.trailers().await.map_err(|s| classify_grpc(&s))?;
        Ok(message)
    }
}

/// Sends bytes already encoded as the request message; decodes any export response.
#[derive(Debug, Clone, Copy, Default)]
struct PreEncodedCodec;

impl Codec for PreEncodedCodec {
    type Encode = Bytes;
    type Decode = ExportResponse;
    type Encoder = PreEncodedCodec;
    type Decoder = PreEncodedCodec;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncodedCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        PreEncodedCodec
    }
}

impl Encoder for PreEncodedCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for PreEncodedCodec {
    type Item = ExportResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ExportResponse>, Status> {
        ExportResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("cannot decode export response: {e}")))
    }
}
