//! Tests of the `github` receiver's parts: config files, signatures (with GitHub's own signed
//! delivery), timestamps, replay protection, the conversion of every fixture to spans, metrics
//! and logs, and the request handler's statuses, including a proptest fuzz of the handler. The
//! running receiver over a socket is tested in `tests/it/github.rs`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use base64::Engine as _;
use serde_json::Value;
use sluice_pipeline::config::decode_str;
use sluice_pipeline::otlp::attr_str;
use sluice_pipeline::runtime::fanout::{Output, Outputs, PipelineInput};
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::{Batch, ComponentId, Kind, Signal, Validate};
use sluice_proto::logs::v1::LogRecord;
use sluice_proto::metrics::v1::{metric, Metric};
use sluice_proto::trace::v1::status::StatusCode as SpanStatus;
use sluice_proto::trace::v1::Span;
use tokio::sync::mpsc;

use super::event::{self, Delivery};
use super::*;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/github/testdata");
const SECRET: &str = "test-secret";
/// The throwaway secret published with the signed delivery (see testdata/webhooks/README.md).
const PUBLISHED_SECRET: &str = "402786017574bd28f9d8f7a18648939751c47fe09077d56e10f0444f14fbb73b";

fn testdata(name: &str) -> String {
    std::fs::read_to_string(format!("{TESTDATA}/{name}")).expect("testdata file")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{TESTDATA}/webhooks/{name}")).expect("fixture")
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// GitHub's signed delivery: (headers as received, raw body).
fn signed_delivery() -> (HashMap<String, String>, Vec<u8>) {
    let envelope = json("workflow_run.in_progress.signed-delivery.json");
    let headers = envelope["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let body = base64::engine::general_purpose::STANDARD
        .decode(envelope["body_raw_base64"].as_str().unwrap())
        .unwrap();
    (headers, body)
}

// ---------------------------------------------------------------------------------------------
// Config.

#[test]
fn config_file_parses_with_every_option() {
    let c: GithubReceiverConfig = decode_str(&testdata("config.yaml")).expect("valid config");
    assert_eq!(c.endpoint, "0.0.0.0:9090");
    assert_eq!(c.path, "/github/webhook");
    assert_eq!(c.health_path, "/healthz");
    assert_eq!(c.max_body_bytes, 1_048_576);
    assert_eq!(c.read_timeout, Duration::from_secs(3));
    assert_eq!(c.secret, "s3cret");
    assert_eq!(
        c.required_headers
            .get("X-GitHub-Hook-Installation-Target-Id"),
        Some(&"2010729".to_string())
    );
    assert_eq!(c.service_name, "ci");
    assert_eq!(c.events.len(), 3);
    assert_eq!(c.bearer_token, "t0ken");
    assert_eq!(c.replay_protection.max_entries, 500);
    assert_eq!(c.replay_protection.ttl, Duration::from_secs(3600));
    c.validate().unwrap();
}

#[test]
fn defaults_follow_the_issue_and_github() {
    let c = GithubReceiverConfig::default();
    assert_eq!(c.endpoint, "127.0.0.1:8088");
    assert_eq!(c.path, "/events");
    assert_eq!(c.health_path, "/health");
    assert_eq!(c.max_body_bytes, 25 * 1024 * 1024);
    assert_eq!(c.ci_events_path, "/api/ci-events");
    assert!(!c.insecure_skip_verify);
    assert_eq!(
        c.read_timeout,
        Duration::from_secs(10),
        "GitHub's own timeout"
    );
    let zero = GithubReceiverConfig {
        read_timeout: Duration::ZERO,
        ..Default::default()
    };
    assert!(zero
        .validate()
        .unwrap_err()
        .to_string()
        .contains("read_timeout"));
}

#[test]
fn a_misspelt_key_fails_with_its_name() {
    sluice_pipeline::testing::assert_misspelt_key::<GithubReceiverConfig>(
        &testdata("typo_config.yaml"),
        "heath_path",
        2,
    );
}

#[test]
fn no_secret_refuses_to_start_unless_insecure_skip_verify() {
    let c = GithubReceiverConfig::default();
    let e = c.check_secret().expect_err("no secret must be refused");
    assert!(e.to_string().contains("insecure_skip_verify"), "{e}");
    let c = GithubReceiverConfig {
        insecure_skip_verify: true,
        ..Default::default()
    };
    c.check_secret().unwrap();
    let c = GithubReceiverConfig {
        secret: "x".into(),
        ..Default::default()
    };
    c.check_secret().unwrap();
    for (yaml, key) in [
        ("secret: x\nendpoint: nope", "endpoint"),
        ("secret: x\npath: events", "path"),
        ("secret: x\nhealth_path: /events", "health_path"),
        ("secret: x\nmax_body_bytes: 0", "max_body_bytes"),
        (
            "secret: x\nreplay_protection: { ttl: 0s }",
            "replay_protection::ttl",
        ),
        (
            "secret: x\nbearer_token: t\nci_events_path: /events",
            "ci_events_path",
        ),
    ] {
        let c: GithubReceiverConfig = decode_str(yaml).unwrap();
        assert_eq!(c.validate().expect_err(yaml).key, key, "{yaml}");
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures.

#[test]
fn githubs_signed_delivery_verifies_with_its_published_secret() {
    let (headers, body) = signed_delivery();
    assert_eq!(body.len(), 19_497);
    let header = headers["x-hub-signature-256"].as_bytes();
    let v = SignatureVerifier::new(PUBLISHED_SECRET);
    v.verify(Some(header), &body).unwrap();
    assert_eq!(sign(PUBLISHED_SECRET, &body).as_bytes(), header);
    // Upper-case hex is the same signature.
    let upper = format!(
        "sha256={}",
        headers["x-hub-signature-256"][7..].to_uppercase()
    );
    v.verify(Some(upper.as_bytes()), &body).unwrap();
}

#[test]
fn one_flipped_byte_or_reserialised_json_fails_verification() {
    let (headers, body) = signed_delivery();
    let header = headers["x-hub-signature-256"].as_bytes();
    let v = SignatureVerifier::new(PUBLISHED_SECRET);
    for i in [0, body.len() / 2, body.len() - 1] {
        let mut flipped = body.clone();
        flipped[i] ^= 0x01;
        assert!(matches!(
            v.verify(Some(header), &flipped),
            Err(GithubReceiverError::BadSignature)
        ));
    }
    let value: Value = serde_json::from_slice(&body).unwrap();
    for reserialised in [
        serde_json::to_vec(&value).unwrap(),
        serde_json::to_vec_pretty(&value).unwrap(),
    ] {
        assert_ne!(reserialised, body);
        assert!(matches!(
            v.verify(Some(header), &reserialised),
            Err(GithubReceiverError::BadSignature)
        ));
    }
    assert!(matches!(
        SignatureVerifier::new("another secret").verify(Some(header), &body),
        Err(GithubReceiverError::BadSignature)
    ));
}

#[test]
fn missing_malformed_and_sha1_signatures_are_refused() {
    let (headers, body) = signed_delivery();
    let v = SignatureVerifier::new(PUBLISHED_SECRET);
    assert!(matches!(
        v.verify(None, &body),
        Err(GithubReceiverError::MissingSignature)
    ));
    let good = &headers["x-hub-signature-256"];
    for bad in [
        headers["x-hub-signature"].clone(), // the SHA-1 one
        good[7..].to_string(),              // no prefix
        format!("sha1={}", &good[7..]),
        format!("{good}0"),
        good[..good.len() - 1].to_string(),
        format!("sha256={}g", &good[7..good.len() - 1]),
        String::new(),
    ] {
        assert!(
            matches!(
                v.verify(Some(bad.as_bytes()), &body),
                Err(GithubReceiverError::MalformedSignature)
            ),
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Timestamps, ids, replay protection.

#[test]
fn rfc3339_timestamps_parse_with_offsets_and_fractions() {
    assert_eq!(
        parse_rfc3339("2021-08-05T10:34:58Z"),
        Some(1_628_159_698_000_000_000)
    );
    assert_eq!(
        parse_rfc3339("2021-08-05T10:26:08.000Z"),
        Some(1_628_159_168_000_000_000)
    );
    assert_eq!(
        parse_rfc3339("2021-08-05T12:34:58.5+02:00"),
        Some(1_628_159_698_500_000_000)
    );
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    for bad in [
        "",
        "2021-08-05",
        "2021-13-05T10:34:58Z",
        "2021-08-05T10:34:58",
        "2021-08-05T10:34:58+2:00",
        "1969-12-31T23:59:59Z",
        "2021-08-05T10:34:5xZ",
        "２０２１-08-05T10:34:58Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
    // A 1970 or zero time is treated as missing, never emitted.
    let v: Value = serde_json::json!({"a": "1970-01-01T00:00:00Z", "b": 0, "c": null});
    assert_eq!(event::time_at(&v, &["a"]), None);
    assert_eq!(event::time_at(&v, &["b"]), None);
    assert_eq!(event::time_at(&v, &["c"]), None);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn ids_are_the_documented_derivation() {
    // Expected values computed independently with Python's hashlib:
    // sha256(b"2897824511t").hexdigest()[:32] and so on.
    assert_eq!(
        hex(&trace_id(289_782_451, 1)),
        "c28519925e1146098df64713b1779b41"
    );
    assert_eq!(hex(&event::run_span_id(289_782_451, 1)), "3672ec4868a9b62d");
    assert_eq!(hex(&event::job_span_id(289_782_451)), "d0f4cc21745bf74d");
    assert_eq!(
        hex(&event::step_span_id(289_782_451, 1)),
        "773b431e0e6e696d"
    );
    assert_ne!(trace_id(1, 1), trace_id(1, 2));
}

#[test]
fn replay_cache_remembers_only_accepted_ids_bounded_in_count_and_time() {
    let cache = DeliveryCache::new(2, Duration::from_secs(60));
    let t0 = Instant::now();
    let (seen, guard) = cache.begin("a", t0);
    assert_eq!(seen, Seen::New);
    // A concurrent copy is in flight, not new and not a duplicate.
    assert_eq!(cache.begin("a", t0).0, Seen::InFlight);
    // Refused downstream (guard dropped): forgotten, so a redelivery is processed.
    drop(guard);
    let (seen, guard) = cache.begin("a", t0);
    assert_eq!(seen, Seen::New);
    guard.unwrap().accept(t0);
    assert_eq!(cache.begin("a", t0).0, Seen::Duplicate);
    // Bounded in count: the oldest is forgotten first.
    cache.begin("b", t0).1.unwrap().accept(t0);
    cache.begin("c", t0).1.unwrap().accept(t0);
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.begin("c", t0).0, Seen::Duplicate);
    assert_eq!(cache.begin("b", t0).0, Seen::Duplicate);
    let (seen, guard) = cache.begin("a", t0);
    assert_eq!(seen, Seen::New);
    drop(guard);
    // Bounded in time.
    let later = t0 + Duration::from_secs(61);
    let (seen, guard) = cache.begin("b", later);
    assert_eq!(seen, Seen::New);
    drop(guard);
    assert!(cache.is_empty());
    // Off.
    let off = DeliveryCache::new(0, Duration::from_secs(60));
    let (seen, guard) = off.begin("a", t0);
    assert_eq!(seen, Seen::New);
    assert!(guard.is_none());
}

// ---------------------------------------------------------------------------------------------
// Conversion of the fixtures.

fn delivery<'a>(event: &'a str, payload: &'a Value) -> Delivery<'a> {
    Delivery {
        event,
        delivery_id: Some("d-1"),
        payload,
        service_name: "",
    }
}

fn all_spans(event: &str, payload: &Value) -> Vec<Span> {
    super::traces::spans(&delivery(event, payload))
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

fn all_metrics(event: &str, payload: &Value) -> Vec<Metric> {
    super::metrics::metrics(&delivery(event, payload), 1)
        .into_iter()
        .flat_map(|r| r.scope_metrics)
        .flat_map(|s| s.metrics)
        .collect()
}

fn all_logs(event: &str, payload: &Value) -> Vec<LogRecord> {
    super::logs::logs(&delivery(event, payload), 7)
        .into_iter()
        .flat_map(|r| r.scope_logs)
        .flat_map(|s| s.log_records)
        .collect()
}

fn sa<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    attr_str(&span.attributes, key)
}

#[test]
fn a_completed_run_is_one_root_span_named_by_its_display_title() {
    let p = json("workflow_run.completed.payload.json");
    let spans = all_spans("workflow_run", &p);
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    // `name` is empty in this payload: the display title is used.
    assert_eq!(
        s.name,
        "ci(action): update actions/setup-node digest to 8c91899"
    );
    assert_eq!(s.trace_id, trace_id(289_782_451, 1).to_vec());
    assert_eq!(s.span_id, event::run_span_id(289_782_451, 1).to_vec());
    assert!(s.parent_span_id.is_empty());
    // run_started_at == updated_at: a zero-length span, not a negative one.
    assert_eq!(s.start_time_unix_nano, s.end_time_unix_nano);
    assert_eq!(
        s.start_time_unix_nano,
        parse_rfc3339("2020-10-05T16:33:49Z").unwrap()
    );
    assert_eq!(s.status.as_ref().unwrap().code, SpanStatus::Ok as i32);
    assert_eq!(sa(s, "cicd.pipeline.result"), Some("success"));
    assert_eq!(sa(s, "cicd.pipeline.run.id"), Some("289782451"));
    assert_eq!(sa(s, "vcs.ref.head.name"), Some("master"));
    assert_eq!(
        sa(s, "vcs.ref.head.revision"),
        Some("3484a3fb816e0859fd6e1cea078d76385ff50625")
    );
    assert_eq!(
        sa(s, "vcs.repository.url.full"),
        Some("https://github.com/octo-org/octo-repo")
    );
}

#[test]
fn run_spans_follow_status_not_action() {
    // action `requested`, status `completed`, conclusion `action_required`: a span, not an error.
    let p = json("workflow_run.requested.with-conclusion.payload.json");
    let spans = all_spans("workflow_run", &p);
    assert_eq!(spans.len(), 1);
    assert_eq!(
        spans[0].status.as_ref().unwrap().code,
        SpanStatus::Unset as i32
    );
    assert_eq!(sa(&spans[0], "github.conclusion"), Some("action_required"));
    // Queued and in-progress runs yield no span.
    assert!(all_spans("workflow_run", &json("workflow_run.requested.payload.json")).is_empty());
    let (_, body) = signed_delivery();
    let p: Value = serde_json::from_slice(&body).unwrap();
    assert!(all_spans("workflow_run", &p).is_empty());
    // But every one of them is a log record.
    assert_eq!(all_logs("workflow_run", &p).len(), 1);
}

#[test]
fn a_completed_job_is_a_job_span_a_queue_span_and_a_span_per_step() {
    let p = json("workflow_job.completed.success.with-organization.payload.json");
    let spans = all_spans("workflow_job", &p);
    assert_eq!(spans.len(), 1 + 1 + 8, "job + queue + 8 steps");
    let trace = trace_id(2_202_229_078, 1).to_vec();
    assert!(spans.iter().all(|s| s.trace_id == trace));
    let job = &spans[0];
    assert_eq!(job.name, "linters");
    assert_eq!(job.span_id, event::job_span_id(289_782_451).to_vec());
    assert_eq!(
        job.parent_span_id,
        event::run_span_id(2_202_229_078, 1).to_vec()
    );
    assert_eq!(
        job.start_time_unix_nano,
        parse_rfc3339("2021-08-05T10:33:58Z").unwrap()
    );
    assert_eq!(
        job.end_time_unix_nano,
        parse_rfc3339("2021-08-05T10:38:16Z").unwrap()
    );
    assert_eq!(sa(job, "cicd.worker.name"), Some("GitHub Actions 5"));
    assert_eq!(sa(job, "cicd.pipeline.task.run.result"), Some("success"));
    let queue = &spans[1];
    assert_eq!(queue.name, "queue linters");
    assert_eq!(queue.parent_span_id, job.span_id);
    assert_eq!(
        queue.end_time_unix_nano - queue.start_time_unix_nano,
        60_000_000_000
    );
    let steps = &spans[2..];
    assert_eq!(steps[0].name, "Set up job");
    assert_eq!(
        steps[0].span_id,
        event::step_span_id(289_782_451, 1).to_vec()
    );
    let mut ids: Vec<_> = spans.iter().map(|s| s.span_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), spans.len(), "span ids are unique");
    for s in &spans {
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano, "{}", s.name);
        assert!(
            s.start_time_unix_nano > 1_500_000_000_000_000_000,
            "{}",
            s.name
        );
        assert_eq!(s.parent_span_id.len(), 8);
    }
}

#[test]
fn jobs_not_completed_yield_no_spans_or_metrics() {
    for name in [
        "workflow_job.queued.payload.json",
        "workflow_job.queued.with-deployment.payload.json",
        "workflow_job.in_progress.payload.json",
        "workflow_job.waiting.payload.json",
    ] {
        let p = json(name);
        assert!(all_spans("workflow_job", &p).is_empty(), "{name}");
        assert!(all_metrics("workflow_job", &p).is_empty(), "{name}");
        assert_eq!(all_logs("workflow_job", &p).len(), 1, "{name}");
    }
}

/// A variant of the completed job fixture (built here; the fixture file is unchanged).
fn failed_job_with_odd_steps() -> Value {
    let mut p = json("workflow_job.completed.success.with-organization.payload.json");
    let job = &mut p["workflow_job"];
    job["conclusion"] = "failure".into();
    job["run_attempt"] = 2.into();
    let steps = job["steps"].as_array_mut().unwrap();
    // A queued step: null timestamps.
    steps[1]["started_at"] = Value::Null;
    steps[1]["completed_at"] = Value::Null;
    // A skipped step with reversed timestamps.
    steps[2]["conclusion"] = "skipped".into();
    steps[2]["started_at"] = "2021-08-05T10:30:00Z".into();
    steps[2]["completed_at"] = "2021-08-05T10:29:00Z".into();
    steps[3]["conclusion"] = "timed_out".into();
    p
}

#[test]
fn null_and_reversed_step_times_never_give_negative_or_1970_spans() {
    let p = failed_job_with_odd_steps();
    let spans = all_spans("workflow_job", &p);
    assert_eq!(spans.len(), 1 + 1 + 7, "the queued step has no span");
    assert_eq!(spans[0].trace_id, trace_id(2_202_229_078, 2).to_vec());
    assert_eq!(
        spans[0].status.as_ref().unwrap().code,
        SpanStatus::Error as i32
    );
    let skipped = spans
        .iter()
        .find(|s| sa(s, "github.conclusion") == Some("skipped"));
    let skipped = skipped.unwrap();
    assert_eq!(skipped.start_time_unix_nano, skipped.end_time_unix_nano);
    assert_eq!(
        skipped.status.as_ref().unwrap().code,
        SpanStatus::Unset as i32
    );
    assert_eq!(sa(skipped, "cicd.pipeline.task.run.result"), Some("skip"));
    let timed_out = spans
        .iter()
        .find(|s| sa(s, "github.conclusion") == Some("timed_out"))
        .unwrap();
    assert_eq!(
        timed_out.status.as_ref().unwrap().code,
        SpanStatus::Error as i32
    );
    for s in &spans {
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
        assert!(s.start_time_unix_nano > 1_500_000_000_000_000_000);
    }
    let logs = all_logs("workflow_job", &p);
    assert_eq!(logs[0].severity_text, "WARN");
}

fn histogram_sum(metrics: &[Metric], name: &str) -> Option<f64> {
    metrics
        .iter()
        .find(|m| m.name == name)
        .and_then(|m| match &m.data {
            Some(metric::Data::Histogram(h)) => h.data_points[0].sum,
            _ => None,
        })
}

#[test]
fn completed_runs_and_jobs_give_duration_and_queue_histograms_and_counts() {
    let run = all_metrics("workflow_run", &json("workflow_run.completed.payload.json"));
    let names: Vec<_> = run.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cicd.pipeline.run.duration",
            "cicd.pipeline.run.queue.duration",
            "cicd.pipeline.run.completed"
        ]
    );
    assert_eq!(histogram_sum(&run, "cicd.pipeline.run.duration"), Some(0.0));
    assert_eq!(
        histogram_sum(&run, "cicd.pipeline.run.queue.duration"),
        Some(25.0)
    );
    let job = all_metrics(
        "workflow_job",
        &json("workflow_job.completed.success.with-organization.payload.json"),
    );
    assert_eq!(
        histogram_sum(&job, "cicd.pipeline.task.run.duration"),
        Some(198.0)
    );
    assert_eq!(
        histogram_sum(&job, "cicd.pipeline.task.run.queue.duration"),
        Some(60.0)
    );
    let Some(metric::Data::Histogram(h)) = &job[0].data else {
        panic!("histogram expected");
    };
    let attrs = &h.data_points[0].attributes;
    // The semantic conventions' `vcs.repository.name` has no owner; `vcs.owner.name` has it.
    assert_eq!(attr_str(attrs, "vcs.repository.name"), Some("Hello-World"));
    // (This octokit example says `Codertocat/Hello-World` but `owner.login: Octocoders`.)
    assert_eq!(attr_str(attrs, "vcs.owner.name"), Some("Octocoders"));
    assert_eq!(attr_str(attrs, "cicd.pipeline.name"), Some("CodeQL"));
    assert_eq!(attr_str(attrs, "cicd.pipeline.task.name"), Some("linters"));
    assert_eq!(
        attr_str(attrs, "github.runner.labels"),
        Some("ubuntu-latest")
    );
    // `cicd.pipeline.run.state` as the semantic conventions' duration metric requires it.
    assert_eq!(
        attr_str(attrs, "cicd.pipeline.run.state"),
        Some("executing")
    );
    let Some(metric::Data::Histogram(q)) = &job[1].data else {
        panic!("histogram expected");
    };
    assert_eq!(
        attr_str(&q.data_points[0].attributes, "cicd.pipeline.run.state"),
        Some("pending")
    );
    assert_eq!(attr_str(attrs, "cicd.pipeline.result"), Some("success"));
    assert_eq!(attr_str(attrs, "vcs.ref.head.name"), Some("main"));
    assert_eq!(h.data_points[0].count, 1);
    assert_eq!(h.data_points[0].bucket_counts.iter().sum::<u64>(), 1);
}

#[test]
fn a_published_package_is_counted_by_type_and_name() {
    let p = json("registry_package.published.docker.payload.json");
    let m = all_metrics("registry_package", &p);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].name, "github.package.published");
    let Some(metric::Data::Sum(s)) = &m[0].data else {
        panic!("sum expected");
    };
    let attrs = &s.data_points[0].attributes;
    // The file name says docker; the content says npm.
    assert_eq!(attr_str(attrs, "github.package.type"), Some("npm"));
    assert_eq!(
        attr_str(attrs, "github.package.name"),
        Some("hello-world-npm")
    );
    assert!(s.is_monotonic);
    // A container published through `registry_package` says `CONTAINER`, the `package` event
    // says `container`, and `package_version` may be null: one series, no time from it.
    let mut p = p;
    p["registry_package"]["package_type"] = "CONTAINER".into();
    p["registry_package"]["package_version"] = Value::Null;
    let m = all_metrics("registry_package", &p);
    let Some(metric::Data::Sum(s)) = &m[0].data else {
        panic!("sum expected");
    };
    assert_eq!(
        attr_str(&s.data_points[0].attributes, "github.package.type"),
        Some("container")
    );
    assert!(s.data_points[0].time_unix_nano > 0);
}

#[test]
fn every_fixture_is_a_log_record_with_event_action_delivery_repository_sender() {
    for (event, file) in [
        ("check_run", "check_run.completed.payload.json"),
        ("push", "push.payload.json"),
        (
            "registry_package",
            "registry_package.published.docker.payload.json",
        ),
        ("workflow_run", "workflow_run.completed.payload.json"),
    ] {
        let logs = all_logs(event, &json(file));
        assert_eq!(logs.len(), 1, "{file}");
        let r = &logs[0];
        assert_eq!(attr_str(&r.attributes, "github.event"), Some(event));
        assert_eq!(attr_str(&r.attributes, "github.delivery"), Some("d-1"));
        assert!(
            attr_str(&r.attributes, "vcs.repository.name").is_some(),
            "{file}"
        );
        assert!(attr_str(&r.attributes, "github.sender").is_some(), "{file}");
        assert_eq!(r.event_name, format!("github.{event}"));
        assert!(r.body.is_some());
    }
    let push = all_logs("push", &json("push.payload.json"));
    let body = format!("{:?}", push[0].body);
    assert!(body.contains("deleted"), "{body}");
}

#[test]
fn conversion_survives_missing_null_and_mistyped_fields() {
    for event in [
        "workflow_run",
        "workflow_job",
        "registry_package",
        "push",
        "x",
    ] {
        for payload in [
            serde_json::json!({}),
            serde_json::json!({ "workflow_run": null, "workflow_job": null }),
            serde_json::json!({ "workflow_run": { "status": "completed", "id": "x" } }),
            serde_json::json!({ "workflow_run": { "status": "completed", "id": 1,
                "run_started_at": "2024-01-01T00:00:00Z", "updated_at": null } }),
            serde_json::json!({ "workflow_job": { "status": "completed", "id": 1, "run_id": 2,
                "created_at": 5, "completed_at": "bad", "steps": [null, 1, {"number": "x"}] } }),
            serde_json::json!({ "action": "published", "registry_package": [],
                "repository": { "full_name": 3 } }),
        ] {
            let d = delivery(event, &payload);
            let _ = super::traces::spans(&d);
            let _ = super::metrics::metrics(&d, 1);
            assert_eq!(super::logs::logs(&d, 1).len(), 1);
        }
    }
    // A completed run without an end time yields no span rather than a 1970 one.
    let p = serde_json::json!({ "workflow_run": { "status": "completed", "id": 1,
        "run_started_at": "2024-01-01T00:00:00Z" } });
    assert!(all_spans("workflow_run", &p).is_empty());
}

// ---------------------------------------------------------------------------------------------
// The request handler.

struct Rig {
    handler: WebhookHandler,
    rx: HashMap<Signal, mpsc::Receiver<Batch>>,
    telemetry: Arc<Telemetry>,
}

fn rig_with(config: GithubReceiverConfig, capacity: usize, signals: &[Signal]) -> Rig {
    let telemetry = Telemetry::new();
    let id: ComponentId = "github".parse().unwrap();
    let ct = ComponentTelemetry::new(telemetry.clone(), Kind::Receiver, &id);
    let mut outputs = Outputs::default();
    let mut rx = HashMap::new();
    for s in signals {
        let (tx, r) = mpsc::channel(capacity);
        let input = PipelineInput::new(s.as_str().parse().unwrap(), tx);
        outputs.insert(Output::new(*s, id.clone(), vec![input], &ct));
        rx.insert(*s, r);
    }
    Rig {
        handler: WebhookHandler::new(&config, &outputs, ct),
        rx,
        telemetry,
    }
}

fn rig() -> Rig {
    rig_with(
        GithubReceiverConfig {
            secret: SECRET.into(),
            ..Default::default()
        },
        64,
        &Signal::ALL,
    )
}

fn headers(event: &str, delivery: &str, body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("x-github-event", HeaderValue::from_str(event).unwrap());
    h.insert(
        "x-github-delivery",
        HeaderValue::from_str(delivery).unwrap(),
    );
    h.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&sign(SECRET, body)).unwrap(),
    );
    h
}

impl Rig {
    async fn post(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        self.handler
            .handle_webhook(headers, Body::from(body.to_vec()))
            .await
            .status()
    }

    fn drain(&mut self, signal: Signal) -> usize {
        let mut n = 0;
        if let Some(rx) = self.rx.get_mut(&signal) {
            while let Ok(b) = rx.try_recv() {
                n += b.item_count();
            }
        }
        n
    }

    fn requests(&self, event: &str, status: &str) -> i64 {
        self.telemetry
            .value(
                REQUESTS_COUNTER,
                &[("receiver", "github"), ("event", event), ("status", status)],
            )
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn statuses_for_accepted_ping_duplicate_and_ignored() {
    let mut r = rig();
    let body = fixture("workflow_job.completed.success.with-organization.payload.json");
    let h = headers("workflow_job", "del-1", &body);
    assert_eq!(r.post(&h, &body).await, StatusCode::ACCEPTED);
    assert_eq!(r.drain(Signal::Traces), 10);
    assert_eq!(r.drain(Signal::Metrics), 3);
    assert_eq!(r.drain(Signal::Logs), 1);
    // The same delivery again: 200, nothing emitted.
    assert_eq!(r.post(&h, &body).await, StatusCode::OK);
    assert_eq!(r.drain(Signal::Logs), 0);
    assert_eq!(r.requests("workflow_job", "accepted"), 1);
    assert_eq!(r.requests("workflow_job", "duplicate"), 1);
    let ping = fixture("ping.payload.json");
    assert_eq!(
        r.post(&headers("ping", "p-1", &ping), &ping).await,
        StatusCode::OK
    );
    assert_eq!(r.drain(Signal::Logs), 0);
    assert_eq!(r.requests("ping", "ping"), 1);
    // Events outside `events` are ignored with 200.
    let mut r = rig_with(
        GithubReceiverConfig {
            secret: SECRET.into(),
            events: vec!["workflow_run".into()],
            ..Default::default()
        },
        64,
        &Signal::ALL,
    );
    let push = fixture("push.payload.json");
    assert_eq!(
        r.post(&headers("push", "x-1", &push), &push).await,
        StatusCode::OK
    );
    assert_eq!(r.drain(Signal::Logs), 0);
    assert_eq!(r.requests("push", "ignored"), 1);
    // A push into a traces-only receiver yields nothing: ignored.
    let mut r = rig_with(
        GithubReceiverConfig {
            secret: SECRET.into(),
            ..Default::default()
        },
        64,
        &[Signal::Traces],
    );
    assert_eq!(
        r.post(&headers("push", "x-2", &push), &push).await,
        StatusCode::OK
    );
    assert_eq!(r.drain(Signal::Traces), 0);
    assert_eq!(r.requests("push", "ignored"), 1);
}

#[tokio::test]
async fn statuses_for_bad_requests() {
    let mut r = rig();
    let body = fixture("workflow_run.completed.payload.json");
    let good = headers("workflow_run", "b-1", &body);
    let post = |h: HeaderMap, b: Vec<u8>| {
        let r = &r;
        async move { r.post(&h, &b).await }
    };
    // 401: missing, malformed, wrong, SHA-1 only.
    let mut h = good.clone();
    h.remove("x-hub-signature-256");
    assert_eq!(
        post(h.clone(), body.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    h.insert(
        "x-hub-signature",
        HeaderValue::from_static("sha1=31b49669cc4b7ed10eede4f613768f15e114a90f"),
    );
    assert_eq!(post(h, body.clone()).await, StatusCode::UNAUTHORIZED);
    let mut h = good.clone();
    h.insert("x-hub-signature-256", HeaderValue::from_static("sha256=00"));
    assert_eq!(post(h, body.clone()).await, StatusCode::UNAUTHORIZED);
    let mut flipped = body.clone();
    flipped[10] ^= 1;
    assert_eq!(post(good.clone(), flipped).await, StatusCode::UNAUTHORIZED);
    // 415: another content type (signed correctly).
    let mut h = good.clone();
    h.insert("content-type", HeaderValue::from_static("text/plain"));
    assert_eq!(
        post(h.clone(), body.clone()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    h.remove("content-type");
    assert_eq!(
        post(h, body.clone()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // 400: no event header; malformed JSON; JSON that is not an object.
    let mut h = good.clone();
    h.remove("x-github-event");
    assert_eq!(post(h, body.clone()).await, StatusCode::BAD_REQUEST);
    for bad in [&b"{\"a\":"[..], b"[1,2]", b"", b"null"] {
        let h = headers("workflow_run", "b-2", bad);
        assert_eq!(post(h, bad.to_vec()).await, StatusCode::BAD_REQUEST);
    }
    assert_eq!(r.drain(Signal::Logs), 0, "nothing emitted for bad requests");
    assert!(r.requests("unverified", "unauthorized") >= 4);
    // 413: over the limit, announced or not.
    let r = rig_with(
        GithubReceiverConfig {
            secret: SECRET.into(),
            max_body_bytes: 1000,
            ..Default::default()
        },
        64,
        &Signal::ALL,
    );
    assert_eq!(r.post(&good, &body).await, StatusCode::PAYLOAD_TOO_LARGE);
    let mut h = good.clone();
    h.insert("content-length", HeaderValue::from_static("999999"));
    assert_eq!(r.post(&h, b"{}").await, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn required_headers_must_match() {
    let mut config = GithubReceiverConfig {
        secret: SECRET.into(),
        ..Default::default()
    };
    config.required_headers.insert(
        "X-GitHub-Hook-Installation-Target-Id".into(),
        "2010729".into(),
    );
    let mut r = rig_with(config, 64, &Signal::ALL);
    let body = fixture("push.payload.json");
    let mut h = headers("push", "r-1", &body);
    assert_eq!(r.post(&h, &body).await, StatusCode::BAD_REQUEST);
    h.insert(
        "x-github-hook-installation-target-id",
        HeaderValue::from_static("2010729"),
    );
    assert_eq!(r.post(&h, &body).await, StatusCode::ACCEPTED);
    assert_eq!(r.drain(Signal::Logs), 1);
}

#[tokio::test]
async fn form_encoded_deliveries_are_verified_over_the_form_body() {
    let mut r = rig();
    let payload = String::from_utf8(fixture("push.payload.json")).unwrap();
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload)
        .finish();
    let mut h = headers("push", "f-1", form.as_bytes());
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    assert_eq!(r.post(&h, form.as_bytes()).await, StatusCode::ACCEPTED);
    assert_eq!(r.drain(Signal::Logs), 1);
    let no_payload = b"other=1";
    let mut h = headers("push", "f-2", no_payload);
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    assert_eq!(r.post(&h, no_payload).await, StatusCode::BAD_REQUEST);
}

#[tokio::test(start_paused = true)]
async fn a_full_pipeline_is_503_and_the_redelivery_is_processed() {
    let mut r = rig_with(
        GithubReceiverConfig {
            secret: SECRET.into(),
            ..Default::default()
        },
        1,
        &[Signal::Logs],
    );
    let body = fixture("push.payload.json");
    let first = headers("push", "full-0", &body);
    assert_eq!(r.post(&first, &body).await, StatusCode::ACCEPTED);
    // The channel (capacity 1) is full now: the next delivery waits SEND_WAIT, then 503.
    let h = headers("push", "full-1", &body);
    let response = r.handler.handle_webhook(&h, Body::from(body.clone())).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    assert_eq!(r.requests("push", "refused"), 1);
    assert_eq!(
        r.telemetry.value(
            "sluice_receiver_refused_log_records",
            &[("receiver", "github")]
        ),
        Some(1)
    );
    // Room again: GitHub's redelivery (same id) is processed, not taken for a duplicate.
    assert_eq!(r.drain(Signal::Logs), 1);
    assert_eq!(r.post(&h, &body).await, StatusCode::ACCEPTED);
    assert_eq!(r.drain(Signal::Logs), 1);
    assert_eq!(r.post(&h, &body).await, StatusCode::OK);
}

#[tokio::test]
async fn insecure_skip_verify_accepts_unsigned_deliveries() {
    let mut r = rig_with(
        GithubReceiverConfig {
            insecure_skip_verify: true,
            ..Default::default()
        },
        8,
        &Signal::ALL,
    );
    let body = fixture("push.payload.json");
    let mut h = headers("push", "i-1", &body);
    h.remove("x-hub-signature-256");
    assert_eq!(r.post(&h, &body).await, StatusCode::ACCEPTED);
    assert_eq!(r.drain(Signal::Logs), 1);
}

#[tokio::test]
async fn ci_events_need_the_bearer_token_and_their_fields() {
    let mut r = rig_with(
        GithubReceiverConfig {
            secret: SECRET.into(),
            bearer_token: "t0ken".into(),
            ..Default::default()
        },
        8,
        &Signal::ALL,
    );
    let body = br#"{"event_id":"e-1","event_name":"workflow_job","repository":"o/r","status":"completed","conclusion":"failure","duration_ms":1234}"#;
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    let ci = |h: HeaderMap, b: &'static [u8]| {
        let handler = &r.handler;
        async move { handler.handle_ci_event(&h, Body::from(b)).await }
    };
    assert_eq!(ci(h.clone(), body).await.status(), StatusCode::UNAUTHORIZED);
    h.insert("authorization", HeaderValue::from_static("Bearer wrong"));
    assert_eq!(ci(h.clone(), body).await.status(), StatusCode::UNAUTHORIZED);
    h.insert("authorization", HeaderValue::from_static("Bearer t0ken"));
    let response = ci(h.clone(), body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(ci(h.clone(), body).await.status(), StatusCode::OK, "replay");
    assert_eq!(
        ci(h.clone(), br#"{"event_id":"e-2"}"#).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(r.drain(Signal::Logs), 1);
    assert_eq!(r.drain(Signal::Traces), 0);
}

// ---------------------------------------------------------------------------------------------
// Fuzzing the handler: random bodies and headers never panic, every status is documented.

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    const DOCUMENTED: [StatusCode; 7] = [
        StatusCode::OK,
        StatusCode::ACCEPTED,
        StatusCode::BAD_REQUEST,
        StatusCode::UNAUTHORIZED,
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        StatusCode::SERVICE_UNAVAILABLE,
    ];

    fn body() -> impl Strategy<Value = Vec<u8>> {
        let fixtures: Vec<Vec<u8>> = [
            "workflow_job.completed.success.with-organization.payload.json",
            "workflow_run.completed.payload.json",
            "push.payload.json",
        ]
        .iter()
        .map(|f| fixture(f))
        .collect();
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            "\\PC{0,200}".prop_map(String::into_bytes),
            // Fixtures with random mutations (byte flips, truncation).
            (
                proptest::sample::select(fixtures),
                proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
                any::<Option<usize>>()
            )
                .prop_map(|(mut b, flips, cut)| {
                    for (i, v) in flips {
                        let n = b.len();
                        b[i % n] = v;
                    }
                    if let Some(c) = cut {
                        b.truncate(c % (b.len() + 1));
                    }
                    b
                }),
            // Structurally valid JSON of GitHub's shape with random values.
            (
                proptest::sample::select(vec!["queued", "in_progress", "completed", "waiting"]),
                any::<Option<i64>>(),
                any::<Option<i64>>(),
                "\\PC{0,30}",
                "\\PC{0,30}",
            )
                .prop_map(|(status, id, attempt, t1, t2)| {
                    serde_json::to_vec(&serde_json::json!({
                        "action": status,
                        "workflow_run": { "status": status, "id": id, "run_attempt": attempt,
                            "run_started_at": t1, "updated_at": t2, "name": t1 },
                        "workflow_job": { "status": status, "id": id, "run_id": attempt,
                            "created_at": t2, "started_at": t1, "completed_at": t2,
                            "steps": [{ "number": id, "started_at": t1, "completed_at": t2 }] },
                        "repository": { "full_name": t1 }
                    }))
                    .unwrap()
                }),
        ]
    }

    /// Header values as raw bytes: printable text, known values, and arbitrary bytes (obs-text
    /// above 0x7f, controls; those `HeaderValue` refuses are simply not sent).
    fn header_value() -> impl Strategy<Value = Option<Vec<u8>>> {
        proptest::option::of(prop_oneof![
            "[ -~]{0,40}".prop_map(String::into_bytes),
            Just(b"application/json".to_vec()),
            Just(b"application/x-www-form-urlencoded".to_vec()),
            Just(b"application/json; charset=\xff".to_vec()),
            Just(b"workflow_job".to_vec()),
            Just(b"ping".to_vec()),
            Just(b"Bearer ci-token".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..48),
        ])
    }

    /// Extra headers with arbitrary names (valid ones kept) and values, some repeating the
    /// headers the handler reads.
    fn extra_headers() -> impl Strategy<Value = Vec<(String, Option<Vec<u8>>)>> {
        proptest::collection::vec(
            (
                prop_oneof![
                    "[a-z0-9-]{1,20}",
                    Just("x-github-event".to_string()),
                    Just("x-github-delivery".to_string()),
                    Just("x-hub-signature-256".to_string()),
                    Just("x-hub-signature".to_string()),
                    Just("content-type".to_string()),
                    Just("authorization".to_string()),
                    Just("x-github-hook-installation-target-id".to_string()),
                ],
                header_value(),
            ),
            0..4,
        )
    }

    fn put(h: &mut HeaderMap, name: &str, v: &Option<Vec<u8>>, append: bool) {
        let Ok(name) = axum::http::HeaderName::from_bytes(name.as_bytes()) else {
            return;
        };
        if let Some(v) = v.as_deref().and_then(|v| HeaderValue::from_bytes(v).ok()) {
            if append {
                h.append(name, v);
            } else {
                h.insert(name, v);
            }
        }
    }

    fn check(status: StatusCode, response: &axum::response::Response) -> Result<(), TestCaseError> {
        prop_assert!(DOCUMENTED.contains(&status), "{:?}", status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            prop_assert!(response.headers().contains_key("retry-after"));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn the_handler_never_panics_and_answers_a_documented_status(
            body in body(),
            content_type in prop_oneof![
                3 => Just(Some(b"application/json".to_vec())),
                1 => header_value(),
            ],
            event in prop_oneof![
                3 => proptest::sample::select(vec!["workflow_job", "workflow_run", "push", "ping",
                    "registry_package", "check_run"]).prop_map(|e| Some(e.as_bytes().to_vec())),
                1 => header_value(),
            ],
            delivery in header_value(),
            sign_it in proptest::bool::weighted(0.8),
            raw_signature in header_value(),
            length in proptest::option::of(any::<u32>()),
            extra in extra_headers(),
            with_required in proptest::bool::weighted(0.2),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            let mut r = rig_with(
                GithubReceiverConfig {
                    secret: SECRET.into(),
                    max_body_bytes: 64 * 1024,
                    bearer_token: "ci-token".into(),
                    required_headers: if with_required {
                        [("X-GitHub-Hook-Installation-Target-Id".to_string(), "2010729".to_string())]
                            .into_iter()
                            .collect()
                    } else {
                        Default::default()
                    },
                    ..Default::default()
                },
                1,
                &Signal::ALL,
            );
            let mut h = HeaderMap::new();
            put(&mut h, "content-type", &content_type, false);
            put(&mut h, "x-github-event", &event, false);
            put(&mut h, "x-github-delivery", &delivery, false);
            if sign_it {
                put(&mut h, "x-hub-signature-256", &Some(sign(SECRET, &body).into_bytes()), false);
            } else {
                put(&mut h, "x-hub-signature-256", &raw_signature, false);
            }
            put(&mut h, "content-length", &length.map(|l| l.to_string().into_bytes()), false);
            for (name, value) in &extra {
                put(&mut h, name, value, true);
            }
            // (An extra `x-hub-signature-256` is appended after the first: the first counts.)
            let signed = sign_it;
            let (a, b, c) = runtime.block_on(async {
                // Twice: the second may be a duplicate or meet a full pipeline. And the same
                // request on the bearer-token path.
                let a = r.handler.handle_webhook(&h, Body::from(body.clone())).await;
                let b = r.handler.handle_webhook(&h, Body::from(body.clone())).await;
                let c = r.handler.handle_ci_event(&h, Body::from(body.clone())).await;
                (a, b, c)
            });
            check(a.status(), &a)?;
            check(b.status(), &b)?;
            check(c.status(), &c)?;
            if !signed {
                prop_assert!(a.status() != StatusCode::ACCEPTED);
            }
            for s in Signal::ALL {
                r.drain(s);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Review fixes: re-runs, completed jobs with missing parts, semantic-convention names.

fn testdata_json(name: &str) -> Value {
    serde_json::from_str(&testdata(name)).unwrap()
}

fn has_attr(span: &Span, key: &str) -> bool {
    span.attributes.iter().any(|kv| kv.key == key)
}

#[test]
fn a_rerun_is_its_own_trace_and_its_jobs_join_it() {
    let run = all_spans(
        "workflow_run",
        &testdata_json("workflow_run.completed.rerun.json"),
    );
    assert_eq!(run.len(), 1);
    let root = &run[0];
    assert_eq!(root.trace_id, trace_id(5_555_512_345, 2).to_vec());
    assert_ne!(root.trace_id, trace_id(5_555_512_345, 1).to_vec());
    assert_eq!(root.name, "Fix the flaky test", "a null name falls back");
    assert_eq!(root.links.len(), 1);
    assert_eq!(root.links[0].trace_id, trace_id(5_555_512_345, 1).to_vec());
    assert_eq!(sa(root, "cicd.pipeline.result"), Some("timeout"));
    assert_eq!(sa(root, "error.type"), Some("timed_out"));
    assert_eq!(sa(root, "vcs.ref.head.name"), Some("feature/x"));
    // Its `created_at` is the first attempt's: no run queue time from it (it would be ~20 min
    // here), but its duration from `run_started_at`.
    let metrics = all_metrics(
        "workflow_run",
        &testdata_json("workflow_run.completed.rerun.json"),
    );
    assert!(histogram_sum(&metrics, "cicd.pipeline.run.queue.duration").is_none());
    assert_eq!(
        histogram_sum(&metrics, "cicd.pipeline.run.duration"),
        Some(192.0)
    );
    let jobs = all_spans(
        "workflow_job",
        &testdata_json("workflow_job.completed.edge-cases.json"),
    );
    assert!(jobs.iter().all(|s| s.trace_id == root.trace_id));
    assert_eq!(jobs[0].parent_span_id, root.span_id);
}

#[test]
fn a_completed_job_with_null_conclusion_and_unfinished_steps_has_only_sound_spans() {
    let p = testdata_json("workflow_job.completed.edge-cases.json");
    let spans = all_spans("workflow_job", &p);
    let names: Vec<_> = spans.iter().map(|s| s.name.as_str()).collect();
    // No span for the step without an end, the queued step, or the 1970 start.
    assert_eq!(
        names,
        [
            "build (ubuntu, 3.12)",
            "queue build (ubuntu, 3.12)",
            "Set up job",
            "Upload",
            "Post"
        ]
    );
    let min = parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
    for s in &spans {
        assert!(s.start_time_unix_nano > min, "{}", s.name);
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano, "{}", s.name);
    }
    let job = &spans[0];
    // `started_at` before `created_at`: the job span starts at the earlier, so it contains
    // its queue span.
    assert_eq!(
        job.start_time_unix_nano,
        parse_rfc3339("2024-05-02T09:00:03Z").unwrap()
    );
    assert_eq!(
        job.status.as_ref().unwrap().code,
        SpanStatus::Unset as i32,
        "a null conclusion is not an error"
    );
    assert!(!has_attr(job, "cicd.pipeline.task.run.result"));
    assert!(!has_attr(job, "error.type"));
    assert_eq!(
        sa(job, "cicd.worker.id"),
        Some("7"),
        "a string, as in semconv"
    );
    let queue = &spans[1];
    assert_eq!(queue.start_time_unix_nano, queue.end_time_unix_nano);
    assert!(!has_attr(queue, "cicd.pipeline.task.type"));
    assert_eq!(sa(queue, "github.job.phase"), Some("queue"));
    let post = &spans[4];
    assert_eq!(post.span_id, event::step_span_id(30_433_642, 6).to_vec());
    assert_eq!(sa(post, "error.type"), Some("failure"));
    // Metrics: a count and sound histograms, nothing negative.
    let metrics = all_metrics("workflow_job", &p);
    assert_eq!(
        histogram_sum(&metrics, "cicd.pipeline.task.run.queue.duration"),
        Some(0.0)
    );
    assert_eq!(
        histogram_sum(&metrics, "cicd.pipeline.task.run.duration"),
        Some(177.0)
    );
    // Without `completed_at` (status completed all the same): no job span at all, and the
    // completion is still counted.
    let mut p = p;
    p["workflow_job"]["completed_at"] = Value::Null;
    let spans = all_spans("workflow_job", &p);
    assert!(spans.iter().all(|s| s.name != "build (ubuntu, 3.12)"));
    for s in &spans {
        assert!(s.start_time_unix_nano > min, "{}", s.name);
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano, "{}", s.name);
    }
    let metrics = all_metrics("workflow_job", &p);
    assert!(metrics
        .iter()
        .any(|m| m.name == "cicd.pipeline.task.run.completed"));
    assert!(histogram_sum(&metrics, "cicd.pipeline.task.run.duration").is_none());
}

#[test]
fn repository_owner_and_refs_use_the_semantic_conventions() {
    let p = testdata_json("workflow_job.completed.edge-cases.json");
    let d = delivery("workflow_job", &p);
    let resource = d.resource();
    assert_eq!(
        attr_str(&resource.attributes, "vcs.repository.name"),
        Some("octo-repo")
    );
    assert_eq!(
        attr_str(&resource.attributes, "vcs.owner.name"),
        Some("octo-org")
    );
    assert_eq!(
        attr_str(&resource.attributes, "service.name"),
        Some("octo-org/octo-repo")
    );
    let logs = all_logs("workflow_job", &p);
    assert_eq!(
        attr_str(&logs[0].attributes, "vcs.repository.name"),
        Some("octo-repo")
    );
    // An organization's delivery without a repository: the organization is the owner.
    let org = serde_json::json!({ "action": "published",
        "organization": { "login": "octo-org" }, "package": { "name": "p" } });
    let d = delivery("package", &org);
    assert_eq!(
        attr_str(&d.resource().attributes, "vcs.owner.name"),
        Some("octo-org")
    );
    assert_eq!(
        attr_str(&d.resource().attributes, "service.name"),
        Some("github")
    );
    // A push names its ref without `refs/tags/` and says it is a tag.
    let push = all_logs("push", &json("push.payload.json"));
    assert_eq!(
        attr_str(&push[0].attributes, "vcs.ref.head.name"),
        Some("simple-tag")
    );
    assert_eq!(
        attr_str(&push[0].attributes, "vcs.ref.head.type"),
        Some("tag")
    );
    // A CI event's `owner/repo` is split the same way.
    let ci = logs::ci_event_logs(
        &serde_json::json!({ "event_id": "e1", "event_name": "step",
            "repository": "octo-org/octo-repo" }),
        "",
        1,
    );
    let record = &ci[0].scope_logs[0].log_records[0];
    assert_eq!(
        attr_str(&record.attributes, "vcs.repository.name"),
        Some("octo-repo")
    );
    assert_eq!(
        attr_str(&record.attributes, "vcs.owner.name"),
        Some("octo-org")
    );
}

#[tokio::test]
async fn request_counters_are_bounded_whatever_event_names_arrive() {
    // Without a secret anyone can invent event names: the series stop growing at the bound.
    let r = rig_with(
        GithubReceiverConfig {
            insecure_skip_verify: true,
            ..Default::default()
        },
        1,
        &[],
    );
    let body = b"{}";
    for i in 0..(super::http::MAX_COUNTERS + 100) {
        let mut h = headers("push", &format!("c-{i}"), body);
        h.insert(
            "x-github-event",
            HeaderValue::from_str(&format!("event_{i}")).unwrap(),
        );
        assert_eq!(
            r.post(&h, body).await,
            StatusCode::OK,
            "ignored: no pipelines"
        );
    }
    assert_eq!(r.requests("event_0", "ignored"), 1);
    assert_eq!(r.requests("other", "ignored"), 100);
    assert_eq!(r.handler.request_series(), super::http::MAX_COUNTERS + 1);
}

// ---------------------------------------------------------------------------------------------
// Fuzzing the conversion: GitHub-shaped payloads with any field replaced by any JSON value
// (null, wrong types, odd or pre-1970 timestamps) never panic, never give a negative or
// pre-2000 span, and never a negative duration.

mod fuzz_conversion {
    use proptest::prelude::*;

    use super::*;

    fn timestamp() -> impl Strategy<Value = String> {
        "(19|20|00|99)[0-9]{2}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,12})?(Z|[+-][0-2][0-9]:[0-5][0-9])?"
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            timestamp().prop_map(Value::from),
            proptest::sample::select(vec![
                "completed",
                "queued",
                "waiting",
                "in_progress",
                "success",
                "failure",
                "skipped",
                "cancelled",
                "timed_out",
                "",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    const KEYS: &[&str] = &[
        "status",
        "conclusion",
        "created_at",
        "started_at",
        "completed_at",
        "run_started_at",
        "updated_at",
        "id",
        "run_id",
        "run_attempt",
        "steps",
        "name",
        "display_title",
        "labels",
        "number",
        "head_branch",
        "runner_id",
        "package_version",
        "package_type",
        "repository",
    ];

    fn payloads() -> Vec<(&'static str, &'static str, Value)> {
        vec![
            (
                "workflow_job",
                "workflow_job",
                json("workflow_job.completed.success.with-organization.payload.json"),
            ),
            (
                "workflow_job",
                "workflow_job",
                testdata_json("workflow_job.completed.edge-cases.json"),
            ),
            (
                "workflow_run",
                "workflow_run",
                json("workflow_run.completed.payload.json"),
            ),
            (
                "workflow_run",
                "workflow_run",
                testdata_json("workflow_run.completed.rerun.json"),
            ),
            (
                "registry_package",
                "registry_package",
                json("registry_package.published.docker.payload.json"),
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn any_field_of_any_type_gives_sound_telemetry_or_none(
            which in 0usize..5,
            edits in proptest::collection::vec(
                (proptest::sample::select(KEYS), any::<Option<u8>>(), value()),
                1..6,
            ),
        ) {
            let (event, key, mut p) = payloads().swap_remove(which);
            for (field, step, v) in edits {
                let target = &mut p[key];
                match (step, target.get_mut("steps").and_then(Value::as_array_mut)) {
                    (Some(i), Some(steps)) if !steps.is_empty() => {
                        let n = steps.len();
                        if let Some(o) = steps[usize::from(i) % n].as_object_mut() {
                            o.insert(field.to_string(), v);
                        }
                    }
                    _ => {
                        if let Some(o) = target.as_object_mut() {
                            o.insert(field.to_string(), v);
                        }
                    }
                }
            }
            let y2000 = 946_684_800_000_000_000u64;
            for s in all_spans(event, &p) {
                prop_assert!(s.start_time_unix_nano >= y2000, "{}", s.name);
                prop_assert!(s.end_time_unix_nano >= s.start_time_unix_nano, "{}", s.name);
                prop_assert_eq!(s.trace_id.len(), 16);
                prop_assert_eq!(s.span_id.len(), 8);
            }
            for m in all_metrics(event, &p) {
                if let Some(metric::Data::Histogram(h)) = &m.data {
                    for dp in &h.data_points {
                        prop_assert!(dp.sum.unwrap_or(0.0) >= 0.0, "{}", m.name);
                        prop_assert!(dp.time_unix_nano >= dp.start_time_unix_nano);
                        prop_assert!(dp.start_time_unix_nano >= y2000);
                    }
                }
            }
            prop_assert_eq!(all_logs(event, &p).len(), 1);
        }
    }
}
