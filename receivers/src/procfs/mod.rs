//! The `procfs` receiver: host and process metrics read from Linux's `/proc`.
//!
//! Every `collection_interval` it reads `/proc/stat` (CPU time, boot time), `/proc/meminfo`
//! (memory, swap), `/proc/loadavg`, `/proc/net/dev` (per interface), `/proc/diskstats` (per whole
//! disk), `/proc/mounts` with `statvfs` of each real filesystem, and `/proc/<pid>/{stat,statm,
//! cmdline}` for the top processes by CPU and by resident memory. Metric names follow the
//! OpenTelemetry host-metrics semantic conventions:
//!
//! - `system.cpu.time` (s, cumulative, per `cpu.mode`), `system.cpu.utilization` (1),
//!   `system.cpu.logical.count`, `system.cpu.load_average.{1m,5m,15m}`
//! - `system.memory.usage` (By, `system.memory.state` used = total − available, free, cached,
//!   buffers), `system.memory.utilization`, `system.memory.limit`, `system.paging.usage`
//! - `system.network.{io,packets,errors}` (cumulative), `system.network.io.rate` (By/s)
//! - `system.disk.{io,operations,io_time}` (cumulative), `system.disk.io.rate` (By/s)
//! - `system.filesystem.usage` (By, used/free/reserved), `system.filesystem.utilization`
//! - per process: `process.cpu.time`, `process.cpu.utilization` (1 = one core),
//!   `process.memory.usage` (RSS), `process.memory.virtual`
//!
//! Host metrics form one resource (`host.name`, `os.type`), each process its own (`process.pid`,
//! `process.parent_pid`, `process.executable.name`, `process.command_line`, plus the host's);
//! the scope is `sluice/procfs`. Cumulative sums start at boot. Utilizations and rates cover the
//! time since the previous scrape, so the first scrape has none; rates are not rounded.
//!
//! Signals: metrics only. Delivery: at most once. Each scrape is one batch; a pipeline that stays
//! full refuses it (counted as refused) and the next scrape carries the cumulative values
//! forward. Anything unreadable or malformed (a process exiting mid-read, a mount that cannot be
//! `statvfs`ed) is skipped, logged at debug level and counted in
//! `sluice_receiver_procfs_scrape_errors`; it never stops a scrape.
//!
//! ```yaml
//! receivers:
//!   procfs:
//!     collection_interval: 10s
//!     top_processes: 5
//!     scrapers:
//!       filesystem: false
//! ```

mod config;
mod cpu;
mod disk;
mod error;
mod filesystem;
mod load;
mod memory;
mod network;
mod otlp;
mod process;
mod receiver;
mod scraper;
mod sys;
#[cfg(test)]
mod tests;

pub use config::{ProcfsReceiverConfig, ProcfsScrapers};
pub use error::ProcfsError;
pub use filesystem::SKIPPED_FS_TYPES;
pub use process::MAX_COMMAND_LINE_CHARS;
pub use receiver::ProcfsReceiver;
pub use scraper::Scraper;

use sluice_pipeline::factory::{ComponentContext, Receiver, ReceiverPlugin, Stability};
use sluice_pipeline::{BuildError, Signal};

/// The name of the counter of things a scrape skipped.
pub const SCRAPE_ERRORS_COUNTER: &str = "sluice_receiver_procfs_scrape_errors";

/// Builds `procfs` receivers.
#[derive(Debug, Clone, Copy)]
pub struct ProcfsReceiverFactory;

impl ReceiverPlugin for ProcfsReceiverFactory {
    type Config = ProcfsReceiverConfig;
    const TYPE: &'static str = "procfs";
    const SIGNALS: &'static [Signal] = &[Signal::Metrics];
    const STABILITY: Stability = Stability::Alpha;
    const EXAMPLE: &'static str = "collection_interval: 1s\n";

    fn build(
        &self,
        config: ProcfsReceiverConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Receiver>, BuildError> {
        let errors = ctx.telemetry.counter_named(SCRAPE_ERRORS_COUNTER);
        let scraper = Scraper::new(&config, errors).map_err(|e| {
            BuildError::Config(format!(
                "root_path `{}` holds no readable procfs: {e}",
                config.root_path.display()
            ))
        })?;
        Ok(Box::new(ProcfsReceiver::new(
            scraper,
            config.collection_interval,
        )))
    }
}

sluice_pipeline::register_receiver!(ProcfsReceiverFactory);
