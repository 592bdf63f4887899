//! Errors of the `sqlite` exporter, and how they map onto the runtime's retry classes.

use rusqlite::ErrorCode;
use sluice_pipeline::ExportError;

/// What went wrong opening or writing the database.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The directory of the database file could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused an operation.
    #[error("SQLite error on {path} while {what}: {source}")]
    Sqlite {
        path: String,
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer sluice (a schema version this build does not know).
    #[error("{path} has schema version {found}, newer than this build's {supported}; use a newer sluice or another path")]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    /// The writer thread has stopped (shutdown, or it could not start).
    #[error("the SQLite writer has stopped")]
    WriterStopped,
}

impl SqliteError {
    /// The SQLite result code, if this is a SQLite failure.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            SqliteError::Sqlite { source, .. } => source.sqlite_error_code(),
            _ => None,
        }
    }

    /// `SQLITE_BUSY` / `SQLITE_LOCKED`: another connection holds the lock.
    pub fn is_busy(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        )
    }

    /// `SQLITE_FULL`: the disk (or `max_page_count`) is full.
    pub fn is_full(&self) -> bool {
        matches!(self.code(), Some(ErrorCode::DiskFull))
    }

    /// The runtime's class: busy/locked and I/O errors are retried; a full disk, a corrupt file
    /// or anything else is permanent (retrying would fail the same way and hold the queue).
    pub fn to_export_error(&self) -> ExportError {
        let retryable = self.is_busy()
            || matches!(self.code(), Some(ErrorCode::SystemIoFailure))
            || matches!(self, SqliteError::WriterStopped);
        if retryable {
            ExportError::retryable(self.to_string())
        } else {
            ExportError::permanent(self.to_string())
        }
    }
}
