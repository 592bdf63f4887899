//! Turning a raw record into an OTLP log record: UTF-8 decoding with replacement, plain or JSON
//! bodies, severity from a JSON field or a regex, the file attributes.

use regex::Regex;
use serde_json::Value;
use sluice_pipeline::otlp::{kv, kv_str};
use sluice_proto::common::v1::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};
use sluice_proto::logs::v1::{LogRecord, SeverityNumber};

use super::config::{FilelogReceiverConfig, LogFormat};

/// What parsing a record ran into (each is counted by the receiver).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ParseIssues {
    /// Invalid UTF-8 was replaced by U+FFFD.
    pub invalid_utf8: bool,
    /// `format: json` but the record is not a JSON object.
    pub bad_json: bool,
}

/// Parses records by the receiver's config.
#[derive(Debug, Clone)]
pub struct RecordParser {
    format: LogFormat,
    body_field: Option<String>,
    severity_field: Option<String>,
    severity_regex: Option<Regex>,
}

impl RecordParser {
    /// A parser for a validated config.
    pub fn new(config: &FilelogReceiverConfig) -> Result<RecordParser, regex::Error> {
        let severity_regex = match config.severity.as_ref().and_then(|s| s.regex.as_ref()) {
            Some(r) => Some(Regex::new(r)?),
            None => None,
        };
        Ok(RecordParser {
            format: config.format,
            body_field: config.json.body_field.clone(),
            severity_field: config.severity.as_ref().and_then(|s| s.field.clone()),
            severity_regex,
        })
    }

    /// The log record for `bytes`, with `attrs` (the file attributes) added.
    pub fn parse(
        &self,
        bytes: &[u8],
        attrs: &[KeyValue],
        observed: u64,
    ) -> (LogRecord, ParseIssues) {
        let mut issues = ParseIssues::default();
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => {
                issues.invalid_utf8 = true;
                String::from_utf8_lossy(bytes).into_owned()
            }
        };
        let mut record = LogRecord {
            observed_time_unix_nano: observed,
            attributes: attrs.to_vec(),
            ..Default::default()
        };
        let mut body = any_value::Value::StringValue(text.clone());
        let mut severity: Option<String> = None;
        if self.format == LogFormat::Json {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => {
                    for (k, v) in map {
                        if self.body_field.as_deref() == Some(k.as_str()) {
                            body = json_value(v);
                            continue;
                        }
                        if self.severity_field.as_deref() == Some(k.as_str()) {
                            if let Value::String(s) = &v {
                                severity = Some(s.clone());
                            }
                        }
                        record.attributes.push(kv(&k, json_value(v)));
                    }
                }
                _ => issues.bad_json = true,
            }
        }
        if let Some(re) = &self.severity_regex {
            if let Some(m) = re.captures(&text).and_then(|c| c.name("severity")) {
                severity = Some(m.as_str().to_string());
            }
        }
        if let Some(s) = severity {
            record.severity_number = severity_number(&s) as i32;
            record.severity_text = s;
        }
        record.body = Some(AnyValue { value: Some(body) });
        (record, issues)
    }
}

/// The file attributes of records read from `path`.
pub fn file_attributes(path: &std::path::Path, name: bool, full: bool) -> Vec<KeyValue> {
    let mut v = Vec::new();
    if name {
        if let Some(n) = path.file_name() {
            v.push(kv_str("log.file.name", n.to_string_lossy()));
        }
    }
    if full {
        v.push(kv_str("log.file.path", path.to_string_lossy()));
    }
    v
}

/// An OTLP value for a JSON value.
pub fn json_value(v: Value) -> any_value::Value {
    match v {
        Value::Null => any_value::Value::StringValue(String::new()),
        Value::Bool(b) => any_value::Value::BoolValue(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => any_value::Value::StringValue(s),
        Value::Array(a) => any_value::Value::ArrayValue(ArrayValue {
            values: a
                .into_iter()
                .map(|v| AnyValue {
                    value: Some(json_value(v)),
                })
                .collect(),
        }),
        Value::Object(m) => any_value::Value::KvlistValue(KeyValueList {
            values: m.into_iter().map(|(k, v)| kv(&k, json_value(v))).collect(),
        }),
    }
}

/// The OTLP severity number of a severity text (`warn`, `ERROR`, `E`, `crit`, …).
pub fn severity_number(s: &str) -> SeverityNumber {
    match s.trim().to_ascii_lowercase().as_str() {
        "trace" | "t" | "finest" => SeverityNumber::Trace,
        "debug" | "d" | "fine" => SeverityNumber::Debug,
        "info" | "i" | "information" | "informational" | "notice" => SeverityNumber::Info,
        "warn" | "w" | "warning" => SeverityNumber::Warn,
        "error" | "e" | "err" => SeverityNumber::Error,
        "fatal" | "f" | "crit" | "critical" | "alert" | "emerg" | "panic" => SeverityNumber::Fatal,
        _ => SeverityNumber::Unspecified,
    }
}
