//! Wraps one exporter in a bounded queue with retries (the Collector's exporterhelper):
//! pipelines enqueue `Arc<Batch>`es; `num_consumers` tasks export them, retrying retryable
//! failures with exponential backoff and jitter. Every item finally not delivered is counted and
//! logged with its reason: queue overflow (`sluice_exporter_enqueue_failed_<unit>`), a permanent
//! rejection, retries exhausted or the shutdown deadline (`sluice_exporter_send_failed_<unit>`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::data::{Batch, Signal};
use crate::error::ExportError;
use crate::factory::Exporter;
use crate::id::ComponentId;
use crate::retry::{Backoff, DeliveryConfig, QueueSizer};
use crate::telemetry::{ComponentTelemetry, Gauge};
use crate::CancellationToken;

type QueueItem = (Arc<Batch>, OwnedSemaphorePermit, u32);

/// The enqueue side of an exporter, held by every pipeline that lists it.
#[derive(Clone)]
pub struct ExporterHandle {
    pub(crate) id: ComponentId,
    pub(crate) signals: &'static [Signal],
    tx: mpsc::UnboundedSender<QueueItem>,
    permits: Arc<Semaphore>,
    capacity: u32,
    sizer: QueueSizer,
    block: bool,
    queue_size: Gauge,
    telemetry: ComponentTelemetry,
}

impl ExporterHandle {
    /// Whether the exporter takes this signal.
    pub fn accepts(&self, signal: Signal) -> bool {
        self.signals.contains(&signal)
    }

    /// Puts a batch in the queue; when full, waits (`block_on_overflow`) or drops it, counted.
    pub async fn enqueue(&self, batch: Arc<Batch>) {
        let items = batch.item_count();
        let cost = match self.sizer {
            QueueSizer::Requests => 1,
            QueueSizer::Items => (items as u32).clamp(1, self.capacity),
        };
        let permit = if self.block {
            self.permits.clone().acquire_many_owned(cost).await.ok()
        } else {
            self.permits.clone().try_acquire_many_owned(cost).ok()
        };
        let Some(permit) = permit else {
            batch.fail_acks();
            self.telemetry
                .counter("enqueue_failed", batch.signal())
                .add(items as u64);
            tracing::warn!(
                component_kind = "exporter",
                component_id = %self.id,
                items,
                "Dropped data: sending queue is full (raise sending_queue.queue_size, or set sending_queue.block_on_overflow)."
            );
            return;
        };
        self.queue_size.add(cost as i64);
        if let Err(mpsc::error::SendError((batch, _, _))) = self.tx.send((batch, permit, cost)) {
            self.queue_size.add(-(cost as i64));
            batch.fail_acks();
            self.telemetry
                .lost("send_failed", batch.signal(), items, "exporter has stopped");
        }
    }
}

/// The consumer side: tasks that drain the queue into the exporter.
pub struct ExporterDriver {
    pub(crate) id: ComponentId,
    exporter: Arc<dyn Exporter>,
    consumers: Vec<JoinHandle<()>>,
    hard_stop: CancellationToken,
}

struct Consumer {
    id: ComponentId,
    exporter: Arc<dyn Exporter>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<QueueItem>>>,
    delivery: DeliveryConfig,
    telemetry: ComponentTelemetry,
    queue_size: Gauge,
    hard_stop: CancellationToken,
}

enum Outcome {
    Sent,
    Dropped(String),
    Stopped,
}

impl Consumer {
    async fn run(self) {
        loop {
            let next = {
                let mut rx = self.rx.lock().await;
                rx.recv().await
            };
            let Some((batch, permit, cost)) = next else {
                break;
            };
            let items = batch.item_count();
            let signal = batch.signal();
            let outcome = if self.hard_stop.is_cancelled() {
                Outcome::Stopped
            } else {
                self.deliver(&batch).await
            };
            match outcome {
                Outcome::Sent => self.telemetry.counter("sent", signal).add(items as u64),
                Outcome::Dropped(reason) => {
                    self.telemetry.lost("send_failed", signal, items, &reason);
                }
                Outcome::Stopped => {
                    batch.fail_acks();
                    self.telemetry.lost(
                        "send_failed",
                        signal,
                        items,
                        "shutdown deadline reached before the data was exported",
                    );
                }
            }
            drop(permit);
            self.queue_size.add(-(cost as i64));
        }
    }

    async fn attempt(&self, batch: &Batch) -> Result<(), ExportError> {
        let fut = AssertUnwindSafe(self.exporter.export(batch)).catch_unwind();
        let result = if self.delivery.timeout.is_zero() {
            fut.await
        } else {
            match tokio::time::timeout(self.delivery.timeout, fut).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(ExportError::retryable(format!(
                        "export timed out after {:?}",
                        self.delivery.timeout
                    )))
                }
            }
        };
        result.unwrap_or_else(|_| {
            self.telemetry.counter_named("sluice_exporter_failures").add(1);
            tracing::error!(component_kind = "exporter", component_id = %self.id, "Exporter panicked while exporting; the batch is dropped.");
            Err(ExportError::permanent("exporter panicked"))
        })
    }

    async fn deliver(&self, batch: &Batch) -> Outcome {
        let mut backoff = Backoff::new(&self.delivery.retry_on_failure);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = tokio::select! {
                r = self.attempt(batch) => r,
                _ = self.hard_stop.cancelled() => return Outcome::Stopped,
            };
            match result {
                Ok(()) => return Outcome::Sent,
                Err(ExportError::Permanent { reason }) => {
                    return Outcome::Dropped(format!("permanent error: {reason}"))
                }
                Err(ExportError::Retryable {
                    reason,
                    retry_after,
                }) => {
                    let Some(delay) = backoff.next_delay(retry_after) else {
                        batch.fail_acks();
                        return Outcome::Dropped(format!(
                            "no more retries after {attempts} attempt(s): {reason}"
                        ));
                    };
                    tracing::info!(
                        component_kind = "exporter",
                        component_id = %self.id,
                        error = %reason,
                        retry_in = ?delay,
                        "Export failed; will retry."
                    );
                    self.telemetry
                        .counter_named("sluice_exporter_retries")
                        .add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.hard_stop.cancelled() => return Outcome::Stopped,
                    }
                }
            }
        }
    }
}

/// Wraps a started exporter; returns the handle pipelines enqueue into and the driver.
pub fn spawn(
    id: ComponentId,
    signals: &'static [Signal],
    exporter: Arc<dyn Exporter>,
    delivery: DeliveryConfig,
    telemetry: ComponentTelemetry,
) -> (ExporterHandle, ExporterDriver) {
    let q = &delivery.sending_queue;
    let (capacity, block, consumers) = if q.enabled {
        (q.queue_size, q.block_on_overflow, q.num_consumers)
    } else {
        // No queue: only the batches being exported; the pipeline waits for room.
        (q.num_consumers, true, q.num_consumers)
    };
    let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize)) as u32;
    let (tx, rx) = mpsc::unbounded_channel();
    let rx = Arc::new(Mutex::new(rx));
    let queue_size = telemetry.gauge_named("sluice_exporter_queue_size");
    telemetry
        .gauge_named("sluice_exporter_queue_capacity")
        .set(capacity as i64);
    let hard_stop = CancellationToken::new();
    let handle = ExporterHandle {
        id: id.clone(),
        signals,
        tx,
        permits: Arc::new(Semaphore::new(capacity as usize)),
        capacity,
        sizer: q.sizer,
        block,
        queue_size: queue_size.clone(),
        telemetry: telemetry.clone(),
    };
    let consumers = (0..consumers.max(1))
        .map(|_| {
            let c = Consumer {
                id: id.clone(),
                exporter: exporter.clone(),
                rx: rx.clone(),
                delivery: delivery.clone(),
                telemetry: telemetry.clone(),
                queue_size: queue_size.clone(),
                hard_stop: hard_stop.clone(),
            };
            tokio::spawn(c.run())
        })
        .collect();
    (
        handle,
        ExporterDriver {
            id,
            exporter,
            consumers,
            hard_stop,
        },
    )
}

impl ExporterDriver {
    /// Waits until every queued batch is exported (all handles must be dropped first), or until
    /// `deadline`; what remains then is counted as dropped. Then calls the exporter's
    /// `shutdown`, bounded by `flush_timeout`.
    pub async fn drain(self, deadline: tokio::time::Instant, flush_timeout: Duration) {
        let ExporterDriver {
            id,
            exporter,
            mut consumers,
            hard_stop,
        } = self;
        let all = futures_util::future::join_all(consumers.iter_mut());
        if tokio::time::timeout_at(deadline, all).await.is_err() {
            tracing::warn!(component_kind = "exporter", component_id = %id, "Shutdown deadline reached; dropping what is still queued.");
            hard_stop.cancel();
            futures_util::future::join_all(consumers.iter_mut()).await;
        }
        match tokio::time::timeout(flush_timeout, exporter.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(component_kind = "exporter", component_id = %id, error = %e, "Exporter failed to shut down cleanly.")
            }
            Err(_) => {
                tracing::error!(component_kind = "exporter", component_id = %id, timeout = ?flush_timeout, "Exporter shutdown timed out.")
            }
        }
    }
}
