//! OTLP log records → Loki streams, and streams → a push body (snappy protobuf or JSON).
//!
//! A record's stream is the set of its labels: the configured resource attributes, then the
//! configured record attributes, then `level`, then the static labels, names sanitised to
//! `[a-zA-Z_][a-zA-Z0-9_]*`. Every other attribute goes with the entry as structured metadata, as
//! do `trace_id`, `span_id`, `severity_text` (unless it is the `level` label) and `scope_name`.
//! The line is the body: a string as is, any other value as JSON. Entries are sorted by
//! timestamp within each stream (stable, so equal timestamps keep their order), as Loki wants.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use prost::Message;
use serde_json::{Map, Value};
use sluice_proto::common::v1::{any_value, AnyValue, KeyValue};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs};
use sluice_proto::loki::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter};

use super::config::{LokiCompression, LokiFormat, LokiLabelsConfig};

/// The label a stream gets when no configured label applies: Loki refuses a stream without
/// labels.
pub const FALLBACK_LABEL: (&str, &str) = ("exporter", "sluice");

/// The label rules of a config, with label names sanitised once.
#[derive(Debug, Clone)]
pub struct LabelRules {
    /// (attribute key, label name).
    resource: Vec<(String, String)>,
    /// (attribute key, label name).
    attributes: Vec<(String, String)>,
    severity: bool,
    static_labels: Vec<(String, String)>,
}

impl LabelRules {
    /// The rules of a `labels` config.
    pub fn new(config: &LokiLabelsConfig) -> LabelRules {
        let pairs = |keys: &[String]| {
            keys.iter()
                .map(|k| (k.clone(), sanitize_label_name(k)))
                .collect()
        };
        LabelRules {
            resource: pairs(&config.resource),
            attributes: pairs(&config.attributes),
            severity: config.severity,
            static_labels: config
                .static_labels
                .iter()
                .map(|(k, v)| (sanitize_label_name(k), v.clone()))
                .collect(),
        }
    }
}

/// One stream of a push: its labels (sorted by name) and entries.
#[derive(Debug, Clone, PartialEq)]
pub struct LokiStream {
    pub labels: BTreeMap<String, String>,
    pub entries: Vec<LokiEntry>,
}

/// One entry: nanoseconds since the epoch, the line, structured metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LokiEntry {
    pub timestamp_ns: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

/// A name made to fit Loki's label rules `[a-zA-Z_][a-zA-Z0-9_]*`: every other character becomes
/// `_`, and a leading digit gets a `_` in front (`service.name` → `service_name`, `1x` → `_1x`).
pub fn sanitize_label_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) || name.is_empty() {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// The labels in Loki's stream selector syntax: `{a="x", b="y\"z"}`, values escaped as Go string
/// literals (`\\`, `\"`, `\n`).
pub fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(2 + labels.len() * 24);
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// An attribute value as a label or metadata value: a string as is, anything else as JSON.
pub fn value_text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        None => String::new(),
        _ => any_value_json(value).to_string(),
    }
}

/// An `AnyValue` as JSON: bytes as base64 (OTLP/JSON's spelling), non-finite doubles as strings,
/// key-value lists as objects.
pub fn any_value_json(value: &AnyValue) -> Value {
    match &value.value {
        // An index into a profile's string table, which a log record has none of.
        None | Some(any_value::Value::StringValueStrindex(_)) => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(d.to_string())),
        Some(any_value::Value::BytesValue(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_value_json).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map(any_value_json).unwrap_or(Value::Null);
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
    }
}

/// The `level` of a record: `severity_text` lowercased, else named from `severity_number`.
fn level(record: &LogRecord) -> Option<String> {
    if !record.severity_text.is_empty() {
        return Some(record.severity_text.to_ascii_lowercase());
    }
    sluice_pipeline::otlp::severity_name(record.severity_number).map(str::to_ascii_lowercase)
}

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Groups the records of `logs` into streams by their labels (streams in order of first
/// appearance), entries sorted by timestamp within each stream. A record without a timestamp
/// takes its observed time, else now.
pub fn group_streams(logs: &[ResourceLogs], rules: &LabelRules) -> Vec<LokiStream> {
    let mut streams: Vec<LokiStream> = Vec::new();
    let mut index: HashMap<BTreeMap<String, String>, usize> = HashMap::new();
    let mut now = None;
    for rl in logs {
        let resource_attrs = sluice_pipeline::otlp::resource_attributes(&rl.resource);
        let mut resource_labels = BTreeMap::new();
        for (key, name) in &rules.resource {
            if let Some(v) = find(resource_attrs, key) {
                let v = value_text(v);
                if !v.is_empty() {
                    resource_labels.insert(name.clone(), v);
                }
            }
        }
        let resource_metadata: Vec<(String, String)> = resource_attrs
            .iter()
            .filter(|kv| !rules.resource.iter().any(|(k, _)| *k == kv.key))
            .map(|kv| {
                let v = kv.value.as_ref().map(value_text).unwrap_or_default();
                (sanitize_label_name(&kv.key), v)
            })
            .collect();
        for sl in &rl.scope_logs {
            let scope_name = sl.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("");
            for record in &sl.log_records {
                let mut labels = resource_labels.clone();
                for (key, name) in &rules.attributes {
                    if let Some(v) = find(&record.attributes, key) {
                        let v = value_text(v);
                        if !v.is_empty() {
                            labels.insert(name.clone(), v);
                        }
                    }
                }
                let level = if rules.severity { level(record) } else { None };
                let level_is_label = level.is_some();
                if let Some(level) = level {
                    labels.insert("level".to_string(), level);
                }
                for (name, value) in &rules.static_labels {
                    labels.insert(name.clone(), value.clone());
                }
                if labels.is_empty() {
                    labels.insert(FALLBACK_LABEL.0.to_string(), FALLBACK_LABEL.1.to_string());
                }

                let mut metadata = resource_metadata.clone();
                if !scope_name.is_empty() {
                    metadata.push(("scope_name".to_string(), scope_name.to_string()));
                }
                for kv in &record.attributes {
                    if rules.attributes.iter().any(|(k, _)| *k == kv.key) {
                        continue;
                    }
                    let v = kv.value.as_ref().map(value_text).unwrap_or_default();
                    metadata.push((sanitize_label_name(&kv.key), v));
                }
                if !level_is_label && !record.severity_text.is_empty() {
                    metadata.push(("severity_text".to_string(), record.severity_text.clone()));
                }
                if !record.trace_id.is_empty() {
                    metadata.push(("trace_id".to_string(), hex(&record.trace_id)));
                }
                if !record.span_id.is_empty() {
                    metadata.push(("span_id".to_string(), hex(&record.span_id)));
                }

                let timestamp_ns = match (record.time_unix_nano, record.observed_time_unix_nano) {
                    (0, 0) => *now.get_or_insert_with(now_ns),
                    (0, t) | (t, _) => t as i64,
                };
                let line = record.body.as_ref().map(value_text).unwrap_or_default();
                let entry = LokiEntry {
                    timestamp_ns,
                    line,
                    metadata,
                };
                match index.get(&labels) {
                    Some(&i) => streams[i].entries.push(entry),
                    None => {
                        index.insert(labels.clone(), streams.len());
                        streams.push(LokiStream {
                            labels,
                            entries: vec![entry],
                        });
                    }
                }
            }
        }
    }
    for s in &mut streams {
        if !s.entries.is_sorted_by_key(|e| e.timestamp_ns) {
            s.entries.sort_by_key(|e| e.timestamp_ns);
        }
    }
    streams
}

/// The streams as a `logproto.PushRequest`.
pub fn push_request(streams: Vec<LokiStream>) -> PushRequest {
    PushRequest {
        streams: streams
            .into_iter()
            .map(|s| StreamAdapter {
                labels: labels_text(&s.labels),
                entries: s
                    .entries
                    .into_iter()
                    .map(|e| EntryAdapter {
                        timestamp: Some(sluice_proto::prost_types::Timestamp {
                            seconds: e.timestamp_ns.div_euclid(1_000_000_000),
                            nanos: e.timestamp_ns.rem_euclid(1_000_000_000) as i32,
                        }),
                        line: e.line,
                        structured_metadata: e
                            .metadata
                            .into_iter()
                            .map(|(name, value)| LabelPairAdapter { name, value })
                            .collect(),
                        parsed: Vec::new(),
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
        format: String::new(),
    }
}

/// The streams as Loki's JSON push body.
pub fn push_json(streams: &[LokiStream]) -> Vec<u8> {
    let streams: Vec<Value> = streams
        .iter()
        .map(|s| {
            let labels: Map<String, Value> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let values: Vec<Value> = s
                .entries
                .iter()
                .map(|e| {
                    let mut v = vec![
                        Value::String(e.timestamp_ns.to_string()),
                        Value::String(e.line.clone()),
                    ];
                    if !e.metadata.is_empty() {
                        let m: Map<String, Value> = e
                            .metadata
                            .iter()
                            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                            .collect();
                        v.push(Value::Object(m));
                    }
                    Value::Array(v)
                })
                .collect();
            serde_json::json!({ "stream": labels, "values": values })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap_or_default()
}

/// Why a push body could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot snappy-compress the push: {0}")]
    Snappy(#[from] snap::Error),
    #[error("cannot gzip the push: {0}")]
    Gzip(#[from] std::io::Error),
}

/// The push body of `logs` in `format`, compressed as Loki expects: snappy (block format) for
/// protobuf, gzip for JSON when asked. Empty when there are no records.
pub fn encode_push(
    logs: &[ResourceLogs],
    rules: &LabelRules,
    format: LokiFormat,
    compression: LokiCompression,
) -> Result<Vec<u8>, EncodeError> {
    let streams = group_streams(logs, rules);
    if streams.is_empty() {
        return Ok(Vec::new());
    }
    match format {
        LokiFormat::Protobuf => {
            let raw = push_request(streams).encode_to_vec();
            Ok(snap::raw::Encoder::new().compress_vec(&raw)?)
        }
        LokiFormat::Json => {
            let raw = push_json(&streams);
            match compression {
                LokiCompression::None => Ok(raw),
                LokiCompression::Gzip => {
                    let mut gz = flate2::write::GzEncoder::new(
                        Vec::with_capacity(raw.len() / 4),
                        flate2::Compression::fast(),
                    );
                    gz.write_all(&raw)?;
                    Ok(gz.finish()?)
                }
            }
        }
    }
}
