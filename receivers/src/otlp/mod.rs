//! The `otlp` receiver: OTLP over gRPC and over HTTP, for traces, metrics and logs.
//!
//! - OTLP/gRPC (default `127.0.0.1:4317`): the `Export` methods of
//!   `opentelemetry.proto.collector.{trace,metrics,logs}.v1.*Service`, gzip accepted.
//! - OTLP/HTTP (default `127.0.0.1:4318`): `POST /v1/traces`, `/v1/metrics`, `/v1/logs` with
//!   `Content-Type: application/x-protobuf` or `application/json` (the OTLP JSON mapping: hex
//!   ids, 64-bit integers as strings, enums as integers), optionally `Content-Encoding: gzip`.
//!   The answer uses the request's encoding.
//!
//! Signals: traces, metrics, logs; a signal no pipeline takes from this receiver answers
//! `UNIMPLEMENTED` (gRPC) or `404` (HTTP). Delivery: at most once. A request is acknowledged to
//! the client once every pipeline of its signal accepted it; a pipeline that stays full (or is
//! stopping) gets the request refused with `UNAVAILABLE` / `503` + `Retry-After: 1`, and its
//! items counted in `sluice_receiver_refused_*`, so the client retries. Data accepted is not
//! persisted: a crash loses what the pipelines still hold.
//!
//! Bad input never stops the server: malformed protobuf or JSON gets `INVALID_ARGUMENT` / `400`,
//! a body over the size limit (also after gzip decompression) `RESOURCE_EXHAUSTED` / `413`, a
//! wrong content type `415`; HTTP error bodies are a `google.rpc.Status`. Each such request is
//! counted in `sluice_receiver_otlp_bad_requests` and logged at debug level. Known limits of the
//! JSON decoding (from `opentelemetry-proto`'s serde support): `"name": null` is refused as
//! malformed, and `asDouble: "NaN"` / `"Infinity"` are not understood.
//!
//! ```yaml
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc:
//!         endpoint: 127.0.0.1:4317
//!       http:
//!         endpoint: 127.0.0.1:4318
//! ```

mod config;
mod decode;
mod error;
mod grpc;
mod http;
mod receiver;
#[cfg(test)]
mod tests;

pub use config::{
    OtlpGrpcConfig, OtlpHttpConfig, OtlpProtocols, OtlpReceiverConfig, DEFAULT_GRPC_ENDPOINT,
    DEFAULT_HTTP_ENDPOINT,
};
pub use decode::{Encoding, JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE};
pub use error::{OtlpReceiverError, RpcStatus};
pub use receiver::OtlpReceiver;

use sluice_pipeline::factory::{ComponentContext, Receiver, ReceiverPlugin, Stability};
use sluice_pipeline::{BuildError, Signal};

/// The name of the counter of requests refused for bad input (malformed, too large, wrong
/// content type or encoding), both protocols together.
pub const BAD_REQUESTS_COUNTER: &str = "sluice_receiver_otlp_bad_requests";

/// Builds `otlp` receivers.
#[derive(Debug, Clone, Copy)]
pub struct OtlpReceiverFactory;

impl ReceiverPlugin for OtlpReceiverFactory {
    type Config = OtlpReceiverConfig;
    const TYPE: &'static str = "otlp";
    const SIGNALS: &'static [Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];
    const STABILITY: Stability = Stability::Beta;
    const EXAMPLE: &'static str =
        "protocols:\n  grpc:\n    endpoint: 127.0.0.1:0\n  http:\n    endpoint: 127.0.0.1:0\n";

    fn build(
        &self,
        config: OtlpReceiverConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Receiver>, BuildError> {
        Ok(Box::new(OtlpReceiver::new(config, ctx)))
    }
}

sluice_pipeline::register_receiver!(OtlpReceiverFactory);
