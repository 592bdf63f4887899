//! The exporter: one writer thread owns the SQLite connection; `export` hands batches to it over
//! a bounded channel and awaits the commit, so the tokio runtime never blocks on SQLite.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sluice_pipeline::factory::{ComponentContext, Exporter};
use sluice_pipeline::telemetry::ComponentTelemetry;
use sluice_pipeline::{Batch, BuildError, ExportError, Payload};
use tokio::sync::{mpsc, oneshot};

use super::clock::{Clock, SystemClock};
use super::config::{SqliteExporterConfig, SqliteRetentionConfig};
use super::error::SqliteError;
use super::maintain::{Pass, PassReport};
use super::store::{Store, StoreOptions};

/// Batches waiting for the writer at most (the runtime's queue is in front of this).
const CHANNEL_CAPACITY: usize = 64;
/// A transaction takes at most this many queued batches …
const GROUP_BATCHES: usize = 64;
/// … or about this many items.
const GROUP_ITEMS: usize = 200_000;

/// The outcome of a write, and the payload handed back: it is dropped by the exporting task,
/// not by the writer thread (freeing a large payload was a tenth of the writer's time).
pub(super) type WriteReply = oneshot::Sender<(Result<(), ExportError>, Payload)>;
pub(super) type MaintainReply = oneshot::Sender<Result<PassReport, String>>;

pub(super) enum Command {
    Write { payload: Payload, reply: WriteReply },
    Maintain { reply: Option<MaintainReply> },
}

/// Writes every signal into one SQLite file; see the module docs.
pub struct SqliteExporter {
    path: PathBuf,
    options: StoreOptions,
    retention: SqliteRetentionConfig,
    maintenance_interval: Duration,
    clock: Arc<dyn Clock>,
    telemetry: ComponentTelemetry,
    tx: Mutex<Option<mpsc::Sender<Command>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SqliteExporter {
    /// An exporter on the system clock; opens nothing until `start`.
    pub fn new(config: &SqliteExporterConfig, ctx: &ComponentContext) -> Result<Self, BuildError> {
        Self::with_clock(config, ctx, Arc::new(SystemClock))
    }

    /// An exporter whose retention is measured against `clock` (tests simulate months with a
    /// [`super::ManualClock`]).
    pub fn with_clock(
        config: &SqliteExporterConfig,
        ctx: &ComponentContext,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, BuildError> {
        let path = match &config.path {
            Some(p) => p.clone(),
            None => ctx.storage_dir()?.join("sluice.db"),
        };
        Ok(SqliteExporter {
            path,
            options: StoreOptions {
                busy_timeout: config.busy_timeout,
                max_size_bytes: config.max_size_bytes(),
                synchronous: config.synchronous,
            },
            retention: config.retention.clone(),
            maintenance_interval: config.maintenance_interval,
            clock,
            telemetry: ctx.telemetry.clone(),
            tx: Mutex::new(None),
            thread: Mutex::new(None),
            timer: Mutex::new(None),
        })
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn sender(&self) -> Result<mpsc::Sender<Command>, ExportError> {
        lock(&self.tx)
            .clone()
            .ok_or_else(|| SqliteError::WriterStopped.to_export_error())
    }

    /// Runs a whole maintenance pass now (between writes, as the timer does) and returns what
    /// it did.
    pub async fn maintain_now(&self) -> Result<PassReport, String> {
        let (reply, rx) = oneshot::channel();
        self.sender()
            .map_err(|e| e.to_string())?
            .send(Command::Maintain { reply: Some(reply) })
            .await
            .map_err(|_| SqliteError::WriterStopped.to_string())?;
        rx.await
            .map_err(|_| SqliteError::WriterStopped.to_string())?
    }
}

#[async_trait::async_trait]
impl Exporter for SqliteExporter {
    async fn start(&mut self) -> Result<(), BuildError> {
        let path = self.path.clone();
        let options = self.options.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&path, options))
            .await
            .map_err(|e| BuildError::Other(format!("opening the SQLite database panicked: {e}")))?
            .map_err(|e| BuildError::Other(e.to_string()))?;
        tracing::info!(component_kind = "exporter", component_id = %self.telemetry.id(), path = %self.path.display(), "Opened the SQLite database.");
        let (tx, thread) = spawn_writer(
            store,
            self.retention.clone(),
            self.clock.clone(),
            self.telemetry.clone(),
        )
        .map_err(|e| BuildError::io("cannot start the SQLite writer thread", e))?;
        *lock(&self.thread) = Some(thread);
        let timer_tx = tx.clone();
        let every = self.maintenance_interval;
        *lock(&self.timer) = Some(tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                // A full channel means the writer is busy: skip this tick rather than queue.
                match timer_tx.try_send(Command::Maintain { reply: None }) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
        }));
        *lock(&self.tx) = Some(tx);
        Ok(())
    }

    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        if batch.payload.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.sender()?
            .send(Command::Write {
                payload: batch.payload.clone(),
                reply,
            })
            .await
            .map_err(|_| SqliteError::WriterStopped.to_export_error())?;
        let (result, payload) = rx
            .await
            .map_err(|_| SqliteError::WriterStopped.to_export_error())?;
        drop(payload);
        result
    }

    async fn shutdown(&self) -> Result<(), ExportError> {
        if let Some(timer) = lock(&self.timer).take() {
            timer.abort();
        }
        // Dropping the last sender ends the writer once it has drained the channel.
        drop(lock(&self.tx).take());
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| ExportError::permanent(format!("SQLite writer: {e}")))?
                .map_err(|_| ExportError::permanent("the SQLite writer thread panicked"))?;
        }
        Ok(())
    }
}

/// Starts the writer thread on `store`; it ends when every sender is dropped.
pub(super) fn spawn_writer(
    store: Store,
    retention: SqliteRetentionConfig,
    clock: Arc<dyn Clock>,
    telemetry: ComponentTelemetry,
) -> std::io::Result<(mpsc::Sender<Command>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let writer = WriterLoop {
        store,
        rx,
        retention,
        clock,
        telemetry,
        pass: None,
        waiters: Vec::new(),
        held: None,
    };
    let thread = std::thread::Builder::new()
        .name("sluice-sqlite".into())
        .spawn(move || writer.run())?;
    Ok((tx, thread))
}

/// The writer thread: owns the store, commits groups of queued batches, and runs maintenance
/// steps while no batch waits.
struct WriterLoop {
    store: Store,
    rx: mpsc::Receiver<Command>,
    retention: SqliteRetentionConfig,
    clock: Arc<dyn Clock>,
    telemetry: ComponentTelemetry,
    pass: Option<Pass>,
    waiters: Vec<MaintainReply>,
    /// A command taken off the channel while grouping writes, handled next.
    held: Option<Command>,
}

impl WriterLoop {
    fn run(mut self) {
        loop {
            let cmd = match self.held.take() {
                Some(c) => Some(c),
                None if self.pass.is_some() => match self.rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(mpsc::error::TryRecvError::Empty) => None,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                },
                None => match self.rx.blocking_recv() {
                    Some(c) => Some(c),
                    None => break,
                },
            };
            match cmd {
                None => self.maintenance_step(),
                Some(Command::Maintain { reply }) => {
                    if self.pass.is_none() {
                        self.pass = Some(Pass::new(self.clock.now_unix_nanos()));
                    }
                    self.waiters.extend(reply);
                }
                Some(Command::Write { payload, reply }) => self.write_group(payload, reply),
            }
        }
        // Shutting down: fold the pending rollups (else the next start reads their points back),
        // and leave a checkpointed file with a truncated WAL behind.
        if let Err(e) = self.store.flush_pending() {
            tracing::warn!(path = %self.store.path().display(), error = %e, "Folding the SQLite rollups at shutdown failed; the next start folds them from the raw points.");
        }
        if let Err(e) =
            self.store
                .connection()
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(path = %self.store.path().display(), error = %e, "SQLite checkpoint at shutdown failed.");
        }
        for w in self.waiters.drain(..) {
            let _ = w.send(Err(SqliteError::WriterStopped.to_string()));
        }
    }

    fn maintenance_step(&mut self) {
        let Some(pass) = self.pass.as_mut() else {
            return;
        };
        let result = self.store.maintenance_step(pass, &self.retention);
        let outcome = match result {
            Ok(true) => return,
            Ok(false) => {
                let r = pass.report.clone();
                tracing::debug!(path = %self.store.path().display(), rolled_up = r.rolled_up, expired = r.expired, evicted = r.evicted, vacuumed_pages = r.vacuumed_pages, "SQLite maintenance pass done.");
                if r.evicted > 0 {
                    tracing::info!(path = %self.store.path().display(), rows = r.evicted, "Deleted the oldest SQLite rows to stay under max_size_mb.");
                }
                Ok(r)
            }
            Err(e) => {
                tracing::warn!(path = %self.store.path().display(), error = %e, "SQLite maintenance failed; it runs again at the next interval.");
                Err(e.to_string())
            }
        };
        self.pass = None;
        for w in self.waiters.drain(..) {
            let _ = w.send(outcome.clone());
        }
    }

    fn write_group(&mut self, payload: Payload, reply: WriteReply) {
        let mut items = payload.item_count();
        let mut group = vec![(payload, reply)];
        while group.len() < GROUP_BATCHES && items < GROUP_ITEMS {
            match self.rx.try_recv() {
                Ok(Command::Write { payload, reply }) => {
                    items += payload.item_count();
                    group.push((payload, reply));
                }
                Ok(other) => {
                    self.held = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        // An export that timed out (its caller gone) is not written: the runtime retries it.
        group.retain(|(_, reply)| !reply.is_closed());
        if group.is_empty() {
            return;
        }
        let payloads: Vec<&Payload> = group.iter().map(|(p, _)| p).collect();
        match self.store.write(&payloads) {
            Ok(()) => {
                for (payload, reply) in group {
                    let _ = reply.send((Ok(()), payload));
                }
            }
            Err(e) if group.len() > 1 && !e.is_busy() && !e.is_full() => {
                // One batch may be at fault: commit the others one by one.
                for (payload, reply) in group {
                    let r = self.store.write(&[&payload]);
                    let r = r.map_err(|e| self.failed(&payload, &e));
                    let _ = reply.send((r, payload));
                }
            }
            Err(e) => {
                for (payload, reply) in group {
                    let failed = self.failed(&payload, &e);
                    let _ = reply.send((Err(failed), payload));
                }
            }
        }
        if self.store.pending_is_large() {
            if let Err(e) = self.store.flush_pending() {
                tracing::warn!(path = %self.store.path().display(), error = %e, "Folding the SQLite rollups failed; the next maintenance pass folds them from the raw points.");
            }
        }
        self.check_size();
    }

    fn failed(&self, payload: &Payload, e: &SqliteError) -> ExportError {
        if e.is_full() {
            let items = payload.item_count();
            self.telemetry
                .counter("disk_full", payload.signal())
                .add(items as u64);
            tracing::error!(component_kind = "exporter", component_id = %self.telemetry.id(), path = %self.store.path().display(), signal = payload.signal().as_str(), count = items, "SQLite database or disk is full; the batch is dropped. Free disk space or lower max_size_mb.");
        } else if !e.is_busy() {
            tracing::warn!(component_kind = "exporter", component_id = %self.telemetry.id(), error = %e, "SQLite write failed.");
        }
        e.to_export_error()
    }

    /// Starts a maintenance pass as soon as the file outgrows its cap.
    fn check_size(&mut self) {
        if self.pass.is_some() {
            return;
        }
        if let Ok(size) = self.store.file_size() {
            if size > self.store.options.max_size_bytes {
                self.pass = Some(Pass::new(self.clock.now_unix_nanos()));
            }
        }
    }
}
