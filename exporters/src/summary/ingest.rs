//! Turns OTLP metrics and logs into what the [`Store`] keeps: the host-metrics series of the
//! `procfs` receiver, the top processes, the `sluice ci` steps and command output, and the `sli`
//! processor's alerts.

use std::collections::BTreeMap;

use sluice_proto::common::v1::{any_value, KeyValue};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs};
use sluice_proto::metrics::v1::{metric, number_data_point, NumberDataPoint, ResourceMetrics};

use super::store::{keys, Alert, StepSource, Store, FS_PREFIX};

/// Attribute of a step record: `start` or `end`.
pub const STEP_ATTR: &str = "sluice.ci.step";
/// The step (task) name of a step record or an output line.
pub const TASK_NAME_ATTR: &str = "cicd.pipeline.task.name";
/// Step start, unix nanoseconds.
pub const STEP_START_ATTR: &str = "sluice.ci.step.start_unix_nano";
/// Step end, unix nanoseconds.
pub const STEP_END_ATTR: &str = "sluice.ci.step.end_unix_nano";
/// Step exit code.
pub const STEP_EXIT_ATTR: &str = "sluice.ci.step.exit_code";
/// `sluice` or `github_api`.
pub const STEP_SOURCE_ATTR: &str = "sluice.ci.step.source";
/// The event name of the `sli` processor's alerts.
pub const ALERT_EVENT: &str = "sluice.sli.alert";

/// What ingesting one batch found, for logging and counting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Step records ignored: no name or start time, or `max_steps` reached.
    pub bad_steps: usize,
}

fn value_f64(v: Option<&any_value::Value>) -> Option<f64> {
    match v? {
        any_value::Value::IntValue(i) => Some(*i as f64),
        any_value::Value::DoubleValue(d) => Some(*d),
        any_value::Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn value_i64(v: Option<&any_value::Value>) -> Option<i64> {
    match v? {
        any_value::Value::IntValue(i) => Some(*i),
        any_value::Value::DoubleValue(d) if d.is_finite() => Some(*d as i64),
        any_value::Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key)? {
        any_value::Value::StringValue(s) => Some(s.as_str()),
        _ => None,
    }
}

fn point_value(p: &NumberDataPoint) -> Option<f64> {
    match p.value? {
        number_data_point::Value::AsDouble(d) => Some(d),
        number_data_point::Value::AsInt(i) => Some(i as f64),
    }
}

fn secs(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

fn number_points(m: &sluice_proto::metrics::v1::Metric) -> &[NumberDataPoint] {
    match &m.data {
        Some(metric::Data::Gauge(g)) => &g.data_points,
        Some(metric::Data::Sum(s)) => &s.data_points,
        _ => &[],
    }
}

/// Sums per (time, key) within one metric, then hands each to `f` with the number of points.
fn grouped<'a>(
    points: &'a [NumberDataPoint],
    key: impl Fn(&'a [KeyValue]) -> Option<&'a str>,
    mut f: impl FnMut(f64, &str, f64, u32),
) {
    let mut acc: BTreeMap<(u64, &str), (f64, u32)> = BTreeMap::new();
    for p in points {
        let (Some(v), Some(k)) = (point_value(p), key(&p.attributes)) else {
            continue;
        };
        let e = acc.entry((p.time_unix_nano, k)).or_insert((0.0, 0));
        e.0 += v;
        e.1 += 1;
    }
    for ((t, k), (sum, n)) in acc {
        f(secs(t), k, sum, n);
    }
}

/// Pushes the sums of `points` per timestamp and group (see [`grouped`]) to the store key
/// `to` gives the group; other groups are ignored.
fn push_sums<'a>(
    store: &mut Store,
    points: &'a [NumberDataPoint],
    group: impl Fn(&'a [KeyValue]) -> Option<&'a str>,
    to: &[(&str, &str)],
) {
    grouped(points, group, |t, g, v, _| {
        if let Some((_, key)) = to.iter().find(|(name, _)| *name == g) {
            store.push(key, t, v);
        }
    });
}

/// Adds the metrics the report uses; ignores the rest.
pub fn metrics(store: &mut Store, resources: &[ResourceMetrics]) {
    for rm in resources {
        let res_attrs = sluice_pipeline::otlp::resource_attributes(&rm.resource);
        let pid = value_i64(attr(res_attrs, "process.pid"));
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            let points = number_points(m);
            match (m.name.as_str(), pid) {
                ("system.cpu.utilization", _) => cpu(store, points),
                ("system.memory.usage", _) => push_sums(
                    store,
                    points,
                    |a| attr_str(a, "system.memory.state"),
                    &[("used", keys::MEM_USED), ("cached", keys::MEM_CACHED)],
                ),
                ("system.memory.limit", _) => {
                    for p in points {
                        if let Some(v) = point_value(p) {
                            store.push(keys::MEM_TOTAL, secs(p.time_unix_nano), v);
                        }
                    }
                }
                ("system.network.io.rate", _) => push_sums(
                    store,
                    points,
                    |a| {
                        // Loopback traffic is the machine talking to itself.
                        (attr_str(a, "network.interface.name") != Some("lo"))
                            .then(|| attr_str(a, "network.io.direction"))
                            .flatten()
                    },
                    &[("receive", keys::NET_RX), ("transmit", keys::NET_TX)],
                ),
                ("system.disk.io.rate", _) => push_sums(
                    store,
                    points,
                    |a| attr_str(a, "disk.io.direction"),
                    &[("read", keys::DISK_READ), ("write", keys::DISK_WRITE)],
                ),
                ("system.filesystem.utilization", _) => {
                    for p in points {
                        let (Some(v), Some(mount)) = (
                            point_value(p),
                            attr_str(&p.attributes, "system.filesystem.mountpoint"),
                        ) else {
                            continue;
                        };
                        let key = format!("{FS_PREFIX}{mount}");
                        store.push(&key, secs(p.time_unix_nano), v * 100.0);
                    }
                }
                ("system.cpu.load_average.1m", _) => {
                    for p in points {
                        if let Some(v) = point_value(p) {
                            store.push(keys::LOAD_1M, secs(p.time_unix_nano), v);
                        }
                    }
                }
                ("process.cpu.utilization", Some(pid)) => {
                    for p in points {
                        let Some(v) = point_value(p) else { continue };
                        let t = secs(p.time_unix_nano);
                        store.saw(t);
                        let e = process_entry(store, pid, res_attrs, t);
                        e.cpu_sum += v;
                        e.cpu_samples += 1;
                        e.cpu_peak = e.cpu_peak.max(v);
                    }
                }
                ("process.memory.usage", Some(pid)) => {
                    for p in points {
                        let Some(v) = point_value(p) else { continue };
                        let t = secs(p.time_unix_nano);
                        store.saw(t);
                        let e = process_entry(store, pid, res_attrs, t);
                        e.rss_peak = e.rss_peak.max(v);
                    }
                }
                _ => {}
            }
        }
    }
}

fn process_entry<'a>(
    store: &'a mut Store,
    pid: i64,
    res_attrs: &[KeyValue],
    t: f64,
) -> &'a mut super::store::ProcessStats {
    let exe = attr_str(res_attrs, "process.executable.name").unwrap_or("");
    let cmd = attr_str(res_attrs, "process.command_line").unwrap_or("");
    store.processes.entry(pid, exe, cmd, t)
}

/// `system.cpu.utilization` per mode (averaged over CPUs when reported per CPU) → percent.
fn cpu(store: &mut Store, points: &[NumberDataPoint]) {
    let mut by_time: BTreeMap<u64, BTreeMap<&str, (f64, u32)>> = BTreeMap::new();
    for p in points {
        let (Some(v), Some(mode)) = (point_value(p), attr_str(&p.attributes, "cpu.mode")) else {
            continue;
        };
        let e = by_time
            .entry(p.time_unix_nano)
            .or_default()
            .entry(mode)
            .or_insert((0.0, 0));
        e.0 += v;
        e.1 += 1;
    }
    for (t, modes) in by_time {
        let t = secs(t);
        let avg = |m: &str| modes.get(m).map(|(s, n)| s / f64::from((*n).max(1)));
        for (mode, key) in [
            ("user", keys::CPU_USER),
            ("system", keys::CPU_SYSTEM),
            ("iowait", keys::CPU_IOWAIT),
        ] {
            if let Some(v) = avg(mode) {
                store.push(key, t, v * 100.0);
            }
        }
        let busy = match avg("idle") {
            Some(idle) => 1.0 - idle,
            None => modes.keys().filter_map(|m| avg(m)).sum::<f64>(),
        };
        store.push(keys::CPU_BUSY, t, (busy * 100.0).clamp(0.0, 100.0));
        if modes.contains_key("idle") {
            let shown: f64 = ["user", "system", "iowait"]
                .iter()
                .filter_map(|m| avg(m))
                .sum();
            store.push(
                keys::CPU_OTHER,
                t,
                ((busy - shown) * 100.0).clamp(0.0, 100.0),
            );
        }
    }
}

/// Normalised severity of a log record: `severity_text` upper-cased (`WARNING` → `WARN`), else
/// the range of `severity_number`, else `UNSPECIFIED`.
pub fn severity(r: &LogRecord) -> String {
    let text = r.severity_text.trim().to_ascii_uppercase();
    match text.as_str() {
        "" => {}
        "WARNING" => return "WARN".to_string(),
        "ERR" => return "ERROR".to_string(),
        "CRITICAL" => return "FATAL".to_string(),
        _ => return text,
    }
    sluice_pipeline::otlp::severity_name(r.severity_number)
        .unwrap_or("UNSPECIFIED")
        .to_string()
}

fn body_text(r: &LogRecord) -> String {
    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(_) => "(structured body)".to_string(),
        None => String::new(),
    }
}

/// Adds steps, alerts and command output lines.
pub fn logs(
    store: &mut Store,
    resources: &[ResourceLogs],
    max_steps: usize,
    keep_errors: usize,
) -> Ingested {
    let mut found = Ingested::default();
    for r in resources
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
    {
        let a = &r.attributes;
        let nanos = if r.time_unix_nano > 0 {
            r.time_unix_nano
        } else {
            r.observed_time_unix_nano
        };
        let t = secs(nanos);
        let event = if r.event_name.is_empty() {
            attr_str(a, "event.name").unwrap_or("")
        } else {
            r.event_name.as_str()
        };
        if event == ALERT_EVENT {
            store.saw(t);
            store.alerts.record(Alert {
                t,
                sli_name: attr_str(a, "sli_name").unwrap_or("").to_string(),
                severity: attr_str(a, "severity").unwrap_or("").to_ascii_lowercase(),
                state: attr_str(a, "state").unwrap_or("").to_ascii_lowercase(),
                current_value: value_f64(attr(a, "current_value")),
                threshold: value_f64(attr(a, "threshold")),
            });
            continue;
        }
        if let Some(kind) = attr_str(a, STEP_ATTR) {
            let name = attr_str(a, TASK_NAME_ATTR);
            let start = value_i64(attr(a, STEP_START_ATTR));
            let (Some(name), Some(start)) = (name, start) else {
                found.bad_steps += 1;
                continue;
            };
            let source = match attr_str(a, STEP_SOURCE_ATTR) {
                Some("github_api") => StepSource::GithubApi,
                _ => StepSource::Sluice,
            };
            let (end, exit) = if kind == "end" {
                (
                    value_i64(attr(a, STEP_END_ATTR)).or(Some(nanos as i64)),
                    value_i64(attr(a, STEP_EXIT_ATTR)),
                )
            } else {
                (None, None)
            };
            store.saw(start as f64 / 1e9);
            if let Some(e) = end {
                store.saw(e as f64 / 1e9);
            }
            if !store
                .steps
                .record(source, name, start, end, exit, max_steps)
            {
                found.bad_steps += 1;
            }
            continue;
        }
        store.saw(t);
        let step = attr_str(a, TASK_NAME_ATTR).unwrap_or("");
        store
            .output
            .record(&severity(r), t, step, &body_text(r), keep_errors);
    }
    found
}
