//! Synthetic input shaped like the `procfs` receiver's host metrics and `sluice ci`'s log
//! records, for tests and the benchmark (a 6-hour job sampled every second).

use sluice_pipeline::otlp::{kv_f64, kv_i64, kv_str, resource};
use sluice_pipeline::Payload;
use sluice_proto::common::v1::{any_value, AnyValue, KeyValue};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use sluice_proto::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};

use super::ingest::{
    ALERT_EVENT, STEP_ATTR, STEP_END_ATTR, STEP_EXIT_ATTR, STEP_SOURCE_ATTR, STEP_START_ATTR,
    TASK_NAME_ATTR,
};

fn gauge(name: &str, unit: &str, points: Vec<(f64, Vec<KeyValue>)>, t: u64) -> Metric {
    Metric {
        name: name.to_string(),
        unit: unit.to_string(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points
                .into_iter()
                .map(|(v, attributes)| NumberDataPoint {
                    attributes,
                    time_unix_nano: t,
                    value: Some(number_data_point::Value::AsDouble(v)),
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    }
}

fn rm(attrs: Vec<KeyValue>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(resource(attrs)),
        scope_metrics: vec![ScopeMetrics {
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// One scrape's worth of host and process metrics at `t` (unix nanoseconds); `i` (the sample
/// number) shapes a CPU and disk burst every 10 minutes and a slow memory ramp.
pub fn host_metrics(t: u64, i: u64) -> Payload {
    let phase = (i % 600) as f64 / 600.0;
    let burst = if (i % 600) < 90 { 1.0 } else { 0.0 };
    let user = 0.15 + 0.6 * burst + 0.05 * (i as f64 / 7.0).sin().abs();
    let system = 0.05 + 0.1 * burst;
    let iowait = 0.02 + 0.15 * burst;
    let idle = (1.0 - user - system - iowait).max(0.0);
    let cpu = gauge(
        "system.cpu.utilization",
        "1",
        [
            ("user", user),
            ("system", system),
            ("iowait", iowait),
            ("idle", idle),
        ]
        .into_iter()
        .map(|(m, v)| (v, vec![kv_str("cpu.mode", m)]))
        .collect(),
        t,
    );
    let total = 16.0 * 1_073_741_824.0;
    let used = total * (0.3 + 0.4 * phase);
    let mem = gauge(
        "system.memory.usage",
        "By",
        vec![
            (used, vec![kv_str("system.memory.state", "used")]),
            (total * 0.2, vec![kv_str("system.memory.state", "cached")]),
            (total - used, vec![kv_str("system.memory.state", "free")]),
        ],
        t,
    );
    let limit = gauge("system.memory.limit", "By", vec![(total, Vec::new())], t);
    let net = gauge(
        "system.network.io.rate",
        "By/s",
        vec![
            (
                2e6 * (1.0 + burst),
                vec![
                    kv_str("network.interface.name", "eth0"),
                    kv_str("network.io.direction", "receive"),
                ],
            ),
            (
                3e5,
                vec![
                    kv_str("network.interface.name", "eth0"),
                    kv_str("network.io.direction", "transmit"),
                ],
            ),
            (
                9e9,
                vec![
                    kv_str("network.interface.name", "lo"),
                    kv_str("network.io.direction", "receive"),
                ],
            ),
        ],
        t,
    );
    let disk = gauge(
        "system.disk.io.rate",
        "By/s",
        vec![
            (
                1e6 + 80e6 * burst,
                vec![
                    kv_str("system.device", "sda"),
                    kv_str("disk.io.direction", "read"),
                ],
            ),
            (
                5e5 + 120e6 * burst,
                vec![
                    kv_str("system.device", "sda"),
                    kv_str("disk.io.direction", "write"),
                ],
            ),
        ],
        t,
    );
    let fs = gauge(
        "system.filesystem.utilization",
        "1",
        vec![
            (
                0.42 + 0.1 * phase,
                vec![kv_str("system.filesystem.mountpoint", "/")],
            ),
            (0.05, vec![kv_str("system.filesystem.mountpoint", "/tmp")]),
        ],
        t,
    );
    let load = gauge(
        "system.cpu.load_average.1m",
        "{thread}",
        vec![(1.0 + 3.0 * burst, Vec::new())],
        t,
    );
    let host = vec![kv_str("host.name", "runner")];
    let mut out = vec![rm(host.clone(), vec![cpu, mem, limit, net, disk, fs, load])];
    for (pid, exe, cmd, cpu, rss) in [
        (
            100,
            "cargo",
            "cargo build --release",
            0.1 + 1.5 * burst,
            2e8,
        ),
        (
            200 + (i / 600) as i64,
            "rustc",
            "rustc --crate-name sluice",
            0.9 * burst,
            1.2e9 * phase,
        ),
        (300, "node", "node | tee `x`", 0.05, 3e8),
    ] {
        let mut a = vec![
            kv_i64("process.pid", pid),
            kv_str("process.executable.name", exe),
            kv_str("process.command_line", cmd),
        ];
        a.extend(host.clone());
        out.push(rm(
            a,
            vec![
                gauge("process.cpu.utilization", "1", vec![(cpu, Vec::new())], t),
                gauge("process.memory.usage", "By", vec![(rss, Vec::new())], t),
            ],
        ));
    }
    Payload::Metrics(out)
}

fn record(t: u64, body: &str, attributes: Vec<KeyValue>, severity: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: t,
        observed_time_unix_nano: t,
        severity_text: severity.to_string(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.to_string())),
        }),
        attributes,
        ..Default::default()
    }
}

/// Log records in one payload.
pub fn logs(records: Vec<LogRecord>) -> Payload {
    Payload::Logs(vec![ResourceLogs {
        resource: Some(resource(Vec::new())),
        scope_logs: vec![ScopeLogs {
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

/// The record `sluice ci step` writes when a step starts.
pub fn step_start(name: &str, start: i64) -> LogRecord {
    record(
        start as u64,
        &format!("Step {name} started"),
        vec![
            kv_str(STEP_ATTR, "start"),
            kv_str(TASK_NAME_ATTR, name),
            kv_i64(STEP_START_ATTR, start),
        ],
        "INFO",
    )
}

/// The record `sluice ci step` (or `sluice ci report` with `source: github_api`) writes when a
/// step ends.
pub fn step_end(name: &str, start: i64, end: i64, exit_code: i64, source: &str) -> LogRecord {
    record(
        end as u64,
        &format!("Step {name} finished with exit code {exit_code}"),
        vec![
            kv_str(STEP_ATTR, "end"),
            kv_str(TASK_NAME_ATTR, name),
            kv_i64(STEP_START_ATTR, start),
            kv_i64(STEP_END_ATTR, end),
            kv_i64(STEP_EXIT_ATTR, exit_code),
            kv_str(STEP_SOURCE_ATTR, source),
        ],
        "INFO",
    )
}

/// One line of command output.
pub fn output_line(t: u64, step: &str, severity: &str, stream: &str, text: &str) -> LogRecord {
    record(
        t,
        text,
        vec![kv_str("log.iostream", stream), kv_str(TASK_NAME_ATTR, step)],
        severity,
    )
}

/// An alert event of the `sli` processor.
pub fn alert(
    t: u64,
    sli: &str,
    severity: &str,
    state: &str,
    value: f64,
    threshold: f64,
) -> LogRecord {
    let mut r = record(
        t,
        &format!("SLI {sli} {state} ({severity})"),
        vec![
            kv_str("sli_name", sli),
            kv_str("severity", severity),
            kv_str("state", state),
            kv_f64("current_value", value),
            kv_f64("threshold", threshold),
        ],
        "WARN",
    );
    r.event_name = ALERT_EVENT.to_string();
    r
}
