//! The `otlp` receiver's configuration, shaped like the Collector's `otlpreceiver`:
//! `protocols.grpc` and `protocols.http`, each with its `endpoint` and size limit.

use serde::{Deserialize, Deserializer};
use sluice_pipeline::config::ValidationError;
use sluice_pipeline::Validate;

/// The default OTLP/gRPC endpoint.
pub const DEFAULT_GRPC_ENDPOINT: &str = "127.0.0.1:4317";
/// The default OTLP/HTTP endpoint.
pub const DEFAULT_HTTP_ENDPOINT: &str = "127.0.0.1:4318";

/// Configuration of the `otlp` receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    /// The protocols to serve. Omitted: both gRPC and HTTP, with their defaults. Given: only the
    /// protocols listed; a protocol listed with no value (`grpc:`) gets its defaults.
    pub protocols: OtlpProtocols,
}

impl Default for OtlpReceiverConfig {
    fn default() -> Self {
        OtlpReceiverConfig {
            protocols: OtlpProtocols {
                grpc: Some(OtlpGrpcConfig::default()),
                http: Some(OtlpHttpConfig::default()),
            },
        }
    }
}

/// Which protocols run. Deliberately no container-level `default`: a protocol left out of a
/// `protocols` block that is written is off, while the whole block left out means both (see
/// [`OtlpReceiverConfig`]'s `Default`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpProtocols {
    /// OTLP/gRPC (`opentelemetry.proto.collector.*.v1.*Service/Export`). Off unless listed.
    #[serde(default, deserialize_with = "listed_means_on")]
    pub grpc: Option<OtlpGrpcConfig>,
    /// OTLP/HTTP (`POST /v1/traces`, `/v1/metrics`, `/v1/logs`). Off unless listed.
    #[serde(default, deserialize_with = "listed_means_on")]
    pub http: Option<OtlpHttpConfig>,
}

/// A protocol key that is present, even with an empty (`null`) value, turns the protocol on.
fn listed_means_on<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(
        Option::<T>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}

/// The OTLP/gRPC server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpGrpcConfig {
    /// `host:port` to listen on; port `0` picks a free port. Default `127.0.0.1:4317` (use
    /// `0.0.0.0:4317` to accept data from other hosts).
    pub endpoint: String,
    /// The largest request message accepted, in MiB, after decompression; a larger one gets
    /// `RESOURCE_EXHAUSTED`. Default `4`.
    pub max_recv_msg_size_mib: u64,
}

impl Default for OtlpGrpcConfig {
    fn default() -> Self {
        OtlpGrpcConfig {
            endpoint: DEFAULT_GRPC_ENDPOINT.to_string(),
            max_recv_msg_size_mib: 4,
        }
    }
}

impl OtlpGrpcConfig {
    /// The message size limit in bytes.
    pub fn max_recv_msg_size_bytes(&self) -> usize {
        usize::try_from(self.max_recv_msg_size_mib.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX)
    }
}

/// The OTLP/HTTP server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpHttpConfig {
    /// `host:port` to listen on; port `0` picks a free port. Default `127.0.0.1:4318`.
    pub endpoint: String,
    /// The largest request body accepted, in bytes, both as received and after gzip
    /// decompression; a larger one gets `413`. Default `20971520` (20 MiB).
    pub max_request_body_size: u64,
}

impl Default for OtlpHttpConfig {
    fn default() -> Self {
        OtlpHttpConfig {
            endpoint: DEFAULT_HTTP_ENDPOINT.to_string(),
            max_request_body_size: 20 * 1024 * 1024,
        }
    }
}

impl OtlpHttpConfig {
    /// The body size limit in bytes.
    pub fn max_request_body_bytes(&self) -> usize {
        usize::try_from(self.max_request_body_size).unwrap_or(usize::MAX)
    }
}

/// Checks that `endpoint` is `host:port` with a numeric port (`[::1]:4317` for IPv6).
fn validate_endpoint(key: &str, endpoint: &str) -> Result<(), ValidationError> {
    sluice_pipeline::http::validate_endpoint(key, endpoint, "127.0.0.1:4317")
}

impl Validate for OtlpReceiverConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        let p = &self.protocols;
        if p.grpc.is_none() && p.http.is_none() {
            return Err(ValidationError::new(
                "protocols",
                "expected at least one protocol: `grpc`, `http` or both",
            ));
        }
        if let Some(grpc) = &p.grpc {
            validate_endpoint("protocols::grpc::endpoint", &grpc.endpoint)?;
            if grpc.max_recv_msg_size_mib == 0 {
                return Err(ValidationError::new(
                    "protocols::grpc::max_recv_msg_size_mib",
                    "expected a size in MiB above zero, like `4`",
                ));
            }
        }
        if let Some(http) = &p.http {
            validate_endpoint("protocols::http::endpoint", &http.endpoint)?;
            if http.max_request_body_size == 0 {
                return Err(ValidationError::new(
                    "protocols::http::max_request_body_size",
                    "expected a size in bytes above zero, like `20971520`",
                ));
            }
        }
        Ok(())
    }
}
