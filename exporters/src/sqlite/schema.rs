//! The database schema, as an ordered list of migrations. `schema_version` holds the number of
//! migrations applied; opening a file applies the missing ones, each in its own transaction.
//!
//! Times are nanoseconds since the Unix epoch (`*_unix_nano`), as in OTLP. Attributes are JSON
//! objects (`{"host.name":"a","cpu":0}`), readable with SQLite's `json_extract`. Trace and span
//! ids are BLOBs (16 and 8 bytes; `hex()` shows them as OTLP JSON does).

use rusqlite::{Connection, OptionalExtension};

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the whole first schema.
    r#"
CREATE TABLE resources (
    id          INTEGER PRIMARY KEY,
    attributes  TEXT NOT NULL,
    schema_url  TEXT NOT NULL,
    UNIQUE (attributes, schema_url)
);
CREATE TABLE scopes (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    UNIQUE (name, version, attributes)
);
-- One row per time series: a metric of one resource and scope with one attribute set.
CREATE TABLE series (
    id           INTEGER PRIMARY KEY,
    resource_id  INTEGER NOT NULL REFERENCES resources(id),
    scope_id     INTEGER NOT NULL REFERENCES scopes(id),
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL, -- gauge | sum | histogram | exponential_histogram | summary
    unit         TEXT NOT NULL,
    description  TEXT NOT NULL,
    temporality  INTEGER NOT NULL, -- 0 unspecified, 1 delta, 2 cumulative
    monotonic    INTEGER NOT NULL,
    attributes   TEXT NOT NULL,
    UNIQUE (resource_id, scope_id, name, kind, attributes)
);
CREATE INDEX series_name ON series (name);
-- Gauge and sum points. `value` has no declared type: integers stay integers, doubles doubles.
CREATE TABLE points (
    id                    INTEGER PRIMARY KEY,
    series_id             INTEGER NOT NULL,
    time_unix_nano        INTEGER NOT NULL,
    start_time_unix_nano  INTEGER NOT NULL,
    value,
    flags                 INTEGER NOT NULL,
    trace_id              BLOB -- of the first exemplar, when there is one
);
-- Time first: rows arrive in time order, so inserts append to this index instead of touching a
-- page per series (an index on (series_id, time) cut the write rate about 13-fold); it also covers
-- `series_id`, so a metric-name query filters without reading rows.
CREATE INDEX points_time ON points (time_unix_nano, series_id);
CREATE TABLE histogram_points (
    id                    INTEGER PRIMARY KEY,
    series_id             INTEGER NOT NULL,
    time_unix_nano        INTEGER NOT NULL,
    start_time_unix_nano  INTEGER NOT NULL,
    count                 INTEGER NOT NULL,
    sum                   REAL,
    min                   REAL,
    max                   REAL,
    explicit_bounds       TEXT NOT NULL, -- JSON array of upper bounds
    bucket_counts         TEXT NOT NULL, -- JSON array, one more than the bounds
    flags                 INTEGER NOT NULL,
    trace_id              BLOB
);
CREATE INDEX histogram_points_series_time ON histogram_points (series_id, time_unix_nano);
CREATE INDEX histogram_points_time ON histogram_points (time_unix_nano);
CREATE TABLE exponential_histogram_points (
    id                    INTEGER PRIMARY KEY,
    series_id             INTEGER NOT NULL,
    time_unix_nano        INTEGER NOT NULL,
    start_time_unix_nano  INTEGER NOT NULL,
    count                 INTEGER NOT NULL,
    sum                   REAL,
    min                   REAL,
    max                   REAL,
    scale                 INTEGER NOT NULL,
    zero_count            INTEGER NOT NULL,
    zero_threshold        REAL NOT NULL,
    positive_offset       INTEGER NOT NULL,
    positive_counts       TEXT NOT NULL, -- JSON array
    negative_offset       INTEGER NOT NULL,
    negative_counts       TEXT NOT NULL, -- JSON array
    flags                 INTEGER NOT NULL,
    trace_id              BLOB
);
CREATE INDEX exponential_histogram_points_series_time
    ON exponential_histogram_points (series_id, time_unix_nano);
CREATE INDEX exponential_histogram_points_time ON exponential_histogram_points (time_unix_nano);
CREATE TABLE summary_points (
    id                    INTEGER PRIMARY KEY,
    series_id             INTEGER NOT NULL,
    time_unix_nano        INTEGER NOT NULL,
    start_time_unix_nano  INTEGER NOT NULL,
    count                 INTEGER NOT NULL,
    sum                   REAL NOT NULL,
    quantiles             TEXT NOT NULL, -- JSON array of [quantile, value]
    flags                 INTEGER NOT NULL
);
CREATE INDEX summary_points_series_time ON summary_points (series_id, time_unix_nano);
CREATE INDEX summary_points_time ON summary_points (time_unix_nano);
-- Rollups of gauge and sum points, maintained incrementally from new raw points. Keyed by bucket
-- first, like the points' index, so folding new points appends.
CREATE TABLE rollup_minute (
    series_id       INTEGER NOT NULL,
    bucket_start    INTEGER NOT NULL, -- unix nanos, a multiple of 60 s
    count           INTEGER NOT NULL,
    sum             REAL NOT NULL,
    min             REAL NOT NULL,
    max             REAL NOT NULL,
    last            REAL NOT NULL,
    last_time       INTEGER NOT NULL,
    PRIMARY KEY (bucket_start, series_id)
) WITHOUT ROWID;
CREATE TABLE rollup_hour (
    series_id       INTEGER NOT NULL,
    bucket_start    INTEGER NOT NULL, -- unix nanos, a multiple of 3600 s
    count           INTEGER NOT NULL,
    sum             REAL NOT NULL,
    min             REAL NOT NULL,
    max             REAL NOT NULL,
    last            REAL NOT NULL,
    last_time       INTEGER NOT NULL,
    PRIMARY KEY (bucket_start, series_id)
) WITHOUT ROWID;
CREATE TABLE spans (
    id                        INTEGER PRIMARY KEY,
    resource_id               INTEGER NOT NULL,
    scope_id                  INTEGER NOT NULL,
    trace_id                  BLOB NOT NULL,
    span_id                   BLOB NOT NULL,
    parent_span_id            BLOB,
    trace_state               TEXT NOT NULL,
    flags                     INTEGER NOT NULL,
    name                      TEXT NOT NULL,
    kind                      INTEGER NOT NULL, -- 1 internal, 2 server, 3 client, 4 producer, 5 consumer
    start_time_unix_nano      INTEGER NOT NULL,
    end_time_unix_nano        INTEGER NOT NULL,
    duration_nano             INTEGER NOT NULL,
    status_code               INTEGER NOT NULL, -- 0 unset, 1 ok, 2 error
    status_message            TEXT NOT NULL,
    attributes                TEXT NOT NULL,
    dropped_attributes_count  INTEGER NOT NULL,
    dropped_events_count      INTEGER NOT NULL,
    dropped_links_count       INTEGER NOT NULL
);
CREATE INDEX spans_trace ON spans (trace_id);
CREATE INDEX spans_start ON spans (start_time_unix_nano);
CREATE TABLE span_events (
    span_row        INTEGER NOT NULL, -- spans.id
    time_unix_nano  INTEGER NOT NULL,
    name            TEXT NOT NULL,
    attributes      TEXT NOT NULL
);
CREATE INDEX span_events_span ON span_events (span_row);
CREATE TABLE span_links (
    span_row     INTEGER NOT NULL, -- spans.id
    trace_id     BLOB NOT NULL,
    span_id      BLOB NOT NULL,
    trace_state  TEXT NOT NULL,
    flags        INTEGER NOT NULL,
    attributes   TEXT NOT NULL
);
CREATE INDEX span_links_span ON span_links (span_row);
CREATE TABLE logs (
    id                        INTEGER PRIMARY KEY,
    resource_id               INTEGER NOT NULL,
    scope_id                  INTEGER NOT NULL,
    time_unix_nano            INTEGER NOT NULL, -- the record's time, else its observed time
    observed_time_unix_nano   INTEGER NOT NULL,
    severity_number           INTEGER NOT NULL, -- 1-4 trace … 17-20 error, 21-24 fatal
    severity_text             TEXT NOT NULL,
    body                      TEXT, -- a string body as is, any other value as JSON
    attributes                TEXT NOT NULL,
    trace_id                  BLOB,
    span_id                   BLOB,
    flags                     INTEGER NOT NULL,
    event_name                TEXT NOT NULL,
    dropped_attributes_count  INTEGER NOT NULL
);
CREATE INDEX logs_severity_time ON logs (severity_number, time_unix_nano);
CREATE INDEX logs_time ON logs (time_unix_nano);
CREATE INDEX logs_trace ON logs (trace_id);
-- Bookkeeping: the last points.id already folded into the rollups.
CREATE TABLE sluice_state (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO sluice_state (key, value) VALUES ('rollup_watermark', 0);
"#,
];

/// The schema version this build writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The version recorded in the file (0 for a new file).
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);")?;
    let v: Option<i64> = conn
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(v.unwrap_or(0))
}

/// Applies the migrations after `from`, each in its own transaction with its version row.
pub fn migrate(conn: &mut Connection, from: i64) -> rusqlite::Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute("DELETE FROM schema_version", [])?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i as i64 + 1],
        )?;
        tx.commit()?;
    }
    Ok(())
}
