//! Self-telemetry: counters and gauges per component, named `sluice_<kind>_<verb>_<unit>` and
//! labelled with the component id (`sluice_receiver_accepted_spans{receiver="otlp"}`). Handles are
//! atomics taken once at build time, so the hot path is a relaxed add. The registry renders the
//! Prometheus text format and a shutdown summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::data::Signal;
use crate::id::{ComponentId, Kind};

/// A monotonically increasing count.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (a queue size).
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Adds `n` (may be negative).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Sets the value.
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    name: String,
    labels: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
enum Instrument {
    Counter(Counter),
    Gauge(Gauge),
}

/// One metric's value in a [`Telemetry::snapshot`].
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// The metric name.
    pub name: String,
    /// Its labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// The current value.
    pub value: i64,
    /// Whether it is a counter (else a gauge).
    pub is_counter: bool,
}

/// The registry of all self-telemetry of one running service.
#[derive(Debug, Default)]
pub struct Telemetry {
    metrics: Mutex<BTreeMap<Key, Instrument>>,
}

impl Telemetry {
    /// An empty registry behind an `Arc`, as contexts share it.
    pub fn new() -> Arc<Telemetry> {
        Arc::new(Telemetry::default())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Key, Instrument>> {
        self.metrics.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(name: &str, labels: &[(&str, &str)]) -> Key {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        Key {
            name: name.to_string(),
            labels,
        }
    }

    /// The counter with this name and labels, created at zero on first use.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Counter {
        let mut m = self.lock();
        match m
            .entry(Self::key(name, labels))
            .or_insert_with(|| Instrument::Counter(Counter::default()))
        {
            Instrument::Counter(c) => c.clone(),
            // A name used as both kinds is a programming error; keep counting separately.
            Instrument::Gauge(_) => Counter::default(),
        }
    }

    /// The gauge with this name and labels, created at zero on first use.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Gauge {
        let mut m = self.lock();
        match m
            .entry(Self::key(name, labels))
            .or_insert_with(|| Instrument::Gauge(Gauge::default()))
        {
            Instrument::Gauge(g) => g.clone(),
            Instrument::Counter(_) => Gauge::default(),
        }
    }

    /// Every metric and its value, sorted by name then labels.
    pub fn snapshot(&self) -> Vec<MetricValue> {
        self.lock()
            .iter()
            .map(|(k, v)| {
                let (value, is_counter) = match v {
                    Instrument::Counter(c) => (c.get() as i64, true),
                    Instrument::Gauge(g) => (g.get(), false),
                };
                MetricValue {
                    name: k.name.clone(),
                    labels: k.labels.clone(),
                    value,
                    is_counter,
                }
            })
            .collect()
    }

    /// The value of one metric, if it exists.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<i64> {
        self.lock().get(&Self::key(name, labels)).map(|i| match i {
            Instrument::Counter(c) => c.get() as i64,
            Instrument::Gauge(g) => g.get(),
        })
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let mut last = String::new();
        for m in self.snapshot() {
            if m.name != last {
                let kind = if m.is_counter { "counter" } else { "gauge" };
                let _ = writeln!(out, "# TYPE {} {}", m.name, kind);
                last = m.name.clone();
            }
            out.push_str(&m.name);
            if !m.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in m.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let v = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    let _ = write!(out, "{k}=\"{v}\"");
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", m.value);
        }
        out
    }

    /// One line per non-zero metric, for the shutdown summary.
    pub fn summary_lines(&self) -> Vec<String> {
        self.snapshot()
            .into_iter()
            .filter(|m| m.value != 0)
            .map(|m| {
                let labels: Vec<String> =
                    m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{}{{{}}} {}", m.name, labels.join(","), m.value)
            })
            .collect()
    }
}

/// The self-telemetry of one component: names its metrics after its kind and labels them with
/// its id.
#[derive(Debug, Clone)]
pub struct ComponentTelemetry {
    registry: Arc<Telemetry>,
    kind: Kind,
    id: String,
}

impl ComponentTelemetry {
    /// Telemetry for component `id` of `kind` in `registry`.
    pub fn new(registry: Arc<Telemetry>, kind: Kind, id: &ComponentId) -> ComponentTelemetry {
        ComponentTelemetry {
            registry,
            kind,
            id: id.to_string(),
        }
    }

    /// The shared registry.
    pub fn registry(&self) -> &Arc<Telemetry> {
        &self.registry
    }

    /// The component's id as a string.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `sluice_<kind>_<verb>_<unit of signal>{<kind>="<id>"}`.
    pub fn counter(&self, verb: &str, signal: Signal) -> Counter {
        self.counter_named(&format!(
            "sluice_{}_{}_{}",
            self.kind.as_str(),
            verb,
            signal.unit()
        ))
    }

    /// A counter with a full name, labelled with this component.
    pub fn counter_named(&self, name: &str) -> Counter {
        self.registry
            .counter(name, &[(self.kind.as_str(), self.id.as_str())])
    }

    /// A counter with a full name and extra labels (besides the component label).
    pub fn counter_with(&self, name: &str, labels: &[(&str, &str)]) -> Counter {
        let mut all = vec![(self.kind.as_str(), self.id.as_str())];
        all.extend_from_slice(labels);
        self.registry.counter(name, &all)
    }

    /// A gauge with a full name, labelled with this component.
    pub fn gauge_named(&self, name: &str) -> Gauge {
        self.registry
            .gauge(name, &[(self.kind.as_str(), self.id.as_str())])
    }

    /// Counts `count` items of `signal` as dropped (`sluice_<kind>_dropped_<unit>`) and logs it
    /// with the reason: a drop is never only a log line, never only a counter.
    pub fn dropped(&self, signal: Signal, count: usize, reason: &str) {
        self.lost("dropped", signal, count, reason);
    }

    /// Counts `count` items of `signal` under `sluice_<kind>_<verb>_<unit>` and logs the reason.
    pub fn lost(&self, verb: &str, signal: Signal, count: usize, reason: &str) {
        if count == 0 {
            return;
        }
        self.counter(verb, signal).add(count as u64);
        tracing::warn!(
            component_kind = self.kind.as_str(),
            component_id = %self.id,
            signal = signal.as_str(),
            count,
            reason,
            counter = verb,
            "Dropped data."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let t = Telemetry::new();
        let id: ComponentId = "otlp/ci".parse().unwrap();
        let c = ComponentTelemetry::new(t.clone(), Kind::Receiver, &id);
        c.counter("accepted", Signal::Traces).add(3);
        c.gauge_named("sluice_receiver_queue_size").set(-1);
        let text = t.render_prometheus();
        assert!(text.contains("# TYPE sluice_receiver_accepted_spans counter\n"));
        assert!(text.contains("sluice_receiver_accepted_spans{receiver=\"otlp/ci\"} 3\n"));
        assert!(text.contains("sluice_receiver_queue_size{receiver=\"otlp/ci\"} -1\n"));
        assert_eq!(
            t.value("sluice_receiver_accepted_spans", &[("receiver", "otlp/ci")]),
            Some(3)
        );
    }
}
