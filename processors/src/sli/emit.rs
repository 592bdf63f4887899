//! What the processor emits: AlertEvent log records and the `sluice.sli.status` /
//! `sluice.sli.value` gauges.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use sluice_pipeline::otlp::{kv_f64, kv_str, now_nanos, resource, scope};
use sluice_proto::common::v1::{any_value, AnyValue, KeyValue};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use sluice_proto::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};

use super::alert::{Change, Severity, Transition};
use super::error::{Result, SliError};

/// The `event_name` of every alert log record.
pub const ALERT_EVENT_NAME: &str = "sluice.sli.alert";
/// The gauge of each SLI's alert state: 0 ok, 1 yellow, 2 orange, 3 red.
pub const STATUS_METRIC: &str = "sluice.sli.status";
/// The gauge of each SLI's value at each evaluation.
pub const VALUE_METRIC: &str = "sluice.sli.value";

/// R4's AlertEvent, the JSON body of an alert log record.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AlertEvent {
    /// Stable across an alert's firing, escalations and resolution: `<sli_name>-<ms>`, the
    /// evaluation time (ms since the epoch) it first fired at.
    pub alert_id: String,
    /// `yellow`, `orange` or `red` (for a resolution: the severity that resolved).
    pub severity: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub sli_name: String,
    /// The SLI's value at the evaluation.
    pub current_value: f64,
    /// Firing: the threshold of `severity`. Resolved: the value it came back past (the least
    /// severe threshold moved by the hysteresis).
    pub threshold: f64,
    /// Firing: `above` or `below` (the value is past the threshold in that direction).
    /// Resolved: `resolve_below` or `resolve_above`.
    pub threshold_type: String,
    /// The evaluation time, RFC 3339 (UTC, milliseconds).
    pub timestamp: String,
    /// Lowercase hex of the trace id of the window's most extreme exemplar, when there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trace_id: Option<String>,
    /// The processor's and the SLI's labels.
    pub labels: BTreeMap<String, String>,
}

/// Everything one evaluation knows, to describe a transition.
pub struct Evaluation<'a> {
    pub sli_name: &'a str,
    pub direction: &'a str,
    pub t: u64,
    pub value: f64,
    pub trace_id: Option<[u8; 16]>,
    pub labels: &'a BTreeMap<String, String>,
}

fn rfc3339(t: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_nanos(t);
    humantime::format_rfc3339_millis(at).to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The AlertEvent of `transition`.
pub fn alert_event(e: &Evaluation<'_>, transition: &Transition) -> AlertEvent {
    let threshold_type = match (transition.change, e.direction) {
        (Change::Fired, direction) => direction.to_string(),
        (Change::Resolved, "above") => "resolve_below".to_string(),
        (Change::Resolved, _) => "resolve_above".to_string(),
    };
    AlertEvent {
        alert_id: transition.alert_id.clone(),
        severity: transition.severity.as_str().to_string(),
        state: transition.change.as_str().to_string(),
        sli_name: e.sli_name.to_string(),
        current_value: e.value,
        threshold: transition.threshold,
        threshold_type,
        timestamp: rfc3339(e.t),
        trace_id: e.trace_id.map(|id| hex(&id)),
        labels: e.labels.clone(),
    }
}

/// The log record of `event`: `event_name` `sluice.sli.alert`, the JSON body, attributes for
/// each field and label, severity WARN (yellow, orange), ERROR (red) or INFO (resolved).
pub fn alert_record(event: &AlertEvent, t: u64, trace_id: Option<[u8; 16]>) -> Result<LogRecord> {
    let body = serde_json::to_string(event).map_err(|source| SliError::EncodeAlert {
        sli_name: event.sli_name.clone(),
        source,
    })?;
    let (number, text) = if event.state == "resolved" {
        (SeverityNumber::Info, "INFO")
    } else if event.severity == Severity::Red.as_str() {
        (SeverityNumber::Error, "ERROR")
    } else {
        (SeverityNumber::Warn, "WARN")
    };
    let mut attributes = vec![
        kv_str("alert_id", event.alert_id.clone()),
        kv_str("severity", event.severity.clone()),
        kv_str("state", event.state.clone()),
        kv_str("sli_name", event.sli_name.clone()),
        kv_f64("current_value", event.current_value),
        kv_f64("threshold", event.threshold),
        kv_str("threshold_type", event.threshold_type.clone()),
        kv_str("timestamp", event.timestamp.clone()),
    ];
    if let Some(id) = &event.trace_id {
        attributes.push(kv_str("trace_id", id.clone()));
    }
    attributes.extend(event.labels.iter().map(|(k, v)| kv_str(k, v.clone())));
    Ok(LogRecord {
        time_unix_nano: t,
        observed_time_unix_nano: now_nanos(),
        severity_number: number as i32,
        severity_text: text.to_string(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body)),
        }),
        attributes,
        trace_id: trace_id.map(|id| id.to_vec()).unwrap_or_default(),
        event_name: ALERT_EVENT_NAME.to_string(),
        ..Default::default()
    })
}

fn sluice_resource() -> sluice_proto::resource::v1::Resource {
    resource(vec![kv_str("service.name", "sluice")])
}

/// Alert log records as one `ResourceLogs`.
pub fn alert_logs(records: Vec<LogRecord>) -> ResourceLogs {
    ResourceLogs {
        resource: Some(sluice_resource()),
        scope_logs: vec![ScopeLogs {
            scope: Some(scope("sli")),
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// One evaluation's gauge points: the status and the value of one SLI at time `t`.
pub struct StatusPoint {
    pub t: u64,
    pub status: i64,
    pub value: f64,
    pub attributes: Vec<KeyValue>,
}

/// The attributes of an SLI's gauge points: `sli_name` and its labels.
pub fn point_attributes(sli_name: &str, labels: &BTreeMap<String, String>) -> Vec<KeyValue> {
    let mut v = vec![kv_str("sli_name", sli_name)];
    v.extend(labels.iter().map(|(k, val)| kv_str(k, val.clone())));
    v
}

/// The `sluice.sli.status` and `sluice.sli.value` gauges of `points`.
pub fn status_metrics(points: Vec<StatusPoint>) -> ResourceMetrics {
    let mut status = Vec::with_capacity(points.len());
    let mut values = Vec::with_capacity(points.len());
    for p in points {
        status.push(NumberDataPoint {
            time_unix_nano: p.t,
            value: Some(number_data_point::Value::AsInt(p.status)),
            attributes: p.attributes.clone(),
            ..Default::default()
        });
        values.push(NumberDataPoint {
            time_unix_nano: p.t,
            value: Some(number_data_point::Value::AsDouble(p.value)),
            attributes: p.attributes,
            ..Default::default()
        });
    }
    ResourceMetrics {
        resource: Some(sluice_resource()),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(scope("sli")),
            metrics: vec![
                Metric {
                    name: STATUS_METRIC.to_string(),
                    description: "SLI alert state: 0 ok, 1 yellow, 2 orange, 3 red.".to_string(),
                    unit: "1".to_string(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: status,
                    })),
                    ..Default::default()
                },
                Metric {
                    name: VALUE_METRIC.to_string(),
                    description: "SLI value at each evaluation.".to_string(),
                    unit: String::new(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: values,
                    })),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    }
}
