//! Test support (feature `testing`): components that let a test drive and observe a real
//! running service, and OTLP builders.
//!
//! - receiver `inject`: hands its outputs to the test ([`injector`]) so the test pushes batches.
//! - exporter `collect`: stores what it receives in a named [`Sink`] the test awaits.
//! - exporter `flaky`: fails its first `fail_times` attempts (retryable, or permanent), then
//!   stores like `collect`; counts attempts.
//!
//! Sinks and injectors are process-wide, keyed by a name the test chooses: use a unique name per
//! test, as tests of one binary run in parallel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;

use sluice_proto::common::v1::InstrumentationScope;
use sluice_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use sluice_proto::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use sluice_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::config::duration;
use crate::data::{Batch, Payload, Signal};
use crate::error::{BuildError, ExportError, ReceiverError};
use crate::factory::{
    ComponentContext, Exporter, ExporterPlugin, Receiver, ReceiverPlugin, ReceiverRunContext,
    Stability, Validate,
};
use crate::otlp::{kv_i64, kv_str, now_nanos, resource};
use crate::retry::DeliveryConfig;
use crate::runtime::fanout::Outputs;

/// What a `collect` or `flaky` exporter received.
#[derive(Default)]
pub struct Sink {
    payloads: Mutex<Vec<Payload>>,
    counted: [AtomicU64; 3],
    attempts: AtomicU64,
    changed: Notify,
}

impl Sink {
    /// Every payload received, in order.
    pub fn payloads(&self) -> Vec<Payload> {
        self.payloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Items received of `signal`.
    pub fn items(&self, signal: Signal) -> usize {
        self.counted[signal as usize].load(Ordering::SeqCst) as usize + self.stored_items(signal)
    }

    fn stored_items(&self, signal: Signal) -> usize {
        self.payloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|p| p.signal() == signal)
            .map(Payload::item_count)
            .sum()
    }

    /// Export attempts so far (successful or not).
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` items of `signal` arrived.
    pub async fn wait_for_items(&self, signal: Signal, n: usize) -> usize {
        loop {
            let notified = self.changed.notified();
            let have = self.items(signal);
            if have >= n {
                return have;
            }
            notified.await;
        }
    }

    /// Waits until at least `n` export attempts happened.
    pub async fn wait_for_attempts(&self, n: u64) {
        loop {
            let notified = self.changed.notified();
            if self.attempts() >= n {
                return;
            }
            notified.await;
        }
    }

    fn push(&self, payload: Payload) {
        self.payloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(payload);
        self.changed.notify_waiters();
    }

    fn count(&self, signal: Signal, items: usize) {
        self.counted[signal as usize].fetch_add(items as u64, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    fn attempt(&self) -> u64 {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        self.changed.notify_waiters();
        n
    }
}

fn sinks() -> &'static Mutex<HashMap<String, Arc<Sink>>> {
    static SINKS: OnceLock<Mutex<HashMap<String, Arc<Sink>>>> = OnceLock::new();
    SINKS.get_or_init(Default::default)
}

/// The sink named `name`, created empty on first use.
pub fn sink(name: &str) -> Arc<Sink> {
    sinks()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(name.to_string())
        .or_default()
        .clone()
}

#[derive(Default)]
struct InjectorSlot {
    outputs: Mutex<Option<Outputs>>,
    ready: Notify,
}

fn injectors() -> &'static Mutex<HashMap<String, Arc<InjectorSlot>>> {
    static SLOTS: OnceLock<Mutex<HashMap<String, Arc<InjectorSlot>>>> = OnceLock::new();
    SLOTS.get_or_init(Default::default)
}

fn injector_slot(name: &str) -> Arc<InjectorSlot> {
    injectors()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(name.to_string())
        .or_default()
        .clone()
}

/// The outputs of the running `inject` receiver whose config says `name: <name>`; waits until it
/// runs. Drop them before shutting the service down, or the pipelines wait for the deadline.
pub async fn injector(name: &str) -> Outputs {
    let slot = injector_slot(name);
    loop {
        let notified = slot.ready.notified();
        if let Some(o) = slot
            .outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return o;
        }
        notified.await;
    }
}

/// Config of the `inject` receiver.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InjectConfig {
    /// The name a test passes to [`injector`].
    pub name: String,
}
impl Validate for InjectConfig {}

/// The `inject` receiver factory.
pub struct InjectReceiverFactory;

struct InjectReceiver {
    name: String,
}

#[async_trait::async_trait]
impl Receiver for InjectReceiver {
    async fn run(self: Box<Self>, ctx: ReceiverRunContext) -> Result<(), ReceiverError> {
        let slot = injector_slot(&self.name);
        *slot.outputs.lock().unwrap_or_else(|p| p.into_inner()) = Some(ctx.outputs);
        slot.ready.notify_waiters();
        ctx.shutdown.cancelled().await;
        // Outputs the test never took are released here so pipelines can drain.
        slot.outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        Ok(())
    }
}

impl ReceiverPlugin for InjectReceiverFactory {
    type Config = InjectConfig;
    const TYPE: &'static str = "inject";
    const SIGNALS: &'static [Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];
    const STABILITY: Stability = Stability::Development;
    const EXAMPLE: &'static str = "name: example\n";
    fn build(
        &self,
        c: InjectConfig,
        _ctx: ComponentContext,
    ) -> Result<Box<dyn Receiver>, BuildError> {
        Ok(Box::new(InjectReceiver { name: c.name }))
    }
}

/// Config of the `collect` exporter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectConfig {
    /// The sink to store into.
    pub sink: String,
    /// Only count items, without keeping the payloads (benchmarks). Default `false`.
    pub count_only: bool,
}
impl Validate for CollectConfig {}

/// The `collect` exporter factory.
pub struct CollectExporterFactory;

struct CollectExporter {
    sink: Arc<Sink>,
    count_only: bool,
}

#[async_trait::async_trait]
impl Exporter for CollectExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        self.sink.attempt();
        if self.count_only {
            self.sink.count(batch.signal(), batch.item_count());
        } else {
            self.sink.push(batch.payload.clone());
        }
        Ok(())
    }
}

impl ExporterPlugin for CollectExporterFactory {
    type Config = CollectConfig;
    const TYPE: &'static str = "collect";
    const SIGNALS: &'static [Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];
    const STABILITY: Stability = Stability::Development;
    const EXAMPLE: &'static str = "sink: example\n";
    /// A test sink never drops: a full queue pushes back on the pipeline instead.
    fn delivery(_c: &CollectConfig) -> DeliveryConfig {
        let mut d = DeliveryConfig::default();
        d.sending_queue.block_on_overflow = true;
        d
    }
    fn build(
        &self,
        c: CollectConfig,
        _ctx: ComponentContext,
    ) -> Result<Box<dyn Exporter>, BuildError> {
        Ok(Box::new(CollectExporter {
            sink: sink(&c.sink),
            count_only: c.count_only,
        }))
    }
}

/// Config of the `flaky` exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlakyConfig {
    /// The sink to store into once it succeeds.
    pub sink: String,
    /// How many attempts fail before they succeed.
    pub fail_times: u64,
    /// Fail permanently instead of retryably.
    pub permanent: bool,
    /// The `retry_after` hint of each failure.
    #[serde(with = "duration")]
    pub retry_after: Duration,
    /// Queue size (requests); the queue is as in any exporter.
    pub queue_size: usize,
    /// Retry settings, as any exporter's.
    pub retry_on_failure: crate::retry::RetryConfig,
    /// Panic (instead of returning an error) on the failing attempts.
    pub panic: bool,
}

impl Default for FlakyConfig {
    fn default() -> Self {
        FlakyConfig {
            sink: String::new(),
            fail_times: 0,
            permanent: false,
            retry_after: Duration::ZERO,
            queue_size: 1000,
            retry_on_failure: crate::retry::RetryConfig::default(),
            panic: false,
        }
    }
}
impl Validate for FlakyConfig {}

/// The `flaky` exporter factory.
pub struct FlakyExporterFactory;

struct FlakyExporter {
    sink: Arc<Sink>,
    config: FlakyConfig,
}

#[async_trait::async_trait]
impl Exporter for FlakyExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let n = self.sink.attempt();
        if n <= self.config.fail_times {
            let reason = format!("flaky failure {n} of {}", self.config.fail_times);
            if self.config.panic {
                panic!("{reason}");
            }
            return Err(if self.config.permanent {
                ExportError::permanent(reason)
            } else {
                ExportError::Retryable {
                    reason,
                    retry_after: (!self.config.retry_after.is_zero())
                        .then_some(self.config.retry_after),
                }
            });
        }
        self.sink.push(batch.payload.clone());
        Ok(())
    }
}

impl ExporterPlugin for FlakyExporterFactory {
    type Config = FlakyConfig;
    const TYPE: &'static str = "flaky";
    const SIGNALS: &'static [Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];
    const STABILITY: Stability = Stability::Development;
    const EXAMPLE: &'static str = "sink: example\nfail_times: 1\n";
    fn delivery(c: &FlakyConfig) -> DeliveryConfig {
        let mut d = DeliveryConfig::default();
        d.sending_queue.queue_size = c.queue_size;
        d.sending_queue.num_consumers = 1;
        d.retry_on_failure = c.retry_on_failure.clone();
        d
    }
    fn build(
        &self,
        c: FlakyConfig,
        _ctx: ComponentContext,
    ) -> Result<Box<dyn Exporter>, BuildError> {
        Ok(Box::new(FlakyExporter {
            sink: sink(&c.sink),
            config: c,
        }))
    }
}

crate::register_receiver!(InjectReceiverFactory);
crate::register_exporter!(CollectExporterFactory);
crate::register_exporter!(FlakyExporterFactory);

fn test_scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "sluice-test".into(),
        ..Default::default()
    }
}

/// `n` spans named `span-<i>` with distinct ids, in one resource.
pub fn spans(n: usize) -> Payload {
    let spans = (0..n)
        .map(|i| Span {
            trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("span-{i}"),
            start_time_unix_nano: now_nanos(),
            end_time_unix_nano: now_nanos(),
            attributes: vec![kv_i64("index", i as i64)],
            ..Default::default()
        })
        .collect();
    Payload::Traces(vec![ResourceSpans {
        resource: Some(resource(vec![kv_str("service.name", "test")])),
        scope_spans: vec![ScopeSpans {
            scope: Some(test_scope()),
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

/// The OTLP `aggregation_temporality` of a cumulative or a delta metric.
pub fn temporality(cumulative: bool) -> i32 {
    let t = if cumulative {
        sluice_proto::metrics::v1::AggregationTemporality::Cumulative
    } else {
        sluice_proto::metrics::v1::AggregationTemporality::Delta
    };
    t as i32
}

/// One gauge metric `name` with `n` points valued 0..n.
pub fn gauge_points(name: &str, n: usize) -> Payload {
    let data_points = (0..n)
        .map(|i| NumberDataPoint {
            time_unix_nano: now_nanos(),
            value: Some(number_data_point::Value::AsDouble(i as f64)),
            attributes: vec![kv_i64("index", i as i64)],
            ..Default::default()
        })
        .collect();
    Payload::Metrics(vec![ResourceMetrics {
        resource: Some(resource(vec![kv_str("service.name", "test")])),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(test_scope()),
            metrics: vec![Metric {
                name: name.to_string(),
                unit: "1".into(),
                data: Some(metric::Data::Gauge(Gauge { data_points })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }])
}

/// `n` log records with bodies `line <i>`.
pub fn log_records(n: usize) -> Payload {
    let log_records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: now_nanos(),
            body: Some(sluice_proto::common::v1::AnyValue {
                value: Some(sluice_proto::common::v1::any_value::Value::StringValue(
                    format!("line {i}"),
                )),
            }),
            ..Default::default()
        })
        .collect();
    Payload::Logs(vec![ResourceLogs {
        resource: Some(resource(vec![kv_str("service.name", "test")])),
        scope_logs: vec![ScopeLogs {
            scope: Some(test_scope()),
            log_records,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

/// The misspelt-key test every plugin has: `yaml` must fail to decode as `C` with exactly one
/// error, the unknown key at `key_path` (`::`-joined) on `line`, its message naming the key.
pub fn assert_misspelt_key<C: serde::de::DeserializeOwned>(
    yaml: &str,
    key_path: &str,
    line: usize,
) {
    let errors = match crate::config::decode_str::<C>(yaml) {
        Ok(_) => panic!("a misspelt key decoded:\n{yaml}"),
        Err(e) => e,
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e.key_path(), key_path, "{e}");
    assert_eq!(e.mark.as_ref().map(|m| m.line), Some(line), "{e}");
    let key = key_path.rsplit("::").next().unwrap_or(key_path);
    assert!(e.message.contains(&format!("unknown field `{key}`")), "{e}");
}
