//! Errors of the `summary` exporter.

use std::path::PathBuf;

/// What can go wrong while writing the report.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// The output directory could not be created.
    #[error("cannot create output directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written or renamed into place.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// plotters failed to draw or encode a chart.
    #[error("cannot render chart {name}: {reason}")]
    Chart { name: &'static str, reason: String },
    /// The embedded font could not be registered with plotters.
    #[error("the embedded font could not be loaded")]
    Font,
    /// The blocking render task panicked or was cancelled.
    #[error("the render task failed: {0}")]
    Task(String),
}
