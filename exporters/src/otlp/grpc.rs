//! OTLP/gRPC transport: a tonic channel, connected lazily so that an exporter whose target is
//! down still starts, and a codec that sends the request bytes [`encode_request`] made (no
//! owned request message, no copy of the batch).
//!
//! [`encode_request`]: super::encode::encode_request

use std::sync::OnceLock;

use bytes::{BufMut, Bytes};
use http::uri::PathAndQuery;
use prost::Message;
use sluice_pipeline::{BuildError, ExportError, Signal};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use super::config::{Compression, OtlpExporterConfig};
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
    client: OnceLock<tonic::client::Grpc<Channel>>,
    metadata: MetadataMap,
    compression: Compression,
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
        Ok(GrpcTransport {
            endpoint,
            client: OnceLock::new(),
            metadata,
            compression: config.compression,
        })
    }

    /// The client, creating the lazily connecting channel on first use.
    pub fn client(&self) -> &tonic::client::Grpc<Channel> {
        self.client.get_or_init(|| {
            let channel = self.endpoint.connect_lazy();
            let grpc = tonic::client::Grpc::new(channel);
            match self.compression {
                Compression::Gzip => grpc
                    .send_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Gzip),
                Compression::None => grpc,
            }
        })
    }

    /// Sends one pre-encoded export request; one attempt, classified.
    pub async fn send(&self, signal: Signal, body: Bytes) -> Result<ExportResponse, ExportError> {
        let mut grpc = self.client().clone();
        grpc.ready().await.map_err(|e| {
            ExportError::retryable(format!(
                "gRPC channel to {} not ready: {e}",
                self.endpoint.uri()
            ))
        })?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        grpc.unary(request, method(signal), PreEncodedCodec)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| classify_grpc(&status))
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
