//! Configuration in the OpenTelemetry Collector's shape.
//!
//! Files are parsed into a positioned tree ([`node`]), merged, env-expanded ([`env`]), then
//! decoded piece by piece with serde straight from the nodes ([`de`]), so every error names the
//! file, line, column and key path. [`service`] resolves ids against the registry and validates
//! the pipeline graph, collecting every error of the file before reporting.

pub mod de;
pub mod env;
pub mod error;
pub mod load;
pub mod node;
pub mod service;

use serde::de::DeserializeOwned;

pub use error::{ConfigError, ConfigErrors, ValidationError};
pub use load::{load_files, load_sources, ConfigSource};
pub use node::{Mark, Node};
pub use service::{resolve, ResolvedConfig, ServiceSettings};

/// Decodes `node` into `T`; the error carries the position and key path (relative to `node`).
pub fn decode<T: DeserializeOwned>(node: &Node) -> Result<T, Vec<ConfigError>> {
    serde_path_to_error::deserialize(node).map_err(|e| {
        let path: Vec<String> = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let inner = e.into_inner();
        vec![ConfigError {
            mark: Some(inner.mark.unwrap_or_else(|| node.mark.clone())),
            path,
            message: inner.message,
        }]
    })
}

/// Decodes YAML text into `T` (tests and examples).
pub fn decode_str<T: DeserializeOwned>(yaml: &str) -> Result<T, Vec<ConfigError>> {
    let node = node::parse_yaml(yaml, "<inline>")?;
    decode(&node)
}

/// Serde helpers for durations written as strings (`10s`, `500ms`, `1m30s`), as the Collector
/// writes them: `#[serde(with = "sluice_pipeline::config::duration")]`.
pub mod duration {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Parses a duration string; `0` alone means zero.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let t = s.trim();
        if t == "0" {
            return Ok(Duration::ZERO);
        }
        humantime::parse_duration(t).map_err(|e| {
            format!("invalid duration `{s}` ({e}): expected a number with a unit, like `10s`, `500ms` or `1m30s`")
        })
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration like `10s` or `500ms`")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse(v).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            if v == 0 {
                Ok(Duration::ZERO)
            } else {
                Err(E::custom(format!(
                    "invalid duration `{v}`: a duration needs a unit, like `{v}s` or `{v}ms`"
                )))
            }
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            self.visit_i64(v.min(i64::MAX as u64) as i64)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "invalid duration `{v}`: a duration needs a unit, like `{v}s`"
            )))
        }
    }

    /// Deserialises a duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    /// Serialises a duration as a string (`1m 30s`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::time::Duration;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        #[serde(with = "duration")]
        interval: Duration,
        ports: Vec<u16>,
    }
    impl Default for Inner {
        fn default() -> Self {
            Inner {
                interval: Duration::from_secs(1),
                ports: vec![],
            }
        }
    }
    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Inner,
        mode: Option<Mode>,
    }
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Basic,
        Detailed,
    }

    #[test]
    fn decodes_with_defaults() {
        let o: Outer = decode_str("name: x\ninner:\n  ports: [1, 2]\nmode: detailed\n").unwrap();
        assert_eq!(o.inner.ports, vec![1, 2]);
        assert_eq!(o.inner.interval, Duration::from_secs(1));
        assert_eq!(o.mode, Some(Mode::Detailed));
        let empty: Outer = decode_str("").unwrap();
        assert_eq!(empty, Outer::default());
        let _ = Mode::Basic;
    }

    #[test]
    fn errors_name_line_key_and_expectation() {
        let e = decode_str::<Outer>("name: x\ninner:\n  intervall: 5s\n").unwrap_err();
        assert_eq!(e[0].key_path(), "inner::intervall");
        assert_eq!(e[0].mark.as_ref().map(|m| (m.line, m.column)), Some((3, 3)));
        assert!(
            e[0].message.contains("unknown field `intervall`, expected"),
            "{}",
            e[0]
        );

        let e = decode_str::<Outer>("inner:\n  interval: 5 parsecs\n").unwrap_err();
        assert_eq!(e[0].key_path(), "inner::interval");
        assert_eq!(e[0].mark.as_ref().map(|m| m.line), Some(2));
        assert!(
            e[0].message.starts_with("invalid duration `5 parsecs`"),
            "{}",
            e[0]
        );

        let e = decode_str::<Outer>("inner:\n  ports: [1, 70000]\n").unwrap_err();
        assert_eq!(e[0].key_path(), "inner::ports::1");
        assert_eq!(
            e[0].to_string(),
            "<inline>:2:14: inner::ports::1: expected a whole number from 0 to 65535, found `70000`"
        );

        let e = decode_str::<Outer>("mode: fancy\n").unwrap_err();
        assert!(e[0].message.contains("unknown variant `fancy`"), "{}", e[0]);
    }
}
