//! Rendering of the pieces every verbosity shares: hex ids, timestamps as Go prints them,
//! `AnyValue`s, and the names of OTLP enums as the Collector spells them.

use std::fmt::Write as _;

use sluice_proto::common::v1::{any_value, AnyValue, KeyValue};

/// Appends `bytes` as lowercase hex (an empty id appends nothing).
pub(crate) fn hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Appends a Unix time in nanoseconds as Go's `time.Time` prints it in UTC, which is what the
/// Collector shows: `2020-02-11 20:26:12.000000321 +0000 UTC` (fraction without trailing zeros,
/// none when zero).
pub(crate) fn timestamp(out: &mut String, unix_nanos: u64) {
    const NANOS: u64 = 1_000_000_000;
    let secs = unix_nanos / NANOS;
    let nanos = unix_nanos % NANOS;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    );
    if nanos != 0 {
        let (mut digits, mut width) = (nanos, 9);
        while digits % 10 == 0 {
            digits /= 10;
            width -= 1;
        }
        let _ = write!(out, ".{digits:0width$}");
    }
    out.push_str(" +0000 UTC");
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Appends a double as Go's `strconv.FormatFloat(v, 'f', -1, 64)` does: the shortest exact
/// decimal, no exponent.
pub(crate) fn double(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Appends a double with six decimals, as Go's `%f` (used by the detailed metric output).
pub(crate) fn fixed6(out: &mut String, v: f64) {
    if v.is_nan() || v.is_infinite() {
        double(out, v);
    } else {
        let _ = write!(out, "{v:.6}");
    }
}

/// Appends a value with its type, as the Collector's detailed output: `Str(text)`, `Int(1)`,
/// `Double(1.5)`, `Bool(true)`, `Bytes(0a0b)`, `Slice(["a",1])`, `Map({"k":"v"})`, `Empty()`.
pub(crate) fn typed_value(out: &mut String, value: Option<&AnyValue>) {
    out.push_str(match value.and_then(|v| v.value.as_ref()) {
        None => "Empty",
        Some(any_value::Value::StringValue(_)) => "Str",
        Some(any_value::Value::IntValue(_)) => "Int",
        Some(any_value::Value::DoubleValue(_)) => "Double",
        Some(any_value::Value::BoolValue(_)) => "Bool",
        Some(any_value::Value::BytesValue(_)) => "Bytes",
        Some(any_value::Value::ArrayValue(_)) => "Slice",
        Some(any_value::Value::KvlistValue(_)) => "Map",
        Some(any_value::Value::StringValueStrindex(_)) => "StrIndex",
    });
    out.push('(');
    value_text(out, value);
    out.push(')');
}

/// Appends a value as text: a string as it is, bytes as hex, a list or map as JSON.
pub(crate) fn value_text(out: &mut String, value: Option<&AnyValue>) {
    match value.and_then(|v| v.value.as_ref()) {
        None => {}
        Some(any_value::Value::StringValue(s)) => out.push_str(s),
        Some(any_value::Value::BytesValue(b)) => hex(out, b),
        Some(v) => json_value(out, Some(v)),
    }
}

fn json_value(out: &mut String, value: Option<&any_value::Value>) {
    match value {
        None => out.push_str("null"),
        Some(any_value::Value::StringValue(s)) => json_string(out, s),
        Some(any_value::Value::BoolValue(b)) => {
            let _ = write!(out, "{b}");
        }
        Some(any_value::Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(any_value::Value::DoubleValue(d)) => double(out, *d),
        Some(any_value::Value::BytesValue(b)) => {
            out.push('"');
            hex(out, b);
            out.push('"');
        }
        Some(any_value::Value::StringValueStrindex(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(any_value::Value::ArrayValue(a)) => {
            out.push('[');
            for (i, v) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(out, v.value.as_ref());
            }
            out.push(']');
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            out.push('{');
            for (i, kv) in kv.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, &kv.key);
                out.push(':');
                json_value(out, kv.value.as_ref().and_then(|v| v.value.as_ref()));
            }
            out.push('}');
        }
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends ` key=value` for every attribute (the normal verbosity's form).
pub(crate) fn attributes_inline(out: &mut String, attributes: &[KeyValue]) {
    for kv in attributes {
        out.push(' ');
        out.push_str(&kv.key);
        out.push('=');
        value_text(out, kv.value.as_ref());
    }
}

/// Keeps what was appended to `out` since `start` on one line: line breaks become `\n`, `\r`.
pub(crate) fn one_line(out: &mut String, start: usize) {
    if !out[start..].contains(['\n', '\r']) {
        return;
    }
    let tail = out.split_off(start);
    for c in tail.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// The Collector's name of a span kind (`Server`), or its number when unknown.
pub(crate) fn span_kind(out: &mut String, kind: i32) {
    named(
        out,
        kind,
        &[
            "Unspecified",
            "Internal",
            "Server",
            "Client",
            "Producer",
            "Consumer",
        ],
    );
}

/// The Collector's name of a span status code (`Error`).
pub(crate) fn status_code(out: &mut String, code: i32) {
    named(out, code, &["Unset", "Ok", "Error"]);
}

/// The Collector's name of an aggregation temporality (`Cumulative`).
pub(crate) fn temporality(out: &mut String, t: i32) {
    named(out, t, &["Unspecified", "Delta", "Cumulative"]);
}

const SEVERITIES: [&str; 25] = [
    "Unspecified",
    "Trace",
    "Trace2",
    "Trace3",
    "Trace4",
    "Debug",
    "Debug2",
    "Debug3",
    "Debug4",
    "Info",
    "Info2",
    "Info3",
    "Info4",
    "Warn",
    "Warn2",
    "Warn3",
    "Warn4",
    "Error",
    "Error2",
    "Error3",
    "Error4",
    "Fatal",
    "Fatal2",
    "Fatal3",
    "Fatal4",
];

/// The Collector's name of a severity number (`Info2`).
pub(crate) fn severity(out: &mut String, number: i32) {
    named(out, number, &SEVERITIES);
}

fn named(out: &mut String, n: i32, names: &[&str]) {
    match usize::try_from(n).ok().and_then(|i| names.get(i)) {
        Some(name) => out.push_str(name),
        None => {
            let _ = write!(out, "{n}");
        }
    }
}
