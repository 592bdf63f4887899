//! The HTTP endpoint: `POST <path>` for GitHub deliveries, `GET <health_path>`, and when a
//! `bearer_token` is set `POST <ci_events_path>` for normalized CI events.
//!
//! A delivery is checked in this order, and the first failure answers: a present and
//! well-formed `X-Hub-Signature-256` (`401`, before any of the body is read), body size while
//! reading it (`413`) and the time it takes to arrive (`read_timeout`, `400`), the signature
//! over the raw bytes (`401`), content type (`415`), `X-GitHub-Event` and `required_headers`
//! (`400`), JSON object (`400`). Then `ping` → `200`; an event outside
//! `events` → `200` (ignored); an already accepted delivery id → `200` (duplicate); a copy of a
//! delivery still being processed → `503`; nothing to emit for the configured pipelines → `200`
//! (ignored); else the telemetry is handed to the pipelines (concurrently, each waiting at most
//! [`SEND_WAIT`] for room) and the answer is `202`, or `503` + `Retry-After` if a pipeline
//! stayed full. The answer never waits for export.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use sluice_pipeline::http::read_limited;
use sluice_pipeline::otlp::now_nanos;
use sluice_pipeline::runtime::fanout::{Output, Outputs};
use sluice_pipeline::telemetry::{ComponentTelemetry, Counter};
use sluice_pipeline::{Batch, Payload, Signal};

use super::config::GithubReceiverConfig;
use super::dedup::{DeliveryCache, Seen};
use super::error::{GithubReceiverError, Result};
use super::event::{str_at, Delivery};
use super::signature::{BearerToken, SignatureVerifier, SIGNATURE_HEADER};
use super::{logs, metrics, traces, REQUESTS_COUNTER};

/// How long one delivery waits for room in a full pipeline before it is refused with `503`.
/// The signals are sent concurrently, so the answer comes well within GitHub's 10 s timeout.
pub const SEND_WAIT: Duration = Duration::from_secs(3);

/// The most `sluice_receiver_github_requests` series one receiver creates before new event
/// names are counted as `other`.
pub const MAX_COUNTERS: usize = 512;

/// What the server answered, as counted in `sluice_receiver_github_requests{status}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `202`: handed to the pipelines.
    Accepted,
    /// `200`: a `ping`.
    Ping,
    /// `200`: a delivery id accepted before.
    Duplicate,
    /// `200`: an event not configured, or one that yields nothing for the pipelines.
    Ignored,
    /// `401`.
    Unauthorized,
    /// `400`.
    Malformed,
    /// `413`.
    TooLarge,
    /// `415`.
    UnsupportedMediaType,
    /// `503`: a pipeline stayed full or is stopping, or the same delivery is in flight.
    Refused,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Ping => "ping",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Malformed => "malformed",
            Outcome::TooLarge => "too_large",
            Outcome::UnsupportedMediaType => "unsupported_media_type",
            Outcome::Refused => "refused",
        }
    }

    fn of_error(e: &GithubReceiverError) -> Outcome {
        match e.http_status() {
            StatusCode::UNAUTHORIZED => Outcome::Unauthorized,
            StatusCode::PAYLOAD_TOO_LARGE => Outcome::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Outcome::UnsupportedMediaType,
            StatusCode::SERVICE_UNAVAILABLE => Outcome::Refused,
            _ => Outcome::Malformed,
        }
    }
}

/// The request handling of one `github` receiver, independent of the socket (the server, the
/// tests and the benchmark call it).
pub struct WebhookHandler {
    verifier: Option<SignatureVerifier>,
    bearer: Option<BearerToken>,
    required_headers: Vec<(HeaderName, String)>,
    events: Vec<String>,
    service_name: String,
    max_body_bytes: usize,
    read_timeout: Duration,
    cache: DeliveryCache,
    traces: Option<Output>,
    metrics: Option<Output>,
    logs: Option<Output>,
    telemetry: ComponentTelemetry,
    counters: Mutex<HashMap<(String, Outcome), Counter>>,
}

impl std::fmt::Debug for WebhookHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookHandler")
            .field("verifies", &self.verifier.is_some())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl WebhookHandler {
    /// A handler for `config` feeding `outputs`, counting into `telemetry`.
    pub fn new(
        config: &GithubReceiverConfig,
        outputs: &Outputs,
        telemetry: ComponentTelemetry,
    ) -> WebhookHandler {
        let output = |s| {
            outputs
                .get(s)
                .cloned()
                .map(|o: Output| o.with_wait(SEND_WAIT))
        };
        WebhookHandler {
            verifier: config
                .verifies_signatures()
                .then(|| SignatureVerifier::new(&config.secret)),
            bearer: (!config.bearer_token.is_empty())
                .then(|| BearerToken::new(&config.bearer_token)),
            required_headers: config
                .required_headers
                .iter()
                .filter_map(|(k, v)| {
                    HeaderName::from_bytes(k.as_bytes())
                        .ok()
                        .map(|n| (n, v.clone()))
                })
                .collect(),
            events: config.events.clone(),
            service_name: config.service_name.clone(),
            max_body_bytes: config.max_body_bytes_usize(),
            read_timeout: config.read_timeout,
            cache: DeliveryCache::new(
                config.replay_protection.max_entries,
                config.replay_protection.ttl,
            ),
            traces: output(Signal::Traces),
            metrics: output(Signal::Metrics),
            logs: output(Signal::Logs),
            telemetry,
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one answered request under `sluice_receiver_github_requests{event,status}`. The
    /// label set is bounded: past [`MAX_COUNTERS`] series, new event names count as `other`
    /// (names come from senders, and without a secret anyone can invent them).
    fn count(&self, event: &str, outcome: Outcome) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = (event.to_string(), outcome);
        if counters.len() >= MAX_COUNTERS && !counters.contains_key(&key) {
            key.0 = "other".to_string();
        }
        let event = key.0.clone();
        let event = event.as_str();
        let counter = counters.entry(key).or_insert_with(|| {
            self.telemetry.counter_with(
                REQUESTS_COUNTER,
                &[("event", event), ("status", outcome.as_str())],
            )
        });
        counter.add(1);
    }

    /// How many request counter series exist.
    #[cfg(test)]
    pub(crate) fn request_series(&self) -> usize {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Handles one `POST` of a GitHub delivery.
    pub async fn handle_webhook(&self, headers: &HeaderMap, body: Body) -> Response {
        let mut event_label = "unverified".to_string();
        let result = self.webhook(headers, body, &mut event_label).await;
        self.answer(&event_label, result)
    }

    /// [`WebhookHandler::handle_webhook`] with a body already in memory.
    pub async fn handle_webhook_bytes(&self, headers: &HeaderMap, body: Bytes) -> Response {
        self.handle_webhook(headers, Body::from(body)).await
    }

    /// Handles one `POST` of a normalized CI event (bearer-token ingest).
    pub async fn handle_ci_event(&self, headers: &HeaderMap, body: Body) -> Response {
        let mut event_label = "ci_event".to_string();
        let result = self.ci_event(headers, body, &mut event_label).await;
        self.answer(&event_label, result)
    }

    fn answer(&self, event: &str, result: Result<(Outcome, Value)>) -> Response {
        match result {
            Ok((outcome, body)) => {
                self.count(event, outcome);
                let status = if outcome == Outcome::Accepted {
                    StatusCode::ACCEPTED
                } else {
                    StatusCode::OK
                };
                (status, axum::Json(body)).into_response()
            }
            Err(e) => {
                let outcome = Outcome::of_error(&e);
                self.count(event, outcome);
                tracing::debug!(event, status = outcome.as_str(), error = %e, "Refused a GitHub request.");
                let mut response = (
                    e.http_status(),
                    axum::Json(serde_json::json!({ "ok": false, "error": e.to_string() })),
                )
                    .into_response();
                if outcome == Outcome::Refused {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                response
            }
        }
    }

    async fn webhook(
        &self,
        headers: &HeaderMap,
        body: Body,
        event_label: &mut String,
    ) -> Result<(Outcome, Value)> {
        // A missing or malformed signature is refused before the body is read: an
        // unauthenticated sender cannot make the receiver buffer up to `max_body_bytes`.
        let expected = match &self.verifier {
            Some(_) => Some(SignatureVerifier::expected(
                headers.get(SIGNATURE_HEADER).map(HeaderValue::as_bytes),
            )?),
            None => None,
        };
        let raw = self.read_body(headers, body).await?;
        if let (Some(verifier), Some(expected)) = (&self.verifier, &expected) {
            verifier.verify_expected(expected, &raw)?;
        }
        let json = json_body(headers, &raw)?;
        let event = headers
            .get("x-github-event")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or(GithubReceiverError::MissingEvent)?;
        *event_label = label(event);
        for (name, expected) in &self.required_headers {
            if headers.get(name).map(HeaderValue::as_bytes) != Some(expected.as_bytes()) {
                return Err(GithubReceiverError::RequiredHeader(name.to_string()));
            }
        }
        let payload: Value = serde_json::from_slice(&json)
            .map_err(|e| GithubReceiverError::Malformed(e.to_string()))?;
        if !payload.is_object() {
            return Err(GithubReceiverError::Malformed(
                "expected a JSON object".to_string(),
            ));
        }
        if event == "ping" {
            let zen = str_at(&payload, &["zen"]).unwrap_or_default();
            return Ok((
                Outcome::Ping,
                serde_json::json!({ "ok": true, "event": "ping", "zen": zen }),
            ));
        }
        if !self.events.is_empty() && !self.events.iter().any(|e| e == event) {
            return Ok((Outcome::Ignored, ignored(event)));
        }
        let delivery_id = headers
            .get("x-github-delivery")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|d| !d.is_empty());
        let delivery = Delivery {
            event,
            delivery_id,
            payload: &payload,
            service_name: &self.service_name,
        };
        self.emit(delivery_id, |now| self.convert(&delivery, now))
            .await
            .map(|outcome| (outcome, reply(outcome, event, delivery_id)))
    }

    async fn ci_event(
        &self,
        headers: &HeaderMap,
        body: Body,
        event_label: &mut String,
    ) -> Result<(Outcome, Value)> {
        let Some(bearer) = &self.bearer else {
            return Err(GithubReceiverError::BadToken);
        };
        bearer.verify(
            headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
        )?;
        let raw = self.read_body(headers, body).await?;
        match media_type(headers).as_deref() {
            Some("application/json") => {}
            other => {
                return Err(GithubReceiverError::UnsupportedContentType(
                    other.unwrap_or_default().to_string(),
                ))
            }
        }
        let event: Value = serde_json::from_slice(&raw)
            .map_err(|e| GithubReceiverError::Malformed(e.to_string()))?;
        let field = |name: &str| {
            str_at(&event, &[name])
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    GithubReceiverError::Malformed(format!("expected a string field `{name}`"))
                })
        };
        let event_id = field("event_id")?;
        let event_name = field("event_name")?;
        field("repository")?;
        *event_label = format!("ci_event:{}", label(event_name));
        let key = format!("ci:{event_id}");
        let service = self.service_name.as_str();
        self.emit(Some(&key), |now| {
            (
                Payload::Traces(Vec::new()),
                Payload::Metrics(Vec::new()),
                match &self.logs {
                    Some(_) => Payload::Logs(logs::ci_event_logs(&event, service, now)),
                    None => Payload::Logs(Vec::new()),
                },
            )
        })
        .await
        .map(|outcome| {
            let mut body = reply(outcome, event_name, Some(event_id));
            if let Some(obj) = body.as_object_mut() {
                obj.insert("event_id".to_string(), Value::from(event_id));
            }
            (outcome, body)
        })
    }

    /// [`read_limited`] within `read_timeout` (`413` past `max_body_bytes`, `400` when late).
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes> {
        tokio::time::timeout(
            self.read_timeout,
            read_limited(headers, body, self.max_body_bytes),
        )
        .await
        .map_err(|_| {
            GithubReceiverError::Body(format!(
                "the body did not arrive within `read_timeout` ({:?})",
                self.read_timeout
            ))
        })?
        .map_err(GithubReceiverError::from)
    }

    /// The payload of each signal this receiver feeds.
    fn convert(&self, d: &Delivery<'_>, now: u64) -> (Payload, Payload, Payload) {
        (
            Payload::Traces(match &self.traces {
                Some(_) => traces::spans(d),
                None => Vec::new(),
            }),
            Payload::Metrics(match &self.metrics {
                Some(_) => metrics::metrics(d, now),
                None => Vec::new(),
            }),
            Payload::Logs(match &self.logs {
                Some(_) => logs::logs(d, now),
                None => Vec::new(),
            }),
        )
    }

    /// Replay check, conversion and hand-over to the pipelines; the delivery id is remembered
    /// only once every pipeline accepted the data.
    async fn emit(
        &self,
        delivery_id: Option<&str>,
        convert: impl FnOnce(u64) -> (Payload, Payload, Payload),
    ) -> Result<Outcome> {
        let guard = match delivery_id {
            Some(id) => match self.cache.begin(id, Instant::now()) {
                (Seen::Duplicate, _) => return Ok(Outcome::Duplicate),
                (Seen::InFlight, _) => return Err(GithubReceiverError::InFlight(id.to_string())),
                (Seen::New, guard) => guard,
            },
            None => None,
        };
        let (t, m, l) = convert(now_nanos());
        if t.is_empty() && m.is_empty() && l.is_empty() {
            return Ok(Outcome::Ignored);
        }
        let (rt, rm, rl) = tokio::join!(
            send(&self.traces, t),
            send(&self.metrics, m),
            send(&self.logs, l)
        );
        rt.and(rm).and(rl)?;
        if let Some(guard) = guard {
            guard.accept(Instant::now());
        }
        Ok(Outcome::Accepted)
    }
}

async fn send(output: &Option<Output>, payload: Payload) -> Result<()> {
    match output {
        Some(o) if !payload.is_empty() => Ok(o.send(Batch::new(payload)).await?),
        _ => Ok(()),
    }
}

fn reply(outcome: Outcome, event: &str, delivery_id: Option<&str>) -> Value {
    serde_json::json!({
        "ok": true,
        "event": event,
        "delivery": delivery_id,
        "status": outcome.as_str(),
    })
}

fn ignored(event: &str) -> Value {
    reply(Outcome::Ignored, event, None)
}

/// A bounded label for an event name from a verified request: GitHub's names are
/// `lower_snake_case`; anything else is `other`.
fn label(event: &str) -> String {
    if !event.is_empty()
        && event.len() <= 64
        && event
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        event.to_string()
    } else {
        "other".to_string()
    }
}

/// The media type of the request (lower case, without parameters).
fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = v.split(';').next().unwrap_or_default().trim();
    (!media.is_empty()).then(|| media.to_ascii_lowercase())
}

/// The JSON text of a delivery: the body for `application/json`, the `payload` field for
/// `application/x-www-form-urlencoded` (GitHub's other content type; the signature covers the
/// form-encoded body as sent).
fn json_body(headers: &HeaderMap, raw: &Bytes) -> Result<Bytes> {
    match media_type(headers).as_deref() {
        Some("application/json") => Ok(raw.clone()),
        Some("application/x-www-form-urlencoded") => form_urlencoded::parse(raw)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| Bytes::from(v.into_owned()))
            .ok_or_else(|| {
                GithubReceiverError::Malformed(
                    "form-encoded body without a `payload` field".to_string(),
                )
            }),
        other => Err(GithubReceiverError::UnsupportedContentType(
            other.unwrap_or_default().to_string(),
        )),
    }
}

/// The router: the webhook path, the health path, and the CI events path when a bearer token
/// is configured.
pub(crate) fn router(config: &GithubReceiverConfig, handler: Arc<WebhookHandler>) -> axum::Router {
    let mut router = axum::Router::new()
        .route(&config.path, post(webhook))
        .route(&config.health_path, get(health));
    if handler.bearer.is_some() {
        router = router.route(&config.ci_events_path, post(ci_event));
    }
    router.with_state(handler)
}

async fn webhook(
    State(handler): State<Arc<WebhookHandler>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handler.handle_webhook(&headers, body).await
}

async fn ci_event(
    State(handler): State<Arc<WebhookHandler>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handler.handle_ci_event(&headers, body).await
}

async fn health() -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({ "status": "ok" })),
    )
        .into_response()
}
