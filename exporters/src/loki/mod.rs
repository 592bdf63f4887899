//! The `loki` exporter: pushes logs to Grafana Loki's push API, `POST
//! <endpoint>/loki/api/v1/push`.
//!
//! - **Signals**: logs.
//! - **Wire**: by default a `logproto.PushRequest` (Loki's `push.proto`, compiled into
//!   `sluice_proto::loki`) compressed with snappy's block format,
//!   `Content-Type: application/x-protobuf`, as Promtail sends; `format: json` sends
//!   `{"streams":[{"stream":{…},"values":[["<ns>","<line>",{…}]]}]}`, gzip-compressed with
//!   `compression: gzip`. `tenant_id` goes as `X-Scope-OrgID`; `auth.basic` or
//!   `auth.bearer_token` as `Authorization`; `headers` with every push. Plain `http://` only:
//!   TLS is not supported yet.
//! - **Streams**: a record's labels are the resource attributes in `labels.resource` (default
//!   `service.name`), the record attributes in `labels.attributes`, `level` from the severity
//!   with `labels.severity: true`, and `labels.static`; names sanitised to Loki's
//!   `[a-zA-Z_][a-zA-Z0-9_]*` (`service.name` → `service_name`). A record with none gets
//!   `exporter="sluice"`, since Loki refuses a stream without labels. Every other attribute,
//!   `trace_id`, `span_id`, `severity_text` and `scope_name` go as structured metadata (Loki 3,
//!   or 2.9 with it enabled). The line is the body: a string as is, other values as JSON.
//!   Entries are sorted by timestamp within each stream.
//! - **Delivery guarantee**: at least once while retries last. One push per batch; the runtime's
//!   `sending_queue` and `retry_on_failure` retry 429 and 5xx answers (never sooner than
//!   `Retry-After`) and connection failures and timeouts. Any other answer (400 for bad labels or
//!   entries too old, 401, 403, 413) is permanent, counted as dropped.
//!
//! ```yaml
//! exporters:
//!   loki:
//!     endpoint: http://127.0.0.1:3100
//!   loki/cloud:
//!     endpoint: http://loki.internal:3100
//!     format: json
//!     compression: gzip
//!     tenant_id: team-a
//!     auth:
//!       basic: { username: "123456", password: "${env:LOKI_TOKEN}" }
//!     labels:
//!       resource: [service.name, deployment.environment]
//!       attributes: [http.route]
//!       severity: true
//!       static: { cluster: eu-1 }
//! ```

mod config;
mod encode;
mod exporter;
mod push;
#[cfg(test)]
mod tests;

pub use crate::http_client::parse_retry_after;
pub use config::{
    LokiAuthConfig, LokiBasicAuth, LokiCompression, LokiExporterConfig, LokiFormat,
    LokiLabelsConfig, PUSH_PATH,
};
pub use encode::{
    encode_push, group_streams, labels_text, sanitize_label_name, LabelRules, LokiEntry, LokiStream,
};
pub use exporter::LokiExporter;
pub use push::{classify, TENANT_HEADER};

use sluice_pipeline::factory::{ComponentContext, Exporter, ExporterPlugin, Stability};
use sluice_pipeline::retry::DeliveryConfig;
use sluice_pipeline::{BuildError, Signal};

/// The factory of the `loki` exporter.
#[derive(Debug, Clone, Copy, Default)]
pub struct LokiExporterFactory;

impl ExporterPlugin for LokiExporterFactory {
    type Config = LokiExporterConfig;
    const TYPE: &'static str = "loki";
    const SIGNALS: &'static [Signal] = &[Signal::Logs];
    const STABILITY: Stability = Stability::Alpha;
    const EXAMPLE: &'static str = "endpoint: http://127.0.0.1:3100\n";

    fn delivery(config: &LokiExporterConfig) -> DeliveryConfig {
        config.delivery()
    }

    fn build(
        &self,
        config: LokiExporterConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Exporter>, BuildError> {
        Ok(Box::new(LokiExporter::new(&config, &ctx)?))
    }
}

sluice_pipeline::register_exporter!(LokiExporterFactory);
