//! The `otlp` exporter: encodes a batch once, sends it over the configured transport, and
//! reports partial success.

use sluice_pipeline::factory::{ComponentContext, Exporter};
use sluice_pipeline::telemetry::Counter;
use sluice_pipeline::{Batch, BuildError, ExportError, Signal};

use super::config::{OtlpExporterConfig, OtlpProtocol};
use super::encode::encode_request;
use super::grpc::GrpcTransport;
use super::http::HttpTransport;

/// Boxed: built once, and the two differ in size.
#[derive(Debug)]
enum Transport {
    Grpc(Box<GrpcTransport>),
    Http(Box<HttpTransport>),
}

/// Sends batches to an OTLP endpoint, one attempt per `export`; the runtime queues and retries.
#[derive(Debug)]
pub struct OtlpExporter {
    transport: Transport,
    /// `sluice_exporter_rejected_<unit>`: items a server refused in a partial success, per
    /// signal in [`Signal::ALL`] order.
    rejected: [Counter; 3],
    id: String,
}

impl OtlpExporter {
    /// Prepares the client from a validated config; connects nothing.
    pub fn new(config: &OtlpExporterConfig, ctx: &ComponentContext) -> Result<Self, BuildError> {
        let transport = match config.protocol {
            OtlpProtocol::Grpc => Transport::Grpc(Box::new(GrpcTransport::new(config)?)),
            OtlpProtocol::HttpProtobuf => Transport::Http(Box::new(HttpTransport::new(config)?)),
        };
        let rejected = Signal::ALL.map(|s| ctx.telemetry.counter("rejected", s));
        Ok(OtlpExporter {
            transport,
            rejected,
            id: ctx.id.to_string(),
        })
    }

    fn rejected(&self, signal: Signal) -> &Counter {
        match signal {
            Signal::Traces => &self.rejected[0],
            Signal::Metrics => &self.rejected[1],
            Signal::Logs => &self.rejected[2],
        }
    }
}

#[async_trait::async_trait]
impl Exporter for OtlpExporter {
    async fn start(&mut self) -> Result<(), BuildError> {
        if let Transport::Grpc(g) = &self.transport {
            // Creates the lazily connecting channel: a target that is down does not stop us.
            g.client();
        }
        Ok(())
    }

    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let signal = batch.signal();
        let body = encode_request(&batch.payload);
        let response = match &self.transport {
            Transport::Grpc(g) => g.send(signal, body).await?,
            Transport::Http(h) => h.send(signal, body).await?,
        };
        if let Some(partial) = response.partial_success {
            if partial.rejected > 0 {
                // Not retried: the server has decided about these items, as the spec says.
                self.rejected(signal).add(partial.rejected as u64);
                tracing::warn!(
                    component_kind = "exporter",
                    component_id = %self.id,
                    signal = %signal,
                    rejected = partial.rejected,
                    message = %partial.error_message,
                    "Export partially rejected by the server."
                );
            } else if !partial.error_message.is_empty() {
                tracing::warn!(
                    component_kind = "exporter",
                    component_id = %self.id,
                    signal = %signal,
                    message = %partial.error_message,
                    "Export accepted with a warning from the server."
                );
            }
        }
        Ok(())
    }
}
