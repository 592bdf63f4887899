//! Wraps one exporter in a bounded queue with retries (the Collector's exporterhelper):
//! pipelines enqueue `Arc<Batch>`es; `num_consumers` tasks export them, retrying retryable
//! failures with exponential backoff and jitter. The queue's capacity counts batches, items or
//! encoded bytes (`sizer`), including the batches being exported; when full, the new batch is
//! dropped, or the pipeline waits (`block_on_overflow`), or the oldest queued batches make room
//! (`drop_oldest`). Every item finally not delivered is counted and logged with its reason:
//! queue overflow (`sluice_exporter_enqueue_failed_<unit>`), a permanent rejection, retries
//! exhausted or the shutdown deadline (`sluice_exporter_send_failed_<unit>`).

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::data::{Batch, Signal};
use crate::error::ExportError;
use crate::factory::Exporter;
use crate::id::ComponentId;
use crate::retry::{Backoff, DeliveryConfig, QueueSizer};
use crate::telemetry::{ComponentTelemetry, Gauge};
use crate::CancellationToken;

/// A queued batch and what it takes of the capacity.
struct Queued {
    batch: Arc<Batch>,
    cost: u64,
}

/// The queue shared by the handles (producers) and the consumers.
struct Queue {
    state: std::sync::Mutex<QueueState>,
    /// Consumers wait here for a batch, or for the last handle to go.
    ready: Notify,
    /// Producers that block on overflow wait here for room.
    room: Notify,
    capacity: u64,
}

struct QueueState {
    waiting: VecDeque<Queued>,
    /// Capacity taken: batches waiting plus batches being exported.
    used: u64,
    /// Of `used`, what the batches being exported take (a full queue cannot drop those).
    in_flight: u64,
    /// Set when every handle is gone: consumers finish what is queued and stop.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next batch for a consumer, `None` once closed and empty. The batch's cost stays
    /// taken until [`Queue::done`].
    async fn pop(&self) -> Option<Queued> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                if let Some(q) = st.waiting.pop_front() {
                    st.in_flight += q.cost;
                    return Some(q);
                }
                if st.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// A consumer is done with a batch of `cost`.
    fn done(&self, cost: u64) {
        {
            let mut st = self.lock();
            st.in_flight -= cost;
            st.used -= cost;
        }
        self.room.notify_waiters();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
    }
}

/// Closes the queue when the last handle is dropped.
struct Producer(Arc<Queue>);

impl Drop for Producer {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The enqueue side of an exporter, held by every pipeline that lists it.
#[derive(Clone)]
pub struct ExporterHandle {
    pub(crate) id: ComponentId,
    pub(crate) signals: &'static [Signal],
    queue: Arc<Producer>,
    sizer: QueueSizer,
    block: bool,
    drop_oldest: bool,
    queue_size: Gauge,
    telemetry: ComponentTelemetry,
}

/// What an enqueue did.
enum Enqueued {
    Queued,
    /// No room: the new batch is dropped.
    Full,
    /// No room yet: wait and try again.
    Wait,
}

impl ExporterHandle {
    /// Whether the exporter takes this signal.
    pub fn accepts(&self, signal: Signal) -> bool {
        self.signals.contains(&signal)
    }

    /// Puts a batch in the queue; when full, waits (`block_on_overflow`), drops the oldest
    /// queued batches (`drop_oldest`) or drops the new one, counted.
    pub async fn enqueue(&self, batch: Arc<Batch>) {
        let queue = &self.queue.0;
        let cost = match self.sizer {
            QueueSizer::Requests => 1,
            QueueSizer::Items => batch.item_count() as u64,
            QueueSizer::Bytes => batch.payload.encoded_len() as u64,
        }
        // A batch larger than the whole queue takes all of it: it fits only an empty queue.
        .clamp(1, queue.capacity);
        let mut batch = Some(batch);
        loop {
            // Registered before the check, so room freed in between is not missed; only a
            // producer that may wait registers.
            let notified = queue.room.notified();
            tokio::pin!(notified);
            if self.block {
                notified.as_mut().enable();
            }
            let mut evicted = Vec::new();
            let outcome = {
                let mut st = queue.lock();
                if st.used + cost > queue.capacity
                    && self.drop_oldest
                    && st.in_flight + cost <= queue.capacity
                {
                    while st.used + cost > queue.capacity {
                        let Some(old) = st.waiting.pop_front() else {
                            break;
                        };
                        st.used -= old.cost;
                        evicted.push(old);
                    }
                }
                if st.used + cost <= queue.capacity {
                    st.used += cost;
                    st.waiting.push_back(Queued {
                        batch: batch.take().expect("enqueued once"),
                        cost,
                    });
                    Enqueued::Queued
                } else if self.block {
                    Enqueued::Wait
                } else {
                    Enqueued::Full
                }
            };
            for old in evicted {
                self.queue_size.add(-(old.cost as i64));
                self.overflow(
                    &old.batch,
                    "Dropped the oldest queued data: sending queue is full (raise sending_queue.queue_size).",
                );
            }
            match outcome {
                Enqueued::Queued => {
                    self.queue_size.add(cost as i64);
                    queue.ready.notify_one();
                    return;
                }
                Enqueued::Full => {
                    let batch = batch.take().expect("not enqueued");
                    self.overflow(&batch, "Dropped data: sending queue is full (raise sending_queue.queue_size, or set sending_queue.block_on_overflow or drop_oldest).");
                    return;
                }
                Enqueued::Wait => notified.await,
            }
        }
    }

    fn overflow(&self, batch: &Batch, message: &'static str) {
        let items = batch.item_count();
        batch.fail_acks();
        self.telemetry
            .counter("enqueue_failed", batch.signal())
            .add(items as u64);
        tracing::warn!(
            component_kind = "exporter",
            component_id = %self.id,
            items,
            "{message}"
        );
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
    queue: Arc<Queue>,
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
        while let Some(Queued { batch, cost }) = self.queue.pop().await {
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
            self.queue.done(cost);
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
    let (capacity, block, drop_oldest, consumers) = if q.enabled {
        (
            q.queue_size,
            q.block_on_overflow,
            q.drop_oldest,
            q.num_consumers,
        )
    } else {
        // No queue: only the batches being exported; the pipeline waits for room.
        (q.num_consumers, true, false, q.num_consumers)
    };
    let sizer = if q.enabled {
        q.sizer
    } else {
        QueueSizer::Requests
    };
    let capacity = capacity.max(1) as u64;
    let queue = Arc::new(Queue {
        state: std::sync::Mutex::new(QueueState {
            waiting: VecDeque::new(),
            used: 0,
            in_flight: 0,
            closed: false,
        }),
        ready: Notify::new(),
        room: Notify::new(),
        capacity,
    });
    let queue_size = telemetry.gauge_named("sluice_exporter_queue_size");
    telemetry
        .gauge_named("sluice_exporter_queue_capacity")
        .set(capacity as i64);
    let hard_stop = CancellationToken::new();
    let handle = ExporterHandle {
        id: id.clone(),
        signals,
        queue: Arc::new(Producer(queue.clone())),
        sizer,
        block,
        drop_oldest,
        queue_size: queue_size.clone(),
        telemetry: telemetry.clone(),
    };
    let consumers = (0..consumers.max(1))
        .map(|_| {
            let c = Consumer {
                id: id.clone(),
                exporter: exporter.clone(),
                queue: queue.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Payload;
    use crate::id::Kind;
    use crate::retry::QueueConfig;
    use crate::telemetry::Telemetry;
    use sluice_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use tokio::sync::{mpsc, Semaphore};

    /// A batch of `n` spans named `name`.
    fn spans(name: &str, n: usize) -> Arc<Batch> {
        Arc::new(Batch::new(Payload::Traces(vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    Span {
                        name: name.into(),
                        ..Default::default()
                    };
                    n
                ],
                ..Default::default()
            }],
            ..Default::default()
        }])))
    }

    /// Exports only when the test opens the gate, and says which batch it holds.
    struct Gated {
        gate: Arc<Semaphore>,
        started: mpsc::UnboundedSender<String>,
    }

    #[async_trait::async_trait]
    impl Exporter for Gated {
        async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
            let Payload::Traces(rs) = &batch.payload else {
                unreachable!("spans only")
            };
            let _ = self
                .started
                .send(rs[0].scope_spans[0].spans[0].name.clone());
            self.gate.acquire().await.expect("gate").forget();
            Ok(())
        }
    }

    struct Setup {
        handle: ExporterHandle,
        driver: ExporterDriver,
        gate: Arc<Semaphore>,
        started: mpsc::UnboundedReceiver<String>,
        telemetry: Arc<Telemetry>,
    }

    fn setup(queue: QueueConfig) -> Setup {
        let id: ComponentId = "gated".parse().expect("id");
        let telemetry = Telemetry::new();
        let tel = ComponentTelemetry::new(telemetry.clone(), Kind::Exporter, &id);
        let gate = Arc::new(Semaphore::new(0));
        let (tx, started) = mpsc::unbounded_channel();
        let exporter = Arc::new(Gated {
            gate: gate.clone(),
            started: tx,
        });
        let delivery = DeliveryConfig {
            sending_queue: QueueConfig {
                num_consumers: 1,
                ..queue
            },
            ..DeliveryConfig::default()
        };
        let (handle, driver) = spawn(id, &[Signal::Traces], exporter, delivery, tel);
        Setup {
            handle,
            driver,
            gate,
            started,
            telemetry,
        }
    }

    impl Setup {
        fn value(&self, name: &str) -> Option<i64> {
            self.telemetry.value(name, &[("exporter", "gated")])
        }

        /// Enqueues `batch`, whose spans are named `name`, and waits until the exporter holds
        /// it at the gate: from then on it is being exported.
        async fn hold(&mut self, name: &str, batch: Arc<Batch>) {
            self.handle.enqueue(batch).await;
            assert_eq!(self.started.recv().await.as_deref(), Some(name));
        }

        /// Opens the gate for every batch and returns the names exported, in order.
        async fn drain(mut self) -> Vec<String> {
            self.gate.add_permits(1000);
            drop(self.handle);
            self.driver
                .drain(
                    tokio::time::Instant::now() + Duration::from_secs(60),
                    Duration::from_secs(1),
                )
                .await;
            let mut names = Vec::new();
            while let Ok(n) = self.started.try_recv() {
                names.push(n);
            }
            names
        }
    }

    #[tokio::test]
    async fn a_full_queue_with_drop_oldest_drops_the_oldest_waiting_batches() {
        let mut s = setup(QueueConfig {
            queue_size: 3,
            drop_oldest: true,
            ..QueueConfig::default()
        });
        // b1 is being exported: it cannot be dropped.
        s.hold("b1", spans("b1", 1)).await;
        for (name, n) in [("b2", 2), ("b3", 3), ("b4", 4), ("b5", 5)] {
            s.handle.enqueue(spans(name, n)).await;
        }
        assert_eq!(s.value("sluice_exporter_enqueue_failed_spans"), Some(2 + 3));
        assert_eq!(s.value("sluice_exporter_queue_size"), Some(3));
        let t = s.telemetry.clone();
        assert_eq!(s.drain().await, ["b4", "b5"]);
        assert_eq!(
            t.value("sluice_exporter_sent_spans", &[("exporter", "gated")]),
            Some(1 + 4 + 5)
        );
    }

    #[tokio::test]
    async fn without_drop_oldest_the_new_batch_is_dropped() {
        let mut s = setup(QueueConfig {
            queue_size: 3,
            ..QueueConfig::default()
        });
        s.hold("b1", spans("b1", 1)).await;
        for (name, n) in [("b2", 2), ("b3", 3), ("b4", 4), ("b5", 5)] {
            s.handle.enqueue(spans(name, n)).await;
        }
        assert_eq!(s.value("sluice_exporter_enqueue_failed_spans"), Some(4 + 5));
        assert_eq!(s.drain().await, ["b2", "b3"]);
    }

    #[tokio::test]
    async fn the_bytes_sizer_bounds_the_queue_by_encoded_size() {
        let one = spans("x", 10).payload.encoded_len();
        // Room for the batch being exported and two waiting, not three.
        let mut s = setup(QueueConfig {
            queue_size: 3 * one + one / 2,
            sizer: QueueSizer::Bytes,
            drop_oldest: true,
            ..QueueConfig::default()
        });
        s.hold("a", spans("a", 10)).await;
        for name in ["b", "c", "d"] {
            s.handle.enqueue(spans(name, 10)).await;
        }
        assert_eq!(s.value("sluice_exporter_enqueue_failed_spans"), Some(10));
        assert_eq!(s.value("sluice_exporter_queue_size"), Some(3 * one as i64));
        // A batch bigger than the whole queue fits only an empty one: dropping the waiting
        // batches would not make room while `a` is being exported, so it is the one dropped.
        s.handle.enqueue(spans("e", 100)).await;
        assert_eq!(s.value("sluice_exporter_enqueue_failed_spans"), Some(110));
        assert_eq!(s.drain().await, ["c", "d"]);
    }

    #[tokio::test]
    async fn block_on_overflow_waits_for_room() {
        let mut s = setup(QueueConfig {
            queue_size: 2,
            block_on_overflow: true,
            ..QueueConfig::default()
        });
        s.hold("b1", spans("b1", 1)).await;
        s.handle.enqueue(spans("b2", 1)).await;
        let handle = s.handle.clone();
        let blocked = tokio::spawn(async move { handle.enqueue(spans("b3", 1)).await });
        tokio::task::yield_now().await;
        assert!(!blocked.is_finished());
        // One export done: room for b3.
        s.gate.add_permits(1);
        blocked.await.expect("enqueue");
        assert_eq!(s.value("sluice_exporter_enqueue_failed_spans"), None);
        assert_eq!(s.drain().await, ["b2", "b3"]);
    }

    #[test]
    fn drop_oldest_and_block_on_overflow_exclude_each_other() {
        let q = QueueConfig {
            block_on_overflow: true,
            drop_oldest: true,
            ..QueueConfig::default()
        };
        let e = crate::factory::Validate::validate(&q).expect_err("invalid");
        assert!(e.to_string().contains("drop_oldest"), "{e}");
    }
}
