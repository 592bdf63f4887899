//! Small builders for OTLP values, shared by every plugin that makes telemetry (procfs, github,
//! sli) and by tests: one way to write an attribute or a gauge point.

use std::time::{SystemTime, UNIX_EPOCH};

use sluice_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use sluice_proto::resource::v1::Resource;

/// Nanoseconds since the Unix epoch of `t`.
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(u64::MAX as u128) as u64)
        .unwrap_or(0)
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_nanos() -> u64 {
    unix_nanos(SystemTime::now())
}

/// A string attribute.
pub fn kv_str(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

/// An integer attribute.
pub fn kv_i64(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

/// A floating-point attribute.
pub fn kv_f64(key: &str, value: f64) -> KeyValue {
    kv(key, any_value::Value::DoubleValue(value))
}

/// A boolean attribute.
pub fn kv_bool(key: &str, value: bool) -> KeyValue {
    kv(key, any_value::Value::BoolValue(value))
}

/// An attribute with any value.
pub fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// The attributes of an optional resource (none when it is absent).
pub fn resource_attributes(resource: &Option<Resource>) -> &[KeyValue] {
    resource.as_ref().map_or(&[], |r| r.attributes.as_slice())
}

/// A resource with these attributes.
pub fn resource(attributes: Vec<KeyValue>) -> Resource {
    Resource {
        attributes,
        ..Default::default()
    }
}

/// The instrumentation scope sluice's own components use (`sluice/<component type>`).
pub fn scope(component_type: &str) -> InstrumentationScope {
    InstrumentationScope {
        name: format!("sluice/{component_type}"),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..Default::default()
    }
}

/// The short name of a log record's `severity_number` range, as the OpenTelemetry log data model
/// names them: `TRACE` (1–4), `DEBUG` (5–8), `INFO` (9–12), `WARN` (13–16), `ERROR` (17–20),
/// `FATAL` (21–24); `None` for 0 (unspecified) and anything out of range.
pub fn severity_name(number: i32) -> Option<&'static str> {
    Some(match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => return None,
    })
}

/// The string value of attribute `key` in `attrs`, if it is a string.
pub fn attr_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        }
    })
}
