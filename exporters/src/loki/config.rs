//! The `loki` exporter's configuration: where to push, in which format, which attributes become
//! stream labels, and the tenant and credentials to send.

use std::collections::BTreeMap;
use std::time::Duration;

use http::uri::Scheme;
use http::{HeaderName, HeaderValue, Uri};
use serde::Deserialize;
use sluice_pipeline::config::ValidationError;
use sluice_pipeline::retry::{DeliveryConfig, QueueConfig, RetryConfig};
use sluice_pipeline::Validate;

/// The path of Loki's push API, appended to `endpoint` unless it already ends with it.
pub const PUSH_PATH: &str = "/loki/api/v1/push";

/// The body format of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LokiFormat {
    /// `logproto.PushRequest`, snappy-compressed (block format), `application/x-protobuf`: what
    /// Promtail and Grafana Agent send.
    #[default]
    Protobuf,
    /// `{"streams":[{"stream":{…},"values":[["<ns>","<line>",{…}]]}]}`, `application/json`.
    Json,
}

/// Compression of a `json` body (a `protobuf` body is always snappy-compressed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LokiCompression {
    /// Uncompressed (default).
    #[default]
    None,
    /// gzip at level 1 (`Content-Encoding: gzip`).
    Gzip,
}

/// Which attributes become stream labels. Label names are sanitised to Loki's rules
/// (`[a-zA-Z_][a-zA-Z0-9_]*`: `service.name` becomes `service_name`). Every attribute that is not
/// a label goes with its entry as structured metadata.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LokiLabelsConfig {
    /// Resource attributes that become labels. Default `[service.name]`.
    pub resource: Vec<String>,
    /// Log record attributes that become labels (a record's value wins over its resource's).
    /// Default none: every distinct value makes a stream, so keep these few and low-cardinality.
    pub attributes: Vec<String>,
    /// Adds a `level` label from the severity (`severity_text` lowercased, else the range of
    /// `severity_number`: `trace`, `debug`, `info`, `warn`, `error`, `fatal`). Default `false`.
    pub severity: bool,
    /// Fixed labels added to every stream (names sanitised as above). Default none.
    #[serde(rename = "static")]
    pub static_labels: BTreeMap<String, String>,
}

impl Default for LokiLabelsConfig {
    fn default() -> Self {
        LokiLabelsConfig {
            resource: vec!["service.name".to_string()],
            attributes: Vec::new(),
            severity: false,
            static_labels: BTreeMap::new(),
        }
    }
}

/// `auth.basic`: HTTP basic authentication (Grafana Cloud: the instance id and an API token).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LokiBasicAuth {
    /// The user name. Required when `basic` is set.
    pub username: String,
    /// The password. Default empty.
    pub password: String,
}

/// Credentials sent with every push; at most one of `basic` and `bearer_token`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LokiAuthConfig {
    /// `Authorization: Basic …` from a user name and password. Default none.
    pub basic: Option<LokiBasicAuth>,
    /// `Authorization: Bearer <token>`. Default none.
    pub bearer_token: Option<String>,
}

/// Configuration of the `loki` exporter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LokiExporterConfig {
    /// Loki's base URL (`http://127.0.0.1:3100`), to which `/loki/api/v1/push` is appended; a
    /// URL that already ends with that path is used as is. Required. Plain `http://` only: TLS
    /// is not supported yet.
    pub endpoint: String,
    /// `protobuf` (default: snappy-compressed `logproto.PushRequest`) or `json`.
    pub format: LokiFormat,
    /// `json` only: `none` (default) or `gzip`.
    pub compression: LokiCompression,
    /// The tenant, sent as `X-Scope-OrgID` (Loki in multi-tenant mode requires it). Default
    /// none.
    pub tenant_id: Option<String>,
    /// Headers sent with every push. Default none.
    pub headers: BTreeMap<String, String>,
    /// Credentials: `basic: {username, password}` or `bearer_token`. Default none.
    pub auth: LokiAuthConfig,
    /// Which attributes become stream labels; see [`LokiLabelsConfig`].
    pub labels: LokiLabelsConfig,
    /// Deadline of one push attempt, connecting included; `0s` means none. Default `5s`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub timeout: Duration,
    /// Retries of retryable failures (429, 5xx, connection errors), exponential backoff with
    /// jitter, never sooner than a `Retry-After`. Defaults as in the Collector: `5s` initial,
    /// `30s` max interval, give up after `300s`.
    pub retry_on_failure: RetryConfig,
    /// The in-memory queue in front of the exporter. Defaults as in the Collector: 10
    /// consumers, 1000 batches.
    pub sending_queue: QueueConfig,
}

impl Default for LokiExporterConfig {
    fn default() -> Self {
        LokiExporterConfig {
            endpoint: String::new(),
            format: LokiFormat::Protobuf,
            compression: LokiCompression::None,
            tenant_id: None,
            headers: BTreeMap::new(),
            auth: LokiAuthConfig::default(),
            labels: LokiLabelsConfig::default(),
            timeout: Duration::from_secs(5),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
        }
    }
}

impl LokiExporterConfig {
    /// The delivery settings the runtime wraps the exporter in.
    pub fn delivery(&self) -> DeliveryConfig {
        DeliveryConfig {
            timeout: self.timeout,
            retry_on_failure: self.retry_on_failure.clone(),
            sending_queue: self.sending_queue.clone(),
        }
    }

    /// The URL pushes go to: `<endpoint>/loki/api/v1/push`, or `endpoint` if it ends so.
    pub fn push_uri(&self) -> Result<Uri, ValidationError> {
        let raw = self.endpoint.trim();
        if raw.is_empty() {
            return Err(ValidationError::new(
                "endpoint",
                "is required: Loki's base URL, like `http://127.0.0.1:3100`",
            ));
        }
        let bad = |why: String| ValidationError::new("endpoint", format!("`{raw}`: {why}"));
        let base: Uri = raw
            .parse()
            .map_err(|e| bad(format!("not a valid URL: {e}")))?;
        match base.scheme() {
            Some(s) if *s == Scheme::HTTP => {}
            Some(s) if *s == Scheme::HTTPS => {
                return Err(bad(
                    "TLS is not supported yet; use a plain `http://` endpoint".into(),
                ))
            }
            Some(s) => return Err(bad(format!("unsupported scheme `{s}`, expected `http://`"))),
            None => {
                return Err(bad(
                    "not an absolute URL, expected `http://host:port`".into()
                ))
            }
        }
        if base.authority().is_none_or(|a| a.host().is_empty()) {
            return Err(bad("has no host, expected `http://host:port`".into()));
        }
        if base.query().is_some() {
            return Err(bad("a query string is not supported".into()));
        }
        let trimmed = raw.trim_end_matches('/');
        let url = if trimmed.ends_with(PUSH_PATH) {
            trimmed.to_string()
        } else {
            format!("{trimmed}{PUSH_PATH}")
        };
        url.parse()
            .map_err(|e| bad(format!("not a valid URL: {e}")))
    }
}

impl Validate for LokiExporterConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        self.push_uri()?;
        if self.format == LokiFormat::Protobuf && self.compression != LokiCompression::None {
            return Err(ValidationError::new(
                "compression",
                "is for `format: json`; a protobuf push is always snappy-compressed",
            ));
        }
        if let Some(tenant) = &self.tenant_id {
            if tenant.is_empty() || HeaderValue::from_str(tenant).is_err() {
                return Err(ValidationError::new(
                    "tenant_id",
                    "must be a non-empty header value (visible ASCII)",
                ));
            }
        }
        for (name, value) in &self.headers {
            let key = format!("headers::{name}");
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ValidationError::new(key.clone(), "is not a valid header name"))?;
            HeaderValue::from_str(value).map_err(|_| {
                ValidationError::new(key, "is not a valid header value (visible ASCII)")
            })?;
        }
        match (&self.auth.basic, &self.auth.bearer_token) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "auth",
                    "set one of `basic` and `bearer_token`, not both",
                ))
            }
            (Some(basic), None) if basic.username.is_empty() => {
                return Err(ValidationError::new("auth::basic::username", "is required"))
            }
            (None, Some(token))
                if token.is_empty()
                    || HeaderValue::from_str(&format!("Bearer {token}")).is_err() =>
            {
                return Err(ValidationError::new(
                    "auth::bearer_token",
                    "must be a non-empty header value (visible ASCII)",
                ))
            }
            _ => {}
        }
        let has_auth = self.auth.basic.is_some() || self.auth.bearer_token.is_some();
        if has_auth
            && self
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("authorization"))
        {
            return Err(ValidationError::new(
                "headers::authorization",
                "conflicts with `auth`; set the credentials in one place",
            ));
        }
        for (name, value) in &self.labels.static_labels {
            if name.is_empty() {
                return Err(ValidationError::new(
                    "labels::static",
                    "a label name must not be empty",
                ));
            }
            if value.is_empty() {
                return Err(ValidationError::new(
                    format!("labels::static::{name}"),
                    "a label value must not be empty (Loki drops empty labels)",
                ));
            }
        }
        for (key, list) in [
            ("labels::resource", &self.labels.resource),
            ("labels::attributes", &self.labels.attributes),
        ] {
            if list.iter().any(String::is_empty) {
                return Err(ValidationError::new(
                    key,
                    "an attribute name must not be empty",
                ));
            }
        }
        self.delivery().validate()
    }
}
