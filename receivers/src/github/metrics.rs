//! Metrics from the same deliveries, stateless: each completed run or job is one delta data
//! point (a histogram point of count 1, or a counter increment of 1), so nothing is kept
//! between deliveries and a backend sums them up.
//!
//! | metric | type, unit | from |
//! |---|---|---|
//! | `cicd.pipeline.run.duration` | histogram, s | completed run: `updated_at − run_started_at` |
//! | `cicd.pipeline.run.queue.duration` | histogram, s | completed first attempt only (a re-run's `created_at` is its first attempt's): `run_started_at − created_at` |
//! | `cicd.pipeline.run.completed` | counter | completed runs, by conclusion |
//! | `cicd.pipeline.task.run.duration` | histogram, s | completed job: `completed_at − started_at` |
//! | `cicd.pipeline.task.run.queue.duration` | histogram, s | completed job: `started_at − created_at` |
//! | `cicd.pipeline.task.run.completed` | counter | completed jobs, by conclusion |
//! | `github.package.published` | counter | `registry_package` `published`/`updated` |
//!
//! Attributes: `vcs.repository.name` (the repository's name without its owner, as the semantic
//! conventions define it) and `vcs.owner.name`, `cicd.pipeline.name` (workflow),
//! `cicd.pipeline.task.name` (job), `github.runner.labels` (runner labels, sorted,
//! comma-joined), `cicd.pipeline.run.state` on the histograms (`pending` for queue time,
//! `executing` for durations), `cicd.pipeline.result`
//! (conclusion, semantic-conventions word), `github.conclusion` (GitHub's word),
//! `vcs.ref.head.name` (head branch); for packages `github.package.type`,
//! `github.package.name`, `github.package.ecosystem`, `github.action`.

use serde_json::Value;
use sluice_pipeline::otlp::{kv_str, scope};
use sluice_proto::common::v1::KeyValue;
use sluice_proto::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};

use super::event::{
    completed, i64_at, ordered, push_fields, push_str, semconv_result, str_at, strings_at, time_at,
    workflow_name, Delivery,
};

/// Bucket bounds of every duration histogram, in seconds: 1 s to 6 h.
pub const DURATION_BOUNDS: &[f64] = &[
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 21600.0,
];

/// The metrics of one delivery (empty when it yields none). `now` stamps counter points.
pub fn metrics(d: &Delivery<'_>, now: u64) -> Vec<ResourceMetrics> {
    let metrics = match d.event {
        "workflow_run" => d
            .payload
            .get("workflow_run")
            .map(|run| run_metrics(d, run, now))
            .unwrap_or_default(),
        "workflow_job" => d
            .payload
            .get("workflow_job")
            .map(|job| job_metrics(d, job, now))
            .unwrap_or_default(),
        "registry_package" | "package" => package_metrics(d, now),
        _ => Vec::new(),
    };
    if metrics.is_empty() {
        return Vec::new();
    }
    vec![ResourceMetrics {
        resource: Some(d.resource()),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(scope("github")),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }]
}

fn common(d: &Delivery<'_>, v: &Value) -> Vec<KeyValue> {
    let mut attrs = Vec::new();
    d.push_repository(&mut attrs);
    push_str(&mut attrs, "vcs.ref.head.name", str_at(v, &["head_branch"]));
    let conclusion = str_at(v, &["conclusion"]);
    push_str(
        &mut attrs,
        "cicd.pipeline.result",
        conclusion.map(semconv_result),
    );
    push_str(&mut attrs, "github.conclusion", conclusion);
    attrs
}

fn run_metrics(d: &Delivery<'_>, run: &Value, now: u64) -> Vec<Metric> {
    if !completed(run) {
        return Vec::new();
    }
    let mut attrs = common(d, run);
    attrs.push(kv_str("cicd.pipeline.name", workflow_name(run)));
    let created = time_at(run, &["created_at"]);
    let started = time_at(run, &["run_started_at"]);
    let updated = time_at(run, &["updated_at"]);
    let mut out = Vec::new();
    if let Some((s, e)) = started.zip(updated) {
        out.push(histogram(
            "cicd.pipeline.run.duration",
            "Duration of a workflow run attempt, from its start to its completion.",
            &attrs,
            "executing",
            s,
            e,
        ));
    }
    // A re-run's `created_at` is its first attempt's: `run_started_at - created_at` would count
    // the whole first attempt as queue time, so only a first attempt has a run queue time.
    let first_attempt = i64_at(run, &["run_attempt"]).is_none_or(|a| a <= 1);
    if let Some((c, s)) = created.zip(started).filter(|_| first_attempt) {
        out.push(histogram(
            "cicd.pipeline.run.queue.duration",
            "Time a workflow run waited from its creation to its start.",
            &attrs,
            "pending",
            c,
            s,
        ));
    }
    out.push(counter(
        "cicd.pipeline.run.completed",
        "Completed workflow runs.",
        &attrs,
        updated.unwrap_or(now),
    ));
    out
}

fn job_metrics(d: &Delivery<'_>, job: &Value, now: u64) -> Vec<Metric> {
    if !completed(job) {
        return Vec::new();
    }
    let mut attrs = common(d, job);
    push_fields(
        &mut attrs,
        job,
        &[
            ("cicd.pipeline.name", "workflow_name"),
            ("cicd.pipeline.task.name", "name"),
        ],
    );
    let mut labels = strings_at(job, &["labels"]);
    labels.sort_unstable();
    if !labels.is_empty() {
        attrs.push(kv_str("github.runner.labels", labels.join(",")));
    }
    let created = time_at(job, &["created_at"]);
    let started = time_at(job, &["started_at"]);
    let completed_at = time_at(job, &["completed_at"]);
    let mut out = Vec::new();
    if let Some((s, e)) = started.zip(completed_at) {
        out.push(histogram(
            "cicd.pipeline.task.run.duration",
            "Duration of a workflow job, from its start on a runner to its completion.",
            &attrs,
            "executing",
            s,
            e,
        ));
    }
    if let Some((c, s)) = created.zip(started) {
        out.push(histogram(
            "cicd.pipeline.task.run.queue.duration",
            "Time a workflow job waited for a runner, from its creation to its start.",
            &attrs,
            "pending",
            c,
            s,
        ));
    }
    out.push(counter(
        "cicd.pipeline.task.run.completed",
        "Completed workflow jobs.",
        &attrs,
        completed_at.unwrap_or(now),
    ));
    out
}

fn package_metrics(d: &Delivery<'_>, now: u64) -> Vec<Metric> {
    let action = d.action();
    if !matches!(action, Some("published" | "updated")) {
        return Vec::new();
    }
    let Some(pkg) = d
        .payload
        .get("registry_package")
        .or_else(|| d.payload.get("package"))
        .filter(|p| p.is_object())
    else {
        return Vec::new();
    };
    let mut attrs = Vec::new();
    d.push_repository(&mut attrs);
    push_str(&mut attrs, "github.action", action);
    // GitHub spells types in either case (`CONTAINER` in `registry_package`, `container` in
    // `package` deliveries): one series per type.
    push_str(
        &mut attrs,
        "github.package.type",
        str_at(pkg, &["package_type"])
            .map(str::to_ascii_lowercase)
            .as_deref(),
    );
    push_str(&mut attrs, "github.package.name", str_at(pkg, &["name"]));
    push_str(
        &mut attrs,
        "github.package.ecosystem",
        str_at(pkg, &["ecosystem"]),
    );
    let at = time_at(pkg, &["package_version", "updated_at"])
        .or_else(|| time_at(pkg, &["updated_at"]))
        .unwrap_or(now);

    vec![counter(
        "github.package.published",
        "Package versions published or updated.",
        &attrs,
        at,
    )]
}

/// A one-observation histogram; `state` is its `cicd.pipeline.run.state` (`pending` for the
/// time in a queue, `executing` for the run itself), as the semantic conventions'
/// `cicd.pipeline.run.duration` requires.
fn histogram(
    name: &str,
    description: &str,
    attrs: &[KeyValue],
    state: &str,
    start: u64,
    end: u64,
) -> Metric {
    let (start, end) = ordered(start, end);
    let mut attrs = attrs.to_vec();
    attrs.push(kv_str("cicd.pipeline.run.state", state));
    let seconds = (end - start) as f64 / 1e9;
    let mut bucket_counts = vec![0u64; DURATION_BOUNDS.len() + 1];
    let bucket = DURATION_BOUNDS
        .iter()
        .position(|b| seconds <= *b)
        .unwrap_or(DURATION_BOUNDS.len());
    bucket_counts[bucket] = 1;
    Metric {
        name: name.to_string(),
        description: description.to_string(),
        unit: "s".to_string(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                attributes: attrs,
                start_time_unix_nano: start,
                time_unix_nano: end,
                count: 1,
                sum: Some(seconds),
                bucket_counts,
                explicit_bounds: DURATION_BOUNDS.to_vec(),
                min: Some(seconds),
                max: Some(seconds),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        })),
        ..Default::default()
    }
}

fn counter(name: &str, description: &str, attrs: &[KeyValue], at: u64) -> Metric {
    Metric {
        name: name.to_string(),
        description: description.to_string(),
        unit: "{event}".to_string(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes: attrs.to_vec(),
                start_time_unix_nano: at,
                time_unix_nano: at,
                value: Some(number_data_point::Value::AsInt(1)),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}
