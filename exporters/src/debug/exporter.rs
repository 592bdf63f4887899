//! The running debug exporter: formats each batch, then writes it with one `write_all` under a
//! lock, so the text of concurrent exports never interleaves.

use std::fmt;
use std::io::Write;
use std::sync::Mutex;

use sluice_pipeline::factory::Exporter;
use sluice_pipeline::{Batch, ExportError};

use super::config::{DebugExporterConfig, Verbosity};
use super::format::format_batch;

/// Writes every batch as text to stderr (or to the writer it was given).
pub struct DebugExporter {
    verbosity: Verbosity,
    writer: Mutex<Box<dyn Write + Send>>,
}

impl DebugExporter {
    /// An exporter writing to stderr.
    pub fn new(config: &DebugExporterConfig) -> DebugExporter {
        DebugExporter::with_writer(config, Box::new(std::io::stderr()))
    }

    /// An exporter writing to `writer` (tests capture the output this way).
    pub fn with_writer(
        config: &DebugExporterConfig,
        writer: Box<dyn Write + Send>,
    ) -> DebugExporter {
        DebugExporter {
            verbosity: config.verbosity,
            writer: Mutex::new(writer),
        }
    }

    fn write(&self, text: &[u8]) -> std::io::Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.write_all(text)?;
        w.flush()
    }
}

impl fmt::Debug for DebugExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DebugExporter")
            .field("verbosity", &self.verbosity)
            .finish_non_exhaustive()
    }
}

#[sluice_pipeline::async_trait]
impl Exporter for DebugExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let mut text = String::new();
        format_batch(&batch.payload, self.verbosity, &mut text);
        self.write(text.as_bytes()).map_err(|e| {
            ExportError::permanent(format!("cannot write to the debug exporter's output: {e}"))
        })
    }

    async fn shutdown(&self) -> Result<(), ExportError> {
        self.write(&[]).map_err(|e| {
            ExportError::permanent(format!("cannot flush the debug exporter's output: {e}"))
        })
    }
}
