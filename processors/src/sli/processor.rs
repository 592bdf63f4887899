//! The `sli` processor at run time: reads the points of each SLI's metrics as they pass, evaluates
//! each SLI on its data-time schedule, and emits alerts and status gauges.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use sluice_pipeline::factory::Processor;
use sluice_pipeline::telemetry::{ComponentTelemetry, Counter, Gauge};
use sluice_pipeline::{Batch, Payload, ProcessError};
use sluice_proto::common::v1::{any_value, AnyValue, KeyValue};
use sluice_proto::logs::v1::LogRecord;
use sluice_proto::metrics::v1::{
    exemplar, metric, number_data_point, AggregationTemporality, Exemplar, Metric, ResourceMetrics,
};

use super::alert::{AlertRules, AlertState, Change, Severity};
use super::config::{Aggregation, Direction, SliProcessorConfig, SliRule, SliSelector};
use super::emit::{self, Evaluation, StatusPoint};
use super::window::{
    histogram_quantile, nearest_rank, Buckets, Refusal, Sample, SampleValue, SeriesKind, SeriesSet,
};

/// Self-telemetry: alerts fired, by `severity` and `sli_name`.
pub const ALERTS_TRIGGERED_METRIC: &str = "sluice_processor_alerts_triggered";
/// Self-telemetry: each SLI's status (0 ok, 1 yellow, 2 orange, 3 red), by `sli_name`.
pub const STATUS_SELF_METRIC: &str = "sluice_processor_sli_status";
/// Self-telemetry: evaluations that produced a value, by `sli_name`.
pub const EVALUATIONS_METRIC: &str = "sluice_processor_sli_evaluations";
/// Self-telemetry: points of an SLI's metrics not used, by `sli_name` and `reason`.
pub const IGNORED_METRIC: &str = "sluice_processor_sli_points_ignored";

const NO_RECORDED_VALUE: u32 = 1;

/// The `sli` processor. One instance per pipeline; holds each SLI's window and alert state.
pub struct SliProcessor {
    slis: Vec<SliState>,
    /// Metric name → (SLI index, side index).
    routes: HashMap<String, Vec<(usize, usize)>>,
    max_series: usize,
}

struct SliState {
    name: String,
    aggregation: Aggregation,
    direction: Direction,
    labels: BTreeMap<String, String>,
    window_ns: u64,
    interval_ns: u64,
    selectors: Vec<SliSelector>,
    sides: Vec<SeriesSet>,
    watermark: Option<u64>,
    next_eval: Option<u64>,
    last_eval: Option<u64>,
    rules: AlertRules,
    alert: AlertState,
    point_attributes: Vec<KeyValue>,
    telemetry: ComponentTelemetry,
    fired: [Counter; 3],
    status: Gauge,
    evaluations: Counter,
    ignored: HashMap<&'static str, Counter>,
    warned: HashSet<&'static str>,
}

fn nanos(d: std::time::Duration) -> u64 {
    d.as_nanos().clamp(1, u64::MAX as u128) as u64
}

/// How far ahead of the wall clock a point's timestamp may be. One point from a clock set years
/// ahead would otherwise move the SLI's data time there, and every later point would be too
/// old: the SLI would freeze. (Grafana Mimir's `creation_grace_period` default.)
const FUTURE_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(600);

/// The newest timestamp accepted now, in Unix nanoseconds.
fn newest_accepted() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    nanos(now.saturating_add(FUTURE_TOLERANCE))
}

/// The first multiple of `step` at or after `t`.
fn ceil_to(t: u64, step: u64) -> u64 {
    t.div_ceil(step).saturating_mul(step)
}

impl SliProcessor {
    /// A processor for `config` (already validated), counting into `telemetry`.
    pub fn new(config: &SliProcessorConfig, telemetry: &ComponentTelemetry) -> SliProcessor {
        let mut routes: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        let mut slis = Vec::with_capacity(config.slis.len());
        for (i, rule) in config.slis.iter().enumerate() {
            let selectors = if rule.aggregation == Aggregation::Ratio {
                vec![
                    rule.resolved_selector(rule.numerator.as_ref()),
                    rule.resolved_selector(rule.denominator.as_ref()),
                ]
            } else {
                vec![rule.resolved_selector(None)]
            };
            for (side, sel) in selectors.iter().enumerate() {
                routes
                    .entry(sel.metric.clone())
                    .or_default()
                    .push((i, side));
            }
            slis.push(SliState::new(rule, config, selectors, telemetry));
        }
        SliProcessor {
            slis,
            routes,
            max_series: config.max_series,
        }
    }

    /// Reads the points of every SLI's metrics in `resource_metrics`.
    pub fn ingest(&mut self, resource_metrics: &[ResourceMetrics]) {
        for rm in resource_metrics {
            let resource = sluice_pipeline::otlp::resource_attributes(&rm.resource);
            for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                let Some(routes) = self.routes.get(&m.name) else {
                    continue;
                };
                for &(i, side) in routes {
                    if let Some(sli) = self.slis.get_mut(i) {
                        sli.ingest(side, resource, m, self.max_series);
                    }
                }
            }
        }
    }

    /// Runs every evaluation that is due, appending alert records and status points.
    pub fn evaluate(&mut self, records: &mut Vec<LogRecord>, points: &mut Vec<StatusPoint>) {
        for sli in &mut self.slis {
            sli.evaluate_due(records, points);
        }
    }

    fn emit(records: Vec<LogRecord>, points: Vec<StatusPoint>, out: &mut Vec<Batch>) {
        if !points.is_empty() {
            out.push(Batch::new(Payload::Metrics(vec![emit::status_metrics(
                points,
            )])));
        }
        if !records.is_empty() {
            out.push(Batch::new(Payload::Logs(vec![emit::alert_logs(records)])));
        }
    }
}

impl Processor for SliProcessor {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), ProcessError> {
        if let Payload::Metrics(rm) = &batch.payload {
            self.ingest(rm);
        }
        out.push(batch);
        let mut records = Vec::new();
        let mut points = Vec::new();
        self.evaluate(&mut records, &mut points);
        Self::emit(records, points, out);
        Ok(())
    }
}

impl SliState {
    fn new(
        rule: &SliRule,
        config: &SliProcessorConfig,
        selectors: Vec<SliSelector>,
        telemetry: &ComponentTelemetry,
    ) -> SliState {
        let mut labels = config.labels.clone();
        labels.extend(rule.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        let name = rule.sli_name.as_str();
        let fired = [Severity::Yellow, Severity::Orange, Severity::Red].map(|s| {
            telemetry.counter_with(
                ALERTS_TRIGGERED_METRIC,
                &[("severity", s.as_str()), ("sli_name", name)],
            )
        });
        let status = telemetry.registry().gauge(
            STATUS_SELF_METRIC,
            &[("processor", telemetry.id()), ("sli_name", name)],
        );
        SliState {
            name: rule.sli_name.clone(),
            aggregation: rule.aggregation,
            direction: rule.direction,
            point_attributes: emit::point_attributes(name, &labels),
            labels,
            window_ns: nanos(rule.evaluation_window),
            interval_ns: nanos(rule.evaluation_interval),
            sides: vec![SeriesSet::default(); selectors.len()],
            selectors,
            watermark: None,
            next_eval: None,
            last_eval: None,
            rules: AlertRules::new(rule),
            alert: AlertState::default(),
            telemetry: telemetry.clone(),
            fired,
            status,
            evaluations: telemetry.counter_with(EVALUATIONS_METRIC, &[("sli_name", name)]),
            ignored: HashMap::new(),
            warned: HashSet::new(),
        }
    }

    /// Counts and logs points of this SLI's metrics that are not used: the first time per
    /// reason as a warning, then at debug level.
    fn ignore(&mut self, reason: &'static str, count: usize) {
        if count == 0 {
            return;
        }
        let telemetry = &self.telemetry;
        let name = &self.name;
        self.ignored
            .entry(reason)
            .or_insert_with(|| {
                telemetry.counter_with(IGNORED_METRIC, &[("sli_name", name), ("reason", reason)])
            })
            .add(count as u64);
        if self.warned.insert(reason) {
            tracing::warn!(component_kind = "processor", component_id = %self.telemetry.id(), sli_name = %self.name, reason, count, counter = IGNORED_METRIC, "Ignored points of an SLI's metric; further ones are counted and logged at debug level.");
        } else {
            tracing::debug!(component_kind = "processor", component_id = %self.telemetry.id(), sli_name = %self.name, reason, count, "Ignored points of an SLI's metric.");
        }
    }

    fn accepts(&self, kind: SeriesKind) -> bool {
        match self.aggregation {
            Aggregation::Percentile(_) | Aggregation::Avg | Aggregation::Ratio => true,
            Aggregation::Max | Aggregation::Min => !kind.is_histogram(),
            Aggregation::Rate => {
                matches!(kind, SeriesKind::CumulativeSum | SeriesKind::DeltaSum)
            }
        }
    }

    fn ingest(&mut self, side: usize, resource: &[KeyValue], m: &Metric, max_series: usize) {
        let Some(selector) = self.selectors.get(side) else {
            return;
        };
        let temporality = |t: i32, cumulative, delta| {
            if t == AggregationTemporality::Cumulative as i32 {
                Some(cumulative)
            } else if t == AggregationTemporality::Delta as i32 {
                Some(delta)
            } else {
                None
            }
        };
        let mut candidates: Vec<(SeriesKind, Sample, &[KeyValue])> = Vec::new();
        let mut ignored: Vec<(&'static str, usize)> = Vec::new();
        match &m.data {
            Some(metric::Data::Gauge(g)) => {
                for p in &g.data_points {
                    if !matches(selector, &p.attributes, resource) {
                        continue;
                    }
                    match number_sample(p) {
                        Ok(s) => candidates.push((SeriesKind::Gauge, s, &p.attributes)),
                        Err(r) => ignored.push((r, 1)),
                    }
                }
            }
            Some(metric::Data::Sum(sum)) => {
                let kind = temporality(
                    sum.aggregation_temporality,
                    SeriesKind::CumulativeSum,
                    SeriesKind::DeltaSum,
                );
                for p in &sum.data_points {
                    if !matches(selector, &p.attributes, resource) {
                        continue;
                    }
                    match (kind, number_sample(p)) {
                        (None, _) => ignored.push(("unspecified_temporality", 1)),
                        (Some(k), Ok(s)) => candidates.push((k, s, &p.attributes)),
                        (_, Err(r)) => ignored.push((r, 1)),
                    }
                }
            }
            Some(metric::Data::Histogram(h)) => {
                let kind = temporality(
                    h.aggregation_temporality,
                    SeriesKind::CumulativeHistogram,
                    SeriesKind::DeltaHistogram,
                );
                for p in &h.data_points {
                    if !matches(selector, &p.attributes, resource) {
                        continue;
                    }
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        ignored.push(("no_value", 1));
                        continue;
                    }
                    if p.time_unix_nano == 0 {
                        ignored.push(("no_timestamp", 1));
                        continue;
                    }
                    if p.bucket_counts.len() != p.explicit_bounds.len() + 1
                        || p.explicit_bounds.iter().any(|b| !b.is_finite())
                    {
                        ignored.push(("malformed_buckets", 1));
                        continue;
                    }
                    let Some(k) = kind else {
                        ignored.push(("unspecified_temporality", 1));
                        continue;
                    };
                    let sample = Sample {
                        t: p.time_unix_nano,
                        start: p.start_time_unix_nano,
                        value: SampleValue::Histogram(Buckets {
                            bounds: p.explicit_bounds.clone(),
                            counts: p.bucket_counts.clone(),
                            count: p.count,
                            sum: p.sum.unwrap_or(0.0),
                        }),
                        exemplars: exemplars(&p.exemplars),
                    };
                    candidates.push((k, sample, &p.attributes));
                }
            }
            Some(metric::Data::ExponentialHistogram(h)) => {
                let attrs = h.data_points.iter().map(|p| p.attributes.as_slice());
                ignored.push((
                    "unsupported_type",
                    count_matching(selector, attrs, resource),
                ));
            }
            Some(metric::Data::Summary(s)) => {
                let attrs = s.data_points.iter().map(|p| p.attributes.as_slice());
                ignored.push((
                    "unsupported_type",
                    count_matching(selector, attrs, resource),
                ));
            }
            None => {}
        }
        let oldest_useful = self
            .last_eval
            .map(|b| b.saturating_sub(self.window_ns))
            .unwrap_or(0);
        let newest = newest_accepted();
        for (kind, sample, attributes) in candidates {
            if !self.accepts(kind) {
                ignored.push(("unsupported_type", 1));
                continue;
            }
            if sample.t <= oldest_useful {
                ignored.push(("too_old", 1));
                continue;
            }
            if sample.t > newest {
                ignored.push(("too_new", 1));
                continue;
            }
            let t = sample.t;
            let key = series_key(&m.name, resource, attributes);
            let Some(set) = self.sides.get_mut(side) else {
                return;
            };
            match set.insert(key, kind, sample, max_series) {
                Ok(()) => {
                    self.watermark = Some(self.watermark.map_or(t, |w| w.max(t)));
                    if self.next_eval.is_none() {
                        self.next_eval = Some(ceil_to(t, self.interval_ns));
                    }
                }
                Err(Refusal::MaxSeries) => ignored.push(("max_series", 1)),
            }
        }
        for (reason, n) in ignored {
            self.ignore(reason, n);
        }
    }

    fn has_data(&self, lo: u64, hi: u64) -> bool {
        self.sides.iter().any(|s| s.has_data(lo, hi))
    }

    fn evaluate_due(&mut self, records: &mut Vec<LogRecord>, points: &mut Vec<StatusPoint>) {
        let (Some(watermark), Some(mut b)) = (self.watermark, self.next_eval) else {
            return;
        };
        while b <= watermark {
            let lo = b.saturating_sub(self.window_ns);
            if !self.has_data(lo, b) {
                // Nothing in this window: jump to the first boundary whose window holds the next
                // sample, so a gap in the data costs no empty evaluations.
                let next = self.sides.iter().filter_map(|s| s.next_time_after(b)).min();
                match next {
                    Some(s) => {
                        b = ceil_to(s, self.interval_ns).max(b.saturating_add(self.interval_ns))
                    }
                    None => {
                        b = ceil_to(watermark.saturating_add(1), self.interval_ns);
                        break;
                    }
                }
                continue;
            }
            self.evaluate_at(b, records, points);
            self.last_eval = Some(b);
            b = b.saturating_add(self.interval_ns);
        }
        self.next_eval = Some(b);
        if let Some(last) = self.last_eval {
            for s in &mut self.sides {
                s.prune(last, self.window_ns);
            }
        }
    }

    /// The SLI's value over `(lo, hi]`.
    fn value(&mut self, lo: u64, hi: u64) -> Option<f64> {
        let (v, mismatched) = self.compute(lo, hi);
        self.ignore("mismatched_bounds", mismatched);
        v.filter(|v| v.is_finite())
    }

    /// The value over `(lo, hi]`, and how many histogram series were left out for other bounds.
    fn compute(&self, lo: u64, hi: u64) -> (Option<f64>, usize) {
        let Some(main) = self.sides.first() else {
            return (None, 0);
        };
        match self.aggregation {
            Aggregation::Percentile(_) => {
                let q = self.aggregation.quantile().unwrap_or(1.0);
                match main.histogram(lo, hi) {
                    Some((h, mismatched)) => (histogram_quantile(q, &h), mismatched),
                    None => (nearest_rank(q, &mut main.numbers(lo, hi)), 0),
                }
            }
            Aggregation::Avg => match main.histogram(lo, hi) {
                Some((h, mismatched)) => {
                    ((h.count > 0).then(|| h.sum / h.count as f64), mismatched)
                }
                None => {
                    let v = main.numbers(lo, hi);
                    (
                        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64),
                        0,
                    )
                }
            },
            Aggregation::Max => (main.numbers(lo, hi).into_iter().reduce(f64::max), 0),
            Aggregation::Min => (main.numbers(lo, hi).into_iter().reduce(f64::min), 0),
            Aggregation::Rate => (main.rate(lo, hi), 0),
            Aggregation::Ratio => {
                let Some(den) = self.sides.get(1).and_then(|s| s.amount(lo, hi)) else {
                    return (None, 0);
                };
                let num = main.amount(lo, hi).unwrap_or(0.0);
                ((den > 0.0).then(|| num / den), 0)
            }
        }
    }

    fn evaluate_at(&mut self, b: u64, records: &mut Vec<LogRecord>, points: &mut Vec<StatusPoint>) {
        let lo = b.saturating_sub(self.window_ns);
        let Some(value) = self.value(lo, b) else {
            return;
        };
        self.evaluations.add(1);
        if let Some(transition) = self.alert.evaluate(&self.rules, b, value) {
            let trace_id = self
                .sides
                .first()
                .and_then(|s| s.trace_id(lo, b, self.direction == Direction::Above));
            let evaluation = Evaluation {
                sli_name: &self.name,
                direction: self.direction.as_str(),
                t: b,
                value,
                trace_id,
                labels: &self.labels,
            };
            let event = emit::alert_event(&evaluation, &transition);
            let severity = transition.severity;
            if transition.change == Change::Fired {
                self.fired[severity as usize - 1].add(1);
            }
            tracing::info!(component_kind = "processor", component_id = %self.telemetry.id(), sli_name = %self.name, severity = severity.as_str(), state = transition.change.as_str(), alert_id = %event.alert_id, value, threshold = event.threshold, "SLI alert changed.");
            match emit::alert_record(&event, b, trace_id) {
                Ok(r) => records.push(r),
                Err(e) => {
                    tracing::error!(component_kind = "processor", component_id = %self.telemetry.id(), sli_name = %self.name, error = %e, "Could not emit an SLI alert.");
                    self.telemetry
                        .counter_with(
                            "sluice_processor_sli_alerts_lost",
                            &[("sli_name", &self.name)],
                        )
                        .add(1);
                }
            }
        }
        let status = self.alert.status();
        self.status.set(status);
        points.push(StatusPoint {
            t: b,
            status,
            value,
            attributes: self.point_attributes.clone(),
        });
    }
}

fn number_sample(p: &sluice_proto::metrics::v1::NumberDataPoint) -> Result<Sample, &'static str> {
    if p.flags & NO_RECORDED_VALUE != 0 {
        return Err("no_value");
    }
    if p.time_unix_nano == 0 {
        return Err("no_timestamp");
    }
    let v = match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => return Err("no_value"),
    };
    if !v.is_finite() {
        return Err("no_value");
    }
    Ok(Sample {
        t: p.time_unix_nano,
        start: p.start_time_unix_nano,
        value: SampleValue::Number(v),
        exemplars: exemplars(&p.exemplars),
    })
}

/// Exemplars with a trace id, at most 8 per point.
fn exemplars(list: &[Exemplar]) -> Vec<(f64, [u8; 16])> {
    list.iter()
        .filter_map(|e| {
            let id: [u8; 16] = e.trace_id.as_slice().try_into().ok()?;
            if id == [0; 16] {
                return None;
            }
            let v = match e.value {
                Some(exemplar::Value::AsDouble(d)) => d,
                Some(exemplar::Value::AsInt(i)) => i as f64,
                None => return None,
            };
            Some((v, id))
        })
        .take(8)
        .collect()
}

/// An attribute value as text (what attribute filters compare against).
fn value_text(v: Option<&AnyValue>) -> Cow<'_, str> {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Cow::Borrowed(s.as_str()),
        Some(any_value::Value::IntValue(i)) => Cow::Owned(i.to_string()),
        Some(any_value::Value::DoubleValue(d)) => Cow::Owned(d.to_string()),
        Some(any_value::Value::BoolValue(b)) => Cow::Owned(b.to_string()),
        Some(any_value::Value::BytesValue(b)) => {
            Cow::Owned(b.iter().map(|x| format!("{x:02x}")).collect())
        }
        Some(other) => Cow::Owned(format!("{other:?}")),
        None => Cow::Borrowed(""),
    }
}

/// Whether a point (its attributes, then its resource's) has every attribute `selector` asks.
fn matches(selector: &SliSelector, point: &[KeyValue], resource: &[KeyValue]) -> bool {
    selector.attributes.iter().all(|(k, want)| {
        let found = point
            .iter()
            .find(|kv| &kv.key == k)
            .or_else(|| resource.iter().find(|kv| &kv.key == k));
        found.is_some_and(|kv| value_text(kv.value.as_ref()) == want.as_str())
    })
}

/// How many points (given by their attributes) `selector` matches.
fn count_matching<'a>(
    selector: &SliSelector,
    points: impl Iterator<Item = &'a [KeyValue]>,
    resource: &[KeyValue],
) -> usize {
    points.filter(|p| matches(selector, p, resource)).count()
}

/// The identity of a series: metric name, resource attributes and point attributes (sorted).
fn series_key(metric: &str, resource: &[KeyValue], point: &[KeyValue]) -> String {
    let mut key = String::with_capacity(64);
    key.push_str(metric);
    for (sep, attrs) in [('\u{1e}', resource), ('\u{1d}', point)] {
        key.push(sep);
        let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        for kv in sorted {
            key.push_str(&kv.key);
            key.push('=');
            key.push_str(&value_text(kv.value.as_ref()));
            key.push('\u{1f}');
        }
    }
    key
}
