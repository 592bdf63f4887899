//! The `sqlite` exporter through real pipelines, its example config, and a writer process killed
//! with SIGKILL mid-burst.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use sluice_exporters::sqlite::{SqliteExporter, SqliteExporterConfig, Store, StoreOptions};
use sluice_pipeline::factory::{ComponentContext, Endpoints, Exporter};
use sluice_pipeline::otlp::{kv_i64, kv_str, resource};
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::testing::{self, gauge_points, log_records, spans};
use sluice_pipeline::{Batch, Kind, Payload, Signal};
use sluice_proto::common::v1::{any_value, AnyValue};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

use crate::{resolve_yaml, start_yaml, wait_for_value, WAIT_BOUND};

fn open(path: &Path) -> Store {
    Store::open(
        path,
        StoreOptions {
            busy_timeout: std::time::Duration::from_secs(1),
            max_size_bytes: 500 * 1024 * 1024,
            synchronous: sluice_exporters::sqlite::Synchronous::Normal,
        },
    )
    .unwrap()
}

fn count(store: &Store, sql: &str) -> i64 {
    store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn the_example_config_resolves() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/sqlite.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    if let Err(e) = resolve_yaml(&text) {
        panic!("configs/sqlite.yaml does not resolve:\n{e}");
    }
}

fn alert_log() -> Payload {
    let mut record = LogRecord {
        time_unix_nano: sluice_pipeline::otlp::now_nanos(),
        severity_number: 17,
        severity_text: "ERROR".into(),
        event_name: "sluice.sli.alert".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("red".into())),
        }),
        ..Default::default()
    };
    record
        .attributes
        .push(kv_str("sli_name", "packet_loss_rate"));
    Payload::Logs(vec![ResourceLogs {
        resource: Some(resource(vec![kv_str("service.name", "sluice")])),
        scope_logs: vec![ScopeLogs {
            log_records: vec![record],
            ..Default::default()
        }],
        ..Default::default()
    }])
}

#[tokio::test]
async fn every_signal_flows_into_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store/telemetry.db");
    let yaml = format!(
        r#"
receivers:
  inject: {{ name: sqlite-flow }}
exporters:
  sqlite:
    path: {}
service:
  pipelines:
    metrics: {{ receivers: [inject], exporters: [sqlite] }}
    traces: {{ receivers: [inject], exporters: [sqlite] }}
    logs: {{ receivers: [inject], exporters: [sqlite] }}
"#,
        db.display()
    );
    let (service, t) = start_yaml(&yaml).await;
    let out = testing::injector("sqlite-flow").await;
    for _ in 0..4 {
        let m = out.get(Signal::Metrics).unwrap();
        m.send(Batch::new(gauge_points("cpu", 25))).await.unwrap();
    }
    let tr = out.get(Signal::Traces).unwrap();
    tr.send(Batch::new(spans(7))).await.unwrap();
    let l = out.get(Signal::Logs).unwrap();
    l.send(Batch::new(log_records(5))).await.unwrap();
    l.send(Batch::new(alert_log())).await.unwrap();
    let label = [("exporter", "sqlite")];
    wait_for_value(&t, "sluice_exporter_sent_metric_points", &label, 100).await;
    wait_for_value(&t, "sluice_exporter_sent_spans", &label, 7).await;
    wait_for_value(&t, "sluice_exporter_sent_log_records", &label, 6).await;
    drop(out);
    service.shutdown().await;
    let store = open(&db);
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(count(&store, "SELECT count(*) FROM points"), 100);
    // gauge_points labels each point with its index: 25 series.
    assert_eq!(
        count(&store, "SELECT count(*) FROM series WHERE name = 'cpu'"),
        25
    );
    assert_eq!(count(&store, "SELECT count(*) FROM resources"), 2);
    assert_eq!(count(&store, "SELECT count(*) FROM spans"), 7);
    assert_eq!(count(&store, "SELECT count(*) FROM logs"), 6);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM logs WHERE event_name = 'sluice.sli.alert'
             AND json_extract(attributes, '$.sli_name') = 'packet_loss_rate' AND severity_number = 17"
        ),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// kill -9.

const KILL9_ENV: &str = "SLUICE_SQLITE_KILL9_DB";
const RECORDS_PER_BATCH: i64 = 20;

fn numbered_batch(seq: i64) -> Batch {
    let records = (0..RECORDS_PER_BATCH)
        .map(|i| LogRecord {
            time_unix_nano: sluice_pipeline::otlp::now_nanos(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "batch {seq} record {i} {}",
                    "z".repeat(100)
                ))),
            }),
            attributes: vec![kv_i64("seq", seq)],
            ..Default::default()
        })
        .collect();
    Batch::new(Payload::Logs(vec![ResourceLogs {
        resource: Some(resource(vec![kv_str("service.name", "kill9")])),
        scope_logs: vec![ScopeLogs {
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }]))
}

/// The writer process of the kill -9 test (run by it, with the database path in the
/// environment): four tasks export numbered batches through the real exporter and print
/// `ACK <n>` once each export returned, i.e. once its transaction committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of kill_9_mid_burst_keeps_the_file_sound_and_every_acknowledged_batch"]
async fn kill9_writer_child() {
    let Some(db) = std::env::var_os(KILL9_ENV) else {
        return;
    };
    let config = SqliteExporterConfig {
        path: Some(PathBuf::from(db)),
        ..SqliteExporterConfig::default()
    };
    let id = "sqlite".parse().unwrap();
    let tel = ComponentTelemetry::new(Telemetry::new(), Kind::Exporter, &id);
    let ctx = ComponentContext::new(
        id,
        Kind::Exporter,
        vec![Signal::Logs],
        tel,
        std::env::temp_dir(),
        Endpoints::default(),
    );
    let mut exporter = SqliteExporter::new(&config, &ctx).unwrap();
    exporter.start().await.unwrap();
    let exporter = Arc::new(exporter);
    let mut tasks = Vec::new();
    for task in 0..4i64 {
        let e = exporter.clone();
        tasks.push(tokio::spawn(async move {
            // Bounded: the parent kills long before this ends.
            for k in 0..50_000i64 {
                let seq = k * 4 + task;
                e.export(&numbered_batch(seq)).await.unwrap();
                println!("ACK {seq}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn kill_9_mid_burst_keeps_the_file_sound_and_every_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kill9.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "sqlite::kill9_writer_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL9_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("ACK ") {
                if tx.send(n.parse::<i64>().unwrap()).is_err() {
                    break;
                }
            }
        }
    });
    let mut acked = Vec::new();
    // Kill once a good number of batches were acknowledged: the writer is mid-burst.
    while acked.len() < 400 {
        match rx.recv_timeout(WAIT_BOUND) {
            Ok(n) => acked.push(n),
            Err(e) => panic!("the writer process stopped acknowledging: {e}"),
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished: {status}");
    // What the child printed before it died is acknowledged too.
    reader.join().unwrap();
    acked.extend(rx.try_iter());

    let store = open(&db);
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let per_batch: BTreeMap<i64, i64> = store
        .connection()
        .prepare("SELECT json_extract(attributes, '$.seq'), count(*) FROM logs GROUP BY 1")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for n in &acked {
        assert_eq!(
            per_batch.get(n),
            Some(&RECORDS_PER_BATCH),
            "acknowledged batch {n} is missing or partial"
        );
    }
    // Transactions are whole: no batch is there in part.
    assert!(per_batch.values().all(|c| *c == RECORDS_PER_BATCH));
    assert!(per_batch.len() >= acked.len());
}

#[tokio::test]
async fn a_locked_database_is_retried_until_the_lock_goes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("locked.db");
    let yaml = format!(
        r#"
receivers:
  inject: {{ name: sqlite-locked }}
exporters:
  sqlite:
    path: {}
    busy_timeout: 10ms
    retry_on_failure:
      initial_interval: 20ms
      max_interval: 50ms
      max_elapsed_time: 0s
service:
  pipelines:
    logs: {{ receivers: [inject], exporters: [sqlite] }}
"#,
        db.display()
    );
    let (service, t) = start_yaml(&yaml).await;
    // Another process's writer holds the lock.
    let other = sluice_exporters::sqlite::rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = testing::injector("sqlite-locked").await;
    let l = out.get(Signal::Logs).unwrap();
    l.send(Batch::new(log_records(9))).await.unwrap();
    let label = [("exporter", "sqlite")];
    wait_for_value(&t, "sluice_exporter_retries", &label, 2).await;
    assert_eq!(t.value("sluice_exporter_sent_log_records", &label), None);
    other.execute_batch("COMMIT").unwrap();
    wait_for_value(&t, "sluice_exporter_sent_log_records", &label, 9).await;
    drop(out);
    service.shutdown().await;
    assert_eq!(count(&open(&db), "SELECT count(*) FROM logs"), 9);
    assert_eq!(
        t.value("sluice_exporter_send_failed_log_records", &label),
        None
    );
}
