//! The `loki` exporter: turns a batch of log records into one push and sends it.

use sluice_pipeline::factory::{ComponentContext, Exporter};
use sluice_pipeline::{Batch, BuildError, ExportError, Payload};

use super::config::{LokiCompression, LokiExporterConfig, LokiFormat};
use super::encode::{encode_push, LabelRules};
use super::push::PushClient;

/// Pushes each batch of logs to Loki in one request; the runtime queues and retries.
#[derive(Debug)]
pub struct LokiExporter {
    client: PushClient,
    rules: LabelRules,
    format: LokiFormat,
    compression: LokiCompression,
    id: String,
}

impl LokiExporter {
    /// Prepares the client from a validated config; connects nothing.
    pub fn new(config: &LokiExporterConfig, ctx: &ComponentContext) -> Result<Self, BuildError> {
        Ok(LokiExporter {
            client: PushClient::new(config)?,
            rules: LabelRules::new(&config.labels),
            format: config.format,
            compression: config.compression,
            id: ctx.id.to_string(),
        })
    }

    /// The client, for tests that post hand-made bodies.
    #[cfg(test)]
    pub(crate) fn client(&self) -> &PushClient {
        &self.client
    }
}

#[async_trait::async_trait]
impl Exporter for LokiExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let Payload::Logs(logs) = &batch.payload else {
            // The pipeline graph only wires the `logs` signal to us.
            return Err(ExportError::permanent(format!(
                "the loki exporter takes logs, not {}",
                batch.signal()
            )));
        };
        let body = encode_push(logs, &self.rules, self.format, self.compression)
            .map_err(|e| ExportError::permanent(e.to_string()))?;
        if body.is_empty() {
            return Ok(());
        }
        let result = self.client.push(body.into()).await;
        if let Err(e) = &result {
            tracing::debug!(
                component_kind = "exporter",
                component_id = %self.id,
                url = %self.client.url(),
                error = %e,
                "Loki push failed."
            );
        }
        result
    }
}
