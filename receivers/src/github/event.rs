//! Reading GitHub payloads defensively: every field may be missing, `null` or of another type
//! than documented, and nothing here panics. Also the parts the traces, metrics and logs share:
//! timestamps, conclusions, deterministic ids and the resource.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sluice_pipeline::otlp::{kv, kv_str};
use sluice_proto::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
use sluice_proto::resource::v1::Resource;

/// One verified, parsed delivery.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// `X-GitHub-Event`.
    pub event: &'a str,
    /// `X-GitHub-Delivery`, if sent.
    pub delivery_id: Option<&'a str>,
    /// The payload (a JSON object).
    pub payload: &'a Value,
    /// The configured `service_name` (may be empty).
    pub service_name: &'a str,
}

impl Delivery<'_> {
    /// The payload's `action`, if any.
    pub fn action(&self) -> Option<&str> {
        str_at(self.payload, &["action"])
    }

    /// The repository's `owner/name`, if any.
    pub fn repository(&self) -> Option<&str> {
        str_at(self.payload, &["repository", "full_name"])
    }

    /// The repository's own name (`repo` of `owner/repo`), as the semantic conventions define
    /// `vcs.repository.name`: without the organization.
    pub fn repository_name(&self) -> Option<&str> {
        str_at(self.payload, &["repository", "name"])
            .filter(|n| !n.is_empty())
            .or_else(|| self.repository().map(|full| split_full_name(full).1))
    }

    /// The repository's owner (`owner` of `owner/repo`): `vcs.owner.name`; for an
    /// organization's delivery without a repository (e.g. an organization `package` event), the
    /// organization.
    pub fn owner_name(&self) -> Option<&str> {
        str_at(self.payload, &["repository", "owner", "login"])
            .filter(|n| !n.is_empty())
            .or_else(|| self.repository().and_then(|full| split_full_name(full).0))
            .or_else(|| str_at(self.payload, &["organization", "login"]).filter(|n| !n.is_empty()))
    }

    /// Pushes `vcs.repository.name` and `vcs.owner.name`.
    pub fn push_repository(&self, attrs: &mut Vec<KeyValue>) {
        push_str(attrs, "vcs.repository.name", self.repository_name());
        push_str(attrs, "vcs.owner.name", self.owner_name());
    }

    /// The resource of everything this delivery yields: `service.name` and the VCS
    /// repository attributes.
    pub fn resource(&self) -> Resource {
        let repo = self.repository();
        let service = if !self.service_name.is_empty() {
            self.service_name
        } else {
            repo.unwrap_or("github")
        };
        let mut attrs = vec![kv_str("service.name", service)];
        let r = self.payload.get("repository");
        self.push_repository(&mut attrs);
        push_str(
            &mut attrs,
            "vcs.repository.url.full",
            r.and_then(|r| str_at(r, &["html_url"])),
        );
        push_str(
            &mut attrs,
            "vcs.provider.name",
            Some("github").filter(|_| repo.is_some()),
        );
        sluice_pipeline::otlp::resource(attrs)
    }
}

/// `owner/repo` → (`Some(owner)`, `repo`); a name without `/` is all repository name.
pub fn split_full_name(full: &str) -> (Option<&str>, &str) {
    match full.split_once('/') {
        Some((owner, name)) if !owner.is_empty() && !name.is_empty() => (Some(owner), name),
        _ => (None, full),
    }
}

/// Pushes a run's, job's or step's conclusion onto its span: `result_key` with the semantic
/// conventions' value, `github.conclusion` as GitHub says it, and `error.type` (the conclusion)
/// when it makes the span an error, as the conventions require for a failed pipeline run.
pub fn push_conclusion(attrs: &mut Vec<KeyValue>, result_key: &str, conclusion: Option<&str>) {
    push_str(attrs, result_key, conclusion.map(semconv_result));
    push_str(attrs, "github.conclusion", conclusion);
    if outcome(conclusion) == Outcome::Error {
        push_str(attrs, "error.type", conclusion);
    }
}

/// The string at `path` below `v`, if every step exists and the leaf is a string.
pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path)?.as_str()
}

/// The integer at `path` (a JSON integer, or a float with no fractional part).
pub fn i64_at(v: &Value, path: &[&str]) -> Option<i64> {
    let leaf = at(v, path)?;
    leaf.as_i64().or_else(|| {
        leaf.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// The value at `path`, if every step exists and is not `null`.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    (!cur.is_null()).then_some(cur)
}

/// The timestamp at `path` in Unix nanoseconds: an RFC 3339 string (GitHub's format) or an
/// integer of Unix seconds (some older payload fields). `None` when missing, unparsable, or
/// not after 1970 (a `0` or 1970 time is never emitted).
pub fn time_at(v: &Value, path: &[&str]) -> Option<u64> {
    let leaf = at(v, path)?;
    let nanos = match leaf {
        Value::String(s) => parse_rfc3339(s)?,
        Value::Number(n) => {
            let secs = n.as_i64()?;
            u64::try_from(secs).ok()?.checked_mul(1_000_000_000)?
        }
        _ => return None,
    };
    // Before 2000 is not a GitHub Actions time: treat as missing rather than draw 1970 spans.
    (nanos >= 946_684_800_000_000_000).then_some(nanos)
}

/// Parses an RFC 3339 timestamp (`2024-03-11T15:20:31Z`, `…+02:00`, `….123Z`) into Unix
/// nanoseconds. `None` for anything else, or times before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut frac_nanos: i64 = 0;
    if let Some(after) = rest.strip_prefix(b".") {
        let digits = after.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let mut scale = 100_000_000i64;
        for c in &after[..digits.min(9)] {
            frac_nanos += i64::from(c - b'0') * scale;
            scale /= 10;
        }
        rest = &after[digits..];
    }
    let offset_secs: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let m = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let nanos = i128::from(secs) * 1_000_000_000 + i128::from(frac_nanos);
    u64::try_from(nanos).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A `(start, end)` pair that is never reversed: an end before its start becomes the start
/// (a zero-length span, as GitHub reports reversed times for some skipped jobs and steps).
pub fn ordered(start: u64, end: u64) -> (u64, u64) {
    (start, end.max(start))
}

/// How a run, job or step ended, from GitHub's `conclusion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `success`.
    Success,
    /// `failure`, `timed_out`, `startup_failure`: the span status is an error.
    Error,
    /// `cancelled`, `skipped`, `neutral`, `action_required`, `stale` and anything newer: kept
    /// as attributes, not errors.
    Other,
}

/// Whether a run or job has `status: completed`.
pub fn completed(v: &Value) -> bool {
    str_at(v, &["status"]) == Some("completed")
}

/// Classifies a conclusion.
pub fn outcome(conclusion: Option<&str>) -> Outcome {
    match conclusion {
        Some("success") => Outcome::Success,
        Some("failure" | "timed_out" | "startup_failure") => Outcome::Error,
        _ => Outcome::Other,
    }
}

/// The semantic-conventions value of `cicd.pipeline.result` / `cicd.pipeline.task.run.result`
/// for a GitHub conclusion; conclusions with no counterpart keep GitHub's word.
pub fn semconv_result(conclusion: &str) -> &str {
    match conclusion {
        "success" => "success",
        "failure" => "failure",
        "timed_out" => "timeout",
        "cancelled" => "cancellation",
        "skipped" => "skip",
        "startup_failure" => "error",
        other => other,
    }
}

/// The trace id of a workflow run attempt: the first 16 bytes of
/// `SHA-256("{run_id}{run_attempt}t")` (the Collector's githubreceiver derivation).
pub fn trace_id(run_id: i64, run_attempt: i64) -> [u8; 16] {
    let h = Sha256::digest(format!("{run_id}{run_attempt}t").as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    id
}

/// A span id: bytes 8..16 of `SHA-256(input)` (as the Collector's githubreceiver).
pub fn span_id(input: &str) -> [u8; 8] {
    let h = Sha256::digest(input.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[8..16]);
    id
}

/// The root span id of a workflow run attempt: `span_id("{run_id}{run_attempt}s")`.
pub fn run_span_id(run_id: i64, run_attempt: i64) -> [u8; 8] {
    span_id(&format!("{run_id}{run_attempt}s"))
}

/// The span id of a job: `span_id("{job_id}-j")`.
pub fn job_span_id(job_id: i64) -> [u8; 8] {
    span_id(&format!("{job_id}-j"))
}

/// The span id of a job's queue span: `span_id("{job_id}-q")`.
pub fn queue_span_id(job_id: i64) -> [u8; 8] {
    span_id(&format!("{job_id}-q"))
}

/// The span id of step `number` of a job: `span_id("{job_id}-{number}-s")`.
pub fn step_span_id(job_id: i64, number: i64) -> [u8; 8] {
    span_id(&format!("{job_id}-{number}-s"))
}

/// Pushes a string attribute when the value is present and not empty.
pub fn push_str(attrs: &mut Vec<KeyValue>, key: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        attrs.push(kv_str(key, v));
    }
}

/// Pushes, for each `(key, field)`, the string of `v`'s top-level `field` (see [`push_str`]).
pub fn push_fields(attrs: &mut Vec<KeyValue>, v: &Value, fields: &[(&str, &str)]) {
    for (key, field) in fields {
        push_str(attrs, key, str_at(v, &[field]));
    }
}

/// Pushes an integer attribute when present.
pub fn push_i64(attrs: &mut Vec<KeyValue>, key: &str, value: Option<i64>) {
    if let Some(v) = value {
        attrs.push(sluice_pipeline::otlp::kv_i64(key, v));
    }
}

/// A string-array attribute.
pub fn kv_strings(key: &str, values: &[&str]) -> KeyValue {
    kv(
        key,
        any_value::Value::ArrayValue(ArrayValue {
            values: values
                .iter()
                .map(|s| AnyValue {
                    value: Some(any_value::Value::StringValue((*s).to_string())),
                })
                .collect(),
        }),
    )
}

/// The string members of the array at `path` (others skipped).
pub fn strings_at<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a str> {
    at(v, path)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The workflow's display name: `name`, else `display_title`, else `path`, else
/// `workflow <workflow_id>`, else `workflow`. (GitHub sends an empty `name` for some runs.)
pub fn workflow_name(run: &Value) -> String {
    for key in ["name", "display_title", "path"] {
        if let Some(s) = str_at(run, &[key]).filter(|s| !s.trim().is_empty()) {
            return s.to_string();
        }
    }
    match i64_at(run, &["workflow_id"]) {
        Some(id) => format!("workflow {id}"),
        None => "workflow".to_string(),
    }
}
