//! Errors of the `sli` processor.

use thiserror::Error;

/// What can go wrong in the `sli` processor.
#[derive(Debug, Error)]
pub enum SliError {
    /// An alert's JSON body could not be written.
    #[error("cannot encode the alert event of SLI `{sli_name}` as JSON: {source}")]
    EncodeAlert {
        sli_name: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The `sli` processor's result type.
pub type Result<T> = std::result::Result<T, SliError>;
