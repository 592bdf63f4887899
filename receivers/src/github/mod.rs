//! The `github` receiver: GitHub webhook deliveries (a repository's or an organization's hook,
//! or a GitHub App's) in, CI telemetry out.
//!
//! - **Endpoint**: `POST <path>` (default `127.0.0.1:8088`, `/events`) with
//!   `Content-Type: application/json` or `application/x-www-form-urlencoded` (a `payload`
//!   field), `GET <health_path>` (`/health`), and with `bearer_token` set
//!   `POST <ci_events_path>` (`/api/ci-events`): normalized CI events posted by workflows with
//!   `Authorization: Bearer <token>`, a JSON object with at least `event_id`, `event_name` and
//!   `repository` (strings), answered `202 {"ok":true,…}` and emitted as a log record.
//! - **Security**: HMAC-SHA256 of the exact raw body under `secret`, compared in constant time
//!   with `X-Hub-Signature-256`; a missing, malformed or wrong signature is `401` and nothing is
//!   emitted (missing or malformed before the body is read); the SHA-1 `X-Hub-Signature` alone
//!   is never accepted. The body limit is enforced while reading. Without a secret the
//!   receiver refuses to start unless `insecure_skip_verify: true` (then it warns at start).
//!   Replay protection: the ids (`X-GitHub-Delivery`) of deliveries every pipeline accepted are
//!   remembered (bounded count, `ttl`); a repeat is answered `200` and not emitted again, while a
//!   delivery refused with `503` is forgotten so its redelivery is processed.
//! - **Statuses**: `202` accepted; `200` for `ping`, duplicates and ignored events (not in
//!   `events`, or nothing to emit for the pipelines this receiver feeds); `400` malformed JSON,
//!   a missing `X-GitHub-Event` or required header, or a body slower than `read_timeout`
//!   (default 10 s); `401` bad signature or bearer token; `413`
//!   over `max_body_bytes`; `415` another content type; `503` + `Retry-After: 1` when a
//!   pipeline stayed full for 3 s (or the same delivery is being processed). The answer is
//!   given once the data is handed to the pipelines, never after export: well within GitHub's
//!   10 s.
//!
//! Signals:
//! - traces from `workflow_run` / `workflow_job` (see `traces.rs`): a root span per completed
//!   run, per completed job a job span, a `queue` span and a span per step;
//! - metrics (see `metrics.rs`): run and job duration and queue-time histograms, completed runs
//!   and jobs by conclusion, package publications;
//! - logs (see `logs.rs`): one record per accepted delivery, of any event.
//!
//! Delivery: at most once per pipeline, like the `otlp` receiver: a `503` means GitHub (or an
//! operator's "Redeliver") must send again. When one pipeline takes a delivery and another
//! refuses it, the redelivery is emitted again into the first (the id is only remembered when
//! all accepted). Accepted data is not persisted.
//!
//! # Trace and span ids (for joining traces from inside a job, e.g. `sluice ci`)
//!
//! With `sha256(s)` the SHA-256 digest of the ASCII string `s` and decimal integers:
//! - trace id = `sha256("{run_id}{run_attempt}t")[0..16]` (GitHub's `workflow_run.id` /
//!   `workflow_job.run_id` and `run_attempt`, default 1): every event of one run attempt lands
//!   in one trace without state, and each attempt of a re-run is a trace of its own. This is
//!   the Collector's githubreceiver derivation, kept for compatibility although the two numbers
//!   run together (run `12345` attempt `12` = run `123451` attempt `2`; with today's 10- and
//!   11-digit run ids only attempts of 10 or more can meet another run's id).
//! - run (root) span id = `sha256("{run_id}{run_attempt}s")[8..16]` (as the Collector);
//! - job span id = `sha256("{job_id}-j")[8..16]`, queue span id = `sha256("{job_id}-q")[8..16]`
//!   (`workflow_job.id`, as the Collector with its check-run-id ids);
//! - step span id = `sha256("{job_id}-{step_number}-s")[8..16]` (the step's `number`; the
//!   Collector hashes the step name instead, which collides for steps of the same name).
//!
//! The job span's parent is the run's root span; queue and step spans are children of the job
//! span. A run attempt above 1 links its root span to the previous attempt's.
//!
//! Self-telemetry: `sluice_receiver_github_requests{receiver,event,status}` counts every request
//! by event name (`unverified` before the signature is checked, `other` for names that are not
//! `lower_snake_case`, and for new names once 512 series exist) and outcome (`accepted`,
//! `ping`, `duplicate`, `ignored`, `unauthorized`, `malformed`, `too_large`,
//! `unsupported_media_type`, `refused`); accepted and refused items are counted in
//! `sluice_receiver_accepted_*` / `sluice_receiver_refused_*`.
//!
//! ```yaml
//! receivers:
//!   github:
//!     endpoint: 0.0.0.0:8088
//!     secret: ${env:GITHUB_WEBHOOK_SECRET}
//! ```

mod config;
mod dedup;
mod error;
mod event;
mod http;
mod logs;
mod metrics;
mod receiver;
mod signature;
#[cfg(test)]
mod tests;
mod traces;

pub use config::{
    GithubReceiverConfig, ReplayProtectionConfig, DEFAULT_CI_EVENTS_PATH, DEFAULT_ENDPOINT,
    DEFAULT_HEALTH_PATH, DEFAULT_MAX_BODY_BYTES, DEFAULT_PATH, DEFAULT_READ_TIMEOUT,
};
pub use dedup::{DeliveryCache, Seen};
pub use error::GithubReceiverError;
pub use event::{parse_rfc3339, trace_id};
pub use http::{Outcome, WebhookHandler, SEND_WAIT};
pub use receiver::GithubReceiver;
pub use signature::{sign, SignatureVerifier, SIGNATURE_HEADER};

use sluice_pipeline::factory::{ComponentContext, Receiver, ReceiverPlugin, Stability};
use sluice_pipeline::{BuildError, Signal};

/// The counter of requests by event name and outcome.
pub const REQUESTS_COUNTER: &str = "sluice_receiver_github_requests";

/// Builds `github` receivers.
#[derive(Debug, Clone, Copy)]
pub struct GithubReceiverFactory;

impl ReceiverPlugin for GithubReceiverFactory {
    type Config = GithubReceiverConfig;
    const TYPE: &'static str = "github";
    const SIGNALS: &'static [Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];
    const STABILITY: Stability = Stability::Alpha;
    const EXAMPLE: &'static str = "endpoint: 127.0.0.1:0\nsecret: example-secret\n";

    fn build(
        &self,
        config: GithubReceiverConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Receiver>, BuildError> {
        config.check_secret()?;
        Ok(Box::new(GithubReceiver::new(config, ctx)))
    }
}

sluice_pipeline::register_receiver!(GithubReceiverFactory);
