//! `report.md` and `report.html` from the store and the rendered charts. Every section is built
//! in both forms from the same data; the Markdown is kept under `max_report_bytes` by dropping
//! the least useful sections first (each dropped section keeps its heading and says so).

use std::fmt::Write as _;

use base64::Engine as _;

use super::charts::Charts;
use super::config::Theme;
use super::escape::{html as h, md_cell, md_code_block, mermaid_text, truncate_bytes};
use super::store::{keys, Series, StepStatus, Store};
use super::units::{bytes, clock, date_time, duration, number};

/// Mermaid refuses diagrams over 50,000 characters; each gantt block stays under this.
pub const MERMAID_BLOCK_CHARS: usize = 45_000;
/// Rows of the step table in the Markdown (the HTML has them all).
pub const MAX_STEP_ROWS: usize = 300;
/// Rows of the alert table in the Markdown.
pub const MAX_ALERT_ROWS: usize = 50;

/// Who ran the job, from the `GITHUB_*` environment variables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobIdentity {
    pub repository: Option<String>,
    pub workflow: Option<String>,
    pub job: Option<String>,
    pub run_id: Option<String>,
    pub sha: Option<String>,
    pub server_url: Option<String>,
}

impl JobIdentity {
    /// Reads `GITHUB_REPOSITORY`, `GITHUB_WORKFLOW`, `GITHUB_JOB`, `GITHUB_RUN_ID`,
    /// `GITHUB_SHA` and `GITHUB_SERVER_URL` (empty values count as absent).
    pub fn from_env() -> JobIdentity {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        JobIdentity {
            repository: get("GITHUB_REPOSITORY"),
            workflow: get("GITHUB_WORKFLOW"),
            job: get("GITHUB_JOB"),
            run_id: get("GITHUB_RUN_ID"),
            sha: get("GITHUB_SHA"),
            server_url: get("GITHUB_SERVER_URL"),
        }
    }

    fn server(&self) -> &str {
        self.server_url
            .as_deref()
            .filter(|u| {
                (u.starts_with("https://") || u.starts_with("http://"))
                    && u.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ":/.-_".contains(c))
            })
            .unwrap_or("https://github.com")
            .trim_end_matches('/')
    }

    fn repo_ok(&self) -> Option<&str> {
        self.repository.as_deref().filter(|r| {
            r.contains('/')
                && r.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        })
    }

    /// The run's URL when repository and run id are plausible.
    pub fn run_url(&self) -> Option<String> {
        let repo = self.repo_ok()?;
        let run = self
            .run_id
            .as_deref()
            .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()))?;
        Some(format!("{}/{repo}/actions/runs/{run}", self.server()))
    }

    /// The commit's URL when repository and sha are plausible.
    pub fn commit_url(&self) -> Option<String> {
        let repo = self.repo_ok()?;
        let sha = self
            .sha
            .as_deref()
            .filter(|s| s.len() >= 7 && s.chars().all(|c| c.is_ascii_hexdigit()))?;
        Some(format!("{}/{repo}/commit/{sha}", self.server()))
    }
}

/// What the report is made from.
pub struct ReportInput<'a> {
    pub store: &'a Store,
    pub charts: &'a Charts,
    pub identity: &'a JobIdentity,
    pub title: &'a str,
    pub image_base_url: Option<&'a str>,
    pub top_processes: usize,
    pub max_report_bytes: usize,
    pub theme: Theme,
    /// Report time, unix nanoseconds (end of running steps).
    pub now_nanos: i64,
}

/// The two documents.
#[derive(Debug, Clone)]
pub struct Report {
    pub markdown: String,
    pub html: String,
    /// Titles of the sections dropped from the Markdown to meet the budget.
    pub dropped: Vec<&'static str>,
}

/// One section in both forms.
struct Section {
    title: &'static str,
    /// Higher is more useful: kept longer under the budget. `u8::MAX` is never dropped.
    priority: u8,
    md: String,
    /// Shorter Markdown forms, longest first, tried before the section is dropped.
    shorter: Vec<String>,
    html: String,
}

impl Section {
    /// A section without shorter forms.
    fn new(title: &'static str, priority: u8, (md, html): (String, String)) -> Section {
        Section {
            title,
            priority,
            md,
            shorter: Vec::new(),
            html,
        }
    }
}

/// `why` is the exporter's own text (Markdown allowed), never data.
fn not_available(why: &str) -> (String, String) {
    (
        format!("_Not available: {why}._\n"),
        format!("<p class=\"na\">Not available: {}.</p>\n", h(why)),
    )
}

fn pct(v: f64) -> String {
    format!("{} %", number(v))
}

fn rate(v: f64) -> String {
    format!("{}/s", bytes(v))
}

fn header(input: &ReportInput<'_>) -> Section {
    let id = input.identity;
    let store = input.store;
    let mut parts_md = Vec::new();
    let mut parts_html = Vec::new();
    let mut add = |label: &str, value: Option<&String>, url: Option<String>| {
        if let Some(v) = value {
            let shown = if label == "commit" {
                v.chars().take(12).collect::<String>()
            } else {
                v.clone()
            };
            match url {
                Some(u) => {
                    parts_md.push(format!("{label} [{}]({u})", md_cell(&shown, 100)));
                    parts_html.push(format!("{label} <a href=\"{}\">{}</a>", h(&u), h(&shown)));
                }
                None => {
                    parts_md.push(format!("{label} {}", md_cell(&shown, 100)));
                    parts_html.push(format!("{label} {}", h(&shown)));
                }
            }
        }
    };
    add("repository", id.repository.as_ref(), None);
    add("workflow", id.workflow.as_ref(), None);
    add("job", id.job.as_ref(), None);
    add("run", id.run_id.as_ref(), id.run_url());
    add("commit", id.sha.as_ref(), id.commit_url());
    let title = input.title;
    let mut md = format!("## {}\n\n", md_cell(title, 200));
    let mut html = format!("<h1>{}</h1>\n", h(title));
    if parts_md.is_empty() {
        md.push_str("_Job identity not available: no `GITHUB_*` variables were set._\n\n");
        html.push_str(
            "<p class=\"na\">Job identity not available: no GITHUB_* variables were set.</p>\n",
        );
    } else {
        let _ = writeln!(md, "{}\n", parts_md.join(" · "));
        let _ = writeln!(html, "<p>{}</p>", parts_html.join(" · "));
    }
    if let (Some(a), Some(b)) = (store.first_t, store.last_t) {
        let line = format!(
            "Observed from {} to {} ({}).",
            date_time(a),
            clock(b),
            duration(b - a)
        );
        let _ = writeln!(md, "{line}\n");
        let _ = writeln!(html, "<p>{}</p>", h(&line));
    }
    let steps = store.steps.effective();
    if !steps.is_empty() {
        let failed = steps
            .iter()
            .filter(|s| s.status() == StepStatus::Failed)
            .count();
        let running = steps
            .iter()
            .filter(|s| s.status() == StepStatus::Running)
            .count();
        let line = format!(
            "{} {} step(s): {} failed, {} still running.",
            if failed > 0 { "❌" } else { "✅" },
            steps.len(),
            failed,
            running
        );
        let _ = writeln!(md, "{line}\n");
        let _ = writeln!(html, "<p>{}</p>", h(&line));
    }
    Section::new("Summary", u8::MAX, (md, html))
}

fn status_text(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Succeeded => "✅ succeeded",
        StepStatus::Failed => "❌ failed",
        StepStatus::Running => "⏳ running",
    }
}

/// The Markdown step table with at most `limit` rows, plus every failed or running step (up to
/// `limit` more), and a line saying how many are only in `report.html`.
fn steps_table_md(input: &ReportInput<'_>, limit: usize) -> String {
    let steps = input.store.steps.effective();
    let mut md = String::from("| # | Step | Status | Exit code | Started (UTC) | Duration |\n|---:|---|---|---:|---|---:|\n");
    let mut shown = 0;
    let mut extra = 0;
    for (i, s) in steps.iter().enumerate() {
        let notable = s.status() != StepStatus::Succeeded;
        if i >= limit && !(notable && extra < limit) {
            continue;
        }
        if i >= limit {
            extra += 1;
        }
        shown += 1;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            i + 1,
            md_cell(&s.name, 120),
            status_text(s.status()),
            s.exit_code.map_or("–".to_string(), |c| c.to_string()),
            clock(s.start_unix_nano as f64 / 1e9),
            duration(s.duration_secs(input.now_nanos))
        );
    }
    if steps.len() > shown {
        let _ = writeln!(
            md,
            "\n_{} more step(s) are listed in `report.html`{}._",
            steps.len() - shown,
            if limit < MAX_STEP_ROWS {
                " (rows left out to stay under `max_report_bytes`)"
            } else {
                ""
            }
        );
    }
    let source = if input.store.steps.reported_by_github() {
        "Step timings from GitHub's API."
    } else {
        "Step timings as `sluice ci` saw them."
    };
    let _ = writeln!(md, "\n{source}");
    if input.store.steps.dropped > 0 {
        let line = format!(
            "{} step record(s) were ignored: no name or start time, or more than `max_steps` steps.",
            input.store.steps.dropped
        );
        let _ = writeln!(md, "\n_{}_", md_cell(&line, 300));
    }
    md
}

fn steps_section(input: &ReportInput<'_>) -> Section {
    let steps = input.store.steps.effective();
    if steps.is_empty() {
        return Section::new(
            "Steps",
            90,
            not_available("no step records were received (steps are recorded by `sluice ci step`; `sluice ci -- <command>` runs one)"),
        );
    }
    let mut html = String::from("<table><tr><th>#</th><th>Step</th><th>Status</th><th>Exit code</th><th>Started (UTC)</th><th>Duration</th></tr>\n");
    for (i, s) in steps.iter().enumerate() {
        let _ = writeln!(
            html,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            match s.status() {
                StepStatus::Failed => "failed",
                StepStatus::Running => "running",
                StepStatus::Succeeded => "ok",
            },
            i + 1,
            h(&s.name),
            status_text(s.status()),
            s.exit_code.map_or("–".to_string(), |c| c.to_string()),
            clock(s.start_unix_nano as f64 / 1e9),
            duration(s.duration_secs(input.now_nanos))
        );
    }
    html.push_str("</table>\n");
    let source = if input.store.steps.reported_by_github() {
        "Step timings from GitHub's API."
    } else {
        "Step timings as `sluice ci` saw them."
    };
    let _ = writeln!(html, "<p>{}</p>", h(source));
    if input.store.steps.dropped > 0 {
        let line = format!(
            "{} step record(s) were ignored: no name or start time, or more than `max_steps` steps.",
            input.store.steps.dropped
        );
        let _ = writeln!(html, "<p class=\"na\">{}</p>", h(&line));
    }
    let shorter = [100, 30, 10]
        .into_iter()
        .filter(|&n| n < steps.len())
        .map(|n| steps_table_md(input, n))
        .collect();
    Section {
        title: "Steps",
        priority: 90,
        md: steps_table_md(input, MAX_STEP_ROWS),
        shorter,
        html,
    }
}

fn alerts_section(input: &ReportInput<'_>) -> Section {
    let a = &input.store.alerts;
    let (md, html) = if a.total == 0 {
        not_available(
            "no SLI alerts fired (alerts come from the `sli` processor, when the pipeline has one)",
        )
    } else {
        let fired: Vec<String> = a
            .fired
            .iter()
            .map(|(sev, n)| format!("{} {}", n, md_cell(sev, 20)))
            .collect();
        let line = format!(
            "{} alert event(s); fired: {}.",
            a.total,
            if fired.is_empty() {
                "none".to_string()
            } else {
                fired.join(", ")
            }
        );
        let mut md = format!("{line}\n\n| Time (UTC) | SLI | Severity | State | Value | Threshold |\n|---|---|---|---|---:|---:|\n");
        let mut html = format!("<p>{}</p>\n<table><tr><th>Time (UTC)</th><th>SLI</th><th>Severity</th><th>State</th><th>Value</th><th>Threshold</th></tr>\n", h(&line));
        let opt = |v: Option<f64>| v.map_or("–".to_string(), number);
        let skip = a.last.len().saturating_sub(MAX_ALERT_ROWS);
        for (i, al) in a.last.iter().enumerate() {
            let icon = match (al.state.as_str(), al.severity.as_str()) {
                ("resolved", _) => "🟢",
                (_, "red") => "🔴",
                (_, "orange") => "🟠",
                (_, "yellow") => "🟡",
                _ => "⚪",
            };
            if i >= skip {
                let _ = writeln!(
                    md,
                    "| {} | {} | {icon} {} | {} | {} | {} |",
                    clock(al.t),
                    md_cell(&al.sli_name, 80),
                    md_cell(&al.severity, 20),
                    md_cell(&al.state, 20),
                    opt(al.current_value),
                    opt(al.threshold)
                );
            }
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{icon} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                clock(al.t),
                h(&al.sli_name),
                h(&al.severity),
                h(&al.state),
                opt(al.current_value),
                opt(al.threshold)
            );
        }
        html.push_str("</table>\n");
        if a.total as usize > a.last.len() || skip > 0 {
            let _ = writeln!(
                md,
                "\n_Only the last {} alert events are listed._",
                a.last.len() - skip
            );
        }
        (md, html)
    };
    Section::new("Alerts", 85, (md, html))
}

fn stat_row(name: &str, s: &Series, fmt: fn(f64) -> String) -> [String; 6] {
    let st = &s.stats;
    [
        name.to_string(),
        fmt(st.min),
        st.mean().map_or("–".to_string(), fmt),
        st.p95().map_or("–".to_string(), fmt),
        fmt(st.max),
        st.count.to_string(),
    ]
}

fn resources_section(input: &ReportInput<'_>) -> Section {
    let store = input.store;
    let mut rows: Vec<[String; 6]> = Vec::new();
    type Row = (&'static str, &'static str, fn(f64) -> String);
    let fixed: [Row; 13] = [
        (keys::CPU_BUSY, "CPU busy (all cores)", pct),
        (keys::CPU_USER, "CPU user", pct),
        (keys::CPU_SYSTEM, "CPU system", pct),
        (keys::CPU_IOWAIT, "CPU iowait", pct),
        (keys::CPU_OTHER, "CPU other (nice, irq, steal)", pct),
        (keys::LOAD_1M, "Load average (1m)", number),
        (keys::MEM_USED, "Memory used", bytes),
        (keys::MEM_CACHED, "Memory cached", bytes),
        (keys::MEM_TOTAL, "Memory total", bytes),
        (keys::NET_RX, "Network received", rate),
        (keys::NET_TX, "Network transmitted", rate),
        (keys::DISK_READ, "Disk read", rate),
        (keys::DISK_WRITE, "Disk written", rate),
    ];
    for (key, name, fmt) in fixed {
        if let Some(s) = store.get(key) {
            rows.push(stat_row(name, s, fmt));
        }
    }
    for (mount, s) in store.filesystems() {
        rows.push(stat_row(&format!("Filesystem {mount} used"), s, pct));
    }
    let (md, html) = if rows.is_empty() {
        not_available(
            "no host metrics were received (is the `procfs` receiver in the metrics pipeline?)",
        )
    } else {
        let mut md = String::from(
            "| Metric | Min | Avg | p95 | Max | Samples |\n|---|---:|---:|---:|---:|---:|\n",
        );
        let mut html = String::from("<table><tr><th>Metric</th><th>Min</th><th>Avg</th><th>p95</th><th>Max</th><th>Samples</th></tr>\n");
        for r in &rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                md_cell(&r[0], 100),
                r[1],
                r[2],
                r[3],
                r[4],
                r[5]
            );
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                h(&r[0]),
                h(&r[1]),
                h(&r[2]),
                h(&r[3]),
                h(&r[4]),
                h(&r[5])
            );
        }
        html.push_str("</table>\n");
        let note = "CPU in percent of all cores; p95 within 1 %.";
        let _ = writeln!(md, "\n{note}");
        let _ = writeln!(html, "<p>{}</p>", h(note));
        if store.ignored_filesystems > 0 {
            let line = format!(
                "Only the first {} filesystems are shown.",
                super::store::MAX_FILESYSTEMS
            );
            let _ = writeln!(md, "\n_{line}_");
            let _ = writeln!(html, "<p class=\"na\">{}</p>", h(&line));
        }
        (md, html)
    };
    Section::new("Resource usage", 80, (md, html))
}

fn charts_section(input: &ReportInput<'_>) -> Section {
    let charts = input.charts;
    let mut md = String::new();
    let mut html = String::new();
    match input.image_base_url {
        Some(base) => {
            let base = base.trim_end_matches('/');
            for c in &charts.drawn {
                let _ = writeln!(md, "![{}]({base}/{})\n", md_cell(&c.title, 100), c.file);
            }
        }
        None if !charts.drawn.is_empty() => {
            md.push_str("Charts (GitHub does not show images from a step summary without an `image_base_url`; `report.html` in the run's artifacts shows them all):\n\n");
            for c in &charts.drawn {
                let _ = writeln!(md, "- [{}]({})", md_cell(&c.title, 100), c.file);
            }
            md.push('\n');
        }
        None => {}
    }
    let engine = base64::engine::general_purpose::STANDARD;
    for c in &charts.drawn {
        let _ = writeln!(
            html,
            "<figure><img src=\"data:image/png;base64,{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            engine.encode(&c.png),
            h(&c.title),
            h(&c.title)
        );
    }
    for m in &charts.missing {
        let _ = writeln!(
            md,
            "- _{} (`{}`) not available: {}._",
            m.title, m.file, m.why
        );
        let _ = writeln!(
            html,
            "<p class=\"na\">{} ({}) not available: {}.</p>",
            h(m.title),
            h(m.file),
            h(&m.why)
        );
    }
    Section::new("Charts", 95, (md, html))
}

/// The Mermaid gantt blocks of `steps`, each under [`MERMAID_BLOCK_CHARS`] characters.
pub fn gantt_blocks(store: &Store, now_nanos: i64) -> Vec<String> {
    let steps = store.steps.effective();
    let mut lines = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        let tag = match s.status() {
            StepStatus::Succeeded => "done",
            StepStatus::Failed => "crit",
            StepStatus::Running => "active",
        };
        let start_ms = s.start_unix_nano / 1_000_000;
        let end_ms = (s.end_unix_nano.unwrap_or(now_nanos) / 1_000_000).max(start_ms + 1);
        lines.push(format!(
            "    {} :{tag}, s{}, {start_ms}, {end_ms}\n",
            mermaid_text(&s.name, 80),
            i + 1
        ));
    }
    let head = |part: usize| {
        let title = if part == 1 {
            "Steps".to_string()
        } else {
            format!("Steps (part {part})")
        };
        // `dateFormat x`: task dates are Unix milliseconds, an input format Mermaid's gantt
        // documents (its dates go through dayjs); `axisFormat` is a d3 time format, shown in the
        // reader's time zone. Tasks are `title :tag, id, start, end`, both ends absolute.
        format!("gantt\n    title {title}\n    dateFormat x\n    axisFormat %H:%M:%S\n    section Steps\n")
    };
    let mut blocks = Vec::new();
    let mut cur = head(1);
    let mut cur_chars = cur.chars().count();
    let mut in_block = 0;
    for l in lines {
        let n = l.chars().count();
        if in_block > 0 && cur_chars + n > MERMAID_BLOCK_CHARS {
            blocks.push(std::mem::take(&mut cur));
            cur = head(blocks.len() + 1);
            cur_chars = cur.chars().count();
            in_block = 0;
        }
        cur.push_str(&l);
        cur_chars += n;
        in_block += 1;
    }
    if in_block > 0 {
        blocks.push(cur);
    }
    blocks
}

fn timeline_section(input: &ReportInput<'_>) -> Section {
    let blocks = gantt_blocks(input.store, input.now_nanos);
    let (md, html) = if blocks.is_empty() {
        not_available("no step records were received")
    } else {
        let mut md = String::new();
        for b in &blocks {
            let _ = writeln!(md, "```mermaid\n{b}```\n");
        }
        let html = if input.charts.drawn.iter().any(|c| c.file == "steps.png") {
            "<p>The timeline is the Steps chart above.</p>\n".to_string()
        } else {
            String::new()
        };
        (md, html)
    };
    Section::new("Timeline", 50, (md, html))
}

fn processes_section(input: &ReportInput<'_>) -> Section {
    let p = &input.store.processes;
    let n = input.top_processes;
    let by_cpu = p.top_by_cpu(n);
    let by_rss = p.top_by_rss(n);
    let (md, html) = if n == 0 {
        not_available("`top_processes` is 0")
    } else if by_cpu.is_empty() && by_rss.is_empty() {
        not_available("no per-process metrics were received (the `procfs` receiver's `top_processes` reports them)")
    } else {
        let mut md = String::new();
        let mut html = String::new();
        if !by_cpu.is_empty() {
            md.push_str("**By CPU**\n\n| PID | Process | Command line | Avg CPU | Peak CPU | Seen for |\n|---:|---|---|---:|---:|---:|\n");
            html.push_str("<h3>By CPU</h3>\n<table><tr><th>PID</th><th>Process</th><th>Command line</th><th>Avg CPU</th><th>Peak CPU</th><th>Seen for</th></tr>\n");
            for s in &by_cpu {
                let avg = pct(s.cpu_sum / s.cpu_samples.max(1) as f64 * 100.0);
                let peak = pct(s.cpu_peak * 100.0);
                let seen = duration(s.last_seen - s.first_seen);
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {avg} | {peak} | {seen} |",
                    s.pid,
                    md_cell(&s.executable, 40),
                    md_cell(&s.command_line, 80)
                );
                let _ = writeln!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{avg}</td><td>{peak}</td><td>{seen}</td></tr>",
                    s.pid,
                    h(&s.executable),
                    h(&s.command_line.chars().take(300).collect::<String>())
                );
            }
            html.push_str("</table>\n");
            md.push_str("\nCPU in percent of one core.\n\n");
        }
        if !by_rss.is_empty() {
            md.push_str("**By peak memory (RSS)**\n\n| PID | Process | Command line | Peak RSS |\n|---:|---|---|---:|\n");
            html.push_str("<h3>By peak memory (RSS)</h3>\n<table><tr><th>PID</th><th>Process</th><th>Command line</th><th>Peak RSS</th></tr>\n");
            for s in &by_rss {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    s.pid,
                    md_cell(&s.executable, 40),
                    md_cell(&s.command_line, 80),
                    bytes(s.rss_peak)
                );
                let _ = writeln!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    s.pid,
                    h(&s.executable),
                    h(&s.command_line.chars().take(300).collect::<String>()),
                    bytes(s.rss_peak)
                );
            }
            html.push_str("</table>\n");
        }
        (md, html)
    };
    Section::new("Top processes", 60, (md, html))
}

fn output_section(input: &ReportInput<'_>) -> Section {
    let o = &input.store.output;
    let (md, html) = if o.by_severity.is_empty() {
        not_available(
            "no command output was received (`sluice ci` captures it into the logs pipeline)",
        )
    } else {
        let mut md = String::from("| Severity | Lines |\n|---|---:|\n");
        let mut html = String::from("<table><tr><th>Severity</th><th>Lines</th></tr>\n");
        let order = ["FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
        let mut sevs: Vec<(&String, &u64)> = o.by_severity.iter().collect();
        sevs.sort_by_key(|(s, _)| order.iter().position(|o| o == s).unwrap_or(order.len()));
        for (s, n) in sevs {
            let _ = writeln!(md, "| {} | {n} |", md_cell(s, 30));
            let _ = writeln!(html, "<tr><td>{}</td><td>{n}</td></tr>", h(s));
        }
        html.push_str("</table>\n");
        (md, html)
    };
    Section::new("Command output", 70, (md, html))
}

fn errors_section(input: &ReportInput<'_>) -> Section {
    let o = &input.store.output;
    let (md, html) = if o.last_errors.is_empty() {
        if o.by_severity.is_empty() {
            not_available("no command output was received")
        } else {
            let line = "No error lines in the command output.";
            (format!("{line}\n"), format!("<p>{line}</p>\n"))
        }
    } else {
        let mut body = String::new();
        for e in &o.last_errors {
            let step = if e.step.is_empty() {
                String::new()
            } else {
                format!(" [{}]", e.step.replace(['\n', '\r'], " "))
            };
            let text = e.text.replace(['\r', '\n'], " ");
            let _ = writeln!(body, "{}{step} {text}", clock(e.t));
        }
        let body = body.trim_end();
        let intro = format!(
            "The last {} of {} error line(s):",
            o.last_errors.len(),
            o.errors_total
        );
        (
            format!("{intro}\n\n{}", md_code_block("text", body)),
            format!("<p>{}</p>\n<pre>{}</pre>\n", h(&intro), h(body)),
        )
    };
    Section::new("Last error lines", 40, (md, html))
}

fn dropped_md(title: &str, budget: usize) -> String {
    format!("### {title}\n\n_Omitted to keep this report under {budget} bytes (`max_report_bytes`); `report.html` has it._\n\n")
}

fn section_md(s: &Section) -> String {
    if s.priority == u8::MAX {
        format!("{}\n", s.md)
    } else {
        format!("### {}\n\n{}\n", s.title, s.md)
    }
}

const CSS_LIGHT: &str = "body{background:#fff;color:#24292f}a{color:#0969da}th,td{border:1px solid #d0d7de}th{background:#f6f8fa}pre,code{background:#f6f8fa}.na{color:#57606a}tr.failed td{background:#ffebe9}tr.running td{background:#fff8c5}";
const CSS_DARK: &str = "body{background:#0d1117;color:#e6edf3}a{color:#58a6ff}th,td{border:1px solid #30363d}th{background:#161b22}pre,code{background:#161b22}.na{color:#8b949e}tr.failed td{background:#3d1418}tr.running td{background:#3a2e00}";
const CSS: &str = "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1060px;margin:24px auto;padding:0 16px;line-height:1.45}table{border-collapse:collapse;margin:8px 0}th,td{padding:4px 10px;text-align:left;vertical-align:top}td code{white-space:pre-wrap;word-break:break-all}pre{padding:10px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}figure{margin:16px 0}img{max-width:100%;height:auto}figcaption{font-size:90%}";

/// The titles of the report's sections after its header, in order (each a `### ` heading; one
/// dropped under the budget keeps its heading).
pub const SECTION_TITLES: [&str; 8] = [
    "Steps",
    "Alerts",
    "Resource usage",
    "Charts",
    "Timeline",
    "Top processes",
    "Command output",
    "Last error lines",
];

/// Builds both documents.
pub fn build(input: &ReportInput<'_>) -> Report {
    let sections = [
        header(input),
        steps_section(input),
        alerts_section(input),
        resources_section(input),
        charts_section(input),
        timeline_section(input),
        processes_section(input),
        output_section(input),
        errors_section(input),
    ];
    debug_assert!(sections[1..].iter().map(|s| s.title).eq(SECTION_TITLES));
    let budget = input.max_report_bytes;
    let footer = "\n---\n_Generated by sluice's `summary` exporter._\n";
    // Each section's Markdown forms, longest first, the last one saying it was omitted.
    let forms: Vec<Vec<String>> = sections
        .iter()
        .map(|s| {
            let mut f = vec![section_md(s)];
            if s.priority != u8::MAX {
                f.extend(
                    s.shorter
                        .iter()
                        .map(|md| format!("### {}\n\n{}\n", s.title, md)),
                );
                let omitted = dropped_md(s.title, budget);
                if f.last().is_some_and(|l| omitted.len() < l.len()) {
                    f.push(omitted);
                }
            }
            f
        })
        .collect();
    let mut level = vec![0usize; sections.len()];
    let total = |level: &[usize]| {
        level
            .iter()
            .zip(&forms)
            .map(|(&l, f)| f[l].len())
            .sum::<usize>()
            + footer.len()
    };
    let mut by_priority: Vec<usize> = (0..sections.len()).collect();
    by_priority.sort_by_key(|&i| sections[i].priority);
    // Shrink the least useful section as far as it goes, then the next.
    for &i in &by_priority {
        while total(&level) > budget && level[i] + 1 < forms[i].len() {
            level[i] += 1;
        }
    }
    // Give back what fits, most useful first (a small section dropped early may fit again).
    for &i in by_priority.iter().rev() {
        while level[i] > 0 {
            let mut tried = level.clone();
            tried[i] -= 1;
            if total(&tried) > budget {
                break;
            }
            level = tried;
        }
    }
    let mut dropped = Vec::new();
    for &i in &by_priority {
        if level[i] > 0 && forms[i][level[i]] == dropped_md(sections[i].title, budget) {
            dropped.push(sections[i].title);
        }
    }
    let parts: Vec<String> = level
        .iter()
        .zip(&forms)
        .map(|(&l, f)| f[l].clone())
        .collect();
    let mut markdown: String = parts.concat();
    markdown.push_str(footer);
    if markdown.len() > budget {
        // Only the header is left and it is still too big (a huge title or identity): cut it.
        let note = "\n\n_The report was cut to stay under `max_report_bytes`._\n";
        let keep = budget.saturating_sub(note.len());
        markdown = format!("{}{note}", truncate_bytes(&markdown, keep));
    }

    let (css_theme, color_scheme) = match input.theme {
        Theme::Light => (CSS_LIGHT, "light"),
        Theme::Dark => (CSS_DARK, "dark"),
    };
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"color-scheme\" content=\"{color_scheme}\">\n<title>{}</title>\n<style>{CSS}{css_theme}</style>\n</head>\n<body>\n",
        h(input.title)
    );
    for s in &sections {
        if s.priority != u8::MAX {
            let _ = writeln!(html, "<h2>{}</h2>", h(s.title));
        }
        html.push_str(&s.html);
    }
    html.push_str("<hr><p class=\"na\">Generated by sluice's <code>summary</code> exporter.</p>\n</body>\n</html>\n");
    Report {
        markdown,
        html,
        dropped,
    }
}
