//! filelog end to end: rename rotation while a writer appends (every line arrives exactly once),
//! hundreds of files, and kill -9 of the real binary then a restart on the same
//! data_dir (nothing lost; duplicates only of lines past the last persisted checkpoint).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use sluice_pipeline::testing::{self, Sink};
use sluice_pipeline::{ComponentId, Payload, Signal};
use sluice_proto::common::v1::any_value;

use crate::{bounded, start_yaml, wait_for_value};

const OPENED: &str = "sluice_receiver_filelog_files_opened";

fn line(i: usize) -> String {
    format!("line-{i:06} the quick brown fox jumps over the lazy dog\n")
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// Every log body the sink received, in order.
fn bodies(sink: &Sink) -> Vec<String> {
    let mut v = Vec::new();
    for p in sink.payloads() {
        if let Payload::Logs(rl) = p {
            for r in rl
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
            {
                if let Some(any_value::Value::StringValue(s)) =
                    r.body.as_ref().and_then(|b| b.value.as_ref())
                {
                    v.push(s.clone());
                }
            }
        }
    }
    v
}

fn expected(n: usize) -> BTreeSet<String> {
    (0..n).map(|i| line(i).trim_end().to_string()).collect()
}

fn yaml(include: &str, data_dir: &Path, sink: &str) -> String {
    format!(
        r#"
receivers:
  filelog:
    include: ["{include}"]
    start_at: beginning
    poll_interval: 10ms
    max_batch_size: 100
exporters:
  collect: {{ sink: {sink} }}
service:
  data_dir: "{data}"
  pipelines:
    logs: {{ receivers: [filelog], exporters: [collect] }}
"#,
        data = data_dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_while_writing_loses_and_repeats_nothing() {
    const N: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut w = append(&log);
    let sink_name = "filelog-it-rename";
    let (service, t) = start_yaml(&yaml(
        &log.display().to_string(),
        &dir.path().join("data"),
        sink_name,
    ))
    .await;
    let labels = [("receiver", "filelog")];
    wait_for_value(&t, OPENED, &labels, 1).await;
    let mut rotations = 0;
    for i in 0..N {
        w.write_all(line(i).as_bytes()).unwrap();
        if i % 1000 == 999 && i + 1 < N {
            rotations += 1;
            fs::rename(&log, dir.path().join(format!("app.log.{rotations}"))).unwrap();
            w = append(&log);
            // The new file must be found before it is rotated away in turn (it is not in
            // `include` once renamed).
            wait_for_value(&t, OPENED, &labels, 1 + rotations).await;
        }
    }
    drop(w);
    let sink = testing::sink(sink_name);
    bounded("all lines", sink.wait_for_items(Signal::Logs, N)).await;
    service.shutdown().await;
    let got = bodies(&sink);
    assert_eq!(got.len(), N, "every line exactly once");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected(N));
}

/// copytruncate as logrotate does it (copy, then truncate, between two writes of the writer)
/// while the writer goes on without waiting for the receiver: lines unread at the truncation are
/// read from the copy, the original is read again from its start, nothing lost or repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_rotation_while_writing_loses_and_repeats_nothing() {
    const N: usize = 6000;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut w = append(&log);
    let sink_name = "filelog-it-copytruncate";
    let (service, t) = start_yaml(&yaml(
        &format!("{}/app.log*", dir.path().display()),
        &dir.path().join("data"),
        sink_name,
    ))
    .await;
    wait_for_value(&t, OPENED, &[("receiver", "filelog")], 1).await;
    let sink = testing::sink(sink_name);
    let mut rotations = 0;
    for i in 0..N {
        w.write_all(line(i).as_bytes()).unwrap();
        if i % 1000 == 999 && i + 1 < N {
            // Every other rotation waits until part of the file was read, so the copy is
            // adopted mid-file; the others may come before, during or after a poll.
            if rotations % 2 == 0 {
                bounded(
                    "some lines read",
                    sink.wait_for_items(Signal::Logs, i - 500),
                )
                .await;
            }
            rotations += 1;
            fs::copy(&log, dir.path().join(format!("app.log.{rotations}"))).unwrap();
            w.set_len(0).unwrap();
        }
    }
    drop(w);
    bounded("all lines", sink.wait_for_items(Signal::Logs, N)).await;
    service.shutdown().await;
    let got = bodies(&sink);
    let distinct: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(distinct, expected(N), "no line lost");
    assert_eq!(got.len(), N, "no line twice");
}

/// A plain copy of a tailed file (no truncation follows) is what that file delivers: not read
/// again. A new file that starts like a tailed one but goes on differently is read in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_is_not_read_twice_and_a_lookalike_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut w = append(&log);
    let sink_name = "filelog-it-copy-lookalike";
    let (service, t) = start_yaml(&yaml(
        &format!("{}/*.log", dir.path().display()),
        &dir.path().join("data"),
        sink_name,
    ))
    .await;
    let sink = testing::sink(sink_name);
    for i in 0..100 {
        w.write_all(line(i).as_bytes()).unwrap();
    }
    bounded("the first lines", sink.wait_for_items(Signal::Logs, 100)).await;
    fs::copy(&log, dir.path().join("backup.log")).unwrap();
    // The same first line, then different ones.
    let mut other = append(&dir.path().join("other.log"));
    other.write_all(line(0).as_bytes()).unwrap();
    other.write_all(b"other-1\nother-2\n").unwrap();
    drop(other);
    for i in 100..200 {
        w.write_all(line(i).as_bytes()).unwrap();
    }
    drop(w);
    bounded("the rest", sink.wait_for_items(Signal::Logs, 203)).await;
    wait_for_value(&t, OPENED, &[("receiver", "filelog")], 3).await;
    service.shutdown().await;
    let mut got = bodies(&sink);
    got.sort();
    let mut want: Vec<String> = (0..200).map(|i| line(i).trim_end().to_string()).collect();
    want.extend([
        line(0).trim_end().to_string(),
        "other-1".into(),
        "other-2".into(),
    ]);
    want.sort();
    assert_eq!(got, want);
}

/// Kills the child on drop, so a failing test leaves no process behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_sluice(config: &Path, stderr: &Path) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(append(stderr))
        .spawn()
        .unwrap();
    ChildGuard(child)
}

/// How many whole lines lie before byte `offset` of `path`.
fn lines_before(path: &Path, offset: u64) -> usize {
    let data = fs::read(path).unwrap();
    data[..(offset as usize).min(data.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

fn checkpoint_offset(data_dir: &Path) -> u64 {
    let path = data_dir.join("receiver/filelog/checkpoints.json");
    let text = fs::read_to_string(&path).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["files"]
        .as_array()
        .and_then(|f| f.first())
        .and_then(|f| f["offset"].as_u64())
        .unwrap_or(0)
}

async fn wait_for_distinct(sink: &Arc<Sink>, n: usize) {
    bounded("every line delivered", async {
        loop {
            let have = sink.items(Signal::Logs);
            if bodies(sink).into_iter().collect::<BTreeSet<_>>().len() >= n {
                return;
            }
            sink.wait_for_items(Signal::Logs, have + 1).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_loses_nothing() {
    const FIRST: usize = 60_000;
    const SECOND: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let data_dir = dir.path().join("data");
    let sink_name = "filelog-it-kill";
    // The receiving side, in process: OTLP/gRPC → collect.
    let (target, _) = start_yaml(&format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: "127.0.0.1:0" }}
exporters:
  collect: {{ sink: {sink_name} }}
service:
  pipelines:
    logs: {{ receivers: [otlp], exporters: [collect] }}
"#
    ))
    .await;
    let id: ComponentId = "otlp".parse().unwrap();
    let addr = target.endpoints().get(&id, "grpc").unwrap();
    let config = dir.path().join("sluice.yaml");
    fs::write(
        &config,
        format!(
            r#"
receivers:
  filelog:
    include: ["{log}"]
    start_at: beginning
    poll_interval: 10ms
    max_batch_size: 200
exporters:
  otlp:
    endpoint: "http://{addr}"
    retry_on_failure: {{ initial_interval: 10ms, max_interval: 100ms, max_elapsed_time: 0s }}
service:
  data_dir: "{data}"
  pipelines:
    logs: {{ receivers: [filelog], exporters: [otlp] }}
"#,
            log = log.display(),
            data = data_dir.display()
        ),
    )
    .unwrap();
    let stderr = dir.path().join("sluice.stderr");
    let mut w = append(&log);
    for i in 0..FIRST {
        w.write_all(line(i).as_bytes()).unwrap();
    }
    let sink = testing::sink(sink_name);
    let mut child = spawn_sluice(&config, &stderr);
    bounded(
        "some lines before the kill",
        sink.wait_for_items(Signal::Logs, FIRST / 4),
    )
    .await;
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let acked = lines_before(&log, checkpoint_offset(&data_dir));
    // The target answers once its pipeline took the data, which may be a moment before the
    // sink counts it: everything the checkpoint claims must arrive (a checkpoint ahead of
    // delivery never does, and this wait fails).
    bounded(
        "the acknowledged lines in the sink",
        sink.wait_for_items(Signal::Logs, acked),
    )
    .await;
    let delivered_before = sink.items(Signal::Logs);
    assert!(
        delivered_before < FIRST,
        "the kill came too late to test anything"
    );
    for i in FIRST..FIRST + SECOND {
        w.write_all(line(i).as_bytes()).unwrap();
    }
    drop(w);
    let child2 = spawn_sluice(&config, &stderr);
    wait_for_distinct(&sink, FIRST + SECOND).await;
    drop(child2);
    target.shutdown().await;
    let got = bodies(&sink);
    let distinct: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(distinct, expected(FIRST + SECOND), "no line lost");
    let duplicates = got.len() - distinct.len();
    println!(
        "filelog kill -9: delivered before the kill {delivered_before}, acknowledged in the \
         checkpoint {acked}, duplicates after restart {duplicates}"
    );
    assert!(acked <= delivered_before, "checkpoint ahead of delivery");
    // Only lines read but not acknowledged at the kill may come twice.
    assert!(
        duplicates <= FIRST - acked,
        "{duplicates} duplicates, but only {} lines were past the checkpoint",
        FIRST - acked
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_files_are_all_read_exactly_once() {
    const FILES: usize = 300;
    const PER_FILE: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    for f in 0..FILES {
        let mut w = append(&logs.join(format!("svc-{f:03}.log")));
        for i in 0..PER_FILE {
            w.write_all(line(f * PER_FILE + i).as_bytes()).unwrap();
        }
    }
    // A file that does not match `include` is never read.
    append(&logs.join("ignored.txt"))
        .write_all(b"not a log\n")
        .unwrap();
    let sink_name = "filelog-it-many";
    let (service, t) = start_yaml(&yaml(
        &format!("{}/*.log", logs.display()),
        &dir.path().join("data"),
        sink_name,
    ))
    .await;
    let sink = testing::sink(sink_name);
    bounded(
        "all lines",
        sink.wait_for_items(Signal::Logs, FILES * PER_FILE),
    )
    .await;
    service.shutdown().await;
    let got = bodies(&sink);
    assert_eq!(got.len(), FILES * PER_FILE, "every line exactly once");
    assert_eq!(
        got.into_iter().collect::<BTreeSet<_>>(),
        expected(FILES * PER_FILE)
    );
    assert_eq!(
        t.value(OPENED, &[("receiver", "filelog")]),
        Some(FILES as i64)
    );
}

/// Lines written after the last poll, including a last line without its newline, are read at
/// shutdown: with an hour between polls, only the final read can deliver them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reads_what_was_written_since_the_last_poll() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut w = append(&log);
    for i in 0..10 {
        w.write_all(line(i).as_bytes()).unwrap();
    }
    let sink_name = "filelog-it-final-read";
    let config = yaml(
        &log.display().to_string(),
        &dir.path().join("data"),
        sink_name,
    )
    .replace("poll_interval: 10ms", "poll_interval: 1h");
    let (service, _t) = start_yaml(&config).await;
    let sink = testing::sink(sink_name);
    bounded("the first poll", sink.wait_for_items(Signal::Logs, 10)).await;
    for i in 10..20 {
        w.write_all(line(i).as_bytes()).unwrap();
    }
    w.write_all(b"the last line, without its newline").unwrap();
    drop(w);
    service.shutdown().await;
    let got = bodies(&sink);
    let mut want: Vec<String> = (0..20).map(|i| line(i).trim_end().to_string()).collect();
    want.push("the last line, without its newline".into());
    // Batches may be exported concurrently: compare the records, not their order.
    let mut got = got;
    got.sort();
    want.sort();
    assert_eq!(got, want);
}
