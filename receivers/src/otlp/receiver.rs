//! The receiver itself: binds its listeners in `start`, serves gRPC and HTTP until shutdown in
//! `run`, and the one place both protocols hand a decoded request to the pipelines.

use prost::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_pipeline::factory::{ComponentContext, Receiver, ReceiverRunContext};
use sluice_pipeline::runtime::fanout::Outputs;
use sluice_pipeline::telemetry::Counter;
use sluice_pipeline::{Batch, Payload, ReceiverError, Signal};
use sluice_proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use sluice_proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use sluice_proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tokio::net::TcpListener;

use super::config::OtlpReceiverConfig;
use super::error::{OtlpReceiverError, Result};
use super::BAD_REQUESTS_COUNTER;

/// One OTLP export request type (traces, metrics or logs) and what goes with it.
pub(crate) trait ExportRequest:
    Message + Default + DeserializeOwned + Send + Sync + 'static
{
    /// The matching response.
    type Response: Message + Default + Serialize + PartialEq + Send + Sync + 'static;
    /// The signal it carries.
    const SIGNAL: Signal;
    /// The gRPC method path.
    const GRPC_PATH: &'static str;
    /// The OTLP/HTTP path.
    const HTTP_PATH: &'static str;
    /// The request's data as a pipeline payload.
    fn into_payload(self) -> Payload;
}

impl ExportRequest for ExportTraceServiceRequest {
    type Response = ExportTraceServiceResponse;
    const SIGNAL: Signal = Signal::Traces;
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const HTTP_PATH: &'static str = "/v1/traces";
    fn into_payload(self) -> Payload {
        Payload::Traces(self.resource_spans)
    }
}

impl ExportRequest for ExportMetricsServiceRequest {
    type Response = ExportMetricsServiceResponse;
    const SIGNAL: Signal = Signal::Metrics;
    const GRPC_PATH: &'static str =
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    const HTTP_PATH: &'static str = "/v1/metrics";
    fn into_payload(self) -> Payload {
        Payload::Metrics(self.resource_metrics)
    }
}

impl ExportRequest for ExportLogsServiceRequest {
    type Response = ExportLogsServiceResponse;
    const SIGNAL: Signal = Signal::Logs;
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const HTTP_PATH: &'static str = "/v1/logs";
    fn into_payload(self) -> Payload {
        Payload::Logs(self.resource_logs)
    }
}

/// What both servers share: the outputs and the bad-request counter.
#[derive(Debug, Clone)]
pub(crate) struct Intake {
    outputs: Outputs,
    bad_requests: Counter,
}

impl Intake {
    pub(crate) fn new(outputs: Outputs, bad_requests: Counter) -> Intake {
        Intake {
            outputs,
            bad_requests,
        }
    }

    /// Whether some pipeline takes `signal`.
    pub(crate) fn serves(&self, signal: Signal) -> bool {
        self.outputs.get(signal).is_some()
    }

    /// Hands a decoded request to the pipelines of its signal. The answer is sent only once
    /// every pipeline took the data (or refused it): at-most-once delivery.
    pub(crate) async fn export<R: ExportRequest>(&self, request: R) -> Result<R::Response> {
        let output = self
            .outputs
            .get(R::SIGNAL)
            .ok_or(OtlpReceiverError::NoPipeline(R::SIGNAL))?;
        let batch = Batch::new(request.into_payload());
        if batch.item_count() == 0 {
            // Empty requests are valid OTLP; there is nothing to forward.
            return Ok(R::Response::default());
        }
        // `Output::send` counts accepted and refused items. It is all-or-nothing per request
        // (every pipeline took it or it is refused), so there is no partial success to report:
        // the answer is an empty response or UNAVAILABLE/503.
        output.send(batch).await?;
        Ok(R::Response::default())
    }

    /// Counts and logs a request refused for bad input; other errors only log.
    pub(crate) fn note_error(&self, protocol: &str, signal: Signal, error: &OtlpReceiverError) {
        if error.is_bad_request() {
            self.bad_requests.add(1);
        }
        tracing::debug!(protocol, %signal, %error, "Refused an OTLP request.");
    }

    /// Counts a bad request detected outside this module's code (tonic's own size check).
    pub(crate) fn count_bad_request(&self) {
        self.bad_requests.add(1);
    }
}

/// The `otlp` receiver: an OTLP/gRPC and/or OTLP/HTTP server.
pub struct OtlpReceiver {
    config: OtlpReceiverConfig,
    ctx: ComponentContext,
    grpc: Option<TcpListener>,
    http: Option<TcpListener>,
}

impl OtlpReceiver {
    /// A receiver that binds nothing until `start`.
    pub fn new(config: OtlpReceiverConfig, ctx: ComponentContext) -> OtlpReceiver {
        OtlpReceiver {
            config,
            ctx,
            grpc: None,
            http: None,
        }
    }

    async fn bind(&mut self) -> std::result::Result<(), ReceiverError> {
        if let (Some(grpc), None) = (&self.config.protocols.grpc, &self.grpc) {
            let listener = sluice_pipeline::http::bind(&grpc.endpoint).await?;
            report(&self.ctx, "grpc", &listener, &grpc.endpoint)?;
            self.grpc = Some(listener);
        }
        if let (Some(http), None) = (&self.config.protocols.http, &self.http) {
            let listener = sluice_pipeline::http::bind(&http.endpoint).await?;
            report(&self.ctx, "http", &listener, &http.endpoint)?;
            self.http = Some(listener);
        }
        Ok(())
    }
}

fn report(
    ctx: &ComponentContext,
    label: &str,
    listener: &TcpListener,
    endpoint: &str,
) -> std::result::Result<(), ReceiverError> {
    let addr = listener.local_addr().map_err(|source| ReceiverError::Io {
        what: format!("cannot read the bound address of {endpoint}"),
        source,
    })?;
    ctx.report_endpoint(label, addr);
    Ok(())
}

#[async_trait::async_trait]
impl Receiver for OtlpReceiver {
    async fn start(&mut self) -> std::result::Result<(), ReceiverError> {
        self.bind().await
    }

    async fn run(
        mut self: Box<Self>,
        ctx: ReceiverRunContext,
    ) -> std::result::Result<(), ReceiverError> {
        // `run` without `start` (not what the runtime does) still works.
        self.bind().await?;
        let intake = Intake::new(
            ctx.outputs,
            self.ctx.telemetry.counter_named(BAD_REQUESTS_COUNTER),
        );
        let refused = self
            .ctx
            .telemetry
            .counter_named(sluice_pipeline::http::REFUSED_CONNECTIONS);
        let grpc = match (self.grpc.take(), &self.config.protocols.grpc) {
            (Some(listener), Some(config)) => {
                let router = super::grpc::router(intake.clone(), config.max_recv_msg_size_bytes());
                Some(sluice_pipeline::http::serve(
                    listener,
                    router,
                    ctx.shutdown.clone(),
                    refused.clone(),
                ))
            }
            _ => None,
        };
        let http = match (self.http.take(), &self.config.protocols.http) {
            (Some(listener), Some(config)) => {
                let router = super::http::router(intake.clone(), config.max_request_body_bytes());
                Some(sluice_pipeline::http::serve(
                    listener,
                    router,
                    ctx.shutdown.clone(),
                    refused.clone(),
                ))
            }
            _ => None,
        };
        let (grpc, http) = tokio::join!(
            async move {
                match grpc {
                    Some(f) => f.await,
                    None => Ok(()),
                }
            },
            async move {
                match http {
                    Some(f) => f.await,
                    None => Ok(()),
                }
            }
        );
        grpc.and(http)
    }
}
