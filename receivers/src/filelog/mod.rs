//! The `filelog` receiver: tails log files into log records, as the Collector's filelogreceiver.
//!
//! Every `poll_interval` (default 200ms) it expands the `include` globs (minus `exclude`), picks
//! up new files, and reads what each file gained in chunks of at most 1 MiB, each chunk one or
//! more batches of at most `max_batch_size` records; `Output::send` waits for room, so a file
//! growing faster than the pipeline drains is read only as fast as it drains, and memory stays
//! bounded by a chunk plus one held record per file. Records are lines (`\n`, a trailing `\r`
//! dropped), or multi-line records started by `multiline.line_start_pattern`; a record longer
//! than `max_log_size` is split. Bodies are UTF-8 (invalid bytes replaced), plain or JSON
//! (`format: json`: fields become attributes, `json.body_field` the body); `severity` comes from
//! a JSON field or a regex group. Records carry `log.file.name` (default) and `log.file.path`
//! (opt-in), `observed_time_unix_nano`; one resource per batch (one file), scope
//! `sluice/filelog`.
//!
//! Rotation: a file is known by device and inode, so a rename (rename-and-create rotation) is
//! followed, and the old file is read to its end, as is a file deleted while open. Truncation
//! (copytruncate) is detected by size and by the file's first 1 KiB (checked before the globs
//! are expanded, and again after each read). A new file is not read while its content agrees
//! with a tailed file's first bytes (an empty file, or a copy being made): when that file is
//! then truncated, the copy (matched by `include`, e.g. `app.log*`) carries on from where the
//! original was, and the original is read from its start: nothing lost, nothing twice. A new
//! file is read from its start as soon as its content differs; a copy that agrees with a file
//! still being tailed is what that file delivers, and is not read again (like the Collector's
//! fingerprint, a file whose first 1 KiB equals a tailed file's is taken for its copy).
//! Without the copy in `include`, lines written between the last read and the truncation are
//! lost (counted in `sluice_receiver_filelog_truncations`).
//!
//! At shutdown every file is read once more to its end, and a last line without its newline is
//! sent, so what was written just before shutdown is not left for the next start.
//!
//! Delivery: at least once. Each batch carries an [`sluice_pipeline::Ack`]; a file's checkpoint
//! (device, inode, hash of the first 1 KiB, offset) advances only over batches acknowledged
//! `Done` by every exporter, in read order, and is written atomically to
//! `<storage>/checkpoints.json` after every poll (and, after shutdown, on each late ack). A
//! batch that fails (refused by a full pipeline, or abandoned at the shutdown deadline) rewinds
//! its file to the last acknowledged offset. After a crash (kill -9) a restart resumes at the
//! checkpoints: what was read but not acknowledged is delivered again, nothing is skipped. Not
//! covered: a file rotated out of `include` while sluice was down is not read again.
//!
//! Counters (`{receiver="<id>"}`), each event also logged: `sluice_receiver_filelog_
//! {invalid_utf8_records, split_records, json_errors, read_errors, truncations, replays,
//! checkpoint_errors, files_opened}`.
//!
//! ```yaml
//! receivers:
//!   filelog:
//!     include: [/var/log/app/*.log]
//!     exclude: [/var/log/app/debug.log]
//!     start_at: beginning
//!     multiline: { line_start_pattern: '^\d{4}-\d{2}-\d{2}' }
//!     severity: { regex: '^\S+ (?P<severity>[A-Z]+) ' }
//! ```

mod checkpoint;
mod config;
mod glob;
mod parse;
mod receiver;
mod split;
#[cfg(test)]
mod tests;
mod tracker;

pub use checkpoint::{
    fnv1a, CheckpointStore, FilelogCheckpoint, CHECKPOINT_FILE, FINGERPRINT_SIZE,
};
pub use config::{
    parse_byte_size, FilelogReceiverConfig, JsonConfig, LogFormat, MultilineConfig, SeverityConfig,
    StartAt, DEFAULT_MAX_LOG_SIZE,
};
pub use glob::Pattern;
pub use parse::{severity_number, ParseIssues, RecordParser};
pub use receiver::{FilelogCounters, FilelogReceiver, READ_CHUNK};
pub use split::{RawRecord, Splitter};

use sluice_pipeline::factory::{ComponentContext, Receiver, ReceiverPlugin, Stability};
use sluice_pipeline::{BuildError, Signal};

/// Builds `filelog` receivers.
#[derive(Debug, Clone, Copy)]
pub struct FilelogReceiverFactory;

impl ReceiverPlugin for FilelogReceiverFactory {
    type Config = FilelogReceiverConfig;
    const TYPE: &'static str = "filelog";
    const SIGNALS: &'static [Signal] = &[Signal::Logs];
    const STABILITY: Stability = Stability::Alpha;
    const EXAMPLE: &'static str = "include: [/var/log/sluice-example-*.log]\n";

    fn build(
        &self,
        config: FilelogReceiverConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Receiver>, BuildError> {
        let storage = match &config.storage {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    BuildError::io(format!("cannot create directory {}", dir.display()), e)
                })?;
                dir.clone()
            }
            None => ctx.storage_dir()?,
        };
        let c = |name: &str| {
            ctx.telemetry
                .counter_named(&format!("sluice_receiver_filelog_{name}"))
        };
        let counters = FilelogCounters {
            invalid_utf8: c("invalid_utf8_records"),
            split: c("split_records"),
            json_errors: c("json_errors"),
            read_errors: c("read_errors"),
            truncations: c("truncations"),
            replays: c("replays"),
            checkpoint_errors: c("checkpoint_errors"),
            files_opened: c("files_opened"),
        };
        let receiver =
            FilelogReceiver::new(config, storage, counters).map_err(BuildError::Config)?;
        Ok(Box::new(receiver))
    }
}

sluice_pipeline::register_receiver!(FilelogReceiverFactory);
