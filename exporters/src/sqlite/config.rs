//! The `sqlite` exporter's configuration: where the file lives, how long each tier is kept, the
//! size cap, and how often maintenance runs.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sluice_pipeline::config::ValidationError;
use sluice_pipeline::retry::{DeliveryConfig, QueueConfig, RetryConfig};
use sluice_pipeline::Validate;

const DAY: u64 = 24 * 3600;
/// A month as humantime counts it (30.44 days), so `13months` in YAML equals the default.
const MONTH: u64 = 2_630_016;

/// How long each kind of data is kept, measured from its timestamp against the exporter's clock.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteRetentionConfig {
    /// Raw metric data points (every kind). Default `7d`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub raw: Duration,
    /// 1-minute rollups of gauge and sum points. Default `90d`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub minute: Duration,
    /// 1-hour rollups of gauge and sum points. Default `13months` (395.7 days).
    #[serde(with = "sluice_pipeline::config::duration")]
    pub hour: Duration,
    /// Spans, with their events and links (by start time). Default `7d`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub spans: Duration,
    /// Log records (by time, else observed time). Default `7d`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub logs: Duration,
}

impl Default for SqliteRetentionConfig {
    fn default() -> Self {
        SqliteRetentionConfig {
            raw: Duration::from_secs(7 * DAY),
            minute: Duration::from_secs(90 * DAY),
            hour: Duration::from_secs(13 * MONTH),
            spans: Duration::from_secs(7 * DAY),
            logs: Duration::from_secs(7 * DAY),
        }
    }
}

/// SQLite's `synchronous` setting in WAL mode: how durable a commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// A commit survives the process being killed; a power cut or OS crash may lose the last
    /// ones (the WAL is synced at checkpoints only). The fastest.
    #[default]
    Normal,
    /// The WAL is synced at every commit: a commit also survives a power cut. Each group of
    /// batches then costs an fsync.
    Full,
}

impl Synchronous {
    /// The pragma's value.
    pub fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Configuration of the `sqlite` exporter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteExporterConfig {
    /// The database file; its directories are created. Default `sluice.db` in the exporter's
    /// storage directory (`<data_dir>/exporter/sqlite[_<name>]/sluice.db`).
    pub path: Option<PathBuf>,
    /// How long each tier is kept; see [`SqliteRetentionConfig`].
    pub retention: SqliteRetentionConfig,
    /// Size cap of the database file, in MiB: when exceeded, the oldest raw data (points, spans,
    /// logs) is deleted first, then the oldest rollups, and the freed pages are returned to the
    /// file system (incremental vacuum). Default `500`; at least `1`.
    pub max_size_mb: u64,
    /// How often the maintenance pass (rollups, retention, size cap) runs. Default `60s`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub maintenance_interval: Duration,
    /// `normal` (default) or `full`; see [`Synchronous`].
    pub synchronous: Synchronous,
    /// How long a write waits for a lock held by another connection before the batch is retried
    /// (`SQLITE_BUSY`). Default `1s`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub busy_timeout: Duration,
    /// Deadline of one export (queueing for the writer and the commit). Default `30s`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub timeout: Duration,
    /// Retries of a busy or locked database: exponential backoff with jitter. Defaults as in
    /// the Collector.
    pub retry_on_failure: RetryConfig,
    /// The in-memory queue in front of the exporter. Several consumers let the single writer
    /// commit several batches in one transaction. Defaults as in the Collector.
    pub sending_queue: QueueConfig,
}

impl Default for SqliteExporterConfig {
    fn default() -> Self {
        SqliteExporterConfig {
            path: None,
            retention: SqliteRetentionConfig::default(),
            max_size_mb: 500,
            maintenance_interval: Duration::from_secs(60),
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
        }
    }
}

impl SqliteExporterConfig {
    /// The delivery settings the runtime wraps the exporter in.
    pub fn delivery(&self) -> DeliveryConfig {
        DeliveryConfig {
            timeout: self.timeout,
            retry_on_failure: self.retry_on_failure.clone(),
            sending_queue: self.sending_queue.clone(),
        }
    }

    /// The size cap in bytes.
    pub fn max_size_bytes(&self) -> u64 {
        self.max_size_mb.saturating_mul(1024 * 1024)
    }
}

impl Validate for SqliteExporterConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if let Some(p) = &self.path {
            if p.as_os_str().is_empty() {
                return Err(ValidationError::new(
                    "path",
                    "must not be empty; leave it out for the default",
                ));
            }
        }
        let r = &self.retention;
        for (key, d) in [
            ("retention::raw", r.raw),
            ("retention::minute", r.minute),
            ("retention::hour", r.hour),
            ("retention::spans", r.spans),
            ("retention::logs", r.logs),
        ] {
            if d.is_zero() {
                return Err(ValidationError::new(key, "must be greater than 0s"));
            }
        }
        if self.max_size_mb == 0 {
            return Err(ValidationError::new("max_size_mb", "must be at least 1"));
        }
        if self.maintenance_interval.is_zero() {
            return Err(ValidationError::new(
                "maintenance_interval",
                "must be greater than 0s",
            ));
        }
        self.delivery().validate()
    }
}
