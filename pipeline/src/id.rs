//! Component ids (`type[/name]`) and pipeline ids (`signal[/name]`), parsed as the OpenTelemetry
//! Collector parses them.

use std::fmt;
use std::str::FromStr;

use crate::data::Signal;

/// The three kinds of pipeline component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Receiver,
    Processor,
    Exporter,
}

impl Kind {
    /// `receiver`, `processor`, `exporter`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Receiver => "receiver",
            Kind::Processor => "processor",
            Kind::Exporter => "exporter",
        }
    }

    /// The top-level config section of this kind (`receivers`, …).
    pub fn section(self) -> &'static str {
        match self {
            Kind::Receiver => "receivers",
            Kind::Processor => "processors",
            Kind::Exporter => "exporters",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const MAX_TYPE_LEN: usize = 63;

/// Why an id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("id must not be empty")]
    Empty,
    #[error("the part before '/' must not be empty")]
    EmptyType,
    #[error("the part after '/' must not be empty")]
    EmptyName,
    #[error("invalid type {0:?}: a type starts with a letter and holds only letters, digits and '_' (at most 63 characters)")]
    BadType(String),
    #[error("invalid name {0:?}: a name holds no whitespace, control characters or '/'")]
    BadName(String),
    #[error("unknown signal {0:?}: expected traces, metrics or logs")]
    BadSignal(String),
}

/// Checks a component type as the Collector does: a letter first, then letters, digits or `_`.
pub fn validate_type(t: &str) -> Result<(), IdError> {
    let mut chars = t.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {
            t.len() <= MAX_TYPE_LEN && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(IdError::BadType(t.to_string()))
    }
}

fn split(s: &str) -> Result<(&str, Option<&str>), IdError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    match s.split_once('/') {
        None => Ok((s, None)),
        Some((t, n)) => {
            if t.is_empty() {
                return Err(IdError::EmptyType);
            }
            if n.is_empty() {
                return Err(IdError::EmptyName);
            }
            if n.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/')
            {
                return Err(IdError::BadName(n.to_string()));
            }
            Ok((t, Some(n)))
        }
    }
}

/// A component id: `type` or `type/name` (`otlp`, `otlp/ci`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    type_name: String,
    name: Option<String>,
}

impl ComponentId {
    /// An id from parts already known to be valid.
    pub fn new(type_name: &str, name: Option<&str>) -> Result<ComponentId, IdError> {
        validate_type(type_name)?;
        let id = match name {
            Some(n) => format!("{type_name}/{n}"),
            None => type_name.to_string(),
        };
        id.parse()
    }

    /// The component type (`otlp` in `otlp/ci`).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The optional name (`ci` in `otlp/ci`).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl FromStr for ComponentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (t, n) = split(s)?;
        validate_type(t)?;
        Ok(ComponentId {
            type_name: t.to_string(),
            name: n.map(str::to_string),
        })
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.type_name, n),
            None => f.write_str(&self.type_name),
        }
    }
}

/// A pipeline id: `signal` or `signal/name` (`metrics`, `metrics/host`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineId {
    signal: Signal,
    name: Option<String>,
}

impl PipelineId {
    /// The pipeline's signal.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// The optional name.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl FromStr for PipelineId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (t, n) = split(s)?;
        let signal = Signal::parse(t).ok_or_else(|| IdError::BadSignal(t.to_string()))?;
        Ok(PipelineId {
            signal,
            name: n.map(str::to_string),
        })
    }
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.signal, n),
            None => f.write_str(self.signal.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_component_ids() {
        let id: ComponentId = "otlp/ci".parse().unwrap();
        assert_eq!(id.type_name(), "otlp");
        assert_eq!(id.name(), Some("ci"));
        assert_eq!(id.to_string(), "otlp/ci");
        assert_eq!("otlp".parse::<ComponentId>().unwrap().name(), None);
        assert_eq!("".parse::<ComponentId>(), Err(IdError::Empty));
        assert_eq!("/x".parse::<ComponentId>(), Err(IdError::EmptyType));
        assert_eq!("otlp/".parse::<ComponentId>(), Err(IdError::EmptyName));
        assert!(matches!(
            "1otlp".parse::<ComponentId>(),
            Err(IdError::BadType(_))
        ));
        assert!(matches!(
            "ot-lp".parse::<ComponentId>(),
            Err(IdError::BadType(_))
        ));
        assert!(matches!(
            "otlp/a b".parse::<ComponentId>(),
            Err(IdError::BadName(_))
        ));
        let long = "a".repeat(64);
        assert!(matches!(
            long.parse::<ComponentId>(),
            Err(IdError::BadType(_))
        ));
    }

    #[test]
    fn parses_pipeline_ids() {
        let id: PipelineId = "metrics/host".parse().unwrap();
        assert_eq!(id.signal(), Signal::Metrics);
        assert_eq!(id.to_string(), "metrics/host");
        assert_eq!(
            "events".parse::<PipelineId>(),
            Err(IdError::BadSignal("events".into()))
        );
    }
}
