//! The `debug` exporter's configuration, named as in the Collector's debug exporter.

use serde::Deserialize;
use sluice_pipeline::Validate;

/// How much the debug exporter writes per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    /// One summary line per batch: resource and item counts.
    #[default]
    Basic,
    /// The summary line, then one line per resource, scope and item (span, data point, log
    /// record) with its attributes.
    Normal,
    /// The summary line, then every field of every item, in the Collector's layout.
    Detailed,
}

/// Configuration of the `debug` exporter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugExporterConfig {
    /// `basic`, `normal` or `detailed`: how much is written to stderr per batch (see
    /// [`Verbosity`]). Default `basic`.
    pub verbosity: Verbosity,
}

impl Default for DebugExporterConfig {
    fn default() -> Self {
        DebugExporterConfig {
            verbosity: Verbosity::Basic,
        }
    }
}

impl Validate for DebugExporterConfig {}
