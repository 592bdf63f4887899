//! Config errors: every one names the file, line and column, the key path in the Collector's
//! form (`receivers::otlp/ci::protocols::grpc::endpoint`) and what was expected.

use std::fmt;

use super::node::{Mark, Node};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where it is (file, line, column); `None` for errors with no position (a missing file).
    pub mark: Option<Mark>,
    /// The key path, outermost first.
    pub path: Vec<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error at `mark`.
    pub fn at(mark: &Mark, path: Vec<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            mark: Some(mark.clone()),
            path,
            message: message.into(),
        }
    }

    /// An error with no position.
    pub fn bare(message: impl Into<String>) -> ConfigError {
        ConfigError {
            mark: None,
            path: Vec::new(),
            message: message.into(),
        }
    }

    /// The same error with `prefix` put in front of its key path.
    pub fn under(mut self, prefix: &[String]) -> ConfigError {
        let mut path = prefix.to_vec();
        path.append(&mut self.path);
        self.path = path;
        self
    }

    /// The key path joined with `::`.
    pub fn key_path(&self) -> String {
        self.path.join("::")
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(m) = &self.mark {
            write!(f, "{m}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.key_path())?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// All the errors of a config, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "invalid configuration ({n} error{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<Vec<ConfigError>> for ConfigErrors {
    fn from(v: Vec<ConfigError>) -> Self {
        ConfigErrors(v)
    }
}

/// A semantic problem found by a component's `validate`: the key (relative to the component,
/// `::`-separated, empty for the component as a whole) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub key: String,
    pub message: String,
}

impl ValidationError {
    /// `key` (e.g. `send_batch_max_size` or `protocols::grpc::endpoint`) and the problem.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> ValidationError {
        ValidationError {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The same error for a key nested under `prefix`.
    pub fn under(self, prefix: &str) -> ValidationError {
        let key = if self.key.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}::{}", self.key)
        };
        ValidationError { key, ..self }
    }

    /// Positions the error at the node its key names inside `node` (or the nearest parent).
    pub fn into_config_error(self, node: &Node) -> ConfigError {
        let path: Vec<String> = if self.key.is_empty() {
            Vec::new()
        } else {
            self.key.split("::").map(str::to_string).collect()
        };
        let (found, _) = node.lookup(&path);
        ConfigError::at(&found.mark, path, self.message)
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}
