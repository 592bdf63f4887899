//! The `github` receiver's configuration. Option names follow the Collector's githubreceiver
//! webhook options (`endpoint`, `path`, `health_path`, `secret`, `required_headers`,
//! `service_name`), flattened to the top level, and `read_timeout` as the Collector's HTTP
//! servers name it, plus sluice's own `insecure_skip_verify`, `max_body_bytes`, `events`,
//! `replay_protection` and the bearer-token ingest (`bearer_token`, `ci_events_path`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use sluice_pipeline::config::ValidationError;
use sluice_pipeline::{BuildError, Validate};

/// The default listening address.
pub const DEFAULT_ENDPOINT: &str = "127.0.0.1:8088";
/// The default webhook path.
pub const DEFAULT_PATH: &str = "/events";
/// The default health path.
pub const DEFAULT_HEALTH_PATH: &str = "/health";
/// The default path of the bearer-token ingest of normalized CI events.
pub const DEFAULT_CI_EVENTS_PATH: &str = "/api/ci-events";
/// GitHub caps webhook payloads at 25 MB; so does the default limit.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 25 * 1024 * 1024;

/// The default time a request body may take to arrive: GitHub's own delivery timeout.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Configuration of the `github` receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubReceiverConfig {
    /// `host:port` to listen on; port `0` picks a free port. Default `127.0.0.1:8088` (GitHub
    /// must reach it: put it behind a TLS-terminating proxy, or use `0.0.0.0:8088`).
    pub endpoint: String,
    /// The path GitHub posts deliveries to. Default `/events`.
    pub path: String,
    /// A path answering `GET` with `200` while the receiver runs. Default `/health`.
    pub health_path: String,
    /// The largest request body accepted, in bytes; a larger one gets `413`. Default
    /// `26214400` (25 MiB, GitHub's own cap on payloads).
    pub max_body_bytes: u64,
    /// How long a request's body may take to arrive; a slower one gets `400`. GitHub sends the
    /// whole delivery at once and gives up itself after 10 s, so this only stops senders that
    /// trickle a body to hold memory and connections. Default `10s`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub read_timeout: Duration,
    /// The webhook secret (as typed into GitHub's webhook settings), usually
    /// `${env:GITHUB_WEBHOOK_SECRET}`. Every delivery must carry a valid
    /// `X-Hub-Signature-256` (HMAC-SHA256 of the raw body under this secret). Required unless
    /// `insecure_skip_verify: true`.
    pub secret: String,
    /// Accept deliveries without checking their signature when no `secret` is set (a warning
    /// is logged at start). Only for a receiver that nothing untrusted can reach. Default
    /// `false`.
    pub insecure_skip_verify: bool,
    /// Headers every delivery must carry with exactly this value (names are
    /// case-insensitive), e.g. `X-GitHub-Hook-Installation-Target-Id: "123"` to take only one
    /// repository's hook; a delivery without them gets `400`. Default none.
    pub required_headers: BTreeMap<String, String>,
    /// The `service.name` resource attribute of everything emitted. Default empty: the
    /// repository's full name (`owner/repo`), or `github` when a payload has no repository.
    pub service_name: String,
    /// The events (`X-GitHub-Event` values) turned into telemetry; others are answered `200`
    /// and counted as ignored. Default empty: every event.
    pub events: Vec<String>,
    /// When set, `POST <ci_events_path>` accepts normalized CI events from workflows with
    /// `Authorization: Bearer <bearer_token>` (`401` without it). Default empty: the path is
    /// not served.
    pub bearer_token: String,
    /// The path of the bearer-token ingest. Default `/api/ci-events`.
    pub ci_events_path: String,
    /// Which delivery ids are remembered to refuse replays.
    pub replay_protection: ReplayProtectionConfig,
}

impl Default for GithubReceiverConfig {
    fn default() -> Self {
        GithubReceiverConfig {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            path: DEFAULT_PATH.to_string(),
            health_path: DEFAULT_HEALTH_PATH.to_string(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            read_timeout: DEFAULT_READ_TIMEOUT,
            secret: String::new(),
            insecure_skip_verify: false,
            required_headers: BTreeMap::new(),
            service_name: String::new(),
            events: Vec::new(),
            bearer_token: String::new(),
            ci_events_path: DEFAULT_CI_EVENTS_PATH.to_string(),
            replay_protection: ReplayProtectionConfig::default(),
        }
    }
}

/// The bounded, time-limited memory of accepted delivery ids (`X-GitHub-Delivery`, or the
/// `event_id` of a CI event): a repeat within `ttl` is answered `200` and not emitted again.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayProtectionConfig {
    /// How many ids are remembered; the oldest is forgotten first. `0` turns replay
    /// protection off. Default `100000`.
    pub max_entries: usize,
    /// How long an id is remembered. Default `24h`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub ttl: Duration,
}

impl Default for ReplayProtectionConfig {
    fn default() -> Self {
        ReplayProtectionConfig {
            max_entries: 100_000,
            ttl: Duration::from_secs(24 * 3600),
        }
    }
}

impl GithubReceiverConfig {
    /// The body size limit in bytes.
    pub fn max_body_bytes_usize(&self) -> usize {
        usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX)
    }

    /// The start-up check of the secret: with no `secret`, the receiver refuses to start unless
    /// `insecure_skip_verify: true`. (Checked when the receiver is built rather than when the
    /// file is validated, so a shipped config with `${env:GITHUB_WEBHOOK_SECRET:-}` validates
    /// anywhere but only starts where the secret is set.)
    pub fn check_secret(&self) -> Result<(), BuildError> {
        if self.secret.is_empty() && !self.insecure_skip_verify {
            return Err(BuildError::Config(
                "`secret` is empty: set the webhook secret (e.g. `secret: \
                 ${env:GITHUB_WEBHOOK_SECRET}`), or `insecure_skip_verify: true` to accept \
                 unsigned deliveries deliberately (anyone who reaches the endpoint can then \
                 inject data)"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// Whether signatures are checked.
    pub fn verifies_signatures(&self) -> bool {
        !self.secret.is_empty()
    }
}

fn validate_path(key: &str, path: &str) -> Result<(), ValidationError> {
    if !path.starts_with('/') || path.contains(['?', '#', ' ', '{', '}', '*']) {
        return Err(ValidationError::new(
            key,
            format!("expected an absolute URL path like `/events`, found `{path}`"),
        ));
    }
    Ok(())
}

impl Validate for GithubReceiverConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        sluice_pipeline::http::validate_endpoint("endpoint", &self.endpoint, "127.0.0.1:8088")?;
        validate_path("path", &self.path)?;
        validate_path("health_path", &self.health_path)?;
        if self.path == self.health_path {
            return Err(ValidationError::new(
                "health_path",
                format!("expected a path other than `path` (`{}`)", self.path),
            ));
        }
        if !self.bearer_token.is_empty() {
            validate_path("ci_events_path", &self.ci_events_path)?;
            if self.ci_events_path == self.path || self.ci_events_path == self.health_path {
                return Err(ValidationError::new(
                    "ci_events_path",
                    "expected a path other than `path` and `health_path`",
                ));
            }
        }
        if self.max_body_bytes == 0 {
            return Err(ValidationError::new(
                "max_body_bytes",
                "expected a size in bytes above zero, like `26214400`",
            ));
        }
        for name in self.required_headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ValidationError::new(
                    format!("required_headers::{name}"),
                    "expected an HTTP header name",
                ));
            }
        }
        if self.read_timeout.is_zero() {
            return Err(ValidationError::new(
                "read_timeout",
                "expected a duration above zero, like `10s`",
            ));
        }
        if self.replay_protection.max_entries > 0 && self.replay_protection.ttl.is_zero() {
            return Err(ValidationError::new(
                "replay_protection::ttl",
                "expected a duration above zero, like `24h` (or `max_entries: 0` to turn replay \
                 protection off)",
            ));
        }
        Ok(())
    }
}
