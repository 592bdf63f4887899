//! Step timings from GitHub's REST API, when `GITHUB_TOKEN` is set: `GET {GITHUB_API_URL}/repos/
//! {GITHUB_REPOSITORY}/actions/runs/{GITHUB_RUN_ID}/jobs`, the job matched by its check run id
//! (`${{ job.check_run_id }}`, given as `--check-run-id`; never guessed from the runner's
//! name), its steps turned into `source: github_api` step records. Any failure is returned to
//! be reported; it is never fatal. HTTPS uses rustls (ring) with Mozilla's root certificates
//! compiled in, plus those of `$SSL_CERT_FILE` when set; plain `http://` works too (a test
//! serves a recorded response on 127.0.0.1).

use sluice_pipeline::error::error_chain;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::Value;

use super::capture::{step_end_record, step_start_record, StepEnd, StepSource};
use super::error::CiError;

/// The API when `GITHUB_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// Jobs per page (the API's maximum).
const PER_PAGE: usize = 100;
/// Pages read at most (a run of more than 1,000 jobs is not searched further).
const MAX_PAGES: usize = 10;
/// One request's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest response read.
const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
struct JobsPage {
    #[serde(default)]
    total_count: Option<u64>,
    #[serde(default)]
    jobs: Vec<Job>,
}

#[derive(Debug, Deserialize)]
struct Job {
    id: u64,
    #[serde(default)]
    check_run_url: Option<String>,
    #[serde(default)]
    steps: Vec<ApiStep>,
}

#[derive(Debug, Deserialize)]
struct ApiStep {
    name: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    completed_at: Option<String>,
}

/// The step records of the current job, or `Ok(None)` when there is no `GITHUB_TOKEN`.
pub async fn step_records(
    env: &dyn Fn(&str) -> Option<String>,
    check_run_id: Option<u64>,
) -> Result<Option<Vec<Value>>, CiError> {
    let non_empty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let Some(token) = non_empty("GITHUB_TOKEN") else {
        return Ok(None);
    };
    let err = |m: String| CiError::GithubApi(m);
    let check_run_id = check_run_id.ok_or_else(|| {
        err(
            "GITHUB_TOKEN is set but no check run id was given (--check-run-id, or the \
             action's `check-run-id` input); the job is matched by it only"
                .into(),
        )
    })?;
    let repo =
        non_empty("GITHUB_REPOSITORY").ok_or_else(|| err("GITHUB_REPOSITORY is not set".into()))?;
    let run_id =
        non_empty("GITHUB_RUN_ID").ok_or_else(|| err("GITHUB_RUN_ID is not set".into()))?;
    let api = non_empty("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string());
    let api = api.trim_end_matches('/');
    if !(api.starts_with("https://") || api.starts_with("http://")) {
        return Err(err(format!("{api}: not an http:// or https:// URL")));
    }
    let client = client()?;
    let mut seen = 0usize;
    for page in 1..=MAX_PAGES {
        let url = format!(
            "{api}/repos/{repo}/actions/runs/{run_id}/jobs?per_page={PER_PAGE}&page={page}"
        );
        let body = get(&client, &url, &token).await?;
        let parsed: JobsPage = serde_json::from_slice(&body)
            .map_err(|e| err(format!("{url}: not a jobs list: {e}")))?;
        let n = parsed.jobs.len();
        seen += n;
        if let Some(job) = parsed.jobs.into_iter().find(|j| matches(j, check_run_id)) {
            return Ok(Some(records(&job.steps)));
        }
        let total = parsed
            .total_count
            .map_or(usize::MAX, |t| usize::try_from(t).unwrap_or(usize::MAX));
        if n < PER_PAGE || seen >= total {
            break;
        }
    }
    Err(err(format!(
        "no job with check run id {check_run_id} among the {seen} jobs of run {run_id}"
    )))
}

fn matches(job: &Job, check_run_id: u64) -> bool {
    job.id == check_run_id
        || job
            .check_run_url
            .as_deref()
            .is_some_and(|u| u.rsplit('/').next() == Some(check_run_id.to_string().as_str()))
}

type ApiClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// HTTPS (rustls, ring, Mozilla's roots compiled in) or plain HTTP (a test's 127.0.0.1 server).
fn client() -> Result<ApiClient, CiError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(REQUEST_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config()?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// TLS with the ring provider named explicitly (no process-wide default needed), Mozilla's
/// roots, and the PEM certificates of `$SSL_CERT_FILE` when set (a GitHub Enterprise Server
/// behind a private CA, or an intercepting proxy).
fn tls_config() -> Result<rustls::ClientConfig, CiError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let err = |m: String| CiError::GithubApi(format!("TLS setup: {m}"));
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        let certs = CertificateDer::pem_file_iter(&file)
            .map_err(|e| err(format!("$SSL_CERT_FILE {}: {e}", file.to_string_lossy())))?;
        for cert in certs.flatten() {
            // A certificate the store cannot use is skipped, as system stores do.
            let _ = roots.add(cert);
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| err(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

async fn get(client: &ApiClient, url: &str, token: &str) -> Result<Bytes, CiError> {
    let err = |m: String| CiError::GithubApi(m);
    let req = hyper::Request::get(url)
        .header("accept", "application/vnd.github+json")
        .header("authorization", format!("Bearer {token}"))
        .header("x-github-api-version", "2022-11-28")
        .header("user-agent", concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<Bytes>::new())
        .map_err(|e| err(format!("{url}: {e}")))?;
    let fut = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| err(format!("{url}: {}", error_chain(&e))))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| err(format!("{url}: reading the response: {e}")))?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let short: String = text.chars().take(300).collect();
            return Err(err(format!("{url}: HTTP {status}: {short}")));
        }
        Ok(body)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| {
            err(format!(
                "{url}: no answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            ))
        })?
}

/// A job's steps as step records: a start record for each step that started, an end record
/// for each that completed (exit code 0 for `success`, `skipped` and `neutral`, 1 otherwise).
/// Skipped steps that never started are left out.
fn records(steps: &[ApiStep]) -> Vec<Value> {
    let mut out = Vec::new();
    for s in steps {
        if s.conclusion.as_deref() == Some("skipped") {
            continue;
        }
        let Some(start) = s.started_at.as_deref().and_then(parse_time) else {
            continue;
        };
        out.push(step_start_record(&s.name, start));
        let completed = s.status.as_deref() == Some("completed");
        let end = s.completed_at.as_deref().and_then(parse_time);
        if let (true, Some(end)) = (completed, end) {
            let exit_code = match s.conclusion.as_deref() {
                Some("success") | Some("neutral") => 0,
                _ => 1,
            };
            out.push(step_end_record(
                &s.name,
                StepEnd {
                    start_unix_nano: start,
                    end_unix_nano: end.max(start),
                    exit_code,
                },
                StepSource::GithubApi,
            ));
        }
    }
    out
}

/// An RFC 3339 time (`Z` or a `±HH:MM` offset, optional fraction) in Unix nanoseconds.
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    let (local, offset_secs): (&str, i64) = if let Some(l) = s.strip_suffix('Z') {
        (l, 0)
    } else {
        let tail_at = s.len().checked_sub(6)?;
        let tail = s.get(tail_at..)?;
        let b = tail.as_bytes();
        if (b[0] == b'+' || b[0] == b'-') && b[3] == b':' {
            let h: i64 = tail.get(1..3)?.parse().ok()?;
            let m: i64 = tail.get(4..6)?.parse().ok()?;
            let sign = if b[0] == b'-' { -1 } else { 1 };
            (s.get(..tail_at)?, sign * (h * 3600 + m * 60))
        } else {
            (s, 0)
        }
    };
    let t = humantime::parse_rfc3339_weak(local).ok()?;
    let nanos = i128::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_nanos()).ok()?;
    // Local time minus the offset is UTC.
    let utc = nanos - i128::from(offset_secs) * 1_000_000_000;
    u64::try_from(utc).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_and_offset_times() {
        let z = parse_time("2020-01-20T17:42:40Z").unwrap();
        assert_eq!(z, 1_579_542_160 * 1_000_000_000);
        assert_eq!(parse_time("2020-01-20T09:42:40.000-08:00"), Some(z));
        assert_eq!(parse_time("2020-01-20T18:42:40+01:00"), Some(z));
        assert_eq!(parse_time("2020-01-20T17:42:40.5Z"), Some(z + 500_000_000));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn steps_become_records_running_steps_have_no_end_and_skipped_ones_are_left_out() {
        let steps: Vec<ApiStep> = serde_json::from_str(
            r#"[
            {"name":"Set up job","status":"completed","conclusion":"success","number":1,
             "started_at":"2020-01-20T09:42:40Z","completed_at":"2020-01-20T09:42:41Z"},
            {"name":"test","status":"completed","conclusion":"failure","number":2,
             "started_at":"2020-01-20T09:42:41Z","completed_at":"2020-01-20T09:42:50Z"},
            {"name":"lint","status":"completed","conclusion":"skipped","number":3,
             "started_at":null,"completed_at":null},
            {"name":"report","status":"in_progress","conclusion":null,"number":4,
             "started_at":"2020-01-20T09:42:50Z","completed_at":null}
        ]"#,
        )
        .unwrap();
        let r = records(&steps);
        let kinds: Vec<(String, String)> = r
            .iter()
            .map(|v| {
                (
                    v["cicd.pipeline.task.name"].as_str().unwrap().to_string(),
                    v["sluice.ci.step"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let k = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            kinds,
            vec![
                k("Set up job", "start"),
                k("Set up job", "end"),
                k("test", "start"),
                k("test", "end"),
                k("report", "start"),
            ]
        );
        assert_eq!(r[3]["sluice.ci.step.exit_code"], 1);
        assert_eq!(r[3]["sluice.ci.step.source"], "github_api");
        assert_eq!(r[1]["sluice.ci.step.exit_code"], 0);
    }

    #[test]
    fn a_job_matches_by_id_or_check_run_url_only() {
        let job = Job {
            id: 5,
            check_run_url: Some("https://api.github.com/repos/o/r/check-runs/77".into()),
            steps: vec![],
        };
        assert!(matches(&job, 5));
        assert!(matches(&job, 77));
        assert!(!matches(&job, 7));
    }
}
