//! Errors of `sluice ci`. None of them changes the exit code of the command `sluice ci` runs:
//! they are printed (prefixed `sluice:`) and the job goes on.

use std::path::PathBuf;

/// What can go wrong around the command: the state directory, the collector, the report, the
/// GitHub API.
#[derive(Debug, thiserror::Error)]
pub enum CiError {
    /// A file or directory under the state directory (or the step summary) could not be used.
    #[error("{what} `{path}`: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The detached collector could not be started, or stopped with an error.
    #[error("collector: {0}")]
    Collector(String),
    /// A state file (`state.json`) is not what `sluice ci start` writes.
    #[error("state file `{path}`: {message}")]
    State { path: PathBuf, message: String },
    /// The GitHub REST API request failed or its answer could not be used.
    #[error("GitHub API: {0}")]
    GithubApi(String),
}

impl CiError {
    /// An I/O error on `path`, saying what was being done.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CiError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
