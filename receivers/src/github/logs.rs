//! A log record per accepted delivery: `event.name` `github.<event>`, attributes
//! `github.event`, `github.action`, `github.delivery`, `vcs.repository.name` (without the
//! owner) and `vcs.owner.name`, `github.sender`
//! (and for runs and jobs their status, conclusion and ids), and a one-line summary as the body
//! (`workflow_job completed: linters (success) in octo-org/octo-repo`). Run and job records
//! carry the trace id (and job span id) of their trace, so logs and traces join. Severity is
//! `WARN` for failed, timed-out or startup-failed runs and jobs, else `INFO`.

use serde_json::Value;
use sluice_pipeline::otlp::{kv_str, scope};
use sluice_proto::common::v1::{any_value, AnyValue, KeyValue};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use sluice_proto::resource::v1::Resource;

use super::event::{
    i64_at, job_span_id, outcome, push_fields, push_i64, push_str, run_span_id, split_full_name,
    str_at, time_at, trace_id, workflow_name, Delivery, Outcome,
};

/// The log record of one delivery, received at `now` (Unix nanoseconds).
pub fn logs(d: &Delivery<'_>, now: u64) -> Vec<ResourceLogs> {
    let p = d.payload;
    let mut attrs = vec![kv_str("github.event", d.event)];
    push_str(&mut attrs, "github.action", d.action());
    push_str(&mut attrs, "github.delivery", d.delivery_id);
    d.push_repository(&mut attrs);
    push_str(&mut attrs, "github.sender", str_at(p, &["sender", "login"]));
    let repo = d.repository().unwrap_or("an unknown repository");
    let action = d.action().map(|a| format!(" {a}")).unwrap_or_default();
    let mut severity = SeverityNumber::Info;
    let mut trace = Vec::new();
    let mut span = Vec::new();
    let mut time = now;

    let body = match d.event {
        "workflow_run" => match p.get("workflow_run").filter(|r| r.is_object()) {
            Some(run) => {
                let (status, conclusion) = status_conclusion(run, &mut attrs, &mut severity);
                let name = workflow_name(run);
                push_str(&mut attrs, "cicd.pipeline.name", Some(&name));
                if let Some(id) = i64_at(run, &["id"]) {
                    let attempt = i64_at(run, &["run_attempt"])
                        .filter(|a| *a > 0)
                        .unwrap_or(1);
                    attrs.push(kv_str("cicd.pipeline.run.id", id.to_string()));
                    push_i64(&mut attrs, "cicd.pipeline.run.attempt", Some(attempt));
                    trace = trace_id(id, attempt).to_vec();
                    span = run_span_id(id, attempt).to_vec();
                }
                push_str(
                    &mut attrs,
                    "vcs.ref.head.name",
                    str_at(run, &["head_branch"]),
                );
                time = time_at(run, &["updated_at"]).unwrap_or(now);
                format!(
                    "workflow_run{action}: {name} #{} {}{} on {} in {repo}",
                    i64_at(run, &["run_number"]).unwrap_or(0),
                    status,
                    conclusion,
                    str_at(run, &["head_branch"]).unwrap_or("?"),
                )
            }
            None => format!("workflow_run{action} in {repo}"),
        },
        "workflow_job" => match p.get("workflow_job").filter(|j| j.is_object()) {
            Some(job) => {
                let (status, conclusion) = status_conclusion(job, &mut attrs, &mut severity);
                let name = str_at(job, &["name"]).unwrap_or("?");
                push_str(&mut attrs, "cicd.pipeline.task.name", Some(name));
                push_fields(
                    &mut attrs,
                    job,
                    &[
                        ("cicd.pipeline.name", "workflow_name"),
                        ("cicd.worker.name", "runner_name"),
                    ],
                );
                if let Some(id) = i64_at(job, &["id"]) {
                    attrs.push(kv_str("cicd.pipeline.task.run.id", id.to_string()));
                    span = job_span_id(id).to_vec();
                }
                if let Some(run_id) = i64_at(job, &["run_id"]) {
                    let attempt = i64_at(job, &["run_attempt"])
                        .filter(|a| *a > 0)
                        .unwrap_or(1);
                    attrs.push(kv_str("cicd.pipeline.run.id", run_id.to_string()));
                    trace = trace_id(run_id, attempt).to_vec();
                }
                if trace.is_empty() {
                    span.clear();
                }
                time = time_at(job, &["completed_at"])
                    .or_else(|| time_at(job, &["started_at"]))
                    .or_else(|| time_at(job, &["created_at"]))
                    .unwrap_or(now);
                format!("workflow_job{action}: {name} {status}{conclusion} in {repo}")
            }
            None => format!("workflow_job{action} in {repo}"),
        },
        "registry_package" | "package" => {
            let pkg = p.get("registry_package").or_else(|| p.get("package"));
            let name = pkg.and_then(|k| str_at(k, &["name"])).unwrap_or("?");
            let kind = pkg
                .and_then(|k| str_at(k, &["package_type"]))
                .unwrap_or("?");
            let version = pkg
                .and_then(|k| str_at(k, &["package_version", "version"]))
                .map(|v| format!(" {v}"))
                .unwrap_or_default();
            push_str(&mut attrs, "github.package.name", Some(name));
            push_str(&mut attrs, "github.package.type", Some(kind));
            format!(
                "{}{action}: {kind} package {name}{version} in {repo}",
                d.event
            )
        }
        "push" => {
            let git_ref = str_at(p, &["ref"]).unwrap_or("?");
            // `refs/heads/main` → `main` (branch), `refs/tags/v1` → `v1` (tag), as the
            // semantic conventions name a ref.
            let (name, kind) = match (
                git_ref.strip_prefix("refs/heads/"),
                git_ref.strip_prefix("refs/tags/"),
            ) {
                (Some(branch), _) => (branch, Some("branch")),
                (_, Some(tag)) => (tag, Some("tag")),
                _ => (git_ref, None),
            };
            push_str(&mut attrs, "vcs.ref.head.name", Some(name));
            push_str(&mut attrs, "vcs.ref.head.type", kind);
            push_str(&mut attrs, "vcs.ref.head.revision", str_at(p, &["after"]));
            let commits = p
                .get("commits")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            let deleted = p.get("deleted").and_then(Value::as_bool) == Some(true);
            if deleted {
                format!("push: {git_ref} deleted in {repo}")
            } else {
                format!("push: {commits} commit(s) to {git_ref} in {repo}")
            }
        }
        "check_run" | "check_suite" => {
            let obj = p.get(d.event);
            let name = obj
                .and_then(|o| str_at(o, &["name"]))
                .or_else(|| obj.and_then(|o| str_at(o, &["app", "name"])))
                .unwrap_or("?");
            let (status, conclusion) = match obj.filter(|o| o.is_object()) {
                Some(o) => status_conclusion(o, &mut attrs, &mut severity),
                None => (String::new(), String::new()),
            };
            format!("{}{action}: {name} {status}{conclusion} in {repo}", d.event)
        }
        other => format!("{other}{action} in {repo}"),
    };

    let record = LogRecord {
        trace_id: trace,
        span_id: span,
        ..record(
            (time, now),
            severity,
            body,
            attrs,
            format!("github.{}", d.event),
        )
    };
    in_resource(d.resource(), record)
}

/// A record of `event_name` with the summary `body`, at `time` and observed at `now` (Unix
/// nanoseconds); severity text `WARN` or `INFO`.
fn record(
    (time, now): (u64, u64),
    severity: SeverityNumber,
    body: String,
    attributes: Vec<KeyValue>,
    event_name: String,
) -> LogRecord {
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: now,
        severity_number: severity as i32,
        severity_text: if severity == SeverityNumber::Warn {
            "WARN"
        } else {
            "INFO"
        }
        .to_string(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body)),
        }),
        attributes,
        event_name,
        ..Default::default()
    }
}

/// `record` alone under `resource`, in the `github` scope.
fn in_resource(resource: Resource, record: LogRecord) -> Vec<ResourceLogs> {
    vec![ResourceLogs {
        resource: Some(resource),
        scope_logs: vec![ScopeLogs {
            scope: Some(scope("github")),
            log_records: vec![record],
            ..Default::default()
        }],
        ..Default::default()
    }]
}

/// Adds status and conclusion attributes; returns `status` and ` (conclusion)` for the body.
fn status_conclusion(
    v: &Value,
    attrs: &mut Vec<KeyValue>,
    severity: &mut SeverityNumber,
) -> (String, String) {
    let status = str_at(v, &["status"]);
    let conclusion = str_at(v, &["conclusion"]);
    push_str(attrs, "github.status", status);
    push_str(attrs, "github.conclusion", conclusion);
    if outcome(conclusion) == Outcome::Error {
        *severity = SeverityNumber::Warn;
    }
    (
        status.unwrap_or("?").to_string(),
        conclusion.map(|c| format!(" ({c})")).unwrap_or_default(),
    )
}

/// The log record of a normalized CI event posted with the bearer token: every scalar
/// top-level field becomes a `ci.<field>` attribute; the body is a summary.
pub fn ci_event_logs(event: &Value, service_name: &str, now: u64) -> Vec<ResourceLogs> {
    let event_name = str_at(event, &["event_name"]).unwrap_or("?");
    let repository = str_at(event, &["repository"]).unwrap_or("?");
    let mut attrs = vec![kv_str("github.event", event_name)];
    push_str(&mut attrs, "github.delivery", str_at(event, &["event_id"]));
    let (owner, name) = split_full_name(repository);
    push_str(&mut attrs, "vcs.repository.name", Some(name));
    push_str(&mut attrs, "vcs.owner.name", owner);
    if let Some(obj) = event.as_object() {
        for (k, v) in obj {
            let value = match v {
                Value::String(s) => any_value::Value::StringValue(s.clone()),
                Value::Bool(b) => any_value::Value::BoolValue(*b),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => any_value::Value::IntValue(i),
                    None => any_value::Value::DoubleValue(n.as_f64().unwrap_or_default()),
                },
                _ => continue,
            };
            attrs.push(sluice_pipeline::otlp::kv(&format!("ci.{k}"), value));
        }
    }
    let mut summary = format!("ci event {event_name}");
    for key in ["action", "status", "conclusion", "name"] {
        if let Some(v) = str_at(event, &[key]) {
            summary.push(' ');
            summary.push_str(v);
        }
    }
    summary.push_str(" in ");
    summary.push_str(repository);
    let severity = if outcome(str_at(event, &["conclusion"])) == Outcome::Error {
        SeverityNumber::Warn
    } else {
        SeverityNumber::Info
    };
    let service = if service_name.is_empty() {
        repository
    } else {
        service_name
    };
    let mut res = vec![kv_str("service.name", service)];
    push_str(&mut res, "vcs.repository.name", Some(name));
    push_str(&mut res, "vcs.owner.name", owner);
    in_resource(
        sluice_pipeline::otlp::resource(res),
        record(
            (now, now),
            severity,
            summary,
            attrs,
            format!("github.ci_event.{event_name}"),
        ),
    )
}
