//! OTLP values as the database stores them: attributes as compact JSON objects, bodies as text,
//! empty ids as NULL.

use serde_json::{Map, Number, Value};
use sluice_proto::common::v1::{any_value, AnyValue, KeyValue};

/// `{"key": value, …}`; a repeated key keeps its last value (as OTLP says receivers may).
pub fn attributes_json(attrs: &[KeyValue]) -> String {
    if attrs.is_empty() {
        return "{}".to_string();
    }
    Value::Object(attributes_map(attrs)).to_string()
}

fn attributes_map(attrs: &[KeyValue]) -> Map<String, Value> {
    let mut map = Map::with_capacity(attrs.len());
    for kv in attrs {
        map.insert(kv.key.clone(), any_value_json(kv.value.as_ref()));
    }
    map
}

/// An `AnyValue` as JSON: strings, numbers and booleans as themselves, arrays and key-value
/// lists as arrays and objects, bytes as a lowercase hex string; an empty value as `null`.
pub fn any_value_json(v: Option<&AnyValue>) -> Value {
    match v.and_then(|v| v.value.as_ref()) {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::Number((*i).into()),
        // JSON has no NaN or infinity: those become strings, as OTLP JSON writes them.
        Some(any_value::Value::DoubleValue(d)) => Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(d.to_string())),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(|v| any_value_json(Some(v))).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(attributes_map(&kv.values)),
        Some(any_value::Value::BytesValue(b)) => Value::String(hex(b)),
        // An index into a profile's string table, which logs and metrics do not carry.
        Some(any_value::Value::StringValueStrindex(i)) => Value::Number((*i).into()),
    }
}

/// A log body: a string as is, anything else as JSON, nothing as NULL.
pub fn body_text(v: Option<&AnyValue>) -> Option<String> {
    match v.and_then(|v| v.value.as_ref()) {
        None => None,
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        Some(_) => Some(any_value_json(v).to_string()),
    }
}

/// An id as a BLOB, or NULL when absent (empty or all zero, which OTLP means as "none").
pub fn id_blob(id: &[u8]) -> Option<&[u8]> {
    if id.is_empty() || id.iter().all(|b| *b == 0) {
        None
    } else {
        Some(id)
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// A JSON array of numbers.
pub fn json_array<T: Into<Value> + Copy>(values: &[T]) -> String {
    Value::Array(values.iter().map(|v| (*v).into()).collect()).to_string()
}

/// A JSON array of doubles (non-finite ones as strings).
pub fn json_f64_array(values: &[f64]) -> String {
    Value::Array(
        values
            .iter()
            .map(|d| {
                Number::from_f64(*d)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(d.to_string()))
            })
            .collect(),
    )
    .to_string()
}

/// An unsigned OTLP time or count as SQLite's signed integer (saturating; no real value is that
/// large).
pub fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
