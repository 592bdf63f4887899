//! Unit tests of the summary exporter: escaping, the report budget, downsampling, percentile
//! math, step bookkeeping, ingestion, and the rendered files.

use std::path::Path;

use super::store::{ProcessStats, MAX_ERROR_LINE_CHARS};
use super::synthetic;
use super::*;
use sluice_pipeline::Payload;
use sluice_proto::logs::v1::LogRecord;

/// 2025-11-22 08:26:40 UTC, in nanoseconds.
const T0: u64 = 1_763_800_000_000_000_000;
const SEC: u64 = 1_000_000_000;

const NASTY: &str = "Build: \"release\" #1; `cargo` | tee 'log'\nnext line %% {x} [y] <b> \\ end";

fn feed_job(store: &mut Store, seconds: u64) {
    for i in 0..seconds {
        if let Payload::Metrics(m) = synthetic::host_metrics(T0 + i * SEC, i) {
            ingest::metrics(store, &m);
        }
    }
}

fn feed_logs(store: &mut Store, records: Vec<LogRecord>) -> ingest::Ingested {
    let Payload::Logs(l) = synthetic::logs(records) else {
        unreachable!("logs() makes logs")
    };
    ingest::logs(store, &l, 500, 20)
}

fn settings(dir: &Path, theme: Theme) -> RenderSettings {
    RenderSettings {
        output_dir: dir.to_path_buf(),
        theme,
        width: 1000,
        height: 400,
        image_base_url: None,
        max_report_bytes: DEFAULT_MAX_REPORT_BYTES,
        top_processes: 5,
        title: "sluice CI report".into(),
    }
}

fn job_with_steps(seconds: u64) -> Store {
    let mut store = Store::new(2000);
    feed_job(&mut store, seconds);
    let s = T0 as i64;
    let m = 60 * SEC as i64;
    feed_logs(
        &mut store,
        vec![
            synthetic::step_start("checkout", s),
            synthetic::step_end("checkout", s, s + m, 0, "sluice"),
            synthetic::step_start(NASTY, s + m),
            synthetic::step_end(NASTY, s + m, s + 5 * m, 0, "sluice"),
            synthetic::step_start("test", s + 5 * m),
            synthetic::step_end("test", s + 5 * m, s + 8 * m, 101, "sluice"),
            synthetic::step_start("upload", s + 8 * m),
            synthetic::output_line(T0 + 5 * SEC, "test", "INFO", "stdout", "running 3 tests"),
            synthetic::output_line(T0 + 6 * SEC, "test", "WARN", "stderr", "warning: unused"),
            synthetic::output_line(
                T0 + 7 * SEC,
                "test",
                "ERROR",
                "stderr",
                "error: ``` | <b> boom",
            ),
            synthetic::alert(T0 + 100 * SEC, "cpu_p95", "red", "firing", 0.97, 0.9),
            synthetic::alert(T0 + 200 * SEC, "cpu_p95", "red", "resolved", 0.5, 0.9),
        ],
    );
    store
}

fn report_of(store: &Store, budget: usize, base_url: Option<&str>) -> Report {
    let charts = Charts::default();
    build_report(&ReportInput {
        store,
        charts: &charts,
        identity: &JobIdentity::default(),
        title: "sluice CI report",
        image_base_url: base_url,
        top_processes: 5,
        max_report_bytes: budget,
        theme: Theme::Light,
        now_nanos: (T0 + 600 * SEC) as i64,
    })
}

// ---- escaping ------------------------------------------------------------------------------

#[test]
fn md_cell_cannot_break_a_table_row() {
    let cell = md_cell(NASTY, 500);
    assert!(!cell.contains('\n'));
    // Every `|` and backtick is escaped.
    for (i, c) in cell.char_indices() {
        if c == '|' || c == '`' {
            assert_eq!(&cell[i - 1..i], "\\", "unescaped {c} in {cell}");
        }
    }
    assert!(cell.contains("&lt;b&gt;"), "{cell}");
    assert!(md_cell(&"x".repeat(100), 10).ends_with('…'));
}

#[test]
fn code_block_fence_is_longer_than_any_backtick_run() {
    let block = md_code_block("text", "a ``` b ```` c");
    assert!(block.starts_with("`````text\n"), "{block}");
    assert!(block.ends_with("\n`````\n"));
    let plain = md_code_block("", "no ticks");
    assert!(plain.starts_with("```\n"));
}

#[test]
fn mermaid_text_has_no_gantt_syntax_left() {
    let t = mermaid_text(NASTY, 200);
    for bad in [
        ':', '#', ';', '"', '\'', '`', '|', '\n', '%', '{', '}', '[', ']', '<', '>', ',',
    ] {
        assert!(!t.contains(bad), "{bad:?} left in {t}");
    }
    assert!(
        t.starts_with("Build∶ ＂release＂ ＃1； ˋcargoˋ ¦ tee"),
        "{t}"
    );
    assert_eq!(mermaid_text("\n\t", 10), "(unnamed)");
}

#[test]
fn html_escapes_markup() {
    assert_eq!(
        escape_html("<a href=\"x\">&'"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
}

#[test]
fn gantt_lines_are_well_formed_and_blocks_stay_under_the_limit() {
    let mut store = Store::new(100);
    let mut records = Vec::new();
    let base = T0 as i64;
    for i in 0..2000i64 {
        let name = format!("{NASTY} {i} {}", "ü".repeat(60));
        let start = base + i * SEC as i64;
        records.push(synthetic::step_start(&name, start));
        records.push(synthetic::step_end(
            &name,
            start,
            start + SEC as i64,
            i % 2,
            "sluice",
        ));
    }
    let Payload::Logs(l) = synthetic::logs(records) else {
        unreachable!()
    };
    ingest::logs(&mut store, &l, 5000, 0);
    let blocks = gantt_blocks(&store, base);
    assert!(blocks.len() > 1, "2000 long names need several blocks");
    let mut tasks = 0;
    for b in &blocks {
        assert!(b.chars().count() < 50_000);
        let head: Vec<&str> = b.lines().take(5).map(str::trim).collect();
        assert_eq!(head[0], "gantt");
        assert!(head[1].starts_with("title Steps"), "{}", head[1]);
        assert_eq!(
            head[2..],
            ["dateFormat x", "axisFormat %H:%M:%S", "section Steps"]
        );
        for line in b.lines().skip(5) {
            // `    <title> :<tag>, s<n>, <start>, <end>`: exactly one colon, the separator.
            assert_eq!(line.matches(':').count(), 1, "{line}");
            let (_, meta) = line.split_once(" :").unwrap();
            let parts: Vec<&str> = meta.split(", ").collect();
            assert_eq!(parts.len(), 4, "{line}");
            assert!(["done", "crit"].contains(&parts[0]), "{line}");
            assert!(parts[2].parse::<i64>().unwrap() < parts[3].parse::<i64>().unwrap());
            // Milliseconds (`dateFormat x`), not seconds or nanoseconds.
            assert_eq!(
                parts[2],
                (T0 / 1_000_000 + (tasks as u64) * 1000).to_string()
            );
            tasks += 1;
        }
    }
    assert_eq!(tasks, 2000);
}

// ---- store ----------------------------------------------------------------------------------

#[test]
fn a_full_series_halves_keeping_min_max_and_mean() {
    let mut s = Series::new(16);
    let values: Vec<f64> = (0..1000).map(|i| ((i * 37) % 101) as f64).collect();
    for (i, v) in values.iter().enumerate() {
        s.push(i as f64, *v);
    }
    assert!(s.points().len() <= 16, "{}", s.points().len());
    assert!(s.downsamples >= 6);
    assert_eq!(s.stats.count, 1000);
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    assert_eq!(s.stats.max, max);
    assert_eq!(s.stats.min, min);
    assert_eq!(
        s.points().iter().map(|p| p.max).fold(f64::MIN, f64::max),
        max
    );
    assert_eq!(
        s.points().iter().map(|p| p.min).fold(f64::MAX, f64::min),
        min
    );
    let n: u32 = s.points().iter().map(|p| p.count).sum();
    assert_eq!(n, 1000);
    let weighted: f64 = s
        .points()
        .iter()
        .map(|p| p.mean * f64::from(p.count))
        .sum::<f64>()
        / 1000.0;
    let mean = values.iter().sum::<f64>() / 1000.0;
    assert!((weighted - mean).abs() < 1e-9);
    assert!((s.stats.mean().unwrap() - mean).abs() < 1e-9);
    // The resolution is the same over the whole series: every point but the last holds the
    // same number of samples.
    let per = s.points()[0].count;
    assert!(per >= 64, "{per}");
    assert!(s.points()[..s.points().len() - 1]
        .iter()
        .all(|p| p.count == per));
    // Points stay in time order, the first starting at the first sample.
    assert_eq!(s.points()[0].t, 0.0);
    assert!(s.points().windows(2).all(|w| w[0].t < w[1].t));
}

#[test]
fn out_of_order_samples_are_inserted_in_place() {
    let mut s = Series::new(100);
    for t in [1.0, 3.0, 2.0, 0.5] {
        s.push(t, t);
    }
    let ts: Vec<f64> = s.points().iter().map(|p| p.t).collect();
    assert_eq!(ts, vec![0.5, 1.0, 2.0, 3.0]);
}

#[test]
fn exact_quantiles_use_nearest_rank() {
    let v: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(exact_quantile(&v, 0.95), Some(95.0));
    assert_eq!(exact_quantile(&v, 0.0), Some(1.0));
    assert_eq!(exact_quantile(&v, 1.0), Some(100.0));
    assert_eq!(exact_quantile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
    assert_eq!(exact_quantile(&[], 0.5), None);
}

#[test]
fn sketch_quantiles_are_within_one_percent() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut values = Vec::new();
    let mut sk = Sketch::default();
    for i in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Spread over six orders of magnitude, some zeros and negatives.
        let v = match i % 50 {
            0 => 0.0,
            1 => -((seed % 1000) as f64),
            _ => (seed % 1_000_000) as f64 / 10f64.powi((seed % 4) as i32),
        };
        values.push(v);
        sk.add(v);
    }
    assert_eq!(sk.count(), 20_000);
    for q in [0.01, 0.25, 0.5, 0.9, 0.95, 0.99] {
        let exact = exact_quantile(&values, q).unwrap();
        let est = sk.quantile(q).unwrap();
        assert!(
            (est - exact).abs() <= exact.abs() * 0.0101 + 1e-9,
            "q={q}: sketch {est}, exact {exact}"
        );
    }
    assert_eq!(Sketch::default().quantile(0.5), None);
}

#[test]
fn stats_p95_of_a_job_matches_the_exact_value() {
    let mut store = Store::new(64);
    feed_job(&mut store, 3600);
    let busy = store.get(keys::CPU_BUSY).unwrap();
    assert!(busy.points().len() <= 64);
    let mut exact = Vec::new();
    for i in 0..3600 {
        let Payload::Metrics(m) = synthetic::host_metrics(T0 + i * SEC, i) else {
            unreachable!()
        };
        let mut one = Store::new(4);
        ingest::metrics(&mut one, &m);
        exact.push(one.get(keys::CPU_BUSY).unwrap().stats.max);
    }
    let want = exact_quantile(&exact, 0.95).unwrap();
    let got = busy.stats.p95().unwrap();
    assert!((got - want).abs() <= want * 0.0101, "p95 {got} vs {want}");
}

#[test]
fn steps_from_github_replace_the_ones_sluice_saw() {
    let mut store = Store::new(16);
    let s = T0 as i64;
    feed_logs(
        &mut store,
        vec![
            synthetic::step_start("build", s),
            synthetic::step_end("build", s, s + 10, 0, "sluice"),
            synthetic::step_start("running", s + 20),
        ],
    );
    let steps = store.steps.effective();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].status(), StepStatus::Succeeded);
    assert_eq!(steps[1].status(), StepStatus::Running);
    assert!(!store.steps.reported_by_github());
    feed_logs(
        &mut store,
        vec![
            synthetic::step_end("Set up job", s - 5, s, 0, "github_api"),
            synthetic::step_end("Run tests", s, s + 30, 1, "github_api"),
        ],
    );
    let names: Vec<&str> = store
        .steps
        .effective()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, vec!["Set up job", "Run tests"]);
    assert_eq!(store.steps.effective()[1].status(), StepStatus::Failed);
    assert!(store.steps.reported_by_github());
}

#[test]
fn bad_step_records_and_steps_beyond_the_limit_are_counted() {
    let mut store = Store::new(16);
    let mut broken = synthetic::step_start("x", 5);
    broken.attributes.retain(|kv| kv.key != STEP_START_ATTR);
    let Payload::Logs(l) = synthetic::logs(vec![
        broken,
        synthetic::step_start("a", 1),
        synthetic::step_start("b", 2),
        synthetic::step_start("c", 3),
        synthetic::step_end("a", 1, 4, 0, "sluice"),
    ]) else {
        unreachable!()
    };
    let found = ingest::logs(&mut store, &l, 2, 5);
    assert_eq!(
        found.bad_steps, 2,
        "the one without start and `c` beyond max_steps 2"
    );
    assert_eq!(store.steps.effective().len(), 2);
    // Step records are not command output.
    assert!(store.output.by_severity.is_empty());
}

#[test]
fn output_lines_are_counted_by_severity_and_the_last_errors_kept() {
    let mut store = Store::new(16);
    let mut records = Vec::new();
    for i in 0..30 {
        records.push(synthetic::output_line(
            T0 + i,
            "s",
            "ERROR",
            "stderr",
            &format!("error {i}"),
        ));
    }
    records.push(synthetic::output_line(T0, "s", "warning", "stderr", "w"));
    let mut by_number = synthetic::output_line(T0, "s", "", "stdout", "n");
    by_number.severity_number = 17;
    records.push(by_number);
    records.push(synthetic::output_line(
        T0,
        "s",
        "ERROR",
        "stderr",
        &"x".repeat(5000),
    ));
    feed_logs(&mut store, records);
    assert_eq!(store.output.by_severity.get("ERROR"), Some(&32));
    assert_eq!(store.output.by_severity.get("WARN"), Some(&1));
    assert_eq!(store.output.errors_total, 32);
    assert_eq!(store.output.last_errors.len(), 20);
    assert_eq!(
        store.output.last_errors.back().unwrap().text.len(),
        MAX_ERROR_LINE_CHARS
    );
}

#[test]
fn cpu_is_averaged_over_cores_and_loopback_is_not_network() {
    use sluice_pipeline::otlp::{kv_i64, kv_str};
    use sluice_proto::metrics::v1::{
        metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };
    let point = |v: f64, attrs| NumberDataPoint {
        attributes: attrs,
        time_unix_nano: T0,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let mut cpu_points = Vec::new();
    for (cpu, user, idle) in [(0, 0.8, 0.2), (1, 0.2, 0.8)] {
        cpu_points.push(point(
            user,
            vec![
                kv_str("cpu.mode", "user"),
                kv_i64("cpu.logical_number", cpu),
            ],
        ));
        cpu_points.push(point(
            idle,
            vec![
                kv_str("cpu.mode", "idle"),
                kv_i64("cpu.logical_number", cpu),
            ],
        ));
    }
    let gauge = |name: &str, points| Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    };
    let rm = ResourceMetrics {
        scope_metrics: vec![ScopeMetrics {
            metrics: vec![
                gauge("system.cpu.utilization", cpu_points),
                gauge(
                    "system.network.io.rate",
                    vec![
                        point(
                            100.0,
                            vec![
                                kv_str("network.interface.name", "eth0"),
                                kv_str("network.io.direction", "receive"),
                            ],
                        ),
                        point(
                            50.0,
                            vec![
                                kv_str("network.interface.name", "eth1"),
                                kv_str("network.io.direction", "receive"),
                            ],
                        ),
                        point(
                            1e9,
                            vec![
                                kv_str("network.interface.name", "lo"),
                                kv_str("network.io.direction", "receive"),
                            ],
                        ),
                    ],
                ),
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut store = Store::new(16);
    ingest::metrics(&mut store, &[rm]);
    assert!((store.get(keys::CPU_USER).unwrap().stats.max - 50.0).abs() < 1e-9);
    assert!((store.get(keys::CPU_BUSY).unwrap().stats.max - 50.0).abs() < 1e-9);
    assert_eq!(store.get(keys::NET_RX).unwrap().stats.max, 150.0);
}

#[test]
fn processes_are_ranked_and_pruned() {
    let mut p = super::store::Processes::default();
    for pid in 0..2000i64 {
        let e: &mut ProcessStats = p.entry(pid, "exe", "", 1.0);
        e.cpu_sum = pid as f64;
        e.cpu_samples = 1;
        e.rss_peak = (2000 - pid) as f64;
    }
    assert!(p.by_key.len() <= 512);
    assert!(p.pruned > 0);
    let cpu: Vec<i64> = p.top_by_cpu(3).iter().map(|s| s.pid).collect();
    assert_eq!(cpu, vec![1999, 1998, 1997]);
    let rss: Vec<i64> = p.top_by_rss(2).iter().map(|s| s.pid).collect();
    assert_eq!(rss, vec![0, 1]);
}

// ---- report ---------------------------------------------------------------------------------

#[test]
fn report_has_every_section_and_escapes_step_names() {
    let store = job_with_steps(600);
    let r = report_of(&store, DEFAULT_MAX_REPORT_BYTES, None);
    let md = &r.markdown;
    assert!(md.contains("## sluice CI report"));
    for t in SECTION_TITLES {
        assert!(md.contains(&format!("### {t}\n")), "missing {t}");
    }
    assert!(r.dropped.is_empty());
    assert!(md.contains("Job identity not available"));
    assert!(md.contains("❌ failed | 101"));
    assert!(md.contains("⏳ running"));
    assert!(md.contains("| CPU busy (all cores) |"));
    assert!(md.contains("| Memory used |"));
    assert!(md.contains("🔴 red | firing"));
    assert!(md.contains("```mermaid\ngantt\n"));
    assert!(md.contains(":crit, s3,"));
    assert!(
        md.contains("| 300 | node | node \\| tee \\`x\\` |") || md.contains("node \\| tee \\`x\\`")
    );
    // The nasty name: one table row, pipes escaped.
    let row = md
        .lines()
        .find(|l| l.contains("Build: \"release\""))
        .unwrap();
    assert!(row.contains("\\| tee"), "{row}");
    assert_eq!(row.matches(" | ").count(), 5, "{row}");
    // The error line is in a fence its backticks cannot close.
    assert!(md.contains("````text\n"), "{md}");
    // No charts were rendered here: each says why.
    assert!(
        md.contains("CPU utilization (`cpu.png`) not available") || md.contains("not available")
    );
}

#[test]
fn sections_that_cannot_be_filled_say_why() {
    let store = Store::new(16);
    let r = report_of(&store, DEFAULT_MAX_REPORT_BYTES, None);
    let n = r.markdown.matches("_Not available: ").count();
    assert!(n >= 7, "{}", r.markdown);
    assert!(r.markdown.contains("no step records were received"));
    assert!(r.markdown.contains("no host metrics were received"));
    assert!(r.markdown.contains("no SLI alerts fired"));
}

#[test]
fn the_budget_drops_the_least_useful_sections_first_and_says_so() {
    let mut store = job_with_steps(600);
    let base = T0 as i64;
    let mut records = Vec::new();
    for i in 0..400i64 {
        let name = format!("step {i} {}", "long name ".repeat(8));
        records.push(synthetic::step_start(&name, base + i));
        records.push(synthetic::step_end(
            &name,
            base + i,
            base + i + 5,
            0,
            "sluice",
        ));
    }
    feed_logs(&mut store, records);
    for i in 0..20 {
        store.output.record(
            "ERROR",
            1.0,
            "s",
            &format!("error {i} {}", "e".repeat(300)),
            20,
        );
    }
    let full = report_of(&store, DEFAULT_MAX_REPORT_BYTES, None);
    assert!(full.dropped.is_empty());
    let budget = full.markdown.len() - 8000;
    let r = report_of(&store, budget, None);
    assert!(
        r.markdown.len() <= budget,
        "{} > {budget}",
        r.markdown.len()
    );
    // The timeline (largest of the least useful) goes; what fits again comes back.
    assert_eq!(r.dropped, vec!["Timeline"], "{}", r.markdown);
    assert!(r.markdown.contains("### Last error lines\n\nThe last 20"));
    // Tighter: the least useful go first, the step table is shortened rather than dropped.
    let tight = report_of(&store, 12_000, None);
    assert!(tight.markdown.len() <= 12_000);
    assert!(
        tight.dropped.contains(&"Last error lines"),
        "{:?}",
        tight.dropped
    );
    assert!(tight.dropped.contains(&"Timeline"));
    assert!(!tight.dropped.contains(&"Steps"));
    assert!(tight
        .markdown
        .contains("rows left out to stay under `max_report_bytes`"));
    assert!(
        tight.markdown.contains("| CPU busy (all cores) |"),
        "{}",
        tight.markdown
    );
    assert!(r
        .markdown
        .contains("### Timeline\n\n_Omitted to keep this report under"));
    assert!(r.markdown.contains("### Steps\n"), "steps are kept longest");
    // A tiny budget keeps the heading and cuts, never exceeds.
    let tiny = report_of(&store, 4096, None);
    assert!(tiny.markdown.len() <= 4096);
    assert!(tiny.markdown.starts_with("## sluice CI report"));
}

#[test]
fn a_six_hour_job_at_one_second_stays_bounded_and_under_the_default_budget() {
    let mut store = job_with_steps(6 * 3600);
    for (k, s) in &store.series {
        assert!(s.points().len() <= 2000, "{k}: {}", s.points().len());
    }
    assert_eq!(store.get(keys::CPU_BUSY).unwrap().stats.count, 6 * 3600);
    // The rustc pid changes every 10 minutes: 36 processes plus two.
    assert_eq!(store.processes.by_key.len(), 38);
    store
        .output
        .record("ERROR", 1.0, "s", &"e".repeat(10_000), 20);
    let r = report_of(&store, DEFAULT_MAX_REPORT_BYTES, None);
    assert!(r.markdown.len() < DEFAULT_MAX_REPORT_BYTES);
    assert!(r.dropped.is_empty());
}

#[test]
fn images_are_inline_only_with_a_base_url() {
    let store = job_with_steps(120);
    let dir = tempfile::tempdir().unwrap();
    let identity = JobIdentity::default();
    let mut s = settings(dir.path(), Theme::Light);
    render_to_dir(&store, &s, &identity, (T0 + 600 * SEC) as i64).unwrap();
    let md = std::fs::read_to_string(dir.path().join(REPORT_MD)).unwrap();
    assert!(!md.contains("!["), "no inline image without image_base_url");
    assert!(md.contains("](cpu.png)"));
    s.image_base_url = Some("https://example.com/run/1/".into());
    render_to_dir(&store, &s, &identity, (T0 + 600 * SEC) as i64).unwrap();
    let md = std::fs::read_to_string(dir.path().join(REPORT_MD)).unwrap();
    assert!(md.contains("](https://example.com/run/1/cpu.png)"), "{md}");
    assert!(md.contains("](https://example.com/run/1/steps.png)"));
}

#[test]
fn identity_comes_with_links_when_plausible() {
    let id = JobIdentity {
        repository: Some("octo/sluice".into()),
        workflow: Some("CI | main".into()),
        job: Some("build".into()),
        run_id: Some("123".into()),
        sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
        server_url: None,
    };
    assert_eq!(
        id.run_url().unwrap(),
        "https://github.com/octo/sluice/actions/runs/123"
    );
    assert_eq!(
        id.commit_url().unwrap(),
        "https://github.com/octo/sluice/commit/0123456789abcdef0123456789abcdef01234567"
    );
    let bad = JobIdentity {
        repository: Some("octo/x) [y".into()),
        run_id: Some("1 2".into()),
        ..id.clone()
    };
    assert!(bad.run_url().is_none());
    let store = Store::new(4);
    let charts = Charts::default();
    let r = build_report(&ReportInput {
        store: &store,
        charts: &charts,
        identity: &id,
        title: "t",
        image_base_url: None,
        top_processes: 5,
        max_report_bytes: DEFAULT_MAX_REPORT_BYTES,
        theme: Theme::Dark,
        now_nanos: 0,
    });
    assert!(
        r.markdown.contains("workflow CI \\| main"),
        "{}",
        r.markdown
    );
    assert!(r
        .markdown
        .contains("run [123](https://github.com/octo/sluice/actions/runs/123)"));
    assert!(r.markdown.contains("commit [0123456789ab]("));
}

// ---- files ----------------------------------------------------------------------------------

fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn every_chart_is_a_png_of_the_configured_size_in_both_themes() {
    let store = job_with_steps(900);
    for (theme, bg) in [
        (Theme::Light, [255u8, 255, 255]),
        (Theme::Dark, [13, 17, 23]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let w = render_to_dir(
            &store,
            &settings(dir.path(), theme),
            &JobIdentity::default(),
            (T0 + 900 * SEC) as i64,
        )
        .unwrap();
        assert_eq!(
            w.charts,
            vec![
                "cpu.png",
                "memory.png",
                "network.png",
                "disk.png",
                "filesystem.png",
                "steps.png"
            ]
        );
        for name in [
            "cpu.png",
            "memory.png",
            "network.png",
            "disk.png",
            "filesystem.png",
        ] {
            let (width, height, pixels) = decode(&dir.path().join(name));
            assert_eq!((width, height), (1000, 400), "{name}");
            assert_eq!(
                &pixels[..3],
                &bg,
                "{name}: background of the {theme:?} theme"
            );
            // Something was drawn: many distinct colours (text, lines, areas).
            let distinct: std::collections::HashSet<&[u8]> = pixels.chunks(3).collect();
            assert!(distinct.len() > 20, "{name}: {} colours", distinct.len());
        }
        let (sw, sh, _) = decode(&dir.path().join("steps.png"));
        assert_eq!(sw, 1000);
        assert!(sh >= 200);
        // No temporary file is left behind.
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(!name.starts_with('.'), "left over: {name}");
        }
    }
}

/// `store` rendered with default settings and `theme` into a new folder.
fn rendered(store: &Store, theme: Theme) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    render_to_dir(
        store,
        &settings(dir.path(), theme),
        &JobIdentity::default(),
        0,
    )
    .unwrap();
    dir
}

#[test]
fn the_cpu_chart_shows_the_burst() {
    // Stacked user/system/iowait: during a burst the stack reaches far higher up the chart.
    let dir = rendered(&job_with_steps(600), Theme::Light);
    let (w, h, px) = decode(&dir.path().join("cpu.png"));
    let column_fill = |x: u32| {
        (0..h)
            .filter(|&y| {
                let i = ((y * w + x) * 3) as usize;
                let p = &px[i..i + 3];
                // The user layer's tint: clearly blue.
                p[2] > 200 && p[0] < 150
            })
            .count()
    };
    // The burst is the first 90 s of 600 (left part); the quiet part is the right.
    let burst = column_fill(150);
    let quiet = column_fill(800);
    assert!(
        burst > quiet * 2,
        "burst column {burst} px, quiet {quiet} px"
    );
}

#[test]
fn html_is_self_contained() {
    let dir = rendered(&job_with_steps(300), Theme::Dark);
    let html = std::fs::read_to_string(dir.path().join(REPORT_HTML)).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.to_ascii_lowercase().contains("<script"));
    assert!(!html.contains("<link"));
    assert!(!html.contains("url("));
    assert_eq!(html.matches("<img src=\"data:image/png;base64,").count(), 6);
    assert!(!html.contains("src=\"http"));
    assert!(html.contains("&lt;b&gt; boom"));
    assert!(!html.contains("<b> boom"));
    for section in [
        "Steps",
        "Alerts",
        "Resource usage",
        "Charts",
        "Top processes",
        "Command output",
        "Last error lines",
    ] {
        assert!(html.contains(&format!("<h2>{section}</h2>")), "{section}");
    }
}

#[test]
fn config_validation_rejects_bad_values() {
    use sluice_pipeline::Validate;
    let ok = SummaryExporterConfig::default();
    assert!(ok.validate().is_ok());
    for bad in [
        SummaryExporterConfig {
            image_base_url: Some("ftp://x".into()),
            ..ok.clone()
        },
        SummaryExporterConfig {
            image_base_url: Some("https://x/a b".into()),
            ..ok.clone()
        },
        SummaryExporterConfig {
            max_report_bytes: 10,
            ..ok.clone()
        },
        SummaryExporterConfig {
            max_points_per_series: 3,
            ..ok.clone()
        },
        SummaryExporterConfig {
            width: 10,
            ..ok.clone()
        },
        SummaryExporterConfig {
            output_dir: Some("".into()),
            ..ok.clone()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}
