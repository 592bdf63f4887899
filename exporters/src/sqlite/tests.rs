use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use sluice_pipeline::config::decode_str;
use sluice_pipeline::factory::{Endpoints, Exporter};
use sluice_pipeline::retry::{QueueConfig, RetryConfig};
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::{Batch, ComponentId, ExportError, Kind, Payload, Validate};
use sluice_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use sluice_proto::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric, number_data_point,
    summary_data_point::ValueAtQuantile, ExponentialHistogram, ExponentialHistogramDataPoint,
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum, Summary, SummaryDataPoint,
};
use sluice_proto::resource::v1::Resource;
use sluice_proto::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use tokio::sync::oneshot;

use super::exporter::{spawn_writer, Command};
use super::*;

const MIN: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000_000_000;

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn resource(host: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("host.name", s(host))],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "test".into(),
        version: "1".into(),
        ..Default::default()
    })
}

fn metrics(host: &str, ms: Vec<Metric>) -> Payload {
    Payload::Metrics(vec![ResourceMetrics {
        resource: resource(host),
        scope_metrics: vec![ScopeMetrics {
            scope: scope(),
            metrics: ms,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: "1".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

fn point(cpu: i64, t: i64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![kv("cpu", any_value::Value::IntValue(cpu))],
        time_unix_nano: t as u64,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn options(cap_mb: u64) -> StoreOptions {
    StoreOptions {
        busy_timeout: Duration::from_millis(20),
        max_size_bytes: cap_mb * 1024 * 1024,
        synchronous: Synchronous::Normal,
    }
}

fn open(dir: &Path, cap_mb: u64) -> Store {
    Store::open(&dir.join("nested/dir/t.db"), options(cap_mb)).expect("open")
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

fn telemetry() -> (Arc<Telemetry>, ComponentTelemetry) {
    let t = Telemetry::new();
    let id: ComponentId = "sqlite".parse().expect("id");
    let c = ComponentTelemetry::new(t.clone(), Kind::Exporter, &id);
    (t, c)
}

// ---------------------------------------------------------------------------------------------
// Config.

#[test]
fn good_config_decodes_whole() {
    let c: SqliteExporterConfig =
        decode_str(include_str!("testdata/config.yaml")).expect("good config");
    let expected = SqliteExporterConfig {
        path: Some("/var/lib/sluice/telemetry.db".into()),
        retention: SqliteRetentionConfig {
            raw: Duration::from_secs(3 * 86400),
            minute: Duration::from_secs(30 * 86400),
            hour: Duration::from_secs(13 * 2_630_016),
            spans: Duration::from_secs(2 * 86400),
            logs: Duration::from_secs(14 * 86400),
        },
        max_size_mb: 200,
        maintenance_interval: Duration::from_secs(300),
        synchronous: Synchronous::Full,
        busy_timeout: Duration::from_millis(250),
        timeout: Duration::from_secs(10),
        retry_on_failure: RetryConfig {
            initial_interval: Duration::from_secs(1),
            ..RetryConfig::default()
        },
        sending_queue: QueueConfig {
            num_consumers: 2,
            ..QueueConfig::default()
        },
    };
    assert_eq!(c, expected);
    c.validate().expect("valid");
    // The default hour retention is what `13months` means.
    assert_eq!(
        SqliteRetentionConfig::default().hour,
        expected.retention.hour
    );
}

#[test]
fn misspelt_key_is_named() {
    sluice_pipeline::testing::assert_misspelt_key::<SqliteExporterConfig>(
        include_str!("testdata/typo_config.yaml"),
        "max_size_mib",
        3,
    );
}

#[test]
fn validation_names_the_key() {
    let c = SqliteExporterConfig {
        max_size_mb: 0,
        ..SqliteExporterConfig::default()
    };
    assert_eq!(c.validate().expect_err("cap 0").key, "max_size_mb");
    let mut c = SqliteExporterConfig::default();
    c.retention.minute = Duration::ZERO;
    assert_eq!(c.validate().expect_err("0s").key, "retention::minute");
    SqliteExporterConfig::default()
        .validate()
        .expect("defaults are valid");
}

// ---------------------------------------------------------------------------------------------
// Schema and writing.

#[test]
fn opens_with_wal_incremental_vacuum_and_schema_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 10);
    let c = store.connection();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
    assert_eq!(count(c, "PRAGMA auto_vacuum"), 2, "2 = incremental");
    assert_eq!(count(c, "PRAGMA synchronous"), 1, "1 = normal");
    assert_eq!(
        count(c, "SELECT version FROM schema_version"),
        MIGRATIONS.len() as i64
    );
    drop(store);
    // Reopening applies nothing twice; `synchronous` is the connection's, as configured.
    let store = Store::open(
        &dir.path().join("nested/dir/t.db"),
        StoreOptions {
            synchronous: Synchronous::Full,
            ..options(10)
        },
    )
    .expect("reopen");
    assert_eq!(
        count(store.connection(), "PRAGMA synchronous"),
        2,
        "2 = full"
    );
    assert_eq!(
        count(store.connection(), "SELECT count(*) FROM schema_version"),
        1
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 10);
    store
        .connection()
        .execute("UPDATE schema_version SET version = 999", [])
        .expect("bump");
    drop(store);
    let e = Store::open(&dir.path().join("nested/dir/t.db"), options(10)).expect_err("newer");
    assert!(e.to_string().contains("schema version 999"), "{e}");
}

#[test]
fn series_lookup_by_hash_tells_attribute_sets_apart_and_merges_reordered_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path(), 10);
    let i = any_value::Value::IntValue;
    let d = any_value::Value::DoubleValue;
    let point = |attributes: Vec<KeyValue>, v: f64| NumberDataPoint {
        attributes,
        time_unix_nano: T0 as u64,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let sets = [
        vec![kv("cpu", i(0)), kv("state", s("user"))],
        // The same set in another order: the database's JSON key makes it the same series.
        vec![kv("state", s("user")), kv("cpu", i(0))],
        vec![kv("cpu", i(1)), kv("state", s("user"))],
        // 1 as a double is another value than 1 as an integer.
        vec![kv("cpu", d(1.0)), kv("state", s("user"))],
        vec![kv("cpu", i(0))],
        vec![],
    ];
    // Twice, so the second round is answered from the cache.
    for round in 0..2 {
        let points = sets
            .iter()
            .enumerate()
            .map(|(n, a)| point(a.clone(), (round * 10 + n) as f64))
            .collect();
        let p = metrics("a", vec![gauge("cpu.time", points)]);
        store.write(&[&p]).expect("write");
    }
    let c = store.connection();
    assert_eq!(count(c, "SELECT count(*) FROM series"), 5);
    assert_eq!(count(c, "SELECT count(*) FROM points"), 12);
    let per_series: Vec<(String, i64)> = c
        .prepare(
            "SELECT s.attributes, count(*) FROM points p JOIN series s ON s.id = p.series_id
             GROUP BY s.id ORDER BY s.id",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        per_series,
        vec![
            (r#"{"cpu":0,"state":"user"}"#.to_string(), 4),
            (r#"{"cpu":1,"state":"user"}"#.to_string(), 2),
            (r#"{"cpu":1.0,"state":"user"}"#.to_string(), 2),
            (r#"{"cpu":0}"#.to_string(), 2),
            ("{}".to_string(), 2),
        ]
    );
}

#[test]
fn every_metric_kind_is_stored_and_series_are_deduplicated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path(), 10);
    let sum = Metric {
        name: "requests".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                time_unix_nano: T0 as u64,
                value: Some(number_data_point::Value::AsInt(42)),
                ..Default::default()
            }],
            aggregation_temporality: 2,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let hist = Metric {
        name: "latency".into(),
        unit: "ms".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: T0 as u64,
                count: 6,
                sum: Some(21.5),
                min: Some(1.0),
                max: Some(9.0),
                explicit_bounds: vec![2.0, 5.0],
                bucket_counts: vec![1, 3, 2],
                ..Default::default()
            }],
            aggregation_temporality: 1,
        })),
        ..Default::default()
    };
    let exp = Metric {
        name: "size".into(),
        data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                time_unix_nano: T0 as u64,
                count: 5,
                scale: 3,
                zero_count: 1,
                positive: Some(Buckets {
                    offset: -2,
                    bucket_counts: vec![1, 2],
                }),
                negative: Some(Buckets {
                    offset: 1,
                    bucket_counts: vec![1],
                }),
                ..Default::default()
            }],
            aggregation_temporality: 1,
        })),
        ..Default::default()
    };
    let summary = Metric {
        name: "rtt".into(),
        data: Some(metric::Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                time_unix_nano: T0 as u64,
                count: 10,
                sum: 55.0,
                quantile_values: vec![
                    ValueAtQuantile {
                        quantile: 0.5,
                        value: 5.0,
                    },
                    ValueAtQuantile {
                        quantile: 0.99,
                        value: 9.5,
                    },
                ],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let p1 = metrics(
        "a",
        vec![
            gauge("cpu", vec![point(0, T0, 0.5), point(1, T0, 0.25)]),
            sum,
            hist,
            exp,
            summary,
        ],
    );
    let p2 = metrics("a", vec![gauge("cpu", vec![point(0, T0 + MIN, 0.75)])]);
    store.write(&[&p1]).expect("write");
    store.write(&[&p2]).expect("write");
    let c = store.connection();
    assert_eq!(count(c, "SELECT count(*) FROM resources"), 1);
    assert_eq!(count(c, "SELECT count(*) FROM scopes"), 1);
    // cpu{0}, cpu{1}, requests, latency, size, rtt.
    assert_eq!(count(c, "SELECT count(*) FROM series"), 6);
    assert_eq!(count(c, "SELECT count(*) FROM points"), 4);
    let cpu0: Vec<f64> = c
        .prepare(
            "SELECT p.value FROM points p JOIN series s ON s.id = p.series_id
             WHERE s.name = 'cpu' AND json_extract(s.attributes, '$.cpu') = 0 ORDER BY p.time_unix_nano",
        )
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(cpu0, vec![0.5, 0.75]);
    let (v, kind, temporality, mono): (i64, String, i64, bool) = c
        .query_row(
            "SELECT p.value, s.kind, s.temporality, s.monotonic FROM points p JOIN series s ON s.id = p.series_id WHERE s.name = 'requests'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("sum");
    assert_eq!((v, kind.as_str(), temporality, mono), (42, "sum", 2, true));
    let (count_, bounds, buckets, sum_): (i64, String, String, f64) = c
        .query_row(
            "SELECT count, explicit_bounds, bucket_counts, sum FROM histogram_points",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("histogram");
    assert_eq!(
        (count_, bounds.as_str(), buckets.as_str(), sum_),
        (6, "[2.0,5.0]", "[1,3,2]", 21.5)
    );
    let (scale, po, pc, no, nc): (i64, i64, String, i64, String) = c
        .query_row(
            "SELECT scale, positive_offset, positive_counts, negative_offset, negative_counts FROM exponential_histogram_points",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("exp");
    assert_eq!(
        (scale, po, pc.as_str(), no, nc.as_str()),
        (3, -2, "[1,2]", 1, "[1]")
    );
    let q: String = c
        .query_row("SELECT quantiles FROM summary_points", [], |r| r.get(0))
        .expect("summary");
    assert_eq!(q, "[[0.5,5.0],[0.99,9.5]]");
}

fn trace_payload() -> Payload {
    let mut spans = Vec::new();
    for (i, ms) in [(1u8, 120i64), (2, 40), (3, 900)] {
        spans.push(Span {
            trace_id: vec![7; 16],
            span_id: vec![i; 8],
            parent_span_id: if i == 1 { vec![] } else { vec![1; 8] },
            name: format!("op-{i}"),
            kind: 2,
            start_time_unix_nano: T0 as u64,
            end_time_unix_nano: (T0 + ms * 1_000_000) as u64,
            attributes: vec![kv("http.route", s("/x"))],
            events: vec![span::Event {
                time_unix_nano: T0 as u64 + 5,
                name: "retry".into(),
                attributes: vec![kv("attempt", any_value::Value::IntValue(2))],
                ..Default::default()
            }],
            links: vec![span::Link {
                trace_id: vec![9; 16],
                span_id: vec![9; 8],
                ..Default::default()
            }],
            status: Some(Status {
                code: if i == 3 { 2 } else { 1 },
                message: if i == 3 { "boom".into() } else { String::new() },
            }),
            ..Default::default()
        });
    }
    Payload::Traces(vec![ResourceSpans {
        resource: resource("a"),
        scope_spans: vec![ScopeSpans {
            scope: scope(),
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn log(t: i64, severity: i32, body: &str, trace: Option<u8>) -> LogRecord {
    LogRecord {
        time_unix_nano: t as u64,
        observed_time_unix_nano: t as u64,
        severity_number: severity,
        severity_text: if severity >= 17 { "ERROR" } else { "INFO" }.into(),
        body: Some(AnyValue {
            value: Some(s(body)),
        }),
        trace_id: trace.map(|b| vec![b; 16]).unwrap_or_default(),
        ..Default::default()
    }
}

fn logs(records: Vec<LogRecord>) -> Payload {
    Payload::Logs(vec![ResourceLogs {
        resource: resource("a"),
        scope_logs: vec![ScopeLogs {
            scope: scope(),
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

#[test]
fn spans_with_events_and_links_and_logs_with_event_name_are_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path(), 10);
    let mut alert = log(T0, 17, "", None);
    alert.event_name = "sluice.sli.alert".into();
    alert.body = Some(AnyValue {
        value: Some(any_value::Value::KvlistValue(
            sluice_proto::common::v1::KeyValueList {
                values: vec![kv("severity", s("red"))],
            },
        )),
    });
    alert.attributes = vec![kv("sli_name", s("session_establishment_latency_p95"))];
    let l = logs(vec![
        log(T0, 9, "started", Some(7)),
        log(T0 + 1, 17, "failed", Some(7)),
        log(T0 + 2, 17, "other", Some(8)),
        alert,
    ]);
    store.write(&[&trace_payload(), &l]).expect("write");
    let c = store.connection();
    // The slowest span, its events and links.
    let (name, dur, code, msg): (String, i64, i64, String) = c
        .query_row(
            "SELECT name, duration_nano, status_code, status_message FROM spans ORDER BY duration_nano DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("slowest");
    assert_eq!(
        (name.as_str(), dur, code, msg.as_str()),
        ("op-3", 900_000_000, 2, "boom")
    );
    assert_eq!(count(c, "SELECT count(*) FROM span_events WHERE name = 'retry' AND json_extract(attributes, '$.attempt') = 2"), 3);
    assert_eq!(
        count(
            c,
            "SELECT count(*) FROM span_links WHERE trace_id = zeroblob(0) OR length(trace_id) = 16"
        ),
        3
    );
    assert_eq!(
        count(c, "SELECT count(*) FROM spans WHERE parent_span_id IS NULL"),
        1
    );
    // Error logs of trace 0707…: exactly one.
    let bodies: Vec<String> = c
        .prepare("SELECT body FROM logs WHERE trace_id = ?1 AND severity_number >= 17")
        .expect("prepare")
        .query_map([vec![7u8; 16]], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(bodies, vec!["failed".to_string()]);
    let (event, body, sli): (String, String, String) = c
        .query_row(
            "SELECT event_name, body, json_extract(attributes, '$.sli_name') FROM logs WHERE event_name != ''",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("alert");
    assert_eq!(
        (event.as_str(), body.as_str(), sli.as_str()),
        (
            "sluice.sli.alert",
            r#"{"severity":"red"}"#,
            "session_establishment_latency_p95"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Tiers over a simulated 13 months.

#[derive(Debug, Clone, Copy, PartialEq)]
struct Roll {
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    last: f64,
}

/// The rollups a recomputation from the written points gives, for buckets at or after `from`.
fn expected_rollups(
    written: &[(i64, i64, f64)],
    width: i64,
    from: i64,
) -> BTreeMap<(i64, i64), Roll> {
    let mut out: BTreeMap<(i64, i64), (Roll, i64)> = BTreeMap::new();
    for &(series, t, v) in written {
        let b = t - t.rem_euclid(width);
        if b < from {
            continue;
        }
        out.entry((series, b))
            .and_modify(|(r, lt)| {
                r.count += 1;
                r.sum += v;
                r.min = r.min.min(v);
                r.max = r.max.max(v);
                if t >= *lt {
                    r.last = v;
                    *lt = t;
                }
            })
            .or_insert((
                Roll {
                    count: 1,
                    sum: v,
                    min: v,
                    max: v,
                    last: v,
                },
                t,
            ));
    }
    out.into_iter().map(|(k, (r, _))| (k, r)).collect()
}

fn stored_rollups(c: &Connection, table: &str, from: i64) -> BTreeMap<(i64, i64), Roll> {
    rollup_rows(
        c,
        &format!(
            "SELECT series_id, bucket_start, count, sum, min, max, last FROM {table} WHERE bucket_start >= ?1"
        ),
        &[from],
    )
}

/// Runs a query whose rows are (series, bucket, count, sum, min, max, last).
fn rollup_rows(c: &Connection, sql: &str, params: &[i64]) -> BTreeMap<(i64, i64), Roll> {
    c.prepare(sql)
        .expect("prepare")
        .query_map(rusqlite::params_from_iter(params), |r| {
            Ok((
                (r.get(0)?, r.get(1)?),
                Roll {
                    count: r.get(2)?,
                    sum: r.get(3)?,
                    min: r.get(4)?,
                    max: r.get(5)?,
                    last: r.get(6)?,
                },
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// The rollups recomputed in SQL from the raw points still stored, for buckets at or after `from`
/// (last = the value of the latest point).
fn recomputed_from_raw(c: &Connection, width: i64, from: i64) -> BTreeMap<(i64, i64), Roll> {
    rollup_rows(
        c,
        "WITH b AS (SELECT series_id, time_unix_nano - (time_unix_nano % ?1) AS bucket, time_unix_nano AS t, value FROM points)
         SELECT series_id, bucket, count(*), sum(value), min(value), max(value),
                (SELECT value FROM b b2 WHERE b2.series_id = b.series_id AND b2.bucket = b.bucket ORDER BY t DESC LIMIT 1)
         FROM b WHERE bucket >= ?2 GROUP BY series_id, bucket",
        &[width, from],
    )
}

#[test]
fn thirteen_simulated_months_land_in_the_right_tiers_and_rollups_match_raw() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path(), 500);
    let retention = SqliteRetentionConfig::default();
    let clock = ManualClock::new(T0);
    let days = 400;
    let step = 30 * MIN;
    // Every written point: (series id, time, value). Series ids are 1, 2 in creation order.
    let mut written: Vec<(i64, i64, f64)> = Vec::new();
    let mut n = 0i64;
    let mut passes_with_expiry = 0;
    let mut batch = Vec::new();
    for day in 0..days {
        for k in 0..(DAY / step) {
            let t = T0 + day * DAY + k * step;
            // Integral values keep sums exact whatever the order of addition.
            let v0 = ((n * 7) % 101) as f64;
            let v1 = ((n * 13) % 37) as f64 - 10.0;
            batch.push(point(0, t, v0));
            batch.push(point(1, t + 7 * 1_000_000_000, v1));
            written.push((1, t, v0));
            written.push((2, t + 7 * 1_000_000_000, v1));
            n += 1;
        }
        // A late point, two hours into the past (an earlier, already rolled-up bucket).
        let late = T0 + day * DAY - 2 * HOUR + 30 * 1_000_000_000;
        if day > 0 {
            batch.push(point(0, late, 1000.0));
            written.push((1, late, 1000.0));
        }
        clock.set(T0 + (day + 1) * DAY);
        // A batch and a maintenance pass every fourth simulated day (a pass ends with a
        // checkpoint, an fsync), and after the last.
        if day % 4 != 3 && day != days - 1 {
            continue;
        }
        store
            .write(&[&metrics(
                "a",
                vec![gauge("cpu", std::mem::take(&mut batch))],
            )])
            .expect("write");
        let report = store
            .maintain(clock.now_unix_nanos(), &retention)
            .expect("maintain");
        if report.expired > 0 {
            passes_with_expiry += 1;
        }
    }
    let now = clock.now_unix_nanos();
    let c = store.connection();
    let ns = |d: Duration| clock::duration_nanos(d);
    let raw_cut = now - ns(retention.raw);
    let minute_cut = now - ns(retention.minute);
    let hour_cut = now - ns(retention.hour);
    assert!(passes_with_expiry > 75, "{passes_with_expiry}");
    // Raw: exactly the points of the last 7 days.
    let raw_expected = written.iter().filter(|(_, t, _)| *t >= raw_cut).count() as i64;
    assert_eq!(count(c, "SELECT count(*) FROM points"), raw_expected);
    assert_eq!(
        count(
            c,
            &format!("SELECT count(*) FROM points WHERE time_unix_nano < {raw_cut}")
        ),
        0
    );
    // Minute and hour tiers hold exactly the buckets of their windows, equal to a recomputation
    // from everything written.
    let minute = stored_rollups(c, "rollup_minute", i64::MIN);
    assert_eq!(
        minute,
        expected_rollups(&written, MIN, minute_cut - minute_cut.rem_euclid(MIN))
            .into_iter()
            .filter(|((_, b), _)| *b >= minute_cut)
            .collect()
    );
    let hour = stored_rollups(c, "rollup_hour", i64::MIN);
    assert_eq!(
        hour,
        expected_rollups(&written, HOUR, hour_cut)
            .into_iter()
            .collect()
    );
    assert!(hour.keys().all(|(_, b)| *b >= hour_cut));
    assert!(
        minute.len() > 2 * 80 * 48,
        "minute buckets: {}",
        minute.len()
    );
    assert!(hour.len() > 2 * 390 * 24, "hour buckets: {}", hour.len());
    // And equal to a recomputation from the raw points still stored, for every bucket the raw
    // tier covers whole.
    let whole_minute = raw_cut - raw_cut.rem_euclid(MIN) + MIN;
    let whole_hour = raw_cut - raw_cut.rem_euclid(HOUR) + HOUR;
    let raw_minute = recomputed_from_raw(c, MIN, whole_minute);
    assert!(raw_minute.len() > 2 * 6 * 48);
    assert_eq!(stored_rollups(c, "rollup_minute", whole_minute), raw_minute);
    assert_eq!(
        stored_rollups(c, "rollup_hour", whole_hour),
        recomputed_from_raw(c, HOUR, whole_hour)
    );
}

// ---------------------------------------------------------------------------------------------
// Size cap.

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn wal_len(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    file_len(Path::new(&wal))
}

#[test]
fn the_size_cap_deletes_oldest_first_and_the_file_shrinks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path(), 1);
    let cap = 1024 * 1024;
    let retention = SqliteRetentionConfig::default();
    let path = store.path().to_path_buf();
    let padding = "x".repeat(200);
    let mut t = T0;
    let mut shrunk = 0;
    for round in 0..16 {
        // ~0.5 MiB of logs and points per round, all within retention.
        let mut records = Vec::new();
        let mut points = Vec::new();
        for i in 0..1000 {
            t += 1_000_000_000;
            records.push(log(t, 9, &format!("{round}-{i} {padding}"), None));
            points.push(point(i % 4, t, i as f64));
        }
        store
            .write(&[&logs(records), &metrics("a", vec![gauge("cpu", points)])])
            .expect("write");
        // The database's size counts the pages still in the WAL.
        let before = store.file_size().expect("size");
        let report = store.maintain(t, &retention).expect("maintain");
        let after = file_len(&path);
        assert!(after <= cap, "round {round}: {after} bytes over the cap");
        assert_eq!(after, store.file_size().expect("size"));
        assert!(wal_len(&path) == 0, "the WAL is truncated");
        if before > cap {
            assert!(
                report.evicted > 0 && report.vacuumed_pages > 0,
                "{report:?}"
            );
            assert!(after < before, "round {round}: {before} -> {after}");
            shrunk += 1;
        }
    }
    assert!(shrunk >= 5, "the cap was hit {shrunk} times");
    // Oldest first: what is left is the newest data, contiguous up to the last written.
    let c = store.connection();
    let newest_log = count(c, "SELECT max(time_unix_nano) FROM logs");
    assert_eq!(newest_log, t);
    let kept = count(c, "SELECT count(*) FROM logs");
    let oldest_log = count(c, "SELECT min(time_unix_nano) FROM logs");
    assert_eq!(oldest_log, t - (kept - 1) * 1_000_000_000, "no gaps");
    assert!(kept < 16_000 && kept > 1000, "kept {kept}");
    // Raw points were evicted too, yet every point is still counted in the rollups.
    assert!(count(c, "SELECT count(*) FROM points") < 16_000);
    assert_eq!(count(c, "SELECT sum(count) FROM rollup_hour"), 16_000);
    assert_eq!(store.integrity_check().expect("check"), "ok");
}

// ---------------------------------------------------------------------------------------------
// Busy and full.

#[test]
fn a_locked_database_is_retryable_and_writes_after_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path(), 10);
    let other = Connection::open(store.path()).expect("second connection");
    other.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let p = metrics("a", vec![gauge("cpu", vec![point(0, T0, 1.0)])]);
    let e = store.write(&[&p]).expect_err("locked");
    assert!(e.is_busy(), "{e}");
    assert!(e.to_export_error().is_retryable());
    other.execute_batch("COMMIT").expect("unlock");
    store.write(&[&p]).expect("write after the lock");
    assert_eq!(count(store.connection(), "SELECT count(*) FROM points"), 1);
}

#[test]
fn a_full_disk_drops_the_batch_permanently_and_counts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 10);
    // SQLITE_FULL without filling a disk: cap the pages this connection may use.
    let pages = count(store.connection(), "PRAGMA page_count");
    count(
        store.connection(),
        &format!("PRAGMA max_page_count = {}", pages + 2),
    );
    let (t, tel) = telemetry();
    let (tx, thread) = spawn_writer(
        store,
        SqliteRetentionConfig::default(),
        Arc::new(ManualClock::new(T0)),
        tel,
    )
    .expect("writer");
    let big: Vec<LogRecord> = (0..500)
        .map(|i| log(T0 + i, 9, &"y".repeat(500), None))
        .collect();
    let (reply, rx) = oneshot::channel();
    tx.blocking_send(Command::Write {
        payload: logs(big),
        reply,
    })
    .expect("send");
    let (r, _payload) = rx.blocking_recv().expect("reply");
    match r {
        Err(ExportError::Permanent { reason }) => {
            assert!(reason.contains("full"), "{reason}")
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert_eq!(
        t.value(
            "sluice_exporter_disk_full_log_records",
            &[("exporter", "sqlite")]
        ),
        Some(500)
    );
    // A small batch still fits: the writer lives on.
    let (reply, rx) = oneshot::channel();
    tx.blocking_send(Command::Write {
        payload: logs(vec![log(T0, 9, "small", None)]),
        reply,
    })
    .expect("send");
    assert_eq!(rx.blocking_recv().expect("reply").0, Ok(()));
    drop(tx);
    thread.join().expect("writer thread");
}

// ---------------------------------------------------------------------------------------------
// The exporter.

fn ctx(dir: &Path) -> (Arc<Telemetry>, sluice_pipeline::factory::ComponentContext) {
    let (t, tel) = telemetry();
    let c = sluice_pipeline::factory::ComponentContext::new(
        "sqlite".parse().expect("id"),
        Kind::Exporter,
        vec![sluice_pipeline::Signal::Metrics],
        tel,
        dir.to_path_buf(),
        Endpoints::default(),
    );
    (t, c)
}

#[tokio::test]
async fn the_exporter_commits_concurrent_batches_and_maintains_on_demand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_t, c) = ctx(dir.path());
    let clock = ManualClock::new(T0);
    let config = SqliteExporterConfig::default();
    let mut exporter =
        SqliteExporter::with_clock(&config, &c, Arc::new(clock.clone())).expect("build");
    assert_eq!(
        exporter.path(),
        dir.path().join("exporter/sqlite/sluice.db")
    );
    exporter.start().await.expect("start");
    let exporter = Arc::new(exporter);
    let mut tasks = Vec::new();
    for k in 0..20i64 {
        let e = exporter.clone();
        tasks.push(tokio::spawn(async move {
            let points = (0..50)
                .map(|i| point(i % 5, T0 + k * MIN + i, 1.0))
                .collect();
            let batch = Batch::new(metrics("a", vec![gauge("cpu", points)]));
            e.export(&batch).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("export");
    }
    let report = exporter.maintain_now().await.expect("maintain");
    assert_eq!(report.rolled_up, 1000);
    // Eight days later the raw points are gone, the rollups stay.
    clock.advance(Duration::from_secs(8 * 86400));
    let report = exporter.maintain_now().await.expect("maintain");
    assert_eq!(report.expired, 1000);
    exporter.shutdown().await.expect("shutdown");
    assert!(exporter
        .export(&Batch::new(metrics(
            "a",
            vec![gauge("cpu", vec![point(0, T0, 1.0)])]
        )))
        .await
        .is_err());
    let store = Store::open(exporter.path(), options(10)).expect("reopen");
    let c = store.connection();
    assert_eq!(count(c, "SELECT count(*) FROM points"), 0);
    assert_eq!(count(c, "SELECT sum(count) FROM rollup_minute"), 1000);
    assert_eq!(count(c, "SELECT count(*) FROM rollup_minute"), 100);
    assert_eq!(count(c, "SELECT count(*) FROM rollup_hour"), 5);
}

// ---------------------------------------------------------------------------------------------
// The queries of the README's `sqlite` section, read from the README itself.

/// The README's ```sql blocks, in order.
fn readme_queries() -> Vec<&'static str> {
    include_str!("../../../README.md")
        .split("```sql\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect()
}

/// The README query containing every one of `needles`.
fn readme_query(needles: &[&str]) -> &'static str {
    let found: Vec<&str> = readme_queries()
        .into_iter()
        .filter(|q| needles.iter().all(|n| q.contains(n)))
        .collect();
    assert_eq!(found.len(), 1, "one README query with {needles:?}");
    found[0]
}

#[test]
fn the_documented_queries_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path(), 10);
    let now = SystemClock.now_unix_nanos();
    let hour_start = now - now.rem_euclid(HOUR) - 2 * HOUR;
    // Two hours ago: values 1..=100 (p95 = 95); one hour ago: 1..=20 (p95 = 19).
    let mut points: Vec<NumberDataPoint> = (1..=100)
        .map(|v| point(0, hour_start + v * 1_000_000_000, v as f64))
        .collect();
    points.extend((1..=20).map(|v| point(0, hour_start + HOUR + v * 1_000_000_000, v as f64)));
    // Older than a week: not in the answer.
    points.push(point(0, now - 8 * DAY, 1000.0));
    store
        .write(&[&metrics("a", vec![gauge("system.cpu.utilization", points)])])
        .expect("write");
    let mut spans = trace_payload();
    let l = logs(vec![
        log(now, 9, "started", Some(7)),
        log(now + 1, 17, "failed", Some(7)),
        log(now + 2, 17, "other trace", Some(8)),
    ]);
    if let Payload::Traces(rs) = &mut spans {
        for s in &mut rs[0].scope_spans[0].spans {
            let d = s.end_time_unix_nano - s.start_time_unix_nano;
            s.start_time_unix_nano = now as u64;
            s.end_time_unix_nano = now as u64 + d;
        }
    }
    store.write(&[&spans, &l]).expect("write");
    let c = store.connection();
    let p95: Vec<f64> = c
        .prepare(readme_query(&["system.cpu.utilization", "p95"]))
        .expect("prepare")
        .query_map([], |r| r.get(1))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(p95, vec![95.0, 19.0]);
    let slowest: Vec<(String, f64)> = c
        .prepare(readme_query(&["FROM spans", "duration_nano DESC"]))
        .expect("prepare")
        .query_map([], |r| Ok((r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        slowest,
        vec![
            ("op-3".to_string(), 900.0),
            ("op-1".to_string(), 120.0),
            ("op-2".to_string(), 40.0)
        ]
    );
    let errors: Vec<String> = c
        .prepare(readme_query(&["FROM logs", "trace_id = unhex"]))
        .expect("prepare")
        .query_map([], |r| r.get(2))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(errors, vec!["failed".to_string()]);
    // And every other query of the README is valid against the schema.
    for q in readme_queries() {
        if let Err(e) = c.prepare(q) {
            panic!("README query does not prepare: {e}\n{q}");
        }
    }
}

#[test]
fn a_nan_point_is_stored_and_skipped_by_the_rollups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path(), 10);
    let p = metrics(
        "a",
        vec![gauge(
            "cpu",
            vec![
                point(0, T0, f64::NAN),
                point(0, T0 + 1, 2.0),
                point(0, T0 + 2, f64::INFINITY),
            ],
        )],
    );
    store.write(&[&p]).expect("write");
    let report = store
        .maintain(T0 + MIN, &SqliteRetentionConfig::default())
        .expect("maintain");
    assert_eq!(report.rolled_up, 3);
    let c = store.connection();
    assert_eq!(
        count(c, "SELECT count(*) FROM points WHERE value IS NULL"),
        1
    );
    assert_eq!(
        count(c, "SELECT count(*) FROM points WHERE value > 1e308"),
        1
    );
    assert_eq!(count(c, "SELECT count FROM rollup_minute"), 1);
    assert_eq!(
        count(c, "SELECT CAST(sum AS INTEGER) FROM rollup_minute"),
        2
    );
}

// ---------------------------------------------------------------------------------------------
// Rollups folded by the writer, and read back from raw points when it did not fold them.

/// A payload of one point per series `0..series` at `t`, with values from `v`.
fn spread(series: i64, t: i64, v: impl Fn(i64) -> f64) -> Payload {
    metrics(
        "a",
        vec![gauge(
            "cpu",
            (0..series).map(|s| point(s, t + s, v(s))).collect(),
        )],
    )
}

/// Every (series, time, value) in `points`, for [`expected_rollups`].
fn written_points(c: &Connection) -> Vec<(i64, i64, f64)> {
    c.prepare("SELECT series_id, time_unix_nano, value FROM points ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn rollups_lost_in_a_crash_are_read_back_from_the_raw_points() {
    let dir = tempfile::tempdir().expect("tempdir");
    let retention = SqliteRetentionConfig::default();
    let mut store = open(dir.path(), 100);
    // Folded in memory and merged by a pass.
    store
        .write(&[&spread(40, T0, |s| s as f64)])
        .expect("write");
    store.maintain(T0 + MIN, &retention).expect("maintain");
    // Folded in memory, then the process dies before a pass: nothing of them is in the tables.
    store
        .write(&[&spread(40, T0 + 30_000_000_000, |s| (s * 3) as f64)])
        .expect("write");
    store
        .write(&[&spread(40, T0 + 2 * MIN, |s| 100.0 - s as f64)])
        .expect("write");
    assert_eq!(
        count(store.connection(), "SELECT sum(count) FROM rollup_minute"),
        40
    );
    drop(store);
    // Reopened: the points after the watermark were not folded by this writer, nor are the
    // next ones (they do not continue the watermark); the pass reads them all back.
    let mut store = open(dir.path(), 100);
    store
        .write(&[&spread(40, T0 + 3 * MIN, |s| -(s as f64))])
        .expect("write");
    let report = store.maintain(T0 + 4 * MIN, &retention).expect("maintain");
    assert_eq!(report.rolled_up, 120);
    // From here on the writer folds again, and a pass merges what it folded.
    store
        .write(&[&spread(40, T0 + 3 * MIN + 1000, |s| 0.5 * s as f64)])
        .expect("write");
    let report = store.maintain(T0 + 5 * MIN, &retention).expect("maintain");
    assert_eq!(report.rolled_up, 40);
    let c = store.connection();
    assert_eq!(count(c, "SELECT count(*) FROM points"), 200);
    assert_rollups_match_points(c);
}

/// The stored rollups of both widths equal a recomputation from every point in `points`.
fn assert_rollups_match_points(c: &Connection) {
    let written = written_points(c);
    for (table, width) in [("rollup_minute", MIN), ("rollup_hour", HOUR)] {
        assert_eq!(
            stored_rollups(c, table, i64::MIN),
            expected_rollups(&written, width, i64::MIN),
            "{table}"
        );
    }
}

#[test]
fn a_second_connection_writing_the_file_neither_collides_nor_double_counts() {
    // Another process on the same file (say, an old sluice still stopping): each reads the ids
    // and the watermark inside its own transaction.
    let dir = tempfile::tempdir().expect("tempdir");
    let retention = SqliteRetentionConfig::default();
    let mut a = open(dir.path(), 100);
    let mut b = open(dir.path(), 100);
    // a folds its points in memory; b's pass reads them back from the table first, so a's
    // pending rows no longer continue the watermark and must not be merged again.
    a.write(&[&spread(5, T0, |s| s as f64)]).expect("a writes");
    b.maintain(T0 + MIN, &retention).expect("b maintains");
    a.maintain(T0 + MIN, &retention).expect("a maintains");
    // Ids come from the table as it is, not from what each connection saw last.
    b.write(&[&spread(5, T0 + 1000, |s| 2.0 * s as f64)])
        .expect("b writes");
    a.write(&[&spread(5, T0 + 2000, |s| 3.0 * s as f64)])
        .expect("a writes again");
    b.write(&[&spread(5, T0 + 3000, |s| 4.0 * s as f64)])
        .expect("b writes again");
    a.maintain(T0 + MIN, &retention).expect("a maintains again");
    b.maintain(T0 + MIN, &retention).expect("b maintains again");
    let c = a.connection();
    assert_eq!(count(c, "SELECT count(*) FROM points"), 20);
    assert_rollups_match_points(c);
}

#[test]
fn points_after_the_raw_table_emptied_keep_ids_above_the_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let retention = SqliteRetentionConfig::default();
    let mut store = open(dir.path(), 100);
    store.write(&[&spread(10, T0, |_| 1.0)]).expect("write");
    store.maintain(T0 + MIN, &retention).expect("maintain");
    // Eight days on, retention empties the raw table; the process restarts.
    let later = T0 + 8 * DAY;
    let report = store.maintain(later, &retention).expect("maintain");
    assert_eq!(report.expired, 10);
    drop(store);
    let mut store = open(dir.path(), 100);
    assert_eq!(count(store.connection(), "SELECT count(*) FROM points"), 0);
    store.write(&[&spread(10, later, |_| 2.0)]).expect("write");
    // SQLite alone would number these from 1 again, at or below the watermark: never rolled
    // up, and deletable as if they were.
    assert_eq!(count(store.connection(), "SELECT min(id) FROM points"), 11);
    let report = store.maintain(later + MIN, &retention).expect("maintain");
    assert_eq!(report.rolled_up, 10);
    assert_eq!(report.expired, 0);
    let c = store.connection();
    assert_eq!(count(c, "SELECT count(*) FROM points"), 10);
    assert_eq!(
        count(
            c,
            &format!("SELECT sum(count) FROM rollup_minute WHERE bucket_start >= {later}")
        ),
        10
    );
    assert_eq!(
        count(
            c,
            "SELECT value FROM sluice_state WHERE key = 'rollup_watermark'"
        ),
        20
    );
}

#[tokio::test]
async fn the_writer_merges_pending_rollups_once_they_pile_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_t, c) = ctx(dir.path());
    let config = SqliteExporterConfig::default();
    let mut exporter =
        SqliteExporter::with_clock(&config, &c, Arc::new(ManualClock::new(T0))).expect("build");
    exporter.start().await.expect("start");
    // One point in each of enough distinct minute buckets (plus their hour buckets) to pass
    // the bound, with no maintenance pass run.
    let buckets = maintain::PENDING_ROWS_MAX as i64;
    let points = (0..buckets).map(|i| point(0, T0 + i * MIN, 1.0)).collect();
    exporter
        .export(&Batch::new(metrics("a", vec![gauge("cpu", points)])))
        .await
        .expect("export");
    // The export returned after its commit; the merge follows in the writer. Another export
    // queues behind it, so once it returns the merge is done.
    exporter
        .export(&Batch::new(spread(1, T0, |_| 1.0)))
        .await
        .expect("export");
    let reader = Connection::open(exporter.path()).expect("reader");
    assert_eq!(
        count(&reader, "SELECT count(*) FROM rollup_minute"),
        buckets
    );
    assert_eq!(
        count(
            &reader,
            "SELECT value FROM sluice_state WHERE key = 'rollup_watermark'"
        ),
        buckets
    );
    exporter.shutdown().await.expect("shutdown");
    // At shutdown the writer merged what was still pending.
    assert_eq!(
        count(&reader, "SELECT sum(count) FROM rollup_minute"),
        buckets + 1
    );
}
