//! The `sqlite` exporter: stores metrics, spans and log records in one local SQLite file (the
//! bundled SQLite, no system library), the long-term store of a single machine.
//!
//! - **Signals**: metrics (gauge, sum, histogram with bucket counts, exponential histogram,
//!   summary), traces (spans with events and links), logs (with `event_name`, so the `sli`
//!   processor's `sluice.sli.alert` events are stored like any record).
//! - **File**: `path` (default `<data_dir>/exporter/sqlite/sluice.db`), its directories created;
//!   WAL journal, `synchronous` (`normal`, or `full` to sync every commit), `auto_vacuum =
//!   INCREMENTAL`. A `schema_version` table
//!   and ordered migrations (`schema.rs`); resources, scopes and metric series are deduplicated.
//!   The schema and example queries are in the README ("Local storage").
//! - **Writes**: one writer thread owns the connection; `export` queues the batch to it over a
//!   bounded channel and returns once the transaction holding it committed. Batches queued
//!   together (several `sending_queue` consumers) commit in one transaction.
//! - **Tiers**: raw points (`retention.raw`, 7 days), 1-minute and 1-hour rollups of gauge and
//!   sum points with count/sum/min/max/last (`retention.minute` 90 days, `retention.hour` 13
//!   months), spans and logs (`retention.spans`, `retention.logs`, 7 days). Rollups are folded
//!   in incrementally, never recomputed: the writer adds committed points to pending buckets in
//!   memory, which a pass merges into the tables together with a watermark on `points.id`;
//!   points the writer did not fold (a crash lost them) are read back after the watermark.
//!   Histogram, exponential histogram and summary points are kept raw only.
//! - **Maintenance** every `maintenance_interval` (60 s): rollups, retention, then the size cap
//!   (`max_size_mb`, 500): over it, the oldest raw data goes first (points, spans, logs), then the
//!   oldest rollups, until the file is under 90 % of the cap; freed pages are returned with
//!   `incremental_vacuum`, and the WAL is checkpointed and truncated. Every step is its own
//!   transaction (at most 10,000 rows deleted, 50,000 points folded), and queued batches are
//!   written between steps.
//! - **Delivery guarantee**: a batch is acknowledged once committed; a committed batch survives
//!   `kill -9` of sluice (a power cut may lose the last ones under `synchronous = NORMAL`). A
//!   busy or locked database (another process holding the lock past `busy_timeout`) is retried
//!   by `retry_on_failure`; a full disk (`SQLITE_FULL`) drops the batch, counted in
//!   `sluice_exporter_disk_full_<unit>` and `sluice_exporter_send_failed_<unit>`, with an error
//!   log naming the file.
//!
//! ```yaml
//! exporters:
//!   sqlite:
//!     path: /var/lib/sluice/telemetry.db
//!     max_size_mb: 500
//!     retention:
//!       raw: 7d
//!       minute: 90d
//!       hour: 13months
//!       spans: 7d
//!       logs: 7d
//! ```

mod clock;
mod config;
mod encode;
mod error;
mod exporter;
pub(crate) mod maintain;
mod schema;
mod store;
#[cfg(test)]
mod tests;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{SqliteExporterConfig, SqliteRetentionConfig, Synchronous};
pub use error::SqliteError;
pub use exporter::SqliteExporter;
pub use maintain::{Pass, PassReport};
/// The SQLite binding, for reading a [`Store::connection`].
pub use rusqlite;
pub use schema::{current_version as schema_version, MIGRATIONS};
pub use store::{Store, StoreOptions};

use sluice_pipeline::factory::{ComponentContext, Exporter, ExporterPlugin, Stability};
use sluice_pipeline::retry::DeliveryConfig;
use sluice_pipeline::{BuildError, Signal};

/// The factory of the `sqlite` exporter.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteExporterFactory;

impl ExporterPlugin for SqliteExporterFactory {
    type Config = SqliteExporterConfig;
    const TYPE: &'static str = "sqlite";
    const SIGNALS: &'static [Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];
    const STABILITY: Stability = Stability::Alpha;
    const EXAMPLE: &'static str = "max_size_mb: 50\n";

    fn delivery(config: &SqliteExporterConfig) -> DeliveryConfig {
        config.delivery()
    }

    fn build(
        &self,
        config: SqliteExporterConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Exporter>, BuildError> {
        Ok(Box::new(SqliteExporter::new(&config, &ctx)?))
    }
}

sluice_pipeline::register_exporter!(SqliteExporterFactory);
