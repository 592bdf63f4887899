//! The `summary` exporter through real pipelines: the `inject` receiver (and `filelog` reading
//! the JSON lines `sluice ci` writes) → summary; the files it writes at shutdown and on its
//! timer: PNGs (signature and size), report sections, escaping of nasty step names, the budget
//! with a 6-hour job sampled every second.

use std::path::Path;
use std::sync::Arc;

use sluice_exporters::summary::{synthetic, SECTION_TITLES};
use sluice_pipeline::runtime::fanout::Outputs;
use sluice_pipeline::runtime::RunningService;
use sluice_pipeline::telemetry::Telemetry;
use sluice_pipeline::{testing, Batch, Payload, Signal};

use crate::{start_yaml, wait_for_value};

const T0: u64 = 1_763_800_000_000_000_000;
const SEC: u64 = 1_000_000_000;
const NASTY: &str = "Deploy: \"prod\" #2; `make` | tee 'x'\nsecond line";
const CHARTS: [&str; 6] = [
    "cpu.png",
    "memory.png",
    "network.png",
    "disk.png",
    "filesystem.png",
    "steps.png",
];

/// Starts a pipeline `inject` receiver → `summary` exporter (writing under `dir`, with the
/// `extra` exporter options), and returns it with its telemetry and the receiver's outputs.
async fn start(inject: &str, dir: &Path, extra: &str) -> (RunningService, Arc<Telemetry>, Outputs) {
    let yaml = format!(
        r#"
receivers:
  inject: {{ name: {inject} }}
exporters:
  summary:
    output_dir: "{out}"
{extra}
service:
  data_dir: "{data}"
  pipelines:
    metrics: {{ receivers: [inject], exporters: [summary] }}
    logs: {{ receivers: [inject], exporters: [summary] }}
"#,
        out = dir.join("report").display(),
        data = dir.join("data").display(),
    );
    let (service, telemetry) = start_yaml(&yaml).await;
    (service, telemetry, testing::injector(inject).await)
}

/// Width and height from a PNG's signature and IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert_eq!(&b[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    assert!(
        b.ends_with(&[0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]),
        "IEND"
    );
    (be(16), be(20))
}

/// `seconds` of synthetic host metrics, `per_batch` scrapes to a batch.
async fn send_job(out: &Outputs, seconds: u64, per_batch: u64) {
    let metrics = out.get(Signal::Metrics).unwrap();
    let mut i = 0;
    while i < seconds {
        let mut payload = synthetic::host_metrics(T0 + i * SEC, i);
        for j in i + 1..(i + per_batch).min(seconds) {
            payload
                .append(synthetic::host_metrics(T0 + j * SEC, j))
                .unwrap();
        }
        metrics.send(Batch::new(payload)).await.unwrap();
        i += per_batch;
    }
}

fn steps(names: &[(&str, i64)], failing: usize) -> Payload {
    let mut records = Vec::new();
    let mut t = T0 as i64;
    for (i, (name, secs)) in names.iter().enumerate() {
        let end = t + secs * SEC as i64;
        records.push(synthetic::step_start(name, t));
        let code = if i == failing { 2 } else { 0 };
        records.push(synthetic::step_end(name, t, end, code, "sluice"));
        records.push(synthetic::output_line(
            t as u64 + SEC,
            name,
            "ERROR",
            "stderr",
            &format!("error: {name} | ``` <script>"),
        ));
        t = end;
    }
    synthetic::logs(records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_and_charts_from_a_pipeline_with_nasty_step_names() {
    let dir = tempfile::tempdir().unwrap();
    let (service, _t, out) = start("summary-it-nasty", dir.path(), "").await;
    send_job(&out, 300, 30).await;
    out.get(Signal::Logs)
        .unwrap()
        .send(Batch::new(steps(
            &[
                ("checkout", 30),
                (NASTY, 120),
                ("test: unit|integration", 150),
            ],
            1,
        )))
        .await
        .unwrap();
    drop(out);
    service.shutdown().await;

    let report = dir.path().join("report");
    for name in CHARTS {
        let (w, h) = png_size(&report.join(name));
        assert_eq!(w, 1000, "{name}");
        if name == "steps.png" {
            assert!(h >= 200, "{name}: {h}");
        } else {
            assert_eq!(h, 400, "{name}");
        }
    }
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    for t in SECTION_TITLES {
        assert!(md.contains(&format!("### {t}\n")), "missing {t}:\n{md}");
    }
    // The step table: the nasty name stays in its row (6 cells), the failed step is marked.
    let row = md
        .lines()
        .find(|l| l.starts_with("| 2 |"))
        .expect("row of step 2");
    assert!(
        row.contains("Deploy: \"prod\" \\#2; \\`make\\` \\| tee 'x' second line"),
        "{row}"
    );
    assert!(row.contains("❌ failed | 2 |"), "{row}");
    assert_eq!(row.split(" | ").count(), 6, "{row}");
    // The gantt: three tasks, one colon each (the separator), the failed one `crit`.
    let gantt: Vec<&str> = md
        .split("```mermaid\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.contains(", s"))
        .collect();
    assert_eq!(gantt.len(), 3, "{gantt:?}");
    for l in &gantt {
        assert_eq!(l.matches(':').count(), 1, "{l}");
        assert!(!l.contains(['#', ';', '"', '`', '|']), "{l}");
    }
    assert!(gantt[1].contains(":crit, s2,"), "{}", gantt[1]);
    assert!(gantt[0].contains(":done, s1,"));
    // Error lines in a fence their backticks cannot close; no raw HTML in the Markdown.
    assert!(md.contains("````text\n"));
    assert!(!md.contains("<script>") || md.contains("````text\n"));
    // Without image_base_url, linked not inline.
    assert!(md.contains("](cpu.png)") && !md.contains("!["));
    assert!(md.len() < 900 * 1024);

    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 6);
    assert!(!html.contains("<script"));
    assert!(html.contains("&lt;script&gt;"));
    // Nothing half-written is left.
    for e in std::fs::read_dir(&report).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        assert!(!n.ends_with(".tmp"), "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_six_hour_job_sampled_every_second_stays_under_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (service, _t, out) =
        start("summary-it-6h", dir.path(), "    max_report_bytes: 30000\n").await;
    send_job(&out, 6 * 3600, 120).await;
    let names: Vec<String> = (0..300)
        .map(|i| format!("step {i}: {}", "x".repeat(60)))
        .collect();
    let list: Vec<(&str, i64)> = names.iter().map(|n| (n.as_str(), 72)).collect();
    out.get(Signal::Logs)
        .unwrap()
        .send(Batch::new(steps(&list, 7)))
        .await
        .unwrap();
    drop(out);
    service.shutdown().await;
    let report = dir.path().join("report");
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.len() <= 30_000, "{} bytes", md.len());
    assert!(
        md.contains("_Omitted to keep this report under 30000 bytes"),
        "{md}"
    );
    // Steps are kept longest; the 6 hours are in the table.
    assert!(md.contains("### Steps\n\n| # |"), "{md}");
    assert!(md.contains("| 21600 |"), "samples of the whole job:\n{md}");
    assert_eq!(png_size(&report.join("cpu.png")), (1000, 400));
    // report.html has everything, including the full timeline chart.
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("step 299"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_interval_writes_the_report_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let (service, t, out) = start(
        "summary-it-flush",
        dir.path(),
        "    flush_interval: 20ms\n    theme: dark\n",
    )
    .await;
    send_job(&out, 60, 60).await;
    let labels = [("exporter", "summary")];
    let before = wait_for_value(&t, "sluice_exporter_summary_renders", &labels, 1).await;
    // The files of a render are complete when the counter moves.
    let report = dir.path().join("report");
    assert!(std::fs::read_to_string(report.join("report.md"))
        .unwrap()
        .contains("### Resource usage"));
    assert_eq!(png_size(&report.join("memory.png")), (1000, 400));
    drop(out);
    service.shutdown().await;
    let after = t
        .value("sluice_exporter_summary_renders", &labels)
        .unwrap_or(0);
    assert!(after > before, "shutdown renders once more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_and_output_written_as_json_lines_reach_the_report_through_filelog() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let s0 = T0 as i64;
    let steps = [
        format!(
            r#"{{"body":"Step build started","sluice.ci.step":"start","cicd.pipeline.task.name":"build","sluice.ci.step.start_unix_nano":{s0}}}"#
        ),
        format!(
            r#"{{"body":"Step build finished with exit code 0","sluice.ci.step":"end","cicd.pipeline.task.name":"build","sluice.ci.step.start_unix_nano":{s0},"sluice.ci.step.end_unix_nano":{},"sluice.ci.step.exit_code":0,"sluice.ci.step.source":"sluice"}}"#,
            s0 + 40 * SEC as i64
        ),
        format!(
            r#"{{"body":"Step lint: all started","sluice.ci.step":"start","cicd.pipeline.task.name":"lint: all","sluice.ci.step.start_unix_nano":{}}}"#,
            s0 + 40 * SEC as i64
        ),
        format!(
            r#"{{"body":"Step lint: all finished with exit code 3","sluice.ci.step":"end","cicd.pipeline.task.name":"lint: all","sluice.ci.step.start_unix_nano":{},"sluice.ci.step.end_unix_nano":{},"sluice.ci.step.exit_code":3,"sluice.ci.step.source":"sluice"}}"#,
            s0 + 40 * SEC as i64,
            s0 + 50 * SEC as i64
        ),
        format!(
            r#"{{"body":"Step deploy started","sluice.ci.step":"start","cicd.pipeline.task.name":"deploy","sluice.ci.step.start_unix_nano":{}}}"#,
            s0 + 50 * SEC as i64
        ),
    ];
    std::fs::write(state.join("steps.jsonl"), steps.join("\n") + "\n").unwrap();
    let output = [
        r#"{"body":"Compiling sluice","log.iostream":"stderr","cicd.pipeline.task.name":"build","severity":"INFO"}"#,
        r#"{"body":"warning: unused variable","log.iostream":"stderr","cicd.pipeline.task.name":"build","severity":"WARN"}"#,
        r#"{"body":"error: lint failed | `x`","log.iostream":"stderr","cicd.pipeline.task.name":"lint: all","severity":"ERROR"}"#,
    ];
    std::fs::write(state.join("output.jsonl"), output.join("\n") + "\n").unwrap();
    let yaml = format!(
        r#"
receivers:
  filelog/output:
    include: ["{state}/output.jsonl"]
    start_at: beginning
    poll_interval: 10ms
    format: json
    json: {{ body_field: body }}
    severity: {{ field: severity }}
  filelog/steps:
    include: ["{state}/steps.jsonl"]
    start_at: beginning
    poll_interval: 10ms
    format: json
    json: {{ body_field: body }}
exporters:
  summary:
    output_dir: "{state}/report"
service:
  data_dir: "{state}/data"
  pipelines:
    logs: {{ receivers: [filelog/output, filelog/steps], exporters: [summary] }}
"#,
        state = state.display()
    );
    let (service, t) = start_yaml(&yaml).await;
    let sent = "sluice_exporter_sent_log_records";
    wait_for_value(&t, sent, &[("exporter", "summary")], 8).await;
    service.shutdown().await;
    let md = std::fs::read_to_string(state.join("report/report.md")).unwrap();
    assert!(md.contains("| 1 | build | ✅ succeeded | 0 |"), "{md}");
    assert!(md.contains("| 2 | lint: all | ❌ failed | 3 |"), "{md}");
    assert!(md.contains("| 3 | deploy | ⏳ running |"), "{md}");
    assert!(
        md.contains("| ERROR | 1 |") && md.contains("| WARN | 1 |") && md.contains("| INFO | 1 |"),
        "{md}"
    );
    assert!(
        md.contains("error: lint failed | `x`"),
        "the error line, in its code block:\n{md}"
    );
    assert!(md.contains("lint∶ all :crit, s2,"), "{md}");
    assert_eq!(png_size(&state.join("report/steps.png")).0, 1000);
    // Without host metrics each chart says why.
    assert!(
        md.contains("CPU utilization (`cpu.png`) not available"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_of_the_sli_processor_appear_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
receivers:
  inject: {{ name: summary-it-sli }}
processors:
  sli:
    slis:
      - sli_name: load_1m_max
        metric: system.cpu.load_average.1m
        aggregation: max
        yellow: 2
        orange: 3
        red: 3.5
        evaluation_window: 1m
        consecutive_breaches: 1
exporters:
  summary:
    output_dir: "{out}"
service:
  data_dir: "{data}"
  pipelines:
    metrics: {{ receivers: [inject], processors: [sli], exporters: [summary] }}
"#,
        out = dir.path().join("report").display(),
        data = dir.path().join("data").display(),
    );
    let (service, _t) = start_yaml(&yaml).await;
    let out = testing::injector("summary-it-sli").await;
    // Load 4 during the first 90 s of every 10 minutes, 1 otherwise: Red fires, then resolves.
    send_job(&out, 1200, 60).await;
    drop(out);
    service.shutdown().await;
    let md = std::fs::read_to_string(dir.path().join("report/report.md")).unwrap();
    let alerts = md
        .split("### Alerts")
        .nth(1)
        .unwrap()
        .split("### ")
        .next()
        .unwrap();
    assert!(alerts.contains("fired: 2 red"), "{alerts}");
    assert!(
        alerts.contains("| load\\_1m\\_max | 🔴 red | firing | 4.00 | 3.50 |"),
        "{alerts}"
    );
    assert!(
        alerts.contains("| load\\_1m\\_max | 🟢 red | resolved |"),
        "{alerts}"
    );
}
