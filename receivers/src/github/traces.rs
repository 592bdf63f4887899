//! Traces from `workflow_run` and `workflow_job` deliveries, decided from `status` and
//! `conclusion` (never from `action` alone: GitHub sends `action: requested` with
//! `status: completed`, or `action: queued` with `status: waiting`).
//!
//! - A completed run yields its root span (`run_started_at` → `updated_at`).
//! - A completed job yields a job span (the earlier of `created_at` and `started_at` →
//!   `completed_at`, child of the run's root
//!   span), a `queue` span (`created_at` → `started_at`) and a span per step with both
//!   timestamps, children of the job span.
//!
//! Runs and jobs that are not completed yield no spans (their later `completed` delivery
//! carries everything). A missing or unparsable timestamp drops that one span (never a 1970
//! span); an end before its start becomes a zero-length span. Ids are described in `mod.rs`.

use serde_json::Value;
use sluice_pipeline::otlp::{kv_str, scope};
use sluice_proto::trace::v1::span::{Link, SpanKind};
use sluice_proto::trace::v1::status::StatusCode;
use sluice_proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::event::{
    at, completed, i64_at, job_span_id, kv_strings, ordered, outcome, push_conclusion, push_fields,
    push_i64, push_str, queue_span_id, run_span_id, step_span_id, str_at, strings_at, time_at,
    trace_id, workflow_name, Delivery, Outcome,
};

/// The spans of one delivery (empty when it yields none).
pub fn spans(d: &Delivery<'_>) -> Vec<ResourceSpans> {
    let spans = match d.event {
        "workflow_run" => d
            .payload
            .get("workflow_run")
            .map(|run| run_spans(d, run))
            .unwrap_or_default(),
        "workflow_job" => d
            .payload
            .get("workflow_job")
            .map(|job| job_spans(d, job))
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    if spans.is_empty() {
        return Vec::new();
    }
    vec![ResourceSpans {
        resource: Some(d.resource()),
        scope_spans: vec![ScopeSpans {
            scope: Some(scope("github")),
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }]
}

fn status(conclusion: Option<&str>) -> Status {
    let code = match outcome(conclusion) {
        Outcome::Success => StatusCode::Ok,
        Outcome::Error => StatusCode::Error,
        Outcome::Other => StatusCode::Unset,
    };
    Status {
        code: code as i32,
        message: if code == StatusCode::Error {
            conclusion.unwrap_or_default().to_string()
        } else {
            String::new()
        },
    }
}

fn run_attempt(v: &Value) -> i64 {
    i64_at(v, &["run_attempt"]).filter(|a| *a > 0).unwrap_or(1)
}

fn run_spans(d: &Delivery<'_>, run: &Value) -> Vec<Span> {
    if !completed(run) {
        return Vec::new();
    }
    let Some(run_id) = i64_at(run, &["id"]) else {
        return Vec::new();
    };
    let attempt = run_attempt(run);
    let start = time_at(run, &["run_started_at"]).or_else(|| time_at(run, &["created_at"]));
    let (Some(start), Some(end)) = (start, time_at(run, &["updated_at"])) else {
        return Vec::new();
    };
    let (start, end) = ordered(start, end);
    let name = workflow_name(run);
    let conclusion = str_at(run, &["conclusion"]);
    let mut attrs = vec![kv_str("cicd.pipeline.name", name.clone())];
    attrs.push(kv_str("cicd.pipeline.run.id", run_id.to_string()));
    push_i64(&mut attrs, "cicd.pipeline.run.attempt", Some(attempt));
    push_i64(
        &mut attrs,
        "github.run_number",
        i64_at(run, &["run_number"]),
    );
    push_str(
        &mut attrs,
        "cicd.pipeline.run.url.full",
        str_at(run, &["html_url"]),
    );
    push_conclusion(&mut attrs, "cicd.pipeline.result", conclusion);
    push_fields(
        &mut attrs,
        run,
        &[
            ("github.event", "event"),
            ("vcs.ref.head.name", "head_branch"),
            ("vcs.ref.head.revision", "head_sha"),
            ("github.workflow.path", "path"),
        ],
    );
    push_i64(
        &mut attrs,
        "github.workflow.id",
        i64_at(run, &["workflow_id"]),
    );
    push_str(&mut attrs, "enduser.id", str_at(run, &["actor", "login"]));
    push_str(
        &mut attrs,
        "vcs.repository.url.full",
        str_at(d.payload, &["repository", "html_url"]),
    );
    let mut links = Vec::new();
    if attempt > 1 {
        links.push(Link {
            trace_id: trace_id(run_id, attempt - 1).to_vec(),
            span_id: run_span_id(run_id, attempt - 1).to_vec(),
            ..Default::default()
        });
    }
    vec![Span {
        trace_id: trace_id(run_id, attempt).to_vec(),
        span_id: run_span_id(run_id, attempt).to_vec(),
        name,
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: attrs,
        links,
        status: Some(status(conclusion)),
        ..Default::default()
    }]
}

fn job_spans(d: &Delivery<'_>, job: &Value) -> Vec<Span> {
    if !completed(job) {
        return Vec::new();
    }
    let (Some(run_id), Some(job_id)) = (i64_at(job, &["run_id"]), i64_at(job, &["id"])) else {
        return Vec::new();
    };
    let attempt = run_attempt(job);
    let trace = trace_id(run_id, attempt).to_vec();
    let job_span = job_span_id(job_id).to_vec();
    let job_name = str_at(job, &["name"])
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("job {job_id}"));
    let conclusion = str_at(job, &["conclusion"]);
    let created = time_at(job, &["created_at"]);
    let started = time_at(job, &["started_at"]);
    let completed_at = time_at(job, &["completed_at"]);

    let mut common = vec![kv_str("cicd.pipeline.task.name", job_name.clone())];
    common.push(kv_str("cicd.pipeline.task.run.id", job_id.to_string()));
    common.push(kv_str("cicd.pipeline.run.id", run_id.to_string()));
    push_str(
        &mut common,
        "cicd.pipeline.name",
        str_at(job, &["workflow_name"]),
    );
    let mut out = Vec::new();

    // The job span: created (queued) → completed, so it contains the queue and the steps.
    // (GitHub reports `started_at` a little before `created_at` for some jobs: the earlier.)
    let job_start = match (created, started) {
        (Some(c), Some(s)) => Some(c.min(s)),
        (c, s) => c.or(s),
    };
    if let Some((start, end)) = job_start.zip(completed_at) {
        let (start, end) = ordered(start, end);
        let mut attrs = common.clone();
        push_str(
            &mut attrs,
            "cicd.pipeline.task.run.url.full",
            str_at(job, &["html_url"]),
        );
        push_conclusion(&mut attrs, "cicd.pipeline.task.run.result", conclusion);
        push_i64(&mut attrs, "cicd.pipeline.run.attempt", Some(attempt));
        push_fields(
            &mut attrs,
            job,
            &[
                ("vcs.ref.head.name", "head_branch"),
                ("vcs.ref.head.revision", "head_sha"),
                ("cicd.worker.name", "runner_name"),
            ],
        );
        // `cicd.worker.id` is a string in the semantic conventions.
        push_str(
            &mut attrs,
            "cicd.worker.id",
            i64_at(job, &["runner_id"])
                .map(|id| id.to_string())
                .as_deref(),
        );
        push_str(
            &mut attrs,
            "github.runner.group.name",
            str_at(job, &["runner_group_name"]),
        );
        let labels = strings_at(job, &["labels"]);
        if !labels.is_empty() {
            attrs.push(kv_strings("github.runner.labels", &labels));
        }
        push_str(
            &mut attrs,
            "vcs.repository.url.full",
            str_at(d.payload, &["repository", "html_url"]),
        );
        out.push(Span {
            trace_id: trace.clone(),
            span_id: job_span.clone(),
            parent_span_id: run_span_id(run_id, attempt).to_vec(),
            name: job_name.clone(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: attrs,
            status: Some(status(conclusion)),
            ..Default::default()
        });
    }

    // The queue span: created → started (a job that never started has none).
    if let Some((start, end)) = created.zip(started) {
        let (start, end) = ordered(start, end);
        let mut attrs = common.clone();
        // Not `cicd.pipeline.task.type`: its values are `build`, `test` and `deploy` only.
        attrs.push(kv_str("github.job.phase", "queue"));
        out.push(Span {
            trace_id: trace.clone(),
            span_id: queue_span_id(job_id).to_vec(),
            parent_span_id: job_span.clone(),
            name: format!("queue {job_name}"),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: attrs,
            ..Default::default()
        });
    }

    // One span per step that has both timestamps (queued steps have nulls).
    if let Some(steps) = at(job, &["steps"]).and_then(Value::as_array) {
        for (index, step) in steps.iter().enumerate() {
            let number = i64_at(step, &["number"]).unwrap_or(index as i64 + 1);
            let (Some(start), Some(end)) = (
                time_at(step, &["started_at"]),
                time_at(step, &["completed_at"]),
            ) else {
                continue;
            };
            let (start, end) = ordered(start, end);
            let step_name = str_at(step, &["name"])
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("step {number}"));
            let step_conclusion = str_at(step, &["conclusion"]);
            let mut attrs = common.clone();
            attrs.push(kv_str("github.step.name", step_name.clone()));
            push_i64(&mut attrs, "github.step.number", Some(number));
            push_conclusion(&mut attrs, "cicd.pipeline.task.run.result", step_conclusion);
            out.push(Span {
                trace_id: trace.clone(),
                span_id: step_span_id(job_id, number).to_vec(),
                parent_span_id: job_span.clone(),
                name: step_name,
                kind: SpanKind::Internal as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes: attrs,
                status: Some(status(step_conclusion)),
                ..Default::default()
            });
        }
    }
    out
}
